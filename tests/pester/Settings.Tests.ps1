#requires -Version 7.4
# The settings file and parameters compose: typed settings (relative paths against the file, warnings for unknown
# keys, typed errors for wrong values), parameter sets that resolve with Store from settings or
# $PSDefaultParameterValues, binding by property name, and completion from the settings file.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module $env:HUBDR_MODULE_PATH -Force
    $script:work = New-TestDirectory 'hubdr-settings'
    # ops/customer-1/hub.psd1 beside its keys, store and database: every path in it is relative.
    $script:cfgDir = Join-Path $work 'ops/customer-1'
    $null = New-Item -ItemType Directory $cfgDir -Force
    $script:keys = New-TestKeySet -Path (Join-Path $cfgDir 'keys')
    $null = New-Item -ItemType Directory (Join-Path $cfgDir 'store')
    New-SampleSqliteHub -Path (Join-Path $work 'hub.db') -Rows 30
    $script:settings = Join-Path $cfgDir 'hub.psd1'
    @"
@{
    Hub      = 'contoso'
    Store    = 'store'
    Database = @{ Engine = 'sqlite'; ConnectionString = '../../hub.db' }
    Keys     = @{ Recipients = 'keys/ops'; SigningKey = 'keys/ops'; TrustedSigners = 'keys/ops'; SecretKeys = 'keys/ops' }
    Monitoring = @{ AuditToStore = `$false }
}
"@ | Set-Content $settings
    $script:store = Join-Path $cfgDir 'store'
    # Deeper than the settings file's folder: '../../hub.db' from here is NOT the database.
    $script:elsewhere = New-Item -ItemType Directory (Join-Path $work 'some/where/else') -Force
    Push-Location $elsewhere
    $script:b1 = New-HubBackup -SettingsPath $settings -Passphrase $keys.Passphrase
    $script:b2 = New-HubBackup -SettingsPath $settings -Passphrase $keys.Passphrase
    Pop-Location
}

AfterAll {
    $PSDefaultParameterValues.Remove('*-*HubBackup*:Store')
    $PSDefaultParameterValues.Remove('*-Hub*:Store')
    Remove-Item Env:HUBDR_SETTINGS -ErrorAction SilentlyContinue
    Remove-Item $script:work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Relative paths resolve against the settings file' {
    It 'a SQLite Database.ConnectionString of ../../hub.db is the file beside ops/, not relative to $PWD' {
        $b1.Engine | Should -Be 'sqlite'
        $b1.RowCount | Should -BeGreaterThan 60
        $b1.Store | Should -Match ([regex]::Escape('ops/customer-1/store'))
        Test-Path (Join-Path $elsewhere 'store') | Should -BeFalse
    }

    It 'a RestoreTarget.ConnectionString and FilesPath from the settings land beside the settings file' {
        $s2 = Join-Path $cfgDir 'restore.psd1'
        (Get-Content $settings -Raw) -replace '\}\s*$', "    RestoreTarget = @{ ConnectionString = 'restored.db'; FilesPath = 'restored-files' }`n}" | Set-Content $s2
        Push-Location $elsewhere
        try { $r = Restore-HubBackup -SettingsPath $s2 -BackupId $b1.BackupId -Passphrase $keys.Passphrase }
        finally { Pop-Location }
        $r.Succeeded | Should -BeTrue
        Join-Path $cfgDir 'restored.db' | Should -Exist
        $r.FilesPath | Should -Be (Join-Path $cfgDir 'restored-files')
        Test-Path (Join-Path $elsewhere 'restored.db') | Should -BeFalse
    }
}

Describe 'Store and Hub from the settings, defaults or the pipeline' {
    It 'Restore-HubBackup and Test-HubBackupSignature -SettingsPath -BackupId need no -Store' {
        (Test-HubBackupSignature -SettingsPath $settings -BackupId $b1.BackupId).Status | Should -Be 'Valid'
        $r = Restore-HubBackup -SettingsPath $settings -BackupId $b1.BackupId -Target (Join-Path $work 'from-settings.db') -Passphrase $keys.Passphrase
        $r.Succeeded | Should -BeTrue
    }

    It 'with $env:HUBDR_SETTINGS alone' {
        $env:HUBDR_SETTINGS = $settings
        try { (Test-HubBackupSignature -BackupId $b2.BackupId).IsValid | Should -BeTrue }
        finally { Remove-Item Env:HUBDR_SETTINGS }
    }

    It 'with Store in $PSDefaultParameterValues, piping into every cmdlet that takes a backup resolves its parameter set' {
        $PSDefaultParameterValues['*-*HubBackup*:Store'] = $store
        $PSDefaultParameterValues['*-Hub*:Store'] = $store
        try {
            $listed = @(Get-HubBackup -Hub contoso)
            $listed.Count | Should -Be 2
            $r = $listed[0] | Restore-HubBackup -Target (Join-Path $work 'defaults.db') -SecretKeyPath $keys.Ops.SecretKeyPath -Passphrase $keys.Passphrase -TrustedSignerKeyPath $keys.Ops.PublicKeyPath
            $r.Succeeded | Should -BeTrue
            $plan = $listed | Remove-ExpiredHubBackup -KeepLast 1 -TrustedSignerKeyPath $keys.Ops.PublicKeyPath -WhatIf
            @($plan).Count | Should -Be 2
            ($plan | Where-Object Action -eq 'Remove').BackupId | Should -Be $b1.BackupId
            $t = $listed[0] | Invoke-HubRestoreTest -SecretKeyPath $keys.Ops.SecretKeyPath -Passphrase $keys.Passphrase -TrustedSignerKeyPath $keys.Ops.PublicKeyPath -DatabaseOnly -NoReport
            $t.BackupId | Should -Be $listed[0].BackupId
            $t.Passed | Should -BeTrue
        }
        finally {
            $PSDefaultParameterValues.Remove('*-*HubBackup*:Store')
            $PSDefaultParameterValues.Remove('*-Hub*:Store')
        }
    }

    It 'Import-Csv rows (Store, Hub, BackupId) pipe into Test-HubBackupSignature, Restore-HubBackup, Remove-ExpiredHubBackup and Invoke-HubRestoreTest' {
        $csv = Join-Path $work 'backups.csv'
        Get-HubBackup -Store $store -Hub contoso | Select-Object Store, Hub, BackupId | Export-Csv $csv
        $rows = Import-Csv $csv
        $rows.Count | Should -Be 2
        (Import-Csv $csv | Test-HubBackupSignature -TrustedSignerKeyPath $keys.Ops.PublicKeyPath).Status | Should -Be @('Valid', 'Valid')
        $r = Import-Csv $csv | Select-Object -First 1 | Restore-HubBackup -Target (Join-Path $work 'csv.db') -TargetEngine sqlite -SecretKeyPath $keys.Ops.SecretKeyPath -Passphrase $keys.Passphrase -TrustedSignerKeyPath $keys.Ops.PublicKeyPath
        $r.Succeeded | Should -BeTrue
        $plan = Import-Csv $csv | Select-Object -Last 1 | Remove-ExpiredHubBackup -KeepLast 1 -TrustedSignerKeyPath $keys.Ops.PublicKeyPath -WhatIf
        @($plan).Count | Should -Be 1 -Because 'only the piped backup is acted on'
        $plan.BackupId | Should -Be $b1.BackupId
        $t = Import-Csv $csv | Select-Object -Last 1 | Invoke-HubRestoreTest -SecretKeyPath $keys.Ops.SecretKeyPath -Passphrase $keys.Passphrase -TrustedSignerKeyPath $keys.Ops.PublicKeyPath -DatabaseOnly -NoReport
        $t.BackupId | Should -Be $b1.BackupId
    }
}

Describe 'Typed settings' {
    It 'warns about a mistyped key, naming the key and the closest known key' {
        $typo = Join-Path $cfgDir 'typo.psd1'
        (Get-Content $settings -Raw) -replace '\}\s*$', "    Stor = 'x'`n    Retention = @{ KeepLasst = 3 }`n}" | Set-Content $typo
        $w = Get-HubBackup -SettingsPath $typo 3>&1 | Where-Object { $_ -is [System.Management.Automation.WarningRecord] }
        ($w.Message -join "`n") | Should -Match "unknown key 'Stor'.*did you mean 'Store'"
        ($w.Message -join "`n") | Should -Match "unknown key 'Retention.KeepLasst'.*did you mean 'Retention.KeepLast'"
    }

    It 'refuses a value of the wrong type with SettingValueInvalid naming the key: <Case>' -ForEach @(
        @{ Case = 'text where a number belongs'; Add = "CompressionLevel = 'high'"; Key = 'CompressionLevel' }
        @{ Case = 'a string where a section belongs'; Add = "Retention = 'daily'"; Key = 'Retention' }
        @{ Case = 'not a duration'; Add = "Rto = 'soon'"; Key = 'Rto' }
        @{ Case = 'not one of the allowed values'; Add = "Compression = 'lz4'"; Key = 'Compression' }
        @{ Case = 'out of range'; Add = "CompressionLevel = 40"; Key = 'CompressionLevel' }
    ) {
        $bad = Join-Path $cfgDir "bad-$Key.psd1"
        (Get-Content $settings -Raw) -replace '\}\s*$', "    $Add`n}" | Set-Content $bad
        $e = Get-HubError { New-HubBackup -SettingsPath $bad -Passphrase $keys.Passphrase -WhatIf }
        Assert-HubError $e 'SettingValueInvalid' 'InvalidData'
        "$e" | Should -Match ([regex]::Escape($Key))
    }

    It 'docs/settings.md lists every key, generated from the settings types' {
        $generated = & (Join-Path $PSScriptRoot '../../tools/Update-SettingsDoc.ps1') -PassThru
        $doc = Get-Content (Join-Path $PSScriptRoot '../../docs/settings.md') -Raw
        $doc -replace '\r\n', "`n" | Should -Match ([regex]::Escape($generated)) -Because 'run tools/Update-SettingsDoc.ps1 after changing a setting'
        foreach ($key in 'Monitoring.MetricsPath', 'RestoreTest.ServiceCommand', 'Retention.KeepWithinDaily', 'Rto', 'Rpo') { $doc | Should -Match ([regex]::Escape("``$key``")) }
        @([HubDr.Cmdlets.Infrastructure.HubSettings]::UnknownParameterKeys()) | Should -BeNullOrEmpty -Because 'every [HubSetting] names a real key'
    }

    It 'the example settings file loads without a warning' {
        $w = Get-HubBackup -SettingsPath (Join-Path $PSScriptRoot '../../examples/hub.settings.psd1') -Store $store -ErrorAction SilentlyContinue 3>&1 |
            Where-Object { $_ -is [System.Management.Automation.WarningRecord] }
        $w | Should -BeNullOrEmpty
    }
}

Describe 'Tab completion from the settings file' {
    It 'completes -BackupId and -Hub from -SettingsPath and from $env:HUBDR_SETTINGS' {
        $line = "Restore-HubBackup -SettingsPath '$settings' -BackupId "
        (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText | Should -Contain $b1.BackupId
        $line2 = "Get-HubBackup -SettingsPath '$settings' -Hub con"
        (TabExpansion2 -inputScript $line2 -cursorColumn $line2.Length).CompletionMatches.CompletionText | Should -Contain 'contoso'
        $env:HUBDR_SETTINGS = $settings
        try {
            $line3 = 'Test-HubBackupSignature -BackupId '
            (TabExpansion2 -inputScript $line3 -cursorColumn $line3.Length).CompletionMatches.CompletionText | Should -Contain $b2.BackupId
        }
        finally { Remove-Item Env:HUBDR_SETTINGS }
    }
}
