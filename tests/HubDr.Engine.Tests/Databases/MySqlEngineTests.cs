using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using HubDr.Engine.Databases;
using HubDr.Engine.Databases.MySql;
using MySqlConnector;
using Xunit;

namespace HubDr.Engine.Tests.Databases;

[Collection("DatabaseServers")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class MySqlEngineTests
{
    private static readonly string[] HubSchema =
    {
        """
        CREATE TABLE tenants (
            id BIGINT AUTO_INCREMENT PRIMARY KEY,
            name VARCHAR(200) NOT NULL UNIQUE,
            status ENUM('active','disabled','archived') NOT NULL DEFAULT 'active',
            settings JSON NULL,
            created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
        """,
        """
        CREATE TABLE users (
            id BIGINT AUTO_INCREMENT PRIMARY KEY,
            tenant_id BIGINT NOT NULL,
            email VARCHAR(190) NOT NULL,
            display_name TEXT NULL,
            avatar BLOB NULL,
            last_login DATETIME(6) NULL,
            profile JSON NULL,
            UNIQUE KEY uq_tenant_email (tenant_id, email),
            KEY ix_last_login (last_login),
            CONSTRAINT fk_users_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
        """,
        """
        CREATE TABLE events (
            id BIGINT AUTO_INCREMENT PRIMARY KEY,
            tenant_id BIGINT NOT NULL,
            user_id BIGINT NULL,
            kind VARCHAR(100) NOT NULL,
            payload JSON NULL,
            at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
            amount DECIMAL(12,2) NULL,
            KEY ix_tenant_at (tenant_id, at),
            CONSTRAINT fk_events_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
            CONSTRAINT fk_events_user FOREIGN KEY (user_id) REFERENCES users (id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
        """,
        "CREATE TABLE audit_log (id INT AUTO_INCREMENT PRIMARY KEY, table_name VARCHAR(64), op VARCHAR(10), at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB",
        "CREATE TABLE empty_table (id INT PRIMARY KEY) ENGINE=InnoDB",
        "CREATE TRIGGER users_audit AFTER INSERT ON users FOR EACH ROW INSERT INTO audit_log (table_name, op) VALUES ('users', 'INSERT')",
        "CREATE VIEW active_users AS SELECT u.id, u.email, t.name AS tenant FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE t.status = 'active'",
        "CREATE FUNCTION tenant_user_count(p BIGINT) RETURNS BIGINT READS SQL DATA RETURN (SELECT COUNT(*) FROM users WHERE tenant_id = p)",
        "CREATE PROCEDURE archive_tenant(IN p BIGINT) MODIFIES SQL DATA BEGIN UPDATE tenants SET status = 'archived' WHERE id = p; END",
        "CREATE EVENT purge_audit ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' ON COMPLETION PRESERVE DISABLE DO DELETE FROM audit_log WHERE at < NOW() - INTERVAL 30 DAY",
    };

    private static readonly string[] HubData =
    {
        """
        INSERT INTO tenants (name, status, settings, created_at)
        SELECT CASE WHEN seq % 3 = 0 THEN CONCAT('Zürich ☃ ', seq) WHEN seq % 3 = 1 THEN CONCAT('東京 テナント ', seq)
                    ELSE CONCAT('O''Brien; "quoted" \\ 🚀 (', seq) END,
               ELT(1 + seq % 3, 'active', 'disabled', 'archived'),
               IF(seq % 4 = 0, NULL, JSON_OBJECT('plan', CONCAT('p', seq), 'limits', JSON_ARRAY(seq, seq * 2), 'uni', 'ü€')),
               TIMESTAMP('2024-01-01 00:00:00') + INTERVAL seq * 67 MINUTE
        FROM seq_1_to_20
        """,
        """
        INSERT INTO users (tenant_id, email, display_name, avatar, last_login, profile)
        SELECT 1 + seq % 20, CONCAT('user', seq, '@example.com'),
               IF(seq % 5 = 0, NULL, CONCAT('Ünïcødé ', seq, '\nline2\t(tab);', '''')),
               IF(seq % 7 = 0, NULL, CONCAT(UNHEX(MD5(seq)), UNHEX('00FF2827'), UNHEX(MD5(seq * 3)))),
               IF(seq % 2 = 0, NULL, TIMESTAMP('2025-06-30 23:59:59.123456') + INTERVAL seq MINUTE),
               JSON_OBJECT('n', seq, 'tags', JSON_ARRAY('a', 'b'))
        FROM seq_1_to_500
        """,
        """
        INSERT INTO events (tenant_id, user_id, kind, payload, at, amount)
        SELECT 1 + seq % 20, IF(seq % 11 = 0, NULL, 1 + seq % 500), CONCAT(IF(seq % 1000 = 0, CHAR(10), ""), 'kind(', seq % 13, ');''x\\y'),
               IF(seq % 9 = 0, NULL, JSON_OBJECT('seq', seq, 'text', REPEAT('é', seq % 17))),
               TIMESTAMP('2023-03-26 01:30:00') + INTERVAL seq * 13 SECOND,
               IF(seq % 6 = 0, NULL, (seq % 100000) / 7)
        FROM seq_1_to_50000
        """,
    };

    private static async Task ExecAsync(string? db, params string[] statements)
    {
        await using var c = new MySqlConnection(TestServers.MyAdminConnectionString(db));
        await c.OpenAsync();
        foreach (var sql in statements)
        {
            await using var cmd = new MySqlCommand(sql, c);
            await cmd.ExecuteNonQueryAsync();
        }
    }

    private static async Task<long> CountAsync(string db, string sql)
    {
        await using var c = new MySqlConnection(TestServers.MyAdminConnectionString(db));
        await c.OpenAsync();
        await using var cmd = new MySqlCommand(sql, c);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    private static async Task<string> CreateDbAsync(string prefix)
    {
        var name = TestServers.NewDbName(prefix);
        await ExecAsync(null, $"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci");
        return name;
    }

    private static async Task DropDbAsync(string name)
    {
        try
        {
            await ExecAsync(null, $"DROP DATABASE IF EXISTS `{name}`");
        }
        catch (MySqlException)
        {
        }
    }

    private static async Task SeedAsync(string db)
    {
        await ExecAsync(db, HubSchema);
        await ExecAsync(db, HubData);
    }

    private static async Task<string> SchemaDumpAsync(string db)
    {
        using var opt = new SecretFile($"[client]\npassword=\"{TestServers.MyPassword}\"\n", "my.cnf");
        var text = await TestServers.RunToolAsync(ToolProcess.Find(null, "mariadb-dump", "mysqldump")!, new[]
        {
            "--defaults-extra-file=" + opt.FilePath, "--host=" + TestServers.MyHost, "--port=" + TestServers.MyPort,
            "--protocol=TCP", "--user=" + TestServers.MyUser, "--no-data", "--routines", "--triggers", "--events",
            "--skip-dump-date", "--skip-comments", db,
        });
        return Regex.Replace(text, @" AUTO_INCREMENT=\d+", "");
    }

    private static async Task<Dictionary<string, string>> ContentChecksumsAsync(string db)
    {
        var result = new Dictionary<string, string>();
        await using var c = new MySqlConnection(TestServers.MyAdminConnectionString(db));
        await c.OpenAsync();
        var tables = new List<string>();
        await using (var cmd = new MySqlCommand(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1", c))
        await using (var r = await cmd.ExecuteReaderAsync())
        {
            while (await r.ReadAsync())
            {
                tables.Add(r.GetString(0));
            }
        }

        foreach (var t in tables)
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long rows = 0;
            await using var cmd = new MySqlCommand($"SELECT * FROM `{t}` ORDER BY 1", c);
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync())
            {
                rows++;
                for (var i = 0; i < r.FieldCount; i++)
                {
                    var v = r.GetValue(i);
                    var s = v switch
                    {
                        DBNull => "<NULL>",
                        byte[] b => "0x" + Convert.ToHexString(b),
                        DateTime d => d.ToString("O", CultureInfo.InvariantCulture),
                        _ => Convert.ToString(v, CultureInfo.InvariantCulture),
                    };
                    sha.AppendData(Encoding.UTF8.GetBytes(s + "\u0001"));
                }

                sha.AppendData("\n"u8);
            }

            result[t] = rows + ":" + Convert.ToHexString(sha.GetHashAndReset());
        }

        return result;
    }

    private static async Task<(DumpResult, MemoryStream)> DumpAsync(string db)
    {
        var engine = DatabaseEngineFactory.Create(TestServers.MySpec(db));
        var ms = new MemoryStream();
        var result = await engine.DumpAsync(ms, null, CancellationToken.None);
        ms.Position = 0;
        return (result, ms);
    }

    [Fact]
    public async Task Fidelity_DumpAndRestore_SchemaContentAndCountsMatch()
    {
        var source = await CreateDbAsync("hubdr_my_src");
        var target = TestServers.NewDbName("hubdr_my_dst");
        try
        {
            await SeedAsync(source);
            var (result, dump) = await DumpAsync(source);
            Assert.Equal("mysql", result.Engine);
            Assert.Equal("sql", result.Format);
            Assert.Equal("db/dump.sql", result.EntryName);
            Assert.Equal(50000, result.RowCounts["events"]);
            Assert.Equal(20, result.RowCounts["tenants"]);
            Assert.Equal(500, result.RowCounts["users"]);
            Assert.Equal(500, result.RowCounts["audit_log"]);
            Assert.Equal(0, result.RowCounts["empty_table"]);
            Assert.Equal(5, result.RowCounts.Count);

            var restorer = DatabaseEngineFactory.Create(TestServers.MySpec(target));
            Assert.True(await restorer.TargetIsEmptyAsync(CancellationToken.None));
            await restorer.PrepareTargetAsync(false, CancellationToken.None);
            await restorer.RestoreAsync(dump, result.Format, new RestoreOptions(), CancellationToken.None);

            Assert.Equal(await SchemaDumpAsync(source), await SchemaDumpAsync(target));
            Assert.Equal(await ContentChecksumsAsync(source), await ContentChecksumsAsync(target));
            var restored = await restorer.CountRowsAsync(CancellationToken.None);
            Assert.Equal(result.RowCounts.OrderBy(k => k.Key), restored.OrderBy(k => k.Key));
            Assert.Equal(await restorer.CountRowsAsync(CancellationToken.None),
                await DatabaseEngineFactory.Create(TestServers.MySpec(source)).CountRowsAsync(CancellationToken.None));
            Assert.Empty(await restorer.CheckIntegrityAsync(CancellationToken.None));
            Assert.False(await restorer.TargetIsEmptyAsync(CancellationToken.None));
            Assert.Equal(25, await CountAsync(target, "SELECT tenant_user_count(1)"));
            await ExecAsync(target, "CALL archive_tenant(1)", "INSERT INTO users (tenant_id, email) VALUES (2, 'new@x')");
            Assert.Equal(501, await CountAsync(target, "SELECT COUNT(*) FROM audit_log"));
            Assert.Equal(1, await CountAsync(target, "SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE()"));
        }
        finally
        {
            await DropDbAsync(source);
            await DropDbAsync(target);
        }
    }

    [Fact]
    public async Task Concurrency_WriterDuringDump_RestoredDataIsConsistentAndCountsExact()
    {
        var source = await CreateDbAsync("hubdr_my_conc");
        var target = TestServers.NewDbName("hubdr_my_concdst");
        try
        {
            await SeedAsync(source);
            using var stop = new CancellationTokenSource();
            long written = 0;
            var writer = Task.Run(async () =>
            {
                await using var c = new MySqlConnection(TestServers.MyAdminConnectionString(source));
                await c.OpenAsync();
                var i = 0;
                while (!stop.IsCancellationRequested)
                {
                    i++;
                    await using var tx = await c.BeginTransactionAsync();
                    await using var cmd = new MySqlCommand(
                        "INSERT INTO tenants (name) VALUES (@n); SET @t = LAST_INSERT_ID(); " +
                        "INSERT INTO users (tenant_id, email) VALUES (@t, 'w@x'); SET @u = LAST_INSERT_ID(); " +
                        "INSERT INTO events (tenant_id, user_id, kind) VALUES (@t, @u, 'w');", c, tx);
                    cmd.Parameters.AddWithValue("@n", "writer " + i);
                    await cmd.ExecuteNonQueryAsync();
                    await tx.CommitAsync();
                    Interlocked.Increment(ref written);
                }
            });

            while (Interlocked.Read(ref written) < 20)
            {
                await Task.Delay(10);
            }

            var before = Interlocked.Read(ref written);
            var (result, dump) = await DumpAsync(source);
            var duringDump = Interlocked.Read(ref written) - before;
            stop.Cancel();
            await writer;
            Assert.True(duringDump > 0, "the writer must have committed rows while the dump ran");
            Assert.True(await CountAsync(source, "SELECT COUNT(*) FROM tenants") > result.RowCounts["tenants"]);

            var restorer = DatabaseEngineFactory.Create(TestServers.MySpec(target));
            await restorer.PrepareTargetAsync(false, CancellationToken.None);
            await restorer.RestoreAsync(dump, result.Format, new RestoreOptions(), CancellationToken.None);
            var restored = await restorer.CountRowsAsync(CancellationToken.None);
            Assert.Equal(result.RowCounts.OrderBy(k => k.Key), restored.OrderBy(k => k.Key));
            var wTenants = await CountAsync(target, "SELECT COUNT(*) FROM tenants WHERE name LIKE 'writer %'");
            Assert.Equal(wTenants, await CountAsync(target, "SELECT COUNT(*) FROM users WHERE email = 'w@x'"));
            Assert.Equal(wTenants, await CountAsync(target, "SELECT COUNT(*) FROM events WHERE kind = 'w'"));
            Assert.Equal(0, await CountAsync(target,
                "SELECT COUNT(*) FROM users u LEFT JOIN tenants t ON t.id = u.tenant_id WHERE t.id IS NULL"));
            Assert.Equal(0, await CountAsync(target,
                "SELECT COUNT(*) FROM events e LEFT JOIN users u ON u.id = e.user_id WHERE e.user_id IS NOT NULL AND u.id IS NULL"));
        }
        finally
        {
            await DropDbAsync(source);
            await DropDbAsync(target);
        }
    }

    [Fact]
    public async Task WrongPassword_GivesAuthenticationError()
    {
        var engine = DatabaseEngineFactory.Create(TestServers.MySpec("mysql", password: "definitely-wrong-pw"));
        var ex = await Assert.ThrowsAsync<HubDrException>(() => engine.PreflightAsync(CancellationToken.None));
        Assert.Equal("DatabaseAuthenticationFailed", ex.ErrorId);
        Assert.Equal(HubErrorCategory.AuthenticationError, ex.Category);
        Assert.DoesNotContain("definitely-wrong-pw", ex.Message);
    }

    [Fact]
    public async Task DumpConnectionKilledMidDump_GivesDatabaseDumpFailed()
    {
        var source = await CreateDbAsync("hubdr_my_kill");
        try
        {
            await SeedAsync(source);
            // 64 MiB in the first table dumped: far more than everything between the server and the gate can hold (socket
            // buffers, mariadb-dump's buffer, the 1 MiB pipe, the 4 x 1 MiB read-ahead), so with the gate closed the
            // dump's SELECT on it cannot finish and is always visible in PROCESSLIST. (The seeded data alone fitted into
            // those buffers on MariaDB 10.11: the SELECT could be over before the test looked for it.)
            await ExecAsync(source,
                "CREATE TABLE aaa_bulk (id INT PRIMARY KEY, pad TEXT NOT NULL)",
                "INSERT INTO aaa_bulk SELECT seq, REPEAT(MD5(seq), 20) FROM seq_1_to_100000");
            var gate = new GateStream();
            var engine = DatabaseEngineFactory.Create(TestServers.MySpec(source));
            var dumpTask = engine.DumpAsync(gate, null, CancellationToken.None);
            await gate.FirstWrite.WaitAsync(TimeSpan.FromSeconds(60));
            // mariadb-dump is now blocked writing into a full pipe while reading `aaa_bulk`: kill its server connection
            long killed = 0;
            for (var i = 0; i < 100 && killed == 0; i++)
            {
                await using var c = new MySqlConnection(TestServers.MyAdminConnectionString(null));
                await c.OpenAsync();
                await using var q = new MySqlCommand(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = @db AND INFO LIKE '%SQL_NO_CACHE%'", c);
                q.Parameters.AddWithValue("@db", source);
                if (await q.ExecuteScalarAsync() is { } id)
                {
                    await using var k = new MySqlCommand($"KILL CONNECTION {Convert.ToInt64(id)}", c);
                    await k.ExecuteNonQueryAsync();
                    killed = Convert.ToInt64(id);
                }
                else
                {
                    await Task.Delay(50);
                }
            }

            gate.Release();
            Assert.True(killed != 0, "the dump's connection was never seen");
            var ex = await Assert.ThrowsAsync<HubDrException>(() => dumpTask);
            Assert.Equal("DatabaseDumpFailed", ex.ErrorId);
            Assert.Contains("mariadb-dump", ex.Message);
            Assert.DoesNotContain(TestServers.MyPassword, ex.Message);
        }
        finally
        {
            await DropDbAsync(source);
        }
    }

    [Fact]
    public async Task NonEmptyTarget_RefusedWithoutForce_ReplacedWithForce()
    {
        var source = await CreateDbAsync("hubdr_my_ne");
        var target = await CreateDbAsync("hubdr_my_nedst");
        try
        {
            await ExecAsync(source, "CREATE TABLE a (id INT PRIMARY KEY)", "INSERT INTO a VALUES (1), (2)");
            await ExecAsync(target, "CREATE TABLE existing (id INT)", "INSERT INTO existing VALUES (7)");
            var (result, dump) = await DumpAsync(source);
            var restorer = DatabaseEngineFactory.Create(TestServers.MySpec(target));
            Assert.False(await restorer.TargetIsEmptyAsync(CancellationToken.None));
            var ex = await Assert.ThrowsAsync<HubDrException>(() => restorer.PrepareTargetAsync(false, CancellationToken.None));
            Assert.Equal("RestoreTargetNotEmpty", ex.ErrorId);
            Assert.Equal(HubErrorCategory.ResourceExists, ex.Category);
            Assert.Equal(1, await CountAsync(target, "SELECT COUNT(*) FROM existing"));

            await restorer.PrepareTargetAsync(true, CancellationToken.None);
            await restorer.RestoreAsync(dump, result.Format, new RestoreOptions(), CancellationToken.None);
            Assert.Equal(2, await CountAsync(target, "SELECT COUNT(*) FROM a"));
            Assert.Equal(0, await CountAsync(target,
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'existing'"));
        }
        finally
        {
            await DropDbAsync(source);
            await DropDbAsync(target);
        }
    }

    [Fact]
    public async Task BadSql_GivesDatabaseRestoreFailed()
    {
        var target = TestServers.NewDbName("hubdr_my_bad");
        try
        {
            var restorer = DatabaseEngineFactory.Create(TestServers.MySpec(target));
            await restorer.PrepareTargetAsync(false, CancellationToken.None);
            var bad = new MemoryStream(Encoding.UTF8.GetBytes("CREATE TABLE ok (id INT);\nTHIS IS NOT SQL;\nCREATE TABLE never (id INT);\n"));
            var ex = await Assert.ThrowsAsync<HubDrException>(() =>
                restorer.RestoreAsync(bad, "sql", new RestoreOptions(), CancellationToken.None));
            Assert.Equal("DatabaseRestoreFailed", ex.ErrorId);
            Assert.Contains("ERROR", ex.Message);
            Assert.Equal(0, await CountAsync(target,
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'never'"));
        }
        finally
        {
            await DropDbAsync(target);
        }
    }

    [Fact]
    public async Task PasswordNeverOnCommandLineOrEnvironment_OptionFileFirstAndRemoved()
    {
        var source = await CreateDbAsync("hubdr_my_ps");
        var target = TestServers.NewDbName("hubdr_my_psdst");
        var seen = new List<(string Cmdline, string Environ, string[] Args, UnixFileMode? Mode)>();
        try
        {
            await SeedAsync(source);
            ToolProcess.ProcessStarted = (pid, _, args) =>
            {
                try
                {
                    var cmd = File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ');
                    var env = string.Join('\0', File.ReadAllText($"/proc/{pid}/environ").Split('\0')
                        .Where(e => !e.StartsWith("HUBDR_TEST_", StringComparison.Ordinal)));
                    var file = args.Count > 0 && args[0].StartsWith("--defaults-extra-file=", StringComparison.Ordinal)
                        ? args[0]["--defaults-extra-file=".Length..] : null;
                    UnixFileMode? mode = file is not null && File.Exists(file) ? File.GetUnixFileMode(file) : null;
                    lock (seen)
                    {
                        seen.Add((cmd, env, args.ToArray(), mode));
                    }
                }
                catch (IOException)
                {
                }
            };
            var (result, dump) = await DumpAsync(source);
            var restorer = DatabaseEngineFactory.Create(TestServers.MySpec(target));
            await restorer.PrepareTargetAsync(false, CancellationToken.None);
            await restorer.RestoreAsync(dump, result.Format, new RestoreOptions(), CancellationToken.None);
        }
        finally
        {
            ToolProcess.ProcessStarted = null;
            await DropDbAsync(source);
            await DropDbAsync(target);
        }

        var tools = seen.Where(s => !s.Args.Contains("--version")).ToList();
        Assert.Contains(tools, s => s.Cmdline.Contains("mariadb-dump") && s.Cmdline.Contains("--single-transaction"));
        Assert.Contains(tools, s => s.Cmdline.Contains("mariadb ") || s.Cmdline.Contains("mysql "));
        foreach (var s in seen)
        {
            Assert.DoesNotContain(TestServers.MyPassword, s.Cmdline);
            Assert.DoesNotContain(TestServers.MyPassword, s.Environ);
        }

        foreach (var s in tools)
        {
            Assert.StartsWith("--defaults-extra-file=", s.Args[0]);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, s.Mode);
            Assert.False(File.Exists(s.Args[0]["--defaults-extra-file=".Length..]), "option file must be deleted");
        }
    }
}
