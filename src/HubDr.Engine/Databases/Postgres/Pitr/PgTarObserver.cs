using System.Text;
using System.Text.Json;
using HubDr.Engine.Archive;
using HubDr.Engine.IO;

namespace HubDr.Engine.Databases.Postgres.Pitr;

/// <summary>
/// Pass-through write stream over pg_basebackup's tar output that reads the tar headers as the bytes stream past, without
/// buffering the data: it keeps <c>backup_label</c> and the last 64 KiB of <c>backup_manifest</c> (PostgreSQL 15 appends
/// the manifest at the end of the tar; its "WAL-Ranges" — start/stop LSN and timeline — close it), and refuses tablespace
/// links (pg_tblspc/…), which a single-tar stream cannot carry.
/// </summary>
internal sealed class PgTarObserver : WriteOnlyStream
{
    private const int ManifestTail = 64 * 1024;
    private readonly Stream _inner;
    private readonly byte[] _header = new byte[TarFormat.BlockSize];
    private int _headerFill;
    private long _dataLeft;
    private long _padLeft;
    private string? _member;
    private MemoryStream? _capture;
    private readonly Queue<byte[]> _tail = new();
    private int _tailBytes;
    private bool _inManifest;
    private string? _paxPath;
    private MemoryStream? _pax;
    private bool _ended;

    public PgTarObserver(Stream inner)
    {
        _inner = inner;
    }

    public byte[]? BackupLabel { get; private set; }
    public int Members { get; private set; }
    public long BytesWritten { get; private set; }
    public bool SawEnd => _ended;

    public byte[] ManifestTailBytes
    {
        get
        {
            var ms = new MemoryStream();
            foreach (var c in _tail)
            {
                ms.Write(c);
            }

            var all = ms.ToArray();
            return all.Length > ManifestTail ? all[^ManifestTail..] : all;
        }
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Observe(buffer);
        _inner.Write(buffer);
        BytesWritten += buffer.Length;
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Observe(buffer.Span);
        await _inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        BytesWritten += buffer.Length;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush() => _inner.Flush();

    private void Observe(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty && !_ended)
        {
            if (_dataLeft > 0)
            {
                var n = (int)Math.Min(_dataLeft, data.Length);
                var chunk = data[..n];
                _capture?.Write(chunk);
                if (_inManifest)
                {
                    _tail.Enqueue(chunk.ToArray());
                    _tailBytes += n;
                    while (_tailBytes - _tail.Peek().Length >= ManifestTail)
                    {
                        _tailBytes -= _tail.Dequeue().Length;
                    }
                }

                _dataLeft -= n;
                data = data[n..];
                if (_dataLeft == 0)
                {
                    EndMember();
                }

                continue;
            }

            if (_padLeft > 0)
            {
                var n = (int)Math.Min(_padLeft, data.Length);
                _padLeft -= n;
                data = data[n..];
                continue;
            }

            var take = Math.Min(TarFormat.BlockSize - _headerFill, data.Length);
            data[..take].CopyTo(_header.AsSpan(_headerFill));
            _headerFill += take;
            data = data[take..];
            if (_headerFill == TarFormat.BlockSize)
            {
                _headerFill = 0;
                Header();
            }
        }
    }

    private void Header()
    {
        if (TarFormat.IsZeroBlock(_header))
        {
            _ended = true; // end-of-archive blocks; whatever follows is padding
            return;
        }

        if (!TarFormat.ChecksumOk(_header) || !TarFormat.TryParseNumber(_header.AsSpan(124, 12), out var size) || size < 0)
        {
            throw new HubDrException("BaseBackupFailed", HubErrorCategory.InvalidData,
                "pg_basebackup's output is not a valid tar stream (bad header). The base backup was not written.");
        }

        var type = _header[156];
        var name = TarFormat.ParseString(_header.AsSpan(0, 100));
        if (_header.AsSpan(257, 5).SequenceEqual("ustar"u8))
        {
            var prefix = TarFormat.ParseString(_header.AsSpan(345, 155));
            if (prefix.Length > 0)
            {
                name = prefix + "/" + name;
            }
        }

        if (_paxPath is not null)
        {
            name = _paxPath;
            _paxPath = null;
        }

        if (type is (byte)'1' or (byte)'2')
        {
            var link = TarFormat.ParseString(_header.AsSpan(157, 100));
            throw new HubDrException("BaseBackupTablespacesUnsupported", HubErrorCategory.InvalidOperation,
                $"The base backup contains a link '{name}' → '{link}' (a tablespace outside the data directory, or a linked pg_wal/config file). " +
                "pg_basebackup cannot stream several tablespaces into one tar; see docs/pitr.md, \"Limits\".") { Target = name };
        }

        _member = name;
        _dataLeft = size;
        _padLeft = TarFormat.Padding(size);
        _inManifest = false;
        _capture = null;
        if (type == (byte)'x')
        {
            _pax = new MemoryStream();
            _capture = _pax;
        }
        else if (type is (byte)'0' or 0)
        {
            Members++;
            if (name == "backup_label")
            {
                _capture = new MemoryStream();
            }
            else if (name == "backup_manifest")
            {
                _inManifest = true;
                _tail.Clear();
                _tailBytes = 0;
            }
        }

        if (size == 0)
        {
            EndMember();
        }
    }

    private void EndMember()
    {
        if (_member == "backup_label" && _capture is not null && _capture != _pax)
        {
            BackupLabel = _capture.ToArray();
        }

        if (_pax is not null && _capture == _pax)
        {
            var records = TarFormat.ParsePax(_pax.ToArray());
            _paxPath = records.TryGetValue("path", out var p) ? p : null;
            _pax = null;
        }

        _capture = null;
        _inManifest = false;
    }

    /// <summary>The "WAL-Ranges" of backup_manifest (JSON tail): (timeline, start, end) for each range.</summary>
    public List<(uint Timeline, ulong Start, ulong End)> WalRanges()
    {
        var text = Encoding.UTF8.GetString(ManifestTailBytes);
        var at = text.LastIndexOf("\"WAL-Ranges\"", StringComparison.Ordinal);
        if (at < 0)
        {
            throw new HubDrException("BaseBackupFailed", HubErrorCategory.InvalidData,
                "pg_basebackup's output has no backup manifest with WAL-Ranges at its end (PostgreSQL 15+ with manifests enabled is required; do not pass --no-manifest).");
        }

        var open = text.IndexOf('[', at);
        var close = text.IndexOf(']', open);
        using var doc = JsonDocument.Parse(text[open..(close + 1)]);
        var result = new List<(uint, ulong, ulong)>();
        foreach (var r in doc.RootElement.EnumerateArray())
        {
            result.Add((r.GetProperty("Timeline").GetUInt32(), Wal.ParseLsn(r.GetProperty("Start-LSN").GetString()!), Wal.ParseLsn(r.GetProperty("End-LSN").GetString()!)));
        }

        return result;
    }

    /// <summary>"KEY: value" lines of backup_label.</summary>
    public Dictionary<string, string> Label()
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (BackupLabel is null)
        {
            return result;
        }

        foreach (var line in Encoding.UTF8.GetString(BackupLabel).Split('\n'))
        {
            var colon = line.IndexOf(": ", StringComparison.Ordinal);
            if (colon > 0)
            {
                result[line[..colon]] = line[(colon + 2)..].Trim();
            }
        }

        return result;
    }
}
