using System.Diagnostics;
using HubDr.Engine.Stores;
using HubDr.Engine.Stores.S3;
using Xunit;

namespace HubDr.Engine.Tests.Stores;

/// <summary>Objects HubDr writes are ordinary S3 objects: the AWS CLI (Debian package awscli) lists and reads them.</summary>
public sealed class AwsCliInteropTests
{
    private static string AwsCli()
    {
        foreach (var p in new[] { "/usr/bin/aws", "/usr/local/bin/aws" })
        {
            if (File.Exists(p))
            {
                return p;
            }
        }

        throw new InvalidOperationException("The AWS CLI is not installed. Install it with: apt-get install -y awscli");
    }

    private static async Task<string> RunAsync(string exe, params string[] args)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["AWS_ACCESS_KEY_ID"] = Emu.Need("HUBDR_TEST_S3_ACCESS_KEY");
        psi.Environment["AWS_SECRET_ACCESS_KEY"] = Emu.Need("HUBDR_TEST_S3_SECRET_KEY");
        psi.Environment["AWS_DEFAULT_REGION"] = "us-east-1";
        psi.Environment["AWS_CONFIG_FILE"] = "/dev/null";
        psi.Environment["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, $"aws {string.Join(' ', args)} failed ({p.ExitCode}): {await stderr}");
        return await stdout;
    }

    [Fact]
    public async Task AwsCliListsAndReadsWhatHubDrWrote()
    {
        Emu.Init();
        var aws = AwsCli();
        var bucket = await Emu.NewBucketAsync();
        await using var store = new S3Store(Emu.S3Spec($"s3://{bucket}/hub1"));
        var data = new byte[9 * 1024 * 1024 + 17];
        Random.Shared.NextBytes(data);
        await using (var up = await store.BeginUploadAsync("2026/archive.hubdr", StoreWriteOptions.Default, default))
        {
            await up.Content.WriteAsync(data); // multipart (2 parts)
            await up.CompleteAsync(default);
        }

        await store.PutAsync("2026/catalog.json", "{\"ok\":true}"u8.ToArray(), StoreWriteOptions.Default, default);
        var ls = await RunAsync(aws, "--endpoint-url", Emu.S3Endpoint, "s3", "ls", $"s3://{bucket}/hub1/", "--recursive");
        Assert.Contains("hub1/2026/archive.hubdr", ls);
        Assert.Contains($"{data.Length} hub1/2026/archive.hubdr", ls);
        Assert.Contains("hub1/2026/catalog.json", ls);
        var tmp = Path.Combine(Path.GetTempPath(), "hubdr-awscli-" + Guid.NewGuid().ToString("N"));
        try
        {
            await RunAsync(aws, "--endpoint-url", Emu.S3Endpoint, "s3", "cp", $"s3://{bucket}/hub1/2026/archive.hubdr", tmp);
            Assert.Equal(data, await File.ReadAllBytesAsync(tmp));
        }
        finally
        {
            File.Delete(tmp);
        }
    }
}
