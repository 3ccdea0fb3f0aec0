using System.Globalization;
using System.Text;
using System.Text.Json;
using Apache.Arrow;
using Confluent.Kafka;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Transactions;
using WalBridge.Offsets;
using static WalBridge.Connector.Formats.Debezium.ConnectSchema;

namespace WalBridge.Connector.Formats.Debezium;

/// <summary>
/// One Debezium format (JSON or Avro): turns a source transaction's changes (rows of its table partitions, truncates and
/// messages in WAL order, from <see cref="PayloadBatches"/>) into Debezium change events, one record per row change, with
/// Debezium's keys, envelope, tombstones, primary-key-change split, truncate, message and transaction metadata events,
/// and hands them to a sink in WAL order.
/// </summary>
/// <remarks>
/// <para>
/// Partitions: a row's events go to the partition of its Arrow row (the connector's partitioner, the murmur2 of the
/// documented key encoding, <see cref="Serialization.Payload.PartitionKey"/>), so a key's Debezium events and Arrow rows
/// share a partition number; a primary-key change's delete and tombstone go to the old key's partition. Events without a
/// row key (truncate, message, BEGIN/END) go to partition 0, as keyless tables' rows do.
/// </para>
/// <para>
/// Threading: the Kafka loop's thread only (the encoding's writer is reused). Lifetime: one per pipeline attempt.
/// Errors: a value of a key column that Debezium's type cannot hold, or a record larger than
/// <c>kafka.message.max.bytes</c>, is fatal (<see cref="RowTooLargeException"/>, <see cref="InvalidOperationException"/>
/// naming the table and LSN); registry failures come from the encoding (<see cref="SchemaRegistrationException"/>).
/// </para>
/// </remarks>
internal sealed class DebeziumFormat : IDisposable
{
    private static readonly ConnectSchema s_string = Of(ConnectType.String);
    private static readonly ConnectSchema s_optionalString = Of(ConnectType.String, optional: true);
    private static readonly ConnectSchema s_int64 = Of(ConnectType.Int64);
    private static readonly ConnectSchema s_optionalInt64 = Of(ConnectType.Int64, optional: true);

    private readonly ConnectorConfig _config;
    private readonly OutputSettings _settings;
    private readonly IFormatEncoding _encoding;
    private readonly TimeProvider _clock;
    private readonly string _suffix;
    private readonly string _version;
    private readonly ConnectSchema _messageValue;
    private readonly int _recordLimit;
    /// <summary>Per layout its topic and subject names, built once instead of for every event (they are per-row hot).</summary>
    private readonly Dictionary<TableLayout, TableNames> _names = new(ReferenceEqualityComparer.Instance);

    public DebeziumFormat(ConnectorConfig config, IFormatEncoding encoding, TimeProvider clock)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(encoding);
        _config = config;
        _settings = config.Output;
        _encoding = encoding;
        _clock = clock;
        _suffix = _settings.TopicSuffixes[encoding.Format];
        _version = "walbridge-" + (typeof(DebeziumFormat).Assembly.GetName().Version?.ToString(3) ?? "0");
        _messageValue = DebeziumSchemas.MessageValue(_settings.BinaryMode);
        _recordLimit = config.MessageMaxBytes - ConnectorConfig.RecordOverhead;
    }

    public OutputFormat Format => _encoding.Format;

    /// <summary>Key and value bytes of every record produced so far (the Kafka loop's transaction size and metrics).</summary>
    public long ProducedBytes { get; private set; }

    /// <summary>Rows whose events were produced so far (with <see cref="ProducedBytes"/>, the bytes per row to expect).</summary>
    public long ProducedRows { get; private set; }

    /// <summary>The topic of a table's events: <c>&lt;topic.prefix&gt;.&lt;schema&gt;.&lt;table&gt;</c> and the format's suffix.</summary>
    public string TableTopic(string schema, string table) => $"{_config.TopicPrefix}.{schema}.{table}{_suffix}";

    /// <summary>A table's topic and its TopicNameStrategy subjects (<c>&lt;topic&gt;-key</c>, <c>&lt;topic&gt;-value</c>).</summary>
    private sealed record TableNames(string Topic, string KeySubject, string ValueSubject);

    private TableNames Names(TableLayout layout)
    {
        if (!_names.TryGetValue(layout, out var names))
        {
            var topic = TableTopic(layout.Schema, layout.Table);
            names = new TableNames(topic, topic + "-key", topic + "-value");
            _names[layout] = names;
        }

        return names;
    }

    /// <summary><c>&lt;topic.prefix&gt;.message</c> and the suffix: Debezium's logical decoding message events.</summary>
    public string MessageTopic => $"{_config.TopicPrefix}.message{_suffix}";

    /// <summary><c>&lt;topic.prefix&gt;.&lt;topic.transaction&gt;</c> and the suffix: BEGIN/END events.</summary>
    public string TransactionTopic => $"{_config.TopicPrefix}.{_settings.TransactionTopicName}{_suffix}";

    /// <summary>Every topic the events of <paramref name="group"/> may go to.</summary>
    public IEnumerable<string> TopicsOf(TransactionGroup group)
    {
        ArgumentNullException.ThrowIfNull(group);
        foreach (var stream in group.Tables)
        {
            yield return TableTopic(stream.Schema, stream.Table);
        }

        if (group.Messages.Count > 0)
        {
            yield return MessageTopic;
        }

        if (HasTransactionMetadata(group))
        {
            yield return TransactionTopic;
        }
    }

    /// <summary>Whether <paramref name="group"/> may have BEGIN/END events: metadata is on and a transaction has rows or transactional messages.</summary>
    private bool HasTransactionMetadata(TransactionGroup group) =>
        _settings.ProvideTransactionMetadata && (group.Tables.Count > 0 || group.Messages.Any(m => m.Transactional));

    /// <summary>Registers the key and envelope schemas of <paramref name="layout"/> (Avro). Blocking; outside a Kafka transaction.</summary>
    public void Prepare(TableLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        var names = Names(layout);
        if (layout.KeySchema is not null)
        {
            _encoding.Prepare(names.KeySubject, layout.KeySchema, layout.What);
        }

        _encoding.Prepare(names.ValueSubject, layout.EnvelopeSchema, layout.What);
    }

    /// <summary>Registers the message and transaction topics' schemas when <paramref name="group"/> uses them. Blocking.</summary>
    public void PrepareShared(TransactionGroup group)
    {
        foreach (var (subject, schema) in SharedSchemas(group))
        {
            _encoding.Prepare(subject, schema, subject);
        }
    }

    private IEnumerable<(string Subject, ConnectSchema Schema)> SharedSchemas(TransactionGroup group)
    {
        if (group.Messages.Count > 0)
        {
            yield return (MessageTopic + "-key", DebeziumSchemas.MessageKey);
            yield return (MessageTopic + "-value", _messageValue);
        }

        if (HasTransactionMetadata(group))
        {
            yield return (TransactionTopic + "-key", DebeziumSchemas.TransactionKey);
            yield return (TransactionTopic + "-value", DebeziumSchemas.TransactionValue);
        }
    }

    /// <summary>
    /// Starts the events of one source transaction (or of one message outside a transaction, <paramref name="xid"/> 0):
    /// add its changes in WAL order with <see cref="TransactionEvents.Row"/>, <see cref="TransactionEvents.Truncate"/> and
    /// <see cref="TransactionEvents.Message"/> (records go to <paramref name="sink"/> at once: BEGIN with transaction
    /// metadata, then each change's events), then call <see cref="TransactionEvents.End"/> (END).
    /// </summary>
    /// <param name="xid">The transaction's id; 0 for a non-transactional message.</param>
    /// <param name="commitLsn">Its commit LSN (a non-transactional message's own LSN).</param>
    /// <param name="commitTimestamp">Its commit time.</param>
    /// <param name="sink">Where the records go (the open Kafka transaction).</param>
    /// <param name="previousCommitLsn">The commit LSN of the source transaction before this one, when known (<c>source.sequence</c>).</param>
    /// <param name="snapshotChunk">For snapshot rows: their chunk of the table's snapshot (every chunk shares the snapshot's commit LSN), else -1.</param>
    public TransactionEvents Start(uint xid, Lsn commitLsn, DateTimeOffset commitTimestamp, IRecordSink sink, Lsn? previousCommitLsn, int snapshotChunk = -1)
    {
        ArgumentNullException.ThrowIfNull(sink);
        return new TransactionEvents(this, xid, commitLsn, commitTimestamp, sink, previousCommitLsn, snapshotChunk);
    }

    public void Dispose() => _encoding.Dispose();

    /// <summary>The events of one source transaction for this format: counters, transaction metadata, common headers.</summary>
    internal sealed class TransactionEvents(DebeziumFormat format, uint xid, Lsn commitLsn, DateTimeOffset commitTimestamp, IRecordSink sink, Lsn? previousCommitLsn, int snapshotChunk)
    {
        private readonly byte[]? _snapshotChunk = snapshotChunk >= 0 ? Encoding.UTF8.GetBytes(snapshotChunk.ToString(CultureInfo.InvariantCulture)) : null;
        private readonly byte[] _commitLsn = Encoding.UTF8.GetBytes(commitLsn.ToString());
        private readonly byte[] _xid = Encoding.UTF8.GetBytes(xid.ToString(CultureInfo.InvariantCulture));
        private readonly string _transactionId = $"{xid}:{commitLsn.Value}";
        private readonly bool _metadata = format._settings.ProvideTransactionMetadata && xid != 0;
        private readonly Dictionary<string, long> _perCollection = new(StringComparer.Ordinal);
        private readonly List<string> _collections = [];
        private readonly long _commitMicros = CommitMicros(commitTimestamp);
        /// <summary><c>source.sequence</c> up to the change's LSN: <c>["&lt;previous commit LSN&gt;","</c>, the same for every event of the transaction.</summary>
        private readonly string _sequencePrefix = previousCommitLsn is { } p ? $"[\"{p.Value.ToString(CultureInfo.InvariantCulture)}\",\"" : "[null,\"";
        private long _events;
        private long _records;
        private bool _begun;
        private readonly List<(string Key, string Text)> _specials = [];

        private static long CommitMicros(DateTimeOffset timestamp) => (timestamp.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;

        /// <summary>Produces the events of one row change (<see cref="ChangeEntryKind.Row"/>).</summary>
        public void Row(TableLayout layout, in ChangeEntry change)
        {
            ArgumentNullException.ThrowIfNull(layout);
            var batch = change.Batch!;
            var row = change.Row;
            var lsn = change.Lsn;
            var partition = change.Stream!.Partition;
            var before = batch.Column(layout.BeforeColumn) as StructArray;
            var hasBefore = before is not null && !before.IsNull(row);
            format.ProducedRows++;
            switch (change.Op)
            {
                case 'c':
                case 'r':
                    Change(layout, change.Op, batch, row, lsn, partition, null, RowSide.Table, null);
                    break;
                case 'u':
                    if (hasBefore && layout.KeyColumns.Count > 0 && !SameKey(layout, batch, before!, row))
                    {
                        // A changed primary key: a delete of the old key, its tombstone, a create under the new key (Debezium's
                        // events). The old key's partition holds the delete the connector's partitioner wrote for it.
                        var oldKey = Key(layout, batch, row, RowSide.Before);
                        var newKey = Key(layout, batch, row, RowSide.Table);
                        Change(layout, 'd', batch, row, lsn, change.OldPartition, RowSide.Before, null, oldKey, ("__debezium.newkey", newKey));
                        Tombstone(layout, oldKey, 'd', change.OldPartition);
                        Change(layout, 'c', batch, row, lsn, partition, null, RowSide.Table, newKey, ("__debezium.oldkey", oldKey));
                    }
                    else
                    {
                        Change(layout, 'u', batch, row, lsn, partition, hasBefore ? RowSide.Before : null, RowSide.Table, null);
                    }
                    break;
                case 'd':
                    {
                        var key = Key(layout, batch, row, RowSide.Table);
                        Change(layout, 'd', batch, row, lsn, partition, RowSide.Table, null, key);
                        Tombstone(layout, key, 'd', partition);
                        break;
                    }
                default:
                    throw new InvalidOperationException($"unknown _op '{change.Op}' in {layout.Qualified} at LSN {new Lsn(lsn)}");
            }
        }

        /// <summary>Produces the truncate event of a table (<see cref="ChangeEntryKind.Truncate"/>: once per table, not per partition).</summary>
        public void Truncate(TableLayout layout, in ChangeEntry change)
        {
            ArgumentNullException.ThrowIfNull(layout);
            if (format._settings.SkippedOperations.Contains('t'))
            {
                return;
            }

            Begin();
            var names = format.Names(layout);
            var order = Count(layout.Qualified);
            var w = format._encoding.Begin(names.ValueSubject, layout.EnvelopeSchema, layout.What);
            var fields = layout.EnvelopeSchema.Fields;
            w.BeginStruct(layout.EnvelopeSchema);
            w.Field(fields[0]);
            w.Null(fields[0].Schema);
            w.Field(fields[1]);
            w.Null(fields[1].Schema);
            w.Field(fields[2]);
            WriteSource(w, layout.Schema, layout.Table, xid, change.Lsn, snapshot: "false");
            WriteTail(w, fields, 't', order, layout.Qualified);
            w.EndStruct();
            Emit(names.Topic, 0, null, format._encoding.End(), layout.Qualified, change.Lsn);
        }

        /// <summary>Produces the event of a logical decoding message.</summary>
        public void Message(LogicalMessage payload)
        {
            ArgumentNullException.ThrowIfNull(payload);
            var transactional = payload.Transactional;
            if (transactional)
            {
                Begin();
            }

            var topic = format.MessageTopic;
            var schema = format._messageValue;
            var k = format._encoding.Begin(topic + "-key", DebeziumSchemas.MessageKey, topic);
            k.BeginStruct(DebeziumSchemas.MessageKey);
            k.Field(DebeziumSchemas.MessageKey.Fields[0]);
            k.String(DebeziumSchemas.MessageKey.Fields[0].Schema, payload.Prefix);
            k.EndStruct();
            var key = format._encoding.End();

            long order = 0;
            if (transactional)
            {
                order = Count("LOGICAL_DECODING_MESSAGE");
            }

            var w = format._encoding.Begin(topic + "-value", schema, topic);
            var fields = schema.Fields;
            w.BeginStruct(schema);
            w.Field(fields[0]);
            w.String(fields[0].Schema, "m");
            w.Field(fields[1]);
            w.Integer(fields[1].Schema, format._clock.GetUtcNow().ToUnixTimeMilliseconds());
            w.Field(fields[2]);
            WriteSource(w, "", "", transactional ? xid : null, payload.MessageLsn.Value, snapshot: "false");
            w.Field(fields[3]);
            WriteTransactionBlock(w, fields[3].Schema, order, "LOGICAL_DECODING_MESSAGE", transactional && _metadata);
            w.Field(fields[4]);
            var message = fields[4].Schema;
            w.BeginStruct(message);
            w.Field(message.Fields[0]);
            w.String(message.Fields[0].Schema, payload.Prefix);
            w.Field(message.Fields[1]);
            var content = payload.Content.Get();
            switch (format._settings.BinaryMode)
            {
                case BinaryHandlingMode.Bytes:
                    w.Bytes(message.Fields[1].Schema, content);
                    break;
                case BinaryHandlingMode.Base64:
                    w.String(message.Fields[1].Schema, Convert.ToBase64String(content));
                    break;
                case BinaryHandlingMode.Base64UrlSafe:
                    w.String(message.Fields[1].Schema, Convert.ToBase64String(content).Replace('+', '-').Replace('/', '_'));
                    break;
                default:
                    w.String(message.Fields[1].Schema, Convert.ToHexStringLower(content));
                    break;
            }
            w.EndStruct();
            w.EndStruct();
            Emit(topic, 0, key, format._encoding.End(), null, payload.MessageLsn.Value);
        }

        /// <summary>The END event, when transaction metadata is on and the transaction had events.</summary>
        public void End()
        {
            if (!_begun)
            {
                return;
            }

            var topic = format.TransactionTopic;
            var key = TransactionKey(topic);
            var schema = DebeziumSchemas.TransactionValue;
            var w = format._encoding.Begin(topic + "-value", schema, topic);
            w.BeginStruct(schema);
            w.Field(schema.Fields[0]);
            w.String(s_string, "END");
            w.Field(schema.Fields[1]);
            w.String(s_string, _transactionId);
            w.Field(schema.Fields[2]);
            w.Integer(s_optionalInt64, _events);
            w.Field(schema.Fields[3]);
            var array = schema.Fields[3].Schema;
            var item = array.ValueSchema!;
            w.BeginArray(array, _collections.Count);
            foreach (var collection in _collections)
            {
                w.BeginStruct(item);
                w.Field(item.Fields[0]);
                w.String(s_string, collection);
                w.Field(item.Fields[1]);
                w.Integer(s_int64, _perCollection[collection]);
                w.EndStruct();
            }
            w.EndArray();
            w.Field(schema.Fields[4]);
            w.Integer(s_int64, _commitMicros / 1000);
            w.EndStruct();
            Emit(topic, 0, key, format._encoding.End(), null, commitLsn.Value);
        }

        private void Begin()
        {
            if (!_metadata || _begun)
            {
                return;
            }

            _begun = true;
            var topic = format.TransactionTopic;
            var key = TransactionKey(topic);
            var schema = DebeziumSchemas.TransactionValue;
            var w = format._encoding.Begin(topic + "-value", schema, topic);
            w.BeginStruct(schema);
            w.Field(schema.Fields[0]);
            w.String(s_string, "BEGIN");
            w.Field(schema.Fields[1]);
            w.String(s_string, _transactionId);
            w.Field(schema.Fields[2]);
            w.Null(schema.Fields[2].Schema);
            w.Field(schema.Fields[3]);
            w.Null(schema.Fields[3].Schema);
            w.Field(schema.Fields[4]);
            w.Integer(s_int64, _commitMicros / 1000);
            w.EndStruct();
            Emit(topic, 0, key, format._encoding.End(), null, commitLsn.Value);
        }

        private byte[] TransactionKey(string topic)
        {
            var schema = DebeziumSchemas.TransactionKey;
            var k = format._encoding.Begin(topic + "-key", schema, topic);
            k.BeginStruct(schema);
            k.Field(schema.Fields[0]);
            k.String(s_string, _transactionId);
            k.EndStruct();
            return format._encoding.End();
        }

        /// <summary>Counts a data event of <paramref name="collection"/>; returns its position among that collection's events (from 1).</summary>
        private long Count(string collection)
        {
            _events++;
            if (!_perCollection.TryGetValue(collection, out var n))
            {
                _collections.Add(collection);
            }

            _perCollection[collection] = ++n;
            return n;
        }

        private void Change(TableLayout layout, char op, RecordBatch batch, int row, ulong lsn, int partition, RowSide? before, RowSide? after, byte[]? key,
            (string Name, byte[]? Value) extraHeader = default)
        {
            if (format._settings.SkippedOperations.Contains(op))
            {
                return;
            }

            Begin();
            var names = format.Names(layout);
            key ??= Key(layout, batch, row, after ?? before ?? RowSide.Table);
            var order = Count(layout.Qualified);
            _specials.Clear();
            var schema = layout.EnvelopeSchema;
            var fields = schema.Fields;
            var w = format._encoding.Begin(names.ValueSubject, schema, layout.What);
            w.BeginStruct(schema);
            w.Field(fields[0]);
            WriteRow(w, layout, batch, row, before, "before.");
            w.Field(fields[1]);
            WriteRow(w, layout, batch, row, after, "after.");
            w.Field(fields[2]);
            // Debezium's values: "true" for the initial snapshot's rows (no transaction), "incremental" for rows of an
            // incremental snapshot's window (the high watermark's transaction).
            WriteSource(w, layout.Schema, layout.Table, xid, lsn, snapshot: op != 'r' ? "false" : xid == 0 ? "true" : "incremental");
            WriteTail(w, fields, op, order, layout.Qualified);
            w.EndStruct();
            var value = format._encoding.End();
            var headers = new Headers();
            if (_specials.Count > 0)
            {
                headers.Add(FormatHeaders.Special, SpecialHeader());
            }

            var unchanged = Unchanged(batch, layout, row);
            if (unchanged is not null)
            {
                headers.Add(FormatHeaders.Unchanged, unchanged);
            }

            if (extraHeader.Name is not null && extraHeader.Value is not null)
            {
                headers.Add(extraHeader.Name, extraHeader.Value);
            }

            Emit(names.Topic, partition, key, value, layout.Qualified, lsn, headers);
        }

        private void Tombstone(TableLayout layout, byte[]? key, char op, int partition)
        {
            if (!format._settings.TombstonesOnDelete || format._settings.SkippedOperations.Contains(op))
            {
                return;
            }

            Emit(format.Names(layout).Topic, partition, key, null, layout.Qualified, 0);
        }

        private void WriteTail(IConnectWriter w, IReadOnlyList<ConnectField> fields, char op, long order, string collection)
        {
            w.Field(fields[3]);
            WriteTransactionBlock(w, fields[3].Schema, order, collection, _metadata);
            w.Field(fields[4]);
            w.String(fields[4].Schema, op switch { 'c' => "c", 'u' => "u", 'd' => "d", 'r' => "r", _ => "t" });
            var now = format._clock.GetUtcNow();
            var micros = (now.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;
            w.Field(fields[5]);
            w.Integer(fields[5].Schema, micros / 1000);
            w.Field(fields[6]);
            w.Integer(fields[6].Schema, micros);
            w.Field(fields[7]);
            w.Integer(fields[7].Schema, micros * 1000);
        }

        private void WriteTransactionBlock(IConnectWriter w, ConnectSchema schema, long collectionOrder, string collection, bool present)
        {
            if (!present)
            {
                w.Null(schema);
                return;
            }

            w.BeginStruct(schema);
            w.Field(schema.Fields[0]);
            w.String(s_string, _transactionId);
            w.Field(schema.Fields[1]);
            w.Integer(s_int64, _events);
            w.Field(schema.Fields[2]);
            w.Integer(s_int64, collectionOrder);
            w.EndStruct();
        }

        private void WriteSource(IConnectWriter w, string schemaName, string table, uint? xid, ulong lsn, string snapshot)
        {
            var schema = DebeziumSchemas.Source;
            var f = schema.Fields;
            w.BeginStruct(schema);
            w.Field(f[0]);
            w.String(f[0].Schema, format._version);
            w.Field(f[1]);
            w.String(f[1].Schema, "postgresql");
            w.Field(f[2]);
            w.String(f[2].Schema, format._config.TopicPrefix);
            w.Field(f[3]);
            w.Integer(f[3].Schema, _commitMicros / 1000);
            w.Field(f[4]);
            w.String(f[4].Schema, snapshot);
            w.Field(f[5]);
            w.String(f[5].Schema, format._config.DatabaseName);
            w.Field(f[6]);
            w.String(f[6].Schema, string.Concat(_sequencePrefix, lsn.ToString(CultureInfo.InvariantCulture), "\"]"));
            w.Field(f[7]);
            w.Integer(f[7].Schema, _commitMicros);
            w.Field(f[8]);
            w.Integer(f[8].Schema, _commitMicros * 1000);
            w.Field(f[9]);
            w.String(f[9].Schema, schemaName);
            w.Field(f[10]);
            w.String(f[10].Schema, table);
            w.Field(f[11]);
            if (xid is { } x)
            {
                w.Integer(f[11].Schema, x);
            }
            else
            {
                w.Null(f[11].Schema);
            }

            w.Field(f[12]);
            w.Integer(f[12].Schema, (long)lsn);
            w.Field(f[13]);
            w.Null(f[13].Schema);
            w.Field(f[14]);
            w.Null(f[14].Schema);
            w.Field(f[15]);
            w.Null(f[15].Schema);
            w.EndStruct();
        }

        private void WriteRow(IConnectWriter w, TableLayout layout, RecordBatch batch, int row, RowSide? side, string headerPrefix)
        {
            if (side is null)
            {
                w.Null(layout.ValueSchema);
                return;
            }
            var before = side == RowSide.Before ? (StructArray)batch.Column(layout.BeforeColumn) : null;
            var specialPrefix = side == RowSide.Before ? "_before." : "";
            var extras = RowExtras.Of(batch, layout, row);
            w.BeginStruct(layout.ValueSchema);
            foreach (var column in layout.Columns)
            {
                w.Field(column.ValueField);
                var array = before is null ? batch.Column(column.ArrowIndex) : before.Fields[column.Member];
                var schema = column.ValueField.Schema;
                if (!array.IsNull(row))
                {
                    try
                    {
                        column.Codec.Write(w, schema, array, row);
                    }
                    catch (UnrepresentableValueException e)
                    {
                        // Partially written values cannot happen: codecs throw before writing anything.
                        w.Null(schema);
                        _specials.Add((headerPrefix + column.Name, e.Text));
                    }
                    continue;
                }
                if (extras.Special(specialPrefix + column.Name) is { } text)
                {
                    if (!column.Codec.TryWriteSpecial(w, schema, text))
                    {
                        w.Null(schema);
                        _specials.Add((headerPrefix + column.Name, text));
                    }
                    continue;
                }
                if (extras.IsUnchanged(specialPrefix + column.Name) && column.Codec.TryWritePlaceholder(w, schema, format._settings.UnavailableValuePlaceholder))
                {
                    continue;
                }
                w.Null(schema);
            }
            w.EndStruct();
        }

        private byte[]? Key(TableLayout layout, RecordBatch batch, int row, RowSide side)
        {
            if (layout.KeySchema is not { } schema)
            {
                return null;
            }

            var before = side == RowSide.Before ? (StructArray)batch.Column(layout.BeforeColumn) : null;
            var extras = RowExtras.Of(batch, layout, row);
            var w = format._encoding.Begin(format.Names(layout).KeySubject, schema, layout.What);
            w.BeginStruct(schema);
            for (var i = 0; i < layout.KeyColumns.Count; i++)
            {
                var column = layout.Columns[layout.KeyColumns[i]];
                var field = schema.Fields[i];
                w.Field(field);
                var array = before is null ? batch.Column(column.ArrowIndex) : before.Fields[column.Member];
                string? problem = null;
                if (!array.IsNull(row))
                {
                    try
                    {
                        column.Codec.Write(w, field.Schema, array, row);
                    }
                    catch (UnrepresentableValueException e)
                    {
                        problem = e.Text;
                    }
                }
                else if (extras.Special((before is null ? "" : "_before.") + column.Name) is { } text)
                {
                    if (!column.Codec.TryWriteSpecial(w, field.Schema, text))
                    {
                        problem = text;
                    }
                }
                else
                {
                    problem = "NULL";
                }

                if (problem is not null)
                {
                    var lsn = new Lsn(((UInt64Array)batch.Column(layout.LsnColumn)).Values[row]);
                    throw new InvalidOperationException(
                        $"The key column {column.Name} of {layout.Qualified} holds {problem} at LSN {lsn}, which the {OutputSettings.Name(format.Format)} format's key type " +
                        $"({field.Schema.Name ?? field.Schema.Type.ToString()}) cannot represent (Debezium stops here too). Use decimal.handling.mode=string for NaN keys, or leave the table out; nothing past this LSN was acknowledged.");
                }
            }
            w.EndStruct();
            return format._encoding.End();
        }

        private static bool SameKey(TableLayout layout, RecordBatch batch, StructArray before, int row)
        {
            foreach (var k in layout.KeyColumns)
            {
                var column = layout.Columns[k];
                var field = batch.Schema.GetFieldByIndex(column.ArrowIndex);
                var oldText = WalBridge.Serialization.Postgres.PgTextRenderer.Render(before.Fields[column.Member], field, row);
                var newText = WalBridge.Serialization.Postgres.PgTextRenderer.Render(batch.Column(column.ArrowIndex), field, row);
                if (oldText is null)
                {
                    continue; // not sent: unchanged
                }

                if (!string.Equals(oldText, newText, StringComparison.Ordinal))
                {
                    return false;
                }
            }
            return true;
        }

        private byte[] SpecialHeader()
        {
            using var buffer = new MemoryStream();
            using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            {
                json.WriteStartObject();
                foreach (var (key, text) in _specials)
                {
                    json.WriteString(key, text);
                }
                json.WriteEndObject();
            }
            return buffer.ToArray();
        }

        private static byte[]? Unchanged(RecordBatch batch, TableLayout layout, int row)
        {
            if (batch.Column(layout.UnchangedColumn) is not ListArray { Values: StringArray names } list || list.IsNull(row))
            {
                return null;
            }

            using var buffer = new MemoryStream();
            using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            {
                json.WriteStartArray();
                for (var i = list.ValueOffsets[row]; i < list.ValueOffsets[row + 1]; i++)
                {
                    json.WriteStringValue(names.GetString(i));
                }
                json.WriteEndArray();
            }
            return buffer.ToArray();
        }

        /// <summary>The decimal digits of <paramref name="index"/> as the header's bytes, without a string in between.</summary>
        private static byte[] EventIndex(long index)
        {
            Span<byte> digits = stackalloc byte[20];
            System.Buffers.Text.Utf8Formatter.TryFormat(index, digits, out var written);
            return digits[..written].ToArray();
        }

        private void Emit(string topic, int partition, byte[]? key, byte[]? value, string? collection, ulong lsn, Headers? headers = null)
        {
            var size = (key?.Length ?? 0) + (value?.Length ?? 0);
            if (size > format._recordLimit)
            {
                throw new RowTooLargeException(
                    $"A {OutputSettings.Name(format.Format)} record of {collection ?? topic} (the change at LSN {new Lsn(lsn)}) needs {size:N0} bytes, more than the {format._recordLimit:N0} bytes a record may hold " +
                    $"(kafka.message.max.bytes={format._config.MessageMaxBytes:N0} minus {ConnectorConfig.RecordOverhead:N0}). Raise 'kafka.message.max.bytes' (and the topic's max.message.bytes) above {size + ConnectorConfig.RecordOverhead:N0}, then restart; nothing past this LSN was acknowledged.");
            }

            headers ??= [];
            headers.Add(FormatHeaders.CommitLsn, _commitLsn);
            headers.Add(FormatHeaders.Xid, _xid);
            headers.Add(FormatHeaders.EventIndex, EventIndex(_records));
            if (_snapshotChunk is not null)
            {
                headers.Add(FormatHeaders.SnapshotChunk, _snapshotChunk);
            }

            _records++;
            format.ProducedBytes += size;
            sink.Produce(topic, partition, key, value, headers);
        }
    }

    private enum RowSide
    {
        Table,
        Before,
    }

    /// <summary>A row's <c>_special</c> entries and <c>_unchanged</c> names (empty for most rows).</summary>
    private readonly struct RowExtras
    {
        private readonly MapArray? _special;
        private readonly ListArray? _unchanged;
        private readonly int _row;

        private RowExtras(MapArray? special, ListArray? unchanged, int row)
        {
            _special = special;
            _unchanged = unchanged;
            _row = row;
        }

        public static RowExtras Of(RecordBatch batch, TableLayout layout, int row)
        {
            var special = batch.Column(layout.SpecialColumn) as MapArray;
            var unchanged = batch.Column(layout.UnchangedColumn) as ListArray;
            return new RowExtras(special is not null && !special.IsNull(row) ? special : null, unchanged is not null && !unchanged.IsNull(row) ? unchanged : null, row);
        }

        public string? Special(string key)
        {
            if (_special is null)
            {
                return null;
            }

            var keys = (StringArray)_special.Keys;
            var values = (StringArray)_special.Values;
            for (var i = _special.ValueOffsets[_row]; i < _special.ValueOffsets[_row + 1]; i++)
            {
                if (keys.GetString(i) == key)
                {
                    return values.GetString(i);
                }
            }
            return null;
        }

        public bool IsUnchanged(string name)
        {
            if (_unchanged is null || _unchanged.Values is not StringArray names)
            {
                return false;
            }

            for (var i = _unchanged.ValueOffsets[_row]; i < _unchanged.ValueOffsets[_row + 1]; i++)
            {
                if (names.GetString(i) == name)
                {
                    return true;
                }
            }
            return false;
        }
    }
}

/// <summary>Headers on Debezium records besides Debezium's own (<c>__debezium.oldkey</c>/<c>__debezium.newkey</c>).</summary>
public static class FormatHeaders
{
    /// <summary>The source transaction's commit LSN, e.g. <c>0/1A66DF0</c>.</summary>
    public const string CommitLsn = "pg.commit_lsn";
    public const string Xid = "pg.xid";
    /// <summary>0-based position of the record among the format's records of its source transaction: with <see cref="CommitLsn"/> it identifies a record.</summary>
    public const string EventIndex = "walbridge.event_index";
    /// <summary>Snapshot events: the chunk of the table's snapshot (with the commit LSN and event index, an event's identity).</summary>
    public const string SnapshotChunk = "walbridge.snapshot.chunk";
    /// <summary>JSON object: <c>after.&lt;column&gt;</c>/<c>before.&lt;column&gt;</c> → PostgreSQL's text, for values written as null because Debezium's type has no room for them.</summary>
    public const string Special = "walbridge.special";
    /// <summary>JSON array: the row's <c>_unchanged</c> names (unchanged TOAST values, written as the placeholder where the type has one, else null).</summary>
    public const string Unchanged = "walbridge.unchanged";
}
