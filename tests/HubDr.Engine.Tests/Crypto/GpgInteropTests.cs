using System.Text;
using HubDr.Engine.Crypto;
using Xunit;

namespace HubDr.Engine.Tests.Crypto;

/// <summary>Interop with the real gpg 2.2 in a throwaway GNUPGHOME. Fails loudly if /usr/bin/gpg is missing.</summary>
[Collection("Crypto")]
public class GpgInteropTests
{
    private readonly CryptoFixture _f;

    public GpgInteropTests(CryptoFixture f)
    {
        _f = f;
        Assert.True(File.Exists("/usr/bin/gpg"), "gpg is required for the interop tests (apt-get install gnupg)");
    }

    [Theory]
    [InlineData("ops")]
    [InlineData("escrow")]
    public void GpgDecryptsOurMessageAndVerifiesOurSignature(string which)
    {
        var key = which == "ops" ? _f.Ops : _f.Escrow;
        var pass = which == "ops" ? CryptoFixture.OpsPass : CryptoFixture.EscrowPass;
        using var gpg = new GpgHome();
        gpg.Import(key.ArmoredSecretKey, pass);
        var listing = Encoding.UTF8.GetString(gpg.Ok(null, "--with-colons", "--list-secret-keys", key.Key.Fingerprint));
        Assert.Contains(key.Key.Fingerprint, listing);

        var plain = TestData.Random(2 * 1024 * 1024 + 3, 99);
        var cipher = TestData.Encrypt(plain, _f.Public(_f.Ops, _f.Escrow), "hub.tar.zst");
        File.WriteAllBytes(gpg.PathOf("msg.pgp"), cipher);
        var (dcode, _, dstatus) = gpg.Run(pass, "--status-fd", "2", "--output", gpg.PathOf("out.bin"), "--decrypt", gpg.PathOf("msg.pgp"));
        Assert.True(dcode == 0, dstatus);
        Assert.Equal(plain, File.ReadAllBytes(gpg.PathOf("out.bin")));
        Assert.Contains("[GNUPG:] DECRYPTION_INFO 2 9", dstatus); // MDC, AES-256
        Assert.Contains("[GNUPG:] GOODMDC", dstatus);
        Assert.Contains("[GNUPG:] PLAINTEXT 62 ", dstatus);        // binary literal data
        Assert.Contains("hub.tar.zst", dstatus);

        // Packet structure as promised: PKESK x2, SEIPD v1 (tag 18), AES256, no compression packet.
        var packets = Encoding.UTF8.GetString(gpg.Ok(pass, "--list-packets", gpg.PathOf("msg.pgp")));
        Assert.Equal(2, CountOf(packets, ":pubkey enc packet:"));
        Assert.Contains(":encrypted data packet:", packets);
        Assert.Contains("mdc_method: 2", packets);
        Assert.Contains(":literal data packet:", packets);
        Assert.DoesNotContain(":compressed packet:", packets);

        // Detached signature over the ciphertext.
        var sig = OpenPgpSignatures.SignDetached(cipher, _f.Secret(key), key.Key.Fingerprint, pass.ToCharArray());
        File.WriteAllBytes(gpg.PathOf("msg.pgp.asc"), sig);
        var (code, _, stderr) = gpg.Run(null, "--status-fd", "2", "--verify", gpg.PathOf("msg.pgp.asc"), gpg.PathOf("msg.pgp"));
        Assert.True(code == 0, stderr);
        Assert.Contains("[GNUPG:] VALIDSIG " + key.Key.Fingerprint, stderr);

        // ... and rejects it for modified data.
        cipher[100] ^= 1;
        File.WriteAllBytes(gpg.PathOf("msg.pgp"), cipher);
        (code, _, stderr) = gpg.Run(null, "--status-fd", "2", "--verify", gpg.PathOf("msg.pgp.asc"), gpg.PathOf("msg.pgp"));
        Assert.NotEqual(0, code);
        Assert.Contains("BADSIG", stderr);
    }

    [Fact]
    public void GpgSeesOurKeyPreferencesAndProtection()
    {
        using var gpg = new GpgHome();
        File.WriteAllText(gpg.PathOf("sec.asc"), _f.Ops.ArmoredSecretKey);
        var packets = Encoding.UTF8.GetString(gpg.Ok(null, "--list-packets", gpg.PathOf("sec.asc")));
        Assert.Contains("iter+salt S2K", packets);
        Assert.Contains("algo: 9, SHA1 protection", packets); // AES-256, s2k usage 254
        Assert.Contains("hash: 8", packets);              // SHA-256 S2K
        Assert.Contains("pref-sym-algos: 9 8 7", packets);
        Assert.Contains("pref-hash-algos: 10 9 8", packets);
        Assert.Contains("key flags: 03", packets);
        Assert.Contains("key flags: 0C", packets);
        Assert.Contains("digest algo 10", packets);        // SHA-512 self-signatures
    }

    [Theory]
    [InlineData("rsa3072")]
    [InlineData("nistp256")]
    public void GpgGeneratedKeyWorksWithOurCode(string algo)
    {
        const string pass = "gpg key pass";
        using var gpg = new GpgHome();
        gpg.Ok(pass, "--quick-gen-key", $"Gpg {algo} <gpg-{algo}@example.test>", algo, "sign,cert", "never");
        var fpr = FingerprintOf(gpg, $"gpg-{algo}@example.test");
        gpg.Ok(pass, "--quick-add-key", fpr, algo, "encr", "never");

        var pub = Encoding.ASCII.GetString(gpg.Ok(null, "--export", "--armor", fpr));
        var sec = Encoding.ASCII.GetString(gpg.Ok(pass, "--export-secret-keys", "--armor", fpr));
        var pubSet = OpenPgpKeySet.LoadPublic(new[] { pub });
        var secSet = OpenPgpKeySet.LoadSecret(new[] { sec });
        var info = Assert.Single(pubSet.Keys);
        Assert.Equal(fpr, info.Fingerprint);
        Assert.Equal(algo == "rsa3072" ? "RSA 3072" : "ECDSA NIST P-256", info.Algorithm);
        Assert.NotNull(info.EncryptionKeyId);
        Assert.NotEqual(info.KeyId, info.EncryptionKeyId);
        Func<string, char[]?> passFor = f => f == fpr ? pass.ToCharArray() : null;

        // Our message to the gpg key, decrypted by our code and by gpg.
        var plain = TestData.Random(1_500_000, 5);
        var cipher = TestData.Encrypt(plain, pubSet);
        Assert.Equal(plain, TestData.Decrypt(cipher, secSet, passFor, out var di));
        Assert.Equal(fpr, di.Fingerprint);
        File.WriteAllBytes(gpg.PathOf("ours.pgp"), cipher);
        Assert.Equal(plain, gpg.Ok(pass, "--decrypt", gpg.PathOf("ours.pgp")));

        // Our signature with the gpg key verifies in gpg and in our code.
        var sig = OpenPgpSignatures.SignDetached(plain, secSet, fpr, pass.ToCharArray());
        Assert.Equal(SignatureStatus.Valid, OpenPgpSignatures.Verify(new MemoryStream(plain), sig, pubSet).Status);
        File.WriteAllBytes(gpg.PathOf("plain.bin"), plain);
        File.WriteAllBytes(gpg.PathOf("plain.bin.sig"), sig);
        gpg.Ok(null, "--verify", gpg.PathOf("plain.bin.sig"), gpg.PathOf("plain.bin"));

        // gpg's own message (compressed, as gpg does by default, and binary and armored) decrypts in our code.
        foreach (var armor in new[] { false, true })
        {
            var outFile = gpg.PathOf(armor ? "gpg.asc" : "gpg.pgp");
            var args = new List<string> { "--trust-model", "always", "--recipient", fpr, "--output", outFile };
            if (armor) args.Add("--armor");
            args.Add("--encrypt");
            args.Add(gpg.PathOf("plain.bin"));
            gpg.Ok(null, args.ToArray());
            Assert.Equal(plain, TestData.Decrypt(File.ReadAllBytes(outFile), secSet, passFor, out di));
            Assert.Equal(info.EncryptionKeyId, Assert.Single(di.RecipientKeyIds));
        }

        // gpg's detached signature (binary and armored) verifies in our code.
        gpg.Ok(pass, "--local-user", fpr, "--output", gpg.PathOf("g.sig"), "--detach-sign", gpg.PathOf("plain.bin"));
        gpg.Ok(pass, "--local-user", fpr, "--armor", "--output", gpg.PathOf("g.asc"), "--detach-sign", gpg.PathOf("plain.bin"));
        foreach (var s in new[] { "g.sig", "g.asc" })
        {
            var check = OpenPgpSignatures.Verify(new MemoryStream(plain), File.ReadAllBytes(gpg.PathOf(s)), pubSet);
            Assert.Equal(SignatureStatus.Valid, check.Status);
            Assert.Equal(fpr, check.SignerFingerprint);
            var bad = (byte[])plain.Clone();
            bad[^1] ^= 0xFF;
            Assert.Equal(SignatureStatus.BadSignature, OpenPgpSignatures.Verify(new MemoryStream(bad), File.ReadAllBytes(gpg.PathOf(s)), pubSet).Status);
            Assert.Equal(SignatureStatus.UntrustedSigner, OpenPgpSignatures.Verify(new MemoryStream(plain), File.ReadAllBytes(gpg.PathOf(s)), _f.Public(_f.Ops)).Status);
        }

        // Wrong passphrase on a gpg-exported key.
        var ex = Assert.Throws<HubDrException>(() => TestData.Decrypt(cipher, secSet, _ => "nope".ToCharArray(), out _));
        Assert.Equal("KeyPassphraseInvalid", ex.ErrorId);
    }

    [Fact]
    public void GpgMessageToOurKeyDecrypts()
    {
        using var gpg = new GpgHome();
        gpg.Import(_f.Escrow.ArmoredPublicKey);
        var plain = TestData.Random(300_000, 11);
        File.WriteAllBytes(gpg.PathOf("p.bin"), plain);
        gpg.Ok(null, "--trust-model", "always", "--recipient", _f.Escrow.Key.Fingerprint, "--output", gpg.PathOf("p.pgp"), "--encrypt", gpg.PathOf("p.bin"));
        Assert.Equal(plain, TestData.Decrypt(File.ReadAllBytes(gpg.PathOf("p.pgp")), _f.Secret(_f.Escrow), _f.PassFor, out var info));
        Assert.Equal(_f.Escrow.Key.Fingerprint, info.Fingerprint);
    }

    [Fact]
    public void GpgAnonymousRecipientMessageDecrypts()
    {
        using var gpg = new GpgHome();
        gpg.Import(_f.Ops.ArmoredPublicKey);
        var plain = TestData.Random(100_000, 12);
        File.WriteAllBytes(gpg.PathOf("p.bin"), plain);
        gpg.Ok(null, "--trust-model", "always", "--throw-keyids", "--recipient", _f.Ops.Key.Fingerprint, "--output", gpg.PathOf("p.pgp"), "--encrypt", gpg.PathOf("p.bin"));
        var cipher = File.ReadAllBytes(gpg.PathOf("p.pgp"));
        Assert.Equal(new[] { "0000000000000000" }, OpenPgpEncryption.ReadRecipientKeyIds(new MemoryStream(cipher)));
        // Another secret key is tried first and silently skipped.
        Assert.Equal(plain, TestData.Decrypt(cipher, _f.Secret(_f.Escrow, _f.Ops), _f.PassFor, out var info));
        Assert.Equal(_f.Ops.Key.Fingerprint, info.Fingerprint);
    }

    [Fact]
    public void GpgKeyWithSeparateSigningSubkeyAndOurP384SignatureVerifyInGpg()
    {
        const string pass = "sub key pass";
        using var gpg = new GpgHome();
        gpg.Ok(pass, "--quick-gen-key", "Cert Only <cert@example.test>", "nistp256", "cert", "never");
        var fpr = FingerprintOf(gpg, "cert@example.test");
        gpg.Ok(pass, "--quick-add-key", fpr, "nistp256/ecdsa", "sign", "never");
        gpg.Ok(pass, "--quick-add-key", fpr, "nistp256", "encr", "never");
        var sec = OpenPgpKeySet.LoadSecret(new[] { Encoding.ASCII.GetString(gpg.Ok(pass, "--export-secret-keys", "--armor", fpr)) });
        var key = Assert.Single(sec.Keys);
        Assert.Equal(3, key.AllKeyIds.Count);
        Assert.Equal(key.AllKeyIds[1], key.SigningKeyId);   // the signing subkey, not the cert-only primary
        Assert.Equal(key.AllKeyIds[2], key.EncryptionKeyId);

        var data = TestData.Random(200_000, 13);
        File.WriteAllBytes(gpg.PathOf("d.bin"), data);
        var sig = OpenPgpSignatures.SignDetached(data, sec, fpr, pass.ToCharArray());
        File.WriteAllBytes(gpg.PathOf("d.bin.asc"), sig);
        var (code, _, status) = gpg.Run(null, "--status-fd", "2", "--verify", gpg.PathOf("d.bin.asc"), gpg.PathOf("d.bin"));
        Assert.True(code == 0, status);
        Assert.Contains("[GNUPG:] VALIDSIG " + FingerprintOfSubkey(gpg, fpr, key.AllKeyIds[1]), status);
        var check = OpenPgpSignatures.Verify(new MemoryStream(data), sig, sec);
        Assert.Equal(SignatureStatus.Valid, check.Status);
        Assert.Equal(key.AllKeyIds[1], check.SignerKeyId);
        Assert.Equal(fpr, check.SignerFingerprint);

        // Our P-384 key: SHA-384 signature accepted by gpg.
        var p384 = KeyGenerator.Generate("P384 <p384@example.test>", KeyAlgorithm.EcdsaP384, "p".ToCharArray());
        gpg.Import(p384.ArmoredPublicKey);
        var sig384 = OpenPgpSignatures.SignDetached(data, OpenPgpKeySet.LoadSecret(new[] { p384.ArmoredSecretKey }), p384.Key.Fingerprint, "p".ToCharArray());
        File.WriteAllBytes(gpg.PathOf("d.bin.asc"), sig384);
        (code, _, status) = gpg.Run(null, "--status-fd", "2", "--verify", gpg.PathOf("d.bin.asc"), gpg.PathOf("d.bin"));
        Assert.True(code == 0, status);
        Assert.Matches(@"VALIDSIG " + p384.Key.Fingerprint + @" \S+ \S+ \S+ 4 0 19 9 00 ", status); // ECDSA, SHA-384, binary
    }

    private static string FingerprintOfSubkey(GpgHome gpg, string primary, string keyId)
    {
        var colons = Encoding.UTF8.GetString(gpg.Ok(null, "--with-colons", "--with-subkey-fingerprints", "--list-keys", primary));
        return colons.Split('\n').Where(l => l.StartsWith("fpr:", StringComparison.Ordinal))
            .Select(l => l.Split(':')[9]).First(f => f.EndsWith(keyId, StringComparison.Ordinal));
    }

    private static string FingerprintOf(GpgHome gpg, string email)
    {
        var colons = Encoding.UTF8.GetString(gpg.Ok(null, "--with-colons", "--list-keys", email));
        var line = colons.Split('\n').First(l => l.StartsWith("fpr:", StringComparison.Ordinal));
        return line.Split(':')[9];
    }

    private static int CountOf(string s, string what)
    {
        int n = 0, i = 0;
        while ((i = s.IndexOf(what, i, StringComparison.Ordinal)) >= 0) { n++; i += what.Length; }
        return n;
    }
}
