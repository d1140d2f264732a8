using HubDr.Engine.Stores;

namespace HubDr.Engine.Backup;

/// <summary>What a store is, as far as HubDr can tell (see <see cref="StoreMarker.InspectAsync"/>).</summary>
public enum StoreKind
{
    /// <summary>The marker object HubDr writes is there.</summary>
    Initialized,

    /// <summary>No marker, but at least one well-formed catalog record of the current format: a store written by
    /// HubDr before the marker existed. Works; New-HubBackup / Initialize-HubBackupStore add the marker.</summary>
    Legacy,

    /// <summary>No marker and no object at all.</summary>
    Empty,

    /// <summary>No marker and no HubDr catalog record: not a HubDr store (or a mistyped -Store).</summary>
    Foreign,
}

/// <summary>The marker's content: JSON, public, nothing secret.</summary>
public sealed class StoreMarkerRecord
{
    public const string KindValue = "hubdr-store";

    public string Kind { get; set; } = KindValue;
    public int FormatVersion { get; set; } = ObjectLayout.FormatVersion;
    public string StoreId { get; set; } = "";
    public DateTimeOffset CreatedUtc { get; set; }
    public string ToolVersion { get; set; } = "";
    public string CreatedBy { get; set; } = "";
    public string HostName { get; set; } = "";
}

/// <summary>The result of inspecting a store.</summary>
public sealed record StoreInspection(StoreKind Kind, StoreMarkerRecord? Marker, string Location)
{
    /// <summary>An object named like the marker exists but is not a HubDr marker (it is never overwritten).</summary>
    public bool MarkerUnreadable { get; init; }

    public bool IsHubDrStore => Kind is StoreKind.Initialized or StoreKind.Legacy;
}

/// <summary>
/// HubDr only treats as a backup store what HubDr wrote: a store carries the marker object
/// <see cref="ObjectLayout.MarkerName"/> at its root, written by the first New-HubBackup or by Initialize-HubBackupStore.
/// Listing and retention refuse a store without it (ErrorId StoreNotInitialized), so a mistyped -Store never lists or
/// deletes someone else's files. Stores written before the marker existed are recognised by their catalog records.
/// </summary>
public static class StoreMarker
{
    /// <summary>Reads the marker; without one, looks for one well-formed catalog record (legacy store).</summary>
    public static async Task<StoreInspection> InspectAsync(IBackupStore store, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(store);
        var bytes = await store.TryGetAsync(ObjectLayout.MarkerName, ct).ConfigureAwait(false);
        if (bytes is not null)
        {
            var marker = Parse(bytes);
            if (marker is not null)
            {
                if (marker.FormatVersion > ObjectLayout.FormatVersion)
                {
                    throw new HubDrException("StoreFormatUnsupported", HubErrorCategory.InvalidData,
                        $"The store {store.Location} was written by a newer HubDr (store format {marker.FormatVersion}; this version reads up to {ObjectLayout.FormatVersion}). Upgrade HubDr.")
                    { Target = store.Location };
                }

                return new StoreInspection(StoreKind.Initialized, marker, store.Location);
            }
        }

        // No (valid) marker: a legacy store has at least one <hub>/<backupId>/catalog.json that parses as the catalog
        // record of that hub and backup id. Stop at the first one.
        var any = false;
        await foreach (var o in store.ListAsync("", ct).ConfigureAwait(false))
        {
            any = true;
            var parts = o.Key.Split('/');
            if (parts.Length != 3 || parts[2] != ObjectLayout.CatalogName || !ObjectLayout.IsHubName(parts[0]) || !ObjectLayout.IsBackupId(parts[1]))
            {
                continue;
            }

            if (await IsCatalogOfAsync(store, parts[0], parts[1], ct).ConfigureAwait(false))
            {
                return new StoreInspection(StoreKind.Legacy, null, store.Location) { MarkerUnreadable = bytes is not null };
            }
        }

        return new StoreInspection(any || bytes is not null ? StoreKind.Foreign : StoreKind.Empty, null, store.Location) { MarkerUnreadable = bytes is not null };
    }

    /// <summary>
    /// For listing and retention: the store must be a HubDr store (marker, or legacy catalog records), else
    /// StoreNotInitialized and nothing is read, written or deleted.
    /// </summary>
    public static async Task<StoreInspection> RequireAsync(IBackupStore store, CancellationToken ct)
    {
        var inspection = await InspectAsync(store, ct).ConfigureAwait(false);
        if (!inspection.IsHubDrStore)
        {
            throw NotInitialized(store.Location, inspection.Kind);
        }

        return inspection;
    }

    public static HubDrException NotInitialized(string location, StoreKind kind) => new("StoreNotInitialized", HubErrorCategory.InvalidOperation,
        $"{location} is not a HubDr backup store: it has no HubDr store marker ({ObjectLayout.MarkerName})"
        + (kind == StoreKind.Empty ? " and is empty" : " and holds no HubDr catalog record, only objects HubDr did not write")
        + ". Nothing was listed, changed or deleted. Check -Store (a typo?); to start a new store there, run Initialize-HubBackupStore or New-HubBackup.")
    { Target = location };

    /// <summary>
    /// Writes the marker unless the store already has one (New-HubBackup, Initialize-HubBackupStore, and retention
    /// under ShouldProcess when migrating a legacy store). Returns the marker and whether it was written now.
    /// </summary>
    public static async Task<(StoreMarkerRecord Marker, bool Written)> EnsureAsync(IBackupStore store, string createdBy, StoreInspection? known, CancellationToken ct)
    {
        var inspection = known ?? await InspectAsync(store, ct).ConfigureAwait(false);
        if (inspection is { Kind: StoreKind.Initialized, Marker: { } existing })
        {
            return (existing, false);
        }

        if (inspection.MarkerUnreadable)
        {
            throw new HubDrException("StoreMarkerInvalid", HubErrorCategory.InvalidData,
                $"{store.Location} holds an object named {ObjectLayout.MarkerName} that is not a HubDr store marker. HubDr does not overwrite it; check -Store, or remove that object if it is garbage.")
            { Target = store.Location };
        }

        var marker = new StoreMarkerRecord
        {
            StoreId = Guid.NewGuid().ToString("D"),
            CreatedUtc = DateTimeOffset.UtcNow,
            ToolVersion = BackupService.ToolVersion,
            CreatedBy = createdBy,
            HostName = Environment.MachineName,
        };
        // Never under an object lock: the marker describes the store, it is not backup data.
        await store.PutAsync(ObjectLayout.MarkerName, HubJson.Serialize(marker), new StoreWriteOptions { ContentType = "application/json" }, ct).ConfigureAwait(false);
        return (marker, true);
    }

    /// <summary>True when <c>hub/id/catalog.json</c> parses as a catalog record naming that hub and id.</summary>
    internal static async Task<bool> IsCatalogOfAsync(IBackupStore store, string hub, string id, CancellationToken ct)
    {
        var bytes = await store.TryGetAsync(ObjectLayout.Folder(hub, id) + ObjectLayout.CatalogName, ct).ConfigureAwait(false);
        if (bytes is null || bytes.Length > 1 << 20)
        {
            return false;
        }

        try
        {
            var c = HubJson.Deserialize<CatalogRecord>(bytes, "catalog record");
            return c.FormatVersion >= 1 && c.Hub == hub && c.BackupId == id && c.Archive.Length > 0;
        }
        catch (HubDrException)
        {
            return false;
        }
    }

    private static StoreMarkerRecord? Parse(byte[] bytes)
    {
        try
        {
            var m = HubJson.Deserialize<StoreMarkerRecord>(bytes, "store marker");
            return m.Kind == StoreMarkerRecord.KindValue && m.FormatVersion >= 1 ? m : null;
        }
        catch (HubDrException)
        {
            return null;
        }
    }
}
