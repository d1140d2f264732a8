#requires -Version 7.4
# Every kind of bad input gets a clear, typed error — never a stack dump, never a restore from unverified data.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module $env:HUBDR_MODULE_PATH -Force
    $script:work = New-TestDirectory 'hubdr-bad'
    $script:keys = New-TestKeySet -Path (Join-Path $work 'keys')
    $script:store = Join-Path $work 'store'
    $null = New-Item -ItemType Directory $store
    $script:db = Join-Path $work 'hub.db'
    New-SampleSqliteHub -Path $db -Rows 200
    $script:common = @{
        Store = $store; Hub = 'contoso'; DatabaseEngine = 'sqlite'; ConnectionString = $db
        RecipientKeyPath = @($keys.Ops.PublicKeyPath, $keys.Escrow.PublicKeyPath); SigningKeyPath = $keys.Ops.SecretKeyPath; Passphrase = $keys.Passphrase
    }
    $script:a = New-HubBackup @common
    $script:b = New-HubBackup @common
    $script:restoreArgs = @{ SecretKeyPath = $keys.Ops.SecretKeyPath; Passphrase = $keys.Passphrase; TrustedSignerKeyPath = $keys.Ops.PublicKeyPath }
    function script:Get-ArchivePath([string] $StorePath, $Backup) {
        Get-ChildItem (Join-Path $StorePath "$($Backup.Hub)/$($Backup.BackupId)") -Filter 'archive.tar*.gpg' | Select-Object -First 1 -ExpandProperty FullName
    }
    function script:Test-Copy([string] $StorePath, $Backup) {
        Test-HubBackupSignature -Store $StorePath -Hub $Backup.Hub -BackupId $Backup.BackupId -TrustedSignerKeyPath $keys.Ops.PublicKeyPath
    }
    function script:Restore-Copy([string] $StorePath, $Backup, [string] $Target) {
        Restore-HubBackup -Store $StorePath -Hub $Backup.Hub -BackupId $Backup.BackupId -Target $Target -TargetEngine sqlite @restoreArgs
    }
}

AfterAll { Stop-GpgAgent; Remove-Item $script:work -Recurse -Force -ErrorAction SilentlyContinue }

Describe 'Tampered archives' {
    It 'detects a flipped byte and refuses to restore it' {
        $s = Copy-BackupFolder -Store $store -Backup $a -Destination (Join-Path $work 'flip')
        $path = Get-ArchivePath $s $a
        $bytes = [IO.File]::ReadAllBytes($path)
        $bytes[[int]($bytes.Length / 2)] = $bytes[[int]($bytes.Length / 2)] -bxor 0x01
        [IO.File]::WriteAllBytes($path, $bytes)
        $r = Test-Copy $s $a
        $r.IsValid | Should -BeFalse
        $r.Status | Should -Be 'Tampered'
        $target = Join-Path $work 'flip.db'
        $e = Get-HubError { Restore-Copy $s $a $target }
        Assert-HubError $e 'BackupSignatureInvalid' 'SecurityError'
        Test-Path $target | Should -BeFalse
    }

    It 'detects a truncated archive' {
        $s = Copy-BackupFolder -Store $store -Backup $a -Destination (Join-Path $work 'trunc')
        $path = Get-ArchivePath $s $a
        $fs = [IO.File]::Open($path, 'Open'); $fs.SetLength([long]($fs.Length * 0.6)); $fs.Dispose()
        (Test-Copy $s $a).Status | Should -Be 'Truncated'
        Assert-HubError (Get-HubError { Restore-Copy $s $a (Join-Path $work 'trunc.db') }) 'BackupSignatureInvalid' 'SecurityError'
    }

    It 'reports a deleted signature' {
        $s = Copy-BackupFolder -Store $store -Backup $a -Destination (Join-Path $work 'nosig')
        Remove-Item ((Get-ArchivePath $s $a) + '.sig')
        $r = Test-Copy $s $a
        $r.Status | Should -Be 'MissingSignature'
        Assert-HubError (Get-HubError { Restore-Copy $s $a (Join-Path $work 'nosig.db') }) 'BackupSignatureInvalid' 'SecurityError'
    }

    It 'treats a valid signature by a key that is not trusted as a failure' {
        $r = Test-HubBackupSignature -Store $store -Hub contoso -BackupId $a.BackupId -TrustedSignerKeyPath $keys.Escrow.PublicKeyPath
        $r.IsValid | Should -BeFalse
        $r.Status | Should -Be 'UntrustedSigner'
        # A backup signed by a key nobody trusts.
        $rogue = New-HubBackupKey -UserId 'Rogue <rogue@example.test>' -Algorithm EcdsaP256 -Passphrase $keys.Passphrase -OutputPath (Join-Path $work 'rogue')
        $rs = Join-Path $work 'roguestore'; $null = New-Item -ItemType Directory $rs
        $c = $common.Clone(); $c.Store = $rs; $c.SigningKeyPath = $rogue.SecretKeyPath
        $rb = New-HubBackup @c
        (Test-HubBackupSignature -InputObject $rb -TrustedSignerKeyPath $keys.Ops.PublicKeyPath).Status | Should -Be 'UntrustedSigner'
        Assert-HubError (Get-HubError { $rb | Restore-HubBackup -Target (Join-Path $work 'rogue.db') @restoreArgs }) 'BackupSignatureInvalid' 'SecurityError'
    }

    It 'detects catalog records swapped between two backups' {
        $s = Join-Path $work 'swap'
        $null = Copy-BackupFolder -Store $store -Backup $a -Destination $s
        $null = Copy-BackupFolder -Store $store -Backup $b -Destination $s
        $fa = Join-Path $s "contoso/$($a.BackupId)"; $fb = Join-Path $s "contoso/$($b.BackupId)"
        foreach ($n in 'catalog.json', 'catalog.json.sig') {
            Move-Item (Join-Path $fa $n) (Join-Path $s "tmp-$n")
            Move-Item (Join-Path $fb $n) (Join-Path $fa $n)
            Move-Item (Join-Path $s "tmp-$n") (Join-Path $fb $n)
        }
        (Test-Copy $s $a).Status | Should -Be 'CatalogMismatch'
        (Test-Copy $s $b).Status | Should -Be 'CatalogMismatch'
        Assert-HubError (Get-HubError { Restore-Copy $s $a (Join-Path $work 'swap.db') }) 'BackupSignatureInvalid' 'SecurityError'
    }

    It 'reports an edited catalog record as tampered' {
        $s = Copy-BackupFolder -Store $store -Backup $a -Destination (Join-Path $work 'editcat')
        $cat = Join-Path $s "contoso/$($a.BackupId)/catalog.json"
        (Get-Content $cat -Raw) -replace '"rowCount": \d+', '"rowCount": 1' | Set-Content $cat -NoNewline
        (Test-Copy $s $a).Status | Should -Be 'Tampered'
    }
}

Describe 'Keys and passphrases' {
    It 'fails clearly with a key the backup was not encrypted to' {
        $other = New-HubBackupKey -UserId 'Other <other@example.test>' -Algorithm EcdsaP256 -Passphrase $keys.Passphrase -OutputPath (Join-Path $work 'other')
        $e = Get-HubError { $a | Restore-HubBackup -Target (Join-Path $work 'wrongkey.db') -SecretKeyPath $other.SecretKeyPath -Passphrase $keys.Passphrase -TrustedSignerKeyPath $keys.Ops.PublicKeyPath }
        Assert-HubError $e 'DecryptionKeyNotFound' 'SecurityError'
        "$e" | Should -Match ([regex]::Escape($a.RecipientKeyIds[0]))
    }

    It 'fails clearly with a wrong passphrase, for restore and for backup' {
        $bad = ConvertTo-TestSecureString 'not the passphrase'
        $e = Get-HubError { $a | Restore-HubBackup -Target (Join-Path $work 'wrongpass.db') -SecretKeyPath $keys.Ops.SecretKeyPath -Passphrase $bad -TrustedSignerKeyPath $keys.Ops.PublicKeyPath }
        Assert-HubError $e 'KeyPassphraseInvalid' 'AuthenticationError'
        $c = $common.Clone(); $c.Passphrase = $bad
        $before = (Get-BackupFileCount $store)
        Assert-HubError (Get-HubError { New-HubBackup @c }) 'KeyPassphraseInvalid' 'AuthenticationError'
        (Get-BackupFileCount $store) | Should -Be $before
    }
}

Describe 'Stores and targets' {
    It 'refuses a compression level the compressor does not have' {
        # zstd stops at 19 here (the ultra levels need hundreds of MiB); gzip at 9: a typed error before any work.
        { New-HubBackup @common -CompressionLevel 20 } | Should -Throw -ErrorId 'ParameterArgumentValidationError,HubDr.Cmdlets.NewHubBackupCommand'
        $before = (Get-BackupFileCount $store)
        Assert-HubError (Get-HubError { New-HubBackup @common -Compression gzip -CompressionLevel 12 }) 'CompressionLevelInvalid' 'InvalidArgument'
        (Get-BackupFileCount $store) | Should -Be $before
    }

    It 'fails clearly on a missing store' {
        $c = $common.Clone(); $c.Store = Join-Path $work 'does-not-exist'
        Assert-HubError (Get-HubError { New-HubBackup @c }) 'StoreNotFound' 'ObjectNotFound'
        Assert-HubError (Get-HubError { Get-HubBackup -Store (Join-Path $work 'does-not-exist') }) 'StoreNotFound' 'ObjectNotFound'
        Test-Path (Join-Path $work 'does-not-exist') | Should -BeFalse
    }

    It 'refuses a non-empty files target without -Force' {
        $files = Join-Path $work 'files-nonempty'
        $null = New-Item -ItemType Directory $files
        'keep' | Set-Content (Join-Path $files 'mine.txt')
        Assert-HubError (Get-HubError { $a | Restore-HubBackup -FilesPath $files @restoreArgs }) 'RestoreTargetNotEmpty' 'ResourceExists'
        Get-Content (Join-Path $files 'mine.txt') | Should -Be 'keep'
    }

    It 'a backup of a missing database fails before anything is written' {
        $c = $common.Clone(); $c.ConnectionString = Join-Path $work 'nope.db'
        $before = (Get-BackupFileCount $store)
        Assert-HubError (Get-HubError { New-HubBackup @c }) 'DatabaseNotFound' 'ObjectNotFound'
        (Get-BackupFileCount $store) | Should -Be $before
    }
}

Describe 'Hostile archive contents' {
    BeforeAll {
        # Forge backups with the real gpg, signed by the trusted ops key: the signature is VALID, the content hostile.
        $script:gpgHome = New-GpgHome
        $null = Invoke-Gpg -GpgHome $gpgHome -Arguments @('--import', $keys.Ops.SecretKeyPath) -Passphrase $keys.PlainPassphrase
        function script:New-ForgedBackup([string] $Name, [string[]] $Members, [string] $WorkDir) {
            $id = '20261101T000000Z-' + $Name
            $folder = Join-Path $store "contoso/$id"
            $null = New-Item -ItemType Directory $folder
            @{ formatVersion = 1; backupId = $id; hub = 'contoso'; createdUtc = '2026-11-01T00:00:00Z'; engine = 'sqlite'; compression = 'gzip' } |
                ConvertTo-Json | Set-Content (Join-Path $WorkDir 'backup-info.json')
            $tar = Join-Path $WorkDir "$Name.tar"
            Push-Location $WorkDir
            try { & tar -cPf $tar backup-info.json @Members; if ($LASTEXITCODE) { throw 'tar failed' } } finally { Pop-Location }
            & gzip -f $tar
            $archive = Join-Path $folder 'archive.tar.gz.gpg'
            $r = Invoke-Gpg -GpgHome $gpgHome -Arguments @('--trust-model', 'always', '--encrypt', '--recipient', $keys.Ops.Fingerprint, '--output', $archive, "$tar.gz")
            $r.ExitCode | Should -Be 0 -Because $r.Output
            $r = Invoke-Gpg -GpgHome $gpgHome -Passphrase $keys.PlainPassphrase -Arguments @('--local-user', $keys.Ops.Fingerprint, '--armor', '--detach-sign', '--output', "$archive.sig", $archive)
            $r.ExitCode | Should -Be 0 -Because $r.Output
            $catalog = [ordered]@{
                formatVersion = 1; backupId = $id; hub = 'contoso'; createdUtc = '2026-11-01T00:00:00Z'; completedUtc = '2026-11-01T00:00:01Z'
                engine = 'sqlite'; compression = 'gzip'; archive = 'archive.tar.gz.gpg'; archiveSize = (Get-Item $archive).Length
                archiveSha256 = (Get-FileHash $archive -Algorithm SHA256).Hash.ToLowerInvariant(); archiveSignature = 'archive.tar.gz.gpg.sig'
                signerFingerprint = $keys.Ops.Fingerprint; recipientKeyIds = @()
            }
            $catalog | ConvertTo-Json | Set-Content (Join-Path $folder 'catalog.json') -NoNewline
            $r = Invoke-Gpg -GpgHome $gpgHome -Passphrase $keys.PlainPassphrase -Arguments @('--local-user', $keys.Ops.Fingerprint, '--armor', '--detach-sign', '--output', (Join-Path $folder 'catalog.json.sig'), (Join-Path $folder 'catalog.json'))
            $r.ExitCode | Should -Be 0 -Because $r.Output
            return $id
        }
    }

    It 'rejects a tar entry with ../ without writing outside the target' {
        $w = New-Item -ItemType Directory (Join-Path $work 'forge1/inner') -Force
        'evil' | Set-Content (Join-Path $work 'forge1/evil.txt')
        $id = New-ForgedBackup -Name 'dotdot' -Members @('../evil.txt') -WorkDir $w.FullName
        (Test-HubBackupSignature -Store $store -Hub contoso -BackupId $id -TrustedSignerKeyPath $keys.Ops.PublicKeyPath).IsValid | Should -BeTrue
        $files = Join-Path $work 'forge1-out/files'
        $e = Get-HubError { Restore-HubBackup -Store $store -Hub contoso -BackupId $id -FilesPath $files @restoreArgs }
        Assert-HubError $e 'ArchiveUnsafeEntry' 'InvalidData'
        Test-Path (Join-Path $work 'forge1-out/evil.txt') | Should -BeFalse
    }

    It 'checks every dump part against the signed manifest: <Case>' -ForEach @(
        @{ Case = 'parts match: restores'; Good = $true }
        @{ Case = 'a part differs: ArchiveEntryChecksumMismatch'; Good = $false }
    ) {
        $w = New-Item -ItemType Directory (Join-Path $work "forge-parts-$Good/db") -Force
        $sql = "PRAGMA foreign_keys=OFF;`nBEGIN TRANSACTION;`nCREATE TABLE t(x INTEGER);`nINSERT INTO t VALUES(1);`nINSERT INTO t VALUES(2);`nCOMMIT;`n"
        [IO.File]::WriteAllText((Join-Path $w 'dump.sql.part-000000'), $sql)
        $sha = [Convert]::ToHexString([Security.Cryptography.SHA256]::HashData([Text.Encoding]::UTF8.GetBytes($sql))).ToLowerInvariant()
        if (-not $Good) { $sha = $sha.Substring(0, 63) + $(if ($sha[63] -eq '0') { '1' } else { '0' }) }
        $len = [Text.Encoding]::UTF8.GetByteCount($sql)
        # As HubDr writes it since 0.2: the parts' hashes only, no whole-dump SHA-256.
        [ordered]@{
            formatVersion = 1; backupId = "20261101T000000Z-parts$Good"; hub = 'contoso'; createdUtc = '2026-11-01T00:00:00Z'
            database = [ordered]@{
                engine = 'sqlite'; serverVersion = '3'; database = 'main'; format = 'sql'; entry = 'db/dump.sql'; size = $len
                parts = @(@{ name = 'db/dump.sql.part-000000'; size = $len; sha256 = $sha; kind = 'dump' }); rowCounts = @{ 't' = 2 }
            }
            entries = @()
        } | ConvertTo-Json -Depth 5 | Set-Content (Join-Path $w.Parent.FullName 'manifest.json')
        $id = New-ForgedBackup -Name "parts$Good" -Members @('db/dump.sql.part-000000', 'manifest.json') -WorkDir $w.Parent.FullName
        $target = Join-Path $work "forge-parts-$Good.db"
        if ($Good) {
            $r = Restore-HubBackup -Store $store -Hub contoso -BackupId $id -Target $target -TargetEngine sqlite @restoreArgs
            $r.RowCountsMatch | Should -BeTrue
            (& sqlite3 $target 'SELECT sum(x) FROM t') | Should -Be '3'
        }
        else {
            $e = Get-HubError { Restore-HubBackup -Store $store -Hub contoso -BackupId $id -Target $target -TargetEngine sqlite @restoreArgs }
            Assert-HubError $e 'ArchiveEntryChecksumMismatch' 'InvalidData'
            $e.Exception.Message | Should -Match 'part-000000'
        }
    }

    It 'rejects a tar entry with an absolute path' {
        $w = New-Item -ItemType Directory (Join-Path $work 'forge2') -Force
        $abs = Join-Path $work 'forge2/abs-evil.txt'
        'evil' | Set-Content $abs
        $id = New-ForgedBackup -Name 'absolute' -Members @($abs) -WorkDir $w.FullName
        Remove-Item $abs
        $e = Get-HubError { Restore-HubBackup -Store $store -Hub contoso -BackupId $id -FilesPath (Join-Path $work 'forge2-out') @restoreArgs }
        Assert-HubError $e 'ArchiveUnsafeEntry' 'InvalidData'
        Test-Path $abs | Should -BeFalse
    }

    It 'a SQLite dump that ATTACHes a file outside the target is refused (RestoreStatementRefused): nothing written outside, no partial target' -ForEach @(
        @{ Case = 'attach'; Statement = "ATTACH DATABASE '{outside}' AS evil;`nCREATE TABLE evil.loot(x);`nINSERT INTO evil.loot VALUES('pwned');" }
        @{ Case = 'vacuum'; Statement = "VACUUM INTO '{outside}';" }
    ) {
        $w = New-Item -ItemType Directory (Join-Path $work "forge-$Case/db") -Force
        $outside = Join-Path $work "outside-$Case.db"
        $sql = "PRAGMA foreign_keys=OFF;`nBEGIN TRANSACTION;`nCREATE TABLE t(x INTEGER);`nINSERT INTO t VALUES(1);`n" + $Statement.Replace('{outside}', $outside) + "`nCOMMIT;`n"
        [IO.File]::WriteAllText((Join-Path $w 'dump.sql.part-000000'), $sql)
        $len = [Text.Encoding]::UTF8.GetByteCount($sql)
        $sha = [Convert]::ToHexString([Security.Cryptography.SHA256]::HashData([Text.Encoding]::UTF8.GetBytes($sql))).ToLowerInvariant()
        [ordered]@{
            formatVersion = 1; backupId = "20261101T000000Z-$Case"; hub = 'contoso'; createdUtc = '2026-11-01T00:00:00Z'
            database = [ordered]@{
                engine = 'sqlite'; serverVersion = '3'; database = 'main'; format = 'sql'; entry = 'db/dump.sql'; size = $len
                parts = @(@{ name = 'db/dump.sql.part-000000'; size = $len; sha256 = $sha; kind = 'dump' }); rowCounts = @{ 't' = 1 }
            }
            entries = @()
        } | ConvertTo-Json -Depth 5 | Set-Content (Join-Path $w.Parent.FullName 'manifest.json')
        $id = New-ForgedBackup -Name $Case -Members @('db/dump.sql.part-000000', 'manifest.json') -WorkDir $w.Parent.FullName
        (Test-HubBackupSignature -Store $store -Hub contoso -BackupId $id -TrustedSignerKeyPath $keys.Ops.PublicKeyPath).IsValid | Should -BeTrue
        $target = Join-Path $work "forge-$Case-target.db"
        $e = Get-HubError { Restore-HubBackup -Store $store -Hub contoso -BackupId $id -Target $target -TargetEngine sqlite @restoreArgs }
        Assert-HubError $e 'RestoreStatementRefused' 'SecurityError'
        Test-Path $outside | Should -BeFalse -Because 'a restore never writes outside its target'
        Test-Path $target | Should -BeFalse -Because 'the partial target is removed'
    }

    It 'a dangerous entry late in the archive leaves nothing of this restore in the files target' {
        $w = New-Item -ItemType Directory (Join-Path $work 'forge-late/inner/config') -Force
        '{"a":1}' | Set-Content (Join-Path $w 'a.json')
        '{"b":2}' | Set-Content (Join-Path $w 'b.json')
        'evil' | Set-Content (Join-Path $work 'forge-late/late-evil.txt')
        $id = New-ForgedBackup -Name 'late' -Members @('config/a.json', 'config/b.json', '../late-evil.txt') -WorkDir $w.Parent.FullName
        # A new folder: it is gone again afterwards.
        $files = Join-Path $work 'forge-late-out/files'
        $e = Get-HubError { Restore-HubBackup -Store $store -Hub contoso -BackupId $id -FilesPath $files @restoreArgs }
        Assert-HubError $e 'ArchiveUnsafeEntry' 'InvalidData'
        Test-Path $files | Should -BeFalse -Because 'files extracted before the refused entry are removed'
        # An existing folder with -Force: left exactly as it was.
        $existing = New-Item -ItemType Directory (Join-Path $work 'forge-late-existing') -Force
        'keep me' | Set-Content (Join-Path $existing 'mine.txt')
        $e = Get-HubError { Restore-HubBackup -Store $store -Hub contoso -BackupId $id -FilesPath $existing -Force @restoreArgs }
        Assert-HubError $e 'ArchiveUnsafeEntry' 'InvalidData'
        @(Get-ChildItem $existing -Recurse -Force).Name | Should -Be @('mine.txt')
    }
}

Describe 'Restore -FilesPath -Force replaces the folder''s contents' {
    BeforeAll {
        $cfg = New-Item -ItemType Directory (Join-Path $work 'force-cfg') -Force
        '{"featureFlags":{"x":true}}' | Set-Content (Join-Path $cfg 'app.json')
        $script:withFiles = New-HubBackup @common -ConfigPath (Join-Path $cfg 'app.json')
    }

    It 'the folder ends up holding exactly the backup''s files; stray files, folders and links are removed (links not followed)' {
        $folder = New-Item -ItemType Directory (Join-Path $work 'force-files') -Force
        $outsideDir = New-Item -ItemType Directory (Join-Path $work 'force-outside') -Force
        'precious' | Set-Content (Join-Path $outsideDir 'precious.txt')
        'stray' | Set-Content (Join-Path $folder 'stray.txt')
        $null = New-Item -ItemType Directory (Join-Path $folder 'old/deep') -Force
        'old' | Set-Content (Join-Path $folder 'old/deep/x.txt')
        $null = New-Item -ItemType SymbolicLink -Path (Join-Path $folder 'config') -Target $outsideDir
        $r = $withFiles | Restore-HubBackup -FilesPath $folder -Force @restoreArgs
        $r | Should -Not -BeNullOrEmpty
        $got = @(Get-ChildItem $folder -Recurse -File -Force | ForEach-Object { [IO.Path]::GetRelativePath($folder, $_.FullName) -replace '\\', '/' }) | Sort-Object
        $got | Should -Be @('config/app.json')
        (Get-Item (Join-Path $folder 'config')).LinkTarget | Should -BeNullOrEmpty -Because 'the planted link was removed, and a real folder restored'
        Get-Content (Join-Path $outsideDir 'precious.txt') | Should -Be 'precious' -Because 'nothing outside the folder is touched'
        @(Get-ChildItem $outsideDir).Count | Should -Be 1
    }

    It '-WhatIf says exactly that' {
        $folder = Join-Path $work 'force-whatif'
        $out = Invoke-ChildPwsh -Script @"
Import-Module '$($env:HUBDR_MODULE_PATH)'
Restore-HubBackup -Store '$store' -Hub contoso -BackupId '$($withFiles.BackupId)' -FilesPath '$folder' -Force -WhatIf -SecretKeyPath '$($keys.Ops.SecretKeyPath)' -TrustedSignerKeyPath '$($keys.Ops.PublicKeyPath)' -Passphrase (ConvertTo-SecureString '$($keys.PlainPassphrase)' -AsPlainText -Force)
"@
        $text = ($out | ForEach-Object { "$_" }) -join ' '
        $text | Should -Match 'What if'
        $text | Should -Match 'holds exactly the backup''s files'
        $text | Should -Match 'every other file and folder in it is deleted'
    }
}

