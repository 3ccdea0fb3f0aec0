using System.Globalization;
using System.Text;
using Confluent.Kafka;
using WalBridge.Connector.Transactions;
using WalBridge.Offsets;
using WalBridge.Serialization.Payload;

namespace WalBridge.Connector.Kafka;

/// <summary>One Kafka record to produce.</summary>
internal readonly record struct OutgoingRecord(string Topic, int Partition, byte[]? Key, byte[] Value, Headers Headers);

/// <summary>
/// Turns the groups of one Kafka transaction into Kafka records (docs/format.md, format version 2): per table and
/// partition, the Arrow schema message, the record batches of every source transaction in commit order and the
/// end-of-stream marker, concatenated — never re-encoded; a new record starts when the next batch would make the record
/// larger than <see cref="Configuration.ConnectorConfig.ChunkLimit"/> or when the table's schema changes. Logical
/// messages become one record each on the messages topic.
/// </summary>
/// <remarks>Single-threaded: used by the Kafka loop's thread. Allocates the record values (one array per record).</remarks>
internal sealed class RecordAssembler(TopicManager topics, int chunkLimit)
{
    private static readonly byte[] s_contentType = Encoding.UTF8.GetBytes(KafkaHeaders.ArrowStreamContentType);
    private static readonly byte[] s_format = Encoding.UTF8.GetBytes(KafkaHeaders.CurrentFormat);
    private static readonly byte[] s_kindChanges = Encoding.UTF8.GetBytes(KafkaHeaders.KindChanges);
    private static readonly byte[] s_kindSnapshot = Encoding.UTF8.GetBytes(KafkaHeaders.KindSnapshot);
    private static readonly byte[] s_incremental = Encoding.UTF8.GetBytes(KafkaHeaders.SnapshotModeIncremental);
    private static readonly byte[] s_zero = Encoding.UTF8.GetBytes("0");
    private static readonly byte[] s_snapshotRead = Encoding.UTF8.GetBytes("read");
    private static readonly byte[] s_snapshotStart = Encoding.UTF8.GetBytes("start");
    private static readonly byte[] s_snapshotEnd = Encoding.UTF8.GetBytes("end");
    private static readonly byte[] s_kindMessage = Encoding.UTF8.GetBytes("message");
    private static readonly byte[] s_octetStream = Encoding.UTF8.GetBytes(KafkaHeaders.OctetStreamContentType);
    private static readonly byte[] s_true = Encoding.UTF8.GetBytes("true");
    private static readonly byte[] s_false = Encoding.UTF8.GetBytes("false");

    private readonly List<TableBatch> _batches = [];
    /// <summary>Per table: its record key and <c>pg.table</c> header value (both "schema.table"), encoded once.</summary>
    private readonly Dictionary<(string Schema, string Table), byte[]> _tableNames = [];
    /// <summary>Per schema fingerprint: its header value, encoded once.</summary>
    private readonly Dictionary<string, byte[]> _fingerprints = new(StringComparer.Ordinal);
    /// <summary>The snapshot chunk of the groups being assembled (a snapshot group is alone in its Kafka transaction), or null.</summary>
    private SnapshotPart? _snapshot;
    /// <summary>The committed snapshot state the chunk's records are numbered from.</summary>
    private WalBridge.Offsets.SnapshotState? _snapshotState;
    private readonly Dictionary<(string Table, int Partition), int> _snapshotRecords = [];

    /// <summary>After <see cref="TableRecords"/> of a snapshot chunk: its records per table partition (for the snapshot's progress).</summary>
    public IReadOnlyDictionary<(string Table, int Partition), int> SnapshotRecords => _snapshotRecords;

    /// <summary>The table records of <paramref name="groups"/>, in commit order per table partition.</summary>
    /// <param name="groups">The Kafka transaction's groups.</param>
    /// <param name="snapshot">
    /// The committed snapshot progress: a snapshot chunk's records continue the numbering of their partition's snapshot
    /// records (<c>walbridge.chunk</c>, docs/format.md, snapshots); null when no snapshot runs.
    /// </param>
    public IEnumerable<OutgoingRecord> TableRecords(IReadOnlyList<TransactionGroup> groups, WalBridge.Offsets.SnapshotState? snapshot = null)
    {
        _snapshot = groups.Count == 1 && groups[0].Snapshot is { Chunk: >= 0 } part ? part : null;
        _snapshotState = snapshot;
        _snapshotRecords.Clear();
        // Every table partition's streams across the groups, in the order they first appear.
        var lanes = new Dictionary<(string Schema, string Table, int Partition), List<TableStream>>();
        foreach (var group in groups)
        {
            foreach (var stream in group.Tables)
            {
                var key = (stream.Schema, stream.Table, stream.Partition);
                if (!lanes.TryGetValue(key, out var lane))
                {
                    lanes[key] = lane = [];
                }

                lane.Add(stream);
            }
        }

        foreach (var ((schema, table, partition), lane) in lanes)
        {
            var topic = topics.TopicOf(schema, table);
            if (!_tableNames.TryGetValue((schema, table), out var key))
            {
                _tableNames[(schema, table)] = key = Encoding.UTF8.GetBytes($"{schema}.{table}");
            }

            TableStream? current = null;
            long size = 0;
            foreach (var stream in lane)
            {
                if (current is not null && stream.SchemaFingerprint != current.SchemaFingerprint && _batches.Count > 0)
                {
                    yield return Record(topic, partition, key, current);
                    size = 0;
                }

                if (current is null || stream.SchemaFingerprint != current.SchemaFingerprint)
                {
                    current = stream;
                    size = stream.SchemaMessage.Length + ArrowMessageWriter.EndOfStream.Length;
                }

                foreach (var batch in stream.Batches)
                {
                    if (_batches.Count > 0 && size + batch.Bytes.Length > chunkLimit)
                    {
                        yield return Record(topic, partition, key, current);
                        size = current.SchemaMessage.Length + ArrowMessageWriter.EndOfStream.Length;
                    }

                    _batches.Add(batch);
                    size += batch.Bytes.Length;
                }
            }

            if (current is not null && _batches.Count > 0)
            {
                yield return Record(topic, partition, key, current);
            }
        }
    }

    /// <summary>The messages topic's records of <paramref name="groups"/>, in WAL order.</summary>
    public IEnumerable<OutgoingRecord> MessageRecords(IReadOnlyList<TransactionGroup> groups)
    {
        foreach (var group in groups)
        {
            foreach (var message in group.Messages)
            {
                var headers = new Headers
                {
                    { KafkaHeaders.ContentType, s_octetStream },
                    { KafkaHeaders.Kind, s_kindMessage },
                    { KafkaHeaders.MessagePrefix, Encoding.UTF8.GetBytes(message.Prefix) },
                    { KafkaHeaders.MessageLsn, Encoding.UTF8.GetBytes(message.MessageLsn.ToString()) },
                    { KafkaHeaders.MessageTransactional, message.Transactional ? s_true : s_false },
                    { KafkaHeaders.CommitLsn, Encoding.UTF8.GetBytes(message.CommitLsn.ToString()) },
                    { KafkaHeaders.Xid, Encoding.UTF8.GetBytes(message.Xid.ToString(CultureInfo.InvariantCulture)) },
                    { KafkaHeaders.CommitTimestamp, Encoding.UTF8.GetBytes(KafkaHeaders.Timestamp(message.CommitTimestamp)) },
                };
                yield return new OutgoingRecord(topics.MessagesTopic, 0, null, message.Content.Get(), headers);
            }
        }
    }

    /// <summary>The snapshot markers of <paramref name="groups"/>: each in every partition of its table's topic, no rows.</summary>
    public IEnumerable<OutgoingRecord> MarkerRecords(IReadOnlyList<TransactionGroup> groups)
    {
        foreach (var group in groups)
        {
            var markers = group.Snapshot is { } part ? part.Markers.Select(m => (Marker: m, Lsn: part.Lsn)) : [];
            foreach (var (marker, snapshotLsn) in markers.Concat(group.StreamMarkers.Select(m => (Marker: m, Lsn: m.SnapshotLsn))))
            {
                var topic = topics.TopicOf(marker.Schema, marker.Table);
                var key = Encoding.UTF8.GetBytes($"{marker.Schema}.{marker.Table}");
                var value = new byte[marker.SchemaMessage.Length + ArrowMessageWriter.EndOfStream.Length];
                marker.SchemaMessage.Span.CopyTo(value);
                ArrowMessageWriter.EndOfStream.CopyTo(value.AsSpan(marker.SchemaMessage.Length));
                for (var partition = 0; partition < marker.Partitions; partition++)
                {
                    var headers = new Headers
                    {
                        { KafkaHeaders.ContentType, s_contentType },
                        { KafkaHeaders.Format, s_format },
                        { KafkaHeaders.Kind, s_kindSnapshot },
                        { KafkaHeaders.Table, key },
                        { KafkaHeaders.Snapshot, marker.Kind == SnapshotMarkerKind.Start ? s_snapshotStart : s_snapshotEnd },
                        { KafkaHeaders.SnapshotLsn, snapshotLsn.ToUtf8() },
                        { KafkaHeaders.CommitLsn, snapshotLsn.ToUtf8() },
                        { KafkaHeaders.Rows, s_zero },
                        { KafkaHeaders.SnapshotRows, Encoding.UTF8.GetBytes(marker.Rows.ToString(CultureInfo.InvariantCulture)) },
                        { KafkaHeaders.SchemaFingerprint, Encoding.UTF8.GetBytes(marker.SchemaFingerprint) },
                    };
                    if (marker.Incremental)
                    {
                        headers.Add(KafkaHeaders.SnapshotMode, s_incremental);
                    }

                    yield return new OutgoingRecord(topic, partition, key, value, headers);
                }
            }
        }
    }

    /// <summary>One record of the collected batches (then cleared): schema message, batches, end-of-stream marker.</summary>
    private OutgoingRecord Record(string topic, int partition, byte[] key, TableStream stream)
    {
        var length = stream.SchemaMessage.Length + ArrowMessageWriter.EndOfStream.Length;
        long rows = 0;
        var transactions = 0;
        for (var i = 0; i < _batches.Count; i++)
        {
            var batch = _batches[i];
            length += batch.Bytes.Length;
            rows += batch.Rows;
            transactions += batch.Transactions;
            // A transaction cut between two batches is one transaction.
            if (i > 0 && !_batches[i - 1].LastComplete)
            {
                transactions--;
            }
        }

        byte[] value;
        if (_batches.Count == 1)
        {
            // The common case (a batch is cut at the record limit): the batch is stored as its whole stream already.
            value = _batches[0].Bytes.AsStream(stream.SchemaMessage.Span);
        }
        else
        {
            // Every byte is written below: no need to zero it first (records are up to the record limit, on the large object heap).
            value = GC.AllocateUninitializedArray<byte>(length);
            var span = value.AsSpan();
            stream.SchemaMessage.Span.CopyTo(span);
            var offset = stream.SchemaMessage.Length;
            foreach (var batch in _batches)
            {
                batch.Bytes.CopyTo(span[offset..]);
                offset += batch.Bytes.Length;
            }

            ArrowMessageWriter.EndOfStream.CopyTo(span[offset..]);
        }

        var first = _batches[0];
        var last = _batches[^1];
        if (!_fingerprints.TryGetValue(stream.SchemaFingerprint, out var fingerprint))
        {
            _fingerprints[stream.SchemaFingerprint] = fingerprint = Encoding.UTF8.GetBytes(stream.SchemaFingerprint);
        }

        var chunk = first.FirstChunk;
        var lastComplete = last.LastComplete;
        if (_snapshot is { } part)
        {
            // The snapshot is one transaction per partition: its records are numbered on across chunks, each complete.
            var table = $"{stream.Schema}.{stream.Table}";
            _snapshotRecords.TryGetValue((table, partition), out var before);
            chunk = (_snapshotState?.Tables.FirstOrDefault(t => t.Table == table)?.PiecesIn(partition) ?? 0) + before;
            _snapshotRecords[(table, partition)] = before + 1;
            lastComplete = true;
        }

        var headers = new Headers
        {
            { KafkaHeaders.ContentType, s_contentType },
            { KafkaHeaders.Format, s_format },
            { KafkaHeaders.Kind, s_kindChanges },
            { KafkaHeaders.Table, key },
            { KafkaHeaders.FirstCommitLsn, first.FirstCommitLsn.ToUtf8() },
            { KafkaHeaders.CommitLsn, last.LastCommitLsn.ToUtf8() },
            { KafkaHeaders.Transactions, Encoding.UTF8.GetBytes(transactions.ToString(CultureInfo.InvariantCulture)) },
            { KafkaHeaders.Rows, Encoding.UTF8.GetBytes(rows.ToString(CultureInfo.InvariantCulture)) },
            { KafkaHeaders.ChunkIndex, Encoding.UTF8.GetBytes(chunk.ToString(CultureInfo.InvariantCulture)) },
            { KafkaHeaders.LastChunk, lastComplete ? s_true : s_false },
            { KafkaHeaders.SchemaFingerprint, fingerprint },
        };
        if (_snapshot is { } snapshotPart)
        {
            headers.Add(KafkaHeaders.Snapshot, s_snapshotRead);
            headers.Add(KafkaHeaders.SnapshotChunk, Encoding.UTF8.GetBytes(snapshotPart.Chunk.ToString(CultureInfo.InvariantCulture)));
            headers.Add(KafkaHeaders.SnapshotLsn, snapshotPart.Lsn.ToUtf8());
        }

        _batches.Clear();
        return new OutgoingRecord(topic, partition, key, value, headers);
    }

    /// <summary>Which commit LSN a record's first rows belong to (for tests and diagnostics).</summary>
    internal static Lsn FirstCommitLsn(Headers headers) =>
        headers.TryGetLastBytes(KafkaHeaders.FirstCommitLsn, out var bytes) ? Lsn.Parse(Encoding.UTF8.GetString(bytes)) : Lsn.Zero;
}
