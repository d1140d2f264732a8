using System.Management.Automation;
using System.Security;
using HubDr.Cmdlets.Infrastructure;
using HubDr.Engine.Backup;
using HubDr.Engine.Sources;
using HubDr.Engine.Stores;

namespace HubDr.Cmdlets;

/// <summary>
/// New-HubBackup: dumps the hub database and collects manifests, configuration and key metadata into one tar,
/// compressed, OpenPGP-encrypted to every recipient key and signed, streamed into the store; the signed catalog
/// record is written last. Outputs a HubBackup.
/// </summary>
[Cmdlet(VerbsCommon.New, "HubBackup", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(HubBackup))]
public sealed class NewHubBackupCommand : HubStoreCmdletBase
{
    [Parameter(Position = 0)]
    [HubSetting("Store")]
    public string? Store { get; set; }

    [Parameter]
    [HubSetting("Hub")]
    public string? Hub { get; set; }

    [Parameter]
    [ValidateSet("sqlite", "postgres", "postgresql", "mysql", "mariadb")]
    [HubSetting("Database.Engine")]
    public string? DatabaseEngine { get; set; }

    /// <summary>SQLite: the database file (or "Data Source=…"). PostgreSQL/MySQL: an ADO.NET connection string without a password.</summary>
    [Parameter]
    [Alias("Database")]
    [HubSetting("Database.ConnectionString")]
    public string? ConnectionString { get; set; }

    [Parameter]
    [Credential]
    public PSCredential? DatabaseCredential { get; set; }

    /// <summary>Folder holding pg_dump / mariadb-dump when not on PATH.</summary>
    [Parameter]
    [HubSetting("Database.ToolPath")]
    public string? ToolPath { get; set; }

    /// <summary>PostgreSQL: custom (default, parallel pg_restore) or plain.</summary>
    [Parameter]
    [ValidateSet("custom", "plain", "sql")]
    [HubSetting("Database.DumpFormat")]
    public string? DumpFormat { get; set; }

    /// <summary>Public key files (or a key folder) of every recipient: the ops key plus, e.g., an escrow key.</summary>
    [Parameter]
    [HubSetting("Keys.Recipients")]
    public string[]? RecipientKeyPath { get; set; }

    /// <summary>Secret key file (or key folder) with the signing key.</summary>
    [Parameter]
    [HubSetting("Keys.SigningKey")]
    public string[]? SigningKeyPath { get; set; }

    /// <summary>Fingerprint of the signing key when the files hold several.</summary>
    [Parameter]
    [HubSetting("Keys.Signer")]
    public string? Signer { get; set; }

    /// <summary>Passphrase of the signing key. Unattended: the environment variable named by Keys.PassphraseEnvironmentVariable (default HUBDR_KEY_PASSPHRASE).</summary>
    [Parameter]
    public SecureString? Passphrase { get; set; }

    [Parameter]
    [HubSetting("Keys.Metadata")]
    public string? KeyMetadataPath { get; set; }

    [Parameter]
    [HubSetting("Sources.ManifestPaths")]
    public string[]? ManifestPath { get; set; }

    /// <summary>E.g. 'hub-cli export-manifests --output {path}'.</summary>
    [Parameter]
    [HubSetting("Sources.ManifestCommand")]
    public string? ManifestCommand { get; set; }

    [Parameter]
    [HubSetting("Sources.ConfigPaths")]
    public string[]? ConfigPath { get; set; }

    /// <summary>E.g. 'hub-cli export-config --output {path}'.</summary>
    [Parameter]
    [HubSetting("Sources.ConfigCommand")]
    public string? ConfigCommand { get; set; }

    /// <summary>Environment variables with these name prefixes are captured (redacted) into config/env.json.</summary>
    [Parameter]
    [HubSetting("Sources.EnvironmentPrefixes")]
    public string[]? EnvironmentPrefix { get; set; }

    /// <summary>Extra names (wildcards allowed) whose values are always redacted.</summary>
    [Parameter]
    [HubSetting("Sources.SecretNames")]
    public string[]? SecretName { get; set; }

    /// <summary>Names never redacted by name (e.g. a KEY that is not secret, HUB_SORT_KEY); values that look like secrets still are.</summary>
    [Parameter]
    [HubSetting("Sources.NotSecretNames")]
    public string[]? NotSecretName { get; set; }

    [Parameter]
    [ValidateSet("gzip", "zstd", "none")]
    [HubSetting("Compression")]
    public string? Compression { get; set; }

    [Parameter]
    [ValidateRange(1, 19)]
    [HubSetting("CompressionLevel")]
    public int? CompressionLevel { get; set; }

    /// <summary>
    /// Memory cap in MB of the backup pipeline beyond PowerShell itself (zstd workers, the dump's part buffer, hand-off and
    /// upload buffers). Default: none on ordinary machines, 64 in Azure Automation; 0: no cap. -Verbose shows the choice.
    /// </summary>
    [Parameter]
    [ValidateRange(0, 1048576)]
    [HubSetting("Performance.MaxMemoryMB")]
    public int? MaxMemoryMB { get; set; }

    /// <summary>Object lock / immutability: the store refuses to delete the backup before this date.</summary>
    [Parameter]
    public DateTimeOffset? RetainUntil { get; set; }

    [Parameter]
    public SwitchParameter LegalHold { get; set; }

    [Parameter]
    public string[]? Label { get; set; }

    /// <summary>Sign even though keys.json records the signing key as retired (otherwise SigningKeyRetired).</summary>
    [Parameter]
    public SwitchParameter AllowRetiredSigningKey { get; set; }

    protected override void ProcessRecord()
    {
        Guarded(() =>
        {
            var hub = RequireHub(Hub);
            var storeSpec = BuildStoreSpec(Store);
            var db = DatabaseParameters.Build("Database", DatabaseEngine, ConnectionString, DatabaseCredential, ToolPath is null ? null : ResolvePath(ToolPath), DumpFormat,
                FromSettings(nameof(ConnectionString)) ? Settings.ResolvePath : ResolvePath);
            if (!ShouldProcess($"hub '{hub}' ({db.Engine} {DatabaseParameters.Display(db)}) → {storeSpec.Uri}", "Create an encrypted, signed backup"))
            {
                return;
            }

            var pass = ResolvePassphrase(Passphrase, "signing key");
            try
            {
                var request = new BackupRequest
                {
                    Hub = hub,
                    Store = storeSpec,
                    Database = db,
                    Sources = new SourceSpec
                    {
                        ManifestPaths = ResolvePaths(ManifestPath),
                        ManifestCommand = ManifestCommand,
                        ConfigPaths = ResolvePaths(ConfigPath),
                        ConfigCommand = ConfigCommand,
                        EnvironmentPrefixes = EnvironmentPrefix ?? [],
                        SecretNames = SecretName ?? [],
                        NotSecretNames = NotSecretName ?? [],
                    },
                    RecipientKeys = ResolvePaths(RecipientKeyPath),
                    SigningKeys = ResolvePaths(SigningKeyPath),
                    Signer = Signer,
                    SigningPassphrase = pass,
                    KeyMetadataPath = KeyMetadataPath is not null ? ResolvePath(KeyMetadataPath) : null,
                    Compression = Compression ?? Engine.Compression.Compressors.Default,
                    CompressionLevel = CompressionLevel,
                    MaxMemoryMB = MaxMemoryMB,
                    WriteOptions = new StoreWriteOptions
                    {
                        RetainUntil = RetainUntil?.ToUniversalTime(),
                        LegalHold = LegalHold.IsPresent,
                        LockMode = Settings.StoreOptions.LockMode,
                    },
                    Labels = Label ?? [],
                    AllowRetiredSigningKey = AllowRetiredSigningKey.IsPresent,
                };
                var clock = System.Diagnostics.Stopwatch.StartNew();
                BackupOutcome outcome;
                BackupListing? listing;
                try
                {
                    (outcome, listing) = RunEngine(async (log, ct) =>
                    {
                        var o = await BackupService.CreateAsync(request, log, ct).ConfigureAwait(false);
                        return (o, await ListNewAsync(storeSpec, o, log, ct).ConfigureAwait(false));
                    });
                }
                catch (Exception e) when (IsFailure(e))
                {
                    Observe("backup", hub, Engine.HubDrException.BackupIdOf(e), false, clock.Elapsed, null, e, storeSpec);
                    throw;
                }

                Observe("backup", hub, outcome.Catalog.BackupId, true, clock.Elapsed, outcome.Catalog.ArchiveSize, null, storeSpec,
                    new Dictionary<string, string> { ["engine"] = outcome.Catalog.Engine, ["rows"] = outcome.Catalog.RowCount.ToString(System.Globalization.CultureInfo.InvariantCulture) });
                if (outcome.RedactedNames.Count > 0)
                {
                    WriteVerbose($"Redacted {outcome.RedactedNames.Count} secret-looking value(s): {string.Join(", ", outcome.RedactedNames)}.");
                }

                WriteObject(Mapper.ToHubBackup(outcome, listing, storeSpec));
            }
            finally
            {
                Secrets.Clear(pass);
            }
        });
    }

    /// <summary>The new backup as Get-HubBackup lists it (its stored size counts signatures and catalog); null if the listing fails.</summary>
    private static async Task<BackupListing?> ListNewAsync(StoreSpec spec, BackupOutcome o, Engine.IOperationLog log, CancellationToken ct)
    {
        try
        {
            await using var store = StoreFactory.Create(spec);
            return await CatalogService.GetAsync(store, o.Catalog.Hub, o.Catalog.BackupId, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is Engine.HubDrException or IOException)
        {
            log.Verbose($"The new backup could not be listed back ({e.Message}); StoredSize shows the archive size only.");
            return null;
        }
    }
}
