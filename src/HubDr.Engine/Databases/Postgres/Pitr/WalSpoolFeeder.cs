using System.Text;
using HubDr.Engine.LogArchive;

namespace HubDr.Engine.Databases.Postgres.Pitr;

/// <summary>
/// Feeds PostgreSQL's restore_command during a point-in-time restore through a spool folder inside the data directory:
/// the recovery script (<see cref="Script"/>) announces the file PostgreSQL wants ("want.&lt;name&gt;") and waits; the
/// feeder fetches it (verified against trusted signers, decrypted, partials padded) and keeps a few of the following
/// segments ready, 2–4 fetches at a time. A name the archive does not hold gets "&lt;name&gt;.missing" (PostgreSQL's end of
/// WAL); a file that fails verification gets "&lt;name&gt;.failed", which makes the script exit 126 so PostgreSQL aborts
/// recovery instead of ending it early. ".done" ends the protocol.
/// </summary>
internal sealed class WalSpoolFeeder
{
    public const string SpoolFolderName = "hubdr_wal_spool";
    public const string ScriptName = "hubdr_restore_command.sh";

    private readonly LogFetcher _fetcher;
    private readonly string _spool;
    private readonly List<LogIndexItem> _plan;
    private readonly Dictionary<string, int> _planIndex = new(StringComparer.Ordinal);
    private readonly Dictionary<string, LogIndexItem> _history;
    private readonly int _concurrency;
    private readonly int _prefetch;
    private readonly Action<string>? _chown;
    private readonly IOperationLog _log;
    private readonly Dictionary<string, Task<LogFetchResult>> _inflight = new(StringComparer.Ordinal);
    private readonly HashSet<string> _delivered = new(StringComparer.Ordinal);
    private int _highest = -1;

    public WalSpoolFeeder(LogFetcher fetcher, string spool, IReadOnlyList<LogIndexItem> plan, IEnumerable<LogIndexItem> history, int concurrency, int prefetch,
        Action<string>? chown, IOperationLog log)
    {
        _fetcher = fetcher;
        _spool = spool;
        _plan = plan.ToList();
        for (var i = 0; i < _plan.Count; i++)
        {
            _planIndex[_plan[i].Entry.Name] = i;
        }

        _history = history.ToDictionary(h => h.Entry.Name, StringComparer.Ordinal);
        _concurrency = Math.Clamp(concurrency, 1, 8);
        _prefetch = Math.Max(1, prefetch);
        _chown = chown;
        _log = log;
    }

    public int FilesFetched { get; private set; }
    public long BytesFetched { get; private set; }
    public List<string> IndexMismatches { get; } = [];

    /// <summary>The first fetch failure (a refused or unreadable object); PostgreSQL stops if it asks for that file.</summary>
    public Exception? Failure { get; private set; }

    public string? FailedName { get; private set; }

    /// <summary>Every name whose fetch failed.</summary>
    public List<string> FailedNames { get; } = [];

    /// <summary>True when <paramref name="name"/> was fetched into the spool at least once.</summary>
    public bool Delivered(string name) => _delivered.Contains(name);

    /// <summary>Names PostgreSQL asked for that the archive does not hold (its end of WAL, history probes).</summary>
    public List<string> Missing { get; } = [];

    public static string Script(string spool) =>
        $$"""
        #!/bin/sh
        # HubDr restore_command, written by a HubDr point-in-time restore. PostgreSQL runs it (in the data directory) as
        #   restore_command = '/bin/sh "<data directory>/{{ScriptName}}" "%f" "%p"'
        # It waits until HubDr has fetched the requested file from the archive, verified its signature against the trusted
        # signer keys and decrypted it into the spool folder, then moves it to %p.
        # Exit 0: delivered. 1: not in the archive (PostgreSQL's end of WAL). 126: HubDr refused the file or stopped, so
        # PostgreSQL aborts recovery instead of ending it early.
        spool='{{spool.Replace("'", "'\\''", StringComparison.Ordinal)}}'
        f="$1"
        p="$2"
        case "$f" in ''|*/*|.*) exit 1 ;; esac
        : > "$spool/want.$f" || exit 126
        n=0
        while :; do
          if [ -f "$spool/$f" ]; then
            rm -f "$spool/want.$f"
            mv -f "$spool/$f" "$p" && exit 0
            exit 126
          fi
          if [ -f "$spool/$f.failed" ] || [ -f "$spool/.abort" ]; then
            rm -f "$spool/want.$f"
            echo "hubdr: $f was refused or HubDr stopped (see the HubDr restore output); recovery stops" >&2
            exit 126
          fi
          if [ -f "$spool/$f.missing" ] || [ -f "$spool/.done" ]; then
            rm -f "$spool/want.$f"
            exit 1
          fi
          n=$((n + 1))
          if [ "$n" -gt 36000 ]; then
            echo "hubdr: gave up waiting for $f after an hour" >&2
            exit 126
          fi
          sleep 0.1
        done

        """;

    /// <summary>Serves requests and keeps the next segments fetched until <paramref name="ct"/> is cancelled.</summary>
    public async Task ServeAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Reap();
            // A refused file is marked ".failed" (the script stops recovery if PostgreSQL asks for it); the others are
            // still served: a bad object past the recovery target must not block a restore that never needs it.
            foreach (var want in Directory.EnumerateFiles(_spool, "want.*").Select(p => Path.GetFileName(p)["want.".Length..]).ToList())
            {
                Answer(want, ct);
            }

            Prefetch(ct);

            try
            {
                await Task.Delay(50, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        await DrainAsync().ConfigureAwait(false);
    }

    /// <summary>Fetches every planned file into the spool (prepare-only restores: no HubDr process serves later).</summary>
    public async Task FetchAllAsync(CancellationToken ct)
    {
        for (var i = 0; i < _plan.Count; i++)
        {
            while (_inflight.Count >= _concurrency)
            {
                await Task.WhenAny(_inflight.Values).ConfigureAwait(false);
                Reap();
                if (Failure is not null)
                {
                    await DrainAsync().ConfigureAwait(false);
                    throw Failure;
                }
            }

            Start(_plan[i], ct);
        }

        foreach (var h in _history.Values)
        {
            Start(h, ct);
        }

        await DrainAsync().ConfigureAwait(false);
        if (Failure is not null)
        {
            throw Failure;
        }
    }

    /// <summary>Ends the protocol: ".done" (PostgreSQL's end of WAL), or ".abort" so a waiting recovery stops.</summary>
    public void Finish(bool abort)
    {
        var marker = Path.Combine(_spool, abort ? ".abort" : ".done");
        File.WriteAllBytes(marker, []);
        _chown?.Invoke(marker);
    }

    private void Answer(string name, CancellationToken ct)
    {
        if (File.Exists(Path.Combine(_spool, name)) || _inflight.ContainsKey(name) || File.Exists(Path.Combine(_spool, name + ".missing"))
            || File.Exists(Path.Combine(_spool, name + ".failed")))
        {
            return;
        }

        if (_planIndex.TryGetValue(name, out var idx))
        {
            _highest = Math.Max(_highest, idx);
            Start(_plan[idx], ct);
        }
        else if (_history.TryGetValue(name, out var h))
        {
            Start(h, ct);
        }
        else
        {
            Missing.Add(name);
            var marker = Path.Combine(_spool, name + ".missing");
            File.WriteAllBytes(marker, []);
            _chown?.Invoke(marker);
            _log.Verbose($"PostgreSQL asked for {name}: not in the archive (end of WAL or a timeline probe).");
        }
    }

    private void Prefetch(CancellationToken ct)
    {
        var from = _highest + 1;
        for (var i = from; i < Math.Min(_plan.Count, from + _prefetch) && _inflight.Count < _concurrency; i++)
        {
            var name = _plan[i].Entry.Name;
            if (!_delivered.Contains(name) && !_inflight.ContainsKey(name) && !File.Exists(Path.Combine(_spool, name + ".failed")))
            {
                Start(_plan[i], ct);
            }
        }
    }

    private void Start(LogIndexItem item, CancellationToken ct)
    {
        var name = item.Entry.Name;
        if (_inflight.ContainsKey(name))
        {
            return;
        }

        _inflight[name] = Task.Run(() => _fetcher.FetchAsync(item, Path.Combine(_spool, name), _chown, ct), ct);
    }

    private void Reap()
    {
        foreach (var (name, task) in _inflight.Where(kv => kv.Value.IsCompleted).ToList())
        {
            _inflight.Remove(name);
            if (task.IsCompletedSuccessfully)
            {
                var r = task.Result;
                _delivered.Add(name);
                FilesFetched++;
                BytesFetched += r.StoredBytes;
                if (r.IndexMismatch is not null)
                {
                    IndexMismatches.Add($"{name}: {r.IndexMismatch}");
                    _log.Warning($"{name}: {r.IndexMismatch}; its own valid signature decided it is genuine.");
                }

                _log.Verbose($"Fetched and verified {r.Ref} (signed by {r.SignerFingerprint}).");
                continue;
            }

            if (task.IsCanceled)
            {
                continue;
            }

            var e = task.Exception!.GetBaseException();
            FailedNames.Add(name);
            if (Failure is null)
            {
                Failure = e;
                FailedName = name;
            }

            var marker = Path.Combine(_spool, name + ".failed");
            File.WriteAllText(marker, e.Message, Encoding.UTF8);
            _chown?.Invoke(marker);
            _log.Warning($"Fetching {name} failed; PostgreSQL's recovery is told to stop: {e.Message}");
        }
    }

    private async Task DrainAsync()
    {
        try
        {
            await Task.WhenAll(_inflight.Values).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // recorded by Reap
        }

        Reap();
    }
}
