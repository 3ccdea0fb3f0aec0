namespace WalBridge.Connector.Diagnostics;

/// <summary>
/// The hooks through which the pipeline's stages report what they did, for the operations metrics. Each stage calls
/// it at one or two points; the implementation (src/Connector/Operations) only counts.
/// </summary>
/// <remarks>
/// Threading: every member may be called from any thread and must not block or throw. <see cref="TableChanges"/> is
/// meant to be called once per table and its result kept (the hot path then only increments).
/// </remarks>
public interface IPipelineMetrics
{
    /// <summary>The counters of changes seen (decoded) for one table; the same instance for the same table.</summary>
    ChangeCounts TableChanges(string schema, string table);

    /// <summary>A Kafka transaction committed (and its position was mirrored).</summary>
    /// <param name="duration">From <c>BeginTransaction</c> to the end of the commit.</param>
    /// <param name="bytes">Payload bytes it held.</param>
    /// <param name="sourceTransactions">Source transactions it held (heartbeats not counted).</param>
    /// <param name="lastCommitTimestamp">Commit time of its last source transaction (or heartbeat): what the lag in milliseconds is measured from.</param>
    void OnKafkaTransactionCommitted(TimeSpan duration, long bytes, int sourceTransactions, DateTimeOffset lastCommitTimestamp);

    /// <summary>Part of a committed Kafka transaction: one table's share.</summary>
    void OnTableCommitted(string schema, string table, int sourceTransactions, long rows, long bytes);

    /// <summary>A Kafka transaction was aborted (or abandoned) instead of committed.</summary>
    void OnKafkaTransactionAborted();
}

/// <summary>Changes seen for one table, by operation. Thread-safe; incremented by the replication reader only.</summary>
public sealed class ChangeCounts
{
    private long _inserts;
    private long _updates;
    private long _deletes;
    private long _truncates;

    public long Inserts => Interlocked.Read(ref _inserts);
    public long Updates => Interlocked.Read(ref _updates);
    public long Deletes => Interlocked.Read(ref _deletes);
    public long Truncates => Interlocked.Read(ref _truncates);

    public void Insert() => Interlocked.Increment(ref _inserts);
    public void Update() => Interlocked.Increment(ref _updates);
    public void Delete() => Interlocked.Increment(ref _deletes);
    public void Truncate() => Interlocked.Increment(ref _truncates);
}

/// <summary>Counts nothing: the default where no metrics are wanted (tests, tools).</summary>
public sealed class NullPipelineMetrics : IPipelineMetrics
{
    private readonly ChangeCounts _discarded = new();

    private NullPipelineMetrics()
    {
    }

    public static NullPipelineMetrics Instance { get; } = new();

    public ChangeCounts TableChanges(string schema, string table) => _discarded;

    public void OnKafkaTransactionCommitted(TimeSpan duration, long bytes, int sourceTransactions, DateTimeOffset lastCommitTimestamp)
    {
    }

    public void OnTableCommitted(string schema, string table, int sourceTransactions, long rows, long bytes)
    {
    }

    public void OnKafkaTransactionAborted()
    {
    }
}
