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
    public string? Store { get; set; }

    [Parameter]
    public string? Hub { get; set; }

    [Parameter]
    [ValidateSet("sqlite", "postgres", "postgresql", "mysql", "mariadb")]
    public string? DatabaseEngine { get; set; }

    /// <summary>SQLite: the database file (or "Data Source=…"). PostgreSQL/MySQL: an ADO.NET connection string without a password.</summary>
    [Parameter]
    [Alias("Database")]
    public string? ConnectionString { get; set; }

    [Parameter]
    [Credential]
    public PSCredential? DatabaseCredential { get; set; }

    /// <summary>Folder holding pg_dump / mariadb-dump when not on PATH.</summary>
    [Parameter]
    public string? ToolPath { get; set; }

    /// <summary>PostgreSQL: custom (default, parallel pg_restore) or plain.</summary>
    [Parameter]
    [ValidateSet("custom", "plain", "sql")]
    public string? DumpFormat { get; set; }

    /// <summary>Public key files (or a key folder) of every recipient: the ops key plus, e.g., an escrow key.</summary>
    [Parameter]
    public string[]? RecipientKeyPath { get; set; }

    /// <summary>Secret key file (or key folder) with the signing key.</summary>
    [Parameter]
    public string[]? SigningKeyPath { get; set; }

    /// <summary>Fingerprint of the signing key when the files hold several.</summary>
    [Parameter]
    public string? Signer { get; set; }

    /// <summary>Passphrase of the signing key. Unattended: the environment variable named by Keys.PassphraseEnvironmentVariable (default HUBDR_KEY_PASSPHRASE).</summary>
    [Parameter]
    public SecureString? Passphrase { get; set; }

    [Parameter]
    public string? KeyMetadataPath { get; set; }

    [Parameter]
    public string[]? ManifestPath { get; set; }

    /// <summary>E.g. 'hub-cli export-manifests --output {path}'.</summary>
    [Parameter]
    public string? ManifestCommand { get; set; }

    [Parameter]
    public string[]? ConfigPath { get; set; }

    /// <summary>E.g. 'hub-cli export-config --output {path}'.</summary>
    [Parameter]
    public string? ConfigCommand { get; set; }

    /// <summary>Environment variables with these name prefixes are captured (redacted) into config/env.json.</summary>
    [Parameter]
    public string[]? EnvironmentPrefix { get; set; }

    /// <summary>Extra names (wildcards allowed) whose values are always redacted.</summary>
    [Parameter]
    public string[]? SecretName { get; set; }

    /// <summary>Names never redacted by name (e.g. a KEY that is not secret, HUB_SORT_KEY); values that look like secrets still are.</summary>
    [Parameter]
    public string[]? NotSecretName { get; set; }

    [Parameter]
    [ValidateSet("gzip", "zstd", "none")]
    public string? Compression { get; set; }

    [Parameter]
    [ValidateRange(1, 19)]
    public int? CompressionLevel { get; set; }

    /// <summary>Object lock / immutability: the store refuses to delete the backup before this date.</summary>
    [Parameter]
    public DateTime? RetainUntil { get; set; }

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
            var hub = HubFromSettings(Hub) ?? throw new Engine.HubDrException("HubNameMissing", Engine.HubErrorCategory.InvalidArgument, "No hub name: pass -Hub or set Hub in the settings file.");
            var storeSpec = BuildStoreSpec(Store);
            var db = DatabaseParameters.Build(Settings, "Database", DatabaseEngine, ConnectionString, DatabaseCredential, ToolPath, DumpFormat, null, ResolvePath);
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
                        ManifestPaths = PathsOrSetting(ManifestPath, "Sources.ManifestPaths"),
                        ManifestCommand = ManifestCommand ?? Settings.GetString("Sources.ManifestCommand"),
                        ConfigPaths = PathsOrSetting(ConfigPath, "Sources.ConfigPaths"),
                        ConfigCommand = ConfigCommand ?? Settings.GetString("Sources.ConfigCommand"),
                        EnvironmentPrefixes = EnvironmentPrefix ?? Settings.GetStrings("Sources.EnvironmentPrefixes"),
                        SecretNames = SecretName ?? Settings.GetStrings("Sources.SecretNames"),
                        NotSecretNames = NotSecretName ?? Settings.GetStrings("Sources.NotSecretNames"),
                    },
                    RecipientKeys = PathsOrSetting(RecipientKeyPath, "Keys.Recipients"),
                    SigningKeys = PathsOrSetting(SigningKeyPath, "Keys.SigningKey"),
                    Signer = Signer ?? Settings.GetString("Keys.Signer"),
                    SigningPassphrase = pass,
                    KeyMetadataPath = KeyMetadataPath is not null ? ResolvePath(KeyMetadataPath) : Settings.GetPath("Keys.Metadata"),
                    Compression = Compression ?? Settings.GetString("Compression") ?? Engine.Compression.Compressors.Default,
                    CompressionLevel = CompressionLevel ?? Settings.GetInt("CompressionLevel"),
                    WriteOptions = new StoreWriteOptions
                    {
                        RetainUntil = RetainUntil.HasValue ? new DateTimeOffset(RetainUntil.Value.ToUniversalTime()) : null,
                        LegalHold = LegalHold.IsPresent,
                        LockMode = Settings.GetString("StoreOptions.LockMode"),
                    },
                    Labels = Label ?? [],
                    AllowRetiredSigningKey = AllowRetiredSigningKey.IsPresent,
                };
                var clock = System.Diagnostics.Stopwatch.StartNew();
                BackupOutcome outcome;
                try
                {
                    outcome = RunEngine((log, ct) => BackupService.CreateAsync(request, log, ct));
                }
                catch (Exception e) when (IsFailure(e))
                {
                    Observe("backup", hub, null, false, clock.Elapsed, null, e, storeSpec);
                    throw;
                }

                Observe("backup", hub, outcome.Catalog.BackupId, true, clock.Elapsed, outcome.Catalog.ArchiveSize, null, storeSpec,
                    new Dictionary<string, string> { ["engine"] = outcome.Catalog.Engine, ["rows"] = outcome.Catalog.RowCount.ToString(System.Globalization.CultureInfo.InvariantCulture) });
                if (outcome.RedactedNames.Count > 0)
                {
                    WriteVerbose($"Redacted {outcome.RedactedNames.Count} secret-looking value(s): {string.Join(", ", outcome.RedactedNames)}.");
                }

                WriteObject(Mapper.ToHubBackup(outcome, storeSpec));
            }
            finally
            {
                Secrets.Clear(pass);
            }
        });
    }
}
