using System.Management.Automation;
using System.Security;
using HubDr.Cmdlets.Infrastructure;
using HubDr.Engine;
using HubDr.Engine.Crypto;

namespace HubDr.Cmdlets;

/// <summary>
/// New-HubBackupKey: generates a gpg-compatible OpenPGP key pair (RSA 3072/4096 or ECDSA/ECDH P-256/P-384) whose
/// secret key is protected by a passphrase, writes &lt;fingerprint&gt;.pub.asc and &lt;fingerprint&gt;.sec.asc (0600),
/// and records it — and, with -Supersedes, the rotation — in the key metadata file (keys.json).
/// </summary>
[Cmdlet(VerbsCommon.New, "HubBackupKey", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(HubBackupKey))]
public sealed class NewHubBackupKeyCommand : HubCmdletBase
{
    /// <summary>OpenPGP user id, e.g. "Hub Backups (ops) &lt;ops@example.com&gt;".</summary>
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    [Alias("Name")]
    public string UserId { get; set; } = "";

    [Parameter]
    [ValidateSet("Rsa3072", "Rsa4096", "EcdsaP256", "EcdsaP384")]
    public string Algorithm { get; set; } = "Rsa3072";

    [Parameter(Mandatory = true)]
    public SecureString Passphrase { get; set; } = null!;

    /// <summary>Folder for the key files (created when missing). Default: the current folder.</summary>
    [Parameter]
    public string OutputPath { get; set; } = ".";

    /// <summary>Key rotation history file. Default: keys.json in OutputPath.</summary>
    [Parameter]
    public string? KeyMetadataPath { get; set; }

    /// <summary>Fingerprint of the key this one replaces: the old key is marked retired and linked to this successor.</summary>
    [Parameter]
    public string? Supersedes { get; set; }

    protected override void ProcessRecord()
    {
        if (Passphrase.Length == 0)
        {
            ThrowHubError(new HubDrException("PassphraseEmpty", HubErrorCategory.InvalidArgument, "The secret key must be protected by a non-empty passphrase."));
        }

        var folder = ResolvePath(OutputPath);
        var metadataPath = KeyMetadataPath is null ? Path.Combine(folder, "keys.json") : ResolvePath(KeyMetadataPath);
        if (!ShouldProcess(folder, $"Generate a {Algorithm} key pair for '{UserId}'" + (Supersedes is null ? "" : $" replacing {Supersedes}")))
        {
            return;
        }

        var pass = Secrets.ToChars(Passphrase);
        try
        {
            var metadata = KeyMetadata.Load(metadataPath);
            if (Supersedes is not null && !metadata.Keys.Any(k => string.Equals(k.Fingerprint, Normalize(Supersedes), StringComparison.OrdinalIgnoreCase)))
            {
                ThrowHubError(new HubDrException("KeyNotInMetadata", HubErrorCategory.ObjectNotFound,
                    $"Key {Supersedes} is not recorded in {metadataPath}; cannot record a rotation from it.") { Target = Supersedes });
            }

            WriteVerbose($"Generating a {Algorithm} key pair (RSA 4096 can take several seconds).");
            var pair = KeyGenerator.Generate(UserId, Enum.Parse<KeyAlgorithm>(Algorithm, ignoreCase: true), pass);
            Directory.CreateDirectory(folder);
            var pub = Path.Combine(folder, pair.Key.Fingerprint + ".pub.asc");
            var sec = Path.Combine(folder, pair.Key.Fingerprint + ".sec.asc");
            File.WriteAllText(pub, pair.ArmoredPublicKey);
            WriteSecretFile(sec, pair.ArmoredSecretKey);
            if (Supersedes is not null)
            {
                metadata.RecordRotation(Normalize(Supersedes), pair.Key, DateTimeOffset.UtcNow);
            }
            else
            {
                metadata.Add(pair.Key);
            }

            metadata.Save(metadataPath);
            WriteVerbose($"Wrote {pub}, {sec} and updated {metadataPath}.");
            WriteObject(new HubBackupKey
            {
                Fingerprint = pair.Key.Fingerprint,
                KeyId = pair.Key.KeyId,
                SigningKeyId = pair.Key.SigningKeyId,
                EncryptionKeyId = pair.Key.EncryptionKeyId,
                UserId = UserId,
                Algorithm = pair.Key.Algorithm,
                Created = Mapper.Local(pair.Key.Created),
                PublicKeyPath = pub,
                SecretKeyPath = sec,
                KeyMetadataPath = metadataPath,
                Supersedes = Supersedes is null ? null : Normalize(Supersedes),
            });
        }
        catch (Exception e) when (IsFailure(e))
        {
            ThrowHubError(e);
        }
        finally
        {
            Secrets.Clear(pass);
        }
    }

    private static string Normalize(string fpr) => fpr.Replace(" ", "", StringComparison.Ordinal).ToUpperInvariant();

    private static void WriteSecretFile(string path, string content)
    {
        // Owner-only: Unix 0600; Windows an ACL with only the current user (nothing inherited from the folder).
        using var fs = Engine.IO.PrivateFiles.CreateFile(path);
        using var w = new StreamWriter(fs);
        w.Write(content);
    }
}
