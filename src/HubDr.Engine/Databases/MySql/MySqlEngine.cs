using System.Globalization;
using System.Text;
using MySqlConnector;

namespace HubDr.Engine.Databases.MySql;

/// <summary>
/// MySQL / MariaDB engine: real mariadb-dump (or mysqldump) and mariadb (or mysql) client for the data,
/// MySqlConnector for pre-flight and counts. Row counts are counted in the dump stream itself, so they are
/// exactly the rows the dump holds. See docs/engines.md.
/// </summary>
public sealed class MySqlEngine : IDatabaseEngine
{
    public const string FormatSql = "sql";
    public const string EntrySql = "db/dump.sql";

    private readonly DatabaseSpec _spec;
    private readonly MySqlConnectionStringBuilder _csb;

    public MySqlEngine(DatabaseSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        _spec = spec;
        try
        {
            _csb = new MySqlConnectionStringBuilder(spec.ConnectionString);
        }
        catch (ArgumentException ex)
        {
            throw new HubDrException("DatabaseConnectionStringInvalid", HubErrorCategory.InvalidArgument,
                "The MySQL/MariaDB connection string is not valid (expected \"Server=..;Port=..;Database=..;User ID=..\"): " +
                ex.Message, ex);
        }

        if (spec.Credential is not null)
        {
            if (!string.IsNullOrEmpty(spec.Credential.UserName))
            {
                _csb.UserID = spec.Credential.UserName;
            }

            if (!string.IsNullOrEmpty(spec.Credential.Password))
            {
                _csb.Password = spec.Credential.Password;
            }
        }

        if (string.IsNullOrWhiteSpace(_csb.Database))
        {
            throw new HubDrException("DatabaseConnectionStringInvalid", HubErrorCategory.InvalidArgument,
                "The MySQL/MariaDB connection string names no database. Add \"Database=<name>\".");
        }

        var format = (spec.DumpFormat ?? FormatSql).Trim().ToLowerInvariant();
        if (format is not (FormatSql or "plain"))
        {
            throw new HubDrException("DatabaseDumpFormatUnsupported", HubErrorCategory.InvalidArgument,
                $"MySQL/MariaDB dump format '{spec.DumpFormat}' is not supported. Use 'sql'.");
        }

        _csb.Pooling = false;
        _csb.DefaultCommandTimeout = 0;
        _csb.AllowUserVariables = true;
    }

    public string Name => "mysql";

    public string Database => _csb.Database;

    private string Host => string.IsNullOrEmpty(_csb.Server) ? "localhost" : _csb.Server;

    private IReadOnlyList<string> Secrets => string.IsNullOrEmpty(_csb.Password) ? Array.Empty<string>() : new[] { _csb.Password };

    // ---------------------------------------------------------------- connections

    private async Task<MySqlConnection> OpenAsync(string? database, CancellationToken ct)
    {
        var b = new MySqlConnectionStringBuilder(_csb.ConnectionString) { Database = database ?? "" };
        var conn = new MySqlConnection(b.ConnectionString);
        try
        {
            await conn.OpenAsync(ct).ConfigureAwait(false);
            return conn;
        }
        catch (MySqlException ex)
        {
            await conn.DisposeAsync().ConfigureAwait(false);
            throw MapConnectError(ex, database ?? "(none)");
        }
    }

    private HubDrException MapConnectError(MySqlException ex, string database)
    {
        var where = $"{Host}:{_csb.Port}/{database} as '{_csb.UserID}'";
        return ex.ErrorCode switch
        {
            MySqlErrorCode.AccessDenied or MySqlErrorCode.DatabaseAccessDenied =>
                new HubDrException("DatabaseAuthenticationFailed", HubErrorCategory.AuthenticationError,
                    $"MySQL/MariaDB rejected the login for {where}: {ex.Message} Check the user name, password " +
                    "(Credential) and the host part of the account ('user'@'host').", ex),
            MySqlErrorCode.UnknownDatabase =>
                new HubDrException("DatabaseNotFound", HubErrorCategory.ObjectNotFound,
                    $"MySQL/MariaDB database '{database}' does not exist on {Host}:{_csb.Port}. Check Database= in the " +
                    "connection string.", ex),
            _ => new HubDrException("DatabaseConnectionFailed", HubErrorCategory.ConnectionError,
                $"Could not connect to MySQL/MariaDB at {where}: {ex.Message} Check that the server is running and " +
                "reachable (host, port, firewall, SSL mode).", ex),
        };
    }

    private static string Ident(string name) => "`" + name.Replace("`", "``") + "`";

    // ---------------------------------------------------------------- tools

    private string Tool(params string[] names) => ToolProcess.Find(_spec.ToolPath, names) ?? throw ToolProcess.NotFound(_spec.ToolPath, names);

    /// <summary>
    /// Option file for the client tools: password only, 0600, deleted on dispose. Must be the FIRST argument
    /// (--defaults-extra-file is only honoured there).
    /// </summary>
    private SecretFile OptionFile()
    {
        var sb = new StringBuilder("[client]\n");
        if (!string.IsNullOrEmpty(_csb.Password))
        {
            var escaped = _csb.Password.Replace("\\", "\\\\").Replace("\"", "\\\"");
            sb.Append("password=\"").Append(escaped).Append("\"\n");
        }

        return new SecretFile(sb.ToString(), "my.cnf");
    }

    /// <summary>Builds a tool argument list: option file first, then connection options. Never holds the password.</summary>
    public IReadOnlyList<string> ToolArguments(string optionFilePath, IEnumerable<string> extra)
    {
        var args = new List<string>
        {
            "--defaults-extra-file=" + optionFilePath,
            "--host=" + Host,
            "--port=" + _csb.Port.ToString(CultureInfo.InvariantCulture),
            "--user=" + _csb.UserID,
            "--default-character-set=utf8mb4",
        };
        if (Host == "localhost" || Host == "127.0.0.1")
        {
            args.Add("--protocol=TCP");
        }

        args.AddRange(extra);
        return args;
    }

    /// <summary>The dump options (besides connection options) passed to mariadb-dump.</summary>
    public static IReadOnlyList<string> DumpOptions { get; } = new[]
    {
        "--single-transaction", "--routines", "--triggers", "--events", "--hex-blob", "--skip-dump-date",
        "--no-tablespaces", "--quick", "--extended-insert",
    };

    private static readonly Dictionary<string, string?> ToolEnv = new()
    {
        // never let an inherited MYSQL_PWD reach the tool
        ["MYSQL_PWD"] = null,
    };

    // ---------------------------------------------------------------- preflight

    public async Task<DatabaseInfo> PreflightAsync(CancellationToken ct)
    {
        var (info, _, _) = await PreflightCoreAsync(ct).ConfigureAwait(false);
        return info;
    }

    private async Task<(DatabaseInfo Info, string ToolVersion, string Dumper)> PreflightCoreAsync(CancellationToken ct)
    {
        var dumper = Tool("mariadb-dump", "mysqldump");
        await using var conn = await OpenAsync(Database, ct).ConfigureAwait(false);
        var version = Convert.ToString(await Scalar(conn, "SELECT VERSION()", ct).ConfigureAwait(false),
            CultureInfo.InvariantCulture) ?? "";
        var toolVersion = await ToolProcess.RunForOutputAsync(dumper, new[] { "--version" }, ct).ConfigureAwait(false);
        // Permission check: every table and view must be readable.
        var denied = new List<string>();
        var objects = new List<string>();
        await using (var cmd = new MySqlCommand(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME", conn))
        await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                objects.Add(r.GetString(0));
            }
        }

        foreach (var o in objects)
        {
            try
            {
                await Scalar(conn, $"SELECT 1 FROM {Ident(o)} LIMIT 0", ct).ConfigureAwait(false);
            }
            catch (MySqlException ex) when (ex.ErrorCode is MySqlErrorCode.TableAccessDenied
                                                or MySqlErrorCode.ColumnAccessDenied
                                                or MySqlErrorCode.DatabaseAccessDenied or MySqlErrorCode.ViewInvalid)
            {
                denied.Add(o);
            }
        }

        if (denied.Count > 0)
        {
            throw new HubDrException("DatabasePermissionDenied", HubErrorCategory.PermissionDenied,
                $"User '{_csb.UserID}' cannot read {denied.Count} object(s) in '{Database}' " +
                $"({string.Join(", ", denied.Take(10))}{(denied.Count > 10 ? ", …" : "")}). Grant SELECT, SHOW VIEW, " +
                $"TRIGGER, EVENT and LOCK TABLES on `{Database}`.* to the backup user.");
        }

        return (new DatabaseInfo(Name, version, Database), toolVersion, dumper);
    }

    private static async Task<object?> Scalar(MySqlConnection conn, string sql, CancellationToken ct)
    {
        await using var cmd = new MySqlCommand(sql, conn);
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false);
    }

    private static async Task Exec(MySqlConnection conn, string sql, CancellationToken ct)
    {
        await using var cmd = new MySqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    // ---------------------------------------------------------------- dump

    public async Task<DumpResult> DumpAsync(Stream output, IProgress<long>? bytesProgress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(output);
        var (info, toolVersion, dumper) = await PreflightCoreAsync(ct).ConfigureAwait(false);
        using var optionFile = OptionFile();
        var args = ToolArguments(optionFile.FilePath, DumpOptions.Append(Database));
        using var proc = ToolProcess.Start(dumper, args, ToolEnv, redirectStdin: false, Secrets);
        var counter = new MySqlDumpRowCounter();
        long bytes;
        try
        {
            bytes = await ToolProcess.CopyAsync(proc.StandardOutput, output, bytesProgress,
                chunk => counter.Feed(chunk.Span), ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            proc.Kill();
            throw;
        }
        catch (IOException ex)
        {
            proc.Kill();
            await proc.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            throw DumpFailed($"the dump stream failed ({ex.Message})", proc, ex);
        }

        var code = await proc.WaitForExitAsync(ct).ConfigureAwait(false);
        if (code != 0 || proc.WasKilled)
        {
            throw DumpFailed($"{Path.GetFileName(dumper)} exited with code {code}", proc, null);
        }

        return new DumpResult
        {
            Engine = Name,
            ServerVersion = info.ServerVersion,
            Database = Database,
            Format = FormatSql,
            EntryName = EntrySql,
            RowCounts = new Dictionary<string, long>(counter.Counts, StringComparer.Ordinal),
            Details = new Dictionary<string, string>
            {
                ["tool"] = toolVersion,
                ["bytes"] = bytes.ToString(CultureInfo.InvariantCulture),
                ["consistency"] = "--single-transaction (InnoDB consistent snapshot); row counts are the INSERT " +
                                  "tuples counted in the dump stream itself",
                ["definers"] = "kept in the dump (views, routines, triggers, events)",
            },
        };
    }

    private HubDrException DumpFailed(string what, ToolProcess proc, Exception? inner)
    {
        var stderr = proc.StandardErrorText;
        return new HubDrException("DatabaseDumpFailed", HubErrorCategory.ReadError,
            $"Dumping MySQL/MariaDB database '{Database}' on {Host}:{_csb.Port} failed: {what}." +
            (stderr.Length > 0 ? $" {Path.GetFileName(proc.FileName)} said: {stderr}" : "") +
            " The partial output is unusable and must be discarded; check the server log and connectivity, then run the backup again.", inner);
    }

    // ---------------------------------------------------------------- restore side

    private async Task<bool> DatabaseExistsAsync(MySqlConnection conn, CancellationToken ct)
    {
        await using var cmd = new MySqlCommand(
            "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = @n", conn);
        cmd.Parameters.AddWithValue("@n", Database);
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is not null;
    }

    public async Task<bool> TargetIsEmptyAsync(CancellationToken ct)
    {
        await using var conn = await OpenAsync(null, ct).ConfigureAwait(false);
        return await IsEmptyAsync(conn, ct).ConfigureAwait(false);
    }

    private async Task<bool> IsEmptyAsync(MySqlConnection conn, CancellationToken ct)
    {
        if (!await DatabaseExistsAsync(conn, ct).ConfigureAwait(false))
        {
            return true;
        }

        await using var cmd = new MySqlCommand(
            """
            SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = @n)
                 + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = @n)
                 + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = @n)
            """, conn);
        cmd.Parameters.AddWithValue("@n", Database);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture) == 0;
    }

    public async Task DropTargetAsync(CancellationToken ct)
    {
        await using var conn = await OpenAsync(null, ct).ConfigureAwait(false);
        await Exec(conn, $"DROP DATABASE IF EXISTS {Ident(Database)}", ct).ConfigureAwait(false);
    }

    public async Task PrepareTargetAsync(bool force, CancellationToken ct)
    {
        await using var conn = await OpenAsync(null, ct).ConfigureAwait(false);
        if (await DatabaseExistsAsync(conn, ct).ConfigureAwait(false))
        {
            if (await IsEmptyAsync(conn, ct).ConfigureAwait(false))
            {
                return;
            }

            if (!force)
            {
                throw new HubDrException("RestoreTargetNotEmpty", HubErrorCategory.ResourceExists,
                    $"MySQL/MariaDB database '{Database}' on {Host}:{_csb.Port} already contains tables, routines or " +
                    "events. Restore into an empty or new database, or use -Force to drop and recreate it.")
                { Target = Database };
            }

            await Exec(conn, $"DROP DATABASE {Ident(Database)}", ct).ConfigureAwait(false);
        }

        await Exec(conn, $"CREATE DATABASE {Ident(Database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci", ct)
            .ConfigureAwait(false);
    }

    public async Task RestoreAsync(Stream dump, string dumpFormat, RestoreOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(dump);
        ArgumentNullException.ThrowIfNull(options);
        if (!string.Equals(dumpFormat, FormatSql, StringComparison.OrdinalIgnoreCase) &&
            !string.Equals(dumpFormat, "plain", StringComparison.OrdinalIgnoreCase))
        {
            throw new HubDrException("DatabaseDumpFormatUnsupported", HubErrorCategory.InvalidData,
                $"A MySQL/MariaDB dump in format '{dumpFormat}' cannot be restored; expected 'sql'.");
        }

        var client = Tool("mariadb", "mysql");
        using var optionFile = OptionFile();
        // batch mode (stdin is not a terminal): the client stops at the first error with a non-zero exit code
        var args = ToolArguments(optionFile.FilePath, new[] { "--batch", "--silent", Database });
        using var proc = ToolProcess.Start(client, args, ToolEnv, redirectStdin: true, Secrets);
        var (code, feedError) = await proc.FeedAsync(dump, options.BytesProgress, ct).ConfigureAwait(false);

        if (code != 0 || feedError is not null)
        {
            var stderr = proc.StandardErrorText;
            throw new HubDrException("DatabaseRestoreFailed", HubErrorCategory.WriteError,
                $"Restoring into MySQL/MariaDB database '{Database}' on {Host}:{_csb.Port} with " +
                $"{Path.GetFileName(client)} failed (exit code {code}{(feedError is not null ? ", input closed early" : "")})." +
                (stderr.Length > 0 ? $" {Path.GetFileName(client)} said: {stderr}" : "") +
                " The target is partially restored; fix the cause and restore again with -Force.", feedError);
        }
    }

    private async Task<List<string>> BaseTablesAsync(MySqlConnection conn, CancellationToken ct)
    {
        var tables = new List<string>();
        await using var cmd = new MySqlCommand(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() " +
            "AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME", conn);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            tables.Add(r.GetString(0));
        }

        return tables;
    }

    public async Task<IReadOnlyDictionary<string, long>> CountRowsAsync(CancellationToken ct)
    {
        await using var conn = await OpenAsync(Database, ct).ConfigureAwait(false);
        var tables = await BaseTablesAsync(conn, ct).ConfigureAwait(false);
        await Exec(conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY", ct).ConfigureAwait(false);
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var t in tables)
        {
            counts[t] = Convert.ToInt64(await Scalar(conn, $"SELECT COUNT(*) FROM {Ident(t)}", ct).ConfigureAwait(false),
                CultureInfo.InvariantCulture);
        }

        await Exec(conn, "COMMIT", ct).ConfigureAwait(false);
        return counts;
    }

    public async Task<IReadOnlyList<string>> CheckIntegrityAsync(CancellationToken ct)
    {
        var problems = new List<string>();
        await using var conn = await OpenAsync(Database, ct).ConfigureAwait(false);
        var tables = await BaseTablesAsync(conn, ct).ConfigureAwait(false);
        foreach (var t in tables)
        {
            await using var cmd = new MySqlCommand($"CHECK TABLE {Ident(t)}", conn);
            await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                var msgType = r.GetString(2);
                var text = r.GetString(3);
                if (string.Equals(msgType, "error", StringComparison.OrdinalIgnoreCase) ||
                    (string.Equals(msgType, "status", StringComparison.OrdinalIgnoreCase) &&
                     !string.Equals(text, "OK", StringComparison.OrdinalIgnoreCase)))
                {
                    problems.Add($"{t}: {msgType}: {text}");
                }
            }
        }

        return problems;
    }
}
