using System.Diagnostics;
using HubDr.Engine.Databases;

namespace HubDr.Engine.Processes;

/// <summary>
/// The one gate every child process HubDr starts goes through (database tools, export/import/service commands, the
/// child pwsh that runs Pester). In the Azure Automation cloud sandbox, which does not allow a job to start
/// processes, it refuses with ChildProcessUnavailable; the services call <see cref="EnsureAllowed"/> with everything a
/// command will need BEFORE any work, so the refusal comes first and names all of it.
/// </summary>
public static class ProcessStarter
{
    /// <summary>ErrorId of the refusal (terminating).</summary>
    public const string UnavailableErrorId = "ChildProcessUnavailable";

    /// <summary>Diagnostic hook: called after a process started with (pid, executable, purpose). Tests count starts with it.</summary>
    public static Action<int, string, string>? Started { get; set; }

    /// <summary>
    /// Throws ChildProcessUnavailable when the environment forbids child processes and <paramref name="needs"/> is not
    /// empty. <paramref name="needs"/> names what would start a process ("the PostgreSQL dump (pg_dump)", "-ManifestCommand").
    /// </summary>
    public static void EnsureAllowed(IEnumerable<string> needs, ExecutionEnvironment? environment = null)
    {
        var list = needs.Where(n => !string.IsNullOrWhiteSpace(n)).Distinct(StringComparer.Ordinal).ToList();
        var env = environment ?? ExecutionEnvironment.Current;
        if (list.Count > 0 && !env.ChildProcessesAllowed)
        {
            throw Unavailable(list, env, null);
        }
    }

    /// <summary>
    /// Starts <paramref name="startInfo"/> through the gate. <paramref name="configure"/> runs on the Process before it
    /// starts (event handlers); the caller owns the returned Process. A start that fails because the OS refused it inside
    /// Azure Automation is reported as ChildProcessUnavailable too; any other failure is the caller's to map.
    /// </summary>
    public static Process Start(ProcessStartInfo startInfo, string purpose, Action<Process>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(startInfo);
        var env = ExecutionEnvironment.Current;
        if (!env.ChildProcessesAllowed)
        {
            throw Unavailable([purpose], env, null);
        }

        var process = new Process { StartInfo = startInfo };
        try
        {
            configure?.Invoke(process);
            if (!process.Start())
            {
                throw new InvalidOperationException($"'{startInfo.FileName}' did not start.");
            }
        }
        catch (System.ComponentModel.Win32Exception e) when (env.IsAzureAutomation && e.NativeErrorCode == 5 /* ERROR_ACCESS_DENIED */)
        {
            process.Dispose();
            throw Unavailable([purpose], env, e);
        }
        catch
        {
            process.Dispose();
            throw;
        }

        try
        {
            Started?.Invoke(process.Id, startInfo.FileName, purpose);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A diagnostic hook never breaks the work.
        }

        return process;
    }

    /// <summary>What a database engine needs a process for: nothing for SQLite (in-process), the client tools otherwise.</summary>
    public static IEnumerable<string> DatabaseNeeds(string? engine, bool restore)
    {
        return (engine is null ? null : DatabaseEngineFactory.Normalize(engine)) switch
        {
            "postgres" => [restore ? "the PostgreSQL restore (pg_restore / psql)" : "the PostgreSQL dump (pg_dump)"],
            "mysql" => [restore ? "the MariaDB/MySQL restore (the mariadb client)" : "the MariaDB/MySQL dump (mariadb-dump)"],
            _ => [],
        };
    }

    private static HubDrException Unavailable(IReadOnlyList<string> needs, ExecutionEnvironment env, Exception? inner) =>
        new(UnavailableErrorId, HubErrorCategory.InvalidOperation,
            $"This needs a child process for {string.Join(", ", needs)}, and HubDr is running in {env.Describe()}, which does not " +
            "allow a job to start processes. Run this on a Hybrid Runbook Worker (or any machine with the tools). In the cloud " +
            "sandbox HubDr can back up SQLite, list, verify and restore-test SQLite backups, apply retention and create keys. " +
            (env.IsOverridden ? "" : $"If this is not the cloud sandbox, set {ExecutionEnvironment.OverrideVariable}=0. ") +
            "See docs/platforms.md.", inner)
        { Target = needs[0] };
}
