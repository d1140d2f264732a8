using System.Security.Cryptography;
using Amazon.S3.Model;

namespace HubDr.Engine.Stores.S3;

/// <summary>
/// One streaming upload to S3. The multipart upload is created when the first full part is ready;
/// an object smaller than one part is sent as a single PUT on CompleteAsync. Disposing without a
/// successful CompleteAsync (or a failed CompleteAsync) aborts the multipart upload so no parts are
/// left behind (and billed).
/// </summary>
internal sealed class S3Upload : IStoreUpload
{
    private readonly S3Store _store;
    private readonly string _fullKey;
    private readonly string _key;
    private readonly StoreWriteOptions _options;
    private readonly PartBufferingStream _stream;
    private readonly List<PartETag> _parts = new();
    private string? _uploadId;
    private bool _done;
    private bool _disposed;

    public S3Upload(S3Store store, string fullKey, string key, StoreWriteOptions options)
    {
        _store = store;
        _fullKey = fullKey;
        _key = key;
        _options = options;
        _stream = new PartBufferingStream(store.PartSize, store.PartsInFlight, UploadPartAsync, StartAsync);
    }

    public Stream Content => _stream;

    /// <summary>Multipart upload id once started (tests).</summary>
    internal string? UploadId => _uploadId;

    internal int PeakBuffers => _stream.PeakBuffers;

    public async Task CompleteAsync(CancellationToken ct)
    {
        if (_done)
        {
            return;
        }

        try
        {
            var single = await _stream.FinishAsync(ct).ConfigureAwait(false);
            if (single is ReadOnlyMemory<byte> body)
            {
                await _store.PutObjectAsync(_fullKey, _key, body, _options, ct).ConfigureAwait(false);
            }
            else
            {
                List<PartETag> parts;
                lock (_parts)
                {
                    parts = _parts.OrderBy(p => p.PartNumber).ToList();
                }

                await _store.Call(c => _store.Client.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
                {
                    BucketName = _store.Bucket,
                    Key = _fullKey,
                    UploadId = _uploadId,
                    PartETags = parts,
                }, c), _key, ct).ConfigureAwait(false);
            }

            _done = true;
        }
        catch (Exception e)
        {
            await AbortAsync().ConfigureAwait(false);
            throw _store.Map(e, _key);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (!_done)
        {
            await AbortAsync().ConfigureAwait(false);
        }

        await _stream.DisposeAsync().ConfigureAwait(false);
    }

    private async Task AbortAsync()
    {
        await _stream.AbortAsync().ConfigureAwait(false);
        var id = _uploadId;
        if (id is null)
        {
            return;
        }

        _uploadId = null;
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            await _store.Call(c => _store.Client.AbortMultipartUploadAsync(new AbortMultipartUploadRequest { BucketName = _store.Bucket, Key = _fullKey, UploadId = id }, c), _key, cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HubDrException or OperationCanceledException)
        {
            // Best effort: a bucket lifecycle rule "AbortIncompleteMultipartUpload" cleans up the rest
            // (docs/stores.md). The original failure is what the caller needs to see.
        }
    }

    private async Task StartAsync(CancellationToken ct)
    {
        var req = new InitiateMultipartUploadRequest { BucketName = _store.Bucket, Key = _fullKey };
        _store.ApplyWriteOptions(req, _options);
        var resp = await _store.Call(c => _store.Client.InitiateMultipartUploadAsync(req, c), _key, ct).ConfigureAwait(false);
        _uploadId = resp.UploadId;
    }

    private async Task UploadPartAsync(int number, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        var md5 = Convert.ToBase64String(MD5.HashData(data.Span));
        System.Runtime.InteropServices.MemoryMarshal.TryGetArray(data, out var seg);
        var resp = await _store.Call(c => _store.Client.UploadPartAsync(new UploadPartRequest
        {
            BucketName = _store.Bucket,
            Key = _fullKey,
            UploadId = _uploadId,
            PartNumber = number,
            InputStream = new MemoryStream(seg.Array!, seg.Offset, seg.Count, writable: false),
            PartSize = seg.Count,
            MD5Digest = md5,
            UseChunkEncoding = false,
        }, c), _key, ct).ConfigureAwait(false);
        lock (_parts)
        {
            _parts.Add(new PartETag(number, resp.ETag));
        }
    }
}
