using System.Diagnostics;
using System.Text.RegularExpressions;
using HubDr.Engine.Monitoring;
using Xunit;

namespace HubDr.Engine.Tests.Monitoring;

public sealed class MetricsFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hubdr-metrics-").FullName;

    private string PromPath => Path.Combine(_dir, "hubdr.prom");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static OperationOutcome Outcome(string op, string hub, bool ok, long? bytes = null) =>
        new(op, hub, ok, DateTimeOffset.UtcNow, TimeSpan.FromSeconds(1.5), bytes);

    private static double Value(IEnumerable<MetricSample> samples, string name, string hub, string? operation = null) =>
        samples.Single(s => s.Name == name && s.Label("hub") == hub && (operation is null || s.Label("operation") == operation)).Value;

    [Fact]
    public void Exposition_IsValid_ForPromtool_AndParsesBack()
    {
        var m = new MetricsFile(PromPath);
        var weirdHub = "we\"ird\\hub\nname";
        var finished = new DateTimeOffset(2026, 11, 26, 3, 0, 0, TimeSpan.Zero);
        m.Record(new OperationOutcome("backup", "prod", true, finished, TimeSpan.FromSeconds(42.25), 123456789));
        m.Record(Outcome("backup", "prod", false));
        m.Record(Outcome("backup", weirdHub, true, 10));
        m.Record(Outcome("restore", "prod", true));
        m.Record(Outcome("restore_test", "prod", false));
        m.Record(Outcome("retention", "prod", true));
        m.Record(Outcome("retention", "prod", false));

        var text = File.ReadAllText(PromPath);
        PromtoolCheck(text);
        AssertStrictExposition(text);

        // HELP and TYPE exactly once per family.
        foreach (var family in text.Split('\n').Where(l => l.Length > 0 && l[0] != '#').Select(l => Regex.Match(l, "^[a-zA-Z_:][a-zA-Z0-9_:]*").Value).Distinct())
        {
            Assert.Single(Regex.Matches(text, "^# HELP " + family + " ", RegexOptions.Multiline));
            Assert.Single(Regex.Matches(text, "^# TYPE " + family + " ", RegexOptions.Multiline));
        }

        Assert.Contains("hub=\"we\\\"ird\\\\hub\\nname\"", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE backup_failure_total counter", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE hubdr_last_success_timestamp_seconds gauge", text, StringComparison.Ordinal);

        var s = m.Read();
        Assert.Equal(1, Value(s, "hubdr_backup_success_total", "prod"));
        Assert.Equal(1, Value(s, "hubdr_backup_failure_total", "prod"));
        Assert.Equal(1, Value(s, "backup_success_total", "prod"));
        Assert.Equal(1, Value(s, "backup_failure_total", "prod"));
        Assert.Equal(1, Value(s, "backup_success_total", weirdHub));
        Assert.Equal(0, Value(s, "backup_failure_total", weirdHub)); // created at 0 so increase() sees the first failure
        Assert.Equal(1, Value(s, "hubdr_restore_success_total", "prod"));
        Assert.Equal(0, Value(s, "hubdr_restore_failure_total", "prod"));
        Assert.Equal(0, Value(s, "hubdr_restore_test_success_total", "prod"));
        Assert.Equal(1, Value(s, "hubdr_restore_test_failure_total", "prod"));
        Assert.Equal(2, Value(s, "hubdr_retention_runs_total", "prod"));
        Assert.Equal(1, Value(s, "hubdr_retention_failure_total", "prod"));
        Assert.Equal(123456789, Value(s, "hubdr_last_backup_size_bytes", "prod")); // the later failure does not touch it
        Assert.Equal(finished.ToUnixTimeSeconds(), Value(s, "hubdr_last_success_timestamp_seconds", "prod", "backup"));
        Assert.True(Value(s, "hubdr_last_failure_timestamp_seconds", "prod", "backup") > finished.ToUnixTimeSeconds());
        Assert.Equal(1.5, Value(s, "hubdr_last_duration_seconds", "prod", "backup"));
        Assert.True(Value(s, "hubdr_last_failure_timestamp_seconds", "prod", "restore_test") > finished.ToUnixTimeSeconds());
        Assert.DoesNotContain(s, x => x.Name == "hubdr_last_success_timestamp_seconds" && x.Label("operation") == "restore_test");
        Assert.All(s, x => Assert.Contains(x.Type, new[] { "counter", "gauge" }));
        Assert.All(s, x => Assert.False(string.IsNullOrEmpty(x.Help)));
    }

    [Fact]
    public void Counters_SurviveAcrossRuns_AndNoTempFileIsLeft()
    {
        for (var i = 0; i < 5; i++)
        {
            new MetricsFile(PromPath).Record(Outcome("backup", "prod", i != 2));
        }

        var s = new MetricsFile(PromPath).Read();
        Assert.Equal(4, Value(s, "backup_success_total", "prod"));
        Assert.Equal(1, Value(s, "backup_failure_total", "prod"));
        Assert.Equal(new[] { "hubdr.prom", "hubdr.prom.lock" }, Directory.GetFiles(_dir).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray());
        // node_exporter needs to read it even when it runs as another user.
        if (!OperatingSystem.IsWindows())
        {
            Assert.True(File.GetUnixFileMode(PromPath).HasFlag(UnixFileMode.OtherRead));
        }
    }

    /// <summary>
    /// Several writers, each with its own MetricsFile instance and therefore its own lock FileStream handle
    /// (flock is per open file description, so in-process handles conflict exactly like separate processes).
    /// A second-process writer is covered by <see cref="LockHeldByAnotherProcess_RecordWaitsForIt"/>.
    /// </summary>
    [Fact]
    public async Task ConcurrentWriters_GiveExactTotals()
    {
        const int writers = 8, perWriter = 25;
        var tasks = Enumerable.Range(0, writers).Select(w => Task.Factory.StartNew(() =>
        {
            var m = new MetricsFile(PromPath);
            for (var j = 0; j < perWriter; j++)
            {
                m.Record(Outcome("backup", w % 2 == 0 ? "even" : "odd", j % 5 != 0));
                m.Record(Outcome("restore_test", "even", true));
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        await Task.WhenAll(tasks);

        var s = new MetricsFile(PromPath).Read();
        Assert.Equal(4 * 20, Value(s, "backup_success_total", "even"));
        Assert.Equal(4 * 5, Value(s, "backup_failure_total", "even"));
        Assert.Equal(4 * 20, Value(s, "hubdr_backup_success_total", "odd"));
        Assert.Equal(4 * 5, Value(s, "hubdr_backup_failure_total", "odd"));
        Assert.Equal(writers * perWriter, Value(s, "hubdr_restore_test_success_total", "even"));
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp"));
    }

    [Fact]
    public void LockHeldByAnotherProcess_RecordWaitsForIt()
    {
        var m = new MetricsFile(PromPath);
        m.Record(Outcome("backup", "prod", true));
        using var holder = HoldLockInChildProcess(m.LockPath, seconds: 2);
        var sw = Stopwatch.StartNew();
        m.Record(Outcome("backup", "prod", true));
        sw.Stop();
        Assert.True(sw.Elapsed >= TimeSpan.FromSeconds(1.2), $"Record returned after {sw.Elapsed} although another process held the lock");
        Assert.True(holder.WaitForExit(10_000));
        Assert.Equal(2, Value(m.Read(), "backup_success_total", "prod"));
    }

    [Fact]
    public void LockNeverReleased_TimesOutWithClearError()
    {
        var m = new MetricsFile(PromPath) { LockTimeout = TimeSpan.FromMilliseconds(600) };
        using var holder = HoldLockInChildProcess(m.LockPath, seconds: 30);
        try
        {
            var e = Assert.Throws<HubDrException>(() => m.Record(Outcome("backup", "prod", true)));
            Assert.Equal("MonitoringLockTimeout", e.ErrorId);
            Assert.Contains(m.LockPath, e.Message, StringComparison.Ordinal);
            Assert.False(File.Exists(PromPath));
        }
        finally
        {
            holder.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task AtomicReplace_ReaderNeverSeesAPartialFile()
    {
        var m = new MetricsFile(PromPath);
        m.Record(Outcome("backup", "h0", true));
        using var stop = new CancellationTokenSource();
        var reads = 0;
        var reader = Task.Factory.StartNew(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                var text = File.ReadAllText(PromPath); // never FileNotFound: rename replaces in one step
                var samples = PrometheusText.Parse(text); // throws on a truncated file
                Assert.Contains(samples, x => x.Name == "backup_success_total");
                Assert.EndsWith("\n", text, StringComparison.Ordinal);
                reads++;
            }
        }, TaskCreationOptions.LongRunning);

        // Many hubs make the file several KB, so a non-atomic write would be caught half-way.
        for (var i = 0; i < 300 && !reader.IsCompleted; i++)
        {
            m.Record(Outcome(i % 3 == 0 ? "backup" : "restore", "h" + (i % 60), i % 7 != 0, i));
        }

        stop.Cancel();
        await reader;
        Assert.True(reads > 20, $"reader only managed {reads} reads");
        Assert.True(new FileInfo(PromPath).Length > 4000);
    }

    [Theory]
    [InlineData("hubdr_backup_success_total{hub=\"prod\" 5\n")] // unterminated labels
    [InlineData("# TYPE x counter\nx 1\nx 2\n")] // duplicate sample
    [InlineData("garbage here\n")]
    [InlineData("TRUNCATE")] // marker: valid file cut in the middle
    public void CorruptFile_IsMovedAside_NotSilentlyReset(string content)
    {
        var log = new RecordingLog();
        var m = new MetricsFile(PromPath, log);
        if (content == "TRUNCATE")
        {
            m.Record(Outcome("backup", "prod", true));
            var full = File.ReadAllText(PromPath);
            content = full[..(full.Length - 3)];
        }

        File.WriteAllText(PromPath, content);
        var readError = Assert.Throws<HubDrException>(() => m.Read());
        Assert.Equal("MetricsFileCorrupt", readError.ErrorId);

        var after = m.Record(Outcome("backup", "prod", true));
        Assert.NotNull(m.CorruptFileMovedTo);
        Assert.Matches(@"hubdr\.prom\.corrupt-\d{8}T\d{9}Z$", m.CorruptFileMovedTo);
        Assert.Equal(content, File.ReadAllText(m.CorruptFileMovedTo!)); // evidence kept byte for byte
        Assert.Contains(log.Warnings, w => w.Contains(m.CorruptFileMovedTo!, StringComparison.Ordinal));
        Assert.Equal(1, Value(after, "backup_success_total", "prod"));

        // The next call finds a healthy file and says so.
        m.Record(Outcome("backup", "prod", true));
        Assert.Null(m.CorruptFileMovedTo);
        Assert.Equal(2, Value(m.Read(), "backup_success_total", "prod"));
    }

    [Fact]
    public void BadInput_IsRejectedWithErrorIds()
    {
        var m = new MetricsFile(PromPath);
        Assert.Equal("MetricsUnknownOperation", Assert.Throws<HubDrException>(() => m.Record(Outcome("bakup", "prod", true))).ErrorId);
        Assert.Equal("MetricsHubMissing", Assert.Throws<HubDrException>(() => m.Record(Outcome("backup", " ", true))).ErrorId);
        var missing = new MetricsFile(Path.Combine(_dir, "nope", "hubdr.prom"));
        Assert.Equal("MetricsFolderNotFound", Assert.Throws<HubDrException>(() => missing.Record(Outcome("backup", "prod", true))).ErrorId);
        Assert.Empty(new MetricsFile(Path.Combine(_dir, "absent.prom")).Read());
    }

    /// <summary>util-linux flock(1) takes the same flock(2) lock .NET takes for FileShare.None.</summary>
    private static Process HoldLockInChildProcess(string lockPath, int seconds)
    {
        var psi = new ProcessStartInfo("flock") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { "-x", lockPath, "-c", $"echo locked; sleep {seconds}" })
        {
            psi.ArgumentList.Add(a);
        }

        var p = Process.Start(psi) ?? throw new InvalidOperationException("flock(1) did not start; install util-linux");
        Assert.Equal("locked", p.StandardOutput.ReadLine());
        return p;
    }

    private static void PromtoolCheck(string text)
    {
        var psi = new ProcessStartInfo("promtool") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("check");
        psi.ArgumentList.Add("metrics");
        Process p;
        try
        {
            p = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("promtool is required to validate the exposition format: apt-get install prometheus (or put promtool on PATH).", e);
        }

        p.StandardInput.Write(text);
        p.StandardInput.Close();
        var output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, "promtool check metrics: " + output + "\n---\n" + text);
    }

    /// <summary>Independent of the engine's parser: every line must be a comment or a well-formed sample.</summary>
    private static void AssertStrictExposition(string text)
    {
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
        var sample = new Regex("""^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*\})? -?[0-9.eE+\-]+$""");
        foreach (var line in text.TrimEnd('\n').Split('\n'))
        {
            Assert.True(line.StartsWith("# HELP ", StringComparison.Ordinal) || Regex.IsMatch(line, "^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge)$") || sample.IsMatch(line), "bad line: " + line);
        }
    }

    private sealed class RecordingLog : IOperationLog
    {
        public List<string> Warnings { get; } = [];

        public void Verbose(string message)
        {
        }

        public void Warning(string message) => Warnings.Add(message);

        public void Progress(string activity, string status, long done, long? total)
        {
        }

        public void ProgressComplete(string activity)
        {
        }
    }
}
