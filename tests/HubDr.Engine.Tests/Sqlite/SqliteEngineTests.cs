using System.Security.Cryptography;
using System.Text;
using HubDr.Engine.Databases;
using HubDr.Engine.Databases.Sqlite;
using HubDr.Engine.Tests.Archive;
using Microsoft.Data.Sqlite;
using Xunit;

namespace HubDr.Engine.Tests.Sqlite;

public sealed class SqliteEngineTests : IDisposable
{
    private readonly string _dir = TestUtil.TempDir();

    public void Dispose() => Directory.Delete(_dir, true);

    private string P(string name) => Path.Combine(_dir, name);

    private static SqliteEngine Engine(string cs) => (SqliteEngine)DatabaseEngineFactory.Create(new DatabaseSpec { Engine = "sqlite3", ConnectionString = cs });

    private static SqliteConnection Conn(string path)
    {
        var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        c.Open();
        return c;
    }

    private static void Exec(SqliteConnection c, string sql, params (string, object?)[] ps)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (n, v) in ps) cmd.Parameters.AddWithValue(n, v ?? DBNull.Value);
        cmd.ExecuteNonQuery();
    }

    private static long Count(string path, string table)
    {
        using var c = Conn(path);
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT count(*) FROM \"{table}\"";
        return (long)cmd.ExecuteScalar()!;
    }

    private const string FidelitySchema = """
        PRAGMA foreign_keys=ON;
        CREATE TABLE users(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, email TEXT UNIQUE, score REAL, big INTEGER, data BLOB,
            meta TEXT CHECK (meta IS NULL OR json_valid(meta)));
        CREATE TABLE "order items"(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            "qty;x" INTEGER DEFAULT 1, note TEXT);
        CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID;
        CREATE TABLE gen(a INTEGER, b INTEGER GENERATED ALWAYS AS (a*2) VIRTUAL, c TEXT GENERATED ALWAYS AS ('x' || a) STORED);
        CREATE TABLE audit(id INTEGER PRIMARY KEY, msg TEXT);
        CREATE INDEX ix_users_name ON users(name);
        CREATE UNIQUE INDEX "ix items" ON "order items"(user_id, id) WHERE note IS NOT NULL;
        CREATE VIEW v_users AS SELECT id, name FROM users WHERE score > 0;
        CREATE VIEW v2 AS SELECT count(*) AS n FROM v_users;
        CREATE TRIGGER trg_users AFTER INSERT ON users BEGIN
            INSERT INTO audit(msg) VALUES ('new user; ' || NEW.name);
            UPDATE audit SET msg = msg || ' END;' WHERE id = last_insert_rowid();
        END;
        PRAGMA user_version=7;
        """;

    private void CreateFidelityDb(string path)
    {
        using var c = Conn(path);
        Exec(c, FidelitySchema);
        byte[] all = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        var texts = new[] { "plain", "O'Brien ''quoted''", "Zoë 🚀 日本語 ünïcödé", "line1\nline2\r\nline3\ttab", "semi;colon -- not a comment /* nor this */", "", "\"double\" [bracket] `tick`", new string('x', 100_000) };
        var reals = new[] { 0.1, 1.0, -0.0, 1e308, 5e-324, double.PositiveInfinity, double.NegativeInfinity, Math.PI, -123456.789e-10, 2.5e15 };
        var bigs = new long[] { long.MaxValue, long.MinValue, 0, -1, 9007199254740993 };
        for (int i = 0; i < 40; i++)
        {
            Exec(c, "INSERT INTO users(name,email,score,big,data,meta) VALUES($n,$e,$s,$b,$d,$m)",
                ("$n", texts[i % texts.Length] + i), ("$e", i % 5 == 0 ? null : $"u{i}@example.com"),
                ("$s", i % 7 == 0 ? null : reals[i % reals.Length]), ("$b", bigs[i % bigs.Length]),
                ("$d", i % 3 == 0 ? all : i % 3 == 1 ? Array.Empty<byte>() : null),
                ("$m", i % 4 == 0 ? null : $"{{\"id\":\"{Guid.NewGuid()}\",\"tags\":[\"a\",\"b's\"],\"n\":{i}.5,\"u\":\"\\u00e9\"}}"));
            Exec(c, "INSERT INTO \"order items\"(user_id,\"qty;x\",note) VALUES($u,$q,$n)", ("$u", (long)i + 1), ("$q", i), ("$n", i % 2 == 0 ? null : "n;" + i));
        }
        Exec(c, "DELETE FROM users WHERE id > 35"); // sqlite_sequence (40) now differs from max(id)
        Exec(c, "INSERT INTO kv VALUES('int', 42), ('real', 4.0), ('text', '123'), ('blob', X'00FF'), ('null', NULL), ('nul', CAST(X'610062' AS TEXT))");
        Exec(c, "INSERT INTO gen(a) VALUES(1),(2),(NULL)");
    }

    /// <summary>Schema (sqlite_master without rootpage) + per-table content digest incl. storage classes + user_version.</summary>
    private static string Fingerprint(string path)
    {
        using var c = Conn(path);
        var sb = new StringBuilder();
        var tables = new List<string>();
        using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name";
            using var r = cmd.ExecuteReader();
            while (r.Read())
            {
                sb.Append(r.GetString(0)).Append('|').Append(r.GetString(1)).Append('|').Append(r.GetString(2)).Append('|').Append(r.IsDBNull(3) ? "<null>" : r.GetString(3)).Append('\n');
                if (r.GetString(0) == "table") tables.Add(r.GetString(1));
            }
        }
        foreach (string t in tables)
        {
            using var cmd = c.CreateCommand();
            cmd.CommandText = $"SELECT * FROM \"{t}\"";
            using var r = cmd.ExecuteReader();
            var rowTexts = new List<string>();
            while (r.Read())
            {
                var row = new StringBuilder();
                for (int i = 0; i < r.FieldCount; i++)
                {
                    object v = r.GetValue(i);
                    row.Append(v switch
                    {
                        DBNull => "N",
                        long l => "I" + l,
                        double d => "R" + BitConverter.DoubleToInt64Bits(d),
                        string str => "T" + str,
                        byte[] b => "B" + Convert.ToHexString(b),
                        _ => throw new InvalidOperationException(),
                    }).Append('\u0001');
                }
                rowTexts.Add(row.ToString());
            }
            rowTexts.Sort(StringComparer.Ordinal);
            long rows = rowTexts.Count;
            string digest = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\u0002", rowTexts))));
            sb.Append(t).Append(": ").Append(rows).Append(" rows ").Append(digest).Append('\n');
        }
        using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "PRAGMA user_version";
            sb.Append("user_version=").Append(cmd.ExecuteScalar());
        }
        return sb.ToString();
    }

    private static async Task<(byte[] Dump, DumpResult Result)> DumpToBytes(SqliteEngine e)
    {
        var ms = new MemoryStream();
        var result = await e.DumpAsync(new NonSeekableStream(ms), null, CancellationToken.None);
        return (ms.ToArray(), result);
    }

    [Fact]
    public async Task FidelityRoundTripThroughRestoreAsyncAndSqlite3Cli()
    {
        CreateFidelityDb(P("src.db"));
        var src = Engine("Data Source=" + P("src.db"));
        var info = await src.PreflightAsync(CancellationToken.None);
        Assert.Equal("sqlite", info.Engine);
        Assert.Matches(@"^3\.\d+\.\d+$", info.ServerVersion);

        long reported = 0;
        var ms = new MemoryStream();
        var result = await src.DumpAsync(ms, new SyncProgress(b => reported = b), CancellationToken.None);
        byte[] dump = ms.ToArray();
        Assert.Equal(dump.Length, reported);
        Assert.Equal("sql", result.Format);
        Assert.Equal("db/dump.sql", result.EntryName);
        Assert.Equal(info.ServerVersion, result.ServerVersion);
        Assert.Equal(new Dictionary<string, long> { ["audit"] = 40, ["gen"] = 3, ["kv"] = 6, ["order items"] = 35, ["users"] = 35 }, result.RowCounts);
        string text = Encoding.UTF8.GetString(dump);
        Assert.StartsWith("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n", text);
        Assert.EndsWith("COMMIT;\n", text);
        Assert.Contains("X'000102030405", text);
        Assert.Contains("1e999", text);
        Assert.Contains("'line1\nline2'||char(13)||'\nline3\ttab", text);
        Assert.Contains("'a'||char(0)||'b'", text);
        Assert.Contains("INSERT INTO \"gen\"(\"a\") VALUES(1);", text);
        Assert.Contains("DELETE FROM sqlite_sequence;\nINSERT INTO \"sqlite_sequence\" VALUES('users',40);", text);

        string expected = Fingerprint(P("src.db"));
        Assert.Contains("user_version=7", expected);

        // 1) RestoreAsync
        var dst = Engine(P("restored/new.db")); // bare path, folder does not exist yet
        Assert.True(await dst.TargetIsEmptyAsync(CancellationToken.None));
        await dst.PrepareTargetAsync(false, CancellationToken.None);
        await dst.RestoreAsync(new NonSeekableStream(new MemoryStream(dump)), "sql", new RestoreOptions(), CancellationToken.None);
        Assert.Equal(expected, Fingerprint(P("restored/new.db")));
        Assert.Empty(await dst.CheckIntegrityAsync(CancellationToken.None));
        Assert.Equal(result.RowCounts, await dst.CountRowsAsync(CancellationToken.None));
        Assert.False(await dst.TargetIsEmptyAsync(CancellationToken.None));

        // 2) break-glass: the real sqlite3 CLI
        File.WriteAllBytes(P("dump.sql"), dump);
        var (exit, _, err) = TestUtil.Run("sh", _dir, "-c", "sqlite3 -bail cli.db < dump.sql");
        Assert.True(exit == 0 && err.Length == 0, "sqlite3 failed: " + err);
        Assert.Equal(expected, Fingerprint(P("cli.db")));

        // the restored trigger still works after restore (and did not fire during it)
        using (var c = Conn(P("restored/new.db")))
        {
            Exec(c, "INSERT INTO users(name) VALUES('after')");
            using var cmd = c.CreateCommand();
            cmd.CommandText = "SELECT id FROM users WHERE name='after'";
            Assert.Equal(41L, cmd.ExecuteScalar()); // AUTOINCREMENT continued from sqlite_sequence, not max(id)
        }
        Assert.Equal(41, Count(P("restored/new.db"), "audit"));
    }

    [Fact]
    public async Task SqliteCliDumpRestoresWithRestoreAsync()
    {
        CreateFidelityDb(P("src.db"));
        // sqlite3 .dump cuts text at an embedded NUL (our dump does not); leave that row out here
        using (var c = Conn(P("src.db"))) Exec(c, "DELETE FROM kv WHERE k='nul'");
        TestUtil.RunOk("sh", _dir, "-c", "sqlite3 src.db .dump > cli.sql");
        var dst = Engine(P("dst.db"));
        await dst.PrepareTargetAsync(false, CancellationToken.None);
        using (var fs = File.OpenRead(P("cli.sql")))
            await dst.RestoreAsync(fs, "sql", new RestoreOptions(), CancellationToken.None);
        // sqlite3 .dump does not carry user_version; everything else must match
        Assert.Equal(Fingerprint(P("src.db")).Replace("user_version=7", "user_version=0"), Fingerprint(P("dst.db")));
    }

    [Fact]
    public async Task DumpIsAConsistentSnapshotWhileAWriterInserts()
    {
        string path = P("busy.db");
        using (var c = Conn(path))
        {
            Exec(c, "PRAGMA journal_mode=WAL; CREATE TABLE a(id INTEGER PRIMARY KEY, payload TEXT); CREATE TABLE b(id INTEGER PRIMARY KEY, a_id INTEGER);");
            using var tx = c.BeginTransaction();
            using var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "INSERT INTO a(payload) VALUES($p); INSERT INTO b(a_id) VALUES(last_insert_rowid());";
            var p = cmd.Parameters.Add("$p", SqliteType.Text);
            for (int i = 0; i < 30_000; i++) { p.Value = "row " + i + " " + new string('p', 100); cmd.ExecuteNonQuery(); }
            tx.Commit();
        }

        using var stop = new CancellationTokenSource();
        long inserted = 0;
        var wroteDuringDump = new ManualResetEventSlim();
        var writer = Task.Run(() =>
        {
            using var c = Conn(path);
            Exec(c, "PRAGMA busy_timeout=10000");
            while (!stop.IsCancellationRequested)
            {
                // a and b always grow together: any consistent snapshot has count(a) == count(b)
                Exec(c, "BEGIN IMMEDIATE; INSERT INTO a(payload) VALUES('late'); INSERT INTO b(a_id) VALUES(last_insert_rowid()); COMMIT;");
                if (Interlocked.Increment(ref inserted) >= 200) wroteDuringDump.Set();
            }
        });

        var engine = Engine("Data Source=" + path);
        var ms = new MemoryStream();
        long before = 0;
        // The output blocks on its first write (mid-way through table a) until the writer has committed 200 more transactions.
        var gate = new GateStream(ms, () => { Interlocked.Exchange(ref inserted, 0); wroteDuringDump.Reset(); Assert.True(wroteDuringDump.Wait(TimeSpan.FromSeconds(60))); before = Interlocked.Read(ref inserted); });
        var result = await engine.DumpAsync(gate, null, CancellationToken.None);
        stop.Cancel();
        await writer;
        Assert.True(before >= 200, "the writer did not run during the dump");

        Assert.Equal(result.RowCounts["a"], result.RowCounts["b"]);
        Assert.True(Count(path, "a") >= result.RowCounts["a"] + 200, "rows committed during the dump must not be in it");

        var dst = Engine(P("busy-restored.db"));
        await dst.PrepareTargetAsync(false, CancellationToken.None);
        await dst.RestoreAsync(new MemoryStream(ms.ToArray()), "sql", new RestoreOptions(), CancellationToken.None);
        var restored = await dst.CountRowsAsync(CancellationToken.None);
        Assert.Equal(result.RowCounts, restored);
        Assert.Equal("wal", result.Details["journalMode"]);
    }

    [Fact]
    public async Task Fts5VirtualTableRoundTrips()
    {
        using (var c = Conn(P("fts.db")))
        {
            Exec(c, "CREATE VIRTUAL TABLE docs USING fts5(title, body); CREATE TABLE plain(x);");
            for (int i = 0; i < 200; i++)
                Exec(c, "INSERT INTO docs(title, body) VALUES($t, $b)", ("$t", "title " + i), ("$b", i % 3 == 0 ? "hello world " + i : "other text; it's " + i));
        }
        var (dump, result) = await DumpToBytes(Engine(P("fts.db")));
        Assert.Equal(0, result.RowCounts["plain"]);
        Assert.False(result.RowCounts.ContainsKey("docs")); // virtual: its rows live in the shadow tables
        Assert.Equal(200, result.RowCounts["docs_content"]);
        string expected = Fingerprint(P("fts.db"));

        var dst = Engine(P("fts-restored.db"));
        await dst.RestoreAsync(new MemoryStream(dump), "sql", new RestoreOptions(), CancellationToken.None);
        File.WriteAllBytes(P("fts.sql"), dump);
        TestUtil.RunOk("sh", _dir, "-c", "sqlite3 -bail fts-cli.db < fts.sql");
        foreach (string db in new[] { "fts-restored.db", "fts-cli.db" })
        {
            Assert.Equal(expected, Fingerprint(P(db)));
            Assert.Empty(await Engine(P(db)).CheckIntegrityAsync(CancellationToken.None));
            using var c = Conn(P(db));
            using var cmd = c.CreateCommand();
            cmd.CommandText = "SELECT count(*) FROM docs WHERE docs MATCH 'hello'";
            Assert.Equal(67L, cmd.ExecuteScalar());
        }
    }

    [Fact]
    public async Task TargetPreparationAndErrors()
    {
        var missing = Engine(P("nope.db"));
        var ex = await Assert.ThrowsAsync<HubDrException>(() => missing.PreflightAsync(CancellationToken.None));
        Assert.Equal("DatabaseNotFound", ex.ErrorId);
        Assert.Equal(HubErrorCategory.ObjectNotFound, ex.Category);
        Assert.False(File.Exists(P("nope.db"))); // preflight must not create it

        File.WriteAllText(P("garbage.db"), "this is not a database, just some text that is long enough to have a header......");
        var garbage = Engine(P("garbage.db"));
        ex = await Assert.ThrowsAsync<HubDrException>(() => garbage.PreflightAsync(CancellationToken.None));
        Assert.Equal("DatabaseNotFound", ex.ErrorId);
        Assert.False(await garbage.TargetIsEmptyAsync(CancellationToken.None));

        File.WriteAllBytes(P("empty.db"), Array.Empty<byte>());
        Assert.True(await Engine(P("empty.db")).TargetIsEmptyAsync(CancellationToken.None));

        CreateFidelityDb(P("full.db"));
        using (var c = Conn(P("full.db"))) Exec(c, "PRAGMA journal_mode=WAL");
        var full = Engine($"Data Source={P("full.db")};Mode=ReadWriteCreate");
        Assert.False(await full.TargetIsEmptyAsync(CancellationToken.None));
        ex = await Assert.ThrowsAsync<HubDrException>(() => full.PrepareTargetAsync(false, CancellationToken.None));
        Assert.Equal("RestoreTargetNotEmpty", ex.ErrorId);
        Assert.Equal(HubErrorCategory.ResourceExists, ex.Category);
        Assert.True(File.Exists(P("full.db")));

        await full.PrepareTargetAsync(true, CancellationToken.None);
        Assert.True(await full.TargetIsEmptyAsync(CancellationToken.None));
        Assert.False(File.Exists(P("full.db-wal")));

        ex = await Assert.ThrowsAsync<HubDrException>(() => full.RestoreAsync(new MemoryStream(), "custom", new RestoreOptions(), CancellationToken.None));
        Assert.Equal("DumpFormatUnsupported", ex.ErrorId);

        Assert.Equal("DatabaseConnectionStringInvalid", Assert.Throws<HubDrException>(() => Engine(":memory:")).ErrorId);
    }

    [Fact]
    public async Task TruncatedOrFailingDumpRestoresNothing()
    {
        CreateFidelityDb(P("src.db"));
        var (dump, _) = await DumpToBytes(Engine(P("src.db")));
        var dst = Engine(P("dst.db"));
        await dst.PrepareTargetAsync(false, CancellationToken.None);

        // cut before COMMIT
        byte[] cut = dump.AsSpan(0, dump.Length - "COMMIT;\n".Length).ToArray();
        var ex = await Assert.ThrowsAsync<HubDrException>(() => dst.RestoreAsync(new MemoryStream(cut), "sql", new RestoreOptions(), CancellationToken.None));
        Assert.Equal("RestoreDumpInvalid", ex.ErrorId);
        Assert.True(await dst.TargetIsEmptyAsync(CancellationToken.None));

        // cut mid-statement
        cut = dump.AsSpan(0, dump.Length / 2).ToArray();
        ex = await Assert.ThrowsAsync<HubDrException>(() => dst.RestoreAsync(new MemoryStream(cut), "sql", new RestoreOptions(), CancellationToken.None));
        Assert.True(ex.ErrorId is "RestoreDumpInvalid" or "RestoreStatementFailed", ex.ErrorId);
        Assert.True(await dst.TargetIsEmptyAsync(CancellationToken.None));

        // a failing statement rolls everything back
        byte[] bad = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(dump).Replace("CREATE VIEW v2", "CREATE VIEW v_users"));
        ex = await Assert.ThrowsAsync<HubDrException>(() => dst.RestoreAsync(new MemoryStream(bad), "sql", new RestoreOptions(), CancellationToken.None));
        Assert.Equal("RestoreStatementFailed", ex.ErrorId);
        Assert.True(await dst.TargetIsEmptyAsync(CancellationToken.None));
    }

    [Theory]
    [InlineData("ATTACH DATABASE '{outside}' AS evil;\nCREATE TABLE evil.t(x);\nINSERT INTO evil.t VALUES(1);", "ATTACH")]
    [InlineData("VACUUM INTO '{outside}';", "VACUUM")]
    [InlineData("  /* hidden */ vacuum\n INTO '{outside}';", "VACUUM")]
    [InlineData("SELECT load_extension('{outside}');", "load_extension")]
    [InlineData("PRAGMA journal_mode=OFF;", "journal_mode")]
    [InlineData("PRAGMA temp_store_directory='{dir}';", "temp_store_directory")]
    [InlineData("DETACH DATABASE temp;", "DETACH")]
    [InlineData("CREATE TEMP TABLE x(y);", "temp")]
    [InlineData("CREATE VIRTUAL TABLE v USING fts5(x);", "authorizer action")]
    [InlineData("DROP TABLE t;", "authorizer action 11")]
    public async Task RestoreRefusesStatementsThatReachOutsideTheTargetAndRemovesThePartialTarget(string statement, string named)
    {
        var outside = P("outside.db");
        string dump = "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE t(x INTEGER);\nINSERT INTO t VALUES(1);\n" +
            statement.Replace("{outside}", outside).Replace("{dir}", _dir) + "\nINSERT INTO t VALUES(2);\nCOMMIT;\n";
        var target = P("target.db");
        var dst = Engine(target);
        await dst.PrepareTargetAsync(false, CancellationToken.None);
        var ex = await Assert.ThrowsAsync<HubDrException>(() => dst.RestoreAsync(new MemoryStream(Encoding.UTF8.GetBytes(dump)), "sql", new RestoreOptions(), CancellationToken.None));
        Assert.Equal("RestoreStatementRefused", ex.ErrorId);
        Assert.Equal(HubErrorCategory.SecurityError, ex.Category);
        Assert.Contains(named, ex.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("statement 5", ex.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(outside), "nothing is written outside the target");
        Assert.False(File.Exists(target), "the partial target is removed");
        Assert.Empty(Directory.GetFiles(_dir));
    }

    [Fact]
    public async Task RestoreAcceptsWhatSqlite3DotDumpWrites()
    {
        // sqlite3 .dump of a database with AUTOINCREMENT, a virtual table (written through writable_schema), stat1 and
        // user_version: every statement it needs passes the restore authorizer.
        var src = P("cli-src.db");
        using (var c = Conn(src))
        {
            Exec(c, "CREATE TABLE a(id INTEGER PRIMARY KEY AUTOINCREMENT, s TEXT); INSERT INTO a(s) VALUES('x\ny'),('z');" +
                    "CREATE VIRTUAL TABLE f USING fts5(body); INSERT INTO f VALUES('hello world');" +
                    "CREATE INDEX ia ON a(s); CREATE VIEW va AS SELECT upper(s) AS u FROM a; ANALYZE; PRAGMA user_version=7;");
        }

        var psi = new System.Diagnostics.ProcessStartInfo("sqlite3", [src, ".dump"]) { RedirectStandardOutput = true };
        using var p = System.Diagnostics.Process.Start(psi)!;
        var dump = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.Contains("writable_schema", dump, StringComparison.Ordinal);
        var dst = Engine(P("cli-dst.db"));
        await dst.PrepareTargetAsync(false, CancellationToken.None);
        await dst.RestoreAsync(new MemoryStream(Encoding.UTF8.GetBytes(dump)), "sql", new RestoreOptions(), CancellationToken.None);
        Assert.Equal(2, Count(P("cli-dst.db"), "a"));
        Assert.Equal(1, Count(P("cli-dst.db"), "f"));
    }

    [Fact]
    public async Task ForceRefusesToReplaceADatabaseAnotherProcessHasOpen()
    {
        CreateFidelityDb(P("live.db"));
        using (var c = Conn(P("live.db"))) Exec(c, "PRAGMA journal_mode=WAL");
        // The Hub: another process with the database open (idle, between requests).
        var psi = new System.Diagnostics.ProcessStartInfo("sqlite3", [P("live.db")]) { RedirectStandardInput = true, RedirectStandardOutput = true };
        using var hub = System.Diagnostics.Process.Start(psi)!;
        try
        {
            await hub.StandardInput.WriteLineAsync("SELECT count(*) FROM users;");
            await hub.StandardInput.FlushAsync();
            Assert.NotNull(await hub.StandardOutput.ReadLineAsync());
            var ex = await Assert.ThrowsAsync<HubDrException>(() => Engine(P("live.db")).PrepareTargetAsync(true, CancellationToken.None));
            Assert.Equal("RestoreTargetInUse", ex.ErrorId);
            Assert.Equal(HubErrorCategory.ResourceUnavailable, ex.Category);
            Assert.Contains($"process {hub.Id}", ex.Message, StringComparison.Ordinal);
            Assert.True(File.Exists(P("live.db")), "the live database is not deleted");
            Assert.False(await Engine(P("live.db")).TargetIsEmptyAsync(CancellationToken.None));
        }
        finally
        {
            hub.Kill();
            await hub.WaitForExitAsync();
        }

        // Once it is closed, -Force replaces it.
        await Engine(P("live.db")).PrepareTargetAsync(true, CancellationToken.None);
        Assert.True(await Engine(P("live.db")).TargetIsEmptyAsync(CancellationToken.None));
    }

    [Fact]
    public async Task ForceRefusesToReplaceADatabaseWithAnActiveConnection()
    {
        CreateFidelityDb(P("busy.db"));
        using var c = Conn(P("busy.db"));
        Exec(c, "PRAGMA journal_mode=WAL");
        using var tx = c.BeginTransaction();
        Exec(c, "INSERT INTO users(name) VALUES ('in flight')");
        var ex = await Assert.ThrowsAsync<HubDrException>(() => Engine(P("busy.db")).PrepareTargetAsync(true, CancellationToken.None));
        Assert.Equal("RestoreTargetInUse", ex.ErrorId);
        Assert.True(File.Exists(P("busy.db")));
    }

    [Fact]
    public async Task IntegrityCheckReportsForeignKeyViolations()
    {
        CreateFidelityDb(P("src.db"));
        var e = Engine(P("src.db"));
        Assert.Empty(await e.CheckIntegrityAsync(CancellationToken.None));
        using (var c = Conn(P("src.db"))) Exec(c, "PRAGMA foreign_keys=OFF; INSERT INTO \"order items\"(user_id) VALUES(9999);");
        var problems = await e.CheckIntegrityAsync(CancellationToken.None);
        Assert.Single(problems);
        Assert.Contains("order items", problems[0]);
    }

    [Fact]
    public void SplitterRespectsQuotesCommentsAndTriggers()
    {
        string script = "CREATE TABLE \"a;b\"(x);\n-- comment; with 'quote\nINSERT INTO \"a;b\" VALUES('it''s; fine'); /* c; */ " +
                        "CREATE TRIGGER t AFTER INSERT ON \"a;b\" BEGIN SELECT 1; SELECT 'END;'; END;\nSELECT [x;y] FROM `t;`;\nSELECT 1 - -2;";
        // read through a tiny buffer boundary by using a slow reader
        var split = new SqlScriptSplitter(new StringReader(script));
        var got = new List<string>();
        for (string? s = split.Next(); s != null; s = split.Next()) got.Add(s.Trim());
        Assert.Equal(5, got.Count);
        Assert.Equal("CREATE TABLE \"a;b\"(x);", got[0]);
        Assert.StartsWith("-- comment; with 'quote\nINSERT", got[1]);
        Assert.EndsWith("VALUES('it''s; fine');", got[1]);
        Assert.StartsWith("/* c; */ CREATE TRIGGER", got[2]);
        Assert.EndsWith("SELECT 'END;'; END;", got[2]);
        Assert.Equal("SELECT [x;y] FROM `t;`;", got[3]);
        Assert.Equal("SELECT 1 - -2;", got[4]);
        Assert.True(string.IsNullOrWhiteSpace(split.Remainder));
    }

    [Theory]
    [InlineData(1.0, "1.0")]
    [InlineData(-0.0, "-0.0")]
    [InlineData(0.1, "0.1")]
    [InlineData(1e20, "1E+20")]
    [InlineData(double.PositiveInfinity, "1e999")]
    [InlineData(double.NaN, "NULL")]
    public void RealLiterals(double d, string expected) => Assert.Equal(expected, SqliteEngine.RealLiteral(d));

    private sealed class SyncProgress(Action<long> a) : IProgress<long> { public void Report(long v) => a(v); }

    private sealed class GateStream(Stream inner, Action onFirstWrite) : Stream
    {
        private bool _opened;
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count)
        {
            if (!_opened) { _opened = true; onFirstWrite(); }
            inner.Write(buffer, offset, count);
        }
    }
}
