using System.Diagnostics;
using HubDr.Engine.Databases.Postgres.Pitr;
using HubDr.Engine.LogArchive;
using HubDr.Engine.Stores.Local;
using HubDr.Engine.Tests.Crypto;
using Xunit;
using Xunit.Abstractions;

namespace HubDr.Engine.Tests.Pitr;

/// <summary>The archiver as its own OS process, at PostgreSQL's default 16 MiB segment size.</summary>
[Collection("PitrKeys")]
public sealed class ArchiverProcessTests(CryptoFixture keys, ITestOutputHelper output) : PitrTestBase(keys, output)
{
    private const long DefaultSegment = 16 << 20;

    [Fact]
    public async Task ArchiverKilledMidUpload_NoHalfObjectCounted_RestartContinues_RestoreAtDefaultSegmentSize()
    {
        var host = await ArchiverHost.CreateAsync(Keys);
        await using var pg = await PgCluster.CreateAsync(walSegmentMb: 16);
        using var store = new TempStore();
        await Workload.CreateSchemaAsync(pg.ConnectionString());
        var lines = new List<string>();
        void OnLine(string l)
        {
            lock (lines)
            {
                lines.Add(l);
            }

            Output.WriteLine("host: " + l);
        }

        var proc = host.StartArchiver(pg, store.Path, "acme", 500, OnLine);
        try
        {
            await BaseBackupAsync(pg, store.Spec, "acme");
            var walDir = Path.Combine(store.Path, "acme", "_wal", "00000001");
            string? half = null;
            for (var round = 0; round < 8 && half is null; round++)
            {
                var load = pg.ExecAsync("INSERT INTO events (kind, payload) SELECT 'bulk', repeat(md5(random()::text), 40) FROM generate_series(1, 12000)");
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
                while (half is null && DateTime.UtcNow < deadline)
                {
                    half = Directory.Exists(walDir)
                        ? Directory.EnumerateFiles(walDir, LocalFolderStore.TempPrefix + "*").FirstOrDefault(f => new FileInfo(f).Length > 0)
                        : null;
                    if (half is not null)
                    {
                        proc.Kill(entireProcessTree: true); // SIGKILL while an object is being uploaded
                        await proc.WaitForExitAsync();
                        break;
                    }

                    await Task.Delay(2);
                }

                await load;
            }

            Assert.NotNull(half);
            Assert.True(File.Exists(half), "the half-written object is left behind as a temp file");
            Output.WriteLine($"killed mid-upload of {half} ({new FileInfo(half).Length} bytes so far)");

            // The half object is not an object: not listed, not indexed, not counted.
            var layout = new WalStreamLayout(DefaultSegment);
            var local = new LocalFolderStore(store.Path);
            var listing = await LogContinuity.ListObjectsAsync(local, "acme", layout, CancellationToken.None);
            Assert.DoesNotContain(listing.Keys, k => k.Contains(LocalFolderStore.TempPrefix, StringComparison.Ordinal));
            var index = await LogIndex.LoadAsync(local, "acme", layout, PitrKeys.Trusted(Keys), CancellationToken.None);
            var report = LogContinuity.Check(index, listing, [new LogRange("00000001", index.DataItems("00000001")[0].Ref.Start, null)]);
            Assert.True(report.IsContinuous, string.Join("; ", report.Gaps.Concat<object>(report.Problems)));
            var before = report.NewestPosition;

            // Restart: it continues from the slot; everything the server has reaches the archive, without gaps.
            await pg.ExecAsync("INSERT INTO events (kind, payload) VALUES ('after-restart', 'x')");
            var final = await Workload.FingerprintAsync(pg.ConnectionString());
            var flush = Wal.ParseLsn(await pg.ScalarAsync<string>("SELECT pg_current_wal_flush_lsn()::text"));
            proc = host.StartArchiver(pg, store.Path, "acme", 500, OnLine);
            var until = DateTime.UtcNow + TimeSpan.FromSeconds(90);
            LogContinuityReport after;
            while (true)
            {
                index = await LogIndex.LoadAsync(local, "acme", layout, PitrKeys.Trusted(Keys), CancellationToken.None);
                listing = await LogContinuity.ListObjectsAsync(local, "acme", layout, CancellationToken.None);
                after = LogContinuity.Check(index, listing, [new LogRange("00000001", index.DataItems("00000001")[0].Ref.Start, null)]);
                if (after.NewestPosition is { } np && Wal.ParseLsn(np) >= flush)
                {
                    break;
                }

                Assert.True(DateTime.UtcNow < until, $"archive stuck at {after.NewestPosition}, server at {Wal.FormatLsn(flush)}");
                await Task.Delay(250);
            }

            Assert.True(after.IsContinuous, string.Join("; ", after.Gaps.Concat<object>(after.Problems)));
            Output.WriteLine($"before restart: {before}; after: {after.NewestPosition}");
            proc.Kill(entireProcessTree: true);
            await proc.WaitForExitAsync();

            // And the archive restores at the default segment size.
            var (outcome, restored) = await RestoreAsync(pg, store.Spec, "acme", null);
            await using (restored)
            {
                Assert.Equal(final, await Workload.FingerprintAsync(restored.ConnectionString()));
                Assert.Equal(DefaultSegment, outcome.Plan.BackupPitr.SegmentSize);
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

    /// <summary>
    /// docs/pitr.md "Why streaming and not archive_command": what one 16 MiB segment costs when PostgreSQL's
    /// archive_command starts a HubDr process per segment (process start + key unlock + encrypt + sign + upload + index)
    /// versus the streaming archiver, which pays process start and key unlock once.
    /// </summary>
    [Fact]
    public async Task ArchiveCommandAlternative_CostsMorePerSegmentThanStreaming_Measured()
    {
        var host = await ArchiverHost.CreateAsync(Keys);
        await using var pg = await PgCluster.CreateAsync(walSegmentMb: 16);
        using var store = new TempStore();
        await Workload.CreateSchemaAsync(pg.ConnectionString());
        await pg.ExecAsync("INSERT INTO events (kind, payload) SELECT 'bulk', repeat(md5(random()::text), 40) FROM generate_series(1, 16000)");
        var segName = await pg.ScalarAsync<string>("SELECT pg_walfile_name(pg_current_wal_lsn())");
        await pg.ExecAsync("SELECT pg_switch_wal()");
        var segment = Path.Combine(Path.GetTempPath(), "hubdr-seg-" + Guid.NewGuid().ToString("N"), segName);
        Directory.CreateDirectory(Path.GetDirectoryName(segment)!);
        File.Copy(Path.Combine(pg.DataDir, "pg_wal", segName), segment);
        try
        {
            const int runs = 5;
            var process = new List<double>();
            var processCpu = new List<double>();
            var unlock = new List<double>();
            for (var i = 0; i < runs; i++)
            {
                var (wall, cpu, u) = await host.PushAsync(store.Path, "cmd" + i, segment, DefaultSegment);
                process.Add(wall);
                processCpu.Add(cpu);
                unlock.Add(u);
            }

            var archiveKeys = PitrKeys.Archive(Keys);
            var layout = new WalStreamLayout(DefaultSegment);
            var data = await File.ReadAllBytesAsync(segment);
            Wal.TryParseSegmentFileName(segName, DefaultSegment, out var tli, out var segNo);
            var streaming = new List<double>();
            var streamingCpu = new List<double>();
            await using var local = new LocalFolderStore(store.Path);
            for (var i = 0; i < runs; i++)
            {
                var writer = new LogArchiveWriter(local, "stream" + i, layout, archiveKeys, null, null);
                var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                var clock = Stopwatch.StartNew();
                var r = await writer.WriteAsync(layout.Segment(tli, segNo), data, null, CancellationToken.None);
                await writer.CommitAsync([r.Entry], CancellationToken.None);
                streaming.Add(clock.Elapsed.TotalMilliseconds);
                streamingCpu.Add((Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds);
            }

            static double Median(List<double> x) => x.Order().ElementAt(x.Count / 2);
            Output.WriteLine($"MEASURED archive_command-style process per 16 MiB segment: wall median {Median(process):0} ms (runs: {string.Join(", ", process.Select(x => x.ToString("0")))}), " +
                $"CPU median {Median(processCpu):0} ms; start until keys loaded and unlocked: median {Median(unlock):0} ms");
            Output.WriteLine($"MEASURED streaming archiver per 16 MiB segment (keys unlocked once): wall median {Median(streaming):0} ms (runs: {string.Join(", ", streaming.Select(x => x.ToString("0")))}), " +
                $"CPU median {Median(streamingCpu):0} ms; load average {File.ReadAllText("/proc/loadavg").Trim()}");
            Assert.True(Median(processCpu) > Median(streamingCpu), "a process per segment cannot be cheaper than the same work in a running process");
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(segment)!, true);
        }
    }
}
