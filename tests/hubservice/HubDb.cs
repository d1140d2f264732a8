using System.Data;
using System.Data.Common;
using Microsoft.Data.Sqlite;
using MySqlConnector;
using Npgsql;

namespace HubService;

public enum DbEngine { Sqlite, Postgres, MySql }

/// <summary>Opens connections to the hub database and hides the few SQL differences between engines.</summary>
public sealed class HubDb
{
    private readonly string _connectionString;

    private HubDb(DbEngine engine, string connectionString)
    {
        Engine = engine;
        _connectionString = connectionString;
    }

    public DbEngine Engine { get; }

    public string EngineName => Engine switch
    {
        DbEngine.Sqlite => "sqlite",
        DbEngine.Postgres => "postgres",
        _ => "mysql",
    };

    public static DbEngine ParseEngine(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        "sqlite" => DbEngine.Sqlite,
        "postgres" or "postgresql" or "pg" => DbEngine.Postgres,
        "mysql" or "mariadb" => DbEngine.MySql,
        _ => throw new ArgumentException($"unknown --engine '{value}'; use sqlite, postgres or mysql"),
    };

    /// <summary>
    /// Builds the connection string. A password is accepted only from HUBSVC_DB_PASSWORD, never from the
    /// command line (argv is visible to every local user through /proc and ps).
    /// </summary>
    public static HubDb Create(DbEngine engine, string connection, string? password)
    {
        switch (engine)
        {
            case DbEngine.Sqlite:
            {
                var b = new SqliteConnectionStringBuilder(connection);
                if (!string.IsNullOrEmpty(b.Password))
                    throw new ArgumentException("--connection must not contain a password; set HUBSVC_DB_PASSWORD instead");
                if (!string.IsNullOrEmpty(password))
                    HubLog.Warn("HUBSVC_DB_PASSWORD is ignored for the sqlite engine");
                b.ForeignKeys = true;
                if (b.Mode == SqliteOpenMode.ReadWriteCreate) b.Mode = SqliteOpenMode.ReadWrite; // never create an empty hub db by accident
                return new HubDb(engine, b.ConnectionString);
            }
            case DbEngine.Postgres:
            {
                var b = new NpgsqlConnectionStringBuilder(connection);
                if (!string.IsNullOrEmpty(b.Password))
                    throw new ArgumentException("--connection must not contain a password; set HUBSVC_DB_PASSWORD instead");
                if (!string.IsNullOrEmpty(password)) b.Password = password;
                return new HubDb(engine, b.ConnectionString);
            }
            default:
            {
                var b = new MySqlConnectionStringBuilder(connection);
                if (!string.IsNullOrEmpty(b.Password))
                    throw new ArgumentException("--connection must not contain a password; set HUBSVC_DB_PASSWORD instead");
                if (!string.IsNullOrEmpty(password)) b.Password = password;
                return new HubDb(engine, b.ConnectionString);
            }
        }
    }

    public async Task<DbConnection> OpenAsync(CancellationToken ct)
    {
        DbConnection c = Engine switch
        {
            DbEngine.Sqlite => new SqliteConnection(_connectionString),
            DbEngine.Postgres => new NpgsqlConnection(_connectionString),
            _ => new MySqlConnection(_connectionString),
        };
        try
        {
            await c.OpenAsync(ct);
            return c;
        }
        catch
        {
            await c.DisposeAsync();
            throw;
        }
    }

    /// <summary>SQL expression that turns a text parameter into the engine's JSON type.</summary>
    public string JsonParam(string name) => Engine == DbEngine.Postgres ? $"CAST({name} AS jsonb)" : name;

    /// <summary>Appended to an INSERT to get the new id back (MySQL uses LAST_INSERT_ID instead).</summary>
    public async Task<long> InsertReturningIdAsync(DbConnection c, DbTransaction? tx, string insertSql, CancellationToken ct, params (string Name, object? Value)[] ps)
    {
        if (Engine == DbEngine.MySql)
        {
            await using var cmd = Command(c, tx, insertSql + "; SELECT LAST_INSERT_ID();", ps);
            return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct));
        }
        await using var cmd2 = Command(c, tx, insertSql + " RETURNING id", ps);
        return Convert.ToInt64(await cmd2.ExecuteScalarAsync(ct));
    }

    public static DbCommand Command(DbConnection c, DbTransaction? tx, string sql, params (string Name, object? Value)[] ps)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        foreach (var (name, value) in ps)
        {
            var p = cmd.CreateParameter();
            p.ParameterName = name;
            p.Value = value ?? DBNull.Value;
            cmd.Parameters.Add(p);
        }
        return cmd;
    }

    /// <summary>Every table and column the service uses; a missing one fails the schema check.</summary>
    private static readonly string[] SchemaProbes =
    [
        "SELECT id, username, password_hash, created_at FROM users WHERE 1 = 0",
        "SELECT token_hash, user_id, created_at, expires_at_unix FROM sessions WHERE 1 = 0",
        "SELECT id, name, version, installed_at, manifest FROM modules WHERE 1 = 0",
        "SELECT id, owner_user_id, balance_cents FROM accounts WHERE 1 = 0",
        "SELECT id, from_account, to_account, amount_cents, created_at FROM transactions WHERE 1 = 0",
    ];

    /// <summary>Returns null when the database answers and the schema is complete, else the reason.</summary>
    public async Task<string?> CheckAsync(CancellationToken ct)
    {
        DbConnection c;
        try
        {
            c = await OpenAsync(ct);
        }
        catch (Exception e) when (e is DbException or InvalidOperationException or ArgumentException or TimeoutException)
        {
            return $"database unreachable: {e.Message}";
        }
        await using (c)
        {
            foreach (var probe in SchemaProbes)
            {
                try
                {
                    await using var cmd = Command(c, null, probe);
                    await using var r = await cmd.ExecuteReaderAsync(ct);
                }
                catch (DbException e)
                {
                    return $"schema check failed: {e.Message}";
                }
            }
        }
        return null;
    }

    public static string FormatTimestamp(object value) => value switch
    {
        DateTime dt => DateTime.SpecifyKind(dt, dt.Kind == DateTimeKind.Unspecified ? DateTimeKind.Utc : dt.Kind).ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ss.fffZ"),
        DateTimeOffset dto => dto.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ"),
        string s when DateTime.TryParse(s, System.Globalization.CultureInfo.InvariantCulture,
            System.Globalization.DateTimeStyles.AssumeUniversal | System.Globalization.DateTimeStyles.AdjustToUniversal, out var parsed)
            => parsed.ToString("yyyy-MM-ddTHH:mm:ss.fffZ"),
        _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };
}
