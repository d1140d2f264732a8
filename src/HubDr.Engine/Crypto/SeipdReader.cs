using System.Buffers;
using System.Reflection;
using System.Security.Cryptography;
using Org.BouncyCastle.Bcpg;
using Org.BouncyCastle.Bcpg.OpenPgp;
using HubDr.Engine.IO;

namespace HubDr.Engine.Crypto;

/// <summary>
/// Fast OpenPGP decryption of a SEIPD v1 body (the read-side twin of <see cref="SeipdWriter"/>): BouncyCastle parses the
/// packets and recovers the session key from the recipient's PKESK; the body's AES-CFB and the MDC's SHA-1 then run on
/// .NET (OpenSSL, AES-NI/SHA-NI) in 64 KiB chunks instead of BouncyCastle's managed block-at-a-time CFB and SHA-1
/// (~90 MB/s, one allocated byte per byte). The returned stream is the decrypted inner packet sequence (a literal packet
/// for HubDr archives, maybe a compressed one from gpg) without the trailing MDC packet; it throws
/// ArchiveIntegrityFailed instead of returning end-of-stream when the MDC does not match or the data is truncated.
/// </summary>
internal static class SeipdReader
{
    // BouncyCastle 2.x has no public "recover the session key" call; PgpPublicKeyEncryptedData.RecoverSessionData is
    // private. When it is not there (another BouncyCastle version), the caller keeps BouncyCastle's own decrypting stream.
    private static readonly MethodInfo? RecoverSessionData = typeof(PgpPublicKeyEncryptedData).GetMethod(
        "RecoverSessionData", BindingFlags.Instance | BindingFlags.NonPublic, [typeof(PgpPrivateKey)]);

    /// <summary>True when this BouncyCastle build exposes what the fast path needs (tests assert it for the pinned version).</summary>
    internal static bool Available => RecoverSessionData is not null && RecoverSessionData.ReturnType == typeof(byte[]);

    /// <summary>
    /// The decrypted inner packets, or null when the fast path does not apply (no session-data hook, a cipher other than
    /// AES, no MDC): the caller then uses BouncyCastle's stream. Throws what BouncyCastle throws for a wrong key.
    /// </summary>
    internal static Stream? TryOpen(PgpPublicKeyEncryptedData data, PgpPrivateKey privateKey)
    {
        if (!Available || !data.IsIntegrityProtected())
            return null;
        byte[] session;
        try
        {
            session = (byte[])RecoverSessionData!.Invoke(data, [privateKey])!;
        }
        catch (TargetInvocationException ex) when (ex.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(ex.InnerException);
            throw;
        }

        try
        {
            int keyLength = (SymmetricKeyAlgorithmTag)session[0] switch
            {
                SymmetricKeyAlgorithmTag.Aes128 => 16,
                SymmetricKeyAlgorithmTag.Aes192 => 24,
                SymmetricKeyAlgorithmTag.Aes256 => 32,
                _ => -1,
            };
            if (keyLength < 0 || session.Length != 1 + keyLength + 2)
                return null;
            int sum = 0;
            for (int i = 1; i <= keyLength; i++)
                sum += session[i];
            if ((ushort)sum != (ushort)((session[^2] << 8) | session[^1]))
                throw new PgpException("the session key checksum does not match (wrong key or damaged PKESK)");
            var stream = new DecryptStream(data.GetInputStream(), session.AsSpan(1, keyLength));
            try
            {
                stream.CheckPrefix();
            }
            catch
            {
                stream.Dispose();
                throw;
            }

            return stream;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(session);
        }
    }

    private sealed class DecryptStream : ReadOnlyStream
    {
        private const int Chunk = 1 << 16;
        private const int MdcLength = 22; // 0xD3 0x14 + SHA-1

        private readonly Stream _raw;
        private readonly Aes _aes;
        private readonly IncrementalHash _mdc = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
        private readonly byte[] _iv = new byte[16];
        private readonly byte[] _cipher;
        private readonly byte[] _plain;
        private int _plainStart;   // next byte to hand out
        private int _plainEnd;     // end of the bytes that may be handed out (the last 22 decrypted bytes are held back)
        private int _held;         // bytes after _plainEnd that are held back (candidate MDC)
        private bool _prefixChecked;
        private bool _eof;
        private bool _disposed;
        private Exception? _failure; // sticky: a failed integrity check never turns into end-of-stream

        public DecryptStream(Stream raw, ReadOnlySpan<byte> key)
        {
            _raw = raw;
            _aes = Aes.Create();
            _aes.Key = key.ToArray();
            _cipher = ArrayPool<byte>.Shared.Rent(Chunk + 16);
            _plain = ArrayPool<byte>.Shared.Rent(Chunk + 16 + MdcLength + 18);
        }

        /// <summary>Decrypts the first chunk now: a wrong session key fails here (as BouncyCastle's quick check does), not later.</summary>
        public void CheckPrefix()
        {
            while (!_prefixChecked && !_eof)
                Fill();
            if (!_prefixChecked)
                throw new PgpException("the encrypted data is too short to hold the OpenPGP prefix");
        }

        public override int Read(Span<byte> buffer)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_failure is not null)
                throw _failure;
            try
            {
                while (_plainStart == _plainEnd && !_eof)
                    Fill();
            }
            catch (HubDrException ex)
            {
                _failure = ex;
                throw;
            }

            int n = Math.Min(buffer.Length, _plainEnd - _plainStart);
            _plain.AsSpan(_plainStart, n).CopyTo(buffer);
            _plainStart += n;
            return n;
        }

        /// <summary>Decrypts the next chunk; keeps the last 22 plaintext bytes back until the end proves they are the MDC.</summary>
        private void Fill()
        {
            // Move the held-back tail to the front.
            _plain.AsSpan(_plainEnd, _held).CopyTo(_plain);
            int have = _held;
            _plainStart = 0;
            _plainEnd = 0;

            int read = 0;
            while (read < Chunk)
            {
                int n;
                try
                {
                    n = _raw.Read(_cipher, read, Chunk - read);
                }
                catch (Exception ex) when (PgpHelpers.IsBadInput(ex))
                {
                    throw OpenPgpEncryption.IntegrityError("the encrypted data ended early or could not be decoded", ex);
                }
                if (n == 0)
                    break;
                read += n;
            }

            if (read > 0)
            {
                // CFB-128 is a stream mode: zero-pad the tail to a block, decrypt, keep the real length. Chunks chain
                // through the IV (the last ciphertext block), so only the final chunk may be partial.
                int padded = (read + 15) & ~15;
                _cipher.AsSpan(read, padded - read).Clear();
                _aes.DecryptCfb(_cipher.AsSpan(0, padded), _iv, _plain.AsSpan(have, padded), PaddingMode.None, 128);
                if (read == Chunk)
                    _cipher.AsSpan(Chunk - 16, 16).CopyTo(_iv);
                have += read;
            }
            else
            {
                _eof = true;
            }

            int start = 0;
            if (!_prefixChecked)
            {
                if (have < 18)
                {
                    if (!_eof)
                    {
                        _held = have;
                        return;
                    }

                    throw OpenPgpEncryption.IntegrityError("the encrypted data is too short to hold the OpenPGP prefix");
                }

                // The 16-byte random prefix repeats its last two bytes: a mismatch means a wrong session key.
                if (_plain[14] != _plain[16] || _plain[15] != _plain[17])
                    throw new PgpException("quick check failed: the decrypted prefix does not repeat (wrong session key or damaged data)");
                _mdc.AppendData(_plain.AsSpan(0, 18));
                _prefixChecked = true;
                start = 18;
            }

            if (_eof)
            {
                int body = have - start - MdcLength;
                if (body < 0)
                    throw OpenPgpEncryption.IntegrityError("the integrity check (MDC) is missing; the archive is probably truncated");
                _mdc.AppendData(_plain.AsSpan(start, body + 2));
                Span<byte> expected = stackalloc byte[20];
                _mdc.GetHashAndReset(expected);
                var tail = _plain.AsSpan(start + body, MdcLength);
                if (tail[0] != 0xD3 || tail[1] != 0x14 || !CryptographicOperations.FixedTimeEquals(tail[2..], expected))
                    throw OpenPgpEncryption.IntegrityError("the integrity check (MDC) does not match the content");
                _plainStart = start;
                _plainEnd = start + body;
                _held = 0;
                return;
            }

            int release = Math.Max(0, have - start - MdcLength);
            _mdc.AppendData(_plain.AsSpan(start, release));
            // Hand out [start, start + release); hold the rest. Compact so the held bytes follow the released ones.
            _plainStart = start;
            _plainEnd = start + release;
            _held = have - _plainEnd;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing && !_disposed)
            {
                _disposed = true;
                _aes.Dispose();
                _mdc.Dispose();
                CryptographicOperations.ZeroMemory(_plain);
                ArrayPool<byte>.Shared.Return(_cipher);
                ArrayPool<byte>.Shared.Return(_plain);
                _raw.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
