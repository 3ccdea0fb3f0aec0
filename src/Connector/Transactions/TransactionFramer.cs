using WalBridge.Connector.Configuration;
using WalBridge.Connector.Errors;
using WalBridge.Offsets;

namespace WalBridge.Connector.Transactions;

/// <summary>How one record batch was cut from the rows of one table partition (see <see cref="TableBatch"/>).</summary>
/// <param name="Rows">Rows in the batch.</param>
/// <param name="Transactions">Source transactions with rows in it.</param>
/// <param name="FirstCommitLsn">Commit LSN of its first row's transaction.</param>
/// <param name="LastCommitLsn">Commit LSN of its last row's transaction.</param>
/// <param name="FirstChunk">Which piece of the first transaction's rows it starts with (0: their first).</param>
/// <param name="EndsInOpenTransaction">
/// Whether its last rows belong to the transaction still open: then whether they are that transaction's last rows of
/// the table partition is known only later (when its next batch of the table partition comes, or at its commit).
/// </param>
internal readonly record struct BatchCut(int Rows, int Transactions, Lsn FirstCommitLsn, Lsn LastCommitLsn, int FirstChunk, bool EndsInOpenTransaction);

/// <summary>
/// The one owner of transaction framing, shared by both decoders (pgoutput's and wal2arrow's): it pairs Begin and
/// Commit and checks them, drops transactions already in Kafka (commit LSN at or below <see cref="SkipThrough"/>:
/// PostgreSQL re-sends from the slot's confirmed position), collects committed transactions into an open
/// <see cref="TransactionGroup"/> (their record batches per table partition and schema, logical messages, heartbeat
/// positions; values in memory, then in a spill file), and hands the group over when the decoder asks.
/// </summary>
/// <remarks>
/// Single-threaded: used by the replication reader's thread only. Transactions are always whole in a group: a group is
/// taken only between transactions. Protocol violations (a Begin inside a transaction, a change outside one, a
/// commit LSN that is not the Begin's, chunks out of order) throw <see cref="ReplicationProtocolException"/>, fatal.
/// </remarks>
internal sealed class TransactionFramer : IDisposable
{
    private readonly ConnectorConfig _config;
    private readonly string _protocol;
    private readonly PayloadCollector _payloads;
    private readonly List<CommittedTransaction> _transactions = [];
    private readonly List<TableStream> _tables = [];
    private readonly List<LogicalMessage> _messages = [];
    private readonly List<SnapshotMarker> _markers = [];
    /// <summary>Per (relation, partition): the open group's latest stream (batches are appended while the schema stays).</summary>
    private readonly Dictionary<(uint RelationId, int Partition), TableStream> _latest = [];
    /// <summary>Per (relation, partition): chunks of the open transaction that a plugin declared (wal2arrow), for checking.</summary>
    private readonly Dictionary<(uint RelationId, int Partition), DeclaredChunks> _declared = [];
    /// <summary>Per (relation, partition): the latest batch ending in the open transaction, whose completeness is still open.</summary>
    private readonly Dictionary<(uint RelationId, int Partition), TableBatch> _held = [];
    private Lsn _position;
    /// <summary>When the source was known to be at <see cref="_position"/>: a commit's time, or when a heartbeat or message was read.</summary>
    private DateTimeOffset _positionTime;
    private uint _xid;
    private Lsn _finalLsn;
    private DateTimeOffset _timestamp;
    private int _rows;

    /// <param name="config">The connector configuration (spill directory, memory limit, heartbeat prefix).</param>
    /// <param name="skipThrough">Transactions committed at or before this position are dropped (already in Kafka).</param>
    /// <param name="protocol">Names the protocol in error messages (<c>pgoutput</c>, <c>wal2arrow</c>).</param>
    /// <param name="windows">The stream's incremental snapshot windows (batches of watched tables are reported to them, and groups carry their progress); null for a snapshot chunk's framer.</param>
    public TransactionFramer(ConnectorConfig config, Lsn skipThrough, string protocol, SnapshotWindows? windows = null)
    {
        _config = config;
        _protocol = protocol;
        _payloads = new PayloadCollector(config.SpillDirectory, config.TransactionMemoryBytes);
        SkipThrough = skipThrough;
        Windows = windows;
    }

    /// <summary>The stream's incremental snapshot windows, or null.</summary>
    public SnapshotWindows? Windows { get; }

    /// <summary>Transactions with a commit LSN at or below this are dropped as already delivered.</summary>
    public Lsn SkipThrough { get; }

    /// <summary>Whether a transaction is open (Begin seen, Commit not yet).</summary>
    public bool InTransaction { get; private set; }

    /// <summary>Whether the open transaction is one already in Kafka: its contents are not kept.</summary>
    public bool Skipping { get; private set; }

    /// <summary>The open transaction's id, commit LSN (from its Begin) and commit time.</summary>
    public uint Xid => _xid;
    public Lsn FinalLsn => _finalLsn;
    public DateTimeOffset CommitTimestamp => _timestamp;

    /// <summary>Committed transactions in the open group.</summary>
    public int GroupTransactions => _transactions.Count;

    /// <summary>Bytes of the open group's batches and messages.</summary>
    public long GroupBytes => _payloads.TotalBytes;

    /// <summary>Whether the open group holds anything to hand over (a transaction, a message, or a heartbeat position).</summary>
    public bool HasGroup => _transactions.Count > 0 || _messages.Count > 0 || _markers.Count > 0 || !_position.IsZero;

    /// <summary>
    /// The one rule for when the open group goes to Kafka (between transactions only): as soon as the input is idle
    /// (nothing more is waiting on the replication connection, so waiting would only add latency), or when it holds
    /// <c>transaction.max.source.transactions</c> transactions or <c>transaction.max.bytes</c> bytes. Under load, groups
    /// grow by themselves while the connection delivers faster than it is drained.
    /// </summary>
    /// <param name="inputIdle">Whether no replication message is waiting to be read.</param>
    /// <param name="pendingBytes">Bytes the decoder still holds for the group (rows not yet written as batches); asked only between transactions.</param>
    public bool GroupDue(bool inputIdle, Func<long>? pendingBytes = null) =>
        !InTransaction && HasGroup
        && (inputIdle || _transactions.Count >= _config.MaxSourceTransactionsPerKafkaTransaction
            || _payloads.TotalBytes + (pendingBytes?.Invoke() ?? 0) >= _config.MaxBytesPerKafkaTransaction);

    public void Begin(uint xid, Lsn finalLsn, DateTimeOffset commitTimestamp, Lsn lsn)
    {
        if (InTransaction)
        {
            throw new ReplicationProtocolException($"{_protocol} Begin of xid {xid} inside open transaction {_xid}", lsn);
        }

        InTransaction = true;
        Skipping = finalLsn <= SkipThrough;
        _xid = xid;
        _finalLsn = finalLsn;
        _timestamp = commitTimestamp;
        _rows = 0;
        _declared.Clear();
        _held.Clear();
    }

    /// <summary>
    /// A relation's schema changed inside the open transaction (wal2arrow): its partitions may go on with chunks in the
    /// new schema after one they marked last (the plugin's segments, native/wal2arrow/README.md).
    /// </summary>
    public void RelationChanged(uint relationId)
    {
        foreach (var (key, chunks) in _declared)
        {
            if (key.RelationId == relationId)
            {
                chunks.Last = false;
            }
        }
    }

    /// <summary>
    /// Adds one record batch message of a table partition to the open group. A plugin that declares each chunk's index
    /// and last flag itself (wal2arrow: a batch holds one transaction's rows) passes them in <paramref name="declared"/>
    /// to be checked. The batch may hold rows of earlier transactions of the group too (pgoutput's builders stay open
    /// across transactions); it must be added before <see cref="TakeGroup"/>.
    /// </summary>
    /// <exception cref="LocalStorageException">The value cannot be spilled.</exception>
    public void AddBatch(uint relationId, string schema, string table, int partition, ReadOnlyMemory<byte> schemaMessage, string schemaFingerprint,
        ReadOnlySpan<byte> batch, in BatchCut cut, Lsn lsn, (int Index, bool Last)? declared = null)
    {
        if (declared is { } d)
        {
            RequireTransaction("chunk", lsn);
            var chunks = _declared.TryGetValue((relationId, partition), out var known) ? known : _declared[(relationId, partition)] = new DeclaredChunks();
            if (d.Index != chunks.Count || chunks.Last)
            {
                throw new ReplicationProtocolException(
                    $"{_protocol} chunk {d.Index} of {schema}.{table} partition {partition} in transaction {_xid} arrived after {chunks.Count} chunks{(chunks.Last ? ", the last of which was marked last" : "")}", lsn);
            }

            chunks.Count++;
            chunks.Last = d.Last;
        }
        if (Skipping && InTransaction)
        {
            return;
        }

        if (Windows is { } windows && windows.Watches(schema, table))
        {
            windows.Observe(schema, table, schemaMessage.Span, batch);
        }

        if (!_latest.TryGetValue((relationId, partition), out var stream) || stream.SchemaFingerprint != schemaFingerprint)
        {
            stream = new TableStream
            {
                RelationId = relationId,
                Schema = schema,
                Table = table,
                Partition = partition,
                SchemaMessage = schemaMessage,
                SchemaFingerprint = schemaFingerprint,
            };
            _tables.Add(stream);
            _latest[(relationId, partition)] = stream;
        }
        if (_held.Remove((relationId, partition), out var previous))
        {
            // The open transaction's rows of this table partition go on in this batch.
            previous.LastComplete = false;
        }

        var added = new TableBatch
        {
            Bytes = _payloads.StoreBatch(batch, FirstXid, schemaMessage),
            Rows = cut.Rows,
            Transactions = cut.Transactions,
            FirstCommitLsn = cut.FirstCommitLsn,
            LastCommitLsn = cut.LastCommitLsn,
            FirstChunk = cut.FirstChunk,
            LastComplete = true,
        };
        stream.Batches.Add(added);
        if (cut.EndsInOpenTransaction && InTransaction)
        {
            _held[(relationId, partition)] = added;
        }
    }

    /// <summary>
    /// The decoder keeps more rows of the open transaction for this table partition after its latest batch (pgoutput:
    /// in a builder not written yet): that batch does not end the transaction's rows.
    /// </summary>
    public void MarkContinued(uint relationId, int partition)
    {
        if (_held.Remove((relationId, partition), out var previous))
        {
            previous.LastComplete = false;
        }
    }

    /// <summary>An incremental snapshot marker written with the open transaction (after the group's rows).</summary>
    public void AddMarker(SnapshotMarker marker)
    {
        if (!Skipping)
        {
            _markers.Add(marker);
        }
    }

    /// <summary>Counts rows of the open transaction (for its <see cref="CommittedTransaction.Rows"/>).</summary>
    public void CountRows(int rows) => _rows += rows;

    /// <summary>
    /// A logical decoding message. This connector's own heartbeat, outside a transaction, moves the group's position
    /// (every commit before it was handed over, so it may be acknowledged); other connectors' heartbeats are ignored. A
    /// transactional message joins its transaction; a non-transactional one is delivered on its own at its LSN.
    /// </summary>
    public void Message(bool transactional, Lsn messageLsn, string prefix, ReadOnlySpan<byte> content, Lsn lsn)
    {
        if (prefix.StartsWith(ConnectorConfig.HeartbeatPrefixBase, StringComparison.Ordinal))
        {
            if (prefix == _config.HeartbeatPrefix && !transactional && !InTransaction && messageLsn > SkipThrough)
            {
                _position = Lsn.Max(_position, messageLsn);
                _positionTime = DateTimeOffset.UtcNow;
            }

            return;
        }
        if (transactional)
        {
            RequireTransaction($"transactional Message '{prefix}'", lsn);
            if (!Skipping)
            {
                _messages.Add(new LogicalMessage
                {
                    Prefix = prefix,
                    MessageLsn = messageLsn,
                    Transactional = true,
                    Content = _payloads.Store(content, FirstXid),
                    Xid = _xid,
                    CommitLsn = _finalLsn,
                    CommitTimestamp = _timestamp,
                });
            }
            return;
        }
        if (InTransaction)
        {
            throw new ReplicationProtocolException($"{_protocol} non-transactional Message '{prefix}' inside transaction {_xid}", lsn);
        }

        if (messageLsn <= SkipThrough)
        {
            return;
        }

        _messages.Add(new LogicalMessage
        {
            Prefix = prefix,
            MessageLsn = messageLsn,
            Transactional = false,
            Content = _payloads.Store(content, FirstXid),
            Xid = 0,
            CommitLsn = messageLsn,
            CommitTimestamp = DateTimeOffset.UtcNow,
        });
        _position = Lsn.Max(_position, messageLsn);
        _positionTime = DateTimeOffset.UtcNow;
    }

    /// <summary>Completes the open transaction: it joins the open group (unless it is skipped).</summary>
    public void Commit(in CommitFields commit, Lsn lsn)
    {
        RequireTransaction("Commit", lsn);
        if (commit.CommitLsn != _finalLsn)
        {
            throw new ReplicationProtocolException($"{_protocol} Commit LSN {commit.CommitLsn} differs from Begin's final LSN {_finalLsn} (xid {_xid})", lsn);
        }

        InTransaction = false;
        foreach (var ((relationId, partition), chunks) in _declared)
        {
            if (!chunks.Last)
            {
                throw new ReplicationProtocolException($"{_protocol} transaction {_xid} committed without a last chunk for relation {relationId} partition {partition}", lsn);
            }
        }
        _declared.Clear();
        // The open transaction's last batch of each table partition: its rows end there.
        _held.Clear();
        if (Skipping)
        {
            return;
        }

        var committedAt = commit.Timestamp == default ? _timestamp : commit.Timestamp;
        _transactions.Add(new CommittedTransaction(_xid, commit.CommitLsn, commit.EndLsn, committedAt, _rows));
        _position = Lsn.Max(_position, commit.CommitLsn);
        _positionTime = committedAt;
    }

    /// <summary>
    /// Hands the open group over (between transactions only) and starts a new one. The decoder must have added every
    /// batch of the group's transactions first.
    /// </summary>
    /// <param name="snapshot">When the group is a snapshot chunk: what it contributes to the snapshot.</param>
    public TransactionGroup TakeGroup(SnapshotPart? snapshot = null)
    {
        if (InTransaction)
        {
            throw new InvalidOperationException("A group can only be taken between transactions.");
        }

        var (spill, memory, total) = _payloads.Complete();
        var group = new TransactionGroup
        {
            Transactions = [.. _transactions],
            Tables = [.. _tables],
            Messages = [.. _messages],
            Position = _position,
            PositionTime = _positionTime,
            Spill = spill,
            MemoryBytes = memory,
            ByteCount = total,
            Snapshot = snapshot,
            StreamMarkers = [.. _markers],
            Incremental = Windows is { Carries: true } windows ? windows.State : null,
        };
        _markers.Clear();
        _transactions.Clear();
        _tables.Clear();
        _messages.Clear();
        _latest.Clear();
        _position = Lsn.Zero;
        return group;
    }

    public void Dispose() => _payloads.Dispose();

    /// <summary>Names the group's spill file: the first transaction of the group (or the open one).</summary>
    private uint FirstXid => _transactions.Count > 0 ? _transactions[0].Xid : _xid;

    private void RequireTransaction(string what, Lsn lsn)
    {
        if (!InTransaction)
        {
            throw new ReplicationProtocolException($"{_protocol} {what} outside a transaction", lsn);
        }
    }

    private sealed class DeclaredChunks
    {
        public int Count { get; set; }
        public bool Last { get; set; }
    }
}
