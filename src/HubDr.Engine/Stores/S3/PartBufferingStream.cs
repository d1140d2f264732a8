using HubDr.Engine.IO;

namespace HubDr.Engine.Stores.S3;

/// <summary>
/// Write-only stream that cuts what is written into fixed-size parts and hands each full part to an
/// uploader, keeping at most <c>maxInFlight</c> part uploads running. Memory is bounded by
/// (1 + maxInFlight) * partSize whatever the object size. Shared by the S3 (multipart) and Azure
/// (staged blocks) uploads. The first failed part fails every later write and <see cref="FinishAsync"/>.
/// </summary>
internal sealed class PartBufferingStream : WriteOnlyStream
{
    private readonly int _partSize;
    private readonly int _maxInFlight;
    private readonly Func<int, ReadOnlyMemory<byte>, CancellationToken, Task> _uploadPart;
    private readonly Func<CancellationToken, Task>? _beforeFirstPart;
    private readonly Queue<(Task Task, byte[] Buffer)> _inFlight = new();
    private readonly Stack<byte[]> _free = new();
    private readonly CancellationTokenSource _cts = new();
    private byte[]? _current;
    private int _filled;
    private int _partsSubmitted;
    private long _length;
    private Exception? _failure;
    private bool _finished;

    public PartBufferingStream(int partSize, int maxInFlight, Func<int, ReadOnlyMemory<byte>, CancellationToken, Task> uploadPart, Func<CancellationToken, Task>? beforeFirstPart = null)
    {
        _partSize = partSize;
        _maxInFlight = Math.Max(1, maxInFlight);
        _uploadPart = uploadPart;
        _beforeFirstPart = beforeFirstPart;
    }

    /// <summary>Parts handed to the uploader so far (1-based numbers 1..PartsSubmitted).</summary>
    public int PartsSubmitted => _partsSubmitted;

    /// <summary>Largest number of part buffers this stream ever held at once (for tests/diagnostics).</summary>
    public int PeakBuffers { get; private set; }

    private int _buffersAllocated;

    public override bool CanWrite => !_finished;
    public override long Length => _length;
    public override long Position { get => _length; set => throw new NotSupportedException(); }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        var copy = buffer.ToArray();
        WriteAsync(copy).AsTask().GetAwaiter().GetResult();
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ThrowIfUnusable();
        while (buffer.Length > 0)
        {
            _current ??= Rent();
            var n = Math.Min(buffer.Length, _partSize - _filled);
            buffer.Span[..n].CopyTo(_current.AsSpan(_filled));
            _filled += n;
            _length += n;
            buffer = buffer[n..];
            if (_filled == _partSize)
            {
                await SubmitCurrentAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Ends the stream. When no part was submitted yet, returns the buffered bytes (the caller sends them
    /// in one request) and submits nothing; otherwise submits the last part, waits for every part and
    /// returns null.
    /// </summary>
    public async Task<ReadOnlyMemory<byte>?> FinishAsync(CancellationToken ct)
    {
        ThrowIfUnusable();
        _finished = true;
        if (_partsSubmitted == 0)
        {
            return _current is null ? ReadOnlyMemory<byte>.Empty : _current.AsMemory(0, _filled);
        }

        if (_filled > 0)
        {
            await SubmitCurrentAsync(ct).ConfigureAwait(false);
        }

        while (_inFlight.Count > 0)
        {
            await AwaitOldestAsync().ConfigureAwait(false);
        }

        return null;
    }

    /// <summary>Cancels part uploads still running and waits for them to stop (errors ignored).</summary>
    public async Task AbortAsync()
    {
        _finished = true;
        await _cts.CancelAsync().ConfigureAwait(false);
        while (_inFlight.Count > 0)
        {
            var (task, _) = _inFlight.Dequeue();
            try
            {
                await task.ConfigureAwait(false);
            }
            catch
            {
                // Aborting: the caller removes whatever was uploaded.
            }
        }

        _current = null;
        _free.Clear();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _finished = true;
            _cts.Dispose();
        }

        base.Dispose(disposing);
    }

    private void ThrowIfUnusable()
    {
        if (_failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(_failure);
        }

        if (_finished)
        {
            throw new InvalidOperationException("The upload stream was already completed or aborted.");
        }
    }

    private byte[] Rent()
    {
        if (_free.Count > 0)
        {
            return _free.Pop();
        }

        _buffersAllocated++;
        PeakBuffers = Math.Max(PeakBuffers, _buffersAllocated);
        return new byte[_partSize];
    }

    private async Task SubmitCurrentAsync(CancellationToken ct)
    {
        while (_inFlight.Count >= _maxInFlight)
        {
            await AwaitOldestAsync().ConfigureAwait(false);
        }

        if (_partsSubmitted == 0 && _beforeFirstPart is not null)
        {
            await Guard(_beforeFirstPart(ct)).ConfigureAwait(false);
        }

        var buffer = _current!;
        var len = _filled;
        _current = null;
        _filled = 0;
        var number = ++_partsSubmitted;
        var task = Task.Run(() => _uploadPart(number, buffer.AsMemory(0, len), _cts.Token), CancellationToken.None);
        _inFlight.Enqueue((task, buffer));
    }

    private async Task AwaitOldestAsync()
    {
        var (task, buffer) = _inFlight.Dequeue();
        await Guard(task).ConfigureAwait(false);
        _free.Push(buffer);
    }

    private async Task Guard(Task t)
    {
        try
        {
            await t.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            _failure ??= e;
            throw;
        }
    }
}
