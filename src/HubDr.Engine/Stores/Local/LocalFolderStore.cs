using System.Runtime.CompilerServices;

namespace HubDr.Engine.Stores.Local;

/// <summary>
/// A folder used as an object store. Writes go to a hidden temp file in the target folder, are flushed
/// to disk and then renamed into place, so a reader never sees a partial object.
/// </summary>
public sealed class LocalFolderStore : IBackupStore
{
    internal const string TempPrefix = ".hubdr-tmp-";
    private readonly string _root;

    public LocalFolderStore(string root)
    {
        _root = Path.GetFullPath(root);
    }

    public string Location => new Uri(_root.EndsWith(Path.DirectorySeparatorChar) ? _root : _root + Path.DirectorySeparatorChar).AbsoluteUri.TrimEnd('/');

    public static string PathFromUri(string uri)
    {
        if (uri.StartsWith("file://", StringComparison.OrdinalIgnoreCase))
        {
            return new Uri(uri).LocalPath;
        }

        return uri;
    }

    public Task EnsureAvailableAsync(CancellationToken ct)
    {
        if (!Directory.Exists(_root))
        {
            throw new HubDrException("StoreNotFound", HubErrorCategory.ObjectNotFound,
                $"The store folder '{_root}' does not exist. Create it first (HubDr does not create store roots, so a typo cannot scatter backups).")
            { Target = _root };
        }

        return Task.CompletedTask;
    }

    public async Task<IStoreUpload> BeginUploadAsync(string key, StoreWriteOptions options, CancellationToken ct)
    {
        await EnsureAvailableAsync(ct).ConfigureAwait(false);
        var final = FullPath(key);
        var temp = Path.Combine(Path.GetDirectoryName(final)!, TempPrefix + Guid.NewGuid().ToString("N"));
        var fso = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, BufferSize = 1 << 16 };
        if (!OperatingSystem.IsWindows())
        {
            fso.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(final)!);
            var fs = new FileStream(temp, fso);
            return new Upload(this, fs, temp, final, key);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw MapWriteFailure(e, key);
        }
    }

    public async Task PutAsync(string key, ReadOnlyMemory<byte> content, StoreWriteOptions options, CancellationToken ct)
    {
        await using var upload = await BeginUploadAsync(key, options, ct).ConfigureAwait(false);
        await upload.Content.WriteAsync(content, ct).ConfigureAwait(false);
        await upload.CompleteAsync(ct).ConfigureAwait(false);
    }

    public Task<Stream> OpenReadAsync(string key, CancellationToken ct)
    {
        var path = FullPath(key);
        try
        {
            Stream s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
            return Task.FromResult(s);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new HubDrException("StoreObjectNotFound", HubErrorCategory.ObjectNotFound, $"Object '{key}' does not exist in {Location}.", e) { Target = key };
        }
    }

    public async Task<byte[]?> TryGetAsync(string key, CancellationToken ct)
    {
        var path = FullPath(key);
        try
        {
            return await File.ReadAllBytesAsync(path, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    public async IAsyncEnumerable<StoreObject> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken ct)
    {
        await EnsureAvailableAsync(ct).ConfigureAwait(false);
        var opts = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0 };
        // Start in the deepest folder the prefix names, so listing one hub does not walk every hub.
        var slash = prefix.LastIndexOf('/');
        var startDir = slash < 0 ? _root : Path.Combine(_root, prefix[..slash].Replace('/', Path.DirectorySeparatorChar));
        if (!Directory.Exists(startDir))
        {
            yield break;
        }

        foreach (var file in Directory.EnumerateFiles(startDir, "*", opts))
        {
            ct.ThrowIfCancellationRequested();
            var name = Path.GetFileName(file);
            if (name.StartsWith(TempPrefix, StringComparison.Ordinal))
            {
                continue;
            }

            var key = Path.GetRelativePath(_root, file).Replace(Path.DirectorySeparatorChar, '/');
            if (!key.StartsWith(prefix, StringComparison.Ordinal))
            {
                continue;
            }

            var info = new FileInfo(file);
            yield return new StoreObject(key, info.Length, info.LastWriteTimeUtc);
        }
    }

    public Task<IReadOnlyList<string>> DeleteAsync(IReadOnlyList<string> keys, CancellationToken ct)
    {
        foreach (var key in keys)
        {
            ct.ThrowIfCancellationRequested();
            var path = FullPath(key);
            if (!File.Exists(path))
            {
                continue; // missing keys are not an error
            }

            File.Delete(path);
            TryRemoveEmptyParents(Path.GetDirectoryName(path));
        }

        return Task.FromResult<IReadOnlyList<string>>(Array.Empty<string>());
    }

    public async IAsyncEnumerable<PendingUpload> ListPendingAsync(string prefix, [EnumeratorCancellation] CancellationToken ct)
    {
        await EnsureAvailableAsync(ct).ConfigureAwait(false);
        var slash = prefix.LastIndexOf('/');
        var startDir = slash < 0 ? _root : Path.Combine(_root, prefix[..slash].Replace('/', Path.DirectorySeparatorChar));
        if (!Directory.Exists(startDir))
        {
            yield break;
        }

        var opts = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0 };
        foreach (var file in Directory.EnumerateFiles(startDir, TempPrefix + "*", opts))
        {
            ct.ThrowIfCancellationRequested();
            var key = Path.GetRelativePath(_root, file).Replace(Path.DirectorySeparatorChar, '/');
            if (!key.StartsWith(prefix, StringComparison.Ordinal))
            {
                continue;
            }

            FileInfo info;
            try
            {
                info = new FileInfo(file);
                _ = info.Length; // may vanish between listing and stat (an upload completing)
            }
            catch (FileNotFoundException)
            {
                continue;
            }

            yield return new PendingUpload(key, Path.GetFileName(file), info.Length, info.LastWriteTimeUtc) { Kind = "temp file" };
        }
    }

    public Task AbortPendingAsync(PendingUpload upload, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(upload);
        if (!Path.GetFileName(upload.Key.Replace('/', Path.DirectorySeparatorChar)).StartsWith(TempPrefix, StringComparison.Ordinal))
        {
            throw new HubDrException("StoreKeyInvalid", HubErrorCategory.InvalidArgument, $"'{upload.Key}' is not a HubDr temp file.") { Target = upload.Key };
        }

        var path = FullPath(upload.Key);
        try
        {
            File.Delete(path); // missing is not an error
            TryRemoveEmptyParents(Path.GetDirectoryName(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw MapWriteFailure(e, upload.Key);
        }

        return Task.CompletedTask;
    }

    /// <summary>
    /// A full disk or a read-only store gets its own ErrorId (StoreFull, StoreReadOnly) so that operators and alerts can
    /// tell it from a bug; anything else is returned unchanged.
    /// </summary>
    internal Exception MapWriteFailure(Exception e, string key)
    {
        if (e is HubDrException)
        {
            return e;
        }

        if (IsNoSpace(e))
        {
            return new HubDrException("StoreFull", HubErrorCategory.QuotaExceeded,
                $"The store {Location} is full (no space left on the device or the quota is used up) while writing '{key}'. Nothing was left behind by this run; free space or move the store, then run again.", e)
            { Target = Location };
        }

        if (e is UnauthorizedAccessException || IsReadOnly(e))
        {
            return new HubDrException("StoreReadOnly", HubErrorCategory.PermissionDenied,
                $"The store {Location} cannot be written ('{key}'): the file system is read-only or this account may not write there. Check the mount and the folder's permissions.", e)
            { Target = Location };
        }

        return e;
    }

    // errno on Linux/macOS (IOException.HResult is the raw errno there); HRESULT_FROM_WIN32 on Windows.
    private const int ENOSPC = 28, EDQUOT_LINUX = 122, EDQUOT_MAC = 69, EROFS = 30;

    private static bool IsNoSpace(Exception e) => e is IOException io && (OperatingSystem.IsWindows()
        ? io.HResult is unchecked((int)0x80070070) or unchecked((int)0x80070027) // ERROR_DISK_FULL, ERROR_HANDLE_DISK_FULL
        : io.HResult == ENOSPC || io.HResult == (OperatingSystem.IsMacOS() ? EDQUOT_MAC : EDQUOT_LINUX));

    private static bool IsReadOnly(Exception e) => e is IOException io && (OperatingSystem.IsWindows()
        ? io.HResult == unchecked((int)0x80070013) // ERROR_WRITE_PROTECT
        : io.HResult == EROFS);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private void TryRemoveEmptyParents(string? dir)
    {
        while (dir is not null && dir.Length > _root.Length && dir.StartsWith(_root, StringComparison.Ordinal))
        {
            try
            {
                if (Directory.EnumerateFileSystemEntries(dir).Any())
                {
                    return;
                }

                Directory.Delete(dir);
            }
            catch (IOException)
            {
                return;
            }

            dir = Path.GetDirectoryName(dir);
        }
    }

    private string FullPath(string key)
    {
        if (string.IsNullOrEmpty(key) || key.StartsWith('/') || key.Contains('\\') || key.Split('/').Any(p => p is "" or "." or ".."))
        {
            throw new HubDrException("StoreKeyInvalid", HubErrorCategory.InvalidArgument, $"Invalid object key '{key}'.") { Target = key };
        }

        return Path.Combine(_root, key.Replace('/', Path.DirectorySeparatorChar));
    }

    private sealed class Upload : IStoreUpload
    {
        private readonly LocalFolderStore _store;
        private readonly FileStream _fs;
        private readonly string _temp;
        private readonly string _final;
        private readonly string _key;
        private bool _done;
        private bool _disposed;

        public Upload(LocalFolderStore store, FileStream fs, string temp, string final, string key)
        {
            _store = store;
            _fs = fs;
            _temp = temp;
            _final = final;
            _key = key;
            Content = new MappedWriteStream(fs, e => store.MapWriteFailure(e, key));
        }

        public Stream Content { get; }

        public async Task CompleteAsync(CancellationToken ct)
        {
            try
            {
                await _fs.FlushAsync(ct).ConfigureAwait(false);
                _fs.Flush(flushToDisk: true);
                await _fs.DisposeAsync().ConfigureAwait(false);
                File.Move(_temp, _final, overwrite: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw _store.MapWriteFailure(e, _key);
            }

            FsyncDirectory(Path.GetDirectoryName(_final)!);
            _done = true;
        }

        public async ValueTask DisposeAsync()
        {
            if (_done || _disposed)
            {
                return;
            }

            _disposed = true;
            try
            {
                // Flushing the last buffered bytes fails on a full disk; the handle is closed all the same.
                await _fs.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _fs.SafeFileHandle.Dispose();
            }
            finally
            {
                try
                {
                    File.Delete(_temp);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Left for Remove-ExpiredHubBackup, which lists and removes temp files after the grace period.
                }
            }
        }

        private static void FsyncDirectory(string dir)
        {
            if (OperatingSystem.IsWindows())
            {
                return;
            }

            try
            {
                using var handle = File.OpenHandle(dir, FileMode.Open, FileAccess.Read);
                RandomAccess.FlushToDisk(handle);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Best effort: some filesystems do not allow opening a directory.
            }
        }
    }

    /// <summary>The temp file as the upload's content: write failures (full disk, read-only) come out typed.</summary>
    private sealed class MappedWriteStream : IO.WriteOnlyStream
    {
        private readonly FileStream _inner;
        private readonly Func<Exception, Exception> _map;

        public MappedWriteStream(FileStream inner, Func<Exception, Exception> map)
        {
            _inner = inner;
            _map = map;
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            try
            {
                _inner.Write(buffer);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw _map(e);
            }
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            try
            {
                await _inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw _map(e);
            }
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
            try
            {
                _inner.Flush();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw _map(e);
            }
        }

        public override async Task FlushAsync(CancellationToken cancellationToken)
        {
            try
            {
                await _inner.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw _map(e);
            }
        }
    }
}
