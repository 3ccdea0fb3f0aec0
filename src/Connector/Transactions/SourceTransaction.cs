using WalBridge.Offsets;

namespace WalBridge.Connector.Transactions;

/// <summary>What a Kafka record of a table topic (or of the messages topic) carries.</summary>
public enum PayloadKind
{
    /// <summary>Row changes (inserts, updates, deletes).</summary>
    Changes,
    /// <summary>The table was truncated at this point of the transaction; the payload has the table's schema and no rows.</summary>
    Truncate,
    /// <summary>A logical decoding message (<c>pg_logical_emit_message</c>); the payload is its content, unchanged.</summary>
    Message,
}

/// <summary>The options of a TRUNCATE; the bit values are pgoutput's (and wal2arrow's) option bits.</summary>
[Flags]
public enum TruncateOptions : byte
{
    None = 0,
    /// <summary><c>TRUNCATE … CASCADE</c>.</summary>
    Cascade = 0x01,
    /// <summary><c>TRUNCATE … RESTART IDENTITY</c>.</summary>
    RestartIdentity = 0x02,
}

/// <summary>
/// One Kafka record value: an Arrow IPC stream with one chunk of one table's rows of one source transaction (or a
/// logical decoding message). Immutable once its transaction is complete; the Kafka stage decides its topic.
/// </summary>
public sealed class TablePayload
{
    /// <summary>The table's namespace; empty for a message.</summary>
    public required string Schema { get; init; }
    /// <summary>The table's name; empty for a message.</summary>
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
    /// <exception cref="Errors.LocalStorageException">The spill file cannot be read back.</exception>
    public byte[] GetValue()
    {
        if (Value is not null)
        {
            return Value;
        }

        var value = new byte[_spilledLength];
        Spill!.Read(SpillOffset, value);
        return value;
    }

    /// <summary>For truncate records: whether CASCADE / RESTART IDENTITY were given.</summary>
    public TruncateOptions TruncateOptions { get; init; }
    /// <summary>For message records: the message's prefix, WAL position and whether it was transactional.</summary>
    public string? MessagePrefix { get; init; }
    public Lsn MessageLsn { get; init; }
    public bool MessageTransactional { get; init; }
}

/// <summary>
/// A committed source transaction, ready for Kafka: every payload in stream order. Handed from the replication
/// reader to the Kafka loop through the <see cref="Queue.TransactionQueue"/>; owned by the loop after that, which
/// disposes it (deleting its spill file) once it is committed or abandoned.
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
            {
                total += p.Value?.Length ?? 0;
            }

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
            {
                total += p.Length;
            }

            return total;
        }
    }
}
