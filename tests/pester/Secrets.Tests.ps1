#requires -Version 7.4
# Secrets never enter an archive, a catalog, a log or a process command line.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module $env:HUBDR_MODULE_PATH -Force
    $script:work = New-TestDirectory 'hubdr-secrets'
    $script:keys = New-TestKeySet -Path (Join-Path $work 'keys')
    $script:store = Join-Path $work 'store'
    $null = New-Item -ItemType Directory $store
    $script:db = Join-Path $work 'hub.db'
    New-SampleSqliteHub -Path $db -Rows 20
    $script:secretValues = @('S3cr3t-env-XYZ', 'tok-abc-123456', 'Pw-in-config-777', 'ConnPw-888', 'smtp-secret-999', 'apikey-000', 'custom-secret-555', 'cmd-secret-4242', 'AKIAABCDEFGHIJKLMNOP',
        # issue 12: names with PASS / KEY / AUTH parts and JSON keys in camel/snake case
        'smtp-pass-1212', 'db-pass-3434', 'jwt-key-5656', 'stripe-key-7878', 'license-key-9090', 'bearer-tok-2323ABCD', 'cfg-pass-4545', 'cfg-jwt-6767', 'cfg-stripe-8989', 'crlf-pass-0101')
    $env:HUB_DB_PASSWORD = 'S3cr3t-env-XYZ'
    $env:HUB_API_TOKEN = 'tok-abc-123456'
    $env:HUB_CUSTOM_THING = 'custom-secret-555'
    $env:HUB_REGION = 'eu-north-plain'
    $script:issueVars = @{ HUB_SMTP_PASS = 'smtp-pass-1212'; HUB_DB_PASS = 'db-pass-3434'; HUB_JWT_KEY = 'jwt-key-5656'; HUB_STRIPE_KEY = 'stripe-key-7878'; HUB_LICENSE_KEY = 'license-key-9090'; HUB_AUTH = 'Bearer bearer-tok-2323ABCD' }
    foreach ($k in $issueVars.Keys) { [Environment]::SetEnvironmentVariable($k, $issueVars[$k]) }
    $cfgDir = New-Item -ItemType Directory (Join-Path $work 'cfg')
    '{"smtp":{"pass":"cfg-pass-4545","jwtKey":"cfg-jwt-6767","stripe_key":"cfg-stripe-8989"},"db":{"host":"db1","password":"Pw-in-config-777"},"connectionString":"Host=db1;Username=hub;Password=ConnPw-888;","featureFlags":{"newUi":true},"aws":"AKIAABCDEFGHIJKLMNOP"}' | Set-Content (Join-Path $cfgDir 'app.json')
    "SMTP_HOST=mail.example.test`nSMTP_PASSWORD=smtp-secret-999`nexport API_KEY=apikey-000`n" | Set-Content (Join-Path $cfgDir 'app.env')
    # A Windows-edited file: CRLF line ends must survive redaction.
    [IO.File]::WriteAllText((Join-Path $cfgDir 'win.env'), "A=1`r`nDB_PASS=crlf-pass-0101`r`nB=2`r`n")
    # An export command that records every process command line on the machine while the backup runs.
    $script:cmdlines = Join-Path $work 'cmdlines.txt'
    $exporter = Join-Path $work 'export-config.sh'
    @"
#!/bin/bash
for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' < "`$f" 2>/dev/null; echo; done > '$cmdlines'
echo '{"exportedBy":"hub-cli","token":"cmd-secret-4242","flags":{"a":1}}'
"@ | Set-Content $exporter
    & chmod +x $exporter
    $script:verbose = New-HubBackup -Store $store -Hub contoso -DatabaseEngine sqlite -ConnectionString $db -RecipientKeyPath $keys.Ops.PublicKeyPath `
        -SigningKeyPath $keys.Ops.SecretKeyPath -Passphrase $keys.Passphrase -ConfigPath $cfgDir.FullName -ConfigCommand "bash $exporter" `
        -EnvironmentPrefix 'HUB_' -SecretName 'HUB_CUSTOM_*' -Verbose 4>&1 3>&1
    $script:backup = $verbose | Where-Object { $_ -is [HubDr.Cmdlets.HubBackup] }
    # Decrypt with the real gpg and unpack everything.
    $gpgHome = New-GpgHome
    $null = Invoke-Gpg -GpgHome $gpgHome -Arguments @('--import', $keys.Ops.SecretKeyPath) -Passphrase $keys.PlainPassphrase
    $archive = Get-ChildItem (Join-Path $store "contoso/$($backup.BackupId)") -Filter 'archive.tar*.gpg' | Select-Object -ExpandProperty FullName
    $script:unpacked = Join-Path $work 'unpacked'
    $null = New-Item -ItemType Directory $unpacked
    $pf = Join-Path $work 'p'; Set-Content $pf $keys.PlainPassphrase -NoNewline
    $flag = if ($archive -like '*.zst.gpg') { '--zstd' } else { '-z' }
    & bash -c "gpg --homedir '$gpgHome' --batch --pinentry-mode loopback --passphrase-file '$pf' --decrypt '$archive' 2>/dev/null | tar $flag -x -C '$unpacked'"
    Remove-Item $pf
}

AfterAll {
    Stop-GpgAgent
    Remove-Item Env:HUB_DB_PASSWORD, Env:HUB_API_TOKEN, Env:HUB_CUSTOM_THING, Env:HUB_REGION -ErrorAction SilentlyContinue
    foreach ($k in $script:issueVars.Keys) { [Environment]::SetEnvironmentVariable($k, $null) }
    Remove-Item $script:work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Redaction' {
    It 'the archive decrypts and contains the config, env and export' {
        Test-Path (Join-Path $unpacked 'config/env.json') | Should -BeTrue
        Test-Path (Join-Path $unpacked 'config/cfg/app.json') | Should -BeTrue
        Test-Path (Join-Path $unpacked 'config/export.json') | Should -BeTrue
        (Get-Content (Join-Path $unpacked 'config/env.json') -Raw) | Should -Match 'eu-north-plain'
        (Get-Content (Join-Path $unpacked 'config/cfg/app.json') -Raw) | Should -Match 'newUi'
        (Get-Content (Join-Path $unpacked 'config/cfg/app.env') -Raw) | Should -Match 'mail.example.test'
    }

    It 'no planted secret appears anywhere in the decrypted archive' {
        foreach ($f in Get-ChildItem $unpacked -Recurse -File) {
            $text = [IO.File]::ReadAllText($f.FullName)
            foreach ($s in $secretValues) { $text | Should -Not -Match ([regex]::Escape($s)) -Because "$($f.Name) must not hold $s" }
        }
    }

    It 'records which names were redacted, never their values' {
        $m = Get-Content (Join-Path $unpacked 'manifest.json') -Raw | ConvertFrom-Json
        $m.redactedNames | Should -Contain 'env:HUB_DB_PASSWORD'
        $m.redactedNames | Should -Contain 'env:HUB_CUSTOM_THING'
        ($m.redactedNames -join ' ') | Should -Match 'SMTP_PASSWORD'
        foreach ($k in $issueVars.Keys) { $m.redactedNames | Should -Contain "env:$k" }
        ($m.redactedNames -join ' ') | Should -Match 'smtp:pass'
        ($m.redactedNames -join ' ') | Should -Match 'jwtKey'
        ($m.redactedNames -join ' ') | Should -Match 'stripe_key'
    }

    It 'keeps CRLF line ends of a redacted text file, and writes the archive''s JSON with LF' {
        $bytes = [IO.File]::ReadAllBytes((Join-Path $unpacked 'config/cfg/win.env'))
        [Text.Encoding]::UTF8.GetString($bytes) | Should -BeExactly "A=1`r`nDB_PASS=***REDACTED***`r`nB=2`r`n"
        foreach ($f in 'manifest.json', 'backup-info.json', 'config/env.json', 'config/cfg/app.json') {
            [IO.File]::ReadAllBytes((Join-Path $unpacked $f)) | Should -Not -Contain 13 -Because "$f is written with LF only"
        }
        $catalog = Get-ChildItem $store -Recurse -Filter catalog.json | Select-Object -First 1
        [IO.File]::ReadAllBytes($catalog.FullName) | Should -Not -Contain 13
    }

    It 'no secret in the catalog, signatures or any stored object' {
        foreach ($f in Get-ChildItem $store -Recurse -File) {
            $bytes = [IO.File]::ReadAllBytes($f.FullName)
            $latin = [Text.Encoding]::Latin1.GetString($bytes)
            foreach ($s in $secretValues) { $latin.Contains($s) | Should -BeFalse -Because "$($f.Name) must not hold $s" }
        }
    }

    It 'no secret in verbose output or warnings' {
        $text = ($verbose | Where-Object { $_ -isnot [HubDr.Cmdlets.HubBackup] } | ForEach-Object { "$_" }) -join "`n"
        $text | Should -Match 'Redacted'
        foreach ($s in $secretValues) { $text | Should -Not -Match ([regex]::Escape($s)) }
    }

    It 'no secret on any process command line during the backup' {
        $lines = Get-Content $cmdlines -Raw
        $lines | Should -Match 'export-config.sh'
        foreach ($s in $secretValues) { $lines | Should -Not -Match ([regex]::Escape($s)) }
    }
}
