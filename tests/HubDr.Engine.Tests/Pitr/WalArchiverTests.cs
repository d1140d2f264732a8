using HubDr.Engine.Databases.Postgres.Pitr;
using HubDr.Engine.LogArchive;
using HubDr.Engine.Stores.Local;
using HubDr.Engine.Tests.Crypto;
using Xunit;
using Xunit.Abstractions;

namespace HubDr.Engine.Tests.Pitr;

[Collection("PitrKeys")]
public sealed class WalArchiverTests(CryptoFixture keys, ITestOutputHelper output)
{
    private WalArchiverOptions Options(PgCluster pg, TempStore store, string hub, ILogArchiveMonitor? monitor = null, TimeSpan? partial = null) => new()
    {
        Hub = hub,
        Store = store.Spec,
        Database = pg.Spec(),
        Keys = PitrKeys.Archive(keys),
        PartialInterval = partial ?? TimeSpan.FromSeconds(1),
        RetryInitialDelay = TimeSpan.FromMilliseconds(200),
        RetryMaxDelay = TimeSpan.FromSeconds(2),
        Monitor = monitor,
    };

    [Fact]
    public async Task ArchivesSegmentsAndPartials_StopStartResumesWithoutLossOrDuplicates()
    {
        var log = new TestLog(output);
        await using var pg = await PgCluster.CreateAsync();
        using var store = new TempStore();
        await Workload.CreateSchemaAsync(pg.ConnectionString());
        await using (var a = new RunningArchiver(Options(pg, store, "acme"), log))
        {
            for (var i = 0; i < 3; i++)
            {
                await pg.ExecAsync("INSERT INTO events (kind, payload) SELECT 'x', repeat('y', 500) FROM generate_series(1, 500); SELECT pg_switch_wal();");
            }

            await pg.ExecAsync("INSERT INTO events (kind, payload) VALUES ('tail', 'after the last switch')");
            await a.WaitArchivedAsync(pg);
            await a.StopAsync();
        }

        var layout = new WalStreamLayout(1 << 20);
        var first = await LogIndex.LoadAsync(new LocalFolderStore(store.Path), "acme", layout, PitrKeys.Trusted(keys), CancellationToken.None);
        Assert.Empty(first.Problems);
        var segments = first.Items.Where(i => i.Ref.Kind == LogObjectKind.Segment).ToList();
        Assert.True(segments.Count >= 3, $"{segments.Count} segments archived");
        Assert.Contains(first.Items, i => i.Ref.Kind == LogObjectKind.Partial);
        var endBefore = first.DataItems("00000001").Max(i => i.Ref.End);

        // Restart: resumes from the slot (rounded down to its segment), rewrites nothing, continues.
        await pg.ExecAsync("INSERT INTO events (kind, payload) SELECT 'z', repeat('w', 500) FROM generate_series(1, 3000)");
        await using (var a = new RunningArchiver(Options(pg, store, "acme"), log))
        {
            await a.WaitArchivedAsync(pg);
            await a.StopAsync();
        }

        var second = await LogIndex.LoadAsync(new LocalFolderStore(store.Path), "acme", layout, PitrKeys.Trusted(keys), CancellationToken.None);
        Assert.Empty(second.Problems);
        foreach (var s in segments)
        {
            Assert.Equal(s.Entry.Sha256, second.ByObject[s.Entry.Object].Entry.Sha256); // never rewritten
        }

        var listing = await LogContinuity.ListObjectsAsync(new LocalFolderStore(store.Path), "acme", layout, CancellationToken.None);
        var data = second.DataItems("00000001");
        var report = LogContinuity.Check(second, listing, [new LogArchive.LogRange("00000001", data[0].Ref.Start, null)]);
        Assert.True(report.IsContinuous, string.Join("; ", report.Gaps.Concat<object>(report.Problems)));
        Assert.True(data.Max(i => i.Ref.End) > endBefore);
        Assert.DoesNotContain(log.Warnings, w => w.Contains("conflict", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task StartedWhileTheDatabaseIsDown_WaitsForIt_ThenArchives()
    {
        var log = new TestLog(output);
        await using var pg = await PgCluster.CreateAsync();
        using var store = new TempStore();
        await pg.StopAsync();
        var failures = new List<LogArchiveFailure>();
        await using var a = new RunningArchiver(Options(pg, store, "acme", new CallbackLogArchiveMonitor(null, f => { lock (failures) { failures.Add(f); } })), log);
        await Task.Delay(2500);
        Assert.False(a.Task.IsCompleted, "the archiver must wait for the database, not exit");
        Assert.Contains(failures, f => f.ErrorId == "DatabaseConnectionFailed" && !f.Fatal);
        await pg.StartAsync();
        await pg.ExecAsync("CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g");
        await a.WaitArchivedAsync(pg);
        await a.StopAsync();
    }
}
