namespace HubDr.Engine;

/// <summary>
/// Category of a HubDr failure. Mirrors the PowerShell ErrorCategory values the cmdlets map it to,
/// so the engine stays free of any PowerShell dependency.
/// </summary>
public enum HubErrorCategory
{
    NotSpecified,
    InvalidArgument,
    InvalidData,
    InvalidOperation,
    ObjectNotFound,
    ResourceExists,
    ResourceUnavailable,
    SecurityError,
    PermissionDenied,
    AuthenticationError,
    ConnectionError,
    OperationStopped,
    WriteError,
    ReadError,
    NotInstalled,
    QuotaExceeded,
}

/// <summary>
/// Every expected failure inside the engine is a HubDrException with a stable ErrorId
/// (documented in docs/errors.md). The cmdlets turn it into an ErrorRecord; anything else is a bug.
/// </summary>
public class HubDrException : Exception
{
    public HubDrException(string errorId, HubErrorCategory category, string message, Exception? inner = null)
        : base(message, inner)
    {
        ErrorId = errorId;
        Category = category;
    }

    /// <summary>Stable identifier, e.g. "SignatureUntrustedSigner". Never changes once released.</summary>
    public string ErrorId { get; }

    public HubErrorCategory Category { get; }

    /// <summary>Optional object the error is about (backup id, path, key id) for ErrorRecord.TargetObject.</summary>
    public object? Target { get; init; }

    /// <summary>Key in <see cref="Exception.Data"/> under which the engine records the backup id an operation was working
    /// on when it failed (any exception type), so the audit record of a failed run names it.</summary>
    public const string BackupIdDataKey = "HubDr.BackupId";

    /// <summary>The backup id recorded on <paramref name="e"/> or one of its inner exceptions, or null.</summary>
    public static string? BackupIdOf(Exception? e)
    {
        for (var x = e; x is not null; x = x.InnerException)
        {
            if (x.Data[BackupIdDataKey] is string id)
            {
                return id;
            }

            if (x is AggregateException { InnerExceptions.Count: 1 } agg)
            {
                return BackupIdOf(agg.InnerExceptions[0]);
            }
        }

        return null;
    }
}
