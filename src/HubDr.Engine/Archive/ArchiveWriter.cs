using System.Security.Cryptography;
using HubDr.Engine.IO;

namespace HubDr.Engine.Archive;

/// <summary>Name, size and lower-case hex SHA-256 of one tar member (or of a whole chunked stream).</summary>
public sealed record ArchiveEntryInfo(string Name, long Size, string Sha256);

/// <summary>
/// Writes a POSIX tar (ustar, pax extended headers for long/non-ASCII names) in one streaming pass to a
/// non-seekable stream. Data of unknown length goes through <see cref="OpenChunked"/>, which splits it into
/// fixed-size parts "&lt;name&gt;.part-000000", "...-000001", ... buffered in one reusable buffer of partSize bytes.
/// </summary>
public sealed class ArchiveWriter : IDisposable
{
    internal const int MaxParts = 1_000_000;

    private readonly Stream _output;
    private readonly long _mtime;
    private readonly int _partSize;
    private readonly byte[] _scratch = new byte[TarFormat.BlockSize];
    private byte[]? _partBuffer;
    private ChunkedEntryStream? _openChunk;
    private bool _finished;
    private bool _disposed;

    public ArchiveWriter(Stream output, DateTimeOffset modified, int partSize = 16 * 1024 * 1024)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (!output.CanWrite) throw new ArgumentException("The archive output stream must be writable.", nameof(output));
        if (partSize < 1) throw new ArgumentOutOfRangeException(nameof(partSize), "partSize must be positive.");
        _output = output;
        _mtime = modified.ToUnixTimeSeconds();
        _partSize = partSize;
    }

    public int PartSize => _partSize;

    /// <summary>Adds a small file whose content is in memory.</summary>
    public ArchiveEntryInfo AddBytes(string name, ReadOnlySpan<byte> content)
    {
        EnsureWritable();
        ValidateName(name);
        WriteEntry(name, content);
        return new ArchiveEntryInfo(name, content.Length, Convert.ToHexString(SHA256.HashData(content)).ToLowerInvariant());
    }

    /// <summary>
    /// Opens a write-only stream for data of unknown length. Write into it; disposing it writes the last part.
    /// Only one chunked entry can be open at a time.
    /// </summary>
    public ChunkedEntryStream OpenChunked(string name)
    {
        EnsureWritable();
        ValidateName(name);
        _partBuffer ??= new byte[_partSize];
        _openChunk = new ChunkedEntryStream(this, name, _partBuffer);
        return _openChunk;
    }

    /// <summary>Writes the two end-of-archive zero blocks. Idempotent.</summary>
    public void Finish()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_finished) return;
        if (_openChunk != null)
            throw new InvalidOperationException($"Dispose the chunked entry '{_openChunk.Name}' before finishing the archive.");
        TarFormat.WriteZeros(_output, 2 * TarFormat.BlockSize, _scratch);
        _output.Flush();
        _finished = true;
    }

    public void Dispose()
    {
        // Does not write the end blocks implicitly: an archive that was not Finish()ed must stay detectably truncated.
        _disposed = true;
        _partBuffer = null;
    }

    public static string PartName(string name, int index) => $"{name}.part-{index:D6}";

    internal void WriteEntry(string name, ReadOnlySpan<byte> content)
    {
        TarFormat.WriteFileHeader(_output, name, content.Length, _mtime, _scratch);
        _output.Write(content);
        TarFormat.WriteZeros(_output, TarFormat.Padding(content.Length), _scratch);
    }

    internal void ChunkClosed(ChunkedEntryStream chunk)
    {
        if (ReferenceEquals(_openChunk, chunk)) _openChunk = null;
    }

    private void EnsureWritable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_finished) throw new InvalidOperationException("The archive is already finished.");
        if (_openChunk != null)
            throw new InvalidOperationException($"The chunked entry '{_openChunk.Name}' is still open; dispose it first.");
    }

    internal static void ValidateName(string name)
    {
        if (!ArchiveReader.IsSafeName(name, out string? why))
            throw new ArgumentException($"Archive member name '{name}' is not allowed: {why}.", nameof(name));
    }
}

/// <summary>Write-only stream that cuts its data into tar parts of the writer's part size.</summary>
public sealed class ChunkedEntryStream : WriteOnlyStream
{
    private readonly ArchiveWriter _writer;
    private readonly byte[] _buffer;
    private readonly List<ArchiveEntryInfo> _parts = new();
    private int _count;
    private long _total;
    private bool _closed;

    internal ChunkedEntryStream(ArchiveWriter writer, string name, byte[] buffer)
    {
        _writer = writer;
        Name = name;
        _buffer = buffer;
    }

    public string Name { get; }

    /// <summary>The parts written, in order (complete after Dispose).</summary>
    public IReadOnlyList<ArchiveEntryInfo> Parts => _parts;

    /// <summary>Length of the whole stream written so far.</summary>
    public long TotalLength => _total;


    public override bool CanWrite => !_closed;
    public override long Position { get => _total; set => throw new NotSupportedException(); }

    public override void Write(ReadOnlySpan<byte> data)
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        while (!data.IsEmpty)
        {
            int n = Math.Min(data.Length, _buffer.Length - _count);
            data[..n].CopyTo(_buffer.AsSpan(_count));
            _count += n;
            _total += n;
            data = data[n..];
            if (_count == _buffer.Length) FlushPart();
        }
    }

    public override void WriteByte(byte value) => Write(new ReadOnlySpan<byte>(in value));

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Write(buffer.AsSpan(offset, count));
        return Task.CompletedTask;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    private void FlushPart()
    {
        if (_parts.Count >= ArchiveWriter.MaxParts)
            throw new HubDrException("ArchiveTooManyParts", HubErrorCategory.InvalidOperation,
                $"The entry '{Name}' needs more than {ArchiveWriter.MaxParts} parts; raise the part size.");
        string partName = ArchiveWriter.PartName(Name, _parts.Count);
        ReadOnlySpan<byte> content = _buffer.AsSpan(0, _count);
        string sha = Convert.ToHexString(SHA256.HashData(content)).ToLowerInvariant();
        _writer.WriteEntry(partName, content);
        _parts.Add(new ArchiveEntryInfo(partName, _count, sha));
        _count = 0;
    }

    /// <summary>
    /// Closes the entry WITHOUT writing the buffered rest (a failure upstream: the archive is being thrown away, and
    /// writing more into a pipeline that already failed would only hide the first error).
    /// </summary>
    public void Abandon()
    {
        if (_closed) return;
        _closed = true;
        _count = 0;
        _writer.ChunkClosed(this);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_closed)
        {
            try
            {
                if (_count > 0 || _parts.Count == 0) FlushPart();
            }
            finally
            {
                _closed = true;
                _writer.ChunkClosed(this);
            }
        }
        base.Dispose(disposing);
    }
}
