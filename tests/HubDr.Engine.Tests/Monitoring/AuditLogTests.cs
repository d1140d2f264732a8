using System.Text.Json;
using HubDr.Engine.Monitoring;
using HubDr.Engine.Sources;
using HubDr.Engine.Stores.Local;
using Xunit;

namespace HubDr.Engine.Tests.Monitoring;

public sealed class AuditLogTests : IDisposable
{
    private const string ConnPassword = "hunter2-Very-Secret";
    private const string UrlPassword = "s3cr3t-url-pass";
    private const string TokenValue = "tok-abc123XYZ";
    private const string CustomSecret = "custom-field-value-42";

    private readonly string _dir = Directory.CreateTempSubdirectory("hubdr-audit-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static AuditRecord FailedBackup(DateTimeOffset? time = null) => new()
    {
        Time = time ?? DateTimeOffset.UtcNow,
        Operation = "backup",
        Hub = "prod hub",
        BackupId = "20261126T030000Z-prod-ab12",
        Outcome = "failure",
        DurationSeconds = 12.5,
        ErrorId = "DatabaseDumpFailed",
        Error = $"pg_dump failed for 'Host=db;Username=hub;Password={ConnPassword}'\nretry with --verbose",
        Details = new Dictionary<string, string>
        {
            ["source"] = $"postgres://hub:{UrlPassword}@db:5432/hub",
            ["apiToken"] = TokenValue,
            ["vendorField"] = CustomSecret,
            ["store"] = "s3://bucket/prefix",
        },
    };

    private static void AssertNoSecrets(string text)
    {
        foreach (var secret in new[] { ConnPassword, UrlPassword, TokenValue, CustomSecret })
        {
            Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
        }

        Assert.Contains(Redactor.Mask, text, StringComparison.Ordinal);
    }

    [Fact]
    public void Append_WritesOneRedactedJsonLinePerRecord()
    {
        var path = Path.Combine(_dir, "audit.jsonl");
        var log = new AuditLog(path, new Redactor(["vendorField"]));
        log.Append(FailedBackup());
        log.Append(new AuditRecord { Operation = "restore_test", Hub = "prod hub", Outcome = "success", DurationSeconds = 3 });

        var bytes = File.ReadAllBytes(path);
        Assert.False(bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB, "no UTF-8 BOM");
        var text = System.Text.Encoding.UTF8.GetString(bytes);
        AssertNoSecrets(text);
        var lines = text.Split('\n');
        Assert.Equal(3, lines.Length); // two records + the empty string after the final newline
        Assert.Equal("", lines[2]);

        using var doc = JsonDocument.Parse(lines[0]);
        var root = doc.RootElement;
        foreach (var field in new[] { "time", "operation", "hub", "backupId", "outcome", "durationSeconds", "errorId", "error", "user", "host", "toolVersion", "details" })
        {
            Assert.True(root.TryGetProperty(field, out _), "missing field " + field);
        }

        Assert.Equal("backup", root.GetProperty("operation").GetString());
        Assert.Equal("failure", root.GetProperty("outcome").GetString());
        Assert.Equal("DatabaseDumpFailed", root.GetProperty("errorId").GetString());
        Assert.Equal(Environment.UserName, root.GetProperty("user").GetString());
        Assert.Equal(Environment.MachineName, root.GetProperty("host").GetString());
        Assert.False(string.IsNullOrEmpty(root.GetProperty("toolVersion").GetString()));
        Assert.Contains("pg_dump failed", root.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal("s3://bucket/prefix", root.GetProperty("details").GetProperty("store").GetString());
        Assert.Equal(Redactor.Mask, root.GetProperty("details").GetProperty("apiToken").GetString());

        var back = AuditLog.ReadLocal(path).ToList();
        Assert.Equal(2, back.Count);
        Assert.Equal("restore_test", back[1].Operation);
        Assert.Null(back[1].Error);
        Assert.Equal(12.5, back[0].DurationSeconds);
    }

    [Fact]
    public async Task ConcurrentAppends_NeverInterleave()
    {
        var path = Path.Combine(_dir, "audit.jsonl");
        var tasks = Enumerable.Range(0, 4).Select(w => Task.Factory.StartNew(() =>
        {
            var log = new AuditLog(path, new Redactor());
            for (var i = 0; i < 50; i++)
            {
                log.Append(new AuditRecord { Operation = "backup", Hub = "h" + w, Outcome = "success", Details = new Dictionary<string, string> { ["n"] = i + new string('x', 2000) } });
            }
        }, TaskCreationOptions.LongRunning));
        await Task.WhenAll(tasks);

        var records = AuditLog.ReadLocal(path).ToList(); // throws on a torn line
        Assert.Equal(200, records.Count);
        Assert.Equal(50, records.Count(r => r.Hub == "h3"));
    }

    [Fact]
    public void InvalidRecords_AreRejected()
    {
        var log = new AuditLog(Path.Combine(_dir, "a.jsonl"), new Redactor());
        Assert.Equal("AuditRecordInvalid", Assert.Throws<HubDrException>(() => log.Append(new AuditRecord { Operation = "backup", Hub = "h", Outcome = "ok" })).ErrorId);
        Assert.Equal("AuditFolderNotFound", Assert.Throws<HubDrException>(() =>
            new AuditLog(Path.Combine(_dir, "missing", "a.jsonl"), new Redactor()).Append(new AuditRecord { Operation = "backup", Hub = "h", Outcome = "success" })).ErrorId);
        new AuditLog(null, new Redactor()).Append(FailedBackup()); // no local file: no-op, no throw
        Assert.False(File.Exists(Path.Combine(_dir, "a.jsonl")));
    }

    [Fact]
    public async Task WriteToStore_OneSmallRedactedObjectPerRecord()
    {
        var root = Path.Combine(_dir, "store");
        Directory.CreateDirectory(root);
        await using var store = new LocalFolderStore(root);
        var time = new DateTimeOffset(2026, 11, 26, 3, 4, 5, 678, TimeSpan.FromHours(2)); // 01:04:05.678Z

        var key1 = await AuditLog.WriteToStoreAsync(store, FailedBackup(time), new Redactor(["vendorField"]), CancellationToken.None);
        var key2 = await AuditLog.WriteToStoreAsync(store, FailedBackup(time), new Redactor(["vendorField"]), CancellationToken.None);

        Assert.Matches(@"^_audit/2026/11/26/20261126T010405678Z-backup-prod_hub-[0-9a-f]{8}\.json$", key1);
        Assert.NotEqual(key1, key2);
        var listed = new List<string>();
        await foreach (var o in store.ListAsync("_audit/", CancellationToken.None))
        {
            listed.Add(o.Key);
            Assert.True(o.Size < 4096);
        }

        Assert.Equal(new[] { key1, key2 }.Order(StringComparer.Ordinal), listed.Order(StringComparer.Ordinal));
        var body = System.Text.Encoding.UTF8.GetString((await store.TryGetAsync(key1, CancellationToken.None))!);
        AssertNoSecrets(body);
        var rec = JsonSerializer.Deserialize<JsonElement>(body);
        Assert.Equal("20261126T030000Z-prod-ab12", rec.GetProperty("backupId").GetString());

        // The static overload without a redactor still applies the built-in rules.
        var key3 = await AuditLog.WriteToStoreAsync(store, FailedBackup(time), CancellationToken.None);
        var body3 = System.Text.Encoding.UTF8.GetString((await store.TryGetAsync(key3, CancellationToken.None))!);
        Assert.DoesNotContain(ConnPassword, body3, StringComparison.Ordinal);
        Assert.DoesNotContain(UrlPassword, body3, StringComparison.Ordinal);
        Assert.DoesNotContain(TokenValue, body3, StringComparison.Ordinal);
    }
}
