using System.Security.Cryptography;
using Org.BouncyCastle.Asn1.Nist;
using Org.BouncyCastle.Bcpg;
using Org.BouncyCastle.Bcpg.OpenPgp;
using Org.BouncyCastle.Crypto.Digests;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Crypto.Signers;
using Org.BouncyCastle.Security;
using BcBigInteger = Org.BouncyCastle.Math.BigInteger;

namespace HubDr.Engine.Crypto;

/// <summary>
/// Produces one v4 detached binary-document signature. For RSA and ECDSA keys the data is hashed with .NET's
/// SHA-256/512 (OpenSSL, SHA-NI/AVX2: ~1 GB/s) and only the final digest is signed with BouncyCastle; BouncyCastle's
/// own PgpSignatureGenerator hashes every byte twice with a managed digest (~80 MB/s). Other key types (EdDSA)
/// fall back to PgpSignatureGenerator.
/// </summary>
internal sealed class DetachedSigner : IDisposable
{
    private readonly PgpPrivateKey _privateKey;
    private readonly PgpPublicKey _publicKey;
    private readonly HashAlgorithmTag _hashTag;
    private readonly IncrementalHash? _hash;
    private readonly IncrementalHash? _dataSha256; // only when the signature hash is not SHA-256 on .NET
    private readonly PgpSignatureGenerator? _fallback;
    private bool _finished;

    internal DetachedSigner(PgpPrivateKey privateKey, PgpPublicKey publicKey, HashAlgorithmTag hashTag)
    {
        _privateKey = privateKey;
        _publicKey = publicKey;
        _hashTag = hashTag;
        bool fast = publicKey.Algorithm is PublicKeyAlgorithmTag.RsaGeneral or PublicKeyAlgorithmTag.RsaSign
            or PublicKeyAlgorithmTag.ECDsa;
        if (fast)
        {
            _hash = IncrementalHash.CreateHash(hashTag switch
            {
                HashAlgorithmTag.Sha256 => HashAlgorithmName.SHA256,
                HashAlgorithmTag.Sha384 => HashAlgorithmName.SHA384,
                HashAlgorithmTag.Sha512 => HashAlgorithmName.SHA512,
                _ => throw new ArgumentOutOfRangeException(nameof(hashTag), hashTag, "SHA-256, SHA-384 or SHA-512 only"),
            });
        }
        else
        {
            _fallback = new PgpSignatureGenerator(publicKey.Algorithm, hashTag);
            _fallback.InitSign(PgpSignature.BinaryDocument, privateKey);
            var hashed = new PgpSignatureSubpacketGenerator();
            hashed.SetSignatureCreationTime(false, DateTime.UtcNow);
            hashed.SetIssuerFingerprint(false, publicKey);
            _fallback.SetHashedSubpackets(hashed.Generate());
            var unhashed = new PgpSignatureSubpacketGenerator();
            unhashed.SetIssuerKeyID(false, publicKey.KeyId);
            _fallback.SetUnhashedSubpackets(unhashed.Generate());
        }

        if (_hash is null || hashTag != HashAlgorithmTag.Sha256)
            _dataSha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    }

    /// <summary>
    /// SHA-256 of the signed data (what the catalog records), available after <see cref="Finish"/>. When the signature
    /// itself hashes with SHA-256 this is the same hash state before the trailer, so the data is hashed once, not twice.
    /// </summary>
    internal byte[]? DataSha256 { get; private set; }

    internal void Update(ReadOnlySpan<byte> data)
    {
        if (_finished)
            throw new InvalidOperationException("The signature was already finished.");
        if (_hash is not null)
            _hash.AppendData(data);
        else
            _fallback!.Update(data);
        _dataSha256?.AppendData(data);
    }

    internal void Update(byte b) => Update(new ReadOnlySpan<byte>(in b));

    /// <summary>Finishes and returns the signature packet (binary).</summary>
    internal byte[] Finish()
    {
        if (_finished)
            throw new InvalidOperationException("The signature was already finished.");
        _finished = true;
        DataSha256 = _dataSha256?.GetHashAndReset() ?? _hash!.GetCurrentHash();
        if (_fallback is not null)
            return _fallback.Generate().GetEncoded();

        var hashedGen = new PgpSignatureSubpacketGenerator();
        hashedGen.SetSignatureCreationTime(false, DateTime.UtcNow);
        hashedGen.SetIssuerFingerprint(false, _publicKey);
        var hashed = hashedGen.Generate().ToArray();
        var unhashedGen = new PgpSignatureSubpacketGenerator();
        unhashedGen.SetIssuerKeyID(false, _publicKey.KeyId);
        var unhashed = unhashedGen.Generate().ToArray();

        // RFC 4880 5.2.4: hash(data || version..hashed subpackets || 0x04 0xFF || 4-byte length of that part)
        var sub = new MemoryStream();
        foreach (var p in hashed)
            p.Encode(sub);
        var subBytes = sub.ToArray();
        var head = new byte[6 + subBytes.Length];
        head[0] = 4;
        head[1] = (byte)PgpSignature.BinaryDocument;
        head[2] = (byte)_publicKey.Algorithm;
        head[3] = (byte)_hashTag;
        head[4] = (byte)(subBytes.Length >> 8);
        head[5] = (byte)subBytes.Length;
        subBytes.CopyTo(head, 6);
        var trailer = new byte[] { 4, 0xFF, (byte)(head.Length >> 24), (byte)(head.Length >> 16), (byte)(head.Length >> 8), (byte)head.Length };
        _hash!.AppendData(head);
        _hash.AppendData(trailer);
        var digest = _hash.GetHashAndReset();

        MPInteger[] mpis;
        if (_publicKey.Algorithm == PublicKeyAlgorithmTag.ECDsa)
        {
            var signer = new ECDsaSigner();
            signer.Init(true, new ParametersWithRandom(_privateKey.Key, new SecureRandom()));
            var rs = signer.GenerateSignature(digest);
            mpis = new[] { new MPInteger(rs[0]), new MPInteger(rs[1]) };
        }
        else
        {
            var oid = _hashTag switch
            {
                HashAlgorithmTag.Sha256 => NistObjectIdentifiers.IdSha256,
                HashAlgorithmTag.Sha384 => NistObjectIdentifiers.IdSha384,
                _ => NistObjectIdentifiers.IdSha512,
            };
            var signer = new RsaDigestSigner(new NullDigest(), oid);
            signer.Init(true, _privateKey.Key);
            signer.BlockUpdate(digest);
            mpis = new[] { new MPInteger(new BcBigInteger(1, signer.GenerateSignature())) };
        }

        var packet = new SignaturePacket(4, PgpSignature.BinaryDocument, _publicKey.KeyId, _publicKey.Algorithm, _hashTag,
            hashed, unhashed, digest[..2], mpis);
        var ms = new MemoryStream();
        using (var bcpg = new BcpgOutputStream(ms))
        {
            packet.Encode(bcpg);
        }
        return ms.ToArray();
    }

    public void Dispose()
    {
        _hash?.Dispose();
        _dataSha256?.Dispose();
    }
}

/// <summary>Fast verification of RSA/ECDSA signatures: .NET hashes the data, BouncyCastle checks the digest.</summary>
internal static class FastVerifier
{
    /// <summary>Null when this signature kind is not handled here (caller falls back to BouncyCastle).</summary>
    internal static IncrementalHash? CreateHash(PgpSignature sig, PgpPublicKey key)
    {
        if (sig.Version != 4 || key.Algorithm is not (PublicKeyAlgorithmTag.RsaGeneral or PublicKeyAlgorithmTag.RsaSign or PublicKeyAlgorithmTag.ECDsa))
            return null;
        return sig.HashAlgorithm switch
        {
            HashAlgorithmTag.Sha256 => IncrementalHash.CreateHash(HashAlgorithmName.SHA256),
            HashAlgorithmTag.Sha384 => IncrementalHash.CreateHash(HashAlgorithmName.SHA384),
            HashAlgorithmTag.Sha512 => IncrementalHash.CreateHash(HashAlgorithmName.SHA512),
            _ => null,
        };
    }

    internal static bool Verify(PgpSignature sig, PgpPublicKey key, IncrementalHash hash)
    {
        // BouncyCastle's trailer is the complete v4 trailer: version .. hashed subpackets || 0x04 0xFF || length.
        hash.AppendData(sig.GetSignatureTrailer());
        var digest = hash.GetHashAndReset();
        var prefix = sig.GetDigestPrefix();
        if (prefix is { Length: 2 } && (prefix[0] != digest[0] || prefix[1] != digest[1]))
            return false;

        if (key.Algorithm == PublicKeyAlgorithmTag.ECDsa)
        {
            var seq = Org.BouncyCastle.Asn1.Asn1Sequence.GetInstance(sig.GetSignature());
            var r = Org.BouncyCastle.Asn1.DerInteger.GetInstance(seq[0]).PositiveValue;
            var s = Org.BouncyCastle.Asn1.DerInteger.GetInstance(seq[1]).PositiveValue;
            var verifier = new ECDsaSigner();
            verifier.Init(false, key.GetKey());
            return verifier.VerifySignature(digest, r, s);
        }

        var oid = sig.HashAlgorithm switch
        {
            HashAlgorithmTag.Sha256 => NistObjectIdentifiers.IdSha256,
            HashAlgorithmTag.Sha384 => NistObjectIdentifiers.IdSha384,
            _ => NistObjectIdentifiers.IdSha512,
        };
        var rsa = new RsaDigestSigner(new NullDigest(), oid);
        rsa.Init(false, key.GetKey());
        rsa.BlockUpdate(digest);
        return rsa.VerifySignature(sig.GetSignature());
    }
}
