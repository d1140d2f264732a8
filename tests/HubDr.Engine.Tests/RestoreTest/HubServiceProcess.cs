using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Data.Sqlite;

namespace HubDr.Engine.Tests.RestoreTest;

/// <summary>
/// Builds (when missing or stale) and runs the real reference Hub service, tests/hubservice, as
/// `dotnet HubService.dll --engine sqlite ...` on a free loopback port, on a SQLite database in a temp folder.
/// </summary>
public sealed class HubServiceProcess : IAsyncDisposable
{
    public const string AlicePassword = "alice-smoke-pass";

    private static readonly SemaphoreSlim BuildGate = new(1, 1);
    private static bool _built;

    private readonly Process _process;
    private readonly ConcurrentQueue<string> _log = new();

    private HubServiceProcess(Process process, Uri baseUrl, string dbPath)
    {
        _process = process;
        BaseUrl = baseUrl;
        DbPath = dbPath;
    }

    public Uri BaseUrl { get; }

    public string DbPath { get; }

    public IReadOnlyList<string> LogLines => _log.ToArray();

    public string LogText => string.Join(Environment.NewLine, _log);

    public static string RepoRoot { get; } = FindRepoRoot();

    public static string ServiceDir => Path.Combine(RepoRoot, "tests", "hubservice");

    public static string ServiceDll => Path.Combine(ServiceDir, "bin", "Release", "net10.0", "HubService.dll");

    private static string FindRepoRoot([System.Runtime.CompilerServices.CallerFilePath] string sourceFile = "")
    {
        // From the test binaries first; then from this source file (test binaries built outside the repo).
        foreach (var start in new[] { AppContext.BaseDirectory, Path.GetDirectoryName(sourceFile) ?? "" })
        {
            for (var dir = string.IsNullOrEmpty(start) ? null : new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "HubDr.sln"))) return dir.FullName;
            }
        }
        throw new InvalidOperationException($"HubDr.sln not found above {AppContext.BaseDirectory} or {sourceFile}");
    }

    /// <summary>Runs `dotnet build tests/hubservice -c Release` when the dll is missing or older than its sources.</summary>
    public static async Task EnsureBuiltAsync()
    {
        await BuildGate.WaitAsync();
        try
        {
            if (_built) return;
            var newestSource = Directory.EnumerateFiles(ServiceDir, "*.*", SearchOption.TopDirectoryOnly)
                .Where(f => f.EndsWith(".cs", StringComparison.Ordinal) || f.EndsWith(".csproj", StringComparison.Ordinal))
                .Max(File.GetLastWriteTimeUtc);
            if (!File.Exists(ServiceDll) || File.GetLastWriteTimeUtc(ServiceDll) < newestSource)
            {
                var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = RepoRoot, RedirectStandardOutput = true, RedirectStandardError = true };
                foreach (var a in new[] { "build", Path.Combine("tests", "hubservice"), "-c", "Release", "-nologo", "-v", "q" }) psi.ArgumentList.Add(a);
                using var p = Process.Start(psi)!;
                var stdout = p.StandardOutput.ReadToEndAsync();
                var stderr = p.StandardError.ReadToEndAsync();
                await p.WaitForExitAsync();
                if (p.ExitCode != 0 || !File.Exists(ServiceDll))
                    throw new InvalidOperationException($"dotnet build tests/hubservice failed ({p.ExitCode}):\n{await stdout}\n{await stderr}");
            }
            _built = true;
        }
        finally
        {
            BuildGate.Release();
        }
    }

    /// <summary>Creates a SQLite hub database from tests/hubservice/schema (optionally without schema or seed).</summary>
    public static string CreateDatabase(string folder, bool schema = true, bool seed = true)
    {
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, "hub.db");
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ConnectionString);
        c.Open();
        var sql = "PRAGMA user_version = 1;";
        if (schema) sql += File.ReadAllText(Path.Combine(ServiceDir, "schema", "sqlite.sql"));
        if (seed && schema) sql += File.ReadAllText(Path.Combine(ServiceDir, "schema", "seed.sql"));
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
        return path;
    }

    public static void ExecuteSql(string dbPath, string sql)
    {
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = dbPath, Pooling = false }.ConnectionString);
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    public static object? QueryScalar(string dbPath, string sql)
    {
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = dbPath, Pooling = false }.ConnectionString);
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar();
    }

    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    /// <summary>Starts the service and waits for its "Hub service started" log line (max 30 s).</summary>
    public static async Task<HubServiceProcess> StartAsync(string dbPath)
    {
        await EnsureBuiltAsync();
        var port = FreePort();
        var url = new Uri($"http://127.0.0.1:{port}");
        var psi = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Path.GetDirectoryName(dbPath)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { ServiceDll, "--engine", "sqlite", "--connection", $"Data Source={dbPath}", "--urls", url.ToString().TrimEnd('/') })
            psi.ArgumentList.Add(a);
        psi.Environment.Remove("HUBSVC_DB_PASSWORD");
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var svc = new HubServiceProcess(process, url, dbPath);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            svc._log.Enqueue(e.Data);
            if (e.Data.Contains("Hub service started", StringComparison.Ordinal)) started.TrySetResult();
        };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) svc._log.Enqueue("STDERR " + e.Data); };
        process.Exited += (_, _) => started.TrySetException(new InvalidOperationException("hub service exited early"));
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var done = await Task.WhenAny(started.Task, Task.Delay(TimeSpan.FromSeconds(30)));
        if (done != started.Task || started.Task.IsFaulted)
        {
            var log = svc.LogText;
            await svc.DisposeAsync();
            throw new InvalidOperationException($"hub service did not start on {url}:\n{log}");
        }
        return svc;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (InvalidOperationException)
        {
            // never started
        }
        catch (TimeoutException)
        {
        }
        _process.Dispose();
    }
}

/// <summary>A temp folder deleted at dispose.</summary>
public sealed class TempFolder : IDisposable
{
    public string Path { get; } =
        Directory.CreateDirectory(System.IO.Path.Combine(System.IO.Path.GetTempPath(), "hubdr-smoke-" + Guid.NewGuid().ToString("N")[..8])).FullName;

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
