using System.Collections.Concurrent;
using System.Management.Automation;
using HubDr.Engine;

namespace HubDr.Cmdlets.Infrastructure;

/// <summary>
/// Common plumbing of every HubDr cmdlet: runs async engine work on a worker thread while the pipeline thread
/// writes its verbose/warning/progress messages (PowerShell requires that), maps HubDrException to an ErrorRecord
/// with a stable ErrorId, and cancels on Ctrl+C (StopProcessing).
/// </summary>
public abstract class HubCmdletBase : PSCmdlet
{
    private readonly CancellationTokenSource _stop = new();

    protected CancellationToken StopToken => _stop.Token;

    protected override void StopProcessing() => _stop.Cancel();

    /// <summary>Runs <paramref name="work"/> and pumps its messages on this (the pipeline) thread.</summary>
    protected T RunEngine<T>(Func<IOperationLog, CancellationToken, Task<T>> work)
    {
        using var queue = new BlockingCollection<Action>();
        var log = new PumpedLog(this, queue);
        var task = Task.Run(() => work(log, _stop.Token));
        _ = task.ContinueWith(_ => queue.CompleteAdding(), TaskScheduler.Default);
        foreach (var action in queue.GetConsumingEnumerable())
        {
            action();
        }

        try
        {
            return task.GetAwaiter().GetResult();
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            throw new PipelineStoppedException();
        }
    }

    /// <summary>
    /// Runs the work for one pipeline item (PowerShell's rule, see <see cref="ErrorScope"/>): a failure about this item
    /// is written as a non-terminating error and the cmdlet goes on with the next item; a failure that makes every
    /// further item pointless (bad parameters or settings, store unreachable, keys unusable) is terminating.
    /// ThrowTerminatingError itself surfaces as PipelineStoppedException, which passes through untouched.
    /// </summary>
    protected void Guarded(Action body)
    {
        try
        {
            BeforeItem();
            body();
        }
        catch (Exception e) when (IsFailure(e))
        {
            if (ErrorScope.IsTerminating(e))
            {
                ThrowHubError(e);
            }

            WriteHubError(e);
        }
    }

    /// <summary>Runs before each item's work inside <see cref="Guarded"/> (settings are merged here).</summary>
    protected virtual void BeforeItem()
    {
    }

    /// <summary>
    /// ValidateSet compares case-insensitively, so "-Algorithm RSA3072" passes it: every bound ValidateSet value is
    /// replaced by the set's own spelling before any code parses it.
    /// </summary>
    protected override void BeginProcessing()
    {
        foreach (var name in MyInvocation.BoundParameters.Keys.ToList())
        {
            var prop = GetType().GetProperty(name);
            if (prop is not null && Canonical(prop, prop.GetValue(this)) is { } canonical)
            {
                prop.SetValue(this, canonical);
            }
        }
    }

    /// <summary>The ValidateSet spelling of a value (string or string[]), or null when the property has no ValidateSet.</summary>
    internal static object? Canonical(System.Reflection.PropertyInfo prop, object? value)
    {
        if (prop.GetCustomAttributes(typeof(ValidateSetAttribute), true).FirstOrDefault() is not ValidateSetAttribute set)
        {
            return null;
        }

        string Fix(string v) => set.ValidValues.FirstOrDefault(x => string.Equals(x, v, StringComparison.OrdinalIgnoreCase)) ?? v;
        return value switch
        {
            string s => Fix(s),
            string[] a => a.Select(Fix).ToArray(),
            _ => null,
        };
    }

    protected static bool IsFailure(Exception e) =>
        e is not PipelineStoppedException and not ActionPreferenceStopException and not PipelineDepthException and not OutOfMemoryException;

    /// <summary>Terminating error from any exception (HubDrException keeps its ErrorId and category).</summary>
    protected void ThrowHubError(Exception e) => ThrowTerminatingError(ToErrorRecord(e));

    protected void WriteHubError(Exception e) => WriteError(ToErrorRecord(e));

    internal static ErrorRecord ToErrorRecord(Exception e)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } agg)
        {
            e = agg.InnerExceptions[0];
        }

        if (e is HubDrException h)
        {
            return new ErrorRecord(h, h.ErrorId, Map(h.Category), h.Target)
            {
                ErrorDetails = new ErrorDetails(h.Message),
            };
        }

        // Not expected: still a clean, typed record (no stack dump); details stay on the exception for -Debug/$Error.
        var id = e switch
        {
            UnauthorizedAccessException => "AccessDenied",
            IOException => "IOError",
            _ => "UnexpectedError",
        };
        var category = e switch
        {
            UnauthorizedAccessException => ErrorCategory.PermissionDenied,
            IOException => ErrorCategory.WriteError,
            _ => ErrorCategory.NotSpecified,
        };
        return new ErrorRecord(e, id, category, null) { ErrorDetails = new ErrorDetails($"{e.GetType().Name}: {e.Message}") };
    }

    internal static ErrorCategory Map(HubErrorCategory c) => c switch
    {
        HubErrorCategory.InvalidArgument => ErrorCategory.InvalidArgument,
        HubErrorCategory.InvalidData => ErrorCategory.InvalidData,
        HubErrorCategory.InvalidOperation => ErrorCategory.InvalidOperation,
        HubErrorCategory.ObjectNotFound => ErrorCategory.ObjectNotFound,
        HubErrorCategory.ResourceExists => ErrorCategory.ResourceExists,
        HubErrorCategory.ResourceUnavailable => ErrorCategory.ResourceUnavailable,
        HubErrorCategory.SecurityError => ErrorCategory.SecurityError,
        HubErrorCategory.PermissionDenied => ErrorCategory.PermissionDenied,
        HubErrorCategory.AuthenticationError => ErrorCategory.AuthenticationError,
        HubErrorCategory.ConnectionError => ErrorCategory.ConnectionError,
        HubErrorCategory.OperationStopped => ErrorCategory.OperationStopped,
        HubErrorCategory.WriteError => ErrorCategory.WriteError,
        HubErrorCategory.ReadError => ErrorCategory.ReadError,
        HubErrorCategory.NotInstalled => ErrorCategory.NotInstalled,
        HubErrorCategory.QuotaExceeded => ErrorCategory.QuotaExceeded,
        _ => ErrorCategory.NotSpecified,
    };

    /// <summary>Resolves a path the PowerShell way (relative to $PWD, ~ expanded), without requiring it to exist.</summary>
    protected string ResolvePath(string path) => SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);

    private sealed class PumpedLog : IOperationLog
    {
        private readonly HubCmdletBase _cmdlet;
        private readonly BlockingCollection<Action> _queue;
        private readonly ConcurrentDictionary<string, int> _ids = new();

        public PumpedLog(HubCmdletBase cmdlet, BlockingCollection<Action> queue)
        {
            _cmdlet = cmdlet;
            _queue = queue;
        }

        public void Verbose(string message) => Post(() => _cmdlet.WriteVerbose(message));

        public void Warning(string message) => Post(() => _cmdlet.WriteWarning(message));

        public void Progress(string activity, string status, long done, long? total)
        {
            var id = _ids.GetOrAdd(activity, _ => 4100 + _ids.Count);
            Post(() =>
            {
                var record = new ProgressRecord(id, activity, status);
                if (total is > 0)
                {
                    record.PercentComplete = (int)Math.Clamp(done * 100 / total.Value, 0, 100);
                }

                _cmdlet.WriteProgress(record);
            });
        }

        public void ProgressComplete(string activity)
        {
            if (_ids.TryRemove(activity, out var id))
            {
                Post(() => _cmdlet.WriteProgress(new ProgressRecord(id, activity, "Done") { RecordType = ProgressRecordType.Completed }));
            }
        }

        private void Post(Action a)
        {
            try
            {
                _queue.Add(a);
            }
            catch (InvalidOperationException)
            {
                // Queue already closed: the work finished; late messages are dropped.
            }
        }
    }
}
