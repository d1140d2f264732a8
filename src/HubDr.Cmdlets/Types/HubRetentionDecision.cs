namespace HubDr.Cmdlets;

/// <summary>One backup's fate in a Remove-ExpiredHubBackup run, with the reasons.</summary>
public sealed class HubRetentionDecision
{
    public string Hub { get; init; } = "";
    public string BackupId { get; init; } = "";

    /// <summary>Creation time, with its offset (shown in local time).</summary>
    public DateTimeOffset Created { get; init; }

    /// <summary>Keep, Remove (planned: -WhatIf or declined), Removed, Locked, Failed.</summary>
    public string Action { get; init; } = "";

    /// <summary>Why: "daily 2026-11-20", "weekly 2026-W47", "monthly 2026-11", "newest valid backup", "object lock until …", …</summary>
    public HubList<string> Reasons { get; init; } = HubList<string>.Empty;

    /// <summary>Complete or Incomplete.</summary>
    public string Status { get; init; } = "";

    /// <summary>Bytes the backup occupies in the store (what removing it frees).</summary>
    public long StoredSize { get; init; }

    public DateTimeOffset? LockedUntil { get; init; }
    public string? Error { get; init; }
    public string Store { get; init; } = "";

    public override string ToString() => $"{Hub}/{BackupId}: {Action}";
}
