using Org.BouncyCastle.Bcpg;
using Org.BouncyCastle.Bcpg.OpenPgp;
using Org.BouncyCastle.Security;
using HubDr.Engine.IO;

namespace HubDr.Engine.Crypto;

/// <summary>Which key decrypted a message, and to whom the message was encrypted.</summary>
public sealed record DecryptionInfo(string KeyId, string Fingerprint, IReadOnlyList<string> RecipientKeyIds);

/// <summary>
/// OpenPGP public-key encryption of the archive: AES-256, SEIPD v1 with MDC, one PKESK per recipient, streamed with
/// 64 KiB partial-length packets, a binary literal data packet, no compression packet.
/// </summary>
public static class OpenPgpEncryption
{
    /// <summary>
    /// Returns a write-only stream: bytes written to it are the plaintext; disposing it completes the message.
    /// <paramref name="output"/> is left open.
    /// </summary>
    public static Stream OpenEncrypt(Stream output, OpenPgpKeySet recipients, string literalFileName, DateTimeOffset modified) =>
        OpenEncrypt(output, recipients, literalFileName, modified, forceBouncyCastle: false);

    /// <summary>
    /// <paramref name="forceBouncyCastle"/>: use BouncyCastle's PgpEncryptedDataGenerator even when the fast
    /// <see cref="SeipdWriter"/> supports every recipient (tests compare both).
    /// </summary>
    internal static Stream OpenEncrypt(Stream output, OpenPgpKeySet recipients, string literalFileName, DateTimeOffset modified, bool forceBouncyCastle)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(recipients);
        if (recipients.Keys.Count == 0)
            throw new HubDrException("EncryptionRecipientMissing", HubErrorCategory.InvalidArgument,
                "No OpenPGP recipient key was given, so nobody could ever decrypt the archive. Configure at least the " +
                "operations key (and preferably an escrow key).");

        var encryptionKeys = new List<PgpPublicKey>();
        foreach (var key in recipients.Keys)
        {
            var enc = PgpHelpers.SelectEncryptionKey(key.PublicRing) ?? throw new HubDrException(
                "EncryptionKeyUnusable", HubErrorCategory.InvalidData,
                $"OpenPGP key {key.Fingerprint} ({string.Join(", ", key.UserIds)}) has no usable encryption subkey " +
                "(missing, expired or revoked). Add an encryption subkey or configure another recipient key.")
            { Target = key.Fingerprint };
            encryptionKeys.Add(enc);
        }

        var target = new NonClosingStream(output);
        if (!forceBouncyCastle && SeipdWriter.Supports(encryptionKeys))
            return new SeipdWriter(target, encryptionKeys, literalFileName ?? string.Empty, modified);

        var generator = new PgpEncryptedDataGenerator(SymmetricKeyAlgorithmTag.Aes256, true, new SecureRandom());
        foreach (var enc in encryptionKeys)
            generator.AddMethod(enc);
        var encrypted = generator.Open(target, new byte[PgpHelpers.BufferSize]);
        var literalGen = new PgpLiteralDataGenerator();
        var literal = literalGen.Open(encrypted, PgpLiteralData.Binary, literalFileName ?? string.Empty,
            modified.UtcDateTime, new byte[PgpHelpers.BufferSize]);
        return new EncryptingStream(literal, literalGen, encrypted, generator);
    }

    /// <summary>Key ids (16 hex) of the PKESK packets at the start of a message; reads only the header packets.</summary>
    public static IReadOnlyList<string> ReadRecipientKeyIds(Stream cipher)
    {
        var list = ReadEncryptedDataList(cipher, out _);
        return list.GetEncryptedDataObjects().OfType<PgpPublicKeyEncryptedData>()
            .Select(p => PgpHelpers.KeyIdHex(p.KeyId)).ToList();
    }

    /// <summary>
    /// Decrypts a message with whichever key among <paramref name="secretKeys"/> is one of its recipients. Reading
    /// the returned stream to EOF checks the MDC; a mismatch or truncation throws ArchiveIntegrityFailed instead of EOF.
    /// </summary>
    public static Stream OpenDecrypt(Stream cipher, OpenPgpKeySet secretKeys, Func<string, char[]?> passphraseFor, out DecryptionInfo info)
    {
        ArgumentNullException.ThrowIfNull(secretKeys);
        ArgumentNullException.ThrowIfNull(passphraseFor);
        var list = ReadEncryptedDataList(cipher, out var decoder);
        var pkesks = list.GetEncryptedDataObjects().OfType<PgpPublicKeyEncryptedData>().ToList();
        var recipientIds = pkesks.Select(p => PgpHelpers.KeyIdHex(p.KeyId)).ToList();

        var candidates = new List<(PgpPublicKeyEncryptedData Data, KeyInfo Key, PgpSecretKey Secret)>();
        foreach (var p in pkesks)
        {
            if (p.KeyId == 0)
            {
                // Anonymous recipient ("throw-keyids"): try every encryption-capable secret key.
                foreach (var k in secretKeys.Keys.Where(k => k.HasSecret))
                    foreach (var sk in k.SecretRing!.GetSecretKeys().Where(s => s.PublicKey.IsEncryptionKey && !s.IsPrivateKeyEmpty))
                        candidates.Add((p, k, sk));
                continue;
            }
            var found = secretKeys.FindSecretKey(p.KeyId);
            if (found is { } f)
                candidates.Add((p, f.Key, f.Secret));
        }

        if (candidates.Count == 0)
        {
            var ids = recipientIds.Count == 0 ? "(none: the message is not public-key encrypted)" : string.Join(", ", recipientIds);
            throw new HubDrException("DecryptionKeyNotFound", HubErrorCategory.SecurityError,
                $"None of the {secretKeys.Keys.Count(k => k.HasSecret)} loaded secret key(s) can decrypt this archive. It is " +
                $"encrypted to key id(s) {ids}. Load the matching secret key (the current or a retired backup key, " +
                "or the escrow key) and try again.")
            { Target = string.Join(",", recipientIds) };
        }

        HubDrException? passphraseError = null;
        HubDrException? sessionKeyError = null;
        foreach (var (data, key, secret) in candidates)
        {
            var passphrase = passphraseFor(key.Fingerprint);
            PgpPrivateKey privateKey;
            try
            {
                privateKey = secret.ExtractPrivateKeyRaw(passphrase is null ? Array.Empty<byte>() : PgpHelpers.PassphraseBytes(passphrase));
            }
            catch (Exception ex) when (PgpHelpers.IsBadInput(ex))
            {
                passphraseError ??= new HubDrException("KeyPassphraseInvalid", HubErrorCategory.AuthenticationError,
                    passphrase is null
                        ? $"No passphrase was supplied for secret key {key.Fingerprint}, which is needed to decrypt this archive."
                        : $"The passphrase for secret key {key.Fingerprint} is wrong (the key could not be unlocked). " +
                          "Check which passphrase belongs to this key; retired keys keep their old passphrase.", ex)
                { Target = key.Fingerprint };
                continue;
            }

            Stream clear;
            Stream? fast;
            try
            {
                // .NET AES-CFB + SHA-1 when possible (several times faster, no per-byte allocation); else BouncyCastle.
                fast = SeipdReader.TryOpen(data, privateKey);
                clear = fast ?? data.GetDataStream(privateKey);
            }
            catch (Exception ex) when (PgpHelpers.IsBadInput(ex))
            {
                // Anonymous recipient that is not ours, or a damaged PKESK: another recipient may still work.
                if (data.KeyId != 0)
                    sessionKeyError ??= IntegrityError("the session key could not be decrypted with the recipient key", ex);
                continue;
            }

            if (!data.IsIntegrityProtected())
                throw new HubDrException("ArchiveIntegrityFailed", HubErrorCategory.InvalidData,
                    "The archive is encrypted without integrity protection (no MDC), so tampering could not be detected. " +
                    "HubDr refuses to restore it. Re-create the backup with HubDr or gpg 2.2+.");

            Stream literal;
            try
            {
                literal = OpenLiteral(clear);
            }
            catch (HubDrException)
            {
                throw;
            }
            catch (Exception ex) when (PgpHelpers.IsBadInput(ex))
            {
                throw IntegrityError("the decrypted data is not a valid OpenPGP literal data packet", ex);
            }

            info = new DecryptionInfo(PgpHelpers.KeyIdHex(secret.KeyId), key.Fingerprint, recipientIds);
            return new DecryptingStream(literal, data, decoder, fast);
        }

        throw sessionKeyError ?? passphraseError ?? new HubDrException("DecryptionKeyNotFound", HubErrorCategory.SecurityError,
            $"None of the loaded secret keys could decrypt this archive (recipients: {string.Join(", ", recipientIds)}).");
    }

    internal static HubDrException IntegrityError(string detail, Exception? inner = null) =>
        new("ArchiveIntegrityFailed", HubErrorCategory.InvalidData,
            $"The encrypted archive is corrupt or was tampered with: {detail}. Do not use its content; restore from " +
            "another backup and check the storage for damage.", inner);

    private static Stream OpenLiteral(Stream clear)
    {
        var factory = new PgpObjectFactory(clear);
        while (true)
        {
            var obj = factory.NextPgpObject();
            switch (obj)
            {
                case null:
                    throw IntegrityError("the decrypted message contains no literal data");
                case PgpLiteralData lit:
                    return lit.GetInputStream();
                case PgpCompressedData comp:
                    // Messages made by gpg are usually compressed; ours are not.
                    factory = new PgpObjectFactory(comp.GetDataStream());
                    break;
                case PgpOnePassSignatureList:
                case PgpSignatureList:
                case PgpMarker:
                    break; // inline signatures are not checked here; HubDr uses detached signatures
                default:
                    throw IntegrityError($"unexpected OpenPGP packet {obj.GetType().Name} inside the encrypted data");
            }
        }
    }

    private static PgpEncryptedDataList ReadEncryptedDataList(Stream cipher, out Stream decoder)
    {
        ArgumentNullException.ThrowIfNull(cipher);
        try
        {
            decoder = PgpDecoder.Open(new NonClosingStream(cipher));
            var factory = new PgpObjectFactory(decoder);
            var obj = factory.NextPgpObject();
            while (obj is PgpMarker)
                obj = factory.NextPgpObject();
            if (obj is PgpEncryptedDataList list)
                return list;
            throw NotOpenPgp(obj is null ? "it is empty" : $"it starts with {obj.GetType().Name} instead of encrypted data", null);
        }
        catch (HubDrException)
        {
            throw;
        }
        catch (Exception ex) when (PgpHelpers.IsBadInput(ex))
        {
            throw NotOpenPgp("its first packets could not be parsed", ex);
        }
    }

    private static HubDrException NotOpenPgp(string why, Exception? inner) =>
        new("ArchiveNotOpenPgp", HubErrorCategory.InvalidData,
            $"The file is not an OpenPGP encrypted message ({why}). Check that you picked the archive (.hubdr/.pgp) and " +
            "not its signature or manifest, and that the download completed.", inner);

    /// <summary>Plaintext writer: literal packet inside SEIPD; Dispose completes both.</summary>
    private sealed class EncryptingStream : WriteOnlyStream
    {
        private Stream? _literal;
        private readonly PgpLiteralDataGenerator _literalGen;
        private readonly Stream _encrypted;
        private readonly PgpEncryptedDataGenerator _generator;

        public EncryptingStream(Stream literal, PgpLiteralDataGenerator literalGen, Stream encrypted, PgpEncryptedDataGenerator generator)
        {
            _literal = literal;
            _literalGen = literalGen;
            _encrypted = encrypted;
            _generator = generator;
        }

        private Stream Literal => _literal ?? throw new ObjectDisposedException(nameof(EncryptingStream));

        public override bool CanWrite => _literal is not null;
        public override void Write(byte[] buffer, int offset, int count) => Literal.Write(buffer, offset, count);
        public override void Write(ReadOnlySpan<byte> buffer) => Literal.Write(buffer);
        public override void WriteByte(byte value) => Literal.WriteByte(value);

        protected override void Dispose(bool disposing)
        {
            if (disposing && _literal is not null)
            {
                _literal.Dispose();
                _encrypted.Dispose();
                _literal = null;
            }
            base.Dispose(disposing);
        }
    }

    /// <summary>Plaintext reader: EOF only after the MDC has been verified.</summary>
    private sealed class DecryptingStream : ReadOnlyStream
    {
        private readonly Stream _literal;
        private readonly PgpPublicKeyEncryptedData _data;
        private readonly Stream _decoder;
        private readonly Stream? _fast;
        private bool _verified;

        /// <param name="fast">The <see cref="SeipdReader"/> stream under <paramref name="literal"/>, which checks the MDC
        /// itself when read to its end; null when BouncyCastle decrypts (then <c>data.Verify()</c> checks it).</param>
        public DecryptingStream(Stream literal, PgpPublicKeyEncryptedData data, Stream decoder, Stream? fast)
        {
            _literal = literal;
            _data = data;
            _decoder = decoder;
            _fast = fast;
        }

        public override int Read(Span<byte> buffer)
        {
            if (buffer.Length == 0)
                return 0;
            int n;
            try
            {
                n = _literal.Read(buffer);
            }
            catch (Exception ex) when (PgpHelpers.IsBadInput(ex))
            {
                throw IntegrityError("the encrypted data ended early or could not be decoded", ex);
            }
            if (n > 0)
                return n;
            if (!_verified && _fast is not null)
            {
                // Anything after the literal packet, then the MDC check at the end of the encrypted data.
                _fast.CopyTo(Stream.Null);
                _verified = true;
            }

            if (!_verified)
            {
                bool ok;
                try
                {
                    ok = _data.Verify();
                }
                catch (Exception ex) when (PgpHelpers.IsBadInput(ex))
                {
                    throw IntegrityError("the integrity check (MDC) could not be read; the archive is probably truncated", ex);
                }
                if (!ok)
                    throw IntegrityError("the integrity check (MDC) does not match the content");
                _verified = true;
            }
            return 0;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _literal.Dispose(); // the caller's cipher stream is wrapped in a NonClosingStream
                _fast?.Dispose();
                _decoder.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
