using System.Threading.Channels;
using HubDr.Engine.Backup;
using HubDr.Engine.LogArchive;
using HubDr.Engine.Stores;
using Npgsql;
using Npgsql.Replication;
using NpgsqlTypes;

namespace HubDr.Engine.Databases.Postgres.Pitr;

public sealed class WalArchiverOptions
{
    public required string Hub { get; init; }
    public required StoreSpec Store { get; init; }

    /// <summary>The source server; the user needs the REPLICATION attribute and a 'replication' line in pg_hba.conf.</summary>
    public required DatabaseSpec Database { get; init; }

    public required LogArchiveKeys Keys { get; init; }

    /// <summary>Permanent physical slot; default hubdr_&lt;hub&gt;.</summary>
    public string? SlotName { get; init; }

    /// <summary>How often the bytes of the unfinished segment are uploaded as a partial object when new WAL arrived.</summary>
    public TimeSpan PartialInterval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Retry backoff after a store or database failure: doubles from the first value up to the cap.</summary>
    public TimeSpan RetryInitialDelay { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan RetryMaxDelay { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Index batches written before the archiver merges them (one batch per UTC day and timeline).</summary>
    public int CompactAfterBatches { get; init; } = 96;

    /// <summary>How long a stop waits for queued objects to reach the store.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(60);

    public StoreWriteOptions WriteOptions { get; init; } = StoreWriteOptions.Default;

    public ILogArchiveMonitor? Monitor { get; init; }

    /// <summary>Keys (besides the archiver's own) whose index batches it accepts on start (e.g. a previous signing key).</summary>
    public Crypto.OpenPgpKeySet? AlsoTrusted { get; init; }
}

/// <summary>
/// The continuous WAL archiver: one physical replication connection (Npgsql PhysicalReplicationConnection) on a permanent
/// slot per hub. The current segment is buffered in memory (two segment buffers: one filling, one uploading); a complete
/// segment becomes one object OpenPGP(zstd(segment)) + detached signature + index entry, and every
/// <see cref="WalArchiverOptions.PartialInterval"/> the bytes of the unfinished segment are uploaded as a partial object.
/// The flush position sent to the server (which moves the slot) is never ahead of what is durably stored, signed and
/// indexed. A store failure is retried with exponential backoff while the archiver stops reading (the slot keeps the WAL
/// in pg_wal); a database failure uploads what was received, then reconnects and resumes from the segment start.
/// See docs/pitr.md.
/// </summary>
public sealed class WalArchiver
{
    private readonly WalArchiverOptions _o;
    private readonly IOperationLog _log;
    private readonly PitrConnection _conn;
    private readonly string _hub;
    private readonly string _slot;
    private readonly object _gate = new();
    private readonly Channel<Job> _jobs = Channel.CreateUnbounded<Job>(new UnboundedChannelOptions { SingleReader = true });
    private readonly List<(ulong End, DateTimeOffset At)> _received = [];
    private Channel<SegmentBuffer>? _pool;
    private IBackupStore? _store;
    private LogArchiveWriter? _writer;
    private WalStreamLayout? _layout;
    private string? _systemId;
    private PhysicalReplicationConnection? _repl;
    private SegmentBuffer? _current;
    private ulong _queuedEnd;
    private bool _partialPending;
    private ulong _ack;
    private uint _ackTimeline;
    private string? _lastObject;
    private DateTimeOffset? _lastArchivedUtc;
    private long _objects;
    private long _bytes;
    private long _failures;
    private int _consecutiveFailures;
    private string? _lastError;
    private bool _connected;

    public WalArchiver(WalArchiverOptions options, IOperationLog? log = null)
    {
        _o = options;
        _log = log ?? NullOperationLog.Instance;
        _hub = ObjectLayout.ValidateHub(options.Hub);
        _slot = options.SlotName ?? PitrPreflight.DefaultSlotName(_hub);
        PitrPreflight.ValidateSlotName(_slot);
        _conn = new PitrConnection(options.Database);
        if (options.PartialInterval <= TimeSpan.Zero)
        {
            throw new HubDrException("WalPartialIntervalInvalid", HubErrorCategory.InvalidArgument, "The partial upload interval must be positive (default 15 s).");
        }
    }

    public string SlotName => _slot;

    /// <summary>Everything before this LSN is archived, signed and indexed.</summary>
    public ulong ArchivedLsn
    {
        get
        {
            lock (_gate)
            {
                return _ack;
            }
        }
    }

    public LogArchiveStatus Status
    {
        get
        {
            lock (_gate)
            {
                return StatusLocked();
            }
        }
    }

    /// <summary>
    /// Archives until <paramref name="ct"/> is cancelled, then uploads what was received and waits (up to
    /// <see cref="WalArchiverOptions.DrainTimeout"/>) for the store. Throws only for failures retrying cannot fix
    /// (pre-flight, a different source in the same hub, an object conflict).
    /// </summary>
    public async Task RunAsync(CancellationToken ct)
    {
        // A database that is not up yet (boot order, restart) is waited for; a misconfigured one fails now, typed.
        var info = await RetryUntilAsync("database", () => PitrPreflight.CheckAsync(_conn, _slot, forBaseBackup: false, _log, ct), ct,
            e => e.ErrorId == "DatabaseConnectionFailed").ConfigureAwait(false);
        _log.Verbose($"Archiving WAL of PostgreSQL {info.ServerVersion} (system {info.SystemId}, wal_segment_size {info.SegmentSize}) into hub '{_hub}' through slot '{_slot}'.");
        await using var store = StoreFactory.Create(_o.Store);
        _store = store;
        await RetryUntilAsync("store", () => store.EnsureAvailableAsync(ct), ct).ConfigureAwait(false);
        _layout = new WalStreamLayout(info.SegmentSize);
        _writer = new LogArchiveWriter(store, _hub, _layout, _o.Keys, _o.WriteOptions, _log);
        var snapshot = await RetryUntilAsync("store", () => _writer.LoadAsync(_o.AlsoTrusted, ct), ct).ConfigureAwait(false);
        if (snapshot.SystemIds.Any(s => s != info.SystemId))
        {
            throw Fatal(new HubDrException("WalArchiveSystemMismatch", HubErrorCategory.InvalidData,
                $"Hub '{_hub}' already archives WAL of PostgreSQL system {string.Join(", ", snapshot.SystemIds)}, but {_conn.Host}:{_conn.Port} is system " +
                $"{info.SystemId} (a different cluster, e.g. re-created with initdb). Archive it under another hub name; mixing two clusters' WAL would make both unrestorable."));
        }

        if (snapshot.SegmentSizes.Any(s => s != info.SegmentSize))
        {
            throw Fatal(new HubDrException("WalSegmentSizeMismatch", HubErrorCategory.InvalidData,
                $"Hub '{_hub}' holds WAL with segment size {string.Join(", ", snapshot.SegmentSizes)} bytes but the server uses {info.SegmentSize}."));
        }

        _systemId = info.SystemId;
        _writer.SystemId = info.SystemId;
        _pool = Channel.CreateBounded<SegmentBuffer>(2);
        _pool.Writer.TryWrite(new SegmentBuffer(info.SegmentSize));
        _pool.Writer.TryWrite(new SegmentBuffer(info.SegmentSize));

        using var workerCts = new CancellationTokenSource();
        using var runCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var worker = Task.Run(async () =>
        {
            try
            {
                await WorkerAsync(workerCts.Token).ConfigureAwait(false);
            }
            catch
            {
                runCts.Cancel(); // a fatal store-side error stops receiving too
                throw;
            }
        }, CancellationToken.None);
        using var ticker = new CancellationTokenSource();
        var tick = Task.Run(() => TickerAsync(ticker.Token), CancellationToken.None);
        try
        {
            await ReceiveLoopAsync(runCts.Token, worker).ConfigureAwait(false);
        }
        finally
        {
            FlushPartial(force: true);
            ReleaseCurrent();
            _jobs.Writer.TryComplete();
            if (!worker.IsCompleted)
            {
                var drained = await Task.WhenAny(worker, Task.Delay(_o.DrainTimeout, CancellationToken.None)).ConfigureAwait(false);
                if (drained != worker)
                {
                    _log.Warning($"Stopping with WAL not yet archived (the store did not answer within {_o.DrainTimeout.TotalSeconds:0} s); the slot keeps it for the next start.");
                    workerCts.Cancel();
                }
            }

            try
            {
                await worker.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
            finally
            {
                ticker.Cancel();
                await tick.ConfigureAwait(false);
                Report();
            }
        }
    }

    // ------------------------------------------------------------------ receiving

    private async Task ReceiveLoopAsync(CancellationToken ct, Task worker)
    {
        (uint Tli, ulong Lsn)? resume = null;
        (uint Tli, ulong Lsn)? fallback = null;
        var attempt = 0;
        while (!ct.IsCancellationRequested)
        {
            if (worker.IsFaulted)
            {
                await worker.ConfigureAwait(false); // a fatal store-side error: rethrow it here
            }

            try
            {
                await using var repl = new PhysicalReplicationConnection(_conn.ReplicationConnectionString)
                {
                    WalReceiverStatusInterval = TimeSpan.FromSeconds(10),
                    WalReceiverTimeout = TimeSpan.FromSeconds(60),
                };
                await repl.Open(ct).ConfigureAwait(false);
                var sys = await repl.IdentifySystem(ct).ConfigureAwait(false);
                if (sys.SystemId.ToString(System.Globalization.CultureInfo.InvariantCulture) != _systemId)
                {
                    throw Fatal(new HubDrException("WalArchiveSystemMismatch", HubErrorCategory.InvalidData,
                        $"{_conn.Host}:{_conn.Port} is now PostgreSQL system {sys.SystemId}, not {_systemId}: a different cluster answers at this address. The archiver stops."));
                }

                var slot = await repl.ReadReplicationSlot(_slot, ct).ConfigureAwait(false);
                if (slot is null)
                {
                    _log.Verbose($"Creating the permanent physical replication slot '{_slot}' (reserving WAL from the last checkpoint).");
                    await repl.CreateReplicationSlot(_slot, isTemporary: false, reserveWal: true, ct).ConfigureAwait(false);
                    slot = await repl.ReadReplicationSlot(_slot, ct).ConfigureAwait(false)
                        ?? throw new HubDrException("ReplicationSlotInvalid", HubErrorCategory.InvalidOperation, $"Replication slot '{_slot}' vanished right after it was created.");
                }

                var history = await ArchiveHistoryAsync(repl, sys.Timeline, ct).ConfigureAwait(false);
                if (resume is null)
                {
                    var restart = slot.RestartLsn is { } rl ? (ulong)rl : (ulong)sys.XLogPos;
                    resume = (slot.RestartTimeline ?? sys.Timeline, Wal.SegmentStart(restart, _layout!.SegmentSize));
                    if (sys.Timeline > 1 && history.Ancestors.Count > 0 && !_writer!.Known.Any(i => i.Ref.Line == Wal.TimelineName(sys.Timeline) && i.Ref.Kind != LogObjectKind.History))
                    {
                        // A timeline this archive has no WAL of yet (a restored, promoted server): try to start at the segment
                        // holding the switch point, so a base backup of the parent timeline can reach this one.
                        var switchStart = Wal.SegmentStart(history.Ancestors[^1].SwitchLsn, _layout.SegmentSize);
                        if (resume.Value.Tli != sys.Timeline || switchStart < resume.Value.Lsn)
                        {
                            fallback = resume;
                            resume = (sys.Timeline, switchStart);
                        }
                    }

                    _log.Verbose($"Resuming at {Wal.FormatLsn(resume.Value.Lsn)} on timeline {resume.Value.Tli} (slot restart_lsn {slot.RestartLsn}).");
                }

                var (tli, start) = resume.Value;
                ulong? endOfTimeline = null;
                if (tli != sys.Timeline)
                {
                    var sw = history.Ancestors.FirstOrDefault(a => a.Timeline == tli);
                    if (sw is null)
                    {
                        _log.Warning($"Timeline {tli} is not in the history of the server's timeline {sys.Timeline}; resuming from the slot instead.");
                        resume = null;
                        continue;
                    }

                    endOfTimeline = sw.SwitchLsn;
                    if (start >= sw.SwitchLsn)
                    {
                        resume = (NextTimeline(history, tli, sys.Timeline), Wal.SegmentStart(sw.SwitchLsn, _layout!.SegmentSize));
                        continue;
                    }
                }

                var buffer = await _pool!.Reader.ReadAsync(ct).ConfigureAwait(false);
                buffer.Reset(tli, start);
                lock (_gate)
                {
                    _current = buffer;
                    _queuedEnd = start;
                    _repl = repl;
                    _connected = true;
                    if (_ack > 0)
                    {
                        repl.SetReplicationStatus(new NpgsqlLogSequenceNumber(_ack));
                    }
                }

                Report();
                var reachedEnd = await StreamAsync(repl, slot, tli, start, endOfTimeline, ct).ConfigureAwait(false);
                attempt = 0;
                fallback = null;
                if (reachedEnd && endOfTimeline is { } e)
                {
                    _log.Verbose($"Timeline {tli} ends at {Wal.FormatLsn(e)}; continuing on the next timeline.");
                    FlushPartial(force: true);
                    ReleaseCurrent();
                    resume = (NextTimeline(history, tli, sys.Timeline), Wal.SegmentStart(e, _layout!.SegmentSize));
                }
                else
                {
                    resume = ResumePoint(resume.Value);
                    FlushPartial(force: true);
                    ReleaseCurrent();
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (HubDrException e) when (IsFatal(e))
            {
                throw;
            }
            catch (Exception e)
            {
                if (fallback is not null && e is PostgresException { SqlState: "58P01" })
                {
                    _log.Warning($"The server no longer has the WAL where timeline {resume!.Value.Tli} begins ({e.Message}); the archive of this " +
                        "timeline starts at the slot position instead. Take a base backup now: restores to this timeline need one taken on it.");
                    ReleaseCurrent();
                    resume = fallback;
                    fallback = null;
                    continue;
                }

                if (resume is not null && _current is not null)
                {
                    resume = ResumePoint(resume.Value);
                }

                // What was received is valid WAL the server had flushed: archive it before anything else, so a database
                // host that just died loses nothing the archiver held.
                FlushPartial(force: true);
                ReleaseCurrent();
                var mapped = e is HubDrException h ? h : _conn.MapError(e, "stream WAL from");
                Failed("database", mapped.ErrorId, mapped.Message);
                attempt++;
                try
                {
                    await Task.Delay(Backoff(attempt), ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
            finally
            {
                lock (_gate)
                {
                    _repl = null;
                    _connected = false;
                }
            }
        }
    }

    /// <summary>Where to stream from after a disconnect: the start of the segment being received (the server keeps it,
    /// since the slot is not past it), on its timeline.</summary>
    private (uint, ulong) ResumePoint((uint Tli, ulong Lsn) previous)
    {
        lock (_gate)
        {
            return _current is { } c ? (c.Timeline, c.Start) : previous;
        }
    }

    private static uint NextTimeline(TimelineHistory history, uint tli, uint serverTimeline)
    {
        var idx = history.Ancestors.ToList().FindIndex(a => a.Timeline == tli);
        return idx >= 0 && idx + 1 < history.Ancestors.Count ? history.Ancestors[idx + 1].Timeline : serverTimeline;
    }

    /// <summary>Streams into the segment buffers; returns true when a historic timeline reached its end.</summary>
    private async Task<bool> StreamAsync(PhysicalReplicationConnection repl, PhysicalReplicationSlot slot, uint tli, ulong start, ulong? endOfTimeline, CancellationToken ct)
    {
        var segSize = _layout!.SegmentSize;
        await foreach (var msg in repl.StartReplication(slot, new NpgsqlLogSequenceNumber(start), ct, tli).ConfigureAwait(false))
        {
            var buffer = _current!;
            var pos = buffer.Start + (ulong)buffer.Count;
            var walStart = (ulong)msg.WalStart;
            if (walStart > pos)
            {
                throw new HubDrException("WalStreamInvalid", HubErrorCategory.InvalidData,
                    $"The server sent WAL from {Wal.FormatLsn(walStart)} while {Wal.FormatLsn(pos)} was expected; reconnecting.");
            }

            var skip = (long)(pos - walStart);
            var stream = msg.Data;
            while (skip > 0)
            {
                var tmp = new byte[(int)Math.Min(skip, 65536)];
                var n = await stream.ReadAsync(tmp, ct).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                skip -= n;
            }

            while (true)
            {
                buffer = _current!;
                var room = (int)(segSize - buffer.Count);
                var n = await stream.ReadAsync(buffer.Data.AsMemory(buffer.Count, room), ct).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                Received(buffer, n);
                if (buffer.Count == segSize)
                {
                    // Segment complete: hand it to the uploader, continue in a free buffer (waiting here = backpressure).
                    SealSegment(buffer);
                    var next = await _pool!.Reader.ReadAsync(ct).ConfigureAwait(false);
                    next.Reset(tli, buffer.Start + (ulong)segSize);
                    lock (_gate)
                    {
                        _current = next;
                        _queuedEnd = next.Start;
                    }
                }
            }

            if (endOfTimeline is { } e && _current!.Start + (ulong)_current.Count >= e)
            {
                return true;
            }
        }

        return false;
    }

    private void Received(SegmentBuffer buffer, int n)
    {
        var now = DateTimeOffset.UtcNow;
        lock (_gate)
        {
            buffer.Count += n;
            var end = buffer.Start + (ulong)buffer.Count;
            if (_received.Count > 0 && (now - _received[^1].At).TotalMilliseconds < 200)
            {
                _received[^1] = (end, _received[^1].At);
            }
            else
            {
                _received.Add((end, now));
            }
        }
    }

    private void SealSegment(SegmentBuffer buffer)
    {
        lock (_gate)
        {
            _jobs.Writer.TryWrite(new Job(JobKind.Segment, buffer, buffer.Timeline, buffer.Start, buffer.Start + (ulong)buffer.Count, null));
            _current = null;
            _queuedEnd = buffer.Start + (ulong)buffer.Count;
        }
    }

    /// <summary>Queues a partial object of the unfinished segment when it holds bytes not queued yet. Periodic flushes
    /// wait while one is pending (a slow store must not pile up copies); a forced one (disconnect, stop) does not.</summary>
    private void FlushPartial(bool force = false)
    {
        lock (_gate)
        {
            if (_current is not { Count: > 0 } c || (_partialPending && !force))
            {
                return;
            }

            var end = c.Start + (ulong)c.Count;
            if (end <= _queuedEnd || c.Count == c.Data.Length)
            {
                return;
            }

            _partialPending = true;
            _queuedEnd = end;
            _jobs.Writer.TryWrite(new Job(JobKind.Partial, c, c.Timeline, c.Start, end, null));
        }
    }

    /// <summary>The current buffer goes back to the pool once every job queued before now is done.</summary>
    private void ReleaseCurrent()
    {
        lock (_gate)
        {
            if (_current is { } c)
            {
                _jobs.Writer.TryWrite(new Job(JobKind.Release, c, c.Timeline, 0, 0, null));
                _current = null;
            }
        }
    }

    private async Task TickerAsync(CancellationToken ct)
    {
        var next = DateTimeOffset.UtcNow + _o.PartialInterval;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(1000, _o.PartialInterval.TotalMilliseconds)), ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (DateTimeOffset.UtcNow >= next)
            {
                FlushPartial();
                next = DateTimeOffset.UtcNow + _o.PartialInterval;
            }

            Report();
        }
    }

    /// <summary>Archives the history files of every timeline of the server the index does not list yet (oldest first).</summary>
    private async Task<TimelineHistory> ArchiveHistoryAsync(PhysicalReplicationConnection repl, uint serverTimeline, CancellationToken ct)
    {
        if (serverTimeline <= 1)
        {
            return TimelineHistory.Root;
        }

        TimelineHistory? current = null;
        for (var t = serverTimeline; t >= 2; t--)
        {
            if (t != serverTimeline && _writer!.IsArchived(WalStreamLayout.History(t)))
            {
                break;
            }

            var content = await ReadTimelineHistoryAsync(repl, t, ct).ConfigureAwait(false);
            var parsed = TimelineHistory.Parse(t, content);
            current ??= parsed;
            if (!_writer!.IsArchived(WalStreamLayout.History(t)))
            {
                _log.Verbose($"Archiving timeline history {Wal.HistoryFileName(t)}.");
                _jobs.Writer.TryWrite(new Job(JobKind.History, null, t, 0, 0, content) { Branches = parsed.ToBranches() });
            }
        }

        return current!;
    }

    /// <summary>
    /// TIMELINE_HISTORY. Npgsql 8's TimelineHistory() casts the content column to byte[], but PostgreSQL 15+ declares it as
    /// text, so the call throws InvalidCastException after the row was read completely (the connection stays usable). Then the
    /// same command runs through Npgsql's row reader (ReplicationConnection.ReadSingleRow, which decodes text) by reflection.
    /// </summary>
    internal static async Task<byte[]> ReadTimelineHistoryAsync(PhysicalReplicationConnection repl, uint timeline, CancellationToken ct)
    {
        try
        {
            return (await repl.TimelineHistory(timeline, ct).ConfigureAwait(false)).Content;
        }
        catch (InvalidCastException)
        {
            var method = typeof(ReplicationConnection).GetMethod("ReadSingleRow", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance,
                [typeof(string), typeof(CancellationToken)])
                ?? throw new HubDrException("TimelineHistoryUnreadable", HubErrorCategory.NotInstalled,
                    $"This Npgsql version cannot read timeline history {Wal.HistoryFileName(timeline)} from PostgreSQL 15+ (a known Npgsql issue), and its workaround is not available.");
            var row = await ((Task<object[]>)method.Invoke(repl, [$"TIMELINE_HISTORY {timeline}", ct])!).ConfigureAwait(false);
            return row[1] switch
            {
                byte[] b => b,
                string text => System.Text.Encoding.UTF8.GetBytes(text),
                _ => throw new HubDrException("TimelineHistoryUnreadable", HubErrorCategory.InvalidData, $"The server sent no content for {Wal.HistoryFileName(timeline)}."),
            };
        }
    }

    // ------------------------------------------------------------------ uploading

    private async Task WorkerAsync(CancellationToken ct)
    {
        await foreach (var job in _jobs.Reader.ReadAllAsync(ct).ConfigureAwait(false))
        {
            if (job.Kind == JobKind.Release)
            {
                await _pool!.Writer.WriteAsync(job.Buffer!, ct).ConfigureAwait(false);
                continue;
            }

            var attempt = 0;
            while (true)
            {
                try
                {
                    await ProcessAsync(job, ct).ConfigureAwait(false);
                    break;
                }
                catch (HubDrException e) when (IsFatal(e))
                {
                    Failed("store", e.ErrorId, e.Message, fatal: true);
                    throw;
                }
                catch (Exception e) when (!ct.IsCancellationRequested)
                {
                    attempt++;
                    Failed("store", (e as HubDrException)?.ErrorId, $"Archiving {Describe(job)} failed (attempt {attempt}): {e.Message}");
                    await Task.Delay(Backoff(attempt), ct).ConfigureAwait(false);
                }
            }

            if (job.Kind == JobKind.Segment)
            {
                await _pool!.Writer.WriteAsync(job.Buffer!, ct).ConfigureAwait(false);
            }
        }
    }

    private async Task ProcessAsync(Job job, CancellationToken ct)
    {
        var writer = _writer!;
        var layout = _layout!;
        LogObjectRef obj;
        ReadOnlyMemory<byte> data;
        switch (job.Kind)
        {
            case JobKind.History:
                obj = WalStreamLayout.History(job.Timeline);
                data = job.Content!;
                break;
            case JobKind.Segment:
                obj = layout.Segment(job.Timeline, Wal.SegmentNumber(job.Start, layout.SegmentSize));
                data = job.Buffer!.Data.AsMemory(0, (int)(job.End - job.Start));
                break;
            default:
                obj = layout.Partial(job.Timeline, job.End);
                data = job.Buffer!.Data.AsMemory(0, (int)(job.End - job.Start));
                break;
        }

        var result = await writer.WriteAsync(obj, data, job.Branches, ct).ConfigureAwait(false);
        if (!result.Skipped)
        {
            // The index entry is durable before the acknowledgement: a restore sees every acknowledged byte.
            await writer.CommitAsync([result.Entry], ct).ConfigureAwait(false);
        }

        lock (_gate)
        {
            if (job.Kind == JobKind.Partial)
            {
                _partialPending = false;
            }

            if (!result.Skipped)
            {
                _objects++;
                _bytes += result.Entry.Size;
            }

            _lastObject = obj.ToString();
            _lastArchivedUtc = result.Entry.ArchivedUtc;
            _consecutiveFailures = 0;
            _lastError = null;
            if (job.Kind != JobKind.History && job.End > _ack)
            {
                _ack = job.End;
                _ackTimeline = job.Timeline;
                _received.RemoveAll(r => r.End <= _ack);
                _repl?.SetReplicationStatus(new NpgsqlLogSequenceNumber(_ack));
            }
        }

        var repl = _repl;
        if (repl is not null && job.Kind != JobKind.History)
        {
            try
            {
                await repl.SendStatusUpdate(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is InvalidOperationException or NpgsqlException or IOException or ObjectDisposedException)
            {
                // The periodic feedback carries it; a dead connection is the receive loop's business.
            }
        }

        _log.Verbose($"Archived {obj}{(result.Skipped ? " (already archived identically)" : $": {result.Entry.Size} bytes")}.");
        if (job.Kind != JobKind.History)
        {
            await writer.DeleteSupersededPartialsAsync(obj.Line, obj.Name, ct).ConfigureAwait(false);
            var keep = (ulong)layout.SegmentSize * 64;
            if (obj.Start > keep && Wal.SegmentNumber(obj.Start, layout.SegmentSize) % 64 == 0)
            {
                writer.ForgetBefore(obj.Line, obj.Start - keep);
            }

            if (writer.BatchesSinceCompaction >= _o.CompactAfterBatches)
            {
                try
                {
                    await writer.CompactAsync(obj.Line, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    _log.Warning($"Index compaction failed (retried later): {e.Message}");
                }
            }
        }

        Report();
    }

    // ------------------------------------------------------------------ status

    private LogArchiveStatus StatusLocked()
    {
        var lag = _received.Count == 0 ? 0 : (DateTimeOffset.UtcNow - _received[0].At).TotalSeconds;
        return new LogArchiveStatus
        {
            Hub = _hub,
            Stream = "postgres-wal",
            Line = _ackTimeline == 0 ? null : Wal.TimelineName(_ackTimeline),
            ArchivedPosition = _ack == 0 ? null : Wal.FormatLsn(_ack),
            ArchivedPositionValue = _ack,
            LastObject = _lastObject,
            LastArchivedUtc = _lastArchivedUtc,
            LagSeconds = Math.Max(0, lag),
            Connected = _connected,
            ObjectsWritten = _objects,
            BytesWritten = _bytes,
            FailuresTotal = _failures,
            ConsecutiveFailures = _consecutiveFailures,
            LastError = _lastError,
        };
    }

    private void Report()
    {
        if (_o.Monitor is null)
        {
            return;
        }

        LogArchiveStatus s;
        lock (_gate)
        {
            s = StatusLocked();
        }

        try
        {
            _o.Monitor.Report(s);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _log.Warning($"The archiver monitor failed: {e.Message}");
        }
    }

    private void Failed(string stage, string? errorId, string message, bool fatal = false)
    {
        int consecutive;
        lock (_gate)
        {
            _failures++;
            consecutive = ++_consecutiveFailures;
            _lastError = message;
        }

        _log.Warning($"WAL archiver ({stage}): {message}");
        try
        {
            _o.Monitor?.Failure(new LogArchiveFailure(_hub, "postgres-wal", stage, errorId, message, consecutive, fatal, DateTimeOffset.UtcNow));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _log.Warning($"The archiver failure callback failed: {e.Message}");
        }

        Report();
    }

    private HubDrException Fatal(HubDrException e)
    {
        Failed("startup", e.ErrorId, e.Message, fatal: true);
        return e;
    }

    private static bool IsFatal(HubDrException e) => e.ErrorId is "LogObjectConflict" or "WalArchiveSystemMismatch" or "WalSegmentSizeMismatch"
        or "KeyPassphraseInvalid" or "SigningKeyNotFound" or "SigningKeyUnusable" or "EncryptionKeyUnusable" or "StoreKeyInvalid" or "ReplicationSlotInvalid";

    private TimeSpan Backoff(int attempt)
    {
        var ms = Math.Min(_o.RetryMaxDelay.TotalMilliseconds, _o.RetryInitialDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt - 1, 20)));
        return TimeSpan.FromMilliseconds(ms);
    }

    private async Task<T> RetryUntilAsync<T>(string stage, Func<Task<T>> action, CancellationToken ct, Func<HubDrException, bool>? retryable = null)
    {
        retryable ??= e => e.Category is HubErrorCategory.ConnectionError or HubErrorCategory.ResourceUnavailable or HubErrorCategory.WriteError;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await action().ConfigureAwait(false);
            }
            catch (HubDrException e) when (!IsFatal(e) && retryable(e) && !ct.IsCancellationRequested)
            {
                Failed(stage, e.ErrorId, e.Message);
                await Task.Delay(Backoff(attempt), ct).ConfigureAwait(false);
            }
        }
    }

    private Task RetryUntilAsync(string stage, Func<Task> action, CancellationToken ct) =>
        RetryUntilAsync(stage, async () => { await action().ConfigureAwait(false); return true; }, ct);

    private static string Describe(Job job) => job.Kind switch
    {
        JobKind.History => Wal.HistoryFileName(job.Timeline),
        JobKind.Segment => $"segment at {Wal.FormatLsn(job.Start)} (timeline {job.Timeline})",
        _ => $"partial segment to {Wal.FormatLsn(job.End)} (timeline {job.Timeline})",
    };

    private enum JobKind
    {
        Segment,
        Partial,
        History,
        Release,
    }

    private sealed record Job(JobKind Kind, SegmentBuffer? Buffer, uint Timeline, ulong Start, ulong End, byte[]? Content)
    {
        public IReadOnlyList<LogBranch>? Branches { get; init; }
    }

    /// <summary>One reusable in-memory segment (wal_segment_size bytes).</summary>
    private sealed class SegmentBuffer(long size)
    {
        public byte[] Data { get; } = new byte[size];
        public uint Timeline { get; private set; }
        public ulong Start { get; private set; }

        /// <summary>Bytes received; written by the receive loop under the archiver's lock.</summary>
        public int Count { get; set; }

        public void Reset(uint timeline, ulong start)
        {
            Timeline = timeline;
            Start = start;
            Count = 0;
        }
    }
}
