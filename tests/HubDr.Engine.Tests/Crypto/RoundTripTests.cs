using HubDr.Engine.Crypto;
using Xunit;

namespace HubDr.Engine.Tests.Crypto;

[Collection("Crypto")]
public class RoundTripTests
{
    private readonly CryptoFixture _f;

    public RoundTripTests(CryptoFixture f) => _f = f;

    [Theory]
    [InlineData(KeyAlgorithm.Rsa3072, "RSA 3072")]
    [InlineData(KeyAlgorithm.EcdsaP256, "ECDSA NIST P-256")]
    [InlineData(KeyAlgorithm.EcdsaP384, "ECDSA NIST P-384")]
    [InlineData(KeyAlgorithm.Rsa4096, "RSA 4096")]
    public void GenerateEncryptToTwoRecipientsDecryptWithEachSignVerify(KeyAlgorithm algorithm, string expectedAlgorithm)
    {
        var created = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
        var ops = KeyGenerator.Generate("Ops <ops@hub.test>", algorithm, "p1".ToCharArray(), created);
        var escrow = _f.Escrow; // second recipient of another algorithm

        Assert.Equal(expectedAlgorithm, ops.Key.Algorithm);
        Assert.Equal(created, ops.Key.Created);
        Assert.Matches("^[0-9A-F]{40}$", ops.Key.Fingerprint);
        Assert.Equal(ops.Key.Fingerprint[^16..], ops.Key.KeyId);
        Assert.Equal(2, ops.Key.AllKeyIds.Count);
        Assert.Equal(ops.Key.KeyId, ops.Key.SigningKeyId);           // primary signs
        Assert.Equal(ops.Key.AllKeyIds[1], ops.Key.EncryptionKeyId); // separate encryption subkey
        Assert.True(ops.Key.HasSecret);
        Assert.Equal(new[] { "Ops <ops@hub.test>" }, ops.Key.UserIds);
        Assert.Contains("BEGIN PGP PUBLIC KEY BLOCK", ops.ArmoredPublicKey);
        Assert.Contains("BEGIN PGP PRIVATE KEY BLOCK", ops.ArmoredSecretKey);

        var plain = TestData.Random(3 * 1024 * 1024 + 12345, (int)algorithm);
        var recipients = OpenPgpKeySet.LoadPublic(new[] { ops.ArmoredPublicKey, escrow.ArmoredPublicKey });
        var cipher = TestData.Encrypt(plain, recipients);

        var ids = OpenPgpEncryption.ReadRecipientKeyIds(new MemoryStream(cipher));
        Assert.Equal(new[] { ops.Key.EncryptionKeyId!, escrow.Key.EncryptionKeyId! }, ids);

        var opsSecret = OpenPgpKeySet.LoadSecret(new[] { ops.ArmoredSecretKey });
        var got = TestData.Decrypt(cipher, opsSecret, _ => "p1".ToCharArray(), out var info);
        Assert.Equal(plain, got);
        Assert.Equal(ops.Key.Fingerprint, info.Fingerprint);
        Assert.Equal(ops.Key.EncryptionKeyId, info.KeyId);
        Assert.Equal(ids, info.RecipientKeyIds);

        var escrowSecret = _f.Secret(escrow);
        got = TestData.Decrypt(cipher, escrowSecret, _f.PassFor, out info);
        Assert.Equal(plain, got);
        Assert.Equal(escrow.Key.Fingerprint, info.Fingerprint);

        // Sign (streaming) + verify.
        byte[] sig;
        using (var sink = new MemoryStream())
        {
            using var signing = new SigningStream(sink, opsSecret, ops.Key.Fingerprint, "p1".ToCharArray());
            signing.Write(cipher, 0, 1000);
            signing.Write(cipher.AsSpan(1000));
            sig = signing.FinishSignature();
            Assert.Equal(cipher, sink.ToArray());
        }
        var check = OpenPgpSignatures.Verify(new MemoryStream(cipher), sig, recipients);
        Assert.Equal(SignatureStatus.Valid, check.Status);
        Assert.Equal(ops.Key.Fingerprint, check.SignerFingerprint);
        Assert.Equal(ops.Key.KeyId, check.SignerKeyId);
        Assert.True(Math.Abs((DateTimeOffset.UtcNow - check.SignedAt!.Value).TotalMinutes) < 5);
    }

    [Fact]
    public void SignDetachedAndVerifyBinaryAndArmored()
    {
        var data = TestData.Random(100_000, 7);
        var sig = OpenPgpSignatures.SignDetached(data, _f.Secret(_f.Escrow), _f.Escrow.Key.KeyId.ToLowerInvariant(), CryptoFixture.EscrowPass.ToCharArray());
        Assert.StartsWith("-----BEGIN PGP SIGNATURE-----", System.Text.Encoding.ASCII.GetString(sig));
        var trusted = _f.Public(_f.Escrow);
        Assert.Equal(SignatureStatus.Valid, OpenPgpSignatures.Verify(new MemoryStream(data), sig, trusted).Status);

        // Binary form of the same signature.
        using var dec = Org.BouncyCastle.Bcpg.OpenPgp.PgpUtilities.GetDecoderStream(new MemoryStream(sig));
        using var bin = new MemoryStream();
        dec.CopyTo(bin);
        Assert.True((bin.ToArray()[0] & 0x80) != 0);
        Assert.Equal(SignatureStatus.Valid, OpenPgpSignatures.Verify(new MemoryStream(data), bin.ToArray(), trusted).Status);
    }

    [Fact]
    public void EmptyPassphraseIsRejected()
    {
        var ex = Assert.Throws<HubDrException>(() => KeyGenerator.Generate("x <x@y>", KeyAlgorithm.EcdsaP256, Array.Empty<char>()));
        Assert.Equal("KeyPassphraseEmpty", ex.ErrorId);
    }

    [Fact]
    public void KeySetFindsByFingerprintKeyIdSubkeyIdCaseAndSpacesInsensitive()
    {
        var set = OpenPgpKeySet.LoadPublic(new[] { _f.Ops.ArmoredPublicKey + "\n" + _f.Escrow.ArmoredPublicKey });
        Assert.Equal(2, set.Keys.Count);
        var fp = _f.Escrow.Key.Fingerprint;
        var spaced = string.Join(' ', Enumerable.Range(0, 10).Select(i => fp.Substring(i * 4, 4))).ToLowerInvariant();
        Assert.Equal(fp, set.FindByKeyIdOrFingerprint(spaced)!.Fingerprint);
        Assert.Equal(fp, set.FindByKeyIdOrFingerprint(_f.Escrow.Key.EncryptionKeyId!)!.Fingerprint);
        Assert.Equal(_f.Ops.Key.Fingerprint, set.FindByKeyIdOrFingerprint(_f.Ops.Key.KeyId.ToLowerInvariant())!.Fingerprint);
        Assert.Null(set.FindByKeyIdOrFingerprint(_f.Other.Key.Fingerprint));
        Assert.False(set.Keys[0].HasSecret);
        Assert.Single(set.Filter(new[] { fp }).Keys);
        Assert.Equal("KeyNotFound", Assert.Throws<HubDrException>(() => set.Filter(new[] { _f.Other.Key.KeyId })).ErrorId);

        // Secret file on disk (binary, two keys concatenated) loads with secrets.
        var dir = Directory.CreateTempSubdirectory("hubdr-keys-").FullName;
        try
        {
            var bin = Path.Combine(dir, "both.gpg");
            using (var fs = File.Create(bin))
            {
                foreach (var k in new[] { _f.Ops, _f.Escrow })
                {
                    using var d = Org.BouncyCastle.Bcpg.OpenPgp.PgpUtilities.GetDecoderStream(new MemoryStream(System.Text.Encoding.ASCII.GetBytes(k.ArmoredSecretKey)));
                    d.CopyTo(fs);
                }
            }
            var secret = OpenPgpKeySet.LoadSecret(new[] { bin });
            Assert.Equal(2, secret.Keys.Count);
            Assert.All(secret.Keys, k => Assert.True(k.HasSecret));
            Assert.Equal("SecretKeyNotFound", Assert.Throws<HubDrException>(() => OpenPgpKeySet.LoadSecret(new[] { _f.Ops.ArmoredPublicKey })).ErrorId);
            Assert.Equal("KeyFileNotFound", Assert.Throws<HubDrException>(() => OpenPgpKeySet.LoadPublic(new[] { Path.Combine(dir, "nope.asc") })).ErrorId);
            File.WriteAllText(Path.Combine(dir, "junk.asc"), "hello world");
            Assert.Equal("KeyFileInvalid", Assert.Throws<HubDrException>(() => OpenPgpKeySet.LoadPublic(new[] { Path.Combine(dir, "junk.asc") })).ErrorId);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
