#requires -Version 7.4
<#
.SYNOPSIS
    Nightly HubDr backup for one hub (cron, systemd timer, Windows Task Scheduler).
.DESCRIPTION
    Everything comes from the per-hub settings file; the key passphrase from $env:HUBDR_KEY_PASSPHRASE (or the variable
    the settings name), set by the scheduler's secret mechanism (systemd LoadCredential, a root-only EnvironmentFile,
    Windows Credential Manager via SecretManagement). Exit code 0 = backup complete, 1 = failed (metrics, audit log and
    the webhook alert are written by HubDr itself).
.EXAMPLE
    pwsh -NoProfile -File ./nightly-backup.ps1 -SettingsPath /etc/hubdr/contoso.psd1
#>
[CmdletBinding()]
param([Parameter(Mandatory)][string] $SettingsPath)
$ErrorActionPreference = 'Stop'
Import-Module HubDr
try {
    $backup = New-HubBackup -SettingsPath $SettingsPath
    Write-Output "Backup $($backup.Hub)/$($backup.BackupId) complete: $($backup.ArchiveSize) bytes, $($backup.RowCount) rows."
    exit 0
}
catch {
    Write-Error "Backup failed [$($_.FullyQualifiedErrorId)]: $($_.Exception.Message)" -ErrorAction Continue
    exit 1
}
