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
    /// <summary>A HubBackup (Get-HubBackup) or HubSignatureResult (Test-HubBackupSignature).</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = "InputObject")]
    public PSObject InputObject { get; set; } = null!;

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = "Id")]
    public string Store { get; set; } = "";

    [Parameter(ParameterSetName = "Id")]

    [ArgumentCompleter(typeof(HubNameCompleter))]
    public string? Hub { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = "Id")]

    [ArgumentCompleter(typeof(BackupIdCompleter))]
    public string BackupId { get; set; } = "";

    /// <summary>Target database: SQLite file path, or a PostgreSQL/MySQL connection string (no password). Omit to restore files only.</summary>
    [Parameter]
    [Alias("TargetConnectionString")]
    public string? Target { get; set; }

    /// <summary>Engine of the target; defaults to the backup's engine.</summary>
    [Parameter]
    [ValidateSet("sqlite", "postgres", "postgresql", "mysql", "mariadb")]
    public string? TargetEngine { get; set; }

    [Parameter]
    [Credential]
    public PSCredential? TargetCredential { get; set; }

    /// <summary>Folder that receives config/, manifests/ and keys/ (must be empty unless -Force, which replaces its contents).</summary>
    [Parameter]
    public string? FilesPath { get; set; }

    /// <summary>Secret key files (or a key folder) — current and retired keys; the right one is found by key id.</summary>
    [Parameter]
    public string[]? SecretKeyPath { get; set; }

    [Parameter]
    public SecureString? Passphrase { get; set; }

    [Parameter]
    public string[]? TrustedSignerKeyPath { get; set; }

    /// <summary>E.g. 'hub-cli import-config --input {path}', run after the files are restored.</summary>
    [Parameter]
    public string? ImportCommand { get; set; }

    [Parameter]
    public string? ToolPath { get; set; }

    [Parameter]
    [ValidateRange(1, 64)]
    public int? Jobs { get; set; }

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
            var trusted = KeyFiles.LoadPublic(PathsOrSetting(TrustedSignerKeyPath, "Keys.TrustedSigners"), "trusted signer key");
            var secretPaths = PathsOrSetting(SecretKeyPath, "Keys.SecretKeys");
            var secrets = KeyFiles.LoadSecret(secretPaths, "secret (decryption) key");

            DatabaseSpec? db = null;
            var target = Target ?? Settings.GetString("RestoreTarget.ConnectionString");
            if (target is not null)
            {
                var engine = TargetEngine ?? Settings.GetString("RestoreTarget.Engine") ?? backup?.Engine
                    ?? throw new HubDrException("DatabaseNotSpecified", HubErrorCategory.InvalidArgument, "Pass -TargetEngine (the backup's engine is not known here).");
                db = DatabaseParameters.Build(Settings, "RestoreTarget", engine, target, TargetCredential, ToolPath, null, Jobs, ResolvePath);
            }

            var files = FilesPath is not null ? ResolvePath(FilesPath) : Settings.GetPath("RestoreTarget.FilesPath");
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
                    ImportCommand = ImportCommand ?? Settings.GetString("RestoreTarget.ImportCommand"),
                    Options = new RestoreOptions { NoOwner = !KeepOwnership.IsPresent, Jobs = db?.Jobs ?? 1 },
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
                    FilesRestored = o.FilesRestored.ToArray(),
                    SignerFingerprint = o.Verification.SignerFingerprint ?? "",
                    DecryptedWithKey = o.DecryptedWithKey,
                    RowCountsMatch = o.RowCountsMatch,
                    RowCounts = o.RowCounts.Select(r => new HubRowCount { Table = r.Table, Expected = r.Expected, Actual = r.Actual }).ToArray(),
                    IntegrityProblems = o.IntegrityProblems.ToArray(),
                    VerifyDuration = o.VerifyDuration,
                    RestoreDuration = o.RestoreDuration,
                    CheckDuration = o.CheckDuration,
                    Duration = o.Duration,
                    BackupCreated = o.Manifest.CreatedUtc.UtcDateTime,
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
            var hub = HubFromSettings(Hub) ?? throw new HubDrException("HubNameMissing", HubErrorCategory.InvalidArgument, "Pass -Hub (or set Hub in the settings file).");
            return (BuildStoreSpec(Store), hub, BackupId, null);
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
                throw new HubDrException("InputObjectInvalid", HubErrorCategory.InvalidArgument,
                    $"Restore-HubBackup takes a HubBackup (Get-HubBackup) or a HubSignatureResult (Test-HubBackupSignature), not {InputObject.BaseObject?.GetType().Name ?? "null"}.");
        }
    }
}
