using System.Globalization;
using System.Text;

namespace HubDr.Engine.Monitoring;

/// <summary>One sample of the metrics file. <paramref name="Type"/> is "counter" or "gauge" (or "untyped" for foreign lines).</summary>
public sealed record MetricSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value, string Type, string Help)
{
    /// <summary>Label value or null.</summary>
    public string? Label(string name) => Labels.TryGetValue(name, out var v) ? v : null;
}

/// <summary>The outcome of one HubDr operation, as fed to <see cref="MetricsFile.Record"/>.</summary>
/// <param name="Operation">"backup", "restore", "restore_test" or "retention".</param>
/// <param name="Bytes">Archive size of a successful backup (sets hubdr_last_backup_size_bytes); ignored otherwise.</param>
public sealed record OperationOutcome(string Operation, string Hub, bool Success, DateTimeOffset Finished, TimeSpan Duration, long? Bytes = null);

/// <summary>
/// A Prometheus textfile-collector file (e.g. /var/lib/node_exporter/textfile_collector/hubdr.prom) holding HubDr's
/// counters and gauges. Every <see cref="Record"/> is a read-modify-write under an exclusive cross-process lock on the
/// sidecar "&lt;path&gt;.lock" file, and the new content replaces the old by an atomic rename, so counters survive
/// across runs and concurrent writers and node_exporter never reads a partial file.
/// </summary>
/// <remarks>
/// Corrupt file: when the existing file cannot be parsed, it is NOT silently reset. It is renamed to
/// "&lt;path&gt;.corrupt-&lt;yyyyMMddTHHmmssfffZ&gt;" (a name node_exporter ignores), counting restarts from zero,
/// <see cref="CorruptFileMovedTo"/> is set to the renamed path for that Record call, and a warning goes to the
/// optional <see cref="IOperationLog"/>. <see cref="Read"/> never renames: it throws HubDrException "MetricsFileCorrupt".
/// </remarks>
public sealed class MetricsFile
{
    public static readonly IReadOnlyList<string> Operations = ["backup", "restore", "restore_test", "retention"];

    private readonly IOperationLog _log;

    public MetricsFile(string path, IOperationLog? log = null)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new HubDrException("MetricsPathMissing", HubErrorCategory.InvalidArgument, "No metrics file path was given.");
        }

        Path = System.IO.Path.GetFullPath(path);
        _log = log ?? NullOperationLog.Instance;
    }

    public string Path { get; }

    /// <summary>The sidecar lock file (kept; deleting it while another process holds it would break the lock).</summary>
    public string LockPath => Path + ".lock";

    /// <summary>How long Record waits for the lock before throwing "MonitoringLockTimeout". Default 30 s.</summary>
    public TimeSpan LockTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Set by the last <see cref="Record"/> call when it found a corrupt file and renamed it aside; null otherwise.</summary>
    public string? CorruptFileMovedTo { get; private set; }

    /// <summary>Records one outcome and returns every sample now in the file.</summary>
    public IReadOnlyList<MetricSample> Record(OperationOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        if (!Operations.Contains(outcome.Operation))
        {
            throw new HubDrException("MetricsUnknownOperation", HubErrorCategory.InvalidArgument,
                $"Unknown operation '{outcome.Operation}' for metrics; expected one of: {string.Join(", ", Operations)}.");
        }

        if (string.IsNullOrWhiteSpace(outcome.Hub))
        {
            throw new HubDrException("MetricsHubMissing", HubErrorCategory.InvalidArgument, "A metrics record needs the hub name.");
        }

        var dir = System.IO.Path.GetDirectoryName(Path)!;
        if (!Directory.Exists(dir))
        {
            throw new HubDrException("MetricsFolderNotFound", HubErrorCategory.ObjectNotFound,
                $"The metrics folder '{dir}' does not exist. Create it (normally node_exporter's --collector.textfile.directory) or fix the metrics path; HubDr does not create it so a typo cannot hide metrics.")
            { Target = dir };
        }

        CorruptFileMovedTo = null;
        using var lockHandle = ExclusiveFile.Open(LockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, LockTimeout, "metrics lock file");

        var samples = new Dictionary<string, MetricSample>(StringComparer.Ordinal);
        var text = ReadText();
        if (text is not null)
        {
            try
            {
                foreach (var s in PrometheusText.Parse(text))
                {
                    samples[PrometheusText.Key(s.Name, s.Labels)] = s;
                }
            }
            catch (PrometheusText.FormatError e)
            {
                var aside = Path + ".corrupt-" + DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmssfff'Z'", CultureInfo.InvariantCulture);
                File.Move(Path, aside, overwrite: false);
                CorruptFileMovedTo = aside;
                _log.Warning($"The metrics file '{Path}' was corrupt ({e.Message}); it was moved to '{aside}' and HubDr counters restart from zero. Inspect it and delete it when done.");
                samples.Clear();
            }
        }

        Apply(samples, outcome);
        var result = Sorted(samples.Values);
        WriteAtomically(PrometheusText.Write(result));
        return result;
    }

    /// <summary>The samples currently in the file (empty when it does not exist). Takes no lock: the file is only ever replaced atomically.</summary>
    public IReadOnlyList<MetricSample> Read()
    {
        var text = ReadText();
        if (text is null)
        {
            return [];
        }

        try
        {
            return Sorted(PrometheusText.Parse(text));
        }
        catch (PrometheusText.FormatError e)
        {
            throw new HubDrException("MetricsFileCorrupt", HubErrorCategory.InvalidData,
                $"The metrics file '{Path}' is not valid Prometheus text ({e.Message}). The next recorded operation moves it aside to '{System.IO.Path.GetFileName(Path)}.corrupt-<time>' and starts fresh.")
            { Target = Path };
        }
    }

    private static List<MetricSample> Sorted(IEnumerable<MetricSample> s) =>
        s.OrderBy(x => x.Name, StringComparer.Ordinal).ThenBy(x => PrometheusText.LabelString(x.Labels), StringComparer.Ordinal).ToList();

    private string? ReadText()
    {
        try
        {
            return File.ReadAllText(Path, Encoding.UTF8);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    private void WriteAtomically(string content)
    {
        // Temp name must not end in ".prom" or node_exporter would read it.
        var temp = Path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                var bytes = new UTF8Encoding(false).GetBytes(content);
                fs.Write(bytes);
                fs.Flush(flushToDisk: true);
            }

            if (!OperatingSystem.IsWindows())
            {
                // node_exporter often runs as its own user: the file must be world-readable.
                File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            }

            File.Move(temp, Path, overwrite: true); // rename(2): atomic replace
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new HubDrException("MetricsWriteFailed", HubErrorCategory.WriteError,
                $"Could not write the metrics file '{Path}': {e.Message} Check free space and that the HubDr account may write to that folder.", e)
            { Target = Path };
        }
    }

    private static void TryDelete(string p)
    {
        try
        {
            File.Delete(p);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static void Apply(Dictionary<string, MetricSample> samples, OperationOutcome o)
    {
        var hub = new Dictionary<string, string> { ["hub"] = o.Hub };
        var hubOp = new Dictionary<string, string> { ["hub"] = o.Hub, ["operation"] = o.Operation };

        void Counter(string name, string help, bool increment)
        {
            var key = PrometheusText.Key(name, hub);
            var current = samples.TryGetValue(key, out var s) ? s.Value : 0;
            // Counters are created at 0 with their sibling so increase()/rate() see the first failure.
            samples[key] = new MetricSample(name, hub, current + (increment ? 1 : 0), "counter", help);
        }

        void Gauge(string name, IReadOnlyDictionary<string, string> labels, double value, string help) =>
            samples[PrometheusText.Key(name, labels)] = new MetricSample(name, labels, value, "gauge", help);

        switch (o.Operation)
        {
            case "backup":
                Counter("hubdr_backup_success_total", "Successful HubDr backups.", o.Success);
                Counter("hubdr_backup_failure_total", "Failed HubDr backups.", !o.Success);
                Counter("backup_success_total", "Successful backups (runbook name; same as hubdr_backup_success_total).", o.Success);
                Counter("backup_failure_total", "Failed backups (runbook name; same as hubdr_backup_failure_total).", !o.Success);
                if (o.Success && o.Bytes is { } bytes)
                {
                    Gauge("hubdr_last_backup_size_bytes", hub, bytes, "Size in bytes of the last successful backup archive.");
                }

                break;
            case "restore":
                Counter("hubdr_restore_success_total", "Successful HubDr restores.", o.Success);
                Counter("hubdr_restore_failure_total", "Failed HubDr restores.", !o.Success);
                break;
            case "restore_test":
                Counter("hubdr_restore_test_success_total", "Passed HubDr restore tests.", o.Success);
                Counter("hubdr_restore_test_failure_total", "Failed HubDr restore tests.", !o.Success);
                break;
            case "retention":
                Counter("hubdr_retention_runs_total", "HubDr retention runs (successful or not).", true);
                Counter("hubdr_retention_failure_total", "Failed HubDr retention runs.", !o.Success);
                break;
        }

        var ts = o.Finished.ToUnixTimeMilliseconds() / 1000.0;
        if (o.Success)
        {
            Gauge("hubdr_last_success_timestamp_seconds", hubOp, ts, "Unix time the last successful operation finished.");
        }
        else
        {
            Gauge("hubdr_last_failure_timestamp_seconds", hubOp, ts, "Unix time the last failed operation finished.");
        }

        Gauge("hubdr_last_duration_seconds", hubOp, Math.Round(o.Duration.TotalSeconds, 3), "Duration in seconds of the last operation (successful or not).");
    }
}
