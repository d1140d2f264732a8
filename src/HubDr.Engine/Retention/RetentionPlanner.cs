using System.Globalization;

namespace HubDr.Engine.Retention;

/// <summary>
/// The pure, restic-compatible retention function (restic <c>forget</c> / ApplyPolicy semantics; see docs/retention.md).
/// </summary>
public static class RetentionPlanner
{
    private enum Period { Hour, Day, Week, Month, Year }

    private static readonly string[] PeriodNames = ["hourly", "daily", "weekly", "monthly", "yearly"];

    /// <summary>
    /// Decides, for every candidate of one backup group, whether the policy keeps it. Pure and deterministic:
    /// no clock, no I/O. Candidates are ordered newest first (ties: ordinal Id); one decision per candidate is
    /// returned in that order (the result is a <see cref="RetentionPlan"/>). "Within" windows are measured back
    /// from the newest candidate's time, never from the clock. An empty policy keeps nothing (as restic);
    /// use <see cref="RetentionSafety"/> before deleting anything.
    /// </summary>
    /// <exception cref="HubDrException">"RetentionPolicyInvalid" or "RetentionCandidateInvalid" (InvalidArgument).</exception>
    public static IReadOnlyList<RetentionDecision> Plan(IEnumerable<RetentionCandidate> candidates, RetentionPolicy policy) =>
        Plan(candidates, policy, now: null);

    /// <summary>
    /// As <see cref="Plan(IEnumerable{RetentionCandidate}, RetentionPolicy)"/>, but when <paramref name="now"/> is given,
    /// candidates at or after it are not used as the reference time for the "within" windows (restic ignores
    /// snapshots dated in the future the same way). With null the newest candidate is the reference.
    /// </summary>
    public static IReadOnlyList<RetentionDecision> Plan(IEnumerable<RetentionCandidate> candidates, RetentionPolicy policy, DateTimeOffset? now)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        ArgumentNullException.ThrowIfNull(policy);
        policy.Validate();

        var list = candidates.ToArray();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var c in list)
        {
            if (c is null)
            {
                throw CandidateInvalid("The list of backups contains a null entry.", null);
            }

            if (string.IsNullOrEmpty(c.Id))
            {
                throw CandidateInvalid($"A backup taken at {c.Time:O} has no id.", null);
            }

            if (!ids.Add(c.Id))
            {
                throw CandidateInvalid(
                    $"The backup id '{c.Id}' appears more than once. Each backup must be listed once so that exactly one decision is made about it.",
                    c.Id);
            }
        }

        Array.Sort(list, CompareNewestFirst);

        DateTimeOffset? reference = null;
        foreach (var c in list)
        {
            if (now is null || c.Time < now.Value)
            {
                reference = c.Time; // list is newest first: the first eligible one is the newest
                break;
            }
        }

        var decisions = new RetentionDecision[list.Length];
        if (list.Length == 0)
        {
            return new RetentionPlan(decisions, policy, reference);
        }

        var tz = policy.TimeZone;
        var isUtc = tz == TimeZoneInfo.Utc || tz.Id == TimeZoneInfo.Utc.Id;

        // Counted rules, in restic's order: last, hourly, daily, weekly, monthly, yearly.
        int[] counts =
        [
            policy.KeepLast ?? 0, policy.KeepHourly ?? 0, policy.KeepDaily ?? 0,
            policy.KeepWeekly ?? 0, policy.KeepMonthly ?? 0, policy.KeepYearly ?? 0,
        ];
        var countedLast = new long[6];
        Array.Fill(countedLast, long.MinValue);

        // Windowed rules: hourly, daily, weekly, monthly, yearly.
        RetentionDuration?[] withins =
        [
            policy.KeepWithinHourly, policy.KeepWithinDaily, policy.KeepWithinWeekly,
            policy.KeepWithinMonthly, policy.KeepWithinYearly,
        ];
        var withinActive = new bool[5];
        var withinThreshold = new long[5];
        var withinLast = new long[5];
        Array.Fill(withinLast, long.MinValue);
        for (var i = 0; i < 5; i++)
        {
            if (withins[i] is { IsZero: false } d)
            {
                withinActive[i] = true;
                withinThreshold[i] = ThresholdTicks(reference, d, tz, isUtc);
            }
        }

        var keepWithin = policy.KeepWithin is { IsZero: false } kw ? kw : (RetentionDuration?)null;
        var keepWithinThreshold = keepWithin is { } kwd ? ThresholdTicks(reference, kwd, tz, isUtc) : 0;
        var keepWithinReason = keepWithin is { } kwr ? "within " + kwr : "";

        var tagLists = (policy.KeepTags ?? []).Select(RetentionPolicy.ParseTagList).ToArray();
        var tagReasons = tagLists.Select(t => "has tags " + RetentionPolicy.FormatTagList(t)).ToArray();

        var anyCounted = counts.Any(c => c != 0);
        var anyWithinPeriod = withinActive.Any(a => a);

        for (var nr = 0; nr < list.Length; nr++)
        {
            var cur = list[nr];
            var isOldest = nr == list.Length - 1;
            var ticks = cur.Time.UtcTicks;
            List<string>? reasons = null;

            for (var t = 0; t < tagLists.Length; t++)
            {
                if (HasAllTags(cur, tagLists[t]))
                {
                    (reasons ??= []).Add(tagReasons[t]);
                }
            }

            if (keepWithin is not null && ticks > keepWithinThreshold)
            {
                (reasons ??= []).Add(keepWithinReason);
            }

            if (anyCounted || anyWithinPeriod)
            {
                var local = isUtc ? cur.Time.UtcDateTime : TimeZoneInfo.ConvertTime(cur.Time, tz).DateTime;

                if (anyCounted)
                {
                    for (var b = 0; b < 6; b++)
                    {
                        if (counts[b] <= 0 && counts[b] != -1)
                        {
                            continue;
                        }

                        var val = b == 0 ? nr : Key((Period)(b - 1), local);
                        if (val != countedLast[b] || isOldest)
                        {
                            var oldest = val == countedLast[b]; // only reachable for the oldest candidate
                            countedLast[b] = val;
                            if (counts[b] > 0)
                            {
                                counts[b]--;
                            }

                            (reasons ??= []).Add(b == 0
                                ? "last snapshot"
                                : (oldest ? "oldest " : "") + PeriodNames[b - 1] + " " + Label((Period)(b - 1), local));
                        }
                    }
                }

                for (var w = 0; w < 5; w++)
                {
                    if (!withinActive[w] || ticks <= withinThreshold[w])
                    {
                        continue;
                    }

                    var val = Key((Period)w, local);
                    if (val != withinLast[w] || isOldest)
                    {
                        var oldest = val == withinLast[w];
                        withinLast[w] = val;
                        (reasons ??= []).Add((oldest ? "oldest " : "") + "within-" + PeriodNames[w] + " " + Label((Period)w, local));
                    }
                }
            }

            decisions[nr] = reasons is null
                ? new RetentionDecision(cur, false, [])
                : new RetentionDecision(cur, true, reasons.ToArray());
        }

        return new RetentionPlan(decisions, policy, reference);
    }

    /// <summary>
    /// The start (exclusive) of a window of length <paramref name="d"/> ending at <paramref name="reference"/>, in UTC ticks:
    /// years/months/days are subtracted on the wall clock of <paramref name="tz"/> with Go AddDate normalisation
    /// (day overflow rolls into the next month), then hours are subtracted as elapsed time. Returns long.MinValue
    /// ("everything is inside") when the start lies before year 1 or there is no reference.
    /// </summary>
    internal static long ThresholdTicks(DateTimeOffset? reference, RetentionDuration d, TimeZoneInfo tz, bool isUtc)
    {
        if (reference is null)
        {
            return long.MinValue;
        }

        var wall = isUtc ? reference.Value.UtcDateTime : TimeZoneInfo.ConvertTime(reference.Value, tz).DateTime;
        var shifted = AddDateGo(wall, -(long)d.Years, -(long)d.Months, -(long)d.Days);
        if (shifted is null)
        {
            return long.MinValue;
        }

        long utcTicks;
        if (isUtc)
        {
            utcTicks = shifted.Value.Ticks;
        }
        else
        {
            var offset = tz.GetUtcOffset(DateTime.SpecifyKind(shifted.Value, DateTimeKind.Unspecified));
            utcTicks = shifted.Value.Ticks - offset.Ticks;
        }

        if (utcTicks < 0 || d.Hours > utcTicks / TimeSpan.TicksPerHour)
        {
            return long.MinValue;
        }

        return utcTicks - d.Hours * TimeSpan.TicksPerHour;
    }

    /// <summary>Go's time.AddDate on a wall-clock time: month and day overflow are normalised, not clamped
    /// (2025-03-31 minus 1 month = "2025-02-31" = 2025-03-03). Null when the result is before 0001-01-01.</summary>
    internal static DateTime? AddDateGo(DateTime wall, long years, long months, long days)
    {
        var totalMonths = (wall.Year + years) * 12 + (wall.Month - 1) + months;
        var year = FloorDiv(totalMonths, 12);
        var month = (int)(totalMonths - year * 12) + 1;
        var dayNumber = DaysFromCivil(year, month, 1) - DaysFromCivil(1, 1, 1) + (wall.Day - 1) + days;
        var maxDay = DateTime.MaxValue.Ticks / TimeSpan.TicksPerDay;
        if (dayNumber < 0)
        {
            return null;
        }

        if (dayNumber > maxDay)
        {
            return DateTime.MaxValue;
        }

        return new DateTime(dayNumber * TimeSpan.TicksPerDay + wall.TimeOfDay.Ticks, DateTimeKind.Unspecified);
    }

    private static long FloorDiv(long a, long b) => a >= 0 ? a / b : -((-a + b - 1) / b);

    // Days since 1970-01-01 in the proleptic Gregorian calendar, valid for any year (H. Hinnant's algorithm).
    private static long DaysFromCivil(long y, int m, int d)
    {
        y -= m <= 2 ? 1 : 0;
        var era = FloorDiv(y, 400);
        var yoe = y - era * 400;
        var mp = (m + 9) % 12;
        var doy = (153 * mp + 2) / 5 + d - 1;
        var doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
    }

    private static long Key(Period p, DateTime local) => p switch
    {
        Period.Hour => local.Year * 1_000_000L + local.Month * 10_000L + local.Day * 100L + local.Hour,
        Period.Day => local.Year * 10_000L + local.Month * 100L + local.Day,
        Period.Week => ISOWeek.GetYear(local) * 100L + ISOWeek.GetWeekOfYear(local),
        Period.Month => local.Year * 100L + local.Month,
        _ => local.Year,
    };

    /// <summary>The period label used in reasons: 2026-11-20T13, 2026-11-20, 2026-W47, 2026-11, 2026.</summary>
    private static string Label(Period p, DateTime local) => p switch
    {
        Period.Hour => local.ToString("yyyy'-'MM'-'dd'T'HH", CultureInfo.InvariantCulture),
        Period.Day => local.ToString("yyyy'-'MM'-'dd", CultureInfo.InvariantCulture),
        Period.Week => string.Create(CultureInfo.InvariantCulture, $"{ISOWeek.GetYear(local):D4}-W{ISOWeek.GetWeekOfYear(local):D2}"),
        Period.Month => local.ToString("yyyy'-'MM", CultureInfo.InvariantCulture),
        _ => local.Year.ToString("D4", CultureInfo.InvariantCulture),
    };

    /// <summary>Labels a time for the given period kind ("hourly", "daily", "weekly", "monthly", "yearly") in a zone.</summary>
    public static string PeriodLabel(string kind, DateTimeOffset time, TimeZoneInfo? timeZone = null)
    {
        var idx = Array.IndexOf(PeriodNames, kind);
        if (idx < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(kind), kind, "Expected hourly, daily, weekly, monthly or yearly.");
        }

        var tz = timeZone ?? TimeZoneInfo.Utc;
        return Label((Period)idx, TimeZoneInfo.ConvertTime(time, tz).DateTime);
    }

    private static int CompareNewestFirst(RetentionCandidate a, RetentionCandidate b)
    {
        var c = b.Time.UtcTicks.CompareTo(a.Time.UtcTicks);
        return c != 0 ? c : string.CompareOrdinal(a.Id, b.Id);
    }

    private static bool HasAllTags(RetentionCandidate c, IReadOnlyList<string> required)
    {
        if (required.Count == 0)
        {
            return false;
        }

        var tags = c.Tags ?? [];
        foreach (var r in required)
        {
            var found = false;
            foreach (var t in tags)
            {
                if (string.Equals(t, r, StringComparison.Ordinal))
                {
                    found = true;
                    break;
                }
            }

            if (!found)
            {
                return false;
            }
        }

        return true;
    }

    private static HubDrException CandidateInvalid(string message, string? id) =>
        new("RetentionCandidateInvalid", HubErrorCategory.InvalidArgument,
            "Cannot plan retention: " + message + " Nothing was removed.")
        { Target = id };
}
