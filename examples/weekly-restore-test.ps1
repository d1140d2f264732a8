#requires -Version 7.4
<#
.SYNOPSIS
    Weekly restore test (runbook: "Weekly Restore Test"): latest backup of the last 7 days → staging → smoke tests.
.DESCRIPTION
    Staging server, service command, smoke user and RTO/RPO targets come from the settings file (RestoreTest.*, Rto, Rpo).
    The key passphrase comes from the environment; the smoke user is a PSCredential. Exit code 0 = DR readiness proven.
.EXAMPLE
    pwsh -NoProfile -File ./weekly-restore-test.ps1 -SettingsPath /etc/hubdr/contoso.psd1
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string] $SettingsPath,
    # The smoke-test user (e.g. from Get-Secret, or Import-Clixml of a DPAPI-protected credential on Windows).
    [pscredential] $SmokeCredential
)
$ErrorActionPreference = 'Stop'
Import-Module HubDr
$result = Invoke-HubRestoreTest -SettingsPath $SettingsPath -SmokeCredential $SmokeCredential -ErrorAction Continue
$result.Steps | Format-Table Kind, Name, Result, DurationSeconds, Message -AutoSize | Out-String -Width 200 | Write-Output
$rto = [timespan]::FromSeconds($result.TimeToOperableSeconds); $age = [timespan]::FromSeconds($result.BackupAgeSeconds)
Write-Output "$($result.Verdict). RTO: $rto (target $([timespan]::FromSeconds($result.RtoTargetSeconds))), RPO: $age (target $([timespan]::FromSeconds($result.RpoTargetSeconds))). Report: $($result.ReportLocation)"
exit ([int](-not $result.Passed))
