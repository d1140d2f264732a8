using System.Security.Cryptography;

namespace HubDr.Engine.Archive;

/// <summary>Reads the consecutive parts of a chunked entry as one verified stream.</summary>
public static class ChunkedEntryReader
{
    /// <summary>
    /// Returns a read stream over <paramref name="first"/> and the parts that follow it in <paramref name="reader"/>.
    /// Each part's name, size and SHA-256 are checked against <paramref name="expectedParts"/> when the part has been
    /// read to its end; at the end of the last part the whole-stream SHA-256 is checked against
    /// <paramref name="expectedSha256"/> (when given). Any mismatch throws "ArchiveEntryChecksumMismatch";
    /// a missing part throws "ArchivePartMissing". After the stream returns 0, call reader.Next() for what follows.
    /// Only a stream read to its end has been fully verified.
    /// </summary>
    public static Stream Open(ArchiveReader reader, ArchiveEntry first, IReadOnlyList<ArchiveEntryInfo> expectedParts, string? expectedSha256 = null)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(expectedParts);
        if (expectedParts.Count == 0) throw new ArgumentException("At least one part is expected.", nameof(expectedParts));
        return new ChunkedReadStream(reader, first, expectedParts, expectedSha256);
    }

    private sealed class ChunkedReadStream : Stream
    {
        private readonly ArchiveReader _reader;
        private readonly IReadOnlyList<ArchiveEntryInfo> _expected;
        private readonly string? _expectedWhole;
        private readonly IncrementalHash _partHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private readonly IncrementalHash _wholeHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private ArchiveEntry _entry;
        private int _index;
        private long _position;
        private bool _eof;

        public ChunkedReadStream(ArchiveReader reader, ArchiveEntry first, IReadOnlyList<ArchiveEntryInfo> expected, string? expectedWhole)
        {
            _reader = reader;
            _expected = expected;
            _expectedWhole = expectedWhole?.ToLowerInvariant();
            _entry = first;
            CheckHeader();
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => Task.FromResult(Read(buffer.AsSpan(offset, count)));

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
            => ValueTask.FromResult(Read(buffer.Span));

        public override int Read(Span<byte> buffer)
        {
            if (buffer.IsEmpty || _eof) return 0;
            while (true)
            {
                int r = _entry.Content.Read(buffer);
                if (r > 0)
                {
                    _partHash.AppendData(buffer[..r]);
                    _wholeHash.AppendData(buffer[..r]);
                    _position += r;
                    return r;
                }
                FinishPart();
                if (_index == _expected.Count - 1)
                {
                    FinishWhole();
                    _eof = true;
                    return 0;
                }
                _index++;
                ArchiveEntry? next = _reader.Next();
                if (next == null || next.Name != _expected[_index].Name)
                    throw new HubDrException("ArchivePartMissing", HubErrorCategory.InvalidData,
                        $"The backup archive is missing part '{_expected[_index].Name}' (found '{next?.Name ?? "end of archive"}'). The archive is incomplete or was tampered with; restore from another backup.");
                _entry = next;
                CheckHeader();
            }
        }

        private void CheckHeader()
        {
            ArchiveEntryInfo want = _expected[_index];
            if (_entry.Name != want.Name)
                throw new HubDrException("ArchivePartMissing", HubErrorCategory.InvalidData,
                    $"The backup archive holds '{_entry.Name}' where part '{want.Name}' was expected. The archive is incomplete or was tampered with; restore from another backup.");
            if (_entry.Size != want.Size) throw Mismatch(want.Name, $"its size is {_entry.Size} bytes, the manifest says {want.Size}");
        }

        private void FinishPart()
        {
            ArchiveEntryInfo want = _expected[_index];
            string got = Convert.ToHexString(_partHash.GetHashAndReset()).ToLowerInvariant();
            if (!string.Equals(got, want.Sha256, StringComparison.OrdinalIgnoreCase))
                throw Mismatch(want.Name, "its SHA-256 differs from the manifest");
        }

        private void FinishWhole()
        {
            string got = Convert.ToHexString(_wholeHash.GetHashAndReset()).ToLowerInvariant();
            if (_expectedWhole != null && got != _expectedWhole)
                throw Mismatch(BaseName(_expected[0].Name), "the SHA-256 of the reassembled stream differs from the manifest");
        }

        private static string BaseName(string partName)
        {
            int i = partName.LastIndexOf(".part-", StringComparison.Ordinal);
            return i > 0 ? partName[..i] : partName;
        }

        private static HubDrException Mismatch(string name, string why) =>
            new("ArchiveEntryChecksumMismatch", HubErrorCategory.InvalidData,
                $"The backup archive member '{name}' is damaged: {why}. Do not use this data; restore from another backup.")
            { Target = name };

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _partHash.Dispose();
                _wholeHash.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
