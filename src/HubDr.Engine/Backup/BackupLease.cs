using System.Diagnostics;
using HubDr.Engine.Stores;

namespace HubDr.Engine.Backup;

/// <summary>The lease object of a running backup (<c>&lt;hub&gt;/&lt;backupId&gt;/lease.json</c>); public, nothing secret.</summary>
public sealed class LeaseRecord
{
    public int FormatVersion { get; set; } = ObjectLayout.FormatVersion;
    public string Hub { get; set; } = "";
    public string BackupId { get; set; } = "";
    public string HostName { get; set; } = "";
    public int ProcessId { get; set; }

    /// <summary>Start time of the process holding the lease (tells a reused process id apart).</summary>
    public DateTimeOffset? ProcessStartUtc { get; set; }

    public DateTimeOffset StartedUtc { get; set; }
    public DateTimeOffset RenewedUtc { get; set; }

    /// <summary>The lease is live until RenewedUtc + TtlSeconds (the holder renews it well before).</summary>
    public int TtlSeconds { get; set; }

    public string ToolVersion { get; set; } = "";
}

/// <summary>What a reader concluded about a lease.</summary>
public sealed record LeaseStatus(LeaseRecord? Record, bool IsLive, string Description);

/// <summary>
/// A running backup is recognisable as running: New-HubBackup writes a lease into the backup's folder before the first
/// byte of the archive, renews it on a heartbeat while it runs, and removes it when the backup ends (either way).
/// Retention never deletes a folder whose lease is live. A lease is live until RenewedUtc + TtlSeconds; on the same
/// host it is dead as soon as the process that holds it is gone (killed), so a killed run is cleared without waiting.
/// </summary>
public static class BackupLease
{
    /// <summary>How often a running backup renews its lease.</summary>
    public static TimeSpan DefaultRenewInterval { get; } = TimeSpan.FromMinutes(1);

    /// <summary>How long a lease stays live without renewal (a holder whose renewals fail for this long loses it).</summary>
    public static TimeSpan DefaultTtl { get; } = TimeSpan.FromMinutes(10);

    public static LeaseRecord NewRecord(string hub, string backupId, TimeSpan ttl)
    {
        var now = DateTimeOffset.UtcNow;
        DateTimeOffset? processStart = null;
        try
        {
            using var me = Process.GetCurrentProcess();
            processStart = new DateTimeOffset(me.StartTime.ToUniversalTime(), TimeSpan.Zero);
        }
        catch (Exception e) when (e is InvalidOperationException or NotSupportedException or System.ComponentModel.Win32Exception)
        {
        }

        return new LeaseRecord
        {
            Hub = hub,
            BackupId = backupId,
            HostName = Environment.MachineName,
            ProcessId = Environment.ProcessId,
            ProcessStartUtc = processStart,
            StartedUtc = now,
            RenewedUtc = now,
            TtlSeconds = (int)Math.Max(1, ttl.TotalSeconds),
            ToolVersion = BackupService.ToolVersion,
        };
    }

    public static Task WriteAsync(IBackupStore store, LeaseRecord lease, CancellationToken ct) =>
        store.PutAsync(ObjectLayout.Folder(lease.Hub, lease.BackupId) + ObjectLayout.LeaseName, HubJson.Serialize(lease),
            new StoreWriteOptions { ContentType = "application/json" }, ct); // never locked: it must be removable

    /// <summary>Reads and judges the lease object of one backup folder.</summary>
    public static async Task<LeaseStatus> ReadAsync(IBackupStore store, string hub, string backupId, StoreObject leaseObject, DateTimeOffset now, CancellationToken ct)
    {
        LeaseRecord? record = null;
        byte[]? bytes;
        try
        {
            bytes = await store.TryGetAsync(ObjectLayout.Folder(hub, backupId) + ObjectLayout.LeaseName, ct).ConfigureAwait(false);
        }
        catch (HubDrException e) when (e.ErrorId is "StoreUnavailable" or "StoreRequestFailed")
        {
            // Caught mid-rewrite by a heartbeat (a store whose overwrite is not atomic returns a body that fails its
            // checksum) or a passing outage: an unreadable lease is live for one TTL after its last write.
            return Evaluate(null, leaseObject.LastModified, now);
        }

        if (bytes is null)
        {
            return new LeaseStatus(null, false, "lease released");
        }

        try
        {
            record = HubJson.Deserialize<LeaseRecord>(bytes, "lease");
        }
        catch (HubDrException)
        {
        }

        return Evaluate(record, leaseObject.LastModified, now);
    }

    /// <summary>Live or not, and why, from the record (null: unreadable) and the object's last-modified time.</summary>
    public static LeaseStatus Evaluate(LeaseRecord? r, DateTimeOffset lastModified, DateTimeOffset now)
    {
        if (r is null)
        {
            // Unreadable (being rewritten?): live for one TTL after its last write, to be safe.
            var until = lastModified + DefaultTtl;
            return new LeaseStatus(null, now < until, now < until ? $"unreadable lease written {lastModified:u}, treated as live" : "unreadable lease, expired");
        }

        var renewed = r.RenewedUtc > lastModified ? r.RenewedUtc : lastModified;
        var expires = renewed + TimeSpan.FromSeconds(r.TtlSeconds > 0 ? r.TtlSeconds : DefaultTtl.TotalSeconds);
        var holder = $"host {r.HostName}, process {r.ProcessId}, started {r.StartedUtc:u}, renewed {renewed:u}";
        if (now >= expires)
        {
            return new LeaseStatus(r, false, $"lease expired ({holder})");
        }

        if (string.Equals(r.HostName, Environment.MachineName, StringComparison.OrdinalIgnoreCase) && !ProcessAlive(r.ProcessId, r.ProcessStartUtc))
        {
            return new LeaseStatus(r, false, $"lease holder is gone ({holder})");
        }

        return new LeaseStatus(r, true, $"running ({holder})");
    }

    private static bool ProcessAlive(int pid, DateTimeOffset? started)
    {
        if (pid <= 0)
        {
            return true; // unknown: assume alive
        }

        try
        {
            using var p = Process.GetProcessById(pid);
            if (p.HasExited)
            {
                return false;
            }

            if (started is { } s)
            {
                var actual = new DateTimeOffset(p.StartTime.ToUniversalTime(), TimeSpan.Zero);
                return Math.Abs((actual - s).TotalSeconds) < 2; // else the id was reused by another process
            }

            return true;
        }
        catch (ArgumentException)
        {
            return false; // no such process
        }
        catch (Exception e) when (e is InvalidOperationException or NotSupportedException or System.ComponentModel.Win32Exception)
        {
            return true; // cannot tell: assume alive
        }
    }

    /// <summary>Renews a lease every <paramref name="interval"/> until disposed; a failed renewal is a warning, not a failure.</summary>
    internal sealed class Heartbeat : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;

        public Heartbeat(IBackupStore store, LeaseRecord lease, TimeSpan interval, IOperationLog log)
        {
            _loop = Task.Run(async () =>
            {
                var warned = false;
                while (!_stop.IsCancellationRequested)
                {
                    try
                    {
                        await Task.Delay(interval, _stop.Token).ConfigureAwait(false);
                        lease.RenewedUtc = DateTimeOffset.UtcNow;
                        await WriteAsync(store, lease, _stop.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                    {
                        return;
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        if (!warned)
                        {
                            warned = true;
                            log.Warning($"Could not renew the lease of backup {lease.Hub}/{lease.BackupId}: {e.Message} (retrying every {interval.TotalSeconds:0} s).");
                        }
                    }
                }
            });
        }

        private bool _disposed;

        public async ValueTask DisposeAsync()
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _stop.Cancel();
            try
            {
                await _loop.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }

            _stop.Dispose();
        }
    }
}
