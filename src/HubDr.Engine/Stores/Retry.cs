using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security;

namespace HubDr.Engine.Stores;

/// <summary>
/// Shared retry helper for object stores: exponential backoff with full jitter for transient failures
/// (HTTP 500/502/503/504, SlowDown, timeouts, dropped connections). The store decides what is transient.
/// </summary>
public static class Retry
{
    /// <summary>First delay; doubles per attempt up to <see cref="MaxDelay"/>. Tests may lower it.</summary>
    public static TimeSpan BaseDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    public static TimeSpan MaxDelay { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Runs <paramref name="action"/> up to 1 + <paramref name="maxRetries"/> times. Retries only when
    /// <paramref name="isTransient"/> says so and <paramref name="ct"/> is not cancelled.
    /// </summary>
    public static async Task<T> ExecuteAsync<T>(Func<CancellationToken, Task<T>> action, Func<Exception, bool> isTransient, int maxRetries, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            ct.ThrowIfCancellationRequested();
            try
            {
                return await action(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (attempt < maxRetries && !ct.IsCancellationRequested && isTransient(e))
            {
                await Task.Delay(DelayFor(attempt), ct).ConfigureAwait(false);
            }
        }
    }

    public static Task ExecuteAsync(Func<CancellationToken, Task> action, Func<Exception, bool> isTransient, int maxRetries, CancellationToken ct)
        => ExecuteAsync<bool>(async c => { await action(c).ConfigureAwait(false); return true; }, isTransient, maxRetries, ct);

    /// <summary>Backoff before retry number <paramref name="attempt"/> (0-based): random in [d/2, d], d = base * 2^attempt, capped.</summary>
    public static TimeSpan DelayFor(int attempt)
    {
        var ms = Math.Min(MaxDelay.TotalMilliseconds, BaseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt, 20)));
        return TimeSpan.FromMilliseconds((ms / 2) + (Random.Shared.NextDouble() * ms / 2));
    }

    /// <summary>True for network-level failures anywhere in the exception chain (reset, refused, timeout, truncated body).</summary>
    public static bool IsNetworkFailure(Exception? e)
    {
        for (var x = e; x is not null; x = x.InnerException)
        {
            switch (x)
            {
                case HttpRequestException:
                case SocketException:
                case IOException:
                case TimeoutException:
                case TaskCanceledException:
                    return true;
            }
        }

        return false;
    }

    /// <summary>Copies a SecureString into a managed string for an SDK that needs one. Never log the result.</summary>
    internal static string? Reveal(SecureString? s)
    {
        if (s is null)
        {
            return null;
        }

        var p = Marshal.SecureStringToGlobalAllocUnicode(s);
        try
        {
            return Marshal.PtrToStringUni(p);
        }
        finally
        {
            Marshal.ZeroFreeGlobalAllocUnicode(p);
        }
    }
}
