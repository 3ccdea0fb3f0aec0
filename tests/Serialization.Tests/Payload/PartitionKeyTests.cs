using System.Text;
using WalBridge.Serialization.Payload;

namespace WalBridge.Serialization.Tests.Payload;

/// <summary>Issue 11: rows are assigned to partitions by Kafka's murmur2 of a documented key encoding.</summary>
public class PartitionKeyTests
{
    /// <summary>Kafka's own test vectors for <c>Utils.murmur2</c> (clients/src/test/java/.../UtilsTest.java).</summary>
    [Theory]
    [InlineData("21", -973932308)]
    [InlineData("foobar", -790332482)]
    [InlineData("a-little-bit-long-string", -985981536)]
    [InlineData("a-little-bit-longer-string", -1486304829)]
    [InlineData("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971)]
    [InlineData("abc", 479470107)]
    public void Murmur2_matches_Kafka(string key, int expected) =>
        Assert.Equal(expected, PartitionKey.Murmur2(Encoding.UTF8.GetBytes(key)));

    [Fact]
    public void Keys_are_json_arrays_of_postgresql_text()
    {
        var key = new PartitionKey();
        key.Begin();
        key.AddText("42"u8);
        key.End();
        Assert.Equal("[\"42\"]", Encoding.UTF8.GetString(key.Bytes));

        key.Begin();
        key.AddText(Encoding.UTF8.GetBytes("eu \"north\"\\1\n\u0001é"));
        key.AddNull();
        key.AddText(""u8);
        key.End();
        Assert.Equal("[\"eu \\\"north\\\"\\\\1\\u000a\\u0001é\",null,\"\"]", Encoding.UTF8.GetString(key.Bytes));
    }

    [Fact]
    public void Partitions_follow_the_default_partitioner_rule()
    {
        var bytes = "[\"42\"]"u8.ToArray();
        var hash = PartitionKey.Murmur2(bytes);
        Assert.Equal((hash & 0x7FFFFFFF) % 3, PartitionKey.PartitionOf(bytes, 3));
        Assert.Equal(0, PartitionKey.PartitionOf(bytes, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => PartitionKey.PartitionOf(bytes, 0));
        // Spread: 3,000 keys over 3 partitions, none empty or dominant.
        var counts = new int[3];
        var key = new PartitionKey();
        for (var i = 0; i < 3000; i++)
        {
            key.Begin();
            key.AddText(Encoding.UTF8.GetBytes(i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            key.End();
            counts[key.Partition(3)]++;
        }

        Assert.All(counts, c => Assert.InRange(c, 800, 1200));
    }
}
