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

    Time limit: cloud-sandbox jobs are stopped by Azure after 3 hours (fair share); on a Hybrid Worker there is no such
    limit, so the backup below runs in a thread job that is stopped after -TimeoutMinutes (a hung backup must not block
    the next schedule; stopping it cancels HubDr, which kills its database tools and aborts the upload).
#>
param(
    [string] $Hub = 'contoso',
    [string] $Store = 'az://contosobackups/hub-backups/prod',
    [string] $ConnectionString = 'Host=db1.internal;Database=hub;Username=hub_backup',
    [int] $TimeoutMinutes = 170
)
$ErrorActionPreference = 'Stop'
Import-Module HubDr
# Automation credential assets: their .Password is already a SecureString.
$passphrase = (Get-AutomationPSCredential -Name 'HubDrKeyPassphrase').Password
$dbCredential = Get-AutomationPSCredential -Name 'HubDbCredential'
$workDir = Join-Path ([IO.Path]::GetTempPath()) 'hubdr'
$null = New-Item -ItemType Directory -Path $workDir -Force
# The secret key is written below: the folder is the job account's only (no inherited access for other local users).
if ($IsWindows) { & icacls $workDir /inheritance:r /grant:r "$([Security.Principal.WindowsIdentity]::GetCurrent().Name):(OI)(CI)F" | Out-Null }
else { & chmod 700 $workDir }
# Keys stored as Automation variables (armored text) are written to the sandbox's temp folder for this job only.
Set-Content (Join-Path $workDir 'ops.pub.asc') (Get-AutomationVariable -Name 'HubDrOpsPublicKey')
Set-Content (Join-Path $workDir 'escrow.pub.asc') (Get-AutomationVariable -Name 'HubDrEscrowPublicKey')
Set-Content (Join-Path $workDir 'ops.sec.asc') (Get-AutomationVariable -Name 'HubDrOpsSecretKey')
try {
    $job = Start-ThreadJob -ScriptBlock {
        Import-Module HubDr
        New-HubBackup -Store $using:Store -UseManagedIdentity -Hub $using:Hub -DatabaseEngine postgres -ConnectionString $using:ConnectionString `
            -DatabaseCredential $using:dbCredential `
            -RecipientKeyPath (Join-Path $using:workDir 'ops.pub.asc'), (Join-Path $using:workDir 'escrow.pub.asc') `
            -SigningKeyPath (Join-Path $using:workDir 'ops.sec.asc') -Passphrase $using:passphrase -ErrorAction Stop
    }
    if (-not (Wait-Job $job -Timeout ($TimeoutMinutes * 60))) {
        Stop-Job $job
        throw "The HubDr backup of '$Hub' did not finish within $TimeoutMinutes minutes and was stopped."
    }
    $b = Receive-Job $job -ErrorAction Stop
    Write-Output "Backup $($b.BackupId) complete ($($b.ArchiveSize) bytes)."
    Remove-ExpiredHubBackup -Store $Store -UseManagedIdentity -Hub $Hub -UseRunbookPolicy -TrustedSignerKeyPath (Join-Path $workDir 'ops.pub.asc') -Force |
        Group-Object Action | ForEach-Object { Write-Output "$($_.Name): $($_.Count)" }
}
finally {
    Remove-Item $workDir -Recurse -Force -ErrorAction SilentlyContinue
}
