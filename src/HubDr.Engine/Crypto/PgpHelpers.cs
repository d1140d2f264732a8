using System.Text;
using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Bcpg;
using Org.BouncyCastle.Bcpg.OpenPgp;
using Org.BouncyCastle.Bcpg.Sig;
using HubDr.Engine.IO;

namespace HubDr.Engine.Crypto;

/// <summary>Small shared helpers around BouncyCastle's OpenPGP API.</summary>
internal static class PgpHelpers
{
    internal const int BufferSize = 1 << 16; // 64 KiB: partial-length packet size and copy buffer

    internal static string Hex(byte[] bytes) => Convert.ToHexString(bytes);

    internal static string KeyIdHex(long keyId) => ((ulong)keyId).ToString("X16");

    /// <summary>Upper-case hex with spaces and an optional 0x prefix removed.</summary>
    internal static string NormalizeHex(string hex)
    {
        var s = new string(hex.Where(c => !char.IsWhiteSpace(c)).ToArray()).ToUpperInvariant();
        if (s.StartsWith("0X", StringComparison.Ordinal))
            s = s[2..];
        return s;
    }

    internal static byte[] PassphraseBytes(char[] passphrase) => Encoding.UTF8.GetBytes(passphrase);

    internal static string CurveName(DerObjectIdentifier oid) => oid.Id switch
    {
        "1.2.840.10045.3.1.7" => "NIST P-256",
        "1.3.132.0.34" => "NIST P-384",
        "1.3.132.0.35" => "NIST P-521",
        "1.3.36.3.3.2.8.1.1.7" => "brainpoolP256r1",
        "1.3.36.3.3.2.8.1.1.11" => "brainpoolP384r1",
        "1.3.36.3.3.2.8.1.1.13" => "brainpoolP512r1",
        "1.3.6.1.4.1.11591.15.1" => "Ed25519",
        "1.3.6.1.4.1.3029.1.5.1" => "Curve25519",
        _ => oid.Id,
    };

    internal static string DescribeAlgorithm(PgpPublicKey key)
    {
        switch (key.Algorithm)
        {
            case PublicKeyAlgorithmTag.RsaGeneral:
            case PublicKeyAlgorithmTag.RsaSign:
            case PublicKeyAlgorithmTag.RsaEncrypt:
                return "RSA " + key.BitStrength;
            case PublicKeyAlgorithmTag.ECDsa:
                return "ECDSA " + CurveOf(key);
            case PublicKeyAlgorithmTag.ECDH:
                return "ECDH " + CurveOf(key);
            case PublicKeyAlgorithmTag.EdDsa_Legacy:
                return "EdDSA " + CurveOf(key);
            default:
                return key.Algorithm + " " + key.BitStrength;
        }
    }

    private static string CurveOf(PgpPublicKey key) =>
        key.PublicKeyPacket.Key is ECPublicBcpgKey ec ? CurveName(ec.CurveOid) : "?";

    /// <summary>Key flags from the newest self-signature that carries them; null when none does.</summary>
    internal static int? KeyFlagsOf(PgpPublicKey key, PgpPublicKey primary)
    {
        IEnumerable<PgpSignature> sigs;
        if (key.IsMasterKey)
        {
            sigs = key.GetSignatures().Where(s =>
                s.KeyId == primary.KeyId &&
                (s.SignatureType == PgpSignature.DirectKey || PgpSignature.IsCertification(s.SignatureType)));
        }
        else
        {
            sigs = key.GetSignaturesOfType(PgpSignature.SubkeyBinding);
        }

        PgpSignature? best = null;
        foreach (var s in sigs)
        {
            var hashed = s.GetHashedSubPackets();
            if (hashed is null || !hashed.HasSubpacket(SignatureSubpacketTag.KeyFlags))
                continue;
            if (best is null || s.CreationTime > best.CreationTime)
                best = s;
        }
        return best?.GetHashedSubPackets().GetKeyFlags();
    }

    internal static bool IsUsable(PgpPublicKey key)
    {
        if (key.HasRevocation())
            return false;
        long valid = key.GetValidSeconds();
        if (valid > 0 && key.CreationTime.AddSeconds(valid) < DateTime.UtcNow)
            return false;
        return true;
    }

    internal static bool CanSign(PgpPublicKey key, PgpPublicKey primary)
    {
        var flags = KeyFlagsOf(key, primary);
        if (flags.HasValue)
            return (flags.Value & KeyFlags.SignData) != 0;
        // No key flags: fall back on what the algorithm can do.
        return key.Algorithm is PublicKeyAlgorithmTag.RsaGeneral or PublicKeyAlgorithmTag.RsaSign
            or PublicKeyAlgorithmTag.ECDsa or PublicKeyAlgorithmTag.EdDsa_Legacy or PublicKeyAlgorithmTag.Dsa
            && key.IsMasterKey;
    }

    internal static bool CanEncrypt(PgpPublicKey key, PgpPublicKey primary)
    {
        if (!key.IsEncryptionKey)
            return false;
        var flags = KeyFlagsOf(key, primary);
        if (flags.HasValue)
            return (flags.Value & (KeyFlags.EncryptComms | KeyFlags.EncryptStorage)) != 0;
        return true;
    }

    /// <summary>
    /// The key to sign with: the key named by <paramref name="preferredKeyId"/> if it is a signing-capable key of
    /// this ring, else the newest usable signing subkey, else the primary key if it may sign.
    /// </summary>
    internal static PgpPublicKey? SelectSigningKey(PgpPublicKeyRing ring, long? preferredKeyId)
    {
        var primary = ring.GetPublicKey();
        var candidates = ring.GetPublicKeys().Where(k => IsUsable(k) && CanSign(k, primary)).ToList();
        if (preferredKeyId.HasValue)
        {
            var exact = candidates.FirstOrDefault(k => k.KeyId == preferredKeyId.Value);
            if (exact is not null)
                return exact;
        }
        return candidates.Where(k => !k.IsMasterKey).OrderByDescending(k => k.CreationTime).FirstOrDefault()
            ?? candidates.FirstOrDefault(k => k.IsMasterKey);
    }

    /// <summary>The newest usable encryption subkey (or an encryption-capable primary key as last resort).</summary>
    internal static PgpPublicKey? SelectEncryptionKey(PgpPublicKeyRing ring)
    {
        var primary = ring.GetPublicKey();
        var candidates = ring.GetPublicKeys().Where(k => IsUsable(k) && CanEncrypt(k, primary)).ToList();
        return candidates.Where(k => !k.IsMasterKey).OrderByDescending(k => k.CreationTime).FirstOrDefault()
            ?? candidates.FirstOrDefault(k => k.IsMasterKey);
    }

    internal static string Armor(Action<Stream> write)
    {
        using var ms = new MemoryStream();
        using (var armor = new ArmoredOutputStream(ms, addVersionHeader: false))
        {
            write(armor);
        }
        return Encoding.ASCII.GetString(ms.ToArray());
    }

    /// <summary>True when <paramref name="ex"/> is the kind of exception BouncyCastle throws for bad input.</summary>
    internal static bool IsBadInput(Exception ex) =>
        ex is PgpException or IOException or EndOfStreamException or InvalidDataException or ArgumentException
            or InvalidOperationException or FormatException or OverflowException or IndexOutOfRangeException
            or NullReferenceException or InvalidCastException or Org.BouncyCastle.Crypto.CryptoException;
}

/// <summary>Stream wrapper whose Dispose does not dispose the wrapped stream.</summary>
internal sealed class NonClosingStream : Stream
{
    private readonly Stream _inner;

    public NonClosingStream(Stream inner) => _inner = inner;

    public override bool CanRead => _inner.CanRead;
    public override bool CanSeek => false;
    public override bool CanWrite => _inner.CanWrite;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() => _inner.Flush();
    public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);
    public override int Read(Span<byte> buffer) => _inner.Read(buffer);
    public override int ReadByte() => _inner.ReadByte();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => _inner.Write(buffer, offset, count);
    public override void Write(ReadOnlySpan<byte> buffer) => _inner.Write(buffer);
    public override void WriteByte(byte value) => _inner.WriteByte(value);
}

/// <summary>Detects binary vs ASCII-armored OpenPGP on a forward-only stream (BouncyCastle's needs seeking).</summary>
internal static class PgpDecoder
{
    internal static Stream Open(Stream input)
    {
        int first = input.ReadByte();
        if (first < 0)
            throw new EndOfStreamException("the input is empty");
        var replay = new PrefixStream((byte)first, input);
        if ((first & 0x80) != 0)
            return replay;
        return new ArmoredInputStream(replay);
    }

    private sealed class PrefixStream : ReadOnlyStream
    {
        private readonly Stream _inner;
        private int _prefix;

        public PrefixStream(byte prefix, Stream inner)
        {
            _prefix = prefix;
            _inner = inner;
        }

        public override int Read(Span<byte> buffer)
        {
            if (buffer.Length == 0)
                return 0;
            if (_prefix >= 0)
            {
                buffer[0] = (byte)_prefix;
                _prefix = -1;
                return 1;
            }
            return _inner.Read(buffer);
        }

        public override int ReadByte()
        {
            if (_prefix >= 0)
            {
                int b = _prefix;
                _prefix = -1;
                return b;
            }
            return _inner.ReadByte();
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                _inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
