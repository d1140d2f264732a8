namespace HubDr.Engine.Backup;

/// <summary>Object names of one backup in a store. See docs/format.md (format version 1).</summary>
public static class ObjectLayout
{
    public const int FormatVersion = 1;
    public const string CatalogName = "catalog.json";
    public const string CatalogSignatureName = "catalog.json.sig";
    public const string ArchiveBaseName = "archive.tar";
    public const string ReportsFolder = "_reports";
    public const string AuditFolder = "_audit";

    /// <summary>The store marker at the store's root (its folder, bucket prefix or container prefix): HubDr wrote this store.</summary>
    public const string MarkerName = "hubdr-store.json";

    /// <summary>The lease of a running backup, in its folder; removed when the backup ends.</summary>
    public const string LeaseName = "lease.json";

    /// <summary>Hidden temp files of the local folder store (an object being written).</summary>
    public const string TempPrefix = ".hubdr-tmp-";

    private static readonly System.Text.RegularExpressions.Regex BackupIdPattern =
        new(@"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$", System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    private static readonly System.Text.RegularExpressions.Regex ArchivePattern =
        new(@"^archive\.tar(\.[a-z0-9]{1,8})?\.gpg(\.sig)?$", System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    /// <summary>True for a name HubDr gives a backup id: yyyyMMddTHHmmssZ-xxxxxx (a real date and time).</summary>
    public static bool IsBackupId(string? id) => id is not null && BackupIdPattern.IsMatch(id) && TryParseBackupId(id, out _);

    /// <summary>True for a valid hub name (see <see cref="ValidateHub"/>), without throwing.</summary>
    public static bool IsHubName(string? hub) =>
        hub is { Length: > 0 and <= 63 } h && h[0] is not ('.' or '_' or '-') && h.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '_' or '.');

    /// <summary>
    /// True for the name of an object HubDr writes into a backup folder: the archive and its signature (any
    /// compression), the catalog record and its signature, the lease, and the local store's temp files.
    /// Anything else in a backup folder was put there by someone else, and HubDr never deletes such a folder.
    /// </summary>
    public static bool IsBackupObjectName(string name) =>
        name is CatalogName or CatalogSignatureName or LeaseName || ArchivePattern.IsMatch(name) || name.StartsWith(TempPrefix, StringComparison.Ordinal);

    public static string Folder(string hub, string backupId) => $"{hub}/{backupId}/";

    public static string ArchiveName(string compressionExtension) => $"{ArchiveBaseName}{compressionExtension}.gpg";

    public static string SignatureName(string archiveName) => archiveName + ".sig";

    /// <summary>Hub names become object-key segments: lower-case letters, digits, '-', '_' and '.', 1-63 chars, not starting with '.' or '_'.</summary>
    public static string ValidateHub(string? hub)
    {
        var h = (hub ?? "").Trim();
        if (h.Length is 0 or > 63 || h[0] is '.' or '_' or '-' || !h.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '_' or '.'))
        {
            throw new HubDrException("HubNameInvalid", HubErrorCategory.InvalidArgument,
                $"Hub name '{hub}' is invalid: use 1-63 lower-case letters, digits, '-', '_' or '.', starting with a letter or digit.") { Target = hub };
        }

        return h;
    }

    /// <summary>Backup ids sort by time: 20261126T093615Z-1a2b3c.</summary>
    public static string NewBackupId(DateTimeOffset created) =>
        created.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture) + "-" +
        Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3)).ToLowerInvariant();

    public static bool TryParseBackupId(string id, out DateTimeOffset created)
    {
        created = default;
        if (id.Length < 16)
        {
            return false;
        }

        if (DateTime.TryParseExact(id[..16], "yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture,
                System.Globalization.DateTimeStyles.AdjustToUniversal | System.Globalization.DateTimeStyles.AssumeUniversal, out var dt))
        {
            created = new DateTimeOffset(dt, TimeSpan.Zero);
            return true;
        }

        return false;
    }
}

/// <summary>First entry of the tar: what the archive is, readable before the data arrives.</summary>
public sealed class BackupHeader
{
    public int FormatVersion { get; set; } = ObjectLayout.FormatVersion;
    public string BackupId { get; set; } = "";
    public string Hub { get; set; } = "";
    public DateTimeOffset CreatedUtc { get; set; }
    public string ToolVersion { get; set; } = "";
    public string Engine { get; set; } = "";
    public string Compression { get; set; } = "";
}

/// <summary>Last entry of the tar ("manifest.json"): everything needed to check a restore.</summary>
public sealed class BackupManifest
{
    public int FormatVersion { get; set; } = ObjectLayout.FormatVersion;
    public string BackupId { get; set; } = "";
    public string Hub { get; set; } = "";
    public DateTimeOffset CreatedUtc { get; set; }
    public DateTimeOffset DumpCompletedUtc { get; set; }
    public string ToolVersion { get; set; } = "";
    public string HostName { get; set; } = "";
    public ManifestDatabase Database { get; set; } = new();
    public List<ManifestEntry> Entries { get; set; } = [];
    public List<string> RedactedNames { get; set; } = [];
    public List<string> RecipientKeyIds { get; set; } = [];
    public string? SignerFingerprint { get; set; }
}

public sealed class ManifestDatabase
{
    public string Engine { get; set; } = "";
    public string ServerVersion { get; set; } = "";
    public string Database { get; set; } = "";
    public string Format { get; set; } = "";
    public string Entry { get; set; } = "";
    public long Size { get; set; }

    /// <summary>SHA-256 of the whole reassembled dump. Written by HubDr before 0.2 only; the parts' hashes cover every
    /// byte in order, so newer writers leave it out (one SHA-256 pass less per backup) and restores check the parts.</summary>
    public string? Sha256 { get; set; }

    public List<ManifestEntry> Parts { get; set; } = [];
    public SortedDictionary<string, long> RowCounts { get; set; } = new(StringComparer.Ordinal);
    public SortedDictionary<string, string> Details { get; set; } = new(StringComparer.Ordinal);
}

public sealed class ManifestEntry
{
    public string Name { get; set; } = "";
    public long Size { get; set; }
    public string Sha256 { get; set; } = "";
    public string Kind { get; set; } = "";
}

/// <summary>
/// The public, signed catalog record ("catalog.json"), written LAST: a backup without one is incomplete by definition.
/// Contains nothing secret and nothing from inside the archive beyond counts.
/// </summary>
public sealed class CatalogRecord
{
    public int FormatVersion { get; set; } = ObjectLayout.FormatVersion;
    public string BackupId { get; set; } = "";
    public string Hub { get; set; } = "";
    public DateTimeOffset CreatedUtc { get; set; }
    public DateTimeOffset CompletedUtc { get; set; }
    public string ToolVersion { get; set; } = "";
    public string Engine { get; set; } = "";
    public string ServerVersion { get; set; } = "";
    public string Compression { get; set; } = "";
    public string Archive { get; set; } = "";
    public long ArchiveSize { get; set; }
    public string ArchiveSha256 { get; set; } = "";
    public string ArchiveSignature { get; set; } = "";
    public long DumpSize { get; set; }
    public int TableCount { get; set; }
    public long RowCount { get; set; }
    public List<string> RecipientKeyIds { get; set; } = [];
    public string SignerFingerprint { get; set; } = "";
    public DateTimeOffset? RetainUntil { get; set; }
    public List<string> Labels { get; set; } = [];
}
