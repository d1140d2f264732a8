using System.Runtime.CompilerServices;
using HubDr.Engine.Backup;
using HubDr.Engine.Compression;
using HubDr.Engine.Crypto;
using HubDr.Engine.Databases;
using HubDr.Engine.IO;
using HubDr.Engine.Processes;
using HubDr.Engine.Stores;
using Microsoft.Data.Sqlite;
using Xunit;

namespace HubDr.Engine.Tests.Processes;

/// <summary>
/// The memory cap (-MaxMemoryMB / Performance.MaxMemoryMB, automatic in Azure Automation): the plan bounds zstd
/// workers, the part buffer and the pipeline buffers, and a real backup runs with exactly that plan (the compressor's
/// workers and job size, the archive's part size). The RSS bound of a whole pwsh is measured in Platform.Tests.ps1.
/// </summary>
public sealed class MemoryCapTests : IAsyncLifetime
{
    private const int MiB = 1024 * 1024;
    private const string Pass = "cap pass";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "hubdr-cap-" + Guid.NewGuid().ToString("N")[..8]);
    private string _pub = "";
    private string _sec = "";
    private string _db = "";

    private static ExecutionEnvironment Local => ExecutionEnvironmentTests.Env(new Dictionary<string, string>());

    private static ExecutionEnvironment Sandbox => ExecutionEnvironmentTests.Env(ExecutionEnvironmentTests.SandboxVariables);

    private static ExecutionEnvironment Hybrid => ExecutionEnvironmentTests.Env(new Dictionary<string, string> { ["AUTOMATION_ASSET_ACCOUNTID"] = "x" });

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        var key = KeyGenerator.Generate("Cap <cap@example.test>", KeyAlgorithm.EcdsaP256, Pass.ToCharArray());
        _pub = Path.Combine(_dir, "ops.pub.asc");
        _sec = Path.Combine(_dir, "ops.sec.asc");
        await File.WriteAllTextAsync(_pub, key.ArmoredPublicKey);
        await File.WriteAllTextAsync(_sec, key.ArmoredSecretKey);
        _db = Path.Combine(_dir, "hub.db");
        await using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _db, Pooling = false }.ToString());
        await c.OpenAsync();
        var cmd = c.CreateCommand();
        // About 24 MB of dump (hex): several parts at every planned part size.
        cmd.CommandText = "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1200) INSERT INTO t SELECT i, randomblob(10000) FROM n;";
        await cmd.ExecuteNonQueryAsync();
    }

    public Task DisposeAsync()
    {
        try
        {
            Directory.Delete(_dir, true);
        }
        catch (IOException)
        {
        }

        return Task.CompletedTask;
    }

    [Fact]
    public void NoCap_OnAnOrdinaryMachine_KeepsTheDefaults_WorkersGrowWithCores()
    {
        Assert.Equal(PipelineLimits.Defaults(2), PipelineLimits.Plan(null, Local, 2));
        var big = PipelineLimits.Plan(null, Local, 16);
        Assert.Equal(8, big.CompressionWorkers);
        Assert.Equal(16 * MiB, big.PartSize);
        Assert.Null(big.MaxMemoryMB);
        Assert.True(big.EstimatedBytes > 150L * MiB, $"{big.EstimatedBytes / MiB} MiB");
    }

    [Fact]
    public void AzureAutomation_SandboxAndHybrid_GetTheAutomaticCap()
    {
        foreach (var env in new[] { Sandbox, Hybrid })
        {
            var plan = PipelineLimits.Plan(null, env, 16);
            Assert.Equal(PipelineLimits.AutomationDefaultMaxMemoryMB, plan.MaxMemoryMB);
            Assert.Equal(1, plan.CompressionWorkers);
            Assert.True(plan.PartSize < 16 * MiB);
            Assert.True(plan.EstimatedBytes <= PipelineLimits.AutomationDefaultMaxMemoryMB * (long)MiB, plan.Describe());
            Assert.Contains("Azure Automation default", plan.Describe(), StringComparison.Ordinal);
        }

        // 0: no cap, even in Automation.
        Assert.Equal(8, PipelineLimits.Plan(0, Sandbox, 16).CompressionWorkers);
    }

    [Theory]
    [InlineData(96)]
    [InlineData(48)]
    [InlineData(32)]
    [InlineData(24)]
    public void ExplicitCap_BoundsWorkersPartAndBuffers(int cap)
    {
        var plan = PipelineLimits.Plan(cap, Local, 16);
        Assert.True(plan.EstimatedBytes <= cap * (long)MiB, plan.Describe());
        Assert.True(plan.CompressionWorkers <= 1);
        Assert.True((plan.StageDepth + 1) * plan.StageBufferSize + plan.PartSize + (plan.UploadPartsInFlight + 1) * plan.UploadPartSize <= cap * MiB);
    }

    [Fact]
    public void CapBelowTheSmallestPipeline_UsesTheSmallest_AndSaysSo()
    {
        var plan = PipelineLimits.Plan(1, Local, 2);
        Assert.Equal(0, plan.CompressionWorkers);
        Assert.Equal(MiB, plan.PartSize);
        Assert.Equal(1, plan.StageDepth);
        Assert.Contains("below the smallest pipeline", plan.Describe(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(16, null)]
    [InlineData(null, "sandbox")]
    public async Task Backup_RunsWithThePlannedLimits(int? cap, string? environment)
    {
        using var _ = ExecutionEnvironment.Use(environment is null ? Local : Sandbox);
        var observed = new StrongBox<(int Workers, int? JobSize)>((-1, null));
        ZstdCompressor.Observed.Value = observed;
        var store = Path.Combine(_dir, "store-" + (cap?.ToString() ?? environment));
        Directory.CreateDirectory(store);
        var messages = new List<string>();
        var outcome = await BackupService.CreateAsync(new BackupRequest
        {
            Hub = "contoso",
            Store = new StoreSpec { Uri = store },
            Database = new DatabaseSpec { Engine = "sqlite", ConnectionString = _db },
            RecipientKeys = [_pub],
            SigningKeys = [_sec],
            SigningPassphrase = Pass.ToCharArray(),
            MaxMemoryMB = cap,
        }, new ListLog(messages), default);
        ZstdCompressor.Observed.Value = null;

        var expected = PipelineLimits.Plan(cap, environment is null ? Local : Sandbox, Environment.ProcessorCount);
        Assert.Equal(expected.PartSize, outcome.Limits.PartSize);
        Assert.Equal(expected.CompressionWorkers, outcome.Limits.CompressionWorkers);
        Assert.True(outcome.Limits.EstimatedBytes <= (cap ?? PipelineLimits.AutomationDefaultMaxMemoryMB) * (long)MiB || cap == 16, outcome.Limits.Describe());
        // What the compressor was set to, and the part size the archive really has.
        Assert.Equal((expected.CompressionWorkers, expected.CompressionWorkers > 0 ? expected.CompressionJobSize : null), observed.Value);
        var parts = outcome.Manifest.Database.Parts;
        Assert.True(parts.Count > 1);
        Assert.All(parts, p => Assert.True(p.Size <= expected.PartSize));
        Assert.Equal(expected.PartSize, parts[0].Size);
        Assert.Contains(messages, m => m.StartsWith("Memory (", StringComparison.Ordinal) && m.Contains(cap is null ? "Azure Automation default" : $"MaxMemoryMB {cap}", StringComparison.Ordinal));
    }

    private sealed class ListLog(List<string> messages) : IOperationLog
    {
        public void Verbose(string message)
        {
            lock (messages)
            {
                messages.Add(message);
            }
        }

        public void Warning(string message) => Verbose(message);

        public void Progress(string activity, string status, long done, long? total)
        {
        }

        public void ProgressComplete(string activity)
        {
        }
    }
}
