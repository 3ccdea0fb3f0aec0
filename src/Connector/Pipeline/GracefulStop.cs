using WalBridge.Connector.Kafka;

namespace WalBridge.Connector.Pipeline;

/// <summary>
/// The one budget for a graceful stop (SIGTERM): the Kafka loop finishes or aborts its open transaction (a flush and
/// a commit, each bounded by <see cref="KafkaTransactionLoop.TransactionCallTimeout"/>), then the final position goes
/// to PostgreSQL. The host waits for all of it, with a margin, before it gives up.
/// </summary>
internal static class GracefulStop
{
    /// <summary>How long the pipeline waits for the Kafka loop to finish its open transaction.</summary>
    public static TimeSpan KafkaFinish { get; } = (2 * KafkaTransactionLoop.TransactionCallTimeout) + TimeSpan.FromSeconds(5);

    /// <summary>How long the final status update to PostgreSQL may take.</summary>
    public static TimeSpan FinalStatus { get; } = TimeSpan.FromSeconds(5);

    /// <summary>The generic host's <c>ShutdownTimeout</c>: everything above, plus room to tear down.</summary>
    public static TimeSpan HostShutdown { get; } = KafkaFinish + FinalStatus + TimeSpan.FromSeconds(15);
}
