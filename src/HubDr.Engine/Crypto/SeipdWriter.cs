using System.Security.Cryptography;
using System.Text;
using Org.BouncyCastle.Bcpg;
using Org.BouncyCastle.Bcpg.OpenPgp;
using Org.BouncyCastle.Crypto.Encodings;
using Org.BouncyCastle.Crypto.Engines;
using Org.BouncyCastle.Crypto.Generators;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Security;
using HubDr.Engine.IO;

namespace HubDr.Engine.Crypto;

/// <summary>
/// Fast OpenPGP encryption writer: PKESK v3 packets (RSA PKCS#1 v1.5, RFC 6637 ECDH on NIST/brainpool curves) built
/// with BouncyCastle primitives, then SEIPD v1 whose AES-256-CFB and MDC SHA-1 run on .NET (OpenSSL, AES-NI/SHA-NI)
/// in 64 KiB chunks. BouncyCastle's PgpEncryptedDataGenerator does the same at ~60 MB/s; this runs several times
/// faster. The output is byte-for-byte the same format (checked against gpg and BouncyCastle in the tests).
/// </summary>
internal sealed class SeipdWriter : WriteOnlyStream
{
    private const int Chunk = 1 << 16; // partial body length 2^16

    private readonly PartialPacketWriter _outer;   // tag 18
    private readonly Aes _aes;
    private readonly IncrementalHash _mdc;
    private readonly byte[] _plain = new byte[Chunk];
    private readonly byte[] _cipher = new byte[Chunk];
    private readonly byte[] _iv = new byte[16];
    private int _plainLength;
    private PartialPacketWriter? _literal;          // tag 11, writes into this (the encryption layer)
    private bool _finished;

    /// <summary>True when every recipient key can be handled by this writer.</summary>
    internal static bool Supports(IEnumerable<PgpPublicKey> recipients) => recipients.All(k =>
        k.Algorithm is PublicKeyAlgorithmTag.RsaGeneral or PublicKeyAlgorithmTag.RsaEncrypt
        || (k.Algorithm == PublicKeyAlgorithmTag.ECDH && k.GetKey() is ECPublicKeyParameters
            && k.PublicKeyPacket.Key is ECDHPublicBcpgKey e
            && e.HashAlgorithm is HashAlgorithmTag.Sha256 or HashAlgorithmTag.Sha384 or HashAlgorithmTag.Sha512
            && e.SymmetricKeyAlgorithm is SymmetricKeyAlgorithmTag.Aes128 or SymmetricKeyAlgorithmTag.Aes192 or SymmetricKeyAlgorithmTag.Aes256));

    internal SeipdWriter(Stream output, IReadOnlyList<PgpPublicKey> recipients, string fileName, DateTimeOffset modified)
    {
        var sessionKey = RandomNumberGenerator.GetBytes(32);
        var random = new SecureRandom();
        foreach (var r in recipients)
            WritePacket(output, 1, Pkesk(r, sessionKey, random));

        _aes = Aes.Create();
        _aes.Key = sessionKey;
        CryptographicOperations.ZeroMemory(sessionKey);
        _mdc = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);

        _outer = new PartialPacketWriter(output, 18);
        _outer.Write(new byte[] { 1 }); // SEIPD version 1

        // Random prefix: one block of random data, its last two bytes repeated.
        var prefix = new byte[18];
        RandomNumberGenerator.Fill(prefix.AsSpan(0, 16));
        prefix[16] = prefix[14];
        prefix[17] = prefix[15];
        EncryptLayerWrite(prefix);

        _literal = new PartialPacketWriter(new LayerSink(this), 11);
        var name = Encoding.UTF8.GetBytes(fileName ?? string.Empty);
        if (name.Length > 255)
            name = name[..255];
        long t = Math.Clamp(modified.ToUnixTimeSeconds(), 0, uint.MaxValue);
        var header = new byte[2 + name.Length + 4];
        header[0] = (byte)'b';
        header[1] = (byte)name.Length;
        name.CopyTo(header, 2);
        header[^4] = (byte)(t >> 24);
        header[^3] = (byte)(t >> 16);
        header[^2] = (byte)(t >> 8);
        header[^1] = (byte)t;
        _literal.Write(header);
    }

    private PartialPacketWriter Literal => _literal ?? throw new ObjectDisposedException(nameof(SeipdWriter));

    public override bool CanWrite => !_finished;
    public override void Write(ReadOnlySpan<byte> buffer) => Literal.Write(buffer);
    public override void WriteByte(byte value) => Literal.Write(new ReadOnlySpan<byte>(in value));

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_finished)
        {
            _finished = true;
            Literal.Finish();
            _literal = null;
            // MDC packet: tag 19, length 20, SHA-1 over everything before it including these two bytes.
            EncryptLayerWrite(new byte[] { 0xD3, 0x14 });
            Span<byte> hash = stackalloc byte[20];
            _mdc.GetHashAndReset(hash);
            EncryptLayerWrite(hash);
            FlushCipher(final: true);
            _outer.Finish();
            _aes.Dispose();
            _mdc.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <summary>Plaintext of the encrypted layer: MDC-hashed, CFB-encrypted in whole 64 KiB chunks.</summary>
    private void EncryptLayerWrite(ReadOnlySpan<byte> data)
    {
        _mdc.AppendData(data);
        while (!data.IsEmpty)
        {
            int n = Math.Min(Chunk - _plainLength, data.Length);
            data[..n].CopyTo(_plain.AsSpan(_plainLength));
            _plainLength += n;
            data = data[n..];
            if (_plainLength == Chunk)
                FlushCipher(final: false);
        }
    }

    private void FlushCipher(bool final)
    {
        if (_plainLength == 0)
            return;
        // CFB-128 is a stream mode: a zero-padded tail encrypts to the right prefix. Chunks chain through the IV.
        int padded = (_plainLength + 15) & ~15;
        _plain.AsSpan(_plainLength, padded - _plainLength).Clear();
        _aes.EncryptCfb(_plain.AsSpan(0, padded), _iv, _cipher.AsSpan(0, padded), PaddingMode.None, 128);
        if (!final)
            _cipher.AsSpan(padded - 16, 16).CopyTo(_iv);
        _outer.Write(_cipher.AsSpan(0, _plainLength));
        _plainLength = 0;
    }

    private sealed class LayerSink : WriteOnlyStream
    {
        private readonly SeipdWriter _owner;
        public LayerSink(SeipdWriter owner) => _owner = owner;
        public override void Write(ReadOnlySpan<byte> buffer) => _owner.EncryptLayerWrite(buffer);
    }

    /// <summary>New-format packet with 64 KiB partial body lengths and a definite final length.</summary>
    private sealed class PartialPacketWriter
    {
        private readonly Stream _output;
        private readonly byte[] _buffer = new byte[Chunk];
        private int _length;

        public PartialPacketWriter(Stream output, int tag)
        {
            _output = output;
            _output.WriteByte((byte)(0xC0 | tag));
        }

        public void Write(ReadOnlySpan<byte> data)
        {
            while (!data.IsEmpty)
            {
                if (_length == Chunk)
                {
                    _output.WriteByte(0xE0 | 16); // partial length 2^16
                    _output.Write(_buffer, 0, Chunk);
                    _length = 0;
                }
                int n = Math.Min(Chunk - _length, data.Length);
                data[..n].CopyTo(_buffer.AsSpan(_length));
                _length += n;
                data = data[n..];
            }
        }

        public void Finish()
        {
            WriteLength(_output, _length);
            _output.Write(_buffer, 0, _length);
        }
    }

    private static void WriteLength(Stream output, int length)
    {
        if (length < 192)
        {
            output.WriteByte((byte)length);
        }
        else if (length < 8384)
        {
            int l = length - 192;
            output.WriteByte((byte)((l >> 8) + 192));
            output.WriteByte((byte)l);
        }
        else
        {
            output.WriteByte(0xFF);
            output.WriteByte((byte)(length >> 24));
            output.WriteByte((byte)(length >> 16));
            output.WriteByte((byte)(length >> 8));
            output.WriteByte((byte)length);
        }
    }

    private static void WritePacket(Stream output, int tag, byte[] body)
    {
        output.WriteByte((byte)(0xC0 | tag));
        WriteLength(output, body.Length);
        output.Write(body);
    }

    private static void WriteMpi(Stream s, ReadOnlySpan<byte> magnitude)
    {
        int i = 0;
        while (i < magnitude.Length && magnitude[i] == 0)
            i++;
        magnitude = magnitude[i..];
        int bits = magnitude.IsEmpty ? 0 : (magnitude.Length - 1) * 8 + (32 - System.Numerics.BitOperations.LeadingZeroCount((uint)magnitude[0]));
        s.WriteByte((byte)(bits >> 8));
        s.WriteByte((byte)bits);
        s.Write(magnitude);
    }

    /// <summary>PKESK v3 body for one recipient key.</summary>
    private static byte[] Pkesk(PgpPublicKey key, byte[] sessionKey, SecureRandom random)
    {
        // m = symmetric algorithm id || session key || 2-byte checksum (sum of key bytes mod 65536)
        var m = new byte[1 + sessionKey.Length + 2];
        m[0] = (byte)SymmetricKeyAlgorithmTag.Aes256;
        sessionKey.CopyTo(m, 1);
        int sum = 0;
        foreach (var b in sessionKey)
            sum += b;
        m[^2] = (byte)(sum >> 8);
        m[^1] = (byte)sum;

        var body = new MemoryStream();
        body.WriteByte(3);
        for (int i = 7; i >= 0; i--)
            body.WriteByte((byte)(key.KeyId >> (i * 8)));
        body.WriteByte((byte)key.Algorithm);
        try
        {
            if (key.Algorithm == PublicKeyAlgorithmTag.ECDH)
            {
                var pub = (ECPublicKeyParameters)key.GetKey();
                var kdf = (ECDHPublicBcpgKey)key.PublicKeyPacket.Key;
                var gen = new ECKeyPairGenerator();
                gen.Init(new ECKeyGenerationParameters(pub.Parameters, random));
                var eph = gen.GenerateKeyPair();
                var shared = pub.Q.Multiply(((ECPrivateKeyParameters)eph.Private).D).Normalize();
                var s = shared.AffineXCoord.GetEncoded();

                // RFC 6637 section 8: KDF parameters
                var oid = kdf.CurveOid.GetEncoded(); // 06 len contents
                var param = new MemoryStream();
                param.Write(oid, 1, oid.Length - 1); // length-prefixed OID contents
                param.WriteByte((byte)PublicKeyAlgorithmTag.ECDH);
                param.Write(new byte[] { 3, 1, (byte)kdf.HashAlgorithm, (byte)kdf.SymmetricKeyAlgorithm });
                param.Write(Encoding.ASCII.GetBytes("Anonymous Sender    "));
                param.Write(key.GetFingerprint());
                using var h = IncrementalHash.CreateHash(kdf.HashAlgorithm switch
                {
                    HashAlgorithmTag.Sha256 => HashAlgorithmName.SHA256,
                    HashAlgorithmTag.Sha384 => HashAlgorithmName.SHA384,
                    _ => HashAlgorithmName.SHA512,
                });
                h.AppendData(new byte[] { 0, 0, 0, 1 });
                h.AppendData(s);
                h.AppendData(param.ToArray());
                var z = h.GetHashAndReset();
                int kekLength = kdf.SymmetricKeyAlgorithm switch
                {
                    SymmetricKeyAlgorithmTag.Aes128 => 16,
                    SymmetricKeyAlgorithmTag.Aes192 => 24,
                    _ => 32,
                };

                // PKCS#5 padding to a multiple of 8, then AES key wrap (RFC 3394).
                int pad = 8 - m.Length % 8;
                var padded = new byte[m.Length + pad];
                m.CopyTo(padded, 0);
                padded.AsSpan(m.Length).Fill((byte)pad);
                var wrap = new AesWrapEngine();
                wrap.Init(true, new KeyParameter(z, 0, kekLength));
                var wrapped = wrap.Wrap(padded, 0, padded.Length);
                CryptographicOperations.ZeroMemory(padded);
                CryptographicOperations.ZeroMemory(z);

                WriteMpi(body, ((ECPublicKeyParameters)eph.Public).Q.GetEncoded(false));
                body.WriteByte((byte)wrapped.Length);
                body.Write(wrapped);
            }
            else
            {
                var rsa = new Pkcs1Encoding(new RsaBlindedEngine());
                rsa.Init(true, new ParametersWithRandom(key.GetKey(), random));
                WriteMpi(body, rsa.ProcessBlock(m, 0, m.Length));
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(m);
        }
        return body.ToArray();
    }
}
