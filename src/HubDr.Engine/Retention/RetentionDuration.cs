using System.Globalization;
using System.Text;

namespace HubDr.Engine.Retention;

/// <summary>
/// A calendar duration in restic's syntax ("1y2m3d4h"): years, months, days and hours.
/// Years, months and days are subtracted as calendar units with Go's <c>time.AddDate</c> normalisation
/// (Mar 31 minus 1 month is "Feb 31", which rolls over to Mar 3, or Mar 2 in a leap year);
/// hours are subtracted afterwards as an exact elapsed duration.
/// </summary>
public readonly record struct RetentionDuration(int Years, int Months, int Days, int Hours)
{
    /// <summary>True when every component is zero (the rule is switched off).</summary>
    public bool IsZero => Years == 0 && Months == 0 && Days == 0 && Hours == 0;

    /// <summary>
    /// Parses restic's duration syntax: one or more "&lt;number&gt;&lt;unit&gt;" pairs with units
    /// y (years), m (months), d (days), h (hours), plus the HubDr extension w (weeks = 7 days,
    /// so "12w" is 84d). Examples: "14d", "12w", "12m", "1y2m3d4h". Each unit may appear once;
    /// numbers must be non-negative.
    /// </summary>
    /// <exception cref="HubDrException">ErrorId "RetentionDurationInvalid" (InvalidArgument).</exception>
    public static RetentionDuration Parse(string s)
    {
        if (TryParse(s, out var d, out var error))
        {
            return d;
        }

        throw new HubDrException(
            "RetentionDurationInvalid",
            HubErrorCategory.InvalidArgument,
            $"The retention duration '{s}' is not valid: {error}. Use numbers followed by y (years), m (months), " +
            "w (weeks), d (days) or h (hours), for example '14d', '12w', '12m' or '1y2m3d4h'.")
        { Target = s };
    }

    /// <summary>Non-throwing variant of <see cref="Parse"/>.</summary>
    public static bool TryParse(string? s, out RetentionDuration duration) => TryParse(s, out duration, out _);

    private static bool TryParse(string? s, out RetentionDuration duration, out string error)
    {
        duration = default;
        if (string.IsNullOrWhiteSpace(s))
        {
            error = "it is empty";
            return false;
        }

        var text = s.Trim();
        int years = 0, months = 0, weeks = 0, days = 0, hours = 0;
        var seen = new HashSet<char>();
        var i = 0;
        while (i < text.Length)
        {
            var start = i;
            while (i < text.Length && text[i] >= '0' && text[i] <= '9')
            {
                i++;
            }

            if (i == start)
            {
                error = text[i] == '-'
                    ? "negative values are not allowed"
                    : $"expected a number at position {start + 1} but found '{text[i]}'";
                return false;
            }

            if (!int.TryParse(text.AsSpan(start, i - start), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                error = $"the number '{text[start..i]}' is too large";
                return false;
            }

            if (i >= text.Length)
            {
                error = $"no unit after the number {n}";
                return false;
            }

            var unit = text[i++];
            if (!seen.Add(unit) && "ymwdh".Contains(unit))
            {
                error = $"the unit '{unit}' appears more than once";
                return false;
            }

            switch (unit)
            {
                case 'y': years = n; break;
                case 'm': months = n; break;
                case 'w': weeks = n; break;
                case 'd': days = n; break;
                case 'h': hours = n; break;
                default:
                    error = $"unknown unit '{unit}' after the number {n}";
                    return false;
            }
        }

        long totalDays = (long)weeks * 7 + days;
        if (totalDays > int.MaxValue)
        {
            error = "the number of days is too large";
            return false;
        }

        duration = new RetentionDuration(years, months, (int)totalDays, hours);
        error = "";
        return true;
    }

    /// <summary>restic's rendering: "1y2m3d4h", omitting zero components; "0d" when zero.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        if (Years != 0) sb.Append(Years.ToString(CultureInfo.InvariantCulture)).Append('y');
        if (Months != 0) sb.Append(Months.ToString(CultureInfo.InvariantCulture)).Append('m');
        if (Days != 0) sb.Append(Days.ToString(CultureInfo.InvariantCulture)).Append('d');
        if (Hours != 0) sb.Append(Hours.ToString(CultureInfo.InvariantCulture)).Append('h');
        return sb.Length == 0 ? "0d" : sb.ToString();
    }

    /// <summary>Like <see cref="ToString"/>, but a pure day count of 4 weeks or more that is a whole number of weeks
    /// also shows as weeks: "84d (12w)" (short spans such as "14d" stay as they are).</summary>
    public string ToDisplayString()
    {
        var s = ToString();
        if (Years == 0 && Months == 0 && Hours == 0 && Days >= 28 && Days % 7 == 0)
        {
            s += $" ({(Days / 7).ToString(CultureInfo.InvariantCulture)}w)";
        }

        return s;
    }
}
