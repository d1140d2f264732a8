using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using HubDr.Engine.Monitoring;
using Xunit;

namespace HubDr.Engine.Tests.Monitoring;

/// <summary>Every test talks to a real HttpListener on 127.0.0.1 (or to a port nobody listens on).</summary>
public sealed class WebhookNotifierTests
{
    private const string PathSecret = "T000/B000/XXXXsecretpathXXXX";

    private static readonly Alert SampleAlert = new(
        "backup_failed", "prod", "20261126T030000Z-prod-ab12",
        "Backup of hub 'prod' failed: pg_dump exited 1 (Password=hunter2 in conn string)\nsecond line",
        "DatabaseDumpFailed", new DateTimeOffset(2026, 11, 26, 3, 0, 0, TimeSpan.Zero),
        new Dictionary<string, object?> { ["store"] = "s3://b/p", ["attempt"] = 2, ["apiToken"] = "tok-xyz", ["nested"] = new { clientSecret = "cs-123", size = 5 } });

    private static readonly TimeSpan[] FastRetry = [TimeSpan.FromMilliseconds(50)];

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    /// <summary>A real HTTP server answering request n with <paramref name="handle"/>(n, context).</summary>
    private sealed class Server : IDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly Task _loop;

        public Server(Func<int, HttpListenerContext, Task> handle)
        {
            Port = FreePort();
            _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
            _listener.Start();
            _loop = Task.Run(async () =>
            {
                var n = 0;
                while (_listener.IsListening)
                {
                    HttpListenerContext ctx;
                    try
                    {
                        ctx = await _listener.GetContextAsync();
                    }
                    catch (Exception) when (!_listener.IsListening)
                    {
                        return;
                    }
                    catch (HttpListenerException)
                    {
                        return;
                    }
                    catch (ObjectDisposedException)
                    {
                        return;
                    }

                    var i = ++n;
                    using var reader = new StreamReader(ctx.Request.InputStream);
                    Requests.Enqueue((ctx.Request.HttpMethod, ctx.Request.RawUrl ?? "", ctx.Request.ContentType ?? "", ctx.Request.Headers["Authorization"], await reader.ReadToEndAsync()));
                    _ = Task.Run(async () =>
                    {
                        try
                        {
                            await handle(i, ctx);
                            ctx.Response.Close();
                        }
                        catch (Exception)
                        {
                            // client went away (timeout tests)
                        }
                    });
                }
            });
        }

        public int Port { get; }

        public ConcurrentQueue<(string Method, string Url, string ContentType, string? Authorization, string Body)> Requests { get; } = new();

        public Uri Url => new($"http://127.0.0.1:{Port}/hooks/{PathSecret}");

        public void Dispose()
        {
            try
            {
                // Close alone (it stops too): Stop-then-Close makes .NET's managed HttpListener look the port up
                // again while closing, which throws "Address already in use" when a parallel test got that port.
                _listener.Close();
            }
            catch (HttpListenerException)
            {
                // Cleanup only: the assertions are already made.
            }

            _loop.Wait(5000);
        }
    }

    private static Task Status(HttpListenerContext ctx, int code)
    {
        ctx.Response.StatusCode = code;
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Delivers_GenericAndSlackCompatibleBody_WithHeaders()
    {
        using var server = new Server((_, ctx) => Status(ctx, 200));
        using var n = new WebhookNotifier(server.Url, new Dictionary<string, string> { ["Authorization"] = "Bearer header-secret-1" });

        var r = await n.NotifyAsync(SampleAlert, CancellationToken.None);

        Assert.Equal(new WebhookResult(true, 200, 1, null), r);
        var req = Assert.Single(server.Requests);
        Assert.Equal("POST", req.Method);
        Assert.Equal("/hooks/" + PathSecret, req.Url);
        Assert.StartsWith("application/json", req.ContentType, StringComparison.Ordinal);
        Assert.Equal("Bearer header-secret-1", req.Authorization);

        var body = JsonDocument.Parse(req.Body).RootElement;
        Assert.Equal("backup_failed", body.GetProperty("event").GetString());
        Assert.Equal("prod", body.GetProperty("hub").GetString());
        Assert.Equal("20261126T030000Z-prod-ab12", body.GetProperty("backupId").GetString());
        Assert.Equal("DatabaseDumpFailed", body.GetProperty("errorId").GetString());
        Assert.Equal("2026-11-26T03:00:00.000Z", body.GetProperty("time").GetString());
        Assert.Equal("s3://b/p", body.GetProperty("details").GetProperty("store").GetString());
        Assert.Equal(2, body.GetProperty("details").GetProperty("attempt").GetInt32());
        Assert.Equal(5, body.GetProperty("details").GetProperty("nested").GetProperty("size").GetInt32());
        var summary = body.GetProperty("summary").GetString()!;
        Assert.StartsWith("Backup of hub 'prod' failed", summary, StringComparison.Ordinal);
        var text = body.GetProperty("text").GetString()!;
        Assert.Contains("backup_failed", text, StringComparison.Ordinal);
        Assert.Contains("'prod'", text, StringComparison.Ordinal);
        Assert.Contains("DatabaseDumpFailed", text, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', text);
        Assert.DoesNotContain('\n', summary);
        foreach (var secret in new[] { "hunter2", "tok-xyz", "cs-123" })
        {
            Assert.DoesNotContain(secret, req.Body, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task RetriesAfter503_ThenSucceeds()
    {
        using var server = new Server((i, ctx) => Status(ctx, i == 1 ? 503 : 204));
        using var n = new WebhookNotifier(server.Url) { RetryDelays = FastRetry };

        var r = await n.NotifyAsync(SampleAlert, CancellationToken.None);

        Assert.True(r.Delivered);
        Assert.Equal(204, r.StatusCode);
        Assert.Equal(2, r.Attempts);
        Assert.Equal(2, server.Requests.Count);
        Assert.Equal(server.Requests.First().Body, server.Requests.Last().Body);
    }

    [Fact]
    public async Task Persistent5xx_GivesUpAfterThreeAttempts_WithoutLeakingTheUrlPath()
    {
        using var server = new Server((_, ctx) => Status(ctx, 502));
        using var n = new WebhookNotifier(server.Url) { RetryDelays = FastRetry };

        var r = await n.NotifyAsync(SampleAlert, CancellationToken.None);

        Assert.False(r.Delivered);
        Assert.Equal(502, r.StatusCode);
        Assert.Equal(3, r.Attempts);
        Assert.Equal(3, server.Requests.Count);
        Assert.Contains("502", r.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("secretpath", r.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ClientError_IsNotRetried()
    {
        using var server = new Server((_, ctx) => Status(ctx, 400));
        using var n = new WebhookNotifier(server.Url) { RetryDelays = FastRetry };

        var r = await n.NotifyAsync(SampleAlert, CancellationToken.None);

        Assert.Equal(new WebhookResult(false, 400, 1, r.Error), r);
        Assert.Single(server.Requests);
    }

    [Fact]
    public async Task UnreachablePort_ReturnsNotDelivered_WithoutThrowing()
    {
        var port = FreePort(); // nobody listens here
        using var n = new WebhookNotifier(new Uri($"http://127.0.0.1:{port}/hooks/{PathSecret}"), new Dictionary<string, string> { ["Authorization"] = "Bearer header-secret-2" })
        { RetryDelays = FastRetry };

        var r = await n.NotifyAsync(SampleAlert, CancellationToken.None);

        Assert.False(r.Delivered);
        Assert.Null(r.StatusCode);
        Assert.Equal(3, r.Attempts);
        Assert.Contains("could not be reached", r.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("secretpath", r.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("header-secret-2", r.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SlowReceiver_TimesOutPerAttempt()
    {
        using var server = new Server(async (_, ctx) =>
        {
            await Task.Delay(5000);
            ctx.Response.StatusCode = 200;
        });
        using var n = new WebhookNotifier(server.Url, timeout: TimeSpan.FromMilliseconds(300)) { RetryDelays = FastRetry, MaxAttempts = 2 };

        var sw = Stopwatch.StartNew();
        var r = await n.NotifyAsync(SampleAlert, CancellationToken.None);
        sw.Stop();

        Assert.False(r.Delivered);
        Assert.Null(r.StatusCode);
        Assert.Equal(2, r.Attempts);
        Assert.Contains("timeout", r.Error, StringComparison.Ordinal);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(3), $"took {sw.Elapsed}");
        Assert.Equal(2, server.Requests.Count);
    }

    [Fact]
    public async Task CallerCancellation_Throws()
    {
        using var server = new Server(async (_, ctx) =>
        {
            await Task.Delay(5000);
            ctx.Response.StatusCode = 200;
        });
        using var n = new WebhookNotifier(server.Url, timeout: TimeSpan.FromSeconds(30));
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => n.NotifyAsync(SampleAlert, cts.Token));
    }

    [Fact]
    public void NonHttpUrl_IsRejected()
    {
        Assert.Equal("WebhookUrlInvalid", Assert.Throws<HubDrException>(() => new WebhookNotifier(new Uri("file:///tmp/x"))).ErrorId);
    }
}
