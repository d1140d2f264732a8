using System.Globalization;
using System.Security.Cryptography;
using HubDr.Engine.IO;

namespace HubDr.Engine.Archive;

/// <summary>
/// Reads the dump parts "&lt;name&gt;.part-000000", "…001", … that follow each other in the tar as one stream, without
/// knowing their number in advance. The manifest with their checksums comes last, so each part's size and SHA-256 are
/// recorded in <see cref="Parts"/> and checked against the manifest afterwards (<see cref="Verify"/>).
/// The first entry after the last part is kept in <see cref="Pending"/>.
/// </summary>
internal sealed class SequentialPartsStream : ReadOnlyStream
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

    /// <summary>
    /// Checks, once this stream has returned 0, that the parts read are exactly <paramref name="expected"/> (the
    /// manifest's list) in order, name, size and SHA-256, and that they add up to <paramref name="expectedTotal"/>.
    /// Throws ArchivePartMissing when the manifest lists parts the archive lacks, else ArchiveEntryChecksumMismatch.
    /// The parts' hashes cover every byte of the entry in order, so no whole-stream hash is needed.
    /// </summary>
    public void Verify(IReadOnlyList<ArchiveEntryInfo> expected, long expectedTotal)
    {
        ArgumentNullException.ThrowIfNull(expected);
        if (!_eof)
        {
            throw new InvalidOperationException("Verify() needs the parts read to their end.");
        }

        for (var i = 0; i < Math.Max(expected.Count, _parts.Count); i++)
        {
            if (i >= _parts.Count)
            {
                throw new HubDrException("ArchivePartMissing", HubErrorCategory.InvalidData,
                    $"The backup archive ends its dump after '{_parts[^1].Name}', but the manifest also lists '{expected[i].Name}'. " +
                    "The archive is incomplete or was tampered with; restore from another backup.") { Target = expected[i].Name };
            }

            var got = _parts[i];
            if (i >= expected.Count)
            {
                throw Damaged(got.Name, "the manifest does not list it");
            }

            var want = expected[i];
            if (want.Name != got.Name || want.Size != got.Size || !string.Equals(want.Sha256, got.Sha256, StringComparison.OrdinalIgnoreCase))
            {
                throw Damaged(got.Name, $"{got.Size} bytes with SHA-256 {got.Sha256}, but the manifest says '{want.Name}', {want.Size} bytes, {want.Sha256}");
            }
        }

        if (TotalLength != expectedTotal)
        {
            throw Damaged(_baseName, $"the parts hold {TotalLength} bytes, the manifest says {expectedTotal}");
        }
    }

    private static HubDrException Damaged(string name, string why) =>
        new("ArchiveEntryChecksumMismatch", HubErrorCategory.InvalidData,
            $"The backup archive member '{name}' is damaged: {why}. Do not use this data; restore from another backup.")
        { Target = name };

    public static string? BaseName(string name)
    {
        var i = name.LastIndexOf(".part-", StringComparison.Ordinal);
        return i < 0 ? null : name[..i];
    }

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
