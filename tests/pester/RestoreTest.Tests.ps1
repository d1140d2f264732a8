#requires -Version 7.4
# The weekly restore test, end to end, against the real reference Hub service (tests/hubservice).
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module $env:HUBDR_MODULE_PATH -Force
    $env:HUBDR_HUBSERVICE_DLL | Should -Exist -Because 'build.ps1 Test builds tests/hubservice'
    $script:work = New-TestDirectory 'hubdr-restoretest'
    $script:keys = New-TestKeySet -Path (Join-Path $work 'keys')
    $script:schemaDir = Join-Path $PSScriptRoot '../hubservice/schema'
    $script:service = "dotnet $($env:HUBDR_HUBSERVICE_DLL) --engine {engine} --connection {connection} --urls {url}"
    $script:smokeUser = [pscredential]::new('alice', (ConvertTo-TestSecureString 'alice-smoke-pass'))
    $script:keyArgs = @{ SecretKeyPath = $keys.Ops.SecretKeyPath; Passphrase = $keys.Passphrase; TrustedSignerKeyPath = $keys.Ops.PublicKeyPath }
    function script:New-HubDb([string] $Path, [string] $Break) {
        Get-Content (Join-Path $schemaDir 'sqlite.sql') -Raw | & sqlite3 $Path
        Get-Content (Join-Path $schemaDir 'seed.sql') -Raw | & sqlite3 $Path
        if ($Break) { $Break | & sqlite3 $Path }
    }
    function script:New-Store([string] $Name) { $s = Join-Path $work $Name; $null = New-Item -ItemType Directory $s; $s }
    function script:Backup-Sqlite([string] $Store, [string] $Db, [string] $Hub = 'contoso') {
        New-HubBackup -Store $Store -Hub $Hub -DatabaseEngine sqlite -ConnectionString $Db -RecipientKeyPath $keys.Ops.PublicKeyPath, $keys.Escrow.PublicKeyPath `
            -SigningKeyPath $keys.Ops.SecretKeyPath -Passphrase $keys.Passphrase -KeyMetadataPath $keys.Ops.KeyMetadataPath
    }
}

AfterAll { Remove-Item $script:work -Recurse -Force -ErrorAction SilentlyContinue }

Describe 'Invoke-HubRestoreTest on SQLite' {
    BeforeAll {
        $script:store = New-Store 'sqlite'
        $db = Join-Path $work 'hub.db'
        New-HubDb $db
        $script:backup = Backup-Sqlite $store $db
        $script:staging = New-Item -ItemType Directory (Join-Path $work 'staging')
        $pesterTest = Join-Path $work 'Operator.Tests.ps1'
        @'
param($Staging)
Describe 'operator checks' {
    It 'the restored hub answers on its health endpoint' {
        (Invoke-RestMethod "$($Staging.Url)/health").status | Should -Be 'ok'
    }
}
'@ | Set-Content $pesterTest
        $script:result = Invoke-HubRestoreTest -Store $store -Hub contoso @keyArgs -ServiceCommand $service -SmokeCredential $smokeUser `
            -StagingPath $staging -PesterPath $pesterTest -RpoTarget '01:00:00'
    }

    It 'passes: restore, database checks, service, HTTP flows, operator Pester tests, logs, keys, RTO and RPO' {
        $result | Should -BeOfType ([HubDr.Cmdlets.HubRestoreTestResult])
        ($result.Steps | Where-Object { -not $_.Passed } | ForEach-Object { "$_ $($_.Message)" }) | Should -BeNullOrEmpty
        $result.Passed | Should -BeTrue
        $result.BackupId | Should -Be $backup.BackupId
        $result.SignatureStatus | Should -Be 'Valid'
        $kinds = $result.Steps.Kind | Sort-Object -Unique
        foreach ($k in 'restore', 'database', 'service', 'http', 'pester', 'logs', 'keys', 'rto', 'rpo') { $kinds | Should -Contain $k }
        ($result.Steps | Where-Object Kind -eq 'http').Name -join ' ' | Should -Match 'login'
        ($result.Steps | Where-Object Kind -eq 'http').Name -join ' ' | Should -Match 'transaction'
        $result.RtoMet | Should -BeTrue
        $result.RpoMet | Should -BeTrue
        $result.TimeToOperableSeconds | Should -BeLessThan 300
    }

    It 'archives a JSON and a JUnit report in the store' {
        $json = Get-ChildItem (Join-Path $store '_reports/contoso') -Filter '*.json' | Select-Object -First 1
        $report = Get-Content $json.FullName -Raw | ConvertFrom-Json
        $report.passed | Should -BeTrue
        $report.backupId | Should -Be $backup.BackupId
        $xml = [xml](Get-Content ([IO.Path]::ChangeExtension($json.FullName, '.xml')) -Raw)
        [int]$xml.testsuites.testsuite.tests | Should -Be $result.Steps.Count
        [int]$xml.testsuites.testsuite.failures | Should -Be 0
        # Reports are not backups.
        (Get-HubBackup -Store $store -IncludeIncomplete).Count | Should -Be 1
    }

    It 'cleans up staging' {
        Get-ChildItem $staging | Should -BeNullOrEmpty
    }
}

Describe 'Invoke-HubRestoreTest failures' {
    BeforeAll {
        # A local webhook receiver (a real HTTP listener on loopback).
        $script:port = Get-Random -Minimum 40000 -Maximum 49000
        $script:hookFile = Join-Path $work 'webhook.json'
        $script:hook = Start-ThreadJob -ArgumentList $port, $hookFile -ScriptBlock {
            param($port, $file)
            $l = [System.Net.HttpListener]::new(); $l.Prefixes.Add("http://127.0.0.1:$port/"); $l.Start()
            try {
                $ctx = $l.GetContext()
                $body = [IO.StreamReader]::new($ctx.Request.InputStream).ReadToEnd()
                Set-Content -LiteralPath $file -Value $body
                $ctx.Response.StatusCode = 204; $ctx.Response.Close()
            } finally { $l.Stop() }
        }
        Start-Sleep -Milliseconds 500
    }
    AfterAll { $hook | Remove-Job -Force -ErrorAction SilentlyContinue }

    It 'a deliberately broken backup fails the smoke tests, with a clear error, a report and a webhook alert' {
        $s = New-Store 'broken'
        $db = Join-Path $work 'broken.db'
        # Every account emptied: the hub starts and logs in, but the sample transaction cannot go through.
        New-HubDb $db -Break 'UPDATE accounts SET balance_cents = 0;'
        $null = Backup-Sqlite $s $db
        $metrics = Join-Path $work 'hubdr.prom'
        $r = Invoke-HubRestoreTest -Store $s -Hub contoso @keyArgs -ServiceCommand $service -SmokeCredential $smokeUser `
            -WebhookUrl "http://127.0.0.1:$port/hook" -MetricsPath $metrics -ErrorVariable err -ErrorAction SilentlyContinue
        $r.Passed | Should -BeFalse
        $err[0].FullyQualifiedErrorId | Should -BeLike 'RestoreTestFailed,*'
        $failedHttp = $r.Steps | Where-Object { $_.Kind -eq 'http' -and -not $_.Passed -and -not $_.Skipped }
        $failedHttp.Name -join ' ' | Should -Match 'transaction'
        ($failedHttp.Message -join ' ') | Should -Match '409'
        ($r.Steps | Where-Object { $_.Kind -eq 'http' -and $_.Name -match 'login' }).Passed | Should -BeTrue
        $hook | Wait-Job -Timeout 30 | Out-Null
        $alert = Get-Content $hookFile -Raw | ConvertFrom-Json
        $alert.event | Should -Be 'restore_test_failed'
        $alert.hub | Should -Be 'contoso'
        (Get-Content $metrics -Raw) | Should -Match 'hubdr_restore_test_failure_total\{hub="contoso"\} 1'
        Get-ChildItem (Join-Path $s '_reports/contoso') -Filter '*.xml' | Should -Not -BeNullOrEmpty
    }

    It 'a backup missing a table never becomes healthy: the service step fails and the schema error is quoted from the log' {
        $s = New-Store 'notable'
        $db = Join-Path $work 'notable.db'
        New-HubDb $db -Break 'DROP TABLE transactions;'
        $null = Backup-Sqlite $s $db
        $r = Invoke-HubRestoreTest -Store $s -Hub contoso @keyArgs -ServiceCommand $service -SmokeCredential $smokeUser -ServiceStartTimeout '00:00:10' -ErrorAction SilentlyContinue
        $r.Passed | Should -BeFalse
        ($r.Steps | Where-Object Kind -eq 'service').Passed | Should -BeFalse
        ($r.LogMatches -join ' ') | Should -Match 'schema'
        ($r.Steps | Where-Object Kind -eq 'database' | Where-Object Passed -eq $false) | Should -BeNullOrEmpty
    }

    It 'quotes service log lines that match an error pattern, and reports a missed RPO' {
        $s = New-Store 'logs'
        $db = Join-Path $work 'logs.db'
        New-HubDb $db
        $null = Backup-Sqlite $s $db
        Start-Sleep -Seconds 2
        $r = Invoke-HubRestoreTest -Store $s -Hub contoso @keyArgs -ServiceCommand $service -SmokeCredential $smokeUser `
            -ErrorPattern 'Hub service started' -RpoTarget '00:00:01' -ErrorAction SilentlyContinue
        $r.Passed | Should -BeFalse
        $r.LogMatches -join ' ' | Should -Match 'Hub service started'
        ($r.Steps | Where-Object Kind -eq 'logs').Passed | Should -BeFalse
        $r.RpoMet | Should -BeFalse
        ($r.Steps | Where-Object Kind -eq 'rpo').Message | Should -Match 'MISSED'
    }

    It 'fails when no backup is recent enough' {
        $s = New-Store 'stale'
        $null = Initialize-HubBackupStore -Store $s   # an empty HubDr store; an uninitialised folder is StoreNotInitialized
        $r = Invoke-HubRestoreTest -Store $s -Hub contoso @keyArgs -ErrorAction SilentlyContinue
        $r.Passed | Should -BeFalse
        $r.Error | Should -Match 'No complete backup'
    }

    It 'fails the key check when a retained backup cannot be decrypted with the held keys' {
        $s = New-Store 'keystore'
        $db = Join-Path $work 'keys.db'
        New-HubDb $db
        $other = New-HubBackupKey -UserId 'Lost <lost@example.test>' -Algorithm EcdsaP256 -Passphrase $keys.Passphrase -OutputPath (Join-Path $work 'lost')
        $null = New-HubBackup -Store $s -Hub contoso -DatabaseEngine sqlite -ConnectionString $db -RecipientKeyPath $other.PublicKeyPath -SigningKeyPath $keys.Ops.SecretKeyPath -Passphrase $keys.Passphrase
        $latest = Backup-Sqlite $s $db
        $r = Invoke-HubRestoreTest -Store $s -Hub contoso @keyArgs -ErrorAction SilentlyContinue
        $r.BackupId | Should -Be $latest.BackupId
        ($r.Steps | Where-Object Kind -eq 'keys').Passed | Should -BeFalse
        $r.UndecryptableBackups.Count | Should -Be 1
    }
}

Describe 'Invoke-HubRestoreTest on PostgreSQL' {
    It 'backs up a real PostgreSQL hub and proves the restore with the service and smoke tests' {
        $env:HUBDR_TEST_PG_HOST | Should -Not -BeNullOrEmpty -Because 'build.ps1 Test starts PostgreSQL (tests/servers/servers.sh)' 
        $cred = [pscredential]::new($env:HUBDR_TEST_PG_USER, (ConvertTo-TestSecureString $env:HUBDR_TEST_PG_PASSWORD))
        $dbName = 'hub_rt_' + (Get-Random)
        $env:PGPASSWORD = $env:HUBDR_TEST_PG_PASSWORD
        try {
            $psql = @('-h', $env:HUBDR_TEST_PG_HOST, '-p', $env:HUBDR_TEST_PG_PORT, '-U', $env:HUBDR_TEST_PG_USER, '-v', 'ON_ERROR_STOP=1', '-q')
            & psql @psql -d postgres -c "CREATE DATABASE $dbName" | Out-Null
            & psql @psql -d $dbName -f (Join-Path $schemaDir 'postgres.sql') | Out-Null
            & psql @psql -d $dbName -f (Join-Path $schemaDir 'seed.sql') | Out-Null
        } finally { Remove-Item Env:PGPASSWORD }
        $server = "Host=$($env:HUBDR_TEST_PG_HOST);Port=$($env:HUBDR_TEST_PG_PORT);Username=$($env:HUBDR_TEST_PG_USER)"
        $s = New-Store 'pg'
        $b = New-HubBackup -Store $s -Hub pghub -DatabaseEngine postgres -ConnectionString "$server;Database=$dbName" -DatabaseCredential $cred `
            -RecipientKeyPath $keys.Ops.PublicKeyPath -SigningKeyPath $keys.Ops.SecretKeyPath -Passphrase $keys.Passphrase
        $b.Engine | Should -Be 'postgres'
        $r = Invoke-HubRestoreTest -Store $s -Hub pghub @keyArgs -StagingConnectionString "$server;Database=postgres" -StagingCredential $cred `
            -ServiceCommand $service -ServiceEnvironment @{ HUBSVC_DB_PASSWORD = '{password}' } -SmokeCredential $smokeUser
        ($r.Steps | Where-Object { -not $_.Passed } | ForEach-Object { "$_ $($_.Message)" }) | Should -BeNullOrEmpty
        $r.Passed | Should -BeTrue
        # The throwaway staging database is gone.
        $env:PGPASSWORD = $env:HUBDR_TEST_PG_PASSWORD
        try { $left = & psql -h $env:HUBDR_TEST_PG_HOST -p $env:HUBDR_TEST_PG_PORT -U $env:HUBDR_TEST_PG_USER -d postgres -tAc "SELECT count(*) FROM pg_database WHERE datname LIKE 'hubdr_rt_%'" } finally { Remove-Item Env:PGPASSWORD }
        [int]$left | Should -Be 0
    }
}

Describe 'Invoke-HubRestoreTest on MariaDB' {
    It 'backs up a real MariaDB hub and proves the restore with the service and smoke tests' {
        $env:HUBDR_TEST_MYSQL_HOST | Should -Not -BeNullOrEmpty -Because 'build.ps1 Test starts MariaDB (tests/servers/servers.sh)'
        $cred = [pscredential]::new($env:HUBDR_TEST_MYSQL_USER, (ConvertTo-TestSecureString $env:HUBDR_TEST_MYSQL_PASSWORD))
        $dbName = 'hub_rt_' + (Get-Random)
        $cnf = Join-Path $work 'my.cnf'
        "[client]`nuser=$($env:HUBDR_TEST_MYSQL_USER)`npassword=$($env:HUBDR_TEST_MYSQL_PASSWORD)`nhost=$($env:HUBDR_TEST_MYSQL_HOST)`nport=$($env:HUBDR_TEST_MYSQL_PORT)`nprotocol=tcp" | Set-Content $cnf
        & chmod 600 $cnf
        & mariadb "--defaults-extra-file=$cnf" -e "CREATE DATABASE $dbName"
        Get-Content (Join-Path $schemaDir 'mysql.sql') -Raw | & mariadb "--defaults-extra-file=$cnf" $dbName
        Get-Content (Join-Path $schemaDir 'seed.sql') -Raw | & mariadb "--defaults-extra-file=$cnf" $dbName
        $server = "Server=$($env:HUBDR_TEST_MYSQL_HOST);Port=$($env:HUBDR_TEST_MYSQL_PORT);User ID=$($env:HUBDR_TEST_MYSQL_USER)"
        $s = New-Store 'mysql'
        $b = New-HubBackup -Store $s -Hub myhub -DatabaseEngine mysql -ConnectionString "$server;Database=$dbName" -DatabaseCredential $cred `
            -RecipientKeyPath $keys.Ops.PublicKeyPath -SigningKeyPath $keys.Ops.SecretKeyPath -Passphrase $keys.Passphrase
        $b.Engine | Should -Be 'mysql'
        $r = Invoke-HubRestoreTest -Store $s -Hub myhub @keyArgs -StagingConnectionString $server -StagingCredential $cred `
            -ServiceCommand $service -ServiceEnvironment @{ HUBSVC_DB_PASSWORD = '{password}' } -SmokeCredential $smokeUser
        ($r.Steps | Where-Object { -not $_.Passed } | ForEach-Object { "$_ $($_.Message)" }) | Should -BeNullOrEmpty
        $r.Passed | Should -BeTrue
        (& mariadb "--defaults-extra-file=$cnf" -N -e "SHOW DATABASES LIKE 'hubdr_rt_%'") | Should -BeNullOrEmpty
    }
}
