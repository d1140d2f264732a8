using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace HubDr.Engine.RestoreTest.Http;

/// <summary>
/// Runs a declarative <see cref="SmokeSuite"/> against a Hub service over HTTP. Every step yields exactly one
/// <see cref="SmokeStepResult"/>; failures are results, not exceptions (only cancellation and invalid arguments throw).
/// Variable values whose names look secret (password, token, ...) never appear in any message.
/// </summary>
public static class HttpSmokeRunner
{
    public const string SkippedPrefix = "skipped: earlier step failed";

    /// <summary>Largest response body read per step; the rest is ignored.</summary>
    private const int MaxBodyBytes = 1 << 20;

    private const int ExcerptChars = 400;

    /// <summary>Messages are plain text: keep quotes and apostrophes readable instead of \u0027.</summary>
    private static readonly JsonSerializerOptions ReadableJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Task<IReadOnlyList<SmokeStepResult>> RunAsync(
        Uri baseUrl, SmokeSuite suite, IReadOnlyDictionary<string, string> variables, TimeSpan stepTimeout, CancellationToken ct)
        => RunAsync(baseUrl, suite, variables, stepTimeout, NullOperationLog.Instance, ct);

    public static async Task<IReadOnlyList<SmokeStepResult>> RunAsync(
        Uri baseUrl, SmokeSuite suite, IReadOnlyDictionary<string, string> variables, TimeSpan stepTimeout, IOperationLog log, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(suite);
        ArgumentNullException.ThrowIfNull(variables);
        log ??= NullOperationLog.Instance;
        CheckBaseUrl(baseUrl);
        if (stepTimeout <= TimeSpan.Zero)
            throw new HubDrException("SmokeStepTimeoutInvalid", HubErrorCategory.InvalidArgument,
                $"The smoke step timeout must be positive (got {stepTimeout}). Pass e.g. 30 seconds.");

        var template = new SmokeTemplate(suite.Variables, variables);
        var captureOwners = SmokeTemplate.CaptureOwners(suite);
        var failed = new HashSet<string>(StringComparer.Ordinal);
        var earlier = new List<string>();
        var results = new List<SmokeStepResult>(suite.Steps.Count);

        using var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseCookies = false,
            ConnectTimeout = stepTimeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        };
        using var http = new HttpClient(handler, disposeHandler: false) { Timeout = Timeout.InfiniteTimeSpan };

        foreach (var step in suite.Steps)
        {
            ct.ThrowIfCancellationRequested();
            var blockers = Blockers(step, earlier, failed, captureOwners);
            SmokeStepResult result;
            if (blockers.Count > 0)
            {
                result = new SmokeStepResult(suite.Name, step.Name, false, TimeSpan.Zero, null,
                    $"{SkippedPrefix} ({string.Join(", ", blockers)})");
            }
            else
            {
                result = await RunStepAsync(http, baseUrl, suite.Name, step, template, captureOwners, failed, stepTimeout, ct).ConfigureAwait(false);
            }
            if (!result.Passed) failed.Add(step.Name);
            earlier.Add(step.Name);
            results.Add(result);
            var line = $"smoke {suite.Name}/{step.Name}: {(result.Passed ? "PASS" : "FAIL")} {result.Message}";
            if (result.Passed) log.Verbose(line); else log.Warning(line);
        }
        return results;
    }

    /// <summary>
    /// Polls GET <paramref name="healthPath"/> until it answers 200 or <paramref name="timeout"/> passes
    /// (for a service that was just started). Passed = true when healthy; the message tells the last failure.
    /// </summary>
    public static async Task<SmokeStepResult> WaitForHealthyAsync(Uri baseUrl, string healthPath, TimeSpan timeout, CancellationToken ct)
    {
        CheckBaseUrl(baseUrl);
        var url = Combine(baseUrl, string.IsNullOrEmpty(healthPath) ? "/" : healthPath);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var sw = Stopwatch.StartNew();
        var last = "no answer yet";
        int? lastStatus = null;
        var attempts = 0;
        while (true)
        {
            attempts++;
            try
            {
                using var resp = await http.GetAsync(url, ct).ConfigureAwait(false);
                lastStatus = (int)resp.StatusCode;
                if (resp.StatusCode == HttpStatusCode.OK)
                    return new SmokeStepResult("wait", "health", true, sw.Elapsed, lastStatus, $"GET {url.AbsolutePath} -> 200 after {attempts} attempt(s)");
                var body = await ReadLimitedAsync(resp, ct).ConfigureAwait(false);
                last = $"HTTP {lastStatus}: {Excerpt(body, null)}";
            }
            catch (HttpRequestException e)
            {
                last = e.Message;
            }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested)
            {
                last = "no answer within 5 s";
            }
            if (sw.Elapsed >= timeout)
                return new SmokeStepResult("wait", "health", false, sw.Elapsed, lastStatus,
                    $"GET {url} did not answer 200 within {timeout.TotalSeconds:0.#} s ({attempts} attempts); last: {last}. Check that the Hub service started and look for ERROR lines in its log.");
            await Task.Delay(TimeSpan.FromMilliseconds(250), ct).ConfigureAwait(false);
        }
    }

    private static void CheckBaseUrl(Uri baseUrl)
    {
        if (baseUrl is null || !baseUrl.IsAbsoluteUri || (baseUrl.Scheme != Uri.UriSchemeHttp && baseUrl.Scheme != Uri.UriSchemeHttps))
            throw new HubDrException("SmokeBaseUrlInvalid", HubErrorCategory.InvalidArgument,
                $"The smoke test base URL '{baseUrl}' is not an absolute http(s) URL. Pass the staging Hub's URL, e.g. http://127.0.0.1:5080.");
    }

    private static Uri Combine(Uri baseUrl, string path) =>
        new(baseUrl.GetLeftPart(UriPartial.Path).TrimEnd('/') + (path.StartsWith('/') ? path : "/" + path));

    private static List<string> Blockers(SmokeStep step, List<string> earlier, HashSet<string> failed, IReadOnlyDictionary<string, string> captureOwners)
    {
        var needs = new List<string>(step.DependsOn ?? earlier);
        var referenced = SmokeTemplate.ReferencedNames(step.Path)
            .Concat(step.Headers.Values.SelectMany(SmokeTemplate.ReferencedNames))
            .Concat(SmokeTemplate.ReferencedNames(step.Body))
            .Concat(step.ExpectJson.Values.SelectMany(SmokeTemplate.ReferencedNames));
        foreach (var name in referenced)
        {
            if (captureOwners.TryGetValue(name, out var owner) && owner != step.Name && earlier.Contains(owner)) needs.Add(owner);
        }
        return needs.Where(failed.Contains).Distinct().ToList();
    }

    private static async Task<SmokeStepResult> RunStepAsync(
        HttpClient http, Uri baseUrl, string suiteName, SmokeStep step, SmokeTemplate template,
        IReadOnlyDictionary<string, string> captureOwners, HashSet<string> failed, TimeSpan stepTimeout, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        var label = $"{step.Method} {step.Path}";
        int? status = null;
        SmokeStepResult Fail(string why) =>
            new(suiteName, step.Name, false, sw.Elapsed, status, template.MaskSecrets($"{label}: {why}"));

        try
        {
            var path = template.Resolve(step.Path);
            label = $"{step.Method} {template.MaskSecrets(path)}";
            var url = Combine(baseUrl, path);
            using var request = new HttpRequestMessage(new HttpMethod(step.Method), url);
            if (step.Body is not null)
            {
                var body = template.Resolve(step.Body);
                request.Content = new StringContent(body?.ToJsonString() ?? "null", Encoding.UTF8, "application/json");
            }
            var hasAccept = false;
            foreach (var (name, valueTemplate) in step.Headers)
            {
                var value = template.Resolve(valueTemplate);
                if (name.Equals("Accept", StringComparison.OrdinalIgnoreCase)) hasAccept = true;
                if (name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase))
                {
                    if (request.Content is null) return Fail("header Content-Type given but the step has no body");
                    request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(value);
                }
                else if (!request.Headers.TryAddWithoutValidation(name, value) && !(request.Content?.Headers.TryAddWithoutValidation(name, value) ?? false))
                {
                    return Fail($"header '{name}' cannot be set on this request");
                }
            }
            if (!hasAccept) request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));

            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(stepTimeout);
            string text;
            try
            {
                using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
                status = (int)response.StatusCode;
                text = await ReadLimitedAsync(response, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                return Fail($"no complete answer within {stepTimeout.TotalSeconds:0.#} s (step timeout){(status is null ? "" : $"; status was {status}")}");
            }
            catch (HttpRequestException e)
            {
                return Fail($"could not reach {baseUrl.GetLeftPart(UriPartial.Authority)}: {e.Message}{(e.InnerException is null ? "" : $" ({e.InnerException.Message})")}");
            }

            JsonNode? json = null;
            string? jsonError = null;
            if (!string.IsNullOrWhiteSpace(text))
            {
                try
                {
                    json = JsonNode.Parse(text);
                }
                catch (JsonException e)
                {
                    jsonError = e.Message;
                }
            }

            if (status != step.ExpectStatus)
                return Fail($"expected HTTP {step.ExpectStatus} but got {status} ({(HttpStatusCode)status!.Value}); response: {Excerpt(text, json)}");

            if ((step.ExpectJson.Count > 0 || step.Capture.Count > 0) && (json is null))
                return Fail($"HTTP {status} as expected, but the response is not JSON ({jsonError ?? "empty body"}): {Excerpt(text, null)}");

            foreach (var (pathText, expectedTemplate) in step.ExpectJson)
            {
                var expected = ResolveExpected(expectedTemplate, template);
                var parsedPath = JsonPathLite.Parse(pathText);
                var selected = parsedPath.Select(json);
                var secretField = parsedPath.LastName is string lastName && SmokeTemplate.LooksSecret(lastName);
                var problem = Check(pathText, expected, selected, secretField);
                if (problem is not null) return Fail($"HTTP {status} as expected, but {problem}");
            }

            foreach (var (variable, pathText) in step.Capture)
            {
                var p = JsonPathLite.Parse(pathText);
                var selected = p.Select(json);
                if (selected.Count == 0 || selected[0] is null)
                    return Fail($"HTTP {status} as expected, but capture '{variable}': '{pathText}' is missing or null in the response: {Excerpt(text, json)}");
                var node = selected[0]!;
                var value = node.GetValueKind() == JsonValueKind.String ? node.GetValue<string>() : node.ToJsonString();
                template.Capture(variable, value, step.Name, secret: p.LastName is string last && SmokeTemplate.LooksSecret(last));
            }

            var captured = step.Capture.Count == 0 ? "" : $"; captured {string.Join(", ", step.Capture.Keys)}";
            return new SmokeStepResult(suiteName, step.Name, true, sw.Elapsed, status,
                template.MaskSecrets($"{label} -> {status} in {sw.Elapsed.TotalMilliseconds:0} ms{captured}"));
        }
        catch (MissingVariableException e)
        {
            if (captureOwners.TryGetValue(e.Name, out var owner) && failed.Contains(owner))
                return new SmokeStepResult(suiteName, step.Name, false, sw.Elapsed, status, $"{SkippedPrefix} ({owner})");
            var hint = captureOwners.TryGetValue(e.Name, out var o2)
                ? $"it is captured by step '{o2}', which runs later or not before this one"
                : "pass it in the variables or set a default in the suite's \"variables\"";
            return Fail($"variable '{e.Name}' is not set; {hint}");
        }
        catch (TemplateException e)
        {
            return Fail(e.Message);
        }
        catch (UriFormatException e)
        {
            return Fail($"the resolved URL is invalid: {e.Message}");
        }
        catch (FormatException e)
        {
            return Fail($"invalid header value: {e.Message}");
        }
    }

    private static JsonNode? ResolveExpected(JsonNode? expected, SmokeTemplate template) => expected switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.String && v.GetValue<string>() == AnyValue => v.DeepClone(),
        _ => template.Resolve(expected),
    };

    /// <summary>Expected value meaning "present and not null".</summary>
    private const string AnyValue = "$any";

    private static string? Check(string path, JsonNode? expected, List<JsonNode?> selected, bool secretField)
    {
        string Show(JsonNode? node) => secretField && node is not null ? $"\"{SmokeTemplate.Mask}\"" : ShowJson(node);
        var any = expected is JsonValue ev && ev.GetValueKind() == JsonValueKind.String && ev.GetValue<string>() == AnyValue;
        if (selected.Count == 0)
            return $"'{path}' is missing from the response (expected {(any ? "a value" : ShowJson(expected))})";
        if (any)
            return selected.Any(n => n is not null) ? null : $"'{path}' is null (expected a value)";
        if (selected.Any(n => JsonMatches(expected, n))) return null;
        if (selected.Count == 1) return $"'{path}' is {Show(selected[0])}, expected {ShowJson(expected)}";
        var values = string.Join(", ", selected.Take(10).Select(Show)) + (selected.Count > 10 ? ", ..." : "");
        return $"no element of '{path}' equals {ShowJson(expected)} (values: {values})";
    }

    private static string ShowJson(JsonNode? node)
    {
        var s = SmokeTemplate.RedactSecretFields(node)?.ToJsonString(ReadableJson) ?? "null";
        return s.Length > 200 ? s[..200] + "..." : s;
    }

    /// <summary>Deep equality; numbers compare by value; an expected string also matches a number or boolean with that text.</summary>
    internal static bool JsonMatches(JsonNode? expected, JsonNode? actual)
    {
        if (expected is null || actual is null) return expected is null && actual is null;
        var ek = expected.GetValueKind();
        var ak = actual.GetValueKind();
        switch (ek)
        {
            case JsonValueKind.Object:
            {
                if (actual is not JsonObject ao || expected is not JsonObject eo || ao.Count != eo.Count) return false;
                foreach (var kv in eo)
                {
                    if (!ao.TryGetPropertyValue(kv.Key, out var av) || !JsonMatches(kv.Value, av)) return false;
                }
                return true;
            }
            case JsonValueKind.Array:
            {
                if (actual is not JsonArray aa || expected is not JsonArray ea || aa.Count != ea.Count) return false;
                for (var i = 0; i < ea.Count; i++)
                {
                    if (!JsonMatches(ea[i], aa[i])) return false;
                }
                return true;
            }
            case JsonValueKind.String:
            {
                var es = expected.GetValue<string>();
                return ak switch
                {
                    JsonValueKind.String => string.Equals(es, actual.GetValue<string>(), StringComparison.Ordinal),
                    JsonValueKind.Number => NumbersEqual(es, actual.ToJsonString()),
                    JsonValueKind.True => es.Equals("true", StringComparison.OrdinalIgnoreCase),
                    JsonValueKind.False => es.Equals("false", StringComparison.OrdinalIgnoreCase),
                    _ => false,
                };
            }
            case JsonValueKind.Number:
                return ak == JsonValueKind.Number && NumbersEqual(expected.ToJsonString(), actual.ToJsonString());
            default:
                return ek == ak;
        }
    }

    private static bool NumbersEqual(string a, string b)
    {
        if (decimal.TryParse(a, NumberStyles.Float, CultureInfo.InvariantCulture, out var da) &&
            decimal.TryParse(b, NumberStyles.Float, CultureInfo.InvariantCulture, out var db))
            return da == db;
        return double.TryParse(a, NumberStyles.Float, CultureInfo.InvariantCulture, out var fa) &&
               double.TryParse(b, NumberStyles.Float, CultureInfo.InvariantCulture, out var fb) &&
               fa.Equals(fb);
    }

    private static string Excerpt(string text, JsonNode? json)
    {
        if (string.IsNullOrWhiteSpace(text)) return "(empty body)";
        var s = json is not null ? SmokeTemplate.RedactSecretFields(json)?.ToJsonString(ReadableJson) ?? "null" : text.ReplaceLineEndings(" ");
        return s.Length > ExcerptChars ? s[..ExcerptChars] + "..." : s;
    }

    private static async Task<string> ReadLimitedAsync(HttpResponseMessage response, CancellationToken ct)
    {
        await using var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        using var collected = new MemoryStream();
        var buffer = new byte[16 * 1024];
        int n;
        while (collected.Length < MaxBodyBytes &&
               (n = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, MaxBodyBytes - collected.Length)), ct).ConfigureAwait(false)) > 0)
            collected.Write(buffer, 0, n);
        var charset = response.Content.Headers.ContentType?.CharSet;
        Encoding enc;
        try
        {
            enc = string.IsNullOrEmpty(charset) ? Encoding.UTF8 : Encoding.GetEncoding(charset.Trim('"'));
        }
        catch (ArgumentException)
        {
            enc = Encoding.UTF8;
        }
        return enc.GetString(collected.GetBuffer(), 0, (int)collected.Length);
    }
}
