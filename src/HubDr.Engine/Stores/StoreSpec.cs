using System.Security;

namespace HubDr.Engine.Stores;

/// <summary>
/// Where and how to reach a store. Secrets are SecureString only; they are never logged and never
/// written to any object. Anything left null falls back to the backend's standard credential chain
/// (AWS env/profile/instance role; Azure connection string env var, SAS, managed identity, DefaultAzureCredential).
/// </summary>
public sealed class StoreSpec
{
    /// <summary>"C:\backups", "/var/backups/hub", "file:///…", "s3://bucket/prefix", "az://account/container/prefix" or an Azure container URL.</summary>
    public required string Uri { get; init; }

    // S3-compatible
    public string? Endpoint { get; init; }
    public string? Region { get; init; }
    public bool? ForcePathStyle { get; init; }
    public string? AccessKeyId { get; init; }
    public SecureString? SecretAccessKey { get; init; }
    public string? ServerSideEncryption { get; init; }   // "AES256" | "aws:kms"
    public string? KmsKeyId { get; init; }

    // Azure Blob
    public SecureString? ConnectionString { get; init; }
    public SecureString? SasToken { get; init; }
    public SecureString? AccountKey { get; init; }
    public bool UseManagedIdentity { get; init; }
    public string? ManagedIdentityClientId { get; init; }
    public string? EncryptionScope { get; init; }

    /// <summary>Retries of transient failures (503, SlowDown, dropped connections), with exponential backoff.</summary>
    public int MaxRetries { get; init; } = 5;
}
