using System.Text;
using HubDr.Engine.Databases.MySql;
using Xunit;

namespace HubDr.Engine.Tests.Databases;

public sealed class MySqlDumpRowCounterTests
{
    private const string Sample =
        "/*M!999999\\- enable the sandbox mode */ \n" +
        "-- INSERT INTO `not_a_table` VALUES (1);\n" +
        "DROP TABLE IF EXISTS `t1`;\n" +
        "CREATE TABLE `t1` (\n  `id` int NOT NULL,\n  `s` text\n) ENGINE=InnoDB;\n" +
        "INSERT INTO `t1` VALUES (1,'a(b'),(2,'it\\'s );(x'),(3,'dbl''q('),(4,NULL),(5,0x00FF28),(6,'back\\\\'),(7,'\\n(');\n" +
        "INSERT INTO `t1` VALUES (8,'x');\n" +
        "CREATE TABLE `we``ird ü` (`id` int);\n" +
        "INSERT INTO `we``ird ü` VALUES (1),(2);\n" +
        "CREATE TABLE `empty` (`id` int);\n" +
        "/*!50001 CREATE VIEW `v` AS SELECT 1 AS `x` */;\n" +
        "DELIMITER ;;\n" +
        "CREATE TRIGGER tr AFTER INSERT ON t1 FOR EACH ROW BEGIN\n" +
        "INSERT INTO `t1` VALUES (99,'trigger body');\n" +
        "END */;;\n" +
        "DELIMITER ;\n" +
        "INSERT INTO `t1` VALUES (9,'after');\n" +
        "INSERT INTO `t1` VALUES\n(10,'one per line'),\n(11,'x;\\n(');\n";

    [Fact]
    public void CountsTuplesRespectingQuotesEscapesAndDelimiterBlocks()
    {
        var c = new MySqlDumpRowCounter();
        c.Feed(Encoding.UTF8.GetBytes(Sample));
        Assert.Equal(11, c.Counts["t1"]);
        Assert.Equal(2, c.Counts["we`ird ü"]);
        Assert.Equal(0, c.Counts["empty"]);
        Assert.False(c.Counts.ContainsKey("not_a_table"));
        Assert.False(c.Counts.ContainsKey("v"));
        Assert.Equal(3, c.Counts.Count);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(4096)]
    public void ChunkBoundariesDoNotMatter(int chunk)
    {
        var bytes = Encoding.UTF8.GetBytes(Sample);
        var c = new MySqlDumpRowCounter();
        for (var i = 0; i < bytes.Length; i += chunk)
        {
            c.Feed(bytes.AsSpan(i, Math.Min(chunk, bytes.Length - i)));
        }

        Assert.Equal(11, c.Counts["t1"]);
        Assert.Equal(2, c.Counts["we`ird ü"]);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4096)]
    public void CrlfLineEndsCountTheSame(int chunk)
    {
        // mariadb-dump.exe output, or a dump that went through a Windows editor / git autocrlf: DELIMITER ;\r\n ends the block.
        var bytes = Encoding.UTF8.GetBytes(Sample.Replace("\n", "\r\n", StringComparison.Ordinal));
        var c = new MySqlDumpRowCounter();
        for (var i = 0; i < bytes.Length; i += chunk)
        {
            c.Feed(bytes.AsSpan(i, Math.Min(chunk, bytes.Length - i)));
        }

        Assert.Equal(11, c.Counts["t1"]);
        Assert.Equal(2, c.Counts["we`ird ü"]);
        Assert.Equal(0, c.Counts["empty"]);
        Assert.Equal(3, c.Counts.Count);
    }
}
