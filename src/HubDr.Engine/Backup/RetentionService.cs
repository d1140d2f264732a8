using HubDr.Engine.Crypto;
using HubDr.Engine.Retention;
using HubDr.Engine.Stores;

namespace HubDr.Engine.Backup;

public enum RetentionAction
{
    Keep,
    Remove,
    Locked,
    KeepIncomplete,
    RemoveIncomplete,
}

/// <summary>One backup's fate under a retention run.</summary>
public sealed class RetentionItem
{
    public required BackupListing Backup { get; init; }
    public required RetentionAction Action { get; init; }
    public required IReadOnlyList<string> Reasons { get; init; }
    public bool WillDelete => Action is RetentionAction.Remove or RetentionAction.RemoveIncomplete;
}

public sealed class RetentionRequest
{
    public required RetentionPolicy Policy { get; init; }

    /// <summary>Only this hub (null: every hub in the store, each planned on its own).</summary>
    public string? Hub { get; init; }

    /// <summary>Keys whose signatures count; used to find the newest signature-valid backup, which is never removed.</summary>
    public OpenPgpKeySet? TrustedSigners { get; init; }

    /// <summary>Incomplete backups (no catalog record) younger than this are left alone: a backup may still be running.</summary>
    public TimeSpan IncompleteGracePeriod { get; init; } = TimeSpan.FromDays(1);

    public DateTimeOffset Now { get; init; } = DateTimeOffset.UtcNow;
}

/// <summary>
/// Remove-ExpiredHubBackup's engine: plans per hub with the pure restic-compatible policy, then applies the safety
/// rules (never the newest valid backup, never every backup, object locks respected, incomplete ones after a grace
/// period), and deletes catalog records first so a half-deleted backup is never listed as valid.
/// </summary>
public static class RetentionService
{
    public static async Task<List<RetentionItem>> PlanAsync(IBackupStore store, RetentionRequest request, IOperationLog log, CancellationToken ct)
    {
        if (request.Policy.IsEmpty)
        {
            throw new HubDrException("RetentionPolicyEmpty", HubErrorCategory.InvalidArgument,
                "The retention policy keeps nothing. Give at least one -Keep* rule (or omit them all to use the runbook's default policy).");
        }

        request.Policy.Validate();
        var listings = await CatalogService.ListAsync(store, request.Hub, ct).ConfigureAwait(false);
        var items = new List<RetentionItem>();
        foreach (var group in listings.GroupBy(l => l.Hub, StringComparer.Ordinal))
        {
            var complete = group.Where(b => b.IsComplete).ToList();
            string? newestValid = await FindNewestValidAsync(store, complete, request.TrustedSigners, log, ct).ConfigureAwait(false);
            var plan = RetentionSafety.Apply(
                RetentionPlanner.Plan(complete.Select(b => new RetentionCandidate(b.BackupId, b.Created) { Tags = b.Catalog!.Labels }), request.Policy),
                request.Policy,
                newestValid);
            var byId = complete.ToDictionary(b => b.BackupId, StringComparer.Ordinal);
            foreach (var d in plan)
            {
                var b = byId[d.Candidate.Id];
                if (!d.Keep && IsLocked(b, request.Now))
                {
                    items.Add(new RetentionItem { Backup = b, Action = RetentionAction.Locked, Reasons = [LockReason(b)] });
                }
                else
                {
                    items.Add(new RetentionItem { Backup = b, Action = d.Keep ? RetentionAction.Keep : RetentionAction.Remove, Reasons = d.Keep ? d.Reasons : ["expired under " + request.Policy] });
                }
            }

            foreach (var b in group.Where(b => !b.IsComplete))
            {
                var lastWrite = b.Objects.Max(o => o.LastModified);
                var age = request.Now - (lastWrite > b.Created ? lastWrite : b.Created);
                if (age < request.IncompleteGracePeriod)
                {
                    items.Add(new RetentionItem { Backup = b, Action = RetentionAction.KeepIncomplete, Reasons = [$"incomplete, within the {request.IncompleteGracePeriod.TotalHours:0.#}h grace period (may still be running)"] });
                }
                else if (IsLocked(b, request.Now))
                {
                    items.Add(new RetentionItem { Backup = b, Action = RetentionAction.Locked, Reasons = ["incomplete; " + LockReason(b)] });
                }
                else
                {
                    items.Add(new RetentionItem { Backup = b, Action = RetentionAction.RemoveIncomplete, Reasons = [b.CatalogProblem is null ? "incomplete: no catalog record" : "unreadable catalog record: " + b.CatalogProblem] });
                }
            }

            log.Verbose($"Hub '{group.Key}': {items.Count(i => i.Backup.Hub == group.Key && i.WillDelete)} of {group.Count()} backup(s) to remove; newest valid: {newestValid ?? "none found"}.");
        }

        return items.OrderBy(i => i.Backup.Hub, StringComparer.Ordinal).ThenByDescending(i => i.Backup.Created).ToList();
    }

    /// <summary>
    /// Deletes the given backups: every catalog record first (batched), then the remaining objects (batched).
    /// Returns per backup the error, or null on success. Objects refused by an object lock are reported as errors.
    /// </summary>
    public static async Task<Dictionary<string, string?>> DeleteAsync(IBackupStore store, IReadOnlyList<BackupListing> backups, IOperationLog log, CancellationToken ct)
    {
        var result = backups.ToDictionary(Key, _ => (string?)null, StringComparer.Ordinal);
        var catalogKeys = backups.SelectMany(b => b.Objects.Where(o => o.Key.EndsWith("/" + ObjectLayout.CatalogName, StringComparison.Ordinal)).Select(o => (b, o.Key))).ToList();
        await DeletePhaseAsync(store, catalogKeys, result, ct).ConfigureAwait(false);
        var rest = backups.Where(b => result[Key(b)] is null)
            .SelectMany(b => b.Objects.Where(o => !o.Key.EndsWith("/" + ObjectLayout.CatalogName, StringComparison.Ordinal)).Select(o => (b, o.Key)))
            .ToList();
        await DeletePhaseAsync(store, rest, result, ct).ConfigureAwait(false);
        log.Verbose($"Deleted {result.Count(r => r.Value is null)} backup(s); {result.Count(r => r.Value is not null)} failed.");
        return result;
    }

    private static async Task DeletePhaseAsync(IBackupStore store, List<(BackupListing B, string Key)> keys, Dictionary<string, string?> result, CancellationToken ct)
    {
        if (keys.Count == 0)
        {
            return;
        }

        try
        {
            var refused = await store.DeleteAsync(keys.Select(k => k.Key).ToList(), ct).ConfigureAwait(false);
            foreach (var r in refused)
            {
                var owner = keys.First(k => k.Key == r).B;
                result[Key(owner)] = $"the store refused to delete '{r}' (object lock or legal hold)";
            }
        }
        catch (HubDrException e)
        {
            foreach (var owner in keys.Select(k => k.B).Distinct())
            {
                result[Key(owner)] ??= e.Message;
            }
        }
    }

    private static string Key(BackupListing b) => b.Hub + "/" + b.BackupId;

    private static bool IsLocked(BackupListing b, DateTimeOffset now) => b.LegalHold || (b.LockedUntil is { } until && until > now) || (b.Catalog?.RetainUntil is { } r && r > now);

    private static string LockReason(BackupListing b) =>
        b.LegalHold ? "legal hold: cannot be deleted until the hold is released"
        : $"object lock until {(b.LockedUntil ?? b.Catalog?.RetainUntil):yyyy-MM-dd HH:mm}Z: cannot be deleted yet";

    private static async Task<string?> FindNewestValidAsync(IBackupStore store, List<BackupListing> complete, OpenPgpKeySet? trusted, IOperationLog log, CancellationToken ct)
    {
        var newestFirst = complete.OrderByDescending(b => b.Created).ThenByDescending(b => b.BackupId, StringComparer.Ordinal);
        if (trusted is null)
        {
            log.Warning("No trusted signer keys given: the newest complete backup is protected without checking its signature.");
            return newestFirst.FirstOrDefault()?.BackupId;
        }

        foreach (var b in newestFirst)
        {
            var v = await VerifyService.VerifyAsync(store, b.Hub, b.BackupId, trusted, NullOperationLog.Instance, ct).ConfigureAwait(false);
            if (v.IsValid)
            {
                return b.BackupId;
            }

            log.Warning($"Backup {b.Hub}/{b.BackupId} is not signature-valid ({v.Status}: {v.Reason}); looking at the next older one.");
        }

        return null;
    }
}
