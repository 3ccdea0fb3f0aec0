using WalBridge.Connector.Diagnostics;

namespace WalBridge.Connector.Tests;

public class FaultInjectionTests
{
    [Theory]
    [InlineData("after-kafka-commit", FaultPoint.AfterKafkaCommit, 1, 1)]
    [InlineData("after-mirror-write@3", FaultPoint.AfterMirrorWrite, 3, 1)]
    [InlineData("mid-produce@2:5", FaultPoint.MidProduce, 2, 5)]
    [InlineData(" before-kafka-commit@4 ", FaultPoint.BeforeKafkaCommit, 4, 1)]
    [InlineData("after-commit-message@1", FaultPoint.AfterCommitMessage, 1, 1)]
    [InlineData("mid-stream@2", FaultPoint.MidStream, 2, 1)]
    [InlineData("after-stream-stop", FaultPoint.AfterStreamStop, 1, 1)]
    [InlineData("spool-replay@3", FaultPoint.SpoolReplay, 3, 1)]
    public void Specs_parse(string spec, FaultPoint point, int hit, int records)
    {
        Assert.Equal((point, hit, records, false), FaultInjection.Parse(spec));
    }

    [Theory]
    [InlineData("after-kafka-commit@3/term", FaultPoint.AfterKafkaCommit, 3, 1)]
    [InlineData("mid-produce@2:4/term", FaultPoint.MidProduce, 2, 4)]
    public void The_term_suffix_asks_for_SIGTERM_instead_of_SIGKILL(string spec, FaultPoint point, int hit, int records)
    {
        Assert.Equal((point, hit, records, true), FaultInjection.Parse(spec));
    }

    [Fact]
    public void Only_the_streaming_points_are_streaming_points()
    {
        Assert.Equal([FaultPoint.MidStream, FaultPoint.AfterStreamStop, FaultPoint.SpoolReplay],
            Enum.GetValues<FaultPoint>().Where(FaultInjection.IsStreamingPoint));
    }

    [Fact]
    public void Unset_is_disarmed_and_unknown_points_are_errors()
    {
        Assert.Null(FaultInjection.Parse(null));
        Assert.Null(FaultInjection.Parse(""));
        var e = Assert.Throws<ArgumentException>(() => FaultInjection.Parse("after-lunch@2"));
        Assert.Contains("after-lunch", e.Message, StringComparison.Ordinal);
        Assert.Contains("after-kafka-commit", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_point_has_a_distinct_name()
    {
        var names = Enum.GetValues<FaultPoint>().Select(FaultInjection.NameOf).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
    }
}
