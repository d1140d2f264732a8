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
    public long StoredBytes => Objects.Sum(o => o.Size);
    public DateTimeOffset? LockedUntil => Objects.Select(o => o.LockedUntil).Where(d => d is not null).DefaultIfEmpty().Max();
    public bool LegalHold => Objects.Any(o => o.LegalHold);

    /// <summary>Catalog present but unreadable (not JSON / wrong ids): listed so retention and verify can report it.</summary>
    public string? CatalogProblem { get; init; }
}

public static class CatalogService
{
    /// <summary>
    /// Lists backups by walking object keys "hub/backupId/…" (one paged listing), then reads the small catalog
    /// records concurrently. Folders starting with '_' (reports, audit) are not backups.
    /// </summary>
    public static async Task<List<BackupListing>> ListAsync(IBackupStore store, string? hub, CancellationToken ct, int concurrency = 32)
    {
        var groups = await GroupAsync(store, hub, ct).ConfigureAwait(false);
        var result = new BackupListing[groups.Count];
        using var gate = new SemaphoreSlim(concurrency);
        var tasks = groups.Select(async (g, i) =>
        {
            await gate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                result[i] = await ReadOneAsync(store, g.Key.Hub, g.Key.Id, g.Value, ct).ConfigureAwait(false);
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
        var groups = await GroupAsync(store, hub, ct).ConfigureAwait(false);
        var result = new List<BackupListing>();
        foreach (var perHub in groups.GroupBy(g => g.Key.Hub, StringComparer.Ordinal))
        {
            // Ids carry the creation time to the second; backups made within the same second are told apart by
            // their catalog's full-precision creation time.
            BackupListing? best = null;
            DateTimeOffset? bestSecond = null;
            foreach (var (g, second) in perHub
                         .Select(g => (g, Second: ObjectLayout.TryParseBackupId(g.Key.Id, out var t) ? t : g.Value.Max(o => o.LastModified)))
                         .OrderByDescending(x => x.Second))
            {
                if (bestSecond is not null && second < bestSecond)
                {
                    break;
                }

                if (!g.Value.Any(o => o.Key.EndsWith("/" + ObjectLayout.CatalogName, StringComparison.Ordinal)))
                {
                    continue;
                }

                var listing = await ReadOneAsync(store, g.Key.Hub, g.Key.Id, g.Value, ct).ConfigureAwait(false);
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

    public static async Task<BackupListing?> GetAsync(IBackupStore store, string hub, string backupId, CancellationToken ct)
    {
        var objects = new List<StoreObject>();
        await foreach (var o in store.ListAsync(ObjectLayout.Folder(hub, backupId), ct).ConfigureAwait(false))
        {
            objects.Add(o);
        }

        return objects.Count == 0 ? null : await ReadOneAsync(store, hub, backupId, objects, ct).ConfigureAwait(false);
    }

    private static async Task<Dictionary<(string Hub, string Id), List<StoreObject>>> GroupAsync(IBackupStore store, string? hub, CancellationToken ct)
    {
        var prefix = hub is null ? "" : ObjectLayout.ValidateHub(hub) + "/";
        var groups = new Dictionary<(string Hub, string Id), List<StoreObject>>();
        await foreach (var o in store.ListAsync(prefix, ct).ConfigureAwait(false))
        {
            var parts = o.Key.Split('/');
            if (parts.Length < 3 || parts[0].StartsWith('_') || parts[1].StartsWith('_'))
            {
                continue;
            }

            var k = (parts[0], parts[1]);
            if (!groups.TryGetValue(k, out var list))
            {
                groups[k] = list = [];
            }

            list.Add(o);
        }

        return groups;
    }

    private static async Task<BackupListing> ReadOneAsync(IBackupStore store, string hub, string id, List<StoreObject> objects, CancellationToken ct)
    {
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

        var created = catalog?.CreatedUtc
            ?? (ObjectLayout.TryParseBackupId(id, out var t) ? t : objects.Min(o => o.LastModified));
        return new BackupListing { Hub = hub, BackupId = id, Created = created, Catalog = catalog, Objects = objects, CatalogProblem = problem };
    }
}
