using System.Globalization;

namespace HubDr.Engine.Retention;

/// <summary>
/// Which backups of one group to keep. Semantics follow restic's <c>forget</c> policy exactly
/// (see docs/retention.md). Counts: null or 0 = rule off, N &gt; 0 = the N most recent periods
/// that have a backup, -1 = unlimited. Durations are measured back from the newest backup's time.
/// </summary>
public sealed class RetentionPolicy
{
    /// <summary>Keep the N newest backups (restic --keep-last).</summary>
    public int? KeepLast { get; init; }

    /// <summary>Keep the newest backup of each of the N most recent hours that have one.</summary>
    public int? KeepHourly { get; init; }

    /// <summary>Keep the newest backup of each of the N most recent days that have one.</summary>
    public int? KeepDaily { get; init; }

    /// <summary>Keep the newest backup of each of the N most recent ISO weeks that have one.</summary>
    public int? KeepWeekly { get; init; }

    /// <summary>Keep the newest backup of each of the N most recent months that have one.</summary>
    public int? KeepMonthly { get; init; }

    /// <summary>Keep the newest backup of each of the N most recent years that have one.</summary>
    public int? KeepYearly { get; init; }

    /// <summary>Keep every backup newer than (newest backup - duration).</summary>
    public RetentionDuration? KeepWithin { get; init; }

    /// <summary>Keep the newest backup of every hour inside the window (newest backup - duration, newest].</summary>
    public RetentionDuration? KeepWithinHourly { get; init; }

    /// <summary>Keep the newest backup of every day inside the window.</summary>
    public RetentionDuration? KeepWithinDaily { get; init; }

    /// <summary>Keep the newest backup of every ISO week inside the window.</summary>
    public RetentionDuration? KeepWithinWeekly { get; init; }

    /// <summary>Keep the newest backup of every month inside the window.</summary>
    public RetentionDuration? KeepWithinMonthly { get; init; }

    /// <summary>Keep the newest backup of every year inside the window.</summary>
    public RetentionDuration? KeepWithinYearly { get; init; }

    /// <summary>
    /// Keep every backup that carries all tags of at least one entry. Each entry is a comma-separated
    /// tag list, exactly like restic's --keep-tag: ["foo,bar"] = has foo AND bar; ["foo", "bar"] = has foo OR bar.
    /// </summary>
    public IReadOnlyList<string> KeepTags { get; init; } = [];

    /// <summary>Time zone in which hours, days, ISO weeks, months and years are delimited. Default UTC.</summary>
    public TimeZoneInfo TimeZone { get; init; } = TimeZoneInfo.Utc;

    /// <summary>True when no rule is configured. A pure plan with an empty policy keeps nothing (restic semantics);
    /// <see cref="RetentionSafety"/> refuses to act on it.</summary>
    public bool IsEmpty =>
        IsOff(KeepLast) && IsOff(KeepHourly) && IsOff(KeepDaily) && IsOff(KeepWeekly) && IsOff(KeepMonthly) && IsOff(KeepYearly) &&
        IsOff(KeepWithin) && IsOff(KeepWithinHourly) && IsOff(KeepWithinDaily) && IsOff(KeepWithinWeekly) &&
        IsOff(KeepWithinMonthly) && IsOff(KeepWithinYearly) && (KeepTags is null || KeepTags.Count == 0);

    /// <summary>
    /// The runbook's policy as windows measured back from the newest backup: the newest backup of every day
    /// within 14 days, of every ISO week within 12 weeks (84 days), of every month within 12 months.
    /// </summary>
    public static RetentionPolicy RunbookDefault { get; } = new()
    {
        KeepWithinDaily = new RetentionDuration(0, 0, 14, 0),
        KeepWithinWeekly = new RetentionDuration(0, 0, 84, 0),
        KeepWithinMonthly = new RetentionDuration(0, 12, 0, 0),
    };

    /// <summary>
    /// Checks the values and throws HubDrException "RetentionPolicyInvalid" (InvalidArgument) for counts below -1,
    /// negative duration components or blank tag lists. An empty policy is valid here (see <see cref="IsEmpty"/>).
    /// </summary>
    public void Validate()
    {
        CheckCount(nameof(KeepLast), KeepLast);
        CheckCount(nameof(KeepHourly), KeepHourly);
        CheckCount(nameof(KeepDaily), KeepDaily);
        CheckCount(nameof(KeepWeekly), KeepWeekly);
        CheckCount(nameof(KeepMonthly), KeepMonthly);
        CheckCount(nameof(KeepYearly), KeepYearly);
        CheckDuration(nameof(KeepWithin), KeepWithin);
        CheckDuration(nameof(KeepWithinHourly), KeepWithinHourly);
        CheckDuration(nameof(KeepWithinDaily), KeepWithinDaily);
        CheckDuration(nameof(KeepWithinWeekly), KeepWithinWeekly);
        CheckDuration(nameof(KeepWithinMonthly), KeepWithinMonthly);
        CheckDuration(nameof(KeepWithinYearly), KeepWithinYearly);
        if (TimeZone is null)
        {
            throw Invalid("TimeZone is not set. Leave it out for UTC or give a valid time zone.");
        }

        foreach (var entry in KeepTags ?? [])
        {
            if (ParseTagList(entry).Count == 0)
            {
                throw Invalid("KeepTags contains an empty entry. Give comma-separated tag names, e.g. 'monthly-archive' or 'prod,verified'.");
            }
        }
    }

    /// <summary>Human-readable summary, e.g. "within-daily 14d, within-weekly 84d (12w), within-monthly 12m".</summary>
    public override string ToString()
    {
        var parts = new List<string>();
        AddCount(parts, "last", KeepLast);
        AddCount(parts, "hourly", KeepHourly);
        AddCount(parts, "daily", KeepDaily);
        AddCount(parts, "weekly", KeepWeekly);
        AddCount(parts, "monthly", KeepMonthly);
        AddCount(parts, "yearly", KeepYearly);
        AddDuration(parts, "within", KeepWithin);
        AddDuration(parts, "within-hourly", KeepWithinHourly);
        AddDuration(parts, "within-daily", KeepWithinDaily);
        AddDuration(parts, "within-weekly", KeepWithinWeekly);
        AddDuration(parts, "within-monthly", KeepWithinMonthly);
        AddDuration(parts, "within-yearly", KeepWithinYearly);
        foreach (var entry in KeepTags ?? [])
        {
            parts.Add("tags " + FormatTagList(ParseTagList(entry)));
        }

        if (parts.Count == 0)
        {
            return "empty policy (no rule set)";
        }

        var s = string.Join(", ", parts);
        if (TimeZone is not null && TimeZone != TimeZoneInfo.Utc && TimeZone.Id != TimeZoneInfo.Utc.Id)
        {
            s += $" (periods in {TimeZone.Id})";
        }

        return s;
    }

    internal static IReadOnlyList<string> ParseTagList(string? entry) =>
        (entry ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    internal static string FormatTagList(IReadOnlyList<string> tags) => "[" + string.Join(", ", tags) + "]";

    private static bool IsOff(int? count) => count is null or 0;

    private static bool IsOff(RetentionDuration? d) => d is null || d.Value.IsZero;

    private static void AddCount(List<string> parts, string name, int? count)
    {
        if (count is > 0)
        {
            parts.Add($"{name} {count.Value.ToString(CultureInfo.InvariantCulture)}");
        }
        else if (count == -1)
        {
            parts.Add($"{name} all");
        }
    }

    private static void AddDuration(List<string> parts, string name, RetentionDuration? d)
    {
        if (d is { IsZero: false } v)
        {
            parts.Add($"{name} {v.ToDisplayString()}");
        }
    }

    private static void CheckCount(string name, int? count)
    {
        if (count < -1)
        {
            throw Invalid($"{name} is {count}. Use a positive number of periods, 0 (or leave it out) to switch the rule off, or -1 for unlimited.");
        }
    }

    private static void CheckDuration(string name, RetentionDuration? d)
    {
        if (d is { } v && (v.Years < 0 || v.Months < 0 || v.Days < 0 || v.Hours < 0))
        {
            throw Invalid($"{name} has a negative component ({v.Years}y{v.Months}m{v.Days}d{v.Hours}h). Durations count back from the newest backup and must not be negative.");
        }
    }

    private static HubDrException Invalid(string message) =>
        new("RetentionPolicyInvalid", HubErrorCategory.InvalidArgument, "The retention policy is not valid: " + message);
}
