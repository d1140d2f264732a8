using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using Org.BouncyCastle.Bcpg;
using Org.BouncyCastle.Bcpg.OpenPgp;
using HubDr.Engine.IO;

namespace HubDr.Engine.Crypto;

public enum SignatureStatus
{
    Valid,
    BadSignature,
    UntrustedSigner,
    Malformed,
    Missing,
}

/// <summary>Outcome of a detached signature check. <see cref="Reason"/> is a sentence for the operator.</summary>
public sealed record SignatureCheck(SignatureStatus Status, string? SignerKeyId, string? SignerFingerprint, DateTimeOffset? SignedAt, string Reason)
{
    public bool IsValid => Status == SignatureStatus.Valid;

    /// <summary>Lower-case hex SHA-256 of the data, when asked for and the data was read to its end (Valid or BadSignature).</summary>
    public string? DataSha256 { get; init; }
}

/// <summary>
/// Write-only pass-through stream: forwards every byte to the inner stream and hashes it for a detached
/// OpenPGP binary-document signature, produced by <see cref="FinishSignature"/>.
/// </summary>
public sealed class SigningStream : WriteOnlyStream
{
    private readonly Stream _inner;
    private readonly bool _leaveOpen;
    private DetachedSigner? _generator;
    private long _length;

    public SigningStream(Stream inner, OpenPgpKeySet secretKeys, string signerFingerprintOrKeyId, char[] passphrase, bool leaveOpen = true)
    {
        ArgumentNullException.ThrowIfNull(inner);
        _inner = inner;
        _leaveOpen = leaveOpen;
        _generator = OpenPgpSignatures.CreateGenerator(secretKeys, signerFingerprintOrKeyId, passphrase);
    }

    /// <summary>Bytes written so far.</summary>
    public long BytesWritten => _length;

    private DetachedSigner Generator =>
        _generator ?? throw new InvalidOperationException("FinishSignature() was already called on this SigningStream.");

    public override long Length => _length;
    public override long Position { get => _length; set => throw new NotSupportedException(); }
    public override void Flush() => _inner.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);

    public override void Write(byte[] buffer, int offset, int count)
    {
        ValidateBufferArguments(buffer, offset, count);
        Generator.Update(buffer.AsSpan(offset, count));
        _inner.Write(buffer, offset, count);
        _length += count;
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Generator.Update(buffer);
        _inner.Write(buffer);
        _length += buffer.Length;
    }

    public override void WriteByte(byte value)
    {
        Generator.Update(value);
        _inner.WriteByte(value);
        _length++;
    }

    public override async Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        ValidateBufferArguments(buffer, offset, count);
        Generator.Update(buffer.AsSpan(offset, count));
        await _inner.WriteAsync(buffer.AsMemory(offset, count), cancellationToken).ConfigureAwait(false);
        _length += count;
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Generator.Update(buffer.Span);
        await _inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        _length += buffer.Length;
    }

    /// <summary>Lower-case hex SHA-256 of everything written; set by <see cref="FinishSignature"/> (shares the
    /// signature's own hash when that is SHA-256, so callers need not hash the same bytes again).</summary>
    public string? DataSha256 { get; private set; }

    /// <summary>ASCII-armored detached binary-document signature over everything written. Call once.</summary>
    public byte[] FinishSignature()
    {
        var signer = Generator;
        _generator = null;
        var packet = signer.Finish();
        DataSha256 = Convert.ToHexString(signer.DataSha256!).ToLowerInvariant();
        signer.Dispose();
        return OpenPgpSignatures.ArmorSignature(packet);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _generator?.Dispose();
            _generator = null;
            if (!_leaveOpen)
                _inner.Dispose();
        }
        base.Dispose(disposing);
    }
}

/// <summary>Detached OpenPGP signatures: create and verify against a set of named trusted signer keys.</summary>
public static class OpenPgpSignatures
{
    public static byte[] SignDetached(ReadOnlySpan<byte> data, OpenPgpKeySet secretKeys, string signerFingerprintOrKeyId, char[] passphrase)
    {
        using var signer = CreateGenerator(secretKeys, signerFingerprintOrKeyId, passphrase);
        signer.Update(data);
        return ArmorSignature(signer.Finish());
    }

    /// <summary>
    /// Verifies a detached signature (armored or binary) over <paramref name="data"/>, read to its end in 64 KiB chunks.
    /// Only keys in <paramref name="trustedSigners"/> count. Bad input is reported, never thrown; an I/O error
    /// reading <paramref name="data"/> itself does propagate.
    /// </summary>
    /// <param name="computeDataSha256">Also report the data's SHA-256 (<see cref="SignatureCheck.DataSha256"/>); shares the
    /// signature's own hash when that is SHA-256, so the caller need not read or hash the data a second time.</param>
    public static SignatureCheck Verify(Stream data, byte[]? signature, OpenPgpKeySet trustedSigners, bool computeDataSha256 = false)
    {
        ArgumentNullException.ThrowIfNull(data);
        trustedSigners ??= OpenPgpKeySet.Empty;
        if (signature is null || signature.Length == 0)
            return new SignatureCheck(SignatureStatus.Missing, null, null, null,
                "There is no signature for this archive, so its origin cannot be proven. Do not restore it unless you trust where it came from.");

        List<PgpSignature> sigs;
        try
        {
            sigs = ParseSignatures(signature);
        }
        catch (Exception ex) when (PgpHelpers.IsBadInput(ex))
        {
            return new SignatureCheck(SignatureStatus.Malformed, null, null, null,
                $"The signature file is not a valid OpenPGP signature ({ex.Message}).");
        }
        if (sigs.Count == 0)
            return new SignatureCheck(SignatureStatus.Malformed, null, null, null,
                "The signature file contains no OpenPGP signature packet.");

        // Pick the first signature whose issuer is trusted; otherwise report the (first) untrusted issuer.
        foreach (var sig in sigs)
        {
            var issuerId = PgpHelpers.KeyIdHex(IssuerKeyId(sig));
            var signedAt = SignedAt(sig);
            var key = trustedSigners.FindByKeyId(IssuerKeyId(sig));
            if (key is null)
                continue;
            var signingKey = key.PublicRing.GetPublicKey(IssuerKeyId(sig));
            if (sig.SignatureType != PgpSignature.BinaryDocument)
                return new SignatureCheck(SignatureStatus.Malformed, issuerId, key.Fingerprint, signedAt,
                    $"The signature has type 0x{sig.SignatureType:X2}, not a detached binary-document signature (0x00).");
            if (sig.HashAlgorithm is HashAlgorithmTag.MD5 or HashAlgorithmTag.Sha1 or HashAlgorithmTag.RipeMD160 or HashAlgorithmTag.MD2)
                return new SignatureCheck(SignatureStatus.BadSignature, issuerId, key.Fingerprint, signedAt,
                    $"The signature uses the weak hash algorithm {sig.HashAlgorithm}; HubDr accepts SHA-256 or stronger only.");
            if (!PgpHelpers.CanSign(signingKey, key.PublicRing.GetPublicKey()))
                return new SignatureCheck(SignatureStatus.BadSignature, issuerId, key.Fingerprint, signedAt,
                    $"Key {issuerId} of {key.Fingerprint} is not a signing key, so its signature does not count.");
            if (signingKey.HasRevocation())
                return new SignatureCheck(SignatureStatus.BadSignature, issuerId, key.Fingerprint, signedAt,
                    $"Key {issuerId} of {key.Fingerprint} has been revoked.");

            bool ok;
            string? dataSha256 = null;
            try
            {
                using var fast = FastVerifier.CreateHash(sig, signingKey);
                using var extra = computeDataSha256 && (fast is null || sig.HashAlgorithm != HashAlgorithmTag.Sha256)
                    ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
                if (fast is null)
                    sig.InitVerify(signingKey);
                var buffer = ArrayPool<byte>.Shared.Rent(PgpHelpers.BufferSize);
                try
                {
                    int n;
                    while ((n = data.Read(buffer, 0, PgpHelpers.BufferSize)) > 0)
                    {
                        if (fast is not null)
                            fast.AppendData(buffer, 0, n);
                        else
                            sig.Update(buffer, 0, n);
                        extra?.AppendData(buffer, 0, n);
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
                if (computeDataSha256)
                    dataSha256 = Convert.ToHexString(extra?.GetHashAndReset() ?? fast!.GetCurrentHash()).ToLowerInvariant();
                ok = fast is not null ? FastVerifier.Verify(sig, signingKey, fast) : sig.Verify();
            }
            catch (Exception ex) when (ex is PgpException or Org.BouncyCastle.Crypto.CryptoException or ArgumentException or InvalidCastException or IndexOutOfRangeException)
            {
                return new SignatureCheck(SignatureStatus.Malformed, issuerId, key.Fingerprint, signedAt,
                    $"The signature by {issuerId} could not be checked ({ex.Message}).");
            }
            return ok
                ? new SignatureCheck(SignatureStatus.Valid, issuerId, key.Fingerprint, signedAt,
                    $"Good signature by trusted key {key.Fingerprint} ({string.Join(", ", key.UserIds)}), made {signedAt:u}.") { DataSha256 = dataSha256 }
                : new SignatureCheck(SignatureStatus.BadSignature, issuerId, key.Fingerprint, signedAt,
                    $"BAD signature: the archive does not match the signature by {key.Fingerprint}. It was modified or corrupted after signing; do not restore it.") { DataSha256 = dataSha256 };
        }

        var first = sigs[0];
        var firstId = PgpHelpers.KeyIdHex(IssuerKeyId(first));
        var fpr = first.GetHashedSubPackets()?.GetIssuerFingerprint() ?? first.GetUnhashedSubPackets()?.GetIssuerFingerprint();
        var fprHex = fpr is null ? null : PgpHelpers.Hex(fpr.GetFingerprint());
        return new SignatureCheck(SignatureStatus.UntrustedSigner, firstId, fprHex, SignedAt(first),
            $"The archive is signed by key {fprHex ?? firstId}, which is not one of the {trustedSigners.Keys.Count} trusted signer key(s). " +
            "If this key is legitimately yours, add its public key to the trusted signers; otherwise treat the archive as forged.");
    }

    internal static DetachedSigner CreateGenerator(OpenPgpKeySet secretKeys, string signerFingerprintOrKeyId, char[] passphrase)
    {
        ArgumentNullException.ThrowIfNull(secretKeys);
        var key = secretKeys.FindByKeyIdOrFingerprint(signerFingerprintOrKeyId ?? string.Empty);
        if (key is null || !key.HasSecret)
            throw new HubDrException("SigningKeyNotFound", HubErrorCategory.ObjectNotFound,
                $"No secret key '{signerFingerprintOrKeyId}' is loaded for signing ({secretKeys.Keys.Count(k => k.HasSecret)} secret key(s) loaded). " +
                "Load the secret key file of the signing key.")
            { Target = signerFingerprintOrKeyId };

        var normalized = PgpHelpers.NormalizeHex(signerFingerprintOrKeyId!);
        long? preferred = normalized.Length == 16 ? (long)Convert.ToUInt64(normalized, 16) : null;
        PgpSecretKey? secret = null;
        foreach (var cand in CandidateSigningKeys(key, preferred))
        {
            var sk = key.SecretRing!.GetSecretKey(cand.KeyId);
            if (sk is not null && !sk.IsPrivateKeyEmpty)
            {
                secret = sk;
                break;
            }
        }
        if (secret is null)
            throw new HubDrException("SigningKeyUnusable", HubErrorCategory.InvalidData,
                $"OpenPGP key {key.Fingerprint} has no usable secret signing key (no signing-capable key, expired, revoked, or the secret part is a stub).")
            { Target = key.Fingerprint };

        if (passphrase is null)
            throw new HubDrException("KeyPassphraseInvalid", HubErrorCategory.AuthenticationError,
                $"No passphrase was supplied for signing key {key.Fingerprint}.") { Target = key.Fingerprint };
        PgpPrivateKey priv;
        try
        {
            priv = Unlock(secret, passphrase);
        }
        catch (Exception ex) when (PgpHelpers.IsBadInput(ex))
        {
            throw new HubDrException("KeyPassphraseInvalid", HubErrorCategory.AuthenticationError,
                $"The passphrase for signing key {key.Fingerprint} is wrong (the key could not be unlocked).", ex)
            { Target = key.Fingerprint };
        }

        return new DetachedSigner(priv, secret.PublicKey, HashFor(secret.PublicKey));
    }

    /// <summary>
    /// Unlocked signing keys, per loaded secret key object (so they live no longer than the key set the caller
    /// loaded), each with the SHA-256 of the passphrase that unlocked it: a backup signs three times (passphrase check,
    /// archive, catalog) and the S2K derivation (16 MiB of SHA-256 in BouncyCastle) then runs once, not three times.
    /// A different passphrase is never served from the cache.
    /// </summary>
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<PgpSecretKey, Tuple<byte[], PgpPrivateKey>> Unlocked = new();

    private static PgpPrivateKey Unlock(PgpSecretKey secret, char[] passphrase)
    {
        var bytes = PgpHelpers.PassphraseBytes(passphrase);
        var tag = SHA256.HashData(bytes);
        if (Unlocked.TryGetValue(secret, out var hit) && CryptographicOperations.FixedTimeEquals(hit.Item1, tag))
            return hit.Item2;
        var key = secret.ExtractPrivateKeyRaw(bytes);
        Unlocked.AddOrUpdate(secret, Tuple.Create(tag, key));
        return key;
    }

    private static IEnumerable<PgpPublicKey> CandidateSigningKeys(KeyInfo key, long? preferred)
    {
        var primary = key.PublicRing.GetPublicKey();
        var usable = key.PublicRing.GetPublicKeys().Where(k => PgpHelpers.IsUsable(k) && PgpHelpers.CanSign(k, primary)).ToList();
        if (preferred.HasValue)
            foreach (var k in usable.Where(k => k.KeyId == preferred.Value))
                yield return k;
        foreach (var k in usable.Where(k => !k.IsMasterKey).OrderByDescending(k => k.CreationTime))
            yield return k;
        foreach (var k in usable.Where(k => k.IsMasterKey))
            yield return k;
    }

    /// <summary>
    /// SHA-256 for RSA and P-256, SHA-384 for P-384, SHA-512 above. SHA-256 rather than SHA-512 for RSA because
    /// .NET's SHA-256 uses the SHA-NI instructions (~1.2 GB/s here) and SHA-512 does not (~0.5 GB/s).
    /// </summary>
    private static HashAlgorithmTag HashFor(PgpPublicKey key)
    {
        if (key.Algorithm != PublicKeyAlgorithmTag.ECDsa)
            return HashAlgorithmTag.Sha256;
        return key.BitStrength switch
        {
            <= 256 => HashAlgorithmTag.Sha256,
            <= 384 => HashAlgorithmTag.Sha384,
            _ => HashAlgorithmTag.Sha512,
        };
    }

    internal static byte[] ArmorSignature(byte[] packet) =>
        Encoding.ASCII.GetBytes(PgpHelpers.Armor(s => s.Write(packet)));

    private static long IssuerKeyId(PgpSignature sig)
    {
        if (sig.KeyId != 0)
            return sig.KeyId;
        var fpr = sig.GetHashedSubPackets()?.GetIssuerFingerprint();
        if (fpr is not null)
        {
            var f = fpr.GetFingerprint();
            if (f.Length >= 8)
                return (long)Convert.ToUInt64(Convert.ToHexString(f, f.Length - 8, 8), 16);
        }
        return 0;
    }

    private static DateTimeOffset? SignedAt(PgpSignature sig)
    {
        try
        {
            return new DateTimeOffset(DateTime.SpecifyKind(sig.CreationTime, DateTimeKind.Utc));
        }
        catch (Exception)
        {
            return null;
        }
    }

    private static List<PgpSignature> ParseSignatures(byte[] signature)
    {
        using var decoder = PgpDecoder.Open(new MemoryStream(signature));
        var factory = new PgpObjectFactory(decoder);
        var result = new List<PgpSignature>();
        PgpObject? obj;
        while ((obj = factory.NextPgpObject()) is not null)
        {
            switch (obj)
            {
                case PgpSignatureList list:
                    for (int i = 0; i < list.Count; i++)
                        result.Add(list[i]);
                    break;
                case PgpCompressedData comp:
                    factory = new PgpObjectFactory(comp.GetDataStream());
                    break;
                case PgpMarker:
                    break;
                default:
                    throw new PgpException($"unexpected {obj.GetType().Name} packet in a detached signature");
            }
        }
        return result;
    }
}
