using System.Globalization;
using System.Text;
using HubDr.Engine.LogArchive;

namespace HubDr.Engine.Databases.Postgres.Pitr;

/// <summary>One line of a timeline history file: <see cref="Timeline"/> ended at <see cref="SwitchLsn"/>.</summary>
public sealed record TimelineSwitch(uint Timeline, ulong SwitchLsn, string Reason);

/// <summary>
/// A PostgreSQL timeline history file ("00000003.history"): the ancestors of a timeline and where each one ended
/// ("1\t0/3000158\tno recovery target specified"). Timeline 1 has none.
/// </summary>
public sealed class TimelineHistory
{
    public TimelineHistory(uint timeline, IReadOnlyList<TimelineSwitch> ancestors)
    {
        Timeline = timeline;
        Ancestors = ancestors;
    }

    public uint Timeline { get; }

    /// <summary>Oldest first; the last one is the parent of <see cref="Timeline"/>.</summary>
    public IReadOnlyList<TimelineSwitch> Ancestors { get; }

    public static TimelineHistory Root { get; } = new(1, []);

    public static TimelineHistory Parse(uint timeline, string content)
    {
        var list = new List<TimelineSwitch>();
        foreach (var raw in content.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var parts = line.Split('\t', 3);
            if (parts.Length < 2 || !uint.TryParse(parts[0].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var tli) || !Wal.TryParseLsn(parts[1].Trim(), out var lsn))
            {
                throw new HubDrException("TimelineHistoryInvalid", HubErrorCategory.InvalidData,
                    $"Timeline history file {Wal.HistoryFileName(timeline)} has an unreadable line: '{line}'.");
            }

            list.Add(new TimelineSwitch(tli, lsn, parts.Length > 2 ? parts[2].Trim() : ""));
        }

        return new TimelineHistory(timeline, list);
    }

    public static TimelineHistory Parse(uint timeline, byte[] content) => Parse(timeline, Encoding.UTF8.GetString(content));

    /// <summary>From an index entry's branches (no decryption needed).</summary>
    public static TimelineHistory FromBranches(uint timeline, IEnumerable<LogBranch> branches) =>
        new(timeline, branches.Select(b => new TimelineSwitch(
            Wal.TryParseTimeline(b.Line, out var t) ? t : throw new HubDrException("TimelineHistoryInvalid", HubErrorCategory.InvalidData, $"Index branch line '{b.Line}' is not a timeline."),
            Wal.ParseLsn(b.End), b.Reason ?? "")).ToList());

    public List<LogBranch> ToBranches() => Ancestors.Select(a => new LogBranch { Line = Wal.TimelineName(a.Timeline), End = Wal.FormatLsn(a.SwitchLsn), Reason = a.Reason }).ToList();

    /// <summary>
    /// The timelines to replay to reach <see cref="Timeline"/> from <paramref name="fromLsn"/> on timeline
    /// <paramref name="fromTimeline"/>: (timeline, from, to) with to = null for the last one. Throws when
    /// <paramref name="fromTimeline"/> is not an ancestor (or the timeline itself).
    /// </summary>
    public List<(uint Timeline, ulong From, ulong? To)> PathFrom(uint fromTimeline, ulong fromLsn)
    {
        var result = new List<(uint, ulong, ulong?)>();
        var chain = Ancestors.Select(a => (a.Timeline, (ulong?)a.SwitchLsn)).Append((Timeline, null)).ToList();
        var start = chain.FindIndex(c => c.Item1 == fromTimeline);
        if (start < 0)
        {
            throw new HubDrException("PitrTimelineNotReachable", HubErrorCategory.InvalidArgument,
                $"Timeline {fromTimeline} is not an ancestor of timeline {Timeline} (history: {string.Join(" → ", chain.Select(c => c.Item1))}); " +
                "a base backup of that timeline cannot reach it.");
        }

        var from = fromLsn;
        for (var i = start; i < chain.Count; i++)
        {
            var (tli, end) = chain[i];
            if (end is { } e && e <= from)
            {
                // The base backup starts after this timeline ended: it belongs to a later one.
                continue;
            }

            result.Add((tli, from, end));
            if (end is { } e2)
            {
                from = e2;
            }
        }

        return result;
    }
}
