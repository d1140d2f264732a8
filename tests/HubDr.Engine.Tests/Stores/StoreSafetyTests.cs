using Amazon.S3.Model;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Specialized;
using HubDr.Engine.Backup;
using HubDr.Engine.Crypto;
using HubDr.Engine.Databases;
using HubDr.Engine.Retention;
using HubDr.Engine.Stores;
using HubDr.Engine.Stores.Azure;
using HubDr.Engine.Stores.Local;
using HubDr.Engine.Stores.S3;
using Microsoft.Data.Sqlite;
using Xunit;
using Xunit.Abstractions;

namespace HubDr.Engine.Tests.Stores;

/// <summary>
/// Store safety against the real emulators and real backups: pending uploads (killed runs) are listed and removed,
/// a store HubDr did not write is refused, a running backup's lease protects it from retention, and a backup whose
/// archive disappears before it completes reports failure instead of success.
/// </summary>
public sealed class StoreSafetyTests : IAsyncLifetime
{
    private const string Pass = "store safety pass";
    private readonly ITestOutputHelper _out;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "hubdr-safety-" + Guid.NewGuid().ToString("N")[..8]);
    private string _pub = "";
    private string _sec = "";
    private string _db = "";

    public StoreSafetyTests(ITestOutputHelper output)
    {
        _out = output;
        Emu.Init();
    }

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        var key = KeyGenerator.Generate("Safety <safety@example.test>", KeyAlgorithm.EcdsaP256, Pass.ToCharArray());
        _pub = Path.Combine(_dir, "ops.pub.asc");
        _sec = Path.Combine(_dir, "ops.sec.asc");
        await File.WriteAllTextAsync(_pub, key.ArmoredPublicKey);
        await File.WriteAllTextAsync(_sec, key.ArmoredSecretKey);
        _db = Path.Combine(_dir, "hub.db");
        await using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _db, Pooling = false }.ToString());
        await c.OpenAsync();
        var cmd = c.CreateCommand();
        // About 24 MB of random blobs: several parts of the dump, several multipart parts of the archive.
        cmd.CommandText = "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 2400) INSERT INTO t SELECT i, randomblob(10000) FROM n;";
        await cmd.ExecuteNonQueryAsync();
    }

    public Task DisposeAsync()
    {
        try
        {
            Directory.Delete(_dir, true);
        }
        catch (IOException)
        {
        }

        return Task.CompletedTask;
    }

    private BackupRequest Request(StoreSpec store, TimeSpan? renew = null) => new()
    {
        Hub = "contoso",
        Store = store,
        Database = new DatabaseSpec { Engine = "sqlite", ConnectionString = _db },
        RecipientKeys = [_pub],
        SigningKeys = [_sec],
        SigningPassphrase = Pass.ToCharArray(),
        Compression = "none",
        LeaseRenewInterval = renew ?? BackupLease.DefaultRenewInterval,
    };

    /// <summary>A log that runs an action (synchronously, on the engine's thread) when a message appears.</summary>
    private sealed class HookLog(ITestOutputHelper output, string trigger, Func<Task> action) : IOperationLog
    {
        public bool Fired { get; private set; }

        public void Verbose(string message)
        {
            output.WriteLine("VERBOSE " + message);
            if (!Fired && message.Contains(trigger, StringComparison.Ordinal))
            {
                Fired = true;
                action().GetAwaiter().GetResult();
            }
        }

        public void Warning(string message) => output.WriteLine("WARNING " + message);

        public void Progress(string activity, string status, long done, long? total)
        {
        }

        public void ProgressComplete(string activity)
        {
        }
    }

    [Fact]
    public async Task S3AbandonedMultipartUploadIsListedAndAborted()
    {
        var bucket = await Emu.NewBucketAsync();
        await using var store = new S3Store(Emu.S3Spec($"s3://{bucket}/prod"));
        using var admin = Emu.S3Admin();
        // What a killed process leaves: an initiated multipart upload with one part, never completed or aborted.
        var init = await admin.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = bucket, Key = "prod/contoso/20261126T093615Z-1a2b3c/archive.tar.zst.gpg" });
        await admin.UploadPartAsync(new UploadPartRequest { BucketName = bucket, Key = "prod/contoso/20261126T093615Z-1a2b3c/archive.tar.zst.gpg", UploadId = init.UploadId, PartNumber = 1, InputStream = new MemoryStream(new byte[5 * 1024 * 1024]) });
        var other = await admin.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = bucket, Key = "elsewhere/file.bin" });

        var pending = new List<PendingUpload>();
        await foreach (var p in store.ListPendingAsync("contoso/", default))
        {
            pending.Add(p);
        }

        var one = Assert.Single(pending);
        Assert.Equal("contoso/20261126T093615Z-1a2b3c/archive.tar.zst.gpg", one.Key);
        Assert.Equal(init.UploadId, one.UploadId);
        Assert.Equal("multipart upload", one.Kind);
        await store.AbortPendingAsync(one, default);
        await store.AbortPendingAsync(one, default); // already gone: not an error
        var left = await admin.ListMultipartUploadsAsync(new ListMultipartUploadsRequest { BucketName = bucket });
        Assert.Equal([other.UploadId], (left.MultipartUploads ?? []).Select(u => u.UploadId).ToList());
    }

    [Fact]
    public async Task AzureUncommittedBlobIsListedAndDiscarded()
    {
        var container = await Emu.NewContainerAsync();
        await using var store = new AzureBlobStore(Emu.AzureSpec($"az://devstoreaccount1/{container}/prod"));
        var admin = new BlobContainerClient(Emu.AzureConnectionString, container);
        var blob = admin.GetBlockBlobClient("prod/contoso/20261126T093615Z-1a2b3c/archive.tar.zst.gpg");
        await blob.StageBlockAsync(AzureBlobStore.BlockId(Guid.NewGuid(), 1), new MemoryStream(new byte[1024 * 1024]));
        await admin.GetBlockBlobClient("prod/contoso/20261126T093615Z-1a2b3c/catalog.json").UploadAsync(new MemoryStream("{}"u8.ToArray()));

        var pending = new List<PendingUpload>();
        await foreach (var p in store.ListPendingAsync("contoso/", default))
        {
            pending.Add(p);
        }

        var one = Assert.Single(pending);
        Assert.Equal("contoso/20261126T093615Z-1a2b3c/archive.tar.zst.gpg", one.Key);
        Assert.Equal("uncommitted blob", one.Kind);
        await store.AbortPendingAsync(one, default);
        pending.Clear();
        await foreach (var p in store.ListPendingAsync("", default))
        {
            pending.Add(p);
        }

        Assert.Empty(pending);
        var names = new List<string>();
        await foreach (var b in admin.GetBlobsAsync(new global::Azure.Storage.Blobs.Models.GetBlobsOptions { States = global::Azure.Storage.Blobs.Models.BlobStates.Uncommitted }))
        {
            names.Add(b.Name);
        }

        Assert.Equal(["prod/contoso/20261126T093615Z-1a2b3c/catalog.json"], names);
    }

    [Fact]
    public async Task LocalTempFilesAreListedAsPendingAndRemoved()
    {
        var root = Path.Combine(_dir, "local");
        Directory.CreateDirectory(Path.Combine(root, "contoso", "20261126T093615Z-1a2b3c"));
        var temp = Path.Combine(root, "contoso", "20261126T093615Z-1a2b3c", LocalFolderStore.TempPrefix + "abc");
        await File.WriteAllBytesAsync(temp, new byte[4096]);
        await using var store = new LocalFolderStore(root);
        Assert.Empty(await Emu.ListAllAsync(store, ""));
        var pending = new List<PendingUpload>();
        await foreach (var p in store.ListPendingAsync("contoso/", default))
        {
            pending.Add(p);
        }

        var one = Assert.Single(pending);
        Assert.Equal(4096, one.Size);
        await store.AbortPendingAsync(one, default);
        Assert.False(File.Exists(temp));
        Assert.False(Directory.Exists(Path.Combine(root, "contoso")));
    }

    [Fact]
    public async Task AzureContainerWithForeignBlobsIsRefusedAndNothingIsWritten()
    {
        var container = await Emu.NewContainerAsync();
        var admin = new BlobContainerClient(Emu.AzureConnectionString, container);
        foreach (var name in new[] { "photos/holiday/img.jpg", "photos/contoso/20240101T000000Z-abcdef/archive.tar.zst.gpg", "photos/src/HubDr.Engine/x.cs" })
        {
            await admin.GetBlockBlobClient(name).UploadAsync(new MemoryStream(new byte[10]));
        }

        await using var store = new AzureBlobStore(Emu.AzureSpec($"az://devstoreaccount1/{container}/photos"));
        var e = await Assert.ThrowsAsync<HubDrException>(() => CatalogService.ListAsync(store, null, default, includePending: true));
        Assert.Equal("StoreNotInitialized", e.ErrorId);
        var request = new RetentionRequest { Policy = new RetentionPolicy { KeepLast = 1 }, IncompleteGracePeriod = TimeSpan.Zero };
        e = await Assert.ThrowsAsync<HubDrException>(() => RetentionService.PlanAsync(store, request, NullOperationLog.Instance, default));
        Assert.Equal("StoreNotInitialized", e.ErrorId);
        Assert.Equal(StoreKind.Foreign, (await StoreMarker.InspectAsync(store, default)).Kind);
        var names = new List<string>();
        await foreach (var b in admin.GetBlobsAsync())
        {
            names.Add(b.Name);
        }

        Assert.Equal(3, names.Count);
    }

    [Fact]
    public async Task RetentionWithZeroGraceNeverRemovesARunningBackupAndTheLeaseIsRenewedAndRemoved()
    {
        var bucket = await Emu.NewBucketAsync();
        var spec = Emu.S3Spec($"s3://{bucket}/prod");
        await using var probe = new S3Store(spec);
        List<RetentionItem>? during = null;
        LeaseRecord? seen = null;
        var renewedTwice = false;
        var log = new HookLog(_out, "Dumping the database", async () =>
        {
            // The backup is running (lease written, archive upload open). Wait for a heartbeat, then run retention.
            var deadline = DateTime.UtcNow.AddSeconds(20);
            LeaseRecord? first = null;
            while (DateTime.UtcNow < deadline && !renewedTwice)
            {
                var listing = (await CatalogService.ListAsync(probe, "contoso", default, includePending: true)).Single();
                seen = listing.Lease?.Record;
                first ??= seen;
                renewedTwice = seen is not null && first is not null && seen.RenewedUtc > first.RenewedUtc;
                await Task.Delay(200);
            }

            var request = new RetentionRequest { Policy = new RetentionPolicy { KeepLast = 1 }, IncompleteGracePeriod = TimeSpan.Zero };
            var plan = await RetentionService.PlanAsync(probe, request, NullOperationLog.Instance, default);
            during = plan.Items;
            await RetentionService.DeleteAsync(probe, plan.Items.Where(i => i.WillDelete).Select(i => i.Backup).ToList(), NullOperationLog.Instance, default);
        });
        var outcome = await BackupService.CreateAsync(Request(spec, TimeSpan.FromMilliseconds(500)), log, default);
        Assert.True(log.Fired);
        Assert.True(renewedTwice, "the heartbeat renews the lease while the backup runs");
        Assert.NotNull(seen);
        Assert.Equal(Environment.ProcessId, seen!.ProcessId);
        var item = Assert.Single(during!);
        Assert.Equal(RetentionAction.KeepIncomplete, item.Action);
        Assert.True(item.Backup.IsRunning);
        Assert.Contains("running", item.Reasons[0], StringComparison.Ordinal);

        var after = (await CatalogService.ListAsync(probe, "contoso", default, includePending: true)).Single();
        Assert.True(after.IsComplete);
        Assert.Equal(outcome.Catalog.BackupId, after.BackupId);
        Assert.DoesNotContain(after.Objects, o => o.Key.EndsWith("/lease.json", StringComparison.Ordinal));
        Assert.Empty(after.Pending);
    }

    [Fact]
    public async Task ABackupWhoseArchiveIsDeletedBeforeItCompletesReportsFailure()
    {
        var bucket = await Emu.NewBucketAsync();
        var spec = Emu.S3Spec($"s3://{bucket}/prod");
        using var admin = Emu.S3Admin();
        // After the archive upload completed, before the signatures and the catalog are written: delete the archive
        // (what a retention run with a zero grace period did to a running backup before leases existed).
        var log = new HookLog(_out, "Archive uploaded", async () =>
        {
            var keys = await admin.ListObjectsV2Async(new ListObjectsV2Request { BucketName = bucket, Prefix = "prod/contoso/" });
            foreach (var o in keys.S3Objects.Where(o => o.Key.EndsWith(".gpg", StringComparison.Ordinal)))
            {
                await admin.DeleteObjectAsync(bucket, o.Key);
            }
        });
        var e = await Assert.ThrowsAsync<HubDrException>(() => BackupService.CreateAsync(Request(spec), log, default));
        _out.WriteLine(e.Message);
        Assert.True(log.Fired);
        Assert.Equal("BackupSelfCheckFailed", e.ErrorId);
        Assert.Contains("archive.tar.gpg' is missing", e.Message, StringComparison.Ordinal);
        var id = HubDrException.BackupIdOf(e);
        Assert.NotNull(id);
        await using var store = new S3Store(spec);
        var listed = await CatalogService.ListAsync(store, "contoso", default, includePending: true);
        Assert.DoesNotContain(listed, b => b.IsComplete); // never listed as a complete backup
    }

    [Fact]
    public async Task FailedBackupCarriesItsBackupId()
    {
        var root = Path.Combine(_dir, "failing");
        Directory.CreateDirectory(root);
        var spec = new StoreSpec { Uri = root };
        var request = Request(spec);
        var bad = new BackupRequest
        {
            Hub = request.Hub,
            Store = spec,
            Database = request.Database,
            RecipientKeys = request.RecipientKeys,
            SigningKeys = request.SigningKeys,
            SigningPassphrase = request.SigningPassphrase,
            Compression = "none",
            PartSize = 1024 * 1024,
        };
        // The store's folder vanishes after pre-flight, while the archive is being written.
        var log = new HookLog(_out, "Dumping the database", () =>
        {
            Directory.Delete(root, true);
            return Task.CompletedTask;
        });
        var e = await Assert.ThrowsAnyAsync<Exception>(() => BackupService.CreateAsync(bad, log, default));
        _out.WriteLine(e.GetType().Name + ": " + e.Message);
        Assert.Matches("^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$", HubDrException.BackupIdOf(e));
    }

    [Fact]
    public async Task NextBackupAbortsTheHubsStaleMultipartUploads()
    {
        var bucket = await Emu.NewBucketAsync();
        var spec = Emu.S3Spec($"s3://{bucket}/prod");
        using var admin = Emu.S3Admin();
        // A killed run of hub contoso (no lease left) and an upload of another hub: only the first goes.
        var killed = await admin.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = bucket, Key = "prod/contoso/20261126T093615Z-1a2b3c/archive.tar.gpg" });
        var otherHub = await admin.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = bucket, Key = "prod/fabrikam/20261126T093615Z-4d5e6f/archive.tar.gpg" });
        var request = Request(spec);
        var fresh = new BackupRequest
        {
            Hub = request.Hub,
            Store = spec,
            Database = request.Database,
            RecipientKeys = request.RecipientKeys,
            SigningKeys = request.SigningKeys,
            SigningPassphrase = request.SigningPassphrase,
            Compression = "none",
            StalePendingAge = TimeSpan.Zero,
        };
        var outcome = await BackupService.CreateAsync(fresh, new HookLog(_out, "never", () => Task.CompletedTask), default);
        var left = (await admin.ListMultipartUploadsAsync(new ListMultipartUploadsRequest { BucketName = bucket })).MultipartUploads ?? [];
        Assert.Equal([otherHub.UploadId], left.Select(u => u.UploadId).ToList());
        Assert.NotEqual(killed.UploadId, otherHub.UploadId);
        Assert.Equal("contoso", outcome.Catalog.Hub);
    }
}
