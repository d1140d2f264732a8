using System.Diagnostics;

namespace HubDr.Engine.IO;

/// <summary>Reports byte progress at most a few times a second, with a rate.</summary>
public sealed class ProgressThrottle
{
    private readonly IOperationLog _log;
    private readonly string _activity;
    private readonly long? _total;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _lastTicks = -1;

    public ProgressThrottle(IOperationLog log, string activity, long? total)
    {
        _log = log;
        _activity = activity;
        _total = total;
    }

    public void Report(long done)
    {
        var now = _clock.ElapsedMilliseconds;
        if (_lastTicks >= 0 && now - _lastTicks < 250)
        {
            return;
        }

        _lastTicks = now;
        var rate = now > 0 ? done / (now / 1000.0) : 0;
        var status = _total is > 0
            ? $"{Units.Bytes(done)} of {Units.Bytes(_total.Value)} at {Units.Bytes((long)rate)}/s"
            : $"{Units.Bytes(done)} at {Units.Bytes((long)rate)}/s";
        _log.Progress(_activity, status, done, _total);
    }

    public void Complete() => _log.ProgressComplete(_activity);
}

public static class Units
{
    public static string Bytes(long n)
    {
        string[] u = ["B", "KiB", "MiB", "GiB", "TiB"];
        double v = n;
        var i = 0;
        while (v >= 1024 && i < u.Length - 1)
        {
            v /= 1024;
            i++;
        }

        return i == 0 ? $"{n} B" : $"{v:0.0} {u[i]}";
    }
}
