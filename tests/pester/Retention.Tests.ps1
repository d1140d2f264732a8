#requires -Version 7.4
# Remove-ExpiredHubBackup over a store holding two years of (re-dated, re-signed) backups.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module $env:HUBDR_MODULE_PATH -Force
    $script:work = New-TestDirectory 'hubdr-retention'
    $script:keys = New-TestKeySet -Path (Join-Path $work 'keys')
    $script:db = Join-Path $work 'hub.db'
    New-SampleSqliteHub -Path $db -Rows 10
    $script:gpgHome = New-GpgHome
    $null = Invoke-Gpg -GpgHome $gpgHome -Arguments @('--import', $keys.Ops.SecretKeyPath) -Passphrase $keys.PlainPassphrase

    function script:New-Store([string] $Name) {
        $s = Join-Path $work $Name; $null = New-Item -ItemType Directory $s; $s
    }
    function script:New-Template([string] $Store, [string] $Hub) {
        New-HubBackup -Store $Store -Hub $Hub -DatabaseEngine sqlite -ConnectionString $db -RecipientKeyPath $keys.Ops.PublicKeyPath -SigningKeyPath $keys.Ops.SecretKeyPath -Passphrase $keys.Passphrase
    }
    # A copy of a real backup re-dated to $When: new folder id, catalog rewritten and re-signed with the trusted key.
    function script:Add-DatedBackup([string] $Store, $Template, [datetime] $When, [hashtable] $Extra = @{}) {
        $id = $When.ToUniversalTime().ToString("yyyyMMdd'T'HHmmss'Z'") + '-' + ('{0:x6}' -f (Get-Random -Maximum 0xffffff))
        $src = Join-Path $Store "$($Template.Hub)/$($Template.BackupId)"
        $dst = Join-Path $Store "$($Template.Hub)/$id"
        $null = New-Item -ItemType Directory $dst
        Get-ChildItem $src | Where-Object Name -notlike 'catalog.json*' | Copy-Item -Destination $dst
        $cat = Get-Content (Join-Path $src 'catalog.json') -Raw | ConvertFrom-Json -AsHashtable
        $cat.backupId = $id; $cat.createdUtc = $When.ToUniversalTime().ToString('o'); $cat.completedUtc = $cat.createdUtc
        foreach ($k in $Extra.Keys) { $cat[$k] = $Extra[$k] }
        $catPath = Join-Path $dst 'catalog.json'
        $cat | ConvertTo-Json -Depth 5 | Set-Content $catPath -NoNewline
        $r = Invoke-Gpg -GpgHome $gpgHome -Passphrase $keys.PlainPassphrase -Arguments @('--local-user', $keys.Ops.Fingerprint, '--armor', '--detach-sign', '--output', "$catPath.sig", $catPath)
        if ($r.ExitCode) { throw $r.Output }
        return $id
    }
    # Daily backups for $DailyFor days, then one every $Every days, back to $Days days before $Newest.
    function script:New-History([string] $Store, [string] $Hub, [datetime] $Newest, [int] $Days, [int] $DailyFor = [int]::MaxValue, [int] $Every = 1) {
        $t = New-Template $Store $Hub
        $ids = for ($d = 0; $d -lt $Days; $d += $(if ($d -lt $DailyFor) { 1 } else { $Every })) { Add-DatedBackup $Store $t $Newest.AddDays(-$d) }
        Remove-Item (Join-Path $Store "$Hub/$($t.BackupId)") -Recurse
        return $ids
    }
    $script:newest = [datetime]::new(2026, 11, 20, 2, 0, 0, [DateTimeKind]::Utc)
    $script:common = @{ TrustedSignerKeyPath = $keys.Ops.PublicKeyPath }
}

AfterAll { Stop-GpgAgent; Remove-Item $script:work -Recurse -Force -ErrorAction SilentlyContinue }

Describe 'Remove-ExpiredHubBackup' {
    It 'prints the whole plan with -WhatIf and deletes nothing' {
        $s = New-Store 'whatif'
        $null = New-History $s 'contoso' $newest 40
        $before = (Get-BackupFileCount $s)
        $plan = Remove-ExpiredHubBackup -Store $s -UseRunbookPolicy @common -WhatIf
        $plan.Count | Should -Be 40
        ($plan | Where-Object Action -eq 'Keep').Count | Should -BeGreaterThan 14
        ($plan | Where-Object Action -eq 'Remove').Count | Should -BeGreaterThan 0
        (Get-BackupFileCount $s) | Should -Be $before
        ($plan | Where-Object BackupId -like '20261120T*').Reasons | Should -Contain 'within-daily 2026-11-20'
        ($plan | Where-Object Action -eq 'Keep' | ForEach-Object Reasons) -match '^within-weekly \d{4}-W\d\d$' | Should -Not -BeNullOrEmpty
    }

    It 'applies the runbook default: daily 14 days, weekly 12 weeks, monthly 12 months, and deletes the rest' {
        $s = New-Store 'gfs'
        $ids = New-History $s 'contoso' $newest 400 -DailyFor 21 -Every 4
        $decisions = Remove-ExpiredHubBackup -Store $s -Hub contoso -UseRunbookPolicy @common -Confirm:$false
        $kept = $decisions | Where-Object Action -eq 'Keep'
        $removed = $decisions | Where-Object Action -eq 'Removed'
        ($kept.Count + $removed.Count) | Should -Be $ids.Count
        # 14 daily + the older newest-of-week within 12 weeks + the older newest-of-month within 12 months.
        $kept.Count | Should -BeGreaterOrEqual 28
        $kept.Count | Should -BeLessOrEqual 40
        $removed.Count | Should -BeGreaterThan 50
        ($kept | Where-Object { $_.Created -ge $newest.AddDays(-13.5) }).Count | Should -Be 14
        ($kept | Where-Object { $_.Created -lt $newest.AddMonths(-12).AddDays(-1) }) | Should -BeNullOrEmpty
        $left = Get-HubBackup -Store $s -Hub contoso
        ($left.BackupId | Sort-Object) | Should -Be ($kept.BackupId | Sort-Object)
        Get-HubBackup -Store $s -Hub contoso -IncludeIncomplete | Where-Object Status -eq 'Incomplete' | Should -BeNullOrEmpty
        # Monthly reasons name the month.
        ($kept.Reasons -match '^within-monthly 2026-0[1-9]$') | Should -Not -BeNullOrEmpty
    }

    It 'groups by hub: piping one hub never touches another' {
        $s = New-Store 'hubs'
        $null = New-History $s 'alpha' $newest 5
        $null = New-History $s 'beta' $newest 5
        $d = Get-HubBackup -Store $s -Hub alpha | Remove-ExpiredHubBackup -KeepLast 2 @common -Confirm:$false
        ($d | Where-Object Hub -ne 'alpha') | Should -BeNullOrEmpty
        (Get-HubBackup -Store $s -Hub alpha).Count | Should -Be 2
        (Get-HubBackup -Store $s -Hub beta).Count | Should -Be 5
    }

    It 'reads the policy from the settings file, parameters overriding it' {
        $s = New-Store 'settings'
        $null = New-History $s 'contoso' $newest 6
        $settings = Join-Path $work 'retention.psd1'
        "@{ Store = '$s'; Retention = @{ KeepLast = 4 }; Keys = @{ TrustedSigners = @('$($keys.Ops.PublicKeyPath)') } }" | Set-Content $settings
        $d = Remove-ExpiredHubBackup -SettingsPath $settings -WhatIf
        ($d | Where-Object Action -eq 'Keep').Count | Should -Be 4
        $d2 = Remove-ExpiredHubBackup -SettingsPath $settings -KeepLast 2 -WhatIf
        ($d2 | Where-Object Action -eq 'Keep').Count | Should -Be 2
    }

    It 'refuses an empty policy' {
        $s = New-Store 'empty'
        $null = New-History $s 'contoso' $newest 3
        Assert-HubError (Get-HubError { Remove-ExpiredHubBackup -Store $s -KeepLast 0 @common -Confirm:$false }) 'RetentionPolicyEmpty' 'InvalidArgument'
        (Get-HubBackup -Store $s).Count | Should -Be 3
    }

    It 'never removes the newest signature-valid backup, nor every backup' {
        $s = New-Store 'safety'
        $ids = New-History $s 'contoso' $newest 4
        # Tamper with the newest archive: KeepLast 1 would keep only that one.
        $arch = Get-ChildItem (Join-Path $s "contoso/$($ids[0])") -Filter 'archive.tar*.gpg' | Select-Object -First 1
        $bytes = [IO.File]::ReadAllBytes($arch.FullName); $bytes[100] = $bytes[100] -bxor 0xFF; [IO.File]::WriteAllBytes($arch.FullName, $bytes)
        $d = Remove-ExpiredHubBackup -Store $s -KeepLast 1 @common -Confirm:$false -WarningAction SilentlyContinue
        ($d | Where-Object BackupId -eq $ids[1]).Action | Should -Be 'Keep'
        ($d | Where-Object BackupId -eq $ids[1]).Reasons | Should -Contain 'newest valid backup'
        # A policy that matches nothing still leaves the newest backup.
        $d2 = Remove-ExpiredHubBackup -Store $s -KeepLabel 'no-such-label' @common -Confirm:$false -WarningAction SilentlyContinue
        (Get-HubBackup -Store $s).Count | Should -BeGreaterOrEqual 1
    }

    It 'reports object-locked backups instead of forcing them' {
        $s = New-Store 'locked'
        $t = New-Template $s 'contoso'
        $old = Add-DatedBackup $s $t $newest.AddDays(-100) @{ retainUntil = [datetime]::UtcNow.AddYears(5).ToString('o') }
        $null = Add-DatedBackup $s $t $newest
        Remove-Item (Join-Path $s "contoso/$($t.BackupId)") -Recurse
        $d = Remove-ExpiredHubBackup -Store $s -KeepLast 1 @common -Confirm:$false
        ($d | Where-Object BackupId -eq $old).Action | Should -Be 'Locked'
        ($d | Where-Object BackupId -eq $old).Reasons -join ' ' | Should -Match 'object lock'
        (Get-HubBackup -Store $s).BackupId | Should -Contain $old
    }

    It 'clears incomplete backups older than the grace period and leaves fresh ones' {
        $s = New-Store 'incomplete'
        $null = New-History $s 'contoso' ([datetime]::UtcNow) 2
        $stale = Join-Path $s 'contoso/20240101T000000Z-000001'
        $fresh = Join-Path $s ('contoso/' + [datetime]::UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'") + '-000002')
        foreach ($f in $stale, $fresh) { $null = New-Item -ItemType Directory $f; 'x' | Set-Content (Join-Path $f 'archive.tar.zst.gpg') }
        (Get-Item (Join-Path $stale 'archive.tar.zst.gpg')).LastWriteTimeUtc = [datetime]::UtcNow.AddDays(-3)
        $d = Remove-ExpiredHubBackup -Store $s -KeepLast 5 @common -Confirm:$false
        ($d | Where-Object BackupId -eq '20240101T000000Z-000001').Action | Should -Be 'Removed'
        Test-Path $stale | Should -BeFalse
        Test-Path $fresh | Should -BeTrue
        ($d | Where-Object BackupId -like '*-000002').Action | Should -Be 'Keep'
    }
}
