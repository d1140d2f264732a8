namespace HubDr.Engine.Compression;

/// <summary>No compression: the tar stream is passed through (the returned streams never close the underlying one).</summary>
public sealed class NoneCompressor : ICompressor
{
    public string Name => "none";
    public string Extension => "";

    public Stream Compress(Stream output, int? level)
    {
        ArgumentNullException.ThrowIfNull(output);
        return new PassThroughStream(output, write: true);
    }

    public Stream Decompress(Stream input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new PassThroughStream(input, write: false);
    }

    private sealed class PassThroughStream(Stream inner, bool write) : Stream
    {
        public override bool CanRead => !write;
        public override bool CanSeek => false;
        public override bool CanWrite => write;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { if (write) inner.Flush(); }
        public override Task FlushAsync(CancellationToken cancellationToken) => write ? inner.FlushAsync(cancellationToken) : Task.CompletedTask;
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        public override int Read(byte[] buffer, int offset, int count) => write ? throw new NotSupportedException() : inner.Read(buffer, offset, count);
        public override int Read(Span<byte> buffer) => write ? throw new NotSupportedException() : inner.Read(buffer);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
            => write ? throw new NotSupportedException() : inner.ReadAsync(buffer, cancellationToken);

        public override void Write(byte[] buffer, int offset, int count) { if (!write) throw new NotSupportedException(); inner.Write(buffer, offset, count); }
        public override void Write(ReadOnlySpan<byte> buffer) { if (!write) throw new NotSupportedException(); inner.Write(buffer); }
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
            => write ? inner.WriteAsync(buffer, cancellationToken) : throw new NotSupportedException();
    }
}
