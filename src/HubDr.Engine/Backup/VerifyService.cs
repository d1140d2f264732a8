using HubDr.Engine.Crypto;
using HubDr.Engine.IO;
using HubDr.Engine.Stores;

namespace HubDr.Engine.Backup;

public enum VerificationStatus
{
    Valid,
    Tampered,
    Truncated,
    UntrustedSigner,
    MissingSignature,
    MalformedSignature,
    CatalogMismatch,
    CatalogMissing,
    ArchiveMissing,
}

public sealed class VerifyResult
{
    public required string Hub { get; init; }
    public required string BackupId { get; init; }
    public required VerificationStatus Status { get; init; }
    public bool IsValid => Status == VerificationStatus.Valid;
    public required string Reason { get; init; }
    public string? SignerFingerprint { get; init; }
    public string? SignerKeyId { get; init; }
    public DateTimeOffset? SignedAt { get; init; }
    public CatalogRecord? Catalog { get; init; }
    public long BytesRead { get; init; }
    public string? ArchiveSha256 { get; init; }
    public TimeSpan Duration { get; init; }

    /// <summary>Findings that do not make the signature invalid, e.g. "signed after the key was retired".</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>When key metadata was given and records the signer as retired: the retirement time.</summary>
    public DateTimeOffset? SignerRetired { get; init; }
}

/// <summary>
/// Test-HubBackupSignature. Needs only the trusted signers' PUBLIC keys, never the decryption key.
/// Checks, in order: catalog present; catalog signature by a trusted key; catalog names this backup;
/// archive signature present and by a trusted key over exactly the bytes in the store; size and SHA-256 equal the catalog's.
/// </summary>
public static class VerifyService
{
    /// <param name="keyHistory">keys.json, when known: a backup created after its signing key was retired is reported
    /// ("signed after the key was retired" in <see cref="VerifyResult.Warnings"/>; the signature itself stays valid).</param>
    public static async Task<VerifyResult> VerifyAsync(IBackupStore store, string hub, string backupId, OpenPgpKeySet trusted, IOperationLog log, CancellationToken ct, KeyMetadata? keyHistory = null)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var folder = ObjectLayout.Folder(hub, backupId);
        VerifyResult Fail(VerificationStatus s, string reason, CatalogRecord? c = null, SignatureCheck? sig = null, long bytes = 0, string? sha = null) => new()
        {
            Hub = hub,
            BackupId = backupId,
            Status = s,
            Reason = reason,
            Catalog = c,
            SignerFingerprint = sig?.SignerFingerprint,
            SignerKeyId = sig?.SignerKeyId,
            SignedAt = sig?.SignedAt,
            BytesRead = bytes,
            ArchiveSha256 = sha,
            Duration = clock.Elapsed,
        };

        var catalogBytes = await store.TryGetAsync(folder + ObjectLayout.CatalogName, ct).ConfigureAwait(false);
        if (catalogBytes is null)
        {
            return Fail(VerificationStatus.CatalogMissing, "The catalog record is missing: the backup is incomplete (interrupted or half-deleted) and must not be trusted.");
        }

        var catalogSig = await store.TryGetAsync(folder + ObjectLayout.CatalogSignatureName, ct).ConfigureAwait(false);
        var catalogCheck = OpenPgpSignatures.Verify(new MemoryStream(catalogBytes, writable: false), catalogSig, trusted);
        log.Verbose($"Catalog signature: {catalogCheck.Status} ({catalogCheck.Reason}).");
        if (catalogCheck.Status != SignatureStatus.Valid)
        {
            return Fail(Map(catalogCheck.Status), "Catalog record: " + catalogCheck.Reason, sig: catalogCheck);
        }

        CatalogRecord catalog;
        try
        {
            catalog = HubJson.Deserialize<CatalogRecord>(catalogBytes, "catalog record");
        }
        catch (HubDrException e)
        {
            return Fail(VerificationStatus.CatalogMismatch, e.Message, sig: catalogCheck);
        }

        if (!string.Equals(catalog.BackupId, backupId, StringComparison.Ordinal) || !string.Equals(catalog.Hub, hub, StringComparison.Ordinal))
        {
            return Fail(VerificationStatus.CatalogMismatch,
                $"The catalog record describes backup '{catalog.Hub}/{catalog.BackupId}', not '{hub}/{backupId}': catalog records were swapped or copied.", catalog, catalogCheck);
        }

        if (catalog.Archive.Contains('/') || catalog.ArchiveSignature.Contains('/'))
        {
            return Fail(VerificationStatus.CatalogMismatch, "The catalog record names objects outside its own backup folder.", catalog, catalogCheck);
        }

        var archiveSig = await store.TryGetAsync(folder + catalog.ArchiveSignature, ct).ConfigureAwait(false);
        if (archiveSig is null)
        {
            return Fail(VerificationStatus.MissingSignature, $"The archive signature '{catalog.ArchiveSignature}' is missing.", catalog, catalogCheck);
        }

        Stream raw;
        try
        {
            raw = await store.OpenReadAsync(folder + catalog.Archive, ct).ConfigureAwait(false);
        }
        catch (HubDrException e) when (e.ErrorId == "StoreObjectNotFound")
        {
            return Fail(VerificationStatus.ArchiveMissing, $"The archive '{catalog.Archive}' is missing.", catalog, catalogCheck);
        }

        SignatureCheck check;
        long bytes;
        string? sha;
        var progress = new ProgressThrottle(log, $"Verifying {hub}/{backupId}", catalog.ArchiveSize);
        await using (raw.ConfigureAwait(false))
        {
            // One read, one SHA-256: the signature check also yields the archive's SHA-256 for the catalog comparison.
            using var counting = new HashingStream(raw, leaveOpen: true, onProgress: progress.Report, computeSha256: false);
            check = OpenPgpSignatures.Verify(counting, archiveSig, trusted, computeDataSha256: true);
            if (check.DataSha256 is { } shared)
            {
                sha = shared; // Verify read the archive to its end
            }
            else
            {
                // Verify stopped early (no signature, untrusted signer, malformed): read the rest too, so size and
                // hash describe the object. Nothing was read yet unless the signature broke mid-way.
                var before = counting.BytesProcessed;
                using var rest = new HashingStream(counting, leaveOpen: true);
                await rest.CopyToAsync(Stream.Null, 1 << 20, ct).ConfigureAwait(false);
                sha = before == 0 ? rest.Sha256 : null;
            }

            bytes = counting.BytesProcessed;
        }

        progress.Complete();
        log.Verbose($"Archive: {bytes} bytes, SHA-256 {sha}; signature {check.Status} ({check.Reason}).");
        if (check.Status is SignatureStatus.Missing or SignatureStatus.Malformed or SignatureStatus.UntrustedSigner)
        {
            return Fail(Map(check.Status), "Archive: " + check.Reason, catalog, check, bytes, sha);
        }

        if (bytes < catalog.ArchiveSize)
        {
            return Fail(VerificationStatus.Truncated, $"The archive is truncated: {bytes} of {catalog.ArchiveSize} bytes.", catalog, check, bytes, sha);
        }

        if (check.Status != SignatureStatus.Valid)
        {
            return Fail(VerificationStatus.Tampered, "The archive was modified after it was signed: " + check.Reason, catalog, check, bytes, sha);
        }

        if (bytes != catalog.ArchiveSize || !string.Equals(sha, catalog.ArchiveSha256, StringComparison.OrdinalIgnoreCase))
        {
            return Fail(VerificationStatus.CatalogMismatch, "The archive is validly signed but is not the one its catalog record describes (size or SHA-256 differ).", catalog, check, bytes, sha);
        }

        if (!string.Equals(check.SignerFingerprint, catalog.SignerFingerprint, StringComparison.OrdinalIgnoreCase))
        {
            return Fail(VerificationStatus.CatalogMismatch, $"The archive was signed by {check.SignerFingerprint} but the catalog names {catalog.SignerFingerprint}.", catalog, check, bytes, sha);
        }

        var warnings = new List<string>();
        DateTimeOffset? retiredAt = null;
        if (keyHistory?.Find(check.SignerFingerprint!) is { Retired: { } retired } record)
        {
            retiredAt = retired;
            if (catalog.CreatedUtc > retired)
            {
                var w = $"Signed after the key was retired: key {check.SignerFingerprint} was retired on {retired:u}, but backup {hub}/{backupId} " +
                        $"was created on {catalog.CreatedUtc:u}{(record.Successor is null ? "" : $" (the current key is {record.Successor})")}. " +
                        "Check which host still signs with the old key.";
                warnings.Add(w);
                log.Warning(w);
            }
        }

        return new VerifyResult
        {
            Warnings = warnings,
            SignerRetired = retiredAt,
            Hub = hub,
            BackupId = backupId,
            Status = VerificationStatus.Valid,
            Reason = $"Signed by trusted key {check.SignerFingerprint}; {bytes} bytes, SHA-256 matches the catalog.",
            SignerFingerprint = check.SignerFingerprint,
            SignerKeyId = check.SignerKeyId,
            SignedAt = check.SignedAt,
            Catalog = catalog,
            BytesRead = bytes,
            ArchiveSha256 = sha,
            Duration = clock.Elapsed,
        };
    }

    private static VerificationStatus Map(SignatureStatus s) => s switch
    {
        SignatureStatus.Missing => VerificationStatus.MissingSignature,
        SignatureStatus.Malformed => VerificationStatus.MalformedSignature,
        SignatureStatus.UntrustedSigner => VerificationStatus.UntrustedSigner,
        SignatureStatus.BadSignature => VerificationStatus.Tampered,
        _ => VerificationStatus.Valid,
    };
}
