<#
.SYNOPSIS
    Throughput of each New-HubBackup pipeline stage in isolation, with the module's own assemblies, on one dump file.

.DESCRIPTION
    Reads -Path (an uncompressed dump, in the page cache) in 1 MiB chunks and pushes it through one stage at a time:
    plain read, SHA-256 (IncrementalHash, as ChunkedEntryStream/HashingStream/the signature use), zstd level 3 with
    the engine's worker count and single-threaded, gzip Optimal, and the BouncyCastle OpenPGP encryptor (AES-256 with
    the MDC / SHA-1, literal packet, 64 KiB partial packets), each into Stream.Null. Writes seconds and MB/s as JSON.
    Used by Invoke-Benchmark.ps1 -Profile; not a test.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Path,
    [Parameter(Mandatory)] [string] $ResultPath
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

$deps = Join-Path (Split-Path -Parent (Resolve-Path $ModulePath)) 'dependencies'
Add-Type -Path (Join-Path $deps 'BouncyCastle.Cryptography.dll')
Add-Type -Path (Join-Path $deps 'ZstdSharp.dll')

$size = (Get-Item -LiteralPath $Path).Length
$chunk = [byte[]]::new(1MB)

function Measure-Pass {
    param([string] $Name, [scriptblock] $Open, [scriptblock] $Close = $null)
    $fs = [IO.File]::OpenRead($Path)
    $sw = [Diagnostics.Stopwatch]::StartNew()
    $sink = & $Open
    try {
        while (($n = $fs.Read($chunk, 0, $chunk.Length)) -gt 0) {
            if ($sink -is [Security.Cryptography.IncrementalHash]) { $sink.AppendData($chunk, 0, $n) }
            elseif ($null -ne $sink) { $sink.Write($chunk, 0, $n) }
        }
        if ($Close) { & $Close $sink } elseif ($sink -is [IDisposable]) { $sink.Dispose() }
    } finally { $fs.Dispose() }
    $s = $sw.Elapsed.TotalSeconds
    [ordered]@{ stage = $Name; seconds = [math]::Round($s, 3); mbPerSecond = [math]::Round($size / 1MB / $s, 1) }
}

$workers = [math]::Clamp([Environment]::ProcessorCount, 1, 8)
$stages = @(
    Measure-Pass 'read (1 MiB chunks)' { $null }
    Measure-Pass 'sha256 (IncrementalHash)' { [Security.Cryptography.IncrementalHash]::CreateHash([Security.Cryptography.HashAlgorithmName]::SHA256) } { param($h) [void]$h.GetHashAndReset(); $h.Dispose() }
    Measure-Pass "zstd -3, nbWorkers=$workers (engine default)" {
        $z = [ZstdSharp.CompressionStream]::new([IO.Stream]::Null, 3, 0, $true)
        if ($workers -gt 1) { $z.SetParameter([ZstdSharp.Unsafe.ZSTD_cParameter]::ZSTD_c_nbWorkers, $workers) }
        $z
    }
    Measure-Pass 'zstd -3, single-threaded' { [ZstdSharp.CompressionStream]::new([IO.Stream]::Null, 3, 0, $true) }
    Measure-Pass 'gzip Optimal (System.IO.Compression)' { [IO.Compression.GZipStream]::new([IO.Stream]::Null, [IO.Compression.CompressionLevel]::Optimal, $true) }
    Measure-Pass 'OpenPGP AES-256 + MDC (BouncyCastle, 64 KiB partial packets)' {
        $gen = [Org.BouncyCastle.Bcpg.OpenPgp.PgpEncryptedDataGenerator]::new([Org.BouncyCastle.Bcpg.SymmetricKeyAlgorithmTag]::Aes256, $true, [Org.BouncyCastle.Security.SecureRandom]::new())
        $gen.AddMethod([char[]]'bench-passphrase', [Org.BouncyCastle.Bcpg.HashAlgorithmTag]::Sha256)
        $script:encOuter = $gen.Open([IO.Stream]::Null, [byte[]]::new(65536))
        $script:litGen = [Org.BouncyCastle.Bcpg.OpenPgp.PgpLiteralDataGenerator]::new()
        $script:litGen.Open($script:encOuter, [Org.BouncyCastle.Bcpg.OpenPgp.PgpLiteralData]::Binary, 'x', [datetime]::UtcNow, [byte[]]::new(65536))
    } { param($lit) $lit.Dispose(); $script:litGen.Close(); $script:encOuter.Dispose() }
    Measure-Pass 'SHA-1 alone (BouncyCastle Sha1Digest, the MDC hash)' {
        $d = [Org.BouncyCastle.Crypto.Digests.Sha1Digest]::new()
        [IO.Stream]$s = [Org.BouncyCastle.Crypto.IO.DigestStream]::new([IO.Stream]::Null, $null, $d)
        $s
    }
)
[ordered]@{ bytes = $size; stages = $stages } | ConvertTo-Json -Depth 4 | Set-Content -LiteralPath $ResultPath -Encoding utf8
$stages | ForEach-Object { [pscustomobject]$_ } | Format-Table -AutoSize | Out-String -Width 160 | Write-Host
