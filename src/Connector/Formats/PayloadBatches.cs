using Apache.Arrow;
using WalBridge.Connector.Transactions;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Connector.Formats;

/// <summary>What one <see cref="ChangeEntry"/> is.</summary>
internal enum ChangeEntryKind
{
    /// <summary>A row change (<c>_op</c> c, u, d or r) of one table partition.</summary>
    Row,
    /// <summary>A TRUNCATE of a table: once per table, although its <c>_op = t</c> row is in every partition.</summary>
    Truncate,
    /// <summary>A logical decoding message.</summary>
    Message,
}

/// <summary>
/// One change of a <see cref="TransactionGroup"/> in WAL order, decoded: a row (its record batch and index), a table's
/// truncate, or a message. <see cref="Batch"/> is a view of bytes read for it; use it before the next entry is taken.
/// </summary>
/// <param name="Kind">What it is.</param>
/// <param name="Stream">The table partition's stream (rows and truncates); null for a message.</param>
/// <param name="Batch">The decoded record batch holding the row (rows and truncates).</param>
/// <param name="Row">The row's index in <see cref="Batch"/>.</param>
/// <param name="Op">The <c>_op</c> of the row (<c>m</c> for a message).</param>
/// <param name="Lsn">The change's LSN (<c>_lsn</c>, or the message's LSN).</param>
/// <param name="Xid">Its source transaction's id (<c>_xid</c>; 0 for a message outside a transaction).</param>
/// <param name="CommitLsn">Its source transaction's commit LSN (<c>_commit_lsn</c>; a non-transactional message's own LSN).</param>
/// <param name="CommitTimestamp">Its source transaction's commit time (<c>_commit_ts</c>).</param>
/// <param name="OldPartition">
/// For an update that moved its key to another partition: the old key's partition, where the <c>d</c> row the
/// connector wrote for it is (that row is not an entry of its own). Otherwise the row's own partition.
/// </param>
/// <param name="Message">The message (messages only).</param>
internal readonly record struct ChangeEntry(
    ChangeEntryKind Kind,
    TableStream? Stream,
    RecordBatch? Batch,
    int Row,
    char Op,
    ulong Lsn,
    uint Xid,
    ulong CommitLsn,
    DateTimeOffset CommitTimestamp,
    int OldPartition,
    LogicalMessage? Message);

/// <summary>
/// The one place the formats stage reads the connector's decoded changes (payload format v2, docs/format.md): a
/// <see cref="TransactionGroup"/>'s table streams (an Arrow schema message and record batch messages per table
/// partition, in memory or in the group's spill file, each row carrying <c>_xid</c>, <c>_commit_lsn</c> and
/// <c>_commit_ts</c>) and messages, merged into one sequence in WAL order. When the payload representation changes, only
/// this adapter changes.
/// </summary>
/// <remarks>
/// <para>
/// Order: by (<c>_commit_lsn</c>, <c>_lsn</c>), an update before the delete of the same LSN, which is how the format
/// says partitions merge; rows of one table partition keep their order. Two rows the connector writes only so that
/// each partition alone is a complete change stream are folded: a truncate's row in every partition becomes one
/// <see cref="ChangeEntryKind.Truncate"/> entry per table, and the delete of the old key that a key-moving update leaves
/// in the old key's partition becomes the update's <see cref="ChangeEntry.OldPartition"/>.
/// </para>
/// <para>
/// Memory: one decoded record batch per table partition at a time (each batch is read when its first row is needed).
/// Not thread-safe; the Kafka loop's thread.
/// </para>
/// </remarks>
internal static class PayloadBatches
{
    /// <summary>Position of <c>_op</c>, <c>_lsn</c>, <c>_xid</c>, <c>_commit_lsn</c> and <c>_commit_ts</c> (format v2).</summary>
    private const int OpIndex = 0;
    private const int LsnIndex = 1;
    private const int XidIndex = 2;
    private const int CommitLsnIndex = 3;
    private const int CommitTimestampIndex = 4;

    /// <summary>The Arrow schema of <paramref name="stream"/> (its schema message).</summary>
    /// <exception cref="ArrowPayloadException">The schema message is not valid.</exception>
    public static Apache.Arrow.Schema SchemaOf(TableStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var bytes = new byte[stream.SchemaMessage.Length + ArrowMessageWriter.EndOfStream.Length];
        stream.SchemaMessage.Span.CopyTo(bytes);
        ArrowMessageWriter.EndOfStream.CopyTo(bytes.AsSpan(stream.SchemaMessage.Length));
        var schema = ArrowPayload.Read(bytes).Schema;
        if (schema.FieldsList.Count < ChangeBatchBuilder.LeadingColumns + 3 || schema.FieldsList[CommitLsnIndex].Name != ChangeBatchBuilder.CommitLsnColumn)
        {
            throw new ArrowPayloadException($"the schema of {stream.Schema}.{stream.Table} does not have payload format v2's leading columns (_op, _lsn, _xid, _commit_lsn, _commit_ts)");
        }

        return schema;
    }

    /// <summary>Reads one record batch message of <paramref name="stream"/>.</summary>
    /// <exception cref="ArrowPayloadException">The bytes are not a record batch of the stream's schema.</exception>
    /// <exception cref="Errors.LocalStorageException">A spilled batch cannot be read back.</exception>
    public static RecordBatch Read(TableStream stream, TableBatch batch)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(batch);
        var payload = ArrowPayload.Read(batch.Bytes.AsStream(stream.SchemaMessage.Span));
        if (payload.Batches.Count != 1 || payload.Batches[0].Length != batch.Rows)
        {
            throw new ArrowPayloadException($"a batch of {stream.Schema}.{stream.Table} partition {stream.Partition} decoded to {payload.RowCount} rows in {payload.Batches.Count} batches, expected {batch.Rows} in one");
        }

        return payload.Batches[0];
    }

    /// <summary>Every change of <paramref name="group"/> in WAL order (see the class remarks).</summary>
    public static IEnumerable<ChangeEntry> InWalOrder(TransactionGroup group)
    {
        ArgumentNullException.ThrowIfNull(group);
        var lanes = new List<Lane>();
        var byPartition = new Dictionary<(string Schema, string Table, int Partition), Lane>();
        foreach (var stream in group.Tables)
        {
            if (!byPartition.TryGetValue((stream.Schema, stream.Table, stream.Partition), out var lane))
            {
                byPartition[(stream.Schema, stream.Table, stream.Partition)] = lane = new TableLane(lanes.Count);
                lanes.Add(lane);
            }

            ((TableLane)lane).Streams.Add(stream);
        }

        if (group.Messages.Count > 0)
        {
            lanes.Add(new MessageLane(lanes.Count, group.Messages));
        }

        var heap = new PriorityQueue<Lane, (ulong CommitLsn, ulong Lsn, int Rank, int Lane)>();
        foreach (var lane in lanes)
        {
            if (lane.MoveNext())
            {
                heap.Enqueue(lane, lane.OrderKey);
            }
        }

        // The entries sharing one (commit LSN, LSN): one change, or the rows the connector wrote for one change
        // (a truncate in every partition, a key-moving update and its old key's delete).
        var same = new List<ChangeEntry>();
        var truncated = new HashSet<(string Schema, string Table)>();
        while (heap.TryPeek(out _, out var key))
        {
            same.Clear();
            while (heap.TryPeek(out var lane, out var next) && next.CommitLsn == key.CommitLsn && next.Lsn == key.Lsn)
            {
                heap.Dequeue();
                same.Add(lane.Current);
                if (lane.MoveNext())
                {
                    heap.Enqueue(lane, lane.OrderKey);
                }
            }

            truncated.Clear();
            for (var i = 0; i < same.Count; i++)
            {
                var entry = same[i];
                if (entry.Kind == ChangeEntryKind.Truncate)
                {
                    if (truncated.Add((entry.Stream!.Schema, entry.Stream.Table)))
                    {
                        yield return entry;
                    }

                    continue;
                }

                if (entry.Kind == ChangeEntryKind.Row && entry.Op == 'd' && IsMovedKeyDelete(same, i))
                {
                    continue;
                }

                if (entry.Kind == ChangeEntryKind.Row && entry.Op == 'u' && MovedFrom(same, i) is { } old)
                {
                    yield return entry with { OldPartition = old };
                    continue;
                }

                yield return entry;
            }
        }
    }

    /// <summary>The partition of the delete the connector wrote for the key-moving update <c>same[index]</c>, if any.</summary>
    private static int? MovedFrom(List<ChangeEntry> same, int index)
    {
        var update = same[index];
        foreach (var other in same)
        {
            if (other.Kind == ChangeEntryKind.Row && other.Op == 'd' && SameTable(other, update) && other.Stream!.Partition != update.Stream!.Partition)
            {
                return other.Stream.Partition;
            }
        }

        return null;
    }

    /// <summary>Whether the delete <c>same[index]</c> is the old key's delete of an update in another partition (same LSN).</summary>
    private static bool IsMovedKeyDelete(List<ChangeEntry> same, int index)
    {
        var delete = same[index];
        foreach (var other in same)
        {
            if (other.Kind == ChangeEntryKind.Row && other.Op == 'u' && SameTable(other, delete) && other.Stream!.Partition != delete.Stream!.Partition)
            {
                return true;
            }
        }

        return false;
    }

    private static bool SameTable(in ChangeEntry a, in ChangeEntry b) =>
        string.Equals(a.Stream!.Schema, b.Stream!.Schema, StringComparison.Ordinal) && string.Equals(a.Stream.Table, b.Stream.Table, StringComparison.Ordinal);

    /// <summary>A source of entries in its own order: one table partition's streams, or the group's messages.</summary>
    private abstract class Lane(int index)
    {
        public ChangeEntry Current { get; protected set; }

        /// <summary>Merge order: commit LSN, LSN, an update before a delete (format v2), then lane order for a stable merge.</summary>
        public (ulong CommitLsn, ulong Lsn, int Rank, int Lane) OrderKey => (Current.CommitLsn, Current.Lsn, Current.Op == 'd' ? 1 : 0, index);

        public abstract bool MoveNext();
    }

    private sealed class TableLane(int index) : Lane(index)
    {
        private int _stream;
        private int _batch = -1;
        private int _row = -1;
        private RecordBatch? _current;
        private StringArray? _op;
        private UInt64Array? _lsn;
        private UInt32Array? _xid;
        private UInt64Array? _commitLsn;
        private TimestampArray? _commitTimestamp;

        public List<TableStream> Streams { get; } = [];

        public override bool MoveNext()
        {
            while (_current is null || ++_row >= _current.Length)
            {
                if (!NextBatch())
                {
                    return false;
                }
            }

            var stream = Streams[_stream];
            var op = _op!.GetString(_row);
            var kind = op == "t" ? ChangeEntryKind.Truncate : ChangeEntryKind.Row;
            Current = new ChangeEntry(kind, stream, _current, _row, op is { Length: 1 } ? op[0] : '?', _lsn!.GetValue(_row) ?? 0, _xid!.GetValue(_row) ?? 0,
                _commitLsn!.GetValue(_row) ?? 0, _commitTimestamp!.GetTimestamp(_row) ?? DateTimeOffset.UnixEpoch, stream.Partition, null);
            return true;
        }

        private bool NextBatch()
        {
            while (_stream < Streams.Count)
            {
                if (++_batch < Streams[_stream].Batches.Count)
                {
                    _current = Read(Streams[_stream], Streams[_stream].Batches[_batch]);
                    _op = (StringArray)_current.Column(OpIndex);
                    _lsn = (UInt64Array)_current.Column(LsnIndex);
                    _xid = (UInt32Array)_current.Column(XidIndex);
                    _commitLsn = (UInt64Array)_current.Column(CommitLsnIndex);
                    _commitTimestamp = (TimestampArray)_current.Column(CommitTimestampIndex);
                    _row = -1;
                    return true;
                }

                _stream++;
                _batch = -1;
            }

            _current = null;
            return false;
        }
    }

    private sealed class MessageLane(int index, IReadOnlyList<LogicalMessage> messages) : Lane(index)
    {
        private int _next;

        public override bool MoveNext()
        {
            if (_next >= messages.Count)
            {
                return false;
            }

            var message = messages[_next++];
            Current = new ChangeEntry(ChangeEntryKind.Message, null, null, 0, 'm', (ulong)message.MessageLsn.Value, message.Xid, (ulong)message.CommitLsn.Value,
                message.CommitTimestamp, 0, message);
            return true;
        }
    }
}
