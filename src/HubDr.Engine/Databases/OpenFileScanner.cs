namespace HubDr.Engine.Databases;

/// <summary>Which other processes have a file open (Linux: /proc/*/fd; elsewhere nothing is reported).</summary>
internal static class OpenFileScanner
{
    /// <summary>Process ids (other than this one) holding any of <paramref name="paths"/> open; best effort.</summary>
    public static IReadOnlyList<int> ProcessesHolding(IReadOnlyList<string> paths)
    {
        var result = new List<int>();
        if (!OperatingSystem.IsLinux())
        {
            return result;
        }

        var wanted = new HashSet<string>(paths.Select(Path.GetFullPath), StringComparer.Ordinal);
        IEnumerable<string> procs;
        try
        {
            procs = Directory.EnumerateDirectories("/proc").ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return result;
        }

        foreach (var proc in procs)
        {
            if (!int.TryParse(Path.GetFileName(proc), out var pid) || pid == Environment.ProcessId)
            {
                continue;
            }

            try
            {
                foreach (var fd in Directory.EnumerateFileSystemEntries(Path.Combine(proc, "fd")))
                {
                    var target = new FileInfo(fd).LinkTarget;
                    if (target is not null && wanted.Contains(target))
                    {
                        result.Add(pid);
                        break;
                    }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // gone, or not ours to look at
            }
        }

        return result;
    }
}
