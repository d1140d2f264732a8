using HubDr.Engine.Crypto;
using HubDr.Engine.Stores;

namespace HubDr.Engine.LogArchive;

/// <summary>Positions [From, To) of one line that must be archived; To null = up to the newest archived position.</summary>
public sealed record LogRange(string Line, ulong From, ulong? To);

/// <summary>Positions [From, To) of a line that no archived object covers; <see cref="MissingNames"/> names the segments.</summary>
public sealed record LogGap(string Line, ulong From, ulong To, string FromText, string ToText, IReadOnlyList<string> MissingNames)
{
    public override string ToString() => $"line {Line}: {FromText} .. {ToText} ({string.Join(", ", MissingNames)})";
}

/// <summary>The `pgbackrest check`/`verify` equivalent for one log stream: is every needed position archived, indexed and signed?</summary>
public sealed class LogContinuityReport
{
    public required string Hub { get; init; }
    public required string Stream { get; init; }
    public required IReadOnlyList<LogRange> Ranges { get; init; }
    public required IReadOnlyList<LogGap> Gaps { get; init; }
    public required IReadOnlyList<LogArchiveProblem> Problems { get; init; }

    /// <summary>The objects that cover the ranges, in replay order (what a restore would fetch).</summary>
    public required IReadOnlyList<LogIndexItem> Objects { get; init; }

    /// <summary>True when every object's detached signature was verified too (deep mode).</summary>
    public bool Deep { get; init; }

    public int SignaturesVerified { get; init; }

    /// <summary>Newest position covered (formatted) and when the newest covering object was archived.</summary>
    public string? NewestPosition { get; init; }

    public DateTimeOffset? NewestArchivedUtc { get; init; }

    public long StoredBytes => Objects.Sum(o => o.Entry.Size);

    /// <summary>No gap, and no problem with an object the ranges need.</summary>
    public bool IsContinuous => Gaps.Count == 0 && !Problems.Any(p => p.Kind is "ObjectMissing" or "ObjectSizeMismatch" or "SignatureInvalid");
}

public static class LogContinuity
{
    /// <summary>
    /// Lists the stream folder once (object keys and sizes), so a check reads the index plus one listing, not every object.
    /// </summary>
    public static async Task<Dictionary<string, StoreObject>> ListObjectsAsync(IBackupStore store, string hub, ILogStreamLayout layout, CancellationToken ct)
    {
        var folder = LogArchivePaths.StreamFolder(hub, layout);
        var result = new Dictionary<string, StoreObject>(StringComparer.Ordinal);
        await foreach (var o in store.ListAsync(folder, ct).ConfigureAwait(false))
        {
            result[o.Key[folder.Length..]] = o;
        }

        return result;
    }

    /// <summary>
    /// Checks that <paramref name="ranges"/> are covered without gaps by indexed objects that exist in the store with the
    /// size the index states. <paramref name="listing"/>: relative key → object (from <see cref="ListObjectsAsync"/>).
    /// </summary>
    public static LogContinuityReport Check(LogIndexSnapshot snapshot, IReadOnlyDictionary<string, StoreObject> listing, IReadOnlyList<LogRange> ranges)
    {
        var layout = snapshot.Layout;
        var problems = new List<LogArchiveProblem>(snapshot.Problems);
        var gaps = new List<LogGap>();
        var objects = new List<LogIndexItem>();
        string? newest = null;
        DateTimeOffset? newestAt = null;

        foreach (var r in ranges)
        {
            var cursor = r.From;
            foreach (var item in snapshot.DataItems(r.Line))
            {
                if (r.To is { } to && cursor >= to)
                {
                    break;
                }

                if (item.Ref.End <= cursor)
                {
                    continue;
                }

                if (!listing.TryGetValue(item.Entry.Object, out var stored))
                {
                    problems.Add(new LogArchiveProblem("ObjectMissing", item.Entry.Object, $"the index lists {item.Ref} but the store has no such object"));
                    continue;
                }

                if (stored.Size != item.Entry.Size)
                {
                    problems.Add(new LogArchiveProblem("ObjectSizeMismatch", item.Entry.Object,
                        $"the store holds {stored.Size} bytes, the index says {item.Entry.Size}; its own signature decides (deep check)"));
                }

                if (!listing.ContainsKey(item.Entry.Object + LogArchivePaths.SignatureSuffix))
                {
                    problems.Add(new LogArchiveProblem("SignatureInvalid", item.Entry.Object, "its detached signature object is missing"));
                }

                if (item.Ref.Start > cursor)
                {
                    gaps.Add(Gap(layout, r.Line, cursor, item.Ref.Start));
                }

                objects.Add(item);
                cursor = Math.Max(cursor, item.Ref.End);
                newest = layout.FormatPosition(cursor);
                if (newestAt is null || item.Entry.ArchivedUtc > newestAt)
                {
                    newestAt = item.Entry.ArchivedUtc;
                }
            }

            if (r.To is { } end && cursor < end)
            {
                gaps.Add(Gap(layout, r.Line, cursor, end));
            }
        }

        // Objects in the store that no index entry covers are not counted (a crash between upload and index).
        var indexed = snapshot.ByObject.Keys.ToHashSet(StringComparer.Ordinal);
        foreach (var key in listing.Keys)
        {
            if (!key.EndsWith(LogArchivePaths.SignatureSuffix, StringComparison.Ordinal)
                && !key.StartsWith(LogArchivePaths.IndexFolderName + "/", StringComparison.Ordinal)
                && !indexed.Contains(key)
                && layout.TryParseObjectKey(snapshot.Hub, LogArchivePaths.StreamFolder(snapshot.Hub, layout) + key, out _))
            {
                problems.Add(new LogArchiveProblem("ObjectNotIndexed", key, "stored but not in the index: never acknowledged, not counted"));
            }
        }

        return new LogContinuityReport
        {
            Hub = snapshot.Hub,
            Stream = layout.StreamKind,
            Ranges = ranges,
            Gaps = gaps,
            Problems = problems,
            Objects = objects,
            NewestPosition = newest,
            NewestArchivedUtc = newestAt,
        };
    }

    /// <summary>Deep mode: downloads every object of <paramref name="report"/> and verifies its detached signature
    /// against <paramref name="trusted"/> (no decryption key needed). Failures become problems of the returned report.</summary>
    public static async Task<LogContinuityReport> VerifySignaturesAsync(LogContinuityReport report, IBackupStore store, ILogStreamLayout layout, OpenPgpKeySet trusted,
        CancellationToken ct, int concurrency = 4)
    {
        var problems = new System.Collections.Concurrent.ConcurrentBag<LogArchiveProblem>();
        var verified = 0;
        using var gate = new SemaphoreSlim(concurrency);
        await Task.WhenAll(report.Objects.Select(async item =>
        {
            await gate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                var (cipher, check) = await LogFetcher.DownloadVerifiedAsync(store, report.Hub, layout, item.Entry, trusted, ct).ConfigureAwait(false);
                if (cipher.LongLength != item.Entry.Size || !string.Equals(check.DataSha256, item.Entry.Sha256, StringComparison.OrdinalIgnoreCase))
                {
                    problems.Add(new LogArchiveProblem("IndexMismatch", item.Entry.Object,
                        "validly signed, but not the object the index describes (size or SHA-256 differ)"));
                }

                Interlocked.Increment(ref verified);
            }
            catch (HubDrException e) when (e.ErrorId is "LogObjectSignatureInvalid" or "LogObjectInvalid" or "StoreObjectNotFound")
            {
                problems.Add(new LogArchiveProblem("SignatureInvalid", item.Entry.Object, e.Message));
            }
            finally
            {
                gate.Release();
            }
        })).ConfigureAwait(false);

        return new LogContinuityReport
        {
            Hub = report.Hub,
            Stream = report.Stream,
            Ranges = report.Ranges,
            Gaps = report.Gaps,
            Problems = report.Problems.Concat(problems.OrderBy(p => p.Subject, StringComparer.Ordinal)).ToList(),
            Objects = report.Objects,
            NewestPosition = report.NewestPosition,
            NewestArchivedUtc = report.NewestArchivedUtc,
            Deep = true,
            SignaturesVerified = verified,
        };
    }

    private static LogGap Gap(ILogStreamLayout layout, string line, ulong from, ulong to)
    {
        var names = new List<string>();
        var p = from;
        while (p < to && names.Count < 20)
        {
            var seg = layout.SegmentAt(line, p);
            if (seg is null)
            {
                break;
            }

            names.Add(seg.Name);
            p = seg.End;
        }

        if (p < to && names.Count == 20)
        {
            names.Add("…");
        }

        return new LogGap(line, from, to, layout.FormatPosition(from), layout.FormatPosition(to), names);
    }
}
