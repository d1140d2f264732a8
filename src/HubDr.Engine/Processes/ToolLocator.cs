namespace HubDr.Engine.Processes;

/// <summary>Which product's standard install folders to probe for a tool.</summary>
public enum ToolFamily
{
    PostgreSql,
    MariaDbMySql,
}

/// <summary>
/// Finds a database client tool: in ToolPath when given (and only there), else on PATH, else — on Windows, whose
/// PostgreSQL and MariaDB installers do not put their bin folder on PATH — in the products' standard install folders,
/// newest version first: <c>%ProgramFiles%\PostgreSQL\&lt;version&gt;\bin</c>, <c>%ProgramFiles%\MariaDB &lt;version&gt;\bin</c>,
/// <c>%ProgramFiles%\MySQL\MySQL Server &lt;version&gt;\bin</c>. On Windows <c>name.exe</c> is preferred to <c>name</c>.
/// The file system and the environment are a seam (the constructor), so a Linux test can walk a fake Program Files tree
/// with Windows' search order.
/// </summary>
public sealed class ToolLocator
{
    private static readonly AsyncLocal<ToolLocator?> Overridden = new();
    private readonly Func<string, string?> _variable;
    private readonly Func<string, bool> _fileExists;
    private readonly Func<string, IEnumerable<string>> _directories;
    private readonly bool _windows;
    private readonly char _pathSeparator;

    public ToolLocator(Func<string, string?> variable, Func<string, bool> fileExists, Func<string, IEnumerable<string>> directories, bool isWindows, char pathSeparator)
    {
        _variable = variable;
        _fileExists = fileExists;
        _directories = directories;
        _windows = isWindows;
        _pathSeparator = pathSeparator;
    }

    /// <summary>The real file system, environment and OS (or a test's locator, see <see cref="Use"/>).</summary>
    public static ToolLocator Current => Overridden.Value ?? new ToolLocator(
        Environment.GetEnvironmentVariable, File.Exists, SafeDirectories, OperatingSystem.IsWindows(), Path.PathSeparator);

    /// <summary>Test seam: makes <see cref="Current"/> return <paramref name="locator"/> in this async flow until disposed.</summary>
    public static IDisposable Use(ToolLocator locator)
    {
        var previous = Overridden.Value;
        Overridden.Value = locator;
        return new Restore(previous);
    }

    public bool IsWindows => _windows;

    /// <summary>The first of <paramref name="names"/> found (see the class summary for the order), or null.</summary>
    public string? Find(string? toolPath, ToolFamily family, params string[] names)
    {
        if (!string.IsNullOrWhiteSpace(toolPath))
        {
            return names.Select(n => InFolder(toolPath, n)).FirstOrDefault(p => p is not null);
        }

        var path = _variable("PATH") ?? "";
        var dirs = path.Split(_pathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var name in names)
        {
            foreach (var dir in dirs)
            {
                if (InFolder(dir.Trim('"'), name) is { } found)
                {
                    return found;
                }
            }
        }

        foreach (var dir in InstallFolders(family))
        {
            foreach (var name in names)
            {
                if (InFolder(dir, name) is { } found)
                {
                    return found;
                }
            }
        }

        return null;
    }

    /// <summary>The standard install folders probed on Windows for <paramref name="family"/>, in search order (empty elsewhere).</summary>
    public IReadOnlyList<string> InstallFolders(ToolFamily family)
    {
        var result = new List<string>();
        if (!_windows)
        {
            return result;
        }

        foreach (var root in ProgramFilesRoots())
        {
            switch (family)
            {
                case ToolFamily.PostgreSql:
                    result.AddRange(Versioned(Path.Combine(root, "PostgreSQL"), "").Select(v => Path.Combine(v, "bin")));
                    break;
                case ToolFamily.MariaDbMySql:
                    result.AddRange(Versioned(root, "MariaDB ").Select(v => Path.Combine(v, "bin")));
                    result.AddRange(Versioned(Path.Combine(root, "MySQL"), "MySQL Server ").Select(v => Path.Combine(v, "bin")));
                    break;
            }
        }

        return result;
    }

    /// <summary>Where to look, for the DatabaseToolNotFound message.</summary>
    public string Searched(string? toolPath, ToolFamily family)
    {
        if (!string.IsNullOrWhiteSpace(toolPath))
        {
            return $"in '{toolPath}'";
        }

        if (!_windows)
        {
            return "on PATH";
        }

        return family == ToolFamily.PostgreSql
            ? @"on PATH or in %ProgramFiles%\PostgreSQL\<version>\bin"
            : @"on PATH, in %ProgramFiles%\MariaDB <version>\bin or in %ProgramFiles%\MySQL\MySQL Server <version>\bin";
    }

    private string? InFolder(string dir, string name)
    {
        var candidates = _windows ? new[] { name + ".exe", name } : [name, name + ".exe"];
        foreach (var c in candidates)
        {
            var full = Path.Combine(dir, c);
            if (_fileExists(full))
            {
                return full;
            }
        }

        return null;
    }

    private IEnumerable<string> ProgramFilesRoots()
    {
        // A 32-bit process sees ProgramFiles = "Program Files (x86)"; ProgramW6432 is the 64-bit folder either way.
        var roots = new[] { _variable("ProgramW6432"), _variable("ProgramFiles"), _variable("ProgramFiles(x86)") };
        return roots.Where(r => !string.IsNullOrWhiteSpace(r)).Select(r => r!.TrimEnd('\\', '/')).Distinct(StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>Subfolders of <paramref name="parent"/> named "&lt;prefix&gt;&lt;version&gt;", newest version first.</summary>
    private IEnumerable<string> Versioned(string parent, string prefix)
    {
        var found = new List<(Version Version, string Dir)>();
        foreach (var dir in _directories(parent))
        {
            var name = Path.GetFileName(dir.TrimEnd('\\', '/'));
            if (!name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            var text = name[prefix.Length..].Trim();
            // "16", "9.6", "11.4", "8.0"; a lone number is not a valid System.Version.
            if (Version.TryParse(text.Contains('.', StringComparison.Ordinal) ? text : text + ".0", out var v))
            {
                found.Add((v, dir));
            }
        }

        return found.OrderByDescending(f => f.Version).Select(f => f.Dir);
    }

    private static IEnumerable<string> SafeDirectories(string path)
    {
        try
        {
            return Directory.Exists(path) ? Directory.GetDirectories(path) : [];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private sealed class Restore(ToolLocator? previous) : IDisposable
    {
        public void Dispose() => Overridden.Value = previous;
    }
}
