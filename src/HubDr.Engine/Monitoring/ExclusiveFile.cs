namespace HubDr.Engine.Monitoring;

/// <summary>
/// Opens a file with FileShare.None (an exclusive cross-process lock: flock(LOCK_EX) on Unix, a share-mode lock on
/// Windows), retrying with exponential backoff until <paramref name="timeout"/> runs out.
/// </summary>
internal static class ExclusiveFile
{
    public static FileStream Open(string path, FileMode mode, FileAccess access, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        var delay = TimeSpan.FromMilliseconds(5);
        while (true)
        {
            try
            {
                return new FileStream(path, mode, access, FileShare.None, 4096, FileOptions.None);
            }
            catch (IOException e) when (IsSharingViolation(e))
            {
                if (DateTime.UtcNow >= deadline)
                {
                    throw new HubDrException("MonitoringLockTimeout", HubErrorCategory.ResourceUnavailable,
                        $"Could not lock the {what} '{path}' within {timeout.TotalSeconds:0} s because another HubDr process keeps it locked. " +
                        "Check for a hung backup/restore process (it holds the lock only for milliseconds normally) and run again.", e)
                    { Target = path };
                }

                // Jitter keeps many waiting writers from retrying in lock-step.
                var jitter = Random.Shared.NextDouble() * 0.5 + 0.75;
                Thread.Sleep(TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * jitter, 500)));
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 500));
            }
            catch (UnauthorizedAccessException e)
            {
                throw new HubDrException("MonitoringFileAccessDenied", HubErrorCategory.PermissionDenied,
                    $"The {what} '{path}' cannot be opened: access denied. Give the account running HubDr write access to that folder.", e)
                { Target = path };
            }
        }
    }

    // On Unix .NET takes flock(LOCK_EX|LOCK_NB) and a conflict is an IOException whose HResult is the raw errno
    // EWOULDBLOCK (11 on Linux, 35 on macOS/BSD); on Windows it is ERROR_SHARING_VIOLATION/ERROR_LOCK_VIOLATION (32/33).
    // Anything else (disk full, I/O error) is not retried.
    private static bool IsSharingViolation(IOException e)
    {
        if (OperatingSystem.IsWindows())
        {
            var code = e.HResult & 0xFFFF;
            return code is 32 or 33;
        }

        return e.GetType() == typeof(IOException) && e.HResult == (OperatingSystem.IsLinux() ? 11 : 35);
    }
}
