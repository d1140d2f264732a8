using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using HubDr.Engine.Sources;
using HubDr.Engine.Stores;

namespace HubDr.Engine.Monitoring;

/// <summary>
/// One audited operation (backup, restore, restore_test, retention, verify, ...). Serialized as one JSON object
/// with camelCase names; see docs/monitoring.md.
/// </summary>
public sealed class AuditRecord
{
    public DateTimeOffset Time { get; init; } = DateTimeOffset.UtcNow;

    public required string Operation { get; init; }

    public required string Hub { get; init; }

    public string? BackupId { get; init; }

    /// <summary>"success", "failure" or "warning".</summary>
    public required string Outcome { get; init; }

    public double DurationSeconds { get; init; }

    /// <summary>HubDrException.ErrorId of a failure.</summary>
    public string? ErrorId { get; init; }

    /// <summary>Failure message. Redacted before it is written anywhere.</summary>
    public string? Error { get; init; }

    public string User { get; init; } = Environment.UserName;

    public string Host { get; init; } = Environment.MachineName;

    public string ToolVersion { get; init; } = AuditLog.EngineVersion;

    /// <summary>Free-form facts (store, size, key id, ...). Values are redacted; a value whose NAME looks secret is masked.</summary>
    public IReadOnlyDictionary<string, string>? Details { get; init; }
}

/// <summary>
/// The audit trail of backup and restore operations: a local JSON Lines file (one record per line, UTF-8,
/// appended under an exclusive lock and flushed to disk) and/or one small JSON object per record in the backup
/// store under "_audit/yyyy/MM/dd/". Error texts and detail values go through the <see cref="Redactor"/> first:
/// passwords, keys and tokens are never written.
/// </summary>
public sealed class AuditLog
{
    public const string StorePrefix = "_audit/";

    public static readonly string[] Outcomes = ["success", "failure", "warning"];

    internal static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        WriteIndented = false,
    };

    private readonly Redactor _redactor;
    private readonly object _redactLock = new();

    /// <param name="localPath">JSONL file to append to; null to keep no local file (store records only).</param>
    public AuditLog(string? localPath, Redactor redactor)
    {
        ArgumentNullException.ThrowIfNull(redactor);
        LocalPath = string.IsNullOrWhiteSpace(localPath) ? null : Path.GetFullPath(localPath);
        _redactor = redactor;
    }

    public static string EngineVersion { get; } =
        typeof(AuditLog).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion?.Split('+')[0]
        ?? typeof(AuditLog).Assembly.GetName().Version?.ToString() ?? "unknown";

    public string? LocalPath { get; }

    /// <summary>How long Append waits for the file lock before throwing "MonitoringLockTimeout". Default 30 s.</summary>
    public TimeSpan LockTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Appends one redacted line to the local file (no-op when there is no local file). Creates the file, not its folder.</summary>
    public void Append(AuditRecord r)
    {
        var redacted = Redact(r);
        if (LocalPath is null)
        {
            return;
        }

        var dir = Path.GetDirectoryName(LocalPath)!;
        if (!Directory.Exists(dir))
        {
            throw new HubDrException("AuditFolderNotFound", HubErrorCategory.ObjectNotFound,
                $"The audit log folder '{dir}' does not exist. Create it or fix the audit log path.")
            { Target = dir };
        }

        var line = Serialize(redacted) + "\n";
        try
        {
            using var fs = ExclusiveFile.Open(LocalPath, FileMode.Append, FileAccess.Write, LockTimeout, "audit log");
            fs.Write(new UTF8Encoding(false).GetBytes(line));
            fs.Flush(flushToDisk: true);
        }
        catch (IOException e)
        {
            throw new HubDrException("AuditWriteFailed", HubErrorCategory.WriteError,
                $"Could not append to the audit log '{LocalPath}': {e.Message} Check free space and permissions.", e)
            { Target = LocalPath };
        }
    }

    /// <summary>A copy of <paramref name="r"/> with Error and Details redacted by this log's Redactor, and fields validated.</summary>
    public AuditRecord Redact(AuditRecord r)
    {
        lock (_redactLock)
        {
            return Redact(r, _redactor);
        }
    }

    /// <summary>Writes one record to the store as "_audit/yyyy/MM/dd/&lt;time&gt;-&lt;operation&gt;-&lt;hub&gt;-&lt;random&gt;.json" (redacted with the built-in rules). Returns the key.</summary>
    public static Task<string> WriteToStoreAsync(IBackupStore store, AuditRecord r, CancellationToken ct) =>
        WriteToStoreAsync(store, r, new Redactor(), ct);

    /// <summary>As above, redacting with <paramref name="redactor"/> (e.g. one that knows the operator's extra secret names).</summary>
    public static async Task<string> WriteToStoreAsync(IBackupStore store, AuditRecord r, Redactor redactor, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(store);
        var redacted = Redact(r, redactor);
        var key = StoreKey(redacted);
        var body = Encoding.UTF8.GetBytes(Serialize(redacted) + "\n");
        await store.PutAsync(key, body, new StoreWriteOptions { ContentType = "application/json" }, ct).ConfigureAwait(false);
        return key;
    }

    /// <summary>Reads a local JSONL audit file (for tests and "show me the audit trail" tooling). Blank lines are skipped.</summary>
    public static IEnumerable<AuditRecord> ReadLocal(string path)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(fs, Encoding.UTF8);
        var lineNo = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNo++;
            if (line.Length == 0)
            {
                continue;
            }

            AuditRecord? rec;
            try
            {
                rec = JsonSerializer.Deserialize<AuditRecord>(line, JsonOptions);
            }
            catch (JsonException e)
            {
                throw new HubDrException("AuditLogCorrupt", HubErrorCategory.InvalidData, $"Line {lineNo} of the audit log '{path}' is not a valid audit record: {e.Message}", e) { Target = path };
            }

            yield return rec ?? throw new HubDrException("AuditLogCorrupt", HubErrorCategory.InvalidData, $"Line {lineNo} of the audit log '{path}' is empty JSON.") { Target = path };
        }
    }

    internal static string Serialize(AuditRecord r) => JsonSerializer.Serialize(r, JsonOptions);

    internal static string StoreKey(AuditRecord r)
    {
        var t = r.Time.ToUniversalTime();
        var random = Convert.ToHexString(RandomNumberGenerator.GetBytes(4)).ToLowerInvariant();
        return string.Create(CultureInfo.InvariantCulture,
            $"{StorePrefix}{t:yyyy}/{t:MM}/{t:dd}/{t:yyyyMMdd'T'HHmmssfff'Z'}-{KeySafe(r.Operation)}-{KeySafe(r.Hub)}-{random}.json");
    }

    private static string KeySafe(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var c in s)
        {
            sb.Append(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' ? c : '_');
        }

        return sb.Length == 0 ? "_" : sb.ToString();
    }

    private static AuditRecord Redact(AuditRecord r, Redactor redactor)
    {
        ArgumentNullException.ThrowIfNull(r);
        if (string.IsNullOrWhiteSpace(r.Operation) || string.IsNullOrWhiteSpace(r.Hub))
        {
            throw new HubDrException("AuditRecordInvalid", HubErrorCategory.InvalidArgument, "An audit record needs an operation and a hub.");
        }

        if (!Outcomes.Contains(r.Outcome))
        {
            throw new HubDrException("AuditRecordInvalid", HubErrorCategory.InvalidArgument,
                $"Audit outcome '{r.Outcome}' is not one of: {string.Join(", ", Outcomes)}.");
        }

        Dictionary<string, string>? details = null;
        if (r.Details is not null)
        {
            details = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (k, v) in r.Details)
            {
                details[k] = redactor.IsSecretName(k) ? Redactor.Mask : redactor.RedactText(v ?? "", "audit:" + k);
            }
        }

        return new AuditRecord
        {
            Time = r.Time,
            Operation = r.Operation,
            Hub = r.Hub,
            BackupId = r.BackupId,
            Outcome = r.Outcome,
            DurationSeconds = r.DurationSeconds,
            ErrorId = r.ErrorId,
            Error = r.Error is null ? null : redactor.RedactText(r.Error, "audit:error"),
            User = r.User,
            Host = r.Host,
            ToolVersion = r.ToolVersion,
            Details = details,
        };
    }
}
