using WalBridge.Connector.Configuration;
using WalBridge.Connector.Errors;
using WalBridge.Offsets;

namespace WalBridge.Connector.Transactions;

/// <summary>
/// The one owner of transaction framing, shared by both decoders (pgoutput's and wal2arrow's): it pairs Begin and
/// Commit and checks them, drops transactions already in Kafka (commit LSN at or below <see cref="SkipThrough"/>:
/// PostgreSQL re-sends from the slot's confirmed position), stores a transaction's record values (in memory, then in
/// a spill file), numbers each table's chunks and marks its last one, places logical decoding messages and
/// heartbeats, and hands over each completed <see cref="SourceTransaction"/>.
/// </summary>
/// <remarks>
/// Single-threaded: used by the replication reader's thread only. After <see cref="Commit"/> it is ready for the next
/// transaction. Protocol violations (a Begin inside a transaction, a change outside one, a commit LSN that is not the
/// Begin's, chunks out of order) throw <see cref="ReplicationProtocolException"/>, which is fatal.
/// </remarks>
internal sealed class TransactionFramer : IDisposable
{
    private readonly ConnectorConfig _config;
    private readonly string _protocol;
    private readonly PayloadCollector _payloads;
    /// <summary>Per relation id: the table's chunks in the open transaction.</summary>
    private readonly Dictionary<uint, TableChunks> _tables = [];
    private uint _xid;
    private Lsn _finalLsn;
    private DateTimeOffset _beginTimestamp;
    private int _rows;
    private SourceTransaction? _completed;

    /// <param name="config">The connector configuration (spill directory, memory limit, heartbeat prefix).</param>
    /// <param name="skipThrough">Transactions committed at or before this position are dropped (already in Kafka).</param>
    /// <param name="protocol">Names the protocol in error messages (<c>pgoutput</c>, <c>wal2arrow</c>).</param>
    public TransactionFramer(ConnectorConfig config, Lsn skipThrough, string protocol)
    {
        _config = config;
        _protocol = protocol;
        _payloads = new PayloadCollector(config.SpillDirectory, config.TransactionMemoryBytes);
        SkipThrough = skipThrough;
    }

    /// <summary>Transactions with a commit LSN at or below this are dropped as already delivered.</summary>
    public Lsn SkipThrough { get; }

    /// <summary>Whether a transaction is open (Begin seen, Commit not yet).</summary>
    public bool InTransaction { get; private set; }

    /// <summary>Whether the open transaction is one already in Kafka: its contents are not kept.</summary>
    public bool Skipping { get; private set; }

    /// <summary>The open transaction's id.</summary>
    public uint Xid => _xid;

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
        _beginTimestamp = commitTimestamp;
        _rows = 0;
        _payloads.Discard();
        _tables.Clear();
    }

    /// <summary>
    /// Adds one record of a table: a chunk of rows or a truncate. The framer numbers the table's chunks; a plugin that
    /// declares the index and last flag itself (wal2arrow) passes them in <paramref name="declared"/> to be checked.
    /// </summary>
    /// <exception cref="LocalStorageException">The value cannot be spilled.</exception>
    public void AddChunk(uint relationId, string schema, string table, PayloadKind kind, int rows, string schemaFingerprint,
        ReadOnlySpan<byte> value, TruncateOptions truncateOptions, Lsn lsn, (int Index, bool Last)? declared = null)
    {
        RequireTransaction("chunk", lsn);
        if (Skipping)
        {
            return;
        }

        if (!_tables.TryGetValue(relationId, out var chunks))
        {
            chunks = new TableChunks();
            _tables[relationId] = chunks;
        }
        if (declared is { } d)
        {
            if (d.Index != chunks.Count || chunks.DeclaredLast)
            {
                throw new ReplicationProtocolException(
                    $"{_protocol} chunk {d.Index} of {schema}.{table} in transaction {_xid} arrived after {chunks.Count} chunks{(chunks.DeclaredLast ? ", the last of which was marked last" : "")}", lsn);
            }

            chunks.Declared = true;
            chunks.DeclaredLast = d.Last;
        }
        var stored = _payloads.Store(value, _xid);
        var payload = new TablePayload
        {
            Schema = schema,
            Table = table,
            Kind = kind,
            ChunkIndex = chunks.Count++,
            RowCount = rows,
            SchemaFingerprint = schemaFingerprint,
            Value = stored.Memory,
            Spill = stored.Spill,
            SpillOffset = stored.SpillOffset,
            Length = stored.Length,
            TruncateOptions = truncateOptions,
        };
        _payloads.Add(payload);
        chunks.Last = payload;
        _rows += rows;
    }

    /// <summary>
    /// A logical decoding message. This connector's own heartbeat, outside a transaction, completes a position-only
    /// transaction (every commit before it was handed over, so its position may be acknowledged); other connectors'
    /// heartbeats are ignored. A transactional message joins its transaction; a non-transactional one is delivered on
    /// its own, positioned at its LSN.
    /// </summary>
    public void Message(bool transactional, Lsn messageLsn, string prefix, ReadOnlySpan<byte> content, Lsn lsn)
    {
        if (prefix.StartsWith(ConnectorConfig.HeartbeatPrefixBase, StringComparison.Ordinal))
        {
            if (prefix == _config.HeartbeatPrefix && !transactional && !InTransaction && messageLsn > SkipThrough)
            {
                _completed = Positioned(messageLsn, [], heartbeat: true);
            }

            return;
        }
        if (transactional)
        {
            RequireTransaction($"transactional Message '{prefix}'", lsn);
            if (!Skipping)
            {
                _payloads.Add(MessagePayload(prefix, messageLsn, transactional, _payloads.Store(content, _xid)));
            }

            return;
        }
        if (InTransaction)
        {
            throw new ReplicationProtocolException($"{_protocol} non-transactional Message '{prefix}' inside transaction {_xid}", lsn);
        }

        if (messageLsn > SkipThrough)
        {
            _completed = Positioned(messageLsn, [MessagePayload(prefix, messageLsn, transactional, new StoredValue(content.ToArray(), null, 0, content.Length))], heartbeat: false);
        }
    }

    /// <summary>Completes the open transaction (unless it is skipped); take it with <see cref="TryTakeCompleted"/>.</summary>
    public void Commit(in CommitFields commit, Lsn lsn)
    {
        RequireTransaction("Commit", lsn);
        if (commit.CommitLsn != _finalLsn)
        {
            throw new ReplicationProtocolException($"{_protocol} Commit LSN {commit.CommitLsn} differs from Begin's final LSN {_finalLsn} (xid {_xid})", lsn);
        }

        InTransaction = false;
        if (Skipping)
        {
            _payloads.Discard();
            return;
        }
        foreach (var (relationId, chunks) in _tables)
        {
            if (chunks.Declared && !chunks.DeclaredLast)
            {
                throw new ReplicationProtocolException($"{_protocol} transaction {_xid} committed without a last chunk for relation {relationId}", lsn);
            }

            chunks.Last!.IsLastChunk = true;
        }
        var (payloads, spill) = _payloads.Complete();
        _completed = new SourceTransaction
        {
            Xid = _xid,
            CommitLsn = commit.CommitLsn,
            EndLsn = commit.EndLsn,
            CommitTimestamp = commit.Timestamp == default ? _beginTimestamp : commit.Timestamp,
            Payloads = payloads,
            RowCount = _rows,
            Spill = spill,
        };
        _tables.Clear();
    }

    /// <summary>Takes the transaction (or positioned message or heartbeat) completed by the last call, if any.</summary>
    public bool TryTakeCompleted(out SourceTransaction transaction)
    {
        transaction = _completed!;
        _completed = null;
        return transaction is not null;
    }

    public void Dispose() => _payloads.Dispose();

    private void RequireTransaction(string what, Lsn lsn)
    {
        if (!InTransaction)
        {
            throw new ReplicationProtocolException($"{_protocol} {what} outside a transaction", lsn);
        }
    }

    private static TablePayload MessagePayload(string prefix, Lsn messageLsn, bool transactional, StoredValue stored) => new()
    {
        Schema = "",
        Table = "",
        Kind = PayloadKind.Message,
        ChunkIndex = 0,
        IsLastChunk = true,
        RowCount = 0,
        SchemaFingerprint = "",
        Value = stored.Memory,
        Spill = stored.Spill,
        SpillOffset = stored.SpillOffset,
        Length = stored.Length,
        MessagePrefix = prefix,
        MessageLsn = messageLsn,
        MessageTransactional = transactional,
    };

    private static SourceTransaction Positioned(Lsn lsn, IReadOnlyList<TablePayload> payloads, bool heartbeat) => new()
    {
        Xid = 0,
        CommitLsn = lsn,
        EndLsn = lsn,
        CommitTimestamp = DateTimeOffset.UtcNow,
        Payloads = payloads,
        RowCount = 0,
        IsHeartbeat = heartbeat,
    };

    private sealed class TableChunks
    {
        public int Count { get; set; }
        public TablePayload? Last { get; set; }
        /// <summary>Whether the plugin declares chunk indexes and last flags (then they are checked).</summary>
        public bool Declared { get; set; }
        public bool DeclaredLast { get; set; }
    }
}
