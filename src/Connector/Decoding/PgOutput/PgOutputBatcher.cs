using System.Buffers;
using Microsoft.Extensions.Logging;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Transactions;
using WalBridge.Offsets;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Connector.Decoding.PgOutput;

/// <summary>
/// Builds the Arrow payloads of a decoded pgoutput stream: one <see cref="ChangeBatchBuilder"/> per relation collects
/// a transaction's rows of that table, cut into chunks that each fit <see cref="ConnectorConfig.ChunkLimit"/> by the
/// real encoded size of every row; the chunks go to the <see cref="TransactionFramer"/>, which frames the
/// transactions.
/// </summary>
/// <remarks>
/// Single-threaded: called only by the replication reader. Builders are reused, so steady-state appends allocate
/// nothing per row. Relation and Type messages are remembered for the connection's lifetime.
/// </remarks>
internal sealed partial class PgOutputBatcher : IPgOutputHandler, IDisposable
{
    private readonly ILogger _logger;
    private readonly TransactionFramer _framer;
    private readonly Dictionary<uint, RelationState> _relations = [];
    private readonly Dictionary<uint, string> _types = [];
    private readonly List<RelationState> _touched = [];
    private readonly ArrayBufferWriter<byte> _buffer = new(64 * 1024);
    private readonly int _chunkLimit;
    private readonly int _messageMaxBytes;
    private readonly Func<uint, IReadOnlyList<string>>? _primaryKeyOf;
    private readonly Func<bool>? _binaryTuples;
    private readonly Diagnostics.IPipelineMetrics _metrics;

    /// <param name="config">The connector configuration.</param>
    /// <param name="framer">Frames the transactions the chunks belong to.</param>
    /// <param name="logger">Reports values kept as PostgreSQL text because the parser did not take them.</param>
    /// <param name="primaryKeyOf">Looks up a table's primary key (for REPLICA IDENTITY FULL relations); null to keep pgoutput's key flags.</param>
    /// <param name="binaryTuples">Whether tuples arrive in pgoutput's binary format (then text-only column types restart the stream in text).</param>
    /// <param name="metrics">Counts the changes seen per table and operation; null counts nothing.</param>
    public PgOutputBatcher(ConnectorConfig config, TransactionFramer framer, ILogger logger,
        Func<uint, IReadOnlyList<string>>? primaryKeyOf = null, Func<bool>? binaryTuples = null, Diagnostics.IPipelineMetrics? metrics = null)
    {
        _metrics = metrics ?? Diagnostics.NullPipelineMetrics.Instance;
        _framer = framer;
        _logger = logger;
        _primaryKeyOf = primaryKeyOf;
        _binaryTuples = binaryTuples;
        _chunkLimit = config.ChunkLimit;
        _messageMaxBytes = config.MessageMaxBytes;
    }

    public bool InTransaction => _framer.InTransaction;

    public void OnBegin(Lsn finalLsn, DateTimeOffset commitTimestamp, uint xid, Lsn lsn)
    {
        _framer.Begin(xid, finalLsn, commitTimestamp, lsn);
        _touched.Clear();
    }

    public void OnCommit(in CommitFields commit, Lsn lsn)
    {
        foreach (var state in _touched)
        {
            if (state.Builder.RowCount > 0)
            {
                FlushChunk(state, lsn);
            }

            state.ResetTransaction();
        }
        _touched.Clear();
        _framer.Commit(commit, lsn);
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
        if (relation.ReplicaIdentity == (char)ReplicaIdentity.Full && _primaryKeyOf is not null)
        {
            var key = _primaryKeyOf(relation.RelationId);
            if (key.Count > 0)
            {
                relation = relation with { Columns = relation.Columns.Select(c => c with { IsKey = key.Contains(c.Name) }).ToArray() };
            }
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
        {
            throw new TextFormatNeededException(
                $"Table {relation.Schema}.{relation.Table} column {textOnly.Name} (type {PgTypeMapping.FormatType(textOnly.TypeOid, textOnly.TypeModifier, textOnly.TypeName)}) needs pgoutput's text format; switching to text tuples.", lsn);
        }

        if (_relations.TryGetValue(relation.RelationId, out var existing))
        {
            if (SameShape(existing.Builder.Relation, relation))
            {
                return;
            }
            // A schema change: rows already collected in this transaction keep the old schema and
            // go out as their own chunk; later rows use the new schema.
            if (existing.Builder.RowCount > 0)
            {
                FlushChunk(existing, lsn);
            }

            existing.Replace(relation);
            return;
        }
        _relations[relation.RelationId] = new RelationState(relation);
    }

    public void OnInsert(uint relationId, TupleData newRow, Lsn lsn)
    {
        var state = Touch(relationId, lsn);
        if (state is not null)
        {
            Seen(state).Insert();
            AppendChange(state, new RowChange(ChangeOp.Insert, newRow, default, OldTuple.None, lsn));
        }
    }

    public void OnUpdate(uint relationId, OldTuple oldKind, TupleData oldRow, TupleData newRow, Lsn lsn)
    {
        var state = Touch(relationId, lsn);
        if (state is not null)
        {
            Seen(state).Update();
            AppendChange(state, new RowChange(ChangeOp.Update, newRow, oldRow, oldKind, lsn));
        }
    }

    public void OnDelete(uint relationId, OldTuple oldKind, TupleData oldRow, Lsn lsn)
    {
        var state = Touch(relationId, lsn);
        if (state is not null)
        {
            Seen(state).Delete();
            AppendChange(state, new RowChange(ChangeOp.Delete, oldRow, default, OldTuple.None, lsn));
        }
    }

    public void OnTruncate(ReadOnlySpan<uint> relationIds, TruncateOptions options, Lsn lsn)
    {
        foreach (var relationId in relationIds)
        {
            var state = Touch(relationId, lsn);
            if (state is null)
            {
                continue;
            }
            Seen(state).Truncate();
            // Rows before the truncate go out first, so the topic keeps the transaction's order.
            if (state.Builder.RowCount > 0)
            {
                FlushChunk(state, lsn);
            }

            _buffer.ResetWrittenCount();
            state.Builder.WriteStream(_buffer);
            AddChunk(state, PayloadKind.Truncate, 0, options, lsn);
        }
    }

    public void OnMessage(bool transactional, Lsn messageLsn, string prefix, ReadOnlySpan<byte> content, Lsn lsn) =>
        _framer.Message(transactional, messageLsn, prefix, content, lsn);

    private Diagnostics.ChangeCounts Seen(RelationState state) =>
        state.Seen ??= _metrics.TableChanges(state.Relation.Schema, state.Relation.Table);

    private RelationState? Touch(uint relationId, Lsn lsn)
    {
        if (!_framer.InTransaction)
        {
            throw new ReplicationProtocolException($"pgoutput change for relation {relationId} outside a transaction", lsn);
        }

        if (!_relations.TryGetValue(relationId, out var state))
        {
            throw new ReplicationProtocolException($"pgoutput change for relation {relationId} before its Relation message", lsn);
        }

        if (_framer.Skipping)
        {
            return null;
        }

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
        var builder = state.Builder;
        if (builder.EstimatedSize <= _chunkLimit)
        {
            return;
        }

        if (builder.RowCount > 1)
        {
            builder.RemoveLastRow();
            FlushChunk(state, change.Lsn);
            AppendRow(state, change);
            if (builder.EstimatedSize <= _chunkLimit)
            {
                return;
            }
        }
        // The row alone is over the bound (an upper bound): write it and check its real size.
        _buffer.ResetWrittenCount();
        var size = builder.WriteStream(_buffer);
        if (size > _chunkLimit)
        {
            throw new RowTooLargeException($"{state.Relation.Schema}.{state.Relation.Table}", change.Lsn, size, _messageMaxBytes, ConnectorConfig.RecordOverhead);
        }

        AddChunk(state, PayloadKind.Changes, 1, TruncateOptions.None, change.Lsn);
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
            AppendTuple(state, change.OldRow, change.Lsn, default);
        }
        builder.EndRow();
        // Logged at the 1st, 10th, 100th, … such value of a table: visible, never a flood.
        if (builder.TextFallbacks >= state.NextTextFallbackReport)
        {
            state.NextTextFallbackReport = builder.TextFallbacks * 10L;
            LogValueKeptAsText(_logger, $"{state.Relation.Schema}.{state.Relation.Table}", change.Lsn, builder.TextFallbacks, builder.LastTextFallback ?? "");
        }
    }

    // fullOldRow: the old row under REPLICA IDENTITY FULL (default when none); supplies unchanged TOAST values.
    private static void AppendTuple(RelationState state, TupleData tuple, Lsn lsn, TupleData fullOldRow)
    {
        var relation = state.Relation;
        if (tuple.ColumnCount != relation.Columns.Count)
        {
            throw new ReplicationProtocolException(
                $"pgoutput tuple for {relation.Schema}.{relation.Table} has {tuple.ColumnCount} columns but its Relation message has {relation.Columns.Count}", lsn);
        }

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
            {
                old.MoveNext(out oldKind, out oldValue);
            }

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
    private void FlushChunk(RelationState state, Lsn lsn)
    {
        var rows = state.Builder.RowCount;
        _buffer.ResetWrittenCount();
        var size = state.Builder.WriteStream(_buffer);
        if (size > _chunkLimit)
        {
            throw new InvalidOperationException(
                $"Internal error: a chunk of {rows} rows of {state.Relation.Schema}.{state.Relation.Table} is {size} bytes although its size bound kept it within {_chunkLimit}.");
        }

        AddChunk(state, PayloadKind.Changes, rows, TruncateOptions.None, lsn);
    }

    private void AddChunk(RelationState state, PayloadKind kind, int rows, TruncateOptions options, Lsn lsn) =>
        _framer.AddChunk(state.Relation.RelationId, state.Relation.Schema, state.Relation.Table, kind, rows,
            state.Builder.SchemaFingerprint, _buffer.WrittenSpan, options, lsn);

    private static bool SameShape(PgRelation a, PgRelation b)
    {
        if (a.Schema != b.Schema || a.Table != b.Table || a.ReplicaIdentity != b.ReplicaIdentity || a.Columns.Count != b.Columns.Count)
        {
            return false;
        }

        for (var i = 0; i < a.Columns.Count; i++)
        {
            if (a.Columns[i] != b.Columns[i])
            {
                return false;
            }
        }
        return true;
    }

    public void Dispose()
    {
        foreach (var state in _relations.Values)
        {
            state.Builder.Dispose();
        }

        _relations.Clear();
    }

    [LoggerMessage(EventId = 1301, Level = LogLevel.Warning,
        Message = "Table {Table} at LSN {Lsn}: a value was kept as PostgreSQL's text in _special instead of its Arrow type, because WalBridge could not convert it ({Problem}); {Count} such values so far. Nothing is lost; please report this value")]
    private static partial void LogValueKeptAsText(ILogger logger, string table, Lsn lsn, long count, string problem);

    private sealed class RelationState(PgRelation relation)
    {
        public ChangeBatchBuilder Builder { get; private set; } = new(relation, UnparsedTextPolicy.KeepAsSpecialText);
        public PgRelation Relation => Builder.Relation;
        public bool Touched { get; set; }

        /// <summary>The operations metrics' counters of this table (looked up once).</summary>
        public Diagnostics.ChangeCounts? Seen { get; set; }

        /// <summary>The builder's <see cref="ChangeBatchBuilder.TextFallbacks"/> count at which the next warning is logged.</summary>
        public long NextTextFallbackReport { get; set; } = 1;

        /// <summary>A new Relation message (schema change or rename): the next rows use the new schema.</summary>
        public void Replace(PgRelation relation)
        {
            Builder.Dispose();
            Builder = new ChangeBatchBuilder(relation, UnparsedTextPolicy.KeepAsSpecialText);
            NextTextFallbackReport = 1;
            Seen = null;
        }

        public void ResetTransaction()
        {
            Builder.Clear();
            Touched = false;
        }
    }
}
