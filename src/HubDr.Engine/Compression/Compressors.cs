namespace HubDr.Engine.Compression;

/// <summary>Registry of the compression formats. Adding one = one ICompressor file + one line in <see cref="All"/>.</summary>
public static class Compressors
{
    /// <summary>The default format (why: docs/archive-internals.md, "Compression").</summary>
    public const string Default = "zstd";

    public static IReadOnlyList<ICompressor> All { get; } = new ICompressor[]
    {
        new ZstdCompressor(),
        new GzipCompressor(),
        new NoneCompressor(),
    };

    /// <summary>Looks a format up by name (case-insensitive; "zst", "gz" and "" are accepted as aliases); null/empty = default.</summary>
    public static ICompressor Get(string name)
    {
        string n = (name ?? "").Trim().ToLowerInvariant();
        n = n switch
        {
            "" => Default,
            "zst" or "zstandard" => "zstd",
            "gz" => "gzip",
            "off" => "none",
            _ => n,
        };
        foreach (var c in All)
            if (c.Name == n) return c;
        throw new HubDrException("CompressionUnsupported", HubErrorCategory.InvalidArgument,
            $"Compression '{name}' is not supported. Use one of: {string.Join(", ", All.Select(c => c.Name))}.");
    }
}
