namespace WalBridge.Connector.Kafka;

/// <summary>
/// Makes Confluent.Kafka use the librdkafka 2.15.1 that scripts/setup.sh builds (the NuGet
/// mirror has no librdkafka.redist). Call before building any Kafka client; idempotent.
/// </summary>
internal static class KafkaNative
{
    public static string EnsureLoaded() => WalBridge.Broker.Librdkafka.EnsureLoaded();
}
