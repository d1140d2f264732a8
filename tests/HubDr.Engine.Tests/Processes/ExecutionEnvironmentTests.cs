using HubDr.Engine.Processes;
using Xunit;

namespace HubDr.Engine.Tests.Processes;

/// <summary>
/// Detection of the Azure Automation cloud sandbox / Hybrid Runbook Worker through the seam (environment variables,
/// machine name, OS): the signals each environment really sets, and the HUBDR_AUTOMATION_SANDBOX override both ways.
/// </summary>
public sealed class ExecutionEnvironmentTests
{
    /// <summary>What a cloud-sandbox job with the Automation account's managed identity sees.</summary>
    internal static readonly Dictionary<string, string> SandboxVariables = new()
    {
        ["AUTOMATION_ASSET_ACCOUNTID"] = "6b9a1c0e-0000-4000-8000-000000000001",
        ["IDENTITY_ENDPOINT"] = "http://127.0.0.1:40012/oauth2/token",
        ["IDENTITY_HEADER"] = "3d2a0e5f-0000-4000-8000-000000000002",
    };

    internal static ExecutionEnvironment Env(IDictionary<string, string> vars, string machine = "hubhost", bool windows = false) =>
        new(n => vars.TryGetValue(n, out var v) ? v : null, machine, windows);

    private static Dictionary<string, string> With(IDictionary<string, string> vars, string name, string value) =>
        new(vars) { [name] = value };

    [Fact]
    public void PlainMachine_IsLocal_AndAllowsProcesses()
    {
        var env = Env(new Dictionary<string, string>());
        Assert.Equal(ExecutionKind.Local, env.Kind);
        Assert.True(env.ChildProcessesAllowed);
        Assert.False(env.IsAzureAutomation);
    }

    [Fact]
    public void SandboxIdentityEndpoint_IsTheSandbox()
    {
        var env = Env(SandboxVariables);
        Assert.Equal(ExecutionKind.AutomationSandbox, env.Kind);
        Assert.False(env.ChildProcessesAllowed);
        Assert.Contains(env.Evidence, e => e.Contains("IDENTITY_HEADER", StringComparison.Ordinal));
        Assert.Contains("cloud sandbox", env.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void WindowsComputerNameClient_IsTheSandbox_EvenWithoutAManagedIdentity()
    {
        var vars = new Dictionary<string, string> { ["AUTOMATION_ASSET_ACCOUNTID"] = "x" };
        Assert.Equal(ExecutionKind.AutomationSandbox, Env(vars, "CLIENT", windows: true).Kind);
        // The name alone is not Automation, and on Linux it proves nothing.
        Assert.Equal(ExecutionKind.Local, Env(new Dictionary<string, string>(), "CLIENT", windows: true).Kind);
        Assert.Equal(ExecutionKind.HybridWorker, Env(vars, "CLIENT", windows: false).Kind);
    }

    [Fact]
    public void AutomationJobWithoutSandboxSignals_IsAHybridWorker()
    {
        // Azure VM Hybrid Worker: Automation job, managed identity through IMDS (no IDENTITY_* variables).
        var vm = Env(new Dictionary<string, string> { ["AUTOMATION_ASSET_ACCOUNTID"] = "x" }, "hub-vm-01", windows: true);
        Assert.Equal(ExecutionKind.HybridWorker, vm.Kind);
        Assert.True(vm.ChildProcessesAllowed);
        Assert.True(vm.IsAzureAutomation);

        // Arc-enabled server: IDENTITY_ENDPOINT plus IMDS_ENDPOINT (the Arc agent), no IDENTITY_HEADER.
        var arc = Env(new Dictionary<string, string>
        {
            ["AZUREPS_HOST_ENVIRONMENT"] = "AzureAutomation/",
            ["IDENTITY_ENDPOINT"] = "http://localhost:40342/metadata/identity/oauth2/token",
            ["IMDS_ENDPOINT"] = "http://localhost:40342",
        }, "hub-arc-01", windows: true);
        Assert.Equal(ExecutionKind.HybridWorker, arc.Kind);

        // An App Service / Functions host has IDENTITY_ENDPOINT + IDENTITY_HEADER but is not Automation.
        var appService = Env(new Dictionary<string, string> { ["IDENTITY_ENDPOINT"] = "http://x", ["IDENTITY_HEADER"] = "y" });
        Assert.Equal(ExecutionKind.Local, appService.Kind);
    }

    [Theory]
    [InlineData("1")]
    [InlineData("true")]
    [InlineData("YES")]
    public void OverrideOne_MakesAnyMachineTheSandbox(string value)
    {
        var env = Env(new Dictionary<string, string> { [ExecutionEnvironment.OverrideVariable] = value });
        Assert.Equal(ExecutionKind.AutomationSandbox, env.Kind);
        Assert.True(env.IsOverridden);
        Assert.False(env.ChildProcessesAllowed);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("false")]
    [InlineData("no")]
    public void OverrideZero_WinsOverTheSandboxSignals(string value)
    {
        var env = Env(With(SandboxVariables, ExecutionEnvironment.OverrideVariable, value), "CLIENT", windows: true);
        Assert.Equal(ExecutionKind.HybridWorker, env.Kind);
        Assert.True(env.ChildProcessesAllowed);
        Assert.Contains(env.Evidence, e => e.Contains("explicit", StringComparison.Ordinal));
    }

    [Fact]
    public void OverrideWithAnotherValue_IsIgnoredAndSaidSo()
    {
        var env = Env(With(SandboxVariables, ExecutionEnvironment.OverrideVariable, "maybe"));
        Assert.Equal(ExecutionKind.AutomationSandbox, env.Kind);
        Assert.False(env.IsOverridden);
        Assert.Contains(env.Evidence, e => e.Contains("'maybe'", StringComparison.Ordinal));
    }

    [Fact]
    public void Use_OverridesCurrent_OnlyInThisFlow()
    {
        var before = ExecutionEnvironment.Current.Kind;
        using (ExecutionEnvironment.Use(Env(SandboxVariables)))
        {
            Assert.Equal(ExecutionKind.AutomationSandbox, ExecutionEnvironment.Current.Kind);
        }

        Assert.Equal(before, ExecutionEnvironment.Current.Kind);
    }
}
