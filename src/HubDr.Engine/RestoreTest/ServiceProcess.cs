using System.Diagnostics;
using HubDr.Engine.Sources;

namespace HubDr.Engine.RestoreTest;

/// <summary>
/// "Start Hub services" for a restore test: runs the operator's service command (no shell) against the staging
/// environment, captures its standard output and error as log lines, and stops it (whole process tree) when disposed.
/// </summary>
public sealed class ServiceProcess : IAsyncDisposable
{
    private const int MaxLines = 20_000;
    private readonly Process _process;
    private readonly LinkedList<string> _lines = new();
    private readonly object _gate = new();

    private ServiceProcess(Process process)
    {
        _process = process;
    }

    public int ProcessId => _process.Id;

    public bool HasExited => _process.HasExited;

    public int? ExitCode => _process.HasExited ? _process.ExitCode : null;

    /// <summary>Captured output so far (bounded to the last 20,000 lines).</summary>
    public IReadOnlyList<string> Log
    {
        get
        {
            lock (_gate)
            {
                return _lines.ToList();
            }
        }
    }

    public static ServiceProcess Start(string commandLine, IReadOnlyDictionary<string, string> placeholders, IReadOnlyDictionary<string, string?> environment)
    {
        var argv = HubCommand.Split(commandLine).Select(a => Substitute(a, placeholders)).ToList();
        if (argv.Count == 0)
        {
            throw new HubDrException("ServiceCommandInvalid", HubErrorCategory.InvalidArgument, "The service command is empty.");
        }

        var psi = new ProcessStartInfo(argv[0]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in argv.Skip(1))
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (k, v) in environment)
        {
            psi.Environment[k] = v is null ? null : Substitute(v, placeholders);
        }

        ServiceProcess? sp = null;
        Process p;
        try
        {
            p = Processes.ProcessStarter.Start(psi, "-ServiceCommand", process =>
            {
                process.EnableRaisingEvents = true;
                sp = new ServiceProcess(process);
                process.OutputDataReceived += (_, e) => sp.Add(e.Data);
                process.ErrorDataReceived += (_, e) => sp.Add(e.Data);
            });
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new HubDrException("ServiceStartFailed", HubErrorCategory.ObjectNotFound, $"Cannot start the service command '{argv[0]}': {e.Message}", e) { Target = argv[0] };
        }

        p.StandardInput.Close();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return sp!;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidOperationException or OperationCanceledException or System.ComponentModel.Win32Exception)
        {
            // Already gone, or refused to die within 15 s: nothing more we can do here.
        }
        finally
        {
            _process.Dispose();
        }
    }

    private static string Substitute(string s, IReadOnlyDictionary<string, string> placeholders)
    {
        foreach (var (k, v) in placeholders)
        {
            s = s.Replace("{" + k + "}", v, StringComparison.Ordinal);
        }

        return s;
    }

    private void Add(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_gate)
        {
            _lines.AddLast(line);
            if (_lines.Count > MaxLines)
            {
                _lines.RemoveFirst();
            }
        }
    }
}
