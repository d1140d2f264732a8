using System.Diagnostics;
using System.Globalization;
using HubDr.Engine.Retention;
using Xunit;
using Xunit.Abstractions;

namespace HubDr.Engine.Tests.Retention;

public sealed class RetentionPlannerTests
{
    private readonly ITestOutputHelper _output;

    public RetentionPlannerTests(ITestOutputHelper output) => _output = output;

    internal static DateTimeOffset T(string s) =>
        DateTimeOffset.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    internal static RetentionCandidate C(string time, string? id = null) => new(id ?? time, T(time));

    private static Dictionary<string, IReadOnlyList<string>> KeptById(IReadOnlyList<RetentionDecision> plan) =>
        plan.Where(d => d.Keep).ToDictionary(d => d.Candidate.Id, d => d.Reasons);

    private static string[] KeptIds(IReadOnlyList<RetentionDecision> plan) =>
        plan.Where(d => d.Keep).Select(d => d.Candidate.Id).ToArray();

    /// <summary>Daily backups at the given hour, from first to last inclusive (UTC).</summary>
    private static List<RetentionCandidate> DailySchedule(DateTime first, DateTime last, int hour = 2)
    {
        var list = new List<RetentionCandidate>();
        for (var d = first; d <= last; d = d.AddDays(1))
        {
            var t = new DateTimeOffset(d.Year, d.Month, d.Day, hour, 0, 0, TimeSpan.Zero);
            list.Add(new RetentionCandidate("b-" + t.ToString("yyyyMMdd'T'HHmm", CultureInfo.InvariantCulture), t));
        }

        return list;
    }

    // ---------------------------------------------------------------- durations

    [Theory]
    [InlineData("1y2m3d4h", 1, 2, 3, 4)]
    [InlineData("14d", 0, 0, 14, 0)]
    [InlineData("12w", 0, 0, 84, 0)]
    [InlineData("12m", 0, 12, 0, 0)]
    [InlineData("2w3d", 0, 0, 17, 0)]
    [InlineData(" 13d23h ", 0, 0, 13, 23)]
    [InlineData("1y1d1m", 1, 1, 1, 0)]
    [InlineData("9999y", 9999, 0, 0, 0)]
    public void DurationParsesResticSyntaxAndWeeks(string text, int y, int m, int d, int h)
    {
        Assert.Equal(new RetentionDuration(y, m, d, h), RetentionDuration.Parse(text));
        Assert.True(RetentionDuration.TryParse(text, out var parsed));
        Assert.Equal(new RetentionDuration(y, m, d, h), parsed);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("d")]
    [InlineData("14")]
    [InlineData("14x")]
    [InlineData("-1d")]
    [InlineData("1d1d")]
    [InlineData("1.5d")]
    [InlineData("1M")]
    [InlineData("99999999999d")]
    public void DurationRejectsInvalidText(string text)
    {
        var ex = Assert.Throws<HubDrException>(() => RetentionDuration.Parse(text));
        Assert.Equal("RetentionDurationInvalid", ex.ErrorId);
        Assert.Equal(HubErrorCategory.InvalidArgument, ex.Category);
        Assert.Contains("14d", ex.Message); // tells the operator what a valid value looks like
        Assert.False(RetentionDuration.TryParse(text, out _));
    }

    [Fact]
    public void DurationRendersLikeRestic()
    {
        Assert.Equal("1y2m3d4h", new RetentionDuration(1, 2, 3, 4).ToString());
        Assert.Equal("1y1m1d", RetentionDuration.Parse("1y1d1m").ToString());
        Assert.Equal("84d", RetentionDuration.Parse("12w").ToString());
        Assert.Equal("84d (12w)", RetentionDuration.Parse("12w").ToDisplayString());
        Assert.Equal("0d", default(RetentionDuration).ToString());
        Assert.True(default(RetentionDuration).IsZero);
    }

    // ---------------------------------------------------------------- policy

    [Fact]
    public void RunbookDefaultIsTheThreeWindows()
    {
        var p = RetentionPolicy.RunbookDefault;
        Assert.Equal(new RetentionDuration(0, 0, 14, 0), p.KeepWithinDaily);
        Assert.Equal(new RetentionDuration(0, 0, 84, 0), p.KeepWithinWeekly);
        Assert.Equal(new RetentionDuration(0, 12, 0, 0), p.KeepWithinMonthly);
        Assert.False(p.IsEmpty);
        Assert.Equal("within-daily 14d, within-weekly 84d (12w), within-monthly 12m", p.ToString());
    }

    [Fact]
    public void PolicyToStringListsEveryRule()
    {
        var p = new RetentionPolicy
        {
            KeepLast = 3, KeepDaily = -1, KeepWithin = RetentionDuration.Parse("2d"), KeepTags = ["prod,verified"],
            TimeZone = TimeZoneInfo.CreateCustomTimeZone("Test+02", TimeSpan.FromHours(2), "Test+02", "Test+02"),
        };
        Assert.Equal("last 3, daily all, within 2d, tags [prod, verified] (periods in Test+02)", p.ToString());
        Assert.Equal("empty policy (no rule set)", new RetentionPolicy().ToString());
    }

    [Fact]
    public void IsEmptyOnlyWhenNoRuleIsSet()
    {
        Assert.True(new RetentionPolicy().IsEmpty);
        Assert.True(new RetentionPolicy { KeepDaily = 0, KeepWithin = default(RetentionDuration) }.IsEmpty);
        Assert.False(new RetentionPolicy { KeepLast = -1 }.IsEmpty);
        Assert.False(new RetentionPolicy { KeepTags = ["x"] }.IsEmpty);
        Assert.False(new RetentionPolicy { KeepWithinYearly = RetentionDuration.Parse("1h") }.IsEmpty);
    }

    [Fact]
    public void InvalidPoliciesAndCandidatesAreRejected()
    {
        var one = new[] { C("2026-01-01T00:00:00Z") };
        var ex = Assert.Throws<HubDrException>(() => RetentionPlanner.Plan(one, new RetentionPolicy { KeepDaily = -2 }));
        Assert.Equal("RetentionPolicyInvalid", ex.ErrorId);
        Assert.Contains("KeepDaily", ex.Message);

        ex = Assert.Throws<HubDrException>(() => RetentionPlanner.Plan(one, new RetentionPolicy { KeepWithin = new RetentionDuration(0, -1, 0, 0) }));
        Assert.Equal("RetentionPolicyInvalid", ex.ErrorId);

        ex = Assert.Throws<HubDrException>(() => RetentionPlanner.Plan(one, new RetentionPolicy { KeepTags = [" , "] }));
        Assert.Equal("RetentionPolicyInvalid", ex.ErrorId);

        ex = Assert.Throws<HubDrException>(() => RetentionPlanner.Plan(
            [C("2026-01-01T00:00:00Z", "same"), C("2026-01-02T00:00:00Z", "same")], new RetentionPolicy { KeepLast = 1 }));
        Assert.Equal("RetentionCandidateInvalid", ex.ErrorId);
        Assert.Equal(HubErrorCategory.InvalidArgument, ex.Category);
        Assert.Equal("same", ex.Target);
    }

    // ---------------------------------------------------------------- basics

    [Fact]
    public void EmptyPolicyKeepsNothingAndEmptyInputGivesEmptyPlan()
    {
        var plan = RetentionPlanner.Plan([C("2026-01-01T00:00:00Z"), C("2026-01-02T00:00:00Z")], new RetentionPolicy());
        Assert.Equal(2, plan.Count);
        Assert.All(plan, d => Assert.False(d.Keep));

        Assert.Empty(RetentionPlanner.Plan([], RetentionPolicy.RunbookDefault));
    }

    [Fact]
    public void ResultIsNewestFirstAndDeterministicWhateverTheInputOrder()
    {
        var input = DailySchedule(new DateTime(2025, 1, 1), new DateTime(2025, 12, 31));
        input.Add(new RetentionCandidate("b-20251231T0200-dup-b", T("2025-12-31T02:00:00Z")));
        input.Add(new RetentionCandidate("b-20251231T0200-dup-a", T("2025-12-31T02:00:00Z")));
        var policy = new RetentionPolicy { KeepLast = 2, KeepWeekly = 5, KeepWithinMonthly = RetentionDuration.Parse("6m") };

        var reference = RetentionPlanner.Plan(input, policy);
        var times = reference.Select(d => d.Candidate.Time).ToArray();
        Assert.Equal(times.OrderByDescending(t => t).ToArray(), times);

        // Equal times: ordinal Id order.
        Assert.Equal(["b-20251231T0200", "b-20251231T0200-dup-a", "b-20251231T0200-dup-b"],
            reference.Take(3).Select(d => d.Candidate.Id).ToArray());
        Assert.Equal(["last snapshot", "weekly 2026-W01", "within-monthly 2025-12"], reference[0].Reasons);
        Assert.Equal(["last snapshot"], reference[1].Reasons);
        Assert.False(reference[2].Keep);

        var rng = new Random(1234);
        for (var round = 0; round < 5; round++)
        {
            var shuffled = input.OrderBy(_ => rng.Next()).ToList();
            var again = RetentionPlanner.Plan(shuffled, policy);
            Assert.Equal(reference.Select(d => (d.Candidate.Id, d.Keep, string.Join("|", d.Reasons))),
                again.Select(d => (d.Candidate.Id, d.Keep, string.Join("|", d.Reasons))));
        }
    }

    // ---------------------------------------------------------------- calendar arithmetic

    [Fact]
    public void MonthSubtractionFollowsGoAddDateAtMonthEnds()
    {
        // 2025-03-31 minus 1 month is "2025-02-31", which Go normalises to 2025-03-03 (not clamped to Feb 28).
        var policy = new RetentionPolicy { KeepWithin = RetentionDuration.Parse("1m") };
        var plan = RetentionPlanner.Plan(
        [
            C("2025-03-31T12:00:00Z"), C("2025-03-03T12:00:01Z"), C("2025-03-03T12:00:00Z"), C("2025-03-01T12:00:00Z"),
        ], policy);
        Assert.Equal(["2025-03-31T12:00:00Z", "2025-03-03T12:00:01Z"], KeptIds(plan));

        // Leap year: "2024-02-31" is 2024-03-02.
        plan = RetentionPlanner.Plan(
        [
            C("2024-03-31T12:00:00Z"), C("2024-03-02T12:00:01Z"), C("2024-03-02T12:00:00Z"), C("2024-03-01T12:00:00Z"),
        ], policy);
        Assert.Equal(["2024-03-31T12:00:00Z", "2024-03-02T12:00:01Z"], KeptIds(plan));

        // Jan 31 minus 1 month is "Dec 31" (no overflow), Feb 28 minus 1 month is Jan 28.
        plan = RetentionPlanner.Plan([C("2025-02-28T00:00:00Z"), C("2025-01-28T00:00:01Z"), C("2025-01-28T00:00:00Z")], policy);
        Assert.Equal(["2025-02-28T00:00:00Z", "2025-01-28T00:00:01Z"], KeptIds(plan));
    }

    [Fact]
    public void MonthlyBucketsFollowMonthsOfDifferentLengths()
    {
        var input = DailySchedule(new DateTime(2024, 1, 1), new DateTime(2025, 3, 31), hour: 23);
        var plan = RetentionPlanner.Plan(input, new RetentionPolicy { KeepMonthly = 4 });
        var kept = KeptById(plan);
        Assert.Equal(["b-20250331T2300", "b-20250228T2300", "b-20250131T2300", "b-20241231T2300"], kept.Keys.ToArray());
        Assert.Equal(["monthly 2025-02"], kept["b-20250228T2300"]);

        plan = RetentionPlanner.Plan(input.Where(c => c.Time < T("2024-03-15T00:00:00Z")), new RetentionPolicy { KeepMonthly = 2 });
        Assert.Equal(["b-20240314T2300", "b-20240229T2300"], KeptIds(plan));
        Assert.Equal(["monthly 2024-02"], plan.Single(d => d.Candidate.Id == "b-20240229T2300").Reasons);
    }

    [Fact]
    public void LeapDayYearSubtraction()
    {
        // 2024-02-29 minus 1 year is "2023-02-29" = 2023-03-01 (Go), so Feb 28 2023 is outside a 1y window.
        var policy = new RetentionPolicy { KeepWithin = RetentionDuration.Parse("1y") };
        var plan = RetentionPlanner.Plan(
        [
            C("2024-02-29T00:00:00Z"), C("2023-03-01T00:00:01Z"), C("2023-03-01T00:00:00Z"), C("2023-02-28T23:00:00Z"),
        ], policy);
        Assert.Equal(["2024-02-29T00:00:00Z", "2023-03-01T00:00:01Z"], KeptIds(plan));

        // Four years back from a leap day is a leap day.
        plan = RetentionPlanner.Plan(
            [C("2024-02-29T06:00:00Z"), C("2020-02-29T06:00:01Z"), C("2020-02-29T06:00:00Z")],
            new RetentionPolicy { KeepWithin = RetentionDuration.Parse("4y") });
        Assert.Equal(["2024-02-29T06:00:00Z", "2020-02-29T06:00:01Z"], KeptIds(plan));

        // Day buckets see the leap day as its own day.
        plan = RetentionPlanner.Plan(
            DailySchedule(new DateTime(2024, 2, 27), new DateTime(2024, 3, 1)), new RetentionPolicy { KeepDaily = 2 });
        Assert.Equal([["daily 2024-03-01"], ["daily 2024-02-29"]], plan.Where(d => d.Keep).Select(d => d.Reasons.ToArray()));
    }

    [Fact]
    public void HoursAreElapsedTimeAfterTheCalendarPart()
    {
        // 13d23h back from 2016-01-18T12:02:03 is 2016-01-04T13:02:03 (restic vector 27).
        var policy = new RetentionPolicy { KeepWithin = RetentionDuration.Parse("13d23h") };
        var plan = RetentionPlanner.Plan(
            [C("2016-01-18T12:02:03Z"), C("2016-01-04T13:02:04Z"), C("2016-01-04T13:02:03Z")], policy);
        Assert.Equal(["2016-01-18T12:02:03Z", "2016-01-04T13:02:04Z"], KeptIds(plan));

        // A window reaching before year 1 simply includes everything.
        plan = RetentionPlanner.Plan([C("2016-01-18T12:00:00Z"), C("0001-01-02T00:00:00Z")],
            new RetentionPolicy { KeepWithin = RetentionDuration.Parse("9999y"), KeepWithinHourly = RetentionDuration.Parse("2147483647h") });
        Assert.All(plan, d => Assert.True(d.Keep));
    }

    [Theory]
    [InlineData("2020-12-31T12:00:00Z", "2020-W53")]
    [InlineData("2021-01-03T23:59:59Z", "2020-W53")]
    [InlineData("2021-01-04T00:00:00Z", "2021-W01")]
    [InlineData("2019-12-30T00:00:00Z", "2020-W01")]
    [InlineData("2018-12-31T00:00:00Z", "2019-W01")]
    [InlineData("2016-01-03T07:02:03Z", "2015-W53")]
    [InlineData("2022-01-02T00:00:00Z", "2021-W52")]
    [InlineData("2026-11-20T13:00:00Z", "2026-W47")]
    public void WeeksAreIsoWeeksWithTheIsoWeekYear(string time, string label)
    {
        Assert.Equal(label, RetentionPlanner.PeriodLabel("weekly", T(time)));
    }

    [Fact]
    public void WeeklyRuleAcrossTheWeek53YearBoundary()
    {
        var input = DailySchedule(new DateTime(2020, 12, 21), new DateTime(2021, 1, 10), hour: 12);
        var plan = RetentionPlanner.Plan(input, new RetentionPolicy { KeepWeekly = -1 });
        var kept = KeptById(plan);
        Assert.Equal(["b-20210110T1200", "b-20210103T1200", "b-20201227T1200", "b-20201221T1200"], kept.Keys.ToArray());
        Assert.Equal(["weekly 2021-W01"], kept["b-20210110T1200"]);
        Assert.Equal(["weekly 2020-W53"], kept["b-20210103T1200"]); // 2020-12-28 .. 2021-01-03 is one week
        Assert.Equal(["weekly 2020-W52"], kept["b-20201227T1200"]);
        Assert.Equal(["oldest weekly 2020-W52"], kept["b-20201221T1200"]); // unlimited count left: oldest is kept too
    }

    // ---------------------------------------------------------------- counted rules, gaps, several a day

    [Fact]
    public void CountedRulesCountPeriodsThatHaveABackupAcrossGaps()
    {
        // Sundays, then a five-week gap.
        string[] sundays = ["2026-03-01", "2026-03-08", "2026-03-15", "2026-04-26", "2026-05-03"];
        var input = sundays.Select(s => C(s + "T12:00:00Z", s)).ToList();

        var plan = RetentionPlanner.Plan(input, new RetentionPolicy { KeepWeekly = 4 });
        Assert.Equal(["2026-05-03", "2026-04-26", "2026-03-15", "2026-03-08"], KeptIds(plan));
        Assert.Equal(["weekly 2026-W11"], plan.Single(d => d.Candidate.Id == "2026-03-15").Reasons);

        // A window, in contrast, is calendar time: 4 weeks back from May 3 does not reach across the gap.
        plan = RetentionPlanner.Plan(input, new RetentionPolicy { KeepWithinWeekly = RetentionDuration.Parse("4w") });
        Assert.Equal(["2026-05-03", "2026-04-26"], KeptIds(plan));
        Assert.Equal(["within-weekly 2026-W17"], plan.Single(d => d.Candidate.Id == "2026-04-26").Reasons);

        // When the count outlives the history, the oldest backup is kept as well (current restic).
        plan = RetentionPlanner.Plan(input, new RetentionPolicy { KeepMonthly = 5 });
        Assert.Equal(["2026-05-03", "2026-04-26", "2026-03-15", "2026-03-01"], KeptIds(plan));
        Assert.Equal(["oldest monthly 2026-03"], plan.Single(d => d.Candidate.Id == "2026-03-01").Reasons);
    }

    [Fact]
    public void SeveralBackupsADayKeepTheNewestOfEachPeriod()
    {
        var input = new[]
        {
            C("2026-11-20T01:00:00Z"), C("2026-11-20T09:00:00Z"), C("2026-11-20T13:00:00Z"), C("2026-11-20T13:30:00Z"),
            C("2026-11-20T22:00:00Z"), C("2026-11-19T08:00:00Z"), C("2026-11-19T20:00:00Z"), C("2026-11-18T10:00:00Z"),
        };

        var plan = RetentionPlanner.Plan(input, new RetentionPolicy { KeepDaily = 2 });
        Assert.Equal(["2026-11-20T22:00:00Z", "2026-11-19T20:00:00Z"], KeptIds(plan));
        Assert.Equal(["daily 2026-11-20"], plan[0].Reasons);

        plan = RetentionPlanner.Plan(input, new RetentionPolicy { KeepHourly = 3 });
        Assert.Equal(["2026-11-20T22:00:00Z", "2026-11-20T13:30:00Z", "2026-11-20T09:00:00Z"], KeptIds(plan));
        Assert.Equal(["hourly 2026-11-20T13"], plan.Single(d => d.Candidate.Id == "2026-11-20T13:30:00Z").Reasons);

        plan = RetentionPlanner.Plan(input, new RetentionPolicy { KeepLast = 2, KeepDaily = 1 });
        Assert.Equal(["last snapshot", "daily 2026-11-20"], plan[0].Reasons);
        Assert.Equal(["last snapshot"], plan[1].Reasons);
        Assert.Equal(2, plan.Count(d => d.Keep));

        plan = RetentionPlanner.Plan(input, new RetentionPolicy { KeepWithinDaily = RetentionDuration.Parse("2d") });
        Assert.Equal(["2026-11-20T22:00:00Z", "2026-11-19T20:00:00Z"], KeptIds(plan)); // Nov 18 10:00 is before Nov 18 22:00
    }

    // ---------------------------------------------------------------- time zones

    [Fact]
    public void TimeZoneDecidesWhichDayABackupFallsIn()
    {
        var input = new[] { C("2026-11-21T10:00:00Z"), C("2026-11-20T22:30:00Z"), C("2026-11-20T10:00:00Z") };

        var utc = RetentionPlanner.Plan(input, new RetentionPolicy { KeepDaily = 2 });
        Assert.Equal(["2026-11-21T10:00:00Z", "2026-11-20T22:30:00Z"], KeptIds(utc));
        Assert.Equal(["daily 2026-11-20"], utc[1].Reasons);

        // In UTC+2 the 22:30Z backup is 00:30 on the 21st: same day as the newest, so the 20th is the 10:00Z one.
        var plus2 = TimeZoneInfo.CreateCustomTimeZone("Test+02", TimeSpan.FromHours(2), "Test+02", "Test+02");
        var zoned = RetentionPlanner.Plan(input, new RetentionPolicy { KeepDaily = 2, TimeZone = plus2 });
        Assert.Equal(["2026-11-21T10:00:00Z", "2026-11-20T10:00:00Z"], KeptIds(zoned));
        Assert.Equal(["daily 2026-11-21"], zoned[0].Reasons);
        Assert.Equal(["daily 2026-11-20"], zoned[2].Reasons);

        // Weeks too: Sunday 23:30Z is already Monday (next ISO week) in UTC+2.
        Assert.Equal("2026-W47", RetentionPlanner.PeriodLabel("weekly", T("2026-11-22T23:30:00Z")));
        Assert.Equal("2026-W48", RetentionPlanner.PeriodLabel("weekly", T("2026-11-22T23:30:00Z"), plus2));
    }

    [Fact]
    public void WindowsInANamedZoneUseItsWallClockAcrossDaylightSaving()
    {
        // Europe/Berlin leaves summer time on 2026-10-25. 1d back from 2026-10-25T12:00 local (11:00Z) is
        // 2026-10-24T12:00 local = 10:00Z: a 25-hour day, as restic computes in a zoned location.
        var berlin = TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin");
        var input = new[] { C("2026-10-25T11:00:00Z"), C("2026-10-24T10:00:01Z"), C("2026-10-24T10:00:00Z") };
        var plan = RetentionPlanner.Plan(input, new RetentionPolicy { KeepWithin = RetentionDuration.Parse("1d"), TimeZone = berlin });
        Assert.Equal(["2026-10-25T11:00:00Z", "2026-10-24T10:00:01Z"], KeptIds(plan));

        // In UTC the same window is 24 hours.
        plan = RetentionPlanner.Plan(input, new RetentionPolicy { KeepWithin = RetentionDuration.Parse("1d") });
        Assert.Equal(["2026-10-25T11:00:00Z"], KeptIds(plan));
    }

    // ---------------------------------------------------------------- windows measured from the newest backup

    [Fact]
    public void RunbookDefaultOverTwoYearsOfDailyBackups()
    {
        var input = DailySchedule(new DateTime(2024, 1, 1), new DateTime(2025, 12, 31));
        Assert.Equal(731, input.Count);
        var plan = RetentionPlanner.Plan(input, RetentionPolicy.RunbookDefault);

        // Independent expectation: newest backup per period among backups strictly inside each window.
        var newest = input.Max(c => c.Time);
        IEnumerable<string> NewestPer(DateTimeOffset from, Func<DateTimeOffset, object> period) =>
            input.Where(c => c.Time > from).GroupBy(c => period(c.Time)).Select(g => g.MaxBy(c => c.Time)!.Id);
        var daily = NewestPer(newest.AddDays(-14), t => t.Date).ToHashSet();
        var weekly = NewestPer(newest.AddDays(-84), t => (ISOWeek.GetYear(t.DateTime), ISOWeek.GetWeekOfYear(t.DateTime))).ToHashSet();
        var monthly = NewestPer(newest.AddMonths(-12), t => (t.Year, t.Month)).ToHashSet();
        Assert.Equal(14, daily.Count);
        Assert.Equal(13, weekly.Count);   // 84 days touch 13 ISO weeks: W41 (Oct 9-12, partial) .. 2026-W01
        Assert.Equal(12, monthly.Count);

        var expected = daily.Union(weekly).Union(monthly).OrderByDescending(id => id, StringComparer.Ordinal).ToArray();
        Assert.Equal(34, expected.Length);
        Assert.Equal(expected, KeptIds(plan));

        Assert.Equal(14, plan.Count(d => d.Reasons.Any(r => r.StartsWith("within-daily ", StringComparison.Ordinal))));
        Assert.Equal(13, plan.Count(d => d.Reasons.Any(r => r.StartsWith("within-weekly ", StringComparison.Ordinal))));
        Assert.Equal(12, plan.Count(d => d.Reasons.Any(r => r.StartsWith("within-monthly ", StringComparison.Ordinal))));
        Assert.Equal(["within-daily 2025-12-31", "within-weekly 2026-W01", "within-monthly 2025-12"], plan[0].Reasons);
        Assert.Equal(["within-weekly 2025-W48", "within-monthly 2025-11"],
            plan.Single(d => d.Candidate.Id == "b-20251130T0200").Reasons);
        Assert.Equal(["within-monthly 2025-01"], plan.Single(d => d.Candidate.Id == "b-20250131T0200").Reasons);
        Assert.False(plan.Single(d => d.Candidate.Id == "b-20241231T0200").Keep);
    }

    [Fact]
    public void StalledBackupJobDoesNotCauseMassDeletion()
    {
        // Backups stopped in mid-2019; planning years later still keeps the runbook's set, measured from the last backup.
        var input = DailySchedule(new DateTime(2018, 1, 1), new DateTime(2019, 6, 30));
        var pure = RetentionPlanner.Plan(input, RetentionPolicy.RunbookDefault);
        var withClock = RetentionPlanner.Plan(input, RetentionPolicy.RunbookDefault, now: T("2031-01-01T00:00:00Z"));

        Assert.Equal(14, pure.Count(d => d.Reasons.Any(r => r.StartsWith("within-daily ", StringComparison.Ordinal))));
        Assert.True(pure.Count(d => d.Keep) >= 30);
        Assert.Equal(KeptIds(pure), KeptIds(withClock));
        Assert.Equal(T("2019-06-30T02:00:00Z"), ((RetentionPlan)pure).ReferenceTime);
    }

    [Fact]
    public void BackupsDatedInTheFutureAreNotTheReferenceWhenNowIsGiven()
    {
        var input = DailySchedule(new DateTime(2026, 1, 1), new DateTime(2026, 1, 10), hour: 12);
        input.Add(C("2027-06-01T00:00:00Z", "clock-skewed"));
        var policy = new RetentionPolicy { KeepWithin = RetentionDuration.Parse("3d") };

        var pure = RetentionPlanner.Plan(input, policy);
        Assert.Equal(["clock-skewed"], KeptIds(pure));

        var withNow = RetentionPlanner.Plan(input, policy, now: T("2026-01-10T13:00:00Z"));
        Assert.Equal(["clock-skewed", "b-20260110T1200", "b-20260109T1200", "b-20260108T1200"], KeptIds(withNow));
    }

    [Fact]
    public void TagRulesNeedAllTagsOfOneList()
    {
        var input = new[]
        {
            C("2026-01-04T00:00:00Z", "d") with { Tags = ["prod", "verified"] },
            C("2026-01-03T00:00:00Z", "c") with { Tags = ["prod"] },
            C("2026-01-02T00:00:00Z", "b") with { Tags = ["verified"] },
            C("2026-01-01T00:00:00Z", "a"),
        };
        var plan = RetentionPlanner.Plan(input, new RetentionPolicy { KeepTags = ["prod,verified"] });
        Assert.Equal(["d"], KeptIds(plan));
        Assert.Equal(["has tags [prod, verified]"], plan[0].Reasons);

        plan = RetentionPlanner.Plan(input, new RetentionPolicy { KeepTags = ["prod", "verified"] });
        Assert.Equal(["d", "c", "b"], KeptIds(plan));
        Assert.Equal(["has tags [prod]", "has tags [verified]"], plan[0].Reasons);
    }

    // ---------------------------------------------------------------- performance

    [Fact]
    public void PlanningTenThousandCandidatesIsFast()
    {
        var start = T("2024-01-01T00:00:00Z");
        var input = Enumerable.Range(0, 10_000)
            .Select(i => new RetentionCandidate($"bk-{i:D5}", start.AddMinutes(i * 127L)))
            .OrderBy(c => c.Id.GetHashCode(StringComparison.Ordinal)) // unsorted input
            .ToList();
        var policy = new RetentionPolicy
        {
            KeepLast = 10, KeepHourly = 48, KeepDaily = 30, KeepWeekly = 12, KeepMonthly = 24, KeepYearly = -1,
            KeepWithin = RetentionDuration.Parse("2d"), KeepWithinHourly = RetentionDuration.Parse("3d"),
            KeepWithinDaily = RetentionDuration.Parse("14d"), KeepWithinWeekly = RetentionDuration.Parse("12w"),
            KeepWithinMonthly = RetentionDuration.Parse("12m"), KeepWithinYearly = RetentionDuration.Parse("5y"),
            KeepTags = ["never-present"],
            TimeZone = TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin"),
        };

        RetentionPlanner.Plan(input.Take(100), policy); // warm-up (JIT)
        var sw = Stopwatch.StartNew();
        var plan = RetentionPlanner.Plan(input, policy);
        sw.Stop();

        _output.WriteLine($"Planned {plan.Count} candidates in {sw.Elapsed.TotalMilliseconds:F1} ms; kept {plan.Count(d => d.Keep)}.");
        Assert.Equal(10_000, plan.Count);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"Planning 10,000 candidates took {sw.Elapsed}; expected well under a second.");
    }
}
