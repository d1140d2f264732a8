using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using HubDr.Engine.Sources;

namespace HubDr.Engine.Monitoring;

/// <summary>Something an operator must look at. <paramref name="Event"/>: "backup_failed", "restore_test_failed", "restore_failed", "retention_failed", ...</summary>
public sealed record Alert(string Event, string Hub, string? BackupId, string Summary, string? ErrorId, DateTimeOffset Time, IReadOnlyDictionary<string, object?>? Details);

/// <summary>Outcome of a webhook delivery. <paramref name="Error"/> never contains the URL path/query or any header value.</summary>
public sealed record WebhookResult(bool Delivered, int? StatusCode, int Attempts, string? Error);

/// <summary>
/// POSTs an <see cref="Alert"/> as JSON to a webhook (generic receivers, Slack/Teams incoming webhooks via the
/// "text" field, Alertmanager-style relays). Up to <see cref="MaxAttempts"/> attempts with backoff on 5xx, 408, 429,
/// connection errors and timeouts; other 4xx are final. Delivery failures are returned, never thrown; only
/// cancellation of the caller's token throws. The URL (which may embed a token) and header values
/// (Authorization) never appear in <see cref="WebhookResult.Error"/>.
/// </summary>
public sealed class WebhookNotifier : IDisposable
{
    private readonly Uri _url;
    private readonly IReadOnlyDictionary<string, string> _headers;
    private readonly HttpClient _http;

    /// <param name="timeout">Per attempt; default 10 s.</param>
    public WebhookNotifier(Uri url, IReadOnlyDictionary<string, string>? headers = null, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(url);
        if (!url.IsAbsoluteUri || (url.Scheme != Uri.UriSchemeHttps && url.Scheme != Uri.UriSchemeHttp))
        {
            throw new HubDrException("WebhookUrlInvalid", HubErrorCategory.InvalidArgument,
                "The webhook URL must be an absolute http:// or https:// URL.");
        }

        _url = url;
        _headers = headers ?? new Dictionary<string, string>();
        Timeout = timeout ?? TimeSpan.FromSeconds(10);
        _http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, PooledConnectionLifetime = TimeSpan.FromMinutes(2) })
        {
            Timeout = System.Threading.Timeout.InfiniteTimeSpan, // per-attempt timeout is ours
        };
    }

    public TimeSpan Timeout { get; }

    public int MaxAttempts { get; init; } = 3;

    /// <summary>Wait before attempt 2, 3, ... (the last entry repeats). Default 2 s, 5 s.</summary>
    public IReadOnlyList<TimeSpan> RetryDelays { get; init; } = [TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(5)];

    /// <summary>Redacts Summary and string Details before sending. Default: the built-in rules.</summary>
    public Redactor Redactor { get; init; } = new();

    /// <summary>The exact JSON body sent for <paramref name="alert"/> (after redaction).</summary>
    public string BuildBody(Alert alert)
    {
        ArgumentNullException.ThrowIfNull(alert);
        var summary = OneLine(Redactor.RedactText(alert.Summary ?? "", "webhook:summary"));
        var body = new JsonObject
        {
            ["event"] = alert.Event,
            ["hub"] = alert.Hub,
            ["backupId"] = alert.BackupId,
            ["summary"] = summary,
            ["errorId"] = alert.ErrorId,
            ["time"] = alert.Time.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
            ["details"] = RedactDetails(alert.Details),
            ["text"] = Text(alert, summary),
        };
        return body.ToJsonString();
    }

    public async Task<WebhookResult> NotifyAsync(Alert alert, CancellationToken ct)
    {
        var body = BuildBody(alert);
        int? lastStatus = null;
        string? lastError = null;
        var attempts = 0;
        for (var attempt = 1; attempt <= Math.Max(1, MaxAttempts); attempt++)
        {
            if (attempt > 1 && RetryDelays.Count > 0)
            {
                await Task.Delay(RetryDelays[Math.Min(attempt - 2, RetryDelays.Count - 1)], ct).ConfigureAwait(false);
            }

            ct.ThrowIfCancellationRequested();
            attempts = attempt;
            using var attemptCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            attemptCts.CancelAfter(Timeout);
            bool retry;
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, _url)
                {
                    Content = new StringContent(body, new UTF8Encoding(false), "application/json"),
                };
                request.Headers.UserAgent.Add(new ProductInfoHeaderValue("HubDr", AuditLog.EngineVersion));
                foreach (var (name, value) in _headers)
                {
                    if (!request.Headers.TryAddWithoutValidation(name, value))
                    {
                        request.Content.Headers.Remove(name);
                        request.Content.Headers.TryAddWithoutValidation(name, value);
                    }
                }

                using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, attemptCts.Token).ConfigureAwait(false);
                var code = (int)response.StatusCode;
                lastStatus = code;
                if (response.IsSuccessStatusCode)
                {
                    return new WebhookResult(true, code, attempt, null);
                }

                lastError = $"The webhook at {SafeUrl} answered HTTP {code} {response.ReasonPhrase}.";
                retry = code >= 500 || response.StatusCode is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                throw;
            }
            catch (OperationCanceledException)
            {
                lastStatus = null;
                lastError = $"The webhook at {SafeUrl} did not answer within {Timeout.TotalSeconds:0.###} s (timeout).";
                retry = true;
            }
            catch (HttpRequestException e)
            {
                lastStatus = null;
                lastError = $"The webhook at {SafeUrl} could not be reached: {Scrub(e.Message)}";
                retry = true;
            }

            if (!retry)
            {
                break;
            }
        }

        return new WebhookResult(false, lastStatus, attempts, lastError);
    }

    public void Dispose() => _http.Dispose();

    /// <summary>Scheme, host and port only: webhook paths often carry the secret (Slack, Teams).</summary>
    private string SafeUrl => _url.GetLeftPart(UriPartial.Authority);

    private string Scrub(string message)
    {
        var full = _url.ToString();
        var pathAndQuery = _url.PathAndQuery;
        var m = message.Replace(full, SafeUrl, StringComparison.Ordinal);
        if (pathAndQuery.Length > 1)
        {
            m = m.Replace(pathAndQuery, "/…", StringComparison.Ordinal);
        }

        return OneLine(m);
    }

    private static string OneLine(string s) => s.Replace("\r\n", " ").Replace('\n', ' ').Replace('\r', ' ').Trim();

    private static string Text(Alert a, string summary)
    {
        var sb = new StringBuilder();
        sb.Append("[HubDr] ").Append(a.Event).Append(" on hub '").Append(a.Hub).Append("': ").Append(summary);
        if (!string.IsNullOrEmpty(a.BackupId))
        {
            sb.Append(" (backup ").Append(a.BackupId).Append(')');
        }

        if (!string.IsNullOrEmpty(a.ErrorId))
        {
            sb.Append(" [").Append(a.ErrorId).Append(']');
        }

        return OneLine(sb.ToString());
    }

    private JsonNode? RedactDetails(IReadOnlyDictionary<string, object?>? details)
    {
        if (details is null)
        {
            return null;
        }

        var obj = new JsonObject();
        foreach (var (k, v) in details)
        {
            if (Redactor.IsSecretName(k))
            {
                obj[k] = Redactor.Mask;
                continue;
            }

            obj[k] = v switch
            {
                null => null,
                string s => Redactor.RedactText(s, "webhook:" + k),
                // Structured values: redacted structurally (secret-named properties anywhere inside are masked).
                _ => JsonNode.Parse(Redactor.RedactFile("details.json", JsonSerializer.SerializeToUtf8Bytes(v, v.GetType()))),
            };
        }

        return obj;
    }
}
