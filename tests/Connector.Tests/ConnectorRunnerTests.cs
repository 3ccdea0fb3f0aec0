using WalBridge.Connector.Pipeline;
using WalBridge.Offsets.Mirror;

namespace WalBridge.Connector.Tests;

public class ConnectorRunnerTests
{
    private const string StateDir = "/var/lib/walbridge/state/orders";

    [Fact]
    public void A_mirror_failure_that_may_heal_is_retried()
    {
        var full = new OffsetMirrorException("disk full", StateDir, isTransient: true, innerException: null);

        Assert.False(ConnectorRunner.IsFatal(full));
        Assert.False(ConnectorRunner.IsFatal(new AggregateException(full)));
    }

    [Fact]
    public void A_mirror_failure_that_cannot_heal_stops_the_connector_although_it_is_an_IOException()
    {
        IOException corrupted = new OffsetMirrorException("corrupted", StateDir, isTransient: false, innerException: null);

        Assert.True(ConnectorRunner.IsFatal(corrupted));
        Assert.True(ConnectorRunner.IsFatal(new AggregateException(corrupted, new IOException("network"))));
    }

    [Fact]
    public void Other_IOExceptions_stay_transient()
    {
        Assert.False(ConnectorRunner.IsFatal(new IOException("connection reset")));
    }
}
