using System.Globalization;
using System.Text;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Decoding.PgOutput;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Source;
using WalBridge.Connector.Transactions;
using WalBridge.Offsets;

namespace WalBridge.Connector.Decoding.Wal2Arrow;

/// <summary>The wal2arrow framing's message types (native/wal2arrow/README.md).</summary>
internal enum Wal2ArrowMessageType : byte
{
    Begin = (byte)'B',
    Relation = (byte)'R',
    Truncate = (byte)'T',
    /// <summary>One chunk: a header, then an Arrow IPC stream passed to Kafka untouched.</summary>
    Chunk = (byte)'A',
    Message = (byte)'M',
    Commit = (byte)'C',
}

/// <summary>What a wal2arrow chunk holds.</summary>
internal enum Wal2ArrowChunkKind : byte
{
    Changes = 0,
    Truncate = 1,
}

/// <summary>
/// Reads the framing of our output plugin (native/wal2arrow/README.md): the Arrow IPC streams are built inside
/// PostgreSQL and passed to Kafka byte for byte, never decoded or re-encoded here; the small framed messages around
/// them give the transaction, table and chunk headers. Transactions are framed by the shared
/// <see cref="TransactionFramer"/>, exactly as for pgoutput. Strict: unknown message types, versions or truncated
/// messages are errors.
/// </summary>
internal sealed class Wal2ArrowChangeDecoder(ConnectorConfig config, Lsn committed) : IChangeStreamDecoder
{
    /// <summary>The framing version this reader understands (the plugin's <c>proto_version</c>).</summary>
    public const int FramingVersion = 1;

    /// <summary>Bytes of a chunk message before its Arrow stream.</summary>
    private const int ChunkHeaderLength = 28;

    private readonly Dictionary<uint, (string Schema, string Table)> _relations = [];
    private readonly TransactionFramer _framer = new(config, committed, DecodingPlugin.Wal2Arrow.Name());

    public DecodingPlugin Plugin => DecodingPlugin.Wal2Arrow;

    public string Protocol => $"wal2arrow framing version {FramingVersion} (Arrow built in the server)";

    public IReadOnlyList<KeyValuePair<string, string?>> StartOptions(int serverMajorVersion) =>
    [
        new("proto_version", FramingVersion.ToString(CultureInfo.InvariantCulture)),
        new("publication_names", SourceSetup.QuoteIdentifier(config.PublicationName)),
        // Chunks must fit a Kafka record with its headers.
        new("max_bytes", config.ChunkLimit.ToString(CultureInfo.InvariantCulture)),
        new("messages", "true"),
    ];

    public bool TryTakeCompleted(out SourceTransaction transaction) => _framer.TryTakeCompleted(out transaction);

    public void Process(ReadOnlySpan<byte> message, Lsn lsn)
    {
        var reader = new ProtocolReader(message, lsn);
        var type = (Wal2ArrowMessageType)reader.ReadByte("wal2arrow message type");
        switch (type)
        {
            case Wal2ArrowMessageType.Begin:
                {
                    var version = reader.ReadByte("Begin.version");
                    if (version != FramingVersion)
                    {
                        throw new ReplicationProtocolException($"wal2arrow framing version {version} is not supported (this connector reads version {FramingVersion}); install the plugin built from this release", lsn);
                    }

                    var xid = reader.ReadUInt32("Begin.xid");
                    var finalLsn = reader.ReadLsn("Begin.final_lsn");
                    var timestamp = reader.ReadTimestamp("Begin.timestamp");
                    reader.ExpectEnd("wal2arrow Begin");
                    _framer.Begin(xid, finalLsn, timestamp, lsn);
                    break;
                }
            case Wal2ArrowMessageType.Relation:
                {
                    var relid = reader.ReadUInt32("Relation.relid");
                    reader.ReadBytes(8, "Relation.fingerprint");
                    reader.ReadByte("Relation.replica_identity");
                    var schema = ReadString16(ref reader, "Relation.schema");
                    var table = ReadString16(ref reader, "Relation.table");
                    reader.ReadInt16("Relation.column_count");
                    reader.ExpectEnd("wal2arrow Relation");
                    _relations[relid] = (schema, table);
                    break;
                }
            case Wal2ArrowMessageType.Truncate:
                {
                    reader.ReadByte("Truncate.options");
                    var count = reader.ReadUInt32("Truncate.count");
                    if (count > (uint)reader.Remaining / 4)
                    {
                        throw new ReplicationProtocolException($"wal2arrow Truncate declares {count} relations in {reader.Remaining} bytes", lsn);
                    }

                    reader.ReadBytes((int)count * 4, "Truncate.relids");
                    reader.ExpectEnd("wal2arrow Truncate");
                    if (!_framer.InTransaction)
                    {
                        throw new ReplicationProtocolException("wal2arrow Truncate outside a transaction", lsn);
                    }
                    // The per-table truncate records follow as truncate chunks.
                    break;
                }
            case Wal2ArrowMessageType.Chunk:
                Chunk(ref reader, message, lsn);
                break;
            case Wal2ArrowMessageType.Message:
                Message(ref reader, lsn);
                break;
            case Wal2ArrowMessageType.Commit:
                _framer.Commit(reader.ReadCommit("wal2arrow Commit"), lsn);
                break;
            default:
                throw new ReplicationProtocolException($"wal2arrow message type '{(char)type}' (0x{(byte)type:X2}) is unknown to framing version {FramingVersion}", lsn);
        }
    }

    private void Chunk(ref ProtocolReader reader, ReadOnlySpan<byte> message, Lsn lsn)
    {
        var kind = (Wal2ArrowChunkKind)reader.ReadByte("Chunk.kind");
        var truncateOptions = (TruncateOptions)reader.ReadByte("Chunk.truncate_options");
        var relid = reader.ReadUInt32("Chunk.relid");
        var index = reader.ReadInt32("Chunk.index");
        var last = reader.ReadByte("Chunk.last");
        var rows = reader.ReadInt32("Chunk.rows");
        var fingerprint = Convert.ToHexStringLower(reader.ReadBytes(8, "Chunk.fingerprint"));
        var length = reader.ReadInt32("Chunk.length");
        if (length < 0 || length != reader.Remaining)
        {
            throw new ReplicationProtocolException($"wal2arrow chunk declares {length} stream bytes but {reader.Remaining} follow", lsn);
        }

        if (!Enum.IsDefined(kind) || last > 1 || index < 0 || rows < 0
            || (truncateOptions & ~(TruncateOptions.Cascade | TruncateOptions.RestartIdentity)) != 0)
        {
            throw new ReplicationProtocolException($"wal2arrow chunk header is malformed (kind {(byte)kind}, options 0x{(byte)truncateOptions:X2}, last {last}, index {index}, rows {rows})", lsn);
        }

        if (!_relations.TryGetValue(relid, out var relation))
        {
            throw new ReplicationProtocolException($"wal2arrow chunk for relation {relid} before its Relation message", lsn);
        }
        // The plugin cuts chunks at ChunkLimit, so only a chunk of one row can be larger.
        if (length > config.ChunkLimit && !_framer.Skipping)
        {
            throw new RowTooLargeException($"{relation.Schema}.{relation.Table}", lsn, length, config.MessageMaxBytes, ConnectorConfig.RecordOverhead);
        }

        _framer.AddChunk(relid, relation.Schema, relation.Table, kind == Wal2ArrowChunkKind.Truncate ? PayloadKind.Truncate : PayloadKind.Changes,
            rows, fingerprint, message[ChunkHeaderLength..], kind == Wal2ArrowChunkKind.Truncate ? truncateOptions : TruncateOptions.None, lsn, (index, last == 1));
    }

    private void Message(ref ProtocolReader reader, Lsn lsn)
    {
        var flags = (LogicalMessageFlags)reader.ReadByte("Message.flags");
        if ((flags & ~LogicalMessageFlags.Transactional) != 0)
        {
            throw new ReplicationProtocolException($"wal2arrow Message has unknown flags 0x{(byte)flags:X2}", lsn);
        }

        var messageLsn = reader.ReadLsn("Message.lsn");
        var prefix = ReadString16(ref reader, "Message.prefix");
        var length = reader.ReadInt32("Message.length");
        if (length < 0)
        {
            throw new ReplicationProtocolException($"wal2arrow Message declares a negative length {length}", lsn);
        }

        var content = reader.ReadBytes(length, "Message.content");
        reader.ExpectEnd("wal2arrow Message");
        _framer.Message(flags.HasFlag(LogicalMessageFlags.Transactional), messageLsn, prefix, content, lsn);
    }

    private static string ReadString16(ref ProtocolReader reader, string field)
    {
        var length = (ushort)reader.ReadInt16(field + ".length");
        return Encoding.UTF8.GetString(reader.ReadBytes(length, field));
    }

    public void Dispose() => _framer.Dispose();
}
