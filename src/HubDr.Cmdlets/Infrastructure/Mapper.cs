using HubDr.Engine.Backup;
using HubDr.Engine.Stores;

namespace HubDr.Cmdlets.Infrastructure;

/// <summary>Engine results → the public output types. Times are DateTimeOffset in local time (the zone is shown and comparisons are exact).</summary>
internal static class Mapper
{
    public static DateTimeOffset Local(DateTimeOffset t) => t.ToLocalTime();

    public static DateTimeOffset? Local(DateTimeOffset? t) => t?.ToLocalTime();

    public static HubBackup ToHubBackup(BackupListing b, string location, StoreSpec spec)
    {
        var c = b.Catalog;
        return new HubBackup
        {
            BackupId = b.BackupId,
            Hub = b.Hub,
            Created = Local(b.Created),
            Status = b.IsComplete ? "Complete" : b.IsRunning ? "Running" : "Incomplete",
            ArchiveSize = c?.ArchiveSize ?? 0,
            StoredSize = b.StoredBytes,
            Engine = c?.Engine,
            ServerVersion = c?.ServerVersion,
            Compression = c?.Compression,
            DumpSize = c?.DumpSize ?? 0,
            TableCount = c?.TableCount ?? 0,
            RowCount = c?.RowCount ?? 0,
            SignerFingerprint = c?.SignerFingerprint,
            RecipientKeyIds = new(c?.RecipientKeyIds),
            Store = location,
            Archive = c is null ? null : ObjectLayout.Folder(b.Hub, b.BackupId) + c.Archive,
            ArchiveSha256 = c?.ArchiveSha256,
            LockedUntil = Local(b.LockedUntil),
            LegalHold = b.LegalHold,
            Labels = new(c?.Labels),
            ToolVersion = c?.ToolVersion ?? "",
            StoreSpec = spec,
        };
    }

    /// <summary>A new backup: from its listing when the store returned one (so every size means what Get-HubBackup shows), else from the outcome.</summary>
    public static HubBackup ToHubBackup(BackupOutcome o, BackupListing? listing, StoreSpec spec)
    {
        if (listing is { IsComplete: true })
        {
            return ToHubBackup(listing, o.StoreLocation, spec);
        }

        var c = o.Catalog;
        return new HubBackup
        {
            BackupId = c.BackupId,
            Hub = c.Hub,
            Created = Local(c.CreatedUtc),
            Status = "Complete",
            ArchiveSize = c.ArchiveSize,
            StoredSize = c.ArchiveSize,
            Engine = c.Engine,
            ServerVersion = c.ServerVersion,
            Compression = c.Compression,
            DumpSize = c.DumpSize,
            TableCount = c.TableCount,
            RowCount = c.RowCount,
            SignerFingerprint = c.SignerFingerprint,
            RecipientKeyIds = new(c.RecipientKeyIds),
            Store = o.StoreLocation,
            Archive = ObjectLayout.Folder(c.Hub, c.BackupId) + c.Archive,
            ArchiveSha256 = c.ArchiveSha256,
            LockedUntil = Local(c.RetainUntil),
            Labels = new(c.Labels),
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
        SignedAt = Local(v.SignedAt),
        BytesVerified = v.BytesRead,
        ArchiveSha256 = v.ArchiveSha256,
        DurationSeconds = v.Duration.TotalSeconds,
        Store = location,
        Backup = backup,
        Warnings = new(v.Warnings),
    };
}
