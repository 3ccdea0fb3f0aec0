using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Confluent.Kafka;

namespace WalBridge.Bench;

/// <summary>Kafka-side measurements: payload read back with read_committed, and commit-to-visible latency.</summary>
internal static class KafkaProbe
{
    private const string RowsHeader = "walbridge.rows";

    /// <summary>Reads a one-partition topic from the beginning to its end with read_committed: records, value bytes and rows (the <c>walbridge.rows</c> header, or one per record without it).</summary>
    public static (long Records, long Bytes, long Rows) ReadBack(string bootstrap, string topic, TimeSpan timeout)
    {
        using var consumer = new ConsumerBuilder<Ignore, byte[]?>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = $"walbridge-bench-readback-{Guid.NewGuid():N}",
            EnableAutoCommit = false,
            IsolationLevel = IsolationLevel.ReadCommitted,
            EnablePartitionEof = true,
            AutoOffsetReset = AutoOffsetReset.Earliest,
        }).Build();
        consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
        long records = 0, bytes = 0, rows = 0;
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
                return (records, bytes, rows);
            }

            records++;
            bytes += result.Message.Value?.Length ?? 0;
            rows += result.Message.Headers is { } headers && headers.TryGetLastBytes(RowsHeader, out var value)
                ? long.Parse(Encoding.UTF8.GetString(value), CultureInfo.InvariantCulture)
                : 1;
        }
        throw new TimeoutException($"reading topic {topic} back did not reach its end within {timeout.TotalSeconds:F0} s ({records} records so far)");
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

/// <summary>
/// A read_committed consumer that measures commit-to-visible latency of each record: receive time
/// minus the commit time, taken from the <c>pg.commit_ts</c> header (WalBridge) or from the row's
/// <c>sent_us</c> column in the JSON value (the peer). Records committed before <see cref="Since"/>
/// (warm-up) only count as <see cref="Seen"/>.
/// </summary>
internal sealed class LatencyConsumer : IDisposable
{
    private const string CommitTimestampHeader = "pg.commit_ts";
    private readonly IConsumer<Ignore, byte[]?> _consumer;
    private readonly bool _json;
    private readonly ConcurrentBag<double> _latencies = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _seen;

    public LatencyConsumer(string bootstrap, string topic, bool json)
    {
        _json = json;
        _consumer = new ConsumerBuilder<Ignore, byte[]?>(new ConsumerConfig
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
        _consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
        _loop = Task.Factory.StartNew(Loop, TaskCreationOptions.LongRunning);
    }

    public DateTime Since { get; set; } = DateTime.MaxValue;
    public long Seen => Interlocked.Read(ref _seen);
    public int Samples => _latencies.Count;
    public IReadOnlyList<double> Latencies => [.. _latencies];

    private void Loop()
    {
        while (!_stop.IsCancellationRequested)
        {
            ConsumeResult<Ignore, byte[]?>? result;
            try
            {
                result = _consumer.Consume(TimeSpan.FromMilliseconds(100));
            }
            catch (ConsumeException)
            {
                continue;
            }
            if (result?.Message is null)
            {
                continue;
            }

            var received = DateTime.UtcNow;
            Interlocked.Increment(ref _seen);
            var committed = _json ? SentTime(result.Message.Value) : CommitTime(result.Message.Headers);
            if (committed is { } at && at >= Since)
            {
                _latencies.Add((received - at).TotalMilliseconds);
            }
        }
    }

    private static DateTime? CommitTime(Headers? headers)
    {
        if (headers is null || !headers.TryGetLastBytes(CommitTimestampHeader, out var value))
        {
            return null;
        }

        return DateTime.Parse(Encoding.UTF8.GetString(value), CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
    }

    private static DateTime? SentTime(byte[]? value)
    {
        if (value is null)
        {
            return null;
        }

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
