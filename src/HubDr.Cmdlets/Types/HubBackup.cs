namespace HubDr.Cmdlets;

/// <summary>One backup in a store (Get-HubBackup, New-HubBackup). Pipes into Test-HubBackupSignature, Restore-HubBackup, Remove-ExpiredHubBackup.</summary>
public sealed class HubBackup
{
    public string BackupId { get; init; } = "";
    public string Hub { get; init; } = "";

    /// <summary>Creation time, with its offset (shown in local time): compares correctly with Get-Date in any time zone.</summary>
    public DateTimeOffset Created { get; init; }

    /// <summary>"Complete" (catalog record present) or "Incomplete" (interrupted or half-deleted: never restore).</summary>
    public string Status { get; init; } = "";

    /// <summary>Bytes of the encrypted archive object alone (the catalog's archiveSize; 0 when incomplete).</summary>
    public long ArchiveSize { get; init; }

    /// <summary>Bytes the backup occupies in the store: archive + signatures + catalog record (what removing it frees).</summary>
    public long StoredSize { get; init; }

    public string? Engine { get; init; }
    public string? ServerVersion { get; init; }
    public string? Compression { get; init; }

    /// <summary>Bytes of the uncompressed database dump.</summary>
    public long DumpSize { get; init; }

    public int TableCount { get; init; }
    public long RowCount { get; init; }
    public string? SignerFingerprint { get; init; }
    public HubList<string> RecipientKeyIds { get; init; } = HubList<string>.Empty;
    public string Store { get; init; } = "";
    public string? Archive { get; init; }
    public string? ArchiveSha256 { get; init; }
    public DateTimeOffset? LockedUntil { get; init; }
    public bool LegalHold { get; init; }
    public HubList<string> Labels { get; init; } = HubList<string>.Empty;
    public string ToolVersion { get; init; } = "";

    /// <summary>How to reach the store again (credentials included) when piped on; not shown.</summary>
    internal object? StoreSpec { get; init; }

    public override string ToString() => $"{Hub}/{BackupId}";
}
