using System.Globalization;
using System.Security.Cryptography;
using HubDr.Engine.Archive;

namespace HubDr.Engine.Backup;

/// <summary>
/// Reads the dump parts "&lt;name&gt;.part-000000", "…001", … that follow each other in the tar as one stream, without
/// knowing their number in advance. The manifest with their checksums comes last, so each part's size and SHA-256 are
/// recorded in <see cref="Parts"/> and the caller compares them with the manifest afterwards (<see cref="Matches"/>).
/// The first entry after the last part is kept in <see cref="Pending"/>.
/// </summary>
internal sealed class SequentialPartsStream : Stream
{
    private readonly ArchiveReader _reader;
    private readonly string _baseName;
    private readonly IncrementalHash _partHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly List<ArchiveEntryInfo> _parts = [];
    private ArchiveEntry _current;
    private long _partLength;
    private int _index;
    private bool _eof;

    public SequentialPartsStream(ArchiveReader reader, ArchiveEntry first)
    {
        _reader = reader;
        _current = first;
        _baseName = BaseName(first.Name)
            ?? throw new HubDrException("ArchiveLayoutInvalid", HubErrorCategory.InvalidData, $"'{first.Name}' is not a dump part.");
        Expect(first, 0);
    }

    /// <summary>The entry that followed the last part (null at the end of the archive); valid once this stream returned 0.</summary>
    public ArchiveEntry? Pending { get; private set; }

    public int PartCount => _index + 1;

    /// <summary>Name, size and SHA-256 of every part read to its end (complete once this stream returned 0).</summary>
    public IReadOnlyList<ArchiveEntryInfo> Parts => _parts;

    /// <summary>Bytes of the whole dump read so far.</summary>
    public long TotalLength { get; private set; }

    /// <summary>Null when the parts read equal <paramref name="expected"/> in order, name, size and SHA-256; else why not.</summary>
    public string? Mismatch(IReadOnlyList<ManifestEntry> expected)
    {
        if (expected.Count != _parts.Count)
        {
            return $"the archive holds {_parts.Count} dump part(s), the manifest lists {expected.Count}";
        }

        for (var i = 0; i < expected.Count; i++)
        {
            var (want, got) = (expected[i], _parts[i]);
            if (want.Name != got.Name || want.Size != got.Size || !string.Equals(want.Sha256, got.Sha256, StringComparison.OrdinalIgnoreCase))
            {
                return $"part '{got.Name}' ({got.Size} bytes) differs from the manifest's '{want.Name}' ({want.Size} bytes) in size or SHA-256";
            }
        }

        return null;
    }

    public static string? BaseName(string name)
    {
        var i = name.LastIndexOf(".part-", StringComparison.Ordinal);
        return i < 0 ? null : name[..i];
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        while (!_eof && !buffer.IsEmpty)
        {
            var n = _current.Content.Read(buffer);
            if (n > 0)
            {
                _partHash.AppendData(buffer[..n]);
                _partLength += n;
                TotalLength += n;
                return n;
            }

            _parts.Add(new ArchiveEntryInfo(_current.Name, _partLength, Convert.ToHexString(_partHash.GetHashAndReset()).ToLowerInvariant()));
            _partLength = 0;
            var next = _reader.Next();
            if (next is not null && BaseName(next.Name) == _baseName)
            {
                _index++;
                Expect(next, _index);
                _current = next;
                continue;
            }

            Pending = next;
            _eof = true;
        }

        return 0;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Task.FromResult(Read(buffer.AsSpan(offset, count)));

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _partHash.Dispose();
        }

        base.Dispose(disposing);
    }

    private void Expect(ArchiveEntry entry, int index)
    {
        var want = _baseName + ".part-" + index.ToString("D6", CultureInfo.InvariantCulture);
        if (entry.Name != want)
        {
            throw new HubDrException("ArchivePartMissing", HubErrorCategory.InvalidData, $"Expected dump part '{want}' but found '{entry.Name}'.");
        }
    }
}
