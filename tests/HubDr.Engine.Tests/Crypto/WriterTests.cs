using System.Text;
using HubDr.Engine.Crypto;
using Xunit;

namespace HubDr.Engine.Tests.Crypto;

/// <summary>The fast SEIPD writer against BouncyCastle's reader and the real gpg, at packet-boundary sizes.</summary>
[Collection("Crypto")]
public class WriterTests
{
    private static readonly int[] Sizes = { 0, 1, 15, 16, 17, 191, 192, 8383, 8384, 65_500, 65_518, 65_519, 65_520, 65_536, 131_072, 131_072 * 3 + 7 };

    private readonly CryptoFixture _f;

    public WriterTests(CryptoFixture f) => _f = f;

    private static byte[] Encrypt(byte[] plain, OpenPgpKeySet recipients, bool bouncyCastle)
    {
        using var ms = new MemoryStream();
        using (var enc = OpenPgpEncryption.OpenEncrypt(ms, recipients, "f.bin", DateTimeOffset.UtcNow, bouncyCastle))
            enc.Write(plain);
        return ms.ToArray();
    }

    [Fact]
    public void FastAndBouncyCastleWritersBothDecryptAtBoundarySizes()
    {
        var recipients = _f.Public(_f.Ops, _f.Escrow);
        foreach (var size in Sizes)
        {
            var plain = TestData.Random(size, size);
            foreach (var bc in new[] { false, true })
            {
                var cipher = Encrypt(plain, recipients, bc);
                Assert.Equal(new[] { _f.Ops.Key.EncryptionKeyId!, _f.Escrow.Key.EncryptionKeyId! }, OpenPgpEncryption.ReadRecipientKeyIds(new MemoryStream(cipher)));
                Assert.Equal(plain, TestData.Decrypt(cipher, _f.Secret(_f.Ops), _f.PassFor, out _));
                Assert.Equal(plain, TestData.Decrypt(cipher, _f.Secret(_f.Escrow), _f.PassFor, out _));
            }
        }
    }

    [Fact]
    public void GpgDecryptsFastWriterOutputAtBoundarySizes()
    {
        using var gpg = new GpgHome();
        gpg.Import(_f.Escrow.ArmoredSecretKey, CryptoFixture.EscrowPass);
        foreach (var size in Sizes)
        {
            var plain = TestData.Random(size, size + 1);
            var file = gpg.PathOf($"m{size}.pgp");
            File.WriteAllBytes(file, Encrypt(plain, _f.Public(_f.Ops, _f.Escrow), bouncyCastle: false));
            var (code, stdout, stderr) = gpg.Run(CryptoFixture.EscrowPass, "--status-fd", "2", "--decrypt", file);
            Assert.True(code == 0, $"size {size}: {stderr}");
            Assert.Equal(plain, stdout);
            Assert.Contains("[GNUPG:] GOODMDC", stderr);
            Assert.Contains("[GNUPG:] DECRYPTION_INFO 2 9", stderr);
        }
        // P-384 ECDH recipient (SHA-384/AES-256 KDF parameters path) too.
        var p384 = KeyGenerator.Generate("P384 <p384@example.test>", KeyAlgorithm.EcdsaP384, "p".ToCharArray());
        gpg.Import(p384.ArmoredSecretKey, "p");
        var data = TestData.Random(70_000, 9);
        File.WriteAllBytes(gpg.PathOf("p384.pgp"), Encrypt(data, OpenPgpKeySet.LoadPublic(new[] { p384.ArmoredPublicKey }), false));
        Assert.Equal(data, gpg.Ok("p", "--decrypt", gpg.PathOf("p384.pgp")));
    }
}
