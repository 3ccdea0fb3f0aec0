using WalBridge.Offsets;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Connector.Replication.PgOutput;

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
    /// <summary><paramref name="oldKind"/> is <c>'K'</c> (old key), <c>'O'</c> (old row) or 0 (no old tuple).</summary>
    void OnUpdate(uint relationId, byte oldKind, TupleData oldRow, TupleData newRow, Lsn lsn);
    void OnDelete(uint relationId, byte oldKind, TupleData oldRow, Lsn lsn);
    void OnTruncate(ReadOnlySpan<uint> relationIds, bool cascade, bool restartIdentity, Lsn lsn);
    /// <summary>A logical decoding message (<c>pg_logical_emit_message</c>); <paramref name="messageLsn"/> is its WAL position.</summary>
    void OnMessage(bool transactional, Lsn messageLsn, string prefix, ReadOnlySpan<byte> content, Lsn lsn);
}
