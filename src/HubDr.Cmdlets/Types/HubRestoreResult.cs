namespace HubDr.Cmdlets;

/// <summary>Result of Restore-HubBackup.</summary>
public sealed class HubRestoreResult
{
    public string BackupId { get; init; } = "";
    public string Hub { get; init; } = "";
    public bool Succeeded { get; init; }
    public string? DatabaseEngine { get; init; }

    /// <summary>Where the database went (connection string without password, or SQLite path).</summary>
    public string? DatabaseTarget { get; init; }

    public string? FilesPath { get; init; }
    public string[] FilesRestored { get; init; } = [];
    public string SignerFingerprint { get; init; } = "";
    public string DecryptedWithKey { get; init; } = "";
    public bool RowCountsMatch { get; init; }
    public HubRowCount[] RowCounts { get; init; } = [];
    public string[] IntegrityProblems { get; init; } = [];
    public TimeSpan VerifyDuration { get; init; }
    public TimeSpan RestoreDuration { get; init; }
    public TimeSpan CheckDuration { get; init; }
    public TimeSpan Duration { get; init; }
    public DateTime BackupCreated { get; init; }

    public override string ToString() => $"{Hub}/{BackupId} -> {DatabaseTarget ?? FilesPath}";
}

/// <summary>One table's row count, expected (manifest) versus restored.</summary>
public sealed class HubRowCount
{
    public string Table { get; init; } = "";
    public long Expected { get; init; }
    public long Actual { get; init; }
    public bool Matches => Expected == Actual;
}
