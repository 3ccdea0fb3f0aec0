using System.Buffers;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Replication;
using WalBridge.Connector.Replication.PgOutput;
using WalBridge.Offsets;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Connector.Pipeline;

/// <summary>
/// Turns a decoded pgoutput stream into <see cref="SourceTransaction"/>s: one Arrow IPC payload per
/// (transaction, table), cut into chunks that fit <c>kafka.message.max.bytes</c>.
/// </summary>
/// <remarks>
/// Single-threaded: called only by the replication reader. Keeps one reusable
/// <see cref="ChangeBatchBuilder"/> per relation so steady-state appends allocate nothing per row.
/// Transactions whose commit LSN is not greater than <see cref="SkipThrough"/> were already
/// committed to Kafka (PostgreSQL re-sends from the slot's confirmed position) and are dropped.
/// </remarks>
internal sealed class TransactionAssembler : IPgOutputHandler, IDisposable
{
    /// <summary>Room kept below the producer limit for headers and Kafka's record framing.</summary>
    private const int RecordOverhead = 4096;

    private readonly ConnectorConfig _config;
    private readonly Dictionary<uint, RelationState> _relations = [];
    private readonly Dictionary<uint, string> _types = [];
    private readonly List<RelationState> _touched = [];
    private readonly PayloadCollector _payloads;
    private readonly ArrayBufferWriter<byte> _buffer = new(64 * 1024);
    private readonly int _chunkLimit;

    private bool _inTransaction;
    private bool _skipping;
    private uint _xid;
    private Lsn _finalLsn;
    private DateTimeOffset _beginTimestamp;
    private int _rows;
    private SourceTransaction? _completed;

    private readonly Func<uint, IReadOnlyList<string>>? _primaryKeyOf;

    private readonly Func<bool>? _binaryTuples;

    /// <param name="config">The connector configuration.</param>
    /// <param name="skipThrough">Transactions committed at or before this position are dropped (already in Kafka).</param>
    /// <param name="primaryKeyOf">Looks up a table's primary key (for REPLICA IDENTITY FULL relations); null to keep pgoutput's key flags.</param>
    /// <param name="binaryTuples">Whether tuples arrive in pgoutput's binary format (then text-only column types restart the stream in text).</param>
    public TransactionAssembler(ConnectorConfig config, Lsn skipThrough, Func<uint, IReadOnlyList<string>>? primaryKeyOf = null, Func<bool>? binaryTuples = null)
    {
        _primaryKeyOf = primaryKeyOf;
        _binaryTuples = binaryTuples;
        _payloads = new PayloadCollector(config.SpillDirectory, config.TransactionMemoryBytes);
        _config = config;
        SkipThrough = skipThrough;
        _chunkLimit = Math.Max(config.MessageMaxBytes - RecordOverhead, 1024);
    }

    /// <summary>Transactions with a commit LSN at or below this are dropped as already delivered.</summary>
    public Lsn SkipThrough { get; set; }

    /// <summary>How many transactions were dropped as already delivered.</summary>
    public long SkippedTransactions { get; private set; }

    /// <summary>Whether a transaction is open (Begin seen, Commit not yet).</summary>
    public bool InTransaction => _inTransaction;

    /// <summary>Takes the transaction completed by the last <see cref="OnCommit"/>, if any.</summary>
    public bool TryTakeCompleted(out SourceTransaction transaction)
    {
        transaction = _completed!;
        _completed = null;
        return transaction is not null;
    }

    public void OnBegin(Lsn finalLsn, DateTimeOffset commitTimestamp, uint xid)
    {
        if (_inTransaction)
            throw new ReplicationProtocolException($"pgoutput Begin of xid {xid} inside open transaction {_xid}", finalLsn);
        _inTransaction = true;
        _skipping = finalLsn <= SkipThrough;
        _xid = xid;
        _finalLsn = finalLsn;
        _beginTimestamp = commitTimestamp;
        _rows = 0;
        _payloads.Discard();
        _touched.Clear();
    }

    public void OnCommit(Lsn commitLsn, Lsn endLsn, DateTimeOffset commitTimestamp)
    {
        if (!_inTransaction)
            throw new ReplicationProtocolException("pgoutput Commit without Begin", commitLsn);
        if (commitLsn != _finalLsn)
            throw new ReplicationProtocolException($"pgoutput Commit LSN {commitLsn} differs from Begin's final LSN {_finalLsn} (xid {_xid})", commitLsn);
        _inTransaction = false;
        if (_skipping)
        {
            SkippedTransactions++;
            foreach (var state in _touched)
                state.ResetTransaction();
            _payloads.Discard();
            return;
        }

        foreach (var state in _touched)
        {
            if (state.Builder.RowCount > 0)
                FlushChunk(state, commitLsn);
            state.LastPayload!.IsLastChunk = true;
            state.ResetTransaction();
        }
        var (payloads, spill) = _payloads.Complete();
        _completed = new SourceTransaction
        {
            Xid = _xid,
            CommitLsn = commitLsn,
            EndLsn = endLsn,
            CommitTimestamp = commitTimestamp == default ? _beginTimestamp : commitTimestamp,
            Payloads = payloads,
            RowCount = _rows,
            Spill = spill,
        };
        _touched.Clear();
    }

    public void OnType(uint typeOid, string typeNamespace, string typeName, Lsn lsn) =>
        // pgoutput writes an empty namespace for pg_catalog (logicalrep_write_namespace).
        _types[typeOid] = $"{(typeNamespace.Length == 0 ? "pg_catalog" : typeNamespace)}.{typeName}";

    public void OnRelation(PgRelation relation, Lsn lsn)
    {
        // Columns of non-built-in types carry the name from the Type message ("namespace.name";
        // for a domain, its base type's): the type mapping uses it for domains and enums.
        // Under REPLICA IDENTITY FULL pgoutput flags every column as key: use the real primary key
        // when the table has one (without one, the whole row is the identity).
        if (relation.ReplicaIdentity == 'f' && _primaryKeyOf is not null)
        {
            var key = _primaryKeyOf(relation.RelationId);
            if (key.Count > 0)
                relation = relation with { Columns = relation.Columns.Select(c => c with { IsKey = key.Contains(c.Name) }).ToArray() };
        }
        if (relation.Columns.Any(c => _types.ContainsKey(c.TypeOid)))
        {
            relation = relation with
            {
                Columns = relation.Columns
                    .Select(c => _types.TryGetValue(c.TypeOid, out var name) ? c with { TypeName = name } : c)
                    .ToArray(),
            };
        }
        // In binary mode a column whose type is kept as PostgreSQL's text cannot be rendered
        // exactly from its binary send format: restart in text mode (nothing was acknowledged past
        // the committed position, so PostgreSQL sends everything again).
        if (_binaryTuples?.Invoke() == true && relation.Columns.FirstOrDefault(c => !PgTypeMapping.SupportsBinary(c)) is { } textOnly)
            throw new TextFormatNeededException(
                $"Table {relation.Schema}.{relation.Table} column {textOnly.Name} (type {PgTypeMapping.FormatType(textOnly.TypeOid, textOnly.TypeModifier, textOnly.TypeName)}) needs pgoutput's text format; switching to text tuples.", lsn);

        if (_relations.TryGetValue(relation.RelationId, out var existing))
        {
            if (SameShape(existing.Builder.Relation, relation))
                return;
            // A schema change: rows already collected in this transaction keep the old schema and
            // go out as their own chunk; later rows use the new schema.
            if (existing.Builder.RowCount > 0)
                FlushChunk(existing, lsn);
            existing.Replace(relation, _config.TopicFor(relation.Schema, relation.Table));
            return;
        }
        _relations[relation.RelationId] = new RelationState(relation, _config.TopicFor(relation.Schema, relation.Table));
    }

    public void OnInsert(uint relationId, TupleData newRow, Lsn lsn)
    {
        var state = Touch(relationId, lsn);
        if (state is null)
            return;
        ReserveRoom(state, newRow, default, lsn);
        state.Builder.BeginRow(ChangeOp.Insert, lsn.Value);
        AppendTuple(state, newRow, lsn);
        state.Builder.EndRow();
        AfterRow(state, lsn);
    }

    public void OnUpdate(uint relationId, byte oldKind, TupleData oldRow, TupleData newRow, Lsn lsn)
    {
        var state = Touch(relationId, lsn);
        if (state is null)
            return;
        ReserveRoom(state, newRow, oldRow, lsn);
        state.Builder.BeginRow(ChangeOp.Update, lsn.Value);
        // REPLICA IDENTITY FULL: PostgreSQL sent the whole old row, so an unchanged TOAST value of
        // the new row is known: fill it in instead of marking it unchanged.
        AppendTuple(state, newRow, lsn, oldKind == (byte)'O' ? oldRow : default);
        if (oldKind != 0)
        {
            state.Builder.BeginBefore();
            AppendTuple(state, oldRow, lsn);
        }
        state.Builder.EndRow();
        AfterRow(state, lsn);
    }

    public void OnDelete(uint relationId, byte oldKind, TupleData oldRow, Lsn lsn)
    {
        var state = Touch(relationId, lsn);
        if (state is null)
            return;
        ReserveRoom(state, oldRow, default, lsn);
        state.Builder.BeginRow(ChangeOp.Delete, lsn.Value);
        AppendTuple(state, oldRow, lsn);
        state.Builder.EndRow();
        AfterRow(state, lsn);
    }

    public void OnTruncate(ReadOnlySpan<uint> relationIds, bool cascade, bool restartIdentity, Lsn lsn)
    {
        foreach (var relationId in relationIds)
        {
            var state = Touch(relationId, lsn);
            if (state is null)
                continue;
            // Rows before the truncate go out first, so the topic keeps the transaction's order.
            if (state.Builder.RowCount > 0)
                FlushChunk(state, lsn);
            _buffer.ResetWrittenCount();
            state.Builder.WriteStream(_buffer);
            var options = (cascade, restartIdentity) switch
            {
                (true, true) => "cascade,restart_identity",
                (true, false) => "cascade",
                (false, true) => "restart_identity",
                _ => "",
            };
            AddPayload(state, PayloadKind.Truncate, 0, options);
        }
    }

    public void OnMessage(bool transactional, Lsn messageLsn, string prefix, ReadOnlySpan<byte> content, Lsn lsn)
    {
        if (LogicalMessages.IsHeartbeat(prefix))
        {
            // Ours: outside a transaction, every commit before it has been handed over, so its
            // position may be recorded and acknowledged. Another connector's: not for us.
            if (prefix == _config.HeartbeatPrefix && !transactional && !_inTransaction && messageLsn > SkipThrough)
                _completed = LogicalMessages.Positioned(messageLsn, [], heartbeat: true);
            return;
        }

        var payload = LogicalMessages.Payload(_config, prefix, messageLsn, transactional, content);
        if (transactional)
        {
            if (!_inTransaction)
                throw new ReplicationProtocolException($"pgoutput transactional Message '{prefix}' outside a transaction", lsn);
            if (!_skipping)
                _payloads.Add(payload);
            return;
        }
        if (_inTransaction)
            throw new ReplicationProtocolException($"pgoutput non-transactional Message '{prefix}' inside transaction {_xid} (protocol version 1 sends them between transactions)", lsn);
        // A non-transactional message is delivered on its own, positioned at its LSN.
        if (messageLsn > SkipThrough)
            _completed = LogicalMessages.Positioned(messageLsn, [payload], heartbeat: false);
    }

    private RelationState? Touch(uint relationId, Lsn lsn)
    {
        if (!_inTransaction)
            throw new ReplicationProtocolException($"pgoutput change for relation {relationId} outside a transaction", lsn);
        if (!_relations.TryGetValue(relationId, out var state))
            throw new ReplicationProtocolException($"pgoutput change for relation {relationId} before its Relation message", lsn);
        if (_skipping)
            return null;
        if (!state.Touched)
        {
            state.Touched = true;
            _touched.Add(state);
        }
        return state;
    }

    /// <summary>
    /// Flushes collected rows first when the next row might not fit: the bound is an upper bound
    /// of the row's Arrow size (its wire bytes plus fixed per-value overhead).
    /// </summary>
    private void ReserveRoom(RelationState state, TupleData row, TupleData before, Lsn lsn)
    {
        if (state.Builder.RowCount == 0)
            return;
        var bound = RowSizeBound(row) + RowSizeBound(before);
        if (state.Builder.EstimatedSize + bound > _chunkLimit)
            FlushChunk(state, lsn);
    }

    private static long RowSizeBound(TupleData tuple)
    {
        long size = 64;
        while (tuple.MoveNext(out _, out var value))
            size += value.Length + 40;
        return size;
    }

    private void AfterRow(RelationState state, Lsn lsn)
    {
        _rows++;
        if (state.Builder.RowCount == 1 && state.Builder.EstimatedSize > _chunkLimit)
        {
            // One row alone: write it and check its real size.
            _buffer.ResetWrittenCount();
            var size = state.Builder.WriteStream(_buffer);
            if (size > _chunkLimit)
                throw new RowTooLargeException($"{state.Relation.Schema}.{state.Relation.Table}", lsn, size, _config.MessageMaxBytes);
            AddPayload(state, PayloadKind.Changes, 1, null);
        }
    }

    private static void AppendTuple(RelationState state, TupleData tuple, Lsn lsn) => AppendTuple(state, tuple, lsn, default);

    // fullOldRow: the old row under REPLICA IDENTITY FULL (default when none); supplies unchanged TOAST values.
    private static void AppendTuple(RelationState state, TupleData tuple, Lsn lsn, TupleData fullOldRow)
    {
        var relation = state.Relation;
        if (tuple.ColumnCount != relation.Columns.Count)
            throw new ReplicationProtocolException(
                $"pgoutput tuple for {relation.Schema}.{relation.Table} has {tuple.ColumnCount} columns but its Relation message has {relation.Columns.Count}", lsn);
        var builder = state.Builder;
        var column = 0;
        var old = fullOldRow;
        var haveOld = fullOldRow.ColumnCount == tuple.ColumnCount;
        while (tuple.MoveNext(out var kind, out var value))
        {
            // Walk the old row in step with the new one (no allocation: both are views of the message).
            var oldKind = TupleValueKind.Null;
            ReadOnlySpan<byte> oldValue = default;
            if (haveOld)
                old.MoveNext(out oldKind, out oldValue);
            if (kind == TupleValueKind.UnchangedToast && oldKind is TupleValueKind.Text or TupleValueKind.Binary)
            {
                kind = oldKind;
                value = oldValue;
            }
            try
            {
                switch (kind)
                {
                    case TupleValueKind.Null:
                        builder.AppendNull();
                        break;
                    case TupleValueKind.UnchangedToast:
                        builder.AppendUnchangedToast();
                        break;
                    case TupleValueKind.Text:
                        builder.AppendValue(value, TupleFormat.Text);
                        break;
                    default:
                        builder.AppendValue(value, TupleFormat.Binary);
                        break;
                }
            }
            catch (PgValueFormatException e)
            {
                throw new ReplicationProtocolException(
                    $"Table {relation.Schema}.{relation.Table}, column {relation.Columns[column].Name}: {e.Message}", e);
            }
            column++;
        }
    }

    private void FlushChunk(RelationState state, Lsn lsn)
    {
        var rows = state.Builder.RowCount;
        _buffer.ResetWrittenCount();
        var size = state.Builder.WriteStream(_buffer);
        if (size > _config.MessageMaxBytes - 512)
            throw new RowTooLargeException($"{state.Relation.Schema}.{state.Relation.Table}", lsn, size, _config.MessageMaxBytes);
        AddPayload(state, PayloadKind.Changes, rows, null);
    }

    private void AddPayload(RelationState state, PayloadKind kind, int rows, string? truncateOptions)
    {
        var payload = _payloads.Add(_buffer.WrittenSpan, _xid.ToString(System.Globalization.CultureInfo.InvariantCulture), (value, spill, offset, length) => new TablePayload
        {
            Topic = state.Topic,
            Schema = state.Relation.Schema,
            Table = state.Relation.Table,
            Kind = kind,
            ChunkIndex = state.ChunksInTransaction++,
            RowCount = rows,
            SchemaFingerprint = state.Builder.SchemaFingerprint,
            Value = value,
            Spill = spill,
            SpillOffset = offset,
            Length = length,
            TruncateOptions = truncateOptions,
        });
        state.LastPayload = payload;
    }

    private static bool SameShape(PgRelation a, PgRelation b)
    {
        if (a.Schema != b.Schema || a.Table != b.Table || a.ReplicaIdentity != b.ReplicaIdentity || a.Columns.Count != b.Columns.Count)
            return false;
        for (var i = 0; i < a.Columns.Count; i++)
        {
            if (a.Columns[i] != b.Columns[i])
                return false;
        }
        return true;
    }

    public void Dispose()
    {
        _payloads.Dispose();
        foreach (var state in _relations.Values)
            state.Builder.Dispose();
        _relations.Clear();
    }

    private sealed class RelationState(PgRelation relation, string topic)
    {
        public ChangeBatchBuilder Builder { get; private set; } = new(relation);
        public PgRelation Relation => Builder.Relation;
        public string Topic { get; private set; } = topic;
        public bool Touched { get; set; }
        public int ChunksInTransaction { get; set; }
        public TablePayload? LastPayload { get; set; }

        /// <summary>A new Relation message (schema change or rename): new schema and, after a rename, the new topic.</summary>
        public void Replace(PgRelation relation, string topic)
        {
            Builder.Dispose();
            Builder = new ChangeBatchBuilder(relation);
            Topic = topic;
        }

        public void ResetTransaction()
        {
            Builder.Clear();
            Touched = false;
            ChunksInTransaction = 0;
            LastPayload = null;
        }
    }
}
