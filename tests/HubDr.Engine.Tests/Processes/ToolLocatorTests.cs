using HubDr.Engine.Databases;
using HubDr.Engine.Processes;
using Xunit;

namespace HubDr.Engine.Tests.Processes;

/// <summary>
/// Tool discovery with Windows' search order, on a fake Program Files tree of real folders and files: the PostgreSQL
/// and MariaDB Windows installers do not put their bin folder on PATH, so HubDr probes the standard install folders,
/// newest version first, and prefers name.exe. The environment (ProgramFiles, PATH) and the OS come through the seam.
/// </summary>
public sealed class ToolLocatorTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "hubdr-tools-" + Guid.NewGuid().ToString("N")[..8]);

    public ToolLocatorTests() => Directory.CreateDirectory(_root);

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, true);
        }
        catch (IOException)
        {
        }
    }

    private string ProgramFiles => Path.Combine(_root, "Program Files");

    private string Touch(params string[] parts)
    {
        var path = Path.Combine([_root, .. parts]);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, "");
        return path;
    }

    private ToolLocator Locator(bool windows, string? path = null, Dictionary<string, string>? more = null)
    {
        var vars = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase) { ["ProgramFiles"] = ProgramFiles, ["PATH"] = path ?? "" };
        foreach (var (k, v) in more ?? [])
        {
            vars[k] = v;
        }

        return new ToolLocator(n => vars.TryGetValue(n, out var v) ? v : null, File.Exists,
            d => Directory.Exists(d) ? Directory.GetDirectories(d) : [], windows, ';');
    }

    [Fact]
    public void Windows_PostgreSqlInstallFolders_NewestVersionFirst_ExePreferred()
    {
        Touch("Program Files", "PostgreSQL", "9.6", "bin", "pg_dump.exe");
        Touch("Program Files", "PostgreSQL", "15", "bin", "pg_dump.exe");
        var newest = Touch("Program Files", "PostgreSQL", "16", "bin", "pg_dump.exe");
        Touch("Program Files", "PostgreSQL", "16", "bin", "pg_dump"); // a stray extensionless file loses to .exe
        Directory.CreateDirectory(Path.Combine(ProgramFiles, "PostgreSQL", "data"));
        var locator = Locator(windows: true);
        Assert.Equal(newest, locator.Find(null, ToolFamily.PostgreSql, "pg_dump"));
        Assert.Equal(
            new[] { "16", "15", "9.6" }.Select(v => Path.Combine(ProgramFiles, "PostgreSQL", v, "bin")),
            locator.InstallFolders(ToolFamily.PostgreSql));
    }

    [Fact]
    public void Windows_PathStillWins_OverTheInstallFolders()
    {
        Touch("Program Files", "PostgreSQL", "17", "bin", "psql.exe");
        var onPath = Touch("tools", "psql.exe");
        Assert.Equal(onPath, Locator(windows: true, path: $"C:\\nowhere;\"{Path.GetDirectoryName(onPath)}\"").Find(null, ToolFamily.PostgreSql, "psql"));
    }

    [Fact]
    public void Windows_MariaDbBeforeMySql_NewestFirst_FirstNameFirst()
    {
        Touch("Program Files", "MariaDB 10.11", "bin", "mariadb-dump.exe");
        var maria = Touch("Program Files", "MariaDB 11.4", "bin", "mariadb-dump.exe");
        Touch("Program Files", "MariaDB 11.4", "bin", "mysqldump.exe");
        Touch("Program Files", "MySQL", "MySQL Server 8.0", "bin", "mysqldump.exe");
        var locator = Locator(windows: true);
        Assert.Equal(maria, locator.Find(null, ToolFamily.MariaDbMySql, "mariadb-dump", "mysqldump"));
        Assert.Equal(
            new[] { Path.Combine(ProgramFiles, "MariaDB 11.4", "bin"), Path.Combine(ProgramFiles, "MariaDB 10.11", "bin"), Path.Combine(ProgramFiles, "MySQL", "MySQL Server 8.0", "bin") },
            locator.InstallFolders(ToolFamily.MariaDbMySql));
    }

    [Fact]
    public void Windows_MySqlServerFolder_IsFound_WhenNoMariaDb()
    {
        Touch("Program Files", "MySQL", "MySQL Server 5.7", "bin", "mysqldump.exe");
        var mysql = Touch("Program Files", "MySQL", "MySQL Server 8.4", "bin", "mysqldump.exe");
        Assert.Equal(mysql, Locator(windows: true).Find(null, ToolFamily.MariaDbMySql, "mariadb-dump", "mysqldump"));
    }

    [Fact]
    public void Windows_ProgramW6432_IsProbed_ForA32BitProcess()
    {
        var x64 = Path.Combine(_root, "Program Files x64");
        var tool = Path.Combine(x64, "PostgreSQL", "16", "bin", "pg_restore.exe");
        Directory.CreateDirectory(Path.GetDirectoryName(tool)!);
        File.WriteAllText(tool, "");
        Assert.Equal(tool, Locator(windows: true, more: new() { ["ProgramW6432"] = x64 }).Find(null, ToolFamily.PostgreSql, "pg_restore"));
    }

    [Fact]
    public void ToolPath_IsTheOnlyPlace_WhenGiven()
    {
        Touch("Program Files", "PostgreSQL", "16", "bin", "pg_dump.exe");
        var folder = Path.Combine(_root, "empty");
        Directory.CreateDirectory(folder);
        Assert.Null(Locator(windows: true).Find(folder, ToolFamily.PostgreSql, "pg_dump"));
    }

    [Fact]
    public void NotWindows_NoInstallFolderProbing()
    {
        Touch("Program Files", "PostgreSQL", "16", "bin", "pg_dump.exe");
        var locator = Locator(windows: false);
        Assert.Null(locator.Find(null, ToolFamily.PostgreSql, "pg_dump"));
        Assert.Empty(locator.InstallFolders(ToolFamily.PostgreSql));
    }

    [Fact]
    public void NotFoundMessage_GivesWindowsInstallHints_OnWindows()
    {
        using (ToolLocator.Use(Locator(windows: true)))
        {
            var pg = ToolProcess.NotFound(null, "pg_dump");
            Assert.Equal("DatabaseToolNotFound", pg.ErrorId);
            Assert.Contains("winget install PostgreSQL.PostgreSQL", pg.Message, StringComparison.Ordinal);
            Assert.Contains("EDB installer", pg.Message, StringComparison.Ordinal);
            Assert.Contains(@"%ProgramFiles%\PostgreSQL\<version>\bin", pg.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("apt-get", pg.Message, StringComparison.Ordinal);
            var maria = ToolProcess.NotFound(null, "mariadb-dump", "mysqldump");
            Assert.Contains("winget install MariaDB.Server", maria.Message, StringComparison.Ordinal);
            Assert.Contains("MSI", maria.Message, StringComparison.Ordinal);
        }

        using (ToolLocator.Use(Locator(windows: false)))
        {
            Assert.Contains("apt-get install postgresql-client", ToolProcess.NotFound(null, "pg_dump").Message, StringComparison.Ordinal);
        }
    }

    /// <summary>The engines use the locator: a PostgreSQL engine with the seam finds pg_dump in the fake install tree.</summary>
    [Fact]
    public async Task PostgresEngine_FindsPgDumpInTheInstallFolder()
    {
        // A pg_dump "installed" under Program Files that is really this machine's pg_dump (when there is one), so the
        // engine's --version probe runs the real tool from the folder the locator picked.
        var real = ToolLocator.Current.Find(null, ToolFamily.PostgreSql, "pg_dump");
        Assert.True(real is not null, "pg_dump is required (build.ps1 installs postgresql-client)");
        var bin = Path.Combine(ProgramFiles, "PostgreSQL", "99", "bin");
        Directory.CreateDirectory(bin);
        var linked = Path.Combine(bin, OperatingSystem.IsWindows() ? "pg_dump.exe" : "pg_dump");
        File.CreateSymbolicLink(linked, real!);
        using (ToolLocator.Use(Locator(windows: true)))
        {
            Assert.Equal(linked, ToolProcess.Find(null, "pg_dump"));
            var (major, text) = await HubDr.Engine.Databases.Postgres.PostgresEngine.ToolVersionAsync(ToolProcess.Find(null, "pg_dump")!, default);
            Assert.True(major >= 9, text);
        }
    }
}
