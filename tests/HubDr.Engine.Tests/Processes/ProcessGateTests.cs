using System.Text.RegularExpressions;
using HubDr.Engine.Backup;
using HubDr.Engine.Crypto;
using HubDr.Engine.Databases;
using HubDr.Engine.Processes;
using HubDr.Engine.RestoreTest;
using HubDr.Engine.Retention;
using HubDr.Engine.Sources;
using HubDr.Engine.Stores;
using Microsoft.Data.Sqlite;
using Xunit;

namespace HubDr.Engine.Tests.Processes;

/// <summary>
/// The one process gate (ProcessStarter) in the Azure Automation cloud sandbox, presented through the
/// ExecutionEnvironment seam: every feature that needs a child process fails fast with ChildProcessUnavailable and
/// starts nothing, before any other work; what runs in-process (SQLite backup, listing, verification, retention, key
/// generation) still works; HUBDR_AUTOMATION_SANDBOX=0 lets processes start again.
/// </summary>
[Collection("ProcessGate")]
public sealed class ProcessGateTests : IAsyncLifetime
{
    private const string Pass = "gate pass";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "hubdr-gate-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly List<string> _started = [];
    private ExecutionEnvironment? _active;
    private string _pub = "";
    private string _sec = "";
    private string _db = "";

    private static ExecutionEnvironment Sandbox => ExecutionEnvironmentTests.Env(ExecutionEnvironmentTests.SandboxVariables);

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        // Key generation is in-process: it works in the sandbox.
        using (ExecutionEnvironment.Use(Sandbox))
        {
            var key = KeyGenerator.Generate("Gate <gate@example.test>", KeyAlgorithm.EcdsaP256, Pass.ToCharArray());
            _pub = Path.Combine(_dir, "ops.pub.asc");
            _sec = Path.Combine(_dir, "ops.sec.asc");
            await File.WriteAllTextAsync(_pub, key.ArmoredPublicKey);
            await File.WriteAllTextAsync(_sec, key.ArmoredSecretKey);
        }

        _db = Path.Combine(_dir, "hub.db");
        await using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _db, Pooling = false }.ToString());
        await c.OpenAsync();
        var cmd = c.CreateCommand();
        cmd.CommandText = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('a'), ('b'), ('c');";
        await cmd.ExecuteNonQueryAsync();
        ProcessStarter.Started += OnStarted;
    }

    public Task DisposeAsync()
    {
        ProcessStarter.Started -= OnStarted;
        try
        {
            Directory.Delete(_dir, true);
        }
        catch (IOException)
        {
        }

        return Task.CompletedTask;
    }

    private void OnStarted(int pid, string file, string purpose)
    {
        if (!ReferenceEquals(ExecutionEnvironment.Current, _active))
        {
            return;
        }

        lock (_started)
        {
            _started.Add($"{pid} {file} ({purpose})");
        }
    }

    /// <summary>An operator's command; whether anything started is seen by the ProcessStarter.Started hook.</summary>
    private static string Command(string name) => $"hub-cli {name} --output {{path}}";

    /// <summary>Presents <paramref name="env"/> to this test's flow; starts are recorded only in that flow (other test classes run in parallel).</summary>
    private IDisposable Use(ExecutionEnvironment env)
    {
        _active = env;
        return ExecutionEnvironment.Use(env);
    }

    private BackupRequest Request(string store, DatabaseSpec? db = null, SourceSpec? sources = null) => new()
    {
        Hub = "contoso",
        Store = new StoreSpec { Uri = store },
        Database = db ?? new DatabaseSpec { Engine = "sqlite", ConnectionString = _db },
        Sources = sources ?? new SourceSpec(),
        RecipientKeys = [_pub],
        SigningKeys = [_sec],
        SigningPassphrase = Pass.ToCharArray(),
    };

    private void AssertRefused(HubDrException e, string needs)
    {
        Assert.Equal("ChildProcessUnavailable", e.ErrorId);
        Assert.Equal(HubErrorCategory.InvalidOperation, e.Category);
        Assert.Contains(needs, e.Message, StringComparison.Ordinal);
        Assert.Contains("Hybrid Runbook Worker", e.Message, StringComparison.Ordinal);
        lock (_started)
        {
            Assert.Empty(_started);
        }
    }

    [Theory]
    [InlineData("postgres", "pg_dump")]
    [InlineData("mariadb", "mariadb-dump")]
    public async Task ServerDatabaseBackup_FailsFast_BeforeTheStoreOrKeysAreTouched(string engine, string tool)
    {
        using var _ = Use(Sandbox);
        var store = Path.Combine(_dir, "store-" + engine);
        Directory.CreateDirectory(store);
        // Keys that do not exist and a server that does not answer: the refusal must come before either is looked at.
        var request = new BackupRequest
        {
            Hub = "contoso",
            Store = new StoreSpec { Uri = store },
            Database = new DatabaseSpec { Engine = engine, ConnectionString = "Host=127.0.0.1;Port=1;Database=hub;Username=hub" },
            RecipientKeys = [Path.Combine(_dir, "missing.pub.asc")],
            SigningKeys = [Path.Combine(_dir, "missing.sec.asc")],
            SigningPassphrase = Pass.ToCharArray(),
        };
        var e = await Assert.ThrowsAsync<HubDrException>(() => BackupService.CreateAsync(request, NullOperationLog.Instance, default));
        AssertRefused(e, tool);
        Assert.Empty(Directory.EnumerateFileSystemEntries(store));
    }

    [Fact]
    public async Task ExportCommands_FailFast_AndNameEveryNeed()
    {
        using var _ = Use(Sandbox);
        var store = Path.Combine(_dir, "store-export");
        Directory.CreateDirectory(store);
        var e = await Assert.ThrowsAsync<HubDrException>(() => BackupService.CreateAsync(
            Request(store, sources: new SourceSpec { ManifestCommand = Command("export-manifests"), ConfigCommand = Command("export-config") }), NullOperationLog.Instance, default));
        AssertRefused(e, "-ManifestCommand, -ConfigCommand");
        Assert.Empty(Directory.EnumerateFileSystemEntries(store));
    }

    [Theory]
    [InlineData("postgres", null, "pg_restore")]
    [InlineData("mysql", null, "mariadb client")]
    [InlineData(null, "import", "-ImportCommand")]
    public async Task Restore_FailsFast_BeforeTheStoreIsRead(string? engine, string? import, string needs)
    {
        using var _ = Use(Sandbox);
        var request = new RestoreRequest
        {
            // A store that does not exist: StoreNotFound if anything came before the gate.
            Store = new StoreSpec { Uri = Path.Combine(_dir, "no-such-store") },
            Hub = "contoso",
            BackupId = "20250101T000000Z-abcdef",
            TrustedSigners = KeyFiles.LoadPublic([_pub], "trusted"),
            SecretKeys = KeyFiles.LoadSecret([_sec], "secret"),
            PassphraseFor = _ => Pass.ToCharArray(),
            Database = engine is null ? null : new DatabaseSpec { Engine = engine, ConnectionString = "Host=127.0.0.1;Port=1;Database=hub;Username=hub" },
            FilesTarget = Path.Combine(_dir, "files"),
            ImportCommand = import is null ? null : Command(import),
        };
        var e = await Assert.ThrowsAsync<HubDrException>(() => RestoreService.RestoreAsync(request, NullOperationLog.Instance, default));
        AssertRefused(e, needs);
    }

    [Fact]
    public async Task EveryProcessStartingPlace_IsRefusedByTheGate()
    {
        using var _ = Use(Sandbox);
        // Databases/ToolProcess (pg_dump, psql, mariadb…, and their --version probes).
        AssertRefused(Assert.Throws<HubDrException>(() => ToolProcess.Start("dotnet", ["--version"], null, redirectStdin: false)), "dotnet");
        AssertRefused(await Assert.ThrowsAsync<HubDrException>(() => ToolProcess.RunForOutputAsync("dotnet", ["--version"], default)), "dotnet");
        // Sources/CommandLine (export and import commands).
        AssertRefused(await Assert.ThrowsAsync<HubDrException>(() => HubCommand.RunAsync(Command("export-config"), new Dictionary<string, string>(), null, TimeSpan.FromSeconds(30), default, "-ConfigCommand")), "-ConfigCommand");
        // RestoreTest/ServiceProcess (the restore test's service command).
        AssertRefused(Assert.Throws<HubDrException>(() => ServiceProcess.Start(Command("serve"), new Dictionary<string, string>(), new Dictionary<string, string?>())), "-ServiceCommand");
        // The child pwsh for Pester starts through ProcessStarter.Start as well (Pester tests: Platform.Tests.ps1).
        AssertRefused(Assert.Throws<HubDrException>(() => ProcessStarter.Start(new System.Diagnostics.ProcessStartInfo("dotnet"), "-PesterPath")), "-PesterPath");
    }

    [Fact]
    public async Task OverrideZero_LetsProcessesStart_DespiteTheSandboxSignals()
    {
        var vars = new Dictionary<string, string>(ExecutionEnvironmentTests.SandboxVariables) { [ExecutionEnvironment.OverrideVariable] = "0" };
        using var _ = Use(ExecutionEnvironmentTests.Env(vars, "CLIENT", windows: true));
        var (exit, stdout, _) = await HubCommand.RunAsync("dotnet --version", new Dictionary<string, string>(), null, TimeSpan.FromMinutes(1), default);
        Assert.Equal(0, exit);
        Assert.NotEmpty(stdout);
        lock (_started)
        {
            Assert.Single(_started);
        }
    }

    [Fact]
    public async Task OverrideOne_RefusesOnAnOrdinaryMachine()
    {
        using var _ = Use(ExecutionEnvironmentTests.Env(new Dictionary<string, string> { [ExecutionEnvironment.OverrideVariable] = "1" }));
        var e = await Assert.ThrowsAsync<HubDrException>(() => HubCommand.RunAsync("dotnet --version", new Dictionary<string, string>(), null, TimeSpan.FromMinutes(1), default));
        AssertRefused(e, "dotnet");
        Assert.DoesNotContain("set HUBDR_AUTOMATION_SANDBOX=0", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InTheSandbox_SqliteBackupListVerifyAndRetention_Work()
    {
        using var _ = Use(Sandbox);
        var store = Path.Combine(_dir, "store-sqlite");
        Directory.CreateDirectory(store);
        var outcome = await BackupService.CreateAsync(Request(store), NullOperationLog.Instance, default);
        await using var s = StoreFactory.Create(new StoreSpec { Uri = store });
        var listed = Assert.Single(await CatalogService.ListAsync(s, "contoso", default));
        Assert.Equal(outcome.Catalog.BackupId, listed.BackupId);
        var verified = await VerifyService.VerifyAsync(s, "contoso", listed.BackupId, KeyFiles.LoadPublic([_pub], "trusted"), NullOperationLog.Instance, default);
        Assert.True(verified.IsValid, verified.Reason);
        var plan = await RetentionService.PlanAsync(s, new RetentionRequest { Policy = new RetentionPolicy { KeepLast = 1 }, Hub = "contoso" }, NullOperationLog.Instance, default);
        Assert.Contains(plan.Items, i => !i.WillDelete && i.Backup.BackupId == listed.BackupId);

        // And a SQLite restore (database and files) in the sandbox.
        var target = Path.Combine(_dir, "restored.db");
        var restored = await RestoreService.RestoreAsync(new RestoreRequest
        {
            Store = new StoreSpec { Uri = store },
            Hub = "contoso",
            BackupId = listed.BackupId,
            TrustedSigners = KeyFiles.LoadPublic([_pub], "trusted"),
            SecretKeys = KeyFiles.LoadSecret([_sec], "secret"),
            PassphraseFor = _ => Pass.ToCharArray(),
            Database = new DatabaseSpec { Engine = "sqlite", ConnectionString = target },
            FilesTarget = Path.Combine(_dir, "restored-files"),
        }, NullOperationLog.Instance, default);
        Assert.True(restored.RowCountsMatch);
        lock (_started)
        {
            Assert.Empty(_started);
        }
    }

    /// <summary>Exactly one gate: no source file outside Processes/ starts a process itself.</summary>
    [Fact]
    public void NoProcessIsStartedOutsideTheGate()
    {
        var root = HubDr.Engine.Tests.RestoreTest.HubServiceProcess.RepoRoot;
        var starts = new Regex(@"\bProcess\.Start\(|new\s+Process\s*[({]|\bnew\s*\(\)\s*\{\s*StartInfo", RegexOptions.Compiled);
        var offenders = Directory.EnumerateFiles(Path.Combine(root, "src"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.EndsWith(Path.Combine("Processes", "ProcessStarter.cs"), StringComparison.Ordinal))
            .SelectMany(f => File.ReadLines(f).Select((line, i) => (f, i, line)))
            .Where(x => starts.IsMatch(x.line))
            .Select(x => $"{Path.GetRelativePath(root, x.f)}:{x.i + 1}: {x.line.Trim()}")
            .ToList();
        Assert.True(offenders.Count == 0, "processes started outside ProcessStarter:\n" + string.Join("\n", offenders));
    }
}
