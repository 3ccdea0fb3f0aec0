using WalBridge.Connector.Cli;
using WalBridge.DevTools.Chaos;

namespace WalBridge.Integration.Tests;

/// <summary>The randomized end-to-end check's own parts (issue 15): failure output and options.</summary>
public sealed class RandomCheckTests
{
    [Fact]
    public void Long_values_are_shown_around_their_first_difference()
    {
        var expected = new string('a', 500) + "X" + new string('b', 100);
        var actual = new string('a', 500) + "Y" + new string('b', 100);
        var shown = RandomCheck.ShowValues(expected, actual);
        Assert.Contains("first difference at character 500", shown, StringComparison.Ordinal);
        Assert.Contains("aX", shown, StringComparison.Ordinal);
        Assert.Contains("aY", shown, StringComparison.Ordinal);
        Assert.Equal("expected (PostgreSQL) '0005-02-29 BC', actual NULL", RandomCheck.ShowValues("0005-02-29 BC", null));
    }

    [Fact]
    public void The_random_workload_rejects_unknown_features()
    {
        var e = Assert.Throws<UsageException>(() => new RandomWorkload("Host=localhost", 1, ["no-such-thing"]));
        Assert.Contains("bc-dates", e.Message, StringComparison.Ordinal);
        using var workload = new RandomWorkload("Host=localhost", 1, ["bc-dates", "ddl"]);
        Assert.Equal(2, workload.Without.Count);
    }
}
