using System.Net;

namespace HubDr.Engine.Databases;

/// <summary>
/// One database backend (sqlite, postgres, mysql). Dumps and restores stream; nothing is spooled to disk.
/// Adding an engine means one folder under Databases/ plus one line in <see cref="DatabaseEngineFactory"/>.
/// </summary>
public interface IDatabaseEngine
{
    /// <summary>"sqlite", "postgres" or "mysql".</summary>
    string Name { get; }

    /// <summary>
    /// Checks connectivity, permissions and tool versions before anything is written.
    /// Throws HubDrException with a clear fix on failure.
    /// </summary>
    Task<DatabaseInfo> PreflightAsync(CancellationToken ct);

    /// <summary>
    /// Writes a consistent logical dump to <paramref name="output"/> (not disposed) and returns what it saw.
    /// Row counts must come from the same snapshot as the dump.
    /// </summary>
    Task<DumpResult> DumpAsync(Stream output, IProgress<long>? bytesProgress, CancellationToken ct);

    /// <summary>True when the target holds no user tables (or does not exist yet).</summary>
    Task<bool> TargetIsEmptyAsync(CancellationToken ct);

    /// <summary>
    /// Creates the target when missing; when it is not empty and <paramref name="force"/> is false,
    /// throws "RestoreTargetNotEmpty" (ResourceExists). With force, clears it first.
    /// </summary>
    Task PrepareTargetAsync(bool force, CancellationToken ct);

    /// <summary>
    /// Removes the target database entirely (restore tests clean up their throwaway staging database).
    /// Missing target is not an error.
    /// </summary>
    Task DropTargetAsync(CancellationToken ct);

    /// <summary>Restores a dump produced by <see cref="DumpAsync"/> (format as recorded in the manifest).</summary>
    Task RestoreAsync(Stream dump, string dumpFormat, RestoreOptions options, CancellationToken ct);

    /// <summary>Exact row count per table ("schema.table" or "table").</summary>
    Task<IReadOnlyDictionary<string, long>> CountRowsAsync(CancellationToken ct);

    /// <summary>Engine integrity check (PRAGMA integrity_check, amcheck-less: readability of every table, …). Empty list = OK.</summary>
    Task<IReadOnlyList<string>> CheckIntegrityAsync(CancellationToken ct);
}

public sealed class DatabaseSpec
{
    /// <summary>"sqlite", "postgres" or "mysql" (aliases: postgresql, pg, mariadb).</summary>
    public required string Engine { get; init; }

    /// <summary>ADO.NET connection string (sqlite: "Data Source=path" or just a path). Must not contain a password when Credential is set.</summary>
    public required string ConnectionString { get; init; }

    /// <summary>User and password; the password reaches client tools only through the environment or a 0600 option file.</summary>
    public NetworkCredential? Credential { get; init; }

    /// <summary>Folder with pg_dump/pg_restore/psql or mariadb-dump/mariadb; null = PATH.</summary>
    public string? ToolPath { get; init; }

    /// <summary>Engine-specific dump format: postgres "custom" (default) or "plain"; mysql/sqlite "sql".</summary>
    public string? DumpFormat { get; init; }

    /// <summary>Parallel restore jobs (pg_restore -j).</summary>
    public int Jobs { get; init; } = 1;
}

public sealed class RestoreOptions
{
    /// <summary>Skip ownership and privileges so a clean environment without the source roles restores (postgres).</summary>
    public bool NoOwner { get; init; } = true;

    public int Jobs { get; init; } = 1;

    public IProgress<long>? BytesProgress { get; init; }
}

public sealed record DatabaseInfo(string Engine, string ServerVersion, string Database);

public sealed class DumpResult
{
    public required string Engine { get; init; }
    public required string ServerVersion { get; init; }
    public required string Database { get; init; }

    /// <summary>"sql" (plain SQL script), "custom" (pg_dump -Fc).</summary>
    public required string Format { get; init; }

    /// <summary>File name of the dump inside the archive, e.g. "db/dump.sql" or "db/dump.pgdump".</summary>
    public required string EntryName { get; init; }

    public required IReadOnlyDictionary<string, long> RowCounts { get; init; }

    /// <summary>Free-form details for the manifest (tool version, snapshot id, consistency notes).</summary>
    public IReadOnlyDictionary<string, string> Details { get; init; } = new Dictionary<string, string>();
}
