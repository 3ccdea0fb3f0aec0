using System.Globalization;
using WalBridge.Connector.Diagnostics;

namespace WalBridge.Connector.Tests;

public sealed class StageTraceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("walbridge-stage-trace-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Off_without_a_file()
    {
        Assert.Null(StageTrace.Open(null));
    }

    /// <summary>One line per group, under one header, the Kafka transaction's stages in order; a second trace appends to the same file.</summary>
    [Fact]
    public void Each_committed_group_is_one_line_of_its_lsns_and_stage_times()
    {
        var file = Path.Combine(_dir, "stages.csv");
        var trace = StageTrace.Open(file)!;
        var before = StageTrace.Now();
        trace.Dequeued();
        trace.Began();
        trace.Produced();
        trace.Flushed();
        trace.Committed([(1000, 1100, 2, 3, before - 5), (1200, 1200, 1, 4, before - 2)]);
        var second = StageTrace.Open(file)!;
        second.Dequeued();
        second.Began();
        second.Produced();
        second.Flushed();
        second.Committed([(1300, 1300, 1, 1, before)]);

        var lines = File.ReadAllLines(file);
        Assert.Equal(StageTrace.Header, lines[0]);
        Assert.Equal(4, lines.Length);
        var first = lines[1].Split(',').Select(v => long.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal([1000, 1100, 2, 3, before - 5], first[..5]);
        for (var i = 5; i < first.Length; i++)
        {
            Assert.True(first[i] >= first[i - 1] || i == 5, $"stage {i} before stage {i - 1}: {lines[1]}");
        }

        Assert.True(first[5] >= before);
        Assert.StartsWith("1200,1200,1,4,", lines[2], StringComparison.Ordinal);
        Assert.StartsWith("1300,1300,1,1,", lines[3], StringComparison.Ordinal);
    }
}
