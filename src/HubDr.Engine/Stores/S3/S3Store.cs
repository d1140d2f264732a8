using System.Buffers;
using System.Net;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Amazon;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using HubDr.Engine.IO;

namespace HubDr.Engine.Stores.S3;

/// <summary>
/// Amazon S3 or an S3-compatible service. URI: s3://bucket/prefix. Streaming uploads are multipart with
/// bounded memory (one part being filled plus at most <see cref="MaxPartsInFlight"/> parts uploading);
/// small objects are a single PUT. Every request goes through <see cref="Retry"/> (the SDK's own retries
/// are off so that the policy is one place and part bodies are re-sent from our buffer).
/// </summary>
public sealed class S3Store : IBackupStore
{
    public const int DefaultPartSize = 8 * 1024 * 1024;
    public const int MaxPartsInFlight = 2;

    /// <summary>S3's smallest part (except the last).</summary>
    public const int MinPartSize = 5 * 1024 * 1024;
    public const int DeleteBatchSize = 1000;

    private readonly IAmazonS3 _s3;
    private readonly string _bucket;
    private readonly string _prefix;
    private readonly StoreSpec _spec;

    public S3Store(StoreSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        _spec = spec;
        (_bucket, _prefix) = ParseUri(spec.Uri);
        _s3 = CreateClient(spec);
    }

    /// <summary>Part size of streaming uploads (5 MiB .. 5 GiB). Default 8 MiB.</summary>
    public int PartSize { get; init; } = DefaultPartSize;

    /// <summary>Parts uploading while the next one fills (memory: (1 + this) × PartSize).</summary>
    public int PartsInFlight { get; init; } = MaxPartsInFlight;

    /// <summary>ListObjectsV2 page size (1..1000). Tests lower it to force paging.</summary>
    public int ListPageSize { get; init; } = 1000;

    public string Location => _prefix.Length == 0 ? $"s3://{_bucket}" : $"s3://{_bucket}/{_prefix.TrimEnd('/')}";

    /// <summary>The underlying client (tests use it to inspect multipart uploads).</summary>
    internal IAmazonS3 Client => _s3;

    internal string Bucket => _bucket;

    public static (string Bucket, string Prefix) ParseUri(string uri)
    {
        const string scheme = "s3://";
        if (!uri.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
        {
            throw new HubDrException("StoreUriInvalid", HubErrorCategory.InvalidArgument, $"'{uri}' is not an S3 URI. Use s3://bucket or s3://bucket/prefix.");
        }

        var rest = uri[scheme.Length..].Trim('/');
        var slash = rest.IndexOf('/');
        var bucket = slash < 0 ? rest : rest[..slash];
        var prefix = slash < 0 ? "" : rest[(slash + 1)..].Trim('/');
        if (bucket.Length < 3 || bucket.Length > 63 || bucket.Any(c => !(char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '.')))
        {
            throw new HubDrException("StoreUriInvalid", HubErrorCategory.InvalidArgument,
                $"'{bucket}' in '{uri}' is not a valid S3 bucket name (3-63 characters: lower-case letters, digits, '-' and '.').");
        }

        return (bucket, prefix.Length == 0 ? "" : prefix + "/");
    }

    private static IAmazonS3 CreateClient(StoreSpec spec)
    {
        var config = new AmazonS3Config
        {
            MaxErrorRetry = 0,
            Timeout = TimeSpan.FromMinutes(5),
            // Many S3-compatible servers do not understand aws-chunked trailing checksums. We send
            // Content-MD5 on every PUT/part ourselves, which S3 verifies and Object Lock requires.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        };
        if (!string.IsNullOrWhiteSpace(spec.Endpoint))
        {
            config.ServiceURL = spec.Endpoint;
            config.AuthenticationRegion = spec.Region ?? "us-east-1";
            config.ForcePathStyle = spec.ForcePathStyle ?? true;
        }
        else
        {
            if (!string.IsNullOrWhiteSpace(spec.Region))
            {
                config.RegionEndpoint = RegionEndpoint.GetBySystemName(spec.Region);
            }

            if (spec.ForcePathStyle is bool fps)
            {
                config.ForcePathStyle = fps;
            }
        }

        if (!string.IsNullOrEmpty(spec.AccessKeyId))
        {
            if (spec.SecretAccessKey is null)
            {
                throw new HubDrException("StoreCredentialsIncomplete", HubErrorCategory.InvalidArgument,
                    "An S3 access key id was given without its secret access key. Pass both, or neither to use the AWS default credential chain (environment, profile, instance role).");
            }

            return new AmazonS3Client(new BasicAWSCredentials(spec.AccessKeyId, Retry.Reveal(spec.SecretAccessKey)), config);
        }

        try
        {
            // AWS default chain: env AWS_ACCESS_KEY_ID/..., profile, web identity, ECS/EC2 instance role.
            return new AmazonS3Client(config);
        }
        catch (AmazonClientException e)
        {
            throw new HubDrException("StoreAccessDenied", HubErrorCategory.AuthenticationError,
                "No AWS credentials were found for the S3 store: none were given and the AWS default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS profile, instance role) found none. Pass -AccessKeyId/-SecretAccessKey or configure one of those.", e);
        }
    }

    public async Task EnsureAvailableAsync(CancellationToken ct)
    {
        await Call(c => _s3.ListObjectsV2Async(new ListObjectsV2Request { BucketName = _bucket, Prefix = _prefix, MaxKeys = 1 }, c), null, ct).ConfigureAwait(false);
    }

    public async Task<IStoreUpload> BeginUploadAsync(string key, StoreWriteOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        var full = FullKey(key);
        ValidateWriteOptions(options);
        await EnsureAvailableAsync(ct).ConfigureAwait(false);
        return new S3Upload(this, full, key, options);
    }

    public async Task PutAsync(string key, ReadOnlyMemory<byte> content, StoreWriteOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        ValidateWriteOptions(options);
        await PutObjectAsync(FullKey(key), key, content, options, ct).ConfigureAwait(false);
    }

    public async Task<Stream> OpenReadAsync(string key, CancellationToken ct)
    {
        var full = FullKey(key);
        var resp = await Call(c => _s3.GetObjectAsync(new GetObjectRequest { BucketName = _bucket, Key = full }, c), key, ct).ConfigureAwait(false);
        return new ResponseStream(resp);
    }

    public async Task<byte[]?> TryGetAsync(string key, CancellationToken ct)
    {
        var full = FullKey(key);
        try
        {
            return await Call(async c =>
            {
                using var resp = await _s3.GetObjectAsync(new GetObjectRequest { BucketName = _bucket, Key = full }, c).ConfigureAwait(false);
                using var ms = new MemoryStream();
                await resp.ResponseStream.CopyToAsync(ms, c).ConfigureAwait(false);
                return ms.ToArray();
            }, key, ct).ConfigureAwait(false);
        }
        catch (HubDrException e) when (e.ErrorId == "StoreObjectNotFound")
        {
            return null;
        }
    }

    public async IAsyncEnumerable<StoreObject> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        string? token = null;
        do
        {
            var req = new ListObjectsV2Request { BucketName = _bucket, Prefix = _prefix + prefix, MaxKeys = ListPageSize, ContinuationToken = token };
            var resp = await Call(c => _s3.ListObjectsV2Async(req, c), null, ct).ConfigureAwait(false);
            foreach (var o in resp.S3Objects ?? [])
            {
                if (o.Key is null || !o.Key.StartsWith(_prefix, StringComparison.Ordinal))
                {
                    continue;
                }

                yield return new StoreObject(o.Key[_prefix.Length..], o.Size ?? 0, o.LastModified is DateTime lm ? new DateTimeOffset(lm.ToUniversalTime(), TimeSpan.Zero) : DateTimeOffset.MinValue);
            }

            token = resp.IsTruncated == true ? resp.NextContinuationToken : null;
        }
        while (!string.IsNullOrEmpty(token));
    }

    public async Task<IReadOnlyList<string>> DeleteAsync(IReadOnlyList<string> keys, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var refused = new List<string>();
        foreach (var batch in keys.Chunk(DeleteBatchSize))
        {
            var req = new DeleteObjectsRequest
            {
                BucketName = _bucket,
                Quiet = true,
                Objects = batch.Select(k => new KeyVersion { Key = FullKey(k) }).ToList(),
            };
            var resp = await Call(async c =>
            {
                try
                {
                    return await _s3.DeleteObjectsAsync(req, c).ConfigureAwait(false);
                }
                catch (DeleteObjectsException e) when (e.Response is not null)
                {
                    // The SDK throws when any key failed; the per-key errors (object lock!) are in the response.
                    return e.Response;
                }
            }, null, ct).ConfigureAwait(false);
            foreach (var err in resp.DeleteErrors ?? [])
            {
                var key = err.Key is not null && err.Key.StartsWith(_prefix, StringComparison.Ordinal) ? err.Key[_prefix.Length..] : err.Key ?? "";
                if (err.Code is "AccessDenied" or "ObjectLocked" or "InvalidRequest" || (err.Message?.Contains("lock", StringComparison.OrdinalIgnoreCase) ?? false))
                {
                    refused.Add(key);
                }
                else if (err.Code is "NoSuchKey")
                {
                    // Missing keys are not an error.
                }
                else
                {
                    throw new HubDrException("StoreDeleteFailed", HubErrorCategory.WriteError,
                        $"S3 refused to delete '{key}' in {Location}: {err.Code} {err.Message}") { Target = key };
                }
            }
        }

        return refused;
    }

    public async IAsyncEnumerable<PendingUpload> ListPendingAsync(string prefix, [EnumeratorCancellation] CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        string? keyMarker = null, idMarker = null;
        do
        {
            var req = new ListMultipartUploadsRequest { BucketName = _bucket, Prefix = _prefix + prefix, KeyMarker = keyMarker, UploadIdMarker = idMarker };
            var resp = await Call(c => _s3.ListMultipartUploadsAsync(req, c), null, ct).ConfigureAwait(false);
            foreach (var u in resp.MultipartUploads ?? [])
            {
                // Filtered here too: some S3-compatible servers ignore the prefix.
                if (u.Key is null || !u.Key.StartsWith(_prefix + prefix, StringComparison.Ordinal))
                {
                    continue;
                }

                var started = u.Initiated is DateTime i ? new DateTimeOffset(i.ToUniversalTime(), TimeSpan.Zero) : DateTimeOffset.MinValue;
                yield return new PendingUpload(u.Key[_prefix.Length..], u.UploadId, 0, started) { Kind = "multipart upload" };
            }

            var more = resp.IsTruncated == true && (resp.NextKeyMarker != keyMarker || resp.NextUploadIdMarker != idMarker);
            keyMarker = more ? resp.NextKeyMarker : null;
            idMarker = more ? resp.NextUploadIdMarker : null;
        }
        while (keyMarker is not null);
    }

    public async Task AbortPendingAsync(PendingUpload upload, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(upload);
        var full = FullKey(upload.Key);
        try
        {
            await Call(c => _s3.AbortMultipartUploadAsync(new AbortMultipartUploadRequest { BucketName = _bucket, Key = full, UploadId = upload.UploadId }, c), upload.Key, ct).ConfigureAwait(false);
        }
        catch (HubDrException e) when (e.ErrorId == "StoreObjectNotFound")
        {
            // NoSuchUpload: already completed or aborted.
        }
    }

    public ValueTask DisposeAsync()
    {
        _s3.Dispose();
        return ValueTask.CompletedTask;
    }

    internal string FullKey(string key)
    {
        if (string.IsNullOrEmpty(key) || key.StartsWith('/') || key.Contains('\\') || key.Split('/').Any(p => p is "" or "." or ".."))
        {
            throw new HubDrException("StoreKeyInvalid", HubErrorCategory.InvalidArgument, $"Invalid object key '{key}'.") { Target = key };
        }

        return _prefix + key;
    }

    internal async Task PutObjectAsync(string fullKey, string key, ReadOnlyMemory<byte> content, StoreWriteOptions options, CancellationToken ct)
    {
        var md5 = Convert.ToBase64String(MD5.HashData(content.Span));
        await Call(c =>
        {
            var req = new PutObjectRequest
            {
                BucketName = _bucket,
                Key = fullKey,
                InputStream = AsStream(content),
                AutoCloseStream = true,
                ContentType = options.ContentType,
                MD5Digest = md5,
                UseChunkEncoding = false,
            };
            ApplyWriteOptions(req, options);
            return _s3.PutObjectAsync(req, c);
        }, key, ct).ConfigureAwait(false);
    }

    private static MemoryStream AsStream(ReadOnlyMemory<byte> m)
        => System.Runtime.InteropServices.MemoryMarshal.TryGetArray(m, out var seg)
            ? new MemoryStream(seg.Array!, seg.Offset, seg.Count, writable: false)
            : new MemoryStream(m.ToArray(), writable: false);

    private void ApplyWriteOptions(PutObjectRequest req, StoreWriteOptions o)
    {
        ApplySse(_spec, s => req.ServerSideEncryptionMethod = s, k => req.ServerSideEncryptionKeyManagementServiceKeyId = k);
        if (o.RetainUntil is DateTimeOffset until)
        {
            req.ObjectLockMode = LockModeOf(o);
            req.ObjectLockRetainUntilDate = until.UtcDateTime;
        }

        if (o.LegalHold)
        {
            req.ObjectLockLegalHoldStatus = ObjectLockLegalHoldStatus.On;
        }
    }

    internal void ApplyWriteOptions(InitiateMultipartUploadRequest req, StoreWriteOptions o)
    {
        req.ContentType = o.ContentType;
        ApplySse(_spec, s => req.ServerSideEncryptionMethod = s, k => req.ServerSideEncryptionKeyManagementServiceKeyId = k);
        if (o.RetainUntil is DateTimeOffset until)
        {
            req.ObjectLockMode = LockModeOf(o);
            req.ObjectLockRetainUntilDate = until.UtcDateTime;
        }

        if (o.LegalHold)
        {
            req.ObjectLockLegalHoldStatus = ObjectLockLegalHoldStatus.On;
        }
    }

    private static ObjectLockMode LockModeOf(StoreWriteOptions o) => (string.IsNullOrWhiteSpace(o.LockMode) ? "COMPLIANCE" : o.LockMode.Trim()).ToUpperInvariant() switch
    {
        "COMPLIANCE" => ObjectLockMode.Compliance,
        "GOVERNANCE" => ObjectLockMode.Governance,
        var m => throw new HubDrException("StoreLockModeInvalid", HubErrorCategory.InvalidArgument, $"Object lock mode '{m}' is not valid. Use GOVERNANCE or COMPLIANCE (setting StoreOptions.LockMode)."),
    };

    /// <summary>Rejects a bad lock mode or server-side encryption before any request is sent.</summary>
    private void ValidateWriteOptions(StoreWriteOptions o)
    {
        _ = LockModeOf(o);
        ApplySse(_spec, _ => { }, _ => { });
    }

    private static void ApplySse(StoreSpec spec, Action<ServerSideEncryptionMethod> setMethod, Action<string> setKey)
    {
        if (string.IsNullOrWhiteSpace(spec.ServerSideEncryption))
        {
            return;
        }

        switch (spec.ServerSideEncryption.Trim().ToLowerInvariant())
        {
            case "aes256":
                setMethod(ServerSideEncryptionMethod.AES256);
                break;
            case "aws:kms":
                setMethod(ServerSideEncryptionMethod.AWSKMS);
                if (!string.IsNullOrWhiteSpace(spec.KmsKeyId))
                {
                    setKey(spec.KmsKeyId);
                }

                break;
            default:
                throw new HubDrException("StoreEncryptionInvalid", HubErrorCategory.InvalidArgument,
                    $"Server-side encryption '{spec.ServerSideEncryption}' is not supported. Use AES256 or aws:kms (with an optional KMS key id).");
        }
    }

    /// <summary>Runs one S3 call with retries and maps failures to HubDrException.</summary>
    internal async Task<T> Call<T>(Func<CancellationToken, Task<T>> action, string? key, CancellationToken ct)
    {
        try
        {
            return await Retry.ExecuteAsync(action, IsTransient, _spec.MaxRetries, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            throw Map(e, key);
        }
    }

    internal static bool IsTransient(Exception e)
    {
        if (e is AmazonServiceException se)
        {
            if (se.ErrorCode is "SlowDown" or "RequestTimeout" or "InternalError" or "ServiceUnavailable" or "RequestTimeTooSkewed" or "Throttling" or "ThrottlingException")
            {
                return true;
            }

            var status = (int)se.StatusCode;
            if (status is 500 or 502 or 503 or 504 or 429)
            {
                return true;
            }

            if (status is >= 400 and < 500)
            {
                return false;
            }
        }

        return Retry.IsNetworkFailure(e);
    }

    internal Exception Map(Exception e, string? key)
    {
        if (e is HubDrException)
        {
            return e;
        }

        var where = key is null ? Location : $"'{key}' in {Location}";
        if (e is AmazonS3Exception s3)
        {
            var code = s3.ErrorCode;
            if (code == "NoSuchBucket" || (s3.StatusCode == HttpStatusCode.NotFound && key is null))
            {
                return new HubDrException("StoreNotFound", HubErrorCategory.ObjectNotFound,
                    $"The S3 bucket '{_bucket}' does not exist (or the endpoint/region is wrong). Create it first or fix the store URI; HubDr does not create buckets.", e) { Target = Location };
            }

            if (code is "QuotaExceeded" or "XMinioStorageFull" or "XMinioAdminBucketQuotaExceeded" or "StorageFull" or "InsufficientStorage" || (int)s3.StatusCode == 507)
            {
                // Ceph RGW and others: QuotaExceeded; MinIO: XMinioStorageFull / bucket quota; WebDAV-style 507.
                return new HubDrException("StoreFull", HubErrorCategory.QuotaExceeded,
                    $"The S3 store {Location} is full or over its quota ({code}) while writing {where}. Raise the quota or free space, then run again.", e) { Target = Location };
            }

            if (code is "NoSuchKey" or "NoSuchUpload" || s3.StatusCode == HttpStatusCode.NotFound)
            {
                return new HubDrException("StoreObjectNotFound", HubErrorCategory.ObjectNotFound, $"Object {where} does not exist.", e) { Target = key };
            }

            if (code is "AccessDenied" or "InvalidAccessKeyId" or "SignatureDoesNotMatch" or "ExpiredToken" or "InvalidToken" or "AllAccessDisabled" || s3.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized)
            {
                return new HubDrException("StoreAccessDenied", HubErrorCategory.PermissionDenied,
                    $"Access to {where} was denied ({code}). Check the access key / role and that its policy allows s3:ListBucket, s3:GetObject, s3:PutObject, s3:DeleteObject and s3:AbortMultipartUpload on this bucket and prefix.", e) { Target = Location };
            }

            if (IsTransient(e))
            {
                return new HubDrException("StoreUnavailable", HubErrorCategory.ResourceUnavailable,
                    $"S3 kept failing for {where} ({(int)s3.StatusCode} {code}) after {_spec.MaxRetries} retries. The service is overloaded or unreachable; try again later.", e) { Target = Location };
            }

            return new HubDrException("StoreRequestFailed", HubErrorCategory.WriteError, $"S3 request for {where} failed: {(int)s3.StatusCode} {code}: {s3.Message}", e) { Target = Location };
        }

        if (Retry.IsNetworkFailure(e) || e is AmazonClientException)
        {
            return new HubDrException("StoreUnavailable", HubErrorCategory.ConnectionError,
                $"Could not reach S3 for {where} after {_spec.MaxRetries} retries: {e.GetBaseException().Message}. Check the endpoint, network and proxy, then try again.", e) { Target = Location };
        }

        return e;
    }

    /// <summary>Wraps a GetObject response so disposing the stream disposes the response (connection).</summary>
    private sealed class ResponseStream : ReadOnlyStream
    {
        private readonly GetObjectResponse _resp;
        private readonly Stream _inner;

        public ResponseStream(GetObjectResponse resp)
        {
            _resp = resp;
            _inner = resp.ResponseStream;
        }

        public override long Length => _resp.ContentLength;
        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);
        public override int Read(Span<byte> buffer) => _inner.Read(buffer);
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _inner.ReadAsync(buffer, offset, count, cancellationToken);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _inner.ReadAsync(buffer, cancellationToken);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _inner.Dispose();
                _resp.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
