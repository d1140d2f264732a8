using System.Diagnostics;
using System.Globalization;
using System.Text;
using HubDr.Engine.Archive;
using HubDr.Engine.Backup;
using HubDr.Engine.Compression;
using HubDr.Engine.Crypto;
using HubDr.Engine.IO;
using HubDr.Engine.LogArchive;
using HubDr.Engine.Stores;

namespace HubDr.Engine.Databases.Postgres.Pitr;

public sealed class PitrRestoreRequest
{
    public required StoreSpec Store { get; init; }
    public required string Hub { get; init; }

    /// <summary>Only catalogs, archives and WAL signed by these keys are used.</summary>
    public required OpenPgpKeySet TrustedSigners { get; init; }

    public required OpenPgpKeySet SecretKeys { get; init; }
    public required Func<string, char[]?> PassphraseFor { get; init; }

    /// <summary>An empty (or missing) folder that becomes the restored cluster's data directory.</summary>
    public required string DataDirectory { get; init; }

    /// <summary>Recover to this moment (UTC); null = the newest archived WAL ("latest").</summary>
    public DateTimeOffset? TargetTime { get; init; }

    /// <summary>Timeline to follow; null = the newest in the archive (recovery_target_timeline = 'latest').</summary>
    public uint? TargetTimeline { get; init; }

    /// <summary>Use this base backup instead of the newest one before the target.</summary>
    public string? BackupId { get; init; }

    /// <summary>Empty a non-empty data directory first.</summary>
    public bool Force { get; init; }

    /// <summary>Concurrent WAL fetches ahead of replay (2–4).</summary>
    public int FetchConcurrency { get; init; } = 3;

    /// <summary>Segments fetched ahead of the one PostgreSQL replays (bounds the spool's disk use).</summary>
    public int Prefetch { get; init; } = 8;

    /// <summary>Start the cluster (pg_ctl as <see cref="OsUser"/>) and wait until recovery promoted it.</summary>
    public bool StartServer { get; init; }

    public int? Port { get; init; }

    /// <summary>Folder with pg_ctl and psql of the backup's major version (e.g. /usr/lib/postgresql/15/bin); null = PATH.</summary>
    public string? ToolPath { get; init; }

    /// <summary>Unix socket folder for the started cluster; default: the data directory.</summary>
    public string? SocketDirectory { get; init; }

    /// <summary>Owner of the restored files and the server process when HubDr runs as root.</summary>
    public string OsUser { get; init; } = "postgres";

    public TimeSpan RecoveryTimeout { get; init; } = TimeSpan.FromHours(2);

    /// <summary>Keep the source's archive_mode/archive_command (default: archive_mode = off, so a restored copy never runs
    /// the source's archive_command against the production archive).</summary>
    public bool KeepArchiveMode { get; init; }
}

/// <summary>What a restore will use (-WhatIf): the base backup, the WAL range and the bytes to fetch.</summary>
public sealed class PitrPlan
{
    public required string Hub { get; init; }
    public required string BackupId { get; init; }
    public required CatalogRecord Backup { get; init; }
    public required BaseBackupPitrInfo BackupPitr { get; init; }

    /// <summary>"latest" or the UTC time.</summary>
    public required string Target { get; init; }

    public DateTimeOffset? TargetTime { get; init; }

    /// <summary>Timeline recovery follows; <see cref="TargetTimelineSetting"/> is what recovery_target_timeline gets.</summary>
    public required uint TargetTimeline { get; init; }

    public required string TargetTimelineSetting { get; init; }

    /// <summary>Timelines replayed, oldest first, with the LSN range on each.</summary>
    public required IReadOnlyList<string> TimelinePath { get; init; }

    /// <summary>WAL objects the target needs at least (through the first one archived after the target).</summary>
    public required IReadOnlyList<LogIndexItem> RequiredWal { get; init; }

    /// <summary>Every WAL object available along the path (what the restore may fetch if replay goes on).</summary>
    public required IReadOnlyList<LogIndexItem> AvailableWal { get; init; }

    public required IReadOnlyList<LogIndexItem> HistoryFiles { get; init; }

    public string? WalFirst => RequiredWal.FirstOrDefault()?.Entry.Name;
    public string? WalLast => RequiredWal.LastOrDefault()?.Entry.Name;
    public long WalBytes => RequiredWal.Sum(w => w.Entry.Size);
    public long BaseBackupBytes => Backup.ArchiveSize;
    public long TotalBytes => WalBytes + BaseBackupBytes;

    /// <summary>When the newest required WAL object was archived; recovery cannot go past it.</summary>
    public DateTimeOffset? ArchiveEndUtc { get; init; }

    public IReadOnlyList<string> Warnings { get; init; } = [];

    public override string ToString() =>
        $"base backup {BackupId} (stop {BackupPitr.StopUtc:u}) + WAL {WalFirst} .. {WalLast} ({RequiredWal.Count} objects, {Units.Bytes(WalBytes)}) to {Target} on timeline {TargetTimeline}";
}

public sealed class PitrRestoreOutcome
{
    public required PitrPlan Plan { get; init; }
    public required string DataDirectory { get; init; }
    public required string DecryptedWithKey { get; init; }
    public bool ServerStarted { get; init; }
    public int? Port { get; init; }

    /// <summary>Commit time of the last transaction replayed (pg_last_xact_replay_timestamp / the server log).</summary>
    public DateTimeOffset? RecoveredToUtc { get; init; }

    /// <summary>WAL position after recovery (pg_current_wal_lsn) and the new timeline the promoted cluster writes on.</summary>
    public string? RecoveredLsn { get; init; }

    public uint? NewTimeline { get; init; }

    /// <summary>True when no commit after the target exists in the archive, so recovery ran to the end of the WAL
    /// (which then is the state at the target).</summary>
    public bool ReplayedToArchiveEnd { get; init; }

    public int WalFilesFetched { get; init; }
    public long WalBytesFetched { get; init; }
    public IReadOnlyList<string> Warnings { get; init; } = [];
    public TimeSpan ExtractDuration { get; init; }
    public TimeSpan RecoveryDuration { get; init; }
    public TimeSpan Duration { get; init; }
}

/// <summary>
/// Point-in-time restore of a PostgreSQL cluster: pick the newest base backup that finished before the target, verify
/// (trusted signer, before any decryption) and extract it into an empty data directory (safe tar extraction, 0700, owned
/// by the postgres OS user when running as root), write the recovery settings and restore_command script, then fetch —
/// verified, decrypted, ahead of replay, 2–4 at a time — exactly the WAL replay asks for; optionally start the cluster,
/// wait for promotion and report the time and LSN actually recovered to. See docs/pitr.md.
/// </summary>
public static class PitrRestoreService
{
    public const string RecoveryBlockStart = "# --- HubDr point-in-time recovery (written by HubDr; remove after recovery) ---";
    public const string RecoveryBlockEnd = "# --- end of HubDr point-in-time recovery ---";

    /// <summary>The plan only (-WhatIf): typed errors for every target that cannot be reached.</summary>
    public static async Task<PitrPlan> PlanAsync(PitrRestoreRequest request, IOperationLog log, CancellationToken ct)
    {
        var hub = ObjectLayout.ValidateHub(request.Hub);
        await using var store = StoreFactory.Create(request.Store);
        await store.EnsureAvailableAsync(ct).ConfigureAwait(false);
        return await PlanAsync(store, hub, request, log, ct).ConfigureAwait(false);
    }

    /// <summary>Verified catalogs of the hub's base backups, oldest first (unverifiable ones are skipped with a warning).</summary>
    public static async Task<List<(CatalogRecord Record, BaseBackupPitrInfo Pitr)>> ListBaseBackupsAsync(IBackupStore store, string hub, OpenPgpKeySet trusted,
        IOperationLog log, CancellationToken ct)
    {
        var result = new List<(CatalogRecord, BaseBackupPitrInfo)>();
        foreach (var b in await CatalogService.ListAsync(store, hub, ct).ConfigureAwait(false))
        {
            if (!b.IsComplete || b.Catalog!.Engine != "postgres")
            {
                continue;
            }

            var folder = ObjectLayout.Folder(hub, b.BackupId);
            var bytes = await store.TryGetAsync(folder + ObjectLayout.CatalogName, ct).ConfigureAwait(false);
            if (bytes is null)
            {
                continue;
            }

            (CatalogRecord Record, BaseBackupPitrInfo? Pitr) parsed;
            try
            {
                parsed = BaseBackupCatalog.Parse(bytes, $"catalog of {b.BackupId}");
            }
            catch (HubDrException e)
            {
                log.Warning($"Backup {b.BackupId}: {e.Message}");
                continue;
            }

            if (parsed.Pitr is null)
            {
                continue; // a logical backup
            }

            var sig = await store.TryGetAsync(folder + ObjectLayout.CatalogSignatureName, ct).ConfigureAwait(false);
            var check = OpenPgpSignatures.Verify(new MemoryStream(bytes, writable: false), sig, trusted);
            if (!check.IsValid || parsed.Record.BackupId != b.BackupId || parsed.Record.Hub != hub)
            {
                log.Warning($"Base backup {b.BackupId} is not used: its catalog record is not validly signed by a trusted key for this folder ({check.Reason}).");
                continue;
            }

            result.Add((parsed.Record, parsed.Pitr));
        }

        return result.OrderBy(r => r.Item2.StopUtc).ToList();
    }

    private static async Task<PitrPlan> PlanAsync(IBackupStore store, string hub, PitrRestoreRequest request, IOperationLog log, CancellationToken ct)
    {
        var now = DateTimeOffset.UtcNow;
        if (request.TargetTime is { } tt && tt > now)
        {
            throw new HubDrException("PitrTargetInFuture", HubErrorCategory.InvalidArgument,
                $"The restore target {tt.UtcDateTime:yyyy-MM-dd HH:mm:ss.fff} UTC is in the future (now {now.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC). " +
                "Give a past time, or restore to the latest archived state.") { Target = tt };
        }

        var backups = await ListBaseBackupsAsync(store, hub, request.TrustedSigners, log, ct).ConfigureAwait(false);
        if (backups.Count == 0)
        {
            throw new HubDrException("PitrNoBaseBackup", HubErrorCategory.ObjectNotFound,
                $"Hub '{hub}' has no base backup signed by a trusted key in {store.Location}. A point-in-time restore starts from a base backup " +
                "(New-HubBackup -Kind Base) taken while the WAL archiver runs.") { Target = hub };
        }

        (CatalogRecord Record, BaseBackupPitrInfo Pitr) chosen;
        if (request.BackupId is { } id)
        {
            chosen = backups.FirstOrDefault(b => b.Record.BackupId == id);
            if (chosen.Record is null)
            {
                throw new HubDrException("PitrNoBaseBackup", HubErrorCategory.ObjectNotFound, $"Base backup '{id}' of hub '{hub}' does not exist or is not validly signed.") { Target = id };
            }

            if (request.TargetTime is { } t0 && chosen.Pitr.StopUtc >= t0)
            {
                throw TargetBeforeBackup(t0, chosen.Pitr, id);
            }
        }
        else if (request.TargetTime is { } t)
        {
            var before = backups.Where(b => b.Pitr.StopUtc < t).ToList();
            if (before.Count == 0)
            {
                throw TargetBeforeBackup(t, backups[0].Pitr, backups[0].Record.BackupId);
            }

            chosen = before[^1];
        }
        else
        {
            chosen = backups[^1];
        }

        var pitr = chosen.Pitr;
        var layout = new WalStreamLayout(pitr.SegmentSize);
        var snapshot = await LogIndex.LoadAsync(store, hub, layout, request.TrustedSigners, ct).ConfigureAwait(false);
        foreach (var p in snapshot.Problems)
        {
            log.Warning($"WAL index: {p}");
        }

        if (snapshot.SystemIds.Any(s => s != pitr.SystemId))
        {
            log.Warning($"The WAL index names system identifier(s) {string.Join(", ", snapshot.SystemIds)}; the base backup is system {pitr.SystemId}. Only matching WAL can be replayed.");
        }

        // The timeline to follow: the given one, or the newest the archive knows.
        var timelines = snapshot.Lines.Select(l => Wal.TryParseTimeline(l, out var x) ? x : 0).Where(x => x > 0).ToList();
        timelines.AddRange(snapshot.HistoryItems.Select(h => Wal.TryParseHistoryFileName(h.Entry.Name, out var x) ? x : 0).Where(x => x > 0));
        var targetTli = request.TargetTimeline ?? (timelines.Count == 0 ? pitr.Timeline : Math.Max(pitr.Timeline, timelines.Max()));
        var history = TimelineHistoryFor(snapshot, targetTli);
        var path = history.PathFrom(pitr.Timeline, Wal.ParseLsn(pitr.StartLsn));
        var ranges = path.Select((p, i) => new LogRange(Wal.TimelineName(p.Timeline), i == 0 ? Wal.SegmentStart(p.From, pitr.SegmentSize) : p.From, p.To)).ToList();
        var listing = await LogContinuity.ListObjectsAsync(store, hub, layout, ct).ConfigureAwait(false);
        var report = LogContinuity.Check(snapshot, listing, ranges);

        // Everything up to the first gap is usable, in replay order.
        var stop = Wal.ParseLsn(pitr.StopLsn);
        var firstGap = report.Gaps.FirstOrDefault(); // gaps come in replay order; the last range is open-ended
        var usable = report.Objects.Where(o => firstGap is null || !Beyond(o, firstGap, ranges)).ToList();
        var covered = Coverage(usable, ranges);
        if (covered < stop || usable.Count == 0)
        {
            throw new HubDrException("PitrWalGap", HubErrorCategory.ObjectNotFound,
                $"The WAL base backup {chosen.Record.BackupId} needs to become consistent ({pitr.WalFirst} .. {pitr.WalLast}, up to {pitr.StopLsn}) is not all in the " +
                $"archive: {(firstGap is null ? "no WAL archived" : $"missing {firstGap}")}. Choose another base backup (-BackupId) or check the archiver.")
            { Target = firstGap?.MissingNames.FirstOrDefault() };
        }

        List<LogIndexItem> required;
        var warnings = new List<string>();
        if (request.TargetTime is { } target)
        {
            // A segment's archive time bounds every commit inside it: replay needs everything up to the first object archived
            // after the target (it holds the first commit past the target, if any was made before it was archived).
            var idx = usable.FindIndex(o => o.Entry.ArchivedUtc >= target);
            var consistent = usable.FindIndex(o => o.Ref.End >= stop);
            if (idx >= 0)
            {
                idx = Math.Max(idx, consistent); // replay always goes at least to the backup's consistency point
            }
            else
            {
                var newest = usable.Max(o => o.Entry.ArchivedUtc);
                var gapNote = firstGap is null ? "" : $" (WAL after {firstGap.FromText} is missing: {firstGap})";
                throw new HubDrException(firstGap is null ? "PitrTargetBeyondArchive" : "PitrWalGap", HubErrorCategory.ObjectNotFound,
                    $"The restore target {target.UtcDateTime:yyyy-MM-dd HH:mm:ss.fff} UTC is beyond the archived WAL of hub '{hub}': the newest usable WAL was " +
                    $"archived at {newest.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC{gapNote}. Restore to an earlier time, or to the latest state, or wait for the archiver.")
                { Target = firstGap?.MissingNames.FirstOrDefault() };
            }

            required = usable.Take(idx + 1).ToList();
            if (firstGap is not null)
            {
                warnings.Add($"WAL after the target has a gap ({firstGap}); replay stops there if it gets that far.");
            }
        }
        else
        {
            required = usable;
            if (firstGap is not null)
            {
                throw new HubDrException("PitrWalGap", HubErrorCategory.ObjectNotFound,
                    $"The WAL archive of hub '{hub}' has a gap: {firstGap}. A restore to the latest state would silently stop at {firstGap.FromText}; " +
                    $"restore to a time before {usable.Last().Entry.ArchivedUtc.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC instead, or find the missing objects.")
                { Target = firstGap.MissingNames.FirstOrDefault() };
            }
        }

        var timelinePath = path.Select(p => $"timeline {p.Timeline}: {Wal.FormatLsn(p.From)} .. {(p.To is { } to ? Wal.FormatLsn(to) : "end")}").ToList();
        return new PitrPlan
        {
            Hub = hub,
            BackupId = chosen.Record.BackupId,
            Backup = chosen.Record,
            BackupPitr = pitr,
            Target = request.TargetTime is { } tg ? tg.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture) : "latest",
            TargetTime = request.TargetTime,
            TargetTimeline = targetTli,
            TargetTimelineSetting = request.TargetTimeline is { } explicitTli ? explicitTli.ToString(CultureInfo.InvariantCulture) : "latest",
            TimelinePath = timelinePath,
            RequiredWal = required,
            AvailableWal = usable,
            HistoryFiles = snapshot.HistoryItems.OrderBy(h => h.Entry.Name, StringComparer.Ordinal).ToList(),
            ArchiveEndUtc = required.Max(r => r.Entry.ArchivedUtc),
            Warnings = warnings,
        };
    }

    private static HubDrException TargetBeforeBackup(DateTimeOffset target, BaseBackupPitrInfo oldest, string id) =>
        new("PitrTargetBeforeBackup", HubErrorCategory.InvalidArgument,
            $"The restore target {target.UtcDateTime:yyyy-MM-dd HH:mm:ss.fff} UTC is before the end of the oldest usable base backup ({id}, finished " +
            $"{oldest.StopUtc.UtcDateTime:yyyy-MM-dd HH:mm:ss.fff} UTC). A point-in-time restore can only reach moments after a base backup finished; " +
            "restore a logical backup for older states.") { Target = target };

    private static bool Beyond(LogIndexItem o, LogGap gap, IReadOnlyList<LogRange> ranges)
    {
        var gapRange = ranges.ToList().FindIndex(r => r.Line == gap.Line);
        var objRange = ranges.ToList().FindIndex(r => r.Line == o.Ref.Line);
        return objRange > gapRange || (objRange == gapRange && o.Ref.Start >= gap.To);
    }

    /// <summary>Highest LSN covered without a gap from the first range's start.</summary>
    private static ulong Coverage(IReadOnlyList<LogIndexItem> usable, IReadOnlyList<LogRange> ranges) =>
        usable.Count == 0 ? ranges[0].From : usable.Max(o => o.Ref.End);

    private static TimelineHistory TimelineHistoryFor(LogIndexSnapshot snapshot, uint timeline)
    {
        if (timeline == 1)
        {
            return TimelineHistory.Root;
        }

        var entry = snapshot.HistoryItems.FirstOrDefault(h => h.Entry.Name == Wal.HistoryFileName(timeline));
        if (entry?.Entry.Branches is null)
        {
            throw new HubDrException("PitrTimelineNotReachable", HubErrorCategory.ObjectNotFound,
                $"Timeline {timeline} has no history file in the archive, so HubDr cannot tell which WAL leads to it. Restore to an archived timeline.") { Target = timeline };
        }

        return TimelineHistory.FromBranches(timeline, entry.Entry.Branches);
    }

    public static async Task<PitrRestoreOutcome> RestoreAsync(PitrRestoreRequest request, IOperationLog log, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        var hub = ObjectLayout.ValidateHub(request.Hub);
        var dataDir = Path.GetFullPath(request.DataDirectory);
        var owner = PosixOwner.ForRestore(request.OsUser);

        // 1. Refuse before anything is downloaded.
        PrepareDataDirectory(dataDir, request.Force);
        await using var store = StoreFactory.Create(request.Store);
        await store.EnsureAvailableAsync(ct).ConfigureAwait(false);
        var plan = await PlanAsync(store, hub, request, log, ct).ConfigureAwait(false);
        log.Verbose($"Plan: {plan}.");
        foreach (var w in plan.Warnings)
        {
            log.Warning(w);
        }

        string binDir = "";
        if (request.StartServer)
        {
            binDir = Path.GetDirectoryName(PitrConnection.FindTool(request.ToolPath, "pg_ctl"))!;
            PitrConnection.FindTool(binDir, "psql");
        }

        // 2. Verify (trusted signer, no decryption key needed), then extract.
        var verification = await VerifyService.VerifyAsync(store, hub, plan.BackupId, request.TrustedSigners, log, ct).ConfigureAwait(false);
        if (!verification.IsValid)
        {
            throw new HubDrException("BackupSignatureInvalid", HubErrorCategory.SecurityError,
                $"Base backup {hub}/{plan.BackupId} failed verification ({verification.Status}): {verification.Reason} Nothing was restored.") { Target = plan.BackupId };
        }

        var extractClock = Stopwatch.StartNew();
        string decryptedWith;
        try
        {
            decryptedWith = await ExtractAsync(store, hub, plan, verification, request, dataDir, owner, log, ct).ConfigureAwait(false);
        }
        catch
        {
            TryEmpty(dataDir);
            throw;
        }

        var extractDuration = extractClock.Elapsed;

        // 3. Recovery settings, the restore_command script and the spool.
        var spool = Path.Combine(dataDir, WalSpoolFeeder.SpoolFolderName);
        Directory.CreateDirectory(spool);
        Directory.CreateDirectory(Path.Combine(dataDir, "log"));
        var script = Path.Combine(dataDir, WalSpoolFeeder.ScriptName);
        await File.WriteAllTextAsync(script, WalSpoolFeeder.Script(spool), new UTF8Encoding(false), ct).ConfigureAwait(false);
        WriteRecoveryConfig(dataDir, plan, script, withTarget: true, request.KeepArchiveMode);
        await File.WriteAllBytesAsync(Path.Combine(dataDir, "recovery.signal"), [], ct).ConfigureAwait(false);
        foreach (var p in new[] { spool, Path.Combine(dataDir, "log"), script, Path.Combine(dataDir, "recovery.signal"), Path.Combine(dataDir, "postgresql.auto.conf") })
        {
            Restrict(p);
            owner?.Give(p);
        }

        var fetcher = new LogFetcher(store, hub, new WalStreamLayout(plan.BackupPitr.SegmentSize), request.TrustedSigners, request.SecretKeys, request.PassphraseFor,
            plan.BackupPitr.SystemId);
        if (!request.StartServer)
        {
            // Nobody serves restore_command later: fetch what the target needs now.
            var prepFeeder = new WalSpoolFeeder(fetcher, spool, plan.RequiredWal, plan.HistoryFiles, Math.Clamp(request.FetchConcurrency, 2, 4), request.Prefetch,
                owner is null ? null : owner.Give, log);
            await prepFeeder.FetchAllAsync(ct).ConfigureAwait(false);
            prepFeeder.Finish(abort: false);
            log.Verbose($"Data directory '{dataDir}' is ready for recovery: {prepFeeder.FilesFetched} WAL files spooled. Start PostgreSQL on it to recover to {plan.Target}.");
            return new PitrRestoreOutcome
            {
                Plan = plan,
                DataDirectory = dataDir,
                DecryptedWithKey = decryptedWith,
                WalFilesFetched = prepFeeder.FilesFetched,
                WalBytesFetched = prepFeeder.BytesFetched,
                Warnings = plan.Warnings,
                ExtractDuration = extractDuration,
                Duration = total.Elapsed,
            };
        }

        // 4. Start the cluster and feed its recovery until it promotes.
        var feeder = new WalSpoolFeeder(fetcher, spool, plan.AvailableWal, plan.HistoryFiles, Math.Clamp(request.FetchConcurrency, 2, 4), request.Prefetch,
            owner is null ? null : owner.Give, log);
        var port = request.Port ?? FreePort();
        var socketDir = request.SocketDirectory ?? dataDir;
        var server = new PgServerControl(binDir, dataDir, port, socketDir, owner);
        using var feedCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var feeding = Task.Run(() => feeder.ServeAsync(feedCts.Token), CancellationToken.None);
        var recoveryClock = Stopwatch.StartNew();
        var toEnd = false;
        var warnings = new List<string>(plan.Warnings);
        try
        {
            await server.StartAsync(ct).ConfigureAwait(false);
            var result = await WaitForPromotionAsync(server, feeder, request.RecoveryTimeout, log, ct).ConfigureAwait(false);
            if (result == RecoveryResult.EndedBeforeTarget && plan.TargetTime is not null)
            {
                // Only the true end of the archive means "no commit after the target": PostgreSQL must have been given the
                // newest archived object and then have asked for what follows it. Recovery that stopped earlier (WAL it could
                // not use) must not be promoted as if it had reached the target.
                var last = plan.AvailableWal[^1].Entry.Name;
                if (!feeder.Delivered(last) || feeder.FailedNames.Count > 0 || feeder.Missing.Count == 0)
                {
                    throw new HubDrException("PitrRecoveryFailed", HubErrorCategory.InvalidOperation,
                        $"PostgreSQL ended recovery before the target although more archived WAL was available (the newest, {last}, was " +
                        $"{(feeder.Delivered(last) ? "fetched" : "never asked for")}). Nothing was promoted. Server log ({server.LogFile}):\n{PgServerControl.Tail(server.Log)}")
                    { Target = server.LogFile };
                }

                // No commit after the target exists in the archive: replaying to its end is the state at the target.
                log.Verbose("No transaction after the target was archived; replaying to the end of the archived WAL (the state at the target).");
                toEnd = true;
                WriteRecoveryConfig(dataDir, plan, script, withTarget: false, request.KeepArchiveMode);
                await server.StartAsync(ct).ConfigureAwait(false);
                result = await WaitForPromotionAsync(server, feeder, request.RecoveryTimeout, log, ct).ConfigureAwait(false);
            }

            if (result != RecoveryResult.Promoted)
            {
                throw RecoveryFailed(server, feeder, result);
            }
        }
        catch
        {
            feeder.Finish(abort: true);
            feedCts.Cancel();
            await feeding.ConfigureAwait(false);
            try
            {
                await server.StopAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                log.Warning($"Could not stop the restored cluster: {e.Message}");
            }

            throw;
        }

        feeder.Finish(abort: false);
        feedCts.Cancel();
        await feeding.ConfigureAwait(false);
        if (feeder.FailedNames.Count > 0)
        {
            warnings.Add($"Some WAL past the recovery point could not be fetched and was not needed: {string.Join(", ", feeder.FailedNames)} ({feeder.Failure?.Message}).");
        }

        // 5. What recovery actually reached.
        var row = (await server.QueryAsync(
            "SELECT coalesce(to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '') || '|' || pg_current_wal_lsn() || '|' || pg_walfile_name(pg_current_wal_lsn())",
            ct).ConfigureAwait(false)).Split('|');
        DateTimeOffset? recoveredTo = row[0].Length > 0 ? DateTimeOffset.Parse(row[0], CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal) : LastCompletedTransaction(server.Log);
        var newTli = uint.Parse(row[2][..8], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
        TryDeleteDirectory(spool);
        log.Verbose($"Recovered to {recoveredTo?.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture) ?? "(no transaction replayed)"} UTC, " +
            $"LSN {row[1]}; the cluster now runs on timeline {newTli}, port {port}.");
        return new PitrRestoreOutcome
        {
            Plan = plan,
            DataDirectory = dataDir,
            DecryptedWithKey = decryptedWith,
            ServerStarted = true,
            Port = port,
            RecoveredToUtc = recoveredTo,
            RecoveredLsn = row[1],
            NewTimeline = newTli,
            ReplayedToArchiveEnd = toEnd,
            WalFilesFetched = feeder.FilesFetched,
            WalBytesFetched = feeder.BytesFetched,
            Warnings = warnings,
            ExtractDuration = extractDuration,
            RecoveryDuration = recoveryClock.Elapsed,
            Duration = total.Elapsed,
        };
    }

    private enum RecoveryResult
    {
        Promoted,
        EndedBeforeTarget,
        Failed,
        TimedOut,
    }

    private static async Task<RecoveryResult> WaitForPromotionAsync(PgServerControl server, WalSpoolFeeder feeder, TimeSpan timeout, IOperationLog log, CancellationToken ct)
    {
        var deadline = DateTimeOffset.UtcNow + timeout;
        var startedAt = server.Log.Length;
        while (DateTimeOffset.UtcNow < deadline)
        {
            await Task.Delay(300, ct).ConfigureAwait(false);
            var text = server.Log;
            var mine = text.Length > startedAt ? text[startedAt..] : text;
            if (mine.Contains("database system is ready to accept connections", StringComparison.Ordinal))
            {
                return RecoveryResult.Promoted;
            }

            if (!server.IsRunning() && (mine.Contains("FATAL", StringComparison.Ordinal) || mine.Contains("database system is shut down", StringComparison.Ordinal)
                || mine.Contains("terminated", StringComparison.Ordinal)))
            {
                return mine.Contains("recovery ended before configured recovery target was reached", StringComparison.Ordinal)
                    ? RecoveryResult.EndedBeforeTarget
                    : RecoveryResult.Failed;
            }
        }

        return RecoveryResult.TimedOut;
    }

    private static HubDrException RecoveryFailed(PgServerControl server, WalSpoolFeeder feeder, object result)
    {
        var tail = PgServerControl.Tail(server.Log);
        if (feeder.Failure is HubDrException h && tail.Contains(feeder.FailedName ?? "\u0000", StringComparison.Ordinal))
        {
            return new HubDrException(h.ErrorId, h.Category,
                $"Recovery stopped: WAL file {feeder.FailedName} was refused: {h.Message} The data directory is not usable; nothing was promoted.", h) { Target = feeder.FailedName };
        }

        return new HubDrException("PitrRecoveryFailed", HubErrorCategory.InvalidOperation,
            $"PostgreSQL recovery did not finish ({result}). Last lines of the server log ({server.LogFile}):\n{tail}") { Target = server.LogFile };
    }

    private static DateTimeOffset? LastCompletedTransaction(string log)
    {
        const string marker = "last completed transaction was at log time ";
        var at = log.LastIndexOf(marker, StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }

        var text = log[(at + marker.Length)..].Split('\n')[0].Trim();
        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal, out var t) ? t : null;
    }

    private static void PrepareDataDirectory(string dataDir, bool force)
    {
        if (File.Exists(dataDir))
        {
            throw new HubDrException("RestoreTargetNotEmpty", HubErrorCategory.ResourceExists, $"'{dataDir}' is a file, not a data directory.") { Target = dataDir };
        }

        if (Directory.Exists(dataDir) && Directory.EnumerateFileSystemEntries(dataDir).Any())
        {
            if (File.Exists(Path.Combine(dataDir, "postmaster.pid")))
            {
                throw new HubDrException("PitrDataDirectoryInUse", HubErrorCategory.ResourceExists,
                    $"'{dataDir}' holds a postmaster.pid: a PostgreSQL server may be running on it. Stop it (pg_ctl stop) before restoring into it.") { Target = dataDir };
            }

            if (!force)
            {
                throw new HubDrException("RestoreTargetNotEmpty", HubErrorCategory.ResourceExists,
                    $"The data directory '{dataDir}' is not empty. Restore into an empty or new folder, or pass -Force to delete its contents first.") { Target = dataDir };
            }

            TryEmpty(dataDir);
        }

        Directory.CreateDirectory(dataDir);
        Restrict(dataDir);
    }

    private static async Task<string> ExtractAsync(IBackupStore store, string hub, PitrPlan plan, VerifyResult verification, PitrRestoreRequest request, string dataDir,
        PosixOwner? owner, IOperationLog log, CancellationToken ct)
    {
        var catalog = verification.Catalog!;
        var compressor = Compressors.Get(catalog.Compression);
        var folder = ObjectLayout.Folder(hub, plan.BackupId);
        var progress = new ProgressThrottle(log, $"Restoring base backup {plan.BackupId}", catalog.ArchiveSize);
        BackupManifest? manifest = null;
        SequentialPartsStream? parts = null;
        DecryptionInfo info;
        long files = 0;
        await using (var raw = await store.OpenReadAsync(folder + catalog.Archive, ct).ConfigureAwait(false))
        {
            using var hashing = new HashingStream(raw, leaveOpen: true, onProgress: progress.Report);
            using var plain = OpenPgpEncryption.OpenDecrypt(hashing, request.SecretKeys, request.PassphraseFor, out info);
            log.Verbose($"Decrypting with key {info.KeyId} ({info.Fingerprint}).");
            using var decompressed = compressor.Decompress(plain);
            using var outer = new ArchiveReader(decompressed);
            ArchiveEntry? pending = null;
            var first = true;
            for (var entry = outer.Next(); entry is not null; entry = pending ?? outer.Next())
            {
                pending = null;
                if (entry.IsDirectory)
                {
                    continue;
                }

                if (first)
                {
                    if (entry.Name != "backup-info.json")
                    {
                        throw new HubDrException("ArchiveLayoutInvalid", HubErrorCategory.InvalidData, $"The archive does not start with backup-info.json (found '{entry.Name}').");
                    }

                    var header = HubJson.Deserialize<BackupHeader>(await ReadSmallAsync(entry, ct).ConfigureAwait(false), "backup-info.json");
                    if (header.BackupId != plan.BackupId || header.Hub != hub)
                    {
                        throw new HubDrException("ArchiveLayoutInvalid", HubErrorCategory.InvalidData, $"The archive is backup {header.Hub}/{header.BackupId}, not {hub}/{plan.BackupId}.");
                    }

                    first = false;
                    continue;
                }

                if (entry.Name.StartsWith(BaseBackupService.BaseTarEntry + ".part-", StringComparison.Ordinal))
                {
                    parts = new SequentialPartsStream(outer, entry);
                    files = ExtractClusterTar(parts, dataDir, owner);
                    await parts.CopyToAsync(Stream.Null, ct).ConfigureAwait(false);
                    pending = parts.Pending;
                    if (pending is null)
                    {
                        break;
                    }

                    continue;
                }

                var content = await ReadSmallAsync(entry, ct).ConfigureAwait(false);
                if (entry.Name == "manifest.json")
                {
                    manifest = HubJson.Deserialize<BackupManifest>(content, "manifest.json");
                }
            }

            await decompressed.CopyToAsync(Stream.Null, ct).ConfigureAwait(false);
            await plain.CopyToAsync(Stream.Null, ct).ConfigureAwait(false);
            await hashing.CopyToAsync(Stream.Null, ct).ConfigureAwait(false);
            if (!string.Equals(hashing.Sha256, verification.ArchiveSha256, StringComparison.OrdinalIgnoreCase))
            {
                throw new HubDrException("ArchiveChangedDuringRestore", HubErrorCategory.SecurityError,
                    "The base backup archive changed between verification and restore; the extracted data must not be used. Restore again.");
            }
        }

        progress.Complete();
        if (manifest is null || parts is null)
        {
            throw new HubDrException("ArchiveLayoutInvalid", HubErrorCategory.InvalidData, "The base backup archive has no manifest.json or no db/base.tar parts.");
        }

        parts.Verify(manifest.Database.Parts.Select(p => new ArchiveEntryInfo(p.Name, p.Size, p.Sha256)).ToList(), manifest.Database.Size);
        foreach (var needed in new[] { "pg_wal", Path.Combine("pg_wal", "archive_status") })
        {
            var d = Path.Combine(dataDir, needed);
            if (!Directory.Exists(d))
            {
                Directory.CreateDirectory(d);
                Restrict(d);
                owner?.Give(d);
            }
        }

        owner?.Give(dataDir);
        log.Verbose($"Base backup {plan.BackupId}: {files} files extracted into '{dataDir}' ({Units.Bytes(parts.TotalLength)}), parts match the manifest.");
        return info.Fingerprint;
    }

    /// <summary>
    /// Safe extraction of pg_basebackup's tar: regular files and directories only (links, devices and names leaving the
    /// folder are refused by <see cref="ArchiveReader"/>), directories 0700, files 0600, owned by the cluster's OS user.
    /// </summary>
    internal static long ExtractClusterTar(Stream tarStream, string dataDir, PosixOwner? owner)
    {
        var root = Path.GetFullPath(dataDir);
        using var reader = new ArchiveReader(tarStream);
        long files = 0;
        var buffer = new byte[1 << 20];
        for (var e = reader.Next(); e is not null; e = reader.Next())
        {
            var path = Path.GetFullPath(Path.Combine(root, e.Name.Replace('/', Path.DirectorySeparatorChar)));
            if (path != root && !path.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                throw new HubDrException("ArchiveUnsafeEntry", HubErrorCategory.InvalidData, $"Base backup member '{e.Name}' would be written outside the data directory.") { Target = e.Name };
            }

            if (e.IsDirectory)
            {
                if (!Directory.Exists(path))
                {
                    Directory.CreateDirectory(path);
                    Restrict(path);
                    owner?.Give(path);
                }

                continue;
            }

            var parent = Path.GetDirectoryName(path)!;
            if (!Directory.Exists(parent))
            {
                Directory.CreateDirectory(parent);
                Restrict(parent);
                owner?.Give(parent);
            }

            var fso = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, BufferSize = 0 };
            if (!OperatingSystem.IsWindows())
            {
                fso.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            using (var fs = new FileStream(path, fso))
            {
                int n;
                while ((n = e.Content.Read(buffer)) > 0)
                {
                    fs.Write(buffer, 0, n);
                }
            }

            owner?.Give(path);
            files++;
        }

        return files;
    }

    /// <summary>Writes (or rewrites) HubDr's block at the end of postgresql.auto.conf.</summary>
    private static void WriteRecoveryConfig(string dataDir, PitrPlan plan, string script, bool withTarget, bool keepArchiveMode)
    {
        var auto = Path.Combine(dataDir, "postgresql.auto.conf");
        var existing = File.Exists(auto) ? File.ReadAllText(auto) : "# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n";
        var start = existing.IndexOf(RecoveryBlockStart, StringComparison.Ordinal);
        if (start >= 0)
        {
            var end = existing.IndexOf(RecoveryBlockEnd, start, StringComparison.Ordinal);
            existing = existing[..start] + (end >= 0 ? existing[(end + RecoveryBlockEnd.Length)..].TrimStart('\n') : "");
        }

        static string Q(string v) => "'" + v.Replace("'", "''", StringComparison.Ordinal) + "'";
        var sb = new StringBuilder(existing.TrimEnd('\n')).Append('\n').Append(RecoveryBlockStart).Append('\n');
        sb.Append("restore_command = ").Append(Q($"/bin/sh \"{script}\" \"%f\" \"%p\"")).Append('\n');
        if (withTarget && plan.TargetTime is { } t)
        {
            sb.Append("recovery_target_time = ").Append(Q(t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture) + "+00")).Append('\n');
            sb.Append("recovery_target_inclusive = 'on'\n");
        }

        sb.Append("recovery_target_timeline = ").Append(Q(plan.TargetTimelineSetting)).Append('\n');
        sb.Append("recovery_target_action = 'promote'\n");
        if (!keepArchiveMode)
        {
            sb.Append("archive_mode = 'off'\n");
        }

        sb.Append(RecoveryBlockEnd).Append('\n');
        File.WriteAllText(auto, sb.ToString(), new UTF8Encoding(false));
    }

    private static async Task<byte[]> ReadSmallAsync(ArchiveEntry entry, CancellationToken ct)
    {
        if (entry.Size > 64L << 20)
        {
            throw new HubDrException("ArchiveEntryTooLarge", HubErrorCategory.InvalidData, $"Archive entry '{entry.Name}' is unexpectedly large ({entry.Size} bytes).");
        }

        var buf = new byte[entry.Size];
        await entry.Content.ReadExactlyAsync(buf, ct).ConfigureAwait(false);
        return buf;
    }

    private static void Restrict(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        File.SetUnixFileMode(path, Directory.Exists(path)
            ? UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            : UnixFileMode.UserRead | UnixFileMode.UserWrite | (path.EndsWith(".sh", StringComparison.Ordinal) ? UnixFileMode.UserExecute : 0));
    }

    private static void TryEmpty(string dir)
    {
        if (!Directory.Exists(dir))
        {
            return;
        }

        foreach (var e in Directory.EnumerateFileSystemEntries(dir))
        {
            try
            {
                if (Directory.Exists(e) && !File.GetAttributes(e).HasFlag(FileAttributes.ReparsePoint))
                {
                    Directory.Delete(e, recursive: true);
                }
                else
                {
                    File.Delete(e);
                }
            }
            catch (IOException)
            {
            }
        }
    }

    private static void TryDeleteDirectory(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static int FreePort()
    {
        var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        var port = ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }
}
