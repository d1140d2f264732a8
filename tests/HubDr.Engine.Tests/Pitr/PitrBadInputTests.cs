using System.Net;
using HubDr.Engine.Databases.Postgres.Pitr;
using HubDr.Engine.Tests.Crypto;
using Xunit;
using Xunit.Abstractions;

namespace HubDr.Engine.Tests.Pitr;

[Collection("PitrKeys")]
public sealed class PitrBadInputTests(CryptoFixture keys, ITestOutputHelper output) : PitrTestBase(keys, output)
{
    [Fact]
    public async Task HubWithoutBaseBackup_IsATypedError()
    {
        using var store = new TempStore();
        // A HubDr store (marker written) that holds no base backup of the hub.
        await using (var s = new HubDr.Engine.Stores.Local.LocalFolderStore(store.Path))
        {
            await HubDr.Engine.Backup.StoreMarker.EnsureAsync(s, "test", null, CancellationToken.None);
        }

        var e = await Assert.ThrowsAsync<HubDrException>(() => PitrRestoreService.PlanAsync(RestoreRequest(store.Spec, "nothing", "/tmp/unused", null), Log, CancellationToken.None));
        Assert.Equal("PitrNoBaseBackup", e.ErrorId);
        Assert.Equal(HubErrorCategory.ObjectNotFound, e.Category);
    }

    [Fact]
    public async Task TargetInTheFuture_BeforeTheOldestBaseBackup_OrBeyondTheArchive_AreTypedErrors()
    {
        var reference = await ReferenceArchive.GetAsync(Keys, Log);
        using var store = reference.CopyStore();
        var root = PgCluster.NewRoot("bad");
        var dir = Path.Combine(root, "data");
        try
        {
            var future = await Assert.ThrowsAsync<HubDrException>(() =>
                PitrRestoreService.RestoreAsync(RestoreRequest(store.Spec, reference.Hub, dir, DateTimeOffset.UtcNow.AddHours(1)), Log, CancellationToken.None));
            Assert.Equal("PitrTargetInFuture", future.ErrorId);
            Assert.Equal(HubErrorCategory.InvalidArgument, future.Category);

            var early = await Assert.ThrowsAsync<HubDrException>(() =>
                PitrRestoreService.RestoreAsync(RestoreRequest(store.Spec, reference.Hub, dir, reference.Backup.Pitr.StartUtc.AddMinutes(-5)), Log, CancellationToken.None));
            Assert.Equal("PitrTargetBeforeBackup", early.ErrorId);
            Assert.Contains(reference.Backup.Catalog.BackupId, early.Message);

            // The archive ends when the archiver stopped; a later (past) time is beyond it.
            await Task.Delay(1500);
            var beyond = await Assert.ThrowsAsync<HubDrException>(() =>
                PitrRestoreService.PlanAsync(RestoreRequest(store.Spec, reference.Hub, dir, DateTimeOffset.UtcNow.AddSeconds(-1)), Log, CancellationToken.None));
            Assert.Equal("PitrTargetBeyondArchive", beyond.ErrorId);
            Assert.False(Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any());
        }
        finally
        {
            Directory.Delete(root, true);
        }
    }

    [Fact]
    public async Task NonEmptyDataDirectory_IsRefusedWithoutForce_AndReplacedWithForce()
    {
        var reference = await ReferenceArchive.GetAsync(Keys, Log);
        using var store = reference.CopyStore();
        var root = PgCluster.NewRoot("nonempty");
        var dir = Path.Combine(root, "data");
        Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(Path.Combine(dir, "PG_VERSION"), "15\n");

        var e = await Assert.ThrowsAsync<HubDrException>(() =>
            PitrRestoreService.RestoreAsync(RestoreRequest(store.Spec, reference.Hub, dir, reference.Moments[0].At, start: false), Log, CancellationToken.None));
        Assert.Equal("RestoreTargetNotEmpty", e.ErrorId);
        Assert.Equal(HubErrorCategory.ResourceExists, e.Category);
        Assert.Equal("15\n", await File.ReadAllTextAsync(Path.Combine(dir, "PG_VERSION"))); // untouched

        // With -Force, and without starting the server: the data directory is prepared for the operator to start.
        var outcome = await PitrRestoreService.RestoreAsync(RestoreRequest(store.Spec, reference.Hub, dir, reference.Moments[0].At, start: false, force: true), Log, CancellationToken.None);
        Assert.False(outcome.ServerStarted);
        Assert.True(File.Exists(Path.Combine(dir, "recovery.signal")));
        Assert.True(File.Exists(Path.Combine(dir, "backup_label")));
        Assert.True(outcome.WalFilesFetched >= outcome.Plan.RequiredWal.Count);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dir));
        }

        var (_, stat, _) = await PgCluster.RunAsync("stat", ["-c", "%U", dir]);
        Assert.Equal("postgres", stat.Trim()); // owned by the cluster's OS user (the tests run as root)

        // The operator starts it; the spooled WAL recovers exactly the moment.
        var cluster = PgCluster.Adopt(root, dir, reference.DbPassword);
        await using (cluster)
        {
            await cluster.StartAsync();
            await WaitPromotedAsync(cluster);
            Assert.Equal(reference.Moments[0].Fingerprint, await Workload.FingerprintAsync(cluster.ConnectionString()));
        }
    }

    internal static async Task WaitPromotedAsync(PgCluster cluster)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (!cluster.ServerLog.Contains("database system is ready to accept connections", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, "recovery did not finish: " + cluster.ServerLog);
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task Preflight_RefusesWithTypedErrors()
    {
        await using var pg = await PgCluster.CreateAsync();
        using var store = new TempStore();

        // No REPLICATION attribute.
        await pg.PsqlAsync("CREATE ROLE plain LOGIN PASSWORD 'plain-pass'");
        var o = ArchiverOptions(pg, store.Spec, "acme");
        var noRepl = await Assert.ThrowsAsync<HubDrException>(() => new WalArchiver(new WalArchiverOptions
        {
            Hub = o.Hub,
            Store = o.Store,
            Keys = o.Keys,
            Database = new HubDr.Engine.Databases.DatabaseSpec { Engine = "postgres", ConnectionString = $"Host=127.0.0.1;Port={pg.Port};Database=postgres", Credential = new NetworkCredential("plain", "plain-pass") },
        }, Log).RunAsync(CancellationToken.None));
        Assert.Equal("ReplicationPermissionDenied", noRepl.ErrorId);

        // The slot is in use by another archiver.
        await using (var first = new RunningArchiver(ArchiverOptions(pg, store.Spec, "acme"), Log))
        {
            await first.WaitArchivedAsync(pg);
            var inUse = await Assert.ThrowsAsync<HubDrException>(() => new WalArchiver(ArchiverOptions(pg, store.Spec, "acme"), Log).RunAsync(CancellationToken.None));
            Assert.Equal("ReplicationSlotInUse", inUse.ErrorId);
            await first.StopAsync();
        }

        // A tablespace outside the data directory: pg_basebackup cannot stream it.
        var tsDir = Path.Combine(pg.Root, "ts");
        Directory.CreateDirectory(tsDir);
        PgCluster.Chown(tsDir);
        await pg.PsqlAsync($"CREATE TABLESPACE extra LOCATION '{tsDir}'");
        var ts = await Assert.ThrowsAsync<HubDrException>(() => BaseBackupAsync(pg, store.Spec, "acme"));
        Assert.Equal("BaseBackupTablespacesUnsupported", ts.ErrorId);
        Assert.Contains("extra", ts.Message);
        await pg.PsqlAsync("DROP TABLESPACE extra");

        // pg_hba.conf without a replication line for the host.
        var hba = Path.Combine(pg.DataDir, "pg_hba.conf");
        var original = await File.ReadAllTextAsync(hba);
        await File.WriteAllLinesAsync(hba, original.Split('\n').Where(l => !l.TrimStart().StartsWith("host", StringComparison.Ordinal) || !l.Contains("replication", StringComparison.Ordinal)));
        await pg.PsqlAsync("SELECT pg_reload_conf()");
        var hbaError = await Assert.ThrowsAsync<HubDrException>(() => new WalArchiver(ArchiverOptions(pg, store.Spec, "acme"), Log).RunAsync(CancellationToken.None));
        Assert.Equal("ReplicationNotAllowed", hbaError.ErrorId);
        Assert.Contains("pg_hba.conf", hbaError.Message);
        await File.WriteAllTextAsync(hba, original);

        // max_wal_senders = 0, then wal_level = minimal.
        await pg.PsqlAsync("SELECT pg_drop_replication_slot('hubdr_acme')");
        await pg.StopAsync();
        await pg.StartAsync("-c max_wal_senders=0");
        var senders = await Assert.ThrowsAsync<HubDrException>(() => new WalArchiver(ArchiverOptions(pg, store.Spec, "acme"), Log).RunAsync(CancellationToken.None));
        Assert.Equal("WalSendersDisabled", senders.ErrorId);
        await pg.StopAsync();
        await pg.StartAsync("-c wal_level=minimal -c max_wal_senders=0");
        var level = await Assert.ThrowsAsync<HubDrException>(() => BaseBackupAsync(pg, store.Spec, "acme"));
        Assert.Equal("WalLevelInsufficient", level.ErrorId);
        Assert.Contains("wal_level", level.Message);
    }

    [Fact]
    public async Task SlotInvalidatedByMaxSlotWalKeepSize_ArchiverRefusesToStartOverTheGap()
    {
        await using var pg = await PgCluster.CreateAsync();
        using var store = new TempStore();
        await using (var a = new RunningArchiver(ArchiverOptions(pg, store.Spec, "acme"), Log))
        {
            await a.WaitArchivedAsync(pg);
            await a.StopAsync();
        }

        // While the archiver is stopped, more WAL than max_slot_wal_keep_size accumulates: PostgreSQL invalidates the slot.
        await pg.PsqlAsync("ALTER SYSTEM SET max_slot_wal_keep_size = '2MB'");
        await pg.PsqlAsync("SELECT pg_reload_conf()");
        for (var i = 0; i < 6; i++)
        {
            await pg.ExecAsync("CREATE TABLE IF NOT EXISTS filler (x text); INSERT INTO filler SELECT repeat(md5(random()::text), 20) FROM generate_series(1, 3000); SELECT pg_switch_wal();");
        }

        await pg.PsqlAsync("CHECKPOINT");
        Assert.Equal("lost", await pg.PsqlAsync("SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'hubdr_acme'"));
        var e = await Assert.ThrowsAsync<HubDrException>(() => new WalArchiver(ArchiverOptions(pg, store.Spec, "acme"), Log).RunAsync(CancellationToken.None));
        Assert.Equal("ReplicationSlotLost", e.ErrorId);
        Assert.Contains("pg_drop_replication_slot", e.Message);
    }
}
