using System.Diagnostics;
using System.Text;
using HubDr.Engine.Crypto;
using Xunit;

namespace HubDr.Engine.Tests.Crypto;

/// <summary>Keys generated once per test collection (RSA generation is slow).</summary>
public sealed class CryptoFixture
{
    public const string OpsPass = "ops pass phrase ü";
    public const string EscrowPass = "escrow-Pass-2";
    public const string OtherPass = "other";

    public GeneratedKeyPair Ops { get; } = KeyGenerator.Generate("HubDr Ops <ops@example.test>", KeyAlgorithm.Rsa3072, OpsPass.ToCharArray());
    public GeneratedKeyPair Escrow { get; } = KeyGenerator.Generate("HubDr Escrow <escrow@example.test>", KeyAlgorithm.EcdsaP256, EscrowPass.ToCharArray());
    public GeneratedKeyPair Other { get; } = KeyGenerator.Generate("Mallory <other@example.test>", KeyAlgorithm.EcdsaP256, OtherPass.ToCharArray());

    public OpenPgpKeySet Public(params GeneratedKeyPair[] keys) => OpenPgpKeySet.LoadPublic(keys.Select(k => k.ArmoredPublicKey));
    public OpenPgpKeySet Secret(params GeneratedKeyPair[] keys) => OpenPgpKeySet.LoadSecret(keys.Select(k => k.ArmoredSecretKey));

    public char[]? PassFor(string fingerprint) =>
        fingerprint == Ops.Key.Fingerprint ? OpsPass.ToCharArray()
        : fingerprint == Escrow.Key.Fingerprint ? EscrowPass.ToCharArray()
        : fingerprint == Other.Key.Fingerprint ? OtherPass.ToCharArray()
        : null;
}

[CollectionDefinition("Crypto")]
public sealed class CryptoCollection : ICollectionFixture<CryptoFixture> { }

/// <summary>
/// Tests that measure the process-wide managed heap must not share the process with tests running in parallel:
/// their allocations would be counted too. xunit runs this collection on its own.
/// </summary>
[CollectionDefinition("CryptoMemory", DisableParallelization = true)]
public sealed class CryptoMemoryCollection : ICollectionFixture<CryptoFixture> { }

internal static class TestData
{
    public static byte[] Random(int size, int seed)
    {
        var b = new byte[size];
        new Random(seed).NextBytes(b);
        return b;
    }

    public static byte[] Encrypt(byte[] plain, OpenPgpKeySet recipients, string name = "archive.tar.zst")
    {
        using var ms = new MemoryStream();
        using (var enc = OpenPgpEncryption.OpenEncrypt(ms, recipients, name, DateTimeOffset.UtcNow))
        {
            // Write in odd-sized chunks to exercise the partial packet boundaries.
            int pos = 0, chunk = 1;
            while (pos < plain.Length)
            {
                int n = Math.Min(chunk, plain.Length - pos);
                enc.Write(plain, pos, n);
                pos += n;
                chunk = chunk * 3 + 7;
                if (chunk > 300_000) chunk = 1;
            }
        }
        Assert.True(ms.CanWrite, "output stream must be left open");
        return ms.ToArray();
    }

    public static byte[] Decrypt(byte[] cipher, OpenPgpKeySet secret, Func<string, char[]?> pass, out DecryptionInfo info)
    {
        using var s = OpenPgpEncryption.OpenDecrypt(new MemoryStream(cipher), secret, pass, out info);
        using var ms = new MemoryStream();
        s.CopyTo(ms, 1 << 16);
        return ms.ToArray();
    }
}

/// <summary>A throwaway GNUPGHOME for the real gpg; passphrases only ever go through stdin.</summary>
public sealed class GpgHome : IDisposable
{
    public string Home { get; }

    public GpgHome()
    {
        Home = Directory.CreateTempSubdirectory("hubdr-gpg-").FullName;
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(Home, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.WriteAllText(Path.Combine(Home, "gpg-agent.conf"), "allow-loopback-pinentry\n");
    }

    public string PathOf(string name) => Path.Combine(Home, name);

    public (int Code, byte[] Stdout, string Stderr) Run(string? passphrase, params string[] args)
    {
        var psi = new ProcessStartInfo("/usr/bin/gpg")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.Environment["GNUPGHOME"] = Home;
        psi.ArgumentList.Add("--batch");
        psi.ArgumentList.Add("--no-tty");
        psi.ArgumentList.Add("--homedir");
        psi.ArgumentList.Add(Home);
        if (passphrase is not null)
        {
            psi.ArgumentList.Add("--pinentry-mode");
            psi.ArgumentList.Add("loopback");
            psi.ArgumentList.Add("--passphrase-fd");
            psi.ArgumentList.Add("0");
        }
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdoutTask = Task.Run(() => { using var ms = new MemoryStream(); p.StandardOutput.BaseStream.CopyTo(ms); return ms.ToArray(); });
        var stderrTask = p.StandardError.ReadToEndAsync();
        if (passphrase is not null)
            p.StandardInput.Write(passphrase + "\n");
        p.StandardInput.Close();
        if (!p.WaitForExit(120_000))
        {
            p.Kill(true);
            throw new TimeoutException("gpg " + string.Join(' ', args) + " timed out");
        }
        return (p.ExitCode, stdoutTask.Result, stderrTask.Result);
    }

    public byte[] Ok(string? passphrase, params string[] args)
    {
        var (code, stdout, stderr) = Run(passphrase, args);
        Assert.True(code == 0, $"gpg {string.Join(' ', args)} failed ({code}): {stderr}");
        return stdout;
    }

    public string Import(string armored, string? passphrase = null)
    {
        var file = PathOf("import-" + Guid.NewGuid().ToString("N") + ".asc");
        File.WriteAllText(file, armored);
        var (code, _, stderr) = Run(passphrase, "--import", file);
        Assert.True(code == 0, "gpg --import failed: " + stderr);
        return stderr;
    }

    public void Dispose()
    {
        try
        {
            var psi = new ProcessStartInfo("/usr/bin/gpgconf", "--kill all") { UseShellExecute = false, RedirectStandardError = true };
            psi.Environment["GNUPGHOME"] = Home;
            using var p = Process.Start(psi);
            p?.WaitForExit(10_000);
        }
        catch (Exception)
        {
            // best effort
        }
        try { Directory.Delete(Home, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
