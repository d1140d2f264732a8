using System.Globalization;
using System.Text;
using System.Xml;
using HubDr.Engine.Backup;
using HubDr.Engine.Stores;

namespace HubDr.Engine.RestoreTest;

/// <summary>One check of a restore test: kinds "restore", "database", "service", "http", "pester", "logs", "keys", "rto", "rpo".</summary>
public sealed class RestoreTestStep
{
    public string Kind { get; set; } = "";
    public string Name { get; set; } = "";
    public bool Passed { get; set; }
    public bool Skipped { get; set; }
    public double DurationSeconds { get; set; }
    public string Message { get; set; } = "";
}

public sealed class TargetVerdict
{
    public double TargetSeconds { get; set; }
    public double ActualSeconds { get; set; }
    public bool Met => ActualSeconds <= TargetSeconds;

    public override string ToString() => $"{(Met ? "met" : "MISSED")}: {Human(ActualSeconds)} vs target {Human(TargetSeconds)}";

    public static string Human(double s) => s switch
    {
        < 120 => s.ToString("0.0", CultureInfo.InvariantCulture) + "s",
        < 7200 => (s / 60).ToString("0.0", CultureInfo.InvariantCulture) + "min",
        _ => (s / 3600).ToString("0.00", CultureInfo.InvariantCulture) + "h",
    };
}

/// <summary>The archived result of a restore test: JSON plus JUnit XML for CI systems.</summary>
public sealed class RestoreTestReport
{
    public int FormatVersion { get; set; } = 1;
    public string Hub { get; set; } = "";
    public string? BackupId { get; set; }
    public DateTimeOffset? BackupCreatedUtc { get; set; }
    public DateTimeOffset StartedUtc { get; set; }
    public DateTimeOffset FinishedUtc { get; set; }
    public bool Passed { get; set; }

    /// <summary>"Passed", "Passed (database only)" (the application was not started or smoke-tested) or "Failed".</summary>
    public string Verdict { get; set; } = "";

    /// <summary>True when no service was started: the smoke tests did not run.</summary>
    public bool DatabaseOnly { get; set; }

    public string? SignatureStatus { get; set; }
    public string? StagingEngine { get; set; }
    public string? BaseUrl { get; set; }
    public List<RestoreTestStep> Steps { get; set; } = [];
    public SortedDictionary<string, double> TimingsSeconds { get; set; } = new(StringComparer.Ordinal);
    public TargetVerdict Rto { get; set; } = new();
    public TargetVerdict Rpo { get; set; } = new();
    public List<string> LogMatches { get; set; } = [];
    public List<string> UndecryptableBackups { get; set; } = [];
    public SortedDictionary<string, string> BackupsOnRetiredKeys { get; set; } = new(StringComparer.Ordinal);
    public string? Error { get; set; }
    public string? ErrorId { get; set; }
    public string HostName { get; set; } = Environment.MachineName;
    public string ToolVersion { get; set; } = BackupService.ToolVersion;

    public byte[] ToJson() => HubJson.Serialize(this);

    /// <summary>Text safe for XML and humans: ANSI colour codes and control characters removed.</summary>
    public static string Clean(string s) =>
        new(System.Text.RegularExpressions.Regex.Replace(s, @"\x1B\[[0-9;?]*[A-Za-z]", "").Where(c => c >= ' ' || c is '\n' or '\r' or '\t').ToArray());

    public byte[] ToJUnit()
    {
        var sb = new StringBuilder();
        using (var w = XmlWriter.Create(sb, new XmlWriterSettings { Indent = true, OmitXmlDeclaration = false, Encoding = Encoding.UTF8 }))
        {
            w.WriteStartElement("testsuites");
            w.WriteStartElement("testsuite");
            w.WriteAttributeString("name", $"hubdr-restore-test.{Hub}");
            w.WriteAttributeString("tests", Steps.Count.ToString(CultureInfo.InvariantCulture));
            w.WriteAttributeString("failures", Steps.Count(s => !s.Passed && !s.Skipped).ToString(CultureInfo.InvariantCulture));
            w.WriteAttributeString("skipped", Steps.Count(s => s.Skipped).ToString(CultureInfo.InvariantCulture));
            w.WriteAttributeString("time", Steps.Sum(s => s.DurationSeconds).ToString("0.000", CultureInfo.InvariantCulture));
            w.WriteAttributeString("timestamp", StartedUtc.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture));
            w.WriteAttributeString("hostname", HostName);
            w.WriteStartElement("properties");
            Property(w, "backupId", BackupId ?? "");
            Property(w, "rto", Rto.ToString());
            Property(w, "rpo", Rpo.ToString());
            w.WriteEndElement();
            foreach (var s in Steps)
            {
                w.WriteStartElement("testcase");
                w.WriteAttributeString("classname", "hubdr." + s.Kind);
                w.WriteAttributeString("name", Clean(s.Name));
                w.WriteAttributeString("time", s.DurationSeconds.ToString("0.000", CultureInfo.InvariantCulture));
                if (s.Skipped)
                {
                    w.WriteStartElement("skipped");
                    w.WriteAttributeString("message", Clean(s.Message));
                    w.WriteEndElement();
                }
                else if (!s.Passed)
                {
                    w.WriteStartElement("failure");
                    w.WriteAttributeString("message", Clean(s.Message));
                    w.WriteString(Clean(s.Message));
                    w.WriteEndElement();
                }

                w.WriteEndElement();
            }

            w.WriteEndElement();
            w.WriteEndElement();
        }

        return Encoding.UTF8.GetBytes(sb.ToString().Replace("encoding=\"utf-16\"", "encoding=\"utf-8\"", StringComparison.Ordinal));
    }

    /// <summary>Archives the report beside the backups: _reports/&lt;hub&gt;/&lt;started&gt;-&lt;backupId&gt;.json and .xml. Returns the JSON key.</summary>
    public async Task<string> WriteToStoreAsync(IBackupStore store, CancellationToken ct)
    {
        var stem = $"{ObjectLayout.ReportsFolder}/{Hub}/{StartedUtc.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture)}-{BackupId ?? "none"}";
        await store.PutAsync(stem + ".json", ToJson(), new StoreWriteOptions { ContentType = "application/json" }, ct).ConfigureAwait(false);
        await store.PutAsync(stem + ".xml", ToJUnit(), new StoreWriteOptions { ContentType = "application/xml" }, ct).ConfigureAwait(false);
        return stem + ".json";
    }

    private static void Property(XmlWriter w, string name, string value)
    {
        w.WriteStartElement("property");
        w.WriteAttributeString("name", name);
        w.WriteAttributeString("value", value);
        w.WriteEndElement();
    }
}
