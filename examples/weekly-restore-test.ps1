#requires -Version 7.4
<#
.SYNOPSIS
    Weekly restore test (runbook: "Weekly Restore Test"): latest backup of the last 7 days → staging → smoke tests.
.DESCRIPTION
    Staging server, service command, smoke user and RTO/RPO targets come from the settings file (RestoreTest.*, Rto, Rpo).
    The smoke user's password and the key passphrase come from the environment. Exit code 0 = DR readiness proven.
.EXAMPLE
    pwsh -NoProfile -File ./weekly-restore-test.ps1 -SettingsPath /etc/hubdr/contoso.psd1
#>
[CmdletBinding()]
param([Parameter(Mandatory)][string] $SettingsPath)
$ErrorActionPreference = 'Stop'
Import-Module HubDr
$smoke = if ($env:HUB_SMOKE_PASSWORD) { [pscredential]::new($env:HUB_SMOKE_USER, (ConvertTo-SecureString $env:HUB_SMOKE_PASSWORD -AsPlainText -Force)) }
$result = Invoke-HubRestoreTest -SettingsPath $SettingsPath -SmokeCredential $smoke -ErrorAction Continue
$result.Steps | Format-Table Kind, Name, Passed, Duration, Message -AutoSize | Out-String -Width 200 | Write-Output
Write-Output "RTO: $($result.TimeToOperable) (target $($result.RtoTarget)), RPO: $($result.BackupAge) (target $($result.RpoTarget)). Report: $($result.ReportLocation)"
exit ([int](-not $result.Passed))
