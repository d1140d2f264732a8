#requires -Version 7.4
# The full backup → list → verify → restore → retention round trip against real S3 and Azure Blob emulators
# (started by build.ps1 Test, tests/emulators), and a standard client (AWS CLI) reading what HubDr wrote.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module $env:HUBDR_MODULE_PATH -Force
    foreach ($v in 'HUBDR_TEST_S3_ENDPOINT', 'HUBDR_TEST_AZURE_CONNECTION_STRING', 'HUBDR_TEST_AZURE_BLOB_ENDPOINT') {
        [Environment]::GetEnvironmentVariable($v) | Should -Not -BeNullOrEmpty -Because "build.ps1 Test starts the emulators and sets $v"
    }
    $script:work = New-TestDirectory 'hubdr-stores'
    $script:keys = New-TestKeySet -Path (Join-Path $work 'keys')
    $script:db = Join-Path $work 'hub.db'
    New-SampleSqliteHub -Path $db -Rows 150
    $script:aws = if (Test-Path /usr/bin/aws) { '/usr/bin/aws' } else { (Get-Command aws).Source }
    $script:s3Cred = [pscredential]::new($env:HUBDR_TEST_S3_ACCESS_KEY, (ConvertTo-TestSecureString $env:HUBDR_TEST_S3_SECRET_KEY))
    $script:keyArgs = @{ SecretKeyPath = $keys.Ops.SecretKeyPath; Passphrase = $keys.Passphrase; TrustedSignerKeyPath = $keys.Ops.PublicKeyPath }
    $script:backupArgs = @{ Hub = 'contoso'; DatabaseEngine = 'sqlite'; ConnectionString = $db; RecipientKeyPath = $keys.Ops.PublicKeyPath; SigningKeyPath = $keys.Ops.SecretKeyPath; Passphrase = $keys.Passphrase }

    function script:Invoke-Aws([string[]] $Arguments) {
        $env:AWS_ACCESS_KEY_ID = $env:HUBDR_TEST_S3_ACCESS_KEY; $env:AWS_SECRET_ACCESS_KEY = $env:HUBDR_TEST_S3_SECRET_KEY; $env:AWS_DEFAULT_REGION = 'us-east-1'
        try { $out = & $aws --endpoint-url $env:HUBDR_TEST_S3_ENDPOINT @Arguments 2>&1; if ($LASTEXITCODE) { throw "aws $Arguments failed: $out" }; $out }
        finally { Remove-Item Env:AWS_ACCESS_KEY_ID, Env:AWS_SECRET_ACCESS_KEY, Env:AWS_DEFAULT_REGION -ErrorAction SilentlyContinue }
    }

    # Azure "Create Container" with SharedKey auth, straight over HTTP (no Azure SDK in the test process).
    function script:New-AzuriteContainer([string] $Name) {
        $parts = @{}; foreach ($kv in $env:HUBDR_TEST_AZURE_CONNECTION_STRING.Split(';') | Where-Object { $_ }) { $i = $kv.IndexOf('='); $parts[$kv.Substring(0, $i)] = $kv.Substring($i + 1) }
        $account = $parts.AccountName; $key = [Convert]::FromBase64String($parts.AccountKey)
        $uri = [Uri]"$($parts.BlobEndpoint.TrimEnd('/'))/$Name`?restype=container"
        $date = [DateTime]::UtcNow.ToString('R'); $version = '2021-08-06'
        $toSign = "PUT`n`n`n`n`n`n`n`n`n`n`n`nx-ms-date:$date`nx-ms-version:$version`n/$account$($uri.AbsolutePath)`nrestype:container"
        $sig = [Convert]::ToBase64String([Security.Cryptography.HMACSHA256]::new($key).ComputeHash([Text.Encoding]::UTF8.GetBytes($toSign)))
        Invoke-WebRequest -Method Put -Uri $uri -Headers @{ 'x-ms-date' = $date; 'x-ms-version' = $version; Authorization = "SharedKey ${account}:$sig" } -SkipHttpErrorCheck | Out-Null
    }
}

AfterAll { Remove-Item $script:work -Recurse -Force -ErrorAction SilentlyContinue }

Describe 'S3-compatible store' {
    BeforeAll {
        $script:bucket = 'hubdr-pester-' + (Get-Random)
        Invoke-Aws @('s3api', 'create-bucket', '--bucket', $bucket) | Out-Null
        $script:s3 = @{ Store = "s3://$bucket/prod"; StoreEndpoint = $env:HUBDR_TEST_S3_ENDPOINT; StoreCredential = $s3Cred }
    }

    It 'backs up, lists, verifies and restores through S3' {
        $b = New-HubBackup @s3 @backupArgs
        $b.Store | Should -Be "s3://$bucket/prod"
        $listed = Get-HubBackup @s3 -Hub contoso -Latest
        $listed.BackupId | Should -Be $b.BackupId
        $listed.StoredSize | Should -BeGreaterThan $listed.ArchiveSize
        ($listed | Test-HubBackupSignature -TrustedSignerKeyPath $keys.Ops.PublicKeyPath).IsValid | Should -BeTrue
        $target = Join-Path $work 's3-restored.db'
        $r = $listed | Test-HubBackupSignature -TrustedSignerKeyPath $keys.Ops.PublicKeyPath | Restore-HubBackup -Target $target @keyArgs
        $r.Succeeded | Should -BeTrue
        (Get-SqliteRowCounts $target) | ConvertTo-Json | Should -Be ((Get-SqliteRowCounts $db) | ConvertTo-Json)
    }

    It 'writes the documented layout, readable by the AWS CLI' {
        $b = Get-HubBackup @s3 -Hub contoso -Latest
        $keysListed = (Invoke-Aws @('s3', 'ls', '--recursive', "s3://$bucket/prod/contoso/$($b.BackupId)/")) -join "`n"
        $keysListed | Should -Match "prod/contoso/$($b.BackupId)/catalog.json"
        $keysListed | Should -Match "prod/contoso/$($b.BackupId)/archive.tar.zst.gpg.sig"
        $local = Join-Path $work 'catalog-from-aws.json'
        Invoke-Aws @('s3', 'cp', "s3://$bucket/prod/contoso/$($b.BackupId)/catalog.json", $local) | Out-Null
        (Get-Content $local -Raw | ConvertFrom-Json).archiveSha256 | Should -Be $b.ArchiveSha256
    }

    It 'applies retention on S3 (catalog first, batched deletes)' {
        $null = New-HubBackup @s3 @backupArgs
        $null = New-HubBackup @s3 @backupArgs
        $d = Remove-ExpiredHubBackup @s3 -Hub contoso -KeepLast 1 -TrustedSignerKeyPath $keys.Ops.PublicKeyPath -Confirm:$false
        ($d | Where-Object Action -eq 'Removed').Count | Should -Be 2
        (Get-HubBackup @s3 -Hub contoso -IncludeIncomplete).Count | Should -Be 1
    }

    It 'fails clearly on a missing bucket' {
        Assert-HubError (Get-HubError { Get-HubBackup -Store 's3://no-such-bucket-hubdr/x' -StoreEndpoint $env:HUBDR_TEST_S3_ENDPOINT -StoreCredential $s3Cred }) 'StoreNotFound' 'ObjectNotFound'
    }
}

Describe 'Azure Blob store' {
    BeforeAll {
        $script:container = 'hubdr-pester-' + (Get-Random)
        New-AzuriteContainer $container
        $script:az = @{ Store = "$($env:HUBDR_TEST_AZURE_BLOB_ENDPOINT)/$container/prod"; StoreConnectionString = (ConvertTo-TestSecureString $env:HUBDR_TEST_AZURE_CONNECTION_STRING) }
    }

    It 'backs up, lists, verifies and restores through Azure Blob' {
        $b = New-HubBackup @az @backupArgs
        $listed = Get-HubBackup @az -Hub contoso -Latest
        $listed.BackupId | Should -Be $b.BackupId
        ($listed | Test-HubBackupSignature -TrustedSignerKeyPath $keys.Ops.PublicKeyPath).Status | Should -Be 'Valid'
        $target = Join-Path $work 'az-restored.db'
        $r = $listed | Restore-HubBackup -Target $target @keyArgs
        $r.Succeeded | Should -BeTrue
        (Get-SqliteRowCounts $target) | ConvertTo-Json | Should -Be ((Get-SqliteRowCounts $db) | ConvertTo-Json)
    }

    It 'runs retention on Azure' {
        $null = New-HubBackup @az @backupArgs
        $d = Remove-ExpiredHubBackup @az -Hub contoso -KeepLast 1 -TrustedSignerKeyPath $keys.Ops.PublicKeyPath -Confirm:$false
        ($d | Where-Object Action -eq 'Removed').Count | Should -Be 1
        (Get-HubBackup @az -Hub contoso).Count | Should -Be 1
    }

    It 'fails clearly on a missing container' {
        $missing = @{ Store = "$($env:HUBDR_TEST_AZURE_BLOB_ENDPOINT)/no-such-container/x"; StoreConnectionString = $az.StoreConnectionString }
        Assert-HubError (Get-HubError { Get-HubBackup @missing }) 'StoreNotFound' 'ObjectNotFound'
    }
}
