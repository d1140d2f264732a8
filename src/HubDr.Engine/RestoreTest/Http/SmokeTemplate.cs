using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace HubDr.Engine.RestoreTest.Http;

/// <summary>A placeholder names a variable that has no value (yet).</summary>
internal sealed class MissingVariableException(string name)
    : Exception($"variable '{name}' is not set")
{
    public string Name { get; } = name;
}

/// <summary>A placeholder is malformed or its value does not fit (e.g. ${x:number} with a non-number).</summary>
internal sealed class TemplateException(string message) : Exception(message);

/// <summary>
/// Variables of one suite run and the ${...} placeholder language:
/// ${name}, ${name:json} / ${name:number} (as a whole body string: inserted as a JSON value instead of a string),
/// ${a-b} / ${a+b} (integer arithmetic on variables or integer literals), and "$${" for a literal "${".
/// Values of variables whose names look secret are remembered and masked in every message.
/// </summary>
internal sealed partial class SmokeTemplate
{
    public const string Mask = "***";

    private readonly Dictionary<string, (string Value, bool Literal)> _vars = new(StringComparer.Ordinal);
    private readonly HashSet<string> _secretValues = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _capturedBy = new(StringComparer.Ordinal);

    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_.]*$")]
    private static partial Regex NameRegex();

    [GeneratedRegex(@"\$?\$\{([^}]*)\}")]
    private static partial Regex PlaceholderRegex();

    [GeneratedRegex(@"^\s*([A-Za-z0-9_.]+)\s*([+-])\s*([A-Za-z0-9_.]+)\s*$")]
    private static partial Regex ArithmeticRegex();

    [GeneratedRegex(@"pass|pwd|secret|token|key|auth|cookie|credential|session|bearer|signature|sas", RegexOptions.IgnoreCase)]
    private static partial Regex SecretNameRegex();

    public static bool IsValidName(string name) => NameRegex().IsMatch(name);

    public static bool LooksSecret(string name) => SecretNameRegex().IsMatch(name);

    /// <summary>Suite defaults (may themselves contain placeholders), overridden by the caller's literal values.</summary>
    public SmokeTemplate(IReadOnlyDictionary<string, string> suiteDefaults, IReadOnlyDictionary<string, string> callerVariables)
    {
        Set("runId", Guid.NewGuid().ToString("N")[..12], literal: true);
        foreach (var (k, v) in suiteDefaults) Set(k, v ?? "", literal: false);
        foreach (var (k, v) in callerVariables) Set(k, v ?? "", literal: true);
    }

    private void Set(string name, string value, bool literal)
    {
        _vars[name] = (value, literal);
        if (LooksSecret(name)) AddSecret(value);
    }

    public void AddSecret(string value)
    {
        // Very short values would mangle every message and are not worth hiding.
        if (value.Length >= 3) _secretValues.Add(value);
    }

    /// <summary>Stores a value captured by <paramref name="step"/>. Secret-looking names or response fields are masked from now on.</summary>
    public void Capture(string name, string value, string step, bool secret)
    {
        _vars[name] = (value, true);
        _capturedBy[name] = step;
        if (secret || LooksSecret(name)) AddSecret(value);
    }

    /// <summary>Step that captures <paramref name="variable"/>, if any step does.</summary>
    public static IReadOnlyDictionary<string, string> CaptureOwners(SmokeSuite suite)
    {
        var owners = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var s in suite.Steps)
            foreach (var name in s.Capture.Keys)
                owners.TryAdd(name, s.Name);
        return owners;
    }

    /// <summary>Variable names (not literals) that a template string refers to.</summary>
    public static IEnumerable<string> ReferencedNames(string? template)
    {
        if (string.IsNullOrEmpty(template)) yield break;
        foreach (Match m in PlaceholderRegex().Matches(template))
        {
            if (m.Value.StartsWith("$$", StringComparison.Ordinal)) continue;
            var expr = StripFormat(m.Groups[1].Value, out _);
            var arith = ArithmeticRegex().Match(expr);
            if (arith.Success)
            {
                if (IsValidName(arith.Groups[1].Value)) yield return arith.Groups[1].Value;
                if (IsValidName(arith.Groups[3].Value)) yield return arith.Groups[3].Value;
            }
            else
            {
                yield return expr.Trim();
            }
        }
    }

    public static IEnumerable<string> ReferencedNames(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var kv in o)
                    foreach (var n in ReferencedNames(kv.Value)) yield return n;
                break;
            case JsonArray a:
                foreach (var item in a)
                    foreach (var n in ReferencedNames(item)) yield return n;
                break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                foreach (var n in ReferencedNames(v.GetValue<string>())) yield return n;
                break;
        }
    }

    /// <summary>Replaces every placeholder in <paramref name="template"/>.</summary>
    public string Resolve(string template) => Resolve(template, 0);

    private string Resolve(string template, int depth)
    {
        if (template.IndexOf("${", StringComparison.Ordinal) < 0) return template;
        return PlaceholderRegex().Replace(template, m =>
        {
            if (m.Value.StartsWith("$$", StringComparison.Ordinal)) return m.Value[1..];
            var expr = StripFormat(m.Groups[1].Value, out var format);
            var value = Evaluate(expr, depth);
            CheckFormat(expr, value, format);
            return value;
        });
    }

    /// <summary>Deep copy of a JSON body with placeholders resolved; "${x:json}" / "${x:number}" as a whole string become JSON values.</summary>
    public JsonNode? Resolve(JsonNode? node)
    {
        switch (node)
        {
            case null:
                return null;
            case JsonObject o:
            {
                var copy = new JsonObject();
                foreach (var kv in o) copy[kv.Key] = Resolve(kv.Value);
                return copy;
            }
            case JsonArray a:
            {
                var copy = new JsonArray();
                foreach (var item in a) copy.Add(Resolve(item));
                return copy;
            }
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
            {
                var s = v.GetValue<string>();
                var whole = PlaceholderRegex().Match(s);
                if (whole.Success && whole.Length == s.Length && !s.StartsWith("$$", StringComparison.Ordinal))
                {
                    var expr = StripFormat(whole.Groups[1].Value, out var format);
                    if (format is "json" or "number")
                    {
                        var value = Evaluate(expr, 0);
                        CheckFormat(expr, value, format);
                        try
                        {
                            return JsonNode.Parse(value);
                        }
                        catch (JsonException)
                        {
                            throw new TemplateException($"the value of ${{{expr}}} is not valid JSON for :{format}");
                        }
                    }
                }
                return JsonValue.Create(Resolve(s));
            }
            default:
                return node.DeepClone();
        }
    }

    private static string StripFormat(string inner, out string? format)
    {
        format = null;
        var colon = inner.LastIndexOf(':');
        if (colon < 0) return inner.Trim();
        format = inner[(colon + 1)..].Trim().ToLowerInvariant();
        return inner[..colon].Trim();
    }

    private static void CheckFormat(string expr, string value, string? format)
    {
        switch (format)
        {
            case null or "json":
                return;
            case "number":
                if (!decimal.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out _))
                    throw new TemplateException($"${{{expr}:number}} needs a number, but the variable's value is not one");
                return;
            default:
                throw new TemplateException($"unknown placeholder format ':{format}' in ${{{expr}:{format}}} (use :json or :number)");
        }
    }

    private string Evaluate(string expr, int depth)
    {
        if (depth > 8) throw new TemplateException($"variable '{expr}' refers to itself");
        if (IsValidName(expr)) return Lookup(expr, depth);
        var m = ArithmeticRegex().Match(expr);
        if (!m.Success) throw new TemplateException($"placeholder ${{{expr}}} is neither a variable name nor 'a+b' / 'a-b'");
        var left = Operand(m.Groups[1].Value, expr, depth);
        var right = Operand(m.Groups[3].Value, expr, depth);
        var result = m.Groups[2].Value == "+" ? left + right : left - right;
        return result.ToString(CultureInfo.InvariantCulture);
    }

    private long Operand(string token, string expr, int depth)
    {
        var text = long.TryParse(token, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var literal)
            ? null
            : Lookup(token, depth);
        if (text is null) return literal;
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value)) return value;
        throw new TemplateException($"${{{expr}}}: variable '{token}' is not an integer");
    }

    private string Lookup(string name, int depth)
    {
        if (!_vars.TryGetValue(name, out var v)) throw new MissingVariableException(name);
        return v.Literal ? v.Value : Resolve(v.Value, depth + 1);
    }

    private static readonly System.Text.Encodings.Web.JavaScriptEncoder[] Encoders =
        [System.Text.Encodings.Web.JavaScriptEncoder.Default, System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping];

    /// <summary>Replaces every known secret value in <paramref name="text"/> with ***.</summary>
    public string MaskSecrets(string text)
    {
        if (string.IsNullOrEmpty(text) || _secretValues.Count == 0) return text;
        var sb = new StringBuilder(text);
        foreach (var secret in _secretValues.OrderByDescending(s => s.Length))
        {
            sb.Replace(secret, Mask);
            // JSON-escaped forms appear in response bodies and re-serialized excerpts.
            foreach (var encoder in Encoders)
            {
                var escaped = JsonEncodedText.Encode(secret, encoder).ToString();
                if (escaped != secret) sb.Replace(escaped, Mask);
            }
        }
        return sb.ToString();
    }

    /// <summary>Copy of a JSON document with the values of secret-looking properties replaced by ***.</summary>
    public static JsonNode? RedactSecretFields(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
            {
                var copy = new JsonObject();
                foreach (var kv in o) copy[kv.Key] = LooksSecret(kv.Key) && kv.Value is not null ? JsonValue.Create(Mask) : RedactSecretFields(kv.Value);
                return copy;
            }
            case JsonArray a:
            {
                var copy = new JsonArray();
                foreach (var item in a) copy.Add(RedactSecretFields(item));
                return copy;
            }
            default:
                return node?.DeepClone();
        }
    }
}
