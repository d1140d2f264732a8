#requires -Version 7.4
# PowerShell ergonomics (issue 13): per-item errors scripts can handle, one not-found error, case-insensitive
# ValidateSets, honest results (times with a zone, named sizes, readable JSON/CSV, a restore test that says what it
# did not test), durations in either form, and no parameter that is silently ignored.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module $env:HUBDR_MODULE_PATH -Force
    $script:work = New-TestDirectory 'hubdr-ergo'
    $script:keys = New-TestKeySet -Path (Join-Path $work 'keys')
    $script:store = Join-Path $work 'store'
    $null = New-Item -ItemType Directory $store
    $script:db = Join-Path $work 'hub.db'
    New-SampleSqliteHub -Path $db -Rows 40
    $script:common = @{
        Store = $store; Hub = 'contoso'; DatabaseEngine = 'sqlite'; ConnectionString = $db
        RecipientKeyPath = $keys.Ops.PublicKeyPath; SigningKeyPath = $keys.Ops.SecretKeyPath; Passphrase = $keys.Passphrase
    }
    $script:backups = @(1..3 | ForEach-Object { New-HubBackup @common })
    $script:keyArgs = @{ SecretKeyPath = $keys.Ops.SecretKeyPath; Passphrase = $keys.Passphrase; TrustedSignerKeyPath = $keys.Ops.PublicKeyPath }
}

AfterAll { Remove-Item $script:work -Recurse -Force -ErrorAction SilentlyContinue }

Describe 'Per-item failures are non-terminating; the cmdlet goes on with the next item' {
    It 'Restore-HubBackup: three backups into one target keep the first result and report the other two, silenced by -ErrorAction' {
        $target = Join-Path $work 'same.db'
        $ev = $null
        $results = @(Get-HubBackup -Store $store -Hub contoso | Select-Object -First 3 |
            Restore-HubBackup -Target $target @keyArgs -ErrorAction SilentlyContinue -ErrorVariable ev)
        $results.Count | Should -Be 1 -Because 'the first restore succeeded and its result must not be lost'
        $results[0].Succeeded | Should -BeTrue
        $ev.Count | Should -Be 2 -Because 'the second AND the third backup were processed'
        foreach ($e in $ev) { Assert-HubError $e 'RestoreTargetNotEmpty' 'ResourceExists' }
    }

    It 'Test-HubBackupSignature: a missing backup among existing ones is one error; the others are still verified' {
        $items = @(
            [pscustomobject]@{ Store = $store; Hub = 'contoso'; BackupId = $backups[0].BackupId }
            [pscustomobject]@{ Store = $store; Hub = 'contoso'; BackupId = '20200101T000000Z-000000' }
            [pscustomobject]@{ Store = $store; Hub = 'contoso'; BackupId = $backups[1].BackupId }
        )
        $o = Get-HubOutcome { $items | Test-HubBackupSignature -TrustedSignerKeyPath $keys.Ops.PublicKeyPath -ErrorAction Continue }
        @($o.Objects).Count | Should -Be 2
        $o.Objects.Status | Should -Be @('Valid', 'Valid')
        @($o.Errors).Count | Should -Be 1
        Assert-HubError $o.Errors[0] 'BackupNotFound' 'ObjectNotFound'
    }

    It 'a failure that makes every item pointless (an unreadable key) stays terminating, whatever -ErrorAction says' {
        $thrown = $null
        try {
            $backups | Restore-HubBackup -Target (Join-Path $work 'k.db') -SecretKeyPath (Join-Path $work 'no-such-key.asc') -Passphrase $keys.Passphrase `
                -TrustedSignerKeyPath $keys.Ops.PublicKeyPath -ErrorAction SilentlyContinue
        }
        catch { $thrown = $_ }
        $thrown | Should -Not -BeNullOrEmpty
        Assert-HubError $thrown 'KeyFileNotFound' 'ObjectNotFound'
    }

    It 'New-HubBackup: a failed backup is a non-terminating error ($? is false, the script goes on)' {
        $c = $common.Clone(); $c.ConnectionString = Join-Path $work 'missing.db'
        $o = Get-HubOutcome { New-HubBackup @c -ErrorAction Continue; 'after' }
        $o.Objects | Should -Be 'after'
        Assert-HubError $o.Errors[0] 'DatabaseNotFound' 'ObjectNotFound'
    }

    It 'Remove-ExpiredHubBackup: a hub whose plan fails does not stop the other hub' {
        $s = Join-Path $work 'two-hubs'; $null = New-Item -ItemType Directory $s
        $c = $common.Clone(); $c.Store = $s
        $a = New-HubBackup @c
        $c.Hub = 'fabrikam'; $f = New-HubBackup @c
        # A piped backup object of a hub name the store refuses: one error, the good hub is still planned.
        $bad = [pscustomobject]@{ Store = $s; Hub = 'bad hub!'; BackupId = 'x' }
        $o = Get-HubOutcome { @($bad, [pscustomobject]@{ Store = $s; Hub = 'fabrikam'; BackupId = $f.BackupId }) | Remove-ExpiredHubBackup -KeepLast 5 -WhatIf -ErrorAction Continue }
        @($o.Errors).Count | Should -Be 1
        $o.Errors[0].FullyQualifiedErrorId | Should -BeLike 'HubNameInvalid,*'
        ($o.Objects | Where-Object { $_ -is [HubDr.Cmdlets.HubRetentionDecision] }).BackupId | Should -Be $f.BackupId
        $a | Should -Not -BeNullOrEmpty
    }
}

Describe 'A backup id that does not exist is BackupNotFound everywhere' {
    It 'Get-HubBackup: a literal id is an error, a wildcard that matches nothing is not (like Get-Item)' {
        $e = Get-HubError { Get-HubBackup -Store $store -Hub contoso -BackupId '20200101T000000Z-000000' }
        Assert-HubError $e 'BackupNotFound' 'ObjectNotFound'
        $o = Get-HubOutcome { Get-HubBackup -Store $store -Hub contoso -BackupId '2020*' -ErrorAction Continue }
        $o.Objects | Should -BeNullOrEmpty
        $o.Errors | Should -BeNullOrEmpty
        (Get-HubBackup -Store $store -BackupId $backups[0].BackupId).BackupId | Should -Be $backups[0].BackupId
    }

    It 'Test-HubBackupSignature, Restore-HubBackup and Invoke-HubRestoreTest name the missing backup' {
        $id = '20200101T000000Z-000000'
        $e1 = Get-HubError { Test-HubBackupSignature -Store $store -Hub contoso -BackupId $id -TrustedSignerKeyPath $keys.Ops.PublicKeyPath }
        Assert-HubError $e1 'BackupNotFound' 'ObjectNotFound'
        "$e1" | Should -Match $id
        $target = Join-Path $work 'nf.db'
        $e2 = Get-HubError { Restore-HubBackup -Store $store -Hub contoso -BackupId $id -Target $target -TargetEngine sqlite @keyArgs }
        Assert-HubError $e2 'BackupNotFound' 'ObjectNotFound'
        Test-Path $target | Should -BeFalse
        $e3 = Get-HubError { Invoke-HubRestoreTest -Store $store -Hub contoso -BackupId $id @keyArgs -DatabaseOnly -NoReport }
        Assert-HubError $e3 'BackupNotFound' 'ObjectNotFound'
    }
}

Describe 'ValidateSet values in any case' {
    It 'New-HubBackupKey -Algorithm ECDSAP256 (ValidateSet is case-insensitive, so the value must parse the same way)' {
        # The issue's RSA3072 fails the same way (Enum.Parse of a differently-cased name); ECDSA keeps the test fast.
        $k = New-HubBackupKey -UserId 'Case <case@example.test>' -Algorithm ECDSAP256 -Passphrase $keys.Passphrase -OutputPath (Join-Path $work 'ecdsa')
        $k.Algorithm | Should -Match 'P-256'
    }

    It 'New-HubBackup -DatabaseEngine SQLITE -Compression GZIP and Restore-HubBackup -TargetEngine SQLite' {
        $c = $common.Clone(); $c.DatabaseEngine = 'SQLITE'
        $b = New-HubBackup @c -Compression GZIP
        $b.Engine | Should -Be 'sqlite'
        $b.Compression | Should -Be 'gzip'
        (Restore-HubBackup -Store $store -Hub contoso -BackupId $b.BackupId -Target (Join-Path $work 'case.db') -TargetEngine SQLite @keyArgs).Succeeded | Should -BeTrue
    }
}

Describe 'Honest results' {
    It 'Created and every other time compare correctly with Get-Date in Asia/Tokyo, and show their zone' {
        $out = Invoke-ChildPwsh -Environment @{ TZ = 'Asia/Tokyo' } -Script @"
Import-Module '$($env:HUBDR_MODULE_PATH)'
`$all = @(Get-HubBackup -Store '$store' -Hub contoso)
@(`$all | Where-Object Created -gt (Get-Date).AddHours(-1)).Count
`$all.Count
`$all[0].Created.Offset.TotalHours
@(Get-HubBackup -Store '$store' -Hub contoso -Since (Get-Date).AddHours(-1)).Count
@(Get-HubBackup -Store '$store' -Hub contoso -Since ([datetime]::UtcNow.AddHours(-1))).Count
@(Get-HubBackup -Store '$store' -Hub contoso -Since ([DateTimeOffset]::Now.AddHours(1))).Count
(Get-HubBackup -Store '$store' -Hub contoso -Latest | Format-Table | Out-String) -match '\+09:00'
"@
        $count = [int]$out[1]
        $count | Should -BeGreaterOrEqual 3
        [int]$out[0] | Should -Be $count -Because 'every backup was made minutes ago'
        [double]$out[2] | Should -Be 9 -Because 'times are shown in local time, with the zone'
        [int]$out[3] | Should -Be $count -Because '-Since with a local DateTime'
        [int]$out[4] | Should -Be $count -Because '-Since with a UTC DateTime'
        [int]$out[5] | Should -Be 0 -Because '-Since with a DateTimeOffset in the future'
        $out[6] | Should -Be 'True'
    }

    It 'ArchiveSize and StoredSize mean the same thing from New-HubBackup and from Get-HubBackup' {
        $b = $backups[0]
        $listed = Get-HubBackup -Store $store -Hub contoso -BackupId $b.BackupId
        $folder = Join-Path $store "contoso/$($b.BackupId)"
        $archive = (Get-ChildItem $folder -Filter 'archive.tar*.gpg').Length
        $all = (Get-ChildItem $folder -File | Measure-Object Length -Sum).Sum
        $b.ArchiveSize | Should -Be $archive
        $listed.ArchiveSize | Should -Be $archive
        $b.StoredSize | Should -Be $all
        $listed.StoredSize | Should -Be $all
        $b.PSObject.Properties.Name | Should -Not -Contain 'Size'
    }

    It 'readable ToString, list views, Export-Csv and ConvertTo-Json' {
        $r = Restore-HubBackup -Store $store -Hub contoso -BackupId $backups[0].BackupId -Target (Join-Path $work 'fmt.db') -TargetEngine sqlite @keyArgs
        "$($r.RowCounts[0])" | Should -Match '^\w+=\d+$'
        ($r | Format-List | Out-String) | Should -Not -Match 'HubDr\.Cmdlets\.HubRowCount'
        ($r | Format-List | Out-String) | Should -Match 'RowCounts\s+: \{\w+=\d+'
        $csv = Join-Path $work 'backups.csv'
        Get-HubBackup -Store $store -Hub contoso | Export-Csv $csv
        (Get-Content $csv -Raw) | Should -Not -Match 'System\.(String|Object)\[\]'
        (Import-Csv $csv)[0].RecipientKeyIds | Should -Be $backups[0].RecipientKeyIds[0]
        $rc = Join-Path $work 'restore.csv'
        $r | Export-Csv $rc
        (Import-Csv $rc).RowCounts | Should -Match '^(\w+=\d+; )+\w+=\d+$'
        $json = $r | ConvertTo-Json -Depth 4 | ConvertFrom-Json
        $json.DurationSeconds | Should -BeOfType [double]
        $json.RowCounts.Count | Should -Be $r.RowCounts.Count
        ($r | ConvertTo-Json -Depth 4) | Should -Not -Match '"Ticks"|TotalMilliseconds'
        $t = $backups[0] | Test-HubBackupSignature -TrustedSignerKeyPath $keys.Ops.PublicKeyPath
        ($t | ConvertTo-Json -Depth 3) | Should -Not -Match '"Ticks"'
        $b = ($backups[0] | ConvertTo-Json | ConvertFrom-Json)
        [DateTimeOffset]$b.Created | Should -Be $backups[0].Created
    }

    It 'Invoke-HubRestoreTest without a service shows the skipped steps and fails; -DatabaseOnly passes as "database only"' {
        $o = Get-HubOutcome { Invoke-HubRestoreTest -Store $store -Hub contoso @keyArgs -NoReport -ErrorAction Continue }
        $r = $o.Objects | Where-Object { $_ -is [HubDr.Cmdlets.HubRestoreTestResult] }
        $r.Passed | Should -BeFalse
        $r.Verdict | Should -Be 'Failed'
        $skipped = $r.Steps | Where-Object Skipped
        $skipped.Kind | Should -Contain 'service'
        $skipped.Kind | Should -Contain 'http'
        ($r.Steps | Where-Object Kind -eq 'rto').Name | Should -Not -Match 'operable'
        Assert-HubError $o.Errors[0] 'RestoreTestFailed'
        "$($o.Errors[0])" | Should -Match 'application was not tested'
        ($r | Format-Table | Out-String -Width 200) | Should -Match 'skip'

        $d = Invoke-HubRestoreTest -Store $store -Hub contoso @keyArgs -NoReport -DatabaseOnly
        $d.Passed | Should -BeTrue
        $d.DatabaseOnly | Should -BeTrue
        $d.Verdict | Should -Be 'Passed (database only)'
        ($d.Steps | Where-Object Skipped).Kind | Should -Contain 'http'
        ($d | Format-Table | Out-String -Width 200) | Should -Match 'DB only'
    }

    It 'Restore-HubBackup has no -Jobs (it was ignored: restores stream into pg_restore with one job)' {
        (Get-Command Restore-HubBackup).Parameters.ContainsKey('Jobs') | Should -BeFalse
    }
}

Describe 'Durations in either form' {
    It 'restic units, TimeSpan text and [timespan] give the same retention plan' {
        $plans = foreach ($d in '14d', '14.00:00:00', [timespan]::FromDays(14), '2w') {
            (Remove-ExpiredHubBackup -Store $store -Hub contoso -KeepWithin $d -TrustedSignerKeyPath $keys.Ops.PublicKeyPath -WhatIf |
                ForEach-Object { "$($_.BackupId) $($_.Action) $($_.Reasons)" }) -join '|'
        }
        $plans | Select-Object -Unique | Should -HaveCount 1
        $plans[0] | Should -Match 'within 14d'
    }

    It 'an elapsed time takes 90min or 01:30:00, and refuses 90m (months) with a clear error' {
        $r = Invoke-HubRestoreTest -Store $store -Hub contoso @keyArgs -NoReport -DatabaseOnly -RtoTarget 90min -RpoTarget '01:30:00' -MaxBackupAge 1d
        $r.RtoTargetSeconds | Should -Be 5400
        $r.RpoTargetSeconds | Should -Be 5400
        $e = Get-HubError { Invoke-HubRestoreTest -Store $store -Hub contoso @keyArgs -NoReport -DatabaseOnly -RtoTarget 90m }
        Assert-HubError $e 'DurationInvalid' 'InvalidArgument'
        "$e" | Should -Match '90min'
        { Remove-ExpiredHubBackup -Store $store -KeepWithin 'soon' -WhatIf } | Should -Throw -ExpectedMessage "*'soon' is not a duration*14d*"
    }
}

Describe 'docs/errors.md' {
    It 'lists every ErrorId thrown in src, with the scope (terminating or per item) ErrorScope gives it' {
        $root = Join-Path $PSScriptRoot '../..'
        $ids = Get-ChildItem (Join-Path $root 'src') -Recurse -Filter *.cs | Where-Object FullName -notmatch '[\\/](bin|obj)[\\/]' |
            Select-String -Pattern '"([A-Z][A-Za-z]+)",\s*(Engine\.)?HubErrorCategory' -AllMatches |
            ForEach-Object { $_.Matches } | ForEach-Object { $_.Groups[1].Value } | Sort-Object -Unique
        $ids.Count | Should -BeGreaterThan 100
        $doc = Get-Content (Join-Path $root 'docs/errors.md')
        foreach ($id in $ids) {
            $rows = @($doc | Where-Object { $_.StartsWith("| ``$id`` |") })  # not -like: a backtick is its escape character
            $rows | Should -Not -BeNullOrEmpty -Because "$id is thrown in src"
            $scope = if ([HubDr.Cmdlets.Infrastructure.ErrorScope]::TerminatingIds.Contains($id)) { 'terminating' } else { 'per item' }
            foreach ($r in $rows) { $r | Should -Match "\| $scope \|" -Because "$id is $scope" }
        }
    }
}
