<#
.SYNOPSIS
    HubDr benchmark: New-HubBackup / Restore-HubBackup / Test-HubBackupSignature against named baselines, measured
    side by side in one run on the same machine (issue 7; method and results in docs/performance.md).

.DESCRIPTION
    1. Starts its own throwaway PostgreSQL/MariaDB (tests/servers/servers.sh, ports 56432/56306 unless
       HUBDR_BENCH_PG_PORT/HUBDR_BENCH_MYSQL_PORT say otherwise) unless they already run; installs restic and GNU
       time via apt when missing.
    2. Generates a database of about -SizeMB of realistic, moderately compressible data (uuids, jsonb, text from a
       fixed vocabulary with randomness, numerics, timestamps, ~10% random bytea), server-side.
    3. Baselines: (1) the runbook's manual pipeline (dump to file, tar -czf, gpg --encrypt, gpg --detach-sign);
       (2) dump | restic backup --stdin into a fresh local repository; (3) the floor: the dump to /dev/null.
       HubDr runs in separate pwsh processes (bench/HubDrStep.ps1) under /usr/bin/time -v for peak RSS.
       Restore-HubBackup vs the native restore of an uncompressed dump file; Test-HubBackupSignature vs gpg --verify.
       Memory scaling: HubDr backups at SizeMB/4 and SizeMB/2 (peak RSS must stay flat).
    4. Prints a table (measurement, value, baseline, ratio, target, PASS/MISS) and writes JSON to -OutputPath.

.EXAMPLE
    dotnet pwsh ./bench/Invoke-Benchmark.ps1 -ModulePath ./out/HubDr/HubDr.psd1 -SizeMB 256
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [ValidateRange(1, 1048576)] [int] $SizeMB = 1536,
    [ValidateSet('postgres', 'mariadb', 'sqlite')] [string] $Engine = 'postgres',
    # Keep the generated databases, repositories and archives (and the servers running) for inspection.
    [switch] $KeepData,
    # JSON result file; default bench/results/<timestamp>-<engine>-<size>MB.json.
    [string] $OutputPath,
    # Skip the HubDr backups at SizeMB/4 and SizeMB/2 (peak RSS flatness).
    [switch] $SkipMemoryScaling,
    # Rounds of the timed comparisons (floor, restic, HubDr backup; native and HubDr restore; gpg and HubDr verify), run
    # interleaved; the table uses the median of each (single runs on a shared 2-core VM vary by 10-20 %).
    [ValidateRange(1, 9)] [int] $Repeat = 3,
    # Extra runs for docs/performance.md: New-HubBackup with -Compression none and gzip, and a tiny database (fixed costs).
    [switch] $ProfileStages,
    # Scratch folder (generated dumps, repositories, archives); deleted at the end unless -KeepData.
    [string] $WorkDir = '/tmp/hubdr-bench',
    [string] $ServerDir = '/tmp/bench-servers'
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

$Root = Split-Path -Parent $PSScriptRoot
$ModulePath = (Resolve-Path -LiteralPath $ModulePath).Path
$StepScript = Join-Path $PSScriptRoot 'HubDrStep.ps1'
if (-not $OutputPath) {
    $OutputPath = Join-Path $PSScriptRoot ("results/{0}-{1}-{2}MB.json" -f (Get-Date -AsUTC -Format 'yyyyMMddTHHmmssZ'), $Engine, $SizeMB)
}
$PgPort = if ($env:HUBDR_BENCH_PG_PORT) { [int]$env:HUBDR_BENCH_PG_PORT } else { 56432 }
$MyPort = if ($env:HUBDR_BENCH_MYSQL_PORT) { [int]$env:HUBDR_BENCH_MYSQL_PORT } else { 56306 }
$Db = 'bench'

# ---------------------------------------------------------------------------------------------------- helpers
$LoadSamples = [Collections.Generic.List[object]]::new()
function Write-Step([string] $Text) {
    # The machine may be shared: every step records the load average so noisy runs are visible in the JSON.
    $load = (Get-Content /proc/loadavg -Raw).Split(' ')[0]
    $LoadSamples.Add([ordered]@{ utc = (Get-Date).ToUniversalTime().ToString('o'); step = $Text; loadavg1 = [double]$load })
    Write-Host ("[{0:HH:mm:ss}] (load {1}) {2}" -f (Get-Date), $load, $Text)
}

function Invoke-Sh {
    <# Runs a bash snippet (set -euo pipefail); throws on failure. Secrets only via the environment. #>
    param([Parameter(Mandatory)] [string] $Script, [switch] $Capture)
    if ($Capture) {
        $out = & bash -c "set -euo pipefail; $Script"
        if ($LASTEXITCODE -ne 0) { throw "Command failed (exit $LASTEXITCODE): $Script" }
        return ($out -join "`n")
    }
    & bash -c "set -euo pipefail; $Script" | Out-Host
    if ($LASTEXITCODE -ne 0) { throw "Command failed (exit $LASTEXITCODE): $Script" }
}

function Get-BusyCpuSeconds {
    <# Whole-machine busy CPU time so far (all cores: user+nice+system+irq+softirq+steal from /proc/stat), in seconds. #>
    $f = (Get-Content /proc/stat -TotalCount 1) -split '\s+'
    $jiffies = 0L
    foreach ($i in 1, 2, 3, 6, 7, 8) { $jiffies += [long]$f[$i] }
    return $jiffies / 100.0
}

# Busy CPU seconds of the whole machine during the last Measure-Sh / Invoke-HubDrStep (every process: the database
# server, the dump tool, HubDr or the baseline tools). On a 2-core machine this shows whether a step is CPU-bound.
$script:LastCpuSeconds = 0.0

function Measure-Sh {
    <# Wall seconds of a bash snippet (and machine CPU seconds in $script:LastCpuSeconds). #>
    param([Parameter(Mandatory)] [string] $Script)
    $cpu0 = Get-BusyCpuSeconds
    $sw = [Diagnostics.Stopwatch]::StartNew()
    Invoke-Sh $Script
    $script:LastCpuSeconds = [math]::Round((Get-BusyCpuSeconds) - $cpu0, 2)
    return [math]::Round($sw.Elapsed.TotalSeconds, 3)
}

function Get-Median([double[]] $Values) {
    $sorted = @($Values | Sort-Object)
    if ($sorted.Count -eq 0) { return 0 }
    $mid = [int][math]::Floor($sorted.Count / 2)
    if ($sorted.Count % 2) { return $sorted[$mid] }
    return [math]::Round(($sorted[$mid - 1] + $sorted[$mid]) / 2, 3)
}

function Get-PathBytes([string] $Path) {
    if (-not (Test-Path -LiteralPath $Path)) { return 0 }
    return [long](Invoke-Sh -Capture "du -sb '$Path' | cut -f1")
}

function Get-PwshCommand {
    $exe = [Environment]::ProcessPath
    if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { return @($exe, (Join-Path $PSHOME 'pwsh.dll')) }
    return @($exe)
}

function Invoke-HubDrStep {
    <# One HubDr cmdlet in a separate pwsh under /usr/bin/time -v: process wall, cmdlet time, peak RSS, verbose log. #>
    param([Parameter(Mandatory)] [string] $Action, [hashtable] $Arguments = @{})
    $id = [guid]::NewGuid().ToString('n').Substring(0, 8)
    $resultFile = Join-Path $WorkDir "step-$Action-$id.json"
    $timeFile = Join-Path $WorkDir "step-$Action-$id.time"
    $argv = @('-v', '-o', $timeFile) + (Get-PwshCommand) + @('-NoProfile', '-NonInteractive', '-File', $StepScript,
        '-ModulePath', $ModulePath, '-Action', $Action, '-ResultPath', $resultFile)
    foreach ($k in $Arguments.Keys) { $argv += @("-$k", [string]$Arguments[$k]) }
    $cpu0 = Get-BusyCpuSeconds
    $sw = [Diagnostics.Stopwatch]::StartNew()
    & /usr/bin/time @argv | Out-Host
    $wall = [math]::Round($sw.Elapsed.TotalSeconds, 3)
    $script:LastCpuSeconds = [math]::Round((Get-BusyCpuSeconds) - $cpu0, 2)
    if ($LASTEXITCODE -ne 0) { throw "HubDr step '$Action' failed (exit $LASTEXITCODE); see above." }
    $r = Get-Content -LiteralPath $resultFile -Raw | ConvertFrom-Json
    $maxRssKb = 0
    $userSys = 0.0
    foreach ($line in Get-Content -LiteralPath $timeFile) {
        if ($line -match 'Maximum resident set size \(kbytes\):\s*(\d+)') { $maxRssKb = [long]$Matches[1] }
        if ($line -match '(User|System) time \(seconds\):\s*([\d.]+)') { $userSys += [double]$Matches[2] }
    }
    Remove-Item -LiteralPath $resultFile, $timeFile -Force
    [pscustomobject]@{
        Action = $Action; WallSeconds = $wall; CmdletSeconds = $r.seconds; ImportSeconds = $r.importSeconds
        MachineCpuSeconds = $script:LastCpuSeconds; ProcessCpuSeconds = [math]::Round($userSys, 2)
        PeakRssBytes = $maxRssKb * 1024; VmHwmBytes = [long]$r.vmHwmBytes; Gc = $r.gc; Verbose = $r.verbose; Output = $r.output
    }
}

function Install-Debian([string] $Command, [string] $Package) {
    if (Test-Path $Command) { return }
    if (Get-Command $Command -ErrorAction SilentlyContinue) { return }
    Write-Step "Installing Debian package '$Package'"
    Invoke-Sh "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $Package >/dev/null || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $Package >/dev/null; }"
}

function Test-Port([int] $Port) {
    try { $c = [Net.Sockets.TcpClient]::new(); $c.Connect('127.0.0.1', $Port); $c.Dispose(); return $true } catch { return $false }
}

# A fixed vocabulary: Hub-ish operational prose.
$Vocabulary = @'
the a an of to and in for on with by from at as is are was were be been has have had will would can could should
module manifest config deployment tenant backup restore archive snapshot cluster node service request response user
account invoice order payment customer product catalog price quantity discount shipment warehouse region zone
release version upgrade rollback migration schema table index query transaction commit replica primary secondary
error warning notice info debug trace latency throughput timeout retry queue worker job schedule cron event stream
message topic partition offset consumer producer cache memory disk network bandwidth storage bucket container blob
key secret token certificate signature policy role permission group audit log metric alert dashboard incident
owner team project environment staging production development review approved rejected pending active inactive
created updated deleted restored archived published draft expired renewed suspended verified failed succeeded
quickly slowly safely carefully automatically manually weekly daily hourly monthly nightly every each all some
new old large small fast slow critical minor major high low internal external public private shared dedicated
north south east west central global local remote primary fallback default custom legacy modern stable beta
report summary detail overview status health check probe endpoint gateway proxy balancer router firewall rule
'@ -split '\s+' | Where-Object { $_ }

# ---------------------------------------------------------------------------------------------------- setup
$started = Get-Date
$results = [ordered]@{
    tool = 'HubDr bench'; engine = $Engine; sizeMB = $SizeMB; startedUtc = (Get-Date).ToUniversalTime().ToString('o')
    machine = [ordered]@{
        cores = [Environment]::ProcessorCount
        cpu = ((Get-Content /proc/cpuinfo | Where-Object { $_ -like 'model name*' } | Select-Object -First 1) -replace '^model name\s*:\s*', '')
        memoryGB = [math]::Round(([long]((Get-Content /proc/meminfo | Select-Object -First 1) -replace '\D', '')) / 1MB, 1)
        os = ((Get-Content /etc/os-release | Where-Object { $_ -like 'PRETTY_NAME=*' }) -replace 'PRETTY_NAME=|"', '')
        dotnet = [Environment]::Version.ToString(); pwsh = $PSVersionTable.PSVersion.ToString()
    }
    data = [ordered]@{}; measurements = [ordered]@{}; memoryScaling = [ordered]@{}; profile = [ordered]@{}; rows = @()
}

Install-Debian '/usr/bin/time' 'time'
Install-Debian 'restic' 'restic'
Install-Debian 'gpg' 'gnupg'

if (Test-Path $WorkDir) { Remove-Item -LiteralPath $WorkDir -Recurse -Force }
New-Item -ItemType Directory -Path $WorkDir | Out-Null
Invoke-Sh "chmod 0700 '$WorkDir'"
$secretDir = Join-Path $WorkDir 'secret'
New-Item -ItemType Directory -Path $secretDir | Out-Null
Invoke-Sh "chmod 0700 '$secretDir'"

$startedServers = $false
if ($Engine -ne 'sqlite') {
    $envFile = Join-Path $ServerDir 'servers.env'
    if (-not ((Test-Path $envFile) -and (Test-Port $PgPort) -and (Test-Port $MyPort))) {
        Write-Step "Starting throwaway PostgreSQL :$PgPort and MariaDB :$MyPort in $ServerDir"
        $env:HUBDR_PG_PORT = $PgPort; $env:HUBDR_MYSQL_PORT = $MyPort
        Invoke-Sh "bash '$Root/tests/servers/servers.sh' start '$ServerDir'"
        $startedServers = $true
    }
    $srv = @{}
    foreach ($line in Get-Content -LiteralPath $envFile) { if ($line -match '^([A-Z_]+)=(.*)$') { $srv[$Matches[1]] = $Matches[2] } }
}

# Key passphrase for HubDr keys (environment only).
$env:HUBDR_BENCH_KEY_PASSPHRASE = [Convert]::ToBase64String([Security.Cryptography.RandomNumberGenerator]::GetBytes(24))

switch ($Engine) {
    'postgres' {
        $pgpass = Join-Path $secretDir 'pgpass'
        Set-Content -LiteralPath $pgpass -Value "127.0.0.1:${PgPort}:*:$($srv.HUBDR_TEST_PG_USER):$($srv.HUBDR_TEST_PG_PASSWORD)" -NoNewline
        Invoke-Sh "chmod 0600 '$pgpass'"
        $env:PGPASSFILE = $pgpass; $env:PGHOST = '127.0.0.1'; $env:PGPORT = "$PgPort"; $env:PGUSER = $srv.HUBDR_TEST_PG_USER
        Remove-Item Env:PGPASSWORD -ErrorAction SilentlyContinue
        $env:HUBDR_BENCH_DB_USER = $srv.HUBDR_TEST_PG_USER; $env:HUBDR_BENCH_DB_PASSWORD = $srv.HUBDR_TEST_PG_PASSWORD
        $bin = $srv.HUBDR_TEST_PG_BINDIR
        $psql = "'$bin/psql' -X -q -v ON_ERROR_STOP=1"
        $ConnFor = { param($name) "Host=127.0.0.1;Port=$PgPort;Database=$name" }
        $DumpPlain = "'$bin/pg_dump' -d $Db"                 # the runbook's `pg_dump`
        $DumpFloor = "'$bin/pg_dump' -Fc -Z0 -d $Db"         # what HubDr runs (custom, uncompressed)
        $DumpNative = "'$bin/pg_dump' -Fc -Z0 -d $Db"        # the uncompressed local dump file for the restore baseline
        $RestoreNative = { param($file, $target) "$psql -d postgres -c 'CREATE DATABASE $target TEMPLATE template0' && '$bin/pg_restore' --exit-on-error --single-transaction --no-owner --no-acl -d $target '$file'" }
        $DropDb = { param($name) Invoke-Sh "$psql -d postgres -c 'DROP DATABASE IF EXISTS $name WITH (FORCE)'" }
        $nativeRestoreName = 'pg_restore'
    }
    'mariadb' {
        $myopt = Join-Path $secretDir 'my.cnf'
        Set-Content -LiteralPath $myopt -Value "[client]`nhost=127.0.0.1`nport=$MyPort`nuser=$($srv.HUBDR_TEST_MYSQL_USER)`npassword=`"$($srv.HUBDR_TEST_MYSQL_PASSWORD)`"`nprotocol=TCP`n"
        Invoke-Sh "chmod 0600 '$myopt'"
        $env:HUBDR_BENCH_DB_USER = $srv.HUBDR_TEST_MYSQL_USER; $env:HUBDR_BENCH_DB_PASSWORD = $srv.HUBDR_TEST_MYSQL_PASSWORD
        $mysql = "mariadb --defaults-extra-file='$myopt'"
        $ConnFor = { param($name) "Server=127.0.0.1;Port=$MyPort;Database=$name" }
        $dumpArgs = "--defaults-extra-file='$myopt' --default-character-set=utf8mb4 --single-transaction --routines --triggers --events --hex-blob --skip-dump-date --no-tablespaces --quick --extended-insert $Db"
        $DumpPlain = "mariadb-dump $dumpArgs"
        $DumpFloor = $DumpPlain
        $DumpNative = $DumpPlain
        $RestoreNative = { param($file, $target) "$mysql -e 'CREATE DATABASE $target' && $mysql $target < '$file'" }
        $DropDb = { param($name) Invoke-Sh "$mysql -e 'DROP DATABASE IF EXISTS $name'" }
        $nativeRestoreName = 'mariadb < dump.sql'
    }
    'sqlite' {
        Remove-Item Env:HUBDR_BENCH_DB_PASSWORD -ErrorAction SilentlyContinue
        $sqliteDir = Join-Path $WorkDir 'sqlite'
        New-Item -ItemType Directory -Path $sqliteDir | Out-Null
        $ConnFor = { param($name) Join-Path $sqliteDir "$name.db" }
        $dbFile = & $ConnFor $Db
        $DumpPlain = "sqlite3 '$dbFile' .dump"
        $DumpFloor = $DumpPlain
        $DumpNative = $DumpPlain
        $RestoreNative = { param($file, $target) "sqlite3 '$(& $ConnFor $target)' < '$file'" }
        $DropDb = { param($name) Remove-Item -LiteralPath (& $ConnFor $name) -Force -ErrorAction SilentlyContinue }
        $nativeRestoreName = 'sqlite3 < dump.sql'
    }
}

# ---------------------------------------------------------------------------------------------------- data
$script:generatedBatches = 0
function Get-DatabaseBytes {
    switch ($Engine) {
        'postgres' { [long](Invoke-Sh -Capture "$psql -At -d $Db -c 'SELECT pg_database_size(current_database())'") }
        'mariadb' { [long](Invoke-Sh -Capture "$mysql -N -e `"ANALYZE TABLE $Db.documents, $Db.events`" >/dev/null; $mysql -N -e `"SELECT COALESCE(SUM(data_length+index_length),0) FROM information_schema.tables WHERE table_schema='$Db'`"") }
        'sqlite' { (Get-Item -LiteralPath $dbFile).Length }
    }
}

function Initialize-Database {
    $words = $Vocabulary
    switch ($Engine) {
        'postgres' {
            & $DropDb $Db
            Invoke-Sh "$psql -d postgres -c 'CREATE DATABASE $Db'"
            $hasPgcrypto = (Invoke-Sh -Capture "$psql -At -d $Db -c `"SELECT count(*) FROM pg_available_extensions WHERE name='pgcrypto'`"") -eq '1'
            $results.data.pgcrypto = $hasPgcrypto
            $randBytes = if ($hasPgcrypto) { 'gen_random_bytes(96)' } else { "decode(md5(random()::text)||md5(random()::text)||md5(random()::text)||md5(random()::text)||md5(random()::text)||md5(random()::text),'hex')" }
            $script:PgRandBytes = $randBytes
            $sql = @"
$(if ($hasPgcrypto) { 'CREATE EXTENSION IF NOT EXISTS pgcrypto;' })
CREATE TABLE vocab(id int PRIMARY KEY, w text NOT NULL);
INSERT INTO vocab SELECT (n - 1)::int, w FROM unnest(string_to_array('$($words -join ' ')', ' ')) WITH ORDINALITY AS t(w, n);
CREATE TABLE sentences(id int PRIMARY KEY, s text NOT NULL);
INSERT INTO sentences
SELECT i, initcap(string_agg(v.w, ' ' ORDER BY k)) || '.'
FROM (SELECT i, k, floor(random() * $($words.Count))::int AS r
      FROM generate_series(0, 4095) i, LATERAL generate_series(1, 6 + (i % 13)) k) x
JOIN vocab v ON v.id = x.r
GROUP BY i;
CREATE TABLE documents(
  id uuid PRIMARY KEY, tenant_id int NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz,
  title text NOT NULL, body text NOT NULL, doc jsonb NOT NULL, price numeric(12,2), score double precision,
  status text NOT NULL, attachment bytea);
CREATE TABLE events(
  id bigserial PRIMARY KEY, document_id uuid NOT NULL, at timestamptz NOT NULL, kind text NOT NULL,
  amount numeric(14,4), payload jsonb NOT NULL);
CREATE INDEX events_document ON events(document_id);
"@
            $sqlFile = Join-Path $WorkDir 'schema.sql'
            Set-Content -LiteralPath $sqlFile -Value $sql
            Invoke-Sh "$psql -d $Db -f '$sqlFile'"
        }
        'mariadb' {
            & $DropDb $Db
            Invoke-Sh "$mysql -e 'CREATE DATABASE $Db CHARACTER SET utf8mb4'"
            $sql = @"
CREATE TABLE documents(
  id CHAR(36) PRIMARY KEY, tenant_id INT NOT NULL, created_at DATETIME(6) NOT NULL, title VARCHAR(255) NOT NULL,
  body TEXT NOT NULL, doc JSON NOT NULL, price DECIMAL(12,2), score DOUBLE, status VARCHAR(16) NOT NULL,
  attachment VARBINARY(128)) ENGINE=InnoDB;
CREATE TABLE events(
  id BIGINT AUTO_INCREMENT PRIMARY KEY, document_id CHAR(36) NOT NULL, at DATETIME(6) NOT NULL, kind VARCHAR(16) NOT NULL,
  amount DECIMAL(14,4), payload JSON NOT NULL, KEY events_document(document_id)) ENGINE=InnoDB;
"@
            $sqlFile = Join-Path $WorkDir 'schema.sql'
            Set-Content -LiteralPath $sqlFile -Value $sql
            Invoke-Sh "$mysql $Db < '$sqlFile'"
        }
        'sqlite' {
            Remove-Item -LiteralPath $dbFile -Force -ErrorAction SilentlyContinue
            $values = ($words | ForEach-Object -Begin { $i = 0 } -Process { "($i,'$_')"; $i++ }) -join ','
            $sql = @"
PRAGMA journal_mode=WAL;
CREATE TABLE vocab(id INTEGER PRIMARY KEY, w TEXT NOT NULL);
INSERT INTO vocab VALUES $values;
CREATE TABLE documents(id TEXT PRIMARY KEY, tenant_id INTEGER NOT NULL, created_at TEXT NOT NULL, title TEXT NOT NULL,
  body TEXT NOT NULL, doc TEXT NOT NULL, price NUMERIC, score REAL, status TEXT NOT NULL, attachment BLOB);
CREATE TABLE events(id INTEGER PRIMARY KEY, document_id TEXT NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL,
  amount NUMERIC, payload TEXT NOT NULL);
CREATE INDEX events_document ON events(document_id);
"@
            $sql | & sqlite3 $dbFile
            if ($LASTEXITCODE -ne 0) { throw 'sqlite3 schema failed' }
        }
    }
}

function Add-DataBatch {
    <# One batch of documents (+2 events each). #>
    param([int] $Rows)
    $words = $Vocabulary
    $n = $words.Count
    switch ($Engine) {
        'postgres' {
            $sql = @"
INSERT INTO documents
SELECT gen_random_uuid(), r.a % 500, r.ts, r.ts + r.x * interval '30 days',
  s1.s,
  s2.s || ' ' || s3.s || ' Ref ' || upper(substr(md5(r.x::text), 1, 10)) || ' for tenant ' || (r.a % 500) || '. ' || s4.s || ' ' || s1.s,
  jsonb_build_object(
    'status', (ARRAY['draft','review','published','archived'])[1 + r.b % 4],
    'tags', jsonb_build_array((ARRAY['billing','ops','security','infra','sales','support','legal','hr','data','ml'])[1 + r.c % 10],
                               (ARRAY['eu','us','apac','latam'])[1 + r.d % 4]),
    'metrics', jsonb_build_object('views', floor(r.x * 100000)::int, 'rating', round((r.x * 5)::numeric, 2)),
    'sku', 'SKU-' || upper(substr(md5(r.a::text || r.b::text), 1, 12)),
    'owner', 'user' || (r.b % 2000) || '@example.com'),
  round((r.x * 10000)::numeric, 2), r.x * 100,
  (ARRAY['active','inactive','pending','deleted'])[1 + r.c % 4],
  $script:PgRandBytes
FROM (SELECT g, now() - random() * interval '3 years' AS ts, floor(random() * 4096)::int AS a, floor(random() * 4096)::int AS b,
             floor(random() * 4096)::int AS c, floor(random() * 4096)::int AS d, random() AS x
      FROM generate_series(1, $Rows) g) r
JOIN sentences s1 ON s1.id = r.a JOIN sentences s2 ON s2.id = r.b JOIN sentences s3 ON s3.id = r.c JOIN sentences s4 ON s4.id = r.d;
INSERT INTO events(document_id, at, kind, amount, payload)
SELECT gen_random_uuid(), now() - random() * interval '3 years',
  (ARRAY['created','updated','viewed','shared','deleted','restored'])[1 + floor(random() * 6)::int],
  round((random() * 1000)::numeric, 4),
  jsonb_build_object('ip', '10.' || floor(random() * 255)::int || '.' || floor(random() * 255)::int || '.' || floor(random() * 255)::int,
                     'agent', (ARRAY['Mozilla/5.0','curl/8.1.2','hub-cli/2.3.0','python-requests/2.31'])[1 + floor(random() * 4)::int],
                     'ms', floor(random() * 2000)::int)
FROM generate_series(1, $(2 * $Rows));
"@
            $f = Join-Path $WorkDir 'batch.sql'
            Set-Content -LiteralPath $f -Value $sql
            Invoke-Sh "$psql -d $Db -f '$f'"
        }
        'mariadb' {
            $elt = "ELT(1 + FLOOR(RAND() * $n), $(($words | ForEach-Object { "'$_'" }) -join ','))"
            $sentence = "CONCAT_WS(' ', $((1..12 | ForEach-Object { $elt }) -join ', '))"
            $sql = @"
INSERT INTO documents
SELECT UUID(), FLOOR(RAND() * 500), NOW(6) - INTERVAL FLOOR(RAND() * 94608000) SECOND,
  $sentence,
  CONCAT($sentence, '. ', $sentence, '. Ref ', UPPER(LEFT(MD5(RAND()), 10)), '. ', $sentence, '.'),
  JSON_OBJECT('status', ELT(1 + FLOOR(RAND() * 4), 'draft','review','published','archived'),
              'tags', JSON_ARRAY(ELT(1 + FLOOR(RAND() * 5), 'billing','ops','security','infra','sales'), ELT(1 + FLOOR(RAND() * 4), 'eu','us','apac','latam')),
              'metrics', JSON_OBJECT('views', FLOOR(RAND() * 100000), 'rating', ROUND(RAND() * 5, 2)),
              'sku', CONCAT('SKU-', UPPER(LEFT(MD5(RAND()), 12))), 'owner', CONCAT('user', FLOOR(RAND() * 2000), '@example.com')),
  ROUND(RAND() * 10000, 2), RAND() * 100, ELT(1 + FLOOR(RAND() * 4), 'active','inactive','pending','deleted'),
  RANDOM_BYTES(96)
FROM seq_1_to_$Rows;
INSERT INTO events(document_id, at, kind, amount, payload)
SELECT UUID(), NOW(6) - INTERVAL FLOOR(RAND() * 94608000) SECOND,
  ELT(1 + FLOOR(RAND() * 6), 'created','updated','viewed','shared','deleted','restored'), ROUND(RAND() * 1000, 4),
  JSON_OBJECT('ip', CONCAT('10.', FLOOR(RAND() * 255), '.', FLOOR(RAND() * 255), '.', FLOOR(RAND() * 255)),
              'agent', ELT(1 + FLOOR(RAND() * 4), 'Mozilla/5.0','curl/8.1.2','hub-cli/2.3.0','python-requests/2.31'), 'ms', FLOOR(RAND() * 2000))
FROM seq_1_to_$(2 * $Rows);
"@
            $f = Join-Path $WorkDir 'batch.sql'
            Set-Content -LiteralPath $f -Value $sql
            Invoke-Sh "$mysql $Db < '$f'"
        }
        'sqlite' {
            $w = "(SELECT w FROM vocab WHERE id = (abs(random()) + g * 0) % $n)"
            $sentence = "(" + ((1..12 | ForEach-Object { $w }) -join " || ' ' || ") + ")"
            $off = $script:generatedBatches * $Rows
            $sql = @"
BEGIN;
WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < $Rows)
INSERT INTO documents
SELECT lower(hex(randomblob(16))), abs(random()) % 500, datetime('now', '-' || (abs(random()) % 94608000) || ' seconds'),
  $sentence,
  $sentence || '. ' || $sentence || '. Ref ' || upper(substr(hex(randomblob(5)), 1, 10)) || '. ' || $sentence || '.',
  json_object('status', (ARRAY_STATUS), 'metrics', json_object('views', abs(random()) % 100000, 'rating', round((abs(random()) % 500) / 100.0, 2)),
              'sku', 'SKU-' || hex(randomblob(6)), 'owner', 'user' || (abs(random()) % 2000) || '@example.com'),
  round((abs(random()) % 1000000) / 100.0, 2), (abs(random()) % 10000) / 100.0,
  (ARRAY_STATUS2), randomblob(96)
FROM s;
WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < $(2 * $Rows))
INSERT INTO events(document_id, at, kind, amount, payload)
SELECT lower(hex(randomblob(16))), datetime('now', '-' || (abs(random()) % 94608000) || ' seconds'),
  (ARRAY_KIND), round((abs(random()) % 10000000) / 10000.0, 4),
  json_object('ip', '10.' || (abs(random()) % 255) || '.' || (abs(random()) % 255) || '.' || (abs(random()) % 255), 'ms', abs(random()) % 2000)
FROM s;
COMMIT;
"@
            $sql = $sql.Replace('(ARRAY_STATUS)', "CASE abs(random()) % 4 WHEN 0 THEN 'draft' WHEN 1 THEN 'review' WHEN 2 THEN 'published' ELSE 'archived' END")
            $sql = $sql.Replace('(ARRAY_STATUS2)', "CASE abs(random()) % 4 WHEN 0 THEN 'active' WHEN 1 THEN 'inactive' WHEN 2 THEN 'pending' ELSE 'deleted' END")
            $sql = $sql.Replace('(ARRAY_KIND)', "CASE abs(random()) % 6 WHEN 0 THEN 'created' WHEN 1 THEN 'updated' WHEN 2 THEN 'viewed' WHEN 3 THEN 'shared' WHEN 4 THEN 'deleted' ELSE 'restored' END")
            $f = Join-Path $WorkDir 'batch.sql'
            Set-Content -LiteralPath $f -Value $sql
            Invoke-Sh "sqlite3 '$dbFile' < '$f'"
            [void]$off
        }
    }
    $script:generatedBatches++
}

function Expand-Database {
    <# Adds batches until the database is about $TargetMB. #>
    param([int] $TargetMB)
    $target = [long]$TargetMB * 1MB
    $size = Get-DatabaseBytes
    $sw = [Diagnostics.Stopwatch]::StartNew()
    while ($size -lt $target) {
        # Rows per batch from the bytes one document with its 2 events takes; at most 100,000 documents per statement.
        $perRow = @{ postgres = 1100; mariadb = 3500; sqlite = 1000 }[$Engine]
        $rows = [int][math]::Max(2000, [math]::Min(100000, ($target - $size) / $perRow))
        Add-DataBatch -Rows $rows
        $size = Get-DatabaseBytes
    }
    if ($Engine -eq 'postgres') { Invoke-Sh "$psql -d $Db -c 'VACUUM ANALYZE'" ; $size = Get-DatabaseBytes }
    Write-Step ("Database '{0}' is {1:N0} MB (generation {2:N1} s)" -f $Db, ($size / 1MB), $sw.Elapsed.TotalSeconds)
    return $size
}

# ---------------------------------------------------------------------------------------------------- keys
Write-Step 'Keys: HubDr EcdsaP256 key pair; a throwaway gpg home for the baselines'
$keyDir = Join-Path $WorkDir 'keys'
$key = Invoke-HubDrStep -Action Key -Arguments @{ KeyOutputPath = $keyDir; Algorithm = 'EcdsaP256' }
$results.data.keyStepPeakRssBytes = $key.PeakRssBytes   # pwsh + module + key generation: the fixed RSS floor
$pubKey = $key.Output.PublicKeyPath
$secKey = $key.Output.SecretKeyPath
$env:GNUPGHOME = Join-Path $WorkDir 'gnupg'
New-Item -ItemType Directory -Path $env:GNUPGHOME | Out-Null
Invoke-Sh "chmod 0700 '$env:GNUPGHOME'; gpg --batch --quiet --pinentry-mode loopback --passphrase '' --quick-gen-key 'Bench Baseline <baseline@example.invalid>' rsa3072 sign never 2>/dev/null; gpg --batch --quiet --import '$pubKey' 2>/dev/null"
$gpgFpr = (Invoke-Sh -Capture "gpg --batch --with-colons --list-keys baseline@example.invalid | awk -F: '/^fpr/ {print `$10; exit}'").Trim()
Invoke-Sh "gpg --batch --quiet --pinentry-mode loopback --passphrase '' --quick-add-key '$gpgFpr' rsa3072 encr never 2>/dev/null"

$storeDir = Join-Path $WorkDir 'store'
New-Item -ItemType Directory -Path $storeDir | Out-Null

$table = [Collections.Generic.List[object]]::new()
function Add-Row {
    param([string] $Measurement, $Value, [string] $Unit, $Baseline = $null, [string] $BaselineName = '', $TargetRatio = $null, [string] $Note = '')
    $ratio = if ($null -ne $Baseline -and $Baseline -gt 0) { [math]::Round($Value / $Baseline, 3) } else { $null }
    $verdict = if ($null -ne $TargetRatio -and $null -ne $ratio) { if ($ratio -le $TargetRatio) { 'PASS' } else { 'MISS' } } else { '' }
    $row = [pscustomobject][ordered]@{
        Measurement = $Measurement; Value = $Value; Unit = $Unit; Baseline = $BaselineName; BaselineValue = $Baseline
        Ratio = $ratio; Target = if ($null -ne $TargetRatio) { "<= $TargetRatio x" } else { '' }; Verdict = $verdict; Note = $Note
    }
    $table.Add($row)
}

try {
    # ------------------------------------------------------------------------------------------------ data + memory scaling
    Write-Step "Generating a $Engine database of about $SizeMB MB"
    Initialize-Database
    $rssRuns = @()
    if (-not $SkipMemoryScaling) {
        foreach ($mb in @([math]::Max(1, [int]($SizeMB / 4)), [math]::Max(2, [int]($SizeMB / 2)))) {
            $bytes = Expand-Database -TargetMB $mb
            Write-Step "Memory scaling: HubDr backup at $mb MB"
            $b = Invoke-HubDrStep -Action Backup -Arguments @{ Store = $storeDir; Engine = $Engine; ConnectionString = (& $ConnFor $Db); PublicKeyPath = $pubKey; SecretKeyPath = $secKey }
            $rssRuns += [pscustomobject]@{ sizeMB = $mb; databaseBytes = $bytes; peakRssBytes = $b.PeakRssBytes; vmHwmBytes = $b.VmHwmBytes; seconds = $b.WallSeconds; archiveBytes = [long]$b.Output.ArchiveSize; dumpBytes = [long]$b.Output.DumpSize }
            Remove-Item -LiteralPath (Join-Path $storeDir "bench/$($b.Output.BackupId)") -Recurse -Force
        }
        $results.memoryScaling = $rssRuns
    }
    $dbBytes = Expand-Database -TargetMB $SizeMB
    $results.data.databaseBytes = $dbBytes

    # ------------------------------------------------------------------------------------------------ baseline 3 (floor), twice: warm-up + measured
    Write-Step 'Baseline 3 (floor): dump -> /dev/null (warm-up; the measured runs are interleaved with restic and HubDr below)'
    $floorWarm = Measure-Sh "$DumpFloor > /dev/null"
    $results.measurements.floorWarmupSeconds = $floorWarm

    # ------------------------------------------------------------------------------------------------ baseline 1: runbook manual pipeline
    Write-Step 'Baseline 1: runbook pipeline (dump to file, tar -czf, gpg --encrypt, gpg --detach-sign)'
    $b1 = Join-Path $WorkDir 'runbook'
    New-Item -ItemType Directory -Path $b1 | Out-Null
    $t1dump = Measure-Sh "$DumpPlain > '$b1/db_dump.sql'"
    $t1tar = Measure-Sh "tar -czf '$b1/backup.tar.gz' -C '$b1' db_dump.sql"
    $t1enc = Measure-Sh "gpg --batch --yes --quiet --trust-model always --recipient '$gpgFpr' --output '$b1/backup.tar.gz.gpg' --encrypt '$b1/backup.tar.gz'"
    $t1sig = Measure-Sh "gpg --batch --yes --quiet --pinentry-mode loopback --passphrase '' --local-user '$gpgFpr' --output '$b1/backup.tar.gz.gpg.sig' --detach-sign '$b1/backup.tar.gz.gpg'"
    $runbookSeconds = [math]::Round($t1dump + $t1tar + $t1enc + $t1sig, 3)
    $plainDumpBytes = (Get-Item "$b1/db_dump.sql").Length
    $runbookArchiveBytes = (Get-Item "$b1/backup.tar.gz.gpg").Length
    $results.measurements.runbook = [ordered]@{ seconds = $runbookSeconds; dump = $t1dump; tarGzip = $t1tar; gpgEncrypt = $t1enc; gpgSign = $t1sig; plainDumpBytes = $plainDumpBytes; archiveBytes = $runbookArchiveBytes }
    Remove-Item -LiteralPath $b1 -Recurse -Force

    # ------------------------------------------------------------------------------------------------ floor, restic, HubDr backup: $Repeat interleaved rounds
    $env:RESTIC_REPOSITORY = Join-Path $WorkDir 'restic-repo'
    $env:RESTIC_PASSWORD_FILE = Join-Path $secretDir 'restic-pass'
    $env:RESTIC_CACHE_DIR = Join-Path $WorkDir 'restic-cache'
    Set-Content -LiteralPath $env:RESTIC_PASSWORD_FILE -Value ([Convert]::ToBase64String([Security.Cryptography.RandomNumberGenerator]::GetBytes(24))) -NoNewline
    Invoke-Sh "chmod 0600 '$env:RESTIC_PASSWORD_FILE'"
    $floorRuns = @(); $resticRuns = @(); $hbRuns = @()
    foreach ($round in 1..$Repeat) {
        Write-Step "Round $round/${Repeat}: baseline 3 (floor): dump -> /dev/null"
        $t = Measure-Sh "$DumpFloor > /dev/null"
        $floorRuns += [pscustomobject]@{ seconds = $t; machineCpuSeconds = $script:LastCpuSeconds }

        Write-Step "Round $round/${Repeat}: baseline 2: dump | restic backup --stdin (fresh local repository)"
        Remove-Item -LiteralPath $env:RESTIC_REPOSITORY, $env:RESTIC_CACHE_DIR -Recurse -Force -ErrorAction SilentlyContinue
        Invoke-Sh 'restic init --quiet'
        $repoBefore = Get-PathBytes $env:RESTIC_REPOSITORY
        $t = Measure-Sh "$DumpPlain | restic backup --quiet --stdin --stdin-filename db_dump.sql"
        $cpu = $script:LastCpuSeconds
        $resticRuns += [pscustomobject]@{ seconds = $t; machineCpuSeconds = $cpu; repositoryGrowthBytes = (Get-PathBytes $env:RESTIC_REPOSITORY) - $repoBefore }

        Write-Step "Round $round/${Repeat}: HubDr: New-HubBackup (separate pwsh, default settings)"
        $hbRuns += Invoke-HubDrStep -Action Backup -Arguments @{ Store = $storeDir; Engine = $Engine; ConnectionString = (& $ConnFor $Db); PublicKeyPath = $pubKey; SecretKeyPath = $secKey }
    }
    Remove-Item -LiteralPath $env:RESTIC_REPOSITORY, $env:RESTIC_CACHE_DIR -Recurse -Force -ErrorAction SilentlyContinue

    $floor = Get-Median $floorRuns.seconds
    $floorCpu = Get-Median $floorRuns.machineCpuSeconds
    $t2 = Get-Median $resticRuns.seconds
    $t2Cpu = Get-Median $resticRuns.machineCpuSeconds
    $repoGrowth = $resticRuns[0].repositoryGrowthBytes
    $results.measurements.floorSeconds = $floor
    $results.measurements.floorMachineCpuSeconds = $floorCpu
    $results.measurements.floorRuns = $floorRuns
    $results.measurements.restic = [ordered]@{ seconds = $t2; machineCpuSeconds = $t2Cpu; repositoryGrowthBytes = $repoGrowth; version = (Invoke-Sh -Capture 'restic version'); runs = $resticRuns }

    $hb = $hbRuns[0]
    $backupId = $hb.Output.BackupId
    $hbWallMedian = Get-Median $hbRuns.WallSeconds
    $hbCmdletMedian = Get-Median $hbRuns.CmdletSeconds
    $hbCpuMedian = Get-Median $hbRuns.MachineCpuSeconds
    $hbProcessCpuMedian = Get-Median $hbRuns.ProcessCpuSeconds
    $hbPeakRss = ($hbRuns.PeakRssBytes | Measure-Object -Maximum).Maximum
    $results.measurements.hubdrBackup = $hb
    $results.measurements.hubdrBackupRuns = @($hbRuns | ForEach-Object { [ordered]@{ wallSeconds = $_.WallSeconds; cmdletSeconds = $_.CmdletSeconds; machineCpuSeconds = $_.MachineCpuSeconds; processCpuSeconds = $_.ProcessCpuSeconds; peakRssBytes = $_.PeakRssBytes } })
    $archiveBytes = [long]$hb.Output.ArchiveSize
    $archivePath = Get-ChildItem -LiteralPath (Join-Path $storeDir "bench/$backupId") -Filter 'archive.tar*.gpg' | Select-Object -First 1

    # ------------------------------------------------------------------------------------------------ restore
    Write-Step "Native restore ($nativeRestoreName) of an uncompressed local dump file vs Restore-HubBackup: $Repeat interleaved rounds"
    $nativeFile = Join-Path $WorkDir 'native.dump'
    Invoke-Sh "$DumpNative > '$nativeFile'"
    $nativeDumpBytes = (Get-Item $nativeFile).Length
    $nativeRuns = @(); $hrRuns = @()
    foreach ($round in 1..$Repeat) {
        Write-Step "Round $round/${Repeat}: native restore ($nativeRestoreName)"
        & $DropDb 'bench_native'
        $nativeRuns += Measure-Sh (& $RestoreNative $nativeFile 'bench_native')
        & $DropDb 'bench_native'
        Write-Step "Round $round/${Repeat}: HubDr: Restore-HubBackup into an empty database (separate pwsh)"
        & $DropDb 'bench_hubrestore'
        $hrRuns += Invoke-HubDrStep -Action Restore -Arguments @{ Store = $storeDir; Engine = $Engine; BackupId = $backupId; ConnectionString = (& $ConnFor 'bench_hubrestore'); PublicKeyPath = $pubKey; SecretKeyPath = $secKey }
        & $DropDb 'bench_hubrestore'
    }
    Remove-Item -LiteralPath $nativeFile -Force
    $tNative = Get-Median $nativeRuns
    $results.data.dumpBytes = $nativeDumpBytes
    $results.measurements.nativeRestore = [ordered]@{ seconds = $tNative; tool = $nativeRestoreName; runs = $nativeRuns }
    $hr = $hrRuns[0]
    $hrWallMedian = Get-Median $hrRuns.WallSeconds
    $hrCmdletMedian = Get-Median $hrRuns.CmdletSeconds
    $results.measurements.hubdrRestore = $hr
    $results.measurements.hubdrRestoreRuns = @($hrRuns | ForEach-Object { [ordered]@{ wallSeconds = $_.WallSeconds; cmdletSeconds = $_.CmdletSeconds; machineCpuSeconds = $_.MachineCpuSeconds; processCpuSeconds = $_.ProcessCpuSeconds; peakRssBytes = $_.PeakRssBytes } })

    # ------------------------------------------------------------------------------------------------ verify
    Write-Step 'Verify: gpg --verify vs Test-HubBackupSignature on the same archive'
    $gpgRuns = @(); $hvRuns = @()
    foreach ($round in 1..$Repeat) {
        $gpgRuns += Measure-Sh "gpg --batch --quiet --verify '$($archivePath.FullName).sig' '$($archivePath.FullName)' 2>/dev/null"
        $hv = Invoke-HubDrStep -Action Verify -Arguments @{ Store = $storeDir; BackupId = $backupId; PublicKeyPath = $pubKey }
        if ("$($hv.Output.IsValid)" -ne 'True') { throw "Test-HubBackupSignature output: $($hv.Output | ConvertTo-Json -Compress)" }
        $hvRuns += $hv
    }
    $tGpgVerify = Get-Median $gpgRuns
    $hvWallMedian = Get-Median $hvRuns.WallSeconds
    $hvCmdletMedian = Get-Median $hvRuns.CmdletSeconds
    $results.measurements.gpgVerify = [ordered]@{ seconds = $tGpgVerify; runs = $gpgRuns }
    $results.measurements.hubdrVerify = $hvRuns[0]
    $results.measurements.hubdrVerifyRuns = @($hvRuns | ForEach-Object { [ordered]@{ wallSeconds = $_.WallSeconds; cmdletSeconds = $_.CmdletSeconds } })

    # ------------------------------------------------------------------------------------------------ profile (optional)
    if ($ProfileStages) {
        foreach ($c in 'none', 'gzip') {
            Write-Step "Profile: New-HubBackup -Compression $c"
            $p = Invoke-HubDrStep -Action Backup -Arguments @{ Store = $storeDir; Engine = $Engine; ConnectionString = (& $ConnFor $Db); PublicKeyPath = $pubKey; SecretKeyPath = $secKey; Compression = $c }
            $results.profile["compression-$c"] = $p
            Remove-Item -LiteralPath (Join-Path $storeDir "bench/$($p.Output.BackupId)") -Recurse -Force
        }
        if ($Engine -eq 'postgres') {
            Write-Step 'Profile: fixed costs (HubDr backup of a tiny database: one table, 10 rows)'
            & $DropDb 'bench_tiny'
            Invoke-Sh "$psql -d postgres -c 'CREATE DATABASE bench_tiny' && $psql -d bench_tiny -c 'CREATE TABLE t(id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1,10) g'"
            $results.profile.tinyFloorSeconds = Measure-Sh "'$bin/pg_dump' -Fc -Z0 -d bench_tiny > /dev/null"
            $results.profile.tinyBackup = Invoke-HubDrStep -Action Backup -Arguments @{ Store = $storeDir; Engine = $Engine; ConnectionString = (& $ConnFor 'bench_tiny'); PublicKeyPath = $pubKey; SecretKeyPath = $secKey }
            & $DropDb 'bench_tiny'
        }
        Write-Step 'Profile: pipeline stages outside HubDr on the same dump (zstd -3, sha256sum, sha1sum, gpg --encrypt without compression)'
        $pf = Join-Path $WorkDir 'profile.dump'
        Invoke-Sh "$DumpFloor > '$pf'"
        Write-Step 'Profile: HubDr stage throughput in-process (bench/Measure-Stage.ps1 on the same dump file)'
        $stageJson = Join-Path $WorkDir 'stages.json'
        & (Get-PwshCommand)[0] @((Get-PwshCommand) | Select-Object -Skip 1) -NoProfile -NonInteractive -File (Join-Path $PSScriptRoot 'Measure-Stage.ps1') -ModulePath $ModulePath -Path $pf -ResultPath $stageJson | Out-Host
        if ($LASTEXITCODE -ne 0) { throw 'Measure-Stage.ps1 failed' }
        $results.profile.stages = Get-Content -LiteralPath $stageJson -Raw | ConvertFrom-Json
        $results.profile.zstd3Seconds = Measure-Sh "zstd -q -3 -c '$pf' > /dev/null"
        $results.profile.sha256Seconds = Measure-Sh "sha256sum '$pf' > /dev/null"
        $results.profile.sha1Seconds = Measure-Sh "sha1sum '$pf' > /dev/null"
        $results.profile.gpgEncryptNoCompressSeconds = Measure-Sh "gpg --batch --yes --quiet --trust-model always --compress-algo none --recipient '$gpgFpr' --output /dev/null --encrypt '$pf'"
        Remove-Item -LiteralPath $pf -Force
    }

    # ------------------------------------------------------------------------------------------------ table
    $hbWall = $hbWallMedian
    Add-Row 'HubDr backup wall (process)' $hbWall 's' $runbookSeconds 'runbook pipeline' 0.35
    Add-Row 'HubDr backup wall (process)' $hbWall 's' $t2 'restic --stdin' 0.8
    Add-Row 'HubDr backup wall (process)' $hbWall 's' $floor 'dump > /dev/null' 1.3
    Add-Row 'HubDr backup (cmdlet only)' $hbCmdletMedian 's' $floor 'dump > /dev/null' 1.3 "module import $($hb.ImportSeconds) s excluded"
    Add-Row 'HubDr backup machine CPU' $hbCpuMedian 'cpu-s' $t2Cpu 'restic --stdin' $null "all processes, $([Environment]::ProcessorCount) cores; HubDr's own process: $hbProcessCpuMedian s"
    Add-Row 'HubDr backup machine CPU' $hbCpuMedian 'cpu-s' $floorCpu 'dump > /dev/null' $null 'all processes (server + dump tool + HubDr)'
    Add-Row 'HubDr archive size' $archiveBytes 'B' $repoGrowth 'restic repo growth' 1.0
    Add-Row 'HubDr archive size' $archiveBytes 'B' $runbookArchiveBytes 'runbook .tar.gz.gpg' $null
    Add-Row 'HubDr backup peak RSS' $hbPeakRss 'B' 250MB '250 MB' 1.0 "highest of $Repeat runs"
    if ($rssRuns.Count -eq 2) {
        Add-Row "Peak RSS at $($rssRuns[0].sizeMB) MB" $rssRuns[0].PeakRssBytes 'B' 250MB '250 MB' 1.0
        Add-Row "Peak RSS at $($rssRuns[1].sizeMB) MB" $rssRuns[1].PeakRssBytes 'B' 250MB '250 MB' 1.0
        Add-Row 'Peak RSS growth when DB doubles' $rssRuns[1].PeakRssBytes 'B' $rssRuns[0].PeakRssBytes "RSS at $($rssRuns[0].sizeMB) MB" 1.1 'flat = within 10%'
    }
    Add-Row 'HubDr restore wall (process)' $hrWallMedian 's' $tNative $nativeRestoreName 1.15
    Add-Row 'HubDr restore (cmdlet only)' $hrCmdletMedian 's' $tNative $nativeRestoreName 1.15
    Add-Row 'HubDr verify wall (process)' $hvWallMedian 's' $tGpgVerify 'gpg --verify' 1.5
    Add-Row 'HubDr verify (cmdlet only)' $hvCmdletMedian 's' $tGpgVerify 'gpg --verify' 1.5
    $results.rows = $table
} finally {
    $results.totalSeconds = [math]::Round(((Get-Date) - $started).TotalSeconds, 1)
    $results.loadSamples = $LoadSamples
    if ($env:GNUPGHOME -and (Test-Path $env:GNUPGHOME)) { & gpgconf --kill gpg-agent 2>$null }
    if (-not $KeepData) {
        Write-Step 'Cleaning up generated data'
        try {
            if ($Engine -ne 'sqlite') { & $DropDb $Db; & $DropDb 'bench_native'; & $DropDb 'bench_hubrestore' }
        } catch { Write-Warning "Dropping bench databases failed: $_" }
        Remove-Item -LiteralPath $WorkDir -Recurse -Force -ErrorAction SilentlyContinue
        if ($startedServers) { Invoke-Sh "bash '$Root/tests/servers/servers.sh' stop '$ServerDir'" }
    }
    foreach ($v in 'HUBDR_BENCH_KEY_PASSPHRASE', 'HUBDR_BENCH_DB_PASSWORD', 'RESTIC_PASSWORD_FILE', 'PGPASSFILE') { Remove-Item "Env:$v" -ErrorAction SilentlyContinue }
}

$fmt = {
    param($v, $unit)
    if ($null -eq $v) { return '' }
    switch ($unit) { 'B' { '{0:N1} MB' -f ($v / 1MB) } 's' { '{0:N2} s' -f $v } 'cpu-s' { '{0:N1} cpu-s' -f $v } default { "$v" } }
}
Write-Host ''
Write-Host ("HubDr benchmark — {0}, database {1:N0} MB, dump {2:N0} MB, {3} cores, total {4:N0} s" -f $Engine, ($dbBytes / 1MB), ($nativeDumpBytes / 1MB), [Environment]::ProcessorCount, $results.totalSeconds)
$table | ForEach-Object {
    [pscustomobject]@{
        Measurement = $_.Measurement; Value = (& $fmt $_.Value $_.Unit); Baseline = $_.Baseline; BaselineValue = (& $fmt $_.BaselineValue $_.Unit)
        Ratio = if ($null -ne $_.Ratio) { '{0:N3}' -f $_.Ratio } else { '' }; Target = $_.Target; Result = $_.Verdict
    }
} | Format-Table -AutoSize | Out-String -Width 220 | Out-Host
if ($Repeat -gt 1 -and $table.Count -gt 0) {
    $list = { param($v) ($v | ForEach-Object { '{0:N2}' -f $_ }) -join ' / ' }
    Write-Host ("Medians of $Repeat interleaved runs (seconds): floor {0}; restic {1}; HubDr backup {2} (process); native restore {3}; HubDr restore {4}; gpg --verify {5}; HubDr verify {6}" -f
        (& $list $floorRuns.seconds), (& $list $resticRuns.seconds), (& $list $hbRuns.WallSeconds), (& $list $nativeRuns), (& $list $hrRuns.WallSeconds), (& $list $gpgRuns), (& $list $hvRuns.WallSeconds))
}
if ($rssRuns.Count -eq 2) {
    Write-Host ("Peak RSS: {0:N1} MB at {1} MB, {2:N1} MB at {3} MB (ratio {4:N2}); {5:N1} MB at {6} MB" -f ($rssRuns[0].peakRssBytes / 1MB), $rssRuns[0].sizeMB, ($rssRuns[1].peakRssBytes / 1MB), $rssRuns[1].sizeMB, ($rssRuns[1].peakRssBytes / $rssRuns[0].peakRssBytes), ($hb.PeakRssBytes / 1MB), $SizeMB)
}
$dir = Split-Path -Parent $OutputPath
if ($dir -and -not (Test-Path $dir)) { New-Item -ItemType Directory -Path $dir | Out-Null }
$results | ConvertTo-Json -Depth 8 | Set-Content -LiteralPath $OutputPath -Encoding utf8
Write-Host "Results: $OutputPath"
