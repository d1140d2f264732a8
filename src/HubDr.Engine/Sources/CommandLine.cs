using System.Diagnostics;
using System.Text;

namespace HubDr.Engine.Sources;

/// <summary>Runs an operator-configured command (export/import hooks) without a shell.</summary>
public static class HubCommand
{
    /// <summary>Splits a command line into arguments: whitespace separates, single and double quotes group, backslash escapes inside double quotes.</summary>
    public static List<string> Split(string commandLine)
    {
        var args = new List<string>();
        var cur = new StringBuilder();
        var inArg = false;
        char quote = '\0';
        for (var i = 0; i < commandLine.Length; i++)
        {
            var c = commandLine[i];
            if (quote != '\0')
            {
                if (c == quote)
                {
                    quote = '\0';
                }
                else if (c == '\\' && quote == '"' && i + 1 < commandLine.Length && commandLine[i + 1] is '"' or '\\')
                {
                    cur.Append(commandLine[++i]);
                }
                else
                {
                    cur.Append(c);
                }

                continue;
            }

            if (char.IsWhiteSpace(c))
            {
                if (inArg)
                {
                    args.Add(cur.ToString());
                    cur.Clear();
                    inArg = false;
                }

                continue;
            }

            inArg = true;
            if (c is '"' or '\'')
            {
                quote = c;
            }
            else
            {
                cur.Append(c);
            }
        }

        if (quote != '\0')
        {
            throw new HubDrException("CommandLineInvalid", HubErrorCategory.InvalidArgument, $"Unbalanced quote in command: {commandLine}");
        }

        if (inArg)
        {
            args.Add(cur.ToString());
        }

        return args;
    }

    /// <summary>
    /// Runs the command, substituting {name} placeholders, and returns its standard output.
    /// Standard error is returned in the failure message after redaction.
    /// </summary>
    public static async Task<(int ExitCode, byte[] Stdout, string Stderr)> RunAsync(
        string commandLine, IReadOnlyDictionary<string, string> placeholders, IReadOnlyDictionary<string, string?>? environment,
        TimeSpan timeout, CancellationToken ct, string? purpose = null)
    {
        var argv = Split(commandLine).Select(a => Substitute(a, placeholders)).ToList();
        if (argv.Count == 0)
        {
            throw new HubDrException("CommandLineInvalid", HubErrorCategory.InvalidArgument, "The command is empty.");
        }

        var psi = new ProcessStartInfo(argv[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardErrorEncoding = IO.PrivateFiles.Platform.ToolOutputEncoding,
        };
        foreach (var a in argv.Skip(1))
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (k, v) in environment ?? new Dictionary<string, string?>())
        {
            psi.Environment[k] = v;
        }

        Process proc;
        try
        {
            proc = Processes.ProcessStarter.Start(psi, purpose ?? $"the command '{argv[0]}'");
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new HubDrException("CommandNotFound", HubErrorCategory.ObjectNotFound, $"Cannot start '{argv[0]}': {e.Message}", e) { Target = argv[0] };
        }

        using (proc)
        {
            proc.StandardInput.Close();
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(timeout);
            var stdoutTask = ReadAllAsync(proc.StandardOutput.BaseStream, cts.Token);
            var stderrTask = proc.StandardError.ReadToEndAsync(cts.Token);
            try
            {
                await proc.WaitForExitAsync(cts.Token).ConfigureAwait(false);
                var stdout = await stdoutTask.ConfigureAwait(false);
                var stderr = await stderrTask.ConfigureAwait(false);
                return (proc.ExitCode, stdout, stderr);
            }
            catch (OperationCanceledException)
            {
                try
                {
                    proc.Kill(entireProcessTree: true);
                }
                catch (InvalidOperationException)
                {
                }

                if (ct.IsCancellationRequested)
                {
                    throw;
                }

                throw new HubDrException("CommandTimedOut", HubErrorCategory.OperationStopped, $"'{argv[0]}' did not finish within {timeout}.") { Target = argv[0] };
            }
            finally
            {
                // Any other failure (a broken pipe, an exception from a reader): the command must not outlive us.
                try
                {
                    if (!proc.HasExited)
                    {
                        proc.Kill(entireProcessTree: true);
                    }
                }
                catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
                {
                }
            }
        }
    }

    private static string Substitute(string arg, IReadOnlyDictionary<string, string> placeholders)
    {
        foreach (var (k, v) in placeholders)
        {
            arg = arg.Replace("{" + k + "}", v, StringComparison.Ordinal);
        }

        return arg;
    }

    private static async Task<byte[]> ReadAllAsync(Stream s, CancellationToken ct)
    {
        using var ms = new MemoryStream();
        await s.CopyToAsync(ms, ct).ConfigureAwait(false);
        return ms.ToArray();
    }
}
