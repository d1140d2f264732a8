using System.Collections;
using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Reflection;
using HubDr.Engine;

namespace HubDr.Cmdlets.Infrastructure;

/// <summary>
/// The per-hub settings file (a .psd1 data file, see docs/settings.md) that scheduled jobs point to with -SettingsPath
/// (or $env:HUBDR_SETTINGS), as typed options: one class per section, loaded and validated here and nowhere else.
/// Unknown keys are warnings that name the closest known key; a value of the wrong type is a SettingValueInvalid error;
/// every relative path is resolved against the settings file's folder. Parameters override settings through
/// <see cref="HubSettingAttribute"/> (merged once, in <see cref="HubStoreCmdletBase"/>).
/// Secrets are never read from it: only the NAME of an environment variable that holds a passphrase.
/// </summary>
public sealed class HubSettings
{
    [Setting("Hub name (the first object-key segment of its backups).")]
    public string? Hub { get; set; }

    [Setting("The store: a folder, file://, s3://bucket/prefix, az://account/container/prefix or a container URL.", Path = true)]
    public string? Store { get; set; }

    public StoreSettings StoreOptions { get; } = new();

    public DatabaseSettings Database { get; } = new();

    public KeySettings Keys { get; } = new();

    public SourceSettings Sources { get; } = new();

    [Setting("Compression of the archive: zstd (default), gzip or none.")]
    public string? Compression { get; set; }

    [Setting("Compression level (zstd 1-19, gzip 1-9).")]
    public int? CompressionLevel { get; set; }

    public RestoreTargetSettings RestoreTarget { get; } = new();

    public RestoreTestSettings RestoreTest { get; } = new();

    public RetentionSettings Retention { get; } = new();

    public MonitoringSettings Monitoring { get; } = new();

    public PerformanceSettings Performance { get; } = new();

    [Setting("Recovery time objective of the restore test (default 4h).")]
    public HubDuration? Rto { get; set; }

    [Setting("Recovery point objective: the newest backup's maximum age in the restore test (default 1h).")]
    public HubDuration? Rpo { get; set; }

    /// <summary>The settings file (null: no settings).</summary>
    public string? FilePath { get; private set; }

    /// <summary>Folder of the settings file: relative paths in it are resolved against this.</summary>
    public string? BaseDirectory { get; private set; }

    /// <summary>Unknown keys, each naming the closest known key. The cmdlets write them as warnings.</summary>
    public IReadOnlyList<string> Warnings { get; private set; } = [];

    public static HubSettings Empty { get; } = new();

    /// <summary>Reads and validates a settings file (a full path). Throws SettingsFileNotFound / SettingsFileInvalid / SettingValueInvalid.</summary>
    public static HubSettings Load(string fullPath)
    {
        if (!File.Exists(fullPath))
        {
            throw new HubDrException("SettingsFileNotFound", HubErrorCategory.ObjectNotFound, $"Settings file '{fullPath}' does not exist.") { Target = fullPath };
        }

        var table = ReadDataFile(fullPath);
        var settings = new HubSettings { FilePath = fullPath, BaseDirectory = Path.GetDirectoryName(fullPath) };
        var warnings = new List<string>();
        Bind(settings, table, "", settings, warnings);
        settings.Warnings = warnings;
        return settings;
    }

    /// <summary>The value at a dotted key ("Keys.TrustedSigners"), or null when not set. Unknown keys are a programming error.</summary>
    public object? Lookup(string key)
    {
        object? current = this;
        foreach (var part in key.Split('.'))
        {
            var p = current?.GetType().GetProperty(part, BindingFlags.Public | BindingFlags.Instance)
                ?? throw new ArgumentException($"Unknown settings key '{key}'.", nameof(key));
            current = p.GetValue(current);
        }

        return current;
    }

    /// <summary>Resolves a path from the settings file against the file's folder (URIs and rooted paths unchanged).</summary>
    public string ResolvePath(string p)
    {
        if (p.StartsWith("~/", StringComparison.Ordinal) || p == "~")
        {
            p = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), p.TrimStart('~', '/'));
        }

        if (BaseDirectory is null || Path.IsPathRooted(p) || p.Contains("://", StringComparison.Ordinal) || p.Contains("-----BEGIN", StringComparison.Ordinal))
        {
            return p;
        }

        return Path.GetFullPath(Path.Combine(BaseDirectory, p));
    }

    /// <summary>Every key the file may hold (dotted), with its type, meaning and the parameters that override it (for docs/settings.md).</summary>
    public static IReadOnlyList<SettingInfo> Describe()
    {
        var parameters = typeof(HubSettings).Assembly.GetTypes()
            .Where(t => t.GetCustomAttribute<CmdletAttribute>() is not null)
            .SelectMany(t => t.GetProperties().Select(p => (Property: p, Attribute: p.GetCustomAttribute<HubSettingAttribute>())))
            .Where(x => x.Attribute is not null)
            .GroupBy(x => x.Attribute!.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Select(x => "-" + x.Property.Name).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray(), StringComparer.Ordinal);
        var rows = new List<SettingInfo>();
        void Walk(Type type, string prefix)
        {
            foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            {
                if (typeof(SettingsSection).IsAssignableFrom(p.PropertyType))
                {
                    Walk(p.PropertyType, prefix + p.Name + ".");
                }
                else if (p.GetCustomAttribute<SettingAttribute>() is { } a)
                {
                    var key = prefix + p.Name;
                    rows.Add(new SettingInfo(key, TypeName(p, a), parameters.TryGetValue(key, out var ps) ? ps : [], a.Description));
                }
            }
        }

        Walk(typeof(HubSettings), "");
        return rows;
    }

    /// <summary>Every HubSetting key used on a cmdlet parameter must exist here (checked by the tests through this).</summary>
    public static IEnumerable<string> UnknownParameterKeys()
    {
        var known = Describe().Select(r => r.Key).ToHashSet(StringComparer.Ordinal);
        return typeof(HubSettings).Assembly.GetTypes()
            .SelectMany(t => t.GetProperties())
            .Select(p => p.GetCustomAttribute<HubSettingAttribute>()?.Key)
            .Where(k => k is not null && !known.Contains(k))
            .Select(k => k!)
            .Distinct();
    }

    private static string TypeName(PropertyInfo p, SettingAttribute a)
    {
        var t = Nullable.GetUnderlyingType(p.PropertyType) ?? p.PropertyType;
        var name = t == typeof(string) ? "string"
            : t == typeof(string[]) ? "string or array"
            : t == typeof(int) ? "integer"
            : t == typeof(bool) ? "$true / $false"
            : t == typeof(HubDuration) ? "duration"
            : t == typeof(Hashtable) ? "hashtable"
            : t.Name;
        return a.Path ? (t == typeof(string[]) ? "path(s)" : "path") : name;
    }

    private static Hashtable ReadDataFile(string fullPath)
    {
        // What Import-PowerShellDataFile does, without needing a runspace (tab completion uses this too).
        var ast = Parser.ParseFile(fullPath, out _, out var errors);
        if (errors.Length > 0)
        {
            throw new HubDrException("SettingsFileInvalid", HubErrorCategory.InvalidData,
                $"Settings file '{fullPath}' could not be read: {errors[0].Message} (line {errors[0].Extent.StartLineNumber}).") { Target = fullPath };
        }

        if (ast.Find(a => a is HashtableAst, false) is not HashtableAst data)
        {
            throw new HubDrException("SettingsFileInvalid", HubErrorCategory.InvalidData, $"Settings file '{fullPath}' is not a PowerShell data file (@{{ ... }}).") { Target = fullPath };
        }

        try
        {
            return data.SafeGetValue() as Hashtable
                ?? throw new HubDrException("SettingsFileInvalid", HubErrorCategory.InvalidData, $"Settings file '{fullPath}' is not a PowerShell data file (@{{ ... }}).") { Target = fullPath };
        }
        catch (InvalidOperationException e)
        {
            throw new HubDrException("SettingsFileInvalid", HubErrorCategory.InvalidData,
                $"Settings file '{fullPath}' may only hold constant values (strings, numbers, $true/$false, arrays, hashtables): {e.Message}", e) { Target = fullPath };
        }
    }

    private static void Bind(object target, Hashtable table, string prefix, HubSettings root, List<string> warnings)
    {
        var props = target.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetCustomAttribute<SettingAttribute>() is not null || typeof(SettingsSection).IsAssignableFrom(p.PropertyType))
            .ToList();
        foreach (DictionaryEntry e in table)
        {
            var name = Convert.ToString(e.Key, CultureInfo.InvariantCulture) ?? "";
            var key = prefix + name;
            var prop = props.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase));
            if (prop is null)
            {
                var guess = Closest(key);
                warnings.Add($"Settings file '{root.FilePath}': unknown key '{key}' is ignored" + (guess is null ? "." : $" (did you mean '{guess}'?)."));
                continue;
            }

            var value = e.Value is PSObject pso ? pso.BaseObject : e.Value;
            if (typeof(SettingsSection).IsAssignableFrom(prop.PropertyType))
            {
                if (value is not Hashtable inner)
                {
                    throw WrongType(root, key, "a hashtable (@{ ... })", value);
                }

                Bind(prop.GetValue(target)!, inner, key + ".", root, warnings);
                continue;
            }

            prop.SetValue(target, ConvertValue(value, prop, prop.GetCustomAttribute<SettingAttribute>()!, key, root));
        }
    }

    private static object? ConvertValue(object? value, PropertyInfo prop, SettingAttribute attr, string key, HubSettings root)
    {
        if (value is null)
        {
            return null;
        }

        var t = Nullable.GetUnderlyingType(prop.PropertyType) ?? prop.PropertyType;
        if (t == typeof(string))
        {
            var s = value switch
            {
                string str => str,
                int or long or double or decimal => Convert.ToString(value, CultureInfo.InvariantCulture),
                _ => throw WrongType(root, key, "a string", value),
            };
            return string.IsNullOrEmpty(s) ? null : attr.Path ? root.ResolvePath(s!) : s;
        }

        if (t == typeof(string[]))
        {
            var items = value is string one ? [one]
                : value is IEnumerable list and not IDictionary ? list.Cast<object?>().Select(o => o is PSObject p ? p.BaseObject : o).ToArray()
                : throw WrongType(root, key, "a string or an array of strings", value);
            var strings = items.Select(o => o as string ?? throw WrongType(root, key, "a string or an array of strings", value)).Where(s => s.Length > 0);
            return strings.Select(s => attr.Path ? root.ResolvePath(s) : s).ToArray();
        }

        if (t == typeof(int))
        {
            return value switch
            {
                int i => i,
                long l when l is >= int.MinValue and <= int.MaxValue => (int)l,
                string s when int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i) => i,
                _ => throw WrongType(root, key, "a whole number", value),
            };
        }

        if (t == typeof(bool))
        {
            return value is bool b ? b : throw WrongType(root, key, "$true or $false", value);
        }

        if (t == typeof(HubDuration))
        {
            try
            {
                return value switch
                {
                    string s => HubDuration.Parse(s),
                    TimeSpan ts => new HubDuration(ts),
                    _ => throw WrongType(root, key, "a duration such as '14d', '4h', '90min' or '04:00:00'", value),
                };
            }
            catch (HubDrException ex) when (ex.ErrorId == "DurationInvalid")
            {
                throw new HubDrException("SettingValueInvalid", HubErrorCategory.InvalidData, $"Settings file '{root.FilePath}': {key}: {ex.Message}", ex) { Target = key };
            }
        }

        if (t == typeof(Hashtable))
        {
            if (value is not IDictionary d)
            {
                throw WrongType(root, key, "a hashtable (@{ name = 'value' })", value);
            }

            var h = new Hashtable(StringComparer.OrdinalIgnoreCase);
            foreach (DictionaryEntry de in d)
            {
                h[de.Key] = de.Value is PSObject p ? p.BaseObject : de.Value;
            }

            return h;
        }

        throw new InvalidOperationException($"Settings property {key} has an unsupported type {t}.");
    }

    private static HubDrException WrongType(HubSettings root, string key, string expected, object? value) =>
        new("SettingValueInvalid", HubErrorCategory.InvalidData,
            $"Settings file '{root.FilePath}': {key} must be {expected}, not {Describe(value)}.") { Target = key };

    private static string Describe(object? value) => value switch
    {
        null => "$null",
        string s => $"'{s}'",
        Hashtable => "a hashtable",
        IEnumerable => "an array",
        bool b => b ? "$true" : "$false",
        _ => $"{value} ({value.GetType().Name})",
    };

    /// <summary>The known key closest to a mistyped one (edit distance, compared case-insensitively), if any is close.</summary>
    internal static string? Closest(string key)
    {
        var keys = Describe().Select(r => r.Key)
            .Concat(typeof(HubSettings).GetProperties().Where(p => typeof(SettingsSection).IsAssignableFrom(p.PropertyType)).Select(p => p.Name));
        var last = key.Contains('.', StringComparison.Ordinal) ? key[(key.LastIndexOf('.') + 1)..] : key;
        var best = keys
            .Select(k => (Key: k, Distance: Math.Min(Distance(key, k), Distance(last, k[(k.LastIndexOf('.') + 1)..]) + (SamePrefix(key, k) ? 0 : 2))))
            .OrderBy(x => x.Distance).ThenBy(x => x.Key, StringComparer.Ordinal)
            .FirstOrDefault();
        return best.Key is not null && best.Distance <= Math.Max(2, last.Length / 3) ? best.Key : null;
    }

    private static bool SamePrefix(string a, string b)
    {
        var pa = a.Contains('.', StringComparison.Ordinal) ? a[..a.LastIndexOf('.')] : "";
        var pb = b.Contains('.', StringComparison.Ordinal) ? b[..b.LastIndexOf('.')] : "";
        return string.Equals(pa, pb, StringComparison.OrdinalIgnoreCase);
    }

    private static int Distance(string a, string b)
    {
        a = a.ToLowerInvariant();
        b = b.ToLowerInvariant();
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }

        for (var j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }
        }

        return d[a.Length, b.Length];
    }
}

/// <summary>One key of the settings file, for docs/settings.md.</summary>
public sealed record SettingInfo(string Key, string Type, string[] Parameters, string Description);

/// <summary>Marks a settings property: its meaning (for docs) and whether it is a path resolved against the file's folder.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class SettingAttribute(string description) : Attribute
{
    public string Description { get; } = description;

    public bool Path { get; init; }
}

/// <summary>
/// Marks a cmdlet parameter whose value, when the parameter is not given, comes from this settings key. The merge is
/// done once for every cmdlet (HubStoreCmdletBase.ApplySettings), with the parameter's ValidateSet/ValidateRange applied.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class HubSettingAttribute(string key) : Attribute
{
    public string Key { get; } = key;
}

/// <summary>Base of the settings sections (tables in the file).</summary>
public abstract class SettingsSection
{
}

public sealed class StoreSettings : SettingsSection
{
    [Setting("S3-compatible endpoint URL (MinIO, Ceph, an emulator); AWS when omitted.")]
    public string? Endpoint { get; set; }

    [Setting("AWS region (or the signing region of an S3-compatible endpoint).")]
    public string? Region { get; set; }

    [Setting("S3 path-style addressing (default: on with an endpoint, off for AWS).")]
    public bool? ForcePathStyle { get; set; }

    [Setting("Server-side encryption passed to S3 (AES256 or aws:kms), in addition to HubDr's own OpenPGP encryption.")]
    public string? ServerSideEncryption { get; set; }

    [Setting("KMS key id for ServerSideEncryption = 'aws:kms'.")]
    public string? KmsKeyId { get; set; }

    [Setting("Azure encryption scope.")]
    public string? EncryptionScope { get; set; }

    [Setting("Azure managed identity (Azure Automation, VMs).")]
    public bool? UseManagedIdentity { get; set; }

    [Setting("Client id of a user-assigned managed identity.")]
    public string? ManagedIdentityClientId { get; set; }

    [Setting("S3 Object Lock mode used with -RetainUntil: GOVERNANCE or COMPLIANCE.")]
    public string? LockMode { get; set; }

    [Setting("Retries of a failed store request (default 5).")]
    public int? MaxRetries { get; set; }
}

public sealed class DatabaseSettings : SettingsSection
{
    [Setting("Engine of the source database: sqlite, postgres or mysql (mariadb).")]
    public string? Engine { get; set; }

    [Setting("SQLite: the database file (relative to the settings file). PostgreSQL/MySQL: an ADO.NET connection string without a password.")]
    public string? ConnectionString { get; set; }

    [Setting("Folder holding pg_dump / mariadb-dump when not on PATH.", Path = true)]
    public string? ToolPath { get; set; }

    [Setting("PostgreSQL dump format: custom (default) or plain.")]
    public string? DumpFormat { get; set; }
}

public sealed class KeySettings : SettingsSection
{
    [Setting("Public keys (files or folders) the archive is encrypted to.", Path = true)]
    public string[]? Recipients { get; set; }

    [Setting("Secret key file (or folder) that signs backups.", Path = true)]
    public string[]? SigningKey { get; set; }

    [Setting("Fingerprint of the signing key when the files hold several.")]
    public string? Signer { get; set; }

    [Setting("The only public keys whose signatures count.", Path = true)]
    public string[]? TrustedSigners { get; set; }

    [Setting("Current and retired decryption keys (files or folders).", Path = true)]
    public string[]? SecretKeys { get; set; }

    [Setting("Key rotation history (keys.json).", Path = true)]
    public string? Metadata { get; set; }

    [Setting("NAME of the environment variable that holds the key passphrase (default HUBDR_KEY_PASSPHRASE).")]
    public string? PassphraseEnvironmentVariable { get; set; }
}

public sealed class SourceSettings : SettingsSection
{
    [Setting("Module manifest files or folders.", Path = true)]
    public string[]? ManifestPaths { get; set; }

    [Setting("Command that exports the module manifests, e.g. 'hub-cli export-manifests --output {path}'.")]
    public string? ManifestCommand { get; set; }

    [Setting("Configuration files or folders.", Path = true)]
    public string[]? ConfigPaths { get; set; }

    [Setting("Command that exports the configuration, e.g. 'hub-cli export-config --output {path}'.")]
    public string? ConfigCommand { get; set; }

    [Setting("Environment variables with these name prefixes are captured (redacted) into config/env.json.")]
    public string[]? EnvironmentPrefixes { get; set; }

    [Setting("Extra names (wildcards allowed) whose values are always redacted.")]
    public string[]? SecretNames { get; set; }

    [Setting("Names never redacted by name (values that look like secrets still are).")]
    public string[]? NotSecretNames { get; set; }
}

public sealed class RestoreTargetSettings : SettingsSection
{
    [Setting("Engine of the restore target (default: the backup's).")]
    public string? Engine { get; set; }

    [Setting("Target database: SQLite file (relative to the settings file) or a PostgreSQL/MySQL connection string without a password.")]
    public string? ConnectionString { get; set; }

    [Setting("Folder that receives config/, manifests/ and keys/.", Path = true)]
    public string? FilesPath { get; set; }

    [Setting("Command run after the files are restored, e.g. 'hub-cli import-config --input {path}'.")]
    public string? ImportCommand { get; set; }

    [Setting("Folder holding pg_restore/psql or mariadb when not on PATH.", Path = true)]
    public string? ToolPath { get; set; }
}

public sealed class RestoreTestSettings : SettingsSection
{
    [Setting("Engine of the staging database (default: the backup's).")]
    public string? Engine { get; set; }

    [Setting("PostgreSQL/MySQL staging server (connection string without password) on which a throwaway database is created.")]
    public string? ConnectionString { get; set; }

    [Setting("Folder under which the run's staging folder is created (default: the temp folder).", Path = true)]
    public string? StagingPath { get; set; }

    [Setting("Command that starts the Hub service against staging (placeholders {engine} {connection} {database} {files} {port} {url}).")]
    public string? ServiceCommand { get; set; }

    [Setting("Environment variables for the service command.")]
    public Hashtable? ServiceEnvironment { get; set; }

    [Setting("Health endpoint polled until the service is up (default /health).")]
    public string? HealthPath { get; set; }

    [Setting("How long the service may take to become healthy (default 90s).")]
    public HubDuration? ServiceStartTimeout { get; set; }

    [Setting("Declarative HTTP smoke suite (JSON).", Path = true)]
    public string? SmokeSuite { get; set; }

    [Setting("Variables for the smoke suite (merged with -SmokeVariable, which wins).")]
    public Hashtable? SmokeVariables { get; set; }

    [Setting("The operator's own Pester tests.", Path = true)]
    public string[]? PesterPath { get; set; }

    [Setting("Regular expressions that fail the test when they match a service log line.")]
    public string[]? ErrorPatterns { get; set; }

    [Setting("How old the newest backup may be (default 7d).")]
    public HubDuration? MaxBackupAge { get; set; }

    [Setting("Accept a test that restores and checks the database without starting the application ($true: verdict 'database only').")]
    public bool? DatabaseOnly { get; set; }
}

public sealed class RetentionSettings : SettingsSection
{
    [Setting("Keep the newest N backups.")]
    public int? KeepLast { get; set; }

    [Setting("Keep the newest backup of each of the last N hours.")]
    public int? KeepHourly { get; set; }

    [Setting("Keep the newest backup of each of the last N days.")]
    public int? KeepDaily { get; set; }

    [Setting("Keep the newest backup of each of the last N weeks.")]
    public int? KeepWeekly { get; set; }

    [Setting("Keep the newest backup of each of the last N months.")]
    public int? KeepMonthly { get; set; }

    [Setting("Keep the newest backup of each of the last N years.")]
    public int? KeepYearly { get; set; }

    [Setting("Keep every backup within this duration of the newest one.")]
    public HubDuration? KeepWithin { get; set; }

    [Setting("Keep hourly backups within this duration.")]
    public HubDuration? KeepWithinHourly { get; set; }

    [Setting("Keep daily backups within this duration (runbook: 14d).")]
    public HubDuration? KeepWithinDaily { get; set; }

    [Setting("Keep weekly backups within this duration (runbook: 12w).")]
    public HubDuration? KeepWithinWeekly { get; set; }

    [Setting("Keep monthly backups within this duration (runbook: 12m).")]
    public HubDuration? KeepWithinMonthly { get; set; }

    [Setting("Keep yearly backups within this duration.")]
    public HubDuration? KeepWithinYearly { get; set; }

    [Setting("Backups carrying these labels are kept.")]
    public string[]? KeepLabel { get; set; }

    [Setting("Time zone (IANA or Windows id) in which days, weeks and months are delimited (default UTC).")]
    public string? TimeZone { get; set; }

    [Setting("Incomplete backups younger than this are left alone (default 1d).")]
    public HubDuration? IncompleteGracePeriod { get; set; }

    [Setting("Apply the runbook's policy (daily within 14 days, weekly within 12 weeks, monthly within 12 months) when no Keep* rule is given.")]
    public bool? UseRunbookPolicy { get; set; }
}

public sealed class PerformanceSettings : SettingsSection
{
    [Setting("Memory cap in MB of the backup pipeline beyond PowerShell itself (zstd workers, part and upload buffers). Default: none; 64 in Azure Automation; 0: no cap.")]
    public int? MaxMemoryMB { get; set; }
}

public sealed class MonitoringSettings : SettingsSection
{
    [Setting("Prometheus textfile-collector file.", Path = true)]
    public string? MetricsPath { get; set; }

    [Setting("Local audit log (JSON lines).", Path = true)]
    public string? AuditLogPath { get; set; }

    [Setting("Also write audit records into the store under _audit/ (default $true).")]
    public bool? AuditToStore { get; set; }

    [Setting("Webhook that receives a JSON alert on failure.")]
    public string? WebhookUrl { get; set; }
}
