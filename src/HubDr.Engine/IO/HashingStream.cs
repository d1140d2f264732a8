using System.Security.Cryptography;

namespace HubDr.Engine.IO;

/// <summary>
/// Pass-through stream that counts (and, unless told not to, SHA-256 hashes) every byte written to or read from
/// <c>inner</c> (.NET's hardware-accelerated SHA-256). Used on the ciphertext: what the catalog records. Where a
/// signature over the same bytes already hashes them with SHA-256, it only counts (<c>computeSha256: false</c>).
/// </summary>
public sealed class HashingStream : Stream
{
    private readonly Stream _inner;
    private readonly bool _leaveOpen;
    private readonly IncrementalHash? _hash;
    private readonly Action<long>? _onProgress;
    private string? _hex;

    public HashingStream(Stream inner, bool leaveOpen = true, Action<long>? onProgress = null, bool computeSha256 = true)
    {
        _inner = inner;
        _leaveOpen = leaveOpen;
        _onProgress = onProgress;
        _hash = computeSha256 ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
    }

    public long BytesProcessed { get; private set; }

    /// <summary>Lower-case hex SHA-256 of everything that passed; call once the data is done.</summary>
    public string Sha256 => _hex ??= Convert.ToHexString((_hash ?? throw new InvalidOperationException("This stream only counts.")).GetHashAndReset()).ToLowerInvariant();

    public override bool CanRead => _inner.CanRead;

    public override bool CanSeek => false;

    public override bool CanWrite => _inner.CanWrite;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => BytesProcessed; set => throw new NotSupportedException(); }

    public override void Flush() => _inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = _inner.Read(buffer);
        Account(buffer[..n]);
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Account(buffer.Span[..n]);
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Account(buffer);
        _inner.Write(buffer);
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Account(buffer.Span);
        await _inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash?.Dispose();
            if (!_leaveOpen)
            {
                _inner.Dispose();
            }
        }

        base.Dispose(disposing);
    }

    private void Account(ReadOnlySpan<byte> data)
    {
        if (data.Length == 0)
        {
            return;
        }

        _hash?.AppendData(data);
        BytesProcessed += data.Length;
        _onProgress?.Invoke(BytesProcessed);
    }
}
