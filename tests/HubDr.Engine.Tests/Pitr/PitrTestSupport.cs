using HubDr.Engine.Crypto;
using HubDr.Engine.Databases.Postgres.Pitr;
using HubDr.Engine.LogArchive;
using HubDr.Engine.Stores;
using HubDr.Engine.Tests.Crypto;
using Xunit;
using Xunit.Abstractions;

namespace HubDr.Engine.Tests.Pitr;

[CollectionDefinition("PitrKeys", DisableParallelization = true)]
public sealed class PitrKeysCollection : ICollectionFixture<CryptoFixture>
{
}

/// <summary>Routes engine log lines to the xunit output (and keeps them for assertions).</summary>
public sealed class TestLog(ITestOutputHelper? output) : IOperationLog
{
    private readonly List<string> _lines = [];

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
            {
                return _lines.ToList();
            }
        }
    }

    public IEnumerable<string> Warnings => Lines.Where(l => l.StartsWith("WARN", StringComparison.Ordinal));

    private void Add(string s)
    {
        lock (_lines)
        {
            _lines.Add(s);
        }

        try
        {
            output?.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {s}");
        }
        catch (InvalidOperationException)
        {
            // the test already finished (background archiver still logging)
        }
    }

    public void Verbose(string message) => Add("VERBOSE " + message);

    public void Warning(string message) => Add("WARN " + message);

    public void Progress(string activity, string status, long done, long? total)
    {
    }

    public void ProgressComplete(string activity)
    {
    }
}

/// <summary>Keys and stores for PITR tests.</summary>
public static class PitrKeys
{
    public static LogArchiveKeys Archive(CryptoFixture k, GeneratedKeyPair? signer = null, string? pass = null)
    {
        signer ??= k.Ops;
        return LogArchiveKeys.Load([k.Ops.ArmoredPublicKey, k.Escrow.ArmoredPublicKey], [signer.ArmoredSecretKey], null,
            (pass ?? (signer == k.Other ? CryptoFixture.OtherPass : CryptoFixture.OpsPass)).ToCharArray());
    }

    public static OpenPgpKeySet Trusted(CryptoFixture k) => k.Public(k.Ops);
}

/// <summary>A running archiver in the test process (cancel = graceful stop).</summary>
public sealed class RunningArchiver : IAsyncDisposable
{
    private readonly CancellationTokenSource _cts = new();

    public RunningArchiver(WalArchiverOptions options, IOperationLog log)
    {
        Archiver = new WalArchiver(options, log);
        Task = Task.Run(() => Archiver.RunAsync(_cts.Token));
    }

    public WalArchiver Archiver { get; }
    public Task Task { get; }

    /// <summary>Waits until everything the server has flushed is archived (or fails after the timeout).</summary>
    public async Task WaitArchivedAsync(PgCluster cluster, TimeSpan? timeout = null)
    {
        var target = Wal.ParseLsn(await cluster.ScalarAsync<string>("SELECT pg_current_wal_flush_lsn()::text"));
        await WaitForLsnAsync(target, timeout);
    }

    public async Task WaitForLsnAsync(ulong target, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (Archiver.ArchivedLsn < target)
        {
            if (Task.IsCompleted)
            {
                await Task; // surfaces the archiver's exception
                Assert.Fail("The archiver stopped.");
            }

            Assert.True(DateTime.UtcNow < deadline, $"The archiver did not reach {Wal.FormatLsn(target)} (at {Wal.FormatLsn(Archiver.ArchivedLsn)}): {Archiver.Status}");
            await System.Threading.Tasks.Task.Delay(100);
        }
    }

    public async Task StopAsync()
    {
        _cts.Cancel();
        await Task;
    }

    public async ValueTask DisposeAsync()
    {
        _cts.Cancel();
        try
        {
            await Task;
        }
        catch (Exception)
        {
        }

        _cts.Dispose();
    }
}

public sealed class TempStore : IDisposable
{
    public TempStore()
    {
        Path = Directory.CreateTempSubdirectory("hubdr-pitr-store-").FullName;
    }

    public string Path { get; }

    public StoreSpec Spec => new() { Uri = Path };

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
