using System.Security.Cryptography;
using Org.BouncyCastle.Asn1.Sec;
using Org.BouncyCastle.Bcpg;
using Org.BouncyCastle.Bcpg.OpenPgp;
using Org.BouncyCastle.Bcpg.Sig;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Generators;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Math;
using Org.BouncyCastle.Security;

namespace HubDr.Engine.Crypto;

/// <summary>
/// Generates OpenPGP v4 keys: a primary key that certifies and signs (RSA or ECDSA) plus one encryption subkey
/// (RSA, or ECDH on the same curve). Self-signatures use SHA-256 or stronger; the secret key is protected with
/// AES-256 and an iterated+salted SHA-256 S2K, SHA-1 checksum (s2k usage 254), as gpg itself does.
/// </summary>
public static class KeyGenerator
{
    public static GeneratedKeyPair Generate(string userId, KeyAlgorithm algorithm, char[] passphrase, DateTimeOffset? created = null)
    {
        if (string.IsNullOrWhiteSpace(userId))
            throw new HubDrException("KeyUserIdMissing", HubErrorCategory.InvalidArgument,
                "Cannot generate an OpenPGP key without a user id. Pass a user id such as 'HubDr Backup <ops@example.com>'.");
        if (passphrase is null || passphrase.Length == 0)
            throw new HubDrException("KeyPassphraseEmpty", HubErrorCategory.InvalidArgument,
                "Refusing to generate an OpenPGP secret key without a passphrase: the key would be stored unprotected. " +
                "Supply a non-empty passphrase (keep it in the vault with the key).");

        var random = new SecureRandom();
        // OpenPGP stores whole seconds.
        var when = (created ?? DateTimeOffset.UtcNow).UtcDateTime;
        when = new DateTime(when.Ticks - when.Ticks % TimeSpan.TicksPerSecond, DateTimeKind.Utc);

        PgpKeyPair primary, encryption;
        HashAlgorithmTag certHash;
        switch (algorithm)
        {
            case KeyAlgorithm.Rsa3072:
            case KeyAlgorithm.Rsa4096:
            {
                int bits = algorithm == KeyAlgorithm.Rsa3072 ? 3072 : 4096;
                var gen = new RsaKeyPairGenerator();
                gen.Init(new RsaKeyGenerationParameters(BigInteger.ValueOf(0x10001), random, bits, 100));
                primary = new PgpKeyPair(PublicKeyAlgorithmTag.RsaGeneral, gen.GenerateKeyPair(), when);
                encryption = new PgpKeyPair(PublicKeyAlgorithmTag.RsaGeneral, gen.GenerateKeyPair(), when);
                certHash = HashAlgorithmTag.Sha512;
                break;
            }
            case KeyAlgorithm.EcdsaP256:
            case KeyAlgorithm.EcdsaP384:
            {
                var curve = algorithm == KeyAlgorithm.EcdsaP256 ? SecObjectIdentifiers.SecP256r1 : SecObjectIdentifiers.SecP384r1;
                var sign = new ECKeyPairGenerator("ECDSA");
                sign.Init(new ECKeyGenerationParameters(curve, random));
                var dh = new ECKeyPairGenerator("ECDH");
                dh.Init(new ECKeyGenerationParameters(curve, random));
                primary = new PgpKeyPair(PublicKeyAlgorithmTag.ECDsa, sign.GenerateKeyPair(), when);
                encryption = new PgpKeyPair(PublicKeyAlgorithmTag.ECDH, dh.GenerateKeyPair(), when);
                certHash = algorithm == KeyAlgorithm.EcdsaP256 ? HashAlgorithmTag.Sha256 : HashAlgorithmTag.Sha384;
                break;
            }
            default:
                throw new HubDrException("KeyAlgorithmUnsupported", HubErrorCategory.InvalidArgument,
                    $"Key algorithm '{algorithm}' is not supported. Use Rsa3072, Rsa4096, EcdsaP256 or EcdsaP384.");
        }

        var primaryPackets = new PgpSignatureSubpacketGenerator();
        primaryPackets.SetKeyFlags(false, KeyFlags.CertifyOther | KeyFlags.SignData);
        primaryPackets.SetPreferredSymmetricAlgorithms(false, new[]
        {
            (int)SymmetricKeyAlgorithmTag.Aes256, (int)SymmetricKeyAlgorithmTag.Aes192, (int)SymmetricKeyAlgorithmTag.Aes128,
        });
        primaryPackets.SetPreferredHashAlgorithms(false, new[]
        {
            (int)HashAlgorithmTag.Sha512, (int)HashAlgorithmTag.Sha384, (int)HashAlgorithmTag.Sha256,
        });
        primaryPackets.SetPreferredCompressionAlgorithms(false, new[]
        {
            (int)CompressionAlgorithmTag.Uncompressed, (int)CompressionAlgorithmTag.Zip,
        });
        primaryPackets.SetFeature(false, Features.FEATURE_MODIFICATION_DETECTION);
        primaryPackets.SetIssuerFingerprint(false, primary.PublicKey);
        primaryPackets.SetSignatureCreationTime(false, when);

        var subPackets = new PgpSignatureSubpacketGenerator();
        subPackets.SetKeyFlags(false, KeyFlags.EncryptComms | KeyFlags.EncryptStorage);
        subPackets.SetIssuerFingerprint(false, primary.PublicKey);
        subPackets.SetSignatureCreationTime(false, when);

        // Generate unprotected first, then protect each secret key packet ourselves: BouncyCastle 2.7 hard-codes
        // SHA-1 as S2K digest, and we want SHA-256.
        var ringGen = new PgpKeyRingGenerator(PgpSignature.PositiveCertification, primary, userId,
            SymmetricKeyAlgorithmTag.Null, certHash, Array.Empty<byte>(), true,
            primaryPackets.Generate(), null, random);
        ringGen.AddSubKey(encryption, subPackets.Generate(), null, certHash);

        var publicRing = ringGen.GeneratePublicKeyRing();
        var clearSecret = ringGen.GenerateSecretKeyRing();
        var secretRing = SecretKeyProtector.Protect(clearSecret, PgpHelpers.PassphraseBytes(passphrase), random);

        var info = new KeyInfo(publicRing, secretRing);
        var armoredPublic = PgpHelpers.Armor(s => publicRing.Encode(s));
        var armoredSecret = PgpHelpers.Armor(s => secretRing.Encode(s));
        return new GeneratedKeyPair(info, armoredPublic, armoredSecret);
    }
}

/// <summary>
/// Re-encodes an unprotected secret key ring with every secret key packet protected by
/// AES-256-CFB, iterated+salted SHA-256 S2K and a SHA-1 checksum (s2k usage 254, RFC 4880 5.5.3).
/// </summary>
internal static class SecretKeyProtector
{
    /// <summary>S2K iteration count byte: 0xE0 = 16,777,216 bytes hashed (same order as gpg's calibrated default).</summary>
    private const int S2kCountByte = 0xE0;

    internal static PgpSecretKeyRing Protect(PgpSecretKeyRing clearRing, byte[] passphrase, SecureRandom random)
    {
        try
        {
            var input = clearRing.GetEncoded();
            using var output = new MemoryStream();
            int pos = 0;
            while (pos < input.Length)
            {
                int start = pos;
                byte header = input[pos++];
                if ((header & 0x80) == 0)
                    throw new InvalidOperationException("Not an OpenPGP packet header.");
                int tag;
                int length;
                if ((header & 0x40) != 0)
                {
                    tag = header & 0x3F;
                    int first = input[pos++];
                    if (first < 192) length = first;
                    else if (first < 224) length = ((first - 192) << 8) + input[pos++] + 192;
                    else if (first == 255) { length = (input[pos] << 24) | (input[pos + 1] << 16) | (input[pos + 2] << 8) | input[pos + 3]; pos += 4; }
                    else throw new InvalidOperationException("Partial length packet in a key ring.");
                }
                else
                {
                    tag = (header & 0x3C) >> 2;
                    int lenType = header & 0x03;
                    length = lenType switch
                    {
                        0 => input[pos],
                        1 => (input[pos] << 8) | input[pos + 1],
                        2 => (input[pos] << 24) | (input[pos + 1] << 16) | (input[pos + 2] << 8) | input[pos + 3],
                        _ => throw new InvalidOperationException("Indeterminate length packet in a key ring."),
                    };
                    pos += lenType switch { 0 => 1, 1 => 2, _ => 4 };
                }
                var body = input.AsSpan(pos, length);
                pos += length;

                if (tag is 5 or 7)
                {
                    var packet = (SecretKeyPacket)new BcpgInputStream(new MemoryStream(input, start, pos - start)).ReadPacket();
                    int pubLen = packet.PublicKeyPacket.GetEncodedContents().Length;
                    if (body[pubLen] != 0)
                        throw new InvalidOperationException("Secret key is already protected.");
                    // Clear secret key material: MPIs followed by a 2-byte checksum.
                    var secret = body.Slice(pubLen + 1, body.Length - pubLen - 3).ToArray();
                    var newBody = ProtectBody(body[..pubLen], secret, passphrase, random);
                    WritePacket(output, tag, newBody);
                    CryptographicOperations.ZeroMemory(secret);
                }
                else
                {
                    output.Write(input, start, pos - start);
                }
            }
            return new PgpSecretKeyRing(output.ToArray());
        }
        catch (Exception ex) when (ex is not HubDrException)
        {
            throw new HubDrException("KeyGenerationFailed", HubErrorCategory.InvalidOperation,
                "Protecting the newly generated secret key with the passphrase failed. No key was written; retry, and report this if it repeats.", ex);
        }
    }

    private static byte[] ProtectBody(ReadOnlySpan<byte> publicPart, byte[] secret, byte[] passphrase, SecureRandom random)
    {
        var s2k = S2k.GenerateSaltedAndIterated(random, HashAlgorithmTag.Sha256, S2kCountByte);
        var key = PgpUtilities.MakeKeyFromPassPhraseRaw(SymmetricKeyAlgorithmTag.Aes256, s2k, passphrase).GetKey();
        var iv = new byte[16];
        random.NextBytes(iv);

        // CFB is a stream mode: encrypt a zero-padded whole number of blocks and keep the first plain.Length bytes.
        int plainLength = secret.Length + 20;
        var plain = new byte[(plainLength + 15) / 16 * 16];
        secret.CopyTo(plain, 0);
        SHA1.HashData(secret, plain.AsSpan(secret.Length));
        byte[] encrypted;
        using (var aes = Aes.Create())
        {
            aes.Key = key;
            encrypted = aes.EncryptCfb(plain, iv, PaddingMode.None, 128)[..plainLength];
        }
        CryptographicOperations.ZeroMemory(plain);
        CryptographicOperations.ZeroMemory(key);

        using var ms = new MemoryStream();
        ms.Write(publicPart);
        ms.WriteByte(254);                                   // s2k usage: encrypted, SHA-1 checksum
        ms.WriteByte((byte)SymmetricKeyAlgorithmTag.Aes256); // cipher
        var s2kBytes = new MemoryStream();
        using (var bcpg = new BcpgOutputStream(s2kBytes))
        {
            s2k.Encode(bcpg);                                // type 3, SHA-256, salt, count
        }
        ms.Write(s2kBytes.ToArray());
        ms.Write(iv);
        ms.Write(encrypted);
        return ms.ToArray();
    }

    private static void WritePacket(Stream output, int tag, byte[] body)
    {
        output.WriteByte((byte)(0xC0 | tag));
        output.WriteByte(0xFF);
        output.WriteByte((byte)(body.Length >> 24));
        output.WriteByte((byte)(body.Length >> 16));
        output.WriteByte((byte)(body.Length >> 8));
        output.WriteByte((byte)body.Length);
        output.Write(body);
    }
}
