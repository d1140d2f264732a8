using System.Text;
using HubDr.Engine.IO;

namespace HubDr.Engine.Archive;

/// <summary>One member of the archive. <see cref="Content"/> is valid until the next <see cref="ArchiveReader.Next"/>.</summary>
public sealed class ArchiveEntry
{
    internal ArchiveEntry(string name, long size, bool isDirectory, Stream content)
    {
        Name = name;
        Size = size;
        IsDirectory = isDirectory;
        Content = content;
    }

    public string Name { get; }
    public long Size { get; }
    public bool IsDirectory { get; }
    public Stream Content { get; }
}

/// <summary>
/// Streaming tar reader for a non-seekable input (left open). Accepts ustar, pax (path/size) and GNU long names;
/// refuses anything that could escape the extraction folder or is not a regular file or directory.
/// </summary>
public sealed class ArchiveReader : IDisposable
{
    private readonly Stream _input;
    private readonly byte[] _header = new byte[TarFormat.BlockSize];
    private EntryContentStream? _current;
    private bool _atEnd;
    private bool _disposed;

    public ArchiveReader(Stream input)
    {
        ArgumentNullException.ThrowIfNull(input);
        _input = input;
    }

    /// <summary>The next file or directory, or null at the end of the archive.</summary>
    public ArchiveEntry? Next()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_atEnd) return null;
        if (_current != null)
        {
            _current.SkipRest();
            _current = null;
        }

        string? longName = null;
        long? paxSize = null;
        while (true)
        {
            if (!ReadBlock(_header, allowCleanEof: false)) throw TarFormat.Truncated();
            if (TarFormat.IsZeroBlock(_header))
            {
                // End of archive: one or two zero blocks (GNU tar writes two; a missing second one is tolerated).
                _atEnd = true;
                return null;
            }
            if (!TarFormat.ChecksumOk(_header)) throw TarFormat.Corrupt("a tar header checksum does not match");
            if (!TarFormat.TryParseNumber(_header.AsSpan(124, 12), out long size) || size < 0)
                throw TarFormat.Corrupt("a tar header has an invalid size");
            byte type = _header[156];
            bool ustar = _header.AsSpan(257, 6).SequenceEqual("ustar\0"u8);
            string rawName = TarFormat.ParseString(_header.AsSpan(0, 100));
            if (ustar)
            {
                string prefix = TarFormat.ParseString(_header.AsSpan(345, 155));
                if (prefix.Length > 0) rawName = prefix + "/" + rawName;
            }

            switch (type)
            {
                case TarFormat.TypePaxLocal:
                case TarFormat.TypePaxGlobal:
                {
                    byte[] data = ReadSmallPayload(size, "pax header");
                    if (type == TarFormat.TypePaxGlobal) continue;
                    var records = TarFormat.ParsePax(data);
                    if (records.TryGetValue("path", out string? p)) longName = p;
                    if (records.TryGetValue("linkpath", out _))
                        throw Unsafe(longName ?? rawName, "it is a link");
                    if (records.TryGetValue("size", out string? s))
                    {
                        if (!long.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long ps))
                            throw TarFormat.Corrupt("a pax size record is invalid");
                        paxSize = ps;
                    }
                    continue;
                }
                case TarFormat.TypeGnuLongName:
                {
                    byte[] data = ReadSmallPayload(size, "GNU long name");
                    longName = TarFormat.ParseString(data);
                    continue;
                }
            }

            string name = longName ?? rawName;
            if (paxSize.HasValue) size = paxSize.Value;
            bool isDir;
            if (type == TarFormat.TypeRegular || type == TarFormat.TypeRegularOld)
            {
                isDir = false;
                // Old (pre-POSIX) archives mark directories with a trailing slash on a regular entry.
                if (type == TarFormat.TypeRegularOld && name.EndsWith('/')) isDir = true;
            }
            else if (type == TarFormat.TypeDirectory) isDir = true;
            else
            {
                string kind = type switch
                {
                    (byte)'1' => "a hard link",
                    (byte)'2' => "a symbolic link",
                    (byte)'3' => "a character device",
                    (byte)'4' => "a block device",
                    (byte)'6' => "a FIFO",
                    (byte)'K' => "a link (GNU long link name)",
                    _ => $"an unsupported member type '{(char)type}'",
                };
                throw Unsafe(name, $"it is {kind}; only regular files and directories are allowed");
            }

            if (!IsSafeName(name, out string? why)) throw Unsafe(name, why!);
            if (isDir)
            {
                name = name.TrimEnd('/');
            }
            _current = new EntryContentStream(this, size);
            return new ArchiveEntry(name, size, isDir, _current);
        }
    }

    /// <summary>True when <paramref name="name"/> is a relative path that cannot leave the extraction folder.</summary>
    public static bool IsSafeName(string name, out string? why)
    {
        why = null;
        if (string.IsNullOrEmpty(name)) { why = "the name is empty"; return false; }
        if (name.Contains('\\')) { why = "it contains a backslash"; return false; }
        if (name.Contains('\0')) { why = "it contains a NUL character"; return false; }
        if (name[0] == '/') { why = "it is an absolute path"; return false; }
        if (name.Length >= 2 && name[1] == ':' && char.IsAsciiLetter(name[0])) { why = "it starts with a drive letter"; return false; }
        foreach (string seg in name.Split('/'))
        {
            if (seg == "..") { why = "it contains a '..' segment"; return false; }
        }
        return true;
    }

    private static HubDrException Unsafe(string name, string why) =>
        new("ArchiveUnsafeEntry", HubErrorCategory.InvalidData,
            $"The backup archive contains an unsafe member '{name}': {why}. HubDr archives never contain such members, so this archive was not produced by HubDr or was tampered with; do not extract it.")
        { Target = name };

    private byte[] ReadSmallPayload(long size, string what)
    {
        if (size > 1024 * 1024) throw TarFormat.Corrupt($"a {what} is unreasonably large ({size} bytes)");
        byte[] data = new byte[size];
        ReadExactlyOrTruncated(data);
        SkipBytes(TarFormat.Padding(size));
        return data;
    }

    private bool ReadBlock(byte[] block, bool allowCleanEof)
    {
        int read = _input.ReadAtLeast(block, block.Length, throwOnEndOfStream: false);
        if (read == block.Length) return true;
        if (read == 0 && allowCleanEof) return false;
        return false;
    }

    internal void ReadExactlyOrTruncated(Span<byte> buffer)
    {
        if (_input.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false) != buffer.Length)
            throw TarFormat.Truncated();
    }

    internal int ReadSome(Span<byte> buffer) => _input.Read(buffer);

    internal void SkipBytes(long count)
    {
        if (count <= 0) return;
        byte[] tmp = count <= TarFormat.BlockSize ? _header : new byte[(int)Math.Min(count, 81920)];
        while (count > 0)
        {
            int n = (int)Math.Min(count, tmp.Length);
            int r = _input.Read(tmp, 0, n);
            if (r <= 0) throw TarFormat.Truncated();
            count -= r;
        }
    }

    public void Dispose() => _disposed = true;

    /// <summary>Read-only view of one member's data; throws ArchiveTruncated when the input ends early.</summary>
    private sealed class EntryContentStream : ReadOnlyStream
    {
        private readonly ArchiveReader _owner;
        private readonly long _size;
        private long _remaining;
        private bool _done;

        public EntryContentStream(ArchiveReader owner, long size)
        {
            _owner = owner;
            _size = size;
            _remaining = size;
        }

        public override long Length => _size;
        public override long Position { get => _size - _remaining; set => throw new NotSupportedException(); }

        public override int Read(Span<byte> buffer)
        {
            if (_done) throw new InvalidOperationException("This archive entry is no longer current; its content was valid until Next().");
            if (_remaining == 0 || buffer.IsEmpty) return 0;
            int want = (int)Math.Min(buffer.Length, _remaining);
            int r = _owner.ReadSome(buffer[..want]);
            if (r <= 0) throw TarFormat.Truncated();
            _remaining -= r;
            return r;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => Task.FromResult(Read(buffer.AsSpan(offset, count)));

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
            => ValueTask.FromResult(Read(buffer.Span));

        public void SkipRest()
        {
            if (_done) return;
            _owner.SkipBytes(_remaining + TarFormat.Padding(_size));
            _remaining = 0;
            _done = true;
        }
    }
}
