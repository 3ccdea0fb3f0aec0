using System.Diagnostics;
using Confluent.Kafka;

namespace WalBridge.Broker.Tests;

/// <summary>Client helpers for tests against a <see cref="LocalBroker"/>.</summary>
internal static class Kafka
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    public static string UniqueName(string prefix) => $"{prefix}-{Guid.NewGuid():N}";

    public static IConsumer<Null, string> Consumer(LocalBroker broker, IsolationLevel isolation)
    {
        Librdkafka.EnsureLoaded();
        var config = new ConsumerConfig
        {
            BootstrapServers = broker.BootstrapServers,
            GroupId = UniqueName("g"),
            EnableAutoCommit = false,
            IsolationLevel = isolation,
            // End-of-partition events give the tests a positive "caught up" signal instead of
            // a quiet period: for read_committed the end is the last stable offset.
            EnablePartitionEof = true,
            AutoOffsetReset = AutoOffsetReset.Earliest,
        };
        return new ConsumerBuilder<Null, string>(config).Build();
    }

    /// <summary>
    /// Reads partition <paramref name="partition"/> of <paramref name="topic"/> from the beginning
    /// until the consumer reports end of partition; returns the values and the offset where it ended.
    /// </summary>
    public static (List<string> Values, long EndOffset) ReadToEnd(IConsumer<Null, string> consumer, string topic, int partition = 0)
    {
        consumer.Assign(new TopicPartitionOffset(topic, partition, Offset.Beginning));
        var values = new List<string>();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < Bound)
        {
            var result = consumer.Consume(TimeSpan.FromMilliseconds(200));
            if (result is null)
            {
                continue;
            }

            if (result.IsPartitionEOF)
            {
                return (values, result.Offset.Value);
            }

            values.Add(result.Message.Value);
        }

        Assert.Fail($"No end of partition on {topic} [{partition}] within {Bound}; read so far: [{string.Join(", ", values)}]");
        return default;
    }
}
