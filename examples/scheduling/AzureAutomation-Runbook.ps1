<#
.SYNOPSIS
    Azure Automation runbook (PowerShell 7.4 runtime): nightly HubDr backup into Azure Blob with the managed identity.
.DESCRIPTION
    Import the module: build.ps1 Package produces out/HubDr.zip (module files at the zip root), upload it under
    Automation Account > Runtime Environments (PowerShell 7.4) > Add a file / Modules.
    Store access: give the Automation Account's system-assigned managed identity the "Storage Blob Data Contributor"
    role on the container; -UseManagedIdentity makes HubDr use it (no keys anywhere).
    Secrets: the key passphrase and the database login are Automation credential assets (Get-AutomationPSCredential), the signing key an
    Automation certificate/asset or a Key Vault secret read with the same identity.

    IMPORTANT: an Azure Automation *cloud sandbox* cannot run external binaries such as pg_dump or mariadb-dump, and has
    no local PostgreSQL/MySQL client tools: HubDr's PostgreSQL and MySQL engines need them. Run this runbook on a
    Hybrid Runbook Worker (a VM you manage with the client tools installed, `apt-get install postgresql-client
    mariadb-client`). Only SQLite hubs (pure .NET) can be backed up from the cloud sandbox.
#>
param(
    [string] $Hub = 'contoso',
    [string] $Store = 'az://contosobackups/hub-backups/prod',
    [string] $ConnectionString = 'Host=db1.internal;Database=hub;Username=hub_backup'
)
$ErrorActionPreference = 'Stop'
Import-Module HubDr
# Automation credential assets: their .Password is already a SecureString.
$passphrase = (Get-AutomationPSCredential -Name 'HubDrKeyPassphrase').Password
$dbCredential = Get-AutomationPSCredential -Name 'HubDbCredential'
$workDir = Join-Path ([IO.Path]::GetTempPath()) 'hubdr'
$null = New-Item -ItemType Directory -Path $workDir -Force
# Keys stored as Automation variables (armored text) are written to the sandbox's temp folder for this job only.
Set-Content (Join-Path $workDir 'ops.pub.asc') (Get-AutomationVariable -Name 'HubDrOpsPublicKey')
Set-Content (Join-Path $workDir 'escrow.pub.asc') (Get-AutomationVariable -Name 'HubDrEscrowPublicKey')
Set-Content (Join-Path $workDir 'ops.sec.asc') (Get-AutomationVariable -Name 'HubDrOpsSecretKey')
try {
    $b = New-HubBackup -Store $Store -UseManagedIdentity -Hub $Hub -DatabaseEngine postgres -ConnectionString $ConnectionString `
        -DatabaseCredential $dbCredential `
        -RecipientKeyPath (Join-Path $workDir 'ops.pub.asc'), (Join-Path $workDir 'escrow.pub.asc') `
        -SigningKeyPath (Join-Path $workDir 'ops.sec.asc') -Passphrase $passphrase
    Write-Output "Backup $($b.BackupId) complete ($($b.ArchiveSize) bytes)."
    Remove-ExpiredHubBackup -Store $Store -UseManagedIdentity -Hub $Hub -UseRunbookPolicy -TrustedSignerKeyPath (Join-Path $workDir 'ops.pub.asc') -Force |
        Group-Object Action | ForEach-Object { Write-Output "$($_.Name): $($_.Count)" }
}
finally {
    Remove-Item $workDir -Recurse -Force -ErrorAction SilentlyContinue
}
