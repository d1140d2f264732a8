using System.Security.Cryptography;
using System.Text;
using Amazon.S3.Model;
using HubDr.Engine.Stores;
using HubDr.Engine.Stores.Azure;
using HubDr.Engine.Stores.Local;
using HubDr.Engine.Stores.S3;
using Xunit;

namespace HubDr.Engine.Tests.Stores;

/// <summary>The contract every IBackupStore meets; one subclass per backend.</summary>
public abstract class StoreContractTests : IAsyncLifetime
{
    protected IBackupStore Store { get; private set; } = null!;

    /// <summary>A store whose bucket/container/folder exists and is empty. pageSize: listing page size to force paging.</summary>
    protected abstract Task<IBackupStore> CreateStoreAsync(int pageSize);

    protected abstract IBackupStore CreateMissingStore();

    /// <summary>Part buffers the upload held at most (null when the backend does not buffer parts).</summary>
    protected virtual int? PeakBuffers(IStoreUpload upload) => null;

    protected virtual int MaxBuffers => 3;

    /// <summary>Backend-specific check after an upload was disposed without CompleteAsync.</summary>
    protected virtual Task AssertNoPendingUploadAsync(string key) => Task.CompletedTask;

    public async Task InitializeAsync() => Store = await CreateStoreAsync(7);

    public async Task DisposeAsync() => await Store.DisposeAsync();

    [Fact]
    public async Task PutThenGetRoundTrips()
    {
        var data = Encoding.UTF8.GetBytes("catalog record " + Guid.NewGuid());
        await Store.PutAsync("hub1/catalog.json", data, StoreWriteOptions.Default, default);
        Assert.Equal(data, await Store.TryGetAsync("hub1/catalog.json", default));
        await using (var s = await Store.OpenReadAsync("hub1/catalog.json", default))
        {
            Assert.Equal(data, await Emu.ReadAllAsync(s));
        }

        await Store.PutAsync("hub1/empty", ReadOnlyMemory<byte>.Empty, StoreWriteOptions.Default, default);
        Assert.Empty((await Store.TryGetAsync("hub1/empty", default))!);
        var listed = await Emu.ListAllAsync(Store, "hub1/");
        Assert.Equal(new[] { "hub1/catalog.json", "hub1/empty" }, listed.Select(o => o.Key).OrderBy(k => k, StringComparer.Ordinal));
        Assert.Equal(data.Length, listed.Single(o => o.Key == "hub1/catalog.json").Size);
    }

    [Fact]
    public async Task StreamingUploadOf50MBIsInvisibleUntilCompleteAndUsesBoundedMemory()
    {
        const int total = 50 * 1024 * 1024;
        var chunk = new byte[64 * 1024];
        var rnd = new Random(42);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        await using (var upload = await Store.BeginUploadAsync("big/archive.bin", StoreWriteOptions.Default, default))
        {
            for (var written = 0; written < total; written += chunk.Length)
            {
                rnd.NextBytes(chunk);
                sha.AppendData(chunk);
                await upload.Content.WriteAsync(chunk);
            }

            Assert.Empty(await Emu.ListAllAsync(Store, "big/"));
            Assert.Null(await Store.TryGetAsync("big/archive.bin", default));
            await upload.CompleteAsync(default);
            if (PeakBuffers(upload) is int peak)
            {
                Assert.InRange(peak, 1, MaxBuffers);
            }
        }

        var expected = sha.GetHashAndReset();
        var listed = Assert.Single(await Emu.ListAllAsync(Store, "big/"));
        Assert.Equal(total, listed.Size);
        await using var read = await Store.OpenReadAsync("big/archive.bin", default);
        Assert.Equal(expected, await SHA256.HashDataAsync(read));
    }

    [Fact]
    public async Task UploadDisposedWithoutCompleteLeavesNothing()
    {
        var block = new byte[1024 * 1024];
        Random.Shared.NextBytes(block);
        await using (var upload = await Store.BeginUploadAsync("aborted/archive.bin", StoreWriteOptions.Default, default))
        {
            for (var i = 0; i < 20; i++)
            {
                await upload.Content.WriteAsync(block); // > 2 parts: a multipart upload / staged blocks exist
            }
        }

        Assert.Empty(await Emu.ListAllAsync(Store, ""));
        Assert.Null(await Store.TryGetAsync("aborted/archive.bin", default));
        await AssertNoPendingUploadAsync("aborted/archive.bin");
    }

    [Fact]
    public async Task ListingFiltersByPrefixAndPages()
    {
        var tasks = new List<Task>();
        for (var i = 0; i < 23; i++)
        {
            tasks.Add(Store.PutAsync($"hubA/b{i:D3}/manifest.json", new byte[i], StoreWriteOptions.Default, default));
        }

        for (var i = 0; i < 4; i++)
        {
            tasks.Add(Store.PutAsync($"hubB/b{i:D3}/manifest.json", new byte[1], StoreWriteOptions.Default, default));
        }

        await Task.WhenAll(tasks);
        var a = await Emu.ListAllAsync(Store, "hubA/"); // page size 7 -> 4 pages
        Assert.Equal(23, a.Count);
        Assert.Equal(Enumerable.Range(0, 23).Select(i => $"hubA/b{i:D3}/manifest.json"), a.Select(o => o.Key).OrderBy(k => k, StringComparer.Ordinal));
        Assert.Equal(Enumerable.Range(0, 23).Select(i => (long)i), a.OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => o.Size));
        Assert.Equal(4, (await Emu.ListAllAsync(Store, "hubB/")).Count);
        Assert.Equal(27, (await Emu.ListAllAsync(Store, "")).Count);
        Assert.Single(await Emu.ListAllAsync(Store, "hubA/b007/"));
        Assert.Empty(await Emu.ListAllAsync(Store, "hubC/"));
    }

    [Fact]
    public async Task DeleteRemovesKeysAndIgnoresMissingOnes()
    {
        var keys = Enumerable.Range(0, 30).Select(i => $"del/{i:D2}.bin").ToList();
        await Task.WhenAll(keys.Select(k => Store.PutAsync(k, new byte[] { 1, 2, 3 }, StoreWriteOptions.Default, default)));
        await Store.PutAsync("keep/me.bin", new byte[] { 9 }, StoreWriteOptions.Default, default);
        var refused = await Store.DeleteAsync(keys.Concat(new[] { "keep/missing.bin" }).ToList(), default);
        Assert.Empty(refused);
        Assert.Empty(await Emu.ListAllAsync(Store, "del/"));
        Assert.Single(await Emu.ListAllAsync(Store, "keep/"));
    }

    [Fact]
    public async Task MissingStoreIsStoreNotFound()
    {
        await using var missing = CreateMissingStore();
        var e = await Assert.ThrowsAsync<HubDrException>(() => missing.EnsureAvailableAsync(default));
        Assert.Equal("StoreNotFound", e.ErrorId);
        Assert.Equal(HubErrorCategory.ObjectNotFound, e.Category);
        var e2 = await Assert.ThrowsAsync<HubDrException>(() => Emu.ListAllAsync(missing, ""));
        Assert.Equal("StoreNotFound", e2.ErrorId);
        var e3 = await Assert.ThrowsAsync<HubDrException>(() => missing.BeginUploadAsync("x.bin", StoreWriteOptions.Default, default));
        Assert.Equal("StoreNotFound", e3.ErrorId);
    }

    [Fact]
    public async Task MissingKeyIsStoreObjectNotFound()
    {
        var e = await Assert.ThrowsAsync<HubDrException>(() => Store.OpenReadAsync("nope/missing.bin", default));
        Assert.Equal("StoreObjectNotFound", e.ErrorId);
        Assert.Equal(HubErrorCategory.ObjectNotFound, e.Category);
        Assert.Null(await Store.TryGetAsync("nope/missing.bin", default));
    }
}

public sealed class LocalStoreContractTests : StoreContractTests, IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "hubdr-local-" + Guid.NewGuid().ToString("N"));

    protected override Task<IBackupStore> CreateStoreAsync(int pageSize)
    {
        Directory.CreateDirectory(_root);
        return Task.FromResult<IBackupStore>(new LocalFolderStore(_root));
    }

    protected override IBackupStore CreateMissingStore() => new LocalFolderStore(_root + "-missing");

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, true);
        }
    }
}

public sealed class S3StoreContractTests : StoreContractTests
{
    private string _bucket = "";

    protected override async Task<IBackupStore> CreateStoreAsync(int pageSize)
    {
        Emu.Init();
        _bucket = await Emu.NewBucketAsync();
        return new S3Store(Emu.S3Spec($"s3://{_bucket}/backups/prod")) { ListPageSize = pageSize };
    }

    protected override IBackupStore CreateMissingStore() => new S3Store(Emu.S3Spec("s3://hubdr-no-such-bucket-" + Guid.NewGuid().ToString("N")[..8]));

    protected override int? PeakBuffers(IStoreUpload upload) => ((S3Upload)upload).PeakBuffers;

    protected override async Task AssertNoPendingUploadAsync(string key)
    {
        using var s3 = Emu.S3Admin();
        var resp = await s3.ListMultipartUploadsAsync(new ListMultipartUploadsRequest { BucketName = _bucket });
        Assert.Empty(resp.MultipartUploads ?? []);
    }

    [Fact]
    public async Task ListsAndDeletesMoreThan1000Objects()
    {
        await using var store = new S3Store(Emu.S3Spec($"s3://{_bucket}/many")) { ListPageSize = 250 };
        var keys = Enumerable.Range(0, 1005).Select(i => $"obj/{i:D5}").ToList();
        await Parallel.ForEachAsync(keys, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (k, c) => await store.PutAsync(k, new byte[] { 7 }, StoreWriteOptions.Default, c));
        var listed = await Emu.ListAllAsync(store, "obj/");
        Assert.Equal(keys, listed.Select(o => o.Key));
        // Default page size too (1000 per ListObjectsV2 call -> 2 pages).
        await using var store2 = new S3Store(Emu.S3Spec($"s3://{_bucket}/many"));
        Assert.Equal(1005, (await Emu.ListAllAsync(store2, "")).Count);
        Assert.Empty(await store.DeleteAsync(keys, default)); // 2 DeleteObjects batches
        Assert.Empty(await Emu.ListAllAsync(store, ""));
    }

    [Fact]
    public async Task UnknownAccessKeyIsStoreAccessDenied()
    {
        // s3rver checks the access key id but not SigV4 signatures, so a wrong key id is the auth failure here.
        var spec = Emu.S3Spec($"s3://{_bucket}");
        var bad = new StoreSpec { Uri = spec.Uri, Endpoint = spec.Endpoint, AccessKeyId = "AKIANOTKNOWN", SecretAccessKey = Emu.Secure("not-the-secret"), MaxRetries = 1 };
        await using var store = new S3Store(bad);
        var e = await Assert.ThrowsAsync<HubDrException>(() => store.EnsureAvailableAsync(default));
        Assert.Equal("StoreAccessDenied", e.ErrorId);
        Assert.Equal(HubErrorCategory.PermissionDenied, e.Category);
        Assert.DoesNotContain("not-the-secret", e.Message);
    }
}

public sealed class AzureStoreContractTests : StoreContractTests
{
    private string _container = "";

    protected override async Task<IBackupStore> CreateStoreAsync(int pageSize)
    {
        Emu.Init();
        _container = await Emu.NewContainerAsync();
        return new AzureBlobStore(Emu.AzureSpec($"{Emu.AzureBlobEndpoint}/{_container}/backups/prod")) { ListPageSize = pageSize };
    }

    protected override IBackupStore CreateMissingStore() => new AzureBlobStore(Emu.AzureSpec($"az://devstoreaccount1/no-such-{Guid.NewGuid():N}"));

    protected override int? PeakBuffers(IStoreUpload upload) => ((AzureUpload)upload).PeakBuffers;

    [Fact]
    public async Task AccountKeyAndAzUriWork()
    {
        // az:// with a connection string (emulator) and https-form URI with an account key.
        await using var viaAz = new AzureBlobStore(Emu.AzureSpec($"az://devstoreaccount1/{_container}/p"));
        await viaAz.PutAsync("k", new byte[] { 1 }, StoreWriteOptions.Default, default);
        var cs = Emu.AzureConnectionString;
        var key = cs.Split(';').First(p => p.StartsWith("AccountKey=", StringComparison.Ordinal))["AccountKey=".Length..];
        await using var viaKey = new AzureBlobStore(new StoreSpec { Uri = $"{Emu.AzureBlobEndpoint}/{_container}/p", AccountKey = Emu.Secure(key) });
        Assert.Equal(new byte[] { 1 }, await viaKey.TryGetAsync("k", default));
        await using var badKey = new AzureBlobStore(new StoreSpec { Uri = $"{Emu.AzureBlobEndpoint}/{_container}/p", AccountKey = Emu.Secure(Convert.ToBase64String(new byte[64])), MaxRetries = 0 });
        var e = await Assert.ThrowsAsync<HubDrException>(() => badKey.EnsureAvailableAsync(default));
        Assert.Equal("StoreAccessDenied", e.ErrorId);
    }

    [Fact]
    public void UriFormsParse()
    {
        var a = AzureBlobStore.ParseUri("az://acct/cont/hub/prod");
        Assert.Equal(("acct", "cont", "hub/prod/"), (a.Account, a.Container, a.Prefix));
        Assert.Equal("https://acct.blob.core.windows.net/", a.ServiceUri.AbsoluteUri);
        var h = AzureBlobStore.ParseUri("https://acct.blob.core.windows.net/cont");
        Assert.Equal(("acct", "cont", ""), (h.Account, h.Container, h.Prefix));
        var e = AzureBlobStore.ParseUri("http://127.0.0.1:10000/devstoreaccount1/cont/x");
        Assert.Equal(("devstoreaccount1", "cont", "x/"), (e.Account, e.Container, e.Prefix));
        var ex = Assert.Throws<HubDrException>(() => AzureBlobStore.ParseUri("https://acct.blob.core.windows.net/cont?sv=2020&sig=SECRET"));
        Assert.DoesNotContain("SECRET", ex.Message);
    }
}
