using System.Globalization;
using Npgsql;

namespace HubDr.Engine.Databases.Postgres.Pitr;

/// <summary>What the pre-flight learned about the source server.</summary>
public sealed class PitrServerInfo
{
    public required string ServerVersion { get; init; }
    public required int ServerVersionNum { get; init; }
    public required string SystemId { get; init; }
    public required string WalLevel { get; init; }
    public required int MaxWalSenders { get; init; }
    public required long SegmentSize { get; init; }
    public required uint Timeline { get; init; }

    /// <summary>max_slot_wal_keep_size in MB; -1 = unlimited (a stopped archiver can fill the disk).</summary>
    public required long MaxSlotWalKeepSizeMb { get; init; }

    public bool? SlotExists { get; init; }
    public bool? SlotActive { get; init; }
    public string? SlotRestartLsn { get; init; }
    public IReadOnlyList<string> ExtraTablespaces { get; init; } = [];
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>
/// Checks a source server before WAL archiving or a base backup, with a typed error and the fix for each problem:
/// wal_level, max_wal_senders, the REPLICATION attribute, pg_hba (by opening a replication connection), the slot being
/// in use, extra tablespaces (base backups), and a warning when max_slot_wal_keep_size is unlimited.
/// </summary>
public static class PitrPreflight
{
    public const int MinimumServerVersionNum = 150000;

    /// <summary>hubdr_&lt;hub&gt; with '-' and '.' as '_' (slot names allow a-z, 0-9 and '_', up to 63 characters).</summary>
    public static string DefaultSlotName(string hub)
    {
        var name = "hubdr_" + new string(hub.Select(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) ? c : '_').ToArray());
        return name.Length > 63 ? name[..63] : name;
    }

    public static void ValidateSlotName(string slot)
    {
        if (slot.Length is 0 or > 63 || !slot.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '_'))
        {
            throw new HubDrException("ReplicationSlotNameInvalid", HubErrorCategory.InvalidArgument,
                $"'{slot}' is not a valid replication slot name: use 1-63 lower-case letters, digits and '_'.") { Target = slot };
        }
    }

    public static async Task<PitrServerInfo> CheckAsync(PitrConnection conn, string? slotName, bool forBaseBackup, IOperationLog log, CancellationToken ct)
    {
        await using var db = await conn.OpenAsync(ct).ConfigureAwait(false);
        async Task<string> Show(string name)
        {
            await using var cmd = new NpgsqlCommand("SELECT current_setting(@n)", db);
            cmd.Parameters.AddWithValue("n", name);
            return (string)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
        }

        var versionNum = int.Parse(await Show("server_version_num").ConfigureAwait(false), CultureInfo.InvariantCulture);
        var version = await Show("server_version").ConfigureAwait(false);
        if (versionNum < MinimumServerVersionNum)
        {
            throw new HubDrException("PitrServerTooOld", HubErrorCategory.NotInstalled,
                $"PostgreSQL {version} at {conn.Host}:{conn.Port} is too old for HubDr's WAL archiving and base backups, which need " +
                "PostgreSQL 15 or newer (READ_REPLICATION_SLOT, backup manifests in the base backup stream). Use logical backups (New-HubBackup).");
        }

        var walLevel = await Show("wal_level").ConfigureAwait(false);
        if (walLevel is not ("replica" or "logical"))
        {
            throw new HubDrException("WalLevelInsufficient", HubErrorCategory.InvalidOperation,
                $"wal_level is '{walLevel}' on {conn.Host}:{conn.Port}; continuous archiving and base backups need 'replica' (the default) " +
                "or 'logical'. Set wal_level = replica in postgresql.conf (ALTER SYSTEM SET wal_level = 'replica') and restart PostgreSQL.");
        }

        var senders = int.Parse(await Show("max_wal_senders").ConfigureAwait(false), CultureInfo.InvariantCulture);
        if (senders == 0)
        {
            throw new HubDrException("WalSendersDisabled", HubErrorCategory.InvalidOperation,
                $"max_wal_senders is 0 on {conn.Host}:{conn.Port}, so no replication connection (archiver or base backup) is possible. " +
                "Set max_wal_senders = 10 (the default) and restart PostgreSQL.");
        }

        await using (var cmd = new NpgsqlCommand("SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user", db))
        {
            if (await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is not true)
            {
                throw new HubDrException("ReplicationPermissionDenied", HubErrorCategory.PermissionDenied,
                    $"User '{conn.User}' has no REPLICATION attribute on {conn.Host}:{conn.Port}. Run ALTER ROLE {conn.User} REPLICATION " +
                    "(or create a dedicated role: CREATE ROLE hubdr_archiver LOGIN REPLICATION PASSWORD '…').");
            }
        }

        var keep = long.Parse((await Show("max_slot_wal_keep_size").ConfigureAwait(false)).Replace("MB", "", StringComparison.Ordinal), CultureInfo.InvariantCulture);
        var segSize = Wal.ParseSegmentSize(await Show("wal_segment_size").ConfigureAwait(false));
        string systemId;
        uint timeline;
        await using (var cmd = new NpgsqlCommand("SELECT system_identifier::text, timeline_id FROM pg_control_system(), pg_control_checkpoint()", db))
        await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            await r.ReadAsync(ct).ConfigureAwait(false);
            systemId = r.GetString(0);
            timeline = (uint)r.GetInt32(1);
        }

        var warnings = new List<string>();
        if (keep < 0)
        {
            warnings.Add($"max_slot_wal_keep_size is -1 (unlimited) on {conn.Host}:{conn.Port}: while the archiver is stopped or the store " +
                "is down, the replication slot keeps every WAL segment in pg_wal until the disk is full. Set a limit above the " +
                "longest outage you accept (e.g. ALTER SYSTEM SET max_slot_wal_keep_size = '20GB'; SELECT pg_reload_conf()); " +
                "beyond it the slot is invalidated and the archive gets a gap instead of the database stopping.");
        }

        bool? slotExists = null, slotActive = null;
        string? restart = null;
        if (slotName is not null)
        {
            await using var cmd = new NpgsqlCommand("SELECT active, restart_lsn::text, slot_type, wal_status FROM pg_replication_slots WHERE slot_name = @s", db);
            cmd.Parameters.AddWithValue("s", slotName);
            await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            slotExists = await r.ReadAsync(ct).ConfigureAwait(false);
            if (slotExists == true)
            {
                slotActive = r.GetBoolean(0);
                restart = r.IsDBNull(1) ? null : r.GetString(1);
                var type = r.GetString(2);
                var walStatus = r.IsDBNull(3) ? null : r.GetString(3);
                if (type != "physical")
                {
                    throw new HubDrException("ReplicationSlotInvalid", HubErrorCategory.InvalidOperation,
                        $"Replication slot '{slotName}' on {conn.Host}:{conn.Port} is a {type} slot; the archiver needs a physical one. Drop it or choose another slot name.");
                }

                if (walStatus == "lost")
                {
                    throw new HubDrException("ReplicationSlotLost", HubErrorCategory.InvalidOperation,
                        $"Replication slot '{slotName}' on {conn.Host}:{conn.Port} was invalidated (wal_status 'lost', max_slot_wal_keep_size exceeded): " +
                        "WAL the archive needed was removed, so the archive has a gap. Drop the slot (SELECT pg_drop_replication_slot('" + slotName + "')), " +
                        "start the archiver again and take a new base backup right away.");
                }
            }
        }

        if (slotActive == true && !forBaseBackup)
        {
            throw new HubDrException("ReplicationSlotInUse", HubErrorCategory.ResourceUnavailable,
                $"Replication slot '{slotName}' on {conn.Host}:{conn.Port} is in use: another archiver for this hub is streaming. " +
                "Only one archiver per hub may run; stop the other one first.");
        }

        var tablespaces = new List<string>();
        await using (var cmd = new NpgsqlCommand("SELECT spcname FROM pg_tablespace WHERE spcname NOT IN ('pg_default','pg_global') ORDER BY 1", db))
        await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                tablespaces.Add(r.GetString(0));
            }
        }

        if (forBaseBackup && tablespaces.Count > 0)
        {
            throw new HubDrException("BaseBackupTablespacesUnsupported", HubErrorCategory.InvalidOperation,
                $"The cluster at {conn.Host}:{conn.Port} has tablespaces outside the data directory ({string.Join(", ", tablespaces)}). " +
                "pg_basebackup can stream only a single-tablespace cluster to standard output, which HubDr needs to encrypt the " +
                "base backup without writing it to disk. Move those objects to pg_default (ALTER TABLE … SET TABLESPACE pg_default) " +
                "and drop the tablespaces, or use logical backups (New-HubBackup) for this cluster. See docs/pitr.md, \"Limits\".");
        }

        // pg_hba.conf and the REPLICATION attribute as the server really applies them: one replication connection.
        await using (var repl = new Npgsql.Replication.PhysicalReplicationConnection(conn.ReplicationConnectionString))
        {
            try
            {
                await repl.Open(ct).ConfigureAwait(false);
                _ = await repl.IdentifySystem(ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException or IOException)
            {
                throw conn.MapError(ex, "open a replication connection to");
            }
        }

        foreach (var w in warnings)
        {
            log.Warning(w);
        }

        return new PitrServerInfo
        {
            ServerVersion = version,
            ServerVersionNum = versionNum,
            SystemId = systemId,
            WalLevel = walLevel,
            MaxWalSenders = senders,
            SegmentSize = segSize,
            Timeline = timeline,
            MaxSlotWalKeepSizeMb = keep,
            SlotExists = slotExists,
            SlotActive = slotActive,
            SlotRestartLsn = restart,
            ExtraTablespaces = tablespaces,
            Warnings = warnings,
        };
    }
}
