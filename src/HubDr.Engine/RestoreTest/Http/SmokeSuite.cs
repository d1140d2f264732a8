using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace HubDr.Engine.RestoreTest.Http;

/// <summary>
/// One HTTP request of a smoke suite and what its response must look like. Strings in
/// <see cref="Path"/>, <see cref="Body"/>, <see cref="Headers"/> and string values of <see cref="ExpectJson"/>
/// may contain ${var} placeholders (see docs/smoke-tests.md).
/// </summary>
public sealed class SmokeStep
{
    public string Name { get; set; } = "";

    public string Method { get; set; } = "GET";

    /// <summary>Path (and query) relative to the base URL, starting with '/'.</summary>
    public string Path { get; set; } = "";

    /// <summary>JSON request body, sent as application/json; null sends no body.</summary>
    public JsonNode? Body { get; set; }

    public Dictionary<string, string> Headers { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    public int ExpectStatus { get; set; } = 200;

    /// <summary>Path into the JSON response ("status", "items[0].name", "items[*].name", "/a/0/b") to expected value.</summary>
    public Dictionary<string, JsonNode?> ExpectJson { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Variable name to path into the JSON response; the value is available to later steps as ${name}.</summary>
    public Dictionary<string, string> Capture { get; set; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Names of earlier steps this step needs. Null (the default): every earlier step. Empty: none.
    /// A step also depends on the steps that capture the variables it uses.
    /// </summary>
    public List<string>? DependsOn { get; set; }
}

/// <summary>A named, ordered list of <see cref="SmokeStep"/>s plus default variable values.</summary>
public sealed class SmokeSuite
{
    internal const string DefaultResourceName = "HubDr.Engine.RestoreTest.default-smoke-suite.json";

    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNameCaseInsensitive = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    private static readonly HashSet<string> Methods = new(StringComparer.OrdinalIgnoreCase)
        { "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS" };

    public string Name { get; set; } = "";

    public string? Description { get; set; }

    /// <summary>Default variable values; the caller's variables override them. Never put secrets here.</summary>
    public Dictionary<string, string> Variables { get; set; } = new(StringComparer.Ordinal);

    public List<SmokeStep> Steps { get; set; } = new();

    /// <summary>Loads and validates a suite file. Throws <see cref="HubDrException"/> SmokeSuiteNotFound / SmokeSuiteInvalid.</summary>
    public static SmokeSuite Load(string jsonPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(jsonPath);
        string text;
        try
        {
            text = File.ReadAllText(jsonPath);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new HubDrException("SmokeSuiteNotFound", HubErrorCategory.ObjectNotFound,
                $"Smoke suite file '{jsonPath}' does not exist. Pass the path of a suite JSON file (format: docs/smoke-tests.md) or omit it to use the default suite.", e)
            { Target = jsonPath };
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HubDrException("SmokeSuiteUnreadable", HubErrorCategory.ReadError,
                $"Smoke suite file '{jsonPath}' cannot be read: {e.Message}. Check the path and its permissions.", e)
            { Target = jsonPath };
        }
        return Parse(text, jsonPath);
    }

    /// <summary>Parses and validates suite JSON; <paramref name="source"/> names it in error messages.</summary>
    public static SmokeSuite Parse(string json, string source = "(inline)")
    {
        SmokeSuite? suite;
        try
        {
            suite = JsonSerializer.Deserialize<SmokeSuite>(json, Options);
        }
        catch (JsonException e)
        {
            var where = e.Path is null ? "" : $" at {e.Path}";
            var line = e.LineNumber is null ? "" : $" (line {e.LineNumber + 1})";
            throw Invalid(source, $"it is not valid suite JSON{where}{line}: {e.Message}", e);
        }
        if (suite is null) throw Invalid(source, "the file contains 'null' instead of a suite object");
        suite.Validate(source);
        return suite;
    }

    /// <summary>The built-in suite for the reference Hub service (auth, module install, sample transaction). A fresh copy per call.</summary>
    public static SmokeSuite Default
    {
        get
        {
            using var stream = typeof(SmokeSuite).Assembly.GetManifestResourceStream(DefaultResourceName)
                ?? throw new HubDrException("SmokeSuiteDefaultMissing", HubErrorCategory.NotInstalled,
                    $"The default smoke suite resource '{DefaultResourceName}' is missing from {typeof(SmokeSuite).Assembly.GetName().Name}. The build is broken; reinstall the module.");
            using var reader = new StreamReader(stream);
            return Parse(reader.ReadToEnd(), "default smoke suite");
        }
    }

    private void Validate(string source)
    {
        if (string.IsNullOrWhiteSpace(Name)) throw Invalid(source, "the suite has no \"name\"");
        Variables ??= new(StringComparer.Ordinal);
        if (Steps is null || Steps.Count == 0) throw Invalid(source, "the suite has no \"steps\"");
        foreach (var v in Variables.Keys)
        {
            if (!SmokeTemplate.IsValidName(v)) throw Invalid(source, $"variable name '{v}' is invalid (letters, digits, '_' and '.', not starting with a digit)");
        }
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < Steps.Count; i++)
        {
            var s = Steps[i] ?? throw Invalid(source, $"step #{i + 1} is null");
            var label = string.IsNullOrWhiteSpace(s.Name) ? $"step #{i + 1}" : $"step '{s.Name}'";
            if (string.IsNullOrWhiteSpace(s.Name)) throw Invalid(source, $"{label} has no \"name\"");
            if (!seen.Add(s.Name)) throw Invalid(source, $"{label}: the name is used twice; step names must be unique");
            s.Method = string.IsNullOrWhiteSpace(s.Method) ? "GET" : s.Method.Trim().ToUpperInvariant();
            if (!Methods.Contains(s.Method)) throw Invalid(source, $"{label}: method '{s.Method}' is not one of {string.Join(", ", Methods)}");
            if (string.IsNullOrEmpty(s.Path) || s.Path[0] != '/') throw Invalid(source, $"{label}: \"path\" must start with '/' (it is relative to the base URL)");
            if (s.ExpectStatus is < 100 or > 599) throw Invalid(source, $"{label}: expectStatus {s.ExpectStatus} is not an HTTP status code");
            var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (var (h, v) in s.Headers ?? new())
            {
                if (string.IsNullOrWhiteSpace(h)) throw Invalid(source, $"{label}: a header has an empty name");
                if (!headers.TryAdd(h, v ?? "")) throw Invalid(source, $"{label}: header '{h}' is given twice");
            }
            s.Headers = headers;
            s.ExpectJson ??= new(StringComparer.Ordinal);
            s.Capture ??= new(StringComparer.Ordinal);
            foreach (var p in s.ExpectJson.Keys)
            {
                if (!JsonPathLite.TryParse(p, out _, out var err)) throw Invalid(source, $"{label}: expectJson path '{p}' is invalid: {err}");
            }
            foreach (var (name, p) in s.Capture)
            {
                if (!SmokeTemplate.IsValidName(name)) throw Invalid(source, $"{label}: capture variable name '{name}' is invalid");
                if (!JsonPathLite.TryParse(p, out var parsed, out var err)) throw Invalid(source, $"{label}: capture path '{p}' is invalid: {err}");
                if (parsed!.HasWildcard) throw Invalid(source, $"{label}: capture path '{p}' must not contain [*]");
            }
            if (s.DependsOn is not null)
            {
                foreach (var d in s.DependsOn)
                {
                    if (!seen.Contains(d) || d == s.Name) throw Invalid(source, $"{label}: dependsOn names '{d}', which is not an earlier step");
                }
            }
        }
    }

    private static HubDrException Invalid(string source, string why, Exception? inner = null) =>
        new("SmokeSuiteInvalid", HubErrorCategory.InvalidData,
            $"Smoke suite {source} is invalid: {why}. Fix the suite file (format: docs/smoke-tests.md).", inner)
        { Target = source };
}

/// <summary>Outcome of one step. Skipped steps have Passed = false and a message starting with "skipped:".</summary>
public sealed record SmokeStepResult(string Suite, string Name, bool Passed, TimeSpan Duration, int? Status, string Message)
{
    public bool Skipped => !Passed && Message.StartsWith(HttpSmokeRunner.SkippedPrefix, StringComparison.Ordinal);
}
