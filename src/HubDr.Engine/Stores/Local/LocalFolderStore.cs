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
        Directory.CreateDirectory(Path.GetDirectoryName(final)!);
        var temp = Path.Combine(Path.GetDirectoryName(final)!, TempPrefix + Guid.NewGuid().ToString("N"));
        var fso = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, BufferSize = 1 << 16 };
        if (!OperatingSystem.IsWindows())
        {
            fso.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        var fs = new FileStream(temp, fso);
        return new Upload(fs, temp, final);
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

    /// <summary>Temp files left by a killed process (older than <paramref name="olderThan"/>).</summary>
    public IEnumerable<string> FindStaleTempFiles(TimeSpan olderThan)
    {
        if (!Directory.Exists(_root))
        {
            yield break;
        }

        var cutoff = DateTime.UtcNow - olderThan;
        foreach (var file in Directory.EnumerateFiles(_root, TempPrefix + "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            if (File.GetLastWriteTimeUtc(file) < cutoff)
            {
                yield return file;
            }
        }
    }

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
        private readonly FileStream _fs;
        private readonly string _temp;
        private readonly string _final;
        private bool _done;

        public Upload(FileStream fs, string temp, string final)
        {
            _fs = fs;
            _temp = temp;
            _final = final;
        }

        public Stream Content => _fs;

        public async Task CompleteAsync(CancellationToken ct)
        {
            await _fs.FlushAsync(ct).ConfigureAwait(false);
            _fs.Flush(flushToDisk: true);
            await _fs.DisposeAsync().ConfigureAwait(false);
            File.Move(_temp, _final, overwrite: true);
            FsyncDirectory(Path.GetDirectoryName(_final)!);
            _done = true;
        }

        public async ValueTask DisposeAsync()
        {
            if (_done)
            {
                return;
            }

            await _fs.DisposeAsync().ConfigureAwait(false);
            try
            {
                File.Delete(_temp);
            }
            catch (IOException)
            {
                // Left for Remove-ExpiredHubBackup's stale temp sweep.
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
}
