namespace HubDr.Engine;

/// <summary>
/// How the engine tells its story. The cmdlets route these to Write-Verbose / Write-Warning / Write-Progress
/// on the pipeline thread; the audit log and metrics are fed from the results, not from here.
/// Messages must never contain secrets.
/// </summary>
public interface IOperationLog
{
    void Verbose(string message);

    void Warning(string message);

    /// <summary>Progress of one long step; <paramref name="total"/> null when unknown (e.g. a dump).</summary>
    void Progress(string activity, string status, long done, long? total);

    void ProgressComplete(string activity);
}

public sealed class NullOperationLog : IOperationLog
{
    public static readonly NullOperationLog Instance = new();

    public void Verbose(string message)
    {
    }

    public void Warning(string message)
    {
    }

    public void Progress(string activity, string status, long done, long? total)
    {
    }

    public void ProgressComplete(string activity)
    {
    }
}
