#requires -Version 7.4
<#
.SYNOPSIS
    The whole HubDr flow on the embedded default: a sample SQLite hub, a local folder store.
.DESCRIPTION
    Builds a sample hub (database, module manifests, configuration with a planted secret), generates an ops key and an
    escrow key, backs up, lists, verifies and restores, and prints every object. Needs no server and no sqlite3 CLI.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string] $ModulePath,
    [Parameter(Mandatory)][string] $WorkPath
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
if (Test-Path $WorkPath) { Remove-Item $WorkPath -Recurse -Force }
$null = New-Item -ItemType Directory -Path $WorkPath, (Join-Path $WorkPath 'store'), (Join-Path $WorkPath 'hub/manifests')

function Show([string] $Title, $Object) {
    Write-Host "`n=== $Title" -ForegroundColor Cyan
    $Object | Format-List | Out-String -Width 120 | Write-Host
}

# 1. A sample hub (build.ps1 installs the sqlite3 CLI from Debian packages when it is missing).
$hubDb = Join-Path $WorkPath 'hub/hub.db'
$sql = @'
CREATE TABLE users(id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT UNIQUE NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE modules(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, version TEXT NOT NULL);
CREATE TABLE accounts(id INTEGER PRIMARY KEY, owner INTEGER NOT NULL REFERENCES users(id), balance_cents INTEGER NOT NULL);
INSERT INTO users(username, created_at) VALUES ('alice','2026-11-01T08:00:00Z'),('bob','2026-11-02T09:30:00Z'),('chloé','2026-11-03T10:15:00Z');
INSERT INTO modules VALUES (1,'auth','1.2.0'),(2,'billing','3.0.1');
INSERT INTO accounts(owner, balance_cents) VALUES (1,150000),(2,99000),(3,1234);
'@
$sqlite3 = Get-Command sqlite3 -ErrorAction SilentlyContinue
if (-not $sqlite3) { throw 'The demo needs the sqlite3 command line tool to create its sample database (apt-get install sqlite3).' }
$sql | & $sqlite3.Source $hubDb
'{"installed":[{"name":"auth","version":"1.2.0"},{"name":"billing","version":"3.0.1"}]}' | Set-Content (Join-Path $WorkPath 'hub/manifests/installed.json')
'{"featureFlags":{"newBilling":true},"database":{"host":"db1","password":"demo-secret-never-in-backups"}}' | Set-Content (Join-Path $WorkPath 'hub/config.json')

# 2. Keys: the ops key signs and decrypts; the escrow key is a second recipient kept offline.
$pass = ConvertTo-SecureString 'demo passphrase - use a real secret store' -AsPlainText -Force # lint-ignore: ConvertToSecureStringPlainText -- throwaway demo keys
$keys = Join-Path $WorkPath 'keys'
$ops = New-HubBackupKey -UserId 'Hub Ops <ops@example.com>' -Algorithm EcdsaP256 -Passphrase $pass -OutputPath (Join-Path $keys 'ops')
$escrow = New-HubBackupKey -UserId 'Hub Escrow <escrow@example.com>' -Algorithm EcdsaP256 -Passphrase $pass -OutputPath (Join-Path $keys 'escrow')
Show 'New-HubBackupKey (ops)' $ops

# 3. Back up.
$store = Join-Path $WorkPath 'store'
$backup = New-HubBackup -Store $store -Hub demo -DatabaseEngine sqlite -ConnectionString $hubDb `
    -RecipientKeyPath $ops.PublicKeyPath, $escrow.PublicKeyPath -SigningKeyPath $ops.SecretKeyPath -Passphrase $pass `
    -KeyMetadataPath $ops.KeyMetadataPath -ManifestPath (Join-Path $WorkPath 'hub/manifests') -ConfigPath (Join-Path $WorkPath 'hub/config.json')
Show 'New-HubBackup' $backup

# 4. List, verify, restore: the operator's pipeline.
Write-Host "`n=== Get-HubBackup" -ForegroundColor Cyan
Get-HubBackup -Store $store | Format-Table | Out-String -Width 120 | Write-Host
$check = Get-HubBackup -Store $store -Hub demo -Latest | Test-HubBackupSignature -TrustedSignerKeyPath $ops.PublicKeyPath
Show 'Test-HubBackupSignature' $check
$restore = $check | Restore-HubBackup -Target (Join-Path $WorkPath 'restore/hub.db') -FilesPath (Join-Path $WorkPath 'restore/files') `
    -SecretKeyPath $escrow.SecretKeyPath -Passphrase $pass -TrustedSignerKeyPath $ops.PublicKeyPath
Show 'Restore-HubBackup (with the escrow key)' $restore
Write-Host "`n=== Row counts" -ForegroundColor Cyan
$restore.RowCounts | Format-Table | Out-String -Width 120 | Write-Host
if (-not $restore.Succeeded) { throw 'Demo restore did not verify.' }
$cfg = Get-Content (Join-Path $WorkPath 'restore/files/config/config.json') -Raw
if ($cfg -match 'demo-secret-never-in-backups') { throw 'A secret reached the backup!' }
Write-Host "`nRestored config (secret redacted):`n$cfg"
Write-Host "Demo finished: everything is in $WorkPath" -ForegroundColor Green
