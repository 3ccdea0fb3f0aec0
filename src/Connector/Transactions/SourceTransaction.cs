using WalBridge.Serialization.Payload;
using WalBridge.Offsets;

namespace WalBridge.Connector.Transactions;

/// <summary>The options of a TRUNCATE; the bit values are pgoutput's option bits.</summary>
[Flags]
public enum TruncateOptions : byte
{
    None = 0,
    /// <summary><c>TRUNCATE … CASCADE</c>.</summary>
    Cascade = 0x01,
    /// <summary><c>TRUNCATE … RESTART IDENTITY</c>.</summary>
    RestartIdentity = 0x02,
}

/// <summary>Facts of the <see cref="TruncateOptions"/>.</summary>
public static class TruncateOptionsText
{
    /// <summary>The text of a truncate row's <c>_truncate</c> entry: <c>cascade</c>, <c>restart_identity</c>, both comma-separated, or empty.</summary>
    public static ReadOnlySpan<byte> Utf8(TruncateOptions options) => options switch
    {
        TruncateOptions.Cascade | TruncateOptions.RestartIdentity => "cascade,restart_identity"u8,
        TruncateOptions.Cascade => "cascade"u8,
        TruncateOptions.RestartIdentity => "restart_identity"u8,
        _ => ""u8,
    };
}

/// <summary>
/// Bytes of a record piece held in memory or, past <c>transaction.memory.bytes</c>, in the spill file of their
/// <see cref="TransactionGroup"/>. Immutable.
/// </summary>
public sealed class StoredBytes
{
    // In memory: the bytes are _array[_offset.._offset + Length]. A record batch is stored framed, as the whole Arrow
    // stream of one batch (its schema message before it, the end-of-stream marker after), so that a record of one batch
    // is this array itself (AsStream): no second large array and no copy per record.
    private readonly byte[]? _array;
    private readonly int _offset;

    internal StoredBytes(byte[]? memory, SpillFile? spill, long spillOffset, int length)
        : this(memory, 0, spill, spillOffset, length)
    {
    }

    private StoredBytes(byte[]? array, int offset, SpillFile? spill, long spillOffset, int length)
    {
        _array = array;
        _offset = offset;
        Spill = spill;
        SpillOffset = spillOffset;
        Length = length;
    }

    /// <summary>
    /// Stores <paramref name="batch"/> in memory framed as a whole stream: <paramref name="schemaMessage"/>, the batch,
    /// the end-of-stream marker.
    /// </summary>
    internal static StoredBytes Framed(ReadOnlySpan<byte> schemaMessage, ReadOnlySpan<byte> batch)
    {
        var array = NewStream(schemaMessage, batch.Length, out var body);
        batch.CopyTo(body);
        return new StoredBytes(array, schemaMessage.Length, null, 0, batch.Length);
    }

    /// <summary>A stream of one batch of <paramref name="length"/> bytes: schema message and end marker written, the batch's room in <paramref name="body"/>.</summary>
    private static byte[] NewStream(ReadOnlySpan<byte> schemaMessage, int length, out Span<byte> body)
    {
        var end = ArrowMessageWriter.EndOfStream;
        // Every byte is written by the caller or here: not zeroed first (a batch is up to the record limit, on the large object heap).
        var array = GC.AllocateUninitializedArray<byte>(schemaMessage.Length + length + end.Length);
        schemaMessage.CopyTo(array);
        end.CopyTo(array.AsSpan(schemaMessage.Length + length));
        body = array.AsSpan(schemaMessage.Length, length);
        return array;
    }

    internal SpillFile? Spill { get; }
    internal long SpillOffset { get; }
    public int Length { get; }

    /// <summary>The bytes, read back from the spill file when they were spilled (a new array unless they are held exactly).</summary>
    /// <exception cref="Errors.LocalStorageException">The spill file cannot be read back.</exception>
    public byte[] Get()
    {
        if (_array is not null && _offset == 0 && _array.Length == Length)
        {
            return _array;
        }

        var value = new byte[Length];
        CopyTo(value);
        return value;
    }

    /// <summary>Copies the bytes to <paramref name="destination"/> (exactly <see cref="Length"/> bytes).</summary>
    /// <exception cref="Errors.LocalStorageException">The spill file cannot be read back.</exception>
    public void CopyTo(Span<byte> destination)
    {
        if (_array is not null)
        {
            _array.AsSpan(_offset, Length).CopyTo(destination);
        }
        else
        {
            Spill!.Read(SpillOffset, destination[..Length]);
        }
    }

    /// <summary>
    /// These record batch bytes as a whole Arrow stream: <paramref name="schemaMessage"/>, the batch, the end-of-stream
    /// marker. The array they are stored in when they were stored framed with the same schema message (callers must not
    /// change it), else a new one.
    /// </summary>
    /// <exception cref="Errors.LocalStorageException">The spill file cannot be read back.</exception>
    public byte[] AsStream(ReadOnlySpan<byte> schemaMessage)
    {
        var end = ArrowMessageWriter.EndOfStream;
        if (_array is not null && _offset == schemaMessage.Length && _array.Length == _offset + Length + end.Length &&
            _array.AsSpan(0, _offset).SequenceEqual(schemaMessage))
        {
            return _array;
        }

        var stream = NewStream(schemaMessage, Length, out var body);
        CopyTo(body);
        return stream;
    }
}

/// <summary>
/// One Arrow IPC record batch message (no schema, no end-of-stream marker) of one table partition: rows of one or more
/// consecutive source transactions, each row carrying its transaction in <c>_xid</c>, <c>_commit_lsn</c> and
/// <c>_commit_ts</c>. A transaction's rows of one table partition are cut into several batches when they would not
/// fit one record; <see cref="FirstChunk"/> and <see cref="LastComplete"/> say where the cuts are.
/// </summary>
public sealed class TableBatch
{
    public required StoredBytes Bytes { get; init; }
    public required int Rows { get; init; }
    /// <summary>Source transactions with rows in this batch.</summary>
    public required int Transactions { get; init; }
    public required Lsn FirstCommitLsn { get; init; }
    public required Lsn LastCommitLsn { get; init; }
    /// <summary>Which piece of its first transaction's rows (of this table partition) this batch starts with: 0 when it starts with them.</summary>
    public required int FirstChunk { get; init; }
    /// <summary>
    /// Whether its last transaction's rows (of this table partition) end in this batch. Decided by the framer, when it
    /// knows: at the transaction's next batch of the table partition, or at its commit.
    /// </summary>
    public required bool LastComplete { get; set; }
}

/// <summary>A table partition's batches of one schema (one Arrow schema message), in commit order.</summary>
public sealed class TableStream
{
    public required uint RelationId { get; init; }
    public required string Schema { get; init; }
    public required string Table { get; init; }
    public required int Partition { get; init; }
    /// <summary>The encoded Arrow schema message every batch of this stream belongs to.</summary>
    public required ReadOnlyMemory<byte> SchemaMessage { get; init; }
    public required string SchemaFingerprint { get; init; }
    public List<TableBatch> Batches { get; } = [];
}

/// <summary>A logical decoding message (<c>pg_logical_emit_message</c>) for the messages topic.</summary>
public sealed class LogicalMessage
{
    public required string Prefix { get; init; }
    public required Lsn MessageLsn { get; init; }
    public required bool Transactional { get; init; }
    public required StoredBytes Content { get; init; }
    /// <summary>Transactional: the transaction's id; otherwise 0.</summary>
    public required uint Xid { get; init; }
    /// <summary>Transactional: the transaction's commit LSN; otherwise the message's own LSN.</summary>
    public required Lsn CommitLsn { get; init; }
    /// <summary>Transactional: the commit time; otherwise when it was read.</summary>
    public required DateTimeOffset CommitTimestamp { get; init; }
}

/// <summary>A committed source transaction of a <see cref="TransactionGroup"/>.</summary>
/// <param name="Xid">Its transaction id.</param>
/// <param name="CommitLsn">The commit record's LSN.</param>
/// <param name="EndLsn">Just past the commit record.</param>
/// <param name="CommitTimestamp">Commit time at the source.</param>
/// <param name="Rows">Row changes it holds (truncate rows included).</param>
public readonly record struct CommittedTransaction(uint Xid, Lsn CommitLsn, Lsn EndLsn, DateTimeOffset CommitTimestamp, int Rows);

/// <summary>
/// A run of consecutive committed source transactions (and logical messages, heartbeats) handed from the replication
/// reader to the Kafka loop together, through the <see cref="Queue.TransactionQueue"/>. The Kafka loop writes one or
/// more groups in one Kafka transaction: one record per table and partition (more when over the record limit).
/// Owned by the queue, then by the Kafka loop, which disposes it (deleting its spill file) once committed or abandoned.
/// </summary>
public sealed class TransactionGroup : IDisposable
{
    public required IReadOnlyList<CommittedTransaction> Transactions { get; init; }
    public required IReadOnlyList<TableStream> Tables { get; init; }
    public required IReadOnlyList<LogicalMessage> Messages { get; init; }

    /// <summary>
    /// The position to record in the offsets topic and acknowledge: the last transaction's commit LSN, or a later
    /// heartbeat's or non-transactional message's LSN (every commit before it was handed over already).
    /// </summary>
    public required Lsn Position { get; init; }

    /// <summary>
    /// When the source was known to be at <see cref="Position"/>: the last transaction's commit time, or when the later
    /// heartbeat or non-transactional message was read (so an idle, caught-up connector reports no lag).
    /// </summary>
    public DateTimeOffset PositionTime { get; init; }

    /// <summary>The spill file holding values that did not stay in memory, if any; deleted on dispose.</summary>
    internal SpillFile? Spill { get; init; }

    /// <summary>A snapshot chunk or snapshot markers (the group is then written alone in its Kafka transaction); null for streamed changes.</summary>
    public SnapshotPart? Snapshot { get; init; }

    /// <summary>Markers of incremental snapshots written at high watermarks of this group (after its rows).</summary>
    public IReadOnlyList<SnapshotMarker> StreamMarkers { get; init; } = [];

    /// <summary>
    /// The incremental snapshots' progress as of the group's end (the stream's <see cref="SnapshotWindows"/>), or null
    /// when the group comes from elsewhere (an initial snapshot chunk) or none ever ran.
    /// </summary>
    public Offsets.IncrementalSnapshotState? Incremental { get; init; }

    /// <summary>Whether the group holds only a heartbeat position (no transaction, no message).</summary>
    public bool IsHeartbeat => Transactions.Count == 0 && Messages.Count == 0 && Snapshot is null;

    /// <summary>The last committed transaction, if any.</summary>
    public CommittedTransaction? LastTransaction => Transactions.Count > 0 ? Transactions[^1] : null;

    public long RowCount
    {
        get
        {
            long rows = 0;
            foreach (var transaction in Transactions)
            {
                rows += transaction.Rows;
            }

            return rows;
        }
    }

    /// <summary>Bytes of every batch and message.</summary>
    public long ByteCount { get; init; }

    /// <summary>Of those, the bytes held in memory (the queue's memory budget counts these).</summary>
    public long MemoryBytes { get; init; }

    /// <summary>When the replication reader handed the group over (UTC microseconds); set only while <see cref="Diagnostics.StageTrace"/> is on.</summary>
    internal long HandedOverMicros { get; set; }

    public void Dispose() => Spill?.Dispose();
}
