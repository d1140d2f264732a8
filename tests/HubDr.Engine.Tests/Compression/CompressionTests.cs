using System.Text;
using HubDr.Engine.Compression;
using HubDr.Engine.Tests.Archive;
using Xunit;

namespace HubDr.Engine.Tests.Compression;

public class CompressionTests
{
    private static byte[] Sample(int size)
    {
        var sb = new StringBuilder();
        var rnd = new Random(5);
        while (sb.Length < size)
            sb.Append("INSERT INTO \"t\" VALUES(").Append(rnd.Next()).Append(",'").Append(Guid.NewGuid()).Append("','{\"k\":\"ü\"}');\n");
        byte[] text = Encoding.UTF8.GetBytes(sb.ToString());
        byte[] noise = TestUtil.RandomBytes(size / 10, 6);
        return text.Concat(noise).ToArray();
    }

    [Fact]
    public void RegistryKnowsTheFormats()
    {
        Assert.Equal(new[] { "zstd", "gzip", "none" }, Compressors.All.Select(c => c.Name));
        Assert.Equal("zstd", Compressors.Get("").Name);
        Assert.Equal(Compressors.Default, Compressors.Get(Compressors.Default).Name);
        Assert.Equal(".zst", Compressors.Get("ZSTD").Extension);
        Assert.Equal(".gz", Compressors.Get("gzip").Extension);
        Assert.Equal("", Compressors.Get("none").Extension);
        var ex = Assert.Throws<HubDrException>(() => Compressors.Get("lz4"));
        Assert.Equal("CompressionUnsupported", ex.ErrorId);
        Assert.Equal(HubErrorCategory.InvalidArgument, ex.Category);
        Assert.Equal("CompressionLevelInvalid", Assert.Throws<HubDrException>(() => Compressors.Get("gzip").Compress(new MemoryStream(), 12)).ErrorId);
        Assert.Equal("CompressionLevelInvalid", Assert.Throws<HubDrException>(() => Compressors.Get("zstd").Compress(new MemoryStream(), 30)).ErrorId);
    }

    [Theory]
    [InlineData("gzip", null)]
    [InlineData("gzip", 1)]
    [InlineData("gzip", 9)]
    [InlineData("zstd", null)]
    [InlineData("zstd", 1)]
    [InlineData("zstd", 6)]
    [InlineData("none", null)]
    public void RoundTripAndLeavesStreamsOpen(string name, int? level)
    {
        var c = Compressors.Get(name);
        foreach (int size in new[] { 0, 1, 3_000_000 })
        {
            byte[] input = Sample(size);
            var compressed = new MemoryStream();
            using (var s = c.Compress(new NonSeekableStream(compressed), level))
                for (int off = 0; off < input.Length; off += 65536) s.Write(input, off, Math.Min(65536, input.Length - off));
            Assert.True(compressed.CanWrite); // output left open
            if (name != "none" && size > 1000) Assert.True(compressed.Length < input.Length * 0.8, $"{name} did not compress");
            compressed.Position = 0;
            var back = new MemoryStream();
            using (var d = c.Decompress(new NonSeekableStream(compressed))) d.CopyTo(back);
            Assert.True(compressed.CanRead);
            Assert.Equal(input, back.ToArray());
        }
    }

    [Theory]
    [InlineData("gzip", "gzip")]
    [InlineData("zstd", "zstd")]
    public void CommandLineToolsReadOurOutput(string name, string tool)
    {
        string dir = TestUtil.TempDir();
        try
        {
            byte[] input = Sample(5_000_000);
            string file = Path.Combine(dir, "data" + Compressors.Get(name).Extension);
            using (var fs = File.Create(file))
            using (var s = Compressors.Get(name).Compress(fs, null))
                s.Write(input);
            TestUtil.RunOk("sh", dir, "-c", $"{tool} -dc {Path.GetFileName(file)} > out.bin");
            Assert.Equal(input, File.ReadAllBytes(Path.Combine(dir, "out.bin")));
            // and we read what the tool wrote
            File.WriteAllBytes(Path.Combine(dir, "in.bin"), input);
            TestUtil.RunOk("sh", dir, "-c", $"{tool} -c in.bin > tool{Compressors.Get(name).Extension}");
            using var ts = File.OpenRead(Path.Combine(dir, "tool" + Compressors.Get(name).Extension));
            using var d = Compressors.Get(name).Decompress(ts);
            var back = new MemoryStream();
            d.CopyTo(back);
            Assert.Equal(input, back.ToArray());
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData("zstd", "--zstd")]
    [InlineData("gzip", "-z")]
    [InlineData("none", "")]
    public void GnuTarExtractsCompressedArchive(string name, string tarFlag)
    {
        string dir = TestUtil.TempDir();
        try
        {
            byte[] dump = Sample(300_000);
            var c = Compressors.Get(name);
            string file = Path.Combine(dir, "backup.tar" + c.Extension);
            using (var fs = File.Create(file))
            using (var z = c.Compress(new NonSeekableStream(fs), null))
            using (var w = new HubDr.Engine.Archive.ArchiveWriter(z, DateTimeOffset.UtcNow, 64 * 1024))
            {
                w.AddBytes("manifest.json", "{}"u8);
                using (var part = w.OpenChunked("db/dump.sql")) part.Write(dump);
                w.Finish();
            }
            string x = Path.Combine(dir, "x");
            Directory.CreateDirectory(x);
            var args = new List<string> { "-x" };
            if (tarFlag.Length > 0) args.Add(tarFlag);
            args.AddRange(new[] { "-f", file });
            TestUtil.RunOk("tar", x, args.ToArray());
            TestUtil.RunOk("sh", x, "-c", "cat db/dump.sql.part-* > ../joined");
            Assert.Equal(dump, File.ReadAllBytes(Path.Combine(dir, "joined")));
            Assert.Equal((dump.Length + 65535) / 65536, Directory.GetFiles(Path.Combine(x, "db")).Length);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void ZstdTruncatedInputFails()
    {
        byte[] input = Sample(2_000_000);
        var ms = new MemoryStream();
        using (var s = Compressors.Get("zstd").Compress(ms, null)) s.Write(input);
        byte[] cut = ms.ToArray().AsSpan(0, (int)ms.Length / 2).ToArray();
        Assert.ThrowsAny<Exception>(() =>
        {
            using var d = Compressors.Get("zstd").Decompress(new MemoryStream(cut));
            d.CopyTo(Stream.Null);
        });
    }
}
