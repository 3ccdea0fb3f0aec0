using System.Globalization;
using System.Text;
using System.Threading.Channels;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Diagnostics;
using WalBridge.Connector.Queue;
using WalBridge.Connector.Transactions;
using WalBridge.Offsets;
using WalBridge.Offsets.Mirror;

namespace WalBridge.Connector.Kafka;

/// <summary>
/// Owns the transactional producer: groups consecutive source transactions into one Kafka
/// transaction, writes their payloads and one offset record, commits, writes the mirror, then
/// publishes the committed LSN for acknowledgement. Topics are named and created by its
/// <see cref="TopicManager"/>, before a Kafka transaction begins.
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
    /// <exception cref="KafkaException">Kafka failed; the caller restarts from what is committed.</exception>
    public void Run(ChannelReader<SourceTransaction> input, SourceIdentity identity, CancellationToken cancellationToken)
    {
        var producer = _producer ?? throw new InvalidOperationException("Initialize must be called first.");
        var batch = new List<SourceTransaction>();
        // A transaction taken while lingering that needs a topic not created yet starts the next Kafka transaction.
        SourceTransaction? pending = null;
        try
        {
            while (true)
            {
                var first = pending;
                pending = null;
                if (first is null && !input.TryRead(out first))
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

                batch.Clear();
                batch.Add(first);
                var began = false;
                var committed = false;
                try
                {
                    _topics.EnsureTopics(first);
                    var started = System.Diagnostics.Stopwatch.GetTimestamp();
                    producer.BeginTransaction();
                    began = true;
                    _producedInTransaction = 0;
                    Produce(producer, first);
                    var bytes = first.ByteCount;
                    var lingerUntil = DateTime.UtcNow + _config.TransactionLinger;
                    while (batch.Count < _config.MaxSourceTransactionsPerKafkaTransaction && bytes < _config.MaxBytesPerKafkaTransaction)
                    {
                        if (input.TryRead(out var next))
                        {
                            if (!_topics.AllExist(next))
                            {
                                pending = next;
                                break;
                            }
                            Produce(producer, next);
                            batch.Add(next);
                            bytes += next.ByteCount;
                            continue;
                        }
                        var wait = lingerUntil - DateTime.UtcNow;
                        if (wait <= TimeSpan.Zero || !WaitForMore(input, wait, cancellationToken))
                        {
                            break;
                        }
                    }
                    Commit(producer, batch, identity, bytes, started);
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
                        foreach (var t in batch)
                        {
                            t.Dispose();
                        }
                    }
                }
            }
        }
        finally
        {
            pending?.Dispose();
        }
    }

    /// <summary>Writes the offset record, commits, writes the mirror and reports the commit. Blocking.</summary>
    private void Commit(IProducer<byte[]?, byte[]> producer, List<SourceTransaction> batch, SourceIdentity identity, long bytes, long started)
    {
        var last = batch[^1];
        var record = new OffsetRecord(last.CommitLsn, last.EndLsn, last.Xid, last.CommitTimestamp, batch.Count, identity, DateTimeOffset.UtcNow);
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
        FaultInjection.Reach(FaultPoint.BeforeKafkaCommit);
        if (unsent != 0)
        {
            throw new KafkaException(new Error(ErrorCode.Local_TimedOut, $"{unsent} records of the Kafka transaction were not acknowledged within {TransactionCallTimeout.TotalSeconds} s"));
        }

        producer.CommitTransaction(TransactionCallTimeout);
        FaultInjection.Reach(FaultPoint.AfterKafkaCommit);

        _mirror?.Write(_offsetKey, record);
        FaultInjection.Reach(FaultPoint.AfterMirrorWrite);
        CommitMetrics.Report(_progress.Metrics, batch, bytes, System.Diagnostics.Stopwatch.GetElapsedTime(started));
        long rows = 0;
        long memory = 0;
        var sourceTransactions = 0;
        foreach (var t in batch)
        {
            rows += t.RowCount;
            memory += t.MemoryBytes;
            if (!t.IsHeartbeat)
            {
                sourceTransactions++;
            }

            t.Dispose();
        }
        _progress.OnCommitted(last.CommitLsn, batch.Count, sourceTransactions, rows, bytes, memory);
        LogCommitted(_logger, _config.SlotName, last.CommitLsn, sourceTransactions, rows, bytes);
    }

    private static bool WaitForMore(ChannelReader<SourceTransaction> input, TimeSpan wait, CancellationToken cancellationToken)
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

    private void Produce(IProducer<byte[]?, byte[]> producer, SourceTransaction transaction)
    {
        var lsn = Encoding.UTF8.GetBytes(transaction.CommitLsn.ToString());
        var xid = Encoding.UTF8.GetBytes(transaction.Xid.ToString(CultureInfo.InvariantCulture));
        var timestamp = Encoding.UTF8.GetBytes(transaction.CommitTimestamp.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture));
        foreach (var payload in transaction.Payloads)
        {
            var topic = _topics.TopicOf(payload);
            if (payload.Kind == PayloadKind.Message)
            {
                var messageHeaders = new Headers
                {
                    { KafkaHeaders.ContentType, s_octetStream },
                    { KafkaHeaders.Kind, s_kindMessage },
                    { KafkaHeaders.MessagePrefix, Encoding.UTF8.GetBytes(payload.MessagePrefix ?? "") },
                    { KafkaHeaders.MessageLsn, Encoding.UTF8.GetBytes(payload.MessageLsn.ToString()) },
                    { KafkaHeaders.MessageTransactional, payload.MessageTransactional ? s_true : s_false },
                    { KafkaHeaders.CommitLsn, lsn },
                    { KafkaHeaders.Xid, xid },
                    { KafkaHeaders.CommitTimestamp, timestamp },
                };
                ProduceWithBackPressure(producer, new TopicPartition(topic, 0),
                    new Message<byte[]?, byte[]> { Key = null, Value = payload.GetValue(), Headers = messageHeaders });
                continue;
            }
            var headers = new Headers
            {
                { KafkaHeaders.ContentType, s_contentType },
                { KafkaHeaders.Kind, payload.Kind == PayloadKind.Truncate ? s_kindTruncate : s_kindChanges },
                { KafkaHeaders.CommitLsn, lsn },
                { KafkaHeaders.Xid, xid },
                { KafkaHeaders.CommitTimestamp, timestamp },
                { KafkaHeaders.Table, Encoding.UTF8.GetBytes($"{payload.Schema}.{payload.Table}") },
                { KafkaHeaders.Rows, Encoding.UTF8.GetBytes(payload.RowCount.ToString(CultureInfo.InvariantCulture)) },
                { KafkaHeaders.ChunkIndex, Encoding.UTF8.GetBytes(payload.ChunkIndex.ToString(CultureInfo.InvariantCulture)) },
                { KafkaHeaders.LastChunk, payload.IsLastChunk ? s_true : s_false },
                { KafkaHeaders.SchemaFingerprint, Encoding.UTF8.GetBytes(payload.SchemaFingerprint) },
            };
            if (payload.Kind == PayloadKind.Truncate)
            {
                headers.Add(KafkaHeaders.TruncateOptions, Encoding.UTF8.GetBytes(KafkaHeaders.TruncateOptionsText(payload.TruncateOptions)));
            }

            var message = new Message<byte[]?, byte[]> { Key = null, Value = payload.GetValue(), Headers = headers };
            ProduceWithBackPressure(producer, new TopicPartition(topic, 0), message);
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
    }

    private static readonly byte[] s_contentType = Encoding.UTF8.GetBytes(KafkaHeaders.ArrowStreamContentType);
    private static readonly byte[] s_kindChanges = Encoding.UTF8.GetBytes("changes");
    private static readonly byte[] s_kindTruncate = Encoding.UTF8.GetBytes("truncate");
    private static readonly byte[] s_kindMessage = Encoding.UTF8.GetBytes("message");
    private static readonly byte[] s_octetStream = Encoding.UTF8.GetBytes(KafkaHeaders.OctetStreamContentType);
    private static readonly byte[] s_true = Encoding.UTF8.GetBytes("true");
    private static readonly byte[] s_false = Encoding.UTF8.GetBytes("false");

    [LoggerMessage(EventId = 2001, Level = LogLevel.Debug, Message = "Committed Kafka transaction for slot {Slot} through {Lsn}: {SourceTransactions} source transactions, {Rows} rows, {Bytes} bytes")]
    private static partial void LogCommitted(ILogger logger, string slot, Lsn lsn, int sourceTransactions, long rows, long bytes);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Warning, Message = "Aborting the Kafka transaction failed: {Reason}")]
    private static partial void LogAbortFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Debug, Message = "librdkafka {Level} {Facility}: {Message}")]
    private static partial void LogLibrdkafka(ILogger logger, SyslogLevel level, string facility, string message);
}
