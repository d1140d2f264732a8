using System.Management.Automation;
using HubDr.Cmdlets.Infrastructure;
using HubDr.Engine.Backup;
using HubDr.Engine.Stores;

namespace HubDr.Cmdlets;

/// <summary>
/// Initialize-HubBackupStore: marks a folder, S3 prefix or Azure container (+prefix) as a HubDr backup store by writing
/// the store marker (hubdr-store.json). Listing and retention refuse a store without it, so a mistyped -Store never
/// lists or deletes anything. Also migrates a store written before markers existed. New-HubBackup does the same on its
/// first run; this cmdlet does it explicitly (and before any backup, e.g. when a retention job is set up first).
/// </summary>
[Cmdlet(VerbsData.Initialize, "HubBackupStore", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(HubBackupStore))]
public sealed class InitializeHubBackupStoreCommand : HubStoreCmdletBase
{
    /// <summary>The store: a folder, file://, s3://bucket[/prefix] or az://account/container[/prefix].</summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    public string? Store { get; set; }

    protected override void ProcessRecord()
    {
        Guarded(() =>
        {
            var spec = BuildStoreSpec(Store);
            var inspection = RunEngine(async (log, ct) =>
            {
                await using var store = StoreFactory.Create(spec);
                await store.EnsureAvailableAsync(ct).ConfigureAwait(false);
                return await StoreMarker.InspectAsync(store, ct).ConfigureAwait(false);
            });
            if (inspection is { Kind: StoreKind.Initialized, Marker: { } existing })
            {
                WriteVerbose($"{inspection.Location} is already a HubDr store (marker written {existing.CreatedUtc:u} by {existing.CreatedBy}).");
                WriteObject(ToOutput(inspection.Location, "AlreadyInitialized", existing));
                return;
            }

            var what = inspection.Kind switch
            {
                StoreKind.Legacy => $"Add the HubDr store marker {ObjectLayout.MarkerName} (store written before the marker existed)",
                StoreKind.Foreign => $"Write the HubDr store marker {ObjectLayout.MarkerName} into a location that already holds objects HubDr did not write",
                _ => $"Write the HubDr store marker {ObjectLayout.MarkerName}",
            };
            if (!ShouldProcess(inspection.Location, what))
            {
                return;
            }

            if (inspection.Kind == StoreKind.Foreign)
            {
                WriteWarning($"{inspection.Location} already holds objects HubDr did not write. They stay as they are: HubDr only ever lists and removes backup folders it wrote (<hub>/<backupId>/ holding HubDr's own objects).");
            }

            var marker = RunEngine(async (log, ct) =>
            {
                await using var store = StoreFactory.Create(spec);
                return (await StoreMarker.EnsureAsync(store, "Initialize-HubBackupStore", inspection, ct).ConfigureAwait(false)).Marker;
            });
            WriteObject(ToOutput(inspection.Location, inspection.Kind == StoreKind.Legacy ? "Migrated" : "Initialized", marker));
        });
    }

    private static HubBackupStore ToOutput(string location, string status, StoreMarkerRecord m) => new()
    {
        Store = location,
        Status = status,
        StoreId = m.StoreId,
        Created = m.CreatedUtc.UtcDateTime,
        CreatedBy = m.CreatedBy,
        ToolVersion = m.ToolVersion,
    };
}
