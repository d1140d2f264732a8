namespace HubDr.Engine.Processes;

/// <summary>Where HubDr runs, as far as its environment tells (docs/platforms.md, "Azure Automation").</summary>
public enum ExecutionKind
{
    /// <summary>An ordinary machine: an admin session, cron, systemd, Windows Task Scheduler.</summary>
    Local,

    /// <summary>An Azure Automation job on a Hybrid Runbook Worker (your own VM / Arc machine): child processes work.</summary>
    HybridWorker,

    /// <summary>An Azure Automation job in Azure's cloud sandbox: no child processes, about 400 MB of memory, 3-hour fair share.</summary>
    AutomationSandbox,
}

/// <summary>
/// Detects the execution environment from environment variables, the machine name and the OS — read through a seam
/// (<see cref="ExecutionEnvironment(Func{string, string?}, string, bool)"/>) so a test on Linux can present the
/// Azure Automation sandbox's or a Hybrid Runbook Worker's signals. The signals (why each, and what could not be
/// verified) are in docs/platforms.md:
/// <list type="bullet">
/// <item><c>HUBDR_AUTOMATION_SANDBOX</c> = 1/true/yes or 0/false/no: the operator's explicit answer, always wins.</item>
/// <item>Azure Automation job: <c>AUTOMATION_ASSET_ACCOUNTID</c> set, or <c>AZUREPS_HOST_ENVIRONMENT</c> starting with "AzureAutomation".</item>
/// <item>Cloud sandbox (rather than a Hybrid Worker): the managed identity comes through <c>IDENTITY_ENDPOINT</c> +
/// <c>IDENTITY_HEADER</c> (App Service style; an Arc-enabled Hybrid Worker has <c>IMDS_ENDPOINT</c> instead of a header and an
/// Azure VM has neither, it uses IMDS), or the Windows computer name is "CLIENT".</item>
/// </list>
/// </summary>
public sealed class ExecutionEnvironment
{
    /// <summary>The explicit override: 1 = the cloud sandbox (no child processes), 0 = not the sandbox.</summary>
    public const string OverrideVariable = "HUBDR_AUTOMATION_SANDBOX";

    private static readonly AsyncLocal<ExecutionEnvironment?> Overridden = new();

    /// <summary>Detection from explicit inputs (the seam): <paramref name="variable"/> reads an environment variable.</summary>
    public ExecutionEnvironment(Func<string, string?> variable, string machineName, bool isWindows)
    {
        ArgumentNullException.ThrowIfNull(variable);
        var evidence = new List<string>();
        string? Get(string name) => variable(name) is { Length: > 0 } v ? v.Trim() : null;

        var accountId = Get("AUTOMATION_ASSET_ACCOUNTID");
        var hostEnvironment = Get("AZUREPS_HOST_ENVIRONMENT");
        var automation = accountId is not null || hostEnvironment?.StartsWith("AzureAutomation", StringComparison.OrdinalIgnoreCase) == true;
        if (accountId is not null)
        {
            evidence.Add("AUTOMATION_ASSET_ACCOUNTID is set");
        }

        if (hostEnvironment?.StartsWith("AzureAutomation", StringComparison.OrdinalIgnoreCase) == true)
        {
            evidence.Add($"AZUREPS_HOST_ENVIRONMENT={hostEnvironment}");
        }

        var sandboxIdentity = Get("IDENTITY_ENDPOINT") is not null && Get("IDENTITY_HEADER") is not null && Get("IMDS_ENDPOINT") is null;
        var clientName = isWindows && string.Equals(machineName, "CLIENT", StringComparison.OrdinalIgnoreCase);
        var sandboxSignals = automation && (sandboxIdentity || clientName);
        if (automation && sandboxIdentity)
        {
            evidence.Add("the managed identity comes through IDENTITY_ENDPOINT/IDENTITY_HEADER (the cloud sandbox's endpoint, not a VM's IMDS)");
        }

        if (automation && clientName)
        {
            evidence.Add("the computer name is CLIENT (the cloud sandbox's)");
        }

        bool? forced = Get(OverrideVariable)?.ToLowerInvariant() switch
        {
            "1" or "true" or "yes" or "on" => true,
            "0" or "false" or "no" or "off" => false,
            null => null,
            var other => Invalid(other),
        };

        bool? Invalid(string value)
        {
            evidence.Add($"{OverrideVariable}='{value}' is not 1 or 0 and was ignored");
            return null;
        }

        if (forced is { } f)
        {
            evidence.Add($"{OverrideVariable}={(f ? 1 : 0)} (explicit)");
        }

        IsOverridden = forced.HasValue;
        Kind = forced switch
        {
            true => ExecutionKind.AutomationSandbox,
            false => automation ? ExecutionKind.HybridWorker : ExecutionKind.Local,
            null => sandboxSignals ? ExecutionKind.AutomationSandbox : automation ? ExecutionKind.HybridWorker : ExecutionKind.Local,
        };
        Evidence = evidence;
    }

    /// <summary>What this process's environment says (read afresh on every call unless a test overrides it).</summary>
    public static ExecutionEnvironment Current => Overridden.Value ?? Detect();

    /// <summary>Detection from the real environment variables, machine name and OS.</summary>
    public static ExecutionEnvironment Detect() =>
        new(Environment.GetEnvironmentVariable, Environment.MachineName, OperatingSystem.IsWindows());

    /// <summary>Test seam: makes <see cref="Current"/> return <paramref name="environment"/> in this async flow until disposed.</summary>
    public static IDisposable Use(ExecutionEnvironment environment)
    {
        var previous = Overridden.Value;
        Overridden.Value = environment;
        return new Restore(previous);
    }

    public ExecutionKind Kind { get; }

    /// <summary>An Azure Automation job (sandbox or Hybrid Worker).</summary>
    public bool IsAzureAutomation => Kind != ExecutionKind.Local;

    /// <summary>False in the Azure Automation cloud sandbox, which does not allow a job to start processes.</summary>
    public bool ChildProcessesAllowed => Kind != ExecutionKind.AutomationSandbox;

    /// <summary>True when HUBDR_AUTOMATION_SANDBOX decided.</summary>
    public bool IsOverridden { get; }

    /// <summary>The signals that led to <see cref="Kind"/>, for messages and -Verbose.</summary>
    public IReadOnlyList<string> Evidence { get; }

    /// <summary>One line for -Verbose and error messages.</summary>
    public string Describe()
    {
        var what = Kind switch
        {
            ExecutionKind.AutomationSandbox => "the Azure Automation cloud sandbox",
            ExecutionKind.HybridWorker => "an Azure Automation job on a Hybrid Runbook Worker",
            _ => "a local machine (not Azure Automation)",
        };
        return Evidence.Count == 0 ? what : $"{what} ({string.Join("; ", Evidence)})";
    }

    private sealed class Restore(ExecutionEnvironment? previous) : IDisposable
    {
        public void Dispose() => Overridden.Value = previous;
    }
}
