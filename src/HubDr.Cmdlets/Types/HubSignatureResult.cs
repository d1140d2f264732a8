namespace HubDr.Cmdlets;

/// <summary>Result of Test-HubBackupSignature. Pipes into Restore-HubBackup (which refuses anything not Valid).</summary>
public sealed class HubSignatureResult
{
    public string BackupId { get; init; } = "";
    public string Hub { get; init; } = "";
    public bool IsValid { get; init; }

    /// <summary>Valid, Tampered, Truncated, UntrustedSigner, MissingSignature, MalformedSignature, CatalogMismatch, CatalogMissing, ArchiveMissing.</summary>
    public string Status { get; init; } = "";

    public string Reason { get; init; } = "";
    public string? SignerFingerprint { get; init; }
    public string? SignerKeyId { get; init; }
    public DateTimeOffset? SignedAt { get; init; }
    public long BytesVerified { get; init; }
    public string? ArchiveSha256 { get; init; }
    public double DurationSeconds { get; init; }
    public string Store { get; init; } = "";

    /// <summary>Findings that leave the signature valid, e.g. "Signed after the key was retired: …" (needs -KeyMetadataPath).</summary>
    public HubList<string> Warnings { get; init; } = HubList<string>.Empty;

    /// <summary>The backup that was checked.</summary>
    public HubBackup? Backup { get; init; }

    public override string ToString() => $"{Hub}/{BackupId}: {Status}";
}
