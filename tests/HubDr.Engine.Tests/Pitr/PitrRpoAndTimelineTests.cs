using HubDr.Engine.Databases.Postgres.Pitr;
using HubDr.Engine.LogArchive;
using HubDr.Engine.Stores.Local;
using HubDr.Engine.Tests.Crypto;
using Xunit;
using Xunit.Abstractions;

namespace HubDr.Engine.Tests.Pitr;

[Collection("PitrKeys")]
public sealed class PitrRpoAndTimelineTests(CryptoFixture keys, ITestOutputHelper output) : PitrTestBase(keys, output)
{
    /// <summary>
    /// The worst case for the RPO: the database host dies and takes the archiver with it (both SIGKILLed at once), so
    /// only what the periodic partial uploads (default 15 s) already stored counts.
    /// </summary>
    [Fact]
    public async Task Rpo_DatabaseAndArchiverKilledWhileWriting_LatestRestoreLosesAtMost60Seconds()
    {
        var host = await ArchiverHost.CreateAsync(Keys);
        await using var pg = await PgCluster.CreateAsync();
        using var store = new TempStore();
        await Workload.CreateSchemaAsync(pg.ConnectionString());
        var proc = host.StartArchiver(pg, store.Path, "acme", 15_000, l => Output.WriteLine("host: " + l));
        try
        {
            await BaseBackupAsync(pg, store.Spec, "acme");
            await using var work = new Workload(pg.ConnectionString());
            work.Start(delayMs: 50);
            await Task.Delay(TimeSpan.FromSeconds(32)); // two partial intervals and a bit
            // The archiver dies first (with the host), so nothing it still holds in memory can be flushed.
            proc.Kill(entireProcessTree: true);
            await proc.WaitForExitAsync();
            var lastCommit = work.LastCommitUtc;
            pg.Kill();
            await work.StopAsync();
            Output.WriteLine($"killed at {DateTimeOffset.UtcNow:O}; last commit acknowledged {lastCommit:O}; {work.Commits} commits");

            var (outcome, restored) = await RestoreAsync(pg, store.Spec, "acme", null);
            await using (restored)
            {
                var rpo = lastCommit - outcome.RecoveredToUtc!.Value;
                Output.WriteLine($"MEASURED RPO (database host and archiver killed, partial interval 15 s): {rpo.TotalSeconds:0.0} s (recovered to {outcome.RecoveredToUtc:O})");
                Assert.True(rpo <= TimeSpan.FromSeconds(60), $"lost {rpo.TotalSeconds:0.0} s of commits");
                var count = await restored.ScalarAsync<long>("SELECT count(*) FROM events");
                Assert.True(count > 0);
            }
        }
        finally
        {
            if (!proc.HasExited)
            {
                proc.Kill(entireProcessTree: true);
            }
        }
    }

    /// <summary>When only the database dies, the archiver uploads what it had received before reconnecting: nearly nothing is lost.</summary>
    [Fact]
    public async Task Rpo_DatabaseKilled_ArchiverKeepsWhatItReceived()
    {
        await using var pg = await PgCluster.CreateAsync();
        using var store = new TempStore();
        await Workload.CreateSchemaAsync(pg.ConnectionString());
        var archiver = new RunningArchiver(ArchiverOptions(pg, store.Spec, "acme", partial: TimeSpan.FromSeconds(15)), Log);
        await using (archiver)
        {
            await BaseBackupAsync(pg, store.Spec, "acme");
            await using var work = new Workload(pg.ConnectionString());
            work.Start(delayMs: 50);
            await Task.Delay(TimeSpan.FromSeconds(8));
            var lastCommit = work.LastCommitUtc;
            pg.Kill();
            await work.StopAsync();
            await Task.Delay(TimeSpan.FromSeconds(3)); // the archiver notices, uploads what it holds, and retries the server
            await archiver.StopAsync();

            var (outcome, restored) = await RestoreAsync(pg, store.Spec, "acme", null);
            await using (restored)
            {
                var rpo = lastCommit - outcome.RecoveredToUtc!.Value;
                Output.WriteLine($"MEASURED RPO (database killed, archiver alive): {rpo.TotalSeconds:0.000} s");
                Assert.True(rpo <= TimeSpan.FromSeconds(5), $"lost {rpo.TotalSeconds:0.0} s of commits");
            }
        }
    }

    [Fact]
    public async Task TimelineSwitch_NewTimelineArchivedBesideTheOld_RestoresToEitherTimeline()
    {
        await using var pg1 = await PgCluster.CreateAsync();
        using var store = new TempStore();
        await Workload.CreateSchemaAsync(pg1.ConnectionString());
        var a1 = new RunningArchiver(ArchiverOptions(pg1, store.Spec, "acme"), Log);
        var b1 = await BaseBackupAsync(pg1, store.Spec, "acme");
        var work1 = new Workload(pg1.ConnectionString());
        work1.Start();
        await Task.Delay(2500);
        var branch = await work1.MomentAsync();           // timeline 1: where the restored copy branches off
        await pg1.ExecAsync("SELECT pg_switch_wal()");
        await Task.Delay(2500);
        var oldBranchLater = await work1.MomentAsync();   // timeline 1, after the branch point
        await Task.Delay(1000);
        await work1.DisposeAsync();
        await a1.WaitArchivedAsync(pg1);
        await a1.StopAsync();
        await pg1.StopAsync();                            // the old primary is retired

        var local = new LocalFolderStore(store.Path);
        var layout = new WalStreamLayout(1 << 20);
        var tl1Before = (await LogIndex.LoadAsync(local, "acme", layout, PitrKeys.Trusted(Keys), CancellationToken.None))
            .Items.Where(i => i.Ref.Line == "00000001").ToDictionary(i => i.Entry.Object, i => i.Entry.Sha256);

        // Restore + promote: the copy runs on timeline 2 and is archived into the same hub.
        var (promoted, pg2) = await RestoreAsync(pg1, store.Spec, "acme", branch.At);
        await using (pg2)
        {
            Assert.Equal(2u, promoted.NewTimeline);
            Assert.Equal(branch.Fingerprint, await Workload.FingerprintAsync(pg2.ConnectionString()));
            var a2 = new RunningArchiver(ArchiverOptions(pg2, store.Spec, "acme"), Log);
            await using (var work2 = new Workload(pg2.ConnectionString()))
            {
                work2.Start();
                await Task.Delay(3000);
                var onTimeline2 = await work2.MomentAsync();
                await Task.Delay(1000);
                await work2.StopAsync();
                await a2.WaitArchivedAsync(pg2);
                await a2.StopAsync();
                await pg2.StopAsync();

                var index = await LogIndex.LoadAsync(local, "acme", layout, PitrKeys.Trusted(Keys), CancellationToken.None);
                Assert.Contains(index.HistoryItems, h => h.Entry.Name == "00000002.history");
                Assert.Contains(index.Items, i => i.Ref.Line == "00000002" && i.Ref.Kind != LogObjectKind.History);
                foreach (var (obj, sha) in tl1Before)
                {
                    Assert.True(index.ByObject.TryGetValue(obj, out var now) || !obj.EndsWith(".zst.gpg", StringComparison.Ordinal) || obj.Contains(".partial-", StringComparison.Ordinal),
                        $"timeline 1 object {obj} vanished");
                    if (now is not null)
                    {
                        Assert.Equal(sha, now.Entry.Sha256); // never overwritten
                    }
                }

                var continuity = await WalContinuityService.CheckAsync(store.Spec, "acme", PitrKeys.Trusted(Keys), b1.Catalog.BackupId, deep: true, null, Log, CancellationToken.None);
                Output.WriteLine(continuity.ToString());
                Assert.True(continuity.IsContinuous, continuity.ToString());
                Assert.Equal(2u, continuity.Timeline);
                Assert.Single(continuity.TimelineSwitches);

                // Timeline 2 (latest), from the timeline 1 base backup across the switch.
                var (on2, c2) = await RestoreAsync(pg1, store.Spec, "acme", onTimeline2.At);
                await using (c2)
                {
                    Assert.Equal(b1.Catalog.BackupId, on2.Plan.BackupId);
                    Assert.Equal(onTimeline2.Fingerprint, await Workload.FingerprintAsync(c2.ConnectionString()));
                    Assert.Equal(3u, on2.NewTimeline); // timelines 1 and 2 are taken
                }

                // Timeline 1 after the branch point: the old primary's later writes are still restorable.
                var (on1, c1) = await RestoreAsync(pg1, store.Spec, "acme", oldBranchLater.At, timeline: 1);
                await using (c1)
                {
                    Assert.Equal(oldBranchLater.Fingerprint, await Workload.FingerprintAsync(c1.ConnectionString()));
                    Assert.True(on1.NewTimeline >= 3);
                }
            }
        }
    }
}
