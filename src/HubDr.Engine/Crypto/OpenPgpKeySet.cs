using System.Text;
using System.Text.RegularExpressions;
using Org.BouncyCastle.Bcpg;
using Org.BouncyCastle.Bcpg.OpenPgp;

namespace HubDr.Engine.Crypto;

/// <summary>
/// A set of OpenPGP keys, public or secret, loaded from files or armored text (armored or binary; several keys
/// per file are fine). The same key loaded twice is kept once (a secret copy wins over a public one).
/// </summary>
public sealed class OpenPgpKeySet
{
    private static readonly Regex ArmorBlock = new(
        @"-----BEGIN PGP (?<kind>[A-Z ]+)-----.*?-----END PGP \k<kind>-----", RegexOptions.Singleline | RegexOptions.Compiled);

    private readonly List<KeyInfo> _keys;

    private OpenPgpKeySet(List<KeyInfo> keys) => _keys = keys;

    public IReadOnlyList<KeyInfo> Keys => _keys;

    public static OpenPgpKeySet Empty { get; } = new(new List<KeyInfo>());

    /// <summary>Loads public keys. Secret key rings are accepted too; only their public part is kept.</summary>
    public static OpenPgpKeySet LoadPublic(IEnumerable<string> pathsOrArmoredText) => Load(pathsOrArmoredText, secret: false);

    /// <summary>Loads secret keys (still passphrase protected). A source holding only public keys is an error.</summary>
    public static OpenPgpKeySet LoadSecret(IEnumerable<string> pathsOrArmoredText) => Load(pathsOrArmoredText, secret: true);

    /// <summary>Combines sets (e.g. the current and the retired keys).</summary>
    public static OpenPgpKeySet Combine(params OpenPgpKeySet[] sets)
    {
        var list = new List<KeyInfo>();
        foreach (var set in sets)
            foreach (var k in set.Keys)
                AddOrMerge(list, k);
        return new OpenPgpKeySet(list);
    }

    /// <summary>Matches the primary key id, any subkey id, or the fingerprint; case-insensitive, spaces ignored.</summary>
    public KeyInfo? FindByKeyIdOrFingerprint(string hex)
    {
        if (string.IsNullOrWhiteSpace(hex))
            return null;
        var h = PgpHelpers.NormalizeHex(hex);
        foreach (var k in _keys)
        {
            if (k.Fingerprint == h || k.AllKeyIds.Contains(h))
                return k;
            // Short (8 hex) key ids are accepted only as the low half of a long id.
            if (h.Length == 8 && k.AllKeyIds.Any(id => id.EndsWith(h, StringComparison.Ordinal)))
                return k;
        }
        return null;
    }

    /// <summary>Keys matching any of the given fingerprints or key ids. Unknown entries throw KeyNotFound.</summary>
    public OpenPgpKeySet Filter(IEnumerable<string> fingerprintsOrKeyIds)
    {
        var list = new List<KeyInfo>();
        foreach (var id in fingerprintsOrKeyIds)
        {
            var k = FindByKeyIdOrFingerprint(id) ?? throw new HubDrException("KeyNotFound", HubErrorCategory.ObjectNotFound,
                $"OpenPGP key '{id}' is not among the {_keys.Count} loaded key(s). Check the fingerprint and the key files configured.")
            { Target = id };
            AddOrMerge(list, k);
        }
        return new OpenPgpKeySet(list);
    }

    /// <summary>Finds the secret key packet with this exact key id (primary or subkey).</summary>
    internal (KeyInfo Key, PgpSecretKey Secret)? FindSecretKey(long keyId)
    {
        foreach (var k in _keys)
        {
            var sk = k.SecretRing?.GetSecretKey(keyId);
            if (sk is not null && !sk.IsPrivateKeyEmpty)
                return (k, sk);
        }
        return null;
    }

    internal KeyInfo? FindByKeyId(long keyId)
    {
        var hex = PgpHelpers.KeyIdHex(keyId);
        return _keys.FirstOrDefault(k => k.AllKeyIds.Contains(hex));
    }

    private static void AddOrMerge(List<KeyInfo> list, KeyInfo key)
    {
        int i = list.FindIndex(k => k.Fingerprint == key.Fingerprint);
        if (i < 0)
            list.Add(key);
        else if (!list[i].HasSecret && key.HasSecret)
            list[i] = key;
    }

    private static OpenPgpKeySet Load(IEnumerable<string> sources, bool secret)
    {
        ArgumentNullException.ThrowIfNull(sources);
        var list = new List<KeyInfo>();
        foreach (var source in sources)
        {
            if (string.IsNullOrWhiteSpace(source))
                continue;
            var (bytes, label) = ReadSource(source);
            var found = 0;
            try
            {
                foreach (var chunk in SplitArmor(bytes))
                {
                    foreach (var key in ParseKeys(chunk, secret))
                    {
                        AddOrMerge(list, key);
                        found++;
                    }
                }
            }
            catch (Exception ex) when (ex is not HubDrException && PgpHelpers.IsBadInput(ex))
            {
                throw new HubDrException("KeyFileInvalid", HubErrorCategory.InvalidData,
                    $"Could not read OpenPGP keys from {label}: {ex.Message}. Export the key with 'gpg --export --armor' " +
                    "(public) or 'gpg --export-secret-keys --armor' (secret) and point HubDr at that file.", ex)
                { Target = label };
            }
            if (found == 0)
            {
                throw new HubDrException(secret ? "SecretKeyNotFound" : "KeyFileInvalid", HubErrorCategory.InvalidData,
                    secret
                        ? $"{label} holds no OpenPGP secret key. Export it with 'gpg --export-secret-keys --armor <fingerprint>'; a public key cannot decrypt or sign."
                        : $"{label} holds no OpenPGP public key. Export it with 'gpg --export --armor <fingerprint>'.")
                { Target = label };
            }
        }
        return new OpenPgpKeySet(list);
    }

    private static (byte[] Bytes, string Label) ReadSource(string source)
    {
        if (source.Contains("-----BEGIN PGP", StringComparison.Ordinal))
            return (Encoding.UTF8.GetBytes(source), "the armored key text");
        if (!File.Exists(source))
            throw new HubDrException("KeyFileNotFound", HubErrorCategory.ObjectNotFound,
                $"OpenPGP key file '{source}' does not exist. Check the path in the HubDr configuration.")
            { Target = source };
        try
        {
            return (File.ReadAllBytes(source), $"key file '{source}'");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new HubDrException("KeyFileUnreadable", HubErrorCategory.ReadError,
                $"OpenPGP key file '{source}' could not be read: {ex.Message}", ex) { Target = source };
        }
    }

    /// <summary>Binary input is one chunk; armored text is split into its armor blocks.</summary>
    private static IEnumerable<byte[]> SplitArmor(byte[] bytes)
    {
        int i = 0;
        while (i < bytes.Length && bytes[i] is (byte)' ' or (byte)'\r' or (byte)'\n' or (byte)'\t')
            i++;
        if (i < bytes.Length && (bytes[i] & 0x80) != 0)
        {
            yield return bytes;
            yield break;
        }
        var text = Encoding.UTF8.GetString(bytes);
        foreach (Match m in ArmorBlock.Matches(text))
        {
            if (m.Groups["kind"].Value is "PUBLIC KEY BLOCK" or "PRIVATE KEY BLOCK" or "SECRET KEY BLOCK")
                yield return Encoding.UTF8.GetBytes(m.Value + "\n");
        }
    }

    private static IEnumerable<KeyInfo> ParseKeys(byte[] chunk, bool secret)
    {
        using var decoder = PgpDecoder.Open(new MemoryStream(chunk));
        var bcpg = new BcpgInputStream(decoder);
        var results = new List<KeyInfo>();
        while (true)
        {
            var tag = bcpg.SkipMarkerPackets();
            if ((int)tag < 0)
                break;
            if (tag == PacketTag.PublicKey)
            {
                var ring = new PgpPublicKeyRing(bcpg);
                if (!secret)
                    results.Add(new KeyInfo(ring, null));
            }
            else if (tag == PacketTag.SecretKey)
            {
                var ring = new PgpSecretKeyRing(bcpg);
                var pub = PublicRingOf(ring);
                results.Add(new KeyInfo(pub, secret ? ring : null));
            }
            else
            {
                // Trust packets, stray signatures, etc. between rings: skip the packet.
                bcpg.ReadPacket();
            }
        }
        return results;
    }

    private static PgpPublicKeyRing PublicRingOf(PgpSecretKeyRing ring)
    {
        using var ms = new MemoryStream();
        foreach (var k in ring.GetPublicKeys())
            k.Encode(ms);
        return new PgpPublicKeyRing(ms.ToArray());
    }
}
