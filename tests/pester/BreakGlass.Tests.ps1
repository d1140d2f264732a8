#requires -Version 7.4
# docs/break-glass.md, executed: only the private key, gpg, tar and the database's own client tools.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module $env:HUBDR_MODULE_PATH -Force
    $script:work = New-TestDirectory 'hubdr-breakglass'
    $script:keys = New-TestKeySet -Path (Join-Path $work 'keys') -Algorithm Rsa3072
    $script:store = Join-Path $work 'store'
    $null = New-Item -ItemType Directory $store
    $script:db = Join-Path $work 'hub.db'
    New-SampleSqliteHub -Path $db -Rows 400
    $cfg = Join-Path $work 'config.json'
    '{"featureFlags":{"beta":false}}' | Set-Content $cfg
    $script:common = @{
        Store = $store; Hub = 'contoso'; DatabaseEngine = 'sqlite'; ConnectionString = $db; ConfigPath = $cfg
        RecipientKeyPath = @($keys.Ops.PublicKeyPath, $keys.Escrow.PublicKeyPath); SigningKeyPath = $keys.Ops.SecretKeyPath; Passphrase = $keys.Passphrase
    }
}

AfterAll { Stop-GpgAgent; Remove-Item $script:work -Recurse -Force -ErrorAction SilentlyContinue }

Describe 'Break-glass restore with gpg, tar and sqlite3 only' -ForEach @(
    @{ Compression = 'gzip'; TarFlag = '-z' }
    @{ Compression = 'zstd'; TarFlag = '--zstd' }
) {
    It 'verifies, decrypts and restores a <Compression> backup with the escrow key' {
        $b = New-HubBackup @common -Compression $Compression
        $folder = Join-Path $store "contoso/$($b.BackupId)"
        $archive = Get-ChildItem $folder -Filter 'archive.tar*.gpg' | Select-Object -ExpandProperty FullName
        $gpgHome = New-GpgHome
        # 1. Trust: import the signer's public key, verify both signatures, and check WHO signed.
        (Invoke-Gpg -GpgHome $gpgHome -Arguments @('--import', $keys.Ops.PublicKeyPath)).ExitCode | Should -Be 0
        $v = Invoke-Gpg -GpgHome $gpgHome -Arguments @('--status-fd', '1', '--verify', "$archive.sig", $archive)
        $v.ExitCode | Should -Be 0 -Because $v.Output
        $v.Output | Should -Match "VALIDSIG $($keys.Ops.Fingerprint)"
        $c = Invoke-Gpg -GpgHome $gpgHome -Arguments @('--status-fd', '1', '--verify', (Join-Path $folder 'catalog.json.sig'), (Join-Path $folder 'catalog.json'))
        $c.Output | Should -Match "VALIDSIG $($keys.Ops.Fingerprint)"
        # 2. Decrypt with the escrow key alone and unpack with tar.
        (Invoke-Gpg -GpgHome $gpgHome -Arguments @('--import', $keys.Escrow.SecretKeyPath) -Passphrase $keys.PlainPassphrase).ExitCode | Should -Be 0
        $out = Join-Path $work "unpacked-$Compression"
        $null = New-Item -ItemType Directory $out
        $passFile = Join-Path $work 'pass.txt'
        Set-Content $passFile $keys.PlainPassphrase -NoNewline
        & bash -c "gpg --homedir '$gpgHome' --batch --pinentry-mode loopback --passphrase-file '$passFile' --decrypt '$archive' 2>/dev/null | tar $TarFlag -x -C '$out'"
        $LASTEXITCODE | Should -Be 0
        Remove-Item $passFile
        Test-Path (Join-Path $out 'manifest.json') | Should -BeTrue
        Test-Path (Join-Path $out 'config/config.json') | Should -BeTrue
        # 3. The database's own tool restores the reassembled dump.
        $restored = Join-Path $work "breakglass-$Compression.db"
        & bash -c "cat '$out'/db/dump.sql.part-* | sqlite3 -safe '$restored'"
        $LASTEXITCODE | Should -Be 0
        (Get-SqliteRowCounts $restored) | ConvertTo-Json | Should -Be ((Get-SqliteRowCounts $db) | ConvertTo-Json)
        Invoke-Sqlite -Database $restored -Sql 'PRAGMA integrity_check;' | Should -Be 'ok'
        # 4. The manifest's checksums hold for the extracted files.
        $manifest = Get-Content (Join-Path $out 'manifest.json') -Raw | ConvertFrom-Json
        foreach ($p in $manifest.database.parts) {
            (Get-FileHash (Join-Path $out $p.name) -Algorithm SHA256).Hash.ToLowerInvariant() | Should -Be $p.sha256
        }
        $manifest.database.rowCounts.users | Should -Be 400
    }
}
