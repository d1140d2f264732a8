#requires -Version 7.4
# Key rotation: history travels in every archive; restores pick the right key among current and retired ones.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module $env:HUBDR_MODULE_PATH -Force
    $script:work = New-TestDirectory 'hubdr-rotation'
    $script:keyDir = Join-Path $work 'keys'
    $script:pass = ConvertTo-TestSecureString 'rotate me'
    $script:store = Join-Path $work 'store'
    $null = New-Item -ItemType Directory $store
    $script:db = Join-Path $work 'hub.db'
    New-SampleSqliteHub -Path $db -Rows 30
    $script:old = New-HubBackupKey -UserId 'Hub 2025 <ops@example.test>' -Algorithm EcdsaP256 -Passphrase $pass -OutputPath $keyDir
    $script:b1 = New-HubBackup -Store $store -Hub contoso -DatabaseEngine sqlite -ConnectionString $db -RecipientKeyPath $old.PublicKeyPath -SigningKeyPath $old.SecretKeyPath -Passphrase $pass -KeyMetadataPath $old.KeyMetadataPath
    $script:new = New-HubBackupKey -UserId 'Hub 2026 <ops@example.test>' -Algorithm EcdsaP384 -Passphrase $pass -OutputPath $keyDir -Supersedes $old.Fingerprint
    $script:b2 = New-HubBackup -Store $store -Hub contoso -DatabaseEngine sqlite -ConnectionString $db -RecipientKeyPath $new.PublicKeyPath -SigningKeyPath $new.SecretKeyPath -Passphrase $pass -KeyMetadataPath $new.KeyMetadataPath
}

AfterAll { Remove-Item $script:work -Recurse -Force -ErrorAction SilentlyContinue }

Describe 'Key rotation' {
    It 'records the rotation in the key metadata file' {
        $new.Supersedes | Should -Be $old.Fingerprint
        $meta = Get-Content (Join-Path $keyDir 'keys.json') -Raw | ConvertFrom-Json
        $o = $meta.keys | Where-Object fingerprint -eq $old.Fingerprint
        $n = $meta.keys | Where-Object fingerprint -eq $new.Fingerprint
        $o.retired | Should -Not -BeNullOrEmpty
        $o.successor | Should -Be $new.Fingerprint
        $n.predecessor | Should -Be $old.Fingerprint
        $n.retired | Should -BeNullOrEmpty
    }

    It 'restores old and new backups from one key folder holding current and retired keys' {
        $trusted = @($old.PublicKeyPath, $new.PublicKeyPath)
        $r1 = $b1 | Restore-HubBackup -Target (Join-Path $work 'r1.db') -FilesPath (Join-Path $work 'r1') -SecretKeyPath $keyDir -Passphrase $pass -TrustedSignerKeyPath $trusted
        $r1.DecryptedWithKey | Should -Be $old.Fingerprint
        $r2 = $b2 | Restore-HubBackup -Target (Join-Path $work 'r2.db') -FilesPath (Join-Path $work 'r2') -SecretKeyPath $keyDir -Passphrase $pass -TrustedSignerKeyPath $trusted
        $r2.DecryptedWithKey | Should -Be $new.Fingerprint
        $r2.Succeeded | Should -BeTrue
        # The archive carries the rotation history, and no secret key material.
        $inArchive = Get-Content (Join-Path $work 'r2/keys/keys.json') -Raw
        $inArchive | Should -Match $old.Fingerprint
        $inArchive | Should -Match $new.Fingerprint
        $inArchive | Should -Not -Match 'PRIVATE KEY'
    }

    It 'cannot restore the old backup with only the new key' {
        $e = Get-HubError { $b1 | Restore-HubBackup -Target (Join-Path $work 'r3.db') -SecretKeyPath $new.SecretKeyPath -Passphrase $pass -TrustedSignerKeyPath $old.PublicKeyPath }
        Assert-HubError $e 'DecryptionKeyNotFound' 'SecurityError'
    }

    It 'refuses to sign a new backup with a retired key (SigningKeyRetired), and nothing is written' {
        $before = Get-BackupFileCount $store
        $e = Get-HubError { New-HubBackup -Store $store -Hub contoso -DatabaseEngine sqlite -ConnectionString $db -RecipientKeyPath $new.PublicKeyPath -SigningKeyPath $old.SecretKeyPath -Passphrase $pass -KeyMetadataPath $new.KeyMetadataPath }
        Assert-HubError $e 'SigningKeyRetired' 'SecurityError'
        "$e" | Should -Match $old.Fingerprint
        "$e" | Should -Match $new.Fingerprint -Because 'the message names the successor'
        Get-BackupFileCount $store | Should -Be $before
    }

    It 'signs with a retired key only when asked, with a warning, and verification reports it' {
        $out = New-HubBackup -Store $store -Hub contoso -DatabaseEngine sqlite -ConnectionString $db -RecipientKeyPath $new.PublicKeyPath -SigningKeyPath $old.SecretKeyPath -Passphrase $pass -KeyMetadataPath $new.KeyMetadataPath -AllowRetiredSigningKey 3>&1
        $late = $out | Where-Object { $_ -is [HubDr.Cmdlets.HubBackup] }
        ($out | Where-Object { $_ -is [System.Management.Automation.WarningRecord] }) -join ' ' | Should -Match 'retired'
        $late | Should -Not -BeNullOrEmpty
        $trusted = @($old.PublicKeyPath, $new.PublicKeyPath)
        # Without key metadata: valid, nothing to report.
        $plain = $late | Test-HubBackupSignature -TrustedSignerKeyPath $trusted
        $plain.IsValid | Should -BeTrue
        $plain.Warnings | Should -BeNullOrEmpty
        # With it: still a valid signature, and the finding is reported (property and warning stream).
        $v = $late | Test-HubBackupSignature -TrustedSignerKeyPath $trusted -KeyMetadataPath $new.KeyMetadataPath -WarningVariable w -WarningAction SilentlyContinue
        $v.IsValid | Should -BeTrue
        $v.Warnings | Should -HaveCount 1
        $v.Warnings[0] | Should -Match 'Signed after the key was retired'
        ($w -join ' ') | Should -Match 'Signed after the key was retired'
        # The backup made before the rotation is fine.
        ($b1 | Test-HubBackupSignature -TrustedSignerKeyPath $trusted -KeyMetadataPath $new.KeyMetadataPath).Warnings | Should -BeNullOrEmpty
    }
}
