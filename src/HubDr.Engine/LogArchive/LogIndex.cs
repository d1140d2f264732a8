using System.Collections.Concurrent;
using System.Security.Cryptography;
using HubDr.Engine.Backup;
using HubDr.Engine.Crypto;
using HubDr.Engine.Stores;

namespace HubDr.Engine.LogArchive;

/// <summary>One index batch as read from the store, after its signature was checked.</summary>
public sealed record LogIndexBatchInfo(string Key, LogIndexBatch Batch, string SignerFingerprint);

/// <summary>
/// Everything the signed index says about a hub's log stream: verified entries (one per object key), the batches they
/// came from, and every problem met (unsigned, untrusted or tampered batches are reported and their entries ignored;
/// two batches disagreeing about one object are reported).
/// </summary>
public sealed class LogIndexSnapshot
{
    public required string Hub { get; init; }
    public required ILogStreamLayout Layout { get; init; }
    public required IReadOnlyDictionary<string, LogIndexItem> ByObject { get; init; }
    public required IReadOnlyList<LogIndexBatchInfo> Batches { get; init; }
    public required IReadOnlyList<LogArchiveProblem> Problems { get; init; }

    public IEnumerable<LogIndexItem> Items => ByObject.Values;

    /// <summary>Distinct source identities the batches name (more than one = two sources wrote into one hub).</summary>
    public IReadOnlyList<string> SystemIds => Batches.Select(b => b.Batch.SystemId).Where(s => !string.IsNullOrEmpty(s)).Distinct(StringComparer.Ordinal).ToList()!;

    public IReadOnlyList<long> SegmentSizes => Batches.Select(b => b.Batch.SegmentSize).Where(s => s > 0).Distinct().ToList();

    public IReadOnlyList<string> Lines => Items.Select(i => i.Ref.Line).Distinct(StringComparer.Ordinal).OrderBy(l => l, Comparer<string>.Create(Layout.CompareLines)).ToList();

    /// <summary>Items of one line that are data (segments and the newest partial of each segment not archived whole),
    /// ordered by start position.</summary>
    public List<LogIndexItem> DataItems(string line)
    {
        var ofLine = Items.Where(i => i.Ref.Line == line && i.Ref.Kind != LogObjectKind.History).ToList();
        var whole = ofLine.Where(i => i.Ref.Kind == LogObjectKind.Segment).Select(i => i.Ref.Name).ToHashSet(StringComparer.Ordinal);
        var newestPartial = ofLine.Where(i => i.Ref.Kind == LogObjectKind.Partial && !whole.Contains(i.Ref.Name))
            .GroupBy(i => i.Ref.Name, StringComparer.Ordinal)
            .Select(g => g.MaxBy(i => i.Ref.End)!);
        return ofLine.Where(i => i.Ref.Kind == LogObjectKind.Segment).Concat(newestPartial).OrderBy(i => i.Ref.Start).ThenBy(i => i.Ref.End).ToList();
    }

    /// <summary>Partials made redundant by the whole segment or a longer partial: expected to be deleted, never needed.</summary>
    public List<LogIndexItem> SupersededPartials()
    {
        var result = new List<LogIndexItem>();
        foreach (var g in Items.Where(i => i.Ref.Kind != LogObjectKind.History).GroupBy(i => (i.Ref.Line, i.Ref.Name)))
        {
            var hasWhole = g.Any(i => i.Ref.Kind == LogObjectKind.Segment);
            var maxEnd = g.Where(i => i.Ref.Kind == LogObjectKind.Partial).Select(i => i.Ref.End).DefaultIfEmpty().Max();
            result.AddRange(g.Where(i => i.Ref.Kind == LogObjectKind.Partial && (hasWhole || i.Ref.End < maxEnd)));
        }

        return result;
    }

    public IEnumerable<LogIndexItem> HistoryItems => Items.Where(i => i.Ref.Kind == LogObjectKind.History);
}

/// <summary>Reads and writes the signed index of a log stream (see docs/pitr.md, "Object layout and index").</summary>
public static class LogIndex
{
    /// <summary>
    /// Lists the index batches of the hub's stream and reads them concurrently; each batch's detached signature must be
    /// by a key in <paramref name="trusted"/> (checked before the JSON is parsed).
    /// </summary>
    public static async Task<LogIndexSnapshot> LoadAsync(IBackupStore store, string hub, ILogStreamLayout layout, OpenPgpKeySet trusted, CancellationToken ct, int concurrency = 16)
    {
        var prefix = LogArchivePaths.IndexFolder(hub, layout);
        var keys = new List<string>();
        var sigs = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var o in store.ListAsync(prefix, ct).ConfigureAwait(false))
        {
            if (o.Key.EndsWith(".json", StringComparison.Ordinal))
            {
                keys.Add(o.Key);
            }
            else if (o.Key.EndsWith(".json" + LogArchivePaths.SignatureSuffix, StringComparison.Ordinal))
            {
                sigs.Add(o.Key);
            }
        }

        keys.Sort(StringComparer.Ordinal);
        var problems = new ConcurrentBag<LogArchiveProblem>();
        var batches = new LogIndexBatchInfo?[keys.Count];
        using var gate = new SemaphoreSlim(concurrency);
        await Task.WhenAll(keys.Select(async (key, i) =>
        {
            await gate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                batches[i] = await ReadBatchAsync(store, hub, layout, key, trusted, problems, ct).ConfigureAwait(false);
            }
            finally
            {
                gate.Release();
            }
        })).ConfigureAwait(false);

        var byObject = new Dictionary<string, LogIndexItem>(StringComparer.Ordinal);
        foreach (var b in batches.Where(b => b is not null).Select(b => b!).OrderBy(b => b.Batch.CreatedUtc))
        {
            foreach (var e in b.Batch.Entries)
            {
                if (!TryRef(layout, e, out var r, out var why))
                {
                    problems.Add(new LogArchiveProblem("IndexEntryInvalid", e.Name, $"index batch {b.Key}: {why}"));
                    continue;
                }

                var item = new LogIndexItem(e, r, b.Key, b.SignerFingerprint);
                if (byObject.TryGetValue(e.Object, out var seen))
                {
                    if (seen.Entry.Size != e.Size || !string.Equals(seen.Entry.Sha256, e.Sha256, StringComparison.OrdinalIgnoreCase))
                    {
                        problems.Add(new LogArchiveProblem("IndexConflict", e.Object,
                            $"index batches {seen.BatchKey} and {b.Key} describe different objects under this name; the object's own signature decides which is real"));
                    }

                    continue;
                }

                byObject[e.Object] = item;
            }
        }

        return new LogIndexSnapshot
        {
            Hub = hub,
            Layout = layout,
            ByObject = byObject,
            Batches = batches.Where(b => b is not null).Select(b => b!).ToList(),
            Problems = problems.OrderBy(p => p.Subject, StringComparer.Ordinal).ToList(),
        };
    }

    private static async Task<LogIndexBatchInfo?> ReadBatchAsync(IBackupStore store, string hub, ILogStreamLayout layout, string key, OpenPgpKeySet trusted,
        ConcurrentBag<LogArchiveProblem> problems, CancellationToken ct)
    {
        var json = await store.TryGetAsync(key, ct).ConfigureAwait(false);
        if (json is null)
        {
            return null; // deleted by a concurrent compaction after the listing
        }

        var sig = await store.TryGetAsync(LogArchivePaths.SignatureKey(key), ct).ConfigureAwait(false);
        var check = OpenPgpSignatures.Verify(new MemoryStream(json, writable: false), sig, trusted);
        if (!check.IsValid)
        {
            problems.Add(new LogArchiveProblem("IndexSignature" + check.Status, key, check.Reason));
            return null;
        }

        LogIndexBatch batch;
        try
        {
            batch = HubJson.Deserialize<LogIndexBatch>(json, $"index batch {key}");
        }
        catch (HubDrException e)
        {
            problems.Add(new LogArchiveProblem("IndexBatchInvalid", key, e.Message));
            return null;
        }

        if (batch.FormatVersion > LogIndexBatch.CurrentFormatVersion || batch.Hub != hub || batch.Stream != layout.StreamKind
            || !key.StartsWith(LogArchivePaths.IndexLineFolder(hub, layout, batch.Line), StringComparison.Ordinal))
        {
            problems.Add(new LogArchiveProblem("IndexBatchInvalid", key,
                $"the batch says format {batch.FormatVersion}, hub '{batch.Hub}', stream '{batch.Stream}', line '{batch.Line}': it does not belong here (copied or swapped)"));
            return null;
        }

        if (batch.Entries.Any(e => e.Line != batch.Line))
        {
            problems.Add(new LogArchiveProblem("IndexBatchInvalid", key, "the batch lists entries of another line"));
            return null;
        }

        return new LogIndexBatchInfo(key, batch, check.SignerFingerprint ?? "");
    }

    /// <summary>Parses an entry's positions and checks its object key is one the layout would have written.</summary>
    public static bool TryRef(ILogStreamLayout layout, LogIndexEntry e, out LogObjectRef r, out string why)
    {
        r = new LogObjectRef(e.Line, e.Name, e.Kind, 0, 0);
        why = "";
        ulong s = 0, end = 0;
        if (e.Kind != LogObjectKind.History && (e.Start is null || e.End is null || !layout.TryParsePosition(e.Start, out s) || !layout.TryParsePosition(e.End, out end) || end < s))
        {
            why = $"invalid positions '{e.Start}'..'{e.End}'";
            return false;
        }

        r = new LogObjectRef(e.Line, e.Name, e.Kind, s, end);
        if (!layout.TryParseObjectKey("h", "h/" + layout.FolderName + "/" + e.Object, out var fromKey) || fromKey != r)
        {
            why = $"object '{e.Object}' does not match the entry ({r})";
            return false;
        }

        return true;
    }

    /// <summary>Writes one batch: its signature first, then the JSON (a visible batch always has its signature).</summary>
    public static async Task<string> WriteBatchAsync(IBackupStore store, string hub, ILogStreamLayout layout, LogArchiveKeys keys, string line,
        string? systemId, IReadOnlyList<LogIndexEntry> entries, bool compacted, StoreWriteOptions options, CancellationToken ct)
    {
        var now = DateTimeOffset.UtcNow;
        var batch = new LogIndexBatch
        {
            Hub = hub,
            Stream = layout.StreamKind,
            Line = line,
            SystemId = systemId,
            SegmentSize = layout.SegmentSize,
            CreatedUtc = now,
            SignerFingerprint = keys.Signer.Fingerprint,
            Compacted = compacted,
            Entries = entries.ToList(),
        };
        var first = entries.Count == 0 ? "empty" : entries[0].Name;
        var last = entries.Count == 0 ? "empty" : entries[^1].Name;
        var unique = LogArchivePaths.Stamp(now) + "-" + Convert.ToHexString(RandomNumberGenerator.GetBytes(3)).ToLowerInvariant() + (compacted ? "-c" : "");
        var key = $"{LogArchivePaths.IndexLineFolder(hub, layout, line)}{first}-{last}-{unique}.json";
        var json = HubJson.Serialize(batch);
        var sig = OpenPgpSignatures.SignDetached(json, keys.SigningKeys, keys.Signer.Fingerprint, keys.Passphrase);
        await store.PutAsync(LogArchivePaths.SignatureKey(key), sig, options, ct).ConfigureAwait(false);
        await store.PutAsync(key, json, options, ct).ConfigureAwait(false);
        return key;
    }

    /// <summary>
    /// Compaction of one line: every batch signed by the archiver's own key that is not today's merged batch is merged
    /// with the others of its UTC day into one batch per day (superseded partials dropped), written first; then the
    /// merged inputs are deleted. A crash in between leaves duplicates, which readers merge. Returns the batches removed.
    /// </summary>
    public static async Task<int> CompactAsync(IBackupStore store, LogIndexSnapshot snapshot, LogArchiveKeys keys, string line, string? systemId,
        StoreWriteOptions options, IOperationLog log, CancellationToken ct)
    {
        var layout = snapshot.Layout;
        var own = snapshot.Batches.Where(b => b.Batch.Line == line && string.Equals(b.SignerFingerprint, keys.Signer.Fingerprint, StringComparison.OrdinalIgnoreCase)).ToList();
        var superseded = snapshot.SupersededPartials().Select(i => i.Entry.Object).ToHashSet(StringComparer.Ordinal);
        var removed = 0;
        foreach (var day in own.GroupBy(b => b.Batch.CreatedUtc.UtcDateTime.Date))
        {
            var inputs = day.ToList();
            if (inputs.Count < 2)
            {
                continue;
            }

            var entries = new Dictionary<string, LogIndexEntry>(StringComparer.Ordinal);
            foreach (var b in inputs.OrderBy(b => b.Batch.CreatedUtc))
            {
                foreach (var e in b.Batch.Entries)
                {
                    if (!superseded.Contains(e.Object))
                    {
                        entries.TryAdd(e.Object, e);
                    }
                }
            }

            var ordered = entries.Values
                .OrderBy(e => e.Kind == LogObjectKind.History ? 0 : 1)
                .ThenBy(e => e.Start is { } s && layout.TryParsePosition(s, out var p) ? p : 0)
                .ThenBy(e => e.Name, StringComparer.Ordinal).ToList();
            var key = await WriteBatchAsync(store, snapshot.Hub, layout, keys, line, systemId, ordered, compacted: true, options, ct).ConfigureAwait(false);
            var old = inputs.SelectMany(b => new[] { b.Key, LogArchivePaths.SignatureKey(b.Key) }).ToList();
            // The JSON of a batch goes before its signature, mirroring the write order.
            var locked = await store.DeleteAsync(old, ct).ConfigureAwait(false);
            if (locked.Count > 0)
            {
                log.Warning($"Index compaction could not delete {locked.Count} locked batch object(s) of line {line}; readers merge the duplicates.");
            }

            removed += inputs.Count;
            log.Verbose($"Index line {line}, {day.Key:yyyy-MM-dd}: {inputs.Count} batches merged into {key} ({ordered.Count} entries).");
        }

        return removed;
    }
}
