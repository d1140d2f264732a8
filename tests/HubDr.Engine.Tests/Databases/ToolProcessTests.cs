using HubDr.Engine.Databases;
using Xunit;

namespace HubDr.Engine.Tests.Databases;

public sealed class ToolProcessTests
{
    [Fact]
    public async Task ToolPipesAreEnlargedToOneMebibyteOnLinuxAndStillCarryTheData()
    {
        using var p = ToolProcess.Start("cat", [], null, redirectStdin: true);
        var expected = OperatingSystem.IsLinux() ? ToolProcess.PipeCapacity : -1;
        Assert.Equal(expected, ToolProcess.PipeSize(p.StandardOutput));
        Assert.Equal(expected, ToolProcess.PipeSize(p.StandardInput));

        var data = new byte[(3 * ToolProcess.PipeCapacity) + 12345];
        new Random(3).NextBytes(data);
        var (code, feedError) = await p.FeedAsync(new MemoryStream(data), null, CancellationToken.None);
        Assert.Equal(0, code);
        Assert.Null(feedError);
    }
}
