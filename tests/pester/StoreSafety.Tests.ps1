#requires -Version 7.4
# Trust: HubDr only ever lists or deletes what HubDr wrote, explicit retention policy, and the store faults a hostile
# new user finds: a mistyped -Store, a full or read-only disk (a real tmpfs), kill -9 mid-backup (a real child pwsh),
# retention racing a running backup on the S3 emulator, stale multipart uploads, and failed runs' audit records.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module $env:HUBDR_MODULE_PATH -Force
    $script:work = New-TestDirectory 'hubdr-storesafety'
    $script:keys = New-TestKeySet -Path (Join-Path $work 'keys')
    $script:db = Join-Path $work 'hub.db'
    New-SampleSqliteHub -Path $db -Rows 50
    # A database big enough that a backup is mid-stream for a few seconds (random blobs do not compress).
    $script:bigDb = Join-Path $work 'big.db'
    Invoke-Sqlite -Database $bigDb -Sql "CREATE TABLE blobs(id INTEGER PRIMARY KEY, b BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 12000) INSERT INTO blobs SELECT i, randomblob(10000) FROM n;" | Out-Null
    $script:backupArgs = @{ DatabaseEngine = 'sqlite'; RecipientKeyPath = $keys.Ops.PublicKeyPath; SigningKeyPath = $keys.Ops.SecretKeyPath; Passphrase = $keys.Passphrase }
    $script:trusted = @{ TrustedSignerKeyPath = $keys.Ops.PublicKeyPath }
    $script:s3Cred = [pscredential]::new($env:HUBDR_TEST_S3_ACCESS_KEY, (ConvertTo-TestSecureString $env:HUBDR_TEST_S3_SECRET_KEY))
    $script:aws = if (Test-Path /usr/bin/aws) { '/usr/bin/aws' } else { (Get-Command aws -ErrorAction SilentlyContinue).Source }

    function script:New-Store([string] $Name) { $s = Join-Path $work $Name; $null = New-Item -ItemType Directory $s; $s }
    function script:Get-Tree([string] $Path) { @(Get-ChildItem $Path -Recurse -Force | ForEach-Object { $_.FullName.Substring($Path.Length) + '|' + ($_.PSIsContainer ? '' : $_.Length) } | Sort-Object) }
    function script:Invoke-Aws([string[]] $Arguments) {
        $env:AWS_ACCESS_KEY_ID = $env:HUBDR_TEST_S3_ACCESS_KEY; $env:AWS_SECRET_ACCESS_KEY = $env:HUBDR_TEST_S3_SECRET_KEY; $env:AWS_DEFAULT_REGION = 'us-east-1'
        try { $out = & $aws --endpoint-url $env:HUBDR_TEST_S3_ENDPOINT @Arguments 2>&1; if ($LASTEXITCODE) { throw "aws $Arguments failed: $out" }; $out }
        finally { Remove-Item Env:AWS_ACCESS_KEY_ID, Env:AWS_SECRET_ACCESS_KEY, Env:AWS_DEFAULT_REGION -ErrorAction SilentlyContinue }
    }
    function script:Get-S3Keys([string] $Bucket) {
        $json = Invoke-Aws @('s3api', 'list-objects-v2', '--bucket', $Bucket, '--output', 'json')
        if (-not "$json".Trim()) { return @() }
        @(($json | Out-String | ConvertFrom-Json).Contents | ForEach-Object Key | Sort-Object)
    }
    function script:Get-S3Uploads([string] $Bucket) {
        $json = Invoke-Aws @('s3api', 'list-multipart-uploads', '--bucket', $Bucket, '--output', 'json')
        if (-not "$json".Trim()) { return @() }
        @(($json | Out-String | ConvertFrom-Json).Uploads | Where-Object { $_ })
    }
    # A child pwsh (a separate process, so it can be killed with SIGKILL) running $Script with the module loaded.
    function script:Start-ChildPwsh([string] $Script) {
        $file = Join-Path $work ('child-' + [guid]::NewGuid().ToString('N') + '.ps1')
        Set-Content -LiteralPath $file -Value ("Import-Module `$env:HUBDR_MODULE_PATH`n`$ErrorActionPreference = 'Stop'`n" + $Script)
        $pwsh = Get-PwshCommand
        $psi = [Diagnostics.ProcessStartInfo]::new($pwsh[0])
        foreach ($a in @(@($pwsh | Select-Object -Skip 1) + @('-NoProfile', '-NonInteractive', '-File', $file))) { $psi.ArgumentList.Add($a) }
        $psi.UseShellExecute = $false; $psi.RedirectStandardOutput = $true; $psi.RedirectStandardError = $true
        $psi.Environment['HUBDR_KEY_PASSPHRASE'] = $keys.PlainPassphrase
        $p = [Diagnostics.Process]::Start($psi)
        [pscustomobject]@{ Process = $p; Out = $p.StandardOutput.ReadToEndAsync(); Err = $p.StandardError.ReadToEndAsync() }
    }
    function script:Wait-Until([scriptblock] $Condition, [int] $TimeoutSeconds = 60, [string] $Because) {
        $deadline = [datetime]::UtcNow.AddSeconds($TimeoutSeconds)
        while (-not (& $Condition)) {
            if ([datetime]::UtcNow -gt $deadline) { throw "Timed out: $Because" }
            Start-Sleep -Milliseconds 100
        }
    }
    # Child processes get the key files under predictable names.
    $script:keyBase = Join-Path $work 'child-ops'
    Copy-Item $keys.Ops.PublicKeyPath "$keyBase.pub"; Copy-Item $keys.Ops.SecretKeyPath "$keyBase.sec"
    $script:childBackup = @'
New-HubBackup -Store '{1}' -Hub '{2}' -DatabaseEngine sqlite -ConnectionString '{3}' -Compression none -RecipientKeyPath '{0}.pub' -SigningKeyPath '{0}.sec' {4} | ForEach-Object {{ "OK $($_.BackupId)" }}
'@
}

AfterAll { Remove-Item $script:work -Recurse -Force -ErrorAction SilentlyContinue }

Describe 'A location HubDr did not write is never treated as a store' {
    BeforeAll {
        # A photo folder (with a hub-like and a backup-id-like folder name) and a source tree with .git objects.
        $script:photos = New-Store 'photos'
        foreach ($f in 'holiday/2024/img_0001.jpg', 'holiday/20240101T000000Z-abcdef/img_0002.jpg', 'family/archive.tar.gpg') {
            $p = Join-Path $photos $f; $null = New-Item -ItemType Directory (Split-Path $p) -Force; [IO.File]::WriteAllBytes($p, [byte[]](1..200))
        }
        (Get-ChildItem $photos -Recurse -File) | ForEach-Object { $_.LastWriteTimeUtc = [datetime]::UtcNow.AddDays(-30) }
        $script:srcTree = New-Store 'srctree'
        foreach ($f in '.git/objects/ab/cdef0123', '.git/HEAD', 'src/HubDr.Engine/Stores/IBackupStore.cs', 'src/HubDr.Engine/catalog.json', 'README.md') {
            $p = Join-Path $srcTree $f; $null = New-Item -ItemType Directory (Split-Path $p) -Force; 'text' | Set-Content $p
        }
    }

    It 'Get-HubBackup -IncludeIncomplete on <Name> fails with StoreNotInitialized and creates nothing' -ForEach @(@{ Name = 'photos' }, @{ Name = 'srctree' }) {
        $path = Join-Path $work $Name
        $before = Get-Tree $path
        Assert-HubError (Get-HubError { Get-HubBackup -Store $path -IncludeIncomplete }) 'StoreNotInitialized' 'InvalidOperation'
        Get-Tree $path | Should -Be $before
    }

    It 'Remove-ExpiredHubBackup on <Name> fails with StoreNotInitialized: nothing deleted, no _audit/, no marker' -ForEach @(@{ Name = 'photos'; Hub = 'holiday' }, @{ Name = 'srctree'; Hub = 'src' }) {
        $path = Join-Path $work $Name
        $before = Get-Tree $path
        $audit = Join-Path $work "$Name-audit.jsonl"
        $e = Get-HubError { Remove-ExpiredHubBackup -Store $path -Hub $Hub -KeepLast 1 -IncompleteGracePeriod 0 -Force -AuditLogPath $audit }
        Assert-HubError $e 'StoreNotInitialized' 'InvalidOperation'
        "$e" | Should -Match 'not a HubDr backup store'
        Get-Tree $path | Should -Be $before
        Test-Path (Join-Path $path '_audit') | Should -BeFalse
        Test-Path (Join-Path $path 'hubdr-store.json') | Should -BeFalse
        # Every hub at once, too.
        Assert-HubError (Get-HubError { Remove-ExpiredHubBackup -Store $path -UseRunbookPolicy -Force }) 'StoreNotInitialized'
        Get-Tree $path | Should -Be $before
    }

    It 'a failed restore from a foreign folder writes no audit record into it' {
        $before = Get-Tree $photos
        $e = Get-HubError { Restore-HubBackup -Store $photos -Hub holiday -BackupId '20240101T000000Z-abcdef' -Target (Join-Path $work 'never.db') -TargetEngine sqlite -SecretKeyPath $keys.Ops.SecretKeyPath -Passphrase $keys.Passphrase @trusted }
        $e | Should -Not -BeNullOrEmpty
        Get-Tree $photos | Should -Be $before
        Test-Path (Join-Path $photos '_audit') | Should -BeFalse
    }

    It 'an initialised store ignores folders that are not HubDr backups and never deletes a folder with foreign files' {
        $s = New-Store 'mixed'
        $b = New-HubBackup -Store $s -Hub contoso -ConnectionString $db @backupArgs
        Test-Path (Join-Path $s 'hubdr-store.json') | Should -BeTrue
        # Not backups at all: wrong folder names, or no HubDr object in a backup-id-shaped folder.
        foreach ($f in 'photos/2024/a.jpg', 'contoso/not-a-backup/archive.tar.zst.gpg', 'contoso/20240101T000000Z-111111/photo.jpg', 'Contoso/20240101T000000Z-222222/archive.tar.zst.gpg') {
            $p = Join-Path $s $f; $null = New-Item -ItemType Directory (Split-Path $p) -Force; 'x' | Set-Content $p
        }
        # An old incomplete backup folder that also holds someone's file.
        $mixed = Join-Path $s 'contoso/20240101T000000Z-333333'
        $null = New-Item -ItemType Directory $mixed
        'x' | Set-Content (Join-Path $mixed 'archive.tar.zst.gpg'); 'notes' | Set-Content (Join-Path $mixed 'my-notes.txt')
        Get-ChildItem $mixed | ForEach-Object { $_.LastWriteTimeUtc = [datetime]::UtcNow.AddDays(-30) }
        $listed = Get-HubBackup -Store $s -IncludeIncomplete
        @($listed.BackupId | Sort-Object) | Should -Be @('20240101T000000Z-333333', $b.BackupId | Sort-Object)
        $d = Remove-ExpiredHubBackup -Store $s -KeepLast 1 -IncompleteGracePeriod 0 -Force -WarningVariable warns -WarningAction SilentlyContinue
        ($d | Where-Object BackupId -eq '20240101T000000Z-333333').Action | Should -Be 'Keep'
        ($d | Where-Object BackupId -eq '20240101T000000Z-333333').Reasons -join ' ' | Should -Match 'did not write'
        ($warns -join ' ') | Should -Match 'my-notes.txt'
        Test-Path (Join-Path $mixed 'my-notes.txt') | Should -BeTrue
        Test-Path (Join-Path $mixed 'archive.tar.zst.gpg') | Should -BeTrue
        foreach ($f in 'photos/2024/a.jpg', 'contoso/not-a-backup/archive.tar.zst.gpg', 'contoso/20240101T000000Z-111111/photo.jpg', 'Contoso/20240101T000000Z-222222/archive.tar.zst.gpg') {
            Test-Path (Join-Path $s $f) | Should -BeTrue -Because $f
        }
    }

    It 'New-HubBackup into a folder of other files marks it, warns, and leaves those files alone' {
        $s = New-Store 'photos-then-backup'
        $null = New-Item -ItemType Directory (Join-Path $s 'holiday') ; 'x' | Set-Content (Join-Path $s 'holiday/img.jpg')
        $b = New-HubBackup -Store $s -Hub contoso -ConnectionString $db @backupArgs -WarningVariable w -WarningAction SilentlyContinue
        ($w -join ' ') | Should -Match 'HubDr did not write'
        (Get-HubBackup -Store $s -IncludeIncomplete).BackupId | Should -Be $b.BackupId
        Test-Path (Join-Path $s 'holiday/img.jpg') | Should -BeTrue
    }

    It 'refuses a foreign S3 prefix: nothing listed, deleted or created' {
        $bucket = 'hubdr-safety-' + (Get-Random)
        Invoke-Aws @('s3api', 'create-bucket', '--bucket', $bucket) | Out-Null
        $src = Join-Path $work 'foreign.bin'; [IO.File]::WriteAllBytes($src, [byte[]](1..100))
        foreach ($k in 'photos/holiday/img.jpg', 'photos/contoso/20240101T000000Z-abcdef/archive.tar.zst.gpg', 'photos/.git/objects/ab/cd') { Invoke-Aws @('s3', 'cp', $src, "s3://$bucket/$k") | Out-Null }
        $before = Get-S3Keys $bucket
        $s3 = @{ Store = "s3://$bucket/photos"; StoreEndpoint = $env:HUBDR_TEST_S3_ENDPOINT; StoreCredential = $s3Cred }
        Assert-HubError (Get-HubError { Get-HubBackup @s3 -IncludeIncomplete }) 'StoreNotInitialized'
        Assert-HubError (Get-HubError { Remove-ExpiredHubBackup @s3 -KeepLast 1 -IncompleteGracePeriod 0 -Force }) 'StoreNotInitialized'
        Get-S3Keys $bucket | Should -Be $before
    }
}

Describe 'A store written before the marker existed' {
    BeforeAll {
        # Produced by the current code, then the marker removed: exactly what an older HubDr left (the format is unchanged).
        $script:legacy = New-Store 'legacy'
        $script:old1 = New-HubBackup -Store $legacy -Hub contoso -ConnectionString $db @backupArgs
        $script:old2 = New-HubBackup -Store $legacy -Hub contoso -ConnectionString $db @backupArgs
        Remove-Item (Join-Path $legacy 'hubdr-store.json')
        Remove-Item (Join-Path $legacy '_audit') -Recurse -ErrorAction SilentlyContinue
    }

    It 'still lists, verifies and restores' {
        $list = Get-HubBackup -Store $legacy -Hub contoso
        @($list.BackupId | Sort-Object) | Should -Be @($old1.BackupId, $old2.BackupId | Sort-Object)
        ($list | Test-HubBackupSignature @trusted | Where-Object IsValid).Count | Should -Be 2
        $target = Join-Path $work 'legacy-restored.db'
        $r = Get-HubBackup -Store $legacy -Hub contoso -Latest | Restore-HubBackup -Target $target -SecretKeyPath $keys.Ops.SecretKeyPath -Passphrase $keys.Passphrase @trusted
        $r.Succeeded | Should -BeTrue
        Test-Path (Join-Path $legacy 'hubdr-store.json') | Should -BeFalse -Because 'listing and restoring never write'
    }

    It 'retention -WhatIf does not migrate it; a confirmed run does' {
        $null = Remove-ExpiredHubBackup -Store $legacy -KeepLast 5 @trusted -WhatIf
        Test-Path (Join-Path $legacy 'hubdr-store.json') | Should -BeFalse
        $d = Remove-ExpiredHubBackup -Store $legacy -KeepLast 5 @trusted -Force
        ($d | Where-Object Action -ne 'Keep') | Should -BeNullOrEmpty
        (Get-Content (Join-Path $legacy 'hubdr-store.json') -Raw | ConvertFrom-Json).createdBy | Should -Be 'Remove-ExpiredHubBackup'
    }

    It 'Initialize-HubBackupStore migrates a legacy store and New-HubBackup does too' {
        $l2 = New-Store 'legacy2'
        $null = Copy-BackupFolder -Store $legacy -Backup $old1 -Destination $l2
        $i = Initialize-HubBackupStore -Store $l2 -WhatIf
        $i | Should -BeNullOrEmpty
        Test-Path (Join-Path $l2 'hubdr-store.json') | Should -BeFalse
        (Initialize-HubBackupStore -Store $l2).Status | Should -Be 'Migrated'
        (Initialize-HubBackupStore -Store $l2).Status | Should -Be 'AlreadyInitialized'
        $l3 = New-Store 'legacy3'
        $null = Copy-BackupFolder -Store $legacy -Backup $old1 -Destination $l3
        $null = New-HubBackup -Store $l3 -Hub contoso -ConnectionString $db @backupArgs
        (Get-Content (Join-Path $l3 'hubdr-store.json') -Raw | ConvertFrom-Json).kind | Should -Be 'hubdr-store'
        (Get-HubBackup -Store $l3 -Hub contoso).Count | Should -Be 2
    }

    It 'Initialize-HubBackupStore makes an empty folder listable; an uninitialised empty folder is refused' {
        $e = New-Store 'empty'
        Assert-HubError (Get-HubError { Get-HubBackup -Store $e }) 'StoreNotInitialized'
        $r = Initialize-HubBackupStore -Store $e
        $r.Status | Should -Be 'Initialized'
        $r.StoreId | Should -Not -BeNullOrEmpty
        Get-HubBackup -Store $e | Should -BeNullOrEmpty
    }
}

Describe 'Remove-ExpiredHubBackup needs an explicit policy and confirmation' {
    BeforeAll {
        $script:ps = New-Store 'policy'
        $null = New-HubBackup -Store $ps -Hub contoso -ConnectionString $db @backupArgs
        $null = New-HubBackup -Store $ps -Hub contoso -ConnectionString $db @backupArgs
    }

    It 'has ConfirmImpact High and a -Force switch' {
        $attr = (Get-Command Remove-ExpiredHubBackup).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false)[0]
        $attr.ConfirmImpact | Should -Be 'High'
        (Get-Command Remove-ExpiredHubBackup).Parameters.ContainsKey('Force') | Should -BeTrue
    }

    It 'refuses to run without a policy (RetentionPolicyMissing) and deletes nothing' {
        Assert-HubError (Get-HubError { Remove-ExpiredHubBackup -Store $ps -Force }) 'RetentionPolicyMissing' 'InvalidArgument'
        $settings = Join-Path $work 'no-policy.psd1'
        "@{ Store = '$ps'; Retention = @{ TimeZone = 'UTC' } }" | Set-Content $settings
        Assert-HubError (Get-HubError { Remove-ExpiredHubBackup -SettingsPath $settings -Force }) 'RetentionPolicyMissing'
        (Get-HubBackup -Store $ps).Count | Should -Be 2
    }

    It 'applies the runbook policy only when asked, and not together with -Keep* rules' {
        $d = Remove-ExpiredHubBackup -Store $ps -UseRunbookPolicy -WhatIf
        $d.Count | Should -Be 2
        Assert-HubError (Get-HubError { Remove-ExpiredHubBackup -Store $ps -UseRunbookPolicy -KeepLast 1 -WhatIf }) 'RetentionPolicyConflict'
    }

    It 'warns when the grace period is shorter than a backup of the hub took' {
        $null = Remove-ExpiredHubBackup -Store $ps -KeepLast 5 -IncompleteGracePeriod 0 -WhatIf -WarningVariable w -WarningAction SilentlyContinue
        ($w -join ' ') | Should -Match 'shorter than its longest completed backup'
        $null = Remove-ExpiredHubBackup -Store $ps -KeepLast 5 -IncompleteGracePeriod 1.00:00:00 -WhatIf -WarningVariable w2 -WarningAction SilentlyContinue
        ($w2 -join ' ') | Should -Not -Match 'shorter than'
    }

    It 'prompts by default: a non-interactive session without -Force fails instead of deleting' {
        $out = try { Invoke-ChildPwsh -Script "Import-Module '$env:HUBDR_MODULE_PATH'; Remove-ExpiredHubBackup -Store '$ps' -KeepLast 1" } catch { "$_" }
        ($out -join "`n") | Should -Match 'prompt|confirm|NonInteractive|non-interactive'
        (Get-HubBackup -Store $ps).Count | Should -Be 2
        $d = Remove-ExpiredHubBackup -Store $ps -KeepLast 1 -Force
        ($d | Where-Object Action -eq 'Removed').Count | Should -Be 1
    }
}

Describe 'A full or read-only store (a real 50 MB tmpfs)' -Skip:(-not $IsLinux -or (& id -u) -ne '0') {
    BeforeAll {
        $script:mnt = New-TestDirectory 'hubdr-tmpfs'
        & /usr/bin/mount -t tmpfs -o size=50m tmpfs $mnt
        if ($LASTEXITCODE) { throw "mount tmpfs failed" }
        $script:auditFull = Join-Path $work 'full-audit.jsonl'
    }
    AfterAll { & /usr/bin/umount $script:mnt 2>$null; Remove-Item $script:mnt -Recurse -Force -ErrorAction SilentlyContinue }

    It 'fails with StoreFull, leaves no temp file, the audit record has the same ErrorId and the backup id' {
        $null = Initialize-HubBackupStore -Store $mnt
        $e = Get-HubError { New-HubBackup -Store $mnt -Hub contoso -ConnectionString $bigDb -Compression none @backupArgs -AuditLogPath $auditFull }
        Assert-HubError $e 'StoreFull' 'QuotaExceeded'
        @(Get-ChildItem $mnt -Recurse -Force -File | Where-Object Name -like '.hubdr-tmp-*') | Should -BeNullOrEmpty
        @(Get-ChildItem (Join-Path $mnt 'contoso') -ErrorAction SilentlyContinue) | Should -BeNullOrEmpty -Because 'the failed backup removed what it wrote'
        $rec = Get-Content $auditFull | ForEach-Object { $_ | ConvertFrom-Json } | Select-Object -Last 1
        $rec.outcome | Should -Be 'failure'
        $rec.errorId | Should -Be 'StoreFull'
        $rec.backupId | Should -Match '^\d{8}T\d{6}Z-[0-9a-f]{6}$'
        # The space is free again: the next (smaller) backup works.
        $b = New-HubBackup -Store $mnt -Hub contoso -ConnectionString $db @backupArgs -AuditLogPath $auditFull
        $b.Status | Should -Be 'Complete'
        (Get-HubBackup -Store $mnt -Hub contoso).BackupId | Should -Be $b.BackupId
    }

    It 'fails with StoreReadOnly on a read-only mount' {
        & /usr/bin/mount -o remount,ro $mnt
        try {
            $e = Get-HubError { New-HubBackup -Store $mnt -Hub contoso -ConnectionString $db @backupArgs -AuditLogPath $auditFull }
            Assert-HubError $e 'StoreReadOnly' 'PermissionDenied'
            $rec = Get-Content $auditFull | ForEach-Object { $_ | ConvertFrom-Json } | Select-Object -Last 1
            $rec.errorId | Should -Be 'StoreReadOnly'
            $rec.backupId | Should -Not -BeNullOrEmpty
        }
        finally { & /usr/bin/mount -o remount,rw $mnt }
    }
}

Describe 'kill -9 in the middle of a backup' {
    It 'leaves a temp file that -IncludeIncomplete shows and retention removes after the grace period (local folder)' {
        $s = New-Store 'killed'
        $null = Initialize-HubBackupStore -Store $s
        $child = Start-ChildPwsh ($childBackup -f $keyBase, $s, 'big', $bigDb, '')
        Wait-Until -Because 'the child writes its archive' -TimeoutSeconds 120 {
            @(Get-ChildItem (Join-Path $s 'big') -Recurse -Force -File -ErrorAction SilentlyContinue | Where-Object { $_.Name -like '.hubdr-tmp-*' -and $_.Length -gt 8MB }).Count -gt 0
        }
        $child.Process.Kill(); $child.Process.WaitForExit()
        $temp = @(Get-ChildItem (Join-Path $s 'big') -Recurse -Force -File | Where-Object Name -like '.hubdr-tmp-*')
        $temp.Count | Should -BeGreaterOrEqual 1
        $inc = Get-HubBackup -Store $s -Hub big -IncludeIncomplete
        $inc.Count | Should -Be 1
        $inc.Status | Should -Be 'Incomplete'
        $inc.StoredSize | Should -BeGreaterThan 8MB
        # Within the grace period it stays; afterwards it goes, temp file and all.
        $keep = Remove-ExpiredHubBackup -Store $s -Hub big -KeepLast 3 -Force
        $keep.Action | Should -Be 'Keep'
        $out = Invoke-ChildPwsh -Script "Import-Module '$env:HUBDR_MODULE_PATH'; Remove-ExpiredHubBackup -Store '$s' -Hub big -KeepLast 3 -IncompleteGracePeriod 0 -WhatIf | Out-Null"
        ($out -join "`n") | Should -Match ([regex]::Escape($temp[0].Name))
        $d = Remove-ExpiredHubBackup -Store $s -Hub big -KeepLast 3 -IncompleteGracePeriod 0 -Force
        $d.Action | Should -Be 'Removed'
        ($d.Reasons -join ' ') | Should -Match 'lease holder is gone'
        @(Get-ChildItem $s -Recurse -Force -File | Where-Object Name -like '.hubdr-tmp-*') | Should -BeNullOrEmpty
        Test-Path (Join-Path $s "big/$($inc.BackupId)") | Should -BeFalse
    }

    It 'leaves an open multipart upload that -WhatIf shows and retention aborts (S3)' {
        $bucket = 'hubdr-kill-' + (Get-Random)
        Invoke-Aws @('s3api', 'create-bucket', '--bucket', $bucket) | Out-Null
        $store = "s3://$bucket/prod"
        $s3 = @{ Store = $store; StoreEndpoint = $env:HUBDR_TEST_S3_ENDPOINT; StoreCredential = $s3Cred }
        $null = Initialize-HubBackupStore @s3
        $extra = "-StoreEndpoint '$($env:HUBDR_TEST_S3_ENDPOINT)' -StoreCredential ([pscredential]::new('$($env:HUBDR_TEST_S3_ACCESS_KEY)', (ConvertTo-SecureString '$($env:HUBDR_TEST_S3_SECRET_KEY)' -AsPlainText -Force)))"
        $child = Start-ChildPwsh ($childBackup -f $keyBase, $store, 'big', $bigDb, $extra)
        Wait-Until -Because 'the child starts a multipart upload' -TimeoutSeconds 120 { (Get-S3Uploads $bucket).Count -gt 0 }
        Start-Sleep -Milliseconds 500
        $child.Process.Kill(); $child.Process.WaitForExit()
        $uploads = Get-S3Uploads $bucket
        $uploads.Count | Should -Be 1
        $uploads[0].Key | Should -Match '^prod/big/\d{8}T\d{6}Z-[0-9a-f]{6}/archive\.tar\.gpg$'
        (Get-HubBackup @s3 -Hub big -IncludeIncomplete).Status | Should -Be 'Incomplete'
        $creds = "-StoreEndpoint '$($env:HUBDR_TEST_S3_ENDPOINT)' -StoreCredential ([pscredential]::new('$($env:HUBDR_TEST_S3_ACCESS_KEY)', (ConvertTo-SecureString '$($env:HUBDR_TEST_S3_SECRET_KEY)' -AsPlainText -Force)))"
        $out = Invoke-ChildPwsh -Script "Import-Module '$env:HUBDR_MODULE_PATH'; Remove-ExpiredHubBackup -Store '$store' $creds -Hub big -KeepLast 3 -IncompleteGracePeriod 0 -WhatIf | Out-Null"
        ($out -join "`n") | Should -Match 'multipart upload'
        ($out -join "`n") | Should -Match ([regex]::Escape($uploads[0].UploadId))
        (Get-S3Uploads $bucket).Count | Should -Be 1 -Because '-WhatIf aborts nothing'
        $d = Remove-ExpiredHubBackup @s3 -Hub big -KeepLast 3 -IncompleteGracePeriod 0 -Force
        $d.Action | Should -Be 'Removed'
        (Get-S3Uploads $bucket).Count | Should -Be 0
        @(Get-S3Keys $bucket | Where-Object { $_ -like 'prod/big/*' }) | Should -BeNullOrEmpty
    }
}

Describe 'Retention racing a running backup (S3 emulator)' {
    It 'never deletes a running backup, even with -IncompleteGracePeriod 0' {
        $bucket = 'hubdr-race-' + (Get-Random)
        Invoke-Aws @('s3api', 'create-bucket', '--bucket', $bucket) | Out-Null
        $store = "s3://$bucket/prod"
        $s3 = @{ Store = $store; StoreEndpoint = $env:HUBDR_TEST_S3_ENDPOINT; StoreCredential = $s3Cred }
        $null = New-HubBackup @s3 -Hub race -ConnectionString $db @backupArgs
        $extra = "-StoreEndpoint '$($env:HUBDR_TEST_S3_ENDPOINT)' -StoreCredential ([pscredential]::new('$($env:HUBDR_TEST_S3_ACCESS_KEY)', (ConvertTo-SecureString '$($env:HUBDR_TEST_S3_SECRET_KEY)' -AsPlainText -Force)))"
        $child = Start-ChildPwsh ($childBackup -f $keyBase, $store, 'race', $bigDb, $extra)
        $runs = 0; $sawRunning = $false
        while (-not $child.Process.HasExited -and $runs -lt 200) {
            $d = Remove-ExpiredHubBackup @s3 -Hub race -KeepLast 10 -IncompleteGracePeriod 0 -Force @trusted -WarningAction SilentlyContinue
            if ($d | Where-Object Status -eq 'Running') { $sawRunning = $true }
            $d | Where-Object Action -in 'Removed', 'Failed' | Should -BeNullOrEmpty
            $runs++
        }
        $child.Process.WaitForExit()
        $stdout = $child.Out.Result; $stderr = $child.Err.Result
        $child.Process.ExitCode | Should -Be 0 -Because $stderr
        $stdout | Should -Match 'OK (\d{8}T\d{6}Z-[0-9a-f]{6})'
        $id = [regex]::Match($stdout, 'OK (\S+)').Groups[1].Value
        $sawRunning | Should -BeTrue -Because "retention ran $runs times while the backup ran and saw its live lease"
        $b = Get-HubBackup @s3 -Hub race -BackupId $id
        $b.Status | Should -Be 'Complete'
        ($b | Test-HubBackupSignature @trusted).IsValid | Should -BeTrue
        @(Get-S3Keys $bucket | Where-Object { $_ -like "prod/race/$id/lease.json" }) | Should -BeNullOrEmpty -Because 'the lease is removed when the backup ends'
    }
}
