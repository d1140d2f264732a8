using System.Buffers;
using System.Threading.Channels;

namespace HubDr.Engine.IO;

/// <summary>
/// A write-only stream that hands its bytes to a background task writing them to <c>inner</c>, so the stage before it
/// (e.g. compression) and the stages after it (encryption, signing, hashing, upload) run on two cores at once.
/// Memory is bounded: at most <c>depth</c> buffers of <c>bufferSize</c> bytes are in flight. A failure of the
/// downstream task surfaces on the next Write or on Complete. Order is preserved.
/// </summary>
public sealed class PipelineStageStream : WriteOnlyStream
{
    private readonly Stream _inner;
    private readonly int _bufferSize;
    private readonly Channel<(byte[] Buffer, int Count)> _channel;
    private readonly Task _consumer;
    private readonly CancellationToken _ct;
    private byte[] _current;
    private int _filled;
    private bool _completed;

    public PipelineStageStream(Stream inner, int bufferSize = 1 << 20, int depth = 8, CancellationToken ct = default)
    {
        _inner = inner;
        _bufferSize = bufferSize;
        _ct = ct;
        _channel = Channel.CreateBounded<(byte[], int)>(new BoundedChannelOptions(depth) { SingleReader = true, SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
        _current = ArrayPool<byte>.Shared.Rent(bufferSize);
        _consumer = Task.Run(ConsumeAsync, CancellationToken.None);
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        while (!buffer.IsEmpty)
        {
            var n = Math.Min(buffer.Length, _bufferSize - _filled);
            buffer[..n].CopyTo(_current.AsSpan(_filled));
            _filled += n;
            buffer = buffer[n..];
            if (_filled == _bufferSize)
            {
                Hand();
            }
        }
    }

    public override void WriteByte(byte value) => Write([value]);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        Write(buffer.AsSpan(offset, count));
        return Task.CompletedTask;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    /// <summary>Flush only passes on the partial buffer; the downstream stream is flushed by <see cref="Complete"/>.</summary>
    public override void Flush()
    {
        if (_filled > 0 && !_completed)
        {
            Hand();
        }
    }

    /// <summary>Hands over the last bytes, waits until the downstream task wrote everything, and rethrows its failure.</summary>
    public void Complete()
    {
        if (_completed)
        {
            return;
        }

        Flush();
        _completed = true;
        _channel.Writer.TryComplete();
        _consumer.GetAwaiter().GetResult();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_completed)
        {
            // Disposed without Complete (an upstream failure): stop the consumer, drop what is queued.
            _completed = true;
            _channel.Writer.TryComplete(new OperationCanceledException("The pipeline was abandoned."));
            try
            {
                _consumer.GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is OperationCanceledException or ChannelClosedException or IOException or HubDrException)
            {
                // The upstream failure is the one that matters.
            }
        }

        base.Dispose(disposing);
    }

    private void Hand()
    {
        if (_consumer.IsFaulted)
        {
            _consumer.GetAwaiter().GetResult();
        }

        var item = (_current, _filled);
        _current = ArrayPool<byte>.Shared.Rent(_bufferSize);
        _filled = 0;
        while (!_channel.Writer.TryWrite(item))
        {
            if (_consumer.IsCompleted)
            {
                _consumer.GetAwaiter().GetResult();
                throw new IOException("The pipeline's downstream stage stopped.");
            }

            _channel.Writer.WaitToWriteAsync(_ct).AsTask().GetAwaiter().GetResult();
        }
    }

    private async Task ConsumeAsync()
    {
        try
        {
            await foreach (var (buffer, count) in _channel.Reader.ReadAllAsync(_ct).ConfigureAwait(false))
            {
                try
                {
                    _inner.Write(buffer, 0, count);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }
        }
        finally
        {
            // Unblock a writer waiting on a full channel after a failure.
            while (_channel.Reader.TryRead(out var left))
            {
                ArrayPool<byte>.Shared.Return(left.Buffer);
            }
        }
    }
}
