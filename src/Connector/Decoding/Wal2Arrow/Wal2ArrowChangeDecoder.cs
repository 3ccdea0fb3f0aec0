using System.Globalization;
using System.Text;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Decoding.PgOutput;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Source;
using WalBridge.Connector.Transactions;
using WalBridge.Offsets;
using WalBridge.Serialization.Payload;

namespace WalBridge.Connector.Decoding.Wal2Arrow;

/// <summary>The wal2arrow framing's message types (native/wal2arrow/README.md, framing version 2).</summary>
internal enum Wal2ArrowMessageType : byte
{
    Begin = (byte)'B',
    /// <summary>A relation: names, fingerprint and its encoded Arrow schema message.</summary>
    Relation = (byte)'R',
    /// <summary>One chunk: a header, then one Arrow IPC record batch message passed to Kafka untouched.</summary>
    Chunk = (byte)'A',
    Message = (byte)'M',
    Commit = (byte)'C',
}

/// <summary>What a wal2arrow chunk holds (framing version 2: only rows; a truncate is a row of its own).</summary>
internal enum Wal2ArrowChunkKind : byte
{
    Changes = 0,
}

/// <summary>
/// Reads the framing of our output plugin (native/wal2arrow/README.md, version 2): each relation's encoded Arrow schema
/// message and the record batch messages of its rows are built inside PostgreSQL and passed to Kafka byte for byte — a
/// record is the schema message, batches of several transactions and the end-of-stream marker, concatenated, never
/// decoded or re-encoded here; the small framed messages around them give the transaction, table, partition and chunk.
/// Transactions are framed by the shared <see cref="TransactionFramer"/>, exactly as for pgoutput. Strict: unknown
/// message types, versions or truncated messages are errors.
/// </summary>
/// <param name="config">The connector configuration.</param>
/// <param name="committed">The position already in Kafka.</param>
/// <param name="logger">For the rows of incremental snapshot windows (see <see cref="PgOutputBatcher"/>).</param>
/// <param name="windows">The stream's incremental snapshot windows, or null.</param>
internal sealed class Wal2ArrowChangeDecoder(ConnectorConfig config, Lsn committed, Microsoft.Extensions.Logging.ILogger logger, SnapshotWindows? windows = null) : IChangeStreamDecoder
{
    /// <summary>The framing version this reader understands (the plugin's <c>proto_version</c>).</summary>
    public const int FramingVersion = 2;

    private readonly Dictionary<uint, RelationInfo> _relations = [];
    private readonly TransactionFramer _framer = new(config, committed, DecodingPlugin.Wal2Arrow.Name(), windows);
    /// <summary>
    /// Builds the rows of incremental snapshot windows (read from the tables, not decoded by the plugin) in the payload
    /// contract's schema, into the framer's open transaction; created at the first high watermark.
    /// </summary>
    private PgOutputBatcher? _windowRows;
    private PrimaryKeyCatalog? _primaryKeys;

    public DecodingPlugin Plugin => DecodingPlugin.Wal2Arrow;

    public string Protocol => $"wal2arrow framing version {FramingVersion} (Arrow built in the server)";

    public IReadOnlyList<KeyValuePair<string, string?>> StartOptions(int serverMajorVersion) =>
    [
        new("proto_version", FramingVersion.ToString(CultureInfo.InvariantCulture)),
        new("publication_names", SourceSetup.QuoteIdentifier(config.PublicationName)),
        // A batch with the schema message and the end-of-stream marker must fit a Kafka record with its headers.
        new("max_bytes", config.ChunkLimit.ToString(CultureInfo.InvariantCulture)),
        new("messages", "true"),
        new("partitions", config.TopicPartitions.ToString(CultureInfo.InvariantCulture)),
    ];

    public bool TryTakeGroup(bool inputIdle, out TransactionGroup group)
    {
        if (!_framer.GroupDue(inputIdle))
        {
            group = null!;
            return false;
        }

        group = _framer.TakeGroup();
        return true;
    }

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
                Relation(ref reader, lsn);
                break;
            case Wal2ArrowMessageType.Chunk:
                Chunk(ref reader, lsn);
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

    private void Relation(ref ProtocolReader reader, Lsn lsn)
    {
        var relid = reader.ReadUInt32("Relation.relid");
        var fingerprint = Convert.ToHexStringLower(reader.ReadBytes(8, "Relation.fingerprint"));
        reader.ReadByte("Relation.replica_identity");
        var schema = ReadString16(ref reader, "Relation.schema");
        var table = ReadString16(ref reader, "Relation.table");
        reader.ReadInt16("Relation.column_count");
        var schemaLength = reader.ReadInt32("Relation.schema_message_length");
        if (schemaLength <= 0 || schemaLength != reader.Remaining)
        {
            throw new ReplicationProtocolException($"wal2arrow Relation {schema}.{table} declares a {schemaLength}-byte schema message but {reader.Remaining} bytes follow", lsn);
        }

        var schemaMessage = reader.ReadBytes(schemaLength, "Relation.schema_message").ToArray();
        reader.ExpectEnd("wal2arrow Relation");
        var changed = _relations.TryGetValue(relid, out var known) && known.Fingerprint != fingerprint;
        _relations[relid] = new RelationInfo(schema, table, fingerprint, schemaMessage);
        if (changed && _framer.InTransaction)
        {
            _framer.RelationChanged(relid);
        }
    }

    private void Chunk(ref ProtocolReader reader, Lsn lsn)
    {
        var kind = (Wal2ArrowChunkKind)reader.ReadByte("Chunk.kind");
        var relid = reader.ReadUInt32("Chunk.relid");
        var partition = reader.ReadInt32("Chunk.partition");
        var index = reader.ReadInt32("Chunk.index");
        var last = reader.ReadByte("Chunk.last");
        var rows = reader.ReadInt32("Chunk.rows");
        var fingerprint = Convert.ToHexStringLower(reader.ReadBytes(8, "Chunk.fingerprint"));
        var length = reader.ReadInt32("Chunk.length");
        if (length < 0 || length != reader.Remaining)
        {
            throw new ReplicationProtocolException($"wal2arrow chunk declares {length} batch bytes but {reader.Remaining} follow", lsn);
        }

        if (!Enum.IsDefined(kind) || last > 1 || index < 0 || rows < 0 || partition < 0 || partition >= config.TopicPartitions)
        {
            throw new ReplicationProtocolException(
                $"wal2arrow chunk header is malformed (kind {(byte)kind}, partition {partition} of {config.TopicPartitions}, last {last}, index {index}, rows {rows})", lsn);
        }

        if (!_relations.TryGetValue(relid, out var relation))
        {
            throw new ReplicationProtocolException($"wal2arrow chunk for relation {relid} before its Relation message", lsn);
        }

        if (fingerprint != relation.Fingerprint)
        {
            throw new ReplicationProtocolException($"wal2arrow chunk of {relation.Schema}.{relation.Table} has schema fingerprint {fingerprint}, its Relation message {relation.Fingerprint}", lsn);
        }

        var batch = reader.ReadBytes(length, "Chunk.batch");
        // The plugin cuts batches so that a record (schema, batch, end marker) fits; only a batch of one row can be larger.
        var size = relation.SchemaMessage.Length + length + ArrowMessageWriter.EndOfStream.Length;
        if (size > config.ChunkLimit && !_framer.Skipping)
        {
            throw new RowTooLargeException($"{relation.Schema}.{relation.Table}", lsn, size, config.MessageMaxBytes, ConnectorConfig.RecordOverhead);
        }

        if (!_framer.Skipping)
        {
            _framer.CountRows(rows);
        }

        // A batch holds one transaction's rows of one table partition: piece `index` of them.
        var cut = new BatchCut(rows, 1, _framer.FinalLsn, _framer.FinalLsn, index, EndsInOpenTransaction: true);
        _framer.AddBatch(relid, relation.Schema, relation.Table, partition, relation.SchemaMessage, relation.Fingerprint, batch, cut, lsn, (index, last == 1));
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
        var transactional = flags.HasFlag(LogicalMessageFlags.Transactional);
        if (!SnapshotWindows.IsWatermark(prefix))
        {
            _framer.Message(transactional, messageLsn, prefix, content, lsn);
            return;
        }

        // An incremental snapshot's watermark (any connector's: never delivered as a message); the plugin's batches
        // of every earlier change are already in the group, so the window has seen their keys.
        if (transactional && _framer.InTransaction && !_framer.Skipping && windows?.OnWatermark(prefix, content, _framer.FinalLsn) is { } emission)
        {
            _primaryKeys ??= new PrimaryKeyCatalog(config);
            _windowRows ??= new PgOutputBatcher(config, _framer, logger, _primaryKeys.PrimaryKey);
            _windowRows.JoinOpenTransaction();
            _windowRows.EmitWindow(emission, lsn);
            _windowRows.FlushAll();
        }
    }

    private static string ReadString16(ref ProtocolReader reader, string field)
    {
        var length = (ushort)reader.ReadInt16(field + ".length");
        return Encoding.UTF8.GetString(reader.ReadBytes(length, field));
    }

    public void Dispose()
    {
        _windowRows?.Dispose();
        _primaryKeys?.Dispose();
        _framer.Dispose();
    }

    /// <summary>A relation as its Relation message describes it, with its encoded Arrow schema message.</summary>
    private sealed record RelationInfo(string Schema, string Table, string Fingerprint, byte[] SchemaMessage);
}
