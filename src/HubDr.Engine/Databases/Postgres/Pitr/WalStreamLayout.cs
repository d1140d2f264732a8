using System.Globalization;
using HubDr.Engine.LogArchive;

namespace HubDr.Engine.Databases.Postgres.Pitr;

/// <summary>PostgreSQL WAL positions (LSN) and file names.</summary>
public static class Wal
{
    /// <summary>"16/B374D848" (upper/lower 32 bits, hex, as PostgreSQL prints it).</summary>
    public static string FormatLsn(ulong lsn) => $"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}";

    public static bool TryParseLsn(string? text, out ulong lsn)
    {
        lsn = 0;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        var slash = text.IndexOf('/');
        if (slash <= 0 || slash == text.Length - 1 || slash > 8 || text.Length - slash - 1 > 8)
        {
            return false;
        }

        if (!uint.TryParse(text.AsSpan(0, slash), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var hi)
            || !uint.TryParse(text.AsSpan(slash + 1), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var lo))
        {
            return false;
        }

        lsn = ((ulong)hi << 32) | lo;
        return true;
    }

    public static ulong ParseLsn(string text) => TryParseLsn(text, out var l) ? l
        : throw new HubDrException("WalPositionInvalid", HubErrorCategory.InvalidData, $"'{text}' is not a PostgreSQL WAL position (LSN, e.g. 0/3000028).");

    public static string TimelineName(uint timeline) => timeline.ToString("X8", CultureInfo.InvariantCulture);

    public static bool TryParseTimeline(string text, out uint timeline) =>
        uint.TryParse(text, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out timeline) && text.Length == 8 && timeline > 0;

    public static ulong SegmentNumber(ulong lsn, long segmentSize) => lsn / (ulong)segmentSize;

    public static ulong SegmentStart(ulong lsn, long segmentSize) => lsn - (lsn % (ulong)segmentSize);

    /// <summary>"000000010000000000000003": timeline, then the segment number split at 2^32 / segment size (XLogFileName).</summary>
    public static string SegmentFileName(uint timeline, ulong segmentNumber, long segmentSize)
    {
        var perId = 0x1_0000_0000UL / (ulong)segmentSize;
        return string.Create(CultureInfo.InvariantCulture, $"{timeline:X8}{segmentNumber / perId:X8}{segmentNumber % perId:X8}");
    }

    public static bool TryParseSegmentFileName(string name, long segmentSize, out uint timeline, out ulong segmentNumber)
    {
        timeline = 0;
        segmentNumber = 0;
        if (name.Length != 24 || !name.All(c => char.IsAsciiDigit(c) || c is >= 'A' and <= 'F'))
        {
            return false;
        }

        timeline = uint.Parse(name.AsSpan(0, 8), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
        var log = uint.Parse(name.AsSpan(8, 8), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
        var seg = uint.Parse(name.AsSpan(16, 8), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
        var perId = 0x1_0000_0000UL / (ulong)segmentSize;
        if (seg >= perId || timeline == 0)
        {
            return false;
        }

        segmentNumber = log * perId + seg;
        return true;
    }

    public static string HistoryFileName(uint timeline) => $"{timeline:X8}.history";

    public static bool TryParseHistoryFileName(string name, out uint timeline)
    {
        timeline = 0;
        return name.Length == 16 && name.EndsWith(".history", StringComparison.Ordinal) && TryParseTimeline(name[..8], out timeline);
    }

    /// <summary>WAL segment sizes PostgreSQL allows: powers of two from 1 MiB to 1 GiB.</summary>
    public static bool IsValidSegmentSize(long size) => size is >= 1 << 20 and <= 1 << 30 && (size & (size - 1)) == 0;

    /// <summary>Parses "16MB", "1MB", "1GB" (SHOW wal_segment_size) or a plain byte count.</summary>
    public static long ParseSegmentSize(string text)
    {
        var t = text.Trim();
        long factor = 1;
        if (t.EndsWith("GB", StringComparison.OrdinalIgnoreCase))
        {
            factor = 1L << 30;
            t = t[..^2];
        }
        else if (t.EndsWith("MB", StringComparison.OrdinalIgnoreCase))
        {
            factor = 1L << 20;
            t = t[..^2];
        }
        else if (t.EndsWith("kB", StringComparison.OrdinalIgnoreCase))
        {
            factor = 1L << 10;
            t = t[..^2];
        }

        var size = long.Parse(t, CultureInfo.InvariantCulture) * factor;
        if (!IsValidSegmentSize(size))
        {
            throw new HubDrException("WalSegmentSizeInvalid", HubErrorCategory.InvalidData, $"'{text}' is not a valid WAL segment size.");
        }

        return size;
    }
}

/// <summary>
/// Naming and ordering of PostgreSQL WAL in the store (docs/pitr.md): lines are timelines ("00000001"), positions LSNs.
/// <code>
/// &lt;hub&gt;/_wal/&lt;timeline&gt;/&lt;segment&gt;.zst.gpg                      complete segment (+ .sig)
/// &lt;hub&gt;/_wal/&lt;timeline&gt;/&lt;segment&gt;.partial-&lt;end LSN 16 hex&gt;.zst.gpg  first bytes of a segment (+ .sig)
/// &lt;hub&gt;/_wal/history/&lt;timeline&gt;.history.zst.gpg             timeline history file (+ .sig)
/// &lt;hub&gt;/_wal/index/&lt;timeline&gt;/&lt;first&gt;-&lt;last&gt;-&lt;stamp&gt;.json  signed index batch (+ .sig)
/// </code>
/// </summary>
public sealed class WalStreamLayout : ILogStreamLayout
{
    public const string Folder = "_wal";
    public const string HistoryFolder = "history";
    private const string PartialMarker = ".partial-";

    public WalStreamLayout(long segmentSize)
    {
        if (!Wal.IsValidSegmentSize(segmentSize))
        {
            throw new HubDrException("WalSegmentSizeInvalid", HubErrorCategory.InvalidData, $"{segmentSize} is not a valid WAL segment size.");
        }

        SegmentSize = segmentSize;
    }

    public string StreamKind => "postgres-wal";

    public string FolderName => Folder;

    public long SegmentSize { get; }

    public LogObjectRef Segment(uint timeline, ulong segmentNumber)
    {
        var start = segmentNumber * (ulong)SegmentSize;
        return new LogObjectRef(Wal.TimelineName(timeline), Wal.SegmentFileName(timeline, segmentNumber, SegmentSize), LogObjectKind.Segment, start, start + (ulong)SegmentSize);
    }

    public LogObjectRef Partial(uint timeline, ulong end)
    {
        // A partial ending exactly on a boundary would be the whole previous segment; it never happens (callers upload
        // the segment instead), so the segment is the one holding the byte before 'end'.
        var segNo = Wal.SegmentNumber(end - 1, SegmentSize);
        var start = segNo * (ulong)SegmentSize;
        return new LogObjectRef(Wal.TimelineName(timeline), Wal.SegmentFileName(timeline, segNo, SegmentSize), LogObjectKind.Partial, start, end);
    }

    public static LogObjectRef History(uint timeline) => new(Wal.TimelineName(timeline), Wal.HistoryFileName(timeline), LogObjectKind.History, 0, 0);

    public string ObjectKey(string hub, LogObjectRef obj) => obj.Kind switch
    {
        LogObjectKind.Segment => $"{hub}/{Folder}/{obj.Line}/{obj.Name}{LogArchivePaths.EncryptedSuffix}",
        LogObjectKind.Partial => $"{hub}/{Folder}/{obj.Line}/{obj.Name}{PartialMarker}{obj.End:X16}{LogArchivePaths.EncryptedSuffix}",
        _ => $"{hub}/{Folder}/{HistoryFolder}/{obj.Name}{LogArchivePaths.EncryptedSuffix}",
    };

    public bool TryParseObjectKey(string hub, string key, out LogObjectRef obj)
    {
        obj = null!;
        var prefix = $"{hub}/{Folder}/";
        if (!key.StartsWith(prefix, StringComparison.Ordinal) || !key.EndsWith(LogArchivePaths.EncryptedSuffix, StringComparison.Ordinal))
        {
            return false;
        }

        var rest = key[prefix.Length..^LogArchivePaths.EncryptedSuffix.Length];
        var slash = rest.IndexOf('/');
        if (slash < 0 || rest.IndexOf('/', slash + 1) >= 0)
        {
            return false;
        }

        var folder = rest[..slash];
        var file = rest[(slash + 1)..];
        if (folder == HistoryFolder)
        {
            if (!Wal.TryParseHistoryFileName(file, out var tli))
            {
                return false;
            }

            obj = History(tli);
            return true;
        }

        if (!Wal.TryParseTimeline(folder, out var timeline))
        {
            return false;
        }

        var marker = file.IndexOf(PartialMarker, StringComparison.Ordinal);
        var name = marker < 0 ? file : file[..marker];
        if (!Wal.TryParseSegmentFileName(name, SegmentSize, out var fileTli, out var segNo) || fileTli != timeline)
        {
            return false;
        }

        if (marker < 0)
        {
            obj = Segment(timeline, segNo);
            return true;
        }

        var endText = file[(marker + PartialMarker.Length)..];
        if (endText.Length != 16 || !ulong.TryParse(endText, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var end))
        {
            return false;
        }

        var start = segNo * (ulong)SegmentSize;
        if (end <= start || end >= start + (ulong)SegmentSize)
        {
            return false;
        }

        obj = new LogObjectRef(folder, name, LogObjectKind.Partial, start, end);
        return true;
    }

    public string FormatPosition(ulong position) => Wal.FormatLsn(position);

    public bool TryParsePosition(string text, out ulong position) => Wal.TryParseLsn(text, out position);

    public int CompareLines(string a, string b) => string.CompareOrdinal(a, b);

    public LogObjectRef? SegmentAt(string line, ulong position) =>
        Wal.TryParseTimeline(line, out var tli) ? Segment(tli, Wal.SegmentNumber(position, SegmentSize)) : null;

    /// <summary>
    /// A segment (or partial) starts with PostgreSQL's long page header (XLogLongPageHeaderData, little-endian):
    /// xlp_pageaddr at offset 8 must be the segment's start LSN, xlp_sysid at 24 the cluster's system identifier and
    /// xlp_seg_size at 32 the segment size. So a validly signed segment stored under another segment's name, or another
    /// cluster's, is refused before PostgreSQL sees it.
    /// </summary>
    public string? ValidateContent(LogObjectRef obj, ReadOnlySpan<byte> head, string? systemId)
    {
        if (obj.Kind == LogObjectKind.History)
        {
            return null;
        }

        if (head.Length < 40)
        {
            return "it is too short to hold a WAL page header";
        }

        var pageAddr = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(head[8..]);
        var sysId = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(head[24..]);
        var segSize = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(head[32..]);
        if (pageAddr != obj.Start)
        {
            return $"its WAL starts at {Wal.FormatLsn(pageAddr)}, but {obj.Name} starts at {Wal.FormatLsn(obj.Start)} (another segment stored under this name)";
        }

        if (segSize != SegmentSize)
        {
            return $"its WAL segment size is {segSize}, not {SegmentSize}";
        }

        if (systemId is not null && sysId.ToString(CultureInfo.InvariantCulture) != systemId)
        {
            return $"it is WAL of PostgreSQL system {sysId}, not {systemId}";
        }

        return null;
    }
}
