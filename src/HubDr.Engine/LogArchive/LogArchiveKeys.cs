using System.Security.Cryptography;
using System.Text;
using HubDr.Engine.Backup;
using HubDr.Engine.Crypto;

namespace HubDr.Engine.LogArchive;

/// <summary>
/// What a log archiver needs to write objects: the recipients (ops + escrow public keys), the unlocked signing key, and
/// the content-MAC key derived from the signing key's secret material. Loading fails early and typed (wrong passphrase,
/// missing recipients) before anything connects to a database.
/// </summary>
public sealed class LogArchiveKeys
{
    private readonly byte[] _macKey;

    private LogArchiveKeys(OpenPgpKeySet recipients, OpenPgpKeySet signingKeys, KeyInfo signer, char[] passphrase, byte[] macKey)
    {
        Recipients = recipients;
        SigningKeys = signingKeys;
        Signer = signer;
        Passphrase = passphrase;
        _macKey = macKey;
        OwnPublicKey = OpenPgpKeySet.LoadPublic([signer.PublicRingArmored()]);
    }

    public OpenPgpKeySet Recipients { get; }
    public OpenPgpKeySet SigningKeys { get; }
    public KeyInfo Signer { get; }
    public char[] Passphrase { get; }

    /// <summary>The signer's public key alone: what the archiver trusts when it reads back its own index.</summary>
    public OpenPgpKeySet OwnPublicKey { get; }

    public IReadOnlyList<string> RecipientKeyIds => Recipients.Keys.Select(k => k.EncryptionKeyId ?? k.KeyId).ToList();

    /// <summary>Loads key files like New-HubBackup does (folders of a key directory are expanded).</summary>
    public static LogArchiveKeys Load(IReadOnlyList<string> recipientKeys, IReadOnlyList<string> signingKeys, string? signer, char[] passphrase)
    {
        var recipients = KeyFiles.LoadRecipients(recipientKeys);
        var secret = KeyFiles.LoadSecret(signingKeys, "signing key");
        var key = KeyFiles.ResolveSigner(secret, signer);
        return Create(recipients, secret, key, passphrase);
    }

    public static LogArchiveKeys Create(OpenPgpKeySet recipients, OpenPgpKeySet signingKeys, KeyInfo signer, char[] passphrase)
    {
        if (recipients.Keys.Count == 0)
        {
            throw new HubDrException("RecipientKeyMissing", HubErrorCategory.InvalidArgument,
                "No recipient key was given. Pass the ops public key, plus an escrow key if you use one.");
        }

        // Proves the passphrase (typed KeyPassphraseInvalid) and warms the unlocked-key cache.
        _ = OpenPgpSignatures.SignDetached(Encoding.UTF8.GetBytes("hubdr-passphrase-check"), signingKeys, signer.Fingerprint, passphrase);
        return new LogArchiveKeys(recipients, signingKeys, signer, passphrase, DeriveMacKey(signer, passphrase));
    }

    /// <summary>Lower-case hex HMAC-SHA256 of <paramref name="plaintext"/> (see <see cref="LogIndexEntry.ContentMac"/>).</summary>
    public string ContentMac(ReadOnlySpan<byte> plaintext) => Convert.ToHexString(HMACSHA256.HashData(_macKey, plaintext)).ToLowerInvariant();

    /// <summary>
    /// The MAC key needs the secret key file AND its passphrase (both already proven by the signing check above), without a
    /// second S2K key derivation: HMAC-SHA256 keyed with the SHA-256 of the (passphrase-encrypted) secret key ring over the
    /// passphrase and a purpose label. Outsiders who read the public index can therefore not test plaintext guesses.
    /// </summary>
    private static byte[] DeriveMacKey(KeyInfo signer, char[] passphrase)
    {
        var ring = signer.SecretRing!.GetEncoded();
        var pass = PgpHelpers.PassphraseBytes(passphrase);
        try
        {
            var data = new byte[pass.Length + 25];
            pass.CopyTo(data, 0);
            "|hubdr-log-content-mac-v1"u8.CopyTo(data.AsSpan(pass.Length));
            var key = HMACSHA256.HashData(SHA256.HashData(ring), data);
            CryptographicOperations.ZeroMemory(data);
            return key;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pass);
        }
    }
}

internal static class KeyInfoExtensions
{
    /// <summary>The public key ring, ASCII-armored (loadable by OpenPgpKeySet.LoadPublic).</summary>
    public static string PublicRingArmored(this KeyInfo key) => PgpHelpers.Armor(s => key.PublicRing.Encode(s));
}
