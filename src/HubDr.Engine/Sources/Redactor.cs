using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace HubDr.Engine.Sources;

/// <summary>
/// Removes secret-looking values before anything enters an archive, catalog or log.
/// A value is redacted when its NAME looks secret or when the VALUE itself looks like a secret (docs/help/New-HubBackup.md,
/// "Redaction"):
/// <list type="bullet">
/// <item>names are split into words in every case style (snake_case, kebab-case, camelCase, PascalCase, UPPER_CASE,
/// dotted) and match when a word is PASS, PASSWORD, PASSWD, PASSPHRASE, PWD, PW, SECRET, TOKEN, KEY, AUTH, AUTHORIZATION,
/// CREDENTIAL(S), CREDS, PRIVATE, SALT, DSN, COOKIE, SAS, … (KEY/AUTH not when a metadata word such as ID, NAME, FILE, PATH,
/// URL, TYPE follows, nor PUBLIC KEY), or when the squashed name contains a known compound (apikey, clientsecret,
/// connectionstring, …); operators add names (SecretNames) and exempt names (NotSecretNames), both with '*' wildcards;</item>
/// <item>values: PEM private-key blocks, Bearer/Basic/Token authorization values, passwords inside URLs and connection
/// strings, JWTs, AWS access key ids and well-known token prefixes (sk_live_, ghp_, xoxb-, glpat-, …), and long
/// high-entropy strings under names that hint at a secret (e.g. WEBHOOK, SIGNATURE, HMAC, LICENSE).</item>
/// </list>
/// Text keeps its line endings (a CRLF line stays CRLF); re-written JSON uses LF.
/// </summary>
public sealed partial class Redactor
{
    public const string Mask = "***REDACTED***";

    /// <summary>Compounds searched in the squashed, lower-cased name (as before: substring match).</summary>
    private static readonly string[] BuiltInFragments =
    [
        "password", "passwd", "passphrase", "secret", "token", "apikey", "accesskey", "privatekey",
        "credential", "connectionstring", "connstr", "sastoken", "signingkey", "encryptionkey", "clientsecret",
        "cookie", "sessionkey", "authkey", "masterkey", "accountkey",
    ];

    /// <summary>Whole words that make a name secret wherever they stand.</summary>
    private static readonly HashSet<string> SecretWords = new(StringComparer.Ordinal)
    {
        "pass", "passwd", "password", "passwords", "passphrase", "pwd", "pw", "secret", "secrets", "token", "tokens",
        "credential", "credentials", "creds", "private", "salt", "dsn", "cookie", "cookies", "sas", "apikey", "passcode", "pin",
    };

    /// <summary>Words that make a name secret unless a metadata word follows (KEY_ID, AUTH_URL) or PUBLIC precedes (PUBLIC_KEY).</summary>
    private static readonly HashSet<string> KeyWords = new(StringComparer.Ordinal)
    {
        "key", "keys", "auth", "authorization", "oauth", "bearer", "signature", "sig", "hmac",
    };

    /// <summary>Words after KEY/AUTH that say the value is about the secret, not the secret itself.</summary>
    private static readonly HashSet<string> MetadataWords = new(StringComparer.Ordinal)
    {
        "id", "ids", "name", "names", "file", "files", "path", "paths", "dir", "url", "uri", "urls", "endpoint", "type",
        "mode", "enabled", "size", "length", "bits", "version", "alg", "algorithm", "expiry", "expires", "ttl", "rotation",
        "prefix", "format", "method", "provider", "header", "scheme", "host", "port", "issuer", "audience",
    };

    /// <summary>Words that hint at a secret: their long high-entropy values are redacted.</summary>
    private static readonly HashSet<string> HintWords = new(StringComparer.Ordinal)
    {
        "key", "keys", "auth", "signature", "sig", "hmac", "hash", "webhook", "license", "licence", "jwt", "session",
        "access", "client", "api", "cert", "stripe", "smtp", "sendgrid", "twilio", "slack", "github", "nonce", "seed",
    };

    private readonly List<Regex> _explicit = [];
    private readonly List<Regex> _notSecret = [];
    private readonly SortedSet<string> _redacted = new(StringComparer.Ordinal);

    public Redactor(IEnumerable<string>? extraNames = null, IEnumerable<string>? notSecretNames = null)
    {
        Add(_explicit, extraNames);
        Add(_notSecret, notSecretNames);
    }

    private static void Add(List<Regex> list, IEnumerable<string>? names)
    {
        foreach (var name in names ?? [])
        {
            if (string.IsNullOrWhiteSpace(name))
            {
                continue;
            }

            var pattern = "^" + Regex.Escape(name.Trim()).Replace("\\*", ".*") + "$";
            list.Add(new Regex(pattern, RegexOptions.IgnoreCase | RegexOptions.CultureInvariant));
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

        if (_notSecret.Any(r => r.IsMatch(name)))
        {
            return false;
        }

        var words = NameWords(name);
        for (var i = 0; i < words.Count; i++)
        {
            var w = words[i];
            if (SecretWords.Contains(w))
            {
                return true;
            }

            if (KeyWords.Contains(w)
                && !(i + 1 < words.Count && MetadataWords.Contains(words[i + 1]))
                && !(i > 0 && words[i - 1] == "public"))
            {
                return true;
            }
        }

        var squashed = string.Concat(words);
        return BuiltInFragments.Any(f => squashed.Contains(f, StringComparison.Ordinal));
    }

    /// <summary>
    /// A name's words, lower-cased: split at every non-alphanumeric character, at lower→upper case changes (jwtKey),
    /// at the end of an upper-case run (JWTKey → jwt, key) and between letters and digits.
    /// </summary>
    public static List<string> NameWords(string name)
    {
        var words = new List<string>();
        var cur = new StringBuilder();
        void Flush()
        {
            if (cur.Length > 0)
            {
                words.Add(cur.ToString().ToLowerInvariant());
                cur.Clear();
            }
        }

        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (!char.IsLetterOrDigit(c))
            {
                Flush();
                continue;
            }

            if (cur.Length > 0)
            {
                var prev = name[i - 1];
                var boundary =
                    (char.IsLower(prev) && char.IsUpper(c)) ||
                    (char.IsUpper(prev) && char.IsUpper(c) && i + 1 < name.Length && char.IsLower(name[i + 1])) ||
                    (char.IsDigit(prev) != char.IsDigit(c));
                if (boundary)
                {
                    Flush();
                }
            }

            cur.Append(c);
        }

        Flush();
        return words;
    }

    /// <summary>True when the name has a word hinting at a secret (its long high-entropy values are redacted).</summary>
    private bool IsHintName(string name) => !_notSecret.Any(r => r.IsMatch(name)) && NameWords(name).Any(HintWords.Contains);

    /// <summary>20+ characters without spaces, from a key-like alphabet, at least 3.5 bits of entropy per character.</summary>
    public static bool LooksHighEntropy(string value)
    {
        var v = value.Trim().Trim('"', '\'');
        if (v.Length < 20 || v.Length > 4096 || v.Contains("://", StringComparison.Ordinal) || !HighEntropyAlphabetRegex().IsMatch(v))
        {
            return false;
        }

        var counts = new Dictionary<char, int>();
        foreach (var ch in v)
        {
            counts[ch] = counts.GetValueOrDefault(ch) + 1;
        }

        double entropy = 0;
        foreach (var n in counts.Values)
        {
            var p = (double)n / v.Length;
            entropy -= p * Math.Log2(p);
        }

        return entropy >= 3.5;
    }

    /// <summary>The value for <paramref name="name"/>: masked when the name is secret, else with secret-looking parts masked.</summary>
    private string RedactNamed(string name, string value, string context)
    {
        if (IsSecretName(name))
        {
            _redacted.Add(context);
            return Mask;
        }

        if (IsHintName(name) && LooksHighEntropy(value))
        {
            _redacted.Add(context);
            return Mask;
        }

        return RedactValue(value, context);
    }

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
                    return Backup.HubJson.WithLf(Encoding.UTF8.GetBytes(redacted.ToJsonString(new JsonSerializerOptions { WriteIndented = true })));
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

    /// <summary>"key = value", "key: value", "export KEY=value" lines, and secret-looking values anywhere. Line endings are kept.</summary>
    public string RedactText(string text, string context = "")
    {
        var sb = new StringBuilder(text.Length);
        var first = true;
        foreach (var raw in text.Split('\n'))
        {
            if (!first)
            {
                sb.Append('\n');
            }

            first = false;
            var cr = raw.EndsWith('\r');
            var line = cr ? raw[..^1] : raw;
            var m = AssignmentRegex().Match(line);
            if (m.Success && m.Groups["value"].Value.Trim().Length > 0)
            {
                var name = m.Groups["name"].Value;
                var value = m.Groups["value"].Value;
                if (IsSecretName(name) || (IsHintName(name) && LooksHighEntropy(value)))
                {
                    _redacted.Add(Qualify(context, name));
                    sb.Append(m.Groups["lead"].Value).Append(name).Append(m.Groups["sep"].Value).Append(Mask);
                }
                else
                {
                    // the whole line: "postgres://u:p@h" also looks like "name: value"
                    sb.Append(RedactValue(line, context));
                }
            }
            else
            {
                sb.Append(RedactValue(line, context));
            }

            if (cr)
            {
                sb.Append('\r');
            }
        }

        return sb.ToString();
    }

    public IDictionary<string, string> RedactEnvironment(IDictionary<string, string> vars)
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in vars)
        {
            result[k] = RedactNamed(k, v, "env:" + k);
        }

        return result;
    }

    private string RedactValue(string value, string context)
    {
        if (PemPrivateKeyRegex().IsMatch(value))
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
        v = AuthHeaderRegex().Replace(v, m =>
        {
            _redacted.Add(context);
            return m.Groups["scheme"].Value + m.Groups["sp"].Value + Mask;
        });
        foreach (var r in new[] { JwtRegex(), AwsKeyRegex(), TokenPrefixRegex() })
        {
            if (r.IsMatch(v))
            {
                _redacted.Add(context);
                v = r.Replace(v, Mask);
            }
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
                    else if (child is JsonValue sv && sv.TryGetValue<string>(out var text) && IsHintName(key) && LooksHighEntropy(text))
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

    [GeneratedRegex(@"(?<pre>[a-z][a-z0-9+.\-]*://[^:/@\s]*:)[^@\s/]+@", RegexOptions.IgnoreCase)]
    private static partial Regex UrlPasswordRegex();

    [GeneratedRegex(@"-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z0-9 ]*-----")]
    private static partial Regex PemPrivateKeyRegex();

    [GeneratedRegex(@"\b(?<scheme>Bearer|Basic|Token|Digest|Negotiate|Bot)(?<sp>\s+)[A-Za-z0-9\-._~+/]{8,}=*", RegexOptions.IgnoreCase)]
    private static partial Regex AuthHeaderRegex();

    [GeneratedRegex(@"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*")]
    private static partial Regex JwtRegex();

    [GeneratedRegex(@"\b(?:(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|xox[abprs]-[A-Za-z0-9\-]{10,}|glpat-[A-Za-z0-9_\-]{20,}|SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}|AIza[A-Za-z0-9_\-]{35})")]
    private static partial Regex TokenPrefixRegex();

    [GeneratedRegex(@"^[A-Za-z0-9+/=_\-.:~]+$")]
    private static partial Regex HighEntropyAlphabetRegex();

    [GeneratedRegex(@"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")]
    private static partial Regex AwsKeyRegex();

}
