using System.Formats.Tar;
using HubDr.Engine.Databases.Postgres.Pitr;
using Xunit;

namespace HubDr.Engine.Tests.Pitr;

/// <summary>The base backup's inner tar is extracted safely even if a signed archive carried a hostile one.</summary>
public sealed class SafeExtractionTests
{
    private static MemoryStream Tar(Action<TarWriter> write)
    {
        var ms = new MemoryStream();
        using (var w = new TarWriter(ms, TarEntryFormat.Pax, leaveOpen: true))
        {
            write(w);
        }

        ms.Position = 0;
        return ms;
    }

    private static void File(TarWriter w, string name, string content)
    {
        var e = new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(content)) };
        w.WriteEntry(e);
    }

    [Fact]
    public void RegularFilesAndDirectoriesAreExtractedPrivately()
    {
        var dir = Directory.CreateTempSubdirectory("hubdr-extract-").FullName;
        try
        {
            var n = PitrRestoreService.ExtractClusterTar(Tar(w =>
            {
                w.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "base/"));
                File(w, "PG_VERSION", "15\n");
                File(w, "base/1/1259", "heap");
            }), dir, null);
            Assert.Equal(2, n);
            Assert.Equal("heap", System.IO.File.ReadAllText(Path.Combine(dir, "base", "1", "1259")));
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, System.IO.File.GetUnixFileMode(Path.Combine(dir, "PG_VERSION")));
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, System.IO.File.GetUnixFileMode(Path.Combine(dir, "base")));
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Theory]
    [InlineData("dotdot")]
    [InlineData("absolute")]
    [InlineData("symlink")]
    [InlineData("hardlink")]
    public void EscapesAndLinksAreRefused(string kind)
    {
        var dir = Directory.CreateTempSubdirectory("hubdr-extract-").FullName;
        var outside = Path.Combine(Path.GetDirectoryName(dir)!, "escaped-" + Guid.NewGuid().ToString("N"));
        try
        {
            var tar = Tar(w =>
            {
                File(w, "PG_VERSION", "15\n");
                switch (kind)
                {
                    case "dotdot":
                        File(w, "base/../../" + Path.GetFileName(outside), "x");
                        break;
                    case "absolute":
                        File(w, outside, "x");
                        break;
                    case "symlink":
                        w.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "pg_tblspc/16384") { LinkName = Path.GetDirectoryName(dir)! });
                        break;
                    default:
                        w.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, "global/pg_control") { LinkName = "/etc/passwd" });
                        break;
                }
            });
            var e = Assert.Throws<HubDrException>(() => PitrRestoreService.ExtractClusterTar(tar, dir, null));
            Assert.Equal("ArchiveUnsafeEntry", e.ErrorId);
            Assert.False(System.IO.File.Exists(outside));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
