namespace HubDr.Engine.Databases;

public static class DatabaseEngineFactory
{
    public static IDatabaseEngine Create(DatabaseSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return Normalize(spec.Engine) switch
        {
            "sqlite" => new Sqlite.SqliteEngine(spec),
            "postgres" => new Postgres.PostgresEngine(spec),
            "mysql" => new MySql.MySqlEngine(spec),
            var other => throw new HubDrException("DatabaseEngineUnsupported", HubErrorCategory.InvalidArgument,
                $"Database engine '{other}' is not supported. Use sqlite, postgres or mysql."),
        };
    }

    public static string Normalize(string? engine) => (engine ?? "").Trim().ToLowerInvariant() switch
    {
        "postgresql" or "pg" or "postgres" => "postgres",
        "mariadb" or "mysql" => "mysql",
        "sqlite" or "sqlite3" => "sqlite",
        var e => e,
    };
}
