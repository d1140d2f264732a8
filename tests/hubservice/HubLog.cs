namespace HubService;

/// <summary>
/// One-line, greppable log output on stdout: "INFO ...", "WARN ...", "ERROR ...".
/// The restore test scans these lines for error patterns, so every failure is a single "ERROR " line.
/// </summary>
public static class HubLog
{
    private static readonly object Gate = new();

    public static void Info(string message) => Write("INFO", message);
    public static void Warn(string message) => Write("WARN", message);
    public static void Error(string message) => Write("ERROR", message);

    private static void Write(string level, string message)
    {
        // Keep each entry on one line so pattern scans cannot miss or split it.
        var line = $"{level} {message.ReplaceLineEndings(" | ")}";
        lock (Gate)
        {
            Console.Out.WriteLine(line);
            Console.Out.Flush();
        }
    }
}

/// <summary>Routes framework logging (Kestrel, hosting) into <see cref="HubLog"/>.</summary>
public sealed class HubLoggerProvider : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new HubLogger(categoryName);

    public void Dispose() { }

    private sealed class HubLogger(string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) =>
            logLevel >= LogLevel.Warning ||
            (logLevel == LogLevel.Information && category.StartsWith("Microsoft.Hosting.Lifetime", StringComparison.Ordinal));

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            var text = $"{category}: {formatter(state, exception)}";
            if (exception is not null) text += $" ({exception.GetType().Name}: {exception.Message})";
            switch (logLevel)
            {
                case >= LogLevel.Error: HubLog.Error(text); break;
                case LogLevel.Warning: HubLog.Warn(text); break;
                default: HubLog.Info(text); break;
            }
        }
    }
}
