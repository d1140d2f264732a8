using HubDr.Engine.IO;

namespace HubDr.Engine.Backup;

/// <summary>
/// The files part of a restore as one step: entries are written into a private staging folder INSIDE the target
/// (".hubdr-restore-…", so nothing is ever written outside it), and <see cref="Commit"/> then makes the target hold
/// exactly the backup's files (anything else in it is removed: links themselves, never what they point to). Disposed
/// without Commit (a refused entry, a broken archive, a failed database restore), it removes the staging folder, and the
/// target folder too if this restore created it: the target is left as it was.
/// </summary>
public sealed class FilesStaging : IDisposable
{
    private const string Prefix = ".hubdr-restore-";
    private readonly string _root;
    private readonly string _staging;
    private readonly bool _createdRoot;
    private bool _committed;

    private FilesStaging(string root, string staging, bool createdRoot)
    {
        _root = root;
        _staging = staging;
        _createdRoot = createdRoot;
    }

    public static FilesStaging Begin(string target)
    {
        var root = Path.GetFullPath(target);
        var created = !Directory.Exists(root);
        Directory.CreateDirectory(root);
        var staging = Path.Combine(root, Prefix + Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6)).ToLowerInvariant());
        try
        {
            PrivateFiles.CreateDirectory(staging);
        }
        catch
        {
            if (created)
            {
                TryDelete(root);
            }

            throw;
        }

        return new FilesStaging(root, staging, created);
    }

    /// <summary>Writes one entry into the staging folder; returns the path it will have in the target.</summary>
    public string Write(string name, byte[] content)
    {
        var path = Path.GetFullPath(Path.Combine(_staging, name.Replace('/', Path.DirectorySeparatorChar)));
        if (!path.StartsWith(_staging + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw new HubDrException("ArchiveUnsafeEntry", HubErrorCategory.InvalidData, $"Archive entry '{name}' would be written outside the target folder.") { Target = name };
        }

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using (var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
        {
            fs.Write(content);
        }

        return Path.Combine(_root, Path.GetRelativePath(_staging, path));
    }

    /// <summary>Replaces the target's contents with the staged files; returns the names of the entries it removed.</summary>
    public IReadOnlyList<string> Commit()
    {
        var removed = new List<string>();
        foreach (var entry in new DirectoryInfo(_root).EnumerateFileSystemInfos())
        {
            if (string.Equals(entry.FullName, _staging, StringComparison.Ordinal))
            {
                continue;
            }

            RemoveEntry(entry);
            removed.Add(entry.Name);
        }

        foreach (var entry in new DirectoryInfo(_staging).EnumerateFileSystemInfos())
        {
            var dest = Path.Combine(_root, entry.Name);
            if (entry is DirectoryInfo d)
            {
                d.MoveTo(dest);
            }
            else
            {
                File.Move(entry.FullName, dest);
            }
        }

        Directory.Delete(_staging, recursive: false);
        _committed = true;
        return removed;
    }

    /// <summary>Deletes a file, a folder (recursively, not following links) or a link itself.</summary>
    private static void RemoveEntry(FileSystemInfo entry)
    {
        if (entry.LinkTarget is not null)
        {
            if (entry is DirectoryInfo && OperatingSystem.IsWindows())
            {
                Directory.Delete(entry.FullName, recursive: false); // removes the link (junction/symlink), not its target
            }
            else
            {
                File.Delete(entry.FullName); // unlink: the link, not what it points to
            }
        }
        else if (entry is DirectoryInfo dir)
        {
            foreach (var child in dir.EnumerateFileSystemInfos())
            {
                RemoveEntry(child);
            }

            dir.Delete(recursive: false);
        }
        else
        {
            if (entry.Attributes.HasFlag(FileAttributes.ReadOnly))
            {
                entry.Attributes &= ~FileAttributes.ReadOnly;
            }

            entry.Delete();
        }
    }

    public void Dispose()
    {
        if (_committed)
        {
            return;
        }

        TryDelete(_staging);
        if (_createdRoot)
        {
            TryDelete(_root);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            if (Directory.Exists(path))
            {
                RemoveEntry(new DirectoryInfo(path));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
