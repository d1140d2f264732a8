using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using HubDr.Engine;
using HubDr.Engine.Retention;

namespace HubDr.Cmdlets;

/// <summary>
/// The type of every duration parameter and setting. Accepts, interchangeably:
/// <list type="bullet">
/// <item>restic's units: "14d", "12w", "12m" (months), "1y2m3d4h"; plus "30min" and "45s";</item>
/// <item>TimeSpan text: "04:00:00", "14.00:00:00";</item>
/// <item>a [timespan] object.</item>
/// </list>
/// Years and months are calendar units (for retention rules); an elapsed time such as an RTO refuses them,
/// so "90m" (90 months) can never be mistaken for 90 minutes: write "90min".
/// </summary>
public sealed partial class HubDuration : IEquatable<HubDuration>
{
    public HubDuration(TimeSpan time)
        : this(0, 0, 0, time)
    {
    }

    private HubDuration(int years, int months, int days, TimeSpan time)
    {
        Years = years;
        Months = months;
        Days = days;
        Time = time;
    }

    public int Years { get; }
    public int Months { get; }

    /// <summary>Calendar days (from "d" and "w").</summary>
    public int Days { get; }

    /// <summary>The exact part: hours, minutes, seconds (and the whole of a TimeSpan).</summary>
    public TimeSpan Time { get; }

    public static implicit operator HubDuration(TimeSpan t) => new(t);

    /// <summary>Parses "14d", "1y2m", "90min", "1.5h", "04:00:00", "14.00:00:00"; throws DurationInvalid.</summary>
    public static HubDuration Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = text.Trim();
        if (t.Length == 0)
        {
            throw Invalid(text, "it is empty");
        }

        // A bare zero needs no unit: "0" (or an integer 0 from PowerShell) is no time at all.
        if (double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var bare) && bare == 0)
        {
            return new HubDuration(TimeSpan.Zero);
        }

        if (t.Contains(':', StringComparison.Ordinal))
        {
            return TimeSpan.TryParse(t, CultureInfo.InvariantCulture, out var ts) && ts >= TimeSpan.Zero
                ? new HubDuration(ts)
                : throw Invalid(text, "it is not a valid TimeSpan such as 04:00:00 or 14.00:00:00");
        }

        var matches = Token().Matches(t);
        if (matches.Count == 0 || string.Concat(matches.Select(m => m.Value)) != t)
        {
            throw Invalid(text, "expected numbers followed by y, m (months), w, d, h, min or s");
        }

        int years = 0, months = 0;
        long days = 0;
        var time = TimeSpan.Zero;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (Match m in matches)
        {
            var unit = m.Groups["unit"].Value.ToLowerInvariant();
            if (!seen.Add(unit))
            {
                throw Invalid(text, $"the unit '{unit}' appears more than once");
            }

            var number = double.Parse(m.Groups["n"].Value, NumberStyles.Float, CultureInfo.InvariantCulture);
            var whole = number == Math.Floor(number);
            if (!whole && unit is "y" or "m" or "w" or "d")
            {
                throw Invalid(text, $"'{m.Value}': years, months, weeks and days must be whole numbers (use hours: e.g. 36h)");
            }

            if (number > int.MaxValue)
            {
                throw Invalid(text, $"'{m.Value}' is too large");
            }

            switch (unit)
            {
                case "y": years = (int)number; break;
                case "m": months = (int)number; break;
                case "w": days += 7 * (long)number; break;
                case "d": days += (long)number; break;
                case "h": time += TimeSpan.FromHours(number); break;
                case "min": time += TimeSpan.FromMinutes(number); break;
                case "s": time += TimeSpan.FromSeconds(number); break;
            }
        }

        return days > int.MaxValue ? throw Invalid(text, "too many days") : new HubDuration(years, months, (int)days, time);
    }

    /// <summary>As an exact elapsed time (RTO, RPO, timeouts, ages). Years and months have no fixed length: refused.</summary>
    public TimeSpan ToTimeSpan(string what)
    {
        if (Years != 0 || Months != 0)
        {
            throw new HubDrException("DurationInvalid", HubErrorCategory.InvalidArgument,
                $"{what} '{this}' uses years or months, which have no fixed length (in restic's units 'm' is months). " +
                "Use days, hours, minutes or seconds, e.g. 30d, 4h, 90min or 04:00:00.") { Target = ToString() };
        }

        return TimeSpan.FromDays(Days) + Time;
    }

    /// <summary>As a restic retention duration (calendar years, months, days, then whole hours).</summary>
    public RetentionDuration ToRetentionDuration(string what)
    {
        var extraDays = (int)Time.TotalDays;
        var rest = Time - TimeSpan.FromDays(extraDays);
        if (rest.Ticks % TimeSpan.TicksPerHour != 0)
        {
            throw new HubDrException("DurationInvalid", HubErrorCategory.InvalidArgument,
                $"{what} '{this}' is not a whole number of hours; retention rules count years, months, days and hours (restic).") { Target = ToString() };
        }

        return new RetentionDuration(Years, Months, Days + extraDays, (int)(rest.Ticks / TimeSpan.TicksPerHour));
    }

    /// <summary>"1y2m3d4h30min" (restic style; minutes and seconds as "min" and "s"); "0s" when zero.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        void Add(double n, string unit)
        {
            if (n != 0)
            {
                sb.Append(n.ToString("0.###", CultureInfo.InvariantCulture)).Append(unit);
            }
        }

        Add(Years, "y");
        Add(Months, "m");
        Add(Days + Time.Days, "d");
        Add(Time.Hours, "h");
        Add(Time.Minutes, "min");
        Add(Time.Seconds + (Time.Milliseconds / 1000.0), "s");
        return sb.Length == 0 ? "0s" : sb.ToString();
    }

    public bool Equals(HubDuration? other) =>
        other is not null && Years == other.Years && Months == other.Months && Days == other.Days && Time == other.Time;

    public override bool Equals(object? obj) => Equals(obj as HubDuration);

    public override int GetHashCode() => HashCode.Combine(Years, Months, Days, Time);

    private static HubDrException Invalid(string text, string why) =>
        new("DurationInvalid", HubErrorCategory.InvalidArgument,
            $"'{text}' is not a duration: {why}. Use e.g. 14d, 12w, 12m (months), 1y2m, 4h, 90min, 30s, or TimeSpan text such as 04:00:00.") { Target = text };

    [GeneratedRegex(@"(?<n>[0-9]+(\.[0-9]+)?)(?<unit>min|y|m|w|d|h|s)", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Token();
}
