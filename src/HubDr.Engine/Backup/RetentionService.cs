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

/// <summary>An upload that never completed, in a backup folder that is kept, old enough to remove.</summary>
public sealed record StalePendingUpload(BackupListing Backup, PendingUpload Upload);

/// <summary>Everything one retention run would do, for -WhatIf and for the run itself.</summary>
public sealed class RetentionPlanResult
{
    public required List<RetentionItem> Items { get; init; }

    /// <summary>Temp files / multipart uploads / uncommitted blobs in kept folders, older than the grace period and not
    /// held by a live lease. (Those in folders that are removed go with their folder.)</summary>
    public required List<StalePendingUpload> StalePending { get; init; }

    /// <summary>What the store is: Initialized, or Legacy (no marker yet; the caller may add it).</summary>
    public required StoreInspection Store { get; init; }

    public List<string> Warnings { get; } = [];
}

/// <summary>The outcome of a delete run: per backup "hub/id" an error (null = removed), and the backups left alone
/// because they changed since the plan (a backup completed or started running in that folder).</summary>
public sealed class RetentionDeleteResult
{
    public Dictionary<string, string?> Errors { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, string> Skipped { get; } = new(StringComparer.Ordinal);
}

/// <summary>
/// Remove-ExpiredHubBackup's engine: plans per hub with the pure restic-compatible policy, then applies the safety
/// rules (never the newest valid backup, never every backup, object locks respected, incomplete ones after a grace
/// period and never while their lease is live, never a folder holding files HubDr did not write), and deletes catalog
/// records first so a half-deleted backup is never listed as valid. Refuses a store that is not HubDr's.
/// </summary>
public static class RetentionService
{
    public static async Task<RetentionPlanResult> PlanAsync(IBackupStore store, RetentionRequest request, IOperationLog log, CancellationToken ct)
    {
        if (request.Policy.IsEmpty)
        {
            throw new HubDrException("RetentionPolicyEmpty", HubErrorCategory.InvalidArgument,
                "The retention policy keeps nothing. Give at least one -Keep* rule (or -UseRunbookPolicy for the runbook's default policy).");
        }

        request.Policy.Validate();
        if (request.IncompleteGracePeriod < TimeSpan.Zero)
        {
            throw new HubDrException("RetentionGracePeriodInvalid", HubErrorCategory.InvalidArgument,
                $"The incomplete-backup grace period is negative ({request.IncompleteGracePeriod}). Use 0 or more.");
        }

        var inspection = await StoreMarker.RequireAsync(store, ct).ConfigureAwait(false);
        var listings = await CatalogService.ListAsync(store, request.Hub, ct, includePending: true, requireMarker: false).ConfigureAwait(false);
        var items = new List<RetentionItem>();
        var stale = new List<StalePendingUpload>();
        var result = new RetentionPlanResult { Items = items, StalePending = stale, Store = inspection };
        void Warn(string message)
        {
            result.Warnings.Add(message);
            log.Warning(message);
        }

        var grace = request.IncompleteGracePeriod;
        foreach (var group in listings.GroupBy(l => l.Hub, StringComparer.Ordinal))
        {
            var complete = group.Where(b => b.IsComplete).ToList();

            // A grace period shorter than a backup of this hub takes lets retention race a running backup; the lease
            // protects it, but say so.
            var longest = complete.Select(b => b.Catalog!.CompletedUtc - b.Catalog.CreatedUtc).DefaultIfEmpty(TimeSpan.Zero).Max();
            if (grace < longest)
            {
                Warn($"Hub '{group.Key}': the incomplete-backup grace period ({Show(grace)}) is shorter than its longest completed backup ({Show(longest)}). " +
                     "Running backups are protected by their lease, but a backup whose host lost its lease would be removed while it runs; use a grace period longer than a backup takes.");
            }

            string? newestValid = await FindNewestValidAsync(store, complete, request.TrustedSigners, log, ct).ConfigureAwait(false);
            var plan = RetentionSafety.Apply(
                RetentionPlanner.Plan(complete.Select(b => new RetentionCandidate(b.BackupId, b.Created) { Tags = b.Catalog!.Labels }), request.Policy),
                request.Policy,
                newestValid);
            var byId = complete.ToDictionary(b => b.BackupId, StringComparer.Ordinal);
            foreach (var d in plan)
            {
                var b = byId[d.Candidate.Id];
                if (!d.Keep && b.ForeignKeys.Count > 0)
                {
                    items.Add(new RetentionItem { Backup = b, Action = RetentionAction.Keep, Reasons = [ForeignReason(b)] });
                    Warn($"{b.Hub}/{b.BackupId} expired under the policy but holds files HubDr did not write ({Sample(b.ForeignKeys)}); it was not deleted. Move those files away and run again.");
                }
                else if (!d.Keep && IsLocked(b, request.Now))
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
                var age = request.Now - (b.LastWrite > b.Created ? b.LastWrite : b.Created);
                if (b.ForeignKeys.Count > 0)
                {
                    items.Add(new RetentionItem { Backup = b, Action = RetentionAction.KeepIncomplete, Reasons = ["incomplete; " + ForeignReason(b)] });
                    Warn($"{b.Hub}/{b.BackupId} looks like an incomplete backup but holds files HubDr did not write ({Sample(b.ForeignKeys)}); it was not deleted.");
                }
                else if (b.IsRunning)
                {
                    items.Add(new RetentionItem { Backup = b, Action = RetentionAction.KeepIncomplete, Reasons = ["incomplete, " + b.Lease!.Description + ": never removed while its lease is live"] });
                }
                else if (age < grace)
                {
                    items.Add(new RetentionItem { Backup = b, Action = RetentionAction.KeepIncomplete, Reasons = [$"incomplete, within the {Show(grace)} grace period (may still be running)"] });
                }
                else if (IsLocked(b, request.Now))
                {
                    items.Add(new RetentionItem { Backup = b, Action = RetentionAction.Locked, Reasons = ["incomplete; " + LockReason(b)] });
                }
                else
                {
                    var why = b.CatalogProblem is null ? "incomplete: no catalog record" : "unreadable catalog record: " + b.CatalogProblem;
                    if (b.Lease is { } l)
                    {
                        why += "; " + l.Description;
                    }

                    items.Add(new RetentionItem { Backup = b, Action = RetentionAction.RemoveIncomplete, Reasons = [why] });
                }
            }

            // Leftover uploads in folders that stay (e.g. a complete backup whose re-run of a small PUT was killed).
            foreach (var item in items.Where(i => i.Backup.Hub == group.Key && !i.WillDelete && !i.Backup.IsRunning && i.Backup.ForeignKeys.Count == 0))
            {
                stale.AddRange(item.Backup.Pending.Where(p => request.Now - p.LastModified >= grace).Select(p => new StalePendingUpload(item.Backup, p)));
            }

            log.Verbose($"Hub '{group.Key}': {items.Count(i => i.Backup.Hub == group.Key && i.WillDelete)} of {group.Count()} backup(s) to remove; newest valid: {newestValid ?? "none found"}.");
        }

        items.Sort((a, b) =>
        {
            var c = string.CompareOrdinal(a.Backup.Hub, b.Backup.Hub);
            return c != 0 ? c : b.Backup.Created.CompareTo(a.Backup.Created);
        });
        return result;
    }

    /// <summary>
    /// Deletes the given backups: every catalog record first (batched), then the remaining objects (batched), then
    /// their pending uploads. An incomplete backup is looked at again first and left alone when it has completed or
    /// its lease is live by now. Objects refused by an object lock are reported as errors.
    /// </summary>
    public static async Task<RetentionDeleteResult> DeleteAsync(IBackupStore store, IReadOnlyList<BackupListing> backups, IOperationLog log, CancellationToken ct)
    {
        var outcome = new RetentionDeleteResult();
        var go = new List<BackupListing>();
        foreach (var b in backups)
        {
            if (!b.IsComplete)
            {
                var now = await CatalogService.GetAsync(store, b.Hub, b.BackupId, ct, includePending: true).ConfigureAwait(false);
                if (now is not null && (now.IsComplete || now.IsRunning || now.ForeignKeys.Count > 0))
                {
                    outcome.Skipped[Key(b)] = now.IsComplete ? "it completed after the plan was made" : now.IsRunning ? "a backup is running in it (live lease)" : "it holds files HubDr did not write";
                    continue;
                }
            }

            go.Add(b);
        }

        var result = outcome.Errors;
        foreach (var b in go)
        {
            result[Key(b)] = null;
        }

        var catalogKeys = go.SelectMany(b => b.Objects.Where(o => o.Key.EndsWith("/" + ObjectLayout.CatalogName, StringComparison.Ordinal)).Select(o => (b, o.Key))).ToList();
        await DeletePhaseAsync(store, catalogKeys, result, ct).ConfigureAwait(false);
        var rest = go.Where(b => result[Key(b)] is null)
            .SelectMany(b => b.Objects.Where(o => !o.Key.EndsWith("/" + ObjectLayout.CatalogName, StringComparison.Ordinal)).Select(o => (b, o.Key)))
            .ToList();
        await DeletePhaseAsync(store, rest, result, ct).ConfigureAwait(false);
        foreach (var b in go.Where(b => result[Key(b)] is null))
        {
            foreach (var p in b.Pending)
            {
                try
                {
                    await store.AbortPendingAsync(p, ct).ConfigureAwait(false);
                }
                catch (HubDrException e)
                {
                    result[Key(b)] ??= $"could not remove the {p.Kind} '{p.Key}': {e.Message}";
                }
            }
        }

        log.Verbose($"Deleted {result.Count(r => r.Value is null)} backup(s); {result.Count(r => r.Value is not null)} failed; {outcome.Skipped.Count} left alone.");
        return outcome;
    }

    /// <summary>Removes stale pending uploads (temp files, multipart uploads, uncommitted blobs). Returns per upload key an error or null.</summary>
    public static async Task<Dictionary<string, string?>> AbortPendingAsync(IBackupStore store, IReadOnlyList<StalePendingUpload> uploads, IOperationLog log, CancellationToken ct)
    {
        var result = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var u in uploads)
        {
            try
            {
                await store.AbortPendingAsync(u.Upload, ct).ConfigureAwait(false);
                result[u.Upload.Key + "#" + u.Upload.UploadId] = null;
                log.Verbose($"Removed the stale {u.Upload.Kind} {u.Upload.Key} (last written {u.Upload.LastModified:u}).");
            }
            catch (HubDrException e)
            {
                result[u.Upload.Key + "#" + u.Upload.UploadId] = e.Message;
            }
        }

        return result;
    }

    /// <summary>How an operator reads one pending upload in -WhatIf and warnings.</summary>
    public static string Describe(PendingUpload p) =>
        $"{p.Kind} {p.Key}" + (p.Kind == "multipart upload" ? $" (upload id {p.UploadId})" : "") + (p.Size > 0 ? $", {HubDr.Engine.IO.Units.Bytes(p.Size)}" : "") + $", last written {p.LastModified:u}";

    private static string ForeignReason(BackupListing b) => $"holds {b.ForeignKeys.Count} file(s) HubDr did not write ({Sample(b.ForeignKeys)}): never deleted";

    private static string Sample(IReadOnlyList<string> keys) => string.Join(", ", keys.Take(3)) + (keys.Count > 3 ? ", …" : "");

    private static string Show(TimeSpan t) => t.TotalHours >= 1 ? $"{t.TotalHours:0.#}h" : t.TotalMinutes >= 1 ? $"{t.TotalMinutes:0.#}min" : $"{t.TotalSeconds:0.#}s";

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
