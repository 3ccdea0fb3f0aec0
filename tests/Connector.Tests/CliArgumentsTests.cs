using WalBridge.Connector.Cli;

namespace WalBridge.Connector.Tests;

public class CliArgumentsTests
{
    [Fact]
    public void Values_flags_and_repeats()
    {
        var args = new CliArguments(["--topic", "t", "--set=a=1", "--set", "b=2", "--from-beginning"], ["--topic", "--set"], ["--from-beginning"]);
        Assert.Equal("t", args.Required("--topic"));
        Assert.Equal(["a=1", "b=2"], args.Values("--set"));
        Assert.True(args.Flag("--from-beginning"));
    }

    [Fact]
    public void Unknown_option_missing_value_and_bad_number_are_usage_errors()
    {
        Assert.Throws<UsageException>(() => new CliArguments(["--nope"], ["--topic"], []));
        Assert.Throws<UsageException>(() => new CliArguments(["--topic"], ["--topic"], []));
        var args = new CliArguments(["--max", "zero"], ["--max"], []);
        Assert.Throws<UsageException>(() => args.Int("--max", 1, 1, 10));
        Assert.Throws<UsageException>(() => new CliArguments([], ["--topic"], []).Required("--topic"));
    }
}
