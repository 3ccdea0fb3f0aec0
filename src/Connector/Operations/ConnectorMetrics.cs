using System.Collections.Concurrent;
using Prometheus;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Diagnostics;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Queue;

namespace WalBridge.Connector.Operations;

/// <summary>
/// The connector's Prometheus metrics (docs/operations.md lists them with their meaning and Debezium's equivalent).
/// Counters are fed through <see cref="IPipelineMetrics"/> by the Kafka loop and the pgoutput decoder, and by the
/// runner (<see cref="OnRestart"/>, <see cref="OnFailure"/>); gauges are read at each scrape from the
/// <see cref="ProgressTracker"/>, the <see cref="ConnectorStatus"/>, the <see cref="SourceMonitor"/> and the spill folder.
/// </summary>
/// <remarks>
/// One registry per connector (no process-wide state). Thread-safe; <see cref="WriteAsync"/> may run concurrently with
/// every hook. Snapshot progress comes from the committed snapshot state (<c>ProgressTracker.Snapshot</c>) at each scrape.
/// </remarks>
public sealed class ConnectorMetrics : IPipelineMetrics
{
    private static readonly string[] s_walStatuses = ["reserved", "extended", "unreserved", "lost"];

    private readonly ConnectorConfig _config;
    private readonly CollectorRegistry _registry = Prometheus.Metrics.NewCustomRegistry();
    private readonly ConcurrentDictionary<(string, string), ChangeCounts> _seen = new();
    private readonly Counter _seenTotal;
    private readonly Counter _committedTransactions;
    private readonly Counter _committedRows;
    private readonly Counter _committedBytes;
    private readonly Counter _sourceTransactions;
    private readonly Counter _kafkaTransactions;
    private readonly Histogram _kafkaDuration;
    private readonly Histogram _kafkaBytes;
    private readonly Histogram _kafkaSize;
    private readonly Counter _restarts;
    private readonly Counter _errors;
    private readonly Counter _fenced;
    private long _lastCommitTicks;
    /// <summary>Per table: the snapshot (by LSN) and rows the counter counted last; touched only in the collect callback.</summary>
    private readonly Dictionary<string, (Offsets.Lsn Lsn, long Rows)> _snapshotRows = new(StringComparer.Ordinal);

    public ConnectorMetrics(ConnectorConfig config, ConnectorStatus status, ProgressTracker progress, SourceMonitor monitor, Func<long> takeovers)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(takeovers);
        _config = config;
        _registry.SetStaticLabels(new Dictionary<string, string> { ["connector"] = config.Name, ["slot"] = config.SlotName });
        DotNetStats.Register(_registry);
        var factory = Prometheus.Metrics.WithCustomRegistry(_registry);

        _seenTotal = factory.CreateCounter("walbridge_changes_seen_total",
            "Row changes decoded per table and operation (c insert, u update, d delete, t truncate), re-sent ones after a restart included; Debezium TotalNumberOf{Create,Update,Delete}EventsSeen. pgoutput only.",
            new CounterConfiguration { LabelNames = ["table", "op"] });
        _committedTransactions = factory.CreateCounter("walbridge_committed_transactions_total",
            "Source transactions committed to Kafka per table they changed.", new CounterConfiguration { LabelNames = ["table"] });
        _committedRows = factory.CreateCounter("walbridge_committed_rows_total",
            "Rows committed to Kafka per table.", new CounterConfiguration { LabelNames = ["table"] });
        _committedBytes = factory.CreateCounter("walbridge_committed_bytes_total",
            "Arrow payload bytes committed to Kafka per table.", new CounterConfiguration { LabelNames = ["table"] });
        _sourceTransactions = factory.CreateCounter("walbridge_source_transactions_total",
            "Source transactions committed to Kafka; Debezium NumberOfCommittedTransactions.");
        _kafkaTransactions = factory.CreateCounter("walbridge_kafka_transactions_total",
            "Kafka transactions by outcome (committed, aborted).", new CounterConfiguration { LabelNames = ["outcome"] });
        _kafkaDuration = factory.CreateHistogram("walbridge_kafka_transaction_duration_seconds",
            "Time from BeginTransaction to the end of CommitTransaction and the mirror write.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.001, 2, 16) });
        _kafkaBytes = factory.CreateHistogram("walbridge_kafka_transaction_bytes",
            "Payload bytes per committed Kafka transaction.", new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(1024, 4, 10) });
        _kafkaSize = factory.CreateHistogram("walbridge_kafka_transaction_source_transactions",
            "Source transactions per committed Kafka transaction.", new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(1, 2, 11) });
        _restarts = factory.CreateCounter("walbridge_restarts_total",
            "Pipeline restarts by reason: transient (a failure, with backoff), planned (decoding mode change), operator (admin API restart or resume), leadership (the lock session was lost).",
            new CounterConfiguration { LabelNames = ["reason"] });
        _errors = factory.CreateCounter("walbridge_errors_total",
            "Pipeline failures by class (transient, abort_required, fatal; Errors/FailureClassification).", new CounterConfiguration { LabelNames = ["class"] });
        _fenced = factory.CreateCounter("walbridge_kafka_fenced_total",
            "Times this instance's producer was fenced by another one with the same transactional.id.");
        foreach (var outcome in new[] { "committed", "aborted" })
        {
            _kafkaTransactions.WithLabels(outcome);
        }

        foreach (var kind in Enum.GetValues<FailureKind>())
        {
            _errors.WithLabels(ClassName(kind));
        }

        // From the committed snapshot progress (Queue/SnapshotProgress): what is in Kafka, not what was read.
        var snapshotRunning = factory.CreateGauge("walbridge_snapshot_running", "1 while the table's snapshot has chunks not yet committed to Kafka.",
            new GaugeConfiguration { LabelNames = ["table"] });
        var snapshotRows = factory.CreateCounter("walbridge_snapshot_rows_scanned_total", "Snapshot rows of the table committed to Kafka (a restarted snapshot counts its rows again).",
            new CounterConfiguration { LabelNames = ["table"] });
        var snapshotCompleted = factory.CreateGauge("walbridge_snapshot_completed", "1 once the table's snapshot is complete in Kafka (every chunk committed).",
            new GaugeConfiguration { LabelNames = ["table"] });

        var state = factory.CreateGauge("walbridge_connector_state", "1 for the connector's current state.", new GaugeConfiguration { LabelNames = ["state"] });
        var leader = factory.CreateGauge("walbridge_leader", "1 when this instance leads (streams), 0 when it waits as a standby.");
        var takeoverCount = factory.CreateCounter("walbridge_leadership_takeovers_total", "Times this instance took over from another leader.");
        var committedLsn = factory.CreateGauge("walbridge_committed_lsn", "The commit LSN of the last source transaction committed to Kafka and mirrored (as a number).");
        var receivedLsn = factory.CreateGauge("walbridge_received_lsn", "The end of the WAL received from PostgreSQL (as a number).");
        var currentWal = factory.CreateGauge("walbridge_source_wal_lsn", "The source's current WAL position, polled (pg_current_wal_lsn()).");
        var lagBytes = factory.CreateGauge("walbridge_lag_bytes", "WAL bytes the committed position is behind the source: pg_current_wal_lsn() (polled) − committed LSN.");
        var lagMs = factory.CreateGauge("walbridge_lag_milliseconds",
            "Now − commit time of the last source transaction (or heartbeat) committed to Kafka by this process; Debezium MilliSecondsBehindSource. NaN before the first commit.");
        var lastCommit = factory.CreateGauge("walbridge_last_commit_timestamp_seconds", "Commit time of the last source transaction (or heartbeat) committed to Kafka, Unix seconds.");
        var sourceUp = factory.CreateGauge("walbridge_source_up", "1 when the last poll of the source succeeded.");
        var walStatus = factory.CreateGauge("walbridge_slot_wal_status", "1 for the slot's wal_status (reserved, extended, unreserved: about to lose WAL, lost: invalidated).",
            new GaugeConfiguration { LabelNames = ["status"] });
        var retained = factory.CreateGauge("walbridge_slot_retained_wal_bytes", "WAL the slot keeps on the source's disk: pg_current_wal_lsn() − restart_lsn.");
        var safeWal = factory.CreateGauge("walbridge_slot_safe_wal_size_bytes", "WAL that may still be written before max_slot_wal_keep_size invalidates the slot (NaN when unlimited).");
        var slotActive = factory.CreateGauge("walbridge_slot_active", "1 when a walsender streams the slot.");
        var queueDepth = factory.CreateGauge("walbridge_queue_transactions", "Decoded source transactions waiting for Kafka; capacity minus this is Debezium QueueRemainingCapacity.");
        var queueCapacity = factory.CreateGauge("walbridge_queue_capacity_transactions", "queue.max.transactions; Debezium QueueTotalCapacity.");
        var queueBytes = factory.CreateGauge("walbridge_queue_bytes", "In-memory payload bytes of the waiting transactions; Debezium CurrentQueueSizeInBytes.");
        var queueBytesCapacity = factory.CreateGauge("walbridge_queue_capacity_bytes", "queue.max.bytes; Debezium MaxQueueSizeInBytes.");
        var spill = factory.CreateGauge("walbridge_spill_bytes", "Bytes in spill files under state.dir/spill (large and streamed transactions).");

        _registry.AddBeforeCollectCallback(() =>
        {
            var current = status.State;
            foreach (var s in Enum.GetValues<ConnectorState>())
            {
                state.WithLabels(StateName(s)).Set(s == current ? 1 : 0);
            }

            leader.Set(status.IsLeader ? 1 : 0);
            takeoverCount.IncTo(takeovers());
            var committed = progress.Committed;
            committedLsn.Set(committed.Value);
            receivedLsn.Set(progress.Received.Value);
            var ticks = Interlocked.Read(ref _lastCommitTicks);
            lagMs.Set(ticks == 0 ? double.NaN : Math.Max(0, (DateTime.UtcNow.Ticks - ticks) / (double)TimeSpan.TicksPerMillisecond));
            lastCommit.Set(ticks == 0 ? double.NaN : (ticks - DateTime.UnixEpoch.Ticks) / (double)TimeSpan.TicksPerSecond);
            sourceUp.Set(monitor.SourceReachable ? 1 : 0);
            if (monitor.Last is { } source)
            {
                currentWal.Set(source.CurrentWal.Value);
                lagBytes.Set(LagBytes(source, committed));
                foreach (var s in s_walStatuses)
                {
                    walStatus.WithLabels(s).Set(source.WalStatus == s ? 1 : 0);
                }

                retained.Set(source.RetainedWalBytes);
                safeWal.Set(source.SafeWalSize ?? double.NaN);
                slotActive.Set(source.SlotActive ? 1 : 0);
            }

            // The running snapshot, else the last one this process completed (a fast one may end between two scrapes).
            if ((progress.Snapshot.Committed ?? progress.Snapshot.LastCompleted) is { } snapshot)
            {
                foreach (var table in snapshot.Tables)
                {
                    var done = snapshot.Complete || table.DoneCount == table.Chunks;
                    snapshotRunning.WithLabels(table.Table).Set(done ? 0 : 1);
                    snapshotCompleted.WithLabels(table.Table).Set(done ? 1 : 0);
                    var counted = _snapshotRows.TryGetValue(table.Table, out var seen) && seen.Lsn == snapshot.Lsn ? seen.Rows : 0;
                    snapshotRows.WithLabels(table.Table).Inc(Math.Max(0, table.Rows - counted));
                    _snapshotRows[table.Table] = (snapshot.Lsn, Math.Max(counted, table.Rows));
                }
            }

            queueDepth.Set(progress.Queued);
            queueCapacity.Set(config.QueueMaxTransactions);
            queueBytes.Set(progress.QueuedMemoryBytes);
            queueBytesCapacity.Set(config.QueueMaxBytes);
            spill.Set(SpillBytes());
            foreach (var ((schema, table), counts) in _seen)
            {
                var name = $"{schema}.{table}";
                _seenTotal.WithLabels(name, "c").IncTo(counts.Inserts);
                _seenTotal.WithLabels(name, "u").IncTo(counts.Updates);
                _seenTotal.WithLabels(name, "d").IncTo(counts.Deletes);
                _seenTotal.WithLabels(name, "t").IncTo(counts.Truncates);
            }
        });
    }

    /// <summary>The lag in bytes for a poll of the source and a committed position (the slot's when nothing is committed yet).</summary>
    public static long LagBytes(SourceSnapshot source, Offsets.Lsn committed)
    {
        ArgumentNullException.ThrowIfNull(source);
        var from = committed.IsZero ? source.ConfirmedFlush : committed;
        return from.IsZero || source.CurrentWal <= from ? 0 : (long)(source.CurrentWal.Value - from.Value);
    }

    /// <summary>Milliseconds since the commit time of the last committed source transaction, or null before the first.</summary>
    public double? LagMilliseconds
    {
        get
        {
            var ticks = Interlocked.Read(ref _lastCommitTicks);
            return ticks == 0 ? null : Math.Max(0, (DateTime.UtcNow.Ticks - ticks) / (double)TimeSpan.TicksPerMillisecond);
        }
    }

    /// <summary>Writes every metric in the Prometheus text format.</summary>
    public Task WriteAsync(Stream destination, CancellationToken cancellationToken) => _registry.CollectAndExportAsTextAsync(destination, cancellationToken);

    public ChangeCounts TableChanges(string schema, string table) => _seen.GetOrAdd((schema, table), _ => new ChangeCounts());

    public void OnKafkaTransactionCommitted(TimeSpan duration, long bytes, int sourceTransactions, DateTimeOffset lastCommitTimestamp)
    {
        _kafkaTransactions.WithLabels("committed").Inc();
        _kafkaDuration.Observe(duration.TotalSeconds);
        _kafkaBytes.Observe(bytes);
        _kafkaSize.Observe(sourceTransactions);
        _sourceTransactions.Inc(sourceTransactions);
        var ticks = lastCommitTimestamp.UtcTicks;
        var seen = Interlocked.Read(ref _lastCommitTicks);
        while (ticks > seen)
        {
            var was = Interlocked.CompareExchange(ref _lastCommitTicks, ticks, seen);
            if (was == seen)
            {
                break;
            }

            seen = was;
        }
    }

    public void OnTableCommitted(string schema, string table, int sourceTransactions, long rows, long bytes)
    {
        var name = $"{schema}.{table}";
        _committedTransactions.WithLabels(name).Inc(sourceTransactions);
        _committedRows.WithLabels(name).Inc(rows);
        _committedBytes.WithLabels(name).Inc(bytes);
    }

    public void OnKafkaTransactionAborted() => _kafkaTransactions.WithLabels("aborted").Inc();

    /// <summary>A new pipeline attempt starts for <paramref name="reason"/> (transient, planned, operator, leadership).</summary>
    public void OnRestart(string reason) => _restarts.WithLabels(reason).Inc();

    /// <summary>A pipeline attempt failed.</summary>
    public void OnFailure(Exception failure, FailureKind kind)
    {
        ArgumentNullException.ThrowIfNull(failure);
        _errors.WithLabels(ClassName(kind)).Inc();
        if (FailureClassification.IsFenced(failure))
        {
            _fenced.Inc();
        }
    }

    private long SpillBytes()
    {
        try
        {
            var directory = new DirectoryInfo(_config.SpillDirectory);
            return directory.Exists ? directory.EnumerateFiles().Sum(f => f.Length) : 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    /// <summary>The state's name in the metrics and the admin API (snake_case).</summary>
    public static string StateName(ConnectorState state) => state switch
    {
        ConnectorState.Starting => "starting",
        ConnectorState.Standby => "standby",
        ConnectorState.Streaming => "streaming",
        ConnectorState.Paused => "paused",
        ConnectorState.Retrying => "retrying",
        ConnectorState.Failed => "failed",
        ConnectorState.Stopped => "stopped",
        _ => throw new ArgumentOutOfRangeException(nameof(state)),
    };

    /// <summary>A failure class's name in the metrics and the admin API.</summary>
    public static string ClassName(FailureKind kind) => kind switch
    {
        FailureKind.Transient => "transient",
        FailureKind.AbortRequired => "abort_required",
        FailureKind.Fatal => "fatal",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };
}
