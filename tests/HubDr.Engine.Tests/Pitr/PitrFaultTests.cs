using HubDr.Engine.Crypto;
using HubDr.Engine.Databases.Postgres.Pitr;
using HubDr.Engine.LogArchive;
using HubDr.Engine.Tests.Crypto;
using HubDr.Engine.Tests.Stores;
using Xunit;
using Xunit.Abstractions;

namespace HubDr.Engine.Tests.Pitr;

[Collection("PitrKeys")]
public sealed class PitrFaultTests(CryptoFixture keys, ITestOutputHelper output) : PitrTestBase(keys, output)
{
    [Fact]
    public async Task StoreDown_S3EmulatorStoppedAndRestarted_NothingLost_LagMetricRisesAndFalls()
    {
        Emu.Init();
        await using var emu = new PrivateS3Emulator();
        await emu.StartAsync();
        var bucket = await Emu.NewBucketAsync(emu.Endpoint);
        var spec = Emu.S3Spec($"s3://{bucket}/pitr", emu.Endpoint, maxRetries: 1);
        var metricsDir = Directory.CreateTempSubdirectory("hubdr-pitr-metrics-").FullName;
        var metrics = new PrometheusLogArchiveMetrics(Path.Combine(metricsDir, "hubdr.prom")) { MinInterval = TimeSpan.Zero };
        var lags = new List<(DateTime At, double Lag)>();
        var failures = new List<LogArchiveFailure>();
        var monitor = new CompositeLogArchiveMonitor(metrics, new CallbackLogArchiveMonitor(
            s => { lock (lags) { lags.Add((DateTime.UtcNow, s.LagSeconds)); } },
            f => { lock (failures) { failures.Add(f); } }));

        await using var pg = await PgCluster.CreateAsync();
        await Workload.CreateSchemaAsync(pg.ConnectionString());
        await using var archiver = new RunningArchiver(ArchiverOptions(pg, spec, "acme", partial: TimeSpan.FromSeconds(1), monitor: monitor), Log);
        await BaseBackupAsync(pg, spec, "acme");
        await using var work = new Workload(pg.ConnectionString());
        work.Start();
        await Task.Delay(2000);

        emu.Kill(); // the store goes away while the database keeps writing
        var down = DateTime.UtcNow;
        await Task.Delay(TimeSpan.FromSeconds(10));
        var lagDuringOutage = metrics.Read("hubdr_wal_archive_lag_seconds", "acme");
        Output.WriteLine($"lag after 10 s of outage: {lagDuringOutage} s; failures so far: {failures.Count}");
        Assert.NotNull(lagDuringOutage);
        Assert.True(lagDuringOutage > 5, $"lag {lagDuringOutage} s while the store was down");
        Assert.NotEmpty(failures);
        Assert.All(failures, f => Assert.False(f.Fatal));
        Assert.True(metrics.Read("hubdr_wal_archive_failures_total", "acme") > 0);

        await emu.StartAsync(); // same port, same data: the store is back
        var up = DateTime.UtcNow;
        await Task.Delay(2000);
        await work.StopAsync();
        var final = await Workload.FingerprintAsync(pg.ConnectionString());
        await archiver.WaitArchivedAsync(pg, TimeSpan.FromSeconds(90));
        await Task.Delay(1500); // a report after catching up
        var lagAfter = metrics.Read("hubdr_wal_archive_lag_seconds", "acme");
        Output.WriteLine($"lag after recovery: {lagAfter} s; max lag {lags.Max(l => l.Lag):0.0} s");
        Assert.True(lagAfter < 3, $"lag {lagAfter} s after the store came back");
        Assert.Contains(lags, l => l.At > down && l.At < up && l.Lag > 5);
        await archiver.StopAsync();

        // Nothing lost: the archive is continuous and restores to the final state.
        var continuity = await WalContinuityService.CheckAsync(spec, "acme", PitrKeys.Trusted(Keys), null, deep: false, null, Log, CancellationToken.None);
        Assert.True(continuity.IsContinuous, continuity.ToString());
        var (_, restored) = await RestoreAsync(pg, spec, "acme", null);
        await using (restored)
        {
            Assert.Equal(final, await Workload.FingerprintAsync(restored.ConnectionString()));
        }

        Directory.Delete(metricsDir, true);
    }

    [Fact]
    public async Task DeletedWalObject_ContinuityNamesTheGap_RestorePastItRefuses_BeforeItStillPlans()
    {
        var reference = await ReferenceArchive.GetAsync(Keys, Log);
        using var store = reference.CopyStore();
        var deleted = reference.SegmentObject(1);
        File.Delete(Path.Combine(store.Path, deleted));
        File.Delete(Path.Combine(store.Path, deleted + ".sig"));
        var name = reference.Moments[1].WalFile;

        var continuity = await WalContinuityService.CheckAsync(store.Spec, reference.Hub, PitrKeys.Trusted(Keys), null, deep: false, null, Log, CancellationToken.None);
        Output.WriteLine(continuity.ToString());
        Assert.False(continuity.IsContinuous);
        Assert.Contains(continuity.Gaps, g => g.MissingNames.Contains(name));
        Assert.Contains(continuity.Problems, p => p.Kind == "ObjectMissing" && p.Subject.Contains(name, StringComparison.Ordinal));

        var gapRoot = PgCluster.NewRoot("gap");
        var dir = Path.Combine(gapRoot, "data");
        var past = await Assert.ThrowsAsync<HubDrException>(() => PitrRestoreService.RestoreAsync(RestoreRequest(store.Spec, reference.Hub, dir, reference.Moments[2].At), Log, CancellationToken.None));
        Assert.Equal("PitrWalGap", past.ErrorId);
        Assert.Contains(name, past.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir)); // refused before anything was extracted

        var latest = await Assert.ThrowsAsync<HubDrException>(() => PitrRestoreService.PlanAsync(RestoreRequest(store.Spec, reference.Hub, dir, null), Log, CancellationToken.None));
        Assert.Equal("PitrWalGap", latest.ErrorId);

        var before = await PitrRestoreService.PlanAsync(RestoreRequest(store.Spec, reference.Hub, dir, reference.Moments[0].At), Log, CancellationToken.None);
        Assert.DoesNotContain(before.RequiredWal, w => w.Entry.Name == name);
        Directory.Delete(gapRoot, true);
    }

    [Fact]
    public async Task TamperedWalObject_DeepCheckReportsIt_RestoreRefusesIt()
    {
        var reference = await ReferenceArchive.GetAsync(Keys, Log);
        using var store = reference.CopyStore();
        var victim = Path.Combine(store.Path, reference.SegmentObject(1));
        var bytes = await File.ReadAllBytesAsync(victim);
        bytes[bytes.Length / 2] ^= 0x20;
        await File.WriteAllBytesAsync(victim, bytes);

        var shallow = await WalContinuityService.CheckAsync(store.Spec, reference.Hub, PitrKeys.Trusted(Keys), null, deep: false, null, Log, CancellationToken.None);
        Assert.True(shallow.IsContinuous); // same size: only the signature can tell
        var deep = await WalContinuityService.CheckAsync(store.Spec, reference.Hub, PitrKeys.Trusted(Keys), null, deep: true, null, Log, CancellationToken.None);
        Output.WriteLine(deep.ToString());
        Assert.False(deep.IsContinuous);
        Assert.Contains(deep.Problems, p => p.Kind == "SignatureInvalid" && p.Subject.Contains(reference.Moments[1].WalFile, StringComparison.Ordinal));

        await AssertRestoreRefusesAsync(store, reference, reference.Moments[1].WalFile);
    }

    [Fact]
    public async Task WalObjectSignedByUntrustedKey_DeepCheckReportsIt_RestoreRefusesIt()
    {
        var reference = await ReferenceArchive.GetAsync(Keys, Log);
        using var store = reference.CopyStore();
        // An attacker with write access replaces a segment with one of their own (encrypted to the real recipients) and signs it.
        var victim = Path.Combine(store.Path, reference.SegmentObject(1));
        var forged = TestData.Encrypt(new byte[1 << 20], Keys.Public(Keys.Ops, Keys.Escrow));
        await File.WriteAllBytesAsync(victim, forged);
        await File.WriteAllBytesAsync(victim + ".sig", OpenPgpSignatures.SignDetached(forged, Keys.Secret(Keys.Other), Keys.Other.Key.Fingerprint, CryptoFixture.OtherPass.ToCharArray()));

        var deep = await WalContinuityService.CheckAsync(store.Spec, reference.Hub, PitrKeys.Trusted(Keys), null, deep: true, null, Log, CancellationToken.None);
        Assert.Contains(deep.Problems, p => p.Kind == "ObjectSizeMismatch" || p.Kind == "SignatureInvalid");
        Assert.Contains(deep.Problems, p => p.Kind == "SignatureInvalid" && p.Message.Contains("UntrustedSigner", StringComparison.Ordinal));

        await AssertRestoreRefusesAsync(store, reference, reference.Moments[1].WalFile);
    }

    [Fact]
    public async Task ValidlySignedSegmentStoredUnderAnotherName_IsRefused()
    {
        var reference = await ReferenceArchive.GetAsync(Keys, Log);
        using var store = reference.CopyStore();
        // Both objects are genuine and signed by the trusted key; one is copied over the other (a swap or a replay).
        var genuine = Path.Combine(store.Path, reference.SegmentObject(0));
        var victim = Path.Combine(store.Path, reference.SegmentObject(1));
        File.Copy(genuine, victim, overwrite: true);
        File.Copy(genuine + ".sig", victim + ".sig", overwrite: true);
        await AssertRestoreRefusesAsync(store, reference, reference.Moments[1].WalFile, "LogObjectInvalid");
    }

    /// <summary>Recovery to a moment that needs the bad file stops with the fetcher's typed error; nothing is promoted.</summary>
    private async Task AssertRestoreRefusesAsync(TempStore store, ReferenceArchive reference, string badFile, string errorId = "LogObjectSignatureInvalid")
    {
        var root = PgCluster.NewRoot("refuse");
        var dir = Path.Combine(root, "data");
        var e = await Assert.ThrowsAsync<HubDrException>(() => PitrRestoreService.RestoreAsync(RestoreRequest(store.Spec, reference.Hub, dir, reference.Moments[2].At), Log, CancellationToken.None));
        Output.WriteLine(e.Message);
        Assert.Equal(errorId, e.ErrorId);
        Assert.Contains(badFile, e.Message);
        Assert.False(File.Exists(Path.Combine(dir, "postmaster.pid")), "the cluster must not be left running");
        var log = Path.Combine(dir, "log", "hubdr-pitr-recovery.log");
        Assert.DoesNotContain("database system is ready to accept connections", File.ReadAllText(log));
        Assert.True(File.Exists(Path.Combine(dir, "recovery.signal")), "recovery never finished, so the copy was never promoted");
        Directory.Delete(root, true);
    }
}
