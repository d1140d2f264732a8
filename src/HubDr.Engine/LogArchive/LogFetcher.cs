using HubDr.Engine.Compression;
using HubDr.Engine.Crypto;
using HubDr.Engine.Stores;

namespace HubDr.Engine.LogArchive;

/// <summary>What one fetch did.</summary>
/// <param name="IndexMismatch">The stored object's size or SHA-256 differs from its index entry (the object's own valid
/// signature decided it is genuine; reported, not fatal).</param>
public sealed record LogFetchResult(LogObjectRef Ref, string Path, long StoredBytes, long PlainBytes, string SignerFingerprint, string? IndexMismatch);

/// <summary>
/// Fetches log objects: download the encrypted object, verify its detached signature against TRUSTED keys over the
/// exact stored bytes (before any decryption), then decrypt (MDC checked) and decompress into a temp file next to the
/// destination, pad partials with zeros to the segment size, flush and rename into place. An unsigned, untrusted or
/// tampered object is refused with <c>LogObjectSignatureInvalid</c>; nothing is written for it.
/// </summary>
public sealed class LogFetcher
{
    private readonly IBackupStore _store;
    private readonly string _hub;
    private readonly ILogStreamLayout _layout;
    private readonly OpenPgpKeySet _trusted;
    private readonly OpenPgpKeySet _secretKeys;
    private readonly Func<string, char[]?> _passphraseFor;
    private readonly ICompressor _zstd = Compressors.Get("zstd");
    private readonly string? _expectedSystemId;

    public LogFetcher(IBackupStore store, string hub, ILogStreamLayout layout, OpenPgpKeySet trusted, OpenPgpKeySet secretKeys, Func<string, char[]?> passphraseFor,
        string? expectedSystemId = null)
    {
        _expectedSystemId = expectedSystemId;
        if (trusted.Keys.Count == 0)
        {
            throw new HubDrException("TrustedSignerMissing", HubErrorCategory.InvalidArgument,
                "No trusted signer key was given. Log objects only count when signed by a key you name.");
        }

        _store = store;
        _hub = hub;
        _layout = layout;
        _trusted = trusted;
        _secretKeys = secretKeys;
        _passphraseFor = passphraseFor;
    }

    /// <summary>Downloads one object and verifies its signature (no decryption, no secret key needed).</summary>
    public Task<(byte[] Cipher, SignatureCheck Check)> DownloadVerifiedAsync(LogIndexEntry entry, CancellationToken ct) =>
        DownloadVerifiedAsync(_store, _hub, _layout, entry, _trusted, ct);

    /// <summary>
    /// Downloads one object into memory (bounded: a segment's ciphertext exceeds its plaintext only by framing) and
    /// verifies its detached signature against <paramref name="trusted"/> over the exact stored bytes.
    /// Throws <c>LogObjectSignatureInvalid</c> (SecurityError) when it is not validly signed by a trusted key.
    /// </summary>
    public static async Task<(byte[] Cipher, SignatureCheck Check)> DownloadVerifiedAsync(IBackupStore store, string hub, ILogStreamLayout layout,
        LogIndexEntry entry, OpenPgpKeySet trusted, CancellationToken ct)
    {
        var key = LogArchivePaths.StreamFolder(hub, layout) + entry.Object;
        var max = layout.SegmentSize > 0 ? layout.SegmentSize + (layout.SegmentSize / 8) + (1 << 20) : 1L << 31;
        byte[] cipher;
        await using (var s = await store.OpenReadAsync(key, ct).ConfigureAwait(false))
        {
            using var ms = new MemoryStream();
            var buffer = new byte[1 << 16];
            int n;
            while ((n = await s.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
            {
                if (ms.Length + n > max)
                {
                    throw new HubDrException("LogObjectInvalid", HubErrorCategory.InvalidData,
                        $"Log object '{key}' is larger than any segment of this stream can be ({max} bytes); refused.") { Target = key };
                }

                ms.Write(buffer, 0, n);
            }

            cipher = ms.ToArray();
        }

        var sig = await store.TryGetAsync(LogArchivePaths.SignatureKey(key), ct).ConfigureAwait(false);
        var check = OpenPgpSignatures.Verify(new MemoryStream(cipher, writable: false), sig, trusted, computeDataSha256: true);
        if (!check.IsValid)
        {
            throw new HubDrException("LogObjectSignatureInvalid", HubErrorCategory.SecurityError,
                $"Log object '{key}' failed its signature check ({check.Status}): {check.Reason} It was not decrypted or used.") { Target = key };
        }

        return (cipher, check);
    }

    /// <summary>Fetches <paramref name="item"/> into <paramref name="destination"/> (replaced atomically).</summary>
    /// <param name="afterWrite">Called with the temp file before it is renamed into place (e.g. chown to the database user).</param>
    public async Task<LogFetchResult> FetchAsync(LogIndexItem item, string destination, Action<string>? afterWrite, CancellationToken ct)
    {
        var (cipher, check) = await DownloadVerifiedAsync(item.Entry, ct).ConfigureAwait(false);
        string? mismatch = null;
        if (cipher.LongLength != item.Entry.Size || !string.Equals(check.DataSha256, item.Entry.Sha256, StringComparison.OrdinalIgnoreCase))
        {
            mismatch = $"stored object is {cipher.LongLength} bytes, SHA-256 {check.DataSha256}; the index says {item.Entry.Size} bytes, {item.Entry.Sha256}";
        }

        var dir = Path.GetDirectoryName(Path.GetFullPath(destination))!;
        var temp = Path.Combine(dir, ".hubdr-fetch-" + Guid.NewGuid().ToString("N"));
        long plain = 0;
        try
        {
            var fso = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, BufferSize = 1 << 16 };
            if (!OperatingSystem.IsWindows())
            {
                fso.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            var head = new byte[64];
            var headLength = 0;
            await using (var fs = new FileStream(temp, fso))
            {
                using (var dec = OpenPgpEncryption.OpenDecrypt(new MemoryStream(cipher, writable: false), _secretKeys, _passphraseFor, out _))
                using (var unz = _zstd.Decompress(dec))
                {
                    var buffer = new byte[1 << 16];
                    int n;
                    while ((n = await unz.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
                    {
                        if (headLength < head.Length)
                        {
                            var take = Math.Min(n, head.Length - headLength);
                            buffer.AsSpan(0, take).CopyTo(head.AsSpan(headLength));
                            headLength += take;
                            if (headLength == head.Length && _layout.ValidateContent(item.Ref, head, _expectedSystemId) is { } wrong)
                            {
                                throw new HubDrException("LogObjectInvalid", HubErrorCategory.InvalidData,
                                    $"Log object '{item.Entry.Object}' is validly signed but is not {item.Ref}: {wrong}. It was not used.") { Target = item.Entry.Object };
                            }
                        }

                        plain += n;
                        if (_layout.SegmentSize > 0 && plain > _layout.SegmentSize)
                        {
                            throw new HubDrException("LogObjectInvalid", HubErrorCategory.InvalidData,
                                $"Log object '{item.Entry.Object}' decrypts to more than a segment ({_layout.SegmentSize} bytes); refused.") { Target = item.Entry.Object };
                        }

                        await fs.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                    }

                    // Read to the end of the OpenPGP message: the integrity check (MDC) runs there.
                    await dec.CopyToAsync(Stream.Null, ct).ConfigureAwait(false);
                }

                if (headLength < head.Length && _layout.ValidateContent(item.Ref, head.AsSpan(0, headLength), _expectedSystemId) is { } wrongShort)
                {
                    throw new HubDrException("LogObjectInvalid", HubErrorCategory.InvalidData,
                        $"Log object '{item.Entry.Object}' is validly signed but is not {item.Ref}: {wrongShort}. It was not used.") { Target = item.Entry.Object };
                }

                if (plain != item.Entry.PlainSize || (item.Ref.Kind != LogObjectKind.History && plain != item.Ref.Length))
                {
                    throw new HubDrException("LogObjectInvalid", HubErrorCategory.InvalidData,
                        $"Log object '{item.Entry.Object}' holds {plain} bytes, but {item.Ref} must hold {item.Ref.Length}; refused.") { Target = item.Entry.Object };
                }

                if (item.Ref.Kind == LogObjectKind.Partial && _layout.SegmentSize > plain)
                {
                    // The rest of the segment was never written: zeros read as "end of log" to the database.
                    fs.SetLength(_layout.SegmentSize);
                }

                await fs.FlushAsync(ct).ConfigureAwait(false);
                fs.Flush(flushToDisk: true);
            }

            afterWrite?.Invoke(temp);
            File.Move(temp, destination, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }

        return new LogFetchResult(item.Ref, destination, cipher.LongLength, plain, check.SignerFingerprint ?? "", mismatch);
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
