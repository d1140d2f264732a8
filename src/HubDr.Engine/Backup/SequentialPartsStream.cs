using System.Globalization;
using HubDr.Engine.Archive;

namespace HubDr.Engine.Backup;

/// <summary>
/// Reads the dump parts "&lt;name&gt;.part-000000", "…001", … that follow each other in the tar as one stream, without
/// knowing their number in advance (the manifest with their checksums comes last; the caller hashes the whole stream
/// and compares it with the manifest afterwards). The first entry after the last part is kept in <see cref="Pending"/>.
/// </summary>
internal sealed class SequentialPartsStream : Stream
{
    private readonly ArchiveReader _reader;
    private readonly string _baseName;
    private ArchiveEntry _current;
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
                return n;
            }

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

    private void Expect(ArchiveEntry entry, int index)
    {
        var want = _baseName + ".part-" + index.ToString("D6", CultureInfo.InvariantCulture);
        if (entry.Name != want)
        {
            throw new HubDrException("ArchivePartMissing", HubErrorCategory.InvalidData, $"Expected dump part '{want}' but found '{entry.Name}'.");
        }
    }
}
