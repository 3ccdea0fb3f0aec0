using WalBridge.Offsets;

namespace WalBridge.Connector.Pipeline;

/// <summary>What a Kafka record of a table topic carries.</summary>
public enum PayloadKind
{
    /// <summary>Row changes (inserts, updates, deletes).</summary>
    Changes,
    /// <summary>The table was truncated at this point of the transaction; the payload has the table's schema and no rows.</summary>
    Truncate,
    /// <summary>A logical decoding message (<c>pg_logical_emit_message</c>); the payload is its content, unchanged.</summary>
    Message,
}

/// <summary>
/// One Kafka record value: an Arrow IPC stream with one chunk of one table's rows of one source
/// transaction. Immutable once the transaction is complete.
/// </summary>
public sealed class TablePayload
{
    public required string Topic { get; init; }
    public required string Schema { get; init; }
    public required string Table { get; init; }
    public required PayloadKind Kind { get; init; }
    /// <summary>0-based index of this chunk among the table's records in the transaction.</summary>
    public required int ChunkIndex { get; init; }
    /// <summary>Whether this is the table's last chunk in the transaction; set when the commit arrives.</summary>
    public bool IsLastChunk { get; set; }
    public required int RowCount { get; init; }
    public required string SchemaFingerprint { get; init; }

    /// <summary>The record value when it is held in memory; null when it was spilled to disk.</summary>
    public byte[]? Value { get; init; }

    /// <summary>Where a spilled value lives (with <see cref="SpillOffset"/> and <see cref="Length"/>).</summary>
    internal SpillFile? Spill { get; init; }
    internal long SpillOffset { get; init; }
    private readonly int _spilledLength;

    /// <summary>The value's length in bytes.</summary>
    public int Length
    {
        get => Value?.Length ?? _spilledLength;
        init => _spilledLength = value;
    }

    /// <summary>The record value, read back from the spill file when it was spilled.</summary>
    public byte[] GetValue()
    {
        if (Value is not null)
            return Value;
        var value = new byte[_spilledLength];
        Spill!.Read(SpillOffset, value);
        return value;
    }
    /// <summary>For truncate records: whether CASCADE / RESTART IDENTITY were given.</summary>
    public string? TruncateOptions { get; init; }
    /// <summary>For message records: the message's prefix, WAL position and whether it was transactional.</summary>
    public string? MessagePrefix { get; init; }
    public Lsn MessageLsn { get; init; }
    public bool MessageTransactional { get; init; }
}

/// <summary>
/// A committed source transaction, ready for Kafka: every payload in stream order. Handed from
/// the replication reader to the Kafka loop through a bounded channel; owned by the loop after that.
/// </summary>
public sealed class SourceTransaction : IDisposable
{
    /// <summary>The spill file holding payloads that did not stay in memory, if any; deleted on dispose.</summary>
    internal SpillFile? Spill { get; init; }

    /// <summary>Payload bytes held in memory (the queue's memory budget counts these).</summary>
    public long MemoryBytes
    {
        get
        {
            long total = 0;
            foreach (var p in Payloads)
                total += p.Value?.Length ?? 0;
            return total;
        }
    }

    public void Dispose() => Spill?.Dispose();

    public required uint Xid { get; init; }
    /// <summary>LSN of the commit record: the position written to the offsets topic and acknowledged to PostgreSQL.</summary>
    public required Lsn CommitLsn { get; init; }
    /// <summary>LSN just past the commit record.</summary>
    public required Lsn EndLsn { get; init; }
    public required DateTimeOffset CommitTimestamp { get; init; }
    public required IReadOnlyList<TablePayload> Payloads { get; init; }
    public required int RowCount { get; init; }

    /// <summary>
    /// A heartbeat: no payloads, only a position. Every source transaction that committed before
    /// <see cref="CommitLsn"/> was already handed over, so the position may be recorded and acknowledged
    /// (an idle slot then stops pinning WAL).
    /// </summary>
    public bool IsHeartbeat { get; init; }

    /// <summary>Total payload bytes.</summary>
    public long ByteCount
    {
        get
        {
            long total = 0;
            foreach (var p in Payloads)
                total += p.Length;
            return total;
        }
    }
}
