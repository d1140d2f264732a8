using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace HubDr.Engine.Sources;

/// <summary>
/// Removes secret-looking values before anything enters an archive, catalog or log.
/// A value is redacted when its NAME looks secret (built-in list + operator list) or when the VALUE itself
/// looks like a secret (PEM private key, "Password=" inside a connection string, AWS access key ids).
/// </summary>
public sealed partial class Redactor
{
    public const string Mask = "***REDACTED***";

    private static readonly string[] BuiltInFragments =
    [
        "password", "passwd", "passphrase", "pwd", "secret", "token", "apikey", "accesskey", "privatekey",
        "credential", "connectionstring", "connstr", "sastoken", "sas", "signingkey", "encryptionkey", "clientsecret",
        "cookie", "sessionkey", "authkey", "masterkey", "accountkey",
    ];

    private readonly List<Regex> _explicit = [];
    private readonly SortedSet<string> _redacted = new(StringComparer.Ordinal);

    public Redactor(IEnumerable<string>? extraNames = null)
    {
        foreach (var name in extraNames ?? [])
        {
            if (string.IsNullOrWhiteSpace(name))
            {
                continue;
            }

            var pattern = "^" + Regex.Escape(name.Trim()).Replace("\\*", ".*") + "$";
            _explicit.Add(new Regex(pattern, RegexOptions.IgnoreCase | RegexOptions.CultureInvariant));
        }
    }

    /// <summary>Names (never values) that were redacted, for the manifest.</summary>
    public IReadOnlyCollection<string> RedactedNames => _redacted;

    public bool IsSecretName(string name)
    {
        if (_explicit.Any(r => r.IsMatch(name)))
        {
            return true;
        }

        var squashed = new string(name.Where(char.IsLetterOrDigit).ToArray()).ToLowerInvariant();
        foreach (var f in BuiltInFragments)
        {
            if (f == "sas" || f == "pwd")
            {
                // Short fragments only as whole words: "sas", "SAS_URL", "db_pwd" but not "sassy"/"pwdx".
                if (WordRegex().Split(name).Any(w => w.Equals(f, StringComparison.OrdinalIgnoreCase)))
                {
                    return true;
                }

                continue;
            }

            if (squashed.Contains(f, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    public static bool LooksSecretValue(string value) =>
        value.Contains("PRIVATE KEY-----", StringComparison.Ordinal) ||
        ConnPasswordRegex().IsMatch(value) ||
        AwsKeyRegex().IsMatch(value) ||
        UrlPasswordRegex().IsMatch(value);

    /// <summary>Redacts one file by its type: JSON structurally, anything else line by line.</summary>
    public byte[] RedactFile(string name, byte[] content)
    {
        if (name.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                var node = JsonNode.Parse(content, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
                if (node is not null)
                {
                    var redacted = RedactNode(node, path: name);
                    return Encoding.UTF8.GetBytes(redacted.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                }
            }
            catch (JsonException)
            {
                // Not valid JSON after all: fall through to the line redactor.
            }
        }

        if (content.AsSpan().IndexOf((byte)0) >= 0)
        {
            return content; // binary: kept as is
        }

        return Encoding.UTF8.GetBytes(RedactText(Encoding.UTF8.GetString(content), name));
    }

    /// <summary>"key = value", "key: value", "export KEY=value" lines, and secret-looking values anywhere.</summary>
    public string RedactText(string text, string context = "")
    {
        var sb = new StringBuilder(text.Length);
        foreach (var line in text.Split('\n'))
        {
            if (sb.Length > 0)
            {
                sb.Append('\n');
            }

            var m = AssignmentRegex().Match(line);
            if (m.Success && IsSecretName(m.Groups["name"].Value) && m.Groups["value"].Value.Trim().Length > 0)
            {
                _redacted.Add(Qualify(context, m.Groups["name"].Value));
                sb.Append(m.Groups["lead"].Value).Append(m.Groups["name"].Value).Append(m.Groups["sep"].Value).Append(Mask);
                continue;
            }

            sb.Append(RedactValue(line, context));
        }

        return sb.ToString();
    }

    public IDictionary<string, string> RedactEnvironment(IDictionary<string, string> vars)
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in vars)
        {
            if (IsSecretName(k))
            {
                _redacted.Add("env:" + k);
                result[k] = Mask;
            }
            else
            {
                result[k] = RedactValue(v, "env:" + k);
            }
        }

        return result;
    }

    private string RedactValue(string value, string context)
    {
        if (value.Contains("PRIVATE KEY-----", StringComparison.Ordinal))
        {
            _redacted.Add(context);
            return Mask;
        }

        var v = ConnPasswordRegex().Replace(value, m =>
        {
            _redacted.Add(context);
            return m.Groups["k"].Value + "=" + Mask;
        });
        v = UrlPasswordRegex().Replace(v, m =>
        {
            _redacted.Add(context);
            return m.Groups["pre"].Value + Mask + "@";
        });
        if (AwsKeyRegex().IsMatch(v))
        {
            _redacted.Add(context);
            v = AwsKeyRegex().Replace(v, Mask);
        }

        return v;
    }

    private JsonNode RedactNode(JsonNode node, string path)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var key in obj.Select(p => p.Key).ToList())
                {
                    var child = obj[key];
                    if (IsSecretName(key) && child is not null)
                    {
                        _redacted.Add(path + ":" + key);
                        obj[key] = Mask;
                    }
                    else if (child is not null)
                    {
                        obj[key] = RedactNode(child.DeepClone(), path + ":" + key);
                    }
                }

                return obj;
            case JsonArray arr:
                for (var i = 0; i < arr.Count; i++)
                {
                    if (arr[i] is { } item)
                    {
                        arr[i] = RedactNode(item.DeepClone(), path);
                    }
                }

                return arr;
            case JsonValue val when val.TryGetValue<string>(out var s):
                var r = RedactValue(s, path);
                return r == s ? JsonValue.Create(s)! : JsonValue.Create(r)!;
            default:
                return node.DeepClone();
        }
    }

    private static string Qualify(string context, string name) => context.Length == 0 ? name : context + ":" + name;

    [GeneratedRegex(@"^(?<lead>\s*(?:export\s+|set\s+)?[""']?)(?<name>[A-Za-z_][A-Za-z0-9_.\-]*)(?<sep>[""']?\s*[=:]\s*)(?<value>.*)$")]
    private static partial Regex AssignmentRegex();

    [GeneratedRegex(@"(?<k>\b(?:password|pwd|passwd|accountkey|sharedaccesssignature|sig))\s*=\s*[^;&'""\s]+", RegexOptions.IgnoreCase)]
    private static partial Regex ConnPasswordRegex();

    [GeneratedRegex(@"(?<pre>[a-z][a-z0-9+.\-]*://[^:/@\s]+:)[^@\s/]+@", RegexOptions.IgnoreCase)]
    private static partial Regex UrlPasswordRegex();

    [GeneratedRegex(@"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")]
    private static partial Regex AwsKeyRegex();

    [GeneratedRegex(@"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])")]
    private static partial Regex WordRegex();
}
