using HubDr.Engine.Backup;
using HubDr.Engine.Crypto;

namespace HubDr.Engine.RestoreTest;

/// <summary>
/// Key rotation check (runbook: "test key rotation as part of restore tests"): every retained backup must still be
/// decryptable with a secret key the operator holds, and backups that depend only on retired keys are reported
/// (deleting those keys would orphan them).
/// </summary>
public sealed class KeyCoverageReport
{
    public int BackupsChecked { get; init; }

    /// <summary>Backups none of whose recipients the operator holds a secret key for.</summary>
    public IReadOnlyList<string> Undecryptable { get; init; } = [];

    /// <summary>Backup → retired key fingerprint it depends on (no current key can decrypt it).</summary>
    public IReadOnlyDictionary<string, string> DependOnRetiredKeys { get; init; } = new Dictionary<string, string>();

    public bool Passed => Undecryptable.Count == 0;

    public static KeyCoverageReport Check(IEnumerable<BackupListing> backups, OpenPgpKeySet heldSecretKeys, KeyMetadata? metadata)
    {
        var undecryptable = new List<string>();
        var retiredOnly = new Dictionary<string, string>(StringComparer.Ordinal);
        var count = 0;
        foreach (var b in backups.Where(b => b.IsComplete))
        {
            count++;
            var holders = b.Catalog!.RecipientKeyIds
                .Select(id => heldSecretKeys.FindByKeyIdOrFingerprint(id))
                .Where(k => k is not null && k.HasSecret)
                .Select(k => k!)
                .DistinctBy(k => k.Fingerprint)
                .ToList();
            if (holders.Count == 0)
            {
                undecryptable.Add(b.Hub + "/" + b.BackupId);
                continue;
            }

            if (metadata is not null)
            {
                var current = holders.Where(k => metadata.Keys.FirstOrDefault(r => string.Equals(r.Fingerprint, k.Fingerprint, StringComparison.OrdinalIgnoreCase))?.Retired is null).ToList();
                if (current.Count == 0)
                {
                    retiredOnly[b.Hub + "/" + b.BackupId] = holders[0].Fingerprint;
                }
            }
        }

        return new KeyCoverageReport { BackupsChecked = count, Undecryptable = undecryptable, DependOnRetiredKeys = retiredOnly };
    }
}
