using System.Collections.Concurrent;
using System.Management.Automation;
using System.Reflection;
using System.Security;
using HubDr.Engine;
using HubDr.Engine.Backup;
using HubDr.Engine.Monitoring;
using HubDr.Engine.Sources;
using HubDr.Engine.Stores;

namespace HubDr.Cmdlets.Infrastructure;

/// <summary>Parameters every store-facing cmdlet shares: the settings file and how to reach the store.</summary>
public abstract class HubStoreCmdletBase : HubCmdletBase
{
    private static readonly ConcurrentDictionary<Type, List<(PropertyInfo Property, string Key)>> SettingParameterCache = new();
    private readonly HashSet<string> _fromSettings = new(StringComparer.OrdinalIgnoreCase);
    private HubSettings? _settings;

    /// <summary>Per-hub settings file (.psd1); defaults to $env:HUBDR_SETTINGS when set.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? SettingsPath { get; set; }

    /// <summary>S3 access key id + secret key, or Azure account name + account key.</summary>
    [Parameter]
    [Credential]
    public PSCredential? StoreCredential { get; set; }

    /// <summary>S3-compatible endpoint URL (MinIO, Ceph, an emulator); AWS when omitted.</summary>
    [Parameter]
    [HubSetting("StoreOptions.Endpoint")]
    public string? StoreEndpoint { get; set; }

    [Parameter]
    [HubSetting("StoreOptions.Region")]
    public string? StoreRegion { get; set; }

    /// <summary>Azure SAS token (SecureString).</summary>
    [Parameter]
    public SecureString? StoreSasToken { get; set; }

    /// <summary>Azure storage connection string (SecureString).</summary>
    [Parameter]
    public SecureString? StoreConnectionString { get; set; }

    /// <summary>Azure managed identity (Azure Automation, VMs).</summary>
    [Parameter]
    [HubSetting("StoreOptions.UseManagedIdentity")]
    public SwitchParameter UseManagedIdentity { get; set; }

    /// <summary>Prometheus textfile-collector file (e.g. /var/lib/node_exporter/textfile_collector/hubdr.prom); counters survive across runs.</summary>
    [Parameter]
    [HubSetting("Monitoring.MetricsPath")]
    public string? MetricsPath { get; set; }

    /// <summary>Local audit log (JSON lines). Records also go into the store under _audit/ unless Monitoring.AuditToStore = $false.</summary>
    [Parameter]
    [HubSetting("Monitoring.AuditLogPath")]
    public string? AuditLogPath { get; set; }

    /// <summary>Webhook that receives a JSON alert on failure (generic receivers, Slack/Teams "text" field).</summary>
    [Parameter]
    [HubSetting("Monitoring.WebhookUrl")]
    public Uri? WebhookUrl { get; set; }

    /// <summary>The settings file (-SettingsPath, else $env:HUBDR_SETTINGS), loaded once; its warnings are written once.</summary>
    protected HubSettings Settings
    {
        get
        {
            if (_settings is null)
            {
                var path = SettingsPath ?? Environment.GetEnvironmentVariable("HUBDR_SETTINGS");
                _settings = string.IsNullOrWhiteSpace(path) ? HubSettings.Empty : HubSettings.Load(ResolvePath(path));
                foreach (var w in _settings.Warnings)
                {
                    WriteWarning(w);
                }
            }

            return _settings;
        }
    }

    /// <summary>Parameters (and the properties the settings filled in) whose value came from the settings file.</summary>
    protected bool FromSettings(string parameterName) => _fromSettings.Contains(parameterName);

    /// <summary>Settings are merged into the parameters before each pipeline item (pipeline binding may change between items).</summary>
    protected override void BeforeItem() => ApplySettings();

    /// <summary>
    /// Parameter-over-setting merging, written once: every parameter marked [HubSetting("Key")] that was not given
    /// (on the command line, by $PSDefaultParameterValues or from the pipeline) takes the settings value, checked
    /// against the parameter's ValidateSet/ValidateRange. Paths in the settings are already absolute (resolved against
    /// the settings file's folder).
    /// </summary>
    protected void ApplySettings()
    {
        var bound = MyInvocation.BoundParameters;
        foreach (var (prop, key) in SettingParameters(GetType()))
        {
            if (bound.ContainsKey(prop.Name))
            {
                _fromSettings.Remove(prop.Name);
                continue;
            }

            var value = Settings.Lookup(key);
            if (value is null)
            {
                continue;
            }

            object? converted;
            try
            {
                converted = LanguagePrimitives.ConvertTo(value, prop.PropertyType, System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (PSInvalidCastException e)
            {
                throw new HubDrException("SettingValueInvalid", HubErrorCategory.InvalidData,
                    $"Settings file '{Settings.FilePath}': {key} = '{value}' does not fit -{prop.Name}: {e.Message}", e) { Target = key };
            }

            prop.SetValue(this, Validate(prop, key, converted));
            _fromSettings.Add(prop.Name);
        }
    }

    private object? Validate(PropertyInfo prop, string key, object? value)
    {
        if (Canonical(prop, value) is { } canonical)
        {
            var set = (ValidateSetAttribute)prop.GetCustomAttributes(typeof(ValidateSetAttribute), true)[0];
            foreach (var v in canonical as string[] ?? [(string)canonical])
            {
                if (!set.ValidValues.Contains(v, StringComparer.Ordinal))
                {
                    throw new HubDrException("SettingValueInvalid", HubErrorCategory.InvalidData,
                        $"Settings file '{Settings.FilePath}': {key} = '{v}' is not one of {string.Join(", ", set.ValidValues)}.") { Target = key };
                }
            }

            return canonical;
        }

        if (prop.GetCustomAttributes(typeof(ValidateRangeAttribute), true).FirstOrDefault() is ValidateRangeAttribute range && value is IComparable c
            && (c.CompareTo(Convert.ChangeType(range.MinRange, value.GetType(), System.Globalization.CultureInfo.InvariantCulture)) < 0
                || c.CompareTo(Convert.ChangeType(range.MaxRange, value.GetType(), System.Globalization.CultureInfo.InvariantCulture)) > 0))
        {
            throw new HubDrException("SettingValueInvalid", HubErrorCategory.InvalidData,
                $"Settings file '{Settings.FilePath}': {key} = {value} is outside {range.MinRange}-{range.MaxRange}.") { Target = key };
        }

        return value;
    }

    private static List<(PropertyInfo Property, string Key)> SettingParameters(Type t) =>
        SettingParameterCache.GetOrAdd(t, type => type.GetProperties()
            .Where(p => p.GetCustomAttributes<ParameterAttribute>().Any())
            .Select(p => (p, p.GetCustomAttribute<HubSettingAttribute>()?.Key))
            .Where(x => x.Key is not null)
            .Select(x => (x.p, x.Key!))
            .ToList());

    /// <summary>Resolves parameter paths against $PWD (settings paths are already absolute, and stay as they are).</summary>
    protected string[] ResolvePaths(string[]? paths) => paths?.Select(ResolvePath).ToArray() ?? [];

    /// <summary>The hub (from -Hub or the settings), or HubNameMissing.</summary>
    protected static string RequireHub(string? hub) =>
        hub ?? throw new HubDrException("HubNameMissing", HubErrorCategory.InvalidArgument, "No hub name: pass -Hub or set Hub in the settings file.");

    /// <summary>BackupNotFound (ObjectNotFound) unless the store holds at least one object of this backup.</summary>
    internal static async Task RequireBackupAsync(IBackupStore store, string hub, string backupId, CancellationToken ct)
    {
        ObjectLayout.ValidateHub(hub);
        await foreach (var _ in store.ListAsync(ObjectLayout.Folder(hub, backupId), ct).ConfigureAwait(false))
        {
            return;
        }

        throw BackupNotFound(store.Location, hub, backupId);
    }

    internal static HubDrException BackupNotFound(string location, string hub, string backupId) =>
        new("BackupNotFound", HubErrorCategory.ObjectNotFound, $"There is no backup '{backupId}' of hub '{hub}' in {location}.") { Target = backupId };

    /// <summary>
    /// Runbook "Validation &amp; Monitoring": records one operation's outcome as metrics, an audit record (locally and in
    /// the store) and, on failure, a webhook alert. Never throws: a monitoring problem is a warning, not a second failure.
    /// </summary>
    protected void Observe(string operation, string? hub, string? backupId, bool success, TimeSpan duration, long? bytes,
        Exception? error, StoreSpec? store, IReadOnlyDictionary<string, string>? details = null, string? alertSummary = null)
    {
        hub ??= "unknown";
        // The audit record carries the same ErrorId as the ErrorRecord the operator sees.
        var errorId = error is null ? null : ToErrorRecord(error).FullyQualifiedErrorId;
        var metricsPath = MetricsPath is not null ? ResolvePath(MetricsPath) : null;
        var auditPath = AuditLogPath is not null ? ResolvePath(AuditLogPath) : null;
        var webhook = WebhookUrl;
        var auditToStore = Settings.Monitoring.AuditToStore ?? true;
        var record = new AuditRecord
        {
            Operation = operation,
            Hub = hub,
            BackupId = backupId,
            Outcome = success ? "success" : "failure",
            DurationSeconds = duration.TotalSeconds,
            ErrorId = errorId,
            Error = error?.Message,
            Details = details,
        };
        void Try(string what, Action a)
        {
            try
            {
                a();
            }
            catch (Exception e) when (IsFailure(e))
            {
                WriteWarning($"Could not write {what}: {e.Message}");
            }
        }

        if (metricsPath is not null)
        {
            Try("metrics", () => new MetricsFile(metricsPath).Record(new OperationOutcome(operation, hub, success, DateTimeOffset.UtcNow, duration, bytes)));
        }

        if (auditPath is not null)
        {
            Try("the audit log", () => new AuditLog(auditPath, new Redactor()).Append(record));
        }

        if (store is not null && auditToStore && errorId is not ("StoreNotFound" or "StoreUriMissing" or "StoreAccessDenied" or "StoreNotInitialized" or "StoreFull" or "StoreReadOnly"))
        {
            Try("the audit record to the store", () => RunEngine(async (log, ct) =>
            {
                await using var s = StoreFactory.Create(store);
                // Never create _audit/ in a store that is not HubDr's (a mistyped -Store).
                if (!(await Engine.Backup.StoreMarker.InspectAsync(s, ct).ConfigureAwait(false)).IsHubDrStore)
                {
                    log.Verbose($"No audit record written to {s.Location}: it is not a HubDr store.");
                    return "";
                }

                return await AuditLog.WriteToStoreAsync(s, record, ct).ConfigureAwait(false);
            }));
        }

        if (!success && webhook is not null)
        {
            Try("the webhook alert", () =>
            {
                var alert = new Alert(operation + "_failed", hub, backupId, alertSummary ?? $"HubDr {operation} of hub '{hub}' failed: {error?.Message}",
                    record.ErrorId, DateTimeOffset.UtcNow, details?.ToDictionary(k => k.Key, v => (object?)v.Value));
                var result = RunEngine(async (_, ct) =>
                {
                    using var n = new WebhookNotifier(webhook);
                    return await n.NotifyAsync(alert, ct).ConfigureAwait(false);
                });
                if (!result.Delivered)
                {
                    WriteWarning($"The failure alert was not delivered after {result.Attempts} attempt(s): {result.Error}");
                }
            });
        }
    }

    /// <summary>How to reach the store: -Store (or the Store setting, merged into it) plus the store options and credentials.</summary>
    protected StoreSpec BuildStoreSpec(string? store)
    {
        var uri = store ?? throw new HubDrException("StoreUriMissing", HubErrorCategory.InvalidArgument,
            "No store was given. Pass -Store (a folder, file://, s3:// or az:// URI) or set Store in the settings file.");
        return StoreSpecFromSettings(Settings, StoreFactory.SchemeOf(uri) == "" ? ResolvePath(uri) : uri, StoreEndpoint, StoreRegion, UseManagedIdentity.IsPresent,
            StoreCredential, StoreSasToken, StoreConnectionString);
    }

    /// <summary>A StoreSpec from a store URI and the settings' store options (also used by tab completion).</summary>
    internal static StoreSpec StoreSpecFromSettings(HubSettings settings, string uri, string? endpoint, string? region, bool managedIdentity,
        PSCredential? credential = null, SecureString? sasToken = null, SecureString? connectionString = null)
    {
        var o = settings.StoreOptions;
        var s3Style = StoreFactory.SchemeOf(uri) == "s3";
        return new StoreSpec
        {
            Uri = uri,
            Endpoint = endpoint ?? o.Endpoint,
            Region = region ?? o.Region,
            ForcePathStyle = o.ForcePathStyle,
            UseManagedIdentity = managedIdentity || (o.UseManagedIdentity ?? false),
            ManagedIdentityClientId = o.ManagedIdentityClientId,
            ServerSideEncryption = o.ServerSideEncryption,
            KmsKeyId = o.KmsKeyId,
            EncryptionScope = o.EncryptionScope,
            MaxRetries = o.MaxRetries ?? 5,
            AccessKeyId = s3Style ? credential?.UserName : null,
            SecretAccessKey = s3Style ? credential?.Password : null,
            AccountKey = !s3Style ? credential?.Password : null,
            SasToken = sasToken,
            ConnectionString = connectionString,
        };
    }

    /// <summary>A passphrase from the parameter, else from the environment variable the settings name (never from the file itself).</summary>
    protected char[] ResolvePassphrase(SecureString? parameter, string what)
    {
        if (parameter is not null)
        {
            return Secrets.ToChars(parameter);
        }

        var env = Settings.Keys.PassphraseEnvironmentVariable ?? "HUBDR_KEY_PASSPHRASE";
        var value = Environment.GetEnvironmentVariable(env);
        if (!string.IsNullOrEmpty(value))
        {
            return value.ToCharArray();
        }

        throw new HubDrException("PassphraseMissing", HubErrorCategory.InvalidArgument,
            $"The {what} needs a passphrase: pass -Passphrase (a SecureString, e.g. from Get-Secret or Read-Host -AsSecureString) or set the environment variable {env} for unattended jobs.");
    }
}
