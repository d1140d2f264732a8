using System.Globalization;

namespace HubDr.Cmdlets;

/// <summary>Result of Restore-HubBackup. Durations are seconds (plain numbers in JSON and CSV).</summary>
public sealed class HubRestoreResult
{
    public string BackupId { get; init; } = "";
    public string Hub { get; init; } = "";
    public bool Succeeded { get; init; }
    public string? DatabaseEngine { get; init; }

    /// <summary>Where the database went (connection string without password, or SQLite path).</summary>
    public string? DatabaseTarget { get; init; }

    public string? FilesPath { get; init; }
    public HubList<string> FilesRestored { get; init; } = HubList<string>.Empty;
    public string SignerFingerprint { get; init; } = "";
    public string DecryptedWithKey { get; init; } = "";
    public bool RowCountsMatch { get; init; }
    public HubList<HubRowCount> RowCounts { get; init; } = HubList<HubRowCount>.Empty;
    public HubList<string> IntegrityProblems { get; init; } = HubList<string>.Empty;
    public double VerifySeconds { get; init; }
    public double RestoreSeconds { get; init; }
    public double CheckSeconds { get; init; }
    public double DurationSeconds { get; init; }
    public DateTimeOffset BackupCreated { get; init; }

    public override string ToString() => $"{Hub}/{BackupId} -> {DatabaseTarget ?? FilesPath}";
}

/// <summary>One table's row count, expected (manifest) versus restored.</summary>
public sealed class HubRowCount
{
    public string Table { get; init; } = "";
    public long Expected { get; init; }
    public long Actual { get; init; }
    public bool Matches => Expected == Actual;

    /// <summary>"users=300" when the counts match, "users=299 (expected 300)" when not.</summary>
    public override string ToString() =>
        Matches ? $"{Table}={Actual.ToString(CultureInfo.InvariantCulture)}"
            : $"{Table}={Actual.ToString(CultureInfo.InvariantCulture)} (expected {Expected.ToString(CultureInfo.InvariantCulture)})";
}
