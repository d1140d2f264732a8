namespace HubDr.Engine.Compression;

/// <summary>One compression format for the tar stream. Adding one = one file + one line in <see cref="Compressors"/>.</summary>
public interface ICompressor
{
    /// <summary>"gzip", "zstd" or "none".</summary>
    string Name { get; }

    /// <summary>Suffix of the archive object after ".tar", e.g. ".gz", ".zst", "".</summary>
    string Extension { get; }

    /// <summary>A write stream that compresses into <paramref name="output"/>; disposing it flushes the trailer but leaves output open.</summary>
    Stream Compress(Stream output, int? level);

    /// <summary>As <see cref="Compress(Stream, int?)"/>, within the memory limits of the backup (only zstd has workers and job buffers to limit).</summary>
    Stream Compress(Stream output, int? level, IO.PipelineLimits limits) => Compress(output, level);

    /// <summary>A read stream of decompressed bytes; disposing it leaves input open.</summary>
    Stream Decompress(Stream input);
}
