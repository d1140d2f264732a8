using HubDr.Engine.Databases;
using HubDr.Engine.Sources;
using HubDr.Engine.Stores;

namespace HubDr.Engine.Backup;

public sealed class BackupRequest
{
    public required string Hub { get; init; }
    public required StoreSpec Store { get; init; }
    public required DatabaseSpec Database { get; init; }
    public SourceSpec Sources { get; init; } = new();

    /// <summary>Public key files (armored or binary) of every recipient: e.g. the ops key and an escrow key.</summary>
    public required IReadOnlyList<string> RecipientKeys { get; init; }

    /// <summary>Secret key file(s) holding the signing key.</summary>
    public required IReadOnlyList<string> SigningKeys { get; init; }

    /// <summary>Which key signs, when the files hold several. Null: the only key there.</summary>
    public string? Signer { get; init; }

    public required char[] SigningPassphrase { get; init; }

    /// <summary>Key rotation history file (keys.json); it travels in the archive. Null: none.</summary>
    public string? KeyMetadataPath { get; init; }

    /// <summary>Sign even when keys.json (<see cref="KeyMetadataPath"/>) records the signing key as retired (a warning is logged).</summary>
    public bool AllowRetiredSigningKey { get; init; }

    public string Compression { get; init; } = HubDr.Engine.Compression.Compressors.Default;

    public int? CompressionLevel { get; init; }

    /// <summary>Size of each dump part inside the tar (the only in-memory buffer of the dump); a memory cap may lower it.</summary>
    public int PartSize { get; init; } = 16 * 1024 * 1024;

    /// <summary>Memory cap of the pipeline in MiB: null = automatic (a cap in Azure Automation, none elsewhere), 0 = none (see <see cref="IO.PipelineLimits"/>).</summary>
    public int? MaxMemoryMB { get; init; }

    /// <summary>Object lock / immutability for the archive and its signatures.</summary>
    public StoreWriteOptions WriteOptions { get; init; } = StoreWriteOptions.Default;

    public IReadOnlyList<string> Labels { get; init; } = [];

    /// <summary>How often the running backup renews its lease (see <see cref="BackupLease"/>).</summary>
    public TimeSpan LeaseRenewInterval { get; init; } = BackupLease.DefaultRenewInterval;

    /// <summary>How long the lease stays live without a renewal.</summary>
    public TimeSpan LeaseTtl { get; init; } = BackupLease.DefaultTtl;

    /// <summary>After a successful backup, the hub's uploads that never completed and are older than this are removed.</summary>
    public TimeSpan StalePendingAge { get; init; } = TimeSpan.FromDays(1);
}

public sealed class BackupOutcome
{
    public required CatalogRecord Catalog { get; init; }
    public required BackupManifest Manifest { get; init; }
    public required string StoreLocation { get; init; }
    public required TimeSpan Duration { get; init; }
    public IReadOnlyList<string> RedactedNames { get; init; } = [];

    /// <summary>The memory limits the backup ran with.</summary>
    public IO.PipelineLimits Limits { get; init; } = IO.PipelineLimits.Defaults(Environment.ProcessorCount);
}
