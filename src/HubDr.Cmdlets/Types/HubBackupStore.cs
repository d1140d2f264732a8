namespace HubDr.Cmdlets;

/// <summary>A HubDr backup store and its marker (Initialize-HubBackupStore).</summary>
public sealed class HubBackupStore
{
    /// <summary>Where the store is, without secrets.</summary>
    public string Store { get; init; } = "";

    /// <summary>"Initialized" (marker written now), "Migrated" (marker added to a store written before markers existed)
    /// or "AlreadyInitialized".</summary>
    public string Status { get; init; } = "";

    public string StoreId { get; init; } = "";

    /// <summary>When the marker was written (UTC).</summary>
    public DateTime Created { get; init; }

    /// <summary>What wrote the marker: Initialize-HubBackupStore, New-HubBackup or Remove-ExpiredHubBackup.</summary>
    public string CreatedBy { get; init; } = "";

    public string ToolVersion { get; init; } = "";

    public override string ToString() => $"{Store} ({Status})";
}
