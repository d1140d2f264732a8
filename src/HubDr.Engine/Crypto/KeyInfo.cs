using Org.BouncyCastle.Bcpg.OpenPgp;

namespace HubDr.Engine.Crypto;

/// <summary>Key algorithms HubDr can generate.</summary>
public enum KeyAlgorithm
{
    Rsa3072,
    Rsa4096,
    EcdsaP256,
    EcdsaP384,
}

/// <summary>One OpenPGP key (primary key + subkeys), public or with secret parts.</summary>
public sealed class KeyInfo
{
    internal KeyInfo(PgpPublicKeyRing publicRing, PgpSecretKeyRing? secretRing)
    {
        PublicRing = publicRing;
        SecretRing = secretRing;
        var primary = publicRing.GetPublicKey();
        Fingerprint = PgpHelpers.Hex(primary.GetFingerprint());
        KeyId = PgpHelpers.KeyIdHex(primary.KeyId);
        AllKeyIds = publicRing.GetPublicKeys().Select(k => PgpHelpers.KeyIdHex(k.KeyId)).ToList();
        UserIds = primary.GetUserIds().ToList();
        Created = new DateTimeOffset(DateTime.SpecifyKind(primary.CreationTime, DateTimeKind.Utc));
        Algorithm = PgpHelpers.DescribeAlgorithm(primary);
        var signing = PgpHelpers.SelectSigningKey(publicRing, null);
        SigningKeyId = signing is null ? null : PgpHelpers.KeyIdHex(signing.KeyId);
        var enc = PgpHelpers.SelectEncryptionKey(publicRing);
        EncryptionKeyId = enc is null ? null : PgpHelpers.KeyIdHex(enc.KeyId);
    }

    /// <summary>Primary key fingerprint, 40 upper-case hex digits (v4).</summary>
    public string Fingerprint { get; }

    /// <summary>Primary key id, 16 upper-case hex digits.</summary>
    public string KeyId { get; }

    /// <summary>Primary key id followed by every subkey id.</summary>
    public IReadOnlyList<string> AllKeyIds { get; }

    /// <summary>Key (primary or subkey) used to make signatures, or null if the key cannot sign.</summary>
    public string? SigningKeyId { get; }

    /// <summary>Subkey used as a recipient for encryption, or null if the key cannot encrypt.</summary>
    public string? EncryptionKeyId { get; }

    public IReadOnlyList<string> UserIds { get; }

    public DateTimeOffset Created { get; }

    /// <summary>Primary key algorithm, e.g. "RSA 3072" or "ECDSA NIST P-256".</summary>
    public string Algorithm { get; }

    /// <summary>True when the secret key material (passphrase protected) is loaded.</summary>
    public bool HasSecret => SecretRing is not null;

    internal PgpPublicKeyRing PublicRing { get; }

    internal PgpSecretKeyRing? SecretRing { get; }

    public override string ToString() => $"{Fingerprint} {Algorithm} {string.Join(", ", UserIds)}";
}

/// <summary>Result of <see cref="KeyGenerator.Generate"/>.</summary>
public sealed class GeneratedKeyPair
{
    internal GeneratedKeyPair(KeyInfo key, string armoredPublicKey, string armoredSecretKey)
    {
        Key = key;
        ArmoredPublicKey = armoredPublicKey;
        ArmoredSecretKey = armoredSecretKey;
    }

    public KeyInfo Key { get; }

    public string ArmoredPublicKey { get; }

    /// <summary>Secret key, protected with the passphrase (AES-256, iterated+salted SHA-256 S2K).</summary>
    public string ArmoredSecretKey { get; }
}
