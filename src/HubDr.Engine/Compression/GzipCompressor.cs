using System.IO.Compression;

namespace HubDr.Engine.Compression;

/// <summary>gzip (RFC 1952) via System.IO.Compression; readable by gzip -dc and tar -xzf.</summary>
public sealed class GzipCompressor : ICompressor
{
    public string Name => "gzip";
    public string Extension => ".gz";

    /// <summary>level: null = Optimal (zlib level 6; see docs/archive-internals.md), 0 = none, 1-3 = Fastest, 4-6 = Optimal, 7-9 = SmallestSize.</summary>
    public Stream Compress(Stream output, int? level)
    {
        ArgumentNullException.ThrowIfNull(output);
        CompressionLevel l = level switch
        {
            null => CompressionLevel.Optimal, // Fastest is 3x faster but ~30% larger than restic's repository
            0 => CompressionLevel.NoCompression,
            >= 1 and <= 3 => CompressionLevel.Fastest,
            >= 4 and <= 6 => CompressionLevel.Optimal,
            >= 7 and <= 9 => CompressionLevel.SmallestSize,
            _ => throw new HubDrException("CompressionLevelInvalid", HubErrorCategory.InvalidArgument,
                $"gzip compression level {level} is out of range; use 0-9 (or leave it unset)."),
        };
        return new GZipStream(output, l, leaveOpen: true);
    }

    public Stream Decompress(Stream input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new GZipStream(input, CompressionMode.Decompress, leaveOpen: true);
    }
}
