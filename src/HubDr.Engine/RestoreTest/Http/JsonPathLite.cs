using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace HubDr.Engine.RestoreTest.Http;

/// <summary>
/// Small path language into a JSON response: "status", "from.balanceCents", "items[0].name", "items[*].name",
/// "[0]" (root array), "$" or "" (the root), or an RFC 6901 JSON pointer starting with '/' ("/items/0/name").
/// </summary>
internal sealed class JsonPathLite
{
    private readonly List<Segment> _segments;

    private JsonPathLite(string text, List<Segment> segments)
    {
        Text = text;
        _segments = segments;
    }

    public string Text { get; }

    public bool HasWildcard => _segments.Any(s => s.Wildcard);

    private readonly record struct Segment(string? Name, int? Index, bool Wildcard);

    public static bool TryParse(string text, out JsonPathLite? path, out string? error)
    {
        path = null;
        error = null;
        var segs = new List<Segment>();
        var t = text.Trim();
        if (t.StartsWith('/'))
        {
            foreach (var raw in t[1..].Split('/'))
            {
                var name = raw.Replace("~1", "/").Replace("~0", "~");
                if (name == "*") segs.Add(new Segment(null, null, true));
                else segs.Add(new Segment(name, int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var i) ? i : null, false));
            }
            path = new JsonPathLite(text, segs);
            return true;
        }
        if (t == "$") t = "";
        else if (t.StartsWith("$.", StringComparison.Ordinal)) t = t[2..];
        else if (t.StartsWith("$[", StringComparison.Ordinal)) t = t[1..];
        var pos = 0;
        var expectName = true;
        while (pos < t.Length)
        {
            var c = t[pos];
            if (c == '[')
            {
                var close = t.IndexOf(']', pos);
                if (close < 0) { error = "'[' without ']'"; return false; }
                var inner = t[(pos + 1)..close].Trim();
                if (inner == "*") segs.Add(new Segment(null, null, true));
                else if (int.TryParse(inner, NumberStyles.None, CultureInfo.InvariantCulture, out var idx)) segs.Add(new Segment(null, idx, false));
                else if (inner.Length >= 2 && (inner[0] == '"' || inner[0] == '\'') && inner[^1] == inner[0]) segs.Add(new Segment(inner[1..^1], null, false));
                else { error = $"'[{inner}]' is not an index, [*] or a quoted name"; return false; }
                pos = close + 1;
                expectName = false;
            }
            else if (c == '.')
            {
                if (expectName) { error = "empty name before '.'"; return false; }
                pos++;
                expectName = true;
                if (pos >= t.Length) { error = "path ends with '.'"; return false; }
            }
            else
            {
                if (!expectName) { error = $"expected '.' or '[' at position {pos}"; return false; }
                var sb = new StringBuilder();
                while (pos < t.Length && t[pos] != '.' && t[pos] != '[') sb.Append(t[pos++]);
                segs.Add(new Segment(sb.ToString(), null, false));
                expectName = false;
            }
        }
        path = new JsonPathLite(text, segs);
        return true;
    }

    public static JsonPathLite Parse(string text) =>
        TryParse(text, out var p, out var err) ? p! : throw new FormatException($"JSON path '{text}' is invalid: {err}");

    /// <summary>All nodes the path selects (a JSON null is a selected null); empty when nothing matches.</summary>
    public List<JsonNode?> Select(JsonNode? root)
    {
        var current = new List<JsonNode?> { root };
        foreach (var seg in _segments)
        {
            var next = new List<JsonNode?>();
            foreach (var node in current)
            {
                if (seg.Wildcard)
                {
                    if (node is JsonArray arr) next.AddRange(arr);
                    else if (node is JsonObject obj) next.AddRange(obj.Select(kv => kv.Value));
                }
                else if (node is JsonArray arr && seg.Index is int i)
                {
                    if (i < arr.Count) next.Add(arr[i]);
                }
                else if (node is JsonObject obj && seg.Name is not null)
                {
                    if (obj.TryGetPropertyValue(seg.Name, out var child)) next.Add(child);
                }
            }
            current = next;
            if (current.Count == 0) break;
        }
        return current;
    }

    /// <summary>Last property name of the path (used to recognise secrets such as "token").</summary>
    public string? LastName => _segments.LastOrDefault(s => s.Name is not null && s.Index is null).Name;

    public override string ToString() => Text;
}
