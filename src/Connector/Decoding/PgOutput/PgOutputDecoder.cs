using System.Buffers.Binary;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Transactions;
using WalBridge.Offsets;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Connector.Decoding.PgOutput;

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

    /// <summary>The (sub)transaction id of a message sent inside a stream block.</summary>
    public static uint StreamXid(ReadOnlySpan<byte> message, Lsn lsn) =>
        message.Length >= 5
            ? BinaryPrimitives.ReadUInt32BigEndian(message[1..])
            : throw new ReplicationProtocolException("pgoutput streamed message too short for its transaction id", lsn);

    public static void Decode(ReadOnlySpan<byte> message, Lsn lsn, IPgOutputHandler handler, bool streamed = false)
    {
        var reader = new ProtocolReader(message, lsn);
        var type = (PgOutputMessageType)reader.ReadByte("message type");
        if (streamed)
        {
            if (!type.CarriesStreamXid())
            {
                throw new ReplicationProtocolException($"pgoutput message type '{(char)type}' inside a stream block", lsn);
            }

            reader.ReadUInt32("streamed xid");
        }
        switch (type)
        {
            case PgOutputMessageType.Begin:
                {
                    var finalLsn = reader.ReadLsn("Begin.final_lsn");
                    var timestamp = reader.ReadTimestamp("Begin.timestamp");
                    var xid = reader.ReadUInt32("Begin.xid");
                    reader.ExpectEnd("pgoutput Begin");
                    handler.OnBegin(finalLsn, timestamp, xid, lsn);
                    break;
                }
            case PgOutputMessageType.Commit:
                handler.OnCommit(reader.ReadCommit("pgoutput Commit"), lsn);
                break;
            case PgOutputMessageType.Origin:
                // Origin: the transaction was replicated from elsewhere. We publish it like any
                // other; the origin's name is not part of the contract.
                reader.ReadLsn("Origin.lsn");
                reader.ReadCString("Origin.name");
                reader.ExpectEnd("pgoutput Origin");
                break;
            case PgOutputMessageType.Type:
                {
                    // Type: sent for non-built-in types before a Relation that uses them.
                    var typeOid = reader.ReadUInt32("Type.oid");
                    var typeNamespace = reader.ReadCString("Type.namespace");
                    var typeName = reader.ReadCString("Type.name");
                    reader.ExpectEnd("pgoutput Type");
                    handler.OnType(typeOid, typeNamespace, typeName, lsn);
                    break;
                }
            case PgOutputMessageType.Relation:
                handler.OnRelation(ReadRelation(ref reader, lsn), lsn);
                break;
            case PgOutputMessageType.Insert:
                {
                    var relationId = reader.ReadUInt32("Insert.relation");
                    var marker = reader.ReadByte("Insert.N");
                    if (marker != 'N')
                    {
                        throw new ReplicationProtocolException($"pgoutput Insert expected 'N' but found 0x{marker:X2}", lsn);
                    }

                    var tuple = TupleData.Parse(reader.Rest, lsn, out var length);
                    reader.ReadBytes(length, "Insert.tuple");
                    reader.ExpectEnd("pgoutput Insert");
                    handler.OnInsert(relationId, tuple, lsn);
                    break;
                }
            case PgOutputMessageType.Update:
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
                    {
                        throw new ReplicationProtocolException($"pgoutput Update expected 'N' but found 0x{marker:X2}", lsn);
                    }

                    var newTuple = TupleData.Parse(reader.Rest, lsn, out var newLength);
                    reader.ReadBytes(newLength, "Update.new_tuple");
                    reader.ExpectEnd("pgoutput Update");
                    handler.OnUpdate(relationId, oldKind, oldTuple, newTuple, lsn);
                    break;
                }
            case PgOutputMessageType.Delete:
                {
                    var relationId = reader.ReadUInt32("Delete.relation");
                    var marker = reader.ReadByte("Delete.marker");
                    if (marker is not ((byte)OldTuple.Key or (byte)OldTuple.Row))
                    {
                        throw new ReplicationProtocolException($"pgoutput Delete expected 'K' or 'O' but found 0x{marker:X2}", lsn);
                    }

                    var tuple = TupleData.Parse(reader.Rest, lsn, out var length);
                    reader.ReadBytes(length, "Delete.old_tuple");
                    reader.ExpectEnd("pgoutput Delete");
                    handler.OnDelete(relationId, (OldTuple)marker, tuple, lsn);
                    break;
                }
            case PgOutputMessageType.Truncate:
                {
                    var count = reader.ReadInt32("Truncate.count");
                    var options = (TruncateOptions)reader.ReadByte("Truncate.options");
                    if ((options & ~(TruncateOptions.Cascade | TruncateOptions.RestartIdentity)) != 0)
                    {
                        throw new ReplicationProtocolException($"pgoutput Truncate has unknown option bits 0x{(byte)options:X2}", lsn);
                    }

                    if (count < 0 || count > reader.Remaining / 4)
                    {
                        throw new ReplicationProtocolException($"pgoutput Truncate declares {count} relations in {reader.Remaining} bytes", lsn);
                    }

                    var ids = count <= 64 ? stackalloc uint[count] : new uint[count];
                    for (var i = 0; i < count; i++)
                    {
                        ids[i] = reader.ReadUInt32("Truncate.relation");
                    }

                    reader.ExpectEnd("pgoutput Truncate");
                    handler.OnTruncate(ids, options, lsn);
                    break;
                }
            case PgOutputMessageType.Message:
                {
                    // Sent because the connector asks for messages 'true' (PostgreSQL 14+).
                    var flags = (LogicalMessageFlags)reader.ReadByte("Message.flags");
                    if ((flags & ~LogicalMessageFlags.Transactional) != 0)
                    {
                        throw new ReplicationProtocolException($"pgoutput Message has unknown flags 0x{(byte)flags:X2}", lsn);
                    }

                    var messageLsn = reader.ReadLsn("Message.lsn");
                    var prefix = reader.ReadCString("Message.prefix");
                    var length = reader.ReadInt32("Message.length");
                    if (length < 0)
                    {
                        throw new ReplicationProtocolException($"pgoutput Message declares a negative length {length}", lsn);
                    }

                    var content = reader.ReadBytes(length, "Message.content");
                    reader.ExpectEnd("pgoutput Message");
                    handler.OnMessage(flags.HasFlag(LogicalMessageFlags.Transactional), messageLsn, prefix, content, lsn);
                    break;
                }
            default:
                throw new ReplicationProtocolException(
                    $"pgoutput message type '{(char)type}' (0x{(byte)type:X2}) is unknown or was not requested (the connector asks for protocol version {MaxProtocolVersion} at most, without two-phase)", lsn);
        }
    }

    private static PgRelation ReadRelation(ref ProtocolReader reader, Lsn lsn)
    {
        var relationId = reader.ReadUInt32("Relation.id");
        var schema = reader.ReadCString("Relation.namespace");
        var table = reader.ReadCString("Relation.name");
        var replicaIdentity = reader.ReadByte("Relation.replica_identity");
        if (!Enum.IsDefined((ReplicaIdentity)replicaIdentity))
        {
            throw new ReplicationProtocolException($"pgoutput Relation {schema}.{table} has unknown replica identity 0x{replicaIdentity:X2}", lsn);
        }

        var count = reader.ReadInt16("Relation.column_count");
        if (count < 0)
        {
            throw new ReplicationProtocolException($"pgoutput Relation {schema}.{table} has a negative column count", lsn);
        }

        var columns = new PgColumn[count];
        for (var i = 0; i < count; i++)
        {
            var flags = reader.ReadByte("Relation.column.flags");
            var name = reader.ReadCString("Relation.column.name");
            var typeOid = reader.ReadUInt32("Relation.column.type");
            var typeModifier = reader.ReadInt32("Relation.column.typmod");
            columns[i] = new PgColumn(name, typeOid, typeModifier, (flags & 1) != 0);
        }
        reader.ExpectEnd("pgoutput Relation");
        return new PgRelation(relationId, schema, table, (char)replicaIdentity, columns);
    }
}
