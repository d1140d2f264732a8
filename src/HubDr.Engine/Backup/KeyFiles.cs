using HubDr.Engine.Crypto;

namespace HubDr.Engine.Backup;

/// <summary>Loads key files with operator-friendly errors.</summary>
public static class KeyFiles
{
    public static OpenPgpKeySet LoadRecipients(IReadOnlyList<string> paths)
    {
        if (paths.Count == 0)
        {
            throw new HubDrException("RecipientKeyMissing", HubErrorCategory.InvalidArgument,
                "No recipient key was given. Pass -RecipientKeyPath (the ops public key, plus an escrow key if you use one).");
        }

        var set = OpenPgpKeySet.LoadPublic(Existing(paths, "recipient key", secret: false));
        foreach (var k in set.Keys)
        {
            if (k.EncryptionKeyId is null)
            {
                throw new HubDrException("RecipientKeyCannotEncrypt", HubErrorCategory.InvalidArgument,
                    $"Key {k.Fingerprint} has no usable encryption subkey.") { Target = k.Fingerprint };
            }
        }

        return set;
    }

    public static OpenPgpKeySet LoadPublic(IReadOnlyList<string> paths, string what)
    {
        if (paths.Count == 0)
        {
            throw new HubDrException("TrustedSignerMissing", HubErrorCategory.InvalidArgument,
                $"No {what} was given. Signatures only count from keys you name: pass -TrustedSignerKeyPath.");
        }

        return OpenPgpKeySet.LoadPublic(Existing(paths, what, secret: false));
    }

    public static OpenPgpKeySet LoadSecret(IReadOnlyList<string> paths, string what)
    {
        if (paths.Count == 0)
        {
            throw new HubDrException("SecretKeyMissing", HubErrorCategory.InvalidArgument, $"No {what} file was given.");
        }

        return OpenPgpKeySet.LoadSecret(Existing(paths, what, secret: true));
    }

    public static KeyInfo ResolveSigner(OpenPgpKeySet keys, string? signer)
    {
        if (signer is not null)
        {
            return keys.FindByKeyIdOrFingerprint(signer)
                ?? throw new HubDrException("SigningKeyNotFound", HubErrorCategory.ObjectNotFound, $"No secret key {signer} in the signing key file(s).") { Target = signer };
        }

        var signing = keys.Keys.Where(k => k.HasSecret && k.SigningKeyId is not null).ToList();
        return signing.Count switch
        {
            1 => signing[0],
            0 => throw new HubDrException("SigningKeyNotFound", HubErrorCategory.ObjectNotFound, "The signing key file holds no secret key that can sign."),
            _ => throw new HubDrException("SigningKeyAmbiguous", HubErrorCategory.InvalidArgument,
                $"The signing key files hold {signing.Count} signing keys; name one with -Signer (fingerprint)."),
        };
    }

    /// <summary>
    /// Expands folders (a key directory written by New-HubBackupKey) to their key files: "*.sec.asc" for secret
    /// keys, every other *.asc/*.gpg/*.pgp/*.key for public keys; checks every path exists.
    /// </summary>
    public static IEnumerable<string> Existing(IEnumerable<string> paths, string what, bool secret)
    {
        var result = new List<string>();
        foreach (var p in paths)
        {
            if (p.Contains("-----BEGIN PGP", StringComparison.Ordinal))
            {
                result.Add(p);
            }
            else if (Directory.Exists(p))
            {
                result.AddRange(Directory.EnumerateFiles(p)
                    .Where(f => secret == f.EndsWith(".sec.asc", StringComparison.OrdinalIgnoreCase))
                    .Where(f => f.EndsWith(".asc", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".gpg", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".pgp", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".key", StringComparison.OrdinalIgnoreCase))
                    .Order(StringComparer.Ordinal));
            }
            else if (File.Exists(p))
            {
                result.Add(p);
            }
            else
            {
                throw new HubDrException("KeyFileNotFound", HubErrorCategory.ObjectNotFound, $"The {what} file '{p}' does not exist.") { Target = p };
            }
        }

        return result;
    }
}
