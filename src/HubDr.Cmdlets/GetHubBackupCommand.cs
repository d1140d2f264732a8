using System.Management.Automation;
using HubDr.Cmdlets.Infrastructure;
using HubDr.Engine.Backup;
using HubDr.Engine.Stores;

namespace HubDr.Cmdlets;

/// <summary>
/// Get-HubBackup: lists the backups in a store from their public catalog records (no decryption key needed),
/// newest first per hub. Incomplete backups (no catalog record) only with -IncludeIncomplete.
/// </summary>
[Cmdlet(VerbsCommon.Get, "HubBackup", DefaultParameterSetName = "List")]
[OutputType(typeof(HubBackup))]
public sealed class GetHubBackupCommand : HubStoreCmdletBase
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [HubSetting("Store")]
    public string? Store { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [HubSetting("Hub")]
    [ArgumentCompleter(typeof(HubNameCompleter))]
    [SupportsWildcards]
    public string? Hub { get; set; }

    /// <summary>A literal id that matches nothing is a BackupNotFound error; a wildcard that matches nothing returns nothing.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(BackupIdCompleter))]
    [SupportsWildcards]
    public string? BackupId { get; set; }

    /// <summary>Only the newest complete backup of each hub.</summary>
    [Parameter]
    public SwitchParameter Latest { get; set; }

    /// <summary>Only backups created at or after this time (a DateTime of any Kind, or a DateTimeOffset).</summary>
    [Parameter]
    public DateTimeOffset? Since { get; set; }

    [Parameter]
    public SwitchParameter IncludeIncomplete { get; set; }

    protected override void ProcessRecord()
    {
        Guarded(() =>
        {
            var spec = BuildStoreSpec(Store);
            var hub = Hub;
            var exactHub = hub is not null && !WildcardPattern.ContainsWildcardCharacters(hub) ? hub : null;
            var hubPattern = hub is null ? null : new WildcardPattern(hub, WildcardOptions.IgnoreCase);
            var idPattern = BackupId is null ? null : new WildcardPattern(BackupId, WildcardOptions.IgnoreCase);
            var (list, location) = RunEngine(async (log, ct) =>
            {
                await using var store = StoreFactory.Create(spec);
                await store.EnsureAvailableAsync(ct).ConfigureAwait(false);
                log.Verbose($"Listing backups in {store.Location}" + (exactHub is null ? "" : $" for hub '{exactHub}'") + ".");
                // -Latest without other filters: newest-first, stop at the first complete backup per hub.
                var fast = Latest.IsPresent && BackupId is null && Since is null;
                var list = fast
                    ? await CatalogService.LatestAsync(store, exactHub, ct).ConfigureAwait(false)
                    : await CatalogService.ListAsync(store, exactHub, ct, includePending: IncludeIncomplete.IsPresent).ConfigureAwait(false);
                return (list, store.Location);
            });

            var since = Since;
            var selected = list
                .Where(b => hubPattern is null || hubPattern.IsMatch(b.Hub))
                .Where(b => idPattern is null || idPattern.IsMatch(b.BackupId))
                .Where(b => since is null || b.Created >= since)
                .Where(b => (IncludeIncomplete.IsPresent && !Latest.IsPresent) || b.IsComplete);
            if (Latest.IsPresent)
            {
                selected = selected.GroupBy(b => b.Hub).Select(g => g.OrderByDescending(b => b.Created).ThenByDescending(b => b.BackupId, StringComparer.Ordinal).First());
            }

            var count = 0;
            foreach (var b in selected)
            {
                WriteObject(Mapper.ToHubBackup(b, location, spec));
                count++;
            }

            WriteVerbose($"{count} backup(s) of {list.Count} listed.");
            if (count == 0 && BackupId is not null && !WildcardPattern.ContainsWildcardCharacters(BackupId)
                && !list.Any(b => (hubPattern is null || hubPattern.IsMatch(b.Hub)) && idPattern!.IsMatch(b.BackupId)))
            {
                // Like Get-Item: a literal name that matches nothing is an error, a wildcard that matches nothing is not.
                throw BackupNotFound(location, hub ?? "*", BackupId);
            }
        });
    }
}
