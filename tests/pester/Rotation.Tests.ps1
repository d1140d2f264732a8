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
}
