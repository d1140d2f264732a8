namespace HubDr.Cmdlets;

/// <summary>One backup in a store (Get-HubBackup, New-HubBackup). Pipes into Test-HubBackupSignature, Restore-HubBackup, Remove-ExpiredHubBackup.</summary>
public sealed class HubBackup
{
    public string BackupId { get; init; } = "";
    public string Hub { get; init; } = "";

    /// <summary>Creation time (UTC).</summary>
    public DateTime Created { get; init; }

    public TimeSpan Age => DateTime.UtcNow - Created;

    /// <summary>"Complete" (catalog record present) or "Incomplete" (interrupted or half-deleted: never restore).</summary>
    public string Status { get; init; } = "";

    /// <summary>Bytes stored (archive + signatures + catalog).</summary>
    public long Size { get; init; }

    public string? Engine { get; init; }
    public string? ServerVersion { get; init; }
    public string? Compression { get; init; }
    public long DumpSize { get; init; }
    public int TableCount { get; init; }
    public long RowCount { get; init; }
    public string? SignerFingerprint { get; init; }
    public string[] RecipientKeyIds { get; init; } = [];
    public string Store { get; init; } = "";
    public string? Archive { get; init; }
    public string? ArchiveSha256 { get; init; }
    public DateTime? LockedUntil { get; init; }
    public bool LegalHold { get; init; }
    public string[] Labels { get; init; } = [];
    public string ToolVersion { get; init; } = "";

    /// <summary>How to reach the store again (credentials included) when piped on; not shown.</summary>
    internal object? StoreSpec { get; init; }

    public override string ToString() => $"{Hub}/{BackupId}";
}
