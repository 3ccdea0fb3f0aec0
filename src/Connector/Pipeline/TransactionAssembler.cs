using System.Buffers;
using Microsoft.Extensions.Logging;
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
internal sealed partial class TransactionAssembler : IPgOutputHandler, IDisposable
{
    private readonly ConnectorConfig _config;
    private readonly ILogger _logger;
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
    /// <param name="logger">Reports values kept as PostgreSQL text because the parser did not take them.</param>
    public TransactionAssembler(ConnectorConfig config, Lsn skipThrough, ILogger logger, Func<uint, IReadOnlyList<string>>? primaryKeyOf = null, Func<bool>? binaryTuples = null)
    {
        _logger = logger;
        _primaryKeyOf = primaryKeyOf;
        _binaryTuples = binaryTuples;
        _payloads = new PayloadCollector(config.SpillDirectory, config.TransactionMemoryBytes);
        _config = config;
        SkipThrough = skipThrough;
        _chunkLimit = config.ChunkLimit;
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
                FlushChunk(state);
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
                FlushChunk(existing);
            existing.Replace(relation, _config.TopicFor(relation.Schema, relation.Table));
            return;
        }
        _relations[relation.RelationId] = new RelationState(relation, _config.TopicFor(relation.Schema, relation.Table));
    }

    public void OnInsert(uint relationId, TupleData newRow, Lsn lsn)
    {
        var state = Touch(relationId, lsn);
        if (state is not null)
            AppendChange(state, new RowChange(ChangeOp.Insert, newRow, default, OldTuple.None, lsn));
    }

    public void OnUpdate(uint relationId, OldTuple oldKind, TupleData oldRow, TupleData newRow, Lsn lsn)
    {
        var state = Touch(relationId, lsn);
        if (state is not null)
            AppendChange(state, new RowChange(ChangeOp.Update, newRow, oldRow, oldKind, lsn));
    }

    public void OnDelete(uint relationId, OldTuple oldKind, TupleData oldRow, Lsn lsn)
    {
        var state = Touch(relationId, lsn);
        if (state is not null)
            AppendChange(state, new RowChange(ChangeOp.Delete, oldRow, default, OldTuple.None, lsn));
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
                FlushChunk(state);
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
    /// Appends one change and keeps every chunk within the record limit by its real encoded size: the row is
    /// appended first (with everything it carries: the old row, TOAST values filled in from it under REPLICA
    /// IDENTITY FULL, <c>_special</c> and <c>_unchanged</c> entries), then the builder's size bound is checked. When
    /// the row made the chunk too large, it is taken out again, the rows before it go out as a chunk, and the row
    /// starts the next one. Only a row that alone exceeds the limit is fatal.
    /// </summary>
    private void AppendChange(RelationState state, in RowChange change)
    {
        AppendRow(state, change);
        _rows++;
        var builder = state.Builder;
        if (builder.EstimatedSize <= _chunkLimit)
            return;
        if (builder.RowCount > 1)
        {
            builder.RemoveLastRow();
            FlushChunk(state);
            AppendRow(state, change);
            if (builder.EstimatedSize <= _chunkLimit)
                return;
        }
        // The row alone is over the bound (an upper bound): write it and check its real size.
        _buffer.ResetWrittenCount();
        var size = builder.WriteStream(_buffer);
        if (size > _chunkLimit)
            throw new RowTooLargeException($"{state.Relation.Schema}.{state.Relation.Table}", change.Lsn, size, _config.MessageMaxBytes, ConnectorConfig.RecordOverhead);
        AddPayload(state, PayloadKind.Changes, 1, null);
    }

    /// <summary>One row change as pgoutput sent it; the tuples are views of the message being decoded.</summary>
    private readonly ref struct RowChange(ChangeOp op, TupleData row, TupleData oldRow, OldTuple oldKind, Lsn lsn)
    {
        public ChangeOp Op { get; } = op;
        public TupleData Row { get; } = row;
        public TupleData OldRow { get; } = oldRow;
        public OldTuple OldKind { get; } = oldKind;
        public Lsn Lsn { get; } = lsn;
    }

    private void AppendRow(RelationState state, in RowChange change)
    {
        var builder = state.Builder;
        builder.BeginRow(change.Op, change.Lsn.Value);
        // REPLICA IDENTITY FULL: PostgreSQL sent the whole old row, so an unchanged TOAST value of the new row is
        // known: fill it in instead of marking it unchanged. A delete's old row is the row itself (no _before).
        var fill = change.OldKind == OldTuple.Row ? change.OldRow : default;
        AppendTuple(state, change.Row, change.Lsn, fill);
        if (change.OldKind != OldTuple.None)
        {
            builder.BeginBefore();
            AppendTuple(state, change.OldRow, change.Lsn);
        }
        builder.EndRow();
        // Logged at the 1st, 10th, 100th, … such value of a table: visible, never a flood.
        if (builder.TextFallbacks >= state.NextTextFallbackReport)
        {
            state.NextTextFallbackReport = builder.TextFallbacks * 10;
            LogValueKeptAsText(_logger, $"{state.Relation.Schema}.{state.Relation.Table}", change.Lsn, builder.TextFallbacks, builder.LastTextFallback ?? "");
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
            catch (PgValueFormatException e) when (kind == TupleValueKind.Binary)
            {
                // A binary form the parser does not take: the text form carries every value exactly.
                throw new TextFormatNeededException(
                    $"Table {relation.Schema}.{relation.Table}, column {relation.Columns[column].Name}: {e.Message}; switching to text tuples", lsn);
            }
            catch (PgValueFormatException e)
            {
                // Text is kept as it is when the parser does not take it; only text that is not UTF-8 gets here.
                throw new ReplicationProtocolException(
                    $"Table {relation.Schema}.{relation.Table}, column {relation.Columns[column].Name}: {e.Message}", e);
            }
            column++;
        }
    }

    /// <summary>Writes the collected rows as one chunk; they fit, because every row was checked when it was appended.</summary>
    private void FlushChunk(RelationState state)
    {
        var rows = state.Builder.RowCount;
        _buffer.ResetWrittenCount();
        var size = state.Builder.WriteStream(_buffer);
        if (size > _chunkLimit)
            throw new InvalidOperationException(
                $"Internal error: a chunk of {rows} rows of {state.Relation.Schema}.{state.Relation.Table} is {size} bytes although its size bound kept it within {_chunkLimit}.");
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
        public ChangeBatchBuilder Builder { get; private set; } = new(relation, UnparsedTextPolicy.KeepAsSpecialText);
        public PgRelation Relation => Builder.Relation;
        public string Topic { get; private set; } = topic;
        public bool Touched { get; set; }
        public int ChunksInTransaction { get; set; }
        /// <summary>The builder's <see cref="ChangeBatchBuilder.TextFallbacks"/> count at which the next warning is logged.</summary>
        public long NextTextFallbackReport { get; set; } = 1;
        public TablePayload? LastPayload { get; set; }

        /// <summary>A new Relation message (schema change or rename): new schema and, after a rename, the new topic.</summary>
        public void Replace(PgRelation relation, string topic)
        {
            Builder.Dispose();
            Builder = new ChangeBatchBuilder(relation, UnparsedTextPolicy.KeepAsSpecialText);
            Topic = topic;
            NextTextFallbackReport = 1;
        }

        public void ResetTransaction()
        {
            Builder.Clear();
            Touched = false;
            ChunksInTransaction = 0;
            LastPayload = null;
        }
    }

    [LoggerMessage(EventId = 3301, Level = LogLevel.Warning,
        Message = "Table {Table} at LSN {Lsn}: a value was kept as PostgreSQL's text in _special instead of its Arrow type, because WalBridge could not convert it ({Problem}); {Count} such values so far. Nothing is lost; please report this value")]
    private static partial void LogValueKeptAsText(ILogger logger, string table, Lsn lsn, long count, string problem);
}
