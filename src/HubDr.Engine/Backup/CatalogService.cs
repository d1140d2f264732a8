using HubDr.Engine.Stores;

namespace HubDr.Engine.Backup;

/// <summary>One backup folder in a store, complete (catalog record present) or not.</summary>
public sealed class BackupListing
{
    public required string Hub { get; init; }
    public required string BackupId { get; init; }
    public required DateTimeOffset Created { get; init; }
    public CatalogRecord? Catalog { get; init; }
    public bool IsComplete => Catalog is not null;
    public required IReadOnlyList<StoreObject> Objects { get; init; }

    /// <summary>Uploads into this folder that never completed (temp files, multipart uploads, uncommitted blobs);
    /// only filled when the listing asked for them.</summary>
    public IReadOnlyList<PendingUpload> Pending { get; init; } = [];

    /// <summary>Keys in this folder that HubDr did not write (any other name, or a subfolder). Such a folder is never deleted.</summary>
    public IReadOnlyList<string> ForeignKeys { get; init; } = [];

    /// <summary>The lease of a running (or killed) backup, when the folder holds one.</summary>
    public LeaseStatus? Lease { get; init; }

    /// <summary>No catalog record and a live lease: a backup is being written right now.</summary>
    public bool IsRunning => !IsComplete && Lease is { IsLive: true };

    public long StoredBytes => Objects.Sum(o => o.Size) + Pending.Sum(p => p.Size);

    /// <summary>The newest write in the folder (objects and pending uploads).</summary>
    public DateTimeOffset LastWrite => Objects.Select(o => o.LastModified).Concat(Pending.Select(p => p.LastModified)).DefaultIfEmpty(Created).Max();
    public DateTimeOffset? LockedUntil => Objects.Select(o => o.LockedUntil).Where(d => d is not null).DefaultIfEmpty().Max();
    public bool LegalHold => Objects.Any(o => o.LegalHold);

    /// <summary>Catalog present but unreadable (not JSON / wrong ids): listed so retention and verify can report it.</summary>
    public string? CatalogProblem { get; init; }
}

public static class CatalogService
{
    /// <summary>
    /// Lists backups by walking object keys "hub/backupId/…" (one paged listing), then reads the small catalog
    /// records concurrently. Only folders HubDr could have written count: a valid hub name, a backup-id-shaped folder
    /// name, and at least one object (or pending upload) with one of HubDr's own names; anything else in the store is
    /// ignored. The store must carry HubDr's marker (or legacy catalog records) unless <paramref name="requireMarker"/>
    /// is false (the caller checked): otherwise StoreNotInitialized.
    /// </summary>
    public static async Task<List<BackupListing>> ListAsync(IBackupStore store, string? hub, CancellationToken ct, int concurrency = 32,
        bool includePending = false, bool requireMarker = true)
    {
        if (requireMarker)
        {
            await StoreMarker.RequireAsync(store, ct).ConfigureAwait(false);
        }

        var groups = await GroupAsync(store, hub, includePending, ct).ConfigureAwait(false);
        var result = new BackupListing[groups.Count];
        var now = DateTimeOffset.UtcNow;
        using var gate = new SemaphoreSlim(concurrency);
        var tasks = groups.Select(async (g, i) =>
        {
            await gate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                result[i] = await ReadOneAsync(store, g.Key.Hub, g.Key.Id, g.Value, now, ct).ConfigureAwait(false);
            }
            finally
            {
                gate.Release();
            }
        }).ToList();
        await Task.WhenAll(tasks).ConfigureAwait(false);
        return result.OrderBy(b => b.Hub, StringComparer.Ordinal).ThenByDescending(b => b.Created).ThenByDescending(b => b.BackupId, StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// The newest complete backup of each hub, reading catalog records newest-first (backup ids sort by time) and
    /// stopping at the first complete one per hub: one listing plus, typically, one small GET per hub.
    /// </summary>
    public static async Task<List<BackupListing>> LatestAsync(IBackupStore store, string? hub, CancellationToken ct)
    {
        await StoreMarker.RequireAsync(store, ct).ConfigureAwait(false);
        var groups = await GroupAsync(store, hub, false, ct).ConfigureAwait(false);
        var result = new List<BackupListing>();
        var now = DateTimeOffset.UtcNow;
        foreach (var perHub in groups.GroupBy(g => g.Key.Hub, StringComparer.Ordinal))
        {
            // Ids carry the creation time to the second; backups made within the same second are told apart by
            // their catalog's full-precision creation time.
            BackupListing? best = null;
            DateTimeOffset? bestSecond = null;
            foreach (var (g, second) in perHub
                         .Select(g => (g, Second: ObjectLayout.TryParseBackupId(g.Key.Id, out var t) ? t : g.Value.Objects.Max(o => o.LastModified)))
                         .OrderByDescending(x => x.Second))
            {
                if (bestSecond is not null && second < bestSecond)
                {
                    break;
                }

                if (!g.Value.Objects.Any(o => o.Key.EndsWith("/" + ObjectLayout.CatalogName, StringComparison.Ordinal)))
                {
                    continue;
                }

                var listing = await ReadOneAsync(store, g.Key.Hub, g.Key.Id, g.Value, now, ct).ConfigureAwait(false);
                if (!listing.IsComplete)
                {
                    continue;
                }

                bestSecond ??= second;
                if (best is null || listing.Created > best.Created || (listing.Created == best.Created && string.CompareOrdinal(listing.BackupId, best.BackupId) > 0))
                {
                    best = listing;
                }
            }

            if (best is not null)
            {
                result.Add(best);
            }
        }

        return result;
    }

    /// <summary>One backup folder (with its pending uploads), or null when it holds nothing of HubDr's.</summary>
    public static async Task<BackupListing?> GetAsync(IBackupStore store, string hub, string backupId, CancellationToken ct, bool includePending = false)
    {
        var folder = new Folder();
        await foreach (var o in store.ListAsync(ObjectLayout.Folder(hub, backupId), ct).ConfigureAwait(false))
        {
            Classify(folder, o.Key, o, null);
        }

        if (includePending)
        {
            await foreach (var p in store.ListPendingAsync(ObjectLayout.Folder(hub, backupId), ct).ConfigureAwait(false))
            {
                Classify(folder, p.Key, null, p);
            }
        }

        return folder.HubDrCount == 0 ? null : await ReadOneAsync(store, hub, backupId, folder, DateTimeOffset.UtcNow, ct).ConfigureAwait(false);
    }

    private sealed class Folder
    {
        public List<StoreObject> Objects { get; } = [];
        public List<PendingUpload> Pending { get; } = [];
        public List<string> Foreign { get; } = [];
        public int HubDrCount { get; set; }
    }

    private static async Task<Dictionary<(string Hub, string Id), Folder>> GroupAsync(IBackupStore store, string? hub, bool includePending, CancellationToken ct)
    {
        var prefix = hub is null ? "" : ObjectLayout.ValidateHub(hub) + "/";
        var groups = new Dictionary<(string Hub, string Id), Folder>();
        Folder? For(string key)
        {
            var parts = key.Split('/');
            if (parts.Length < 3 || !ObjectLayout.IsHubName(parts[0]) || !ObjectLayout.IsBackupId(parts[1]))
            {
                return null; // not a backup folder: _audit/, _reports/, the marker, anything HubDr did not write
            }

            var k = (parts[0], parts[1]);
            if (!groups.TryGetValue(k, out var f))
            {
                groups[k] = f = new Folder();
            }

            return f;
        }

        await foreach (var o in store.ListAsync(prefix, ct).ConfigureAwait(false))
        {
            if (For(o.Key) is { } f)
            {
                Classify(f, o.Key, o, null);
            }
        }

        if (includePending)
        {
            await foreach (var p in store.ListPendingAsync(prefix, ct).ConfigureAwait(false))
            {
                if (For(p.Key) is { } f)
                {
                    Classify(f, p.Key, null, p);
                }
            }
        }

        // A folder with nothing of HubDr's in it is not a backup, not even an incomplete one.
        foreach (var k in groups.Where(g => g.Value.HubDrCount == 0).Select(g => g.Key).ToList())
        {
            groups.Remove(k);
        }

        return groups;
    }

    private static void Classify(Folder f, string key, StoreObject? o, PendingUpload? p)
    {
        var parts = key.Split('/');
        var own = parts.Length == 3 && ObjectLayout.IsBackupObjectName(parts[2]);
        if (o is not null)
        {
            f.Objects.Add(o);
            if (!own)
            {
                f.Foreign.Add(key);
            }
        }
        else if (p is not null)
        {
            if (!own)
            {
                // A pending upload to a name HubDr never writes is someone else's: shown as foreign, never aborted.
                f.Foreign.Add(key);
                return;
            }

            f.Pending.Add(p);
        }

        if (own)
        {
            f.HubDrCount++;
        }
    }

    private static async Task<BackupListing> ReadOneAsync(IBackupStore store, string hub, string id, Folder folder, DateTimeOffset now, CancellationToken ct)
    {
        var objects = folder.Objects;
        CatalogRecord? catalog = null;
        string? problem = null;
        if (objects.Any(o => o.Key.EndsWith("/" + ObjectLayout.CatalogName, StringComparison.Ordinal)))
        {
            var bytes = await store.TryGetAsync(ObjectLayout.Folder(hub, id) + ObjectLayout.CatalogName, ct).ConfigureAwait(false);
            if (bytes is not null)
            {
                try
                {
                    catalog = HubJson.Deserialize<CatalogRecord>(bytes, "catalog record");
                }
                catch (HubDrException e)
                {
                    problem = e.Message;
                }
            }
        }

        LeaseStatus? lease = null;
        if (objects.FirstOrDefault(o => o.Key == ObjectLayout.Folder(hub, id) + ObjectLayout.LeaseName) is { } leaseObject)
        {
            lease = await BackupLease.ReadAsync(store, hub, id, leaseObject, now, ct).ConfigureAwait(false);
        }

        var created = catalog?.CreatedUtc
            ?? (ObjectLayout.TryParseBackupId(id, out var t) ? t : objects.Select(o => o.LastModified).Concat(folder.Pending.Select(p => p.LastModified)).Min());
        return new BackupListing
        {
            Hub = hub,
            BackupId = id,
            Created = created,
            Catalog = catalog,
            Objects = objects,
            Pending = folder.Pending,
            ForeignKeys = folder.Foreign,
            Lease = lease,
            CatalogProblem = problem,
        };
    }
}
