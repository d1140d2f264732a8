using System.Diagnostics;
using System.Reflection;
using System.Text;
using HubDr.Engine.Archive;
using HubDr.Engine.Compression;
using HubDr.Engine.Crypto;
using HubDr.Engine.Databases;
using HubDr.Engine.IO;
using HubDr.Engine.Sources;
using HubDr.Engine.Stores;

namespace HubDr.Engine.Backup;

/// <summary>
/// New-HubBackup: one streaming pass
/// dump → tar (fixed-size parts) → compress → OpenPGP encrypt → sign + SHA-256 → store upload,
/// then the archive signature, the catalog signature and, last, the catalog record.
/// </summary>
public static class BackupService
{
    public static string ToolVersion { get; } =
        typeof(BackupService).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public static async Task<BackupOutcome> CreateAsync(BackupRequest request, IOperationLog log, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        // 0. Where child processes are not allowed (the Azure Automation sandbox), refuse before any work.
        Processes.ProcessStarter.EnsureAllowed(ProcessNeeds(request));
        var hub = ObjectLayout.ValidateHub(request.Hub);
        var compressor = Compressors.Get(request.Compression);
        PrivateFiles.CleanStaleLeftovers(); // secret files a killed run left behind (docs/engines.md, "Secret files")

        // 1. Everything that can fail cheaply fails before the database is touched.
        var recipients = KeyFiles.LoadRecipients(request.RecipientKeys);
        var signingKeys = KeyFiles.LoadSecret(request.SigningKeys, "signing key");
        var signer = KeyFiles.ResolveSigner(signingKeys, request.Signer);
        _ = OpenPgpSignatures.SignDetached(Encoding.UTF8.GetBytes("hubdr-passphrase-check"), signingKeys, signer.Fingerprint, request.SigningPassphrase);
        KeyMetadata? keyHistory = null;
        if (request.KeyMetadataPath is { } kmPath)
        {
            if (!File.Exists(kmPath))
            {
                throw new HubDrException("KeyMetadataNotFound", HubErrorCategory.ObjectNotFound, $"Key metadata file '{kmPath}' does not exist.") { Target = kmPath };
            }

            keyHistory = KeyMetadata.Load(kmPath);
            CheckSignerNotRetired(keyHistory, signer, request.AllowRetiredSigningKey, log);
        }

        log.Verbose($"Signing with {signer.Fingerprint}; encrypting to {string.Join(", ", recipients.Keys.Select(k => k.Fingerprint))}.");

        // Memory: HubDr's defaults, or within a cap (-MaxMemoryMB, or automatically in Azure Automation).
        var environment = Processes.ExecutionEnvironment.Current;
        var limits = PipelineLimits.Plan(request.MaxMemoryMB, environment, Environment.ProcessorCount);
        limits = limits with { PartSize = Math.Min(limits.PartSize, request.PartSize) };
        if (environment.IsAzureAutomation)
        {
            log.Verbose($"Running in {environment.Describe()}.");
        }

        log.Verbose(limits.Describe());
        using var applied = limits.Apply();

        await using var store = StoreFactory.Create(request.Store, limits);
        await store.EnsureAvailableAsync(ct).ConfigureAwait(false);
        var engine = DatabaseEngineFactory.Create(request.Database);
        var dbInfo = await engine.PreflightAsync(ct).ConfigureAwait(false);
        log.Verbose($"Database pre-flight passed: {dbInfo.Engine} {dbInfo.ServerVersion}, database '{dbInfo.Database}'.");

        var redactor = new Redactor(request.Sources.SecretNames, request.Sources.NotSecretNames);
        var collected = await new SourceCollector(request.Sources, redactor, log).CollectAsync(ct).ConfigureAwait(false);
        byte[]? keyMetadata = keyHistory?.ToJson();

        var created = DateTimeOffset.UtcNow;
        var backupId = ObjectLayout.NewBackupId(created);
        try
        {
            // HubDr's marker makes this a HubDr store (first backup), or migrates a store written before the marker existed.
            var inspection = await StoreMarker.InspectAsync(store, ct).ConfigureAwait(false);
            var (_, markerWritten) = await StoreMarker.EnsureAsync(store, "New-HubBackup", inspection, ct).ConfigureAwait(false);
            if (markerWritten)
            {
                if (inspection.Kind == StoreKind.Foreign)
                {
                    log.Warning($"{store.Location} already holds objects HubDr did not write; it is now marked as a HubDr store ({ObjectLayout.MarkerName}). HubDr never lists, changes or deletes those objects.");
                }
                else
                {
                    log.Verbose(inspection.Kind == StoreKind.Legacy
                        ? $"Added the HubDr store marker to {store.Location} (a store written before the marker existed)."
                        : $"Initialised {store.Location} as a HubDr store ({ObjectLayout.MarkerName}).");
                }
            }

            return await RunAsync(request, log, ct, clock, hub, compressor, recipients, signingKeys, signer, store, engine, dbInfo, redactor, collected, keyMetadata, created, backupId).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // The audit record of a failed run names the backup id (it is generated before anything is written).
            var surfaced = Surface(e);
            surfaced.Data[HubDrException.BackupIdDataKey] = backupId;
            if (!ReferenceEquals(surfaced, e))
            {
                throw surfaced;
            }

            throw;
        }
    }

    private static async Task<BackupOutcome> RunAsync(BackupRequest request, IOperationLog log, CancellationToken ct, Stopwatch clock, string hub, ICompressor compressor,
        OpenPgpKeySet recipients, OpenPgpKeySet signingKeys, KeyInfo signer, IBackupStore store, IDatabaseEngine engine, DatabaseInfo dbInfo,
        Redactor redactor, IReadOnlyList<CollectedFile> collected, byte[]? keyMetadata, DateTimeOffset created, string backupId)
    {
        var folder = ObjectLayout.Folder(hub, backupId);
        var archiveName = ObjectLayout.ArchiveName(compressor.Extension);
        var archiveKey = folder + archiveName;
        var sigKey = folder + ObjectLayout.SignatureName(archiveName);
        log.Verbose($"Backup {backupId} of hub '{hub}' goes to {store.Location}/{folder}");

        var manifest = new BackupManifest
        {
            BackupId = backupId,
            Hub = hub,
            CreatedUtc = created,
            ToolVersion = ToolVersion,
            HostName = Environment.MachineName,
            RecipientKeyIds = recipients.Keys.Select(k => k.EncryptionKeyId ?? k.KeyId).ToList(),
            SignerFingerprint = signer.Fingerprint,
        };

        byte[] archiveSignature;
        string archiveSha;
        long archiveSize;
        DumpResult dump;
        var progress = new ProgressThrottle(log, $"Backing up hub '{hub}'", null);
        var written = new List<string>();

        // A lease in the folder marks the backup as running (retention never deletes it) until it ends.
        var lease = BackupLease.NewRecord(hub, backupId, request.LeaseTtl);
        await BackupLease.WriteAsync(store, lease, ct).ConfigureAwait(false);
        var heartbeat = new BackupLease.Heartbeat(store, lease, request.LeaseRenewInterval, log);
        try
        {
            await using (var upload = await store.BeginUploadAsync(archiveKey, request.WriteOptions, ct).ConfigureAwait(false))
            {
                (archiveSignature, archiveSha, archiveSize, dump) = await WriteArchiveAsync(
                    request, upload.Content, compressor, engine, dbInfo, collected, keyMetadata, redactor, signingKeys, signer,
                    recipients, hub, backupId, created, manifest, progress, log, ct).ConfigureAwait(false);
                await upload.CompleteAsync(ct).ConfigureAwait(false);
                written.Add(archiveKey);
            }

            progress.Complete();
            log.Verbose($"Archive uploaded: {Units.Bytes(archiveSize)} (dump {Units.Bytes(manifest.Database.Size)}), SHA-256 {archiveSha}.");

            await store.PutAsync(sigKey, archiveSignature, request.WriteOptions, ct).ConfigureAwait(false);
            written.Add(sigKey);

            var catalog = new CatalogRecord
            {
                BackupId = backupId,
                Hub = hub,
                CreatedUtc = created,
                CompletedUtc = DateTimeOffset.UtcNow,
                ToolVersion = ToolVersion,
                Engine = dump.Engine,
                ServerVersion = dump.ServerVersion,
                Compression = compressor.Name,
                Archive = archiveName,
                ArchiveSize = archiveSize,
                ArchiveSha256 = archiveSha,
                ArchiveSignature = ObjectLayout.SignatureName(archiveName),
                DumpSize = manifest.Database.Size,
                TableCount = dump.RowCounts.Count,
                RowCount = dump.RowCounts.Values.Sum(),
                RecipientKeyIds = manifest.RecipientKeyIds,
                SignerFingerprint = signer.Fingerprint,
                RetainUntil = request.WriteOptions.RetainUntil,
                Labels = request.Labels.ToList(),
            };
            var catalogBytes = HubJson.Serialize(catalog);
            var catalogSig = OpenPgpSignatures.SignDetached(catalogBytes, signingKeys, signer.Fingerprint, request.SigningPassphrase);
            await store.PutAsync(folder + ObjectLayout.CatalogSignatureName, catalogSig, request.WriteOptions, ct).ConfigureAwait(false);
            written.Add(folder + ObjectLayout.CatalogSignatureName);

            // Last: from here on the backup is complete and listed.
            written.Add(folder + ObjectLayout.CatalogName);
            await store.PutAsync(folder + ObjectLayout.CatalogName, catalogBytes, request.WriteOptions, ct).ConfigureAwait(false);
            log.Verbose($"Catalog record written; checking that every object of backup {backupId} is in the store.");

            // Self-check before reporting success: the store must hold what was written (someone or something may have
            // deleted or truncated an object meanwhile).
            await SelfCheckAsync(store, folder, [
                (archiveKey, archiveSize),
                (sigKey, archiveSignature.LongLength),
                (folder + ObjectLayout.CatalogSignatureName, catalogSig.LongLength),
                (folder + ObjectLayout.CatalogName, catalogBytes.LongLength),
            ], backupId, ct).ConfigureAwait(false);
            log.Verbose($"Backup {backupId} is complete.");
            await CleanStalePendingAsync(store, hub, backupId, request.StalePendingAge, log, ct).ConfigureAwait(false);
            return new BackupOutcome
            {
                Catalog = catalog,
                Manifest = manifest,
                StoreLocation = store.Location,
                Duration = clock.Elapsed,
                RedactedNames = manifest.RedactedNames,
                Limits = PipelineLimits.Current,
            };
        }
        catch (Exception) when (written.Count > 0)
        {
            // No catalog record was written, so nothing is listed as a backup; remove what we did write
            // (best effort: Remove-ExpiredHubBackup clears leftovers after its grace period).
            try
            {
                await store.DeleteAsync(written, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception cleanup) when (cleanup is not OutOfMemoryException)
            {
                log.Warning($"Could not remove the partial backup {backupId}: {cleanup.Message}");
            }

            throw;
        }
        finally
        {
            progress.Complete();
            await heartbeat.DisposeAsync().ConfigureAwait(false);
            await RemoveLeaseAsync(store, folder, log).ConfigureAwait(false);
        }
    }

    /// <summary>What this backup would start a child process for (database tools, export commands).</summary>
    public static IEnumerable<string> ProcessNeeds(BackupRequest request)
    {
        foreach (var n in Processes.ProcessStarter.DatabaseNeeds(request.Database.Engine, restore: false))
        {
            yield return n;
        }

        if (!string.IsNullOrWhiteSpace(request.Sources.ManifestCommand))
        {
            yield return "-ManifestCommand";
        }

        if (!string.IsNullOrWhiteSpace(request.Sources.ConfigCommand))
        {
            yield return "-ConfigCommand";
        }
    }

    /// <summary>Checks that every object of the backup is in the store with the size that was written.</summary>
    private static async Task SelfCheckAsync(IBackupStore store, string folder, (string Key, long Size)[] expected, string backupId, CancellationToken ct)
    {
        var found = new Dictionary<string, long>(StringComparer.Ordinal);
        await foreach (var o in store.ListAsync(folder, ct).ConfigureAwait(false))
        {
            found[o.Key] = o.Size;
        }

        var problems = new List<string>();
        foreach (var (key, size) in expected)
        {
            if (!found.TryGetValue(key, out var actual))
            {
                problems.Add($"'{key}' is missing");
            }
            else if (actual != size)
            {
                problems.Add($"'{key}' has {actual} bytes, {size} were written");
            }
        }

        if (problems.Count > 0)
        {
            throw new HubDrException("BackupSelfCheckFailed", HubErrorCategory.InvalidData,
                $"Backup {backupId} was written but the store does not hold it intact: {string.Join("; ", problems)}. Something deleted or changed it while the backup ran " +
                "(e.g. Remove-ExpiredHubBackup with a very short -IncompleteGracePeriod, or a lifecycle rule). The backup is not usable and was removed; run it again.")
            { Target = backupId };
        }
    }

    private static async Task RemoveLeaseAsync(IBackupStore store, string folder, IOperationLog log)
    {
        try
        {
            await store.DeleteAsync([folder + ObjectLayout.LeaseName], CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            log.Warning($"Could not remove the lease {folder}{ObjectLayout.LeaseName}: {e.Message} (it expires by itself).");
        }
    }

    /// <summary>
    /// The streaming pass: tar → compress → (stage hand-off) → encrypt → sign → hash → <paramref name="uploadContent"/>.
    /// On ANY failure every stage is torn down before the exception leaves: the stage hand-off task is stopped, the
    /// zstd context (and its worker threads, which are foreground threads and would keep the process alive) is freed,
    /// the encryptor is closed, and nothing more is written to the upload (which the caller then aborts).
    /// </summary>
    private static async Task<(byte[] Signature, string Sha256, long Size, DumpResult Dump)> WriteArchiveAsync(
        BackupRequest request, Stream uploadContent, ICompressor compressor, IDatabaseEngine engine, DatabaseInfo dbInfo,
        IReadOnlyList<CollectedFile> collected, byte[]? keyMetadata, Redactor redactor, OpenPgpKeySet signingKeys, KeyInfo signer,
        OpenPgpKeySet recipients, string hub, string backupId, DateTimeOffset created, BackupManifest manifest,
        ProgressThrottle progress, IOperationLog log, CancellationToken ct)
    {
        using var gate = new AbandonableStream(uploadContent);
        // Counts only: the signing stream's SHA-256 is also the archive's SHA-256 for the catalog.
        using var hashing = new HashingStream(gate, leaveOpen: true, onProgress: progress.Report, computeSha256: false);
        using var signing = new SigningStream(hashing, signingKeys, signer.Fingerprint, request.SigningPassphrase, leaveOpen: true);
        Stream? encrypt = null;
        PipelineStageStream? stage = null;
        Stream? compress = null;
        ChunkedEntryStream? chunked = null;
        try
        {
            encrypt = OpenPgpEncryption.OpenEncrypt(signing, recipients, $"hubdr-{hub}-{backupId}.tar{compressor.Extension}", created);
            // Two cores: dump + tar + compression on this thread; encryption, signing, hashing and upload on another.
            var limits = PipelineLimits.Current;
            stage = new PipelineStageStream(encrypt, limits.StageBufferSize, limits.StageDepth, ct);
            compress = compressor.Compress(stage, request.CompressionLevel, limits);
            DumpResult dump;
            using (var tar = new ArchiveWriter(compress, created, limits.PartSize))
            {
                var header = new BackupHeader { BackupId = backupId, Hub = hub, CreatedUtc = created, ToolVersion = ToolVersion, Engine = dbInfo.Engine, Compression = compressor.Name };
                manifest.Entries.Add(Entry(tar.AddBytes("backup-info.json", HubJson.Serialize(header)), "header"));
                foreach (var f in collected)
                {
                    manifest.Entries.Add(Entry(tar.AddBytes(f.ArchiveName, f.Content), f.Kind));
                }

                if (keyMetadata is not null)
                {
                    manifest.Entries.Add(Entry(tar.AddBytes("keys/keys.json", keyMetadata), "keys"));
                }

                log.Verbose("Dumping the database into the archive.");
                chunked = tar.OpenChunked(DumpEntryName(engine.Name, request.Database.DumpFormat));
                dump = await engine.DumpAsync(chunked, null, ct).ConfigureAwait(false);
                chunked.Dispose();

                manifest.DumpCompletedUtc = DateTimeOffset.UtcNow;
                manifest.Database = new ManifestDatabase
                {
                    Engine = dump.Engine,
                    ServerVersion = dump.ServerVersion,
                    Database = dump.Database,
                    Format = dump.Format,
                    Entry = DumpEntryName(engine.Name, request.Database.DumpFormat),
                    Size = chunked.TotalLength,
                    Parts = chunked.Parts.Select(p => Entry(p, "dump")).ToList(),
                    RowCounts = new SortedDictionary<string, long>(dump.RowCounts.ToDictionary(k => k.Key, v => v.Value), StringComparer.Ordinal),
                    Details = new SortedDictionary<string, string>(dump.Details.ToDictionary(k => k.Key, v => v.Value), StringComparer.Ordinal),
                };
                manifest.RedactedNames = redactor.RedactedNames.ToList();
                tar.AddBytes("manifest.json", HubJson.Serialize(manifest));
                tar.Finish();
            }

            compress.Dispose();
            stage.Complete();
            encrypt.Dispose();
            signing.Flush();
            var signature = signing.FinishSignature();
            return (signature, signing.DataSha256!, hashing.BytesProcessed, dump);
        }
        catch
        {
            Teardown(gate, chunked, stage, compress, encrypt, log);
            throw;
        }
    }

    /// <summary>
    /// Best effort after a successful backup: removes the hub's uploads that never completed (a killed run's temp file,
    /// multipart upload or uncommitted blob) when they are older than <paramref name="olderThan"/> and no live lease
    /// holds their folder. Remove-ExpiredHubBackup does the same (and shows it with -WhatIf).
    /// </summary>
    private static async Task CleanStalePendingAsync(IBackupStore store, string hub, string ownId, TimeSpan olderThan, IOperationLog log, CancellationToken ct)
    {
        try
        {
            var now = DateTimeOffset.UtcNow;
            var byFolder = new Dictionary<string, List<PendingUpload>>(StringComparer.Ordinal);
            await foreach (var p in store.ListPendingAsync(hub + "/", ct).ConfigureAwait(false))
            {
                var parts = p.Key.Split('/');
                if (parts.Length == 3 && ObjectLayout.IsBackupId(parts[1]) && parts[1] != ownId && ObjectLayout.IsBackupObjectName(parts[2]) && now - p.LastModified >= olderThan)
                {
                    (byFolder.TryGetValue(parts[1], out var l) ? l : byFolder[parts[1]] = []).Add(p);
                }
            }

            foreach (var (id, uploads) in byFolder)
            {
                var listing = await CatalogService.GetAsync(store, hub, id, ct).ConfigureAwait(false);
                if (listing is { IsRunning: true } || listing is { ForeignKeys.Count: > 0 })
                {
                    continue;
                }

                foreach (var p in uploads)
                {
                    await store.AbortPendingAsync(p, ct).ConfigureAwait(false);
                    log.Verbose($"Removed a stale {p.Kind} of an earlier run: {p.Key} (last written {p.LastModified:u}).");
                }
            }
        }
        catch (Exception e) when (e is HubDrException or IOException or UnauthorizedAccessException)
        {
            log.Warning($"Could not clean up stale uploads of hub '{hub}': {e.Message}");
        }
    }

    /// <summary>A store's full-disk / read-only failure can arrive wrapped by a pipeline stage; surface the typed one.</summary>
    private static Exception Surface(Exception e)
    {
        if (e is HubDrException)
        {
            return e;
        }

        for (var x = e.InnerException; x is not null; x = x.InnerException)
        {
            if (x is HubDrException { ErrorId: "StoreFull" or "StoreReadOnly" } h)
            {
                return h;
            }
        }

        if (e is AggregateException agg)
        {
            foreach (var inner in agg.Flatten().InnerExceptions)
            {
                if (inner is HubDrException { ErrorId: "StoreFull" or "StoreReadOnly" } h)
                {
                    return h;
                }
            }
        }

        return e;
    }

    /// <summary>
    /// Failure path of <see cref="WriteArchiveAsync"/>: cut the upload off first (so no Dispose below can block on the
    /// store or write into it), stop the hand-off task, then free the compressor and the encryptor. Each step is
    /// independent; their own errors are secondary to the failure being reported.
    /// </summary>
    internal static void Teardown(AbandonableStream gate, ChunkedEntryStream? chunked, PipelineStageStream? stage, Stream? compress, Stream? encrypt, IOperationLog log)
    {
        gate.Abandon();
        chunked?.Abandon();
        foreach (var (what, disposable) in new (string, IDisposable?)[] { ("pipeline stage", stage), ("compressor", compress), ("encryptor", encrypt) })
        {
            try
            {
                disposable?.Dispose();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                log.Verbose($"Closing the {what} after the failure: {e.GetType().Name}: {e.Message}");
            }
        }
    }

    /// <summary>
    /// A key that keys.json records as retired must not sign new backups (a rotation happened and this host missed it):
    /// refused with SigningKeyRetired unless the operator allows it, then a warning.
    /// </summary>
    internal static void CheckSignerNotRetired(KeyMetadata history, KeyInfo signer, bool allow, IOperationLog log)
    {
        var record = history.Find(signer.Fingerprint);
        if (record?.Retired is not { } retired || retired > DateTimeOffset.UtcNow)
        {
            return;
        }

        var successor = record.Successor is null ? "" : $" Its successor is {record.Successor}.";
        if (!allow)
        {
            throw new HubDrException("SigningKeyRetired", HubErrorCategory.SecurityError,
                $"The signing key {signer.Fingerprint} was retired on {retired:u} (keys.json).{successor} Sign with the current key " +
                "(-SigningKeyPath / -Signer), or pass -AllowRetiredSigningKey to sign with the retired key anyway.") { Target = signer.Fingerprint };
        }

        log.Warning($"Signing with key {signer.Fingerprint}, which keys.json records as retired on {retired:u} (-AllowRetiredSigningKey).{successor}");
    }

    /// <summary>Name of the dump inside the tar; the extension tells restore the format.</summary>
    public static string DumpEntryName(string engine, string? format) =>
        engine == "postgres" && !string.Equals(format, "plain", StringComparison.OrdinalIgnoreCase) && !string.Equals(format, "sql", StringComparison.OrdinalIgnoreCase)
            ? "db/dump.pgdump" : "db/dump.sql";

    /// <summary>The restore format for a dump entry: "custom" (pg_dump -Fc), "plain" (postgres SQL) or "sql".</summary>
    public static string DumpFormatOf(string engine, string entryName) =>
        entryName.EndsWith(".pgdump", StringComparison.Ordinal) ? "custom" : engine == "postgres" ? "plain" : "sql";

    private static ManifestEntry Entry(ArchiveEntryInfo e, string kind) => new() { Name = e.Name, Size = e.Size, Sha256 = e.Sha256, Kind = kind };
}
