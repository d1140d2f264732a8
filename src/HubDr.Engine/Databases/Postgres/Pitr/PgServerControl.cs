using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace HubDr.Engine.Databases.Postgres.Pitr;

/// <summary>The OS account PostgreSQL runs as: when HubDr runs as root, restored files are given to it and pg_ctl runs as it.</summary>
internal sealed class PosixOwner
{
    private PosixOwner(string name, uint uid, uint gid)
    {
        Name = name;
        Uid = uid;
        Gid = gid;
    }

    public string Name { get; }
    public uint Uid { get; }
    public uint Gid { get; }

    public static bool RunningAsRoot => !OperatingSystem.IsWindows() && Geteuid() == 0;

    /// <summary>The account from /etc/passwd (null when not root: files then stay with the current user).</summary>
    public static PosixOwner? ForRestore(string user)
    {
        if (!RunningAsRoot)
        {
            return null;
        }

        foreach (var line in File.ReadLines("/etc/passwd"))
        {
            var f = line.Split(':');
            if (f.Length >= 4 && f[0] == user)
            {
                return new PosixOwner(user, uint.Parse(f[2], CultureInfo.InvariantCulture), uint.Parse(f[3], CultureInfo.InvariantCulture));
            }
        }

        throw new HubDrException("PitrOsUserNotFound", HubErrorCategory.ObjectNotFound,
            $"The OS user '{user}' that should own the restored data directory does not exist (HubDr runs as root, and PostgreSQL refuses to run as root). " +
            "Install the PostgreSQL server package (it creates 'postgres') or name the account with -OsUser.") { Target = user };
    }

    public void Give(string path)
    {
        if (Lchown(path, Uid, Gid) != 0)
        {
            throw new HubDrException("PitrDataDirectoryUnwritable", HubErrorCategory.PermissionDenied,
                $"Could not give '{path}' to OS user {Name} (errno {Marshal.GetLastPInvokeError()}).") { Target = path };
        }
    }

    [DllImport("libc", EntryPoint = "geteuid")]
    private static extern uint Geteuid();

    [DllImport("libc", EntryPoint = "lchown", SetLastError = true)]
    private static extern int Lchown([MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint owner, uint group);
}

/// <summary>pg_ctl and psql against the restored cluster, as its OS user.</summary>
internal sealed class PgServerControl
{
    private readonly string _binDir;
    private readonly string _dataDir;
    private readonly PosixOwner? _owner;

    public PgServerControl(string binDir, string dataDir, int port, string socketDir, PosixOwner? owner)
    {
        _binDir = binDir;
        _dataDir = dataDir;
        Port = port;
        SocketDir = socketDir;
        _owner = owner;
        LogFile = Path.Combine(dataDir, "log", "hubdr-pitr-recovery.log");
    }

    public int Port { get; }
    public string SocketDir { get; }
    public string LogFile { get; }

    public string Log => File.Exists(LogFile) ? File.ReadAllText(LogFile) : "";

    public async Task StartAsync(CancellationToken ct)
    {
        var (code, output) = await RunAsync(Path.Combine(_binDir, "pg_ctl"),
            ["-D", _dataDir, "-l", LogFile, "--no-wait", "-o", $"-p {Port} -k {SocketDir} -c listen_addresses=127.0.0.1", "start"], ct).ConfigureAwait(false);
        if (code != 0)
        {
            throw new HubDrException("PitrServerStartFailed", HubErrorCategory.InvalidOperation,
                $"pg_ctl could not start the restored cluster in '{_dataDir}' (exit {code}): {output.Trim()} {Tail(Log)}");
        }
    }

    public async Task StopAsync(CancellationToken ct)
    {
        if (File.Exists(Path.Combine(_dataDir, "postmaster.pid")))
        {
            await RunAsync(Path.Combine(_binDir, "pg_ctl"), ["-D", _dataDir, "-m", "fast", "-w", "-t", "120", "stop"], ct).ConfigureAwait(false);
        }
    }

    /// <summary>True while a postmaster runs on the data directory.</summary>
    public bool IsRunning()
    {
        var pidFile = Path.Combine(_dataDir, "postmaster.pid");
        try
        {
            var first = File.ReadLines(pidFile).FirstOrDefault();
            if (!int.TryParse(first, NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid))
            {
                return false;
            }

            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (Exception e) when (e is IOException or ArgumentException or InvalidOperationException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>psql -At as the cluster's OS user over the Unix socket (peer/trust auth as that user).</summary>
    public async Task<string> QueryAsync(string sql, CancellationToken ct)
    {
        var (code, output) = await RunAsync(Path.Combine(_binDir, "psql"),
            ["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", SocketDir, "-p", Port.ToString(CultureInfo.InvariantCulture), "-d", "postgres", "-c", sql], ct).ConfigureAwait(false);
        if (code != 0)
        {
            throw new HubDrException("PitrServerQueryFailed", HubErrorCategory.InvalidOperation, $"psql on the restored cluster failed ({code}): {output.Trim()}");
        }

        return output.Trim();
    }

    private async Task<(int Code, string Output)> RunAsync(string tool, IReadOnlyList<string> args, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(_owner is null ? tool : "runuser") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (_owner is not null)
        {
            foreach (var a in new[] { "-u", _owner.Name, "--", tool })
            {
                psi.ArgumentList.Add(a);
            }
        }

        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment.Remove("PGPASSWORD");
        psi.Environment["PGAPPNAME"] = "hubdr-pitr";
        using var p = Processes.ProcessStarter.Start(psi, $"the restored cluster's {Path.GetFileName(tool)}");
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        var stderr = p.StandardError.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct).ConfigureAwait(false);
        var sb = new StringBuilder(await stdout.ConfigureAwait(false));
        var err = await stderr.ConfigureAwait(false);
        if (p.ExitCode != 0)
        {
            sb.Append(err);
        }

        return (p.ExitCode, sb.ToString());
    }

    public static string Tail(string log, int lines = 15)
    {
        var all = log.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return string.Join("\n", all.Skip(Math.Max(0, all.Length - lines)));
    }
}
