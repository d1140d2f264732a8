using System.Management.Automation;
using HubDr.Cmdlets.Infrastructure;
using HubDr.Engine;
using HubDr.Engine.Backup;
using HubDr.Engine.Retention;
using HubDr.Engine.Stores;

namespace HubDr.Cmdlets;

/// <summary>
/// Remove-ExpiredHubBackup: applies a grandfather-father-son retention policy (restic "forget" semantics) per hub and
/// removes what it does not keep. Emits one decision per backup with its reasons; -WhatIf prints the whole plan.
/// Never removes the newest signature-valid backup or every backup of a hub; reports object-locked backups instead of
/// forcing them; clears incomplete backups (and their temp files / multipart uploads) older than a grace period, never
/// while their lease is live and never a folder holding files HubDr did not write. The policy is explicit: -Keep*
/// parameters, the settings file's Retention section, or -UseRunbookPolicy (daily within 14 days, weekly within 12
/// weeks, monthly within 12 months); with none of them: RetentionPolicyMissing. Refuses a store that is not HubDr's
/// (StoreNotInitialized). ConfirmImpact High: prompts unless -Force or -Confirm:$false.
/// </summary>
[Cmdlet(VerbsCommon.Remove, "ExpiredHubBackup", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = "Store")]
[OutputType(typeof(HubRetentionDecision))]
public sealed class RemoveExpiredHubBackupCommand : HubStoreCmdletBase
{
    private readonly List<(StoreSpec Spec, string Hub, string BackupId)> _piped = [];

    /// <summary>Backups from Get-HubBackup. The policy is evaluated over each hub's full history; only these are acted on.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = "Pipeline")]
    public HubBackup[] InputObject { get; set; } = [];

    /// <summary>The store (or the Store setting). Piped HubBackups carry their own store.</summary>
    // By property name ONLY in the "Id" set: PowerShell first tries to bind a piped object within the default set, and a
    // Store/Hub bound there would run the whole store's retention instead of acting on an object with a BackupId (an Import-Csv row) out of the "Id" set.
    [Parameter(Position = 0, ParameterSetName = "Id", ValueFromPipelineByPropertyName = true)]
    [Parameter(Position = 0, ParameterSetName = "Store")]
    [Parameter(Position = 0, ParameterSetName = "Pipeline")]
    [HubSetting("Store")]
    public string? Store { get; set; }

    /// <summary>Only this hub; default: every hub in the store, each with its own plan.</summary>
    [Parameter(ParameterSetName = "Id", ValueFromPipelineByPropertyName = true)]
    [Parameter(ParameterSetName = "Store")]
    [HubSetting("Hub")]
    [ArgumentCompleter(typeof(HubNameCompleter))]
    public string? Hub { get; set; }

    /// <summary>Only these backups are acted on (bound by property name, e.g. from Import-Csv); the policy still sees the hub's full history.</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = "Id")]
    [ArgumentCompleter(typeof(BackupIdCompleter))]
    public string BackupId { get; set; } = "";

    [Parameter] [HubSetting("Retention.KeepLast")] public int? KeepLast { get; set; }
    [Parameter] [HubSetting("Retention.KeepHourly")] public int? KeepHourly { get; set; }
    [Parameter] [HubSetting("Retention.KeepDaily")] public int? KeepDaily { get; set; }
    [Parameter] [HubSetting("Retention.KeepWeekly")] public int? KeepWeekly { get; set; }
    [Parameter] [HubSetting("Retention.KeepMonthly")] public int? KeepMonthly { get; set; }
    [Parameter] [HubSetting("Retention.KeepYearly")] public int? KeepYearly { get; set; }

    /// <summary>Keep every backup within this duration of the newest one, e.g. "2d", "1y2m", "14.00:00:00" or a [timespan].</summary>
    [Parameter] [HubSetting("Retention.KeepWithin")] public HubDuration? KeepWithin { get; set; }
    [Parameter] [HubSetting("Retention.KeepWithinHourly")] public HubDuration? KeepWithinHourly { get; set; }
    [Parameter] [HubSetting("Retention.KeepWithinDaily")] public HubDuration? KeepWithinDaily { get; set; }
    [Parameter] [HubSetting("Retention.KeepWithinWeekly")] public HubDuration? KeepWithinWeekly { get; set; }
    [Parameter] [HubSetting("Retention.KeepWithinMonthly")] public HubDuration? KeepWithinMonthly { get; set; }
    [Parameter] [HubSetting("Retention.KeepWithinYearly")] public HubDuration? KeepWithinYearly { get; set; }

    /// <summary>Backups carrying these labels are kept (comma-separated within one entry = all of them).</summary>
    [Parameter] [HubSetting("Retention.KeepLabel")] public string[]? KeepLabel { get; set; }

    /// <summary>Time zone (IANA or Windows id) in which days, weeks, months are delimited; default UTC.</summary>
    [Parameter] [HubSetting("Retention.TimeZone")] public string? TimeZone { get; set; }

    /// <summary>Incomplete backups younger than this are left alone (a backup may still be running). Default 1 day.</summary>
    [Parameter] [HubSetting("Retention.IncompleteGracePeriod")] public HubDuration? IncompleteGracePeriod { get; set; }

    /// <summary>Signer keys used to find the newest signature-valid backup (never removed).</summary>
    [Parameter] [HubSetting("Keys.TrustedSigners")] public string[]? TrustedSignerKeyPath { get; set; }

    /// <summary>Apply the runbook's policy (daily within 14 days, weekly within 12 weeks, monthly within 12 months).</summary>
    [Parameter] [HubSetting("Retention.UseRunbookPolicy")] public SwitchParameter UseRunbookPolicy { get; set; }

    /// <summary>Remove without asking for confirmation (scheduled jobs). -WhatIf still only prints the plan.</summary>
    [Parameter] public SwitchParameter Force { get; set; }

    protected override void ProcessRecord()
    {
        switch (ParameterSetName)
        {
            case "Pipeline":
                Guarded(() => _piped.AddRange(InputObject.Select(b => (b.StoreSpec as StoreSpec ?? BuildStoreSpec(b.Store), b.Hub, b.BackupId))));
                return;
            case "Id":
                Guarded(() => _piped.Add((BuildStoreSpec(Store), RequireHub(Hub), BackupId)));
                return;
            default:
                Guarded(() => Run(BuildStoreSpec(Store), Hub, null));
                return;
        }
    }

    protected override void EndProcessing()
    {
        // One plan per store and hub, over that hub's full history; each acts only on the piped backups. A failure of
        // one hub's plan is written as an error and the next hub is still processed.
        foreach (var byStore in _piped.GroupBy(b => b.Spec.Uri, StringComparer.Ordinal))
        {
            var spec = byStore.First().Spec;
            foreach (var hub in byStore.Select(b => b.Hub).Distinct(StringComparer.Ordinal))
            {
                Guarded(() => Run(spec, hub, byStore.Where(b => b.Hub == hub).Select(b => b.BackupId).ToHashSet(StringComparer.Ordinal)));
            }
        }
    }

    private void Run(StoreSpec spec, string? hub, HashSet<string>? only)
    {
        var policy = BuildPolicy();
        var trustedPaths = ResolvePaths(TrustedSignerKeyPath);
        var trusted = trustedPaths.Length > 0 ? KeyFiles.LoadPublic(trustedPaths, "trusted signer key") : null;
        var request = new RetentionRequest
        {
            Policy = policy,
            Hub = hub,
            TrustedSigners = trusted,
            IncompleteGracePeriod = IncompleteGracePeriod?.ToTimeSpan("-IncompleteGracePeriod") ?? TimeSpan.FromDays(1),
        };
        WriteVerbose($"Retention policy: {policy}.");
        var (plan, location) = RunEngine(async (log, ct) =>
        {
            await using var store = StoreFactory.Create(spec);
            await store.EnsureAvailableAsync(ct).ConfigureAwait(false);
            return (await RetentionService.PlanAsync(store, request, log, ct).ConfigureAwait(false), store.Location);
        });
        var items = plan.Items;
        var stalePending = plan.StalePending;
        if (only is not null)
        {
            items = items.Where(i => only.Contains(i.Backup.BackupId)).ToList();
            stalePending = stalePending.Where(p => only.Contains(p.Backup.BackupId)).ToList();
        }

        // A store written before the marker existed: add it (a write, so under ShouldProcess like everything here).
        if (plan.Store.Kind == StoreKind.Legacy && Approve(location, $"Add the HubDr store marker {ObjectLayout.MarkerName} (store written before the marker existed)"))
        {
            RunEngine(async (log, ct) =>
            {
                await using var store = StoreFactory.Create(spec);
                return await StoreMarker.EnsureAsync(store, "Remove-ExpiredHubBackup", plan.Store, ct).ConfigureAwait(false);
            });
        }

        var confirmed = new List<RetentionItem>();
        foreach (var item in items.Where(i => i.WillDelete))
        {
            if (Approve(DescribeRemoval(item), "Remove backup"))
            {
                confirmed.Add(item);
            }
        }

        var confirmedPending = new List<StalePendingUpload>();
        foreach (var p in stalePending)
        {
            if (Approve($"{RetentionService.Describe(p.Upload)} (backup {p.Backup.Hub}/{p.Backup.BackupId}, never completed)", "Remove stale upload"))
            {
                confirmedPending.Add(p);
            }
        }

        Dictionary<string, string?> outcome = [];
        Dictionary<string, string> skipped = [];
        if (confirmed.Count > 0 || confirmedPending.Count > 0)
        {
            (outcome, skipped) = RunEngine(async (log, ct) =>
            {
                await using var store = StoreFactory.Create(spec);
                var deleted = await RetentionService.DeleteAsync(store, confirmed.Select(c => c.Backup).ToList(), log, ct).ConfigureAwait(false);
                var pending = await RetentionService.AbortPendingAsync(store, confirmedPending, log, ct).ConfigureAwait(false);
                foreach (var (key, err) in pending.Where(p => p.Value is not null))
                {
                    log.Warning($"Could not remove the stale upload {key}: {err}");
                }

                return (deleted.Errors, deleted.Skipped);
            });
        }

        var failedCount = outcome.Count(o => o.Value is not null);
        Observe("retention", hub ?? "*", null, failedCount == 0, TimeSpan.Zero, null,
            failedCount == 0 ? null : new HubDrException("RetentionDeleteFailed", HubErrorCategory.WriteError, $"{failedCount} backup(s) could not be fully removed."), spec,
            new Dictionary<string, string> { ["removed"] = outcome.Count(o => o.Value is null).ToString(System.Globalization.CultureInfo.InvariantCulture), ["policy"] = policy.ToString() });
        foreach (var item in items)
        {
            var key = item.Backup.Hub + "/" + item.Backup.BackupId;
            string action;
            string? error = null;
            var reasons = item.Reasons.ToArray();
            if (skipped.TryGetValue(key, out var why))
            {
                action = "Keep";
                reasons = [.. reasons, "left alone: " + why];
            }
            else if (outcome.TryGetValue(key, out var err))
            {
                action = err is null ? "Removed" : "Failed";
                error = err;
                if (err is not null)
                {
                    WriteError(new ErrorRecord(new HubDrException("RetentionDeleteFailed", HubErrorCategory.WriteError,
                        $"Could not fully remove {key}: {err}. Its catalog record is gone, so it is no longer listed; the next run finishes the job."),
                        "RetentionDeleteFailed", ErrorCategory.WriteError, key));
                }
            }
            else
            {
                action = item.Action switch
                {
                    RetentionAction.Keep or RetentionAction.KeepIncomplete => "Keep",
                    RetentionAction.Locked => "Locked",
                    _ => "Remove",
                };
            }

            WriteObject(new HubRetentionDecision
            {
                Hub = item.Backup.Hub,
                BackupId = item.Backup.BackupId,
                Created = Mapper.Local(item.Backup.Created),
                Action = action,
                Reasons = new(reasons),
                Status = item.Backup.IsComplete ? "Complete" : item.Backup.IsRunning ? "Running" : "Incomplete",
                StoredSize = item.Backup.StoredBytes,
                LockedUntil = Mapper.Local(item.Backup.LockedUntil),
                Error = error,
                Store = location,
            });
        }
    }

    private RetentionPolicy BuildPolicy()
    {
        // The parameters already hold the Retention.* settings where not given (HubStoreCmdletBase.ApplySettings).
        static RetentionDuration? D(HubDuration? d, string name) => d?.ToRetentionDuration("-" + name);
        var tz = TimeZone;
        var policy = new RetentionPolicy
        {
            KeepLast = KeepLast,
            KeepHourly = KeepHourly,
            KeepDaily = KeepDaily,
            KeepWeekly = KeepWeekly,
            KeepMonthly = KeepMonthly,
            KeepYearly = KeepYearly,
            KeepWithin = D(KeepWithin, nameof(KeepWithin)),
            KeepWithinHourly = D(KeepWithinHourly, nameof(KeepWithinHourly)),
            KeepWithinDaily = D(KeepWithinDaily, nameof(KeepWithinDaily)),
            KeepWithinWeekly = D(KeepWithinWeekly, nameof(KeepWithinWeekly)),
            KeepWithinMonthly = D(KeepWithinMonthly, nameof(KeepWithinMonthly)),
            KeepWithinYearly = D(KeepWithinYearly, nameof(KeepWithinYearly)),
            KeepTags = KeepLabel ?? [],
            TimeZone = tz is null ? TimeZoneInfo.Utc : FindZone(tz),
        };

        var keepParameters = MyInvocation.BoundParameters.Keys.Where(k => k.StartsWith("Keep", StringComparison.Ordinal)).ToList();
        // Keep* properties hold the parameters, else the Retention.Keep* settings (merged by ApplySettings).
        var anyKeep = new object?[] { KeepLast, KeepHourly, KeepDaily, KeepWeekly, KeepMonthly, KeepYearly, KeepWithin, KeepWithinHourly, KeepWithinDaily,
            KeepWithinWeekly, KeepWithinMonthly, KeepWithinYearly, KeepLabel }.Any(v => v is not null);
        var runbookGiven = MyInvocation.BoundParameters.ContainsKey(nameof(UseRunbookPolicy)) && UseRunbookPolicy.IsPresent;
        if (runbookGiven && keepParameters.Count > 0)
        {
            throw new HubDrException("RetentionPolicyConflict", HubErrorCategory.InvalidArgument,
                $"-UseRunbookPolicy and -{string.Join(", -", keepParameters)} were both given. Use either the runbook's policy or your own -Keep* rules.");
        }

        // -UseRunbookPolicy, or Retention.UseRunbookPolicy in the settings when no Keep* rule is given anywhere.
        if (runbookGiven || (!anyKeep && UseRunbookPolicy.IsPresent))
        {
            var d = RetentionPolicy.RunbookDefault;
            return new RetentionPolicy
            {
                KeepWithinDaily = d.KeepWithinDaily,
                KeepWithinWeekly = d.KeepWithinWeekly,
                KeepWithinMonthly = d.KeepWithinMonthly,
                TimeZone = policy.TimeZone,
            };
        }

        if (!anyKeep)
        {
            throw new HubDrException("RetentionPolicyMissing", HubErrorCategory.InvalidArgument,
                "No retention policy was given, so nothing was removed. Give -Keep* rules (e.g. -KeepDaily 14 -KeepWeekly 12 -KeepMonthly 12), " +
                "a Retention section with Keep* keys in the settings file, or -UseRunbookPolicy for the runbook's policy (daily within 14 days, weekly within 12 weeks, monthly within 12 months).");
        }

        return policy;
    }

    /// <summary>ShouldProcess, except that -Force (without -Confirm, without -WhatIf) goes ahead without asking.</summary>
    private bool Approve(string target, string action)
    {
        var whatIf = (MyInvocation.BoundParameters.TryGetValue("WhatIf", out var w) && LanguagePrimitives.IsTrue(w)) || LanguagePrimitives.IsTrue(GetVariableValue("WhatIfPreference"));
        if (Force.IsPresent && !whatIf && !MyInvocation.BoundParameters.ContainsKey("Confirm"))
        {
            WriteVerbose($"{action}: {target}");
            return true;
        }

        return ShouldProcess(target, action);
    }

    /// <summary>Exactly what removing one backup does: its objects and its uploads that never completed.</summary>
    private static string DescribeRemoval(RetentionItem item)
    {
        var b = item.Backup;
        var folder = ObjectLayout.Folder(b.Hub, b.BackupId);
        var parts = new List<string>();
        if (b.Objects.Count > 0)
        {
            parts.Add("deletes " + string.Join(", ", b.Objects.Select(o => o.Key.StartsWith(folder, StringComparison.Ordinal) ? o.Key[folder.Length..] : o.Key)));
        }

        if (b.Pending.Count > 0)
        {
            parts.Add("removes " + string.Join("; ", b.Pending.Select(RetentionService.Describe)));
        }

        return $"{b.Hub}/{b.BackupId} ({b.Created:u}, {string.Join("; ", item.Reasons)}): {string.Join("; ", parts)}";
    }

    private static TimeZoneInfo FindZone(string id)
    {
        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(id);
        }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            throw new HubDrException("TimeZoneNotFound", HubErrorCategory.InvalidArgument, $"Unknown time zone '{id}'. Use an IANA id such as Europe/Berlin or a Windows id.", e) { Target = id };
        }
    }
}
