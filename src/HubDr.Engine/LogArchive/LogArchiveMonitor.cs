using System.Text;
using HubDr.Engine.Monitoring;

namespace HubDr.Engine.LogArchive;

/// <summary>State of a running log archiver, reported after every acknowledgement and on every failure.</summary>
public sealed record LogArchiveStatus
{
    public required string Hub { get; init; }
    public required string Stream { get; init; }
    public string? Line { get; init; }

    /// <summary>Everything before this position is durably archived, signed and indexed (formatted, e.g. "0/3000000").</summary>
    public string? ArchivedPosition { get; init; }

    public ulong ArchivedPositionValue { get; init; }
    public string? LastObject { get; init; }
    public DateTimeOffset? LastArchivedUtc { get; init; }

    /// <summary>How long the oldest received-but-not-yet-archived byte has waited (0 when caught up).</summary>
    public double LagSeconds { get; init; }

    public bool Connected { get; init; }
    public long ObjectsWritten { get; init; }
    public long BytesWritten { get; init; }
    public long FailuresTotal { get; init; }
    public int ConsecutiveFailures { get; init; }
    public string? LastError { get; init; }
}

/// <summary>One failure of a running archiver (it retries; the alert decides whether to page).</summary>
/// <param name="Fatal">True when the archiver stops (conflict, identity mismatch, bad configuration) instead of retrying.</param>
public sealed record LogArchiveFailure(string Hub, string Stream, string Stage, string? ErrorId, string Message, int ConsecutiveFailures, bool Fatal, DateTimeOffset Time);

/// <summary>Where a running archiver reports. The cmdlet maps these to metrics, Write-Verbose and the webhook alert.</summary>
public interface ILogArchiveMonitor
{
    void Report(LogArchiveStatus status);

    void Failure(LogArchiveFailure failure);
}

/// <summary>Fans out to several monitors; a monitor that throws never stops the archiver.</summary>
public sealed class CompositeLogArchiveMonitor(params ILogArchiveMonitor[] monitors) : ILogArchiveMonitor
{
    public void Report(LogArchiveStatus status)
    {
        foreach (var m in monitors)
        {
            try
            {
                m.Report(status);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // monitoring must never stop archiving
            }
        }
    }

    public void Failure(LogArchiveFailure failure)
    {
        foreach (var m in monitors)
        {
            try
            {
                m.Failure(failure);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
            }
        }
    }
}

/// <summary>Callbacks as a monitor (what a cmdlet or a test hands in).</summary>
public sealed class CallbackLogArchiveMonitor(Action<LogArchiveStatus>? report, Action<LogArchiveFailure>? failure) : ILogArchiveMonitor
{
    public void Report(LogArchiveStatus status) => report?.Invoke(status);

    public void Failure(LogArchiveFailure failure1) => failure?.Invoke(failure1);
}

/// <summary>
/// Keeps the archiver's gauges in the same Prometheus textfile-collector file as <see cref="MetricsFile"/>, under its
/// lock, replacing the file atomically: <c>hubdr_wal_archive_lag_seconds</c>, <c>hubdr_wal_archive_last_success_timestamp_seconds</c>,
/// <c>hubdr_wal_archive_last_position_bytes</c>, <c>hubdr_wal_archive_connected</c> and the counter
/// <c>hubdr_wal_archive_failures_total</c> (per hub; other samples in the file are kept). Writes at most every
/// <see cref="MinInterval"/> unless a failure is recorded.
/// </summary>
public sealed class PrometheusLogArchiveMetrics : ILogArchiveMonitor
{
    private readonly object _gate = new();
    private readonly IOperationLog _log;
    private DateTimeOffset _lastWrite = DateTimeOffset.MinValue;
    private long _failuresWritten;

    public PrometheusLogArchiveMetrics(string path, IOperationLog? log = null)
    {
        Path = new MetricsFile(path).Path; // same validation and full path as the backup metrics
        _log = log ?? NullOperationLog.Instance;
    }

    public string Path { get; }

    public TimeSpan MinInterval { get; init; } = TimeSpan.FromSeconds(5);

    public void Report(LogArchiveStatus status) => Write(status, force: false);

    public void Failure(LogArchiveFailure failure)
    {
        // Counted through LogArchiveStatus.FailuresTotal, which the archiver reports right after every failure.
    }

    /// <summary>Writes the gauges now (tests and shutdown).</summary>
    public void Flush(LogArchiveStatus status) => Write(status, force: true);

    private void Write(LogArchiveStatus s, bool force)
    {
        lock (_gate)
        {
            var now = DateTimeOffset.UtcNow;
            if (!force && now - _lastWrite < MinInterval && s.ConsecutiveFailures == 0)
            {
                return;
            }

            _lastWrite = now;
            try
            {
                Update(s);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or HubDrException)
            {
                _log.Warning($"Could not update the archiver metrics in '{Path}': {e.Message}");
            }
        }
    }

    private void Update(LogArchiveStatus s)
    {
        var dir = System.IO.Path.GetDirectoryName(Path)!;
        if (!Directory.Exists(dir))
        {
            throw new HubDrException("MetricsFolderNotFound", HubErrorCategory.ObjectNotFound, $"The metrics folder '{dir}' does not exist.") { Target = dir };
        }

        using var lockHandle = ExclusiveFile.Open(Path + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, TimeSpan.FromSeconds(30), "metrics lock file");
        var samples = new Dictionary<string, MetricSample>(StringComparer.Ordinal);
        if (File.Exists(Path))
        {
            try
            {
                foreach (var x in PrometheusText.Parse(File.ReadAllText(Path, Encoding.UTF8)))
                {
                    samples[PrometheusText.Key(x.Name, x.Labels)] = x;
                }
            }
            catch (PrometheusText.FormatError e)
            {
                // The next backup's MetricsFile.Record moves a corrupt file aside; never overwrite what we cannot read.
                _log.Warning($"The metrics file '{Path}' is not valid Prometheus text ({e.Message}); archiver gauges not written.");
                return;
            }
        }

        var hub = new Dictionary<string, string> { ["hub"] = s.Hub, ["stream"] = s.Stream };
        void Put(string name, double value, string type, string help) => samples[PrometheusText.Key(name, hub)] = new MetricSample(name, hub, value, type, help);
        Put("hubdr_wal_archive_lag_seconds", Math.Round(s.LagSeconds, 3), "gauge",
            "Seconds the oldest received but not yet archived log byte has waited (0 when the archive is caught up).");
        Put("hubdr_wal_archive_connected", s.Connected ? 1 : 0, "gauge", "1 while the archiver streams from the database server.");
        Put("hubdr_wal_archive_last_position_bytes", s.ArchivedPositionValue, "gauge", "Log position (PostgreSQL LSN as a byte offset) archived, signed and indexed.");
        if (s.LastArchivedUtc is { } at)
        {
            Put("hubdr_wal_archive_last_success_timestamp_seconds", at.ToUnixTimeMilliseconds() / 1000.0, "gauge", "Unix time the last log object was archived.");
        }

        var failuresKey = PrometheusText.Key("hubdr_wal_archive_failures_total", hub);
        var known = samples.TryGetValue(failuresKey, out var f) ? f.Value : 0;
        // A counter survives archiver restarts: add what this process counted since its last write.
        var total = known + Math.Max(0, s.FailuresTotal - _failuresWritten);
        _failuresWritten = Math.Max(_failuresWritten, s.FailuresTotal);
        samples[failuresKey] = new MetricSample("hubdr_wal_archive_failures_total", hub, total, "counter", "Failed archiver attempts (store or database unavailable; it retries).");

        var text = PrometheusText.Write(samples.Values.OrderBy(x => x.Name, StringComparer.Ordinal).ThenBy(x => PrometheusText.LabelString(x.Labels), StringComparer.Ordinal));
        var temp = Path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            File.WriteAllText(temp, text, new UTF8Encoding(false));
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            }

            File.Move(temp, Path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }

    /// <summary>Reads one of this monitor's gauges back (tests).</summary>
    public double? Read(string name, string hub)
    {
        var sample = new MetricsFile(Path).Read().FirstOrDefault(x => x.Name == name && x.Label("hub") == hub);
        return sample?.Value;
    }
}
