using HubDr.Engine.Backup;
using HubDr.Engine.Stores;

namespace HubDr.Cmdlets.Infrastructure;

/// <summary>Engine results → the public output types.</summary>
internal static class Mapper
{
    public static HubBackup ToHubBackup(BackupListing b, string location, StoreSpec spec)
    {
        var c = b.Catalog;
        return new HubBackup
        {
            BackupId = b.BackupId,
            Hub = b.Hub,
            Created = b.Created.UtcDateTime,
            Status = b.IsComplete ? "Complete" : "Incomplete",
            Size = b.StoredBytes,
            Engine = c?.Engine,
            ServerVersion = c?.ServerVersion,
            Compression = c?.Compression,
            DumpSize = c?.DumpSize ?? 0,
            TableCount = c?.TableCount ?? 0,
            RowCount = c?.RowCount ?? 0,
            SignerFingerprint = c?.SignerFingerprint,
            RecipientKeyIds = c?.RecipientKeyIds.ToArray() ?? [],
            Store = location,
            Archive = c is null ? null : ObjectLayout.Folder(b.Hub, b.BackupId) + c.Archive,
            ArchiveSha256 = c?.ArchiveSha256,
            LockedUntil = b.LockedUntil?.UtcDateTime,
            LegalHold = b.LegalHold,
            Labels = c?.Labels.ToArray() ?? [],
            ToolVersion = c?.ToolVersion ?? "",
            StoreSpec = spec,
        };
    }

    public static HubBackup ToHubBackup(BackupOutcome o, StoreSpec spec)
    {
        var c = o.Catalog;
        return new HubBackup
        {
            BackupId = c.BackupId,
            Hub = c.Hub,
            Created = c.CreatedUtc.UtcDateTime,
            Status = "Complete",
            Size = c.ArchiveSize,
            Engine = c.Engine,
            ServerVersion = c.ServerVersion,
            Compression = c.Compression,
            DumpSize = c.DumpSize,
            TableCount = c.TableCount,
            RowCount = c.RowCount,
            SignerFingerprint = c.SignerFingerprint,
            RecipientKeyIds = c.RecipientKeyIds.ToArray(),
            Store = o.StoreLocation,
            Archive = ObjectLayout.Folder(c.Hub, c.BackupId) + c.Archive,
            ArchiveSha256 = c.ArchiveSha256,
            LockedUntil = c.RetainUntil?.UtcDateTime,
            Labels = c.Labels.ToArray(),
            ToolVersion = c.ToolVersion,
            StoreSpec = spec,
        };
    }

    public static HubSignatureResult ToSignatureResult(VerifyResult v, HubBackup? backup, string location) => new()
    {
        BackupId = v.BackupId,
        Hub = v.Hub,
        IsValid = v.IsValid,
        Status = v.Status.ToString(),
        Reason = v.Reason,
        SignerFingerprint = v.SignerFingerprint,
        SignerKeyId = v.SignerKeyId,
        SignedAt = v.SignedAt?.UtcDateTime,
        BytesVerified = v.BytesRead,
        ArchiveSha256 = v.ArchiveSha256,
        Duration = v.Duration,
        Store = location,
        Backup = backup,
        Warnings = v.Warnings.ToArray(),
    };
}
