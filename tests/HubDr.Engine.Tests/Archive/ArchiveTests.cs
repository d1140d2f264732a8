using System.Security.Cryptography;
using System.Text;
using HubDr.Engine.Archive;
using Xunit;

namespace HubDr.Engine.Tests.Archive;

public class ArchiveTests
{
    private const int PartSize = 4096;
    private static readonly DateTimeOffset When = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
    private static readonly string LongName = "config/" + new string('d', 60) + "/" + new string('f', 80) + ".json";
    private const string UnicodeName = "config/fläg-ü.json";

    private static string Sha(byte[] b) => Convert.ToHexString(SHA256.HashData(b)).ToLowerInvariant();

    private sealed record Built(byte[] Tar, ChunkedResult Dump);
    private sealed record ChunkedResult(IReadOnlyList<ArchiveEntryInfo> Parts, long Total);

    private static Built Build(byte[] dump, int writeSize = 777)
    {
        using var ms = new MemoryStream();
        ChunkedResult result;
        using (var w = new ArchiveWriter(new NonSeekableStream(ms), When, PartSize))
        {
            var info = w.AddBytes("manifest.json", "{\"a\":1}"u8);
            Assert.Equal(Sha(Encoding.UTF8.GetBytes("{\"a\":1}")), info.Sha256);
            w.AddBytes(LongName, Encoding.UTF8.GetBytes("long"));
            w.AddBytes(UnicodeName, Encoding.UTF8.GetBytes("unicode"));
            using (var c = w.OpenChunked("db/dump.sql"))
            {
                for (int off = 0; off < dump.Length; off += writeSize)
                    c.Write(dump, off, Math.Min(writeSize, dump.Length - off));
                c.Dispose();
                result = new ChunkedResult(c.Parts, c.TotalLength);
            }
            w.AddBytes("after.json", "[]"u8);
            w.Finish();
            w.Finish(); // idempotent
        }
        return new Built(ms.ToArray(), result);
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(1, 1)]
    [InlineData(PartSize - 1, 1)]
    [InlineData(PartSize, 1)]
    [InlineData(PartSize + 1, 2)]
    [InlineData(5 * PartSize + 17, 6)]
    [InlineData(12 * PartSize, 12)]
    public void GnuTarExtractsAndCatReassembles(int size, int expectedParts)
    {
        byte[] dump = TestUtil.RandomBytes(size, size);
        var built = Build(dump);
        Assert.Equal(expectedParts, built.Dump.Parts.Count);
        Assert.Equal(size, built.Dump.Total);
        Assert.Equal(0, built.Tar.Length % 512);
        for (int i = 0; i < expectedParts; i++)
        {
            Assert.Equal($"db/dump.sql.part-{i:D6}", built.Dump.Parts[i].Name);
            Assert.Equal(i < expectedParts - 1 ? PartSize : size - (expectedParts - 1) * PartSize, built.Dump.Parts[i].Size);
            Assert.Equal(Sha(dump.AsSpan(i * PartSize, (int)built.Dump.Parts[i].Size).ToArray()), built.Dump.Parts[i].Sha256);
        }

        string dir = TestUtil.TempDir();
        try
        {
            File.WriteAllBytes(Path.Combine(dir, "a.tar"), built.Tar);
            string list = TestUtil.RunOk("tar", dir, "-tvf", "a.tar");
            Assert.Contains(LongName, list);
            Assert.Contains(UnicodeName, list);
            Assert.Contains("2026-01-02", list);
            var (exit, _, err) = TestUtil.Run("tar", dir, "-tf", "a.tar");
            Assert.Equal(0, exit);
            Assert.DoesNotContain("warning", err, StringComparison.OrdinalIgnoreCase);
            string x = Path.Combine(dir, "x");
            Directory.CreateDirectory(x);
            TestUtil.RunOk("tar", x, "-xf", "../a.tar");
            Assert.Equal("long", File.ReadAllText(Path.Combine(x, LongName)));
            Assert.Equal("unicode", File.ReadAllText(Path.Combine(x, UnicodeName)));
            Assert.Equal("{\"a\":1}", File.ReadAllText(Path.Combine(x, "manifest.json")));
            TestUtil.RunOk("sh", x, "-c", "cat db/dump.sql.part-* > ../joined");
            Assert.Equal(dump, File.ReadAllBytes(Path.Combine(dir, "joined")));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(PartSize)]
    [InlineData(7 * PartSize + 300)]
    public void ReaderRoundTrip(int size)
    {
        byte[] dump = TestUtil.RandomBytes(size, 42 + size);
        var built = Build(dump, writeSize: 1000);
        using var r = new ArchiveReader(new NonSeekableStream(new MemoryStream(built.Tar)));
        var names = new List<string>();
        byte[]? restored = null;
        ArchiveEntry? e = r.Next();
        while (e != null)
        {
            names.Add(e.Name);
            if (e.Name == "db/dump.sql.part-000000")
            {
                using var s = new SequentialPartsStream(r, e);
                using var ms = new MemoryStream();
                s.CopyTo(ms, 333);
                s.Verify(built.Dump.Parts, built.Dump.Total);
                restored = ms.ToArray();
                e = s.Pending; // the entry after the last part
                continue;
            }
            else if (e.Name == "manifest.json")
            {
                Assert.Equal("{\"a\":1}", new StreamReader(e.Content).ReadToEnd());
            }
            else if (e.Name == UnicodeName)
            {
                Assert.Equal("unicode", new StreamReader(e.Content).ReadToEnd());
            }
            // other entries deliberately left unread: Next() must skip them
            e = r.Next();
        }
        Assert.Null(r.Next());
        Assert.Equal(dump, restored);
        Assert.Equal(new[] { "manifest.json", LongName, UnicodeName, "db/dump.sql.part-000000", "after.json" }, names);
    }

    [Fact]
    public void ReaderReadsGnuTarArchives()
    {
        string dir = TestUtil.TempDir();
        try
        {
            Directory.CreateDirectory(Path.Combine(dir, "src/sub"));
            File.WriteAllText(Path.Combine(dir, "src/sub/" + new string('n', 150)), "gnu-long");
            File.WriteAllText(Path.Combine(dir, "src/a.txt"), "hello");
            foreach (var fmt in new[] { "gnu", "posix", "ustar" })
            {
                if (fmt == "ustar") File.Delete(Path.Combine(dir, "src/sub/" + new string('n', 150)));
                TestUtil.RunOk("tar", dir, "--format=" + fmt, "-cf", fmt + ".tar", "src");
                using var r = new ArchiveReader(new NonSeekableStream(File.OpenRead(Path.Combine(dir, fmt + ".tar"))));
                var seen = new Dictionary<string, string>();
                for (var e = r.Next(); e != null; e = r.Next())
                    seen[e.Name] = e.IsDirectory ? "<dir>" : new StreamReader(e.Content).ReadToEnd();
                Assert.Equal("<dir>", seen["src"]);
                Assert.Equal("hello", seen["src/a.txt"]);
                if (fmt != "ustar") Assert.Equal("gnu-long", seen["src/sub/" + new string('n', 150)]);
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void CorruptedPartIsDetected()
    {
        byte[] dump = TestUtil.RandomBytes(3 * PartSize + 5, 7);
        var built = Build(dump);
        byte[] tar = (byte[])built.Tar.Clone();
        // flip one byte of the second part's data
        int idx = IndexOf(tar, Encoding.ASCII.GetBytes("db/dump.sql.part-000001"));
        tar[idx + 512 + 100] ^= 0xFF;
        var ex = Assert.Throws<HubDrException>(() => ReadDump(tar, built.Dump.Parts, built.Dump.Total));
        Assert.Equal("ArchiveEntryChecksumMismatch", ex.ErrorId);
        Assert.Equal(HubErrorCategory.InvalidData, ex.Category);

        // intact archive but a manifest with another total size
        ex = Assert.Throws<HubDrException>(() => ReadDump(built.Tar, built.Dump.Parts, built.Dump.Total + 1));
        Assert.Equal("ArchiveEntryChecksumMismatch", ex.ErrorId);

        // manifest expects one more part than the archive has
        var more = built.Dump.Parts.Append(new ArchiveEntryInfo("db/dump.sql.part-000004", 1, new string('0', 64))).ToList();
        ex = Assert.Throws<HubDrException>(() => ReadDump(built.Tar, more, built.Dump.Total + 1));
        Assert.Equal("ArchivePartMissing", ex.ErrorId);

        Assert.Equal(dump, ReadDump(built.Tar, built.Dump.Parts, built.Dump.Total));
    }

    private static byte[] ReadDump(byte[] tar, IReadOnlyList<ArchiveEntryInfo> parts, long total)
    {
        using var r = new ArchiveReader(new MemoryStream(tar));
        for (var e = r.Next(); e != null; e = r.Next())
        {
            if (e.Name != parts[0].Name) continue;
            using var s = new SequentialPartsStream(r, e);
            using var ms = new MemoryStream();
            s.CopyTo(ms);
            s.Verify(parts, total);
            return ms.ToArray();
        }
        throw new Xunit.Sdk.XunitException("dump not found");
    }

    private static int IndexOf(byte[] hay, byte[] needle)
    {
        for (int i = 0; i <= hay.Length - needle.Length; i++)
            if (hay.AsSpan(i, needle.Length).SequenceEqual(needle)) return i;
        throw new Xunit.Sdk.XunitException("not found");
    }

    [Fact]
    public void TruncatedArchiveIsRejected()
    {
        byte[] dump = TestUtil.RandomBytes(3 * PartSize + 5, 9);
        var built = Build(dump);
        int endBlocks = built.Tar.Length - 1024;
        // cut inside a header, inside data, exactly at an entry boundary (no end blocks), and one byte short
        foreach (int cut in new[] { 100, 512 + 3, 2 * 512 + 10, built.Tar.Length / 2, endBlocks, endBlocks - 512, built.Tar.Length - 1025 })
        {
            byte[] t = built.Tar.AsSpan(0, cut).ToArray();
            var ex = Assert.Throws<HubDrException>(() => DrainAll(t));
            Assert.Equal("ArchiveTruncated", ex.ErrorId);
            Assert.Equal(HubErrorCategory.InvalidData, ex.Category);
        }
        DrainAll(built.Tar); // the whole archive is fine
    }

    private static void DrainAll(byte[] tar)
    {
        using var r = new ArchiveReader(new NonSeekableStream(new MemoryStream(tar)));
        for (var e = r.Next(); e != null; e = r.Next()) e.Content.CopyTo(Stream.Null);
    }

    [Theory]
    [InlineData("absolute")]
    [InlineData("dotdot")]
    [InlineData("symlink")]
    [InlineData("hardlink")]
    [InlineData("fifo")]
    [InlineData("backslash")]
    [InlineData("drive")]
    public void UnsafeEntriesFromGnuTarAreRejected(string kind)
    {
        string dir = TestUtil.TempDir();
        try
        {
            string w = Path.Combine(dir, "work");
            Directory.CreateDirectory(w);
            File.WriteAllText(Path.Combine(dir, "outside.txt"), "x");
            File.WriteAllText(Path.Combine(w, "ok.txt"), "fine");
            string[] members = kind switch
            {
                "absolute" => new[] { "-P", "ok.txt", Path.Combine(dir, "outside.txt") },
                "dotdot" => new[] { "-P", "ok.txt", "../outside.txt" },
                "symlink" => Prep(() => File.CreateSymbolicLink(Path.Combine(w, "link"), "/etc/passwd"), "ok.txt", "link"),
                "hardlink" => Prep(() => TestUtil.RunOk("ln", w, "ok.txt", "hard.txt"), "ok.txt", "hard.txt"),
                "fifo" => Prep(() => TestUtil.RunOk("mkfifo", w, "pipe"), "ok.txt", "pipe"),
                "backslash" => Prep(() => File.WriteAllText(Path.Combine(w, "a\\b.txt"), "b"), "--no-unquote", "ok.txt", "a\\b.txt"),
                "drive" => Prep(() => File.WriteAllText(Path.Combine(w, "C:evil.txt"), "c"), "ok.txt", "C:evil.txt"),
                _ => throw new ArgumentException(kind),
            };
            TestUtil.RunOk("tar", w, new[] { "-cf", "../a.tar" }.Concat(members).ToArray());
            string listing = TestUtil.RunOk("tar", dir, "-tvf", "a.tar");
            Assert.Contains("ok.txt", listing);

            using var r = new ArchiveReader(File.OpenRead(Path.Combine(dir, "a.tar")));
            var first = r.Next();
            Assert.Equal("ok.txt", first!.Name);
            var ex = Assert.Throws<HubDrException>(() => r.Next());
            Assert.Equal("ArchiveUnsafeEntry", ex.ErrorId);
            Assert.Equal(HubErrorCategory.InvalidData, ex.Category);
        }
        finally { Directory.Delete(dir, true); }
    }

    private static string[] Prep(Action a, params string[] members)
    {
        a();
        return members;
    }

    [Fact]
    public void WriterRefusesUnsafeNamesAndMisuse()
    {
        using var ms = new MemoryStream();
        using var w = new ArchiveWriter(ms, When, PartSize);
        Assert.Throws<ArgumentException>(() => w.AddBytes("/etc/passwd", "x"u8));
        Assert.Throws<ArgumentException>(() => w.AddBytes("a/../../b", "x"u8));
        var c = w.OpenChunked("db/dump.sql");
        Assert.Throws<InvalidOperationException>(() => w.AddBytes("x.json", "x"u8));
        Assert.Throws<InvalidOperationException>(() => w.Finish());
        c.Dispose();
        w.Finish();
        Assert.Throws<InvalidOperationException>(() => w.AddBytes("x.json", "x"u8));
    }

    [Fact]
    public void ChunkedEntryHashesEveryPart()
    {
        var data = new byte[2500];
        new Random(5).NextBytes(data);
        var tar = new MemoryStream();
        ChunkedEntryStream c;
        using (var w = new ArchiveWriter(tar, DateTimeOffset.UnixEpoch, partSize: 1024))
        {
            using (c = w.OpenChunked("db/dump.sql"))
            {
                c.Write(data);
            }

            w.Finish();
        }

        Assert.Equal(2500, c.TotalLength);
        Assert.Equal(new long[] { 1024, 1024, 452 }, c.Parts.Select(p => p.Size));
        Assert.Equal(Sha(data.AsSpan(1024, 1024).ToArray()), c.Parts[1].Sha256);
        Assert.Equal(Sha(data.AsSpan(2048).ToArray()), c.Parts[2].Sha256);
    }
}
