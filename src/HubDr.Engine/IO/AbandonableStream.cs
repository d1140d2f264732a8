namespace HubDr.Engine.IO;

/// <summary>
/// A write-through wrapper (the inner stream is left open) that can be cut off: after <see cref="Abandon"/> every
/// write fails at once and Flush does nothing. The backup pipeline puts it in front of the store upload so that, after
/// a failure, disposing the stages above it (whose Dispose would write trailers) cannot block on a store that is gone
/// or push more bytes into an upload that is about to be aborted.
/// </summary>
public sealed class AbandonableStream(Stream inner) : WriteOnlyStream
{
    private volatile bool _abandoned;

    public bool IsAbandoned => _abandoned;

    public void Abandon() => _abandoned = true;

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (_abandoned)
        {
            throw new IOException("The backup pipeline was abandoned after a failure.");
        }

        inner.Write(buffer);
    }

    public override void Flush()
    {
        if (!_abandoned)
        {
            inner.Flush();
        }
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => _abandoned ? Task.CompletedTask : inner.FlushAsync(cancellationToken);
}
