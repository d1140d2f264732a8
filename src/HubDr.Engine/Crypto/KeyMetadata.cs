using System.Text.Json;
using System.Text.Json.Serialization;

namespace HubDr.Engine.Crypto;

/// <summary>One key in the rotation history (keys.json). Public facts only: never secret material.</summary>
public sealed class KeyRecord
{
    public string Fingerprint { get; set; } = string.Empty;
    public string KeyId { get; set; } = string.Empty;
    public List<string> AllKeyIds { get; set; } = new();
    public string UserId { get; set; } = string.Empty;
    public string Algorithm { get; set; } = string.Empty;
    public DateTimeOffset Created { get; set; }
    /// <summary>When the key stopped being used for new backups; null while current.</summary>
    public DateTimeOffset? Retired { get; set; }
    /// <summary>Fingerprint of the key that replaced this one.</summary>
    public string? Successor { get; set; }
    /// <summary>Fingerprint of the key this one replaced.</summary>
    public string? Predecessor { get; set; }
    public string Purpose { get; set; } = "backup";
}

/// <summary>Key rotation history, stored as keys.json and shipped inside every archive.</summary>
public sealed class KeyMetadata
{
    private static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public int FormatVersion { get; set; } = 1;

    public List<KeyRecord> Keys { get; set; } = new();

    /// <summary>Keys that are not retired.</summary>
    [JsonIgnore]
    public IEnumerable<KeyRecord> Current => Keys.Where(k => k.Retired is null);

    public static KeyMetadata Load(string path)
    {
        if (!File.Exists(path))
            return new KeyMetadata();
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new HubDrException("KeyMetadataUnreadable", HubErrorCategory.ReadError,
                $"The key history file '{path}' could not be read: {ex.Message}", ex) { Target = path };
        }
        try
        {
            return FromJson(bytes);
        }
        catch (HubDrException e)
        {
            throw new HubDrException(e.ErrorId, e.Category, $"{e.Message} (file '{path}')", e.InnerException) { Target = path };
        }
    }

    /// <summary>Writes atomically: a temp file beside the target, then a rename over it.</summary>
    public void Save(string path)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                fs.Write(ToJson());
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw new HubDrException("KeyMetadataWriteFailed", HubErrorCategory.WriteError,
                $"The key history file '{full}' could not be written: {ex.Message}", ex) { Target = full };
        }
    }

    /// <summary>Adds a key (idempotent by fingerprint).</summary>
    public void Add(KeyInfo key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (Find(key.Fingerprint) is not null)
            return;
        Keys.Add(new KeyRecord
        {
            Fingerprint = key.Fingerprint,
            KeyId = key.KeyId,
            AllKeyIds = key.AllKeyIds.ToList(),
            UserId = key.UserIds.FirstOrDefault() ?? string.Empty,
            Algorithm = key.Algorithm,
            Created = key.Created,
        });
    }

    /// <summary>Retires <paramref name="oldFingerprint"/> at <paramref name="when"/> and links it with its successor.</summary>
    public void RecordRotation(string oldFingerprint, KeyInfo successor, DateTimeOffset when)
    {
        ArgumentNullException.ThrowIfNull(successor);
        var old = Find(oldFingerprint) ?? throw new HubDrException("KeyNotFound", HubErrorCategory.ObjectNotFound,
            $"Key {oldFingerprint} is not in the key history, so its rotation cannot be recorded. Add it first.")
        { Target = oldFingerprint };
        if (string.Equals(old.Fingerprint, successor.Fingerprint, StringComparison.OrdinalIgnoreCase))
            throw new HubDrException("KeyRotationInvalid", HubErrorCategory.InvalidArgument,
                $"Key {oldFingerprint} cannot succeed itself. Generate a new key for the rotation.");
        Add(successor);
        var next = Find(successor.Fingerprint)!;
        old.Retired = when;
        old.Successor = next.Fingerprint;
        next.Predecessor = old.Fingerprint;
        next.Retired = null;
    }

    public KeyRecord? Find(string fingerprintOrKeyId)
    {
        var h = PgpHelpers.NormalizeHex(fingerprintOrKeyId ?? string.Empty);
        return Keys.FirstOrDefault(k => k.Fingerprint == h || k.KeyId == h || k.AllKeyIds.Contains(h));
    }

    public byte[] ToJson() => Backup.HubJson.WithLf(JsonSerializer.SerializeToUtf8Bytes(this, Options));

    public static KeyMetadata FromJson(ReadOnlySpan<byte> json)
    {
        try
        {
            var m = JsonSerializer.Deserialize<KeyMetadata>(json, Options)
                ?? throw new JsonException("the document is null");
            m.Keys ??= new List<KeyRecord>();
            return m;
        }
        catch (JsonException ex)
        {
            throw new HubDrException("KeyMetadataInvalid", HubErrorCategory.InvalidData,
                $"The key history (keys.json) is not valid JSON: {ex.Message}", ex);
        }
    }
}
