using System.Diagnostics;
using System.Globalization;
using System.Text;
using HubDr.Engine.Archive;
using HubDr.Engine.Backup;
using HubDr.Engine.Compression;
using HubDr.Engine.Crypto;
using HubDr.Engine.IO;
using HubDr.Engine.LogArchive;
using HubDr.Engine.Stores;

namespace HubDr.Engine.Databases.Postgres.Pitr;

public sealed class BaseBackupRequest
{
    public required string Hub { get; init; }
    public required StoreSpec Store { get; init; }
    public required DatabaseSpec Database { get; init; }
    public required IReadOnlyList<string> RecipientKeys { get; init; }
    public required IReadOnlyList<string> SigningKeys { get; init; }
    public string? Signer { get; init; }
    public required char[] SigningPassphrase { get; init; }

    /// <summary>Key rotation history (keys.json), carried in the archive like logical backups do. Null: none.</summary>
    public string? KeyMetadataPath { get; init; }

    public string Compression { get; init; } = Compressors.Default;
    public int? CompressionLevel { get; init; }
    public int PartSize { get; init; } = 16 * 1024 * 1024;

    /// <summary>pg_basebackup --checkpoint=fast (default) or spread (gentler on I/O, the backup starts later).</summary>
    public bool FastCheckpoint { get; init; } = true;

    /// <summary>
    /// How long to wait, after the copy, for the archiver to have archived the backup's whole WAL range (the base backup is
    /// useless without it). Zero: do not wait (the catalog then says so in labels). Default 60 s.
    /// </summary>
    public TimeSpan WalWaitTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Keys whose WAL index batches count while waiting (default: the signing key; add the archiver's if it differs).</summary>
    public OpenPgpKeySet? TrustedWalSigners { get; init; }

    public StoreWriteOptions WriteOptions { get; init; } = StoreWriteOptions.Default;
    public IReadOnlyList<string> Labels { get; init; } = [];
}

public sealed class BaseBackupOutcome
{
    public required CatalogRecord Catalog { get; init; }
    public required BaseBackupPitrInfo Pitr { get; init; }
    public required BackupManifest Manifest { get; init; }
    public required string StoreLocation { get; init; }
    public required TimeSpan Duration { get; init; }
    public bool WalArchived { get; init; }
}

/// <summary>
/// A physical base backup (later New-HubBackup -Kind Base), mirroring <see cref="BackupService"/>: pg_basebackup
/// -D - -Ft -X none → one tar streamed into the archive pipeline (tar parts → compress → OpenPGP → signature + SHA-256 →
/// upload), its backup_manifest's WAL-Ranges read while the bytes pass; then the archive signature, then — once the WAL
/// range the backup needs is in the WAL archive — the catalog signature and, last, the catalog record with
/// "kind": "base" and "pitr": {...}. Inner tar: backup-info.json, keys/keys.json, db/base.tar.part-NNNNNN, manifest.json.
/// </summary>
public static class BaseBackupService
{
    public const string BaseTarEntry = "db/base.tar";
    public const string Format = "basebackup-tar";

    public static async Task<BaseBackupOutcome> CreateAsync(BaseBackupRequest request, IOperationLog log, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var hub = ObjectLayout.ValidateHub(request.Hub);
        var compressor = Compressors.Get(request.Compression);

        // 1. Everything that can fail cheaply fails before the database is touched.
        var keys = LogArchiveKeys.Load(request.RecipientKeys, request.SigningKeys, request.Signer, request.SigningPassphrase);
        await using var store = StoreFactory.Create(request.Store);
        await store.EnsureAvailableAsync(ct).ConfigureAwait(false);
        var conn = new PitrConnection(request.Database);
        var info = await PitrPreflight.CheckAsync(conn, PitrPreflight.DefaultSlotName(hub), forBaseBackup: true, log, ct).ConfigureAwait(false);
        var pgBaseBackup = conn.Tool("pg_basebackup");
        var (toolMajor, toolText) = await PostgresEngine.ToolVersionAsync(pgBaseBackup, ct).ConfigureAwait(false);
        var serverMajor = info.ServerVersionNum / 10000;
        if (toolMajor != serverMajor)
        {
            throw new HubDrException("DatabaseToolTooOld", HubErrorCategory.NotInstalled,
                $"'{pgBaseBackup}' is version {toolMajor} but the server runs PostgreSQL {serverMajor}; a base backup needs pg_basebackup of the " +
                $"server's major version (e.g. /usr/lib/postgresql/{serverMajor}/bin as ToolPath).");
        }

        if (info.SlotExists != true)
        {
            log.Warning($"No WAL archiver slot '{PitrPreflight.DefaultSlotName(hub)}' exists on {conn.Host}:{conn.Port}: start the archiver for hub '{hub}' " +
                "first, or this base backup cannot be restored (its WAL is not archived).");
        }

        byte[]? keyMetadata = null;
        if (request.KeyMetadataPath is { } kmPath)
        {
            if (!File.Exists(kmPath))
            {
                throw new HubDrException("KeyMetadataNotFound", HubErrorCategory.ObjectNotFound, $"Key metadata file '{kmPath}' does not exist.") { Target = kmPath };
            }

            keyMetadata = KeyMetadata.Load(kmPath).ToJson();
        }

        var created = DateTimeOffset.UtcNow;
        var backupId = ObjectLayout.NewBackupId(created);
        var folder = ObjectLayout.Folder(hub, backupId);
        var archiveName = ObjectLayout.ArchiveName(compressor.Extension);
        var archiveKey = folder + archiveName;
        var sigKey = folder + ObjectLayout.SignatureName(archiveName);
        log.Verbose($"Base backup {backupId} of hub '{hub}' (PostgreSQL {info.ServerVersion}, system {info.SystemId}) goes to {store.Location}/{folder}");

        var manifest = new BackupManifest
        {
            BackupId = backupId,
            Hub = hub,
            CreatedUtc = created,
            ToolVersion = BackupService.ToolVersion,
            HostName = Environment.MachineName,
            RecipientKeyIds = keys.RecipientKeyIds.ToList(),
            SignerFingerprint = keys.Signer.Fingerprint,
        };

        byte[] archiveSignature;
        string archiveSha;
        long archiveSize;
        BaseBackupPitrInfo pitr;
        var progress = new ProgressThrottle(log, $"Base backup of hub '{hub}'", null);
        var written = new List<string>();
        try
        {
            await using (var upload = await store.BeginUploadAsync(archiveKey, request.WriteOptions, ct).ConfigureAwait(false))
            {
                using var hashing = new HashingStream(upload.Content, leaveOpen: true, onProgress: progress.Report, computeSha256: false);
                using var signing = new SigningStream(hashing, keys.SigningKeys, keys.Signer.Fingerprint, keys.Passphrase, leaveOpen: true);
                var encrypt = OpenPgpEncryption.OpenEncrypt(signing, keys.Recipients, $"hubdr-{hub}-{backupId}.tar{compressor.Extension}", created);
                using var stage = new PipelineStageStream(encrypt, ct: ct);
                var compress = compressor.Compress(stage, request.CompressionLevel);
                using (var tar = new ArchiveWriter(compress, created, request.PartSize))
                {
                    var header = new BackupHeader { BackupId = backupId, Hub = hub, CreatedUtc = created, ToolVersion = BackupService.ToolVersion, Engine = "postgres", Compression = compressor.Name };
                    manifest.Entries.Add(Entry(tar.AddBytes("backup-info.json", HubJson.Serialize(header)), "header"));
                    if (keyMetadata is not null)
                    {
                        manifest.Entries.Add(Entry(tar.AddBytes("keys/keys.json", keyMetadata), "keys"));
                    }

                    log.Verbose("Streaming pg_basebackup into the archive.");
                    ChunkedEntryStream chunked;
                    PgTarObserver observer;
                    var startUtc = DateTimeOffset.UtcNow;
                    using (chunked = tar.OpenChunked(BaseTarEntry))
                    {
                        observer = new PgTarObserver(chunked);
                        await RunBaseBackupAsync(conn, pgBaseBackup, backupId, request.FastCheckpoint, observer, ct).ConfigureAwait(false);
                    }

                    var stopUtc = DateTimeOffset.UtcNow;
                    pitr = Describe(observer, info, startUtc, stopUtc, chunked.TotalLength);
                    manifest.DumpCompletedUtc = stopUtc;
                    manifest.Database = new ManifestDatabase
                    {
                        Engine = "postgres",
                        ServerVersion = info.ServerVersion,
                        Database = "(cluster)",
                        Format = Format,
                        Entry = BaseTarEntry,
                        Size = chunked.TotalLength,
                        Parts = chunked.Parts.Select(p => Entry(p, "dump")).ToList(),
                        Details = new SortedDictionary<string, string>(StringComparer.Ordinal)
                        {
                            ["tool"] = toolText,
                            ["systemId"] = pitr.SystemId,
                            ["timeline"] = pitr.Timeline.ToString(CultureInfo.InvariantCulture),
                            ["startLsn"] = pitr.StartLsn,
                            ["stopLsn"] = pitr.StopLsn,
                            ["walFirst"] = pitr.WalFirst,
                            ["walLast"] = pitr.WalLast,
                            ["tarMembers"] = observer.Members.ToString(CultureInfo.InvariantCulture),
                            ["restore"] = "extract db/base.tar.part-* (in order) into an empty data directory, then replay WAL from the hub's _wal archive",
                        },
                    };
                    tar.AddBytes("manifest.json", HubJson.Serialize(manifest));
                    tar.Finish();
                }

                compress.Dispose();
                stage.Complete();
                encrypt.Dispose();
                signing.Flush();
                archiveSignature = signing.FinishSignature();
                archiveSha = signing.DataSha256!;
                archiveSize = hashing.BytesProcessed;
                await upload.CompleteAsync(ct).ConfigureAwait(false);
                written.Add(archiveKey);
            }

            progress.Complete();
            log.Verbose($"Base backup archive uploaded: {Units.Bytes(archiveSize)} (data {Units.Bytes(manifest.Database.Size)}), WAL {pitr.StartLsn} .. {pitr.StopLsn} on timeline {pitr.Timeline}.");
            await store.PutAsync(sigKey, archiveSignature, request.WriteOptions, ct).ConfigureAwait(false);
            written.Add(sigKey);

            // 2. A base backup without its WAL is not a backup: wait (like pgBackRest's archive check) until the archiver has
            //    stored the range, before the catalog makes the backup visible.
            var walArchived = false;
            if (request.WalWaitTimeout > TimeSpan.Zero)
            {
                await WaitForWalAsync(store, hub, pitr, request.TrustedWalSigners ?? keys.OwnPublicKey, request.WalWaitTimeout, log, ct).ConfigureAwait(false);
                walArchived = true;
            }

            var catalog = new CatalogRecord
            {
                BackupId = backupId,
                Hub = hub,
                CreatedUtc = created,
                CompletedUtc = DateTimeOffset.UtcNow,
                ToolVersion = BackupService.ToolVersion,
                Engine = "postgres",
                ServerVersion = info.ServerVersion,
                Compression = compressor.Name,
                Archive = archiveName,
                ArchiveSize = archiveSize,
                ArchiveSha256 = archiveSha,
                ArchiveSignature = ObjectLayout.SignatureName(archiveName),
                DumpSize = manifest.Database.Size,
                TableCount = 0,
                RowCount = 0,
                RecipientKeyIds = manifest.RecipientKeyIds,
                SignerFingerprint = keys.Signer.Fingerprint,
                RetainUntil = request.WriteOptions.RetainUntil,
                Labels = request.Labels.Concat(walArchived ? [] : ["wal-not-checked"]).ToList(),
            };
            var catalogBytes = BaseBackupCatalog.Serialize(catalog, pitr);
            var catalogSig = OpenPgpSignatures.SignDetached(catalogBytes, keys.SigningKeys, keys.Signer.Fingerprint, keys.Passphrase);
            await store.PutAsync(folder + ObjectLayout.CatalogSignatureName, catalogSig, request.WriteOptions, ct).ConfigureAwait(false);
            written.Add(folder + ObjectLayout.CatalogSignatureName);

            // Last: from here on the base backup is complete and listed.
            await store.PutAsync(folder + ObjectLayout.CatalogName, catalogBytes, request.WriteOptions, ct).ConfigureAwait(false);
            log.Verbose($"Catalog record written; base backup {backupId} is complete.");
            return new BaseBackupOutcome
            {
                Catalog = catalog,
                Pitr = pitr,
                Manifest = manifest,
                StoreLocation = store.Location,
                Duration = clock.Elapsed,
                WalArchived = walArchived,
            };
        }
        catch (Exception) when (written.Count > 0)
        {
            try
            {
                await store.DeleteAsync(written, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception cleanup) when (cleanup is not OutOfMemoryException)
            {
                log.Warning($"Could not remove the partial base backup {backupId}: {cleanup.Message}");
            }

            throw;
        }
        finally
        {
            progress.Complete();
        }
    }

    private static async Task RunBaseBackupAsync(PitrConnection conn, string tool, string backupId, bool fast, Stream output, CancellationToken ct)
    {
        var args = new List<string>(conn.ToolConnectionArguments())
        {
            "--pgdata=-",
            "--format=tar",
            "--wal-method=none",
            "--checkpoint=" + (fast ? "fast" : "spread"),
            "--label=hubdr " + backupId,
            "--manifest-checksums=CRC32C",
        };
        var (env, passFile) = conn.ToolEnvironment();
        using var _ = passFile;
        using var proc = ToolProcess.Start(tool, args, env, redirectStdin: false, conn.Secrets);
        try
        {
            await ToolProcess.CopyAsync(proc.StandardOutput, output, null, null, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            proc.Kill();
            throw;
        }
        catch (HubDrException)
        {
            proc.Kill();
            await proc.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            throw;
        }
        catch (IOException ex)
        {
            proc.Kill();
            await proc.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            throw Failed($"the stream failed ({ex.Message})", proc, ex);
        }

        var code = await proc.WaitForExitAsync(ct).ConfigureAwait(false);
        if (code != 0 || proc.WasKilled)
        {
            throw Failed($"pg_basebackup exited with code {code}", proc, null);
        }
    }

    private static HubDrException Failed(string what, ToolProcess proc, Exception? inner)
    {
        var stderr = proc.StandardErrorText;
        var tablespace = stderr.Contains("tablespace", StringComparison.OrdinalIgnoreCase) && stderr.Contains("stdout", StringComparison.OrdinalIgnoreCase);
        return tablespace
            ? new HubDrException("BaseBackupTablespacesUnsupported", HubErrorCategory.InvalidOperation,
                $"pg_basebackup cannot write a cluster with several tablespaces to standard output: {stderr} See docs/pitr.md, \"Limits\".", inner)
            : new HubDrException("BaseBackupFailed", HubErrorCategory.ReadError,
                $"The base backup failed: {what}." + (stderr.Length > 0 ? $" pg_basebackup said: {stderr}" : "") +
                " Nothing was kept; check the server log and run it again.", inner);
    }

    private static BaseBackupPitrInfo Describe(PgTarObserver observer, PitrServerInfo info, DateTimeOffset startUtc, DateTimeOffset stopUtc, long tarSize)
    {
        if (!observer.SawEnd)
        {
            throw new HubDrException("BaseBackupFailed", HubErrorCategory.InvalidData, "pg_basebackup's tar stream ended without its end-of-archive blocks; the copy is incomplete.");
        }

        var ranges = observer.WalRanges();
        if (ranges.Count == 0)
        {
            throw new HubDrException("BaseBackupFailed", HubErrorCategory.InvalidData, "The backup manifest lists no WAL range.");
        }

        var label = observer.Label();
        var start = ranges[0].Start;
        var stop = ranges[^1].End;
        var tli = ranges[0].Timeline;
        if (label.TryGetValue("START TIME", out var st) && DateTimeOffset.TryParse(st.Replace(" UTC", "Z", StringComparison.Ordinal).Replace(" GMT", "Z", StringComparison.Ordinal),
                CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var labelStart))
        {
            startUtc = labelStart.ToUniversalTime();
        }

        return new BaseBackupPitrInfo
        {
            SystemId = info.SystemId,
            Timeline = tli,
            StartLsn = Wal.FormatLsn(start),
            StopLsn = Wal.FormatLsn(stop),
            CheckpointLsn = label.TryGetValue("CHECKPOINT LOCATION", out var cp) ? cp : null,
            StartUtc = startUtc,
            StopUtc = stopUtc,
            WalFirst = Wal.SegmentFileName(tli, Wal.SegmentNumber(start, info.SegmentSize), info.SegmentSize),
            WalLast = Wal.SegmentFileName(ranges[^1].Timeline, Wal.SegmentNumber(stop - 1, info.SegmentSize), info.SegmentSize),
            SegmentSize = info.SegmentSize,
            ServerVersionNum = info.ServerVersionNum,
            BaseTarSize = tarSize,
        };
    }

    private static async Task WaitForWalAsync(IBackupStore store, string hub, BaseBackupPitrInfo pitr, OpenPgpKeySet trusted, TimeSpan timeout, IOperationLog log, CancellationToken ct)
    {
        var layout = new WalStreamLayout(pitr.SegmentSize);
        var range = new LogRange(Wal.TimelineName(pitr.Timeline), Wal.SegmentStart(Wal.ParseLsn(pitr.StartLsn), pitr.SegmentSize), Wal.ParseLsn(pitr.StopLsn));
        var deadline = DateTimeOffset.UtcNow + timeout;
        LogContinuityReport report;
        while (true)
        {
            var snapshot = await LogIndex.LoadAsync(store, hub, layout, trusted, ct).ConfigureAwait(false);
            var listing = await LogContinuity.ListObjectsAsync(store, hub, layout, ct).ConfigureAwait(false);
            report = LogContinuity.Check(snapshot, listing, [range]);
            if (report.Gaps.Count == 0 && report.IsContinuous)
            {
                log.Verbose($"The backup's WAL ({pitr.WalFirst} .. {pitr.WalLast}) is archived.");
                return;
            }

            if (DateTimeOffset.UtcNow >= deadline)
            {
                break;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(500), ct).ConfigureAwait(false);
        }

        throw new HubDrException("BaseBackupWalNotArchived", HubErrorCategory.OperationStopped,
            $"The WAL this base backup needs ({pitr.WalFirst} .. {pitr.WalLast}, {pitr.StartLsn} .. {pitr.StopLsn}) was not archived within " +
            $"{timeout.TotalSeconds:0} s (missing: {string.Join("; ", report.Gaps)}). Is the WAL archiver for hub '{hub}' running and its store reachable? " +
            "The base backup was discarded (no catalog record).");
    }

    private static ManifestEntry Entry(ArchiveEntryInfo e, string kind) => new() { Name = e.Name, Size = e.Size, Sha256 = e.Sha256, Kind = kind };

    internal static string Utf8(byte[] b) => Encoding.UTF8.GetString(b);
}
