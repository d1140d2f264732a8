using System.Text;
using HubDr.Engine.Backup;
using HubDr.Engine.Databases.Postgres.Pitr;
using HubDr.Engine.LogArchive;
using HubDr.Engine.Monitoring;
using HubDr.Engine.Stores.Local;
using HubDr.Engine.Tests.Crypto;
using Xunit;

namespace HubDr.Engine.Tests.Pitr;

/// <summary>WAL naming, the signed index (tampering, conflicts, compaction), the writer's skip/conflict rules and the
/// metrics file, against a real local store and real OpenPGP keys; no database needed.</summary>
[Collection("PitrKeys")]
public sealed class LogArchiveUnitTests(CryptoFixture keys)
{
    private const long Seg = 16 << 20;

    [Theory]
    [InlineData("0/0", 0UL)]
    [InlineData("0/3000028", 0x3000028UL)]
    [InlineData("16/B374D848", 0x16_B374D848UL)]
    [InlineData("FFFFFFFF/FFFFFFFF", ulong.MaxValue)]
    public void LsnRoundTrips(string text, ulong value)
    {
        Assert.True(Wal.TryParseLsn(text, out var v));
        Assert.Equal(value, v);
        Assert.Equal(text, Wal.FormatLsn(value));
    }

    [Theory]
    [InlineData("")]
    [InlineData("3000028")]
    [InlineData("0/")]
    [InlineData("/1")]
    [InlineData("0/G")]
    [InlineData("123456789/0")]
    public void BadLsnsAreRejected(string text) => Assert.False(Wal.TryParseLsn(text, out _));

    [Fact]
    public void SegmentNamesFollowPostgres()
    {
        // 16 MiB: 256 segments per xlogid; 1 MiB: 4096.
        Assert.Equal("000000010000000000000003", Wal.SegmentFileName(1, 3, Seg));
        Assert.Equal("0000000200000001000000FF", Wal.SegmentFileName(2, 0x1FF, Seg));
        Assert.Equal("000000010000000100000000", Wal.SegmentFileName(1, 4096, 1 << 20));
        Assert.True(Wal.TryParseSegmentFileName("0000000200000001000000FF", Seg, out var tli, out var no));
        Assert.Equal((2u, 0x1FFUL), (tli, no));
        Assert.False(Wal.TryParseSegmentFileName("000000010000000000000100", Seg, out _, out _)); // only 256 per xlogid
        Assert.False(Wal.TryParseSegmentFileName("00000001000000000000000g", Seg, out _, out _));
        Assert.Equal(16L << 20, Wal.ParseSegmentSize("16MB"));
        Assert.Equal(1L << 30, Wal.ParseSegmentSize("1GB"));
        Assert.Throws<HubDrException>(() => Wal.ParseSegmentSize("3MB"));
    }

    [Fact]
    public void LayoutRoundTripsEveryObjectKind()
    {
        var layout = new WalStreamLayout(Seg);
        var objects = new[]
        {
            layout.Segment(1, 3),
            layout.Partial(1, 0x3000000UL + 0x1234),
            layout.Segment(0x1A, 0x1FF),
            WalStreamLayout.History(2),
        };
        foreach (var o in objects)
        {
            var key = layout.ObjectKey("acme", o);
            Assert.True(layout.TryParseObjectKey("acme", key, out var parsed), key);
            Assert.Equal(o, parsed);
        }

        Assert.Equal("acme/_wal/00000001/000000010000000000000003.partial-0000000003001234.zst.gpg", layout.ObjectKey("acme", objects[1]));
        Assert.Equal("acme/_wal/history/00000002.history.zst.gpg", layout.ObjectKey("acme", objects[3]));
        foreach (var bad in new[]
                 {
                     "acme/_wal/00000001/000000010000000000000003.zst.gpg.sig",
                     "acme/_wal/00000002/000000010000000000000003.zst.gpg", // timeline folder and name disagree
                     "acme/_wal/00000001/000000010000000000000003.partial-0000000004000000.zst.gpg", // end beyond the segment
                     "acme/_wal/index/00000001/x.json",
                     "other/_wal/00000001/000000010000000000000003.zst.gpg",
                 })
        {
            Assert.False(layout.TryParseObjectKey("acme", bad, out _), bad);
        }
    }

    [Fact]
    public void TimelineHistoryParsesAndGivesThePath()
    {
        var h = TimelineHistory.Parse(3, "1\t0/3000158\tno recovery target specified\n\n2\t0/5000000\tbefore 2026-12-01 03:39:30+00\n");
        Assert.Equal(2, h.Ancestors.Count);
        var path = h.PathFrom(1, 0x2000028);
        Assert.Equal([(1u, 0x2000028UL, (ulong?)0x3000158UL), (2u, 0x3000158UL, (ulong?)0x5000000UL), (3u, 0x5000000UL, (ulong?)null)], path);
        Assert.Equal([(3u, 0x6000000UL, (ulong?)null)], h.PathFrom(2, 0x6000000)); // a backup that starts after timeline 2 ended replays only timeline 3
        Assert.Equal(TimelineHistory.FromBranches(3, h.ToBranches()).Ancestors, h.Ancestors);
        Assert.Equal("PitrTimelineNotReachable", Assert.Throws<HubDrException>(() => h.PathFrom(7, 0)).ErrorId);
        Assert.Equal("TimelineHistoryInvalid", Assert.Throws<HubDrException>(() => TimelineHistory.Parse(2, "x\ty\n")).ErrorId);
    }

    [Fact]
    public async Task Writer_SkipsIdenticalObjects_RefusesDifferentOnes_NeverOverwrites()
    {
        using var dir = new TempStore();
        var store = new LocalFolderStore(dir.Path);
        var layout = new WalStreamLayout(1 << 20);
        var writer = new LogArchiveWriter(store, "acme", layout, PitrKeys.Archive(keys), null, null) { SystemId = "42" };
        var seg = layout.Segment(1, 5);
        var data = Encoding.ASCII.GetBytes(new string('w', 1 << 20));
        var first = await writer.WriteAsync(seg, data, null, CancellationToken.None);
        Assert.False(first.Skipped);
        await writer.CommitAsync([first.Entry], CancellationToken.None);

        // Another writer (a restarted archiver) learns what is archived from the signed index.
        var again = new LogArchiveWriter(store, "acme", layout, PitrKeys.Archive(keys), null, null);
        await again.LoadAsync(null, CancellationToken.None);
        var second = await again.WriteAsync(seg, data, null, CancellationToken.None);
        Assert.True(second.Skipped);
        var stored = await File.ReadAllBytesAsync(Path.Combine(dir.Path, layout.ObjectKey("acme", seg)));
        data[100] = (byte)'x';
        var conflict = await Assert.ThrowsAsync<HubDrException>(() => again.WriteAsync(seg, data, null, CancellationToken.None));
        Assert.Equal("LogObjectConflict", conflict.ErrorId);
        Assert.Equal(stored, await File.ReadAllBytesAsync(Path.Combine(dir.Path, layout.ObjectKey("acme", seg))));

        // The object is OpenPGP to the recipients and its detached signature verifies over the stored bytes.
        var check = HubDr.Engine.Crypto.OpenPgpSignatures.Verify(new MemoryStream(stored), await File.ReadAllBytesAsync(Path.Combine(dir.Path, layout.ObjectKey("acme", seg) + ".sig")), keys.Public(keys.Ops));
        Assert.True(check.IsValid, check.Reason);
        var ids = HubDr.Engine.Crypto.OpenPgpEncryption.ReadRecipientKeyIds(new MemoryStream(stored));
        Assert.Equal(2, ids.Count);
        Assert.DoesNotContain("wwwwwwww", Encoding.ASCII.GetString(stored)); // no plaintext in the object
        var index = Directory.EnumerateFiles(Path.Combine(dir.Path, "acme", "_wal", "index"), "*.json", SearchOption.AllDirectories).Single();
        Assert.DoesNotContain(Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(Encoding.ASCII.GetBytes(new string('w', 1 << 20)))).ToLowerInvariant(),
            await File.ReadAllTextAsync(index)); // no plaintext hash in the public index
    }

    [Fact]
    public async Task Index_TamperedOrUntrustedBatchesAreReportedAndIgnored_CompactionMergesAndDropsSupersededPartials()
    {
        using var dir = new TempStore();
        var store = new LocalFolderStore(dir.Path);
        var layout = new WalStreamLayout(1 << 20);
        var writer = new LogArchiveWriter(store, "acme", layout, PitrKeys.Archive(keys), null, null) { SystemId = "42" };
        for (ulong s = 2; s < 6; s++)
        {
            var start = s << 20;
            foreach (var end in new[] { start + 1000, start + 5000 })
            {
                var p = await writer.WriteAsync(layout.Partial(1, end), new byte[end - start], null, CancellationToken.None);
                await writer.CommitAsync([p.Entry], CancellationToken.None);
            }

            var seg = await writer.WriteAsync(layout.Segment(1, s), new byte[1 << 20], null, CancellationToken.None);
            await writer.CommitAsync([seg.Entry], CancellationToken.None);
            await writer.DeleteSupersededPartialsAsync("00000001", layout.Segment(1, s).Name, CancellationToken.None);
        }

        var partial = await writer.WriteAsync(layout.Partial(1, (6UL << 20) + 77), new byte[77], null, CancellationToken.None);
        await writer.CommitAsync([partial.Entry], CancellationToken.None);
        var trusted = PitrKeys.Trusted(keys);
        var before = await LogIndex.LoadAsync(store, "acme", layout, trusted, CancellationToken.None);
        Assert.Equal(13, before.Batches.Count);
        Assert.Empty(before.Problems);
        var listing = await LogContinuity.ListObjectsAsync(store, "acme", layout, CancellationToken.None);
        var report = LogContinuity.Check(before, listing, [new LogRange("00000001", 2UL << 20, null)]);
        Assert.True(report.IsContinuous, string.Join("; ", report.Gaps.Concat<object>(report.Problems)));
        Assert.Equal(5, report.Objects.Count); // four segments and the newest partial; superseded partials are gone
        Assert.Equal("0/60004D", report.NewestPosition);

        var removed = await writer.CompactAsync("00000001", CancellationToken.None);
        Assert.Equal(13, removed);
        var after = await LogIndex.LoadAsync(store, "acme", layout, trusted, CancellationToken.None);
        Assert.Single(after.Batches);
        Assert.True(after.Batches[0].Batch.Compacted);
        Assert.Equal(5, after.Items.Count());
        Assert.True(LogContinuity.Check(after, listing, [new LogRange("00000001", 2UL << 20, null)]).IsContinuous);

        // A tampered batch is reported and its entries are not trusted; so is one signed by an unknown key.
        var batch = Directory.EnumerateFiles(Path.Combine(dir.Path, "acme", "_wal", "index"), "*.json", SearchOption.AllDirectories).Single();
        var json = await File.ReadAllTextAsync(batch);
        await File.WriteAllTextAsync(batch, json.Replace("\"size\": ", "\"size\": 1", StringComparison.Ordinal));
        var tampered = await LogIndex.LoadAsync(store, "acme", layout, trusted, CancellationToken.None);
        Assert.Empty(tampered.Items);
        Assert.Contains(tampered.Problems, p => p.Kind == "IndexSignatureBadSignature");
        var gap = LogContinuity.Check(tampered, listing, [new LogRange("00000001", 2UL << 20, null)]);
        Assert.Contains(gap.Problems, p => p.Kind == "ObjectNotIndexed");

        await File.WriteAllTextAsync(batch, json);
        await File.WriteAllBytesAsync(batch + ".sig", HubDr.Engine.Crypto.OpenPgpSignatures.SignDetached(Encoding.UTF8.GetBytes(json), keys.Secret(keys.Other), keys.Other.Key.Fingerprint, CryptoFixture.OtherPass.ToCharArray()));
        var untrusted = await LogIndex.LoadAsync(store, "acme", layout, trusted, CancellationToken.None);
        Assert.Empty(untrusted.Items);
        Assert.Contains(untrusted.Problems, p => p.Kind == "IndexSignatureUntrustedSigner");
    }

    [Fact]
    public void ArchiverMetrics_ShareTheBackupMetricsFile()
    {
        var dir = Directory.CreateTempSubdirectory("hubdr-pitr-prom-").FullName;
        try
        {
            var path = Path.Combine(dir, "hubdr.prom");
            new MetricsFile(path).Record(new OperationOutcome("backup", "acme", true, DateTimeOffset.UtcNow, TimeSpan.FromSeconds(3), 100));
            var m = new PrometheusLogArchiveMetrics(path) { MinInterval = TimeSpan.Zero };
            m.Report(new LogArchiveStatus { Hub = "acme", Stream = "postgres-wal", LagSeconds = 12.5, FailuresTotal = 2, ArchivedPositionValue = 0x3000000, Connected = true, LastArchivedUtc = DateTimeOffset.UtcNow });
            m.Report(new LogArchiveStatus { Hub = "acme", Stream = "postgres-wal", LagSeconds = 0, FailuresTotal = 3, ArchivedPositionValue = 0x4000000, Connected = true });
            var samples = new MetricsFile(path).Read();
            Assert.Contains(samples, s => s.Name == "hubdr_backup_success_total" && s.Value == 1); // untouched
            Assert.Equal(0, m.Read("hubdr_wal_archive_lag_seconds", "acme"));
            Assert.Equal(3, m.Read("hubdr_wal_archive_failures_total", "acme"));
            Assert.Equal(0x4000000, m.Read("hubdr_wal_archive_last_position_bytes", "acme"));
            new MetricsFile(path).Record(new OperationOutcome("backup", "acme", true, DateTimeOffset.UtcNow, TimeSpan.FromSeconds(3), 100));
            Assert.Equal(3, m.Read("hubdr_wal_archive_failures_total", "acme")); // the backup metrics keep the archiver's samples

            // A new archiver process keeps counting from the file's value.
            var next = new PrometheusLogArchiveMetrics(path) { MinInterval = TimeSpan.Zero };
            next.Report(new LogArchiveStatus { Hub = "acme", Stream = "postgres-wal", FailuresTotal = 1 });
            Assert.Equal(4, next.Read("hubdr_wal_archive_failures_total", "acme"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void BaseBackupCatalog_IsACatalogRecordPlusKindAndPitr()
    {
        var record = new CatalogRecord { BackupId = "20261201T000000Z-abcdef", Hub = "acme", Engine = "postgres", Archive = "archive.tar.zst.gpg" };
        var pitr = new BaseBackupPitrInfo { SystemId = "42", Timeline = 1, StartLsn = "0/2000028", StopLsn = "0/2000100", WalFirst = "000000010000000000000002", WalLast = "000000010000000000000002", SegmentSize = Seg };
        var bytes = BaseBackupCatalog.Serialize(record, pitr);
        var plain = HubJson.Deserialize<CatalogRecord>(bytes, "catalog"); // what Get-HubBackup reads
        Assert.Equal("20261201T000000Z-abcdef", plain.BackupId);
        var (r, p) = BaseBackupCatalog.Parse(bytes, "catalog");
        Assert.Equal("acme", r.Hub);
        Assert.Equal("0/2000100", p!.StopLsn);
        Assert.Contains("\"kind\": \"base\"", Encoding.UTF8.GetString(bytes));
        Assert.Null(BaseBackupCatalog.Parse(HubJson.Serialize(record), "catalog").Pitr); // a logical backup's catalog
    }
}
