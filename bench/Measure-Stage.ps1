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

Add-Type -TypeDefinition @"
public sealed class BenchCountingStream : System.IO.Stream
{
    public long Count;
    public override bool CanRead => false; public override bool CanSeek => false; public override bool CanWrite => true;
    public override long Length => Count; public override long Position { get => Count; set { } }
    public override void Flush() { }
    public override int Read(byte[] b, int o, int c) => throw new System.NotSupportedException();
    public override long Seek(long o, System.IO.SeekOrigin s) => throw new System.NotSupportedException();
    public override void SetLength(long v) { }
    public override void Write(byte[] b, int o, int c) => Count += c;
    public override void Write(System.ReadOnlySpan<byte> b) => Count += b.Length;
}
"@

$size = (Get-Item -LiteralPath $Path).Length
$chunk = [byte[]]::new(1MB)

function Measure-Pass {
    param([string] $Name, [scriptblock] $Open, [scriptblock] $Close = $null)
    $fs = [IO.File]::OpenRead($Path)
    $script:out = [BenchCountingStream]::new()
    [GC]::Collect()
    $alloc0 = [GC]::GetTotalAllocatedBytes($true)
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
    $alloc = [GC]::GetTotalAllocatedBytes($true) - $alloc0
    [ordered]@{ stage = $Name; seconds = [math]::Round($s, 3); mbPerSecond = [math]::Round($size / 1MB / $s, 1); outputBytes = $script:out.Count; managedAllocatedMB = [math]::Round($alloc / 1MB, 1) }
}

$workers = [math]::Clamp([Environment]::ProcessorCount, 1, 8)
$stages = @(
    Measure-Pass 'read (1 MiB chunks)' { $null }
    Measure-Pass 'sha256 (IncrementalHash)' { [Security.Cryptography.IncrementalHash]::CreateHash([Security.Cryptography.HashAlgorithmName]::SHA256) } { param($h) [void]$h.GetHashAndReset(); $h.Dispose() }
    Measure-Pass "zstd -3, nbWorkers=$workers (engine default)" {
        $z = [ZstdSharp.CompressionStream]::new($script:out, 3, 0, $true)
        if ($workers -gt 1) { $z.SetParameter([ZstdSharp.Unsafe.ZSTD_cParameter]::ZSTD_c_nbWorkers, $workers) }
        $z
    }
    Measure-Pass 'zstd -3, nbWorkers=1 (compression on one background thread)' {
        $z = [ZstdSharp.CompressionStream]::new($script:out, 3, 0, $true)
        $z.SetParameter([ZstdSharp.Unsafe.ZSTD_cParameter]::ZSTD_c_nbWorkers, 1)
        $z
    }
    Measure-Pass 'zstd -3, single-threaded' { [ZstdSharp.CompressionStream]::new($script:out, 3, 0, $true) }
    Measure-Pass 'zstd -1, single-threaded' { [ZstdSharp.CompressionStream]::new($script:out, 1, 0, $true) }
    Measure-Pass 'zstd fast -3 (negative level), single-threaded' { [ZstdSharp.CompressionStream]::new($script:out, -3, 0, $true) }
    Measure-Pass 'gzip Optimal (System.IO.Compression)' { [IO.Compression.GZipStream]::new($script:out, [IO.Compression.CompressionLevel]::Optimal, $true) }
    Measure-Pass 'OpenPGP AES-256 + MDC (BouncyCastle, 64 KiB partial packets)' {
        $gen = [Org.BouncyCastle.Bcpg.OpenPgp.PgpEncryptedDataGenerator]::new([Org.BouncyCastle.Bcpg.SymmetricKeyAlgorithmTag]::Aes256, $true, [Org.BouncyCastle.Security.SecureRandom]::new())
        $gen.AddMethod([char[]]'bench-passphrase', [Org.BouncyCastle.Bcpg.HashAlgorithmTag]::Sha256)
        $script:encOuter = $gen.Open($script:out, [byte[]]::new(65536))
        $script:litGen = [Org.BouncyCastle.Bcpg.OpenPgp.PgpLiteralDataGenerator]::new()
        $script:litGen.Open($script:encOuter, [Org.BouncyCastle.Bcpg.OpenPgp.PgpLiteralData]::Binary, 'x', [datetime]::UtcNow, [byte[]]::new(65536))
    } { param($lit) $lit.Dispose(); $script:litGen.Close(); $script:encOuter.Dispose() }
    Measure-Pass 'SHA-1 alone (BouncyCastle Sha1Digest, the MDC hash)' {
        $d = [Org.BouncyCastle.Crypto.Digests.Sha1Digest]::new()
        [IO.Stream]$s = [Org.BouncyCastle.Crypto.IO.DigestStream]::new($script:out, $null, $d)
        $s
    }
    Measure-Pass 'AES-256-CFB128 (.NET/OpenSSL ICryptoTransform) + SHA-1 (IncrementalHash): a native SEIPD body' {
        $aes = [Security.Cryptography.Aes]::Create(); $aes.KeySize = 256; $aes.Mode = [Security.Cryptography.CipherMode]::CFB
        $aes.FeedbackSize = 128; $aes.Padding = [Security.Cryptography.PaddingMode]::Zeros  # CFB: encrypt the last partial block padded, then truncate; $aes.IV = [byte[]]::new(16)
        $script:sha1 = [Security.Cryptography.IncrementalHash]::CreateHash([Security.Cryptography.HashAlgorithmName]::SHA1)
        $script:cs = [Security.Cryptography.CryptoStream]::new($script:out, $aes.CreateEncryptor(), [Security.Cryptography.CryptoStreamMode]::Write, $true)
        $script:nativeSink = [pscustomobject]@{}
        $script:nativeSink | Add-Member -MemberType ScriptMethod -Name Write -Value { param($b, $o, $c) $script:sha1.AppendData($b, $o, $c); $script:cs.Write($b, $o, $c) }
        $script:nativeSink
    } { param($x) $script:cs.FlushFinalBlock(); $script:cs.Dispose(); [void]$script:sha1.GetHashAndReset() }
)
[ordered]@{ bytes = $size; stages = $stages } | ConvertTo-Json -Depth 4 | Set-Content -LiteralPath $ResultPath -Encoding utf8
$stages | ForEach-Object { [pscustomobject]$_ } | Format-Table -AutoSize | Out-String -Width 200 | Write-Host
