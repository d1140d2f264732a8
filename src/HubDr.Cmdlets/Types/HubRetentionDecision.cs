namespace HubDr.Cmdlets;

/// <summary>One backup's fate in a Remove-ExpiredHubBackup run, with the reasons.</summary>
public sealed class HubRetentionDecision
{
    public string Hub { get; init; } = "";
    public string BackupId { get; init; } = "";
    public DateTime Created { get; init; }
    public TimeSpan Age => DateTime.UtcNow - Created;

    /// <summary>Keep, Remove (planned: -WhatIf or declined), Removed, Locked, Failed.</summary>
    public string Action { get; init; } = "";

    /// <summary>Why: "daily 2026-11-20", "weekly 2026-W47", "monthly 2026-11", "newest valid backup", "object lock until …", …</summary>
    public string[] Reasons { get; init; } = [];

    /// <summary>Complete or Incomplete.</summary>
    public string Status { get; init; } = "";

    public long Size { get; init; }
    public DateTime? LockedUntil { get; init; }
    public string? Error { get; init; }
    public string Store { get; init; } = "";

    public override string ToString() => $"{Hub}/{BackupId}: {Action}";
}
