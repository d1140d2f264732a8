#requires -Version 7.4
# Azure Automation (issue 14): in the cloud sandbox, which does not allow child processes, every feature that needs one
# fails fast with ChildProcessUnavailable and starts nothing; SQLite backup, listing, verification, retention, restore
# and key generation still work; HUBDR_AUTOMATION_SANDBOX overrides the detection both ways; the memory cap holds in a
# real pwsh. Each case runs in a child pwsh whose environment is the sandbox's (the variables Azure sets for a job).
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:work = New-TestDirectory 'hubdr-platform'
    $script:module = $env:HUBDR_MODULE_PATH
    $script:sandboxEnv = @{
        AUTOMATION_ASSET_ACCOUNTID = '6b9a1c0e-0000-4000-8000-000000000001'
        IDENTITY_ENDPOINT          = 'http://127.0.0.1:40012/oauth2/token'
        IDENTITY_HEADER            = '3d2a0e5f-0000-4000-8000-000000000002'
        HUBDR_AUTOMATION_SANDBOX   = $null
    }
    $script:markers = Join-Path $work 'markers'
    $null = New-Item -ItemType Directory $markers

    # Everything that would start a process leaves a marker file if it ever runs: fake database tools in a ToolPath
    # folder, export/import/service commands, and a Pester file.
    $script:fakeTools = Join-Path $work 'tools'
    $null = New-Item -ItemType Directory $fakeTools
    foreach ($t in 'pg_dump', 'pg_restore', 'psql', 'mariadb-dump', 'mysqldump', 'mariadb', 'mysql') {
        $f = Join-Path $fakeTools $t
        "#!/bin/sh`ntouch '$markers/$t'`necho '$t (PostgreSQL) 99.0'`n" | Set-Content $f
        if (-not $IsWindows) { & chmod +x $f }
    }
    # A PowerShell literal of the command line (pasted into the child's script).
    $script:touch = { param($name) "'" + ("bash -c `"touch '$markers/$name'`"").Replace("'", "''") + "'" }
    $script:pesterFile = Join-Path $work 'Smoke.Tests.ps1'
    "BeforeAll { New-Item -ItemType File '$markers/pester' }`nDescribe 'x' { It 'y' { 1 | Should -Be 1 } }" | Set-Content $pesterFile

    function Invoke-Case {
        <# Runs $Body in a child pwsh with the module, keys and a SQLite hub; returns the cases it recorded. #>
        param([Parameter(Mandatory)][string] $Body, [hashtable] $Environment = @{}, [string] $Name = 'cases')
        $result = Join-Path $work "$Name.json"
        $script = @"
`$ErrorActionPreference = 'Continue'
`$PSStyle.OutputRendering = 'PlainText'
Import-Module '$module'
`$work = '$work'
`$pass = ConvertTo-SecureString 'platform pass' -AsPlainText -Force
if (-not (Test-Path "`$work/keys")) { `$null = New-HubBackupKey -UserId 'Ops <ops@example.test>' -Algorithm EcdsaP256 -Passphrase `$pass -OutputPath "`$work/keys" }
`$keys = "`$work/keys"
`$cases = [System.Collections.Generic.List[object]]::new()
function Case([string] `$name, [scriptblock] `$sb) {
    `$record = [ordered]@{ Name = `$name; ErrorId = `$null; Category = `$null; Terminating = `$false; Message = `$null; Output = @() }
    try {
        `$all = @(& `$sb 2>&1)
        `$errs = @(`$all | Where-Object { `$_ -is [System.Management.Automation.ErrorRecord] })
        `$record.Output = @(`$all | Where-Object { `$_ -isnot [System.Management.Automation.ErrorRecord] } | ForEach-Object { "`$_" })
        if (`$errs) { `$record.ErrorId = (`$errs[0].FullyQualifiedErrorId -split ',')[0]; `$record.Category = "`$(`$errs[0].CategoryInfo.Category)"; `$record.Message = "`$(`$errs[0])" }
    }
    catch {
        `$record.ErrorId = (`$_.FullyQualifiedErrorId -split ',')[0]; `$record.Category = "`$(`$_.CategoryInfo.Category)"; `$record.Terminating = `$true; `$record.Message = "`$_"
    }
    `$cases.Add([pscustomobject]`$record)
}
$Body
`$cases | ConvertTo-Json -Depth 4 -AsArray | Set-Content '$result'
"@
        $null = Invoke-ChildPwsh -Script $script -Environment $Environment
        $all = Get-Content $result -Raw | ConvertFrom-Json
        $table = @{}
        foreach ($c in $all) { $table[$c.Name] = $c }
        return $table
    }

    $script:db = Join-Path $work 'hub.db'
    New-SampleSqliteHub -Path $db -Rows 50
    $script:sandboxBody = @"
`$store = "`$work/store-sandbox"; `$null = New-Item -ItemType Directory `$store
`$empty = "`$work/store-untouched"; `$null = New-Item -ItemType Directory `$empty
`$common = @{ RecipientKeyPath = `$keys; SigningKeyPath = `$keys; Passphrase = `$pass; Hub = 'contoso' }
Case 'key' { New-HubBackupKey -UserId 'Escrow <e@example.test>' -Algorithm EcdsaP256 -Passphrase `$pass -OutputPath "`$work/escrow" | ForEach-Object Fingerprint }
Case 'pg backup' { New-HubBackup -Store `$empty @common -DatabaseEngine postgres -ConnectionString 'Host=127.0.0.1;Port=1;Database=hub;Username=hub' -ToolPath '$fakeTools' }
Case 'mariadb backup' { New-HubBackup -Store `$empty @common -DatabaseEngine mariadb -ConnectionString 'Server=127.0.0.1;Port=1;Database=hub;User ID=hub' -ToolPath '$fakeTools' }
Case 'manifest command' { New-HubBackup -Store `$empty @common -DatabaseEngine sqlite -ConnectionString '$db' -ManifestCommand $(& $touch 'manifest') }
Case 'config command' { New-HubBackup -Store `$empty @common -DatabaseEngine sqlite -ConnectionString '$db' -ConfigCommand $(& $touch 'config') }
Case 'sqlite backup' { New-HubBackup -Store `$store @common -DatabaseEngine sqlite -ConnectionString '$db' -Verbose 4>&1 | ForEach-Object { if (`$_ -is [System.Management.Automation.VerboseRecord]) { "VERBOSE: `$(`$_.Message)" } else { `$_.BackupId } } }
Case 'list' { Get-HubBackup -Store `$store -Hub contoso | ForEach-Object BackupId }
Case 'verify' { Get-HubBackup -Store `$store -Hub contoso | Test-HubBackupSignature -TrustedSignerKeyPath `$keys | ForEach-Object IsValid }
Case 'retention' { Remove-ExpiredHubBackup -Store `$store -Hub contoso -KeepLast 1 -Force | ForEach-Object Action }
Case 'sqlite restore' { Get-HubBackup -Store `$store -Hub contoso -Latest | Restore-HubBackup -Target "`$work/restored.db" -FilesPath "`$work/restored-files" -SecretKeyPath `$keys -Passphrase `$pass -TrustedSignerKeyPath `$keys | ForEach-Object Succeeded }
Case 'pg restore' { Get-HubBackup -Store `$store -Hub contoso -Latest | Restore-HubBackup -TargetEngine postgres -Target 'Host=127.0.0.1;Port=1;Database=hub;Username=hub' -ToolPath '$fakeTools' -SecretKeyPath `$keys -Passphrase `$pass -TrustedSignerKeyPath `$keys }
Case 'import command' { Get-HubBackup -Store `$store -Hub contoso -Latest | Restore-HubBackup -FilesPath "`$work/restored-files-2" -ImportCommand $(& $touch 'import') -SecretKeyPath `$keys -Passphrase `$pass -TrustedSignerKeyPath `$keys }
Case 'restore test' { Invoke-HubRestoreTest -Store `$store -Hub contoso -DatabaseOnly -SecretKeyPath `$keys -Passphrase `$pass -TrustedSignerKeyPath `$keys -NoReport | ForEach-Object Verdict }
Case 'service command' { Invoke-HubRestoreTest -Store `$store -Hub contoso -ServiceCommand $(& $touch 'service') -SecretKeyPath `$keys -Passphrase `$pass -TrustedSignerKeyPath `$keys -NoReport }
Case 'pester' { Invoke-HubRestoreTest -Store `$store -Hub contoso -DatabaseOnly -PesterPath '$pesterFile' -SecretKeyPath `$keys -Passphrase `$pass -TrustedSignerKeyPath `$keys -NoReport }
Case 'pg staging' { Invoke-HubRestoreTest -Store `$store -Hub contoso -StagingEngine postgres -StagingConnectionString 'Host=127.0.0.1;Port=1;Username=hub' -DatabaseOnly -SecretKeyPath `$keys -Passphrase `$pass -TrustedSignerKeyPath `$keys -NoReport }
Case 'untouched store' { @(Get-ChildItem -Force -Recurse `$empty).Count }
"@
}

AfterAll {
    Remove-Item $script:work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'In the Azure Automation cloud sandbox (detected from its environment)' {
    BeforeAll {
        $script:cases = Invoke-Case -Body $sandboxBody -Environment $sandboxEnv -Name 'sandbox'
    }

    It '<name> fails fast with ChildProcessUnavailable (terminating) naming <need>' -ForEach @(
        @{ Name = 'pg backup'; Need = 'pg_dump' }
        @{ Name = 'mariadb backup'; Need = 'mariadb-dump' }
        @{ Name = 'manifest command'; Need = '-ManifestCommand' }
        @{ Name = 'config command'; Need = '-ConfigCommand' }
        @{ Name = 'pg restore'; Need = 'pg_restore' }
        @{ Name = 'import command'; Need = '-ImportCommand' }
        @{ Name = 'service command'; Need = '-ServiceCommand' }
        @{ Name = 'pester'; Need = '-PesterPath' }
        @{ Name = 'pg staging'; Need = 'pg_restore' }
    ) {
        $c = $cases[$Name]
        $c.ErrorId | Should -Be 'ChildProcessUnavailable'
        $c.Category | Should -Be 'InvalidOperation'
        $c.Terminating | Should -BeTrue
        $c.Message | Should -BeLike "*$Need*"
        $c.Message | Should -BeLike '*run this on a Hybrid Runbook Worker*'
        $c.Message | Should -Not -Match '   at [A-Za-z]'
    }

    It 'started no process and wrote nothing to the store before refusing' {
        @(Get-ChildItem $markers).Name | Should -BeNullOrEmpty
        $cases['untouched store'].Output | Should -Be @('0')
    }

    It 'still creates keys, backs up SQLite, lists, verifies, applies retention, restores and restore-tests SQLite' {
        $cases['key'].ErrorId | Should -BeNullOrEmpty
        $cases['key'].Output | Should -HaveCount 1
        foreach ($n in 'sqlite backup', 'list', 'verify', 'retention', 'sqlite restore', 'restore test') {
            $cases[$n].ErrorId | Should -BeNullOrEmpty -Because "$n works in the sandbox: $($cases[$n].Message)"
        }
        $cases['verify'].Output | Should -Be @('True')
        $cases['sqlite restore'].Output | Should -Be @('True')
        $cases['restore test'].Output | Should -Be @('Passed (database only)')
    }

    It 'applies the Azure Automation memory cap automatically and says so in -Verbose' {
        $verbose = $cases['sqlite backup'].Output | Where-Object { $_ -like 'VERBOSE:*' }
        $verbose | Should -Contain ($verbose | Where-Object { $_ -like '*Running in the Azure Automation cloud sandbox*IDENTITY_HEADER*' } | Select-Object -First 1)
        ($verbose | Where-Object { $_ -like '*Memory (the Azure Automation default cap of 64 MB*zstd workers 1*' }) | Should -Not -BeNullOrEmpty
    }
}

Describe 'HUBDR_AUTOMATION_SANDBOX overrides the detection' {
    It '0 lets processes start despite the sandbox signals' {
        $envZero = $sandboxEnv.Clone(); $envZero.HUBDR_AUTOMATION_SANDBOX = '0'
        $c = Invoke-Case -Name 'override0' -Environment $envZero -Body @"
`$store = "`$work/store-override0"; `$null = New-Item -ItemType Directory `$store
Case 'manifest' { New-HubBackup -Store `$store -Hub contoso -RecipientKeyPath `$keys -SigningKeyPath `$keys -Passphrase `$pass -DatabaseEngine sqlite -ConnectionString '$db' -ManifestCommand $(& $touch 'override0') | ForEach-Object BackupId }
"@
        $c['manifest'].ErrorId | Should -Not -Be 'ChildProcessUnavailable'
        Test-Path (Join-Path $markers 'override0') | Should -BeTrue
        Remove-Item (Join-Path $markers 'override0')
    }

    It '1 refuses child processes on an ordinary machine' {
        $c = Invoke-Case -Name 'override1' -Environment @{ HUBDR_AUTOMATION_SANDBOX = '1'; AUTOMATION_ASSET_ACCOUNTID = $null; IDENTITY_ENDPOINT = $null; IDENTITY_HEADER = $null } -Body @"
`$store = "`$work/store-override1"; `$null = New-Item -ItemType Directory `$store
Case 'config' { New-HubBackup -Store `$store -Hub contoso -RecipientKeyPath `$keys -SigningKeyPath `$keys -Passphrase `$pass -DatabaseEngine sqlite -ConnectionString '$db' -ConfigCommand $(& $touch 'override1') }
"@
        $c['config'].ErrorId | Should -Be 'ChildProcessUnavailable'
        $c['config'].Message | Should -BeLike '*HUBDR_AUTOMATION_SANDBOX=1 (explicit)*'
        Test-Path (Join-Path $markers 'override1') | Should -BeFalse
    }
}

Describe 'The memory cap in a real pwsh (peak RSS from /proc/<pid>/status)' -Skip:(-not $IsLinux) {
    BeforeAll {
        # ~120 MB of SQLite: JSON-ish text and random blobs.
        $script:big = Join-Path $work 'big.db'
        Invoke-Sqlite -Database $big -Sql "CREATE TABLE events(id INTEGER PRIMARY KEY, kind TEXT, payload TEXT, blob BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 350000) INSERT INTO events SELECT i, 'kind-' || (i % 17), printf('{""user"":%d,""note"":""%s""}', i % 9973, hex(randomblob(40))), randomblob(200) FROM n;"
        $script:measure = @'
param($Store, $Extra)
$before = [long](@((Get-Content /proc/$PID/status) -match '^VmRSS')[0] -replace '\D', '')
$v = New-HubBackup -Store $Store -Hub big -RecipientKeyPath $keys -SigningKeyPath $keys -Passphrase $pass -DatabaseEngine sqlite -ConnectionString '{0}' @Extra -Verbose 4>&1
$peak = [long](@((Get-Content /proc/$PID/status) -match '^VmHWM')[0] -replace '\D', '')
"{{0}}" -f (($peak - $before) / 1024)
($v | Where-Object {{ $_ -is [System.Management.Automation.VerboseRecord] -and $_.Message -like 'Memory (*' }}).Message
'@ -f $big
    }

    It 'a capped backup (-MaxMemoryMB 32) stays within cap + 64 MB above the pwsh it runs in' {
        $c = Invoke-Case -Name 'rss-cap' -Body @"
`$store = "`$work/store-rss-cap"; `$null = New-Item -ItemType Directory `$store
`$m = [scriptblock]::Create(@'
$measure
'@)
Case 'rss' { & `$m `$store @{ MaxMemoryMB = 32 } }
"@
        $c['rss'].ErrorId | Should -BeNullOrEmpty -Because $c['rss'].Message
        $grewMB = [double]$c['rss'].Output[0]
        $c['rss'].Output[1] | Should -BeLike 'Memory (MaxMemoryMB 32)*'
        Write-Host "    peak RSS growth with -MaxMemoryMB 32: $([int]$grewMB) MB"
        $grewMB | Should -BeLessThan (32 + 64)
    }

    It 'the automatic Azure Automation cap holds too' {
        $c = Invoke-Case -Name 'rss-auto' -Environment $sandboxEnv -Body @"
`$store = "`$work/store-rss-auto"; `$null = New-Item -ItemType Directory `$store
`$m = [scriptblock]::Create(@'
$measure
'@)
Case 'rss' { & `$m `$store @{} }
"@
        $c['rss'].ErrorId | Should -BeNullOrEmpty -Because $c['rss'].Message
        $grewMB = [double]$c['rss'].Output[0]
        $c['rss'].Output[1] | Should -BeLike 'Memory (the Azure Automation default cap of 64 MB*'
        Write-Host "    peak RSS growth with the Automation default cap: $([int]$grewMB) MB"
        $grewMB | Should -BeLessThan (64 + 64)
    }
}
