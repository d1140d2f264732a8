using System.Text.RegularExpressions;

namespace HubDr.Engine.RestoreTest;

/// <summary>"Monitor logs for errors": the lines of service output that match the operator's error patterns.</summary>
public static class LogScanner
{
    /// <summary>Default patterns (regular expressions, case-sensitive).</summary>
    public static readonly IReadOnlyList<string> DefaultPatterns = [@"\bERROR\b", @"\bFATAL\b", "Unhandled exception", @"\bpanic:", @"\bTraceback \(most recent call last\)"];

    public static IReadOnlyList<string> Scan(IEnumerable<string> lines, IEnumerable<string> patterns, int maxMatches = 20)
    {
        List<Regex> regexes;
        try
        {
            regexes = patterns.Select(p => new Regex(p, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1))).ToList();
        }
        catch (ArgumentException e)
        {
            throw new HubDrException("ErrorPatternInvalid", HubErrorCategory.InvalidArgument, $"An error pattern is not a valid regular expression: {e.Message}", e);
        }

        var redactor = new Sources.Redactor();
        return lines.Where(l => regexes.Any(r => r.IsMatch(l))).Take(maxMatches).Select(l => redactor.RedactText(l)).ToList();
    }
}
