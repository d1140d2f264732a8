using System.Diagnostics;
using System.Text;

namespace HubDr.Engine.Databases;

/// <summary>
/// Runs a database client tool (pg_dump, pg_restore, psql, mariadb-dump, mariadb) with streamed stdin/stdout,
/// stderr captured (bounded) for error messages, and secrets kept off the command line.
/// </summary>
public sealed class ToolProcess : IDisposable
{
    private const int StderrLimit = 64 * 1024;
    private const int CopyBufferSize = 1024 * 1024;

    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private readonly Task _stderrPump;
    private readonly IReadOnlyList<string> _secrets;
    private int _killed;

    /// <summary>
    /// Diagnostic hook: called right after a tool process starts with (pid, executable, argument list).
    /// Tests use it to read /proc/&lt;pid&gt;/cmdline and prove no secret is visible in ps.
    /// </summary>
    public static Action<int, string, IReadOnlyList<string>>? ProcessStarted { get; set; }

    private ToolProcess(Process process, IReadOnlyList<string> secrets)
    {
        _process = process;
        _secrets = secrets;
        _stderrPump = Task.Run(PumpStderrAsync);
        // 1 MiB pipes instead of 64 KiB: a client reading one ~1 MiB extended INSERT at a time (mariadb, psql) finds the
        // whole next statement already buffered while the server runs the current one, and dump tools' output arrives
        // in fewer, larger reads.
        EnlargePipe(process.StandardOutput.BaseStream);
        if (process.StartInfo.RedirectStandardInput)
        {
            EnlargePipe(process.StandardInput.BaseStream);
        }
    }

    /// <summary>Linux pipe capacity used for the tools' stdin/stdout (the unprivileged default maximum, fs.pipe-max-size).</summary>
    internal const int PipeCapacity = 1 << 20;

    /// <summary>Best effort (Linux only): F_SETPIPE_SZ on the pipe behind <paramref name="stream"/>; returns the new capacity or -1.</summary>
    internal static int EnlargePipe(Stream stream)
    {
        if (!OperatingSystem.IsLinux())
        {
            return -1;
        }

        System.Runtime.InteropServices.SafeHandle? handle = stream switch
        {
            System.IO.Pipes.PipeStream p => p.SafePipeHandle,
            FileStream f => f.SafeFileHandle,
            _ => null,
        };
        if (handle is null || handle.IsInvalid)
        {
            return -1;
        }

        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return Fcntl((int)handle.DangerousGetHandle(), 1031 /* F_SETPIPE_SZ */, PipeCapacity);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or ObjectDisposedException)
        {
            return -1;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>Current capacity of the pipe behind <paramref name="stream"/> (F_GETPIPE_SZ), or -1; for tests.</summary>
    internal static int PipeSize(Stream stream)
    {
        if (!OperatingSystem.IsLinux() || stream is not System.IO.Pipes.PipeStream p)
        {
            return -1;
        }

        return Fcntl((int)p.SafePipeHandle.DangerousGetHandle(), 1032 /* F_GETPIPE_SZ */, 0);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static extern int Fcntl(int fd, int cmd, int arg);

    public int Id => _process.Id;

    public string FileName => _process.StartInfo.FileName;

    /// <summary>The child's stdout (raw bytes).</summary>
    public Stream StandardOutput => _process.StandardOutput.BaseStream;

    /// <summary>The child's stdin (raw bytes). Only when started with redirectStdin.</summary>
    public Stream StandardInput => _process.StandardInput.BaseStream;

    /// <summary>True when the process was killed by us (cancellation/failure).</summary>
    public bool WasKilled => Volatile.Read(ref _killed) != 0;

    /// <summary>
    /// Starts <paramref name="fileName"/> with <paramref name="arguments"/> (passed as an argument list, never
    /// through a shell). <paramref name="environment"/> entries are added to (or, with null values, removed from)
    /// the child's environment only. <paramref name="secrets"/> are redacted from captured stderr.
    /// </summary>
    public static ToolProcess Start(string fileName, IReadOnlyList<string> arguments,
        IReadOnlyDictionary<string, string?>? environment, bool redirectStdin, IReadOnlyList<string>? secrets = null)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = redirectStdin,
            UseShellExecute = false,
            CreateNoWindow = true,
            StandardErrorEncoding = IO.PrivateFiles.Platform.ToolOutputEncoding,
        };
        foreach (var a in arguments)
        {
            psi.ArgumentList.Add(a);
        }

        if (environment is not null)
        {
            foreach (var (k, v) in environment)
            {
                if (v is null)
                {
                    psi.Environment.Remove(k);
                }
                else
                {
                    psi.Environment[k] = v;
                }
            }
        }

        var secretList = (secrets ?? Array.Empty<string>()).Where(s => !string.IsNullOrEmpty(s)).ToArray();
        foreach (var s in secretList)
        {
            if (arguments.Any(a => a.Contains(s, StringComparison.Ordinal)))
            {
                throw new InvalidOperationException("Refusing to start a tool with a secret on its command line.");
            }
        }

        Process process;
        try
        {
            process = Processes.ProcessStarter.Start(psi, $"the database tool {Path.GetFileName(fileName)}");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new HubDrException("DatabaseToolNotFound", HubErrorCategory.NotInstalled,
                $"Could not start '{fileName}': {ex.Message}. Install the database client tools or pass the folder " +
                "that contains them (ToolPath).", ex);
        }

        var tp = new ToolProcess(process, secretList);
        try
        {
            ProcessStarted?.Invoke(process.Id, fileName, arguments.ToArray());
        }
        catch
        {
            // A diagnostic hook must never break a backup.
        }

        return tp;
    }

    private async Task PumpStderrAsync()
    {
        var buffer = new char[4096];
        var reader = _process.StandardError;
        int n;
        while ((n = await reader.ReadAsync(buffer, 0, buffer.Length).ConfigureAwait(false)) > 0)
        {
            lock (_stderr)
            {
                _stderr.Append(buffer, 0, n);
                if (_stderr.Length > StderrLimit)
                {
                    // keep the head (first error is usually the real one) and the tail
                    var head = _stderr.ToString(0, StderrLimit / 2);
                    var tail = _stderr.ToString(_stderr.Length - StderrLimit / 4, StderrLimit / 4);
                    _stderr.Clear().Append(head).Append("\n…\n").Append(tail);
                }
            }
        }
    }

    /// <summary>Captured stderr with secrets redacted, trimmed.</summary>
    public string StandardErrorText
    {
        get
        {
            string s;
            lock (_stderr)
            {
                s = _stderr.ToString();
            }

            return Redact(s, _secrets).Trim();
        }
    }

    public static string Redact(string text, IEnumerable<string> secrets)
    {
        foreach (var secret in secrets)
        {
            if (!string.IsNullOrEmpty(secret))
            {
                text = text.Replace(secret, "***", StringComparison.Ordinal);
            }
        }

        return text;
    }

    /// <summary>Kills the whole process tree (idempotent).</summary>
    public void Kill()
    {
        Interlocked.Exchange(ref _killed, 1);
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
        }
        catch (System.ComponentModel.Win32Exception)
        {
        }
    }

    /// <summary>Waits for exit (and the stderr pump) and returns the exit code.</summary>
    public async Task<int> WaitForExitAsync(CancellationToken ct)
    {
        try
        {
            await _process.WaitForExitAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw;
        }

        try
        {
            await _stderrPump.WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }

        return _process.ExitCode;
    }

    /// <summary>Copies <paramref name="source"/> to <paramref name="destination"/> with a large buffer, reporting progress.</summary>
    public static async Task<long> CopyAsync(Stream source, Stream destination, IProgress<long>? progress,
        Action<ReadOnlyMemory<byte>>? observer, CancellationToken ct)
    {
        // Read-ahead: a reader task keeps the tool's pipe drained into a few pooled buffers while this task writes
        // (compression, encryption, upload), so the tool never waits for us and we never wait for the tool.
        var pool = System.Buffers.ArrayPool<byte>.Shared;
        var queue = System.Threading.Channels.Channel.CreateBounded<(byte[] Buffer, int Count)>(
            new System.Threading.Channels.BoundedChannelOptions(Math.Max(1, IO.PipelineLimits.Current.ReadAheadDepth)) { SingleReader = true, SingleWriter = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var reader = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    var buffer = pool.Rent(CopyBufferSize);
                    var filled = 0;
                    int n;
                    while (filled < CopyBufferSize / 2 && (n = await source.ReadAsync(buffer.AsMemory(filled, CopyBufferSize - filled), stop.Token).ConfigureAwait(false)) > 0)
                    {
                        filled += n;
                    }

                    if (filled == 0)
                    {
                        pool.Return(buffer);
                        break;
                    }

                    await queue.Writer.WriteAsync((buffer, filled), stop.Token).ConfigureAwait(false);
                }

                queue.Writer.TryComplete();
            }
            catch (Exception e)
            {
                queue.Writer.TryComplete(e);
            }
        }, CancellationToken.None);

        long total = 0;
        try
        {
            await foreach (var (buffer, count) in queue.Reader.ReadAllAsync(ct).ConfigureAwait(false))
            {
                try
                {
                    observer?.Invoke(buffer.AsMemory(0, count));
                    await destination.WriteAsync(buffer.AsMemory(0, count), ct).ConfigureAwait(false);
                }
                finally
                {
                    pool.Return(buffer);
                }

                total += count;
                progress?.Report(total);
            }
        }
        finally
        {
            stop.Cancel();
            try
            {
                await reader.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }

            while (queue.Reader.TryRead(out var left))
            {
                pool.Return(left.Buffer);
            }
        }

        return total;
    }

    /// <summary>
    /// Restore side: streams <paramref name="input"/> into the tool's standard input (its output is drained), closes
    /// it, and waits for the tool. A broken pipe (the tool died) is returned as the feed error, not thrown: the exit
    /// code and standard error tell the caller why. Cancellation kills the tool.
    /// </summary>
    public async Task<(int ExitCode, Exception? FeedError)> FeedAsync(Stream input, IProgress<long>? progress, CancellationToken ct)
    {
        var drain = CopyAsync(StandardOutput, Stream.Null, null, null, CancellationToken.None);
        Exception? feedError = null;
        try
        {
            await CopyAsync(input, StandardInput, progress, null, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw;
        }
        catch (IOException ex)
        {
            feedError = ex;
        }
        finally
        {
            try
            {
                StandardInput.Close();
            }
            catch (IOException)
            {
            }
        }

        var code = await WaitForExitAsync(ct).ConfigureAwait(false);
        try
        {
            await drain.ConfigureAwait(false);
        }
        catch (IOException)
        {
        }

        return (code, feedError);
    }

    /// <summary>
    /// Locates a tool in <paramref name="toolPath"/>, on PATH or (Windows) in its product's standard install folders;
    /// returns the first candidate found (see <see cref="Processes.ToolLocator"/>).
    /// </summary>
    public static string? Find(string? toolPath, params string[] names) =>
        Processes.ToolLocator.Current.Find(toolPath, FamilyOf(names), names);

    internal static Processes.ToolFamily FamilyOf(IEnumerable<string> names) =>
        names.Any(n => n.StartsWith("pg_", StringComparison.Ordinal) || n == "psql") ? Processes.ToolFamily.PostgreSql : Processes.ToolFamily.MariaDbMySql;

    /// <summary>DatabaseToolNotFound with where HubDr looked and how to install the tools on this OS.</summary>
    internal static HubDrException NotFound(string? toolPath, params string[] names)
    {
        var locator = Processes.ToolLocator.Current;
        var family = FamilyOf(names);
        var what = names.Length == 1 ? $"'{names[0]}' was" : $"None of {string.Join(", ", names)} was";
        var install = (family, locator.IsWindows) switch
        {
            (Processes.ToolFamily.PostgreSql, true) =>
                "Install the PostgreSQL command-line tools (winget install PostgreSQL.PostgreSQL.17 — use the server's major version or newer — " +
                "or the EDB installer from postgresql.org with 'Command Line Tools' selected)",
            (Processes.ToolFamily.PostgreSql, false) =>
                "Install the PostgreSQL client tools (Debian/Ubuntu: apt-get install postgresql-client-<server major>; RHEL: dnf install postgresql; macOS: brew install libpq)",
            (_, true) =>
                "Install the MariaDB client (winget install MariaDB.Server, or the MariaDB MSI from mariadb.org; it brings mariadb-dump.exe and mariadb.exe) " +
                "or MySQL's (the MySQL Installer's 'MySQL Server' or 'Client Programs')",
            _ => "Install the MariaDB/MySQL client (Debian/Ubuntu: apt-get install mariadb-client; RHEL: dnf install mariadb)",
        };
        return new HubDrException("DatabaseToolNotFound", HubErrorCategory.NotInstalled,
            $"{what} found {locator.Searched(toolPath, family)}. {install}, or pass the folder containing them as ToolPath.") { Target = names[0] };
    }

    /// <summary>Runs a short command (e.g. --version) and returns stdout; throws on failure.</summary>
    public static async Task<string> RunForOutputAsync(string fileName, IReadOnlyList<string> arguments, CancellationToken ct)
    {
        using var p = Start(fileName, arguments, null, redirectStdin: false);
        var output = await new StreamReader(p.StandardOutput).ReadToEndAsync(ct).ConfigureAwait(false);
        var code = await p.WaitForExitAsync(ct).ConfigureAwait(false);
        if (code != 0)
        {
            throw new HubDrException("DatabaseToolFailed", HubErrorCategory.NotInstalled,
                $"'{fileName} {string.Join(' ', arguments)}' exited with code {code}: {p.StandardErrorText}");
        }

        return output.Trim();
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            Kill();
        }

        _process.Dispose();
    }
}

/// <summary>
/// A temporary file for secrets (PGPASSFILE, --defaults-extra-file): owner-only (Unix 0600 in a 0700 folder; Windows an
/// ACL with only the current user), in a folder where a reboot clears it (Linux: $XDG_RUNTIME_DIR, else /dev/shm) and
/// named so a later run removes it if this process is killed before <see cref="Dispose"/> (see <see cref="IO.PrivateFiles"/>).
/// </summary>
public sealed class SecretFile : IDisposable
{
    private readonly string _dir;

    public SecretFile(string content, string fileName)
    {
        _dir = IO.PrivateFiles.CreateTempDirectory();
        FilePath = Path.Combine(_dir, fileName);
        try
        {
            IO.PrivateFiles.WriteAllBytes(FilePath, new UTF8Encoding(false).GetBytes(content));
        }
        catch
        {
            IO.PrivateFiles.Delete(_dir);
            throw;
        }
    }

    public string FilePath { get; }

    public void Dispose() => IO.PrivateFiles.Delete(_dir);
}
