using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Apache.Arrow;
using Confluent.Kafka;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Bench;

/// <summary>What reading a topic back with read_committed found.</summary>
/// <param name="Records">Records read.</param>
/// <param name="ValueBytes">Their values' bytes.</param>
/// <param name="RecordBytes">Values + keys + header keys and values.</param>
/// <param name="Rows">Rows: the <c>walbridge.rows</c> headers, or one per record without it.</param>
/// <param name="FetchedBytes">Bytes the consumer received from the brokers (librdkafka's <c>rxbytes</c> of every broker connection), or null without statistics.</param>
internal readonly record struct ReadBackResult(long Records, long ValueBytes, long RecordBytes, long Rows, long? FetchedBytes);

/// <summary>Kafka-side measurements: payload read back with read_committed, and commit-to-visible latency.</summary>
internal static class KafkaProbe
{
    private const string RowsHeader = "walbridge.rows";

    /// <summary>The topic's partitions (from the brokers' metadata).</summary>
    public static List<TopicPartition> Partitions(string bootstrap, string topic)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build();
        var metadata = admin.GetMetadata(topic, TimeSpan.FromSeconds(10));
        var partitions = metadata.Topics.SingleOrDefault(t => t.Topic == topic)?.Partitions.Select(p => new TopicPartition(topic, p.PartitionId)).ToList();
        return partitions is { Count: > 0 } ? partitions : [new TopicPartition(topic, 0)];
    }

    /// <summary>The bytes of one record as a consumer sees it: value, key, and every header's key and value.</summary>
    public static long RecordBytes(Message<byte[]?, byte[]?> message)
    {
        long bytes = (message.Value?.Length ?? 0) + (message.Key?.Length ?? 0);
        if (message.Headers is { } headers)
        {
            foreach (var header in headers)
            {
                bytes += Encoding.UTF8.GetByteCount(header.Key) + (header.GetValueBytes()?.Length ?? 0);
            }
        }

        return bytes;
    }

    /// <summary>
    /// Reads every partition of a topic from the beginning to its end with read_committed: records, value and record
    /// bytes, rows, and the bytes fetched from the brokers (statistics every 100 ms; the last report after the end counts).
    /// </summary>
    public static ReadBackResult ReadBack(string bootstrap, string topic, TimeSpan timeout)
    {
        var partitions = Partitions(bootstrap, topic);
        long? fetched = null;
        var reports = 0;
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = $"walbridge-bench-readback-{Guid.NewGuid():N}",
            EnableAutoCommit = false,
            IsolationLevel = IsolationLevel.ReadCommitted,
            EnablePartitionEof = true,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            StatisticsIntervalMs = 100,
        }).SetStatisticsHandler((_, json) =>
        {
            fetched = ReceivedBytes(json);
            Interlocked.Increment(ref reports);
        }).Build();
        consumer.Assign(partitions.Select(p => new TopicPartitionOffset(p, Offset.Beginning)));
        long records = 0, valueBytes = 0, recordBytes = 0, rows = 0;
        var ended = new HashSet<int>();
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            var result = consumer.Consume(TimeSpan.FromMilliseconds(200));
            if (result is null)
            {
                continue;
            }

            if (result.IsPartitionEOF)
            {
                ended.Add(result.Partition.Value);
                if (ended.Count < partitions.Count)
                {
                    continue;
                }

                // One more statistics report, taken after everything was fetched.
                var seen = Volatile.Read(ref reports);
                var wait = DateTime.UtcNow + TimeSpan.FromSeconds(2);
                while (Volatile.Read(ref reports) < seen + 2 && DateTime.UtcNow < wait)
                {
                    consumer.Consume(TimeSpan.FromMilliseconds(50));
                }

                return new ReadBackResult(records, valueBytes, recordBytes, rows, fetched);
            }

            records++;
            valueBytes += result.Message.Value?.Length ?? 0;
            recordBytes += RecordBytes(result.Message);
            rows += result.Message.Headers is { } headers && headers.TryGetLastBytes(RowsHeader, out var value)
                ? long.Parse(Encoding.UTF8.GetString(value), CultureInfo.InvariantCulture)
                : 1;
        }
        throw new TimeoutException($"reading topic {topic} back did not reach its end within {timeout.TotalSeconds:F0} s ({records} records so far)");
    }

    /// <summary>The sum of <c>rxbytes</c> over the brokers of a librdkafka statistics report.</summary>
    private static long? ReceivedBytes(string json)
    {
        using var document = JsonDocument.Parse(json);
        if (!document.RootElement.TryGetProperty("brokers", out var brokers))
        {
            return null;
        }

        long total = 0;
        foreach (var broker in brokers.EnumerateObject())
        {
            if (broker.Value.TryGetProperty("rxbytes", out var rx))
            {
                total += rx.GetInt64();
            }
        }

        return total;
    }

    /// <summary>Waits until a topic exists with a leader for partition 0.</summary>
    public static async Task WaitForTopicAsync(string bootstrap, string topic, TimeSpan timeout)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build();
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                var metadata = admin.GetMetadata(topic, TimeSpan.FromSeconds(5));
                if (metadata.Topics.Count == 1 && metadata.Topics[0].Error.Code == ErrorCode.NoError && metadata.Topics[0].Partitions.Count > 0)
                {
                    return;
                }
            }
            catch (KafkaException) when (DateTime.UtcNow < deadline)
            {
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"topic {topic} did not appear within {timeout.TotalSeconds:F0} s");
            }

            await Task.Delay(200);
        }
    }
}

/// <summary>One transaction seen by the latency consumer: its commit LSN (0 when unknown), commit or send time, and when it became visible.</summary>
internal readonly record struct VisibleSample(ulong CommitLsn, DateTime Committed, DateTime Visible)
{
    public double LatencyMs => (Visible - Committed).TotalMilliseconds;
}

/// <summary>
/// A read_committed consumer of every partition of a topic that measures commit-to-visible latency of each row: receive
/// time minus the commit time, taken from the row's <c>_commit_ts</c> (WalBridge's Arrow payload; the row's
/// <c>_commit_lsn</c> is kept to join with the connector's stage trace) or from the row's <c>sent_us</c> column in the
/// JSON value (the peer). Rows committed before <see cref="Since"/> (warm-up) only count as <see cref="Seen"/>.
/// </summary>
internal sealed class LatencyConsumer : IDisposable
{
    private readonly IConsumer<byte[]?, byte[]?> _consumer;
    private readonly bool _json;
    private readonly ConcurrentQueue<VisibleSample> _samples = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _seen;
    private long _sampleCount;
    private long _since = DateTime.MaxValue.Ticks;

    public LatencyConsumer(string bootstrap, string topic, bool json)
    {
        _json = json;
        _consumer = new ConsumerBuilder<byte[]?, byte[]?>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = $"walbridge-bench-latency-{Guid.NewGuid():N}",
            EnableAutoCommit = false,
            IsolationLevel = IsolationLevel.ReadCommitted,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            // The mock broker answers an empty fetch only after the full wait (it is not woken by
            // new data), so poll often: this bounds the measurement's own delay to a few ms.
            FetchWaitMaxMs = 2,
            FetchMinBytes = 1,
        }).Build();
        _consumer.Assign(KafkaProbe.Partitions(bootstrap, topic).Select(p => new TopicPartitionOffset(p, Offset.Beginning)));
        _loop = Task.Factory.StartNew(Loop, TaskCreationOptions.LongRunning);
    }

    public DateTime Since
    {
        get => new(Interlocked.Read(ref _since), DateTimeKind.Utc);
        set => Interlocked.Exchange(ref _since, value.Ticks);
    }

    /// <summary>Rows seen, warm-up included.</summary>
    public long Seen => Interlocked.Read(ref _seen);

    /// <summary>Rows committed since <see cref="Since"/> seen.</summary>
    public long Samples => Interlocked.Read(ref _sampleCount);

    public IReadOnlyList<VisibleSample> Taken => [.. _samples];

    private void Loop()
    {
        while (!_stop.IsCancellationRequested)
        {
            ConsumeResult<byte[]?, byte[]?>? result;
            try
            {
                result = _consumer.Consume(TimeSpan.FromMilliseconds(100));
            }
            catch (ConsumeException)
            {
                continue;
            }
            if (result?.Message?.Value is not { } value)
            {
                continue;
            }

            var received = DateTime.UtcNow;
            var since = Since;
            if (_json)
            {
                Add(SentTime(value) is { } sent ? new VisibleSample(0, sent, received) : null, since);
                continue;
            }

            foreach (var batch in ArrowPayload.Read(value).Batches)
            {
                var commitTs = (TimestampArray)batch.Column(batch.Schema.GetFieldIndex(ChangeBatchBuilder.CommitTimestampColumn));
                var commitLsn = (UInt64Array)batch.Column(batch.Schema.GetFieldIndex(ChangeBatchBuilder.CommitLsnColumn));
                for (var r = 0; r < batch.Length; r++)
                {
                    Add(new VisibleSample(commitLsn.Values[r], commitTs.GetTimestamp(r)!.Value.UtcDateTime, received), since);
                }
            }
        }
    }

    private void Add(VisibleSample? sample, DateTime since)
    {
        Interlocked.Increment(ref _seen);
        if (sample is { } s && s.Committed >= since)
        {
            _samples.Enqueue(s);
            Interlocked.Increment(ref _sampleCount);
        }
    }

    private static DateTime? SentTime(byte[] value)
    {
        using var document = JsonDocument.Parse(value);
        if (!document.RootElement.TryGetProperty("after", out var after) || after.ValueKind != JsonValueKind.Object
            || !after.TryGetProperty("sent_us", out var sent))
        {
            return null;
        }

        var micros = sent.ValueKind == JsonValueKind.String ? long.Parse(sent.GetString()!, CultureInfo.InvariantCulture) : sent.GetInt64();
        return DateTime.UnixEpoch.AddTicks(micros * 10);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _loop.Wait(TimeSpan.FromSeconds(5));
        _consumer.Close();
        _consumer.Dispose();
        _stop.Dispose();
    }
}
