using System.Diagnostics;
using System.IO.Pipes;
using System.Security.Cryptography;
using HubDr.Engine.Crypto;
using Xunit;
using Xunit.Abstractions;

namespace HubDr.Engine.Tests.Crypto;

[Collection("CryptoMemory")]
public class StreamingTests
{
    private readonly CryptoFixture _f;
    private readonly ITestOutputHelper _out;

    public StreamingTests(CryptoFixture f, ITestOutputHelper output)
    {
        _f = f;
        _out = output;
    }

    /// <summary>
    /// 200 MB of generated plaintext is encrypted into an OS pipe while another thread decrypts from it (nothing is
    /// ever held whole); the managed heap stays a few MB and the round trip hashes equal.
    /// </summary>
    [Fact]
    public async Task EncryptDecrypt200MBThroughAPipeWithBoundedMemory()
    {
        const long total = 200L * 1024 * 1024;
        var block = TestData.Random(1 << 16, 3);
        var recipients = _f.Public(_f.Escrow);
        var secret = _f.Secret(_f.Escrow);

        GC.Collect();
        GC.WaitForPendingFinalizers();
        long baseline = GC.GetTotalMemory(true);
        long peak = 0;
        long allocatedBefore = GC.GetTotalAllocatedBytes();
        var sw = Stopwatch.StartNew();

        using var server = new AnonymousPipeServerStream(PipeDirection.Out);
        using var client = new AnonymousPipeClientStream(PipeDirection.In, server.ClientSafePipeHandle);

        var producer = Task.Run(() =>
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            using (var enc = OpenPgpEncryption.OpenEncrypt(server, recipients, "big.bin", DateTimeOffset.UtcNow))
            {
                for (long written = 0; written < total; written += block.Length)
                {
                    block[0] = (byte)(written >> 16); // vary the content a little
                    hash.AppendData(block);
                    enc.Write(block, 0, block.Length);
                }
            }
            server.Dispose(); // EOF for the reader
            return hash.GetHashAndReset();
        });

        var consumer = Task.Run(() =>
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            using var dec = OpenPgpEncryption.OpenDecrypt(client, secret, _f.PassFor, out _);
            var buf = new byte[1 << 16];
            long read = 0;
            int n, i = 0;
            while ((n = dec.Read(buf, 0, buf.Length)) > 0)
            {
                hash.AppendData(buf, 0, n);
                read += n;
                // Every 16 MB: the live managed heap (after a collection) while both ends are mid-stream.
                if (++i % 256 == 0)
                    peak = Math.Max(peak, GC.GetTotalMemory(true));
            }
            return (read, hash.GetHashAndReset());
        });

        var sourceHash = await producer;
        var (readBytes, resultHash) = await consumer;
        sw.Stop();
        var growth = peak - baseline;
        var allocated = GC.GetTotalAllocatedBytes() - allocatedBefore;
        _out.WriteLine($"200 MB encrypt+decrypt in {sw.Elapsed.TotalSeconds:F1} s, live heap peak growth {growth / 1048576.0:F1} MB, " +
                       $"allocated (short-lived garbage, mostly inside BouncyCastle) {allocated / 1048576.0:F0} MB");

        Assert.Equal(total, readBytes);
        Assert.Equal(sourceHash, resultHash);
        Assert.True(peak > 0);
        Assert.True(growth < 16L * 1024 * 1024, $"heap grew by {growth / 1048576.0:F1} MB while streaming 200 MB");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"took {sw.Elapsed}");
    }

    [Fact]
    public async Task SigningStreamSignsWhatPassesThroughInLargeWrites()
    {
        var data = TestData.Random(5 * 1024 * 1024, 17);
        var sink = new MemoryStream();
        byte[] sig;
        using (var s = new SigningStream(sink, _f.Secret(_f.Ops), _f.Ops.Key.KeyId, CryptoFixture.OpsPass.ToCharArray(), leaveOpen: true))
        {
            s.Write(data.AsSpan(0, 10));
            s.WriteByte(data[10]);
            s.Write(data, 11, 1 << 20);
            await s.WriteAsync(data.AsMemory(11 + (1 << 20), data.Length - 11 - (1 << 20)));
            Assert.Equal(data.Length, s.BytesWritten);
            sig = s.FinishSignature();
            Assert.Throws<InvalidOperationException>(() => s.FinishSignature());
        }
        Assert.True(sink.CanWrite);
        Assert.Equal(data, sink.ToArray());
        Assert.Equal(SignatureStatus.Valid, OpenPgpSignatures.Verify(new MemoryStream(data), sig, _f.Public(_f.Ops, _f.Escrow)).Status);
    }

    [Theory]
    [InlineData(KeyAlgorithm.EcdsaP256)] // the signature hashes with SHA-256: its hash state is shared
    [InlineData(KeyAlgorithm.EcdsaP384)] // SHA-384 signature: a separate SHA-256 runs beside it
    [InlineData(KeyAlgorithm.Rsa3072)]
    public void SigningAndVerifyingReportTheDataSha256OnceHashed(KeyAlgorithm algorithm)
    {
        var key = KeyGenerator.Generate("Sha <sha@example.test>", algorithm, "pw".ToCharArray());
        var data = TestData.Random(3 * 1024 * 1024 + 5, 23);
        var expected = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(data)).ToLowerInvariant();
        byte[] sig;
        using (var s = new SigningStream(Stream.Null, OpenPgpKeySet.LoadSecret([key.ArmoredSecretKey]), key.Key.KeyId, "pw".ToCharArray()))
        {
            Assert.Null(s.DataSha256);
            s.Write(data, 0, 100);
            s.Write(data.AsSpan(100));
            sig = s.FinishSignature();
            Assert.Equal(expected, s.DataSha256);
        }

        var trusted = OpenPgpKeySet.LoadPublic([key.ArmoredPublicKey]);
        var good = OpenPgpSignatures.Verify(new MemoryStream(data), sig, trusted, computeDataSha256: true);
        Assert.Equal(SignatureStatus.Valid, good.Status);
        Assert.Equal(expected, good.DataSha256);
        Assert.Null(OpenPgpSignatures.Verify(new MemoryStream(data), sig, trusted).DataSha256);

        // A tampered copy: BAD signature, and the hash reported is the tampered bytes' hash.
        var bad = (byte[])data.Clone();
        bad[^1] ^= 1;
        var badCheck = OpenPgpSignatures.Verify(new MemoryStream(bad), sig, trusted, computeDataSha256: true);
        Assert.Equal(SignatureStatus.BadSignature, badCheck.Status);
        Assert.Equal(Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(bad)).ToLowerInvariant(), badCheck.DataSha256);

        // An untrusted signer stops before reading: no hash is claimed.
        var untrusted = OpenPgpSignatures.Verify(new MemoryStream(data), sig, _f.Public(_f.Ops), computeDataSha256: true);
        Assert.Equal(SignatureStatus.UntrustedSigner, untrusted.Status);
        Assert.Null(untrusted.DataSha256);
    }

    [Fact]
    public void FastDecryptionIsAvailableWithThePinnedBouncyCastle()
    {
        // SeipdReader needs BouncyCastle's (private) session-key recovery; without it restores fall back to the slow path.
        Assert.True(SeipdReader.Available);
    }

    [Fact]
    public void RestoresDecryptWithoutAllocatingPerByte()
    {
        // The point of SeipdReader: BouncyCastle's decrypting stream allocates ~5 bytes per plaintext byte; ours reuses
        // pooled 64 KiB buffers. Fails if decryption silently falls back to BouncyCastle.
        var plain = TestData.Random(8 * 1024 * 1024, 99);
        var cipher = TestData.Encrypt(plain, _f.Public(_f.Escrow));
        var keys = _f.Secret(_f.Escrow);
        TestData.Decrypt(cipher, keys, _f.PassFor, out _); // warm-up: key unlock, JIT
        var buffer = new byte[1 << 16];
        long before = GC.GetAllocatedBytesForCurrentThread();
        using (var s = OpenPgpEncryption.OpenDecrypt(new MemoryStream(cipher), keys, _f.PassFor, out _))
        {
            while (s.Read(buffer, 0, buffer.Length) > 0)
            {
            }
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < plain.Length / 8, $"decrypting {plain.Length} bytes allocated {allocated} bytes");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(21)]
    [InlineData(65_536 - 30)]  // the literal packet header, prefix and MDC straddle the first 64 KiB chunk
    [InlineData(65_536)]
    [InlineData(65_536 + 17)]
    [InlineData(3 * 65_536 - 3)]
    [InlineData(1_000_003)]
    public void FastDecryptionRoundTripsAcrossChunkBoundariesForRsaAndEcdh(int size)
    {
        var plain = TestData.Random(size, size + 1);
        var cipher = TestData.Encrypt(plain, _f.Public(_f.Ops, _f.Escrow));
        Assert.Equal(plain, TestData.Decrypt(cipher, _f.Secret(_f.Ops), _f.PassFor, out _));
        Assert.Equal(plain, TestData.Decrypt(cipher, _f.Secret(_f.Escrow), _f.PassFor, out _));

        // Read in 1-byte steps too (the held-back MDC tail must never leak into the plaintext).
        using var s = OpenPgpEncryption.OpenDecrypt(new MemoryStream(cipher), _f.Secret(_f.Escrow), _f.PassFor, out _);
        var got = new MemoryStream();
        int b;
        while ((b = s.ReadByte()) >= 0)
            got.WriteByte((byte)b);
        Assert.Equal(plain, got.ToArray());
        Assert.Equal(0, s.Read(new byte[10], 0, 10));
    }
}
