using WalBridge.Connector.Diagnostics;
using WalBridge.Offsets;

namespace WalBridge.Connector.Queue;

/// <summary>
/// Shared progress of one pipeline: what was received from PostgreSQL and what is committed in
/// Kafka. Thread-safe. <see cref="Committed"/> only moves forward.
/// </summary>
public sealed class ProgressTracker
{
    private readonly object _gate = new();
    private Lsn _committed;
    private ulong _receivedValue;
    private long _transactions;
    private long _rows;
    private long _bytes;
    private long _kafkaTransactions;
    private int _queued;
    private long _queuedMemory;
    private TaskCompletionSource _commitSignal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _sourceReady = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Completes once the replication slot and publication exist and Kafka holds a position for them (with a new
    /// snapshot: once its plan is committed): from then on every committed change of a published table is kept by the
    /// slot and will be delivered.
    /// </summary>
    public Task SourceReady => _sourceReady.Task;

    internal void OnSourceReady() => _sourceReady.TrySetResult();

    /// <summary>The committed progress of a running snapshot (chunks in Kafka), shared by the snapshot readers and the Kafka loop.</summary>
    public SnapshotProgress Snapshot { get; } = new();

    /// <summary>
    /// The incremental snapshots' progress in the last committed offsets record (loaded at the start of an attempt, set
    /// by the Kafka loop after each commit); null when none ever ran.
    /// </summary>
    public IncrementalSnapshotState? Incremental
    {
        get => Volatile.Read(ref _incremental);
        set => Volatile.Write(ref _incremental, value);
    }

    private IncrementalSnapshotState? _incremental;

    /// <summary>Where the stages report for the operations metrics; set once before the first pipeline starts.</summary>
    public IPipelineMetrics Metrics { get; set; } = NullPipelineMetrics.Instance;

    /// <summary>The commit LSN of the last source transaction committed to Kafka and mirrored.</summary>
    public Lsn Committed
    {
        get
        {
            lock (_gate)
            {
                return _committed;
            }
        }
    }

    /// <summary>The end of the WAL received from the server so far.</summary>
    public Lsn Received => new(Interlocked.Read(ref _receivedValue));

    public long CommittedTransactions => Interlocked.Read(ref _transactions);
    public long CommittedRows => Interlocked.Read(ref _rows);
    public long CommittedBytes => Interlocked.Read(ref _bytes);
    public long KafkaTransactions => Interlocked.Read(ref _kafkaTransactions);

    /// <summary>Source transactions decoded but not yet committed to Kafka.</summary>
    public int Queued => Volatile.Read(ref _queued);

    /// <summary>In-memory payload bytes of the queued transactions.</summary>
    public long QueuedMemoryBytes => Interlocked.Read(ref _queuedMemory);

    /// <summary>Sets the starting point (the position already committed in Kafka).</summary>
    public void Reset(Lsn committed)
    {
        lock (_gate)
        {
            _committed = Lsn.Max(_committed, committed);
            _queued = 0;
            _queuedMemory = 0;
        }
    }

    /// <summary>Called for every message: lock-free.</summary>
    public void OnReceived(Lsn walEnd)
    {
        var current = Interlocked.Read(ref _receivedValue);
        while (walEnd.Value > current)
        {
            var seen = Interlocked.CompareExchange(ref _receivedValue, walEnd.Value, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }

    public void OnQueued(long memoryBytes)
    {
        Interlocked.Increment(ref _queued);
        Interlocked.Add(ref _queuedMemory, memoryBytes);
    }

    /// <summary>Records a committed Kafka transaction and wakes whoever waits to acknowledge it.</summary>
    /// <param name="commitLsn">The position now committed.</param>
    /// <param name="handedOver">Items the Kafka transaction took from the queue (source transactions and heartbeats).</param>
    /// <param name="sourceTransactions">Source transactions among them.</param>
    /// <param name="rows">Rows they held.</param>
    /// <param name="bytes">Payload bytes they held.</param>
    /// <param name="memoryBytes">Of those, the bytes that were held in memory.</param>
    public void OnCommitted(Lsn commitLsn, int handedOver, int sourceTransactions, long rows, long bytes, long memoryBytes)
    {
        TaskCompletionSource signal;
        lock (_gate)
        {
            _committed = Lsn.Max(_committed, commitLsn);
            signal = _commitSignal;
            _commitSignal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        Interlocked.Add(ref _transactions, sourceTransactions);
        Interlocked.Add(ref _rows, rows);
        Interlocked.Add(ref _bytes, bytes);
        Interlocked.Increment(ref _kafkaTransactions);
        Interlocked.Add(ref _queued, -handedOver);
        Interlocked.Add(ref _queuedMemory, -memoryBytes);
        signal.TrySetResult();
    }

    /// <summary>Completes at the next commit or after <paramref name="timeout"/>.</summary>
    public async Task WaitForCommitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        Task signal;
        lock (_gate)
        {
            signal = _commitSignal.Task;
        }

        try
        {
            await signal.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
    }
}
