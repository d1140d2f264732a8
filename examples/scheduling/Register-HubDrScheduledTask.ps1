#requires -Version 7.4
<#
.SYNOPSIS
    Windows Task Scheduler: registers the nightly backup and the weekly restore test for one hub.
.DESCRIPTION
    Runs as a dedicated service account. The passphrase is NOT stored in the task: the scripts read it from the
    account's environment (set once with [Environment]::SetEnvironmentVariable('HUBDR_KEY_PASSPHRASE', ..., 'User'))
    or, better, from SecretManagement in a wrapper script.
.EXAMPLE
    ./Register-HubDrScheduledTask.ps1 -SettingsPath C:\ProgramData\HubDr\contoso.psd1 -Account 'CONTOSO\svc-hubdr'
#>
[CmdletBinding(SupportsShouldProcess)]
param(
    [Parameter(Mandatory)][string] $SettingsPath,
    [Parameter(Mandatory)][string] $Account,
    [string] $ScriptFolder = (Split-Path $PSScriptRoot)
)
$pwsh = (Get-Command pwsh).Source
$backup = New-ScheduledTaskAction -Execute $pwsh -Argument "-NoProfile -NonInteractive -File `"$ScriptFolder\nightly-backup.ps1`" -SettingsPath `"$SettingsPath`""
$test = New-ScheduledTaskAction -Execute $pwsh -Argument "-NoProfile -NonInteractive -File `"$ScriptFolder\weekly-restore-test.ps1`" -SettingsPath `"$SettingsPath`""
$principal = New-ScheduledTaskPrincipal -UserId $Account -LogonType Password
# A time limit on every task: Task Scheduler stops a run that exceeds it (the task's last result shows it), so a hung
# backup never keeps the next night's from starting; a run still going when the next is due is not doubled
# (IgnoreNew). Set it to the longest run you expect plus a margin.
$backupSettings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit (New-TimeSpan -Hours 3) -MultipleInstances IgnoreNew -StartWhenAvailable
$testSettings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit (New-TimeSpan -Hours 4) -MultipleInstances IgnoreNew -StartWhenAvailable
if ($PSCmdlet.ShouldProcess('HubDr nightly backup', 'Register scheduled task')) {
    Register-ScheduledTask -TaskName 'HubDr nightly backup' -Action $backup -Trigger (New-ScheduledTaskTrigger -Daily -At 2am) -Principal $principal -Settings $backupSettings
}
if ($PSCmdlet.ShouldProcess('HubDr weekly restore test', 'Register scheduled task')) {
    Register-ScheduledTask -TaskName 'HubDr weekly restore test' -Action $test -Trigger (New-ScheduledTaskTrigger -Weekly -DaysOfWeek Sunday -At 4am) -Principal $principal -Settings $testSettings
}
