using System.Diagnostics;
using HubDr.Engine.Stores;
using HubDr.Engine.Stores.Azure;
using HubDr.Engine.Stores.S3;
using Xunit;
using Xunit.Abstractions;

namespace HubDr.Engine.Tests.Stores;

/// <summary>Failures against the real emulators: a killed server, 503 SlowDown, a dropped connection.</summary>
public sealed class StoreFaultTests
{
    private readonly ITestOutputHelper _out;

    public StoreFaultTests(ITestOutputHelper output)
    {
        _out = output;
        Emu.Init();
    }

    private static byte[] Block(int size)
    {
        var b = new byte[size];
        Random.Shared.NextBytes(b);
        return b;
    }

    [Fact]
    public async Task S3EmulatorStoppedMidUploadFailsCleanlyAndLeavesNothing()
    {
        await using var emu = new PrivateS3Emulator();
        await emu.StartAsync();
        var bucket = await Emu.NewBucketAsync(emu.Endpoint);
        await using var store = new S3Store(Emu.S3Spec($"s3://{bucket}/p", emu.Endpoint, maxRetries: 2));
        var block = Block(1024 * 1024);
        var e = await Assert.ThrowsAsync<HubDrException>(async () =>
        {
            await using var upload = await store.BeginUploadAsync("a.bin", StoreWriteOptions.Default, default);
            for (var i = 0; i < 40; i++)
            {
                if (i == 20)
                {
                    emu.Kill();
                }

                await upload.Content.WriteAsync(block);
            }

            await upload.CompleteAsync(default);
        });
        _out.WriteLine(e.Message);
        Assert.Equal("StoreUnavailable", e.ErrorId);
        Assert.Contains("a.bin", e.Message);
        await emu.StartAsync(); // same data folder and port
        Assert.Empty(await Emu.ListAllAsync(store, ""));
    }

    [Fact]
    public async Task AzureEmulatorUnreachableMidUploadFailsCleanly()
    {
        // Azurite cannot be restarted per test cheaply; a proxy that starts refusing stands in for a dead server.
        var container = await Emu.NewContainerAsync();
        var upstream = new Uri(Emu.AzureBlobEndpoint).Port;
        var dead = false;
        await using var proxy = new FaultProxy(upstream, (_, _) => dead ? FaultProxy.Action.DropMidBody : FaultProxy.Action.Forward);
        var cs = Emu.AzureConnectionString.Replace($":{upstream}/", $":{proxy.Port}/");
        await using var store = new AzureBlobStore(Emu.AzureSpec($"az://devstoreaccount1/{container}/p", cs, maxRetries: 2));
        var block = Block(1024 * 1024);
        var e = await Assert.ThrowsAsync<HubDrException>(async () =>
        {
            await using var upload = await store.BeginUploadAsync("a.bin", StoreWriteOptions.Default, default);
            for (var i = 0; i < 40; i++)
            {
                dead |= i == 20;
                await upload.Content.WriteAsync(block);
            }

            await upload.CompleteAsync(default);
        });
        _out.WriteLine(e.Message);
        Assert.Equal("StoreUnavailable", e.ErrorId);
        dead = false;
        Assert.Empty(await Emu.ListAllAsync(store, ""));
    }

    [Fact]
    public async Task S3Transient503SlowDownIsRetried()
    {
        var bucket = await Emu.NewBucketAsync();
        var upstream = new Uri(Emu.S3Endpoint).Port;
        await using var proxy = new FaultProxy(upstream, (n, _) => n <= 3 ? FaultProxy.Action.Fail503 : FaultProxy.Action.Forward);
        await using var store = new S3Store(Emu.S3Spec($"s3://{bucket}/p", $"http://127.0.0.1:{proxy.Port}", maxRetries: 4)) { PartSize = 5 * 1024 * 1024 };
        await store.PutAsync("small.json", "{}"u8.ToArray(), StoreWriteOptions.Default, default);
        Assert.Equal(3, proxy.Failed503);

        // And in the middle of a multipart upload: every 4th request is refused.
        proxy.Decide = (n, _) => n % 4 == 0 ? FaultProxy.Action.Fail503 : FaultProxy.Action.Forward;
        var data = Block(12 * 1024 * 1024);
        await using (var up = await store.BeginUploadAsync("big.bin", StoreWriteOptions.Default, default))
        {
            await up.Content.WriteAsync(data);
            await up.CompleteAsync(default);
        }

        Assert.True(proxy.Failed503 > 3, $"expected more 503s, got {proxy.Failed503}");
        Assert.Equal(data, await store.TryGetAsync("big.bin", default));
    }

    [Fact]
    public async Task S3PersistentSlowDownFailsWithStoreUnavailable()
    {
        var bucket = await Emu.NewBucketAsync();
        await using var proxy = new FaultProxy(new Uri(Emu.S3Endpoint).Port, (_, _) => FaultProxy.Action.Fail503);
        await using var store = new S3Store(Emu.S3Spec($"s3://{bucket}/p", $"http://127.0.0.1:{proxy.Port}", maxRetries: 2));
        var e = await Assert.ThrowsAsync<HubDrException>(() => store.PutAsync("x", new byte[] { 1 }, StoreWriteOptions.Default, default));
        Assert.Equal("StoreUnavailable", e.ErrorId);
        Assert.Equal(3, proxy.Failed503); // 1 try + 2 retries
    }

    [Fact]
    public async Task S3DroppedConnectionMidPartIsRetried()
    {
        var bucket = await Emu.NewBucketAsync();
        var dropped = 0;
        await using var proxy = new FaultProxy(new Uri(Emu.S3Endpoint).Port, (_, line) =>
            line.StartsWith("PUT ", StringComparison.Ordinal) && line.Contains("partNumber=2", StringComparison.Ordinal) && Interlocked.Increment(ref dropped) == 1
                ? FaultProxy.Action.DropMidBody : FaultProxy.Action.Forward);
        await using var store = new S3Store(Emu.S3Spec($"s3://{bucket}/p", $"http://127.0.0.1:{proxy.Port}", maxRetries: 3)) { PartSize = 5 * 1024 * 1024 };
        var data = Block(12 * 1024 * 1024);
        await using (var up = await store.BeginUploadAsync("big.bin", StoreWriteOptions.Default, default))
        {
            await up.Content.WriteAsync(data);
            await up.CompleteAsync(default);
        }

        Assert.Equal(1, proxy.Dropped);
        Assert.Equal(data, await store.TryGetAsync("big.bin", default));
    }

    [Fact]
    public async Task AzureTransient503AndDroppedBlockAreRetried()
    {
        var container = await Emu.NewContainerAsync();
        var upstream = new Uri(Emu.AzureBlobEndpoint).Port;
        await using var proxy = new FaultProxy(upstream, (n, line) => n <= 2 ? FaultProxy.Action.Fail503
            : line.Contains("comp=block&", StringComparison.Ordinal) && n == 4 ? FaultProxy.Action.DropMidBody : FaultProxy.Action.Forward);
        var cs = Emu.AzureConnectionString.Replace($":{upstream}/", $":{proxy.Port}/");
        await using var store = new AzureBlobStore(Emu.AzureSpec($"az://devstoreaccount1/{container}/p", cs, maxRetries: 4)) { BlockSize = 4 * 1024 * 1024 };
        var data = Block(10 * 1024 * 1024);
        await using (var up = await store.BeginUploadAsync("big.bin", StoreWriteOptions.Default, default))
        {
            await up.Content.WriteAsync(data);
            await up.CompleteAsync(default);
        }

        Assert.Equal(2, proxy.Failed503);
        Assert.Equal(data, await store.TryGetAsync("big.bin", default));
    }

    [Fact]
    public async Task S3ListOf10000ObjectsIsTimed()
    {
        var bucket = await Emu.NewBucketAsync();
        await using var store = new S3Store(Emu.S3Spec($"s3://{bucket}/hub"));
        var keys = Enumerable.Range(0, 10_000).Select(i => $"b/{i:D5}.json").ToList();
        var sw = Stopwatch.StartNew();
        await Parallel.ForEachAsync(keys, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (k, c) => await store.PutAsync(k, "{}"u8.ToArray(), StoreWriteOptions.Default, c));
        var put = sw.Elapsed;
        sw.Restart();
        var listed = await Emu.ListAllAsync(store, "");
        var list = sw.Elapsed;
        _out.WriteLine($"PUT 10000 small objects: {put.TotalSeconds:F1} s; ListAsync 10000: {list.TotalSeconds:F2} s");
        File.AppendAllText(Path.Combine(Path.GetTempPath(), "hubdr-stores-timing.txt"), $"{DateTime.UtcNow:o} put10000={put.TotalSeconds:F1}s list10000={list.TotalSeconds:F2}s\n");
        Assert.Equal(keys, listed.Select(o => o.Key));
    }
}
