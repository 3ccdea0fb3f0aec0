using WalBridge.Offsets;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Connector.Replication.PgOutput;

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
    void OnBegin(Lsn finalLsn, DateTimeOffset commitTimestamp, uint xid);
    void OnCommit(Lsn commitLsn, Lsn endLsn, DateTimeOffset commitTimestamp);
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
    void OnTruncate(ReadOnlySpan<uint> relationIds, bool cascade, bool restartIdentity, Lsn lsn);
    /// <summary>A logical decoding message (<c>pg_logical_emit_message</c>); <paramref name="messageLsn"/> is its WAL position.</summary>
    void OnMessage(bool transactional, Lsn messageLsn, string prefix, ReadOnlySpan<byte> content, Lsn lsn);
}
