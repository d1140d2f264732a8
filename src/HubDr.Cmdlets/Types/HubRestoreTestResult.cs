namespace HubDr.Cmdlets;

/// <summary>Result of Invoke-HubRestoreTest: the weekly proof that restores work.</summary>
public sealed class HubRestoreTestResult
{
    public string Hub { get; init; } = "";
    public string? BackupId { get; init; }
    public DateTime? BackupCreated { get; init; }
    public bool Passed { get; init; }
    public string? SignatureStatus { get; init; }

    /// <summary>Fetch + verify + restore + service start + smoke tests.</summary>
    public TimeSpan TimeToOperable { get; init; }

    public TimeSpan RtoTarget { get; init; }
    public bool RtoMet { get; init; }

    /// <summary>Age of the backup when the test ran (data that a disaster now would lose).</summary>
    public TimeSpan BackupAge { get; init; }

    public TimeSpan RpoTarget { get; init; }
    public bool RpoMet { get; init; }
    public HubRestoreTestStep[] Steps { get; init; } = [];
    public string[] LogMatches { get; init; } = [];
    public string[] UndecryptableBackups { get; init; } = [];
    public string[] BackupsOnRetiredKeys { get; init; } = [];
    public string? BaseUrl { get; init; }
    public string? StagingPath { get; init; }
    public string? ReportLocation { get; init; }
    public DateTime Started { get; init; }
    public string? Error { get; init; }

    public override string ToString() => $"{Hub}/{BackupId}: {(Passed ? "PASSED" : "FAILED")}";
}

/// <summary>One check of a restore test.</summary>
public sealed class HubRestoreTestStep
{
    /// <summary>restore, database, service, http, pester, logs, keys, rto, rpo.</summary>
    public string Kind { get; init; } = "";
    public string Name { get; init; } = "";
    public bool Passed { get; init; }
    public bool Skipped { get; init; }
    public TimeSpan Duration { get; init; }
    public string Message { get; init; } = "";

    public override string ToString() => $"[{Kind}] {Name}: {(Skipped ? "skipped" : Passed ? "passed" : "FAILED")}";
}
