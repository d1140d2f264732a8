using System.Diagnostics;
using System.Net;
using System.Text;
using HubDr.Engine.Databases;
using HubDr.Engine.Tests.Databases;
using Npgsql;
using Xunit;

namespace HubDr.Engine.Tests.Pitr;

/// <summary>PITR tests start their own PostgreSQL clusters (initdb/pg_ctl as the postgres OS user); run them one at a time.</summary>
[CollectionDefinition("Pitr", DisableParallelization = true)]
public sealed class PitrCollection
{
}

/// <summary>
/// A throwaway PostgreSQL cluster in a test temp folder on a free loopback port: initdb (1 MiB WAL segments unless told
/// otherwise), pg_ctl start/stop, SIGKILL of the postmaster, and adoption of a restored data directory.
/// </summary>
public sealed class PgCluster : IAsyncDisposable
{
    public const string User = "hubdr_admin";

    private PgCluster(string root, string dataDir, int port, string password)
    {
        Root = root;
        DataDir = dataDir;
        Port = port;
        Password = password;
    }

    public string Root { get; }
    public string DataDir { get; }
    public int Port { get; }
    public string Password { get; }
    public string SocketDir => Path.Combine(Root, "sock");
    public string LogFile => Path.Combine(Root, "log", $"server-{Port}.log");
    public static string BinDir => TestServers.PgBinDir;

    /// <summary>A new test root folder the postgres OS user can enter (0711, root-owned).</summary>
    public static string NewRoot(string prefix)
    {
        var root = Path.Combine(Path.GetTempPath(), $"hubdr-{prefix}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(root);
        SetMode(root, (UnixFileMode)0b111_001_001);
        foreach (var sub in new[] { "sock", "log" })
        {
            Directory.CreateDirectory(Path.Combine(root, sub));
            Chown(Path.Combine(root, sub));
        }

        return root;
    }

    public static async Task<PgCluster> CreateAsync(int walSegmentMb = 1, string? prefix = null)
    {
        var root = NewRoot(prefix ?? "pg");
        var data = Path.Combine(root, "data");
        Directory.CreateDirectory(data);
        Chown(data);
        SetMode(data, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await AsPostgresAsync(Path.Combine(BinDir, "initdb"), "-D", data, "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8",
            "--auth-local=trust", "--auth-host=scram-sha-256", $"--wal-segsize={walSegmentMb}");
        var password = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(12));
        var c = new PgCluster(root, data, FreePort(), password);
        await c.StartAsync();
        await c.PsqlAsync($"CREATE ROLE {User} LOGIN SUPERUSER REPLICATION PASSWORD '{password}'");
        return c;
    }

    /// <summary>A cluster around a data directory HubDr restored (already owned by postgres); not started.</summary>
    public static PgCluster Adopt(string root, string dataDir, string password, int? port = null)
    {
        foreach (var sub in new[] { "sock", "log" })
        {
            if (!Directory.Exists(Path.Combine(root, sub)))
            {
                Directory.CreateDirectory(Path.Combine(root, sub));
                Chown(Path.Combine(root, sub));
            }
        }

        return new PgCluster(root, dataDir, port ?? FreePort(), password);
    }

    public DatabaseSpec Spec(string database = "postgres") => new()
    {
        Engine = "postgres",
        ConnectionString = $"Host=127.0.0.1;Port={Port};Database={database};Username={User}",
        Credential = new NetworkCredential(User, Password),
        ToolPath = BinDir,
    };

    public string ConnectionString(string database = "postgres") =>
        $"Host=127.0.0.1;Port={Port};Database={database};Username={User};Password={Password};Pooling=false;Command Timeout=0";

    public Task StartAsync(string extraOptions = "") => AsPostgresAsync(Path.Combine(BinDir, "pg_ctl"), "-D", DataDir, "-l", LogFile, "-w", "-t", "120",
        "-o", $"-p {Port} -k {SocketDir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40 {extraOptions}", "start");

    public async Task StopAsync()
    {
        if (File.Exists(Path.Combine(DataDir, "postmaster.pid")))
        {
            await AsPostgresAsync(Path.Combine(BinDir, "pg_ctl"), "-D", DataDir, "-m", "fast", "-w", "-t", "60", "stop");
        }
    }

    /// <summary>SIGKILL of the postmaster (a crash of the database host, as far as the archive can tell).</summary>
    public void Kill()
    {
        var pidFile = Path.Combine(DataDir, "postmaster.pid");
        var pid = int.Parse(File.ReadAllLines(pidFile)[0]);
        using var p = Process.GetProcessById(pid);
        p.Kill(entireProcessTree: false);
        p.WaitForExit(10_000);
        // Its backends notice the postmaster is gone; kill them too so the port and shared memory are free.
        foreach (var child in Process.GetProcesses())
        {
            try
            {
                if (child.ProcessName.StartsWith("postgres", StringComparison.Ordinal) && File.ReadAllText($"/proc/{child.Id}/cmdline").Contains(DataDir, StringComparison.Ordinal))
                {
                    child.Kill();
                }
            }
            catch (Exception)
            {
            }
            finally
            {
                child.Dispose();
            }
        }
    }

    public async Task<string> PsqlAsync(string sql, string database = "postgres")
    {
        var (code, stdout, stderr) = await RunAsync("runuser", ["-u", "postgres", "--", Path.Combine(BinDir, "psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
            "-h", SocketDir, "-p", Port.ToString(), "-d", database, "-c", sql]);
        Assert.True(code == 0, $"psql failed ({code}): {stderr}\n{sql}");
        return stdout.Trim();
    }

    public async Task<T> ScalarAsync<T>(string sql, string database = "postgres")
    {
        await using var conn = new NpgsqlConnection(ConnectionString(database));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }

    public async Task ExecAsync(string sql, string database = "postgres")
    {
        await using var conn = new NpgsqlConnection(ConnectionString(database));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }

    public string ServerLog => File.Exists(LogFile) ? File.ReadAllText(LogFile) : "";

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        catch (Exception)
        {
            try
            {
                Kill();
            }
            catch (Exception)
            {
            }
        }

        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    public static void SetMode(string path, UnixFileMode mode)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, mode);
        }
    }

    public static int FreePort()
    {
        var l = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public static void Chown(string path) => RunAsync("chown", ["-R", "postgres:postgres", path]).GetAwaiter().GetResult();

    public static async Task AsPostgresAsync(string tool, params string[] args)
    {
        var (code, stdout, stderr) = await RunAsync("runuser", ["-u", "postgres", "--", tool, .. args]);
        Assert.True(code == 0, $"{Path.GetFileName(tool)} {string.Join(' ', args)} failed ({code}): {stdout}\n{stderr}");
    }

    public static async Task<(int Code, string Stdout, string Stderr)> RunAsync(string file, IEnumerable<string> args, IDictionary<string, string>? env = null, string? stdin = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin is not null, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await p.StandardInput.WriteAsync(stdin);
            p.StandardInput.Close();
        }

        await p.WaitForExitAsync();
        return (p.ExitCode, await o, await e);
    }
}

/// <summary>A small OLTP workload: timestamped inserts, updates and deletes on two tables, one transaction at a time.</summary>
public sealed class Workload : IAsyncDisposable
{
    private readonly string _cs;
    private readonly CancellationTokenSource _cts = new();
    private readonly SemaphoreSlim _pause = new(1, 1);
    private Task? _task;
    private long _commits;

    public Workload(string connectionString)
    {
        _cs = connectionString;
    }

    public long Commits => Interlocked.Read(ref _commits);

    /// <summary>Server time of the last commit this workload saw complete.</summary>
    public DateTimeOffset LastCommitUtc { get; private set; }

    public static async Task CreateSchemaAsync(string cs)
    {
        await using var conn = new NpgsqlConnection(cs);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(
            """
            CREATE TABLE IF NOT EXISTS items (id serial PRIMARY KEY, name text NOT NULL, qty int NOT NULL, updated_at timestamptz NOT NULL DEFAULT clock_timestamp());
            CREATE TABLE IF NOT EXISTS events (id bigserial PRIMARY KEY, item_id int, kind text NOT NULL, payload text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
            INSERT INTO items (name, qty) SELECT 'seed-' || g, g FROM generate_series(1, 200) g;
            """, conn);
        await cmd.ExecuteNonQueryAsync();
    }

    public void Start(int delayMs = 20)
    {
        _task = Task.Run(async () =>
        {
            var rnd = new Random(42);
            await using var conn = new NpgsqlConnection(_cs);
            await conn.OpenAsync();
            while (!_cts.IsCancellationRequested)
            {
                await _pause.WaitAsync(_cts.Token).ConfigureAwait(false);
                try
                {
                    await using var tx = await conn.BeginTransactionAsync();
                    var id = rnd.Next(1, 400);
                    var pad = new string((char)('a' + rnd.Next(26)), 200 + rnd.Next(600));
                    await using (var cmd = new NpgsqlCommand(
                        """
                        INSERT INTO items (name, qty) VALUES (@n, @q);
                        UPDATE items SET qty = qty + 1, updated_at = clock_timestamp() WHERE id = @id;
                        DELETE FROM items WHERE id = (SELECT id FROM items WHERE id % 7 = @m ORDER BY id LIMIT 1);
                        INSERT INTO events (item_id, kind, payload) VALUES (@id, 'change', @p);
                        """, conn, tx))
                    {
                        cmd.Parameters.AddWithValue("n", "item-" + Guid.NewGuid().ToString("N")[..8]);
                        cmd.Parameters.AddWithValue("q", rnd.Next(1000));
                        cmd.Parameters.AddWithValue("id", id);
                        cmd.Parameters.AddWithValue("m", rnd.Next(7));
                        cmd.Parameters.AddWithValue("p", pad);
                        await cmd.ExecuteNonQueryAsync();
                    }

                    await tx.CommitAsync();
                    Interlocked.Increment(ref _commits);
                    LastCommitUtc = DateTimeOffset.UtcNow;
                }
                catch (Exception) when (_cts.IsCancellationRequested)
                {
                    return;
                }
                catch (NpgsqlException)
                {
                    return; // the server went away (kill tests)
                }
                finally
                {
                    _pause.Release();
                }

                await Task.Delay(delayMs).ConfigureAwait(false);
            }
        });
    }

    /// <summary>
    /// Pauses between transactions, records the committed state (fingerprint of every row of every table) and the server's
    /// clock, waits a little so the next commit is strictly later, and resumes.
    /// </summary>
    public async Task<(DateTimeOffset At, string Fingerprint)> MomentAsync()
    {
        await _pause.WaitAsync();
        try
        {
            await Task.Delay(50);
            var fp = await FingerprintAsync(_cs);
            await using var conn = new NpgsqlConnection(_cs);
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT clock_timestamp()", conn);
            var at = (DateTime)(await cmd.ExecuteScalarAsync())!;
            await Task.Delay(50);
            return (new DateTimeOffset(DateTime.SpecifyKind(at, DateTimeKind.Utc)), fp);
        }
        finally
        {
            _pause.Release();
        }
    }

    /// <summary>md5 over every row of every user table, in primary key order (a state fingerprint, not a count).</summary>
    public static async Task<string> FingerprintAsync(string cs)
    {
        await using var conn = new NpgsqlConnection(cs);
        await conn.OpenAsync();
        var sb = new StringBuilder();
        foreach (var table in new[] { "items", "events" })
        {
            await using var cmd = new NpgsqlCommand($"SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY id)), '') FROM {table} t", conn);
            sb.Append(table).Append('=').Append((string)(await cmd.ExecuteScalarAsync())!).Append(';');
        }

        return sb.ToString();
    }

    public async Task StopAsync()
    {
        _cts.Cancel();
        if (_task is not null)
        {
            try
            {
                await _task;
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _cts.Dispose();
    }
}
