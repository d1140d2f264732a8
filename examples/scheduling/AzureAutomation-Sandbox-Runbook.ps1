<#
.SYNOPSIS
    Azure Automation runbook for the CLOUD SANDBOX (PowerShell 7.4 runtime): back up a SQLite hub (optional), verify the
    newest backup, alert when it is too old, and apply retention, all in Azure Blob with the Automation account's
    managed identity.
.DESCRIPTION
    Where: Azure's cloud sandbox (no Hybrid Worker needed). Everything here is in-process .NET, which the sandbox allows:
    SQLite backups, listing, signature verification, retention and key generation. PostgreSQL/MariaDB dumps, export
    or import commands, service commands and Pester restore tests start processes, which the sandbox does not allow:
    HubDr stops those at once with ChildProcessUnavailable. Run them with AzureAutomation-HybridWorker-Runbook.ps1 on a
    Hybrid Runbook Worker (docs/platforms.md has the full table).

    Import the module: build.ps1 Package produces out/HubDr.zip (the HubDr/ folder at the zip root); add it under
    Automation Account > Runtime Environments (PowerShell 7.4) > Add a file / Modules.
    Identity: in the sandbox -UseManagedIdentity is the Automation ACCOUNT's managed identity. Give it "Storage Blob
    Data Contributor" on the container (Reader is enough without -SqlitePath and retention).
    Secrets: the key passphrase is an Automation credential asset; the keys are Automation variables (armored text)
    written to the job's temp folder for this job only.

    Limits of the sandbox: about 400 MB of memory per job (HubDr caps its backup pipeline at 64 MB there by default;
    -Verbose shows the plan) and 3 hours of run time, after which Azure restarts the job from the beginning. A restart
    is safe (the killed run never wrote its catalog record; its lease expires and retention and the next backup remove
    its leftovers), but a backup that needs hours belongs on a Hybrid Worker.
#>
param(
    [string] $Hub = 'contoso',
    [string] $Store = 'az://contosobackups/hub-backups/prod',
    # A SQLite hub database readable from the sandbox (e.g. copied into $env:TEMP from Azure Files or Blob first);
    # leave empty to only verify and apply retention.
    [string] $SqlitePath = '',
    # The newest complete backup must be younger than this (the runbook's RPO check).
    [int] $MaxBackupAgeHours = 26
)
$ErrorActionPreference = 'Stop'
Import-Module HubDr
$passphrase = (Get-AutomationPSCredential -Name 'HubDrKeyPassphrase').Password
$workDir = Join-Path ([IO.Path]::GetTempPath()) 'hubdr'
$null = New-Item -ItemType Directory -Path $workDir -Force
# Owner-only folder, set in-process (icacls/chmod would be child processes, which the sandbox does not allow).
if ($IsWindows) {
    $acl = [System.Security.AccessControl.DirectorySecurity]::new()
    $acl.SetAccessRuleProtection($true, $false)
    $acl.AddAccessRule([System.Security.AccessControl.FileSystemAccessRule]::new([Security.Principal.WindowsIdentity]::GetCurrent().User,
        'FullControl', 'ContainerInherit, ObjectInherit', 'None', 'Allow'))
    [System.IO.FileSystemAclExtensions]::SetAccessControl([IO.DirectoryInfo]::new($workDir), $acl)
}
else { [IO.File]::SetUnixFileMode($workDir, [IO.UnixFileMode]'UserRead, UserWrite, UserExecute') }
$opsPublic = Join-Path $workDir 'ops.pub.asc'
Set-Content $opsPublic (Get-AutomationVariable -Name 'HubDrOpsPublicKey')
try {
    if ($SqlitePath) {
        # Only the signing key is secret; it never leaves the job's own temp folder.
        $escrowPublic = Join-Path $workDir 'escrow.pub.asc'
        $opsSecret = Join-Path $workDir 'ops.sec.asc'
        Set-Content $escrowPublic (Get-AutomationVariable -Name 'HubDrEscrowPublicKey')
        Set-Content $opsSecret (Get-AutomationVariable -Name 'HubDrOpsSecretKey')
        $b = New-HubBackup -Store $Store -UseManagedIdentity -Hub $Hub -DatabaseEngine sqlite -ConnectionString $SqlitePath `
            -RecipientKeyPath $opsPublic, $escrowPublic -SigningKeyPath $opsSecret -Passphrase $passphrase -Verbose
        Write-Output "Backup $($b.BackupId) complete ($($b.ArchiveSize))."
    }

    # Verify the newest complete backup (no decryption key needed) and check its age.
    $latest = Get-HubBackup -Store $Store -UseManagedIdentity -Hub $Hub -Latest
    if (-not $latest) { throw "Hub '$Hub' has no complete backup in $Store." }
    $check = $latest | Test-HubBackupSignature -TrustedSignerKeyPath $opsPublic
    if (-not $check.IsValid) { throw "The newest backup $($latest.BackupId) failed verification: $($check.Reason)" }
    $age = (Get-Date) - $latest.Created
    if ($age.TotalHours -gt $MaxBackupAgeHours) { throw "The newest backup $($latest.BackupId) is $([int]$age.TotalHours) h old (limit $MaxBackupAgeHours h)." }
    Write-Output "Newest backup $($latest.BackupId) is valid and $([int]$age.TotalHours) h old."

    # Retention: the runbook's policy (daily 14d, weekly 12w, monthly 12m).
    Remove-ExpiredHubBackup -Store $Store -UseManagedIdentity -Hub $Hub -UseRunbookPolicy -TrustedSignerKeyPath $opsPublic -Force |
        Group-Object Action | ForEach-Object { Write-Output "$($_.Name): $($_.Count)" }
}
finally {
    Remove-Item $workDir -Recurse -Force -ErrorAction SilentlyContinue
}
