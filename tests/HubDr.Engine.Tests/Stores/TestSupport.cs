using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security;
using System.Text;
using Amazon.S3;
using Amazon.S3.Model;
using Azure.Storage.Blobs;
using HubDr.Engine.Stores;

namespace HubDr.Engine.Tests.Stores;

/// <summary>Emulator settings from emulators.env (tests/emulators/emulators.sh start DIR; set -a; . DIR/emulators.env).</summary>
internal static class Emu
{
    static Emu()
    {
        // Fast backoff for tests; production defaults are 200 ms .. 20 s.
        Retry.BaseDelay = TimeSpan.FromMilliseconds(20);
        Retry.MaxDelay = TimeSpan.FromMilliseconds(200);
    }

    public static string Need(string name)
    {
        var v = Environment.GetEnvironmentVariable(name);
        if (string.IsNullOrWhiteSpace(v))
        {
            throw new InvalidOperationException(
                $"Environment variable {name} is not set. Start the emulators first: tests/emulators/emulators.sh start /tmp/hubdr-emu && set -a && . /tmp/hubdr-emu/emulators.env && set +a");
        }

        return v;
    }

    public static string S3Endpoint => Need("HUBDR_TEST_S3_ENDPOINT");
    public static string AzureConnectionString => Need("HUBDR_TEST_AZURE_CONNECTION_STRING");
    public static string AzureBlobEndpoint => Need("HUBDR_TEST_AZURE_BLOB_ENDPOINT");

    public static void Init() { }

    public static SecureString Secure(string s)
    {
        var ss = new SecureString();
        foreach (var c in s)
        {
            ss.AppendChar(c);
        }

        ss.MakeReadOnly();
        return ss;
    }

    public static StoreSpec S3Spec(string uri, string? endpoint = null, int maxRetries = 3) => new()
    {
        Uri = uri,
        Endpoint = endpoint ?? S3Endpoint,
        AccessKeyId = Need("HUBDR_TEST_S3_ACCESS_KEY"),
        SecretAccessKey = Secure(Need("HUBDR_TEST_S3_SECRET_KEY")),
        ForcePathStyle = true,
        MaxRetries = maxRetries,
    };

    public static IAmazonS3 S3Admin(string? endpoint = null) => new AmazonS3Client(
        new Amazon.Runtime.BasicAWSCredentials(Need("HUBDR_TEST_S3_ACCESS_KEY"), Need("HUBDR_TEST_S3_SECRET_KEY")),
        new AmazonS3Config
        {
            ServiceURL = endpoint ?? S3Endpoint,
            ForcePathStyle = true,
            AuthenticationRegion = "us-east-1",
            RequestChecksumCalculation = Amazon.Runtime.RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = Amazon.Runtime.ResponseChecksumValidation.WHEN_REQUIRED,
        });

    public static async Task<string> NewBucketAsync(string? endpoint = null)
    {
        var name = "hubdr-" + Guid.NewGuid().ToString("N")[..16];
        using var s3 = S3Admin(endpoint);
        await s3.PutBucketAsync(new PutBucketRequest { BucketName = name });
        return name;
    }

    public static StoreSpec AzureSpec(string uri, string? connectionString = null, int maxRetries = 3) => new()
    {
        Uri = uri,
        ConnectionString = Secure(connectionString ?? AzureConnectionString),
        MaxRetries = maxRetries,
    };

    public static async Task<string> NewContainerAsync(string? connectionString = null)
    {
        var name = "hubdr-" + Guid.NewGuid().ToString("N")[..16];
        await new BlobContainerClient(connectionString ?? AzureConnectionString, name).CreateAsync();
        return name;
    }

    public static string RepoFile(string relative)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            var p = Path.Combine(d.FullName, relative);
            if (File.Exists(p))
            {
                return p;
            }
        }

        throw new FileNotFoundException($"{relative} not found above {AppContext.BaseDirectory}");
    }

    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public static async Task WaitForPortAsync(int port)
    {
        for (var i = 0; i < 150; i++)
        {
            try
            {
                using var c = new TcpClient();
                await c.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(100);
            }
        }

        throw new TimeoutException($"Nothing listens on 127.0.0.1:{port}");
    }

    public static async Task<byte[]> ReadAllAsync(Stream s)
    {
        using var ms = new MemoryStream();
        await s.CopyToAsync(ms);
        return ms.ToArray();
    }

    public static async Task<List<StoreObject>> ListAllAsync(IBackupStore store, string prefix)
    {
        var list = new List<StoreObject>();
        await foreach (var o in store.ListAsync(prefix, CancellationToken.None))
        {
            list.Add(o);
        }

        return list;
    }
}

/// <summary>A private S3 emulator process (s3-server.js) the test can kill and restart.</summary>
internal sealed class PrivateS3Emulator : IAsyncDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "hubdr-s3-" + Guid.NewGuid().ToString("N"));
    private Process? _p;

    public int Port { get; } = Emu.FreePort();

    public string Endpoint => $"http://127.0.0.1:{Port}";

    public async Task StartAsync()
    {
        Directory.CreateDirectory(_dir);
        var psi = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("--openssl-legacy-provider");
        psi.ArgumentList.Add(Emu.RepoFile("tests/emulators/s3-server.js"));
        foreach (var a in new[] { "--directory", _dir, "--address", "127.0.0.1", "--port", Port.ToString() })
        {
            psi.ArgumentList.Add(a);
        }

        _p = Process.Start(psi)!;
        _p.OutputDataReceived += (_, _) => { };
        _p.ErrorDataReceived += (_, _) => { };
        _p.BeginOutputReadLine();
        _p.BeginErrorReadLine();
        await Emu.WaitForPortAsync(Port);
    }

    public void Kill()
    {
        if (_p is { HasExited: false })
        {
            _p.Kill(entireProcessTree: true);
            _p.WaitForExit();
        }
    }

    public ValueTask DisposeAsync()
    {
        Kill();
        try
        {
            Directory.Delete(_dir, true);
        }
        catch (IOException)
        {
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// Loopback HTTP proxy in front of an emulator: one request per client connection (forces Connection: close),
/// so every request passes through <see cref="Decide"/>: forward, answer 503 SlowDown, or drop the
/// connection after forwarding part of the body.
/// </summary>
internal sealed class FaultProxy : IAsyncDisposable
{
    public enum Action { Forward, Fail503, DropMidBody }

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _upstreamPort;
    private readonly CancellationTokenSource _cts = new();
    private int _requests;

    public FaultProxy(int upstreamPort, Func<int, string, Action> decide)
    {
        _upstreamPort = upstreamPort;
        Decide = decide;
        _listener.Start();
        _ = Task.Run(AcceptLoop);
    }

    /// <summary>(1-based request number, request line) -> what to do.</summary>
    public Func<int, string, Action> Decide { get; set; }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public int Failed503;
    public int Dropped;
    public int Forwarded;

    private async Task AcceptLoop()
    {
        while (!_cts.IsCancellationRequested)
        {
            TcpClient c;
            try
            {
                c = await _listener.AcceptTcpClientAsync(_cts.Token);
            }
            catch
            {
                return;
            }

            _ = Task.Run(() => Handle(c));
        }
    }

    private async Task Handle(TcpClient client)
    {
        using var _ = client;
        try
        {
            var cs = client.GetStream();
            var (head, leftover) = await ReadHeadAsync(cs);
            if (head is null)
            {
                return;
            }

            var lines = head.Split("\r\n");
            long contentLength = 0;
            var expect = false;
            var outLines = new List<string> { lines[0] };
            foreach (var l in lines.Skip(1))
            {
                if (l.Length == 0)
                {
                    continue;
                }

                var name = l[..Math.Max(0, l.IndexOf(':'))].Trim().ToLowerInvariant();
                if (name == "content-length")
                {
                    contentLength = long.Parse(l[(l.IndexOf(':') + 1)..].Trim());
                }

                if (name == "expect")
                {
                    expect = true;
                }

                if (name is "connection" or "keep-alive")
                {
                    continue;
                }

                outLines.Add(l);
            }

            outLines.Add("Connection: close");
            var n = Interlocked.Increment(ref _requests);
            var action = Decide(n, lines[0]);
            if (action == Action.Fail503)
            {
                Interlocked.Increment(ref Failed503);
                if (!expect)
                {
                    await DrainAsync(cs, contentLength - leftover.Length);
                }

                var body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                var resp = $"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nx-ms-error-code: ServerBusy\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\nConnection: close\r\n\r\n{body}";
                await cs.WriteAsync(Encoding.ASCII.GetBytes(resp));
                await cs.FlushAsync();
                client.Client.Shutdown(SocketShutdown.Both);
                return;
            }

            using var up = new TcpClient();
            await up.ConnectAsync(IPAddress.Loopback, _upstreamPort);
            var us = up.GetStream();
            await us.WriteAsync(Encoding.ASCII.GetBytes(string.Join("\r\n", outLines) + "\r\n\r\n"));
            await us.WriteAsync(leftover);
            var remaining = contentLength - leftover.Length;
            if (action == Action.DropMidBody)
            {
                Interlocked.Increment(ref Dropped);
                await CopyAsync(cs, us, Math.Min(remaining, Math.Max(0, contentLength / 2 - leftover.Length)));
                client.Client.LingerState = new LingerOption(true, 0); // RST
                up.Client.LingerState = new LingerOption(true, 0);
                return;
            }

            Interlocked.Increment(ref Forwarded);
            var toUp = CopyAsync(cs, us, remaining);
            await us.CopyToAsync(cs); // response until upstream closes (Connection: close)
            await toUp;
        }
        catch (Exception) when (_cts.IsCancellationRequested || true)
        {
            // Connection-level failures are what this proxy is for.
        }
    }

    private static async Task CopyAsync(Stream from, Stream to, long count)
    {
        var buf = new byte[65536];
        while (count > 0)
        {
            var r = await from.ReadAsync(buf.AsMemory(0, (int)Math.Min(buf.Length, count)));
            if (r == 0)
            {
                return;
            }

            await to.WriteAsync(buf.AsMemory(0, r));
            count -= r;
        }
    }

    private static Task DrainAsync(Stream s, long count) => CopyAsync(s, Stream.Null, count);

    private static async Task<(string? Head, byte[] Leftover)> ReadHeadAsync(Stream s)
    {
        var buf = new List<byte>(4096);
        var one = new byte[4096];
        while (true)
        {
            var r = await s.ReadAsync(one);
            if (r == 0)
            {
                return (null, []);
            }

            buf.AddRange(one.AsSpan(0, r));
            var arr = buf.ToArray();
            var idx = IndexOf(arr, "\r\n\r\n"u8);
            if (idx >= 0)
            {
                return (Encoding.ASCII.GetString(arr, 0, idx), arr[(idx + 4)..]);
            }
        }
    }

    private static int IndexOf(byte[] a, ReadOnlySpan<byte> pat) => a.AsSpan().IndexOf(pat);

    public ValueTask DisposeAsync()
    {
        _cts.Cancel();
        _listener.Stop();
        return ValueTask.CompletedTask;
    }
}
