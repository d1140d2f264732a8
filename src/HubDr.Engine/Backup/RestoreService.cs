using System.Diagnostics;
using HubDr.Engine.Archive;
using HubDr.Engine.Compression;
using HubDr.Engine.Crypto;
using HubDr.Engine.Databases;
using HubDr.Engine.IO;
using HubDr.Engine.Sources;
using HubDr.Engine.Stores;

namespace HubDr.Engine.Backup;

public sealed class RestoreRequest
{
    public required StoreSpec Store { get; init; }
    public required string Hub { get; init; }
    public required string BackupId { get; init; }
    public required OpenPgpKeySet TrustedSigners { get; init; }

    /// <summary>Current and retired secret keys; the one the backup was encrypted to is picked by key id.</summary>
    public required OpenPgpKeySet SecretKeys { get; init; }

    /// <summary>Passphrase for a secret key, by its primary fingerprint.</summary>
    public required Func<string, char[]?> PassphraseFor { get; init; }

    /// <summary>Database to restore into; null restores files only.</summary>
    public DatabaseSpec? Database { get; init; }

    /// <summary>Folder that receives config/, manifests/, keys/ and the manifest; null skips files.</summary>
    public string? FilesTarget { get; init; }

    public bool Force { get; init; }

    /// <summary>E.g. "hub-cli import-config --input {path}" ({path} = the files target folder).</summary>
    public string? ImportCommand { get; init; }

    public RestoreOptions Options { get; init; } = new();
}

public sealed record RowCountCheck(string Table, long Expected, long Actual)
{
    public bool Matches => Expected == Actual;
}

public sealed class RestoreOutcome
{
    public required VerifyResult Verification { get; init; }
    public required BackupManifest Manifest { get; init; }
    public required string DecryptedWithKey { get; init; }
    public IReadOnlyList<string> FilesRestored { get; init; } = [];
    public IReadOnlyList<RowCountCheck> RowCounts { get; init; } = [];
    public IReadOnlyList<string> IntegrityProblems { get; init; } = [];
    public bool RowCountsMatch => RowCounts.All(r => r.Matches);
    public string? DatabaseTarget { get; init; }
    public string? FilesTarget { get; init; }
    public TimeSpan VerifyDuration { get; init; }
    public TimeSpan RestoreDuration { get; init; }
    public TimeSpan CheckDuration { get; init; }
    public TimeSpan Duration { get; init; }
}

/// <summary>
/// Restore-HubBackup: refuse non-empty targets, verify the signature over the stored bytes (pass 1), then stream
/// the same bytes again through SHA-256 (must equal the verified hash) → decrypt (MDC checked) → decompress → tar
/// → database and files (pass 2), then compare row counts with the manifest and run integrity checks.
/// </summary>
public static class RestoreService
{
    public static async Task<RestoreOutcome> RestoreAsync(RestoreRequest request, IOperationLog log, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        // Where child processes are not allowed (the Azure Automation sandbox), refuse before any work.
        Processes.ProcessStarter.EnsureAllowed(ProcessNeeds(request.Database, request.ImportCommand, request.FilesTarget));
        var hub = ObjectLayout.ValidateHub(request.Hub);
        PrivateFiles.CleanStaleLeftovers(); // secret files a killed run left behind (docs/engines.md, "Secret files")
        await using var store = StoreFactory.Create(request.Store);
        await store.EnsureAvailableAsync(ct).ConfigureAwait(false);

        // 1. Targets first: nothing is downloaded if we would refuse anyway.
        IDatabaseEngine? engine = request.Database is null ? null : DatabaseEngineFactory.Create(request.Database);
        if (engine is not null && !request.Force && !await engine.TargetIsEmptyAsync(ct).ConfigureAwait(false))
        {
            throw new HubDrException("RestoreTargetNotEmpty", HubErrorCategory.ResourceExists,
                "The target database is not empty. Restore into an empty database, or pass -Force to replace its contents.");
        }

        if (request.FilesTarget is { } ft && !request.Force && Directory.Exists(ft) && Directory.EnumerateFileSystemEntries(ft).Any())
        {
            throw new HubDrException("RestoreTargetNotEmpty", HubErrorCategory.ResourceExists,
                $"The target folder '{ft}' is not empty. Use an empty folder, or pass -Force to overwrite.") { Target = ft };
        }

        // 2. Verify before anything is restored.
        var verification = await VerifyService.VerifyAsync(store, hub, request.BackupId, request.TrustedSigners, log, ct).ConfigureAwait(false);
        if (!verification.IsValid)
        {
            throw new HubDrException("BackupSignatureInvalid", HubErrorCategory.SecurityError,
                $"Backup {hub}/{request.BackupId} failed verification ({verification.Status}): {verification.Reason} Nothing was restored.") { Target = request.BackupId };
        }

        var catalog = verification.Catalog!;
        var compressor = Compressors.Get(catalog.Compression);
        var folder = ObjectLayout.Folder(hub, request.BackupId);
        var restoreClock = Stopwatch.StartNew();
        var files = new List<string>();
        BackupManifest? manifest = null;
        BackupHeader? header = null;
        DecryptionInfo info;
        SequentialPartsStream? dumpParts = null;
        var actualEntries = new Dictionary<string, (long Size, string Sha)>(StringComparer.Ordinal);
        var progress = new ProgressThrottle(log, $"Restoring {hub}/{request.BackupId}", catalog.ArchiveSize);
        // Files go to a staging folder inside the target first and replace its contents only once everything checked
        // out: a refused entry, a broken archive or a failed database restore leaves the target as it was.
        using var staging = request.FilesTarget is null ? null : FilesStaging.Begin(request.FilesTarget);

        await using (var raw = await store.OpenReadAsync(folder + catalog.Archive, ct).ConfigureAwait(false))
        {
            using var hashing = new HashingStream(raw, leaveOpen: true, onProgress: progress.Report);
            using var plain = OpenPgpEncryption.OpenDecrypt(hashing, request.SecretKeys, request.PassphraseFor, out info);
            log.Verbose($"Decrypting with key {info.KeyId} ({info.Fingerprint}); the backup was encrypted to {string.Join(", ", info.RecipientKeyIds)}.");
            using var decompressed = compressor.Decompress(plain);
            using var reader = new ArchiveReader(decompressed);
            var first = true;
            ArchiveEntry? pending = null;
            for (var entry = reader.Next(); entry is not null; entry = pending ?? reader.Next())
            {
                pending = null;
                if (entry.IsDirectory)
                {
                    continue;
                }

                if (first)
                {
                    if (entry.Name != "backup-info.json")
                    {
                        throw new HubDrException("ArchiveLayoutInvalid", HubErrorCategory.InvalidData, $"The archive does not start with backup-info.json (found '{entry.Name}').");
                    }

                    var headerBytes = await ReadSmallAsync(entry, ct).ConfigureAwait(false);
                    actualEntries[entry.Name] = (headerBytes.Length, Sha256Hex(headerBytes));
                    header = HubJson.Deserialize<BackupHeader>(headerBytes, "backup-info.json");
                    if (header.BackupId != request.BackupId || header.Hub != hub)
                    {
                        throw new HubDrException("ArchiveLayoutInvalid", HubErrorCategory.InvalidData, $"The archive is backup {header.Hub}/{header.BackupId}, not {hub}/{request.BackupId}.");
                    }

                    first = false;
                    continue;
                }

                if (entry.Name.StartsWith("db/", StringComparison.Ordinal))
                {
                    using var parts = new SequentialPartsStream(reader, entry);
                    if (engine is null)
                    {
                        log.Verbose("No target database given: skipping the database dump.");
                    }
                    else
                    {
                        log.Verbose($"Preparing the target database ({(request.Force ? "replacing contents" : "must be empty")}).");
                        await engine.PrepareTargetAsync(request.Force, ct).ConfigureAwait(false);
                        var format = BackupService.DumpFormatOf(engine.Name, SequentialPartsStream.BaseName(entry.Name)!);
                        log.Verbose($"Restoring the {format} dump with the {engine.Name} engine.");
                        await engine.RestoreAsync(parts, format, request.Options, ct).ConfigureAwait(false);
                    }

                    await parts.CopyToAsync(Stream.Null, ct).ConfigureAwait(false);
                    dumpParts = parts;
                    log.Verbose($"Dump: {parts.PartCount} part(s), {Units.Bytes(parts.TotalLength)}.");
                    pending = parts.Pending;
                    if (pending is null)
                    {
                        break;
                    }

                    continue;
                }

                var content = await ReadSmallAsync(entry, ct).ConfigureAwait(false);
                actualEntries[entry.Name] = (content.Length, Sha256Hex(content));
                if (entry.Name == "manifest.json")
                {
                    manifest = HubJson.Deserialize<BackupManifest>(content, "manifest.json");
                    continue;
                }

                if (staging is not null)
                {
                    files.Add(staging.Write(entry.Name, content));
                }
            }

            // Read to the very end so the OpenPGP integrity check (MDC) runs over every byte.
            await decompressed.CopyToAsync(Stream.Null, ct).ConfigureAwait(false);
            await plain.CopyToAsync(Stream.Null, ct).ConfigureAwait(false);
            await hashing.CopyToAsync(Stream.Null, ct).ConfigureAwait(false);
            if (!string.Equals(hashing.Sha256, verification.ArchiveSha256, StringComparison.OrdinalIgnoreCase))
            {
                throw new HubDrException("ArchiveChangedDuringRestore", HubErrorCategory.SecurityError,
                    "The archive changed between verification and restore; the restored data must not be used. Restore again.");
            }
        }

        progress.Complete();
        var restoreDuration = restoreClock.Elapsed;
        if (manifest is null || header is null)
        {
            throw new HubDrException("ArchiveLayoutInvalid", HubErrorCategory.InvalidData, "The archive has no manifest.json.");
        }

        foreach (var e in manifest.Entries.Where(e => e.Kind != "dump"))
        {
            if (!actualEntries.TryGetValue(e.Name, out var got) || got.Size != e.Size || !string.Equals(got.Sha, e.Sha256, StringComparison.OrdinalIgnoreCase))
            {
                throw new HubDrException("ArchiveEntryChecksumMismatch", HubErrorCategory.InvalidData, $"Archive entry '{e.Name}' does not match the manifest.") { Target = e.Name };
            }
        }

        if (engine is not null && dumpParts is not null)
        {
            // The parts' SHA-256s cover every byte of the dump in order (archives from HubDr before 0.2 also carry a
            // whole-dump SHA-256; their parts are hashed too, so checking the parts is enough for both).
            dumpParts.Verify(manifest.Database.Parts.Select(p => new ArchiveEntryInfo(p.Name, p.Size, p.Sha256)).ToList(), manifest.Database.Size);
        }

        if (staging is not null)
        {
            // Everything is verified and the database (if any) restored: the folder now holds exactly the backup's files.
            var removed = staging.Commit();
            if (removed.Count > 0)
            {
                log.Verbose($"Replaced the contents of '{request.FilesTarget}': removed {removed.Count} entr{(removed.Count == 1 ? "y" : "ies")} that are not in the backup ({string.Join(", ", removed.Take(10))}{(removed.Count > 10 ? ", …" : "")}).");
            }
        }

        var checkClock = Stopwatch.StartNew();
        var rowChecks = new List<RowCountCheck>();
        IReadOnlyList<string> integrity = [];
        if (engine is not null)
        {
            var actual = await engine.CountRowsAsync(ct).ConfigureAwait(false);
            foreach (var (table, expected) in manifest.Database.RowCounts)
            {
                rowChecks.Add(new RowCountCheck(table, expected, actual.TryGetValue(table, out var a) ? a : -1));
            }

            integrity = await engine.CheckIntegrityAsync(ct).ConfigureAwait(false);
            log.Verbose($"Row counts: {rowChecks.Count(r => r.Matches)} of {rowChecks.Count} tables match the manifest; integrity problems: {integrity.Count}.");
        }

        if (request.ImportCommand is { } import && request.FilesTarget is not null)
        {
            log.Verbose("Running the import command.");
            var (exit, _, stderr) = await HubCommand.RunAsync(import, new Dictionary<string, string> { ["path"] = Path.GetFullPath(request.FilesTarget) }, null, TimeSpan.FromMinutes(30), ct, "-ImportCommand").ConfigureAwait(false);
            if (exit != 0)
            {
                throw new HubDrException("ImportCommandFailed", HubErrorCategory.InvalidOperation,
                    $"The import command exited with code {exit}: {new Redactor().RedactText(stderr.Trim())}");
            }
        }

        return new RestoreOutcome
        {
            Verification = verification,
            Manifest = manifest,
            DecryptedWithKey = info.Fingerprint,
            FilesRestored = files,
            RowCounts = rowChecks,
            IntegrityProblems = integrity,
            DatabaseTarget = engine is null ? null : request.Database!.Engine,
            FilesTarget = request.FilesTarget is null ? null : Path.GetFullPath(request.FilesTarget),
            VerifyDuration = verification.Duration,
            RestoreDuration = restoreDuration,
            CheckDuration = checkClock.Elapsed,
            Duration = total.Elapsed,
        };
    }

    /// <summary>What a restore would start a child process for: the database's client tools, the import command (run only with a files target).</summary>
    public static IEnumerable<string> ProcessNeeds(DatabaseSpec? database, string? importCommand, string? filesTarget)
    {
        foreach (var n in Processes.ProcessStarter.DatabaseNeeds(database?.Engine, restore: true))
        {
            yield return n;
        }

        if (!string.IsNullOrWhiteSpace(importCommand) && filesTarget is not null)
        {
            yield return "-ImportCommand";
        }
    }

    private static async Task<byte[]> ReadSmallAsync(ArchiveEntry entry, CancellationToken ct)
    {
        if (entry.Size > SourceCollector.MaxFileSize + (1 << 20))
        {
            throw new HubDrException("ArchiveEntryTooLarge", HubErrorCategory.InvalidData, $"Archive entry '{entry.Name}' is unexpectedly large ({entry.Size} bytes).");
        }

        var buf = new byte[entry.Size];
        await entry.Content.ReadExactlyAsync(buf, ct).ConfigureAwait(false);
        return buf;
    }

    private static string Sha256Hex(byte[] data) => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(data)).ToLowerInvariant();
}
