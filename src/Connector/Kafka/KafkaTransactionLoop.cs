using System.Globalization;
using System.Text;
using System.Threading.Channels;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Diagnostics;
using WalBridge.Connector.Formats;
using WalBridge.Connector.Queue;
using WalBridge.Connector.Transactions;
using WalBridge.Offsets;
using WalBridge.Offsets.Mirror;

namespace WalBridge.Connector.Kafka;

/// <summary>
/// Owns the transactional producer: groups consecutive source transactions into one Kafka
/// transaction, writes their payloads and one offset record, commits, writes the mirror, then
/// publishes the committed LSN for acknowledgement. Topics are named and created by its
/// <see cref="TopicManager"/>, before a Kafka transaction begins. The Debezium formats' records
/// (<c>output.formats</c>, <see cref="OutputFormats"/>) go into the same Kafka transaction.
/// </summary>
/// <remarks>
/// Threading: Confluent's transactional calls block, so <see cref="Run"/> runs on a dedicated
/// thread and takes work from a bounded channel. Lifetime: one instance per pipeline attempt; after
/// any exception it is disposed and a new one is built (a new producer, <c>InitTransactions</c>,
/// and a fresh read of the offsets topic), so an unknown commit outcome is never assumed.
/// Delivery: a source transaction counts as delivered only when <c>CommitTransaction</c> returned.
/// </remarks>
internal sealed partial class KafkaTransactionLoop : IDisposable
{
    /// <summary>The longest any blocking transactional call (flush, commit, abort) may take; the graceful stop budget builds on it.</summary>
    public static readonly TimeSpan TransactionCallTimeout = TimeSpan.FromSeconds(30);

    private readonly ConnectorConfig _config;
    private readonly ProgressTracker _progress;
    private readonly IOffsetMirror? _mirror;
    private readonly ILogger _logger;
    private readonly OffsetKey _offsetKey;
    private readonly Dictionary<string, string> _kafka;
    private readonly TopicManager _topics;
    private readonly OutputFormats _formats;
    /// <summary>Stage times for latency breakdowns; null unless <c>WALBRIDGE_STAGE_TRACE</c> is set.</summary>
    private readonly StageTrace? _trace = StageTrace.Open();
    private IProducer<byte[]?, byte[]>? _producer;
    private int _producedInTransaction;

    public KafkaTransactionLoop(ConnectorConfig config, ProgressTracker progress, IOffsetMirror? mirror, ILogger logger)
    {
        _config = config;
        _progress = progress;
        _mirror = mirror;
        _logger = logger;
        _offsetKey = new OffsetKey(config.Name, config.SlotName, config.DatabaseName);
        _kafka = new Dictionary<string, string>(config.Kafka, StringComparer.Ordinal);
        _kafka.TryAdd("client.id", $"walbridge-{config.Name}");
        _topics = new TopicManager(config, _kafka, logger);
        _formats = new OutputFormats(config, logger);
    }

    public OffsetKey OffsetKey => _offsetKey;

    /// <summary>The transactional id: one per connector, so a second instance fences the first.</summary>
    public string TransactionalId => $"walbridge-{_config.Name}";

    /// <summary>
    /// Builds the producer and calls <c>InitTransactions</c>, which fences any older instance and
    /// ends its open transaction. Blocking.
    /// </summary>
    public void Initialize()
    {
        // A copy: ProducerConfig writes into the dictionary it is given, and the offsets reader and the admin client
        // share _kafka (producer-only keys there make librdkafka print configuration warnings to stderr).
        var producerConfig = new ProducerConfig(new Dictionary<string, string>(_kafka, StringComparer.Ordinal))
        {
            TransactionalId = TransactionalId,
            EnableIdempotence = true,
        };
        if (!_config.Kafka.ContainsKey("linger.ms"))
        {
            producerConfig.LingerMs = 5;
        }
        // librdkafka's own queue would otherwise hold up to 1 GB: bound it, Produce then waits (back-pressure).
        if (!_config.Kafka.ContainsKey("queue.buffering.max.kbytes"))
        {
            producerConfig.QueueBufferingMaxKbytes = 32 * 1024;
        }

        _producer = new ProducerBuilder<byte[]?, byte[]>(producerConfig)
            .SetLogHandler((_, message) => LogLibrdkafka(_logger, message.Level, message.Facility, message.Message))
            .Build();
        _producer.InitTransactions(TransactionCallTimeout);
        _topics.Ensure(_config.OffsetsTopic, compacted: true);
    }

    /// <summary>
    /// Reads the offsets topic to its end with <c>read_committed</c> and returns the last record for
    /// this connector, or null when there is none. Blocking.
    /// </summary>
    public OffsetRecord? ReadCommittedOffset(CancellationToken cancellationToken) =>
        OffsetsTopicReader.ReadLatest(_kafka, _config.OffsetsTopic, _offsetKey, cancellationToken);

    /// <summary>
    /// Runs until the channel completes or <paramref name="cancellationToken"/> fires; returns after
    /// finishing or aborting the open Kafka transaction. Blocking: call on a dedicated thread.
    /// </summary>
    /// <remarks>
    /// A Kafka transaction takes the groups that are waiting (at least one, then more while they are there, up to
    /// <c>transaction.max.source.transactions</c> and <c>transaction.max.bytes</c>, which counts the groups' Arrow bytes and
    /// the Debezium formats' expected bytes, <see cref="OutputFormats.EstimatedBytes"/>; with <c>transaction.linger.ms</c>
    /// it also waits that long for more). Their topics are created (and Avro schemas registered) before it begins. It
    /// holds one record per table partition (more when over the record limit), the messages, each Debezium format's
    /// records, and the offsets record.
    /// </remarks>
    /// <exception cref="KafkaException">Kafka failed; the caller restarts from what is committed.</exception>
    public void Run(ChannelReader<TransactionGroup> input, SourceIdentity identity, CancellationToken cancellationToken)
    {
        var producer = _producer ?? throw new InvalidOperationException("Initialize must be called first.");
        var groups = new List<TransactionGroup>();
        var assembler = new RecordAssembler(_topics, _config.ChunkLimit);
        while (true)
        {
            if (!input.TryRead(out var first))
            {
                bool more;
                try
                {
                    more = input.WaitToReadAsync(cancellationToken).AsTask().GetAwaiter().GetResult();
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                if (!more)
                {
                    return;
                }

                continue;
            }

            groups.Clear();
            groups.Add(first);
            _trace?.Dequeued();
            var committed = false;
            var began = false;
            try
            {
                TakeMore(input, groups, cancellationToken);
                if (_formats.WritesArrow)
                {
                    foreach (var group in groups)
                    {
                        _topics.EnsureTopics(group);
                    }
                }

                _formats.Prepare(groups, topic => _topics.Ensure(topic, compacted: false));

                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                producer.BeginTransaction();
                began = true;
                _trace?.Began();
                _producedInTransaction = 0;
                long bytes = 0;
                if (_formats.WritesArrow)
                {
                    foreach (var record in assembler.TableRecords(groups, _progress.Snapshot.Committed))
                    {
                        bytes += record.Value.Length;
                        ProduceWithBackPressure(producer, new TopicPartition(record.Topic, record.Partition),
                            new Message<byte[]?, byte[]> { Key = record.Key, Value = record.Value, Headers = record.Headers });
                    }

                    foreach (var record in assembler.MessageRecords(groups))
                    {
                        bytes += record.Value.Length;
                        ProduceWithBackPressure(producer, new TopicPartition(record.Topic, record.Partition),
                            new Message<byte[]?, byte[]> { Key = record.Key, Value = record.Value, Headers = record.Headers });
                    }

                    foreach (var record in assembler.MarkerRecords(groups))
                    {
                        bytes += record.Value.Length;
                        ProduceWithBackPressure(producer, new TopicPartition(record.Topic, record.Partition),
                            new Message<byte[]?, byte[]> { Key = record.Key, Value = record.Value, Headers = record.Headers });
                    }
                }

                bytes += _formats.Produce(groups, new FormatSink(this, producer));

                _trace?.Produced();
                Commit(producer, groups, identity, bytes, started, _formats.WritesArrow ? assembler.SnapshotRecords : new Dictionary<(string, int), int>());
                committed = true;
            }
            finally
            {
                if (!committed)
                {
                    if (began)
                    {
                        TryAbort(producer);
                        _progress.Metrics.OnKafkaTransactionAborted();
                    }

                    // Not delivered: PostgreSQL re-sends these after the restart.
                    foreach (var group in groups)
                    {
                        group.Dispose();
                    }
                }
            }
        }
    }

    /// <summary>Adds the groups that are waiting (and, with a linger time, those that arrive within it) up to the limits.</summary>
    /// <remarks>A snapshot group (a chunk or markers) is always alone: its offsets record describes exactly it.</remarks>
    private void TakeMore(ChannelReader<TransactionGroup> input, List<TransactionGroup> groups, CancellationToken cancellationToken)
    {
        if (groups[0].Snapshot is not null)
        {
            return;
        }

        var transactions = groups[0].Transactions.Count;
        var bytes = groups[0].ByteCount + _formats.EstimatedBytes(groups[0]);
        var lingerUntil = DateTime.UtcNow + _config.TransactionLinger;
        while (transactions < _config.MaxSourceTransactionsPerKafkaTransaction && bytes < _config.MaxBytesPerKafkaTransaction)
        {
            if (input.TryPeek(out var peeked) && peeked.Snapshot is not null)
            {
                return;
            }

            if (input.TryRead(out var next))
            {
                groups.Add(next);
                transactions += next.Transactions.Count;
                bytes += next.ByteCount + _formats.EstimatedBytes(next);
                continue;
            }

            var wait = lingerUntil - DateTime.UtcNow;
            if (wait <= TimeSpan.Zero || !WaitForMore(input, wait, cancellationToken))
            {
                return;
            }
        }
    }

    /// <summary>Writes the offset record, commits, writes the mirror and reports the commit. Blocking.</summary>
    private void Commit(IProducer<byte[]?, byte[]> producer, List<TransactionGroup> groups, SourceIdentity identity, long bytes, long started,
        IReadOnlyDictionary<(string Table, int Partition), int> snapshotRecords)
    {
        var position = groups[^1].Position;
        CommittedTransaction? lastTransaction = null;
        var sourceTransactions = 0;
        long rows = 0;
        long memory = 0;
        foreach (var group in groups)
        {
            sourceTransactions += group.Transactions.Count;
            rows += group.RowCount;
            memory += group.MemoryBytes;
            lastTransaction = group.LastTransaction ?? lastTransaction;
        }

        var snapshot = _progress.Snapshot.After(groups, snapshotRecords);
        // The incremental snapshots' progress as of the last group that carries it (the stream's), else as committed.
        var incremental = groups.LastOrDefault(g => g.Incremental is not null)?.Incremental ?? _progress.Incremental;
        var record = (lastTransaction is { } last && last.CommitLsn == position
            ? new OffsetRecord(last.CommitLsn, last.EndLsn, last.Xid, last.CommitTimestamp, sourceTransactions, identity, DateTimeOffset.UtcNow)
            : new OffsetRecord(position, position, 0, DateTimeOffset.UtcNow, sourceTransactions, identity, DateTimeOffset.UtcNow)) with { Snapshot = snapshot, Incremental = incremental };
        ProduceWithBackPressure(producer, new TopicPartition(_config.OffsetsTopic, 0), new Message<byte[]?, byte[]>
        {
            Key = _offsetKey.ToBytes(),
            Value = record.ToBytes(),
        });
        // Every record must be acknowledged by the broker before the commit. A record that
        // failed puts the transactional producer into an abortable state, so the commit below
        // throws (librdkafka's contract): a transaction with a hole is never committed. No
        // per-record delivery handler is used, because Confluent.Kafka would keep every
        // in-flight value alive until its report.
        var unsent = producer.Flush(TransactionCallTimeout);
        _trace?.Flushed();
        FaultInjection.Reach(FaultPoint.BeforeKafkaCommit);
        if (unsent != 0)
        {
            throw new KafkaException(new Error(ErrorCode.Local_TimedOut, $"{unsent} records of the Kafka transaction were not acknowledged within {TransactionCallTimeout.TotalSeconds} s"));
        }

        producer.CommitTransaction(TransactionCallTimeout);
        _trace?.Committed(groups.Where(g => g.Transactions.Count > 0)
            .Select(g => (g.Transactions[0].CommitLsn.Value, g.Transactions[^1].CommitLsn.Value, g.Transactions.Count, g.RowCount, g.HandedOverMicros)));
        FaultInjection.Reach(FaultPoint.AfterKafkaCommit);

        _mirror?.Write(_offsetKey, record);
        FaultInjection.Reach(FaultPoint.AfterMirrorWrite);
        _progress.Snapshot.OnCommitted(snapshot);
        _progress.Incremental = incremental;
        CommitMetrics.Report(_progress.Metrics, groups, bytes, System.Diagnostics.Stopwatch.GetElapsedTime(started));
        foreach (var group in groups)
        {
            group.Dispose();
        }

        _progress.OnCommitted(position, groups.Count, sourceTransactions, rows, bytes, memory);
        LogCommitted(_logger, _config.SlotName, position, sourceTransactions, rows, bytes);
    }

    private static bool WaitForMore(ChannelReader<TransactionGroup> input, TimeSpan wait, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(wait);
        try
        {
            return input.WaitToReadAsync(timeout.Token).AsTask().GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Waits for room in librdkafka's local queue instead of failing when it is full.</summary>
    private void ProduceWithBackPressure(IProducer<byte[]?, byte[]> producer, TopicPartition partition, Message<byte[]?, byte[]> message)
    {
        while (true)
        {
            try
            {
                producer.Produce(partition, message);
                _producedInTransaction++;
                if (FaultInjection.IsArmed(FaultPoint.MidProduce))
                {
                    FaultInjection.ReachRecord(_producedInTransaction, _producedInTransaction == 1, () => producer.Flush(TransactionCallTimeout));
                }

                return;
            }
            catch (ProduceException<byte[]?, byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
            {
                producer.Poll(TimeSpan.FromMilliseconds(50));
            }
        }
    }

    /// <summary>The Debezium formats' records go through <see cref="ProduceWithBackPressure"/>, to the partition the formats chose.</summary>
    private sealed class FormatSink(KafkaTransactionLoop loop, IProducer<byte[]?, byte[]> producer) : IRecordSink
    {
        public void Produce(string topic, int partition, byte[]? key, byte[]? value, Headers? headers) =>
            loop.ProduceWithBackPressure(producer, new TopicPartition(topic, partition), new Message<byte[]?, byte[]> { Key = key, Value = value!, Headers = headers });
    }

    private void TryAbort(IProducer<byte[]?, byte[]> producer)
    {
        try
        {
            producer.AbortTransaction(TransactionCallTimeout);
        }
        catch (KafkaException e)
        {
            // The producer is discarded after this anyway; InitTransactions on the next one ends the transaction.
            LogAbortFailed(_logger, e.Error.Reason);
        }
    }

    public void Dispose()
    {
        _producer?.Dispose();
        _producer = null;
        _topics.Dispose();
        _formats.Dispose();
    }


    [LoggerMessage(EventId = 2001, Level = LogLevel.Debug, Message = "Committed Kafka transaction for slot {Slot} through {Lsn}: {SourceTransactions} source transactions, {Rows} rows, {Bytes} bytes")]
    private static partial void LogCommitted(ILogger logger, string slot, Lsn lsn, int sourceTransactions, long rows, long bytes);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Warning, Message = "Aborting the Kafka transaction failed: {Reason}")]
    private static partial void LogAbortFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Debug, Message = "librdkafka {Level} {Facility}: {Message}")]
    private static partial void LogLibrdkafka(ILogger logger, SyslogLevel level, string facility, string message);
}
