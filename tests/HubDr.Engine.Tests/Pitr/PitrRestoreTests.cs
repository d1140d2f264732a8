using HubDr.Engine.Databases.Postgres.Pitr;
using HubDr.Engine.LogArchive;
using HubDr.Engine.Stores;
using HubDr.Engine.Tests.Crypto;
using Xunit;
using Xunit.Abstractions;

namespace HubDr.Engine.Tests.Pitr;

/// <summary>Shared steps of the PITR tests: archiver options, base backups and restores with the real server.</summary>
public abstract class PitrTestBase(CryptoFixture keys, ITestOutputHelper output)
{
    protected CryptoFixture Keys { get; } = keys;
    protected TestLog Log { get; } = new(output);
    protected ITestOutputHelper Output { get; } = output;

    protected WalArchiverOptions ArchiverOptions(PgCluster pg, StoreSpec store, string hub, TimeSpan? partial = null, ILogArchiveMonitor? monitor = null) => new()
    {
        Hub = hub,
        Store = store,
        Database = pg.Spec(),
        Keys = PitrKeys.Archive(Keys),
        PartialInterval = partial ?? TimeSpan.FromSeconds(2),
        RetryInitialDelay = TimeSpan.FromMilliseconds(200),
        RetryMaxDelay = TimeSpan.FromSeconds(2),
        Monitor = monitor,
    };

    protected Task<BaseBackupOutcome> BaseBackupAsync(PgCluster pg, StoreSpec store, string hub) => BaseBackupService.CreateAsync(new BaseBackupRequest
    {
        Hub = hub,
        Store = store,
        Database = pg.Spec(),
        RecipientKeys = [Keys.Ops.ArmoredPublicKey, Keys.Escrow.ArmoredPublicKey],
        SigningKeys = [Keys.Ops.ArmoredSecretKey],
        SigningPassphrase = CryptoFixture.OpsPass.ToCharArray(),
        PartSize = 4 << 20,
        WalWaitTimeout = TimeSpan.FromSeconds(60),
    }, Log, CancellationToken.None);

    protected PitrRestoreRequest RestoreRequest(StoreSpec store, string hub, string dataDir, DateTimeOffset? target, bool start = true, uint? timeline = null, bool force = false) => new()
    {
        Store = store,
        Hub = hub,
        TrustedSigners = Keys.Public(Keys.Ops),
        SecretKeys = Keys.Secret(Keys.Escrow), // the escrow key alone can restore
        PassphraseFor = Keys.PassFor,
        DataDirectory = dataDir,
        TargetTime = target,
        TargetTimeline = timeline,
        StartServer = start,
        ToolPath = PgCluster.BinDir,
        Force = force,
        RecoveryTimeout = TimeSpan.FromMinutes(5),
    };

    /// <summary>Restores into a fresh folder, starts the cluster and returns it (adopted: the caller stops it).</summary>
    protected async Task<(PitrRestoreOutcome Outcome, PgCluster Cluster)> RestoreAsync(PgCluster source, StoreSpec store, string hub, DateTimeOffset? target, uint? timeline = null)
    {
        var root = PgCluster.NewRoot("restore");
        var data = Path.Combine(root, "data");
        var outcome = await PitrRestoreService.RestoreAsync(RestoreRequest(store, hub, data, target, timeline: timeline), Log, CancellationToken.None);
        var cluster = PgCluster.Adopt(root, data, source.Password, outcome.Port);
        return (outcome, cluster);
    }
}

[Collection("PitrKeys")]
public sealed class PitrRestoreTests(CryptoFixture keys, ITestOutputHelper output) : PitrTestBase(keys, output)
{
    [Fact]
    public async Task RestoresToThreeMomentsExactly_WritesBeforeDuringAndAfterTheBaseBackup()
    {
        await using var pg = await PgCluster.CreateAsync();
        using var store = new TempStore();
        await Workload.CreateSchemaAsync(pg.ConnectionString());
        await using var archiver = new RunningArchiver(ArchiverOptions(pg, store.Spec, "acme"), Log);
        await using var work = new Workload(pg.ConnectionString());
        work.Start();
        await Task.Delay(1500); // writes before the base backup
        var backup = await BaseBackupAsync(pg, store.Spec, "acme"); // and during it
        Assert.True(backup.WalArchived);
        Output.WriteLine($"base backup {backup.Catalog.BackupId}: {backup.Pitr.StartLsn} .. {backup.Pitr.StopLsn}, {backup.Pitr.WalFirst} .. {backup.Pitr.WalLast}");

        var moments = new List<(DateTimeOffset At, string Fingerprint)>();
        for (var i = 0; i < 3; i++)
        {
            await Task.Delay(2500); // and after it
            moments.Add(await work.MomentAsync());
            Output.WriteLine($"moment {i}: {moments[^1].At:O} {moments[^1].Fingerprint}");
            await pg.ExecAsync("SELECT pg_switch_wal()"); // each moment in another segment
        }

        await Task.Delay(1500);
        await work.StopAsync();
        var final = await Workload.FingerprintAsync(pg.ConnectionString());
        await archiver.WaitArchivedAsync(pg);
        Assert.True(work.Commits > 100, $"{work.Commits} commits");

        foreach (var (at, fingerprint) in moments)
        {
            var (outcome, restored) = await RestoreAsync(pg, store.Spec, "acme", at);
            await using (restored)
            {
                Output.WriteLine($"restored to {outcome.RecoveredToUtc:O} (target {at:O}), LSN {outcome.RecoveredLsn}, timeline {outcome.NewTimeline}, {outcome.WalFilesFetched} WAL files");
                Assert.Equal(backup.Catalog.BackupId, outcome.Plan.BackupId);
                Assert.Equal(fingerprint, await Workload.FingerprintAsync(restored.ConnectionString()));
                Assert.NotNull(outcome.RecoveredToUtc);
                Assert.True(outcome.RecoveredToUtc <= at, $"recovered to {outcome.RecoveredToUtc:O}, after the target {at:O}");
                Assert.True(outcome.NewTimeline >= 2);
            }
        }

        // Latest: everything committed.
        var (latest, latestCluster) = await RestoreAsync(pg, store.Spec, "acme", null);
        await using (latestCluster)
        {
            Assert.Equal(final, await Workload.FingerprintAsync(latestCluster.ConnectionString()));
            Assert.Equal("latest", latest.Plan.Target);
        }
    }

    /// <summary>
    /// A target after the last commit: PostgreSQL finds no commit past the target and reports "recovery ended before
    /// configured recovery target was reached"; the archive's end is then the state at the target, and HubDr says so.
    /// </summary>
    [Fact]
    public async Task TargetAfterTheLastCommit_RecoversTheFinalState()
    {
        await using var pg = await PgCluster.CreateAsync();
        using var store = new TempStore();
        await Workload.CreateSchemaAsync(pg.ConnectionString());
        await using var archiver = new RunningArchiver(ArchiverOptions(pg, store.Spec, "acme", partial: TimeSpan.FromSeconds(1)), Log);
        await BaseBackupAsync(pg, store.Spec, "acme");
        await pg.ExecAsync("INSERT INTO events (kind, payload) VALUES ('last', 'the last commit')");
        var final = await Workload.FingerprintAsync(pg.ConnectionString());
        await pg.PsqlAsync("ALTER SYSTEM SET autovacuum = off");
        await pg.PsqlAsync("SELECT pg_reload_conf()");
        await Task.Delay(1500);
        var target = DateTimeOffset.UtcNow;
        await Task.Delay(1500);
        await pg.PsqlAsync("CHECKPOINT"); // WAL without a commit, archived after the target
        await pg.PsqlAsync("SELECT pg_switch_wal()");
        await archiver.WaitArchivedAsync(pg);
        await archiver.StopAsync();

        var (outcome, restored) = await RestoreAsync(pg, store.Spec, "acme", target);
        await using (restored)
        {
            Output.WriteLine($"recovered to {outcome.RecoveredToUtc:O}, to the archive's end: {outcome.ReplayedToArchiveEnd}");
            Assert.Equal(final, await Workload.FingerprintAsync(restored.ConnectionString()));
            Assert.True(outcome.RecoveredToUtc < target);
            Assert.True(outcome.ReplayedToArchiveEnd); // no commit after the target anywhere: replayed to the end
        }
    }
}
