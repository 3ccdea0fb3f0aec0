using WalBridge.Connector.Transactions;
using WalBridge.Offsets;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Connector.Decoding.PgOutput;

/// <summary>pgoutput's message types (the first byte of every message), protocol versions 1 and 2.</summary>
internal enum PgOutputMessageType : byte
{
    Begin = (byte)'B',
    Commit = (byte)'C',
    Origin = (byte)'O',
    Relation = (byte)'R',
    Type = (byte)'Y',
    Insert = (byte)'I',
    Update = (byte)'U',
    Delete = (byte)'D',
    Truncate = (byte)'T',
    Message = (byte)'M',
    /// <summary>Protocol 2: a block of an in-progress transaction starts.</summary>
    StreamStart = (byte)'S',
    /// <summary>Protocol 2: the block ends.</summary>
    StreamStop = (byte)'E',
    /// <summary>Protocol 2: a streamed transaction commits.</summary>
    StreamCommit = (byte)'c',
    /// <summary>Protocol 2: a streamed transaction, or one of its subtransactions, aborts.</summary>
    StreamAbort = (byte)'A',
}

/// <summary>Facts about <see cref="PgOutputMessageType"/>s.</summary>
internal static class PgOutputMessageTypes
{
    /// <summary>Whether a message of this type carries its (sub)transaction id after the type byte inside a stream block.</summary>
    public static bool CarriesStreamXid(this PgOutputMessageType type) => type is PgOutputMessageType.Insert or PgOutputMessageType.Update
        or PgOutputMessageType.Delete or PgOutputMessageType.Truncate or PgOutputMessageType.Relation or PgOutputMessageType.Type
        or PgOutputMessageType.Message;

    /// <summary>Whether a message of this type is a change that belongs to a (sub)transaction (dropped when it aborts).</summary>
    public static bool IsChange(this PgOutputMessageType type) => type is PgOutputMessageType.Insert or PgOutputMessageType.Update
        or PgOutputMessageType.Delete or PgOutputMessageType.Truncate or PgOutputMessageType.Message;
}

/// <summary>Which old tuple an Update or Delete carries (pgoutput's marker byte before it).</summary>
internal enum OldTuple : byte
{
    /// <summary>No old tuple (an update under REPLICA IDENTITY DEFAULT/INDEX that did not change the key).</summary>
    None = 0,
    /// <summary><c>'K'</c>: the old replica-identity key columns; the others are null.</summary>
    Key = (byte)'K',
    /// <summary><c>'O'</c>: the whole old row (REPLICA IDENTITY FULL).</summary>
    Row = (byte)'O',
}

/// <summary>
/// Receives the decoded messages of a pgoutput stream, in stream order, on the reader's thread.
/// Tuple spans are valid only for the duration of the call.
/// </summary>
internal interface IPgOutputHandler
{
    /// <summary>Whether a transaction is open (Begin seen, Commit not yet).</summary>
    bool InTransaction { get; }

    void OnBegin(Lsn finalLsn, DateTimeOffset commitTimestamp, uint xid, Lsn lsn);
    void OnCommit(in CommitFields commit, Lsn lsn);
    void OnRelation(PgRelation relation, Lsn lsn);
    /// <summary>
    /// A Type message: sent before a Relation that uses a non-built-in type. For a domain PostgreSQL
    /// sends the domain's OID with its base type's namespace and name; for an enum, the enum's own.
    /// </summary>
    void OnType(uint typeOid, string typeNamespace, string typeName, Lsn lsn);
    void OnInsert(uint relationId, TupleData newRow, Lsn lsn);
    void OnUpdate(uint relationId, OldTuple oldKind, TupleData oldRow, TupleData newRow, Lsn lsn);
    /// <summary><paramref name="oldKind"/> is <see cref="OldTuple.Key"/> or <see cref="OldTuple.Row"/>.</summary>
    void OnDelete(uint relationId, OldTuple oldKind, TupleData oldRow, Lsn lsn);
    void OnTruncate(ReadOnlySpan<uint> relationIds, TruncateOptions options, Lsn lsn);
    /// <summary>A logical decoding message (<c>pg_logical_emit_message</c>); <paramref name="messageLsn"/> is its WAL position.</summary>
    void OnMessage(bool transactional, Lsn messageLsn, string prefix, ReadOnlySpan<byte> content, Lsn lsn);
}

/// <summary>Flags of a logical decoding message (pgoutput's and wal2arrow's Message flags byte).</summary>
[Flags]
internal enum LogicalMessageFlags : byte
{
    None = 0,
    /// <summary>Emitted with <c>transactional = true</c>: part of its transaction.</summary>
    Transactional = 0x01,
}
