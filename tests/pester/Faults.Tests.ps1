#requires -Version 7.4
# A failed backup must END: New-HubBackup runs in a child pwsh against a real PostgreSQL database that is big enough
# for the dump to be mid-stream, a fault is injected (pg_dump killed, its backend terminated, the store's tmpfs full,
# the S3 emulator stopped), and the child must print the typed error AND exit within a bound. Not a timing test: a hang
# detector (before the fix the zstd worker threads kept pwsh alive forever after the error).
# Also: secret files (the pgpass) live where a reboot clears them and a later run removes the ones a killed run left.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module $env:HUBDR_MODULE_PATH -Force
    foreach ($v in 'HUBDR_TEST_PG_HOST', 'HUBDR_TEST_PG_PORT', 'HUBDR_TEST_PG_USER', 'HUBDR_TEST_PG_PASSWORD', 'HUBDR_TEST_PG_BINDIR') {
        [Environment]::GetEnvironmentVariable($v) | Should -Not -BeNullOrEmpty -Because "build.ps1 Test starts PostgreSQL and sets $v"
    }
    $script:work = New-TestDirectory 'hubdr-faults'
    $script:keys = New-TestKeySet -Path (Join-Path $work 'keys')
    $script:psql = Join-Path $env:HUBDR_TEST_PG_BINDIR 'psql'
    $script:dbName = 'hubdr_faults_' + (Get-Random -Maximum 1000000)

    function script:Invoke-Psql([string] $Sql, [string] $Database = 'postgres') {
        $env:PGPASSWORD = $env:HUBDR_TEST_PG_PASSWORD
        try {
            $out = & $psql -X -q -t -A -v ON_ERROR_STOP=1 -h $env:HUBDR_TEST_PG_HOST -p $env:HUBDR_TEST_PG_PORT -U $env:HUBDR_TEST_PG_USER -d $Database -c $Sql 2>&1
            if ($LASTEXITCODE -ne 0) { throw "psql failed: $out" }
            return $out
        }
        finally { Remove-Item Env:PGPASSWORD -ErrorAction SilentlyContinue }
    }

    # ~300 MB of poorly compressible text: the dump takes seconds, so every fault below lands mid-stream.
    Invoke-Psql "CREATE DATABASE $dbName" | Out-Null
    Invoke-Psql @"
CREATE TABLE big(id bigint PRIMARY KEY, a text, b text, c text);
INSERT INTO big SELECT g, md5(g::text), md5((g * 7)::text), md5((g * 13)::text) FROM generate_series(1, 3000000) g;
"@ -Database $dbName | Out-Null

    # The child's script: parameters come through the environment; it prints the error id and ends (exit 3).
    $script:childScript = Join-Path $work 'child.ps1'
    @'
$ErrorActionPreference = 'Stop'
$PSStyle.OutputRendering = 'PlainText'
Import-Module $env:HUBDR_MODULE_PATH
$cred = [pscredential]::new($env:FAULT_PG_USER, (ConvertTo-SecureString $env:FAULT_PG_PASSWORD -AsPlainText -Force))
$pass = ConvertTo-SecureString $env:FAULT_KEY_PASSPHRASE -AsPlainText -Force
$extra = @{}
if ($env:FAULT_S3_ENDPOINT) {
    $extra.StoreEndpoint = $env:FAULT_S3_ENDPOINT
    $extra.StoreCredential = [pscredential]::new('S3RVER', (ConvertTo-SecureString 'S3RVER' -AsPlainText -Force))
}
try {
    New-HubBackup -Store $env:FAULT_STORE -Hub contoso -DatabaseEngine postgres -ConnectionString $env:FAULT_CONNECTION_STRING `
        -DatabaseCredential $cred -RecipientKeyPath $env:FAULT_RECIPIENT -SigningKeyPath $env:FAULT_SIGNING_KEY -Passphrase $pass @extra | Out-Null
    'HUBDR-RESULT: no error'
}
catch {
    "HUBDR-ERROR: $($_.FullyQualifiedErrorId)"
    "HUBDR-MESSAGE: $_"
    exit 3
}
'@ | Set-Content $childScript

    function script:Start-BackupChild([string] $Store, [hashtable] $Extra = @{}) {
        $pwsh = Get-PwshCommand
        $psi = [Diagnostics.ProcessStartInfo]::new($pwsh[0])
        foreach ($a in @($pwsh | Select-Object -Skip 1) + @('-NoProfile', '-NonInteractive', '-File', $childScript)) { $psi.ArgumentList.Add($a) }
        $psi.RedirectStandardOutput = $true
        $psi.RedirectStandardError = $true
        $psi.UseShellExecute = $false
        $psi.Environment['HUBDR_MODULE_PATH'] = $env:HUBDR_MODULE_PATH
        $psi.Environment['FAULT_STORE'] = $Store
        $psi.Environment['FAULT_CONNECTION_STRING'] = "Host=$($env:HUBDR_TEST_PG_HOST);Port=$($env:HUBDR_TEST_PG_PORT);Database=$dbName"
        $psi.Environment['FAULT_PG_USER'] = $env:HUBDR_TEST_PG_USER
        $psi.Environment['FAULT_PG_PASSWORD'] = $env:HUBDR_TEST_PG_PASSWORD
        $psi.Environment['FAULT_RECIPIENT'] = $keys.Ops.PublicKeyPath
        $psi.Environment['FAULT_SIGNING_KEY'] = $keys.Ops.SecretKeyPath
        $psi.Environment['FAULT_KEY_PASSPHRASE'] = $keys.PlainPassphrase
        foreach ($k in $Extra.Keys) { $psi.Environment[$k] = $Extra[$k] }
        $p = [Diagnostics.Process]::Start($psi)
        $out = $p.StandardOutput.ReadToEndAsync()
        $err = $p.StandardError.ReadToEndAsync()
        [pscustomobject]@{ Process = $p; Stdout = $out; Stderr = $err }
    }

    function script:Get-ChildProcessId([int] $ParentId, [string] $Name) {
        <# Direct children of $ParentId whose command name is $Name (from /proc). #>
        foreach ($stat in Get-ChildItem /proc -Directory -ErrorAction SilentlyContinue | Where-Object Name -match '^\d+$') {
            $text = Get-Content (Join-Path $stat.FullName 'stat') -Raw -ErrorAction SilentlyContinue
            if (-not $text) { continue }
            $close = $text.LastIndexOf(')')
            $comm = $text.Substring($text.IndexOf('(') + 1, $close - $text.IndexOf('(') - 1)
            $ppid = [int]($text.Substring($close + 2).Split(' ')[1])
            if ($ppid -ne $ParentId -or $comm -ne $Name) { continue }
            # Not the short-lived version probe the pre-flight runs first ('pg_dump --version').
            $cmdline = (Get-Content (Join-Path $stat.FullName 'cmdline') -Raw -ErrorAction SilentlyContinue) -replace "`0", ' '
            if ($cmdline -and $cmdline -notmatch '--version') { [int]$stat.Name }
        }
    }

    function script:Get-FolderBytes([string] $Path) {
        (Get-ChildItem $Path -Recurse -File -Force -ErrorAction SilentlyContinue | Measure-Object Length -Sum).Sum + 0
    }

    function script:Wait-Until([scriptblock] $Condition, [int] $Seconds, [string] $What) {
        $deadline = [DateTime]::UtcNow.AddSeconds($Seconds)
        while ([DateTime]::UtcNow -lt $deadline) {
            $r = & $Condition
            if ($r) { return $r }
            Start-Sleep -Milliseconds 50
        }
        throw "Timed out after $Seconds s waiting for: $What"
    }

    function script:Wait-ChildEnd($Child, [int] $Seconds = 60) {
        <# The hang detector: the child must exit on its own within $Seconds; if not it is killed and the test fails. #>
        $exited = $Child.Process.WaitForExit($Seconds * 1000)
        if (-not $exited) {
            $Child.Process.Kill($true)
            $Child.Process.WaitForExit(10000) | Out-Null
        }
        $plain = { param($t) $t -replace "`e\[[0-9;]*[A-Za-z]", '' }
        [pscustomobject]@{ Exited = $exited; Stdout = (& $plain $Child.Stdout.Result); Stderr = (& $plain $Child.Stderr.Result); ExitCode = $Child.Process.ExitCode }
    }

    function script:Wait-ProcessGone([int] $ProcessId) {
        <# The child's pg_dump must not outlive it (it is killed, not orphaned). #>
        $null = Wait-Until { -not (Test-Path "/proc/$ProcessId") -or (Get-Content "/proc/$ProcessId/stat" -Raw -ErrorAction SilentlyContinue) -match '^\d+ \(pg_dump\) Z' } 15 "pg_dump ($ProcessId) to end"
    }

    function script:Start-MidDumpChild([string] $Store, [hashtable] $Extra = @{}, [scriptblock] $Progress) {
        <# Starts the child and returns once its pg_dump runs AND $Progress says the stream is under way. #>
        $child = Start-BackupChild -Store $Store -Extra $Extra
        $pgDump = Wait-Until { Get-ChildProcessId -ParentId $child.Process.Id -Name 'pg_dump' } 120 'pg_dump to start'
        $null = Wait-Until $Progress 120 'the archive upload to be under way'
        $child | Add-Member -NotePropertyName PgDump -NotePropertyValue ([int]@($pgDump)[0]) -PassThru
    }
}

AfterAll {
    try { Invoke-Psql "DROP DATABASE IF EXISTS $dbName WITH (FORCE)" | Out-Null } catch { Write-Warning $_ }
    Remove-Item $script:work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'A failed backup ends the process (no leaked threads or processes)' {
    It 'pg_dump killed mid-dump: DatabaseDumpFailed, and pwsh exits' {
        $store = Join-Path $work 'store-kill'
        $null = New-Item -ItemType Directory $store
        $child = Start-MidDumpChild -Store $store -Progress { (Get-FolderBytes $store) -gt 2MB }
        Stop-Process -Id $child.PgDump -Force  # SIGKILL
        $end = Wait-ChildEnd $child
        $end.Exited | Should -BeTrue -Because "the child must exit after the error; its output: $($end.Stdout) $($end.Stderr)"
        $end.Stdout | Should -Match 'HUBDR-ERROR: DatabaseDumpFailed,'
        $end.ExitCode | Should -Be 3
        Wait-ProcessGone $child.PgDump
        # The store marker (hubdr-store.json, written before the backup started) and the audit record stay.
        Get-ChildItem $store -Recurse -File -Force | Where-Object { $_.FullName -notmatch '[\\/]_audit[\\/]' -and $_.Name -ne 'hubdr-store.json' } |
            Should -BeNullOrEmpty -Because 'the aborted upload leaves nothing behind'
    }

    It 'the dump''s backend terminated on the server: DatabaseDumpFailed, and pwsh exits' {
        $store = Join-Path $work 'store-terminate'
        $null = New-Item -ItemType Directory $store
        $child = Start-MidDumpChild -Store $store -Progress { (Get-FolderBytes $store) -gt 2MB }
        $killed = Invoke-Psql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '$dbName' AND application_name = 'hubdr' AND query ILIKE 'COPY%'"
        [int]"$killed".Trim() | Should -BeGreaterThan 0 -Because 'the dump''s COPY was running'
        $end = Wait-ChildEnd $child
        $end.Exited | Should -BeTrue -Because "the child must exit after the error; its output: $($end.Stdout) $($end.Stderr)"
        $end.Stdout | Should -Match 'HUBDR-ERROR: DatabaseDumpFailed,'
    }

    It 'the store''s disk fills up (a real 8 MiB tmpfs): a typed store error, and pwsh exits' {
        $store = Join-Path $work 'store-tmpfs'
        $null = New-Item -ItemType Directory $store
        & /usr/bin/mount -t tmpfs -o size=8m tmpfs $store
        $LASTEXITCODE | Should -Be 0 -Because 'the test mounts a real tmpfs (runs as root)'
        try {
            $child = Start-MidDumpChild -Store $store -Progress { (Get-FolderBytes $store) -gt 1MB }
            $end = Wait-ChildEnd $child
            $end.Exited | Should -BeTrue -Because "the child must exit after the error; its output: $($end.Stdout) $($end.Stderr)"
            $end.Stdout | Should -Match 'HUBDR-ERROR: StoreFull,HubDr.Cmdlets.NewHubBackupCommand'
            $end.Stdout | Should -Not -Match 'UnexpectedError'
            $end.Stdout | Should -Match 'No space left|full'
            Wait-ProcessGone $child.PgDump
        }
        finally {
            & /usr/bin/umount $store
        }
    }

    It 'the S3 emulator stops mid-upload: a typed store error, and pwsh exits' {
        $listener = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0)
        $listener.Start(); $port = $listener.LocalEndpoint.Port; $listener.Stop()
        $s3Dir = Join-Path $work 's3-data'
        $null = New-Item -ItemType Directory $s3Dir
        $server = Join-Path $PSScriptRoot '../emulators/s3-server.js'
        $node = Start-Process -FilePath node -ArgumentList @('--openssl-legacy-provider', $server, '--directory', $s3Dir, '--address', '127.0.0.1', '--port', $port) `
            -PassThru -RedirectStandardOutput (Join-Path $work 's3.log') -RedirectStandardError (Join-Path $work 's3.err')
        try {
            $endpoint = "http://127.0.0.1:$port"
            $null = Wait-Until { try { Invoke-WebRequest $endpoint -SkipHttpErrorCheck -TimeoutSec 2 | Out-Null; $true } catch { $false } } 60 'the S3 emulator'
            $bucket = 'hubdr-faults'
            $env:AWS_ACCESS_KEY_ID = 'S3RVER'; $env:AWS_SECRET_ACCESS_KEY = 'S3RVER'; $env:AWS_DEFAULT_REGION = 'us-east-1'
            try { & aws --endpoint-url $endpoint s3api create-bucket --bucket $bucket | Out-Null }
            finally { Remove-Item Env:AWS_ACCESS_KEY_ID, Env:AWS_SECRET_ACCESS_KEY, Env:AWS_DEFAULT_REGION -ErrorAction SilentlyContinue }
            $child = Start-MidDumpChild -Store "s3://$bucket/prod" -Extra @{ FAULT_S3_ENDPOINT = $endpoint } -Progress { (Get-FolderBytes $s3Dir) -gt 1MB }
            $node.Kill()
            $node.WaitForExit(10000) | Out-Null
            # The store retries with backoff before it gives up: a wider bound, still a hang detector.
            $end = Wait-ChildEnd $child 120
            $end.Exited | Should -BeTrue -Because "the child must exit after the error; its output: $($end.Stdout) $($end.Stderr)"
            $end.Stdout | Should -Match 'HUBDR-ERROR: Store[A-Za-z]+,'
            Wait-ProcessGone $child.PgDump
        }
        finally {
            if (-not $node.HasExited) { $node.Kill() }
        }
    }
}

Describe 'Secret files survive no kill -9' {
    It 'the pgpass of a killed run is on tmpfs (or the runtime dir), owner-only, and the next run removes it' {
        $store = Join-Path $work 'store-kill9'
        $null = New-Item -ItemType Directory $store
        $child = Start-MidDumpChild -Store $store -Progress { (Get-FolderBytes $store) -gt 1MB }
        # pg_dump got the passfile through PGPASSFILE (never argv): read it from its environment.
        $environ = [IO.File]::ReadAllText("/proc/$($child.PgDump)/environ") -split "`0"
        $passFile = ($environ | Where-Object { $_ -like 'PGPASSFILE=*' }) -replace '^PGPASSFILE=', ''
        $passFile | Should -Not -BeNullOrEmpty
        $folder = Split-Path $passFile -Parent
        (Split-Path $folder -Leaf) | Should -Match "^hubdr-$($child.Process.Id)-[0-9]+-[0-9a-f]{16}$"
        $base = Split-Path $folder -Parent
        $expectedBase = if ($env:XDG_RUNTIME_DIR -and (Test-Path $env:XDG_RUNTIME_DIR)) { $env:XDG_RUNTIME_DIR } else { '/dev/shm' }
        $base | Should -Be $expectedBase
        (& stat -f -c '%T' $base) | Should -Be 'tmpfs' -Because 'a reboot must clear it'
        (& stat -c '%a' $folder) | Should -Be '700'
        (& stat -c '%a' $passFile) | Should -Be '600'

        Stop-Process -Id $child.Process.Id -Force  # SIGKILL: no chance to clean up
        $child.Process.WaitForExit(10000) | Should -BeTrue
        Stop-Process -Id $child.PgDump -Force -ErrorAction SilentlyContinue
        Test-Path $passFile | Should -BeTrue -Because 'kill -9 gives the process no chance to clean up'

        # The next run (any engine) removes what the dead process left.
        $db = Join-Path $work 'next.db'
        New-SampleSqliteHub -Path $db -Rows 5
        $null = New-HubBackup -Store $store -Hub contoso -DatabaseEngine sqlite -ConnectionString $db -RecipientKeyPath $keys.Ops.PublicKeyPath `
            -SigningKeyPath $keys.Ops.SecretKeyPath -Passphrase $keys.Passphrase
        Test-Path $folder | Should -BeFalse -Because 'the owner process is gone, so the folder is stale'
    }
}
