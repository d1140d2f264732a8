using System.Diagnostics;
using System.Text;
using HubDr.Engine.Databases;
using HubDr.Engine.IO;
using Xunit;

namespace HubDr.Engine.Tests.IO;

/// <summary>
/// Secret files: owner-only, on a folder a reboot clears, recognisable and removed when stale. The Windows decisions run
/// here through the platform seam (a recording platform that says "Windows"); the Unix path runs for real.
/// Serialized with the database tests: <see cref="PrivateFiles.Platform"/> is process-wide.
/// </summary>
[Collection("DatabaseServers")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class PrivateFilesTests : IDisposable
{
    private readonly IPrivateFilePlatform _saved = PrivateFiles.Platform;
    private readonly string _root = Directory.CreateTempSubdirectory("hubdr-pf-test-").FullName;

    public void Dispose()
    {
        PrivateFiles.Platform = _saved;
        PrivateFiles.ResetCleaned();
        Directory.Delete(_root, recursive: true);
    }

    /// <summary>Delegates to the real system, with the decisions' inputs overridable.</summary>
    private class Overriding(string? runtimeDir = null, bool? shmWritable = null, string? temp = null) : IPrivateFilePlatform
    {
        protected static readonly PrivateFiles.SystemPlatform Real = new();
        public virtual bool IsWindows => Real.IsWindows;
        public virtual bool IsLinux => Real.IsLinux;
        public string TempPath => temp ?? Real.TempPath;
        public string? GetEnvironmentVariable(string name) => name == "XDG_RUNTIME_DIR" ? runtimeDir : Real.GetEnvironmentVariable(name);
        public bool IsWritableDirectory(string path) => path == "/dev/shm" && shmWritable is { } w ? w : Real.IsWritableDirectory(path);
        public virtual string CurrentUserSid => "S-1-5-21-1111111111-2222222222-3333333333-1001";
        public int CurrentProcessId => Real.CurrentProcessId;
        public DateTime? ProcessStartTimeUtc(int processId) => Real.ProcessStartTimeUtc(processId);
        public virtual void CreateDirectoryWithAcl(string path, OwnerOnlyAcl acl) => Real.CreateDirectoryWithAcl(path, acl);
        public virtual Stream CreateFileWithAcl(string path, OwnerOnlyAcl acl) => Real.CreateFileWithAcl(path, acl);
        public virtual void CreateDirectoryWithMode(string path, UnixFileMode mode) => Real.CreateDirectoryWithMode(path, mode);
        public virtual Stream CreateFileWithMode(string path, UnixFileMode mode) => Real.CreateFileWithMode(path, mode);
        public virtual Encoding ToolOutputEncoding => Real.ToolOutputEncoding;
    }

    /// <summary>Says "Windows" and records what the ACL builder is asked for (creating plain files so the flow goes on).</summary>
    private sealed class RecordingWindows(string temp) : Overriding(temp: temp)
    {
        public List<(string Path, OwnerOnlyAcl Acl, bool Directory)> AclCalls { get; } = [];
        public int UnixCalls { get; private set; }
        public override bool IsWindows => true;
        public override bool IsLinux => false;
        public override void CreateDirectoryWithAcl(string path, OwnerOnlyAcl acl) { AclCalls.Add((path, acl, true)); Directory.CreateDirectory(path); }
        public override Stream CreateFileWithAcl(string path, OwnerOnlyAcl acl) { AclCalls.Add((path, acl, false)); return new FileStream(path, FileMode.CreateNew, FileAccess.Write); }
        public override void CreateDirectoryWithMode(string path, UnixFileMode mode) { UnixCalls++; base.CreateDirectoryWithMode(path, mode); }
        public override Stream CreateFileWithMode(string path, UnixFileMode mode) { UnixCalls++; return base.CreateFileWithMode(path, mode); }
        public Encoding Encoding { get; set; } = Encoding.UTF8;
        public override Encoding ToolOutputEncoding => Encoding;
    }

    [Fact]
    public void OnWindowsEverySecretFolderAndFileGetsAnOwnerOnlyAclWithoutInheritance()
    {
        var win = new RecordingWindows(_root);
        PrivateFiles.Platform = win;
        string path;
        using (var secret = new SecretFile("*:*:*:*:pw\n", "pgpass"))
        {
            path = secret.FilePath;
            Assert.Equal("*:*:*:*:pw\n", File.ReadAllText(path));
        }

        var exportDir = PrivateFiles.CreateTempDirectory();
        PrivateFiles.Delete(exportDir);
        var key = Path.Combine(_root, "key.sec.asc");
        PrivateFiles.WriteAllBytes(key, "secret key"u8);

        Assert.Equal(0, win.UnixCalls);
        Assert.Equal(4, win.AclCalls.Count); // passfile folder + passfile, export folder, key file
        Assert.Equal([true, false, true, false], win.AclCalls.Select(c => c.Directory));
        Assert.Equal(path, win.AclCalls[1].Path);
        Assert.Equal(key, win.AclCalls[3].Path);
        foreach (var (_, acl, _) in win.AclCalls)
        {
            Assert.True(acl.InheritanceDisabled);
            Assert.Equal(win.CurrentUserSid, acl.Owner);
            var rule = Assert.Single(acl.Rules);
            Assert.Equal(new AclRule(win.CurrentUserSid, "FullControl"), rule);
        }

        Assert.False(File.Exists(path));
        Assert.False(Directory.Exists(Path.GetDirectoryName(path)));
        // On Windows the temp folder is used (per user), never /dev/shm.
        Assert.StartsWith(_root, path, StringComparison.Ordinal);
    }

    [Fact]
    public void OnUnixTheSecretFileIs0600InA0700FolderOnTmpfsAndNamedForItsOwnerProcess()
    {
        PrivateFiles.Platform = new Overriding(runtimeDir: null);
        using var secret = new SecretFile("secret", "my.cnf");
        var dir = Path.GetDirectoryName(secret.FilePath)!;
        Assert.Equal("/dev/shm", Path.GetDirectoryName(dir));
        Assert.Matches($"^hubdr-{Environment.ProcessId}-[0-9]+-[0-9a-f]{{16}}$", Path.GetFileName(dir));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dir));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(secret.FilePath));
    }

    [Fact]
    public void TheBaseFolderIsTheRuntimeDirThenDevShmThenTemp()
    {
        var runtime = Directory.CreateDirectory(Path.Combine(_root, "run-user")).FullName;
        PrivateFiles.Platform = new Overriding(runtimeDir: runtime);
        Assert.Equal(runtime, PrivateFiles.BaseDirectory());
        PrivateFiles.Platform = new Overriding(runtimeDir: Path.Combine(_root, "missing"));
        Assert.Equal("/dev/shm", PrivateFiles.BaseDirectory());
        PrivateFiles.Platform = new Overriding(runtimeDir: "relative/dir");
        Assert.Equal("/dev/shm", PrivateFiles.BaseDirectory());
        PrivateFiles.Platform = new Overriding(runtimeDir: null, shmWritable: false, temp: _root);
        Assert.Equal(_root, PrivateFiles.BaseDirectory());

        PrivateFiles.Platform = new Overriding(runtimeDir: runtime);
        using var secret = new SecretFile("x", "pgpass");
        Assert.StartsWith(runtime + "/hubdr-", secret.FilePath, StringComparison.Ordinal);
    }

    [Fact]
    public void StaleFoldersOfDeadOrReplacedProcessesAreRemovedLiveOnesAndForeignOnesKept()
    {
        using var sleeper = Process.Start("sleep", "60");
        var started = sleeper.StartTime.ToUniversalTime();
        string Make(string name)
        {
            var d = Directory.CreateDirectory(Path.Combine(_root, name)).FullName;
            File.WriteAllText(Path.Combine(d, "pgpass"), "secret");
            return d;
        }

        var live = Make(PrivateFiles.FolderName(sleeper.Id, started, "0123456789abcdef"));
        var reused = Make(PrivateFiles.FolderName(sleeper.Id, started.AddMinutes(-30), "1123456789abcdef"));
        var foreign = Make("hubdr-notours");
        var other = Make("something-else");
        var removed = PrivateFiles.CleanStale(_root);
        Assert.Equal([reused], removed);
        Assert.True(Directory.Exists(live));

        sleeper.Kill();
        sleeper.WaitForExit();
        removed = PrivateFiles.CleanStale(_root);
        Assert.Equal([live], removed);
        Assert.False(Directory.Exists(live));
        Assert.True(Directory.Exists(foreign));
        Assert.True(Directory.Exists(other));
    }

    [Fact]
    public async Task ToolStandardErrorIsDecodedWithThePlatformsToolEncoding()
    {
        // What pg_dump.exe on a German Windows console writes: "é" as OEM code page 850 byte 0x82.
        var win = new RecordingWindows(_root) { Encoding = ToolProcessEncoding.ForCodePage(850) };
        PrivateFiles.Platform = win;
        using var p = ToolProcess.Start("/bin/sh", ["-c", "printf 'caf\\202 \\344chec\\n' >&2"], null, redirectStdin: false);
        await p.WaitForExitAsync(CancellationToken.None);
        Assert.Equal("café õchec", p.StandardErrorText);
    }
}
