using Confluent.Kafka;
using WalBridge.Offsets;

namespace WalBridge.Connector.Kafka;

/// <summary>Reads a topic to its current end with <c>read_committed</c>.</summary>
internal static class OffsetsTopicReader
{
    /// <summary>
    /// The last committed offset record for <paramref name="key"/>, or null when the topic is
    /// empty or missing. Blocking; bounded by a 60 s deadline.
    /// </summary>
    public static OffsetRecord? ReadLatest(IReadOnlyDictionary<string, string> kafka, string topic, OffsetKey key, CancellationToken cancellationToken)
    {
        OffsetRecord? latest = null;
        var wanted = key.ToBytes();
        ReadToEnd(kafka, topic, message =>
        {
            if (message.Message.Key is not null && message.Message.Key.AsSpan().SequenceEqual(wanted) && message.Message.Value is { Length: > 0 })
            {
                latest = OffsetRecord.FromBytes(message.Message.Value);
            }
        }, cancellationToken);
        return latest;
    }

    /// <summary>
    /// Calls <paramref name="onMessage"/> for every committed record of every partition of
    /// <paramref name="topic"/>, in offset order per partition, up to the end as of the call.
    /// </summary>
    /// <exception cref="TimeoutException">The end was not reached within the deadline.</exception>
    public static void ReadToEnd(IReadOnlyDictionary<string, string> kafka, string topic,
        Action<ConsumeResult<byte[]?, byte[]?>> onMessage, CancellationToken cancellationToken, TimeSpan? deadline = null)
    {
        var config = new ConsumerConfig(kafka.ToDictionary(kv => kv.Key, kv => kv.Value))
        {
            GroupId = $"walbridge-reader-{Guid.NewGuid():N}",
            EnableAutoCommit = false,
            IsolationLevel = IsolationLevel.ReadCommitted,
            EnablePartitionEof = true,
            AutoOffsetReset = AutoOffsetReset.Earliest,
        };
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(config).Build();
        using var admin = new DependentAdminClientBuilder(consumer.Handle).Build();
        var metadata = admin.GetMetadata(topic, TimeSpan.FromSeconds(10));
        var topicMetadata = metadata.Topics.FirstOrDefault(t => t.Topic == topic);
        if (topicMetadata is null || topicMetadata.Error.Code != ErrorCode.NoError || topicMetadata.Partitions.Count == 0)
        {
            return;
        }

        var pending = new HashSet<int>();
        var assignments = new List<TopicPartitionOffset>();
        foreach (var partition in topicMetadata.Partitions)
        {
            var tp = new TopicPartition(topic, partition.PartitionId);
            var watermarks = consumer.QueryWatermarkOffsets(tp, TimeSpan.FromSeconds(10));
            if (watermarks.High.Value > watermarks.Low.Value)
            {
                pending.Add(partition.PartitionId);
            }

            assignments.Add(new TopicPartitionOffset(tp, Offset.Beginning));
        }
        if (pending.Count == 0)
        {
            return;
        }

        consumer.Assign(assignments);
        var until = DateTime.UtcNow + (deadline ?? TimeSpan.FromSeconds(60));
        while (pending.Count > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (DateTime.UtcNow > until)
            {
                throw new TimeoutException($"Reading topic '{topic}' to its end took longer than the deadline; partitions still pending: {string.Join(", ", pending)}.");
            }

            var result = consumer.Consume(TimeSpan.FromMilliseconds(200));
            if (result is null)
            {
                continue;
            }

            if (result.IsPartitionEOF)
            {
                pending.Remove(result.Partition.Value);
                continue;
            }
            onMessage(result);
        }
    }
}
