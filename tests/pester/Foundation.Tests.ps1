#requires -Version 7.4
# The embedded default end to end: SQLite + local folder store, real OpenPGP, real files.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module $env:HUBDR_MODULE_PATH -Force
    $script:work = New-TestDirectory 'hubdr-foundation'
    $script:keys = New-TestKeySet -Path (Join-Path $work 'keys')
    $script:store = Join-Path $work 'store'
    $null = New-Item -ItemType Directory $store
    $script:db = Join-Path $work 'hub.db'
    New-SampleSqliteHub -Path $db -Rows 300
    $manifests = New-Item -ItemType Directory (Join-Path $work 'manifests')
    '{"modules":[{"name":"auth","version":"1.2.0"},{"name":"billing","version":"3.0.1"}]}' | Set-Content (Join-Path $manifests 'installed.json')
    $script:config = Join-Path $work 'config.json'
    '{"featureFlags":{"newBilling":true},"smtp":{"host":"mail.example.test"}}' | Set-Content $config
    $script:common = @{
        Store            = $store
        Hub              = 'contoso'
        DatabaseEngine   = 'sqlite'
        ConnectionString = $db
        RecipientKeyPath = @($keys.Ops.PublicKeyPath, $keys.Escrow.PublicKeyPath)
        SigningKeyPath   = $keys.Ops.SecretKeyPath
        Passphrase       = $keys.Passphrase
        KeyMetadataPath  = $keys.Ops.KeyMetadataPath
        ManifestPath     = $manifests.FullName
        ConfigPath       = $config
    }
    $script:backup = New-HubBackup @common
}

AfterAll {
    Remove-Item $script:work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'New-HubBackupKey' {
    It 'writes a public key, a 0600 secret key and key metadata' {
        $keys.Ops.Fingerprint | Should -Match '^[0-9A-F]{40}$'
        Test-Path $keys.Ops.PublicKeyPath | Should -BeTrue
        (Get-Content $keys.Ops.SecretKeyPath -Raw) | Should -Match 'BEGIN PGP PRIVATE KEY BLOCK'
        if (-not $IsWindows) { (& stat -c '%a' $keys.Ops.SecretKeyPath) | Should -Be '600' }
        $meta = Get-Content $keys.Ops.KeyMetadataPath -Raw | ConvertFrom-Json
        ($meta.keys | Where-Object fingerprint -eq $keys.Ops.Fingerprint) | Should -Not -BeNullOrEmpty
        (Get-Content $keys.Ops.KeyMetadataPath -Raw) | Should -Not -Match 'PRIVATE KEY'
    }

    It 'supports -WhatIf without writing anything' {
        $d = Join-Path $work 'whatif-keys'
        New-HubBackupKey -UserId 'x <x@example.test>' -Passphrase (ConvertTo-TestSecureString 'p') -OutputPath $d -WhatIf
        Test-Path $d | Should -BeFalse
    }
}

Describe 'New-HubBackup' {
    It 'returns a complete HubBackup with catalog facts' {
        $backup | Should -BeOfType ([HubDr.Cmdlets.HubBackup])
        $backup.Status | Should -Be 'Complete'
        $backup.Hub | Should -Be 'contoso'
        $backup.Engine | Should -Be 'sqlite'
        $backup.TableCount | Should -BeGreaterOrEqual 4
        $backup.RowCount | Should -BeGreaterThan 900
        $backup.RecipientKeyIds.Count | Should -Be 2
        $backup.SignerFingerprint | Should -Be $keys.Ops.Fingerprint
    }

    It 'lays out archive, signatures and catalog in the documented places' {
        $folder = Join-Path $store "contoso/$($backup.BackupId)"
        $names = (Get-ChildItem $folder).Name | Sort-Object
        $names | Should -Contain 'catalog.json'
        $names | Should -Contain 'catalog.json.sig'
        ($names | Where-Object { $_ -match '^archive\.tar(\.gz|\.zst)?\.gpg$' }).Count | Should -Be 1
        ($names | Where-Object { $_ -match '^archive\.tar(\.gz|\.zst)?\.gpg\.sig$' }).Count | Should -Be 1
        Get-ChildItem $store -Recurse -Filter '.hubdr-tmp-*' -Force | Should -BeNullOrEmpty
    }

    It 'writes a catalog that holds no secrets and matches the archive' {
        $catalog = Get-Content (Join-Path $store "contoso/$($backup.BackupId)/catalog.json") -Raw | ConvertFrom-Json
        $catalog.backupId | Should -Be $backup.BackupId
        $archive = Get-Item (Join-Path $store "contoso/$($backup.BackupId)/$($catalog.archive)")
        $catalog.archiveSize | Should -Be $archive.Length
        $catalog.archiveSha256 | Should -Be (Get-FileHash $archive.FullName -Algorithm SHA256).Hash.ToLowerInvariant()
    }

    It 'supports -WhatIf: nothing is written' {
        $before = (Get-BackupFileCount $store)
        New-HubBackup @common -WhatIf
        (Get-BackupFileCount $store) | Should -Be $before
    }

    It 'takes every value from a settings file, parameters overriding it' {
        $settings = Join-Path $work 'hub.psd1'
        @"
@{
    Hub      = 'fromsettings'
    Store    = '$store'
    Database = @{ Engine = 'sqlite'; ConnectionString = '$db' }
    Keys     = @{ Recipients = @('$($keys.Ops.PublicKeyPath)'); SigningKey = '$($keys.Ops.SecretKeyPath)'; TrustedSigners = @('$($keys.Ops.PublicKeyPath)'); SecretKeys = @('$($keys.Ops.SecretKeyPath)') }
    Compression = 'gzip'
}
"@ | Set-Content $settings
        $b = New-HubBackup -SettingsPath $settings -Passphrase $keys.Passphrase
        $b.Hub | Should -Be 'fromsettings'
        $b.Compression | Should -Be 'gzip'
        $b2 = New-HubBackup -SettingsPath $settings -Passphrase $keys.Passphrase -Hub 'override' -Compression zstd
        $b2.Hub | Should -Be 'override'
        $b2.Compression | Should -Be 'zstd'
        (Test-HubBackupSignature -InputObject $b2 -SettingsPath $settings).IsValid | Should -BeTrue
    }
}

Describe 'Get-HubBackup' {
    It 'lists backups newest first and filters by hub and -Latest' {
        $second = New-HubBackup @common
        $all = Get-HubBackup -Store $store -Hub contoso
        $all.Count | Should -BeGreaterOrEqual 2
        $all[0].BackupId | Should -Be $second.BackupId
        (Get-HubBackup -Store $store -Hub contoso -Latest).BackupId | Should -Be $second.BackupId
        (Get-HubBackup -Store $store -Hub 'nosuchhub') | Should -BeNullOrEmpty
        (Get-HubBackup -Store $store -Since ([datetime]::UtcNow.AddDays(1))) | Should -BeNullOrEmpty
    }

    It 'hides incomplete backups unless asked' {
        $fake = Join-Path $store 'contoso/20200101T000000Z-abcdef'
        $null = New-Item -ItemType Directory $fake
        'partial' | Set-Content (Join-Path $fake 'archive.tar.zst.gpg')
        (Get-HubBackup -Store $store -Hub contoso).BackupId | Should -Not -Contain '20200101T000000Z-abcdef'
        $inc = Get-HubBackup -Store $store -Hub contoso -IncludeIncomplete | Where-Object BackupId -eq '20200101T000000Z-abcdef'
        $inc.Status | Should -Be 'Incomplete'
        Remove-Item $fake -Recurse
    }
}

Describe 'Test-HubBackupSignature' {
    It 'reports a valid signature from a trusted key, from the pipeline' {
        $r = $backup | Test-HubBackupSignature -TrustedSignerKeyPath $keys.Ops.PublicKeyPath
        $r.IsValid | Should -BeTrue
        $r.Status | Should -Be 'Valid'
        $r.SignerFingerprint | Should -Be $keys.Ops.Fingerprint
    }

    It 'has a -Quiet form and a -Path form' {
        $backup | Test-HubBackupSignature -TrustedSignerKeyPath $keys.Ops.PublicKeyPath -Quiet | Should -BeTrue
        $path = Join-Path $store "contoso/$($backup.BackupId)"
        (Test-HubBackupSignature -Path $path -TrustedSignerKeyPath $keys.Ops.PublicKeyPath).IsValid | Should -BeTrue
    }

    It 'needs no secret key' {
        $r = Test-HubBackupSignature -Store $store -Hub contoso -BackupId $backup.BackupId -TrustedSignerKeyPath $keys.Ops.PublicKeyPath
        $r.IsValid | Should -BeTrue
    }
}

Describe 'Restore-HubBackup' {
    It 'restores database and files through the pipeline Get | Test | Restore' {
        $target = Join-Path $work 'restored.db'
        $files = Join-Path $work 'restored-files'
        $result = Get-HubBackup -Store $store -Hub contoso -Latest |
            Test-HubBackupSignature -TrustedSignerKeyPath $keys.Ops.PublicKeyPath |
            Restore-HubBackup -Target $target -FilesPath $files -SecretKeyPath $keys.Ops.SecretKeyPath -Passphrase $keys.Passphrase -TrustedSignerKeyPath $keys.Ops.PublicKeyPath
        $result | Should -BeOfType ([HubDr.Cmdlets.HubRestoreResult])
        $result.Succeeded | Should -BeTrue
        $result.RowCountsMatch | Should -BeTrue
        $result.IntegrityProblems | Should -BeNullOrEmpty
        (Get-SqliteRowCounts $target) | ConvertTo-Json | Should -Be ((Get-SqliteRowCounts $db) | ConvertTo-Json)
        Invoke-Sqlite -Database $target -Sql "SELECT display FROM users WHERE id = 1;" | Should -Be 'Ünïcødé ✓ 1'
        Invoke-Sqlite -Database $target -Sql "SELECT hex(icon) FROM modules WHERE id = 1;" | Should -Be '00FF10A5'
        Test-Path (Join-Path $files 'manifests/manifests/installed.json') | Should -BeTrue
        Test-Path (Join-Path $files 'config/config.json') | Should -BeTrue
        Test-Path (Join-Path $files 'keys/keys.json') | Should -BeTrue
    }

    It 'hands the restored config and manifests to the import command (the mirror of the export command)' {
        $files = Join-Path $work 'import-files'
        $marker = Join-Path $work 'import-marker.txt'
        $r = $backup | Restore-HubBackup -FilesPath $files -SecretKeyPath $keys.Ops.SecretKeyPath -Passphrase $keys.Passphrase -TrustedSignerKeyPath $keys.Ops.PublicKeyPath `
            -ImportCommand "bash -c 'ls -R {path} > $marker'"
        $r.FilesRestored.Count | Should -BeGreaterOrEqual 2
        (Get-Content $marker -Raw) | Should -Match 'config.json'
        (Get-Content $marker -Raw) | Should -Match 'installed.json'
    }

    It 'decrypts with the escrow key alone' {
        $target = Join-Path $work 'escrow.db'
        $r = Restore-HubBackup -Store $store -Hub contoso -BackupId $backup.BackupId -Target $target -TargetEngine sqlite -SecretKeyPath $keys.Escrow.SecretKeyPath -Passphrase $keys.Passphrase -TrustedSignerKeyPath $keys.Ops.PublicKeyPath
        $r.Succeeded | Should -BeTrue
        $r.DecryptedWithKey | Should -Be $keys.Escrow.Fingerprint
    }

    It 'shows the plan with -WhatIf and restores nothing' {
        $target = Join-Path $work 'whatif.db'
        $backup | Restore-HubBackup -Target $target -SecretKeyPath $keys.Ops.SecretKeyPath -Passphrase $keys.Passphrase -TrustedSignerKeyPath $keys.Ops.PublicKeyPath -WhatIf
        Test-Path $target | Should -BeFalse
    }

    It 'refuses a non-empty target without -Force and replaces it with -Force' {
        $target = Join-Path $work 'nonempty.db'
        Invoke-Sqlite -Database $target -Sql 'CREATE TABLE keepme(x); INSERT INTO keepme VALUES (42);' | Out-Null
        { $backup | Restore-HubBackup -Target $target -SecretKeyPath $keys.Ops.SecretKeyPath -Passphrase $keys.Passphrase -TrustedSignerKeyPath $keys.Ops.PublicKeyPath -ErrorAction Stop } |
            Should -Throw -ErrorId 'RestoreTargetNotEmpty,HubDr.Cmdlets.RestoreHubBackupCommand'
        Invoke-Sqlite -Database $target -Sql 'SELECT x FROM keepme;' | Should -Be '42'
        $r = $backup | Restore-HubBackup -Target $target -SecretKeyPath $keys.Ops.SecretKeyPath -Passphrase $keys.Passphrase -TrustedSignerKeyPath $keys.Ops.PublicKeyPath -Force -Confirm:$false
        $r.Succeeded | Should -BeTrue
    }
}
