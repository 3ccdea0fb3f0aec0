using Confluent.Kafka;

namespace WalBridge.Client;

/// <summary>
/// A Confluent.Kafka value deserializer for WalBridge table topics: checks the record's headers (payload format
/// <see cref="WalBridgeFormat.SupportedVersion"/>; any other version, or a record without <c>walbridge.format</c>, fails
/// with a <see cref="WalBridgeFormatException"/>, which Confluent.Kafka reports as a <see cref="ConsumeException"/>
/// whose inner exception it is) and reads the value's Arrow IPC stream into a <see cref="WalBridgeRecord"/>.
/// </summary>
/// <remarks>
/// <para>Stateless and thread-safe: one instance may serve any number of consumers.</para>
/// <para>Confluent.Kafka hands the value over as a span of librdkafka's memory that is valid only during the call, so
/// the bytes are copied once, into a pooled buffer; the record's arrays are zero-copy views of that copy. The consumer
/// owns each returned record: dispose it when done with it (<see cref="WalBridgeRecord"/> explains the lifetime).</para>
/// <para>Use it with <c>isolation.level=read_committed</c> (librdkafka's default): uncommitted records of aborted
/// Kafka transactions are written again later, possibly grouped differently.</para>
/// </remarks>
public sealed class WalBridgeDeserializer : IDeserializer<WalBridgeRecord>
{
    /// <summary>The one instance needed.</summary>
    public static WalBridgeDeserializer Instance { get; } = new();

    public WalBridgeRecord Deserialize(ReadOnlySpan<byte> data, bool isNull, SerializationContext context)
    {
        var headers = WalBridgeRecordHeaders.Parse(context.Headers);
        if (isNull)
        {
            throw new WalBridgeFormatException($"A record of {context.Topic} with WalBridge headers has a null value: WalBridge never writes one.");
        }

        return WalBridgeRecord.ReadCopy(data, headers);
    }
}
