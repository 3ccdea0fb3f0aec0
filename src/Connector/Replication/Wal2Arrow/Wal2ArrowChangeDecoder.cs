using System.Globalization;
using System.Text;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Pipeline;
using WalBridge.Connector.Replication.PgOutput;
using WalBridge.Offsets;

namespace WalBridge.Connector.Replication.Wal2Arrow;

/// <summary>
/// Reads the framing of our output plugin (native/wal2arrow/README.md): the Arrow IPC streams are
/// built inside PostgreSQL and passed to Kafka byte for byte, never decoded or re-encoded here; the
/// small framed messages around them give the transaction, table and chunk headers. Everything
/// else (offsets, exactly-once, chunk limits, spill, heartbeats) is shared with the pgoutput path.
/// Strict: unknown message types, versions or truncated messages are errors.
/// </summary>
internal sealed class Wal2ArrowChangeDecoder(ConnectorConfig config, Lsn committed) : IChangeStreamDecoder
{
    /// <summary>The framing version this reader understands (the plugin's <c>proto_version</c>).</summary>
    public const int FramingVersion = 1;

    /// <summary>Bytes of an <c>A</c> message before its Arrow stream.</summary>
    private const int ChunkHeaderLength = 28;

    private readonly Dictionary<uint, (string Schema, string Table, string Topic)> _relations = [];
    private readonly PayloadCollector _payloads = new(config.SpillDirectory, config.TransactionMemoryBytes);
    private readonly Dictionary<uint, TablePayload> _lastChunk = [];
    private bool _inTransaction;
    private bool _skipping;
    private uint _xid;
    private Lsn _finalLsn;
    private DateTimeOffset _timestamp;
    private int _rows;
    private SourceTransaction? _completed;

    public string PluginName => "wal2arrow";

    public string Protocol => $"wal2arrow framing version {FramingVersion} (Arrow built in the server)";

    public IReadOnlyList<KeyValuePair<string, string?>> StartOptions(int serverMajorVersion) =>
    [
        new("proto_version", FramingVersion.ToString(CultureInfo.InvariantCulture)),
        new("publication_names", SourceSetup.QuoteIdentifier(config.PublicationName)),
        // Chunks must fit a Kafka record with its headers.
        new("max_bytes", config.ChunkLimit.ToString(CultureInfo.InvariantCulture)),
        new("messages", "true"),
    ];

    public bool TryTakeCompleted(out SourceTransaction transaction)
    {
        transaction = _completed!;
        _completed = null;
        return transaction is not null;
    }

    public void Process(ReadOnlySpan<byte> message, Lsn lsn)
    {
        var reader = new ProtocolReader(message, lsn);
        var type = reader.ReadByte("wal2arrow message type");
        switch (type)
        {
            case (byte)'B':
            {
                var version = reader.ReadByte("Begin.version");
                if (version != FramingVersion)
                    throw new ReplicationProtocolException($"wal2arrow framing version {version} is not supported (this connector reads version {FramingVersion}); install the plugin built from this release", lsn);
                var xid = reader.ReadUInt32("Begin.xid");
                var finalLsn = reader.ReadLsn("Begin.final_lsn");
                var timestamp = reader.ReadTimestamp("Begin.timestamp");
                reader.ExpectEnd("Begin");
                if (_inTransaction)
                    throw new ReplicationProtocolException($"wal2arrow Begin of xid {xid} inside open transaction {_xid}", lsn);
                _inTransaction = true;
                _skipping = finalLsn <= committed;
                _xid = xid;
                _finalLsn = finalLsn;
                _timestamp = timestamp;
                _rows = 0;
                _payloads.Discard();
                _lastChunk.Clear();
                break;
            }
            case (byte)'R':
            {
                var relid = reader.ReadUInt32("Relation.relid");
                reader.ReadBytes(8, "Relation.fingerprint");
                reader.ReadByte("Relation.replica_identity");
                var schema = ReadString16(ref reader, "Relation.schema");
                var table = ReadString16(ref reader, "Relation.table");
                reader.ReadInt16("Relation.column_count");
                reader.ExpectEnd("Relation");
                _relations[relid] = (schema, table, config.TopicFor(schema, table));
                break;
            }
            case (byte)'T':
            {
                reader.ReadByte("Truncate.options");
                var count = reader.ReadUInt32("Truncate.count");
                if (count > (uint)reader.Remaining / 4)
                    throw new ReplicationProtocolException($"wal2arrow Truncate declares {count} relations in {reader.Remaining} bytes", lsn);
                reader.ReadBytes((int)count * 4, "Truncate.relids");
                reader.ExpectEnd("Truncate");
                RequireTransaction("Truncate", lsn);
                // The per-table truncate records follow as kind-1 chunks.
                break;
            }
            case (byte)'A':
                Chunk(ref reader, message, lsn);
                break;
            case (byte)'M':
                Message(ref reader, lsn);
                break;
            case (byte)'C':
            {
                var flags = reader.ReadByte("Commit.flags");
                if (flags != 0)
                    throw new ReplicationProtocolException($"wal2arrow Commit has unknown flags 0x{flags:X2}", lsn);
                var commitLsn = reader.ReadLsn("Commit.commit_lsn");
                var endLsn = reader.ReadLsn("Commit.end_lsn");
                var timestamp = reader.ReadTimestamp("Commit.timestamp");
                reader.ExpectEnd("Commit");
                RequireTransaction("Commit", lsn);
                if (commitLsn != _finalLsn)
                    throw new ReplicationProtocolException($"wal2arrow Commit LSN {commitLsn} differs from Begin's {_finalLsn} (xid {_xid})", lsn);
                _inTransaction = false;
                if (_skipping)
                {
                    _payloads.Discard();
                    return;
                }
                foreach (var (relid, last) in _lastChunk)
                {
                    if (!last.IsLastChunk)
                        throw new ReplicationProtocolException($"wal2arrow transaction {_xid} committed without a last chunk for relation {relid}", lsn);
                }
                var (payloads, spill) = _payloads.Complete();
                _completed = new SourceTransaction
                {
                    Xid = _xid,
                    CommitLsn = commitLsn,
                    EndLsn = endLsn,
                    CommitTimestamp = timestamp == default ? _timestamp : timestamp,
                    Payloads = payloads,
                    RowCount = _rows,
                    Spill = spill,
                };
                break;
            }
            default:
                throw new ReplicationProtocolException($"wal2arrow message type '{(char)type}' (0x{type:X2}) is unknown to framing version {FramingVersion}", lsn);
        }
    }

    private void Chunk(ref ProtocolReader reader, ReadOnlySpan<byte> message, Lsn lsn)
    {
        var kind = reader.ReadByte("Chunk.kind");
        var truncateOptions = reader.ReadByte("Chunk.truncate_options");
        var relid = reader.ReadUInt32("Chunk.relid");
        var index = reader.ReadInt32("Chunk.index");
        var last = reader.ReadByte("Chunk.last");
        var rows = reader.ReadInt32("Chunk.rows");
        var fingerprint = Convert.ToHexStringLower(reader.ReadBytes(8, "Chunk.fingerprint"));
        var length = reader.ReadInt32("Chunk.length");
        if (length < 0 || length != reader.Remaining)
            throw new ReplicationProtocolException($"wal2arrow chunk declares {length} stream bytes but {reader.Remaining} follow", lsn);
        if (kind > 1 || last > 1 || index < 0 || rows < 0)
            throw new ReplicationProtocolException($"wal2arrow chunk header is malformed (kind {kind}, last {last}, index {index}, rows {rows})", lsn);
        RequireTransaction("chunk", lsn);
        if (!_relations.TryGetValue(relid, out var relation))
            throw new ReplicationProtocolException($"wal2arrow chunk for relation {relid} before its Relation message", lsn);
        if (_skipping)
            return;
        // The plugin cuts chunks at ChunkLimit, so only a chunk of one row can be larger.
        if (length > config.ChunkLimit)
            throw new RowTooLargeException($"{relation.Schema}.{relation.Table}", lsn, length, config.MessageMaxBytes, ConnectorConfig.RecordOverhead);

        var stream = message[ChunkHeaderLength..];
        var options = (truncateOptions & 3) switch
        {
            3 => "cascade,restart_identity",
            1 => "cascade",
            2 => "restart_identity",
            _ => "",
        };
        var payload = _payloads.Add(stream, _xid.ToString(CultureInfo.InvariantCulture), (value, spill, offset, size) => new TablePayload
        {
            Topic = relation.Topic,
            Schema = relation.Schema,
            Table = relation.Table,
            Kind = kind == 1 ? PayloadKind.Truncate : PayloadKind.Changes,
            ChunkIndex = index,
            IsLastChunk = last == 1,
            RowCount = rows,
            SchemaFingerprint = fingerprint,
            Value = value,
            Spill = spill,
            SpillOffset = offset,
            Length = size,
            TruncateOptions = kind == 1 ? options : null,
        });
        _lastChunk[relid] = payload;
        _rows += rows;
    }

    private void Message(ref ProtocolReader reader, Lsn lsn)
    {
        var flags = reader.ReadByte("Message.flags");
        if ((flags & ~0x01) != 0)
            throw new ReplicationProtocolException($"wal2arrow Message has unknown flags 0x{flags:X2}", lsn);
        var transactional = (flags & 0x01) != 0;
        var messageLsn = reader.ReadLsn("Message.lsn");
        var prefix = ReadString16(ref reader, "Message.prefix");
        var length = reader.ReadInt32("Message.length");
        if (length < 0)
            throw new ReplicationProtocolException($"wal2arrow Message declares a negative length {length}", lsn);
        var content = reader.ReadBytes(length, "Message.content");
        reader.ExpectEnd("Message");

        if (LogicalMessages.IsHeartbeat(prefix))
        {
            if (prefix == config.HeartbeatPrefix && !transactional && !_inTransaction && messageLsn > committed)
                _completed = LogicalMessages.Positioned(messageLsn, [], heartbeat: true);
            return;
        }
        var payload = LogicalMessages.Payload(config, prefix, messageLsn, transactional, content);
        if (transactional)
        {
            RequireTransaction("transactional Message", lsn);
            if (!_skipping)
                _payloads.Add(payload);
            return;
        }
        if (_inTransaction)
            throw new ReplicationProtocolException($"wal2arrow non-transactional Message '{prefix}' inside transaction {_xid}", lsn);
        if (messageLsn > committed)
            _completed = LogicalMessages.Positioned(messageLsn, [payload], heartbeat: false);
    }

    private void RequireTransaction(string what, Lsn lsn)
    {
        if (!_inTransaction)
            throw new ReplicationProtocolException($"wal2arrow {what} outside a transaction", lsn);
    }

    private static string ReadString16(ref ProtocolReader reader, string field)
    {
        var length = (ushort)reader.ReadInt16(field + ".length");
        return Encoding.UTF8.GetString(reader.ReadBytes(length, field));
    }

    public void Dispose() => _payloads.Dispose();
}
