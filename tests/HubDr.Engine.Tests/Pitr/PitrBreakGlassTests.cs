using System.Globalization;
using HubDr.Engine.Tests.Crypto;
using Xunit;
using Xunit.Abstractions;

namespace HubDr.Engine.Tests.Pitr;

/// <summary>docs/pitr.md "Break-glass", executed: real gpg, zstd, tar and PostgreSQL; the restore_command script exactly as written there.</summary>
[Collection("PitrKeys")]
public sealed class PitrBreakGlassTests(CryptoFixture keys, ITestOutputHelper output) : PitrTestBase(keys, output)
{
    private static string DocScript()
    {
        var doc = File.ReadAllText(FindUp("docs/pitr.md"));
        var start = doc.IndexOf("<!-- break-glass-restore-command:start -->", StringComparison.Ordinal);
        var end = doc.IndexOf("<!-- break-glass-restore-command:end -->", StringComparison.Ordinal);
        Assert.True(start > 0 && end > start, "docs/pitr.md has no break-glass restore_command block");
        var block = doc[start..end];
        var body = block[(block.IndexOf("```sh\n", StringComparison.Ordinal) + 6)..block.LastIndexOf("```", StringComparison.Ordinal)];
        return body;
    }

    private static string FindUp(string relative)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            var p = Path.Combine(d.FullName, relative);
            if (File.Exists(p))
            {
                return p;
            }
        }

        throw new FileNotFoundException(relative);
    }

    private static async Task<string> Bash(string script, int expect = 0)
    {
        var (code, stdout, stderr) = await PgCluster.RunAsync("bash", ["-c", script]);
        Assert.True(code == expect, $"exit {code} (expected {expect}): {script}\n{stdout}\n{stderr}");
        return stdout;
    }

    [Fact]
    public async Task GpgOnlyRestore_WithTheDocumentedRestoreCommand_RecoversTheMoment()
    {
        var reference = await ReferenceArchive.GetAsync(Keys, Log);
        using var copy = reference.CopyStore();
        var root = PgCluster.NewRoot("breakglass");
        var wal = Path.Combine(root, "wal");
        var backup = Path.Combine(root, "backup");
        Directory.Move(Path.Combine(copy.Path, reference.Hub, "_wal"), wal);
        Directory.Move(Path.Combine(copy.Path, reference.Hub, reference.Backup.Catalog.BackupId), backup);
        var script = Path.Combine(root, "hubdr-wal-restore.sh");
        await File.WriteAllTextAsync(script, DocScript());
        await File.WriteAllTextAsync(Path.Combine(root, "ops.pub.asc"), Keys.Ops.ArmoredPublicKey);
        await File.WriteAllTextAsync(Path.Combine(root, "escrow.sec.asc"), Keys.Escrow.ArmoredSecretKey);
        var fpr = Keys.Ops.Key.Fingerprint;
        var target = reference.Moments[1];
        var data = Path.Combine(root, "data");
        var gnupg = Path.Combine(root, "gnupg");
        var pass = Path.Combine(root, "passphrase");
        try
        {
            // Steps 2 and 3 of the document, with this test's paths.
            await Bash($"""
                set -e
                chown -R postgres:postgres '{backup}' '{wal}' '{root}/ops.pub.asc' '{root}/escrow.sec.asc'
                install -d -m 700 -o postgres -g postgres '{gnupg}'
                install -m 600 -o postgres -g postgres /dev/null '{pass}' && printf '%s' '{CryptoFixture.EscrowPass}' > '{pass}'
                G="runuser -u postgres -- gpg --homedir {gnupg} --batch --pinentry-mode loopback --passphrase-file {pass}"
                $G --import '{root}/ops.pub.asc' '{root}/escrow.sec.asc'
                cd '{backup}'
                $G --status-fd 1 --verify archive.tar.zst.gpg.sig archive.tar.zst.gpg | grep "VALIDSIG .* {fpr}\$"
                install -d -m 700 -o postgres -g postgres '{data}'
                $G --decrypt archive.tar.zst.gpg | tar --zstd -xO --wildcards 'db/base.tar.part-*' | runuser -u postgres -- tar -x -C '{data}'
                """);
            Assert.True(File.Exists(Path.Combine(data, "backup_label")));

            // The script's own contract, before PostgreSQL uses it.
            var args = $"'{wal}' '{gnupg}' {fpr} '{pass}' 1048576";
            await Bash($"runuser -u postgres -- /bin/bash '{script}' {args} 0000000100000000000000FF '{root}/x'", expect: 1);
            var seg = reference.Moments[0].WalFile;
            var probe = Path.Combine(root, "probe");
            await Bash($"install -d -o postgres '{probe}' && runuser -u postgres -- /bin/bash '{script}' {args} {seg} '{probe}/{seg}'");
            Assert.Equal(1 << 20, new FileInfo(Path.Combine(probe, seg)).Length);
            // a tampered copy is refused with 126, before anything is decrypted
            var tamperedWal = Path.Combine(root, "tampered");
            await Bash($"cp -a '{wal}' '{tamperedWal}' && printf 'X' | dd of='{tamperedWal}/{seg[..8]}/{seg}.zst.gpg' bs=1 seek=200 conv=notrunc status=none");
            await Bash($"runuser -u postgres -- /bin/bash '{script}' '{tamperedWal}' '{gnupg}' {fpr} '{pass}' 1048576 {seg} '{probe}/t'", expect: 126);
            Assert.False(File.Exists(Path.Combine(probe, "t")) && new FileInfo(Path.Combine(probe, "t")).Length > 0);

            // Step 5: recover with PostgreSQL and the script, exactly as documented.
            var when = target.At.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture) + "+00";
            await File.AppendAllTextAsync(Path.Combine(data, "postgresql.auto.conf"),
                $"restore_command = '/bin/bash {script} {wal} {gnupg} {fpr} {pass} 1048576 %f %p'\n" +
                $"recovery_target_time = '{when}'\nrecovery_target_action = 'promote'\n");
            await Bash($"runuser -u postgres -- touch '{data}/recovery.signal'");
            var cluster = PgCluster.Adopt(root, data, reference.DbPassword);
            await using (cluster)
            {
                await cluster.StartAsync();
                await PitrBadInputTests.WaitPromotedAsync(cluster);
                Assert.Equal(target.Fingerprint, await Workload.FingerprintAsync(cluster.ConnectionString()));
            }
        }
        finally
        {
            await PgCluster.RunAsync("runuser", ["-u", "postgres", "--", "gpgconf", "--homedir", gnupg, "--kill", "all"]);
            if (Directory.Exists(root))
            {
                Directory.Delete(root, true); // the adopted cluster's disposal removes it too
            }
        }
    }
}
