using System.Buffers;
using Microsoft.Extensions.Logging;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Transactions;
using WalBridge.Offsets;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Connector.Decoding.PgOutput;

/// <summary>
/// Builds the Arrow record batches of a decoded pgoutput stream: one <see cref="ChangeBatchBuilder"/> per relation and
/// partition collects the rows of every source transaction of the open group (each row carries its transaction), cut
/// into batches that each fit one record (<see cref="ConnectorConfig.ChunkLimit"/> with the schema message) by the
/// real encoded size of every row. The batches go to the <see cref="TransactionFramer"/>, which frames the
/// transactions; <see cref="FlushAll"/> writes what is open when the group is handed over.
/// </summary>
/// <remarks>
/// Single-threaded: called only by the replication reader. Builders are reused, so steady-state appends allocate
/// nothing per row. Relation and Type messages are remembered for the connection's lifetime. With more than one
/// partition (<c>topic.partitions</c>) each row goes to the partition of its key (<see cref="KeyPartitioner"/>); an
/// update that moves its key to another partition also leaves a delete of the old key in the old key's partition, and
/// a truncate row goes to every partition, so that each partition alone is a complete change stream of its keys.
/// </remarks>
internal sealed partial class PgOutputBatcher : IPgOutputHandler, IDisposable
{
    private readonly ILogger _logger;
    private readonly TransactionFramer _framer;
    private readonly Dictionary<uint, RelationState> _relations = [];
    private readonly Dictionary<uint, string> _types = [];
    private readonly List<PartitionState> _open = [];
    private readonly ArrayBufferWriter<byte> _buffer = new(64 * 1024);
    private readonly int _chunkLimit;
    private readonly int _messageMaxBytes;
    private readonly int _partitions;
    private readonly ArrowCompression _compression;
    private readonly Func<uint, IReadOnlyList<string>>? _primaryKeyOf;
    private readonly Func<bool>? _binaryTuples;
    private readonly Diagnostics.IPipelineMetrics _metrics;
    /// <summary>Counts Begin messages: identifies "the open transaction" in the builders.</summary>
    private long _transactionNumber;
    private long _commitMicros;

    /// <param name="config">The connector configuration.</param>
    /// <param name="framer">Frames the transactions the batches belong to.</param>
    /// <param name="logger">Reports values kept as PostgreSQL text because the parser did not take them.</param>
    /// <param name="primaryKeyOf">Looks up a table's primary key (for REPLICA IDENTITY FULL relations); null to keep pgoutput's key flags.</param>
    /// <param name="binaryTuples">Whether tuples arrive in pgoutput's binary format (then text-only column types restart the stream in text).</param>
    /// <param name="metrics">Counts the changes seen per table and operation; null counts nothing.</param>
    public PgOutputBatcher(ConnectorConfig config, TransactionFramer framer, ILogger logger,
        Func<uint, IReadOnlyList<string>>? primaryKeyOf = null, Func<bool>? binaryTuples = null, Diagnostics.IPipelineMetrics? metrics = null)
    {
        _framer = framer;
        _logger = logger;
        _primaryKeyOf = primaryKeyOf;
        _binaryTuples = binaryTuples;
        _metrics = metrics ?? Diagnostics.NullPipelineMetrics.Instance;
        _chunkLimit = config.ChunkLimit;
        _messageMaxBytes = config.MessageMaxBytes;
        _partitions = config.TopicPartitions;
        _compression = config.ArrowCompression;
    }

    public bool InTransaction => _framer.InTransaction;

    /// <summary>An upper bound of the bytes the open builders hold (for the group's size limit).</summary>
    public long PendingBytes
    {
        get
        {
            long bytes = 0;
            foreach (var state in _open)
            {
                bytes += state.Builder.EstimatedSize;
            }

            return bytes;
        }
    }

    public void OnBegin(Lsn finalLsn, DateTimeOffset commitTimestamp, uint xid, Lsn lsn)
    {
        _framer.Begin(xid, finalLsn, commitTimestamp, lsn);
        _transactionNumber++;
        _commitMicros = (commitTimestamp - DateTimeOffset.UnixEpoch).Ticks / 10;
    }

    public void OnCommit(in CommitFields commit, Lsn lsn) => _framer.Commit(commit, lsn);

    /// <summary>Writes every open builder's rows as a batch: the group is being handed over (between transactions).</summary>
    public void FlushAll()
    {
        foreach (var state in _open)
        {
            if (state.Builder.RowCount > 0)
            {
                FlushBatch(state);
            }

            state.Open = false;
        }

        _open.Clear();
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
        // Without a primary key the row has no key to partition by (partition 0, as wal2arrow does).
        var wholeRowIdentity = relation.ReplicaIdentity == (char)ReplicaIdentity.Full;
        if (wholeRowIdentity && _primaryKeyOf is not null)
        {
            var key = _primaryKeyOf(relation.RelationId);
            if (key.Count > 0)
            {
                relation = relation with { Columns = relation.Columns.Select(c => c with { IsKey = key.Contains(c.Name) }).ToArray() };
                wholeRowIdentity = false;
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
            if (SameShape(existing.Relation, relation))
            {
                return;
            }
            // A schema change: rows already collected keep the old schema and go out as their own batch (the
            // transaction's next rows continue in the new schema's batches); later rows use the new schema.
            foreach (var state in existing.Partitions)
            {
                if (state?.Builder.RowCount > 0)
                {
                    FlushBatch(state);
                }
            }

            existing.Replace(relation, _partitions, wholeRowIdentity);
            return;
        }
        _relations[relation.RelationId] = new RelationState(relation, _partitions, wholeRowIdentity);
    }

    public void OnInsert(uint relationId, TupleData newRow, Lsn lsn)
    {
        var relation = Touch(relationId, lsn);
        if (relation is not null)
        {
            Seen(relation).Insert();
            AppendChange(PartitionOf(relation, newRow, default, lsn), new RowChange(ChangeOp.Insert, newRow, default, OldTuple.None, lsn));
        }
    }

    /// <summary>A snapshot row (<c>_op = r</c>) of a relation described with <see cref="OnRelation"/>, inside a Begin/Commit of the snapshot chunk.</summary>
    public void OnRead(uint relationId, TupleData row, Lsn lsn)
    {
        var relation = Touch(relationId, lsn);
        if (relation is not null)
        {
            AppendChange(PartitionOf(relation, row, default, lsn), new RowChange(ChangeOp.Read, row, default, OldTuple.None, lsn));
        }
    }

    /// <summary>The Arrow schema message and fingerprint the relation's rows are written with (for snapshot markers); the relation must be described.</summary>
    public (ReadOnlyMemory<byte> Message, string Fingerprint) SchemaOf(uint relationId)
    {
        var relation = _relations[relationId];
        var state = relation.Partitions[0] ??= new PartitionState(relation, 0, _compression);
        return (state.Builder.SchemaMessage, state.Builder.SchemaFingerprint);
    }

    public void OnUpdate(uint relationId, OldTuple oldKind, TupleData oldRow, TupleData newRow, Lsn lsn)
    {
        var relation = Touch(relationId, lsn);
        if (relation is null)
        {
            return;
        }

        Seen(relation).Update();
        var fill = oldKind == OldTuple.Row ? oldRow : default;
        var target = PartitionOf(relation, newRow, fill, lsn);
        if (oldKind != OldTuple.None && relation.Partitioner.Spreads)
        {
            // The key may have moved to another partition: that partition's stream loses the old key.
            var source = PartitionOf(relation, oldRow, default, lsn);
            if (source != target)
            {
                AppendChange(source, new RowChange(ChangeOp.Delete, oldRow, default, OldTuple.None, lsn));
            }
        }

        AppendChange(target, new RowChange(ChangeOp.Update, newRow, oldRow, oldKind, lsn));
    }

    public void OnDelete(uint relationId, OldTuple oldKind, TupleData oldRow, Lsn lsn)
    {
        var relation = Touch(relationId, lsn);
        if (relation is not null)
        {
            Seen(relation).Delete();
            AppendChange(PartitionOf(relation, oldRow, default, lsn), new RowChange(ChangeOp.Delete, oldRow, default, OldTuple.None, lsn));
        }
    }

    public void OnTruncate(ReadOnlySpan<uint> relationIds, TruncateOptions options, Lsn lsn)
    {
        foreach (var relationId in relationIds)
        {
            var relation = Touch(relationId, lsn);
            if (relation is null)
            {
                continue;
            }

            Seen(relation).Truncate();
            // Every partition learns of the truncate, in order with its rows.
            for (var partition = 0; partition < relation.Partitions.Length; partition++)
            {
                AppendChange(Open(relation, partition), new RowChange(ChangeOp.Truncate, default, default, OldTuple.None, lsn, options));
            }
        }
    }

    public void OnMessage(bool transactional, Lsn messageLsn, string prefix, ReadOnlySpan<byte> content, Lsn lsn)
    {
        if (!SnapshotWindows.IsWatermark(prefix))
        {
            _framer.Message(transactional, messageLsn, prefix, content, lsn);
            return;
        }

        // An incremental snapshot's watermark (any connector's: never delivered as a message). Every row read so far is
        // written as a batch first, so the window sees the keys of every change before its high watermark.
        if (transactional && _framer.InTransaction && !_framer.Skipping && _framer.Windows is { } windows)
        {
            FlushAll();
            if (windows.OnWatermark(prefix, content, _framer.FinalLsn) is { } emission)
            {
                EmitWindow(emission, lsn);
            }
        }
    }

    /// <summary>
    /// For a decoder that frames transactions itself (wal2arrow): rows appended from now on belong to the framer's open
    /// transaction (its xid, commit LSN and time).
    /// </summary>
    public void JoinOpenTransaction()
    {
        _transactionNumber++;
        _commitMicros = (_framer.CommitTimestamp - DateTimeOffset.UnixEpoch).Ticks / 10;
    }

    /// <summary>
    /// Writes a high watermark's rows (<c>_op = r</c>) and markers into the open transaction, then reports the window
    /// emitted (<see cref="SnapshotWindow.Emitted"/>).
    /// </summary>
    public void EmitWindow(WindowEmission emission, Lsn lsn)
    {
        ArgumentNullException.ThrowIfNull(emission);
        if (emission.Window.Kind == WindowKind.Skip)
        {
            emission.Window.Emitted.TrySetResult(_framer.FinalLsn);
            return;
        }

        var relation = emission.Window.Relation;
        if (!_relations.ContainsKey(relation.RelationId))
        {
            OnRelation(relation, lsn);
        }

        foreach (var row in emission.Rows)
        {
            var tuple = TupleData.Parse(row.Tuple, lsn, out _);
            OnRead(relation.RelationId, tuple, lsn);
        }

        foreach (var (kind, wanted) in new[] { (SnapshotMarkerKind.Start, emission.Start), (SnapshotMarkerKind.End, emission.End) })
        {
            if (wanted)
            {
                var (message, fingerprint) = SchemaOf(relation.RelationId);
                _framer.AddMarker(new SnapshotMarker(kind, relation.Schema, relation.Table, message, fingerprint, _partitions, kind == SnapshotMarkerKind.End ? emission.TableRows : 0)
                {
                    Incremental = !emission.Initial,
                    SnapshotLsn = emission.SnapshotLsn,
                });
            }
        }

        emission.Window.Emitted.TrySetResult(_framer.FinalLsn);
    }

    private Diagnostics.ChangeCounts Seen(RelationState relation) =>
        relation.Seen ??= _metrics.TableChanges(relation.Relation.Schema, relation.Relation.Table);

    private RelationState? Touch(uint relationId, Lsn lsn)
    {
        if (!_framer.InTransaction)
        {
            throw new ReplicationProtocolException($"pgoutput change for relation {relationId} outside a transaction", lsn);
        }

        if (!_relations.TryGetValue(relationId, out var relation))
        {
            throw new ReplicationProtocolException($"pgoutput change for relation {relationId} before its Relation message", lsn);
        }

        return _framer.Skipping ? null : relation;
    }

    /// <summary>The partition of a row by its key columns (the new row's, an unchanged TOAST key value taken from <paramref name="fill"/>).</summary>
    private PartitionState PartitionOf(RelationState relation, TupleData row, TupleData fill, Lsn lsn)
    {
        var partitioner = relation.Partitioner;
        if (!partitioner.Spreads)
        {
            return Open(relation, 0);
        }

        partitioner.Begin();
        var keys = partitioner.KeyColumns;
        var next = 0;
        var column = 0;
        var old = fill;
        var haveOld = fill.ColumnCount == row.ColumnCount;
        while (next < keys.Count && row.MoveNext(out var kind, out var value))
        {
            var oldKind = TupleValueKind.Null;
            ReadOnlySpan<byte> oldValue = default;
            if (haveOld)
            {
                old.MoveNext(out oldKind, out oldValue);
            }

            if (column == keys[next])
            {
                if (kind == TupleValueKind.UnchangedToast && oldKind is TupleValueKind.Text or TupleValueKind.Binary)
                {
                    kind = oldKind;
                    value = oldValue;
                }

                switch (kind)
                {
                    case TupleValueKind.Null:
                        partitioner.AddNull();
                        break;
                    case TupleValueKind.UnchangedToast:
                        // A key column over ~2 kB left unchanged by an update: PostgreSQL sends neither its value nor
                        // the old key. Stopping would stop the stream for good on a valid change, so it hashes as
                        // null, as the wal2arrow plugin does (docs/format.md, partitions), and says so.
                        partitioner.AddNull();
                        if (!relation.ToastedKeyReported)
                        {
                            relation.ToastedKeyReported = true;
                            LogToastedKey(_logger, $"{relation.Relation.Schema}.{relation.Relation.Table}", lsn, relation.Relation.Columns[column].Name);
                        }

                        break;
                    default:
                        if (!partitioner.AddValue(column, value, kind == TupleValueKind.Text ? TupleFormat.Text : TupleFormat.Binary))
                        {
                            throw new TextFormatNeededException(
                                $"Table {relation.Relation.Schema}.{relation.Relation.Table} key column {relation.Relation.Columns[column].Name} needs pgoutput's text format to compute its partition; switching to text tuples.", lsn);
                        }

                        break;
                }

                next++;
            }

            column++;
        }

        return Open(relation, partitioner.End());
    }

    /// <summary>The relation's builder for <paramref name="partition"/>, set to the open transaction.</summary>
    private PartitionState Open(RelationState relation, int partition)
    {
        var state = relation.Partitions[partition] ??= new PartitionState(relation, partition, _compression);
        if (!state.Open)
        {
            state.Open = true;
            _open.Add(state);
        }

        if (state.BuilderTransaction != _transactionNumber)
        {
            state.BuilderTransaction = _transactionNumber;
            state.Builder.SetTransaction(_framer.Xid, _framer.FinalLsn.Value, _commitMicros);
        }

        return state;
    }

    /// <summary>Books a row that stays in the builder: which transactions the builder's rows belong to.</summary>
    private void Kept(PartitionState state)
    {
        if (state.Transaction != _transactionNumber)
        {
            // The first row of the open transaction in this builder.
            state.Transaction = _transactionNumber;
            state.ChunksOfTransaction = 0;
            state.TransactionRowsInBuilder = 0;
            if (state.Builder.RowCount == 1)
            {
                state.FirstCommitLsn = _framer.FinalLsn;
                state.FirstChunk = 0;
                state.Transactions = 0;
            }

            state.Transactions++;
        }
        else if (state.Builder.RowCount == 1)
        {
            // The builder was emptied by a cut inside this transaction: its rows go on as the next piece.
            state.FirstCommitLsn = _framer.FinalLsn;
            state.FirstChunk = state.ChunksOfTransaction;
            state.Transactions = 1;
            _framer.MarkContinued(state.Relation.Relation.RelationId, state.Partition);
        }

        state.LastCommitLsn = _framer.FinalLsn;
        state.TransactionRowsInBuilder++;
        _framer.CountRows(1);
    }

    /// <summary>Whether the builder's last rows belong to the open transaction (which then goes on after a cut).</summary>
    private bool EndsInOpenTransaction(PartitionState state) => state.Transaction == _transactionNumber && state.TransactionRowsInBuilder > 0;

    /// <summary>
    /// Appends one change and keeps every batch within the record limit by its real encoded size: the row is appended
    /// first (with everything it carries: the old row, TOAST values filled in from it under REPLICA IDENTITY FULL,
    /// <c>_special</c> and <c>_unchanged</c> entries), then the builder's size bound is checked. When the row made the
    /// batch too large, it is taken out again, the rows before it go out as a batch, and the row starts the next one.
    /// Only a row that alone exceeds the limit is fatal.
    /// </summary>
    private void AppendChange(PartitionState state, in RowChange change)
    {
        var builder = state.Builder;
        if (state.Full)
        {
            // A single large row waits alone in the builder: it goes out before the next row.
            FlushBatch(state);
        }

        AppendRow(state, change);
        if (builder.EstimatedSize <= _chunkLimit)
        {
            Kept(state);
            return;
        }

        if (builder.RowCount > 1)
        {
            builder.RemoveLastRow();
            FlushBatch(state);
            AppendRow(state, change);
            if (builder.EstimatedSize <= _chunkLimit)
            {
                Kept(state);
                return;
            }
        }

        // The row alone is over the bound (an upper bound): measure its real size. It stays alone in the builder.
        var size = state.SchemaMessageLength + builder.MeasureRecordBatch() + ArrowMessageWriter.EndOfStream.Length;
        if (size > _chunkLimit)
        {
            builder.RemoveLastRow();
            throw new RowTooLargeException($"{state.Relation.Relation.Schema}.{state.Relation.Relation.Table}", change.Lsn, size, _messageMaxBytes, ConnectorConfig.RecordOverhead);
        }

        Kept(state);
        state.Full = true;
    }

    /// <summary>One row change as pgoutput sent it; the tuples are views of the message being decoded.</summary>
    private readonly ref struct RowChange(ChangeOp op, TupleData row, TupleData oldRow, OldTuple oldKind, Lsn lsn, TruncateOptions options = TruncateOptions.None)
    {
        public ChangeOp Op { get; } = op;
        public TruncateOptions Options { get; } = options;
        public TupleData Row { get; } = row;
        public TupleData OldRow { get; } = oldRow;
        public OldTuple OldKind { get; } = oldKind;
        public Lsn Lsn { get; } = lsn;
    }

    private void AppendRow(PartitionState state, in RowChange change)
    {
        var builder = state.Builder;
        if (change.Op == ChangeOp.Truncate)
        {
            builder.AppendTruncateRow(change.Lsn.Value, TruncateOptionsText.Utf8(change.Options));
            return;
        }

        builder.BeginRow(change.Op, change.Lsn.Value);
        // REPLICA IDENTITY FULL: PostgreSQL sent the whole old row, so an unchanged TOAST value of the new row is
        // known: fill it in instead of marking it unchanged. A delete's old row is the row itself (no _before).
        var fill = change.OldKind == OldTuple.Row ? change.OldRow : default;
        AppendTuple(state.Relation.Relation, builder, change.Row, change.Lsn, fill);
        if (change.OldKind != OldTuple.None)
        {
            builder.BeginBefore();
            AppendTuple(state.Relation.Relation, builder, change.OldRow, change.Lsn, default);
        }

        builder.EndRow();
        // Logged at the 1st, 10th, 100th, … such value of a table: visible, never a flood.
        if (builder.TextFallbacks >= state.Relation.NextTextFallbackReport)
        {
            state.Relation.NextTextFallbackReport = builder.TextFallbacks * 10L;
            LogValueKeptAsText(_logger, $"{state.Relation.Relation.Schema}.{state.Relation.Relation.Table}", change.Lsn, builder.TextFallbacks, builder.LastTextFallback ?? "");
        }
    }

    // fullOldRow: the old row under REPLICA IDENTITY FULL (default when none); supplies unchanged TOAST values.
    private static void AppendTuple(PgRelation relation, ChangeBatchBuilder builder, TupleData tuple, Lsn lsn, TupleData fullOldRow)
    {
        if (tuple.ColumnCount != relation.Columns.Count)
        {
            throw new ReplicationProtocolException(
                $"pgoutput tuple for {relation.Schema}.{relation.Table} has {tuple.ColumnCount} columns but its Relation message has {relation.Columns.Count}", lsn);
        }

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

    /// <summary>
    /// Writes the builder's rows as one batch. They fit, because every row was checked when it was appended. Whether the
    /// open transaction's rows end in it is for the framer to decide (at its next batch of this partition or its commit).
    /// </summary>
    private void FlushBatch(PartitionState state)
    {
        var rows = state.Builder.RowCount;
        _buffer.ResetWrittenCount();
        var size = state.SchemaMessageLength + state.Builder.WriteRecordBatch(_buffer) + ArrowMessageWriter.EndOfStream.Length;
        if (size > _chunkLimit)
        {
            throw new InvalidOperationException(
                $"Internal error: a batch of {rows} rows of {state.Relation.Relation.Schema}.{state.Relation.Relation.Table} makes a {size}-byte record although its size bound kept it within {_chunkLimit}.");
        }

        var relation = state.Relation.Relation;
        var open = _framer.InTransaction && EndsInOpenTransaction(state);
        var cut = new BatchCut(rows, state.Transactions, state.FirstCommitLsn, state.LastCommitLsn, state.FirstChunk, open);
        _framer.AddBatch(relation.RelationId, relation.Schema, relation.Table, state.Partition, state.Builder.SchemaMessage, state.Builder.SchemaFingerprint,
            _buffer.WrittenSpan, cut, Lsn.Zero);
        if (open)
        {
            // The open transaction's next rows of this partition, if any, are its next piece.
            state.ChunksOfTransaction++;
        }

        state.Transactions = 0;
        state.TransactionRowsInBuilder = 0;
        state.Full = false;
    }

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
        foreach (var relation in _relations.Values)
        {
            relation.Dispose();
        }

        _relations.Clear();
    }

    [LoggerMessage(EventId = 1302, Level = LogLevel.Warning,
        Message = "Table {Table} at LSN {Lsn}: key column {Column} is an unchanged TOASTed value PostgreSQL did not send, so this update's partition was computed with it as null and may differ from the key's other rows. REPLICA IDENTITY FULL sends the value; topic.partitions = 1 avoids the question. Reported once per table")]
    private static partial void LogToastedKey(ILogger logger, string table, Lsn lsn, string column);

    [LoggerMessage(EventId = 1301, Level = LogLevel.Warning,
        Message = "Table {Table} at LSN {Lsn}: a value was kept as PostgreSQL's text in _special instead of its Arrow type, because WalBridge could not convert it ({Problem}); {Count} such values so far. Nothing is lost; please report this value")]
    private static partial void LogValueKeptAsText(ILogger logger, string table, Lsn lsn, long count, string problem);

    /// <summary>A relation's schema and its builders, one per partition (created on first use).</summary>
    private sealed class RelationState : IDisposable
    {
        public RelationState(PgRelation relation, int partitions, bool wholeRowIdentity)
        {
            Relation = relation;
            Partitions = new PartitionState?[partitions];
            Partitioner = new KeyPartitioner(relation, partitions, keyless: wholeRowIdentity);
        }

        public PgRelation Relation { get; private set; }
        public PartitionState?[] Partitions { get; }
        public KeyPartitioner Partitioner { get; private set; }

        /// <summary>Whether the warning about an unsent TOASTed key value was logged for this table.</summary>
        public bool ToastedKeyReported { get; set; }

        /// <summary>The operations metrics' counters of this table (looked up once; a rename looks them up again).</summary>
        public Diagnostics.ChangeCounts? Seen { get; set; }

        /// <summary>The builders' <see cref="ChangeBatchBuilder.TextFallbacks"/> count at which the next warning is logged.</summary>
        public long NextTextFallbackReport { get; set; } = 1;

        /// <summary>A new Relation message (schema change or rename): the next rows use the new schema.</summary>
        public void Replace(PgRelation relation, int partitions, bool wholeRowIdentity)
        {
            Relation = relation;
            Partitioner = new KeyPartitioner(relation, partitions, keyless: wholeRowIdentity);
            NextTextFallbackReport = 1;
            Seen = null;
            foreach (var state in Partitions)
            {
                state?.Replace(relation);
            }
        }

        public void Dispose()
        {
            foreach (var state in Partitions)
            {
                state?.Builder.Dispose();
            }
        }
    }

    /// <summary>One builder: a relation's rows for one partition in the open group, and where its transactions are cut.</summary>
    private sealed class PartitionState(RelationState relation, int partition, ArrowCompression compression)
    {
        public RelationState Relation { get; } = relation;
        public int Partition { get; } = partition;
        public ChangeBatchBuilder Builder { get; private set; } = new(relation.Relation, UnparsedTextPolicy.KeepAsSpecialText, compression);
        public int SchemaMessageLength => Builder.SchemaMessage.Length;

        /// <summary>Whether the builder belongs to the open group (listed for <see cref="FlushAll"/>).</summary>
        public bool Open { get; set; }
        /// <summary>The transaction (Begin count) the builder's next rows belong to (set with SetTransaction).</summary>
        public long BuilderTransaction { get; set; } = -1;
        /// <summary>The transaction (Begin count) whose rows were kept last.</summary>
        public long Transaction { get; set; } = -1;
        /// <summary>A single row larger than the size bound (but within the limit) waits alone in the builder.</summary>
        public bool Full { get; set; }
        /// <summary>Rows of that transaction in the builder now.</summary>
        public int TransactionRowsInBuilder { get; set; }
        /// <summary>Batches already written with rows of that transaction.</summary>
        public int ChunksOfTransaction { get; set; }
        /// <summary>Of the builder's rows: the first row's transaction commit LSN and piece, the last row's commit LSN, how many transactions.</summary>
        public Lsn FirstCommitLsn { get; set; }
        public int FirstChunk { get; set; }
        public Lsn LastCommitLsn { get; set; }
        public int Transactions { get; set; }

        public void Replace(PgRelation relation)
        {
            Builder.Dispose();
            Builder = new ChangeBatchBuilder(relation, UnparsedTextPolicy.KeepAsSpecialText, compression);
            // The open transaction's rows go on (in the new schema) as its next piece; the new builder needs its transaction.
            BuilderTransaction = -1;
        }
    }
}
