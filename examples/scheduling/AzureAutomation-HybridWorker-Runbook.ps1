<#
.SYNOPSIS
    Azure Automation runbook for a HYBRID RUNBOOK WORKER (PowerShell 7.4 runtime): nightly PostgreSQL backup of a hub into
    Azure Blob with the machine's managed identity, then retention.
.DESCRIPTION
    Where: a Hybrid Runbook Worker group (your Azure VM or Arc-enabled server). Not the cloud sandbox: pg_dump is a separate
    process, which the sandbox does not allow (HubDr stops there at once with ChildProcessUnavailable). For what the
    sandbox can do (SQLite backups, verification, retention) see AzureAutomation-Sandbox-Runbook.ps1; docs/platforms.md
    has the full table.

    The worker needs the PostgreSQL client tools, of the server's major version or newer:
      Windows: winget install PostgreSQL.PostgreSQL.17 (or the EDB installer with "Command Line Tools"); HubDr finds them in
               %ProgramFiles%\PostgreSQL\<version>\bin without PATH changes.
      Linux:   apt-get install postgresql-client-17 (or your distribution's package).
    The module: build.ps1 Package produces out/HubDr.zip; install it on the worker (Install-PSResource / copy into a
    PSModulePath folder) or, for extension-based workers, add it to the Automation account's runtime environment.

    Identity: on a Hybrid Worker, -UseManagedIdentity (and Connect-AzAccount -Identity) use the MACHINE's managed identity
    (the Azure VM's, or the Arc server's through the Arc agent), not the Automation account's. Grant that identity
    "Storage Blob Data Contributor" on the container. No storage key is handled anywhere.
    Secrets: the key passphrase and the database login are Automation credential assets (Get-AutomationPSCredential), the
    keys Automation variables (armored text) or Key Vault secrets read with the same identity.

    Memory: in Azure Automation HubDr caps its pipeline at 64 MB by default (one zstd worker, smaller buffers); a big
    worker can afford more throughput: pass -MaxMemoryMB 0 (no cap) or a larger cap. -Verbose shows the plan.

    Time limit: a Hybrid Worker has no fair-share limit, so the backup runs in a thread job that is stopped after
    -TimeoutMinutes (a hung backup must not block the next schedule; stopping it cancels HubDr, which kills its database
    tools and aborts the upload; the next run and Remove-ExpiredHubBackup clean up what it left).
#>
param(
    [string] $Hub = 'contoso',
    [string] $Store = 'az://contosobackups/hub-backups/prod',
    [string] $ConnectionString = 'Host=db1.internal;Database=hub;Username=hub_backup',
    [int] $TimeoutMinutes = 170,
    # Memory cap of the backup pipeline in MB (0: none; default in Automation: 64).
    [int] $MaxMemoryMB = 64
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
# Keys stored as Automation variables (armored text) are written to the worker's temp folder for this job only.
Set-Content (Join-Path $workDir 'ops.pub.asc') (Get-AutomationVariable -Name 'HubDrOpsPublicKey')
Set-Content (Join-Path $workDir 'escrow.pub.asc') (Get-AutomationVariable -Name 'HubDrEscrowPublicKey')
Set-Content (Join-Path $workDir 'ops.sec.asc') (Get-AutomationVariable -Name 'HubDrOpsSecretKey')
try {
    $job = Start-ThreadJob -ScriptBlock {
        Import-Module HubDr
        New-HubBackup -Store $using:Store -UseManagedIdentity -Hub $using:Hub -DatabaseEngine postgres -ConnectionString $using:ConnectionString `
            -DatabaseCredential $using:dbCredential `
            -RecipientKeyPath (Join-Path $using:workDir 'ops.pub.asc'), (Join-Path $using:workDir 'escrow.pub.asc') `
            -SigningKeyPath (Join-Path $using:workDir 'ops.sec.asc') -Passphrase $using:passphrase -MaxMemoryMB $using:MaxMemoryMB -ErrorAction Stop
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
