using Confluent.Kafka;

namespace WalBridge.Connector.Formats;

/// <summary>
/// Where the formats' records go: the Kafka loop's producer, inside the open Kafka transaction, waiting for room in
/// librdkafka's queue when it is full (back-pressure). Called on the Kafka loop's thread only.
/// </summary>
public interface IRecordSink
{
    /// <summary>Produces one record to <paramref name="partition"/> of <paramref name="topic"/>; <paramref name="value"/> null is a tombstone.</summary>
    void Produce(string topic, int partition, byte[]? key, byte[]? value, Headers? headers);
}
