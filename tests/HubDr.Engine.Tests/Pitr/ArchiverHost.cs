using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using HubDr.Engine.Tests.Crypto;
using Xunit;

namespace HubDr.Engine.Tests.Pitr;

/// <summary>
/// The archiver as a separate OS process (built once per test run from the source below, referencing the engine
/// project): tests SIGKILL it mid-upload, and it measures what an archive_command calling HubDr would cost per segment
/// (process start + key unlock + encrypt + sign + upload of one file).
/// </summary>
public sealed class ArchiverHost
{
    private const string Program = """
        using System.Net;
        using HubDr.Engine;
        using HubDr.Engine.Databases;
        using HubDr.Engine.Databases.Postgres.Pitr;
        using HubDr.Engine.LogArchive;
        using HubDr.Engine.Stores;

        var mode = args[0];
        string Arg(string n) => args[Array.IndexOf(args, "--" + n) + 1];
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var pass = Environment.GetEnvironmentVariable("HUBDR_HOST_PASSPHRASE")!.ToCharArray();
        var keys = LogArchiveKeys.Load(new[] { Arg("recipient1"), Arg("recipient2") }, new[] { Arg("signing-key") }, null, pass);
        var unlocked = clock.Elapsed;
        var store = new StoreSpec { Uri = Arg("store") };
        if (mode == "archive")
        {
            var db = new DatabaseSpec
            {
                Engine = "postgres",
                ConnectionString = Arg("conn"),
                Credential = new NetworkCredential(Arg("user"), Environment.GetEnvironmentVariable("HUBDR_HOST_DBPASSWORD")),
            };
            using var cts = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
            var archiver = new WalArchiver(new WalArchiverOptions
            {
                Hub = Arg("hub"),
                Store = store,
                Database = db,
                Keys = keys,
                PartialInterval = TimeSpan.FromMilliseconds(int.Parse(Arg("partial-ms"))),
                RetryInitialDelay = TimeSpan.FromMilliseconds(200),
                RetryMaxDelay = TimeSpan.FromSeconds(2),
            }, new ConsoleLog());
            await archiver.RunAsync(cts.Token);
            return 0;
        }

        // "push": what an archive_command calling HubDr would do for one WAL file, then exit.
        var file = Arg("file");
        await using var s = StoreFactory.Create(store);
        var layout = new WalStreamLayout(long.Parse(Arg("segsize")));
        var writer = new LogArchiveWriter(s, Arg("hub"), layout, keys, null, null);
        Wal.TryParseSegmentFileName(Path.GetFileName(file), layout.SegmentSize, out var tli, out var segNo);
        var data = await File.ReadAllBytesAsync(file);
        var r = await writer.WriteAsync(layout.Segment(tli, segNo), data, null, CancellationToken.None);
        await writer.CommitAsync(new[] { r.Entry }, CancellationToken.None);
        Console.WriteLine($"TIMING unlock_ms={unlocked.TotalMilliseconds:0} total_ms={clock.Elapsed.TotalMilliseconds:0}");
        return 0;

        sealed class ConsoleLog : IOperationLog
        {
            public void Verbose(string message) => Console.WriteLine("VERBOSE " + message);
            public void Warning(string message) => Console.WriteLine("WARN " + message);
            public void Progress(string activity, string status, long done, long? total) { }
            public void ProgressComplete(string activity) { }
        }
        """;

    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static string? _dll;

    private ArchiverHost(string dll, string keyDir)
    {
        Dll = dll;
        KeyDir = keyDir;
    }

    public string Dll { get; }
    public string KeyDir { get; }

    /// <summary>Builds the host (once per test process) and writes the test keys to files it loads.</summary>
    public static async Task<ArchiverHost> CreateAsync(CryptoFixture keys)
    {
        await Gate.WaitAsync();
        try
        {
            _dll ??= await BuildAsync();
        }
        finally
        {
            Gate.Release();
        }

        var dir = Directory.CreateTempSubdirectory("hubdr-host-keys-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(dir, true);
            }
            catch (IOException)
            {
            }
        };
        await File.WriteAllTextAsync(Path.Combine(dir, "ops.asc"), keys.Ops.ArmoredPublicKey);
        await File.WriteAllTextAsync(Path.Combine(dir, "escrow.asc"), keys.Escrow.ArmoredPublicKey);
        await File.WriteAllTextAsync(Path.Combine(dir, "ops.sec.asc"), keys.Ops.ArmoredSecretKey);
        return new ArchiverHost(_dll, dir);
    }

    private static async Task<string> BuildAsync()
    {
        var engine = FindUp("src/HubDr.Engine/HubDr.Engine.csproj");
        var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(Program + engine)))[..12];
        var dir = Path.Combine(Path.GetTempPath(), "hubdr-archiver-host-" + hash);
        Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(Path.Combine(dir, "Program.cs"), Program);
        await File.WriteAllTextAsync(Path.Combine(dir, "ArchiverHost.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
                <RollForward>Major</RollForward>
                <TreatWarningsAsErrors>false</TreatWarningsAsErrors>
              </PropertyGroup>
              <ItemGroup>
                <ProjectReference Include="{engine}" />
              </ItemGroup>
            </Project>
            """);
        var (code, stdout, stderr) = await PgCluster.RunAsync("dotnet", ["build", dir, "-c", "Release", "-nologo", "-v:q", "-clp:ErrorsOnly", "-o", Path.Combine(dir, "out")]);
        Assert.True(code == 0, $"building the archiver host failed: {stdout}\n{stderr}");
        return Path.Combine(dir, "out", "ArchiverHost.dll");
    }

    private static string FindUp(string relative)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            var p = Path.Combine(d.FullName, relative);
            if (File.Exists(p))
            {
                return p;
            }
        }

        throw new FileNotFoundException(relative);
    }

    private List<string> KeyArgs() =>
    [
        "--recipient1", Path.Combine(KeyDir, "ops.asc"), "--recipient2", Path.Combine(KeyDir, "escrow.asc"),
        "--signing-key", Path.Combine(KeyDir, "ops.sec.asc"),
    ];

    /// <summary>Starts a long-running archiver process; its output lines go to <paramref name="onLine"/>.</summary>
    public Process StartArchiver(PgCluster pg, string store, string hub, int partialMs, Action<string> onLine)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new List<string> { Dll, "archive", "--hub", hub, "--store", store, "--conn", $"Host=127.0.0.1;Port={pg.Port};Database=postgres",
                     "--user", PgCluster.User, "--partial-ms", partialMs.ToString() }.Concat(KeyArgs()))
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["HUBDR_HOST_PASSPHRASE"] = CryptoFixture.OpsPass;
        psi.Environment["HUBDR_HOST_DBPASSWORD"] = pg.Password;
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                onLine(e.Data);
            }
        };
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                onLine("STDERR " + e.Data);
            }
        };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    /// <summary>
    /// One archive_command-style invocation: a new process archives one WAL file. Returns wall time, the CPU time the
    /// process used (user + system, from the shell's `times`: less sensitive to other load on the machine) and the time
    /// from process start until the keys were loaded and unlocked.
    /// </summary>
    public async Task<(double WallMs, double CpuMs, double UnlockMs)> PushAsync(string store, string hub, string file, long segmentSize)
    {
        var clock = Stopwatch.StartNew();
        var (code, stdout, stderr) = await PgCluster.RunAsync("bash",
            new List<string> { "-c", "\"$@\"; rc=$?; times; exit $rc", "push", "dotnet", Dll, "push", "--hub", hub, "--store", store, "--file", file, "--segsize", segmentSize.ToString() }.Concat(KeyArgs()),
            new Dictionary<string, string> { ["HUBDR_HOST_PASSPHRASE"] = CryptoFixture.OpsPass });
        var wall = clock.Elapsed.TotalMilliseconds;
        Assert.True(code == 0, $"push failed: {stdout}\n{stderr}");
        var unlock = double.Parse(stdout.Split("unlock_ms=")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        // `times` prints two lines: the shell's user/sys, then its children's.
        var children = stdout.TrimEnd().Split('\n')[^1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return (wall, Seconds(children[0]) * 1000 + Seconds(children[1]) * 1000, unlock);
    }

    private static double Seconds(string t)
    {
        // "0m1.234s"
        var m = t.IndexOf('m');
        return double.Parse(t[..m], System.Globalization.CultureInfo.InvariantCulture) * 60
            + double.Parse(t[(m + 1)..^1], System.Globalization.CultureInfo.InvariantCulture);
    }
}
