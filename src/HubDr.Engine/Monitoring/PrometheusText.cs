using System.Globalization;
using System.Text;

namespace HubDr.Engine.Monitoring;

/// <summary>
/// Reads and writes the Prometheus text exposition format (version 0.0.4), the format node_exporter's
/// textfile collector expects. The parser is strict: anything it does not understand makes the whole file
/// "corrupt" (it is what we wrote, so a deviation means truncation or a foreign edit).
/// </summary>
internal static class PrometheusText
{
    public sealed class FormatError(string message) : Exception(message);

    public static List<MetricSample> Parse(string text)
    {
        var help = new Dictionary<string, string>(StringComparer.Ordinal);
        var type = new Dictionary<string, string>(StringComparer.Ordinal);
        var raw = new List<(string Name, SortedDictionary<string, string> Labels, double Value)>();
        var seenSamples = new HashSet<string>(StringComparer.Ordinal);
        var familiesWithSamples = new HashSet<string>(StringComparer.Ordinal);

        if (text.Length > 0 && text[^1] != '\n')
        {
            throw new FormatError("the file does not end with a newline (truncated?)");
        }

        var lineNo = 0;
        foreach (var line in text.Split('\n').SkipLast(1))
        {
            lineNo++;
            if (line.Length == 0)
            {
                continue;
            }

            if (line[0] == '#')
            {
                var parts = line.Split(' ', 4);
                if (parts.Length >= 3 && parts[0] == "#" && (parts[1] == "HELP" || parts[1] == "TYPE"))
                {
                    var name = parts[2];
                    if (!IsMetricName(name))
                    {
                        throw new FormatError($"line {lineNo}: invalid metric name '{name}'");
                    }

                    if (parts[1] == "HELP")
                    {
                        if (!help.TryAdd(name, UnescapeHelp(parts.Length > 3 ? parts[3] : "", lineNo)))
                        {
                            throw new FormatError($"line {lineNo}: second HELP for {name}");
                        }
                    }
                    else
                    {
                        var t = parts.Length > 3 ? parts[3] : "";
                        if (t is not ("counter" or "gauge" or "untyped" or "summary" or "histogram"))
                        {
                            throw new FormatError($"line {lineNo}: unknown TYPE '{t}'");
                        }

                        if (familiesWithSamples.Contains(name) || !type.TryAdd(name, t))
                        {
                            throw new FormatError($"line {lineNo}: TYPE for {name} repeated or after its samples");
                        }
                    }
                }

                continue; // other comments are allowed by the format
            }

            var (sName, labels, value) = ParseSample(line, lineNo);
            var key = Key(sName, labels);
            if (!seenSamples.Add(key))
            {
                throw new FormatError($"line {lineNo}: duplicate sample {key}");
            }

            familiesWithSamples.Add(sName);
            raw.Add((sName, labels, value));
        }

        return raw.Select(r => new MetricSample(r.Name, r.Labels, r.Value,
            type.GetValueOrDefault(r.Name, "untyped"), help.GetValueOrDefault(r.Name, ""))).ToList();
    }

    /// <summary>Families alphabetically, HELP and TYPE once per family, samples sorted by their label string.</summary>
    public static string Write(IEnumerable<MetricSample> samples)
    {
        var sb = new StringBuilder();
        foreach (var family in samples.GroupBy(s => s.Name, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var first = family.First();
            sb.Append("# HELP ").Append(family.Key).Append(' ').Append(EscapeHelp(first.Help)).Append('\n');
            sb.Append("# TYPE ").Append(family.Key).Append(' ').Append(first.Type).Append('\n');
            foreach (var s in family.OrderBy(s => LabelString(s.Labels), StringComparer.Ordinal))
            {
                sb.Append(s.Name).Append(LabelString(s.Labels)).Append(' ').Append(FormatValue(s.Value)).Append('\n');
            }
        }

        return sb.ToString();
    }

    public static string Key(string name, IReadOnlyDictionary<string, string> labels) => name + LabelString(labels);

    public static string LabelString(IReadOnlyDictionary<string, string> labels)
    {
        if (labels.Count == 0)
        {
            return "";
        }

        var sb = new StringBuilder("{");
        foreach (var (k, v) in labels.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (sb.Length > 1)
            {
                sb.Append(',');
            }

            sb.Append(k).Append("=\"").Append(EscapeLabel(v)).Append('"');
        }

        return sb.Append('}').ToString();
    }

    public static string FormatValue(double v) =>
        double.IsPositiveInfinity(v) ? "+Inf" :
        double.IsNegativeInfinity(v) ? "-Inf" :
        double.IsNaN(v) ? "NaN" :
        v.ToString("R", CultureInfo.InvariantCulture);

    public static bool IsMetricName(string s) =>
        s.Length > 0 && (char.IsAsciiLetter(s[0]) || s[0] is '_' or ':') && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or ':');

    public static bool IsLabelName(string s) =>
        s.Length > 0 && (char.IsAsciiLetter(s[0]) || s[0] == '_') && s.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');

    private static string EscapeLabel(string v) => v.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");

    private static string EscapeHelp(string v) => v.Replace("\\", "\\\\").Replace("\n", "\\n");

    private static string UnescapeHelp(string v, int lineNo)
    {
        var sb = new StringBuilder(v.Length);
        for (var i = 0; i < v.Length; i++)
        {
            if (v[i] != '\\')
            {
                sb.Append(v[i]);
                continue;
            }

            if (++i >= v.Length)
            {
                throw new FormatError($"line {lineNo}: dangling escape in HELP");
            }

            sb.Append(v[i] switch { 'n' => '\n', '\\' => '\\', _ => throw new FormatError($"line {lineNo}: bad escape in HELP") });
        }

        return sb.ToString();
    }

    private static (string Name, SortedDictionary<string, string> Labels, double Value) ParseSample(string line, int lineNo)
    {
        var i = 0;
        while (i < line.Length && line[i] != '{' && line[i] != ' ')
        {
            i++;
        }

        var name = line[..i];
        if (!IsMetricName(name))
        {
            throw new FormatError($"line {lineNo}: invalid metric name '{name}'");
        }

        var labels = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (true)
            {
                if (i < line.Length && line[i] == '}')
                {
                    i++;
                    break;
                }

                var start = i;
                while (i < line.Length && line[i] != '=')
                {
                    i++;
                }

                var lname = line[start..i];
                if (!IsLabelName(lname) || i + 1 >= line.Length || line[i + 1] != '"')
                {
                    throw new FormatError($"line {lineNo}: malformed label");
                }

                i += 2;
                var value = new StringBuilder();
                while (true)
                {
                    if (i >= line.Length)
                    {
                        throw new FormatError($"line {lineNo}: unterminated label value");
                    }

                    var c = line[i++];
                    if (c == '"')
                    {
                        break;
                    }

                    if (c == '\\')
                    {
                        if (i >= line.Length)
                        {
                            throw new FormatError($"line {lineNo}: dangling escape");
                        }

                        value.Append(line[i++] switch { 'n' => '\n', '\\' => '\\', '"' => '"', _ => throw new FormatError($"line {lineNo}: bad escape") });
                    }
                    else
                    {
                        value.Append(c);
                    }
                }

                if (!labels.TryAdd(lname, value.ToString()))
                {
                    throw new FormatError($"line {lineNo}: duplicate label {lname}");
                }

                if (i < line.Length && line[i] == ',')
                {
                    i++;
                }
                else if (i >= line.Length || line[i] != '}')
                {
                    throw new FormatError($"line {lineNo}: expected ',' or '}}'");
                }
            }
        }

        if (i >= line.Length || line[i] != ' ')
        {
            throw new FormatError($"line {lineNo}: missing value");
        }

        var rest = line[(i + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (rest.Length is < 1 or > 2 || !TryParseValue(rest[0], out var v) || (rest.Length == 2 && !long.TryParse(rest[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _)))
        {
            throw new FormatError($"line {lineNo}: invalid value");
        }

        return (name, labels, v);
    }

    private static bool TryParseValue(string s, out double v)
    {
        switch (s)
        {
            case "+Inf":
                v = double.PositiveInfinity;
                return true;
            case "-Inf":
                v = double.NegativeInfinity;
                return true;
            case "NaN":
                v = double.NaN;
                return true;
            default:
                return double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out v) && !double.IsInfinity(v) && !double.IsNaN(v);
        }
    }
}
