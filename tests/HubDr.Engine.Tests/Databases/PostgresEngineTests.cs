using System.Text;
using System.Text.RegularExpressions;
using HubDr.Engine.Databases;
using HubDr.Engine.Databases.Postgres;
using Npgsql;
using Xunit;

namespace HubDr.Engine.Tests.Databases;

[Collection("DatabaseServers")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class PostgresEngineTests
{
    private const string HubSchema =
        """
        CREATE TYPE hub_status AS ENUM ('active', 'disabled', 'archived');
        CREATE TABLE tenants (
            id bigserial PRIMARY KEY,
            name text NOT NULL UNIQUE,
            status hub_status NOT NULL DEFAULT 'active',
            settings jsonb,
            created_at timestamptz NOT NULL DEFAULT now());
        CREATE TABLE users (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant_id bigint NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            email text NOT NULL,
            display_name text,
            avatar bytea,
            last_login timestamptz,
            profile json,
            UNIQUE (tenant_id, email));
        CREATE INDEX users_last_login_idx ON users (last_login) WHERE last_login IS NOT NULL;
        CREATE TABLE events (
            id bigserial PRIMARY KEY,
            tenant_id bigint NOT NULL REFERENCES tenants(id),
            user_id bigint REFERENCES users(id),
            kind text NOT NULL,
            payload jsonb,
            at timestamptz NOT NULL,
            amount numeric(12,2));
        CREATE INDEX events_payload_gin ON events USING gin (payload);
        CREATE INDEX events_tenant_at ON events (tenant_id, at DESC);
        CREATE TABLE audit_log (id serial PRIMARY KEY, table_name text, op text, at timestamptz DEFAULT now());
        CREATE FUNCTION audit_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO audit_log (table_name, op) VALUES (TG_TABLE_NAME, TG_OP); RETURN NEW; END $$;
        CREATE TRIGGER users_audit AFTER INSERT OR UPDATE ON users FOR EACH ROW EXECUTE FUNCTION audit_trigger();
        CREATE FUNCTION tenant_user_count(p bigint) RETURNS bigint LANGUAGE sql STABLE
            AS $$ SELECT count(*) FROM users WHERE tenant_id = p $$;
        CREATE PROCEDURE archive_tenant(p bigint) LANGUAGE sql AS $$ UPDATE tenants SET status = 'archived' WHERE id = p $$;
        CREATE VIEW active_users AS
            SELECT u.id, u.email, t.name AS tenant FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE t.status = 'active';
        CREATE SEQUENCE invoice_no START 1000;
        CREATE SCHEMA reporting;
        CREATE TABLE reporting.daily (day date PRIMARY KEY, total bigint NOT NULL, note text);
        CREATE TABLE empty_table (id int PRIMARY KEY);
        """;

    private const string HubData =
        """
        INSERT INTO tenants (name, status, settings, created_at)
        SELECT CASE WHEN g % 3 = 0 THEN 'Zürich ☃ ' || g WHEN g % 3 = 1 THEN '東京 テナント ' || g ELSE 'O''Brien; "quoted" \ 🚀 ' || g END,
               (ARRAY['active','disabled','archived']::hub_status[])[1 + g % 3],
               CASE WHEN g % 4 = 0 THEN NULL ELSE jsonb_build_object('plan', 'p' || g, 'limits', jsonb_build_array(g, g * 2), 'uni', 'ü€') END,
               timestamptz '2024-01-01 00:00:00+02' + g * interval '1 hour 7 minutes'
        FROM generate_series(1, 20) g;
        INSERT INTO users (tenant_id, email, display_name, avatar, last_login, profile)
        SELECT 1 + g % 20, 'user' || g || '@example.com',
               CASE WHEN g % 5 = 0 THEN NULL ELSE 'Ünïcødé ' || g || E'\nline2\ttab' END,
               CASE WHEN g % 7 = 0 THEN NULL ELSE decode(md5(g::text) || md5((g * 3)::text), 'hex') || '\x00ff00'::bytea END,
               CASE WHEN g % 2 = 0 THEN NULL ELSE timestamptz '2025-06-30 23:59:59.123456-07' + g * interval '1 minute' END,
               json_build_object('n', g, 'tags', json_build_array('a', 'b'))
        FROM generate_series(1, 500) g;
        INSERT INTO events (tenant_id, user_id, kind, payload, at, amount)
        SELECT 1 + g % 20, CASE WHEN g % 11 = 0 THEN NULL ELSE 1 + g % 500 END, 'kind(' || (g % 13) || ');''x',
               CASE WHEN g % 9 = 0 THEN NULL ELSE jsonb_build_object('seq', g, 'text', repeat('é', g % 17)) END,
               timestamptz '2023-03-26 01:30:00+01' + g * interval '13 seconds',
               CASE WHEN g % 6 = 0 THEN NULL ELSE (g % 100000) / 7.0 END
        FROM generate_series(1, 50000) g;
        INSERT INTO reporting.daily SELECT date '2024-01-01' + g, g * 10, CASE WHEN g % 2 = 0 THEN NULL ELSE 'n' || g END
        FROM generate_series(0, 99) g;
        SELECT setval('invoice_no', 4242);
        """;

    private static async Task ExecAsync(string db, string sql)
    {
        await using var c = new NpgsqlConnection(TestServers.PgAdminConnectionString(db));
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, c);
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task<object?> ScalarAsync(string db, string sql)
    {
        await using var c = new NpgsqlConnection(TestServers.PgAdminConnectionString(db));
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, c);
        return await cmd.ExecuteScalarAsync();
    }

    private static async Task<string> CreateDbAsync(string prefix)
    {
        var name = TestServers.NewDbName(prefix);
        await ExecAsync("postgres", $"CREATE DATABASE \"{name}\"");
        return name;
    }

    private static async Task DropDbAsync(string name)
    {
        try
        {
            await ExecAsync("postgres", $"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        }
        catch (NpgsqlException)
        {
        }
    }

    private static async Task<string> SchemaDumpAsync(string db)
    {
        var env = new Dictionary<string, string?> { ["PGPASSWORD"] = TestServers.PgPassword };
        var text = await TestServers.RunToolAsync(Path.Combine(TestServers.PgBinDir, "pg_dump"), new[]
        {
            "--schema-only", "--no-owner", "--no-acl", "--host=" + TestServers.PgHost,
            "--port=" + TestServers.PgPort, "--username=" + TestServers.PgUser, "--dbname=" + db,
        }, env);
        var lines = text.Split('\n')
            .Where(l => !l.StartsWith("--", StringComparison.Ordinal) && l.Trim().Length > 0
                        && !l.StartsWith("\\restrict", StringComparison.Ordinal)
                        && !l.StartsWith("\\unrestrict", StringComparison.Ordinal));
        return string.Join('\n', lines);
    }

    private static async Task<Dictionary<string, string>> ContentChecksumsAsync(string db)
    {
        var result = new Dictionary<string, string>();
        await using var c = new NpgsqlConnection(TestServers.PgAdminConnectionString(db));
        await c.OpenAsync();
        var rels = new List<(string, string, char)>();
        await using (var cmd = new NpgsqlCommand(
            "SELECT n.nspname, c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace " +
            "WHERE c.relkind IN ('r','S') AND n.nspname NOT IN ('pg_catalog','information_schema') " +
            "AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1, 2", c))
        await using (var r = await cmd.ExecuteReaderAsync())
        {
            while (await r.ReadAsync())
            {
                rels.Add((r.GetString(0), r.GetString(1), r.GetString(2)[0]));
            }
        }

        foreach (var (s, t, kind) in rels)
        {
            var sql = kind == 'S'
                ? $"SELECT last_value::text || '/' || is_called::text FROM \"{s}\".\"{t}\""
                : $"SELECT count(*)::text || ':' || coalesce(md5(string_agg(md5(x::text), '' ORDER BY x::text)), '-') FROM \"{s}\".\"{t}\" x";
            await using var cmd = new NpgsqlCommand(sql, c);
            result[$"{s}.{t}"] = (string)(await cmd.ExecuteScalarAsync())!;
        }

        return result;
    }

    private static async Task<(DumpResult Result, MemoryStream Dump)> DumpAsync(string db, string? format = null)
    {
        var engine = DatabaseEngineFactory.Create(TestServers.PgSpec(db, format: format));
        var ms = new MemoryStream();
        long lastProgress = 0;
        var result = await engine.DumpAsync(ms, new Progress<long>(p => lastProgress = p), CancellationToken.None);
        ms.Position = 0;
        return (result, ms);
    }

    [Theory]
    [InlineData(null, "custom", "db/dump.pgdump")]
    [InlineData("plain", "sql", "db/dump.sql")]
    public async Task Fidelity_DumpAndRestore_SchemaContentAndCountsMatch(string? format, string expectedFormat, string entry)
    {
        var source = await CreateDbAsync("hubdr_pg_src");
        var target = TestServers.NewDbName("hubdr_pg_dst");
        try
        {
            await ExecAsync(source, HubSchema);
            await ExecAsync(source, HubData);

            var (result, dump) = await DumpAsync(source, format);
            Assert.Equal("postgres", result.Engine);
            Assert.Equal(expectedFormat, result.Format);
            Assert.Equal(entry, result.EntryName);
            Assert.Equal(50000, result.RowCounts["public.events"]);
            Assert.Equal(20, result.RowCounts["public.tenants"]);
            Assert.Equal(500, result.RowCounts["public.users"]);
            Assert.Equal(500, result.RowCounts["public.audit_log"]);
            Assert.Equal(100, result.RowCounts["reporting.daily"]);
            Assert.Equal(0, result.RowCounts["public.empty_table"]);
            Assert.Equal(6, result.RowCounts.Count);
            Assert.True(result.Details.ContainsKey("snapshot"));
            if (expectedFormat == "custom")
            {
                Assert.Equal("PGDMP", Encoding.ASCII.GetString(dump.GetBuffer(), 0, 5));
            }

            var restorer = DatabaseEngineFactory.Create(TestServers.PgSpec(target));
            Assert.True(await restorer.TargetIsEmptyAsync(CancellationToken.None));
            await restorer.PrepareTargetAsync(force: false, CancellationToken.None);
            await restorer.RestoreAsync(dump, result.Format, new RestoreOptions(), CancellationToken.None);

            Assert.Equal(await SchemaDumpAsync(source), await SchemaDumpAsync(target));
            Assert.Equal(await ContentChecksumsAsync(source), await ContentChecksumsAsync(target));
            var restoredCounts = await restorer.CountRowsAsync(CancellationToken.None);
            Assert.Equal(result.RowCounts.OrderBy(k => k.Key), restoredCounts.OrderBy(k => k.Key));
            Assert.Empty(await restorer.CheckIntegrityAsync(CancellationToken.None));
            Assert.False(await restorer.TargetIsEmptyAsync(CancellationToken.None));
            // functions, procedures, triggers still work after restore
            Assert.Equal(25L, await ScalarAsync(target, "SELECT tenant_user_count(1)"));
            await ExecAsync(target, "CALL archive_tenant(1); INSERT INTO users (tenant_id, email) VALUES (2, 'new@x')");
            Assert.Equal(501L, await ScalarAsync(target, "SELECT count(*) FROM audit_log"));
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
        var source = await CreateDbAsync("hubdr_pg_conc");
        var target = TestServers.NewDbName("hubdr_pg_concdst");
        try
        {
            await ExecAsync(source, HubSchema);
            await ExecAsync(source, HubData);
            using var stop = new CancellationTokenSource();
            long written = 0;
            var writer = Task.Run(async () =>
            {
                await using var c = new NpgsqlConnection(TestServers.PgAdminConnectionString(source));
                await c.OpenAsync();
                var i = 0;
                while (!stop.IsCancellationRequested)
                {
                    i++;
                    await using var tx = await c.BeginTransactionAsync();
                    await using var cmd = new NpgsqlCommand(
                        "WITH t AS (INSERT INTO tenants (name) VALUES (@n) RETURNING id), " +
                        "u AS (INSERT INTO users (tenant_id, email) SELECT id, 'w@x' FROM t RETURNING id, tenant_id) " +
                        "INSERT INTO events (tenant_id, user_id, kind, at) SELECT tenant_id, id, 'w', now() FROM u", c, tx);
                    cmd.Parameters.AddWithValue("n", "writer " + i);
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
            var sourceTenants = (long)(await ScalarAsync(source, "SELECT count(*) FROM tenants"))!;
            Assert.True(sourceTenants > result.RowCounts["public.tenants"], "rows committed after the snapshot are not in the dump");

            var restorer = DatabaseEngineFactory.Create(TestServers.PgSpec(target));
            await restorer.PrepareTargetAsync(false, CancellationToken.None);
            await restorer.RestoreAsync(dump, result.Format, new RestoreOptions(), CancellationToken.None);
            var restored = await restorer.CountRowsAsync(CancellationToken.None);
            Assert.Equal(result.RowCounts.OrderBy(k => k.Key), restored.OrderBy(k => k.Key));
            // every writer transaction is all-or-nothing in the dump: one tenant, one user, one event each
            var wTenants = (long)(await ScalarAsync(target, "SELECT count(*) FROM tenants WHERE name LIKE 'writer %'"))!;
            Assert.Equal(wTenants, (long)(await ScalarAsync(target, "SELECT count(*) FROM users WHERE email = 'w@x'"))!);
            Assert.Equal(wTenants, (long)(await ScalarAsync(target, "SELECT count(*) FROM events WHERE kind = 'w'"))!);
            Assert.Equal(0L, (long)(await ScalarAsync(target,
                "SELECT count(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = u.tenant_id)"))!);
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
        var engine = DatabaseEngineFactory.Create(TestServers.PgSpec("postgres", password: "definitely-wrong-pw"));
        var ex = await Assert.ThrowsAsync<HubDrException>(() => engine.PreflightAsync(CancellationToken.None));
        Assert.Equal("DatabaseAuthenticationFailed", ex.ErrorId);
        Assert.Equal(HubErrorCategory.AuthenticationError, ex.Category);
        Assert.DoesNotContain("definitely-wrong-pw", ex.Message);
        Assert.Contains(TestServers.PgUser, ex.Message);
    }

    [Fact]
    public async Task DumpSessionTerminatedMidDump_GivesDatabaseDumpFailed()
    {
        var source = await CreateDbAsync("hubdr_pg_kill");
        try
        {
            await ExecAsync(source, HubSchema);
            await ExecAsync(source, HubData);
            // A blocker holds an exclusive lock, so pg_dump waits on it mid-dump; then its session is terminated.
            await using var blocker = new NpgsqlConnection(TestServers.PgAdminConnectionString(source));
            await blocker.OpenAsync();
            await using var tx = await blocker.BeginTransactionAsync();
            await using (var l = new NpgsqlCommand("LOCK TABLE events IN ACCESS EXCLUSIVE MODE", blocker, tx))
            {
                await l.ExecuteNonQueryAsync();
            }

            var engine = DatabaseEngineFactory.Create(TestServers.PgSpec(source));
            var dumpTask = engine.DumpAsync(new MemoryStream(), null, CancellationToken.None);
            var terminated = false;
            for (var i = 0; i < 300 && !terminated; i++)
            {
                await Task.Delay(50);
                terminated = (bool?)await ScalarAsync("postgres",
                    $"SELECT coalesce(bool_or(pg_terminate_backend(pid)), false) FROM pg_stat_activity WHERE datname = '{source}' " +
                    "AND application_name = 'hubdr' AND wait_event_type = 'Lock'") == true;
            }

            Assert.True(terminated, "the pg_dump session was never seen waiting");
            await tx.RollbackAsync();
            var ex = await Assert.ThrowsAsync<HubDrException>(() => dumpTask);
            Assert.Equal("DatabaseDumpFailed", ex.ErrorId);
            Assert.Contains("pg_dump", ex.Message);
            Assert.Contains("terminat", ex.Message);
            Assert.DoesNotContain(TestServers.PgPassword, ex.Message);
        }
        finally
        {
            await DropDbAsync(source);
        }
    }

    [Fact]
    public async Task NonEmptyTarget_RefusedWithoutForce_ReplacedWithForce()
    {
        var source = await CreateDbAsync("hubdr_pg_ne");
        var target = await CreateDbAsync("hubdr_pg_nedst");
        try
        {
            await ExecAsync(source, "CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a VALUES (1), (2);");
            await ExecAsync(target, "CREATE TABLE existing (id int); INSERT INTO existing VALUES (7);");
            var (result, dump) = await DumpAsync(source);
            var restorer = DatabaseEngineFactory.Create(TestServers.PgSpec(target));
            Assert.False(await restorer.TargetIsEmptyAsync(CancellationToken.None));
            var ex = await Assert.ThrowsAsync<HubDrException>(() => restorer.PrepareTargetAsync(false, CancellationToken.None));
            Assert.Equal("RestoreTargetNotEmpty", ex.ErrorId);
            Assert.Equal(HubErrorCategory.ResourceExists, ex.Category);
            Assert.Equal(7, (int)(await ScalarAsync(target, "SELECT id FROM existing"))!);

            await restorer.PrepareTargetAsync(true, CancellationToken.None);
            await restorer.RestoreAsync(dump, result.Format, new RestoreOptions { Jobs = 4 }, CancellationToken.None);
            Assert.Equal(2L, (long)(await ScalarAsync(target, "SELECT count(*) FROM a"))!);
            Assert.Equal(0L, (long)(await ScalarAsync(target, "SELECT count(*) FROM pg_tables WHERE tablename = 'existing'"))!);
        }
        finally
        {
            await DropDbAsync(source);
            await DropDbAsync(target);
        }
    }

    [Fact]
    public async Task CorruptDump_GivesDatabaseRestoreFailed()
    {
        var target = TestServers.NewDbName("hubdr_pg_bad");
        try
        {
            var restorer = DatabaseEngineFactory.Create(TestServers.PgSpec(target));
            await restorer.PrepareTargetAsync(false, CancellationToken.None);
            var garbage = new MemoryStream(Encoding.ASCII.GetBytes("PGDMP this is not a real archive" + new string('x', 5000)));
            var ex = await Assert.ThrowsAsync<HubDrException>(() =>
                restorer.RestoreAsync(garbage, "custom", new RestoreOptions(), CancellationToken.None));
            Assert.Equal("DatabaseRestoreFailed", ex.ErrorId);
            var plain = new MemoryStream(Encoding.UTF8.GetBytes("CREATE TABLE ok (id int);\nTHIS IS NOT SQL;\n"));
            ex = await Assert.ThrowsAsync<HubDrException>(() =>
                restorer.RestoreAsync(plain, "plain", new RestoreOptions(), CancellationToken.None));
            Assert.Equal("DatabaseRestoreFailed", ex.ErrorId);
            Assert.True(await restorer.TargetIsEmptyAsync(CancellationToken.None), "single transaction: nothing left behind");
        }
        finally
        {
            await DropDbAsync(target);
        }
    }

    [Fact]
    public async Task ToolOlderThanServer_GivesDatabaseToolTooOld()
    {
        var dir = Directory.CreateTempSubdirectory("hubdr-oldpg");
        try
        {
            // a pg_dump that reports an old major version (the version rule is what is under test)
            var fake = Path.Combine(dir.FullName, "pg_dump");
            await File.WriteAllTextAsync(fake, "#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n");
            File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var engine = DatabaseEngineFactory.Create(TestServers.PgSpec("postgres", toolPath: dir.FullName));
            var ex = await Assert.ThrowsAsync<HubDrException>(() => engine.PreflightAsync(CancellationToken.None));
            Assert.Equal("DatabaseToolTooOld", ex.ErrorId);
            Assert.Matches(new Regex(@"postgresql-client-\d+"), ex.Message);
            Assert.Contains("ToolPath", ex.Message);
        }
        finally
        {
            dir.Delete(true);
        }
    }

    [Fact]
    public async Task PasswordNeverOnCommandLineOrEnvironment_AndPassFileRemoved()
    {
        var source = await CreateDbAsync("hubdr_pg_ps");
        var target = TestServers.NewDbName("hubdr_pg_psdst");
        var seen = new List<(string Cmdline, string Environ, string? PassFile, UnixFileMode? Mode)>();
        try
        {
            await ExecAsync(source, HubSchema);
            await ExecAsync(source, HubData);
            ToolProcess.ProcessStarted = (pid, _, _) =>
            {
                try
                {
                    var cmd = File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ');
                    // the test runner's own HUBDR_TEST_* variables are inherited; everything else must be clean
                    var env = string.Join('\0', File.ReadAllText($"/proc/{pid}/environ").Split('\0')
                        .Where(e => !e.StartsWith("HUBDR_TEST_", StringComparison.Ordinal)));
                    var pf = env.Split('\0').FirstOrDefault(e => e.StartsWith("PGPASSFILE=", StringComparison.Ordinal))?[11..];
                    UnixFileMode? mode = pf is not null && File.Exists(pf) ? File.GetUnixFileMode(pf) : null;
                    lock (seen)
                    {
                        seen.Add((cmd, env, pf, mode));
                    }
                }
                catch (IOException)
                {
                }
            };
            var (result, dump) = await DumpAsync(source);
            var restorer = DatabaseEngineFactory.Create(TestServers.PgSpec(target));
            await restorer.PrepareTargetAsync(false, CancellationToken.None);
            await restorer.RestoreAsync(dump, result.Format, new RestoreOptions(), CancellationToken.None);
        }
        finally
        {
            ToolProcess.ProcessStarted = null;
            await DropDbAsync(source);
            await DropDbAsync(target);
        }

        Assert.Contains(seen, s => s.Cmdline.Contains("pg_dump") && s.Cmdline.Contains("--snapshot="));
        Assert.Contains(seen, s => s.Cmdline.Contains("pg_restore"));
        foreach (var s in seen)
        {
            Assert.DoesNotContain(TestServers.PgPassword, s.Cmdline);
            Assert.DoesNotContain(TestServers.PgPassword, s.Environ);
            if (s.PassFile is not null)
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, s.Mode);
                Assert.False(File.Exists(s.PassFile), "the pgpass file must be deleted after the tool ran");
            }
        }

        Assert.Contains(seen, s => s.PassFile is not null && s.Mode is not null);
        var engine = new PostgresEngine(TestServers.PgSpec("x"));
        Assert.DoesNotContain(engine.ConnectionArguments("x"), a => a.Contains(TestServers.PgPassword));
    }

    [Fact]
    public async Task Cancellation_KillsPgDumpAndThrowsOperationCanceled()
    {
        var source = await CreateDbAsync("hubdr_pg_cancel");
        var pids = new List<int>();
        try
        {
            await ExecAsync(source, HubSchema);
            await ExecAsync(source, HubData);
            ToolProcess.ProcessStarted = (pid, file, _) =>
            {
                if (file.EndsWith("pg_dump", StringComparison.Ordinal))
                {
                    lock (pids)
                    {
                        pids.Add(pid);
                    }
                }
            };
            var gate = new GateStream();
            using var cts = new CancellationTokenSource();
            var engine = DatabaseEngineFactory.Create(TestServers.PgSpec(source));
            var dumpTask = engine.DumpAsync(gate, null, cts.Token);
            await gate.FirstWrite.WaitAsync(TimeSpan.FromSeconds(60));
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => dumpTask);
        }
        finally
        {
            ToolProcess.ProcessStarted = null;
            await DropDbAsync(source);
        }

        // --version runs first and exits by itself; the dump process must be gone too
        Assert.True(pids.Count >= 2);
        await Task.Delay(200);
        foreach (var pid in pids)
        {
            Assert.False(Directory.Exists($"/proc/{pid}") && File.ReadAllText($"/proc/{pid}/cmdline").Contains("pg_dump"),
                $"pg_dump {pid} still running after cancellation");
        }
    }

    [Fact]
    public async Task UserWithoutSelectOnATable_GivesDatabasePermissionDenied()
    {
        var source = await CreateDbAsync("hubdr_pg_perm");
        var role = "hubdr_ro_" + Guid.NewGuid().ToString("N")[..8];
        const string rolePassword = "Ro-pw-123:with\\odd";
        try
        {
            await ExecAsync(source, "CREATE TABLE open_t (id int); CREATE TABLE secret_t (id int);");
            await ExecAsync(source, $"CREATE ROLE {role} LOGIN PASSWORD '{rolePassword}'; GRANT SELECT ON open_t TO {role};");
            var spec = new DatabaseSpec
            {
                Engine = "postgres",
                ConnectionString = $"Host={TestServers.PgHost};Port={TestServers.PgPort};Database={source};Username={role}",
                Credential = new System.Net.NetworkCredential(role, rolePassword),
                ToolPath = TestServers.PgBinDir,
            };
            var ex = await Assert.ThrowsAsync<HubDrException>(() =>
                DatabaseEngineFactory.Create(spec).DumpAsync(new MemoryStream(), null, CancellationToken.None));
            Assert.Equal("DatabasePermissionDenied", ex.ErrorId);
            Assert.Contains("secret_t", ex.Message);
            Assert.DoesNotContain("open_t", ex.Message);

            // after the grant the same user dumps fine: the pgpass escaping of ':' and '\\' works
            await ExecAsync(source, $"GRANT SELECT ON secret_t TO {role};");
            var result = await DatabaseEngineFactory.Create(spec).DumpAsync(new MemoryStream(), null, CancellationToken.None);
            Assert.Equal(2, result.RowCounts.Count);
        }
        finally
        {
            await DropDbAsync(source);
            await ExecAsync("postgres", $"DROP ROLE IF EXISTS {role}");
        }
    }
}
