namespace HubDr.Cmdlets;

/// <summary>Result of Invoke-HubRestoreTest: the weekly proof that restores work. Durations are seconds.</summary>
public sealed class HubRestoreTestResult
{
    public string Hub { get; init; } = "";
    public string? BackupId { get; init; }
    public DateTimeOffset? BackupCreated { get; init; }
    public bool Passed { get; init; }

    /// <summary>
    /// "Passed" (the application was started and its smoke tests ran), "Passed (database only)" (-DatabaseOnly: the
    /// application was not tested) or "Failed".
    /// </summary>
    public string Verdict { get; init; } = "";

    /// <summary>True when the application (service start and smoke tests) was not part of the test.</summary>
    public bool DatabaseOnly { get; init; }

    public string? SignatureStatus { get; init; }

    /// <summary>Fetch + verify + restore + service start + smoke tests, in seconds.</summary>
    public double TimeToOperableSeconds { get; init; }

    public double RtoTargetSeconds { get; init; }
    public bool RtoMet { get; init; }

    /// <summary>Age of the backup when the test ran (data that a disaster now would lose), in seconds.</summary>
    public double BackupAgeSeconds { get; init; }

    public double RpoTargetSeconds { get; init; }
    public bool RpoMet { get; init; }
    public HubList<HubRestoreTestStep> Steps { get; init; } = HubList<HubRestoreTestStep>.Empty;
    public HubList<string> LogMatches { get; init; } = HubList<string>.Empty;
    public HubList<string> UndecryptableBackups { get; init; } = HubList<string>.Empty;
    public HubList<string> BackupsOnRetiredKeys { get; init; } = HubList<string>.Empty;
    public string? BaseUrl { get; init; }
    public string? StagingPath { get; init; }
    public string? ReportLocation { get; init; }
    public DateTimeOffset Started { get; init; }
    public string? Error { get; init; }

    public override string ToString() => $"{Hub}/{BackupId}: {Verdict}";
}

/// <summary>One check of a restore test.</summary>
public sealed class HubRestoreTestStep
{
    /// <summary>restore, database, service, http, pester, logs, keys, rto, rpo.</summary>
    public string Kind { get; init; } = "";
    public string Name { get; init; } = "";

    /// <summary>The check ran and passed (false for a skipped step).</summary>
    public bool Passed { get; init; }

    /// <summary>The check did not run (Message says why).</summary>
    public bool Skipped { get; init; }

    /// <summary>"passed", "FAILED" or "skipped".</summary>
    public string Result => Skipped ? "skipped" : Passed ? "passed" : "FAILED";

    public double DurationSeconds { get; init; }
    public string Message { get; init; } = "";

    public override string ToString() => $"[{Kind}] {Name}: {Result}";
}
