using System.Diagnostics;
using System.Globalization;
using System.Runtime.Versioning;
using System.Security.AccessControl;
using System.Security.Principal;
using System.Text;
using System.Text.RegularExpressions;

namespace HubDr.Engine.IO;

/// <summary>One allow rule of an ACL, described without Windows types (so its decisions can be tested anywhere).</summary>
public sealed record AclRule(string Identity, string Rights);

/// <summary>
/// What a private file or folder gets on Windows: owner = <see cref="Owner"/>, exactly <see cref="Rules"/>, and no
/// entries inherited from the parent (C:\ProgramData or a shared folder would otherwise let other local users read it).
/// </summary>
public sealed record OwnerOnlyAcl(string Owner, IReadOnlyList<AclRule> Rules, bool InheritanceDisabled);

/// <summary>
/// The operating-system part of <see cref="PrivateFiles"/> (the seam): everything that differs between Windows and
/// Unix. <see cref="PrivateFiles"/> makes the decisions (where, which ACL, which mode, what is stale); tests replace
/// the platform to check the Windows decisions on Linux.
/// </summary>
public interface IPrivateFilePlatform
{
    bool IsWindows { get; }

    bool IsLinux { get; }

    string TempPath { get; }

    string? GetEnvironmentVariable(string name);

    /// <summary>True when <paramref name="path"/> is an existing directory this process can create files in.</summary>
    bool IsWritableDirectory(string path);

    /// <summary>Windows: the current user's SID (e.g. "S-1-5-21-…").</summary>
    string CurrentUserSid { get; }

    int CurrentProcessId { get; }

    /// <summary>Start time (UTC) of a running process, null when there is none with that id; throws when it cannot be told.</summary>
    DateTime? ProcessStartTimeUtc(int processId);

    /// <summary>Windows: creates the directory with exactly this ACL (never a moment with the inherited one).</summary>
    void CreateDirectoryWithAcl(string path, OwnerOnlyAcl acl);

    /// <summary>Windows: creates a new file with exactly this ACL and opens it for writing.</summary>
    Stream CreateFileWithAcl(string path, OwnerOnlyAcl acl);

    /// <summary>Unix: creates the directory with this mode (e.g. 0700).</summary>
    void CreateDirectoryWithMode(string path, UnixFileMode mode);

    /// <summary>Unix: creates a new file with this mode (e.g. 0600) and opens it for writing.</summary>
    Stream CreateFileWithMode(string path, UnixFileMode mode);

    /// <summary>The encoding console tools write their messages in (Windows: the console's OEM code page).</summary>
    Encoding ToolOutputEncoding { get; }
}

/// <summary>
/// Files and folders that hold secrets or plaintext exports (the PostgreSQL passfile, the MariaDB option file, export
/// folders, exported secret keys):
/// <list type="bullet">
/// <item>created owner-only: Unix 0700 folders / 0600 files; Windows an ACL with only the current user, inheritance
/// disabled;</item>
/// <item>temporary ones live where a reboot clears them (Linux: $XDG_RUNTIME_DIR, else /dev/shm, else the temp folder)
/// in a folder named <c>hubdr-&lt;pid&gt;-&lt;process start, Unix ms&gt;-&lt;random&gt;</c>, so a later run can tell HubDr's own
/// leftovers from a run that was killed (kill -9, power loss) and removes them (<see cref="CleanStale"/>).</item>
/// </list>
/// </summary>
public static partial class PrivateFiles
{
    private static readonly object Gate = new();
    private static readonly HashSet<string> Cleaned = new(StringComparer.Ordinal);

    /// <summary>The OS seam; tests may replace it (and must put it back).</summary>
    public static IPrivateFilePlatform Platform { get; set; } = new SystemPlatform();

    public const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Full control for the owner only, nothing inherited.</summary>
    public static OwnerOnlyAcl OwnerOnly(string ownerSid) => new(ownerSid, [new AclRule(ownerSid, "FullControl")], InheritanceDisabled: true);

    /// <summary>
    /// Where temporary secret folders go. Linux: $XDG_RUNTIME_DIR (a per-user tmpfs, 0700) when it is an existing
    /// writable folder, else /dev/shm (tmpfs) when writable, else the temp folder; elsewhere the temp folder (per
    /// user on Windows and macOS).
    /// </summary>
    public static string BaseDirectory()
    {
        var p = Platform;
        if (p.IsLinux)
        {
            var runtime = p.GetEnvironmentVariable("XDG_RUNTIME_DIR");
            if (!string.IsNullOrWhiteSpace(runtime) && Path.IsPathFullyQualified(runtime) && p.IsWritableDirectory(runtime))
            {
                return runtime;
            }

            if (p.IsWritableDirectory("/dev/shm"))
            {
                return "/dev/shm";
            }
        }

        return p.TempPath;
    }

    /// <summary>Name of a temporary private folder owned by process <paramref name="pid"/> started at <paramref name="started"/>.</summary>
    public static string FolderName(int pid, DateTime started, string random) =>
        $"hubdr-{pid.ToString(CultureInfo.InvariantCulture)}-{new DateTimeOffset(started, TimeSpan.Zero).ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)}-{random}";

    [GeneratedRegex(@"^hubdr-(?<pid>[0-9]{1,10})-(?<start>[0-9]{1,16})-[0-9a-f]{8,32}$", RegexOptions.CultureInvariant)]
    private static partial Regex FolderNameRegex();

    /// <summary>Creates a new owner-only temporary folder (see the class summary) after removing stale ones.</summary>
    public static string CreateTempDirectory()
    {
        var baseDir = BaseDirectory();
        CleanStaleOnce(baseDir);
        var p = Platform;
        var started = OwnStartTime();
        for (var attempt = 0; ; attempt++)
        {
            var path = Path.Combine(baseDir, FolderName(p.CurrentProcessId, started, Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8)).ToLowerInvariant()));
            try
            {
                CreateDirectory(path);
                return path;
            }
            catch (IOException) when (attempt < 3)
            {
                // name collision: try another random part
            }
        }
    }

    /// <summary>Creates one owner-only directory (the parent must exist).</summary>
    public static void CreateDirectory(string path)
    {
        var p = Platform;
        if (p.IsWindows)
        {
            p.CreateDirectoryWithAcl(path, OwnerOnly(p.CurrentUserSid));
        }
        else
        {
            p.CreateDirectoryWithMode(path, DirectoryMode);
        }
    }

    /// <summary>Creates a NEW owner-only file (fails if it exists) and opens it for writing.</summary>
    public static Stream CreateFile(string path)
    {
        var p = Platform;
        return p.IsWindows ? p.CreateFileWithAcl(path, OwnerOnly(p.CurrentUserSid)) : p.CreateFileWithMode(path, FileMode);
    }

    /// <summary>Writes a new owner-only file.</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> content)
    {
        using var fs = CreateFile(path);
        fs.Write(content);
    }

    /// <summary>Removes a private temporary folder and everything in it (best effort).</summary>
    public static void Delete(string path)
    {
        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>
    /// Removes HubDr's temporary private folders in <paramref name="baseDirectory"/> whose owner process is gone (or
    /// whose process id now belongs to a process that started later: the id was reused). Folders of running HubDr
    /// processes, folders not named by HubDr and folders it cannot remove are left alone. Returns the removed paths.
    /// </summary>
    public static IReadOnlyList<string> CleanStale(string baseDirectory)
    {
        var removed = new List<string>();
        IEnumerable<string> candidates;
        try
        {
            candidates = Directory.EnumerateDirectories(baseDirectory, "hubdr-*").ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return removed;
        }

        var p = Platform;
        foreach (var dir in candidates)
        {
            var m = FolderNameRegex().Match(Path.GetFileName(dir));
            if (!m.Success)
            {
                continue;
            }

            try
            {
                if (new DirectoryInfo(dir).LinkTarget is not null)
                {
                    continue; // never follow a link someone planted
                }

                var pid = int.Parse(m.Groups["pid"].Value, CultureInfo.InvariantCulture);
                var started = DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(m.Groups["start"].Value, CultureInfo.InvariantCulture)).UtcDateTime;
                DateTime? running;
                try
                {
                    running = p.ProcessStartTimeUtc(pid);
                }
                catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or UnauthorizedAccessException or NotSupportedException)
                {
                    continue; // cannot tell: keep it
                }

                if (running is { } r && Math.Abs((r - started).TotalSeconds) < 2)
                {
                    continue; // its owner still runs
                }

                Directory.Delete(dir, recursive: true);
                removed.Add(dir);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or OverflowException or ArgumentOutOfRangeException)
            {
                // someone else's, or just gone: leave it
            }
        }

        return removed;
    }

    /// <summary>At the start of every backup and restore: removes the leftovers of killed HubDr runs from <see cref="BaseDirectory"/> (best effort).</summary>
    public static void CleanStaleLeftovers()
    {
        try
        {
            var baseDirectory = BaseDirectory();
            lock (Gate)
            {
                Cleaned.Add(baseDirectory);
            }

            CleanStale(baseDirectory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    private static void CleanStaleOnce(string baseDirectory)
    {
        lock (Gate)
        {
            if (!Cleaned.Add(baseDirectory))
            {
                return;
            }
        }

        CleanStale(baseDirectory);
    }

    /// <summary>For tests: the next <see cref="CreateTempDirectory"/> cleans again.</summary>
    internal static void ResetCleaned()
    {
        lock (Gate)
        {
            Cleaned.Clear();
        }
    }

    private static DateTime OwnStartTime()
    {
        var p = Platform;
        try
        {
            return p.ProcessStartTimeUtc(p.CurrentProcessId) ?? DateTime.UtcNow;
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
        {
            return DateTime.UtcNow;
        }
    }

    /// <summary>The real operating system.</summary>
    public sealed class SystemPlatform : IPrivateFilePlatform
    {
        private Encoding? _toolEncoding;

        public bool IsWindows => OperatingSystem.IsWindows();

        public bool IsLinux => OperatingSystem.IsLinux();

        public string TempPath => Path.GetTempPath();

        public string? GetEnvironmentVariable(string name) => Environment.GetEnvironmentVariable(name);

        public bool IsWritableDirectory(string path)
        {
            try
            {
                var info = new DirectoryInfo(path);
                if (!info.Exists)
                {
                    return false;
                }

                if (OperatingSystem.IsWindows())
                {
                    return true;
                }

                return Access(path, 2 /* W_OK */ | 1 /* X_OK */) == 0;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or DllNotFoundException or EntryPointNotFoundException)
            {
                return false;
            }
        }

        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "access", SetLastError = true)]
        private static extern int Access([System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string path, int mode);

        public string CurrentUserSid => OperatingSystem.IsWindows() ? WindowsUserSid() : throw new PlatformNotSupportedException("SIDs exist on Windows only.");

        [SupportedOSPlatform("windows")]
        private static string WindowsUserSid()
        {
            using var identity = WindowsIdentity.GetCurrent();
            return identity.User?.Value ?? throw new InvalidOperationException("The current Windows user has no SID.");
        }

        public int CurrentProcessId => Environment.ProcessId;

        public DateTime? ProcessStartTimeUtc(int processId)
        {
            Process process;
            try
            {
                process = Process.GetProcessById(processId);
            }
            catch (ArgumentException)
            {
                return null; // no such process
            }

            using (process)
            {
                try
                {
                    if (process.HasExited)
                    {
                        return null;
                    }
                }
                catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
                {
                    // HasExited needs rights some processes deny; StartTime below decides.
                }

                return process.StartTime.ToUniversalTime();
            }
        }

        public void CreateDirectoryWithAcl(string path, OwnerOnlyAcl acl)
        {
            if (!OperatingSystem.IsWindows())
            {
                throw new PlatformNotSupportedException("ACLs are applied on Windows only.");
            }

            CreateWindowsDirectory(path, acl);
        }

        public Stream CreateFileWithAcl(string path, OwnerOnlyAcl acl)
        {
            if (!OperatingSystem.IsWindows())
            {
                throw new PlatformNotSupportedException("ACLs are applied on Windows only.");
            }

            return CreateWindowsFile(path, acl);
        }

        [SupportedOSPlatform("windows")]
        private static void CreateWindowsDirectory(string path, OwnerOnlyAcl acl)
        {
            var security = new DirectorySecurity();
            Apply(security, acl, InheritanceFlags.ContainerInherit | InheritanceFlags.ObjectInherit);
            if (Directory.Exists(path))
            {
                throw new IOException($"'{path}' already exists.");
            }

            new DirectoryInfo(path).Create(security);
        }

        [SupportedOSPlatform("windows")]
        private static FileStream CreateWindowsFile(string path, OwnerOnlyAcl acl)
        {
            var security = new FileSecurity();
            Apply(security, acl, InheritanceFlags.None);
            return new FileInfo(path).Create(System.IO.FileMode.CreateNew, FileSystemRights.Write | FileSystemRights.ReadData | FileSystemRights.Synchronize,
                FileShare.None, 4096, FileOptions.None, security);
        }

        [SupportedOSPlatform("windows")]
        private static void Apply(FileSystemSecurity security, OwnerOnlyAcl acl, InheritanceFlags inheritance)
        {
            security.SetAccessRuleProtection(isProtected: acl.InheritanceDisabled, preserveInheritance: false);
            security.SetOwner(new SecurityIdentifier(acl.Owner));
            foreach (var rule in acl.Rules)
            {
                security.AddAccessRule(new FileSystemAccessRule(new SecurityIdentifier(rule.Identity),
                    Enum.Parse<FileSystemRights>(rule.Rights), inheritance, PropagationFlags.None, AccessControlType.Allow));
            }
        }

        public void CreateDirectoryWithMode(string path, UnixFileMode mode)
        {
            if (OperatingSystem.IsWindows())
            {
                throw new PlatformNotSupportedException("Unix modes do not apply on Windows.");
            }

            if (Directory.Exists(path))
            {
                throw new IOException($"'{path}' already exists.");
            }

            Directory.CreateDirectory(path, mode);
            if (new DirectoryInfo(path).LinkTarget is not null)
            {
                throw new IOException($"'{path}' is a link; refusing to use it.");
            }

            // The umask may have taken bits away, never added them; make it exact.
            File.SetUnixFileMode(path, mode);
        }

        public Stream CreateFileWithMode(string path, UnixFileMode mode)
        {
            var options = new FileStreamOptions { Mode = System.IO.FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = mode;
            }

            return new FileStream(path, options);
        }

        public Encoding ToolOutputEncoding => _toolEncoding ??= DecideToolEncoding();

        private static Encoding DecideToolEncoding()
        {
            if (!OperatingSystem.IsWindows())
            {
                return new UTF8Encoding(false);
            }

            // Console tools on Windows (pg_dump.exe, mariadb-dump.exe) write messages in the console's (OEM) code page.
            var cp = CultureInfo.CurrentCulture.TextInfo.OEMCodePage;
            try
            {
                var console = Console.OutputEncoding.CodePage;
                if (console > 0)
                {
                    cp = console;
                }
            }
            catch (IOException)
            {
                // no console: the OEM code page of the culture
            }

            return ToolProcessEncoding.ForCodePage(cp);
        }
    }
}

/// <summary>Code pages for tool output (the legacy OEM code pages need the code-pages provider).</summary>
public static class ToolProcessEncoding
{
    private static int _registered;

    public static Encoding ForCodePage(int codePage)
    {
        if (codePage == 65001)
        {
            return new UTF8Encoding(false);
        }

        if (Interlocked.Exchange(ref _registered, 1) == 0)
        {
            Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);
        }

        try
        {
            return Encoding.GetEncoding(codePage);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            return new UTF8Encoding(false);
        }
    }
}
