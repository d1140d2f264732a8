using HubDr.Engine.Compression;
using HubDr.Engine.Crypto;
using HubDr.Engine.IO;
using HubDr.Engine.Stores;

namespace HubDr.Engine.LogArchive;

/// <summary>Outcome of writing one log object.</summary>
/// <param name="Skipped">True when the same object was already archived identically (nothing was uploaded).</param>
public sealed record LogWriteResult(LogIndexEntry Entry, bool Skipped);

/// <summary>
/// Writes log objects of one hub's stream: OpenPGP(zstd(plaintext)) to every recipient, streamed into the store upload,
/// then its detached signature (over the stored bytes), then — by <see cref="CommitAsync"/> — a signed index batch.
/// An object the index already lists is never overwritten: the same content is skipped, a different one is a
/// <c>LogObjectConflict</c>. An object without an index entry was never acknowledged (a crash between upload and index),
/// so it is written again under the same name.
/// </summary>
public sealed class LogArchiveWriter
{
    private readonly IBackupStore _store;
    private readonly string _hub;
    private readonly ILogStreamLayout _layout;
    private readonly LogArchiveKeys _keys;
    private readonly StoreWriteOptions _options;
    private readonly IOperationLog _log;
    private readonly ICompressor _zstd = Compressors.Get("zstd");
    private readonly Dictionary<string, LogIndexItem> _known = new(StringComparer.Ordinal);
    private readonly object _gate = new();
    private int _batchesSinceCompaction;

    public LogArchiveWriter(IBackupStore store, string hub, ILogStreamLayout layout, LogArchiveKeys keys, StoreWriteOptions? options, IOperationLog? log)
    {
        _store = store;
        _hub = hub;
        _layout = layout;
        _keys = keys;
        _options = options ?? StoreWriteOptions.Default;
        _log = log ?? NullOperationLog.Instance;
    }

    public ILogStreamLayout Layout => _layout;

    public string Hub => _hub;

    /// <summary>The source identity written into every batch (PostgreSQL system identifier).</summary>
    public string? SystemId { get; set; }

    /// <summary>Small batches written since the last compaction (the archiver compacts when this grows).</summary>
    public int BatchesSinceCompaction => _batchesSinceCompaction;

    /// <summary>Index items known to be archived (loaded, then kept up to date by every commit).</summary>
    public IReadOnlyList<LogIndexItem> Known
    {
        get
        {
            lock (_gate)
            {
                return _known.Values.ToList();
            }
        }
    }

    /// <summary>Reads the index (trusting the archiver's own key and <paramref name="alsoTrusted"/>) to learn what is archived.</summary>
    public async Task<LogIndexSnapshot> LoadAsync(OpenPgpKeySet? alsoTrusted, CancellationToken ct)
    {
        var trusted = alsoTrusted is null ? _keys.OwnPublicKey : OpenPgpKeySet.Combine(_keys.OwnPublicKey, alsoTrusted);
        var snapshot = await LogIndex.LoadAsync(_store, _hub, _layout, trusted, ct).ConfigureAwait(false);
        lock (_gate)
        {
            _known.Clear();
            foreach (var (k, v) in snapshot.ByObject)
            {
                _known[k] = v;
            }
        }

        _batchesSinceCompaction = snapshot.Batches.Count(b => !b.Batch.Compacted);
        foreach (var p in snapshot.Problems)
        {
            _log.Warning($"Log index: {p}");
        }

        return snapshot;
    }

    public bool IsArchived(LogObjectRef obj)
    {
        lock (_gate)
        {
            return _known.ContainsKey(RelativeKey(obj));
        }
    }

    public LogIndexItem? Find(LogObjectRef obj)
    {
        lock (_gate)
        {
            return _known.TryGetValue(RelativeKey(obj), out var i) ? i : null;
        }
    }

    /// <summary>Object key relative to the stream folder (what index entries record).</summary>
    public string RelativeKey(LogObjectRef obj) => _layout.ObjectKey(_hub, obj)[LogArchivePaths.StreamFolder(_hub, _layout).Length..];

    /// <summary>
    /// Encrypts, signs and uploads one object (not yet indexed: call <see cref="CommitAsync"/>). Memory: the plaintext the
    /// caller holds plus zstd's and the upload's fixed buffers; nothing is written to disk in plaintext.
    /// </summary>
    public async Task<LogWriteResult> WriteAsync(LogObjectRef obj, ReadOnlyMemory<byte> plaintext, IReadOnlyList<LogBranch>? branches, CancellationToken ct)
    {
        var relative = RelativeKey(obj);
        var key = LogArchivePaths.StreamFolder(_hub, _layout) + relative;
        var mac = _keys.ContentMac(plaintext.Span);
        var existing = Find(obj);
        if (existing is not null)
        {
            if (existing.Entry.PlainSize == plaintext.Length && string.Equals(existing.Entry.ContentMac, mac, StringComparison.Ordinal))
            {
                return new LogWriteResult(existing.Entry, Skipped: true);
            }

            var comparable = string.Equals(existing.SignerFingerprint, _keys.Signer.Fingerprint, StringComparison.OrdinalIgnoreCase) && existing.Entry.ContentMac is not null;
            if (!comparable && existing.Entry.PlainSize == plaintext.Length)
            {
                // Written under another signing key (rotation): its MAC cannot be compared. A name fixes line, kind and
                // range, and the source identity is checked, so equal length means the same log bytes.
                _log.Warning($"{obj} is already archived (signed by {existing.SignerFingerprint}); not written again.");
                return new LogWriteResult(existing.Entry, Skipped: true);
            }

            throw new HubDrException("LogObjectConflict", HubErrorCategory.InvalidData,
                $"The archive already holds {obj} at '{key}' with different content ({existing.Entry.PlainSize} bytes, archived " +
                $"{existing.Entry.ArchivedUtc:u}) than the source now sends ({plaintext.Length} bytes). HubDr never overwrites an archived " +
                "object. Two sources with the same identity write into this hub (a cloned server?), or the archive was " +
                "altered: archive this source under another hub name and investigate.")
            { Target = key };
        }

        long size;
        string sha;
        byte[] signature;
        await using (var upload = await _store.BeginUploadAsync(key, _options, ct).ConfigureAwait(false))
        {
            using var counting = new HashingStream(upload.Content, leaveOpen: true, computeSha256: false);
            using var signing = new SigningStream(counting, _keys.SigningKeys, _keys.Signer.Fingerprint, _keys.Passphrase, leaveOpen: true);
            var encrypt = OpenPgpEncryption.OpenEncrypt(signing, _keys.Recipients, obj.Name + ".zst", DateTimeOffset.UtcNow);
            using (var compress = _zstd.Compress(encrypt, null))
            {
                await compress.WriteAsync(plaintext, ct).ConfigureAwait(false);
            }

            encrypt.Dispose();
            signing.Flush();
            signature = signing.FinishSignature();
            sha = signing.DataSha256!;
            size = counting.BytesProcessed;
            await upload.CompleteAsync(ct).ConfigureAwait(false);
        }

        await _store.PutAsync(LogArchivePaths.SignatureKey(key), signature, _options, ct).ConfigureAwait(false);
        var entry = new LogIndexEntry
        {
            Name = obj.Name,
            Kind = obj.Kind,
            Line = obj.Line,
            Object = relative,
            Start = obj.Kind == LogObjectKind.History ? null : _layout.FormatPosition(obj.Start),
            End = obj.Kind == LogObjectKind.History ? null : _layout.FormatPosition(obj.End),
            PlainSize = plaintext.Length,
            Size = size,
            Sha256 = sha,
            ContentMac = mac,
            ArchivedUtc = DateTimeOffset.UtcNow,
            Branches = branches?.ToList(),
        };
        return new LogWriteResult(entry, Skipped: false);
    }

    /// <summary>Writes one signed index batch for <paramref name="entries"/> (all of one line) and remembers them.</summary>
    public async Task CommitAsync(IReadOnlyList<LogIndexEntry> entries, CancellationToken ct)
    {
        if (entries.Count == 0)
        {
            return;
        }

        var line = entries[0].Line;
        var key = await LogIndex.WriteBatchAsync(_store, _hub, _layout, _keys, line, SystemId, entries, compacted: false, _options, ct).ConfigureAwait(false);
        Interlocked.Increment(ref _batchesSinceCompaction);
        lock (_gate)
        {
            foreach (var e in entries)
            {
                if (LogIndex.TryRef(_layout, e, out var r, out _))
                {
                    _known[e.Object] = new LogIndexItem(e, r, key, _keys.Signer.Fingerprint);
                }
            }
        }
    }

    /// <summary>
    /// Deletes the partial objects of segment <paramref name="name"/> on <paramref name="line"/> made redundant by a longer
    /// partial or the whole segment (best effort: leftovers are ignored by readers and dropped by compaction). Their index
    /// entries stay until compaction.
    /// </summary>
    public async Task<int> DeleteSupersededPartialsAsync(string line, string name, CancellationToken ct)
    {
        List<LogIndexItem> doomed;
        lock (_gate)
        {
            var items = _known.Values.Where(i => i.Ref.Line == line && i.Ref.Name == name && i.Ref.Kind != LogObjectKind.History).ToList();
            var whole = items.Any(o => o.Ref.Kind == LogObjectKind.Segment);
            var maxEnd = items.Where(o => o.Ref.Kind == LogObjectKind.Partial).Select(o => o.Ref.End).DefaultIfEmpty().Max();
            doomed = items.Where(p => p.Ref.Kind == LogObjectKind.Partial && (whole || p.Ref.End < maxEnd)).ToList();
        }

        var keys = doomed.SelectMany(d =>
        {
            var k = LogArchivePaths.StreamFolder(_hub, _layout) + d.Entry.Object;
            return new[] { k, LogArchivePaths.SignatureKey(k) };
        }).ToList();
        if (keys.Count == 0)
        {
            return 0;
        }

        try
        {
            await _store.DeleteAsync(keys, ct).ConfigureAwait(false);
        }
        catch (HubDrException e)
        {
            _log.Warning($"Could not delete {doomed.Count} superseded partial object(s) of {name}: {e.Message}");
            return 0;
        }

        lock (_gate)
        {
            foreach (var d in doomed)
            {
                _known.Remove(d.Entry.Object);
            }
        }

        return doomed.Count;
    }

    /// <summary>
    /// Forgets (in memory only) entries of <paramref name="line"/> that end before <paramref name="before"/>: an archiver
    /// only moves forward, so memory stays bounded however long it runs. The index in the store keeps them.
    /// </summary>
    public void ForgetBefore(string line, ulong before)
    {
        lock (_gate)
        {
            foreach (var key in _known.Where(kv => kv.Value.Ref.Line == line && kv.Value.Ref.Kind != LogObjectKind.History && kv.Value.Ref.End < before)
                         .Select(kv => kv.Key).ToList())
            {
                _known.Remove(key);
            }
        }
    }

    /// <summary>Merges the index batches of <paramref name="line"/> per UTC day (see <see cref="LogIndex.CompactAsync"/>).</summary>
    public async Task<int> CompactAsync(string line, CancellationToken ct)
    {
        var snapshot = await LogIndex.LoadAsync(_store, _hub, _layout, _keys.OwnPublicKey, ct).ConfigureAwait(false);
        var removed = await LogIndex.CompactAsync(_store, snapshot, _keys, line, SystemId, _options, _log, ct).ConfigureAwait(false);
        Interlocked.Exchange(ref _batchesSinceCompaction, 0);
        return removed;
    }
}
