using System.Collections;
using System.Management.Automation;
using HubDr.Engine;

namespace HubDr.Cmdlets.Infrastructure;

/// <summary>
/// The per-hub settings file (a .psd1 data file, see docs/settings.md) that scheduled jobs point to with -SettingsPath.
/// Every value can be overridden by a parameter. Relative paths are resolved against the file's folder.
/// Secrets are never read from it: only the NAME of an environment variable that holds a passphrase.
/// </summary>
public sealed class HubSettings
{
    private readonly Hashtable _data;

    private HubSettings(Hashtable data, string? baseDir)
    {
        _data = data;
        BaseDirectory = baseDir;
    }

    public static HubSettings Empty { get; } = new(new Hashtable(StringComparer.OrdinalIgnoreCase), null);

    public string? BaseDirectory { get; }

    public static HubSettings Load(PSCmdlet cmdlet, string? path)
    {
        path ??= Environment.GetEnvironmentVariable("HUBDR_SETTINGS");
        if (string.IsNullOrWhiteSpace(path))
        {
            return Empty;
        }

        var full = cmdlet.SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);
        if (!File.Exists(full))
        {
            throw new HubDrException("SettingsFileNotFound", HubErrorCategory.ObjectNotFound, $"Settings file '{full}' does not exist.") { Target = full };
        }

        Hashtable table;
        try
        {
            var result = ScriptBlock.Create("param($p) Import-PowerShellDataFile -LiteralPath $p").Invoke(full);
            table = result.Count == 1 && result[0]?.BaseObject is Hashtable h ? h
                : throw new HubDrException("SettingsFileInvalid", HubErrorCategory.InvalidData, $"Settings file '{full}' is not a PowerShell data file (@{{ ... }}).");
        }
        catch (RuntimeException e)
        {
            throw new HubDrException("SettingsFileInvalid", HubErrorCategory.InvalidData, $"Settings file '{full}' could not be read: {e.Message}", e) { Target = full };
        }

        return new HubSettings(Normalize(table), Path.GetDirectoryName(full));
    }

    /// <summary>Value at a dotted path ("Keys.Recipients"), or null.</summary>
    public object? Get(string path)
    {
        object? cur = _data;
        foreach (var part in path.Split('.'))
        {
            if (cur is not Hashtable h || !h.ContainsKey(part))
            {
                return null;
            }

            cur = h[part];
        }

        return cur is PSObject pso ? pso.BaseObject : cur;
    }

    public string? GetString(string path) => Get(path) switch
    {
        null => null,
        string s when s.Length == 0 => null,
        var v => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture),
    };

    public bool? GetBool(string path) => Get(path) switch
    {
        null => null,
        bool b => b,
        SwitchParameter sp => sp.IsPresent,
        var v => Convert.ToBoolean(v, System.Globalization.CultureInfo.InvariantCulture),
    };

    public int? GetInt(string path) => Get(path) is { } v ? Convert.ToInt32(v, System.Globalization.CultureInfo.InvariantCulture) : null;

    public string[] GetStrings(string path) => Get(path) switch
    {
        null => [],
        string s => [s],
        IEnumerable e => e.Cast<object?>().Select(o => o is PSObject p ? p.BaseObject : o).Where(o => o is not null).Select(o => o!.ToString()!).ToArray(),
        var v => [v.ToString()!],
    };

    /// <summary>A path from the settings, resolved against the settings file's folder.</summary>
    public string? GetPath(string path) => ResolveRelative(GetString(path));

    public string[] GetPaths(string path) => GetStrings(path).Select(p => ResolveRelative(p)!).ToArray();

    public Hashtable? GetTable(string path) => Get(path) as Hashtable;

    private string? ResolveRelative(string? p)
    {
        if (p is null || BaseDirectory is null || Path.IsPathRooted(p) || p.Contains("://", StringComparison.Ordinal) || p.Contains("-----BEGIN", StringComparison.Ordinal))
        {
            return p;
        }

        return Path.GetFullPath(Path.Combine(BaseDirectory, p));
    }

    private static Hashtable Normalize(Hashtable t)
    {
        var result = new Hashtable(StringComparer.OrdinalIgnoreCase);
        foreach (DictionaryEntry e in t)
        {
            var v = e.Value is PSObject p ? p.BaseObject : e.Value;
            result[e.Key.ToString()!] = v is Hashtable h ? Normalize(h) : v;
        }

        return result;
    }
}
