namespace HubDr.Engine.Databases.Sqlite;

/// <summary>
/// sqlite3_set_authorizer callback for restores: deny by default, allow what a plain dump script (HubDr's or
/// sqlite3 .dump) needs, and only inside the "main" database. ATTACH/DETACH, CREATE TEMP …, virtual-table DDL, DROP,
/// ALTER, any PRAGMA but the few a dump sets, and load_extension / fts3_tokenizer are refused; so is any
/// object in a schema other than main.
/// </summary>
internal sealed class RestoreAuthorizer
{
    private const int Ok = 0;
    private const int Deny = 1;

    // Action codes (sqlite3.h).
    private const int CreateIndex = 1, CreateTable = 2, CreateTrigger = 7, CreateView = 8, Delete = 9, Insert = 18,
        Pragma = 19, Read = 20, Select = 21, Transaction = 22, Update = 23, Attach = 24, Detach = 25, Reindex = 27, Analyze = 28,
        Function = 31, Savepoint = 32, Recursive = 33;

    /// <summary>PRAGMAs a dump may set (all only change the target database itself).</summary>
    private static readonly HashSet<string> Pragmas = new(StringComparer.OrdinalIgnoreCase)
    {
        "foreign_keys", "writable_schema", "user_version", "application_id", "defer_foreign_keys",
    };

    private static readonly HashSet<string> DeniedFunctions = new(StringComparer.OrdinalIgnoreCase)
    {
        "load_extension", "fts3_tokenizer", "readfile", "writefile", "edit", "sqlite_dbpage",
    };

    /// <summary>Why the last denial happened (null when nothing was denied since it was reset).</summary>
    public string? Refusal { get; set; }

    public int Authorize(object userData, int action, string? p0, string? p1, string? dbName, string? trigger)
    {
        var ok = action switch
        {
            CreateIndex or CreateTable or CreateTrigger or CreateView or Insert or Update or Delete or Read or Analyze or Reindex => IsMain(dbName),
            Select or Transaction or Savepoint or Recursive => true,
            Function => p1 is null || !DeniedFunctions.Contains(p1),
            Pragma => p0 is not null && Pragmas.Contains(p0) && IsMain(dbName),
            _ => false,
        };
        if (ok)
        {
            return Ok;
        }

        Refusal ??= Describe(action, p0, p1, dbName);
        return Deny;
    }

    private static bool IsMain(string? dbName) => dbName is null || string.Equals(dbName, "main", StringComparison.OrdinalIgnoreCase);

    private static string Describe(int action, string? p0, string? p1, string? dbName) => action switch
    {
        Attach => $"ATTACH DATABASE '{p0}'",
        Detach => $"DETACH DATABASE {p0}",
        Pragma => $"PRAGMA {(dbName is null ? "" : dbName + ".")}{p0}{(p1 is null ? "" : "=" + p1)}",
        Function => $"the function {p1}()",
        _ when dbName is not null && !IsMain(dbName) => $"an object in the schema '{dbName}'",
        _ => $"an operation a dump never needs (SQLite authorizer action {action}{(p0 is null ? "" : ", " + p0)})",
    };

    /// <summary>The statement's first keyword (after whitespace and comments), upper case; "" when none.</summary>
    public static string FirstKeyword(string sql)
    {
        var i = 0;
        while (i < sql.Length)
        {
            if (char.IsWhiteSpace(sql[i]))
            {
                i++;
            }
            else if (sql[i] == '-' && i + 1 < sql.Length && sql[i + 1] == '-')
            {
                var nl = sql.IndexOf('\n', i);
                i = nl < 0 ? sql.Length : nl + 1;
            }
            else if (sql[i] == '/' && i + 1 < sql.Length && sql[i + 1] == '*')
            {
                var end = sql.IndexOf("*/", i + 2, StringComparison.Ordinal);
                i = end < 0 ? sql.Length : end + 2;
            }
            else
            {
                break;
            }
        }

        var start = i;
        while (i < sql.Length && char.IsAsciiLetter(sql[i]))
        {
            i++;
        }

        return sql[start..i].ToUpperInvariant();
    }
}
