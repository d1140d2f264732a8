using HubDr.Engine.Backup;
using HubDr.Engine.Crypto;
using HubDr.Engine.LogArchive;
using HubDr.Engine.Stores;

namespace HubDr.Engine.Databases.Postgres.Pitr;

/// <summary>Continuity of the WAL archive for one base backup (the `pgbackrest check`/`verify` equivalent; cmdlet later).</summary>
public sealed class WalContinuityResult
{
    public required string Hub { get; init; }
    public required string BackupId { get; init; }
    public required BaseBackupPitrInfo Backup { get; init; }

    /// <summary>Newest timeline checked and the timelines replay goes through (with switch points).</summary>
    public required uint Timeline { get; init; }

    public required IReadOnlyList<TimelineSwitch> TimelineSwitches { get; init; }

    public required LogContinuityReport Report { get; init; }

    public bool IsContinuous => Report.IsContinuous;
    public IReadOnlyList<LogGap> Gaps => Report.Gaps;
    public IReadOnlyList<LogArchiveProblem> Problems => Report.Problems;

    /// <summary>Newest position archived without a gap after the backup, and when it was archived (the recovery horizon).</summary>
    public string? NewestLsn => Report.NewestPosition;

    public DateTimeOffset? NewestArchivedUtc => Report.NewestArchivedUtc;

    public override string ToString() => IsContinuous
        ? $"WAL of base backup {BackupId} is continuous from {Backup.WalFirst} to {NewestLsn} (archived {NewestArchivedUtc:u}), {Report.Objects.Count} objects" +
          (Report.Deep ? $", {Report.SignaturesVerified} signatures verified" : "")
        : $"WAL of base backup {BackupId} is NOT continuous: {string.Join("; ", Gaps)} {string.Join("; ", Problems.Where(p => p.Kind != "ObjectNotIndexed"))}";
}

public static class WalContinuityService
{
    /// <summary>
    /// Checks that every segment from the base backup's start segment to the newest archived one is present (listing +
    /// signed index), on every timeline of the newest timeline's history; <paramref name="deep"/> also verifies each
    /// object's detached signature against <paramref name="trusted"/> (public keys only; nothing is decrypted).
    /// <paramref name="backupId"/> null: the newest base backup.
    /// </summary>
    public static async Task<WalContinuityResult> CheckAsync(StoreSpec storeSpec, string hub, OpenPgpKeySet trusted, string? backupId, bool deep,
        uint? timeline, IOperationLog log, CancellationToken ct)
    {
        hub = ObjectLayout.ValidateHub(hub);
        await using var store = StoreFactory.Create(storeSpec);
        await store.EnsureAvailableAsync(ct).ConfigureAwait(false);
        var backups = await PitrRestoreService.ListBaseBackupsAsync(store, hub, trusted, log, ct).ConfigureAwait(false);
        var chosen = backupId is null ? backups.LastOrDefault() : backups.FirstOrDefault(b => b.Record.BackupId == backupId);
        if (chosen.Record is null)
        {
            throw new HubDrException("PitrNoBaseBackup", HubErrorCategory.ObjectNotFound,
                backupId is null ? $"Hub '{hub}' has no base backup signed by a trusted key." : $"Base backup '{backupId}' of hub '{hub}' does not exist or is not validly signed.")
            { Target = backupId ?? hub };
        }

        var pitr = chosen.Pitr;
        var layout = new WalStreamLayout(pitr.SegmentSize);
        var snapshot = await LogIndex.LoadAsync(store, hub, layout, trusted, ct).ConfigureAwait(false);
        var lines = snapshot.Lines.Select(l => Wal.TryParseTimeline(l, out var x) ? x : 0).Where(x => x > 0)
            .Concat(snapshot.HistoryItems.Select(h => Wal.TryParseHistoryFileName(h.Entry.Name, out var x) ? x : 0)).Where(x => x > 0).ToList();
        var tli = timeline ?? (lines.Count == 0 ? pitr.Timeline : Math.Max(pitr.Timeline, lines.Max()));
        var history = tli == 1 ? TimelineHistory.Root
            : snapshot.HistoryItems.FirstOrDefault(h => h.Entry.Name == Wal.HistoryFileName(tli))?.Entry.Branches is { } br
                ? TimelineHistory.FromBranches(tli, br)
                : throw new HubDrException("PitrTimelineNotReachable", HubErrorCategory.ObjectNotFound,
                    $"Timeline {tli} has no history file in the archive of hub '{hub}'.") { Target = tli };
        var path = history.PathFrom(pitr.Timeline, Wal.ParseLsn(pitr.StartLsn));
        var ranges = path.Select((p, i) => new LogRange(Wal.TimelineName(p.Timeline), i == 0 ? Wal.SegmentStart(p.From, pitr.SegmentSize) : p.From, p.To)).ToList();
        var listing = await LogContinuity.ListObjectsAsync(store, hub, layout, ct).ConfigureAwait(false);
        var report = LogContinuity.Check(snapshot, listing, ranges);
        if (report.Objects.Count == 0 || report.Objects.Max(o => o.Ref.End) < Wal.ParseLsn(pitr.StopLsn))
        {
            report = new LogContinuityReport
            {
                Hub = report.Hub,
                Stream = report.Stream,
                Ranges = report.Ranges,
                Gaps = report.Gaps.Count > 0 ? report.Gaps
                    : [new LogGap(ranges[0].Line, ranges[0].From, Wal.ParseLsn(pitr.StopLsn), Wal.FormatLsn(ranges[0].From), pitr.StopLsn, [pitr.WalFirst, pitr.WalLast])],
                Problems = report.Problems,
                Objects = report.Objects,
                NewestPosition = report.NewestPosition,
                NewestArchivedUtc = report.NewestArchivedUtc,
            };
        }

        if (deep)
        {
            report = await LogContinuity.VerifySignaturesAsync(report, store, layout, trusted, ct).ConfigureAwait(false);
        }

        log.Verbose($"WAL continuity of {chosen.Record.BackupId}: {report.Objects.Count} objects, {report.Gaps.Count} gap(s), {report.Problems.Count} problem(s).");
        return new WalContinuityResult
        {
            Hub = hub,
            BackupId = chosen.Record.BackupId,
            Backup = pitr,
            Timeline = tli,
            TimelineSwitches = history.Ancestors.Where(a => path.Any(p => p.Timeline == a.Timeline)).ToList(),
            Report = report,
        };
    }
}
