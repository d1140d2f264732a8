# Shared helpers for HubDr's Pester tests. Everything here drives REAL components: the built module,
# gpg, tar and sqlite3 on this machine.
Set-StrictMode -Version 3.0

function Get-PwshCommand {
    $exe = [Environment]::ProcessPath
    if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { return @($exe, (Join-Path $PSHOME 'pwsh.dll')) }
    return @($exe)
}

function Invoke-ChildPwsh {
    <# Runs a script in a fresh pwsh process (nothing loaded), returns its output lines; throws on non-zero exit. #>
    param([Parameter(Mandatory)][string] $Script, [hashtable] $Environment = @{})
    $pwsh = Get-PwshCommand
    $file = Join-Path ([IO.Path]::GetTempPath()) ("hubdr-child-" + [guid]::NewGuid().ToString('N') + '.ps1')
    Set-Content -LiteralPath $file -Value $Script
    $saved = @{}
    # Plain text: an error message with ANSI colours would end up in the JUnit report, which XML cannot hold.
    if (-not $Environment.ContainsKey('NO_COLOR')) { $Environment = $Environment.Clone(); $Environment['NO_COLOR'] = '1' }
    try {
        foreach ($k in $Environment.Keys) { $saved[$k] = [Environment]::GetEnvironmentVariable($k); [Environment]::SetEnvironmentVariable($k, $Environment[$k]) }
        $out = & $pwsh[0] @($pwsh | Select-Object -Skip 1) -NoProfile -NonInteractive -File $file 2>&1
        if ($LASTEXITCODE -ne 0) { throw "Child pwsh failed (exit $LASTEXITCODE): $($out -join [Environment]::NewLine)" }
        return $out
    }
    finally {
        foreach ($k in $saved.Keys) { [Environment]::SetEnvironmentVariable($k, $saved[$k]) }
        Remove-Item -LiteralPath $file -ErrorAction SilentlyContinue
    }
}

function New-TestDirectory {
    param([string] $Name = 'hubdr')
    $d = Join-Path ([IO.Path]::GetTempPath()) ("$Name-" + [guid]::NewGuid().ToString('N').Substring(0, 12))
    $null = New-Item -ItemType Directory -Path $d
    return $d
}

function ConvertTo-TestSecureString([string] $Plain) { ConvertTo-SecureString -String $Plain -AsPlainText -Force }

function Invoke-Sqlite {
    param([Parameter(Mandatory)][string] $Database, [Parameter(Mandatory)][string] $Sql)
    $out = $Sql | & sqlite3 -batch $Database 2>&1
    if ($LASTEXITCODE -ne 0) { throw "sqlite3 failed: $out" }
    return $out
}

function New-SampleSqliteHub {
    <# A small but realistic hub database: FKs, index, view, trigger, unicode, blobs, NULLs. #>
    param([Parameter(Mandatory)][string] $Path, [int] $Rows = 500)
    $sql = @"
PRAGMA journal_mode=WAL;
CREATE TABLE users(id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT NOT NULL UNIQUE, display TEXT, created_at TEXT NOT NULL);
CREATE TABLE modules(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, version TEXT NOT NULL, manifest TEXT, icon BLOB);
CREATE TABLE accounts(id INTEGER PRIMARY KEY, owner INTEGER NOT NULL REFERENCES users(id), balance_cents INTEGER NOT NULL DEFAULT 0);
CREATE TABLE transactions(id INTEGER PRIMARY KEY, from_account INTEGER REFERENCES accounts(id), to_account INTEGER REFERENCES accounts(id), amount_cents INTEGER NOT NULL, note TEXT, created_at TEXT);
CREATE INDEX ix_tx_from ON transactions(from_account);
CREATE VIEW v_balances AS SELECT u.username, a.balance_cents FROM accounts a JOIN users u ON u.id = a.owner;
CREATE TRIGGER trg_tx AFTER INSERT ON transactions BEGIN UPDATE accounts SET balance_cents = balance_cents - NEW.amount_cents WHERE id = NEW.from_account; END;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < $Rows)
INSERT INTO users(username, display, created_at) SELECT 'user' || i, CASE WHEN i % 7 = 0 THEN NULL ELSE 'Ünïcødé ✓ ' || i END, '2026-11-2' || (i % 9) || 'T10:00:00Z' FROM n;
INSERT INTO modules VALUES (1, 'auth', '1.2.0', '{"entry":"auth.dll","flags":["sso"]}', X'00FF10A5'), (2, 'billing', '3.0.1', NULL, NULL);
INSERT INTO accounts(owner, balance_cents) SELECT id, 100000 FROM users;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < $Rows)
INSERT INTO transactions(from_account, to_account, amount_cents, note, created_at) SELECT (i % $Rows) + 1, ((i * 7) % $Rows) + 1, i, 'it''s #' || i, '2026-11-26T09:00:00Z' FROM n;
"@
    Invoke-Sqlite -Database $Path -Sql $sql | Out-Null
}

function Get-SqliteRowCounts([string] $Database) {
    $counts = [ordered]@{}
    foreach ($t in 'users', 'modules', 'accounts', 'transactions') {
        $counts[$t] = [int](Invoke-Sqlite -Database $Database -Sql "SELECT count(*) FROM $t;")
    }
    return $counts
}

function New-TestKeySet {
    <# Ops and escrow keys (ECDSA P-256: fast) in one folder, plus keys.json. #>
    param([Parameter(Mandatory)][string] $Path, [string] $Passphrase = 'correct horse battery staple', [string] $Algorithm = 'EcdsaP256')
    $pass = ConvertTo-TestSecureString $Passphrase
    $ops = New-HubBackupKey -UserId 'Hub Ops <ops@example.test>' -Algorithm $Algorithm -Passphrase $pass -OutputPath (Join-Path $Path 'ops')
    $escrow = New-HubBackupKey -UserId 'Hub Escrow <escrow@example.test>' -Algorithm $Algorithm -Passphrase $pass -OutputPath (Join-Path $Path 'escrow')
    [pscustomobject]@{ Ops = $ops; Escrow = $escrow; Passphrase = $pass; PlainPassphrase = $Passphrase }
}

$script:GpgHomes = [System.Collections.Generic.List[string]]::new()

function New-GpgHome {
    $d = New-TestDirectory 'gnupg'
    if (-not $IsWindows) { & chmod 700 $d }
    $script:GpgHomes.Add($d)
    return $d
}

function Stop-GpgAgent {
    <# Stops the gpg-agent of every GNUPGHOME this session created (each agent holds inotify instances) and removes the homes. #>
    foreach ($h in $script:GpgHomes) {
        & gpgconf --homedir $h --kill gpg-agent 2>$null
        Remove-Item $h -Recurse -Force -ErrorAction SilentlyContinue
    }
    $script:GpgHomes.Clear()
}

function Invoke-Gpg {
    <# Runs the real gpg in an isolated GNUPGHOME; a passphrase goes through a file descriptor, never argv. #>
    param([Parameter(Mandatory)][string] $GpgHome, [Parameter(Mandatory)][string[]] $Arguments, [string] $Passphrase)
    $all = @('--homedir', $GpgHome, '--batch', '--yes', '--no-tty', '--pinentry-mode', 'loopback')
    if ($Passphrase) {
        $all += @('--passphrase-fd', '0')
        $out = $Passphrase | & gpg @all @Arguments 2>&1
    }
    else {
        $out = & gpg @all @Arguments 2>&1
    }
    [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = ($out | ForEach-Object { "$_" }) -join "`n" }
}


function Get-HubError {
    <#
        Runs a script block that must fail; returns its first ErrorRecord, terminating (thrown) or non-terminating
        (written to the error stream: per-item failures are non-terminating since the cmdlets follow PowerShell's rule).
    #>
    param([Parameter(Mandatory)][scriptblock] $ScriptBlock)
    $first = $null
    try {
        & $ScriptBlock 2>&1 | ForEach-Object { if ($null -eq $first -and $_ -is [System.Management.Automation.ErrorRecord]) { $first = $_ } }
    }
    catch {
        return $_
    }
    if ($first) { return $first }
    throw 'Expected an error, but the command succeeded.'
}

function Get-HubOutcome {
    <# Runs a script block and returns its output objects and its non-terminating ErrorRecords, separately (a terminating error is thrown). #>
    param([Parameter(Mandatory)][scriptblock] $ScriptBlock)
    $objects = [System.Collections.Generic.List[object]]::new()
    $errors = [System.Collections.Generic.List[System.Management.Automation.ErrorRecord]]::new()
    & $ScriptBlock 2>&1 | ForEach-Object { if ($_ -is [System.Management.Automation.ErrorRecord]) { $errors.Add($_) } else { $objects.Add($_) } }
    [pscustomobject]@{ Objects = $objects.ToArray(); Errors = $errors.ToArray() }
}

function Assert-HubError {
    param([Parameter(Mandatory)] $ErrorRecord, [Parameter(Mandatory)][string] $ErrorId, [string] $Category)
    $ErrorRecord.FullyQualifiedErrorId | Should -BeLike "$ErrorId,*"
    if ($Category) { $ErrorRecord.CategoryInfo.Category | Should -Be $Category }
    # No stack dumps in what the operator reads.
    "$ErrorRecord" | Should -Not -Match '   at [A-Za-z]'
}

function Copy-BackupFolder {
    <# Copies one backup folder into a fresh store; returns the store path. #>
    param([Parameter(Mandatory)][string] $Store, [Parameter(Mandatory)] $Backup, [Parameter(Mandatory)][string] $Destination)
    $dst = Join-Path $Destination "$($Backup.Hub)/$($Backup.BackupId)"
    $null = New-Item -ItemType Directory -Path $dst -Force
    Copy-Item (Join-Path $Store "$($Backup.Hub)/$($Backup.BackupId)/*") $dst
    return $Destination
}

function Get-BackupFileCount {
    <# Files of backups in a local store (audit records and reports under _audit/, _reports/ are not backups). #>
    param([Parameter(Mandatory)][string] $Store)
    @(Get-ChildItem $Store -Recurse -File | Where-Object { $_.FullName -notmatch '[\\/]_(audit|reports)[\\/]' }).Count
}

Export-ModuleMember -Function *
