using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using HubDr.Engine.Stores.S3;

namespace HubDr.Engine.Stores.Azure;

/// <summary>
/// One streaming upload to a block blob: each full block is staged (StageBlock), CompleteAsync commits
/// the block list. Staged but uncommitted blocks are invisible (not listed, not readable) and the service
/// discards them after 7 days; there is no API to delete them sooner, so disposing only stops staging.
/// An object smaller than one block is a single Put Blob.
/// </summary>
internal sealed class AzureUpload : IStoreUpload
{
    private readonly AzureBlobStore _store;
    private readonly BlockBlobClient _blob;
    private readonly string _key;
    private readonly StoreWriteOptions _options;
    private readonly PartBufferingStream _stream;
    private readonly Guid _id = Guid.NewGuid();
    private bool _done;
    private bool _disposed;

    public AzureUpload(AzureBlobStore store, BlockBlobClient blob, string key, StoreWriteOptions options)
    {
        _store = store;
        _blob = blob;
        _key = key;
        _options = options;
        _stream = store.NewBlockStream(StageAsync);
    }

    public Stream Content => _stream;

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
                await _store.PutBlobAsync(_blob, _key, body, _options, ct).ConfigureAwait(false);
            }
            else
            {
                var ids = Enumerable.Range(1, _stream.PartsSubmitted).Select(n => AzureBlobStore.BlockId(_id, n)).ToList();
                var opts = new CommitBlockListOptions
                {
                    HttpHeaders = new BlobHttpHeaders { ContentType = _options.ContentType },
                    ImmutabilityPolicy = AzureBlobStore.ImmutabilityOf(_options),
                    LegalHold = _options.LegalHold ? true : null,
                };
                await _store.Call(c => _blob.CommitBlockListAsync(ids, opts, c), _key, ct).ConfigureAwait(false);
            }

            _done = true;
        }
        catch (Exception e)
        {
            await _stream.AbortAsync().ConfigureAwait(false);
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
            await _stream.AbortAsync().ConfigureAwait(false);
        }

        await _stream.DisposeAsync().ConfigureAwait(false);
    }

    private async Task StageAsync(int number, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        System.Runtime.InteropServices.MemoryMarshal.TryGetArray(data, out var seg);
        await _store.Call(c => _blob.StageBlockAsync(AzureBlobStore.BlockId(_id, number), new MemoryStream(seg.Array!, seg.Offset, seg.Count, writable: false), cancellationToken: c), _key, ct).ConfigureAwait(false);
    }
}
