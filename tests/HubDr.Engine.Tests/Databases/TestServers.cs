using System.Net;
using System.Security.Cryptography;
using System.Text;
using HubDr.Engine.Databases;
using Xunit;

namespace HubDr.Engine.Tests.Databases;

/// <summary>Database tests share the two throwaway servers; run them one at a time.</summary>
[CollectionDefinition("DatabaseServers", DisableParallelization = true)]
public sealed class DatabaseServersCollection
{
}

/// <summary>Reads the servers started by tests/servers/servers.sh (source its servers.env before the run).</summary>
public static class TestServers
{
    public static string Require(string name)
    {
        var v = Environment.GetEnvironmentVariable(name);
        if (string.IsNullOrEmpty(v))
        {
            Assert.Fail($"Environment variable {name} is not set. Start the test servers with " +
                        "`tests/servers/servers.sh start <dir>` and export the variables of <dir>/servers.env " +
                        "(set -a; . <dir>/servers.env; set +a) before running the database tests.");
        }

        return v!;
    }

    public static string PgHost => Require("HUBDR_TEST_PG_HOST");
    public static int PgPort => int.Parse(Require("HUBDR_TEST_PG_PORT"));
    public static string PgUser => Require("HUBDR_TEST_PG_USER");
    public static string PgPassword => Require("HUBDR_TEST_PG_PASSWORD");
    public static string PgBinDir => Require("HUBDR_TEST_PG_BINDIR");
    public static string MyHost => Require("HUBDR_TEST_MYSQL_HOST");
    public static int MyPort => int.Parse(Require("HUBDR_TEST_MYSQL_PORT"));
    public static string MyUser => Require("HUBDR_TEST_MYSQL_USER");
    public static string MyPassword => Require("HUBDR_TEST_MYSQL_PASSWORD");

    public static string NewDbName(string prefix) => $"{prefix}_{Guid.NewGuid():N}"[..Math.Min(40, prefix.Length + 33)];

    public static DatabaseSpec PgSpec(string db, string? password = null, string? format = null, string? toolPath = null) => new()
    {
        Engine = "postgres",
        ConnectionString = $"Host={PgHost};Port={PgPort};Database={db};Username={PgUser}",
        Credential = new NetworkCredential(PgUser, password ?? PgPassword),
        ToolPath = toolPath ?? PgBinDir,
        DumpFormat = format,
    };

    public static string PgAdminConnectionString(string db) =>
        $"Host={PgHost};Port={PgPort};Database={db};Username={PgUser};Password={PgPassword};Pooling=false;Command Timeout=0";

    public static DatabaseSpec MySpec(string db, string? password = null) => new()
    {
        Engine = "mysql",
        ConnectionString = $"Server={MyHost};Port={MyPort};Database={db};User ID={MyUser}",
        Credential = new NetworkCredential(MyUser, password ?? MyPassword),
    };

    public static string MyAdminConnectionString(string? db) =>
        $"Server={MyHost};Port={MyPort};Database={db ?? ""};User ID={MyUser};Password={MyPassword};Pooling=false;" +
        "Default Command Timeout=0;Allow User Variables=true";

    /// <summary>Runs a real client tool (password through env / option file only) and returns stdout.</summary>
    public static async Task<string> RunToolAsync(string tool, IReadOnlyList<string> args,
        IReadOnlyDictionary<string, string?>? env = null)
    {
        using var p = ToolProcess.Start(tool, args, env, redirectStdin: false);
        var stdout = await new StreamReader(p.StandardOutput, Encoding.UTF8).ReadToEndAsync();
        var code = await p.WaitForExitAsync(CancellationToken.None);
        Assert.True(code == 0, $"{tool} {string.Join(' ', args)} failed ({code}): {p.StandardErrorText}");
        return stdout;
    }

    public static string Sha256(string s) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(s)));
}
