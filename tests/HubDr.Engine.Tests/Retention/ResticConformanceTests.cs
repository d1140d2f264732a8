using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using HubDr.Engine.Retention;
using Xunit;

namespace HubDr.Engine.Tests.Retention;

/// <summary>
/// restic's own ApplyPolicy golden vectors (internal/data/testdata/policy_keep_snapshots_N), exported to
/// shared/conformance/restic-forget. Every vector must match: same kept snapshots in the same order, and for
/// each kept snapshot the same rules in the same order (our reasons carry the period, which is checked too).
/// </summary>
public sealed class ResticConformanceTests
{
    public const int VectorCount = 40;

    public static IEnumerable<object[]> VectorIndices() => Enumerable.Range(0, VectorCount).Select(i => new object[] { i });

    [Fact]
    public void ConformanceFolderHasAllFortyVectors()
    {
        var dir = ConformanceData.Locate();
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "policies.json")));
        Assert.Equal(VectorCount, doc.RootElement.GetArrayLength());
        Assert.Equal(103, ConformanceData.LoadInput(dir).Count);
    }

    [Theory]
    [MemberData(nameof(VectorIndices))]
    public void MatchesResticGoldenVector(int index)
    {
        var dir = ConformanceData.Locate();
        var input = ConformanceData.LoadInput(dir);
        var (policy, golden, literal) = ConformanceData.LoadVector(dir, index);

        var plan = RetentionPlanner.Plan(input.Select(i => i.Candidate), policy);

        Assert.Equal(input.Count, plan.Count);
        var byId = input.ToDictionary(i => i.Candidate.Id);
        var kept = plan.Where(d => d.Keep).ToList();
        var ctx = $"vector {index} {literal}";

        Assert.True(golden.Count == kept.Count,
            $"{ctx}: restic keeps {golden.Count} snapshots, we keep {kept.Count}.");

        for (var k = 0; k < kept.Count; k++)
        {
            var ours = byId[kept[k].Candidate.Id];
            var want = golden[k];
            Assert.True(want.Time == ours.Candidate.Time,
                $"{ctx}: kept #{k}: restic keeps {want.Time:O}, we keep {ours.Candidate.Time:O}");
            Assert.Equal(want.Paths, ours.Paths);
            if (want.Tags is not null)
            {
                Assert.Equal(want.Tags, ours.Candidate.Tags);
            }

            var normalised = kept[k].Reasons.Select(r => NormaliseReason(r, ours.Candidate.Time, policy)).ToList();
            Assert.True(want.Matches.SequenceEqual(normalised),
                $"{ctx}: kept #{k} ({want.Time:O}): restic reasons [{string.Join("; ", want.Matches)}], " +
                $"ours [{string.Join("; ", kept[k].Reasons)}] -> [{string.Join("; ", normalised)}]");
        }

        // Removed decisions carry no reasons; every candidate gets exactly one decision.
        Assert.All(plan.Where(d => !d.Keep), d => Assert.Empty(d.Reasons));
        Assert.Equal(input.Count, plan.Select(d => d.Candidate.Id).Distinct().Count());
    }

    private static readonly Regex Counted = new(@"^(oldest )?(hourly|daily|weekly|monthly|yearly) (\S+)$");
    private static readonly Regex WithinPeriod = new(@"^(oldest )?within-(hourly|daily|weekly|monthly|yearly) (\S+)$");

    /// <summary>Maps one of our reasons to restic's wording, asserting that the period in it is the snapshot's period.</summary>
    private static string NormaliseReason(string reason, DateTimeOffset time, RetentionPolicy policy)
    {
        var m = Counted.Match(reason);
        if (m.Success)
        {
            Assert.Equal(RetentionPlanner.PeriodLabel(m.Groups[2].Value, time), m.Groups[3].Value);
            return $"{m.Groups[1].Value}{m.Groups[2].Value} snapshot";
        }

        m = WithinPeriod.Match(reason);
        if (m.Success)
        {
            Assert.Equal(RetentionPlanner.PeriodLabel(m.Groups[2].Value, time), m.Groups[3].Value);
            var d = m.Groups[2].Value switch
            {
                "hourly" => policy.KeepWithinHourly,
                "daily" => policy.KeepWithinDaily,
                "weekly" => policy.KeepWithinWeekly,
                "monthly" => policy.KeepWithinMonthly,
                _ => policy.KeepWithinYearly,
            };
            return $"{m.Groups[1].Value}{m.Groups[2].Value} within {d}";
        }

        return reason; // "last snapshot", "within 2d", "has tags [foo, bar]" use restic's wording already
    }
}

internal sealed record InputSnapshot(RetentionCandidate Candidate, IReadOnlyList<string>? Paths);

internal sealed record GoldenKeep(DateTimeOffset Time, IReadOnlyList<string>? Paths, IReadOnlyList<string>? Tags, IReadOnlyList<string> Matches);

internal static class ConformanceData
{
    private const string Relative = "shared/conformance/restic-forget";

    /// <summary>
    /// Finds the restic-forget vectors: $HUBDR_CONFORMANCE_DIR (the folder itself or its parent), else walking up from
    /// the test assembly looking for shared/conformance/restic-forget (covers /work/shared beside the worktree and a CI
    /// clone with shared/ beside it). Missing data is a test failure, never a skip.
    /// </summary>
    public static string Locate()
    {
        var env = Environment.GetEnvironmentVariable("HUBDR_CONFORMANCE_DIR");
        if (!string.IsNullOrWhiteSpace(env))
        {
            foreach (var candidate in new[] { env, Path.Combine(env, "restic-forget"), Path.Combine(env, Relative) })
            {
                if (File.Exists(Path.Combine(candidate, "policies.json")))
                {
                    return Path.GetFullPath(candidate);
                }
            }

            Assert.Fail($"HUBDR_CONFORMANCE_DIR is '{env}' but neither it nor its restic-forget subfolder contains policies.json.");
        }

        var searched = new List<string>();
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            foreach (var candidate in new[] { Path.Combine(dir.FullName, Relative), Path.Combine(dir.FullName, "..", Relative) })
            {
                searched.Add(candidate);
                if (File.Exists(Path.Combine(candidate, "policies.json")))
                {
                    return Path.GetFullPath(candidate);
                }
            }
        }

        Assert.Fail("The restic conformance vectors (shared/conformance/restic-forget) were not found. Set HUBDR_CONFORMANCE_DIR " +
                    "or put shared/ beside the repository clone. Searched: " + string.Join(", ", searched.Distinct()));
        throw new InvalidOperationException("unreachable");
    }

    public static IReadOnlyList<InputSnapshot> LoadInput(string dir)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "input_snapshots.json")));
        var result = new List<InputSnapshot>();
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            var idx = e.GetProperty("input_index").GetInt32();
            var time = DateTimeOffset.Parse(e.GetProperty("time").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);
            // Ids in input order, so the ordinal tie-break reproduces restic's stable sort.
            var c = new RetentionCandidate($"s{idx:D3}", time) { Tags = Strings(e, "tags") ?? [] };
            result.Add(new InputSnapshot(c, Strings(e, "paths")));
        }

        return result;
    }

    public static (RetentionPolicy Policy, IReadOnlyList<GoldenKeep> Golden, string Literal) LoadVector(string dir, int index)
    {
        using var pdoc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "policies.json")));
        var p = pdoc.RootElement.EnumerateArray().Single(x => x.GetProperty("index").GetInt32() == index);
        int? Int(string name) => p.TryGetProperty(name, out var v) ? v.GetInt32() : null;
        RetentionDuration? Dur(string name) => p.TryGetProperty(name, out var v) ? RetentionDuration.Parse(v.GetString()!) : null;
        var known = new HashSet<string>
        {
            "index", "golden_file", "go_literal", "Last", "Hourly", "Daily", "Weekly", "Monthly", "Yearly", "Within",
            "WithinHourly", "WithinDaily", "WithinWeekly", "WithinMonthly", "WithinYearly", "Tags",
        };
        foreach (var prop in p.EnumerateObject())
        {
            Assert.True(known.Contains(prop.Name), $"policies.json vector {index} has an unknown field '{prop.Name}'.");
        }

        var policy = new RetentionPolicy
        {
            KeepLast = Int("Last"),
            KeepHourly = Int("Hourly"),
            KeepDaily = Int("Daily"),
            KeepWeekly = Int("Weekly"),
            KeepMonthly = Int("Monthly"),
            KeepYearly = Int("Yearly"),
            KeepWithin = Dur("Within"),
            KeepWithinHourly = Dur("WithinHourly"),
            KeepWithinDaily = Dur("WithinDaily"),
            KeepWithinWeekly = Dur("WithinWeekly"),
            KeepWithinMonthly = Dur("WithinMonthly"),
            KeepWithinYearly = Dur("WithinYearly"),
            KeepTags = p.TryGetProperty("Tags", out var tags)
                ? tags.EnumerateArray().Select(l => string.Join(",", l.EnumerateArray().Select(t => t.GetString()))).ToArray()
                : [],
        };

        using var gdoc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, p.GetProperty("golden_file").GetString()!)));
        var golden = new List<GoldenKeep>();
        var keep = gdoc.RootElement.GetProperty("keep");
        if (keep.ValueKind == JsonValueKind.Array)
        {
            var reasons = gdoc.RootElement.GetProperty("reasons").EnumerateArray().ToArray();
            var keeps = keep.EnumerateArray().ToArray();
            Assert.Equal(keeps.Length, reasons.Length);
            for (var i = 0; i < keeps.Length; i++)
            {
                var time = DateTimeOffset.Parse(keeps[i].GetProperty("time").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);
                golden.Add(new GoldenKeep(time, Strings(keeps[i], "paths"), Strings(keeps[i], "tags"),
                    reasons[i].GetProperty("matches").EnumerateArray().Select(m => m.GetString()!).ToArray()));
            }
        }

        return (policy, golden, p.GetProperty("go_literal").GetString()!);
    }

    private static IReadOnlyList<string>? Strings(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array
            ? v.EnumerateArray().Select(x => x.GetString()!).ToArray()
            : null;
}
