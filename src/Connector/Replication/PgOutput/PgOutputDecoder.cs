using System.Buffers.Binary;
using WalBridge.Offsets;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Connector.Replication.PgOutput;

/// <summary>
/// Decodes pgoutput messages of protocol versions 1 and 2
/// (https://www.postgresql.org/docs/15/protocol-logicalrep-message-formats.html).
/// Version 2 adds streamed in-progress transactions: their control messages (Stream Start/Stop/
/// Commit/Abort) are read by <see cref="StreamedTransactions"/>, and the messages inside a stream
/// block carry the (sub)transaction id after the type byte (<c>streamed</c>).
/// Strict: an unknown message type, a truncated message or trailing bytes is a
/// <see cref="ReplicationProtocolException"/>, never skipped. Stateless and thread-safe.
/// </summary>
internal static class PgOutputDecoder
{
    /// <summary>The highest protocol version the decoder understands (2: streaming, PostgreSQL 14+).</summary>
    public const int MaxProtocolVersion = 2;

    /// <summary>Message types that carry a transaction id when sent inside a stream block.</summary>
    public static bool CarriesStreamXid(byte type) => type is (byte)'I' or (byte)'U' or (byte)'D' or (byte)'T' or (byte)'R' or (byte)'Y' or (byte)'M';

    /// <summary>The (sub)transaction id of a message sent inside a stream block.</summary>
    public static uint StreamXid(ReadOnlySpan<byte> message, Lsn lsn) =>
        message.Length >= 5
            ? BinaryPrimitives.ReadUInt32BigEndian(message[1..])
            : throw new ReplicationProtocolException("pgoutput streamed message too short for its transaction id", lsn);

    public static void Decode(ReadOnlySpan<byte> message, Lsn lsn, IPgOutputHandler handler, bool streamed = false)
    {
        var reader = new ProtocolReader(message, lsn);
        var type = reader.ReadByte("message type");
        if (streamed)
        {
            if (!CarriesStreamXid(type))
                throw new ReplicationProtocolException($"pgoutput message type '{(char)type}' inside a stream block", lsn);
            reader.ReadUInt32("streamed xid");
        }
        switch (type)
        {
            case (byte)'B':
            {
                var finalLsn = reader.ReadLsn("Begin.final_lsn");
                var timestamp = reader.ReadTimestamp("Begin.timestamp");
                var xid = reader.ReadUInt32("Begin.xid");
                reader.ExpectEnd("Begin");
                handler.OnBegin(finalLsn, timestamp, xid);
                break;
            }
            case (byte)'C':
            {
                var flags = reader.ReadByte("Commit.flags");
                if (flags != 0)
                    throw new ReplicationProtocolException($"pgoutput Commit has unknown flags 0x{flags:X2}", lsn);
                var commitLsn = reader.ReadLsn("Commit.commit_lsn");
                var endLsn = reader.ReadLsn("Commit.end_lsn");
                var timestamp = reader.ReadTimestamp("Commit.timestamp");
                reader.ExpectEnd("Commit");
                handler.OnCommit(commitLsn, endLsn, timestamp);
                break;
            }
            case (byte)'O':
                // Origin: the transaction was replicated from elsewhere. We publish it like any
                // other; the origin's name is not part of the contract.
                reader.ReadLsn("Origin.lsn");
                reader.ReadCString("Origin.name");
                reader.ExpectEnd("Origin");
                break;
            case (byte)'Y':
            {
                // Type: sent for non-built-in types before a Relation that uses them.
                var typeOid = reader.ReadUInt32("Type.oid");
                var typeNamespace = reader.ReadCString("Type.namespace");
                var typeName = reader.ReadCString("Type.name");
                reader.ExpectEnd("Type");
                handler.OnType(typeOid, typeNamespace, typeName, lsn);
                break;
            }
            case (byte)'R':
                handler.OnRelation(ReadRelation(ref reader), lsn);
                break;
            case (byte)'I':
            {
                var relationId = reader.ReadUInt32("Insert.relation");
                var marker = reader.ReadByte("Insert.N");
                if (marker != 'N')
                    throw new ReplicationProtocolException($"pgoutput Insert expected 'N' but found 0x{marker:X2}", lsn);
                var tuple = TupleData.Parse(reader.Rest, lsn, out var length);
                reader.ReadBytes(length, "Insert.tuple");
                reader.ExpectEnd("Insert");
                handler.OnInsert(relationId, tuple, lsn);
                break;
            }
            case (byte)'U':
            {
                var relationId = reader.ReadUInt32("Update.relation");
                var marker = reader.ReadByte("Update.marker");
                var oldKind = OldTuple.None;
                TupleData oldTuple = default;
                if (marker is (byte)OldTuple.Key or (byte)OldTuple.Row)
                {
                    oldKind = (OldTuple)marker;
                    oldTuple = TupleData.Parse(reader.Rest, lsn, out var oldLength);
                    reader.ReadBytes(oldLength, "Update.old_tuple");
                    marker = reader.ReadByte("Update.N");
                }
                if (marker != 'N')
                    throw new ReplicationProtocolException($"pgoutput Update expected 'N' but found 0x{marker:X2}", lsn);
                var newTuple = TupleData.Parse(reader.Rest, lsn, out var newLength);
                reader.ReadBytes(newLength, "Update.new_tuple");
                reader.ExpectEnd("Update");
                handler.OnUpdate(relationId, oldKind, oldTuple, newTuple, lsn);
                break;
            }
            case (byte)'D':
            {
                var relationId = reader.ReadUInt32("Delete.relation");
                var marker = reader.ReadByte("Delete.marker");
                if (marker is not ((byte)OldTuple.Key or (byte)OldTuple.Row))
                    throw new ReplicationProtocolException($"pgoutput Delete expected 'K' or 'O' but found 0x{marker:X2}", lsn);
                var tuple = TupleData.Parse(reader.Rest, lsn, out var length);
                reader.ReadBytes(length, "Delete.old_tuple");
                reader.ExpectEnd("Delete");
                handler.OnDelete(relationId, (OldTuple)marker, tuple, lsn);
                break;
            }
            case (byte)'T':
            {
                var count = reader.ReadInt32("Truncate.count");
                var options = reader.ReadByte("Truncate.options");
                if ((options & ~0x03) != 0)
                    throw new ReplicationProtocolException($"pgoutput Truncate has unknown option bits 0x{options:X2}", lsn);
                if (count < 0 || count > reader.Remaining / 4)
                    throw new ReplicationProtocolException($"pgoutput Truncate declares {count} relations in {reader.Remaining} bytes", lsn);
                var ids = new uint[count];
                for (var i = 0; i < count; i++)
                    ids[i] = reader.ReadUInt32("Truncate.relation");
                reader.ExpectEnd("Truncate");
                handler.OnTruncate(ids, (options & 0x01) != 0, (options & 0x02) != 0, lsn);
                break;
            }
            case (byte)'M':
            {
                // Sent because the connector asks for messages 'true' (PostgreSQL 14+).
                var flags = reader.ReadByte("Message.flags");
                if ((flags & ~0x01) != 0)
                    throw new ReplicationProtocolException($"pgoutput Message has unknown flags 0x{flags:X2}", lsn);
                var messageLsn = reader.ReadLsn("Message.lsn");
                var prefix = reader.ReadCString("Message.prefix");
                var length = reader.ReadInt32("Message.length");
                if (length < 0)
                    throw new ReplicationProtocolException($"pgoutput Message declares a negative length {length}", lsn);
                var content = reader.ReadBytes(length, "Message.content");
                reader.ExpectEnd("Message");
                handler.OnMessage((flags & 0x01) != 0, messageLsn, prefix, content, lsn);
                break;
            }
            default:
                throw new ReplicationProtocolException(
                    $"pgoutput message type '{(char)type}' (0x{type:X2}) is unknown or was not requested (the connector asks for protocol version {MaxProtocolVersion} at most, without two-phase)", lsn);
        }
    }

    private static PgRelation ReadRelation(ref ProtocolReader reader)
    {
        var relationId = reader.ReadUInt32("Relation.id");
        var schema = reader.ReadCString("Relation.namespace");
        var table = reader.ReadCString("Relation.name");
        var replicaIdentity = (char)reader.ReadByte("Relation.replica_identity");
        var count = reader.ReadInt16("Relation.column_count");
        if (count < 0)
            throw new ReplicationProtocolException($"pgoutput Relation {schema}.{table} has a negative column count", Lsn.Zero);
        var columns = new PgColumn[count];
        for (var i = 0; i < count; i++)
        {
            var flags = reader.ReadByte("Relation.column.flags");
            var name = reader.ReadCString("Relation.column.name");
            var typeOid = reader.ReadUInt32("Relation.column.type");
            var typeModifier = reader.ReadInt32("Relation.column.typmod");
            columns[i] = new PgColumn(name, typeOid, typeModifier, (flags & 1) != 0);
        }
        reader.ExpectEnd("Relation");
        return new PgRelation(relationId, schema, table, replicaIdentity, columns);
    }

    /// <summary>Reads the big-endian 32-bit relation id that follows a message type byte (for tests and diagnostics).</summary>
    public static uint PeekRelationId(ReadOnlySpan<byte> message) =>
        message.Length >= 5 ? BinaryPrimitives.ReadUInt32BigEndian(message[1..]) : 0;
}
