using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using HubDr.Engine.Stores;
using HubDr.Engine.Stores.Azure;
using HubDr.Engine.Stores.S3;
using Xunit;
using Xunit.Abstractions;

namespace HubDr.Engine.Tests.Stores;

/// <summary>
/// S3 Object Lock / SSE and Azure immutability / legal hold / encryption scope. Neither emulator implements
/// these, so a recording proxy sits between the store and the real emulator: it records every request (method,
/// path, query, headers) and forwards it, or answers it itself where the test needs what a real service returns
/// (a locked object refusing deletion, a listing with immutability traits). What is asserted is what OUR code
/// puts on the wire and how it reads the service's answers.
/// </summary>
public sealed class ImmutabilityTests
{
    private static readonly DateTimeOffset Until = new(2031, 5, 6, 12, 34, 56, TimeSpan.FromHours(2)); // = 10:34:56Z
    private static readonly Regex IsoUtc = new(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", RegexOptions.CultureInvariant);
    private readonly ITestOutputHelper _out;

    public ImmutabilityTests(ITestOutputHelper output)
    {
        _out = output;
        Emu.Init();
    }

    private static byte[] Data(int size)
    {
        var b = new byte[size];
        Random.Shared.NextBytes(b);
        return b;
    }

    // ---------------------------------------------------------------- S3

    private static async Task<(RecordingProxy Proxy, S3Store Store, string Bucket)> S3Async(string? sse = null, string? kmsKeyId = null, int partSize = S3Store.DefaultPartSize)
    {
        var bucket = await Emu.NewBucketAsync();
        var upstream = new Uri(Emu.S3Endpoint).Port;
        var proxy = new RecordingProxy(upstream);
        var baseSpec = Emu.S3Spec($"s3://{bucket}/p", $"http://127.0.0.1:{proxy.Port}", maxRetries: 0);
        var spec = new StoreSpec
        {
            Uri = baseSpec.Uri,
            Endpoint = baseSpec.Endpoint,
            AccessKeyId = baseSpec.AccessKeyId,
            SecretAccessKey = baseSpec.SecretAccessKey,
            ForcePathStyle = true,
            MaxRetries = 0,
            ServerSideEncryption = sse,
            KmsKeyId = kmsKeyId,
        };
        return (proxy, new S3Store(spec) { PartSize = partSize }, bucket);
    }

    private static void AssertIsoUtc(string value, DateTimeOffset expected)
    {
        Assert.Matches(IsoUtc, value);
        var parsed = DateTimeOffset.Parse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
        Assert.Equal(expected.UtcDateTime, parsed.UtcDateTime);
    }

    /// <summary>SigV4: real S3 rejects x-amz-* headers that are not signed.</summary>
    private static void AssertSigned(RecordedRequest r, params string[] headers)
    {
        var auth = r.Header("authorization")!;
        var signed = Regex.Match(auth, "SignedHeaders=([^,]+)").Groups[1].Value.Split(';');
        foreach (var h in headers)
        {
            Assert.Contains(h, signed);
        }
    }

    [Theory]
    [InlineData("GOVERNANCE", "GOVERNANCE")]
    [InlineData("COMPLIANCE", "COMPLIANCE")]
    [InlineData("governance", "GOVERNANCE")]
    [InlineData(null, "COMPLIANCE")]
    public async Task S3PutSendsObjectLockHeaders(string? mode, string expectedMode)
    {
        var (proxy, store, bucket) = await S3Async();
        await using var _ = proxy;
        await using var __ = store;
        var data = Data(1000);
        await store.PutAsync("hub1/catalog.json", data, new StoreWriteOptions { RetainUntil = Until, LockMode = mode, LegalHold = true }, default);

        var put = Assert.Single(proxy.Requests);
        Assert.Equal("PUT", put.Method);
        Assert.Equal($"/{bucket}/p/hub1/catalog.json", put.Path);
        Assert.Equal(expectedMode, put.Header("x-amz-object-lock-mode"));
        AssertIsoUtc(put.Header("x-amz-object-lock-retain-until-date")!, Until);
        Assert.Equal("ON", put.Header("x-amz-object-lock-legal-hold"));
        Assert.NotNull(put.Header("content-md5")); // Object Lock requires Content-MD5 (or a checksum) on the PUT
        AssertSigned(put, "x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date", "x-amz-object-lock-legal-hold");
        Assert.Equal(data, await store.TryGetAsync("hub1/catalog.json", default)); // the emulator accepted it
    }

    [Fact]
    public async Task S3WithoutLockOptionsSendsNoLockHeadersAndLegalHoldAloneIsOnlyTheHold()
    {
        var (proxy, store, _) = await S3Async();
        await using var _p = proxy;
        await using var _s = store;
        await store.PutAsync("plain", Data(10), StoreWriteOptions.Default, default);
        await store.PutAsync("held", Data(10), new StoreWriteOptions { LegalHold = true }, default);

        var plain = proxy.Requests.Single(r => r.Path.EndsWith("/plain", StringComparison.Ordinal));
        Assert.DoesNotContain(plain.Headers.Keys, h => h.StartsWith("x-amz-object-lock", StringComparison.Ordinal));
        Assert.Null(plain.Header("x-amz-server-side-encryption"));
        var held = proxy.Requests.Single(r => r.Path.EndsWith("/held", StringComparison.Ordinal));
        Assert.Equal("ON", held.Header("x-amz-object-lock-legal-hold"));
        Assert.Null(held.Header("x-amz-object-lock-mode"));
        Assert.Null(held.Header("x-amz-object-lock-retain-until-date"));
    }

    [Fact]
    public async Task S3SmallStreamingUploadIsOnePutWithLockHeaders()
    {
        var (proxy, store, bucket) = await S3Async();
        await using var _p = proxy;
        await using var _s = store;
        await using (var up = await store.BeginUploadAsync("small.bin", new StoreWriteOptions { RetainUntil = Until, LockMode = "GOVERNANCE", LegalHold = true }, default))
        {
            await up.Content.WriteAsync(Data(4096));
            await up.CompleteAsync(default);
        }

        var put = Assert.Single(proxy.Requests, r => r.Method == "PUT");
        Assert.Equal($"/{bucket}/p/small.bin", put.Path);
        Assert.Equal("GOVERNANCE", put.Header("x-amz-object-lock-mode"));
        AssertIsoUtc(put.Header("x-amz-object-lock-retain-until-date")!, Until);
        Assert.Equal("ON", put.Header("x-amz-object-lock-legal-hold"));
    }

    [Fact]
    public async Task S3MultipartUploadSendsLockAndKmsHeadersOnCreateMultipartUploadOnly()
    {
        const int partSize = 5 * 1024 * 1024;
        var (proxy, store, bucket) = await S3Async("aws:kms", "arn:aws:kms:eu-west-1:111122223333:key/hubdr-test", partSize);
        await using var _p = proxy;
        await using var _s = store;
        var data = Data(partSize + partSize / 2);
        await using (var up = await store.BeginUploadAsync("big.bin", new StoreWriteOptions { RetainUntil = Until, LockMode = "COMPLIANCE", LegalHold = true }, default))
        {
            await up.Content.WriteAsync(data);
            await up.CompleteAsync(default);
        }

        foreach (var r in proxy.Requests)
        {
            _out.WriteLine($"{r.Method} {r.Path}?{r.Query}");
        }

        var create = Assert.Single(proxy.Requests, r => r.Method == "POST" && r.QueryHas("uploads"));
        Assert.Equal($"/{bucket}/p/big.bin", create.Path);
        Assert.Equal("COMPLIANCE", create.Header("x-amz-object-lock-mode"));
        AssertIsoUtc(create.Header("x-amz-object-lock-retain-until-date")!, Until);
        Assert.Equal("ON", create.Header("x-amz-object-lock-legal-hold"));
        Assert.Equal("aws:kms", create.Header("x-amz-server-side-encryption"));
        Assert.Equal("arn:aws:kms:eu-west-1:111122223333:key/hubdr-test", create.Header("x-amz-server-side-encryption-aws-kms-key-id"));
        AssertSigned(create, "x-amz-object-lock-mode", "x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id");

        // S3 rejects lock/SSE headers on UploadPart and CompleteMultipartUpload: they belong to the create only.
        var parts = proxy.Requests.Where(r => r.Method == "PUT" && r.QueryHas("partNumber")).ToList();
        Assert.Equal(2, parts.Count);
        var complete = Assert.Single(proxy.Requests, r => r.Method == "POST" && r.QueryHas("uploadId"));
        foreach (var r in parts.Append(complete))
        {
            Assert.DoesNotContain(r.Headers.Keys, h => h.StartsWith("x-amz-object-lock", StringComparison.Ordinal) || h.StartsWith("x-amz-server-side-encryption", StringComparison.Ordinal));
        }

        Assert.All(parts, p => Assert.NotNull(p.Header("content-md5")));
        Assert.DoesNotContain(proxy.Requests, r => r.Method == "PUT" && !r.QueryHas("partNumber")); // no single PUT
        Assert.Equal(data, await store.TryGetAsync("big.bin", default));
    }

    [Fact]
    public async Task S3SseAes256SendsTheHeaderWithoutAKeyId()
    {
        var (proxy, store, _) = await S3Async("AES256", kmsKeyId: "ignored-for-aes256");
        await using var _p = proxy;
        await using var _s = store;
        await store.PutAsync("a", Data(10), StoreWriteOptions.Default, default);
        var put = Assert.Single(proxy.Requests);
        Assert.Equal("AES256", put.Header("x-amz-server-side-encryption"));
        Assert.Null(put.Header("x-amz-server-side-encryption-aws-kms-key-id"));
        AssertSigned(put, "x-amz-server-side-encryption");
    }

    [Theory]
    [InlineData("arn:aws:kms:eu-west-1:111122223333:alias/hubdr")]
    [InlineData(null)]
    public async Task S3SseKmsSendsTheKeyIdWhenGiven(string? keyId)
    {
        var (proxy, store, _) = await S3Async("aws:kms", keyId);
        await using var _p = proxy;
        await using var _s = store;
        await store.PutAsync("a", Data(10), StoreWriteOptions.Default, default);
        var put = Assert.Single(proxy.Requests);
        Assert.Equal("aws:kms", put.Header("x-amz-server-side-encryption"));
        Assert.Equal(keyId, put.Header("x-amz-server-side-encryption-aws-kms-key-id")); // null: the bucket's/AWS managed key
    }

    [Fact]
    public async Task S3InvalidLockModeFailsBeforeAnyRequest()
    {
        var (proxy, store, _) = await S3Async();
        await using var _p = proxy;
        await using var _s = store;
        var bad = new StoreWriteOptions { RetainUntil = Until, LockMode = "COMPLAINCE" };

        var e1 = await Assert.ThrowsAsync<HubDrException>(() => store.PutAsync("a", Data(10), bad, default));
        Assert.Equal("StoreLockModeInvalid", e1.ErrorId);
        Assert.Equal(HubErrorCategory.InvalidArgument, e1.Category);
        Assert.Contains("COMPLAINCE", e1.Message);

        var e2 = await Assert.ThrowsAsync<HubDrException>(async () =>
        {
            await using var up = await store.BeginUploadAsync("b", bad, default);
            await up.Content.WriteAsync(Data(10));
            await up.CompleteAsync(default);
        });
        Assert.Equal("StoreLockModeInvalid", e2.ErrorId);

        // A typo in the mode is a configuration error even without a retain-until date.
        var e3 = await Assert.ThrowsAsync<HubDrException>(() => store.PutAsync("c", Data(10), new StoreWriteOptions { LockMode = "LOCKED" }, default));
        Assert.Equal("StoreLockModeInvalid", e3.ErrorId);

        Assert.Empty(proxy.Requests);
    }

    [Fact]
    public async Task S3InvalidServerSideEncryptionFailsBeforeAnyRequest()
    {
        var (proxy, store, _) = await S3Async("aws:kms:dsse");
        await using var _p = proxy;
        await using var _s = store;
        var e1 = await Assert.ThrowsAsync<HubDrException>(() => store.PutAsync("a", Data(10), StoreWriteOptions.Default, default));
        Assert.Equal("StoreEncryptionInvalid", e1.ErrorId);
        var e2 = await Assert.ThrowsAsync<HubDrException>(() => store.BeginUploadAsync("b", StoreWriteOptions.Default, default));
        Assert.Equal("StoreEncryptionInvalid", e2.ErrorId);
        Assert.Empty(proxy.Requests);
    }

    [Fact]
    public async Task S3DeleteRefusedByObjectLockIsReturnedNotThrown()
    {
        var (proxy, store, bucket) = await S3Async();
        await using var _p = proxy;
        await using var _s = store;
        foreach (var k in new[] { "b1/archive", "b2/archive", "b3/archive" })
        {
            await store.PutAsync(k, Data(10), StoreWriteOptions.Default, default);
        }

        // What S3 answers (200, per-key errors) when a version is protected by Object Lock; Quiet mode lists errors only.
        proxy.Answer = r => r.Method == "POST" && r.QueryHas("delete")
            ? CannedResponse.Xml(200, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">" +
                "<Error><Key>p/b2/archive</Key><Code>AccessDenied</Code><Message>Access Denied because object protected by object lock.</Message></Error>" +
                "</DeleteResult>")
            : null;
        var refused = await store.DeleteAsync(["b1/archive", "b2/archive", "b3/archive"], default);

        Assert.Equal(new[] { "b2/archive" }, refused);
        var del = Assert.Single(proxy.Requests, r => r.Method == "POST");
        Assert.Equal($"/{bucket}", del.Path.TrimEnd('/'));
        var body = Encoding.UTF8.GetString(del.Body!);
        foreach (var k in new[] { "p/b1/archive", "p/b2/archive", "p/b3/archive" })
        {
            Assert.Contains($"<Key>{k}</Key>", body);
        }

        Assert.Contains("<Quiet>true</Quiet>", body);
    }

    [Fact]
    public async Task S3DeleteErrorThatIsNotALockThrowsAndMissingKeysAreIgnored()
    {
        var (proxy, store, _) = await S3Async();
        await using var _p = proxy;
        await using var _s = store;
        proxy.Answer = r => r.Method == "POST" && r.QueryHas("delete")
            ? CannedResponse.Xml(200, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">" +
                "<Error><Key>p/gone</Key><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>" +
                "<Error><Key>p/broken</Key><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>" +
                "</DeleteResult>")
            : null;
        var e = await Assert.ThrowsAsync<HubDrException>(() => store.DeleteAsync(["gone", "broken"], default));
        _out.WriteLine(e.Message);
        Assert.Equal("StoreDeleteFailed", e.ErrorId);
        Assert.Equal("broken", e.Target);

        proxy.Answer = r => r.Method == "POST" && r.QueryHas("delete")
            ? CannedResponse.Xml(200, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">" +
                "<Error><Key>p/gone</Key><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error></DeleteResult>")
            : null;
        Assert.Empty(await store.DeleteAsync(["gone"], default));
    }

    [Fact]
    public async Task S3ListDoesNotReportLocksItOnlyCallsListObjectsV2()
    {
        var (proxy, store, _) = await S3Async();
        await using var _p = proxy;
        await using var _s = store;
        await store.PutAsync("b1/archive", Data(10), new StoreWriteOptions { RetainUntil = Until, LegalHold = true }, default);
        proxy.Clear();
        // Should the code ever ask per object (HEAD / GetObjectRetention / GetObjectLegalHold), this is what S3 would say.
        proxy.Answer = r => r.Method == "HEAD" || r.QueryHas("retention") || r.QueryHas("legal-hold")
            ? throw new InvalidOperationException($"unexpected per-object request {r.Method} {r.Path}?{r.Query}")
            : null;

        var listed = Assert.Single(await Emu.ListAllAsync(store, ""));

        Assert.Equal("b1/archive", listed.Key);
        Assert.Null(listed.LockedUntil); // ListObjectsV2 carries no lock information: not reported on S3
        Assert.False(listed.LegalHold);
        var list = Assert.Single(proxy.Requests);
        Assert.Equal("GET", list.Method);
        Assert.True(list.QueryHas("list-type"), list.Query);
    }

    // ---------------------------------------------------------------- Azure

    private static async Task<(RecordingProxy Proxy, AzureBlobStore Store, string Container)> AzureAsync(string? encryptionScope = null, int blockSize = AzureBlobStore.DefaultBlockSize)
    {
        var container = await Emu.NewContainerAsync();
        var upstream = new Uri(Emu.AzureBlobEndpoint).Port;
        var proxy = new RecordingProxy(upstream);
        var cs = Emu.AzureConnectionString.Replace($":{upstream}/", $":{proxy.Port}/", StringComparison.Ordinal);
        var spec = new StoreSpec
        {
            Uri = $"az://devstoreaccount1/{container}/p",
            ConnectionString = Emu.Secure(cs),
            MaxRetries = 0,
            EncryptionScope = encryptionScope,
        };
        return (proxy, new AzureBlobStore(spec) { BlockSize = blockSize }, container);
    }

    /// <summary>Azurite rejects immutability/encryption-scope headers it does not implement: answer those writes like Azure does.</summary>
    private static CannedResponse? AcceptWrites(RecordedRequest r)
        => r.Method == "PUT" && (r.Header("x-ms-immutability-policy-until-date") is not null || r.Header("x-ms-legal-hold") is not null || r.Header("x-ms-encryption-scope") is not null)
            ? new CannedResponse(201, "Created", new Dictionary<string, string>
            {
                ["ETag"] = "\"0x8DC0000000000001\"",
                ["Last-Modified"] = DateTimeOffset.UtcNow.ToString("r", CultureInfo.InvariantCulture),
                ["x-ms-request-server-encrypted"] = "true",
                ["x-ms-version"] = r.Header("x-ms-version") ?? "2025-01-05",
                ["x-ms-request-id"] = Guid.NewGuid().ToString(),
            }, "")
            : null;

    private static bool IsPutBlob(RecordedRequest r) => r.Method == "PUT" && r.Query.Length == 0;

    private static bool IsCommit(RecordedRequest r) => r.Method == "PUT" && r.QueryHas("comp", "blocklist");

    private static bool IsStageBlock(RecordedRequest r) => r.Method == "PUT" && r.QueryHas("comp", "block");

    [Theory]
    [InlineData("COMPLIANCE", "Locked")]
    [InlineData("compliance", "Locked")]
    [InlineData("GOVERNANCE", "Unlocked")]
    [InlineData(null, "Unlocked")]
    public async Task AzurePutSetsImmutabilityPolicyAndLegalHoldOnPutBlob(string? mode, string expectedMode)
    {
        var (proxy, store, container) = await AzureAsync();
        await using var _p = proxy;
        await using var _s = store;
        proxy.Answer = AcceptWrites;
        await store.PutAsync("hub1/catalog.json", Data(100), new StoreWriteOptions { RetainUntil = Until, LockMode = mode, LegalHold = true }, default);

        var put = Assert.Single(proxy.Requests);
        Assert.True(IsPutBlob(put), $"{put.Method} {put.Path}?{put.Query}");
        Assert.Equal($"/devstoreaccount1/{container}/p/hub1/catalog.json", put.Path);
        Assert.Equal("BlockBlob", put.Header("x-ms-blob-type"));
        Assert.Equal(Until.UtcDateTime, DateTimeOffset.ParseExact(put.Header("x-ms-immutability-policy-until-date")!, "r", CultureInfo.InvariantCulture).UtcDateTime);
        Assert.Equal(expectedMode, put.Header("x-ms-immutability-policy-mode"), ignoreCase: true);
        Assert.Equal("true", put.Header("x-ms-legal-hold"));
    }

    [Fact]
    public async Task AzureWithoutLockOptionsSendsNoImmutabilityHeadersAndTheEmulatorStoresIt()
    {
        var (proxy, store, _) = await AzureAsync();
        await using var _p = proxy;
        await using var _s = store;
        var data = Data(100);
        await store.PutAsync("plain", data, StoreWriteOptions.Default, default);
        var put = Assert.Single(proxy.Requests);
        Assert.DoesNotContain(put.Headers.Keys, h => h.StartsWith("x-ms-immutability", StringComparison.Ordinal) || h is "x-ms-legal-hold" or "x-ms-encryption-scope");
        Assert.Equal(data, await store.TryGetAsync("plain", default));
    }

    [Fact]
    public async Task AzureBlockUploadSetsPolicyAndHoldOnTheCommitAndScopeOnEveryWrite()
    {
        const int block = 1024 * 1024;
        var (proxy, store, container) = await AzureAsync("hubdr-scope", block);
        await using var _p = proxy;
        await using var _s = store;
        proxy.Answer = r => IsStageBlock(r)
            ? new CannedResponse(201, "Created", new Dictionary<string, string> { ["x-ms-request-server-encrypted"] = "true", ["x-ms-encryption-scope"] = "hubdr-scope" }, "")
            : AcceptWrites(r);
        await using (var up = await store.BeginUploadAsync("big.bin", new StoreWriteOptions { RetainUntil = Until, LockMode = "COMPLIANCE", LegalHold = true }, default))
        {
            await up.Content.WriteAsync(Data(block * 2 + block / 2));
            await up.CompleteAsync(default);
        }

        foreach (var r in proxy.Requests)
        {
            _out.WriteLine($"{r.Method} {r.Path}?{r.Query}");
        }

        var stages = proxy.Requests.Where(IsStageBlock).ToList();
        Assert.Equal(3, stages.Count);
        var commit = Assert.Single(proxy.Requests, IsCommit);
        Assert.Equal($"/devstoreaccount1/{container}/p/big.bin", commit.Path);
        Assert.Equal(Until.UtcDateTime, DateTimeOffset.ParseExact(commit.Header("x-ms-immutability-policy-until-date")!, "r", CultureInfo.InvariantCulture).UtcDateTime);
        Assert.Equal("Locked", commit.Header("x-ms-immutability-policy-mode"), ignoreCase: true);
        Assert.Equal("true", commit.Header("x-ms-legal-hold"));
        Assert.Equal("hubdr-scope", commit.Header("x-ms-encryption-scope"));
        foreach (var s in stages)
        {
            Assert.Equal("hubdr-scope", s.Header("x-ms-encryption-scope")); // the scope must be on every block too
            Assert.Null(s.Header("x-ms-immutability-policy-until-date"));
            Assert.Null(s.Header("x-ms-legal-hold"));
        }

        Assert.DoesNotContain(proxy.Requests, IsPutBlob);
    }

    [Fact]
    public async Task AzureEncryptionScopeIsSentOnPutBlob()
    {
        var (proxy, store, _) = await AzureAsync("hubdr-scope");
        await using var _p = proxy;
        await using var _s = store;
        proxy.Answer = AcceptWrites;
        await store.PutAsync("a", Data(10), StoreWriteOptions.Default, default);
        var put = Assert.Single(proxy.Requests);
        Assert.True(IsPutBlob(put));
        Assert.Equal("hubdr-scope", put.Header("x-ms-encryption-scope"));
        Assert.Null(put.Header("x-ms-immutability-policy-until-date"));
    }

    [Fact]
    public async Task AzureInvalidLockModeFailsBeforeAnyRequest()
    {
        var (proxy, store, _) = await AzureAsync();
        await using var _p = proxy;
        await using var _s = store;
        var bad = new StoreWriteOptions { RetainUntil = Until, LockMode = "COMPLAINCE" };
        var e1 = await Assert.ThrowsAsync<HubDrException>(() => store.PutAsync("a", Data(10), bad, default));
        Assert.Equal("StoreLockModeInvalid", e1.ErrorId);
        var e2 = await Assert.ThrowsAsync<HubDrException>(() => store.BeginUploadAsync("b", bad, default));
        Assert.Equal("StoreLockModeInvalid", e2.ErrorId);
        Assert.Empty(proxy.Requests);
    }

    [Theory]
    [InlineData("BlobImmutableDueToPolicy")]
    [InlineData("BlobImmutableDueToLegalHold")]
    public async Task AzureDeleteRefusedByImmutabilityIsReturnedNotThrown(string errorCode)
    {
        var (proxy, store, container) = await AzureAsync();
        await using var _p = proxy;
        await using var _s = store;
        var keep = Data(10);
        foreach (var k in new[] { "b1/archive", "b2/archive", "b3/archive" })
        {
            await store.PutAsync(k, keep, StoreWriteOptions.Default, default);
        }

        proxy.Answer = r => r.Method == "DELETE" && r.Path.EndsWith("/p/b2/archive", StringComparison.Ordinal)
            ? CannedResponse.AzureError(409, "Conflict", errorCode, "This operation is not permitted as the blob is immutable due to a policy.")
            : null;
        var refused = await store.DeleteAsync(["b1/archive", "b2/archive", "b3/archive"], default);

        Assert.Equal(new[] { "b2/archive" }, refused);
        Assert.Equal(3, proxy.Requests.Count(r => r.Method == "DELETE"));
        Assert.Single(proxy.Requests, r => r.Method == "DELETE" && r.Path == $"/devstoreaccount1/{container}/p/b2/archive");
        proxy.Answer = null;
        Assert.Equal(new[] { "b2/archive" }, (await Emu.ListAllAsync(store, "")).Select(o => o.Key)); // the other two really went
    }

    [Fact]
    public async Task AzureDeleteConflictThatIsNotImmutabilityThrows()
    {
        var (proxy, store, _) = await AzureAsync();
        await using var _p = proxy;
        await using var _s = store;
        proxy.Answer = r => r.Method == "DELETE"
            ? CannedResponse.AzureError(412, "Lease Id Missing", "LeaseIdMissing", "There is currently a lease on the blob and no lease ID was specified in the request.")
            : null;
        var e = await Assert.ThrowsAsync<HubDrException>(() => store.DeleteAsync(["leased"], default));
        _out.WriteLine(e.Message);
        Assert.Equal("StoreRequestFailed", e.ErrorId);
    }

    [Fact]
    public async Task AzureListAsksForImmutabilityTraitsAndReportsThem()
    {
        var (proxy, store, container) = await AzureAsync();
        await using var _p = proxy;
        await using var _s = store;
        var lm = "Thu, 26 Nov 2026 10:00:00 GMT";
        proxy.Answer = r => r.Method == "GET" && r.QueryHas("comp", "list")
            ? CannedResponse.Xml(200,
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>" +
                $"<EnumerationResults ServiceEndpoint=\"http://127.0.0.1:{proxy.Port}/devstoreaccount1/\" ContainerName=\"{container}\"><Prefix>p/</Prefix><MaxResults>5000</MaxResults><Blobs>" +
                $"<Blob><Name>p/locked</Name><Properties><Last-Modified>{lm}</Last-Modified><Etag>0x8DC1</Etag><Content-Length>11</Content-Length><Content-Type>application/octet-stream</Content-Type><BlobType>BlockBlob</BlobType>" +
                "<ImmutabilityPolicyUntilDate>Tue, 06 May 2031 10:34:56 GMT</ImmutabilityPolicyUntilDate><ImmutabilityPolicyMode>locked</ImmutabilityPolicyMode></Properties></Blob>" +
                $"<Blob><Name>p/held</Name><Properties><Last-Modified>{lm}</Last-Modified><Etag>0x8DC2</Etag><Content-Length>12</Content-Length><BlobType>BlockBlob</BlobType><LegalHold>true</LegalHold></Properties></Blob>" +
                $"<Blob><Name>p/plain</Name><Properties><Last-Modified>{lm}</Last-Modified><Etag>0x8DC3</Etag><Content-Length>13</Content-Length><BlobType>BlockBlob</BlobType></Properties></Blob>" +
                "</Blobs><NextMarker /></EnumerationResults>")
            : null;

        var listed = (await Emu.ListAllAsync(store, "")).ToDictionary(o => o.Key);

        var list = Assert.Single(proxy.Requests);
        var include = list.QueryValue("include") ?? "";
        Assert.Contains("immutabilitypolicy", include, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("legalhold", include, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(new DateTimeOffset(2031, 5, 6, 10, 34, 56, TimeSpan.Zero), listed["locked"].LockedUntil);
        Assert.False(listed["locked"].LegalHold);
        Assert.True(listed["held"].LegalHold);
        Assert.Null(listed["held"].LockedUntil);
        Assert.Null(listed["plain"].LockedUntil);
        Assert.False(listed["plain"].LegalHold);
        Assert.Equal(13, listed["plain"].Size);
    }
}

/// <summary>One request as it crossed the proxy. Header names are lower-case.</summary>
internal sealed record RecordedRequest(string Method, string Path, string Query, IReadOnlyDictionary<string, string> Headers)
{
    /// <summary>The request body, kept only for requests the proxy answered itself.</summary>
    public byte[]? Body { get; set; }

    public string? Header(string name) => Headers.TryGetValue(name.ToLowerInvariant(), out var v) ? v : null;

    public string? QueryValue(string name)
    {
        foreach (var p in Query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = p.IndexOf('=');
            var n = Uri.UnescapeDataString(eq < 0 ? p : p[..eq]);
            if (n == name)
            {
                return eq < 0 ? "" : Uri.UnescapeDataString(p[(eq + 1)..]);
            }
        }

        return null;
    }

    public bool QueryHas(string name, string? value = null)
        => QueryValue(name) is { } v && (value is null || v == value);
}

internal sealed record CannedResponse(int Status, string Reason, IReadOnlyDictionary<string, string> Headers, string Body)
{
    public static CannedResponse Xml(int status, string body)
        => new(status, status == 200 ? "OK" : "Error", new Dictionary<string, string> { ["Content-Type"] = "application/xml" }, body);

    public static CannedResponse AzureError(int status, string reason, string code, string message)
        => new(status, reason, new Dictionary<string, string> { ["Content-Type"] = "application/xml", ["x-ms-error-code"] = code, ["x-ms-request-id"] = Guid.NewGuid().ToString() },
            $"<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>");
}

/// <summary>
/// Loopback HTTP proxy that records every request (one per client connection: it forces Connection: close)
/// and forwards it to the emulator, unless <see cref="Answer"/> returns a canned response for it.
/// </summary>
internal sealed class RecordingProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _upstreamPort;
    private readonly CancellationTokenSource _cts = new();
    private readonly ConcurrentQueue<RecordedRequest> _requests = new();

    public RecordingProxy(int upstreamPort)
    {
        _upstreamPort = upstreamPort;
        _listener.Start();
        _ = Task.Run(AcceptLoop);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Request -> canned answer, or null to forward. Decided from the head (before the body).</summary>
    public Func<RecordedRequest, CannedResponse?>? Answer { get; set; }

    public IReadOnlyList<RecordedRequest> Requests => _requests.ToArray();

    public void Clear() => _requests.Clear();

    private async Task AcceptLoop()
    {
        while (!_cts.IsCancellationRequested)
        {
            TcpClient c;
            try
            {
                c = await _listener.AcceptTcpClientAsync(_cts.Token);
            }
            catch
            {
                return;
            }

            _ = Task.Run(() => Handle(c));
        }
    }

    private async Task Handle(TcpClient client)
    {
        using var _ = client;
        try
        {
            var cs = client.GetStream();
            var (head, leftover) = await ReadHeadAsync(cs);
            if (head is null)
            {
                return;
            }

            var lines = head.Split("\r\n");
            var parts = lines[0].Split(' ');
            var target = parts[1];
            var q = target.IndexOf('?');
            var headers = new Dictionary<string, string>(StringComparer.Ordinal);
            long contentLength = 0;
            var expect = false;
            var outLines = new List<string> { lines[0] };
            foreach (var l in lines.Skip(1))
            {
                var colon = l.IndexOf(':');
                if (colon <= 0)
                {
                    continue;
                }

                var name = l[..colon].Trim().ToLowerInvariant();
                var value = l[(colon + 1)..].Trim();
                headers[name] = headers.TryGetValue(name, out var prev) ? prev + ", " + value : value;
                if (name == "content-length")
                {
                    contentLength = long.Parse(value, CultureInfo.InvariantCulture);
                }

                if (name == "expect")
                {
                    expect = true;
                }

                if (name is "connection" or "keep-alive")
                {
                    continue;
                }

                outLines.Add(l);
            }

            outLines.Add("Connection: close");
            var req = new RecordedRequest(parts[0], Uri.UnescapeDataString(q < 0 ? target : target[..q]), q < 0 ? "" : target[(q + 1)..], headers);
            _requests.Enqueue(req);
            var canned = Answer?.Invoke(req);
            if (canned is not null)
            {
                if (!expect || leftover.Length > 0)
                {
                    using var body = new MemoryStream();
                    await body.WriteAsync(leftover);
                    await CopyAsync(cs, body, contentLength - leftover.Length);
                    req.Body = body.ToArray();
                }

                var bodyBytes = Encoding.UTF8.GetBytes(canned.Body);
                var sb = new StringBuilder($"HTTP/1.1 {canned.Status} {canned.Reason}\r\n");
                foreach (var (k, v) in canned.Headers)
                {
                    sb.Append(k).Append(": ").Append(v).Append("\r\n");
                }

                sb.Append(CultureInfo.InvariantCulture, $"Content-Length: {bodyBytes.Length}\r\nConnection: close\r\n\r\n");
                await cs.WriteAsync(Encoding.ASCII.GetBytes(sb.ToString()));
                await cs.WriteAsync(bodyBytes);
                await cs.FlushAsync();
                client.Client.Shutdown(SocketShutdown.Both);
                return;
            }

            using var up = new TcpClient();
            await up.ConnectAsync(IPAddress.Loopback, _upstreamPort);
            var us = up.GetStream();
            await us.WriteAsync(Encoding.ASCII.GetBytes(string.Join("\r\n", outLines) + "\r\n\r\n"));
            await us.WriteAsync(leftover);
            var toUp = CopyAsync(cs, us, contentLength - leftover.Length);
            await us.CopyToAsync(cs); // response until upstream closes (Connection: close)
            await toUp;
        }
        catch (Exception)
        {
            // A broken connection shows up as a failed request in the test itself.
        }
    }

    private static async Task CopyAsync(Stream from, Stream to, long count)
    {
        var buf = new byte[65536];
        while (count > 0)
        {
            var r = await from.ReadAsync(buf.AsMemory(0, (int)Math.Min(buf.Length, count)));
            if (r == 0)
            {
                return;
            }

            await to.WriteAsync(buf.AsMemory(0, r));
            count -= r;
        }
    }

    private static async Task<(string? Head, byte[] Leftover)> ReadHeadAsync(Stream s)
    {
        var buf = new List<byte>(4096);
        var one = new byte[4096];
        while (true)
        {
            var r = await s.ReadAsync(one);
            if (r == 0)
            {
                return (null, []);
            }

            buf.AddRange(one.AsSpan(0, r));
            var arr = buf.ToArray();
            var idx = arr.AsSpan().IndexOf("\r\n\r\n"u8);
            if (idx >= 0)
            {
                return (Encoding.ASCII.GetString(arr, 0, idx), arr[(idx + 4)..]);
            }
        }
    }

    public ValueTask DisposeAsync()
    {
        _cts.Cancel();
        _listener.Stop();
        return ValueTask.CompletedTask;
    }
}
