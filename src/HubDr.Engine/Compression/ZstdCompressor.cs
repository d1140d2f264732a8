using ZstdSharp;
using ZstdSharp.Unsafe;

namespace HubDr.Engine.Compression;

/// <summary>Zstandard via ZstdSharp.Port (multi-threaded frames); readable by zstd -dc and tar --zstd.</summary>
public sealed class ZstdCompressor : ICompressor
{
    /// <summary>Default level when none is given (see docs/archive-internals.md for the measurements).</summary>
    public const int DefaultLevel = 3;

    public string Name => "zstd";

    /// <summary>
    /// Diagnostic for tests: a box set in an async flow receives the worker count and job size that compression streams
    /// in that flow were configured with (the box is shared, so the caller sees what the engine set).
    /// </summary>
    internal static readonly AsyncLocal<System.Runtime.CompilerServices.StrongBox<(int Workers, int? JobSize)>?> Observed = new();
    public string Extension => ".zst";

    /// <summary>level: null = HubDr's default profile (level 3 tuned for dumps, below); 1-19 (negative "fast" levels -7..-1 also accepted).</summary>
    public Stream Compress(Stream output, int? level) => Compress(output, level, IO.PipelineLimits.Defaults(Environment.ProcessorCount));

    /// <summary>With <paramref name="limits"/>' worker count and job size (docs/platforms.md, "Memory").</summary>
    public Stream Compress(Stream output, int? level, IO.PipelineLimits limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(output);
        int l = level ?? DefaultLevel;
        if (l < -7 || l > 19 || l == 0 && level.HasValue)
            throw new HubDrException("CompressionLevelInvalid", HubErrorCategory.InvalidArgument,
                $"zstd compression level {level} is out of range; use 1-19 (or leave it unset).");
        var stream = new CompressionStream(output, l, bufferSize: 0, leaveOpen: true);
        if (!level.HasValue)
        {
            // The default is level 3 retuned for database dumps (docs/archive-internals.md, "The default zstd
            // profile"): the "fast" strategy with a 2^18-entry hash table and 7-byte minimum matches, level 3's 2 MiB
            // window. On the benchmark's 1.5 GB PostgreSQL dump: 3.1 % smaller and ~11 % faster than level 3; on SQL
            // text about 4 % smaller. An explicit -CompressionLevel is plain zstd level N.
            stream.SetParameter(ZSTD_cParameter.ZSTD_c_strategy, (int)ZSTD_strategy.ZSTD_fast);
            stream.SetParameter(ZSTD_cParameter.ZSTD_c_windowLog, 21);
            stream.SetParameter(ZSTD_cParameter.ZSTD_c_hashLog, 18);
            stream.SetParameter(ZSTD_cParameter.ZSTD_c_minMatch, 7);
        }

        // One background worker is the sweet spot on small machines (measured on 2 cores: 169 MB/s with 1 worker,
        // 121 MB/s with none, and 2 workers cost ~75 MiB more memory for no gain); larger machines get more
        // (PipelineLimits.Defaults), unless a memory cap limits them.
        stream.SetParameter(ZSTD_cParameter.ZSTD_c_nbWorkers, limits.CompressionWorkers);
        if (limits.CompressionWorkers > 0 && limits.CompressionJobSize is { } jobSize)
        {
            stream.SetParameter(ZSTD_cParameter.ZSTD_c_jobSize, jobSize);
        }

        if (Observed.Value is { } box)
        {
            box.Value = (limits.CompressionWorkers, limits.CompressionWorkers > 0 ? limits.CompressionJobSize : null);
        }

        return stream;
    }

    public Stream Decompress(Stream input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new DecompressionStream(input, bufferSize: 0, checkEndOfStream: true, leaveOpen: true);
    }
}
