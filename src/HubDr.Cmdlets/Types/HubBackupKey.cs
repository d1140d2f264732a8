namespace HubDr.Cmdlets;

/// <summary>A key pair made by New-HubBackupKey (public and passphrase-protected secret key files).</summary>
public sealed class HubBackupKey
{
    public string Fingerprint { get; init; } = "";
    public string KeyId { get; init; } = "";
    public string? SigningKeyId { get; init; }
    public string? EncryptionKeyId { get; init; }
    public string UserId { get; init; } = "";
    public string Algorithm { get; init; } = "";

    /// <summary>Creation time, with its offset (shown in local time).</summary>
    public DateTimeOffset Created { get; init; }

    public string PublicKeyPath { get; init; } = "";
    public string SecretKeyPath { get; init; } = "";
    public string? KeyMetadataPath { get; init; }

    /// <summary>Fingerprint of the key this one replaces (rotation), if any.</summary>
    public string? Supersedes { get; init; }

    public override string ToString() => Fingerprint;
}
