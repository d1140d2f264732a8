using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using Azure;
using Azure.Core;
using Azure.Identity;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using HubDr.Engine.Stores.S3;

namespace HubDr.Engine.Stores.Azure;

/// <summary>
/// Azure Blob Storage container (block blobs). URIs: az://account/container/prefix,
/// https://account.blob.core.windows.net/container/prefix, or the emulator's path style
/// http://127.0.0.1:port/devstoreaccount1/container/prefix. Streaming uploads stage 8 MiB blocks and
/// commit the block list on CompleteAsync; nothing is visible before. Retries are the SDK's
/// (exponential, <see cref="StoreSpec.MaxRetries"/>), which re-send a block from our buffer.
/// </summary>
public sealed class AzureBlobStore : IBackupStore
{
    public const int DefaultBlockSize = 8 * 1024 * 1024;
    public const int MaxBlocksInFlight = 2;
    private const int DeleteParallelism = 8;

    private readonly BlobContainerClient _container;
    private readonly string _prefix;
    private readonly string _location;

    public AzureBlobStore(StoreSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var target = ParseUri(spec.Uri);
        _prefix = target.Prefix;
        _location = target.Location;
        _container = CreateClient(spec, target);
    }

    /// <summary>Block size of streaming uploads. Default 8 MiB.</summary>
    public int BlockSize { get; init; } = DefaultBlockSize;

    /// <summary>Blocks uploading while the next one fills (memory: (1 + this) × BlockSize).</summary>
    public int BlocksInFlight { get; init; } = MaxBlocksInFlight;

    /// <summary>Page size of blob listings (1..5000). Tests lower it to force paging.</summary>
    public int ListPageSize { get; init; } = 5000;

    public string Location => _location;

    internal BlobContainerClient Container => _container;

    /// <summary>Parsed Azure store URI.</summary>
    public sealed record Target(Uri ServiceUri, string Account, string Container, string Prefix, string Location);

    public static Target ParseUri(string uri)
    {
        string account, container, rest;
        Uri service;
        if (uri.StartsWith("az://", StringComparison.OrdinalIgnoreCase))
        {
            var parts = uri[5..].Trim('/').Split('/', 3);
            if (parts.Length < 2 || parts[0].Length == 0 || parts[1].Length == 0)
            {
                throw Invalid(uri);
            }

            account = parts[0];
            container = parts[1];
            rest = parts.Length > 2 ? parts[2] : "";
            service = new Uri($"https://{account}.blob.core.windows.net");
        }
        else if (System.Uri.TryCreate(uri, UriKind.Absolute, out var u) && (u.Scheme == "https" || u.Scheme == "http"))
        {
            var segs = u.AbsolutePath.Trim('/').Split('/', StringSplitOptions.None);
            var pathStyle = u.HostNameType is UriHostNameType.IPv4 or UriHostNameType.IPv6 || u.Host.Equals("localhost", StringComparison.OrdinalIgnoreCase);
            if (pathStyle)
            {
                // Emulator / path-style: http://127.0.0.1:10000/devstoreaccount1/container/prefix
                if (segs.Length < 2 || segs[0].Length == 0 || segs[1].Length == 0)
                {
                    throw Invalid(uri);
                }

                account = segs[0];
                container = segs[1];
                rest = string.Join('/', segs.Skip(2));
                service = new Uri($"{u.Scheme}://{u.Authority}/{account}");
            }
            else
            {
                if (segs.Length < 1 || segs[0].Length == 0)
                {
                    throw Invalid(uri);
                }

                account = u.Host.Split('.')[0];
                container = segs[0];
                rest = string.Join('/', segs.Skip(1));
                service = new Uri($"{u.Scheme}://{u.Authority}");
            }

            if (!string.IsNullOrEmpty(u.Query))
            {
                throw new HubDrException("StoreUriInvalid", HubErrorCategory.InvalidArgument,
                    "The Azure store URI contains a query string (a SAS token?). Pass the SAS token separately (-SasToken) so it is never shown or logged.");
            }
        }
        else
        {
            throw Invalid(uri);
        }

        rest = Uri.UnescapeDataString(rest.Trim('/'));
        var prefix = rest.Length == 0 ? "" : rest + "/";
        var location = $"az://{account}/{container}" + (rest.Length == 0 ? "" : "/" + rest);
        return new Target(service, account, container, prefix, location);
    }

    private static HubDrException Invalid(string uri) => new("StoreUriInvalid", HubErrorCategory.InvalidArgument,
        $"'{Redact(uri)}' is not an Azure Blob store URI. Use az://account/container[/prefix] or https://account.blob.core.windows.net/container[/prefix].");

    private static string Redact(string uri) => uri.Contains('?') ? uri[..uri.IndexOf('?')] + "?<redacted>" : uri;

    private static BlobContainerClient CreateClient(StoreSpec spec, Target t)
    {
        var options = new BlobClientOptions();
        options.Retry.Mode = RetryMode.Exponential;
        options.Retry.MaxRetries = Math.Max(0, spec.MaxRetries);
        options.Retry.Delay = Retry.BaseDelay;
        options.Retry.MaxDelay = Retry.MaxDelay;
        options.Retry.NetworkTimeout = TimeSpan.FromMinutes(2);
        if (!string.IsNullOrWhiteSpace(spec.EncryptionScope))
        {
            options.EncryptionScope = spec.EncryptionScope;
        }

        var containerUri = new Uri(t.ServiceUri.AbsoluteUri.TrimEnd('/') + "/" + Uri.EscapeDataString(t.Container));
        try
        {
            if (spec.ConnectionString is not null)
            {
                return new BlobContainerClient(Retry.Reveal(spec.ConnectionString), t.Container, options);
            }

            if (spec.SasToken is not null)
            {
                return new BlobContainerClient(containerUri, new AzureSasCredential(Retry.Reveal(spec.SasToken)!.TrimStart('?')), options);
            }

            if (spec.AccountKey is not null)
            {
                return new BlobContainerClient(containerUri, new StorageSharedKeyCredential(t.Account, Retry.Reveal(spec.AccountKey)), options);
            }

            if (spec.UseManagedIdentity)
            {
                // Azure Automation, VMs, App Service: system-assigned identity, or a user-assigned one by client id.
                var id = string.IsNullOrWhiteSpace(spec.ManagedIdentityClientId)
                    ? ManagedIdentityId.SystemAssigned
                    : ManagedIdentityId.FromUserAssignedClientId(spec.ManagedIdentityClientId);
                return new BlobContainerClient(containerUri, new ManagedIdentityCredential(id), options);
            }

            var env = Environment.GetEnvironmentVariable("AZURE_STORAGE_CONNECTION_STRING");
            if (!string.IsNullOrWhiteSpace(env))
            {
                return new BlobContainerClient(env, t.Container, options);
            }

            return new BlobContainerClient(containerUri, new DefaultAzureCredential(), options);
        }
        catch (FormatException)
        {
            // Never echo the connection string or key: they are secrets.
            throw new HubDrException("StoreCredentialsInvalid", HubErrorCategory.InvalidArgument,
                "The Azure connection string, SAS token or account key is malformed. Copy it again from the portal (Storage account > Access keys / Shared access signature).", null);
        }
    }

    public async Task EnsureAvailableAsync(CancellationToken ct)
    {
        await Call(c => _container.GetPropertiesAsync(cancellationToken: c), null, ct).ConfigureAwait(false);
    }

    public async Task<IStoreUpload> BeginUploadAsync(string key, StoreWriteOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        var blob = _container.GetBlockBlobClient(FullKey(key));
        _ = LockModeOf(options);
        await EnsureAvailableAsync(ct).ConfigureAwait(false);
        return new AzureUpload(this, blob, key, options);
    }

    public async Task PutAsync(string key, ReadOnlyMemory<byte> content, StoreWriteOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        _ = LockModeOf(options);
        await PutBlobAsync(_container.GetBlockBlobClient(FullKey(key)), key, content, options, ct).ConfigureAwait(false);
    }

    public async Task<Stream> OpenReadAsync(string key, CancellationToken ct)
    {
        var blob = _container.GetBlobClient(FullKey(key));
        var resp = await Call(c => blob.DownloadStreamingAsync(cancellationToken: c), key, ct).ConfigureAwait(false);
        return resp.Value.Content;
    }

    public async Task<byte[]?> TryGetAsync(string key, CancellationToken ct)
    {
        var blob = _container.GetBlobClient(FullKey(key));
        try
        {
            var resp = await Call(c => blob.DownloadContentAsync(c), key, ct).ConfigureAwait(false);
            return resp.Value.Content.ToArray();
        }
        catch (HubDrException e) when (e.ErrorId == "StoreObjectNotFound")
        {
            return null;
        }
    }

    public async IAsyncEnumerable<StoreObject> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        var opts = new GetBlobsOptions { Prefix = _prefix + prefix, Traits = BlobTraits.ImmutabilityPolicy | BlobTraits.LegalHold };
        var pages = _container.GetBlobsAsync(opts, ct).AsPages(default, ListPageSize).GetAsyncEnumerator(ct);
        try
        {
            while (true)
            {
                bool more;
                try
                {
                    more = await pages.MoveNextAsync().ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
                {
                    throw Map(e, null);
                }

                if (!more)
                {
                    break;
                }

                foreach (var b in pages.Current.Values)
                {
                    if (!b.Name.StartsWith(_prefix, StringComparison.Ordinal))
                    {
                        continue;
                    }

                    yield return new StoreObject(b.Name[_prefix.Length..], b.Properties.ContentLength ?? 0, b.Properties.LastModified ?? DateTimeOffset.MinValue)
                    {
                        LockedUntil = b.Properties.ImmutabilityPolicy?.ExpiresOn,
                        LegalHold = b.Properties.HasLegalHold,
                    };
                }
            }
        }
        finally
        {
            await pages.DisposeAsync().ConfigureAwait(false);
        }
    }

    public async Task<IReadOnlyList<string>> DeleteAsync(IReadOnlyList<string> keys, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var refused = new System.Collections.Concurrent.ConcurrentBag<string>();
        var full = keys.Select(k => (Key: k, Full: FullKey(k))).ToList();
        // Azure.Storage.Blobs.Batch is not referenced; deletes run in parallel instead.
        await Parallel.ForEachAsync(full, new ParallelOptions { MaxDegreeOfParallelism = DeleteParallelism, CancellationToken = ct }, async (k, c) =>
        {
            try
            {
                await _container.DeleteBlobIfExistsAsync(k.Full, DeleteSnapshotsOption.IncludeSnapshots, cancellationToken: c).ConfigureAwait(false);
            }
            catch (RequestFailedException e) when (IsImmutable(e))
            {
                refused.Add(k.Key);
            }
            catch (Exception e) when (e is not OperationCanceledException || !c.IsCancellationRequested)
            {
                throw Map(e, k.Key);
            }
        }).ConfigureAwait(false);
        return refused.OrderBy(k => k, StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// Blobs that have only uncommitted blocks (a streaming upload that never committed its block list): listed with
    /// include=uncommittedblobs, minus the blobs that also have a committed version.
    /// </summary>
    public async IAsyncEnumerable<PendingUpload> ListPendingAsync(string prefix, [EnumeratorCancellation] CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        var committed = new HashSet<string>(StringComparer.Ordinal);
        var all = new List<BlobItem>();
        await CollectAsync(BlobStates.None, b => committed.Add(b.Name), ct).ConfigureAwait(false);
        await CollectAsync(BlobStates.Uncommitted, all.Add, ct).ConfigureAwait(false);
        foreach (var b in all)
        {
            if (committed.Contains(b.Name) || !b.Name.StartsWith(_prefix + prefix, StringComparison.Ordinal))
            {
                continue;
            }

            yield return new PendingUpload(b.Name[_prefix.Length..], b.Name, b.Properties.ContentLength ?? 0, b.Properties.LastModified ?? b.Properties.CreatedOn ?? DateTimeOffset.MinValue)
            {
                Kind = "uncommitted blob",
            };
        }

        async Task CollectAsync(BlobStates states, Action<BlobItem> add, CancellationToken c)
        {
            try
            {
                await foreach (var b in _container.GetBlobsAsync(new GetBlobsOptions { Prefix = _prefix + prefix, States = states }, c).ConfigureAwait(false))
                {
                    add(b);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !c.IsCancellationRequested)
            {
                throw Map(e, null);
            }
        }
    }

    /// <summary>
    /// There is no API to delete uncommitted blocks; committing an empty block list discards them (the blob becomes an
    /// empty committed blob), which is then deleted. Only called for uploads retention found stale (no live lease).
    /// </summary>
    public async Task AbortPendingAsync(PendingUpload upload, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(upload);
        var blob = _container.GetBlockBlobClient(FullKey(upload.Key));
        await Call(c => blob.CommitBlockListAsync(Array.Empty<string>(), cancellationToken: c), upload.Key, ct).ConfigureAwait(false);
        await Call(c => blob.DeleteIfExistsAsync(cancellationToken: c), upload.Key, ct).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private static bool IsImmutable(RequestFailedException e)
        => e.ErrorCode is "BlobImmutableDueToPolicy" or "BlobImmutableDueToLegalHold" or "ContainerImmutableDueToPolicy" or "BlobImmutableDueToLegalHoldAndPolicy"
           || (e.Status == 409 && (e.ErrorCode?.Contains("Immutable", StringComparison.OrdinalIgnoreCase) ?? false));

    internal string FullKey(string key)
    {
        if (string.IsNullOrEmpty(key) || key.StartsWith('/') || key.Contains('\\') || key.Split('/').Any(p => p is "" or "." or ".."))
        {
            throw new HubDrException("StoreKeyInvalid", HubErrorCategory.InvalidArgument, $"Invalid object key '{key}'.") { Target = key };
        }

        return _prefix + key;
    }

    internal async Task PutBlobAsync(BlockBlobClient blob, string key, ReadOnlyMemory<byte> content, StoreWriteOptions o, CancellationToken ct)
    {
        var opts = new BlobUploadOptions
        {
            HttpHeaders = new BlobHttpHeaders { ContentType = o.ContentType },
            ImmutabilityPolicy = ImmutabilityOf(o),
            LegalHold = o.LegalHold ? true : null,
        };
        await Call(c => blob.UploadAsync(new MemoryStream(content.ToArray(), writable: false), opts, c), key, ct).ConfigureAwait(false);
    }

    internal static BlobImmutabilityPolicy? ImmutabilityOf(StoreWriteOptions o)
    {
        var mode = LockModeOf(o);
        return o.RetainUntil is DateTimeOffset until ? new BlobImmutabilityPolicy { ExpiresOn = until, PolicyMode = mode } : null;
    }

    /// <summary>COMPLIANCE -> Locked; GOVERNANCE or none -> Unlocked; anything else (a typo) is refused, never weakened.</summary>
    private static BlobImmutabilityPolicyMode LockModeOf(StoreWriteOptions o) => string.IsNullOrWhiteSpace(o.LockMode)
        ? BlobImmutabilityPolicyMode.Unlocked
        : o.LockMode.Trim().ToUpperInvariant() switch
        {
            "COMPLIANCE" => BlobImmutabilityPolicyMode.Locked,
            "GOVERNANCE" => BlobImmutabilityPolicyMode.Unlocked,
            var m => throw new HubDrException("StoreLockModeInvalid", HubErrorCategory.InvalidArgument, $"Lock mode '{m}' is not valid. Use GOVERNANCE (Azure: unlocked policy) or COMPLIANCE (Azure: locked policy) (setting StoreOptions.LockMode)."),
        };

    internal async Task<T> Call<T>(Func<CancellationToken, Task<T>> action, string? key, CancellationToken ct)
    {
        try
        {
            return await action(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            throw Map(e, key);
        }
    }

    internal Exception Map(Exception e, string? key)
    {
        if (e is HubDrException)
        {
            return e;
        }

        var where = key is null ? Location : $"'{key}' in {Location}";
        if (e is RequestFailedException r)
        {
            var code = r.ErrorCode ?? "";
            if (code is "ContainerNotFound" or "ResourceNotFound" or "AccountNotFound" || (r.Status == 404 && key is null))
            {
                return new HubDrException("StoreNotFound", HubErrorCategory.ObjectNotFound,
                    $"The Azure container {Location} does not exist (or the account name is wrong). Create it first or fix the store URI; HubDr does not create containers.", e) { Target = Location };
            }

            if (code is "BlobNotFound" || r.Status == 404)
            {
                return new HubDrException("StoreObjectNotFound", HubErrorCategory.ObjectNotFound, $"Object {where} does not exist.", e) { Target = key };
            }

            if (r.Status is 401 or 403 || code.StartsWith("Authentication", StringComparison.Ordinal) || code.StartsWith("Authorization", StringComparison.Ordinal))
            {
                return new HubDrException("StoreAccessDenied", HubErrorCategory.PermissionDenied,
                    $"Access to {where} was denied ({code}). Check the key/SAS token (expiry, permissions racwdl) or that the identity has the 'Storage Blob Data Contributor' role on the container.", e) { Target = Location };
            }

            if (r.Status is 500 or 502 or 503 or 504 or 0)
            {
                return new HubDrException("StoreUnavailable", r.Status == 0 ? HubErrorCategory.ConnectionError : HubErrorCategory.ResourceUnavailable,
                    $"Azure Blob Storage kept failing for {where} ({r.Status} {code}) after retries. The service is overloaded or unreachable; try again later.", e) { Target = Location };
            }

            return new HubDrException("StoreRequestFailed", HubErrorCategory.WriteError, $"Azure request for {where} failed: {r.Status} {code}.", e) { Target = Location };
        }

        if (e is AuthenticationFailedException or CredentialUnavailableException)
        {
            return new HubDrException("StoreAccessDenied", HubErrorCategory.AuthenticationError,
                $"Could not get an Azure identity for {Location}: {e.Message} Pass a connection string, SAS token or account key, or use -UseManagedIdentity where a managed identity exists (Azure Automation, VM).", e) { Target = Location };
        }

        if (Retry.IsNetworkFailure(e) || e is AggregateException)
        {
            return new HubDrException("StoreUnavailable", HubErrorCategory.ConnectionError,
                $"Could not reach Azure Blob Storage for {where} after retries: {e.GetBaseException().Message}. Check the endpoint, network and proxy, then try again.", e) { Target = Location };
        }

        return e;
    }

    internal static string BlockId(Guid upload, int number) => Convert.ToBase64String(Encoding.ASCII.GetBytes($"{upload:N}-{number:D6}"));

    internal PartBufferingStream NewBlockStream(Func<int, ReadOnlyMemory<byte>, CancellationToken, Task> stage)
        => new(BlockSize, BlocksInFlight, stage);
}
