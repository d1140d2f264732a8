using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Data.Sqlite;

namespace HubDr.Engine.Databases.Sqlite;

/// <summary>
/// SQLite backend. The dump is a plain SQL script in the style of `sqlite3 .dump`, written from ONE read
/// transaction (a consistent snapshot even while other connections write, in WAL mode without blocking them),
/// so the break-glass restore is `sqlite3 new.db &lt; dump.sql`. RestoreAsync streams the script into the target
/// in one transaction.
/// </summary>
public sealed class SqliteEngine : IDatabaseEngine
{
    public const string Format = "sql";
    public const string EntryName = "db/dump.sql";

    private static readonly UTF8Encoding Utf8NoBom = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);
    private static readonly Regex KeywordForm = new(@"(^|;)\s*(data\s*source|datasource|filename)\s*=", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

    private readonly DatabaseSpec _spec;

    public SqliteEngine(DatabaseSpec spec)
    {
        _spec = spec ?? throw new ArgumentNullException(nameof(spec));
        FilePath = ResolvePath(spec.ConnectionString);
    }

    public string Name => "sqlite";

    /// <summary>Full path of the database file.</summary>
    public string FilePath { get; }

    internal static string ResolvePath(string connectionString)
    {
        string cs = (connectionString ?? "").Trim();
        string path;
        if (KeywordForm.IsMatch(cs))
        {
            try { path = new SqliteConnectionStringBuilder(cs).DataSource; }
            catch (ArgumentException ex)
            {
                throw new HubDrException("DatabaseConnectionStringInvalid", HubErrorCategory.InvalidArgument,
                    $"The SQLite connection string is not valid ({ex.Message}). Use \"Data Source=/path/to/hub.db\" or just the file path.", ex);
            }
        }
        else path = cs;
        if (path.Length == 0 || path == ":memory:" || path.StartsWith("file:", StringComparison.OrdinalIgnoreCase) && path.Contains("mode=memory", StringComparison.OrdinalIgnoreCase))
            throw new HubDrException("DatabaseConnectionStringInvalid", HubErrorCategory.InvalidArgument,
                "The SQLite connection string names no database file. Use \"Data Source=/path/to/hub.db\" or just the file path.");
        if (path.StartsWith("~/", StringComparison.Ordinal))
            path = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), path[2..]);
        return Path.GetFullPath(path);
    }

    private SqliteConnection Open(SqliteOpenMode mode)
    {
        var b = new SqliteConnectionStringBuilder { DataSource = FilePath, Mode = mode, Pooling = false, DefaultTimeout = 60 };
        var c = new SqliteConnection(b.ToString());
        c.Open();
        return c;
    }

    private static string Q(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    // ------------------------------------------------------------------ preflight

    public Task<DatabaseInfo> PreflightAsync(CancellationToken ct) => Task.Run(() =>
    {
        if (!File.Exists(FilePath))
            throw new HubDrException("DatabaseNotFound", HubErrorCategory.ObjectNotFound,
                $"The SQLite database file '{FilePath}' does not exist. Check the connection string (Data Source=...) and that the Hub data volume is mounted.")
            { Target = FilePath };
        try
        {
            using var c = Open(SqliteOpenMode.ReadOnly);
            using var cmd = c.CreateCommand();
            cmd.CommandText = "SELECT count(*) FROM sqlite_master";
            cmd.ExecuteScalar();
            return new DatabaseInfo(Name, SqliteVersion(c), FilePath);
        }
        catch (SqliteException ex)
        {
            throw new HubDrException("DatabaseNotFound", HubErrorCategory.ObjectNotFound,
                $"The file '{FilePath}' cannot be opened read-only as a SQLite database: {ex.Message}. Check the path, the file permissions, and that it is a SQLite database.", ex)
            { Target = FilePath };
        }
    }, ct);

    private static string SqliteVersion(SqliteConnection c)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT sqlite_version()";
        return (string)cmd.ExecuteScalar()!;
    }

    // ------------------------------------------------------------------ schema

    private sealed record SchemaObject(string Type, string Name, string TableName, string Sql);

    private static List<SchemaObject> ReadSchema(SqliteConnection c, SqliteTransaction? tx)
    {
        using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid";
        using var r = cmd.ExecuteReader();
        var list = new List<SchemaObject>();
        while (r.Read()) list.Add(new SchemaObject(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3)));
        return list;
    }

    private static bool IsVirtual(SchemaObject o) => o.Sql.TrimStart().StartsWith("CREATE VIRTUAL TABLE", StringComparison.OrdinalIgnoreCase);

    private static bool IsUserTable(SchemaObject o) =>
        o.Type == "table" && !o.Name.StartsWith("sqlite_", StringComparison.OrdinalIgnoreCase) && !IsVirtual(o);

    private static List<string> InsertableColumns(SqliteConnection c, SqliteTransaction? tx, string table, out bool hasGenerated)
    {
        using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = $"SELECT name, hidden FROM pragma_table_xinfo({QuoteLiteral(table)})";
        using var r = cmd.ExecuteReader();
        var cols = new List<string>();
        hasGenerated = false;
        while (r.Read())
        {
            long hidden = r.GetInt64(1);
            if (hidden is 2 or 3) { hasGenerated = true; continue; } // generated columns are computed, not inserted
            cols.Add(r.GetString(0));
        }
        return cols;
    }

    private static string QuoteLiteral(string s) => "'" + s.Replace("'", "''", StringComparison.Ordinal) + "'";

    // ------------------------------------------------------------------ dump

    public Task<DumpResult> DumpAsync(Stream output, IProgress<long>? bytesProgress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(output);
        return Task.Run(() => Dump(output, bytesProgress, ct), ct);
    }

    private DumpResult Dump(Stream output, IProgress<long>? bytesProgress, CancellationToken ct)
    {
        DatabaseInfo info = PreflightAsync(ct).GetAwaiter().GetResult();
        try
        {
            using var c = Open(SqliteOpenMode.ReadOnly);
            // One deferred read transaction: the snapshot is taken at the first read and holds for every statement below.
            using var tx = c.BeginTransaction(deferred: true);
            var schema = ReadSchema(c, tx);
            var counts = new SortedDictionary<string, long>(StringComparer.Ordinal);
            var counting = new ProgressStream(output, bytesProgress);
            long userVersion = Scalar<long>(c, tx, "PRAGMA user_version");
            string journalMode = Scalar<string>(c, tx, "PRAGMA journal_mode");

            using (var w = new StreamWriter(counting, Utf8NoBom, 1 << 16, leaveOpen: true) { NewLine = "\n" })
            {
                w.Write("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n");
                bool writableSchema = false;
                bool hasSequence = false;
                foreach (var o in schema.Where(o => o.Type == "table"))
                {
                    ct.ThrowIfCancellationRequested();
                    if (o.Name.Equals("sqlite_sequence", StringComparison.OrdinalIgnoreCase)) { hasSequence = true; continue; }
                    if (o.Name.StartsWith("sqlite_", StringComparison.OrdinalIgnoreCase)) continue; // sqlite_stat*: rebuilt by ANALYZE
                    if (IsVirtual(o))
                    {
                        // Same technique as sqlite3 .dump: the shadow tables are dumped as ordinary tables below.
                        if (!writableSchema) { w.Write("PRAGMA writable_schema=ON;\n"); writableSchema = true; }
                        w.Write("INSERT INTO sqlite_master(type,name,tbl_name,rootpage,sql)VALUES('table',");
                        w.Write(QuoteLiteral(o.Name)); w.Write(','); w.Write(QuoteLiteral(o.TableName)); w.Write(",0,");
                        w.Write(QuoteLiteral(o.Sql)); w.Write(");\n");
                        continue;
                    }
                    w.Write(o.Sql);
                    w.Write(";\n");
                    counts[o.Name] = DumpRows(c, tx, w, o.Name, ct);
                }
                if (hasSequence)
                {
                    w.Write("DELETE FROM sqlite_sequence;\n");
                    DumpRows(c, tx, w, "sqlite_sequence", ct);
                }
                foreach (var o in schema.Where(o => o.Type is "index" or "trigger" or "view"))
                {
                    w.Write(o.Sql);
                    w.Write(";\n");
                }
                if (writableSchema) w.Write("PRAGMA writable_schema=OFF;\n");
                if (userVersion != 0) w.Write($"PRAGMA user_version={userVersion.ToString(CultureInfo.InvariantCulture)};\n");
                w.Write("COMMIT;\n");
            }
            counting.Flush();
            tx.Commit();
            return new DumpResult
            {
                Engine = Name,
                ServerVersion = info.ServerVersion,
                Database = FilePath,
                Format = Format,
                EntryName = EntryName,
                RowCounts = counts,
                Details = new Dictionary<string, string>
                {
                    ["journalMode"] = journalMode,
                    ["userVersion"] = userVersion.ToString(CultureInfo.InvariantCulture),
                    ["consistency"] = "single read transaction (snapshot)",
                    ["bytes"] = counting.Count.ToString(CultureInfo.InvariantCulture),
                },
            };
        }
        catch (SqliteException ex)
        {
            throw new HubDrException("DatabaseDumpFailed", HubErrorCategory.ReadError,
                $"Dumping the SQLite database '{FilePath}' failed: {ex.Message}. If the database is busy or locked, retry; if it is corrupt, run PRAGMA integrity_check.", ex)
            { Target = FilePath };
        }
    }

    private static T Scalar<T>(SqliteConnection c, SqliteTransaction? tx, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        return (T)Convert.ChangeType(cmd.ExecuteScalar()!, typeof(T), CultureInfo.InvariantCulture);
    }

    private static long DumpRows(SqliteConnection c, SqliteTransaction tx, StreamWriter w, string table, CancellationToken ct)
    {
        var cols = InsertableColumns(c, tx, table, out bool hasGenerated);
        string colList = string.Join(",", cols.Select(Q));
        string prefix = hasGenerated ? $"INSERT INTO {Q(table)}({colList}) VALUES(" : $"INSERT INTO {Q(table)} VALUES(";
        using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = $"SELECT {colList} FROM {Q(table)}";
        using var r = cmd.ExecuteReader();
        long rows = 0;
        int n = r.FieldCount;
        long allocatedAtLastCollect = GC.GetAllocatedBytesForCurrentThread();
        while (r.Read())
        {
            if ((++rows & 0xFF) == 0)
            {
                ct.ThrowIfCancellationRequested();
                // Every value read allocates (Microsoft.Data.Sqlite hands out strings and boxed numbers), so the GC's
                // gen0 budget would grow to ~70 MiB and stay committed. A cheap gen0 collection every 4 MiB allocated
                // (nothing survives it but the current row) keeps the dump's footprint flat and small (docs/performance.md).
                long allocated = GC.GetAllocatedBytesForCurrentThread();
                if (allocated - allocatedAtLastCollect > 4 << 20)
                {
                    GC.Collect(0, GCCollectionMode.Forced, blocking: true);
                    allocatedAtLastCollect = allocated;
                }
            }

            w.Write(prefix);
            for (int i = 0; i < n; i++)
            {
                if (i > 0) w.Write(',');
                WriteLiteral(w, r.GetValue(i));
            }
            w.Write(");\n");
        }
        return rows;
    }

    internal static void WriteLiteral(TextWriter w, object value)
    {
        switch (value)
        {
            case DBNull:
                w.Write("NULL");
                break;
            case long l:
                w.Write(l.ToString(CultureInfo.InvariantCulture));
                break;
            case double d:
                w.Write(RealLiteral(d));
                break;
            case string s:
                WriteTextLiteral(w, s);
                break;
            case byte[] b:
                w.Write("X'");
                w.Write(Convert.ToHexString(b));
                w.Write('\'');
                break;
            default:
                throw new InvalidOperationException($"Unexpected SQLite value type {value.GetType()}.");
        }
    }

    /// <summary>
    /// '...' with '' escaping. CR and NUL are written as ||char(13)|| / ||char(0)||: the sqlite3 shell drops a CR
    /// before a line feed while reading a script, and a literal cannot hold NUL. The value stays TEXT either way.
    /// </summary>
    private static void WriteTextLiteral(TextWriter w, string s)
    {
        w.Write('\'');
        ReadOnlySpan<char> span = s;
        int i;
        while ((i = span.IndexOfAny('\'', '\r', '\0')) >= 0)
        {
            w.Write(span[..i]);
            char c = span[i];
            if (c == '\'') w.Write("''");
            else w.Write(c == '\r' ? "'||char(13)||'" : "'||char(0)||'");
            span = span[(i + 1)..];
        }
        w.Write(span);
        w.Write('\'');
    }

    internal static string RealLiteral(double d)
    {
        if (double.IsNaN(d)) return "NULL"; // SQLite stores NaN as NULL
        if (double.IsPositiveInfinity(d)) return "1e999";
        if (double.IsNegativeInfinity(d)) return "-1e999";
        string s = d.ToString("R", CultureInfo.InvariantCulture);
        // A literal without '.' or exponent would be read back as INTEGER.
        if (s.AsSpan().IndexOfAny('.', 'E', 'e') < 0) s += ".0";
        return s;
    }

    // ------------------------------------------------------------------ counts / integrity

    public Task<IReadOnlyDictionary<string, long>> CountRowsAsync(CancellationToken ct) => Task.Run<IReadOnlyDictionary<string, long>>(() =>
    {
        using var c = OpenExisting();
        using var tx = c.BeginTransaction(deferred: true);
        var counts = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var o in ReadSchema(c, tx).Where(IsUserTable))
        {
            ct.ThrowIfCancellationRequested();
            counts[o.Name] = Scalar<long>(c, tx, $"SELECT count(*) FROM {Q(o.Name)}");
        }
        tx.Commit();
        return counts;
    }, ct);

    private SqliteConnection OpenExisting()
    {
        if (!File.Exists(FilePath))
            throw new HubDrException("DatabaseNotFound", HubErrorCategory.ObjectNotFound,
                $"The SQLite database file '{FilePath}' does not exist.") { Target = FilePath };
        return Open(SqliteOpenMode.ReadOnly);
    }

    public Task<IReadOnlyList<string>> CheckIntegrityAsync(CancellationToken ct) => Task.Run<IReadOnlyList<string>>(() =>
    {
        var problems = new List<string>();
        using var c = OpenExisting();
        try
        {
            using (var cmd = c.CreateCommand())
            {
                cmd.CommandText = "PRAGMA integrity_check";
                using var r = cmd.ExecuteReader();
                while (r.Read())
                {
                    string line = r.GetString(0);
                    if (line != "ok") problems.Add("integrity_check: " + line);
                }
            }
            using (var cmd = c.CreateCommand())
            {
                cmd.CommandText = "PRAGMA foreign_key_check";
                using var r = cmd.ExecuteReader();
                while (r.Read())
                    problems.Add($"foreign_key_check: a row of table '{r.GetString(0)}' (rowid {(r.IsDBNull(1) ? "?" : r.GetValue(1))}) references a missing row in '{r.GetString(2)}'");
            }
        }
        catch (SqliteException ex)
        {
            problems.Add("integrity check could not run: " + ex.Message);
            return problems;
        }
        foreach (var o in ReadSchema(c, null).Where(o => o.Type == "table" && !o.Name.StartsWith("sqlite_", StringComparison.OrdinalIgnoreCase)))
        {
            ct.ThrowIfCancellationRequested();
            try
            {
                using var cmd = c.CreateCommand();
                cmd.CommandText = $"SELECT * FROM {Q(o.Name)}";
                using var r = cmd.ExecuteReader();
                while (r.Read())
                    for (int i = 0; i < r.FieldCount; i++) r.GetValue(i);
            }
            catch (SqliteException ex)
            {
                problems.Add($"table '{o.Name}' cannot be read: {ex.Message}");
            }
        }
        return problems;
    }, ct);

    // ------------------------------------------------------------------ restore

    public Task<bool> TargetIsEmptyAsync(CancellationToken ct) => Task.Run(() => TargetIsEmpty(), ct);

    private bool TargetIsEmpty()
    {
        var fi = new FileInfo(FilePath);
        if (!fi.Exists || fi.Length == 0) return true;
        try
        {
            using var c = Open(SqliteOpenMode.ReadOnly);
            return Scalar<long>(c, null, "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'") == 0;
        }
        catch (SqliteException)
        {
            return false; // not a database (or unreadable): never treat it as empty
        }
    }

    public Task DropTargetAsync(CancellationToken ct) => Task.Run(() =>
    {
        SqliteConnection.ClearAllPools();
        foreach (string suffix in new[] { "", "-wal", "-shm", "-journal" })
            File.Delete(FilePath + suffix);
    }, ct);

    public Task PrepareTargetAsync(bool force, CancellationToken ct) => Task.Run(() =>
    {
        if (!TargetIsEmpty())
        {
            if (!force)
                throw new HubDrException("RestoreTargetNotEmpty", HubErrorCategory.ResourceExists,
                    $"The restore target '{FilePath}' already contains a database with tables (or is not a SQLite file). Restore into a new path, or use -Force to delete it (and its -wal/-shm files) first.")
                { Target = FilePath };
            EnsureNotInUse();
            SqliteConnection.ClearAllPools();
            foreach (string suffix in new[] { "", "-wal", "-shm", "-journal" })
            {
                try
                {
                    File.Delete(FilePath + suffix);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    // Windows: another process has it open (the check above cannot see every kind of holder).
                    throw InUse(ex.Message, ex);
                }
            }
        }
        string? dir = Path.GetDirectoryName(FilePath);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        if (!File.Exists(FilePath))
        {
            using var c = Open(SqliteOpenMode.ReadWriteCreate);
            _createdTarget = true;
        }
    }, ct);

    /// <summary>Set when <see cref="PrepareTargetAsync"/> created the target file: a failed restore removes it again.</summary>
    private bool _createdTarget;

    private HubDrException InUse(string why, Exception? inner = null) =>
        new("RestoreTargetInUse", HubErrorCategory.ResourceUnavailable,
            $"The restore target '{FilePath}' is in use ({why}). -Force replaces a database only when nothing has it open: " +
            "stop the Hub (and anything else using the file), or restore to a new path and switch over.", inner)
        { Target = FilePath };

    /// <summary>
    /// Refuses to replace a live database: another process with the file (or its -wal/-shm) open (Linux: /proc/*/fd), or
    /// a lock another connection holds (any platform; on Windows an open file also cannot be deleted, see the caller).
    /// </summary>
    private void EnsureNotInUse()
    {
        var holders = OpenFileScanner.ProcessesHolding([FilePath, FilePath + "-wal", FilePath + "-shm", FilePath + "-journal"]);
        if (holders.Count > 0)
        {
            throw InUse($"open in process {string.Join(", ", holders)}");
        }

        if (!File.Exists(FilePath)) return;
        try
        {
            var b = new SqliteConnectionStringBuilder { DataSource = FilePath, Mode = SqliteOpenMode.ReadWrite, Pooling = false, DefaultTimeout = 2 };
            using var c = new SqliteConnection(b.ToString());
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandTimeout = 2; // Microsoft.Data.Sqlite retries SQLITE_BUSY until then (0 would wait forever)
            // BEGIN EXCLUSIVE needs every lock free: no other connection may be writing (WAL: hold the write lock) or,
            // in rollback-journal mode, reading. (Not locking_mode=EXCLUSIVE: in WAL mode that bypasses the shared index.)
            cmd.CommandText = "BEGIN EXCLUSIVE; SELECT count(*) FROM sqlite_master; ROLLBACK;";
            cmd.ExecuteNonQuery();
        }
        catch (SqliteException ex) when ((ex.SqliteErrorCode & 0xFF) is 5 or 6) // SQLITE_BUSY, SQLITE_LOCKED (and their extended codes)
        {
            throw InUse("another connection holds a lock on it", ex);
        }
        catch (SqliteException)
        {
            // Not a database at all (e.g. a stray file): nothing can be using it as one; -Force replaces it.
        }
        finally
        {
            SqliteConnection.ClearAllPools();
        }
    }

    public Task RestoreAsync(Stream dump, string dumpFormat, RestoreOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(dump);
        if (!string.Equals(dumpFormat, Format, StringComparison.OrdinalIgnoreCase))
            throw new HubDrException("DumpFormatUnsupported", HubErrorCategory.InvalidArgument,
                $"SQLite restores dumps in format 'sql' only; this backup's dump is '{dumpFormat}'.");
        return Task.Run(() => Restore(dump, options, ct), ct);
    }

    private void Restore(Stream dump, RestoreOptions? options, CancellationToken ct)
    {
        try
        {
            RestoreCore(dump, options, ct);
        }
        catch
        {
            SqliteConnection.ClearAllPools();
            if (_createdTarget)
            {
                // Nothing partial stays behind: the file this restore created goes again (the transaction was rolled back).
                foreach (string suffix in new[] { "", "-wal", "-shm", "-journal" })
                {
                    try { File.Delete(FilePath + suffix); }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
                }
            }
            throw;
        }
    }

    private void RestoreCore(Stream dump, RestoreOptions? options, CancellationToken ct)
    {
        string? dir = Path.GetDirectoryName(FilePath);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        using var c = Open(SqliteOpenMode.ReadWriteCreate);
        using (var off = c.CreateCommand()) { off.CommandText = "PRAGMA foreign_keys=OFF"; off.ExecuteNonQuery(); }
        // Deny by default everything a plain .dump script does not need (ATTACH, DETACH, side-effect PRAGMAs,
        // load_extension, other schemas, ...): a dump must never reach outside the target database.
        var guard = new RestoreAuthorizer();
        SQLitePCL.strdelegate_authorizer callback = guard.Authorize;
        SQLitePCL.raw.sqlite3_set_authorizer(c.Handle, callback, null);
        using var tx = c.BeginTransaction();
        using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandTimeout = 0;
        var input = new ProgressStream(dump, options?.BytesProgress);
        using var reader = new StreamReader(input, Utf8NoBom, detectEncodingFromByteOrderMarks: false, bufferSize: 1 << 16, leaveOpen: true);
        var splitter = new SqlScriptSplitter(reader);
        long n = 0;
        bool sawCommit = false;
        string? stmt;
        while ((stmt = splitter.Next()) != null)
        {
            if ((++n & 0x3FF) == 0) ct.ThrowIfCancellationRequested();
            if (stmt.Length <= 40)
            {
                string norm = Regex.Replace(stmt.TrimEnd(';', ' ', '\t', '\r', '\n'), @"\s+", " ").ToUpperInvariant();
                if (norm is "BEGIN" or "BEGIN TRANSACTION" or "BEGIN DEFERRED TRANSACTION") continue; // we hold our own transaction
                if (norm is "COMMIT" or "END" or "COMMIT TRANSACTION" or "END TRANSACTION") { sawCommit = true; continue; }
                if (norm.StartsWith("ROLLBACK", StringComparison.Ordinal))
                    throw new HubDrException("RestoreDumpInvalid", HubErrorCategory.InvalidData,
                        "The SQLite dump ends with ROLLBACK: the dump that produced it failed. Nothing was restored; use another backup.");
            }
            string head = stmt.Length > 80 ? stmt[..80] + "..." : stmt;
            // VACUUM (INTO 'file') is not seen by the authorizer: refused by its keyword.
            if (RestoreAuthorizer.FirstKeyword(stmt) is "VACUUM")
                throw Refused(n, head, "VACUUM");
            try
            {
                guard.Refusal = null;
                cmd.CommandText = stmt;
                cmd.ExecuteNonQuery();
            }
            catch (SqliteException ex)
            {
                if (guard.Refusal is { } why)
                    throw Refused(n, head, why, ex);
                throw new HubDrException("RestoreStatementFailed", HubErrorCategory.InvalidData,
                    $"Restoring the SQLite dump into '{FilePath}' failed at statement {n} ({head.ReplaceLineEndings(" ")}): {ex.Message}. Nothing was committed; check that the target was empty and the dump is intact.", ex)
                { Target = FilePath };
            }
        }
        if (!string.IsNullOrWhiteSpace(splitter.Remainder) || !sawCommit)
            throw new HubDrException("RestoreDumpInvalid", HubErrorCategory.InvalidData,
                "The SQLite dump ends before its final COMMIT (truncated or damaged). Nothing was restored; use another backup.");
        tx.Commit();
        SQLitePCL.raw.sqlite3_set_authorizer(c.Handle, (SQLitePCL.strdelegate_authorizer?)null, null);
        GC.KeepAlive(callback);
    }

    private HubDrException Refused(long n, string head, string what, Exception? inner = null) =>
        new("RestoreStatementRefused", HubErrorCategory.SecurityError,
            $"The SQLite dump's statement {n} ({head.ReplaceLineEndings(" ")}) was refused: {what} reaches outside the target " +
            $"database, and a restore only ever writes '{FilePath}'. A dump made by HubDr (or sqlite3 .dump) never contains it: " +
            "the archive was made by someone else or altered before it was signed. Nothing was restored.", inner)
        { Target = FilePath };

    /// <summary>Pass-through stream that counts bytes and reports them about every MiB.</summary>
    private sealed class ProgressStream(Stream inner, IProgress<long>? progress) : Stream
    {
        private long _lastReport;
        public long Count { get; private set; }

        private void Add(int n)
        {
            Count += n;
            if (progress != null && Count - _lastReport >= 1 << 20) { _lastReport = Count; progress.Report(Count); }
        }

        public override bool CanRead => inner.CanRead;
        public override bool CanSeek => false;
        public override bool CanWrite => inner.CanWrite;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Count; set => throw new NotSupportedException(); }
        public override void Flush() { inner.Flush(); if (progress != null && _lastReport != Count) { _lastReport = Count; progress.Report(Count); } }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            int r = inner.Read(buffer);
            Add(r);
            if (r == 0 && progress != null && _lastReport != Count) { _lastReport = Count; progress.Report(Count); }
            return r;
        }
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer) { inner.Write(buffer); Add(buffer.Length); }
    }
}
