using System.Management.Automation;
using HubDr.Cmdlets.Infrastructure;
using HubDr.Engine;
using HubDr.Engine.Backup;
using HubDr.Engine.Stores;

namespace HubDr.Cmdlets;

/// <summary>
/// Test-HubBackupSignature: checks the catalog record and the archive's detached signature against the signer keys you
/// trust, and that the archive is byte for byte the one the catalog describes. Needs no decryption key.
/// A valid signature by a key you did not name is a failure (UntrustedSigner).
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "HubBackupSignature", DefaultParameterSetName = "Backup")]
[OutputType(typeof(HubSignatureResult), typeof(bool))]
public sealed class TestHubBackupSignatureCommand : HubStoreCmdletBase
{
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = "Backup")]
    public HubBackup InputObject { get; set; } = null!;

    /// <summary>The store (or the Store setting). With a piped HubBackup the backup's own store is used.</summary>
    // By property name ONLY in the "Id" set: PowerShell first tries to bind a piped object within the default set, and a
    // Store/Hub bound there would keep an object with a BackupId (an Import-Csv row) out of the "Id" set.
    [Parameter(Position = 0, ParameterSetName = "Id", ValueFromPipelineByPropertyName = true)]
    [Parameter(Position = 0, ParameterSetName = "Backup")]
    [HubSetting("Store")]
    public string? Store { get; set; }

    [Parameter(ParameterSetName = "Id", ValueFromPipelineByPropertyName = true)]
    [HubSetting("Hub")]
    [ArgumentCompleter(typeof(HubNameCompleter))]
    public string? Hub { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = "Id", ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(BackupIdCompleter))]
    public string BackupId { get; set; } = "";

    /// <summary>A backup folder in a local store (…/hub/backupId) or its archive file.</summary>
    [Parameter(Mandatory = true, ParameterSetName = "Path")]
    [Alias("FullName")]
    public string Path { get; set; } = "";

    /// <summary>Public key files (or a folder) of the signers you trust. Required (or Keys.TrustedSigners in the settings).</summary>
    [Parameter]
    [HubSetting("Keys.TrustedSigners")]
    public string[]? TrustedSignerKeyPath { get; set; }

    /// <summary>keys.json (or Keys.Metadata in the settings): reports a backup signed after its key was retired.</summary>
    [Parameter]
    [HubSetting("Keys.Metadata")]
    public string? KeyMetadataPath { get; set; }

    /// <summary>Return only $true/$false.</summary>
    [Parameter]
    public SwitchParameter Quiet { get; set; }

    protected override void ProcessRecord()
    {
        Guarded(() =>
        {
            var trusted = KeyFiles.LoadPublic(ResolvePaths(TrustedSignerKeyPath), "trusted signer key");
            Engine.Crypto.KeyMetadata? history = null;
            if (KeyMetadataPath is not null)
            {
                var metadataPath = ResolvePath(KeyMetadataPath);
                history = File.Exists(metadataPath) ? Engine.Crypto.KeyMetadata.Load(metadataPath)
                    : throw new HubDrException("KeyMetadataNotFound", HubErrorCategory.ObjectNotFound, $"Key metadata file '{metadataPath}' does not exist.") { Target = metadataPath };
            }

            StoreSpec spec;
            string hub;
            string id;
            HubBackup? backup = null;
            switch (ParameterSetName)
            {
                case "Backup":
                    spec = InputObject.StoreSpec as StoreSpec ?? BuildStoreSpec(InputObject.Store);
                    hub = InputObject.Hub;
                    id = InputObject.BackupId;
                    backup = InputObject;
                    break;
                case "Path":
                    (spec, hub, id) = FromPath(ResolvePath(Path));
                    break;
                default:
                    spec = BuildStoreSpec(Store);
                    hub = RequireHub(Hub);
                    id = BackupId;
                    break;
            }

            var (result, location) = RunEngine(async (log, ct) =>
            {
                await using var store = StoreFactory.Create(spec);
                await store.EnsureAvailableAsync(ct).ConfigureAwait(false);
                await RequireBackupAsync(store, hub, id, ct).ConfigureAwait(false);
                return (await VerifyService.VerifyAsync(store, ObjectLayout.ValidateHub(hub), id, trusted, log, ct, history).ConfigureAwait(false), store.Location);
            });

            if (Quiet.IsPresent)
            {
                WriteObject(result.IsValid);
                return;
            }

            WriteObject(Mapper.ToSignatureResult(result, backup, location));
        });
    }

    private static (StoreSpec Spec, string Hub, string Id) FromPath(string path)
    {
        var folder = File.Exists(path) ? System.IO.Path.GetDirectoryName(path)! : path.TrimEnd('/', '\\');
        if (!Directory.Exists(folder))
        {
            throw new HubDrException("BackupPathNotFound", HubErrorCategory.ObjectNotFound, $"'{path}' is not a backup folder or archive.") { Target = path };
        }

        var id = System.IO.Path.GetFileName(folder);
        var hubDir = System.IO.Path.GetDirectoryName(folder)!;
        var root = System.IO.Path.GetDirectoryName(hubDir)!;
        return (new StoreSpec { Uri = root }, System.IO.Path.GetFileName(hubDir), id);
    }
}
