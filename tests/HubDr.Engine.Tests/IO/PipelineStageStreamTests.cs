using System.Security.Cryptography;
using HubDr.Engine.IO;
using Xunit;

namespace HubDr.Engine.Tests.IO;

public class PipelineStageStreamTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4096)]
    [InlineData(3 * 1024 * 1024 + 17)]
    public void PassesEveryByteInOrder(int size)
    {
        var data = RandomNumberGenerator.GetBytes(size);
        using var sink = new MemoryStream();
        using (var stage = new PipelineStageStream(sink, bufferSize: 64 * 1024, depth: 2))
        {
            var rnd = new Random(size);
            for (var i = 0; i < data.Length;)
            {
                var n = Math.Min(rnd.Next(1, 100_000), data.Length - i);
                stage.Write(data, i, n);
                i += n;
            }

            stage.Complete();
        }

        Assert.Equal(data, sink.ToArray());
    }

    [Fact]
    public void DownstreamFailureSurfacesToTheWriter()
    {
        using var failing = new FailingStream(afterBytes: 200_000);
        var stage = new PipelineStageStream(failing, bufferSize: 64 * 1024, depth: 2);
        var ex = Record.Exception(() =>
        {
            var chunk = new byte[50_000];
            for (var i = 0; i < 1000; i++)
            {
                stage.Write(chunk);
            }

            stage.Complete();
        });
        Assert.IsType<IOException>(ex);
        stage.Dispose();
    }

    private sealed class FailingStream(long afterBytes) : MemoryStream
    {
        private long _written;

        public override void Write(byte[] buffer, int offset, int count)
        {
            _written += count;
            if (_written > afterBytes)
            {
                throw new IOException("disk full (simulated by the test)");
            }
        }
    }
}
