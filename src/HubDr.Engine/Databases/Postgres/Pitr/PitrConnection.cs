using System.Globalization;
using Npgsql;

namespace HubDr.Engine.Databases.Postgres.Pitr;

/// <summary>
/// How the PITR components reach the source server: a normal SQL connection (pre-flight, slot checks), a physical
/// replication connection (the archiver) and the client tools (pg_basebackup) with the password only in a 0600
/// PGPASSFILE. Built from the same <see cref="DatabaseSpec"/> New-HubBackup takes.
/// </summary>
public sealed class PitrConnection
{
    private readonly NpgsqlConnectionStringBuilder _csb;

    public PitrConnection(DatabaseSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Spec = spec;
        try
        {
            _csb = new NpgsqlConnectionStringBuilder(spec.ConnectionString);
        }
        catch (ArgumentException ex)
        {
            throw new HubDrException("DatabaseConnectionStringInvalid", HubErrorCategory.InvalidArgument,
                "The PostgreSQL connection string is not valid (expected \"Host=..;Port=..;Database=..;Username=..\"): " + ex.Message, ex);
        }

        if (spec.Credential is { } c)
        {
            if (!string.IsNullOrEmpty(c.UserName))
            {
                _csb.Username = c.UserName;
            }

            if (!string.IsNullOrEmpty(c.Password))
            {
                _csb.Password = c.Password;
            }
        }

        if (string.IsNullOrWhiteSpace(_csb.Database))
        {
            _csb.Database = "postgres";
        }

        _csb.Pooling = false;
        _csb.CommandTimeout = 0;
        _csb.ApplicationName = "hubdr";
    }

    public DatabaseSpec Spec { get; }

    public string Host => string.IsNullOrEmpty(_csb.Host) ? "localhost" : _csb.Host!;

    public int Port => _csb.Port;

    public string User => _csb.Username ?? Environment.UserName;

    public string Database => _csb.Database!;

    /// <summary>"host:port as 'user'" for messages (never the password).</summary>
    public string Where => $"{Host}:{Port} as '{User}'";

    public string SqlConnectionString => _csb.ConnectionString;

    /// <summary>For <see cref="Npgsql.Replication.PhysicalReplicationConnection"/> (it sets the replication mode itself).</summary>
    public string ReplicationConnectionString
    {
        get
        {
            var b = new NpgsqlConnectionStringBuilder(_csb.ConnectionString) { ApplicationName = "hubdr-wal-archiver" };
            return b.ConnectionString;
        }
    }

    private string? Password => _csb.Password;

    public IReadOnlyList<string> Secrets => string.IsNullOrEmpty(Password) ? [] : [Password!];

    public async Task<NpgsqlConnection> OpenAsync(CancellationToken ct)
    {
        var conn = new NpgsqlConnection(SqlConnectionString);
        try
        {
            await conn.OpenAsync(ct).ConfigureAwait(false);
            return conn;
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            await conn.DisposeAsync().ConfigureAwait(false);
            throw MapError(ex, "connect to");
        }
    }

    /// <summary>Typed error for a failed connection or replication command.</summary>
    public HubDrException MapError(Exception ex, string what)
    {
        if (ex is HubDrException h)
        {
            return h;
        }

        if (ex is PostgresException pg)
        {
            switch (pg.SqlState)
            {
                case "28P01":
                    return new HubDrException("DatabaseAuthenticationFailed", HubErrorCategory.AuthenticationError,
                        $"PostgreSQL rejected the login for {Where}: {pg.MessageText}. Check the user name and password.", ex);
                case "28000":
                    return new HubDrException("ReplicationNotAllowed", HubErrorCategory.PermissionDenied,
                        $"PostgreSQL refused the connection for {Where} ({pg.MessageText}). For WAL archiving and base backups " +
                        "pg_hba.conf needs a 'replication' line for this user and host, e.g. " +
                        $"'host replication {User} <archiver address>/32 scram-sha-256', then SELECT pg_reload_conf().", ex);
                case "42501":
                    return new HubDrException("ReplicationPermissionDenied", HubErrorCategory.PermissionDenied,
                        $"PostgreSQL denied {what} for {Where}: {pg.MessageText}. The user needs the REPLICATION attribute " +
                        $"(ALTER ROLE {User} REPLICATION).", ex);
                case "53300":
                    return new HubDrException("WalSendersExhausted", HubErrorCategory.ResourceUnavailable,
                        $"PostgreSQL at {Host}:{Port} has no free WAL sender ({pg.MessageText}). Raise max_wal_senders (needs a restart) " +
                        "or stop another replication client.", ex);
                case "55006":
                    return new HubDrException("ReplicationSlotInUse", HubErrorCategory.ResourceUnavailable,
                        $"{pg.MessageText}: another archiver for this hub is already streaming from {Host}:{Port}. Only one archiver " +
                        "per hub may run; stop the other one (or wait for its connection to time out).", ex);
                case "3D000":
                    return new HubDrException("DatabaseNotFound", HubErrorCategory.ObjectNotFound,
                        $"PostgreSQL database '{Database}' does not exist on {Host}:{Port}.", ex);
            }
        }

        return new HubDrException("DatabaseConnectionFailed", HubErrorCategory.ConnectionError,
            $"Could not {what} PostgreSQL at {Where}: {ex.Message}", ex);
    }

    /// <summary>Connection arguments for pg_basebackup (never the password).</summary>
    public IReadOnlyList<string> ToolConnectionArguments() =>
    [
        "--no-password",
        "--host=" + Host,
        "--port=" + Port.ToString(CultureInfo.InvariantCulture),
        "--username=" + User,
    ];

    /// <summary>Environment for a client tool: the password through a 0600 PGPASSFILE (disposed by the caller).</summary>
    public (Dictionary<string, string?> Env, SecretFile? PassFile) ToolEnvironment()
    {
        var env = new Dictionary<string, string?>
        {
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

    /// <summary>Path of a PostgreSQL client/server tool (ToolPath or PATH), or a typed DatabaseToolNotFound.</summary>
    public string Tool(string name) => FindTool(Spec.ToolPath, name);

    public static string FindTool(string? toolPath, string name) => ToolProcess.Find(toolPath, name)
        ?? throw new HubDrException("DatabaseToolNotFound", HubErrorCategory.NotInstalled,
            $"'{name}' was not found {(string.IsNullOrWhiteSpace(toolPath) ? "on PATH" : $"in '{toolPath}'")}. Install the PostgreSQL " +
            "packages of the server's major version (Debian/Ubuntu: postgresql-<major>, postgresql-client-<major>) or pass their bin folder as ToolPath " +
            "(e.g. /usr/lib/postgresql/15/bin).");
}
