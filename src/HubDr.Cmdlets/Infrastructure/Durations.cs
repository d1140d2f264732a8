using System.Globalization;
using HubDr.Engine;

namespace HubDr.Cmdlets.Infrastructure;

internal static class Durations
{
    /// <summary>"4h", "90m", "1d", "30s", "1.5h", or a TimeSpan string ("04:00:00").</summary>
    public static TimeSpan Parse(string text, string what)
    {
        var t = text.Trim();
        if (t.Length > 1 && char.IsLetter(t[^1]) && double.TryParse(t[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n >= 0)
        {
            return char.ToLowerInvariant(t[^1]) switch
            {
                's' => TimeSpan.FromSeconds(n),
                'm' => TimeSpan.FromMinutes(n),
                'h' => TimeSpan.FromHours(n),
                'd' => TimeSpan.FromDays(n),
                'w' => TimeSpan.FromDays(7 * n),
                _ => throw Invalid(text, what),
            };
        }

        return TimeSpan.TryParse(t, CultureInfo.InvariantCulture, out var ts) ? ts : throw Invalid(text, what);
    }

    private static HubDrException Invalid(string text, string what) =>
        new("DurationInvalid", HubErrorCategory.InvalidArgument, $"{what} '{text}' is not a duration: use e.g. 4h, 90m, 1d or 04:00:00.") { Target = text };
}
