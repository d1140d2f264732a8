using System.Management.Automation;
using System.Security;
using HubDr.Cmdlets.Infrastructure;
using HubDr.Engine;
using HubDr.Engine.Backup;
using HubDr.Engine.Databases;
using HubDr.Engine.Stores;

namespace HubDr.Cmdlets;

/// <summary>
/// Restore-HubBackup: verifies the backup's signature with your trusted signer keys BEFORE anything is restored,
/// decrypts with whichever of your current or retired secret keys the backup was encrypted to, restores the database
/// (refusing a non-empty target unless -Force) and the config/manifests/keys into a folder, then compares row counts
/// with the manifest and runs integrity checks.
/// </summary>
[Cmdlet(VerbsData.Restore, "HubBackup", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, DefaultParameterSetName = "InputObject")]
[OutputType(typeof(HubRestoreResult))]
public sealed class RestoreHubBackupCommand : HubStoreCmdletBase
{
    /// <summary>A HubBackup (Get-HubBackup), a HubSignatureResult (Test-HubBackupSignature), or any object with Hub and BackupId (and Store) properties, e.g. an Import-Csv row.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = "InputObject")]
    public PSObject InputObject { get; set; } = null!;

    /// <summary>The store (or the Store setting). With a piped HubBackup the backup's own store is used.</summary>
    [Parameter(Position = 0, ParameterSetName = "Id", ValueFromPipelineByPropertyName = true)]
    [Parameter(Position = 0, ParameterSetName = "InputObject")]
    [HubSetting("Store")]
    public string? Store { get; set; }

    [Parameter(ParameterSetName = "Id", ValueFromPipelineByPropertyName = true)]
    [HubSetting("Hub")]
    [ArgumentCompleter(typeof(HubNameCompleter))]
    public string? Hub { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = "Id", ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(BackupIdCompleter))]
    public string BackupId { get; set; } = "";

    /// <summary>Target database: SQLite file path, or a PostgreSQL/MySQL connection string (no password). Omit to restore files only.</summary>
    [Parameter]
    [Alias("TargetConnectionString")]
    [HubSetting("RestoreTarget.ConnectionString")]
    public string? Target { get; set; }

    /// <summary>Engine of the target; defaults to the backup's engine.</summary>
    [Parameter]
    [ValidateSet("sqlite", "postgres", "postgresql", "mysql", "mariadb")]
    [HubSetting("RestoreTarget.Engine")]
    public string? TargetEngine { get; set; }

    [Parameter]
    [Credential]
    public PSCredential? TargetCredential { get; set; }

    /// <summary>Folder that receives config/, manifests/ and keys/ (must be empty unless -Force, which replaces its contents).</summary>
    [Parameter]
    [HubSetting("RestoreTarget.FilesPath")]
    public string? FilesPath { get; set; }

    /// <summary>Secret key files (or a key folder) — current and retired keys; the right one is found by key id.</summary>
    [Parameter]
    [HubSetting("Keys.SecretKeys")]
    public string[]? SecretKeyPath { get; set; }

    [Parameter]
    public SecureString? Passphrase { get; set; }

    [Parameter]
    [HubSetting("Keys.TrustedSigners")]
    public string[]? TrustedSignerKeyPath { get; set; }

    /// <summary>E.g. 'hub-cli import-config --input {path}', run after the files are restored.</summary>
    [Parameter]
    [HubSetting("RestoreTarget.ImportCommand")]
    public string? ImportCommand { get; set; }

    [Parameter]
    [HubSetting("RestoreTarget.ToolPath")]
    public string? ToolPath { get; set; }

    /// <summary>Keep ownership and grants (PostgreSQL); by default they are skipped so a clean environment without the source roles restores.</summary>
    [Parameter]
    public SwitchParameter KeepOwnership { get; set; }

    /// <summary>Replace the contents of a non-empty target database/folder.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>What -Force replaces, exactly as RestoreService does it (the -WhatIf/-Confirm text).</summary>
    private string ReplaceText(bool database, string? files)
    {
        if (!Force.IsPresent)
        {
            return " (the targets must be empty)";
        }

        var parts = new List<string>();
        if (database)
        {
            parts.Add("the database's current contents are dropped and replaced by the backup's");
        }

        if (files is not null)
        {
            parts.Add($"folder '{files}' is REPLACED: after the restore it holds exactly the backup's files, and every other file and folder in it is deleted (only inside that folder; links are removed, not followed)");
        }

        return "; -Force: " + string.Join("; ", parts);
    }

    protected override void ProcessRecord()
    {
        Guarded(() =>
        {
            var (spec, hub, id, backup) = ResolveBackup();
            // Where child processes are not allowed (the Azure Automation sandbox): refuse before the store is read.
            Engine.Processes.ProcessStarter.EnsureAllowed(RestoreService.ProcessNeeds(
                Target is null ? null : new DatabaseSpec { Engine = TargetEngine ?? backup?.Engine ?? "", ConnectionString = Target }, ImportCommand, FilesPath));
            var listing = RunEngine(async (_, ct) =>
            {
                await using var store = StoreFactory.Create(spec);
                await store.EnsureAvailableAsync(ct).ConfigureAwait(false);
                await RequireBackupAsync(store, hub, id, ct).ConfigureAwait(false);
                return await CatalogService.GetAsync(store, hub, id, ct).ConfigureAwait(false);
            });
            var trusted = KeyFiles.LoadPublic(ResolvePaths(TrustedSignerKeyPath), "trusted signer key");
            var secrets = KeyFiles.LoadSecret(ResolvePaths(SecretKeyPath), "secret (decryption) key");

            DatabaseSpec? db = null;
            if (Target is not null)
            {
                var engine = TargetEngine ?? backup?.Engine ?? listing?.Catalog?.Engine
                    ?? throw new HubDrException("DatabaseNotSpecified", HubErrorCategory.InvalidArgument, "Pass -TargetEngine (the backup's engine is not known here).");
                db = DatabaseParameters.Build("RestoreTarget", engine, Target, TargetCredential, ToolPath is null ? null : ResolvePath(ToolPath), null,
                    FromSettings(nameof(Target)) ? Settings.ResolvePath : ResolvePath);
            }

            var files = FilesPath is not null ? ResolvePath(FilesPath) : null;
            if (db is null && files is null)
            {
                throw new HubDrException("RestoreTargetMissing", HubErrorCategory.InvalidArgument, "Nothing to restore into: pass -Target (database) and/or -FilesPath (config and manifests).");
            }

            var what = $"backup {hub}/{id}" + (backup is null ? "" : $" ({backup.Engine}, {backup.Created:u})");
            var where = string.Join(" and ", new[] { db is null ? null : $"{db.Engine} {DatabaseParameters.Display(db)}", files is null ? null : $"folder {files}" }.Where(s => s is not null));
            if (!ShouldProcess(where, $"Verify the signature of {what}, then restore it{ReplaceText(db is not null, files)}"))
            {
                return;
            }

            var pass = ResolvePassphrase(Passphrase, "secret key");
            try
            {
                var request = new RestoreRequest
                {
                    Store = spec,
                    Hub = hub,
                    BackupId = id,
                    TrustedSigners = trusted,
                    SecretKeys = secrets,
                    PassphraseFor = _ => (char[])pass.Clone(),
                    Database = db,
                    FilesTarget = files,
                    Force = Force.IsPresent,
                    ImportCommand = ImportCommand,
                    Options = new RestoreOptions { NoOwner = !KeepOwnership.IsPresent },
                };
                var clock = System.Diagnostics.Stopwatch.StartNew();
                RestoreOutcome o;
                try
                {
                    o = RunEngine((log, ct) => RestoreService.RestoreAsync(request, log, ct));
                }
                catch (Exception e) when (IsFailure(e))
                {
                    Observe("restore", hub, id, false, clock.Elapsed, null, e, spec);
                    throw;
                }

                var result = new HubRestoreResult
                {
                    BackupId = id,
                    Hub = hub,
                    Succeeded = o.RowCountsMatch && o.IntegrityProblems.Count == 0,
                    DatabaseEngine = db?.Engine,
                    DatabaseTarget = db is null ? null : DatabaseParameters.Display(db),
                    FilesPath = o.FilesTarget,
                    FilesRestored = new(o.FilesRestored),
                    SignerFingerprint = o.Verification.SignerFingerprint ?? "",
                    DecryptedWithKey = o.DecryptedWithKey,
                    RowCountsMatch = o.RowCountsMatch,
                    RowCounts = new(o.RowCounts.Select(r => new HubRowCount { Table = r.Table, Expected = r.Expected, Actual = r.Actual })),
                    IntegrityProblems = new(o.IntegrityProblems),
                    VerifySeconds = o.VerifyDuration.TotalSeconds,
                    RestoreSeconds = o.RestoreDuration.TotalSeconds,
                    CheckSeconds = o.CheckDuration.TotalSeconds,
                    DurationSeconds = o.Duration.TotalSeconds,
                    BackupCreated = Mapper.Local(o.Manifest.CreatedUtc),
                };
                if (!result.Succeeded)
                {
                    var bad = string.Join(", ", result.RowCounts.Where(r => !r.Matches).Select(r => $"{r.Table} expected {r.Expected} got {r.Actual}").Concat(result.IntegrityProblems));
                    WriteError(new ErrorRecord(new HubDrException("RestoreVerificationFailed", HubErrorCategory.InvalidData, $"The restore of {hub}/{id} completed but its checks failed: {bad}"),
                        "RestoreVerificationFailed", ErrorCategory.InvalidResult, result));
                }

                Observe("restore", hub, id, result.Succeeded, clock.Elapsed, o.Verification.BytesRead, null, spec,
                    new Dictionary<string, string> { ["rowCountsMatch"] = result.RowCountsMatch.ToString(), ["target"] = result.DatabaseTarget ?? result.FilesPath ?? "" });
                WriteObject(result);
            }
            finally
            {
                Secrets.Clear(pass);
            }
        });
    }

    private (StoreSpec Spec, string Hub, string Id, HubBackup? Backup) ResolveBackup()
    {
        if (ParameterSetName == "Id")
        {
            return (BuildStoreSpec(Store), RequireHub(Hub), BackupId, null);
        }

        switch (InputObject.BaseObject)
        {
            case HubBackup b:
                return (b.StoreSpec as StoreSpec ?? BuildStoreSpec(b.Store), b.Hub, b.BackupId, b);
            case HubSignatureResult s when !s.IsValid:
                throw new HubDrException("BackupSignatureInvalid", HubErrorCategory.SecurityError,
                    $"Backup {s.Hub}/{s.BackupId} failed verification ({s.Status}): {s.Reason} Nothing was restored.") { Target = s.BackupId };
            case HubSignatureResult s:
                return (s.Backup?.StoreSpec as StoreSpec ?? BuildStoreSpec(s.Store), s.Hub, s.BackupId, s.Backup);
            default:
                // Any object naming a backup by property (an Import-Csv row of Store, Hub, BackupId).
                string? Property(string name) => InputObject.Properties[name]?.Value?.ToString() is { Length: > 0 } v ? v : null;
                if (Property("BackupId") is { } backupId)
                {
                    return (BuildStoreSpec(Property("Store") ?? Store), RequireHub(Property("Hub") ?? Hub), backupId, null);
                }

                throw new HubDrException("InputObjectInvalid", HubErrorCategory.InvalidArgument,
                    $"Restore-HubBackup takes a HubBackup (Get-HubBackup), a HubSignatureResult (Test-HubBackupSignature) or an object with Hub and BackupId properties, not {InputObject.BaseObject?.GetType().Name ?? "null"}.");
        }
    }
}
