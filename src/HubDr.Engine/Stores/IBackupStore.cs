namespace HubDr.Engine.Stores;

/// <summary>
/// A flat object store. Keys are '/'-separated and relative to the store's own root/prefix
/// (the store adds its prefix). Implementations: Local (folder), S3, Azure. Adding a backend
/// means one folder under Stores/ plus one line in <see cref="StoreFactory"/>.
/// </summary>
public interface IBackupStore : IAsyncDisposable
{
    /// <summary>Human-readable location without secrets, e.g. "file:///var/backups/hub" or "s3://bucket/prefix".</summary>
    string Location { get; }

    /// <summary>Fails with ErrorId StoreNotFound (ObjectNotFound) when the folder/bucket/container does not exist.</summary>
    Task EnsureAvailableAsync(CancellationToken ct);

    /// <summary>
    /// Starts a streaming upload. Nothing is visible under <paramref name="key"/> until
    /// <see cref="IStoreUpload.CompleteAsync"/> succeeds; disposing an upload that was not completed
    /// aborts it and removes every partial byte (temp file, multipart upload, uncommitted blocks).
    /// </summary>
    Task<IStoreUpload> BeginUploadAsync(string key, StoreWriteOptions options, CancellationToken ct);

    /// <summary>Atomic write of a small object (catalog record, signature, report).</summary>
    Task PutAsync(string key, ReadOnlyMemory<byte> content, StoreWriteOptions options, CancellationToken ct);

    /// <summary>Streaming read. Throws HubDrException "StoreObjectNotFound" (ObjectNotFound) when missing.</summary>
    Task<Stream> OpenReadAsync(string key, CancellationToken ct);

    /// <summary>Whole small object, or null when it does not exist.</summary>
    Task<byte[]?> TryGetAsync(string key, CancellationToken ct);

    /// <summary>Every object whose key starts with <paramref name="prefix"/> (may be ""), paging internally.</summary>
    IAsyncEnumerable<StoreObject> ListAsync(string prefix, CancellationToken ct);

    /// <summary>
    /// Deletes the given keys (batched where the backend allows). Missing keys are not an error.
    /// Keys that cannot be deleted because of object lock / immutability are returned, not thrown.
    /// </summary>
    Task<IReadOnlyList<string>> DeleteAsync(IReadOnlyList<string> keys, CancellationToken ct);

    /// <summary>
    /// Uploads under <paramref name="prefix"/> that were started but never completed and are not visible through
    /// <see cref="ListAsync"/>: the local store's hidden temp files, S3 multipart uploads, Azure blobs that only have
    /// uncommitted blocks. A killed process leaves them behind; retention shows and removes them.
    /// </summary>
    IAsyncEnumerable<PendingUpload> ListPendingAsync(string prefix, CancellationToken ct);

    /// <summary>Removes one pending upload (deletes the temp file, aborts the multipart upload, discards the
    /// uncommitted blocks). One that is already gone is not an error.</summary>
    Task AbortPendingAsync(PendingUpload upload, CancellationToken ct);
}

/// <summary>
/// An upload that was started and never completed. <paramref name="Key"/> is where it was going (S3, Azure) or the temp
/// file itself (local folder), relative to the store's prefix; <paramref name="LastModified"/> is the last write (local)
/// or when the upload was started (S3) / last changed (Azure). <paramref name="Size"/> is 0 where the service does not say.
/// </summary>
public sealed record PendingUpload(string Key, string UploadId, long Size, DateTimeOffset LastModified)
{
    /// <summary>"temp file", "multipart upload" or "uncommitted blob": what an operator sees in -WhatIf.</summary>
    public string Kind { get; init; } = "pending upload";
}

/// <summary>A streaming upload in progress. Write to <see cref="Content"/>, then CompleteAsync.</summary>
public interface IStoreUpload : IAsyncDisposable
{
    Stream Content { get; }

    /// <summary>Makes the object visible atomically (rename / complete multipart / commit block list).</summary>
    Task CompleteAsync(CancellationToken ct);
}

public sealed record StoreObject(string Key, long Size, DateTimeOffset LastModified)
{
    /// <summary>Retain-until date of an object lock / immutability policy, when the backend reports one.</summary>
    public DateTimeOffset? LockedUntil { get; init; }

    public bool LegalHold { get; init; }
}

public sealed class StoreWriteOptions
{
    public static readonly StoreWriteOptions Default = new();

    /// <summary>S3 Object Lock (compliance/governance) retain-until or Azure immutability policy expiry.</summary>
    public DateTimeOffset? RetainUntil { get; init; }

    /// <summary>S3 Object Lock mode: "GOVERNANCE" or "COMPLIANCE" (S3 only).</summary>
    public string? LockMode { get; init; }

    public bool LegalHold { get; init; }

    public string ContentType { get; init; } = "application/octet-stream";
}
