using System.Data;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Npgsql;

namespace HubDr.Engine.Databases.Postgres;

/// <summary>
/// PostgreSQL engine: real pg_dump / pg_restore / psql for the data, Npgsql for pre-flight, snapshot and counts.
/// See docs/engines.md for the guarantees.
/// </summary>
public sealed partial class PostgresEngine : IDatabaseEngine
{
    public const string FormatCustom = "custom";
    public const string FormatPlain = "sql";
    public const string EntryCustom = "db/dump.pgdump";
    public const string EntryPlain = "db/dump.sql";

    private readonly DatabaseSpec _spec;
    private readonly NpgsqlConnectionStringBuilder _csb;

    public PostgresEngine(DatabaseSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        _spec = spec;
        try
        {
            _csb = new NpgsqlConnectionStringBuilder(spec.ConnectionString);
        }
        catch (ArgumentException ex)
        {
            throw new HubDrException("DatabaseConnectionStringInvalid", HubErrorCategory.InvalidArgument,
                "The PostgreSQL connection string is not valid (expected \"Host=..;Port=..;Database=..;Username=..\"): " +
                ex.Message, ex);
        }

        if (spec.Credential is not null)
        {
            if (!string.IsNullOrEmpty(spec.Credential.UserName))
            {
                _csb.Username = spec.Credential.UserName;
            }

            if (!string.IsNullOrEmpty(spec.Credential.Password))
            {
                _csb.Password = spec.Credential.Password;
            }
        }

        if (string.IsNullOrWhiteSpace(_csb.Database))
        {
            throw new HubDrException("DatabaseConnectionStringInvalid", HubErrorCategory.InvalidArgument,
                "The PostgreSQL connection string names no database. Add \"Database=<name>\".");
        }

        _csb.Pooling = false;
        _csb.CommandTimeout = 0;
        if (_csb.Timeout == 15)
        {
            _csb.Timeout = 30;
        }

        Format = NormalizeFormat(spec.DumpFormat ?? FormatCustom);
    }

    public string Name => "postgres";

    public string Database => _csb.Database!;

    /// <summary>Dump format this engine writes: "custom" or "sql" (plain).</summary>
    public string Format { get; }

    private string Host => string.IsNullOrEmpty(_csb.Host) ? "localhost" : _csb.Host!;

    private string? Password => _csb.Password;

    private static string NormalizeFormat(string format) => format.Trim().ToLowerInvariant() switch
    {
        "custom" or "c" or "pgdump" => FormatCustom,
        "plain" or "p" or "sql" => FormatPlain,
        var f => throw new HubDrException("DatabaseDumpFormatUnsupported", HubErrorCategory.InvalidArgument,
            $"PostgreSQL dump format '{f}' is not supported. Use 'custom' (default) or 'plain'."),
    };

    // ---------------------------------------------------------------- connections

    private NpgsqlConnectionStringBuilder ForDatabase(string database)
    {
        var b = new NpgsqlConnectionStringBuilder(_csb.ConnectionString) { Database = database };
        return b;
    }

    private async Task<NpgsqlConnection> OpenAsync(string database, CancellationToken ct)
    {
        var conn = new NpgsqlConnection(ForDatabase(database).ConnectionString);
        try
        {
            await conn.OpenAsync(ct).ConfigureAwait(false);
            return conn;
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            await conn.DisposeAsync().ConfigureAwait(false);
            throw MapConnectError(ex, database);
        }
    }

    private HubDrException MapConnectError(Exception ex, string database)
    {
        var where = $"{Host}:{_csb.Port}/{database} as '{_csb.Username}'";
        if (ex is PostgresException pg)
        {
            switch (pg.SqlState)
            {
                case "28P01":
                case "28000":
                    return new HubDrException("DatabaseAuthenticationFailed", HubErrorCategory.AuthenticationError,
                        $"PostgreSQL rejected the login for {where}: {pg.MessageText}. Check the user name and " +
                        "password (Credential) and pg_hba.conf on the server.", ex);
                case "3D000":
                    return new HubDrException("DatabaseNotFound", HubErrorCategory.ObjectNotFound,
                        $"PostgreSQL database '{database}' does not exist on {Host}:{_csb.Port}. Check Database= in the " +
                        "connection string.", ex);
                case "42501":
                    return new HubDrException("DatabasePermissionDenied", HubErrorCategory.PermissionDenied,
                        $"PostgreSQL denied access for {where}: {pg.MessageText}.", ex);
            }
        }

        return new HubDrException("DatabaseConnectionFailed", HubErrorCategory.ConnectionError,
            $"Could not connect to PostgreSQL at {where}: {ex.Message}. Check that the server is running and " +
            "reachable (host, port, firewall, SSL mode).", ex);
    }

    // ---------------------------------------------------------------- tools

    private string Tool(string name) => ToolProcess.Find(_spec.ToolPath, name) ?? throw ToolProcess.NotFound(_spec.ToolPath, name);

    /// <summary>Connection arguments for pg_dump/pg_restore/psql. Never contains the password.</summary>
    public IReadOnlyList<string> ConnectionArguments(string database) => new[]
    {
        "--no-password",
        "--host=" + Host,
        "--port=" + _csb.Port.ToString(CultureInfo.InvariantCulture),
        "--username=" + (_csb.Username ?? Environment.UserName),
        "--dbname=" + database,
    };

    private (Dictionary<string, string?> Env, SecretFile? PassFile) ToolEnvironment()
    {
        var env = new Dictionary<string, string?>
        {
            // never let an inherited PGPASSWORD/PGSERVICE bypass what the operator configured
            ["PGPASSWORD"] = null,
            ["PGSERVICE"] = null,
            ["PGAPPNAME"] = "hubdr",
            ["PGCONNECT_TIMEOUT"] = _csb.Timeout.ToString(CultureInfo.InvariantCulture),
            ["PGSSLMODE"] = _csb.SslMode switch
            {
                SslMode.Disable => "disable",
                SslMode.Allow => "allow",
                SslMode.Require => "require",
                SslMode.VerifyCA => "verify-ca",
                SslMode.VerifyFull => "verify-full",
                _ => "prefer",
            },
        };
        SecretFile? passFile = null;
        if (!string.IsNullOrEmpty(Password))
        {
            // pgpass line: host:port:db:user:password with ':' and '\' escaped.
            var escaped = Password.Replace("\\", "\\\\").Replace(":", "\\:");
            passFile = new SecretFile($"*:*:*:*:{escaped}\n", "pgpass");
            env["PGPASSFILE"] = passFile.FilePath;
        }
        else
        {
            env["PGPASSFILE"] = null;
        }

        return (env, passFile);
    }

    private IReadOnlyList<string> Secrets => string.IsNullOrEmpty(Password) ? Array.Empty<string>() : new[] { Password! };

    [GeneratedRegex(@"\)\s+(\d+)(?:\.(\d+))?")]
    private static partial Regex ToolVersionRegex();

    /// <summary>Returns (major, full text) of a tool's --version output.</summary>
    public static async Task<(int Major, string Text)> ToolVersionAsync(string tool, CancellationToken ct)
    {
        var text = await ToolProcess.RunForOutputAsync(tool, new[] { "--version" }, ct).ConfigureAwait(false);
        var m = ToolVersionRegex().Match(text);
        if (!m.Success)
        {
            throw new HubDrException("DatabaseToolFailed", HubErrorCategory.NotInstalled,
                $"Could not read the version of '{tool}' (got '{text}').");
        }

        return (int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), text);
    }

    // ---------------------------------------------------------------- preflight

    public async Task<DatabaseInfo> PreflightAsync(CancellationToken ct)
    {
        var (info, _, _) = await PreflightCoreAsync(ct).ConfigureAwait(false);
        return info;
    }

    private async Task<(DatabaseInfo Info, string ToolVersion, string PgDump)> PreflightCoreAsync(CancellationToken ct)
    {
        var pgDump = Tool("pg_dump");
        await using var conn = await OpenAsync(Database, ct).ConfigureAwait(false);
        var serverVersionText = (string)(await Scalar(conn, "SHOW server_version", ct).ConfigureAwait(false))!;
        var serverNum = int.Parse((string)(await Scalar(conn, "SHOW server_version_num", ct).ConfigureAwait(false))!,
            CultureInfo.InvariantCulture);
        var serverMajor = serverNum >= 100000 ? serverNum / 10000 : serverNum / 100;

        var (toolMajor, toolText) = await ToolVersionAsync(pgDump, ct).ConfigureAwait(false);
        if (toolMajor < serverMajor)
        {
            throw new HubDrException("DatabaseToolTooOld", HubErrorCategory.NotInstalled,
                $"'{pgDump}' is version {toolMajor} but the server runs PostgreSQL {serverMajor} ({serverVersionText}); " +
                $"pg_dump cannot dump a newer server. Install postgresql-client-{serverMajor} (Debian/Ubuntu: " +
                $"apt-get install postgresql-client-{serverMajor}) or pass the folder with pg_dump {serverMajor}+ as " +
                $"ToolPath (e.g. /usr/lib/postgresql/{serverMajor}/bin).");
        }

        // Permission check: the dump must be able to read every table, view and sequence.
        var denied = new List<string>();
        await using (var cmd = new NpgsqlCommand(
            """
            SELECT format('%I.%I', n.nspname, c.relname)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r','p','v','m','S','f')
              AND n.nspname NOT IN ('pg_catalog','information_schema')
              AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
              AND NOT has_table_privilege(c.oid, 'SELECT')
            ORDER BY 1
            """, conn))
        await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                denied.Add(r.GetString(0));
            }
        }

        if (denied.Count > 0)
        {
            throw new HubDrException("DatabasePermissionDenied", HubErrorCategory.PermissionDenied,
                $"User '{_csb.Username}' cannot read {denied.Count} object(s) in '{Database}' " +
                $"({string.Join(", ", denied.Take(10))}{(denied.Count > 10 ? ", …" : "")}). Grant SELECT on them " +
                "(e.g. GRANT pg_read_all_data TO <user>) or back up as the database owner.");
        }

        return (new DatabaseInfo(Name, serverVersionText, Database), toolText, pgDump);
    }

    private static async Task<object?> Scalar(NpgsqlConnection conn, string sql, CancellationToken ct,
        NpgsqlTransaction? tx = null)
    {
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false);
    }

    private const string UserTablesSql =
        """
        SELECT n.nspname, c.relname
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r'
          AND n.nspname NOT IN ('pg_catalog','information_schema')
          AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d
                          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
        ORDER BY 1, 2
        """;

    private static async Task<List<(string Schema, string Table)>> UserTablesAsync(NpgsqlConnection conn,
        NpgsqlTransaction? tx, CancellationToken ct)
    {
        var list = new List<(string, string)>();
        await using var cmd = new NpgsqlCommand(UserTablesSql, conn, tx);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            list.Add((r.GetString(0), r.GetString(1)));
        }

        return list;
    }

    private static string Ident(string name) => "\"" + name.Replace("\"", "\"\"") + "\"";

    /// <summary>
    /// Exact count(*) per table (reads every heap page unless the visibility map allows an index-only scan). With
    /// <paramref name="reportUnreadable"/>, a table that cannot be read is listed instead of failing the whole count
    /// (its count is then missing); that needs a savepoint per table inside a transaction.
    /// </summary>
    private static async Task<(Dictionary<string, long> Counts, List<string> Unreadable)> CountAsync(NpgsqlConnection conn,
        NpgsqlTransaction? tx, IEnumerable<(string Schema, string Table)> tables, CancellationToken ct, bool reportUnreadable = false)
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        var unreadable = new List<string>();
        // JIT-compiling a count(*) costs more than it saves (~70 ms per pass over the benchmark's tables).
        await using (var jit = new NpgsqlCommand(tx is null ? "SET jit = off" : "SET LOCAL jit = off", conn, tx))
        {
            await jit.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        foreach (var (schema, table) in tables)
        {
            var sql = $"SELECT count(*) FROM ONLY {Ident(schema)}.{Ident(table)}";
            if (!reportUnreadable)
            {
                counts[$"{schema}.{table}"] = Convert.ToInt64(await Scalar(conn, sql, ct, tx).ConfigureAwait(false), CultureInfo.InvariantCulture);
                continue;
            }

            if (tx is not null)
            {
                await tx.SaveAsync("hubdr_count", ct).ConfigureAwait(false);
            }

            try
            {
                counts[$"{schema}.{table}"] = Convert.ToInt64(await Scalar(conn, sql, ct, tx).ConfigureAwait(false), CultureInfo.InvariantCulture);
            }
            catch (PostgresException ex)
            {
                unreadable.Add($"{schema}.{table}: {ex.MessageText}");
                if (tx is not null)
                {
                    await tx.RollbackAsync("hubdr_count", ct).ConfigureAwait(false);
                }
            }
        }

        return (counts, unreadable);
    }

    // ---------------------------------------------------------------- dump

    public async Task<DumpResult> DumpAsync(Stream output, IProgress<long>? bytesProgress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(output);
        var (info, toolVersion, pgDump) = await PreflightCoreAsync(ct).ConfigureAwait(false);

        // 1. A REPEATABLE READ transaction whose snapshot pg_dump shares (--snapshot): row counts and dump see
        //    exactly the same data.
        await using var conn = await OpenAsync(Database, ct).ConfigureAwait(false);
        await using var tx = await conn.BeginTransactionAsync(IsolationLevel.RepeatableRead, ct).ConfigureAwait(false);
        await using (var ro = new NpgsqlCommand("SET TRANSACTION READ ONLY", conn, tx))
        {
            await ro.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        var snapshot = (string)(await Scalar(conn, "SELECT pg_export_snapshot()", ct, tx).ConfigureAwait(false))!;
        var tables = await UserTablesAsync(conn, tx, ct).ConfigureAwait(false);

        // 2. pg_dump with the exported snapshot, stdout streamed straight into the output.
        var args = new List<string>();
        args.AddRange(ConnectionArguments(Database));
        args.Add("--snapshot=" + snapshot);
        if (Format == FormatCustom)
        {
            // Uncompressed custom format: the archive layer compresses (zstd) and encrypts.
            args.Add("--format=custom");
            args.Add("--compress=0");
        }
        else
        {
            // A plain script cannot drop ownership at restore time, so it is written portable.
            args.Add("--format=plain");
            args.Add("--no-owner");
            args.Add("--no-acl");
        }

        var (env, passFile) = ToolEnvironment();
        using var _ = passFile;
        using var proc = ToolProcess.Start(pgDump, args, env, redirectStdin: false, Secrets);
        Dictionary<string, long> counts;
        long bytes;
        try
        {
            var copy = ToolProcess.CopyAsync(proc.StandardOutput, output, bytesProgress, null, ct);
            var count = CountAsync(conn, tx, tables, ct);
            try
            {
                counts = (await count.ConfigureAwait(false)).Counts;
            }
            catch
            {
                proc.Kill();
                try
                {
                    await copy.ConfigureAwait(false);
                }
                catch
                {
                    // the count failure is the interesting one
                }

                throw;
            }

            bytes = await copy.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            proc.Kill();
            throw;
        }
        catch (Exception ex) when (ex is IOException or NpgsqlException)
        {
            proc.Kill();
            await proc.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            throw DumpFailed($"the dump stream failed ({ex.Message})", proc, ex);
        }

        var code = await proc.WaitForExitAsync(ct).ConfigureAwait(false);
        if (code != 0 || proc.WasKilled)
        {
            throw DumpFailed($"pg_dump exited with code {code}", proc, null);
        }

        await tx.CommitAsync(ct).ConfigureAwait(false);

        return new DumpResult
        {
            Engine = Name,
            ServerVersion = info.ServerVersion,
            Database = Database,
            Format = Format,
            EntryName = Format == FormatCustom ? EntryCustom : EntryPlain,
            RowCounts = counts,
            Details = new Dictionary<string, string>
            {
                ["tool"] = toolVersion,
                ["snapshot"] = snapshot,
                ["bytes"] = bytes.ToString(CultureInfo.InvariantCulture),
                ["consistency"] = "row counts taken in the exported REPEATABLE READ snapshot pg_dump used (--snapshot)",
                ["owner"] = Format == FormatCustom ? "kept in archive; restore uses --no-owner --no-acl by default"
                    : "plain dump written with --no-owner --no-acl",
            },
        };
    }

    private HubDrException DumpFailed(string what, ToolProcess proc, Exception? inner)
    {
        var stderr = proc.StandardErrorText;
        return new HubDrException("DatabaseDumpFailed", HubErrorCategory.ReadError,
            $"Dumping PostgreSQL database '{Database}' on {Host}:{_csb.Port} failed: {what}." +
            (stderr.Length > 0 ? $" pg_dump said: {stderr}" : "") +
            " The partial output is unusable and must be discarded; check the server log and connectivity, then run the backup again.", inner);
    }

    // ---------------------------------------------------------------- restore side

    private const string MaintenanceDatabase = "postgres";

    private async Task<bool> DatabaseExistsAsync(NpgsqlConnection maint, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT 1 FROM pg_database WHERE datname = @n", maint);
        cmd.Parameters.AddWithValue("n", Database);
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is not null;
    }

    public async Task<bool> TargetIsEmptyAsync(CancellationToken ct)
    {
        await using (var maint = await OpenAsync(MaintenanceDatabase, ct).ConfigureAwait(false))
        {
            if (!await DatabaseExistsAsync(maint, ct).ConfigureAwait(false))
            {
                return true;
            }
        }

        await using var conn = await OpenAsync(Database, ct).ConfigureAwait(false);
        var n = await Scalar(conn,
            """
            SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE c.relkind IN ('r','p','v','m','S','f')
                      AND n.nspname NOT IN ('pg_catalog','information_schema')
                      AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%')
                 + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                    WHERE n.nspname NOT IN ('pg_catalog','information_schema')
                      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                                      AND d.objid = p.oid AND d.deptype = 'e'))
            """, ct).ConfigureAwait(false);
        return Convert.ToInt64(n, CultureInfo.InvariantCulture) == 0;
    }

    public async Task DropTargetAsync(CancellationToken ct)
    {
        await using var maint = await OpenAsync(MaintenanceDatabase, ct).ConfigureAwait(false);
        if (await DatabaseExistsAsync(maint, ct).ConfigureAwait(false))
        {
            await Exec(maint, $"DROP DATABASE {Ident(Database)} WITH (FORCE)", ct).ConfigureAwait(false);
        }
    }

    public async Task PrepareTargetAsync(bool force, CancellationToken ct)
    {
        await using var maint = await OpenAsync(MaintenanceDatabase, ct).ConfigureAwait(false);
        if (await DatabaseExistsAsync(maint, ct).ConfigureAwait(false))
        {
            if (await TargetIsEmptyAsync(ct).ConfigureAwait(false))
            {
                return;
            }

            if (!force)
            {
                throw new HubDrException("RestoreTargetNotEmpty", HubErrorCategory.ResourceExists,
                    $"PostgreSQL database '{Database}' on {Host}:{_csb.Port} already contains tables or functions. " +
                    "Restore into an empty or new database, or use -Force to drop and recreate it.")
                { Target = Database };
            }

            var serverNum = int.Parse((string)(await Scalar(maint, "SHOW server_version_num", ct).ConfigureAwait(false))!,
                CultureInfo.InvariantCulture);
            if (serverNum >= 130000)
            {
                await Exec(maint, $"DROP DATABASE {Ident(Database)} WITH (FORCE)", ct).ConfigureAwait(false);
            }
            else
            {
                await using (var term = new NpgsqlCommand(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = @n AND pid <> pg_backend_pid()",
                    maint))
                {
                    term.Parameters.AddWithValue("n", Database);
                    await term.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                await Exec(maint, $"DROP DATABASE {Ident(Database)}", ct).ConfigureAwait(false);
            }
        }

        await Exec(maint, $"CREATE DATABASE {Ident(Database)} TEMPLATE template0", ct).ConfigureAwait(false);
    }

    private static async Task Exec(NpgsqlConnection conn, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Restores from a stream. Custom format goes through pg_restore reading stdin; pg_restore -j needs a seekable
    /// file, and HubDr never writes a plaintext dump to disk, so restores always run with one job (Jobs is recorded
    /// but not used). Plain format goes through psql -v ON_ERROR_STOP=1 -X.
    /// </summary>
    public async Task RestoreAsync(Stream dump, string dumpFormat, RestoreOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(dump);
        ArgumentNullException.ThrowIfNull(options);
        var format = NormalizeFormat(dumpFormat);
        string tool;
        var args = new List<string>();
        if (format == FormatCustom)
        {
            tool = Tool("pg_restore");
            args.AddRange(ConnectionArguments(Database));
            args.Add("--exit-on-error");
            args.Add("--single-transaction");
            if (options.NoOwner)
            {
                args.Add("--no-owner");
                args.Add("--no-acl");
            }
        }
        else
        {
            tool = Tool("psql");
            args.AddRange(ConnectionArguments(Database));
            args.AddRange(new[] { "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction" });
        }

        var (env, passFile) = ToolEnvironment();
        using var _ = passFile;
        using var proc = ToolProcess.Start(tool, args, env, redirectStdin: true, Secrets);
        var (code, feedError) = await proc.FeedAsync(dump, options.BytesProgress, ct).ConfigureAwait(false);

        if (code != 0 || feedError is not null)
        {
            var stderr = proc.StandardErrorText;
            throw new HubDrException("DatabaseRestoreFailed", HubErrorCategory.WriteError,
                $"Restoring into PostgreSQL database '{Database}' on {Host}:{_csb.Port} with {Path.GetFileName(tool)} " +
                $"failed (exit code {code}{(feedError is not null ? ", input closed early" : "")})." +
                (stderr.Length > 0 ? $" {Path.GetFileName(tool)} said: {stderr}" : "") +
                " The restore ran in a single transaction, so the target was left unchanged; fix the cause and " +
                "restore again (use -Force if the target is no longer empty).", feedError);
        }
    }

    public async Task<IReadOnlyDictionary<string, long>> CountRowsAsync(CancellationToken ct)
    {
        await using var conn = await OpenAsync(Database, ct).ConfigureAwait(false);
        await using var tx = await conn.BeginTransactionAsync(IsolationLevel.RepeatableRead, ct).ConfigureAwait(false);
        var tables = await UserTablesAsync(conn, tx, ct).ConfigureAwait(false);
        // After a restore there is no visibility map yet, so each count(*) reads every heap page of its table: that
        // read is also the integrity check's readability test, which therefore need not read the tables again.
        var (counts, unreadable) = await CountAsync(conn, tx, tables, ct, reportUnreadable: true).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        _unreadableSeenByCount = unreadable;
        return counts;
    }

    /// <summary>Set by <see cref="CountRowsAsync"/>: every table's heap was read then, and these could not be.</summary>
    private List<string>? _unreadableSeenByCount;

    public async Task<IReadOnlyList<string>> CheckIntegrityAsync(CancellationToken ct)
    {
        var problems = new List<string>();
        await using var conn = await OpenAsync(Database, ct).ConfigureAwait(false);
        if (_unreadableSeenByCount is { } unreadable)
        {
            problems.AddRange(unreadable);
        }
        else
        {
            var tables = await UserTablesAsync(conn, null, ct).ConfigureAwait(false);
            var (_, failed) = await CountAsync(conn, null, tables, ct, reportUnreadable: true).ConfigureAwait(false);
            problems.AddRange(failed);
        }

        // Every foreign key and check constraint must hold (NOT VALID ones are skipped by PostgreSQL itself).
        await using (var cmd = new NpgsqlCommand(
            "SELECT conname, conrelid::regclass::text FROM pg_constraint WHERE NOT convalidated", conn))
        await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                problems.Add($"{r.GetString(1)}: constraint {r.GetString(0)} is not validated");
            }
        }

        return problems;
    }
}
