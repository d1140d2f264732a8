using HubDr.Engine.Crypto;
using Xunit;

namespace HubDr.Engine.Tests.Crypto;

[Collection("Crypto")]
public class FailureTests
{
    private readonly CryptoFixture _f;
    private readonly byte[] _plain = TestData.Random(700_000, 42);
    private readonly byte[] _cipher;

    public FailureTests(CryptoFixture f)
    {
        _f = f;
        _cipher = TestData.Encrypt(_plain, _f.Public(_f.Ops, _f.Escrow));
    }

    private HubDrException DecryptFails(byte[] cipher, OpenPgpKeySet keys, Func<string, char[]?> pass) =>
        Assert.Throws<HubDrException>(() => TestData.Decrypt(cipher, keys, pass, out _));

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.9)]
    [InlineData(0.99999)]
    public void FlippedByteInCiphertextFailsIntegrity(double where)
    {
        var bad = (byte[])_cipher.Clone();
        int pos = (int)(bad.Length * where);
        bad[pos] ^= 0x01;
        var ex = DecryptFails(bad, _f.Secret(_f.Ops), _f.PassFor);
        Assert.Equal("ArchiveIntegrityFailed", ex.ErrorId);
        Assert.Equal(HubErrorCategory.InvalidData, ex.Category);
    }

    [Fact]
    public void FlippedByteFailsSignature()
    {
        var sig = OpenPgpSignatures.SignDetached(_cipher, _f.Secret(_f.Ops), _f.Ops.Key.Fingerprint, CryptoFixture.OpsPass.ToCharArray());
        var bad = (byte[])_cipher.Clone();
        bad[bad.Length / 3] ^= 0x80;
        var check = OpenPgpSignatures.Verify(new MemoryStream(bad), sig, _f.Public(_f.Ops));
        Assert.Equal(SignatureStatus.BadSignature, check.Status);
        Assert.Equal(_f.Ops.Key.Fingerprint, check.SignerFingerprint);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(10)]
    [InlineData(22)]
    [InlineData(5000)]
    [InlineData(400_000)]
    public void TruncatedCiphertextFailsIntegrity(int cut)
    {
        var bad = _cipher.AsSpan(0, _cipher.Length - cut).ToArray();
        var ex = DecryptFails(bad, _f.Secret(_f.Escrow), _f.PassFor);
        Assert.Equal("ArchiveIntegrityFailed", ex.ErrorId);
    }

    [Fact]
    public void WrongKeyIsDecryptionKeyNotFoundNamingRecipients()
    {
        var ex = DecryptFails(_cipher, _f.Secret(_f.Other), _f.PassFor);
        Assert.Equal("DecryptionKeyNotFound", ex.ErrorId);
        Assert.Equal(HubErrorCategory.SecurityError, ex.Category);
        Assert.Contains(_f.Ops.Key.EncryptionKeyId!, ex.Message);
        Assert.Contains(_f.Escrow.Key.EncryptionKeyId!, ex.Message);
    }

    [Fact]
    public void WrongPassphraseIsKeyPassphraseInvalid()
    {
        var ex = DecryptFails(_cipher, _f.Secret(_f.Ops), _ => "Zq9-secret-xyz".ToCharArray());
        Assert.Equal("KeyPassphraseInvalid", ex.ErrorId);
        Assert.Equal(HubErrorCategory.AuthenticationError, ex.Category);
        Assert.DoesNotContain("Zq9-secret-xyz", ex.Message);
        ex = DecryptFails(_cipher, _f.Secret(_f.Ops), _ => null);
        Assert.Equal("KeyPassphraseInvalid", ex.ErrorId);
        var sx = Assert.Throws<HubDrException>(() => new SigningStream(Stream.Null, _f.Secret(_f.Ops), _f.Ops.Key.Fingerprint, "bad".ToCharArray()));
        Assert.Equal("KeyPassphraseInvalid", sx.ErrorId);
    }

    [Fact]
    public void AnUnlockedSigningKeyIsNeverReusedForAnotherPassphrase()
    {
        // The same loaded key set signs several times per backup; the key is unlocked once, for that passphrase only.
        var keys = _f.Secret(_f.Ops);
        var good = OpenPgpSignatures.SignDetached("a"u8, keys, _f.Ops.Key.Fingerprint, CryptoFixture.OpsPass.ToCharArray());
        Assert.Equal(SignatureStatus.Valid, OpenPgpSignatures.Verify(new MemoryStream("a"u8.ToArray()), good, _f.Public(_f.Ops)).Status);
        var ex = Assert.Throws<HubDrException>(() => OpenPgpSignatures.SignDetached("a"u8, keys, _f.Ops.Key.Fingerprint, "bad".ToCharArray()));
        Assert.Equal("KeyPassphraseInvalid", ex.ErrorId);
        var again = OpenPgpSignatures.SignDetached("b"u8, keys, _f.Ops.Key.Fingerprint, CryptoFixture.OpsPass.ToCharArray());
        Assert.Equal(SignatureStatus.Valid, OpenPgpSignatures.Verify(new MemoryStream("b"u8.ToArray()), again, _f.Public(_f.Ops)).Status);
    }

    [Fact]
    public void SecondKeyIsTriedWhenFirstPassphraseIsWrong()
    {
        // Retired + current keys loaded: wrong passphrase for ops, right one for escrow -> decrypts with escrow.
        var got = TestData.Decrypt(_cipher, _f.Secret(_f.Ops, _f.Escrow),
            fp => fp == _f.Escrow.Key.Fingerprint ? CryptoFixture.EscrowPass.ToCharArray() : "nope".ToCharArray(), out var info);
        Assert.Equal(_plain, got);
        Assert.Equal(_f.Escrow.Key.Fingerprint, info.Fingerprint);
    }

    [Fact]
    public void NotOpenPgp()
    {
        foreach (var junk in new[] { System.Text.Encoding.ASCII.GetBytes("just some text, not a message"), new byte[] { 0x28, 0xB5, 0x2F, 0xFD, 1, 2, 3 }, Array.Empty<byte>() })
        {
            var ex = DecryptFails(junk, _f.Secret(_f.Ops), _f.PassFor);
            Assert.Equal("ArchiveNotOpenPgp", ex.ErrorId);
            Assert.Equal("ArchiveNotOpenPgp", Assert.Throws<HubDrException>(() => OpenPgpEncryption.ReadRecipientKeyIds(new MemoryStream(junk))).ErrorId);
        }
        // A signature is OpenPGP but not an encrypted message.
        var sig = OpenPgpSignatures.SignDetached(_plain, _f.Secret(_f.Ops), _f.Ops.Key.KeyId, CryptoFixture.OpsPass.ToCharArray());
        Assert.Equal("ArchiveNotOpenPgp", DecryptFails(sig, _f.Secret(_f.Ops), _f.PassFor).ErrorId);
    }

    [Fact]
    public void SignatureStatuses()
    {
        var sig = OpenPgpSignatures.SignDetached(_plain, _f.Secret(_f.Other), _f.Other.Key.Fingerprint, CryptoFixture.OtherPass.ToCharArray());
        var trusted = _f.Public(_f.Ops, _f.Escrow);

        var untrusted = OpenPgpSignatures.Verify(new MemoryStream(_plain), sig, trusted);
        Assert.Equal(SignatureStatus.UntrustedSigner, untrusted.Status);
        Assert.Equal(_f.Other.Key.KeyId, untrusted.SignerKeyId);
        Assert.Equal(_f.Other.Key.Fingerprint, untrusted.SignerFingerprint);

        // Same signature is valid once the key is trusted.
        Assert.Equal(SignatureStatus.Valid, OpenPgpSignatures.Verify(new MemoryStream(_plain), sig, _f.Public(_f.Other)).Status);

        Assert.Equal(SignatureStatus.Missing, OpenPgpSignatures.Verify(new MemoryStream(_plain), null, trusted).Status);
        Assert.Equal(SignatureStatus.Malformed, OpenPgpSignatures.Verify(new MemoryStream(_plain), TestData.Random(300, 1), trusted).Status);
        Assert.Equal(SignatureStatus.Malformed, OpenPgpSignatures.Verify(new MemoryStream(_plain), System.Text.Encoding.ASCII.GetBytes("garbage"), trusted).Status);
        var broken = (byte[])sig.Clone();
        Array.Resize(ref broken, broken.Length / 2);
        Assert.Equal(SignatureStatus.Malformed, OpenPgpSignatures.Verify(new MemoryStream(_plain), broken, trusted).Status);
        // A public key block is OpenPGP but not a signature.
        Assert.Equal(SignatureStatus.Malformed, OpenPgpSignatures.Verify(new MemoryStream(_plain), System.Text.Encoding.ASCII.GetBytes(_f.Ops.ArmoredPublicKey), trusted).Status);
    }

    [Fact]
    public void EncryptWithoutRecipientsThrows()
    {
        var ex = Assert.Throws<HubDrException>(() => OpenPgpEncryption.OpenEncrypt(new MemoryStream(), OpenPgpKeySet.Empty, "x", DateTimeOffset.UtcNow));
        Assert.Equal("EncryptionRecipientMissing", ex.ErrorId);
    }
}
