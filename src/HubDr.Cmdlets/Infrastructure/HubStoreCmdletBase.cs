using System.Management.Automation;
using System.Security;
using HubDr.Engine;
using HubDr.Engine.Monitoring;
using HubDr.Engine.Sources;
using HubDr.Engine.Stores;

namespace HubDr.Cmdlets.Infrastructure;

/// <summary>Parameters every store-facing cmdlet shares: the settings file and how to reach the store.</summary>
public abstract class HubStoreCmdletBase : HubCmdletBase
{
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
    public string? StoreEndpoint { get; set; }

    [Parameter]
    public string? StoreRegion { get; set; }

    /// <summary>Azure SAS token (SecureString).</summary>
    [Parameter]
    public SecureString? StoreSasToken { get; set; }

    /// <summary>Azure storage connection string (SecureString).</summary>
    [Parameter]
    public SecureString? StoreConnectionString { get; set; }

    /// <summary>Azure managed identity (Azure Automation, VMs).</summary>
    [Parameter]
    public SwitchParameter UseManagedIdentity { get; set; }

    /// <summary>Prometheus textfile-collector file (e.g. /var/lib/node_exporter/textfile_collector/hubdr.prom); counters survive across runs.</summary>
    [Parameter]
    public string? MetricsPath { get; set; }

    /// <summary>Local audit log (JSON lines). Records also go into the store under _audit/ unless Monitoring.AuditToStore = $false.</summary>
    [Parameter]
    public string? AuditLogPath { get; set; }

    /// <summary>Webhook that receives a JSON alert on failure (generic receivers, Slack/Teams "text" field).</summary>
    [Parameter]
    public Uri? WebhookUrl { get; set; }

    protected HubSettings Settings => _settings ??= HubSettings.Load(this, SettingsPath);

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
        var metricsPath = MetricsPath is not null ? ResolvePath(MetricsPath) : Settings.GetPath("Monitoring.MetricsPath");
        var auditPath = AuditLogPath is not null ? ResolvePath(AuditLogPath) : Settings.GetPath("Monitoring.AuditLogPath");
        var webhook = WebhookUrl ?? (Settings.GetString("Monitoring.WebhookUrl") is { } w ? new Uri(w) : null);
        var auditToStore = Settings.GetBool("Monitoring.AuditToStore") ?? true;
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

    protected StoreSpec BuildStoreSpec(string? storeParameter)
    {
        var uri = storeParameter ?? Settings.GetPath("Store")
            ?? throw new HubDrException("StoreUriMissing", HubErrorCategory.InvalidArgument,
                "No store was given. Pass -Store (a folder, file://, s3:// or az:// URI) or set Store in the settings file.");
        if (StoreFactory.SchemeOf(uri) == "")
        {
            uri = ResolvePath(uri);
        }

        var s3Style = StoreFactory.SchemeOf(uri) == "s3";
        var mi = UseManagedIdentity.IsPresent || (Settings.GetBool("StoreOptions.UseManagedIdentity") ?? false);
        return new StoreSpec
        {
            Uri = uri,
            Endpoint = StoreEndpoint ?? Settings.GetString("StoreOptions.Endpoint"),
            Region = StoreRegion ?? Settings.GetString("StoreOptions.Region"),
            ForcePathStyle = Settings.GetBool("StoreOptions.ForcePathStyle"),
            AccessKeyId = s3Style ? StoreCredential?.UserName : null,
            SecretAccessKey = s3Style ? StoreCredential?.Password : null,
            AccountKey = !s3Style ? StoreCredential?.Password : null,
            SasToken = StoreSasToken,
            ConnectionString = StoreConnectionString,
            UseManagedIdentity = mi,
            ManagedIdentityClientId = Settings.GetString("StoreOptions.ManagedIdentityClientId"),
            ServerSideEncryption = Settings.GetString("StoreOptions.ServerSideEncryption"),
            KmsKeyId = Settings.GetString("StoreOptions.KmsKeyId"),
            EncryptionScope = Settings.GetString("StoreOptions.EncryptionScope"),
            MaxRetries = Settings.GetInt("StoreOptions.MaxRetries") ?? 5,
        };
    }

    protected string? HubFromSettings(string? hub) => hub ?? Settings.GetString("Hub");

    /// <summary>Paths from a parameter (resolved against $PWD), else from the settings file (resolved against its folder).</summary>
    protected string[] PathsOrSetting(string[]? parameter, string settingKey) =>
        parameter?.Select(ResolvePath).ToArray() ?? Settings.GetPaths(settingKey);

    /// <summary>A passphrase from the parameter, else from the environment variable the settings name (never from the file itself).</summary>
    protected char[] ResolvePassphrase(SecureString? parameter, string what)
    {
        if (parameter is not null)
        {
            return Secrets.ToChars(parameter);
        }

        var env = Settings.GetString("Keys.PassphraseEnvironmentVariable") ?? "HUBDR_KEY_PASSPHRASE";
        var value = Environment.GetEnvironmentVariable(env);
        if (!string.IsNullOrEmpty(value))
        {
            return value.ToCharArray();
        }

        throw new HubDrException("PassphraseMissing", HubErrorCategory.InvalidArgument,
            $"The {what} needs a passphrase: pass -Passphrase (a SecureString, e.g. from Get-Secret or Read-Host -AsSecureString) or set the environment variable {env} for unattended jobs.");
    }
}
