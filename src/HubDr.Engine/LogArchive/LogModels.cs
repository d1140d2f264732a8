using System.Globalization;

namespace HubDr.Engine.LogArchive;

/// <summary>What one archived log object is.</summary>
public enum LogObjectKind
{
    /// <summary>A complete segment (PostgreSQL WAL segment, MariaDB binlog file, SQLite WAL shipment).</summary>
    Segment,

    /// <summary>The first bytes of a segment that was not complete yet when it was archived (RPO between segments).</summary>
    Partial,

    /// <summary>A small side file describing how lines branch (PostgreSQL timeline history file).</summary>
    History,
}

/// <summary>
/// Identity of one log object. <see cref="Line"/> is the independent sequence it belongs to (PostgreSQL timeline "00000001",
/// a MariaDB server id, a SQLite database); positions are byte offsets in that line's log (PostgreSQL LSN), so objects of a
/// line are ordered by <see cref="Start"/> and are continuous when each one starts where the previous ended.
/// </summary>
/// <param name="Name">The log's own name: "000000010000000000000003", "00000002.history", "mariadb-bin.000042".</param>
/// <param name="Start">First position covered (inclusive). 0 for history objects.</param>
/// <param name="End">Position after the last byte covered (exclusive). For a partial: where its data ends.</param>
public sealed record LogObjectRef(string Line, string Name, LogObjectKind Kind, ulong Start, ulong End)
{
    /// <summary>Plaintext length: End - Start for segments and partials.</summary>
    public long Length => Kind == LogObjectKind.History ? 0 : checked((long)(End - Start));

    public override string ToString() => Kind switch
    {
        LogObjectKind.Partial => $"{Name} (partial to {End:X})",
        _ => Name,
    };
}

/// <summary>
/// Naming and ordering of one kind of log stream: how objects are named in the store and how positions read.
/// PostgreSQL WAL implements it in Databases/Postgres/Pitr/WalStreamLayout; MariaDB binlogs and SQLite WAL shipments
/// plug in their own. Everything else in LogArchive (writer, index, continuity, fetcher) only uses this interface.
/// </summary>
public interface ILogStreamLayout
{
    /// <summary>"postgres-wal", "mariadb-binlog", "sqlite-wal". Recorded in every index batch.</summary>
    string StreamKind { get; }

    /// <summary>The hub's sub-folder for this stream, e.g. "_wal" (names starting with '_' are not backups).</summary>
    string FolderName { get; }

    /// <summary>Size of a complete segment; partials are padded with zeros to it when fetched. 0: segments vary in size.</summary>
    long SegmentSize { get; }

    /// <summary>Object key (relative to the store root) of the encrypted object. Its signature is this + ".sig".</summary>
    string ObjectKey(string hub, LogObjectRef obj);

    /// <summary>Parses an object key listed under <see cref="LogArchivePaths.StreamFolder"/>; false for anything else
    /// (signatures, index batches, temp files).</summary>
    bool TryParseObjectKey(string hub, string key, out LogObjectRef obj);

    /// <summary>Human/JSON form of a position ("0/3000028" for a PostgreSQL LSN).</summary>
    string FormatPosition(ulong position);

    bool TryParsePosition(string text, out ulong position);

    /// <summary>Orders lines (timelines by number). Lines sort as strings when they are fixed-width hex.</summary>
    int CompareLines(string a, string b);

    /// <summary>The segment that holds <paramref name="position"/> on <paramref name="line"/> (for reporting gaps by name).
    /// Null when segment boundaries are not derivable from positions (variable-size segments).</summary>
    LogObjectRef? SegmentAt(string line, ulong position);

    /// <summary>
    /// Checks that decrypted content is the object its name says (the signature proves who wrote the bytes, not under which
    /// name they are stored): <paramref name="head"/> is the start of the plaintext (at least 64 bytes when it has them),
    /// <paramref name="systemId"/> the source identity the restore expects, or null. Returns why not, or null.
    /// </summary>
    string? ValidateContent(LogObjectRef obj, ReadOnlySpan<byte> head, string? systemId);
}

/// <summary>Object keys shared by every stream kind: data under &lt;hub&gt;/&lt;folder&gt;/, the signed index under
/// &lt;hub&gt;/&lt;folder&gt;/index/&lt;line&gt;/.</summary>
public static class LogArchivePaths
{
    public const string IndexFolderName = "index";
    public const string SignatureSuffix = ".sig";
    public const string EncryptedSuffix = ".zst.gpg";

    public static string StreamFolder(string hub, ILogStreamLayout layout) => $"{hub}/{layout.FolderName}/";

    public static string IndexFolder(string hub, ILogStreamLayout layout) => $"{hub}/{layout.FolderName}/{IndexFolderName}/";

    public static string IndexLineFolder(string hub, ILogStreamLayout layout, string line) => $"{IndexFolder(hub, layout)}{line}/";

    public static string SignatureKey(string objectKey) => objectKey + SignatureSuffix;

    /// <summary>UTC time stamp used in batch names: sorts by time.</summary>
    public static string Stamp(DateTimeOffset t) => t.UtcDateTime.ToString("yyyyMMdd'T'HHmmssfff'Z'", CultureInfo.InvariantCulture);
}

/// <summary>One ancestor of a line: the line it branched from and where (PostgreSQL: a timeline history entry).</summary>
public sealed class LogBranch
{
    public string Line { get; set; } = "";

    /// <summary>Position (formatted) where the ancestor line ends and the next one begins.</summary>
    public string End { get; set; } = "";

    public string? Reason { get; set; }
}

/// <summary>One object in the signed index (public: nothing from inside the encrypted object but its length).</summary>
public sealed class LogIndexEntry
{
    public string Name { get; set; } = "";
    public LogObjectKind Kind { get; set; }
    public string Line { get; set; } = "";

    /// <summary>Object key relative to the stream folder (&lt;hub&gt;/&lt;folder&gt;/), e.g. "00000001/000000010000000000000003.zst.gpg".</summary>
    public string Object { get; set; } = "";

    /// <summary>Formatted start position (null for history objects).</summary>
    public string? Start { get; set; }

    /// <summary>Formatted end position (exclusive; null for history objects).</summary>
    public string? End { get; set; }

    /// <summary>Plaintext length in bytes.</summary>
    public long PlainSize { get; set; }

    /// <summary>Ciphertext (stored object) size and lower-case hex SHA-256.</summary>
    public long Size { get; set; }

    public string Sha256 { get; set; } = "";

    /// <summary>
    /// HMAC-SHA256 of the plaintext under a key derived from the signing key's secret material: lets the archiver tell
    /// "this object is already archived identically" from "a different object has this name" without a plaintext hash
    /// anyone could test guesses against.
    /// </summary>
    public string? ContentMac { get; set; }

    /// <summary>When the object (and its signature) were durably stored: an upper bound of every commit time inside it.</summary>
    public DateTimeOffset ArchivedUtc { get; set; }

    /// <summary>History objects: the ancestors the history file lists, oldest first.</summary>
    public List<LogBranch>? Branches { get; set; }
}

/// <summary>
/// One index batch object (&lt;hub&gt;/&lt;folder&gt;/index/&lt;line&gt;/&lt;first&gt;-&lt;last&gt;-&lt;stamp&gt;.json + .sig). The
/// archiver writes one per acknowledgement and compacts them (one merged batch per UTC day and line).
/// </summary>
public sealed class LogIndexBatch
{
    public const int CurrentFormatVersion = 1;

    public int FormatVersion { get; set; } = CurrentFormatVersion;
    public string Hub { get; set; } = "";
    public string Stream { get; set; } = "";
    public string Line { get; set; } = "";

    /// <summary>The source's identity (PostgreSQL system identifier); every batch of a hub's stream must agree.</summary>
    public string? SystemId { get; set; }

    public long SegmentSize { get; set; }
    public DateTimeOffset CreatedUtc { get; set; }
    public string SignerFingerprint { get; set; } = "";

    /// <summary>True for a batch that merged smaller ones (compaction).</summary>
    public bool Compacted { get; set; }

    public List<LogIndexEntry> Entries { get; set; } = [];
}

/// <summary>An index entry with its positions parsed, and the batch it came from.</summary>
public sealed record LogIndexItem(LogIndexEntry Entry, LogObjectRef Ref, string BatchKey, string SignerFingerprint);

/// <summary>Something wrong with the archive that a listing, the index or a signature revealed.</summary>
public sealed record LogArchiveProblem(string Kind, string Subject, string Message)
{
    public override string ToString() => $"{Kind}: {Subject}: {Message}";
}
