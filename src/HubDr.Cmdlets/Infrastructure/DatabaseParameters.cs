using System.Management.Automation;
using HubDr.Engine;
using HubDr.Engine.Databases;

namespace HubDr.Cmdlets.Infrastructure;

internal static class DatabaseParameters
{
    /// <summary>
    /// Builds a DatabaseSpec from parameters (already merged with the settings <paramref name="section"/>). A SQLite
    /// path is resolved with <paramref name="resolvePath"/>: against $PWD for a parameter, against the settings file's
    /// folder for a value from the settings.
    /// </summary>
    public static DatabaseSpec Build(string section, string? engine, string? connectionString, PSCredential? credential,
        string? toolPath, string? dumpFormat, Func<string, string> resolvePath)
    {
        if (engine is null || connectionString is null)
        {
            throw new HubDrException("DatabaseNotSpecified", HubErrorCategory.InvalidArgument,
                $"No database was given. Pass -DatabaseEngine and -ConnectionString, or set {section}.Engine and {section}.ConnectionString in the settings file.");
        }

        var normalized = DatabaseEngineFactory.Normalize(engine);
        if (normalized == "sqlite")
        {
            connectionString = SqlitePath(connectionString, resolvePath);
        }

        return new DatabaseSpec
        {
            Engine = normalized,
            ConnectionString = connectionString,
            Credential = credential?.GetNetworkCredential(),
            ToolPath = toolPath,
            DumpFormat = dumpFormat,
        };
    }

    /// <summary>SQLite accepts a bare path or "Data Source=path"; relative paths resolve with the given resolver.</summary>
    private static string SqlitePath(string cs, Func<string, string> resolvePath)
    {
        const string key = "Data Source=";
        if (cs.StartsWith(key, StringComparison.OrdinalIgnoreCase))
        {
            var rest = cs[key.Length..];
            var semi = rest.IndexOf(';', StringComparison.Ordinal);
            var path = semi < 0 ? rest : rest[..semi];
            return key + resolvePath(path) + (semi < 0 ? "" : rest[semi..]);
        }

        return key + resolvePath(cs);
    }

    /// <summary>Connection string for display: passwords removed.</summary>
    public static string Display(DatabaseSpec spec) =>
        System.Text.RegularExpressions.Regex.Replace(spec.ConnectionString, @"(?i)(password|pwd)\s*=\s*[^;]*", "$1=***");
}
