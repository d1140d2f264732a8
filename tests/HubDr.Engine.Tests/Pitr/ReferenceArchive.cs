using HubDr.Engine.Databases.Postgres.Pitr;
using HubDr.Engine.Tests.Crypto;

namespace HubDr.Engine.Tests.Pitr;

/// <summary>
/// One WAL archive + base backup made once per test run (a real cluster with a workload, 1 MiB segments, then stopped):
/// tests that damage or merely read an archive work on their own copy of it (<see cref="CopyStore"/>).
/// </summary>
public sealed class ReferenceArchive
{
    private static Task<ReferenceArchive>? _instance;
    private static readonly object Gate = new();

    public required string StorePath { get; init; }
    public required string Hub { get; init; }
    public required BaseBackupOutcome Backup { get; init; }

    /// <summary>Three moments after the base backup: time, state fingerprint, and the WAL file written at that moment.</summary>
    public required IReadOnlyList<(DateTimeOffset At, string Fingerprint, string WalFile)> Moments { get; init; }

    public required string FinalFingerprint { get; init; }
    public required string DbPassword { get; init; }

    public static Task<ReferenceArchive> GetAsync(CryptoFixture keys, TestLog log)
    {
        lock (Gate)
        {
            return _instance ??= BuildAsync(keys, log);
        }
    }

    private static async Task<ReferenceArchive> BuildAsync(CryptoFixture keys, TestLog log)
    {
        var store = Directory.CreateTempSubdirectory("hubdr-pitr-reference-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => TryDelete(store);
        await using var pg = await PgCluster.CreateAsync(prefix: "ref");
        await Workload.CreateSchemaAsync(pg.ConnectionString());
        var archiver = new RunningArchiver(new WalArchiverOptions
        {
            Hub = "ref",
            Store = new() { Uri = store },
            Database = pg.Spec(),
            Keys = PitrKeys.Archive(keys),
            PartialInterval = TimeSpan.FromSeconds(1),
        }, log);
        await using (archiver)
        {
            var backup = await BaseBackupService.CreateAsync(new BaseBackupRequest
            {
                Hub = "ref",
                Store = new() { Uri = store },
                Database = pg.Spec(),
                RecipientKeys = [keys.Ops.ArmoredPublicKey, keys.Escrow.ArmoredPublicKey],
                SigningKeys = [keys.Ops.ArmoredSecretKey],
                SigningPassphrase = CryptoFixture.OpsPass.ToCharArray(),
            }, log, CancellationToken.None);
            var moments = new List<(DateTimeOffset, string, string)>();
            await using (var work = new Workload(pg.ConnectionString()))
            {
                work.Start();
                for (var i = 0; i < 3; i++)
                {
                    await Task.Delay(2000);
                    var (at, fp) = await work.MomentAsync();
                    var file = await pg.ScalarAsync<string>("SELECT pg_walfile_name(pg_current_wal_lsn())");
                    moments.Add((at, fp, file));
                    await pg.ExecAsync("SELECT pg_switch_wal()");
                }

                await Task.Delay(1000);
                await work.StopAsync();
            }

            var final = await Workload.FingerprintAsync(pg.ConnectionString());
            await archiver.WaitArchivedAsync(pg);
            await archiver.StopAsync();
            return new ReferenceArchive
            {
                StorePath = store,
                Hub = "ref",
                Backup = backup,
                Moments = moments,
                FinalFingerprint = final,
                DbPassword = pg.Password,
            };
        }
    }

    private static void TryDelete(string dir)
    {
        try
        {
            Directory.Delete(dir, true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>A private copy of the archive (the tests may damage it).</summary>
    public TempStore CopyStore()
    {
        var copy = new TempStore();
        foreach (var file in Directory.EnumerateFiles(StorePath, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(copy.Path, Path.GetRelativePath(StorePath, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }

        return copy;
    }

    /// <summary>Key of the WAL segment object (relative to the store root) written at moment <paramref name="i"/>.</summary>
    public string SegmentObject(int i) => $"{Hub}/_wal/{Moments[i].WalFile[..8]}/{Moments[i].WalFile}.zst.gpg";
}
