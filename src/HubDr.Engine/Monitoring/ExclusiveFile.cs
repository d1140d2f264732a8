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
            catch (IOException e) when (IsSharingViolation(e) && !(e is FileNotFoundException or DirectoryNotFoundException))
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

    // On Unix a lock conflict surfaces as a plain IOException (EWOULDBLOCK); on Windows as HResult 32/33.
    private static bool IsSharingViolation(IOException e)
    {
        if (OperatingSystem.IsWindows())
        {
            var code = e.HResult & 0xFFFF;
            return code is 32 or 33;
        }

        return e.GetType() == typeof(IOException);
    }
}
