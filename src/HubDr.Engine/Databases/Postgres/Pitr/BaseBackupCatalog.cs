using System.Text.Json;
using System.Text.Json.Nodes;
using HubDr.Engine.Backup;

namespace HubDr.Engine.Databases.Postgres.Pitr;

/// <summary>
/// The PITR part of a base backup's catalog record ("pitr": {...}). Public like the rest of the catalog: positions,
/// times and identities, nothing from inside the data.
/// </summary>
public sealed class BaseBackupPitrInfo
{
    /// <summary>pg_control system identifier: WAL of another cluster can never be replayed on this backup.</summary>
    public string SystemId { get; set; } = "";

    public uint Timeline { get; set; }

    /// <summary>Where replay starts (backup_label START WAL LOCATION / manifest WAL-Ranges Start-LSN).</summary>
    public string StartLsn { get; set; } = "";

    /// <summary>Where the copy is consistent (manifest WAL-Ranges End-LSN): replay must reach it.</summary>
    public string StopLsn { get; set; } = "";

    public string? CheckpointLsn { get; set; }

    public DateTimeOffset StartUtc { get; set; }

    /// <summary>When pg_basebackup had finished (after pg_backup_stop): a point-in-time target must be after it.</summary>
    public DateTimeOffset StopUtc { get; set; }

    /// <summary>First and last WAL segment the backup needs (its WAL range), on <see cref="Timeline"/>.</summary>
    public string WalFirst { get; set; } = "";

    public string WalLast { get; set; } = "";

    public long SegmentSize { get; set; }
    public int ServerVersionNum { get; set; }
    public string BaseTarEntry { get; set; } = BaseBackupService.BaseTarEntry;
    public long BaseTarSize { get; set; }

    /// <summary>Hub whose WAL archive (&lt;hub&gt;/_wal/) holds the WAL: the same hub.</summary>
    public string WalStream { get; set; } = "postgres-wal";
}

/// <summary>
/// The catalog record of a base backup: every field of <see cref="CatalogRecord"/> (so Get-HubBackup, retention and
/// Test-HubBackupSignature read it unchanged) plus "kind": "base" and "pitr": {...}. Readers that do not know the two
/// fields ignore them (docs/format.md: additive fields).
/// </summary>
public static class BaseBackupCatalog
{
    public const string Kind = "base";

    private sealed class Extension
    {
        public string? Kind { get; set; }
        public BaseBackupPitrInfo? Pitr { get; set; }
    }

    public static byte[] Serialize(CatalogRecord record, BaseBackupPitrInfo pitr)
    {
        var node = (JsonObject)JsonSerializer.SerializeToNode(record, HubJson.Options)!;
        node["kind"] = Kind;
        node["pitr"] = JsonSerializer.SerializeToNode(pitr, HubJson.Options);
        return JsonSerializer.SerializeToUtf8Bytes(node, HubJson.Options);
    }

    /// <summary>(record, pitr) of a catalog; pitr is null for a logical backup's catalog.</summary>
    public static (CatalogRecord Record, BaseBackupPitrInfo? Pitr) Parse(ReadOnlySpan<byte> json, string what)
    {
        var record = HubJson.Deserialize<CatalogRecord>(json, what);
        var ext = HubJson.Deserialize<Extension>(json, what);
        return (record, ext.Kind == Kind ? ext.Pitr : null);
    }
}
