using Microsoft.Extensions.Logging;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Formats.Debezium;
using WalBridge.Connector.Transactions;
using WalBridge.Offsets;

namespace WalBridge.Connector.Formats;

/// <summary>
/// The formats stage: the records of the Debezium formats (<c>output.formats</c> = debezium-json, debezium-avro) for
/// each source transaction, produced by the Kafka loop into the same Kafka transaction as the Arrow records and the
/// offsets record. Works from the decoded Arrow payloads (both plugins give the same), read through
/// <see cref="PayloadBatches"/>. The Arrow records themselves stay the Kafka loop's.
/// </summary>
/// <remarks>
/// <para>
/// Where the work runs: on the Kafka loop's thread, never on the replication reader's (the pipeline's bottleneck). The
/// loop calls <see cref="Prepare"/> before it begins a Kafka transaction (topic creation and schema registration, both
/// blocking network calls that must not hold a transaction open) and <see cref="Produce"/> inside it. Encoding one
/// payload at a time and handing each record to librdkafka's bounded queue keeps memory bounded whatever the
/// transaction's size, and the reader keeps decoding the next transactions meanwhile (the queue between them).
/// </para>
/// <para>
/// Lifetime: one per pipeline attempt (a failed attempt's caches and registry client are dropped with it). Threading:
/// not thread-safe; the Kafka loop's thread. Errors: <see cref="Errors.SchemaRegistrationException"/> from
/// <see cref="Prepare"/> (transient or fatal, see there); fatal exceptions for unrepresentable keys and oversized records.
/// </para>
/// </remarks>
internal sealed partial class OutputFormats : IDisposable
{
    private readonly ConnectorConfig _config;
    private readonly ILogger _logger;
    private readonly List<DebeziumFormat> _formats = [];
    private readonly Dictionary<(string Schema, string Table, string Fingerprint), TableLayout> _layouts = [];
    private Lsn? _previousCommit;

    public OutputFormats(ConnectorConfig config, ILogger logger, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _logger = logger;
        clock ??= TimeProvider.System;
        foreach (var format in config.Output.Formats)
        {
            IFormatEncoding? encoding = format switch
            {
                OutputFormat.DebeziumJson => new JsonEncoding(config.Output.JsonSchemasEnabled),
                OutputFormat.DebeziumAvro => new AvroEncoding(new SchemaRegistration(config.Output.SchemaRegistry, logger)),
                _ => null,
            };
            if (encoding is not null)
            {
                _formats.Add(new DebeziumFormat(config, encoding, clock));
            }
        }
    }

    /// <summary>Whether the Arrow records (and the raw messages topic) are written.</summary>
    public bool WritesArrow => _config.Output.Includes(OutputFormat.Arrow);

    /// <summary>Whether any Debezium format is enabled.</summary>
    public bool WritesDebezium => _formats.Count > 0;

    /// <summary>The enabled Debezium formats.</summary>
    public IReadOnlyList<DebeziumFormat> Debezium => _formats;

    /// <summary>The Debezium formats' topics <paramref name="transaction"/> writes to.</summary>
    public IEnumerable<string> TopicsOf(SourceTransaction transaction) => _formats.SelectMany(f => f.TopicsOf(transaction)).Distinct(StringComparer.Ordinal);

    /// <summary>
    /// Whether <paramref name="transaction"/> can be produced without a blocking call: every topic is known to exist and
    /// every schema it needs is registered. When false, the loop ends its Kafka transaction before it and calls
    /// <see cref="Prepare"/>.
    /// </summary>
    public bool IsPrepared(SourceTransaction transaction, Func<string, bool> topicExists)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        ArgumentNullException.ThrowIfNull(topicExists);
        if (_formats.Count == 0)
        {
            return true;
        }

        if (!TopicsOf(transaction).All(topicExists))
        {
            return false;
        }

        foreach (var payload in transaction.Payloads)
        {
            if (payload.Kind == PayloadKind.Message)
            {
                continue;
            }

            if (!_layouts.TryGetValue((payload.Schema, payload.Table, payload.SchemaFingerprint), out var layout) || !_formats.All(f => f.IsPrepared(layout)))
            {
                return false;
            }
        }
        return _formats.All(f => f.IsPreparedShared(transaction));
    }

    /// <summary>
    /// Creates the Debezium topics of <paramref name="transaction"/> (through <paramref name="ensureTopic"/>) and registers
    /// the schemas it needs. Blocking; call outside any Kafka transaction.
    /// </summary>
    /// <exception cref="Errors.SchemaRegistrationException">The registry refused a schema or could not be reached.</exception>
    public void Prepare(SourceTransaction transaction, Action<string> ensureTopic)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        ArgumentNullException.ThrowIfNull(ensureTopic);
        if (_formats.Count == 0)
        {
            return;
        }

        foreach (var topic in TopicsOf(transaction))
        {
            ensureTopic(topic);
        }
        foreach (var payload in transaction.Payloads)
        {
            if (payload.Kind == PayloadKind.Message)
            {
                continue;
            }

            var layout = Layout(payload, null);
            foreach (var format in _formats)
            {
                format.Prepare(layout);
            }
        }
        foreach (var format in _formats)
        {
            format.PrepareShared(transaction);
        }
    }

    /// <summary>
    /// Produces the Debezium formats' records of <paramref name="transaction"/> to <paramref name="sink"/>: for each payload in
    /// order, each format's events. Inside the open Kafka transaction, on the Kafka loop's thread.
    /// </summary>
    public void Produce(SourceTransaction transaction, IRecordSink sink)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        ArgumentNullException.ThrowIfNull(sink);
        if (transaction.IsHeartbeat)
        {
            return;
        }

        if (_formats.Count > 0 && transaction.Payloads.Count > 0)
        {
            var events = _formats.Select(f => f.Start(transaction, sink, transaction.Xid == 0 ? null : _previousCommit)).ToList();
            foreach (var payload in transaction.Payloads)
            {
                DecodedPayload decoded;
                if (payload.Kind == PayloadKind.Message)
                {
                    decoded = new DecodedPayload(payload, null, null);
                }
                else
                {
                    var data = PayloadBatches.Read(payload);
                    decoded = new DecodedPayload(payload, data, Layout(payload, data));
                }
                foreach (var e in events)
                {
                    e.Add(decoded);
                }
            }
            foreach (var e in events)
            {
                e.End();
            }
        }
        if (transaction.Xid != 0)
        {
            _previousCommit = transaction.CommitLsn;
        }
    }

    private TableLayout Layout(TablePayload payload, Serialization.Payload.ArrowPayload? data)
    {
        var key = (payload.Schema, payload.Table, payload.SchemaFingerprint);
        if (!_layouts.TryGetValue(key, out var layout))
        {
            data ??= PayloadBatches.Read(payload);
            layout = TableLayout.Create(data.Schema, payload.SchemaFingerprint, _config.TopicPrefix, _config.Output);
            _layouts[key] = layout;
            LogLayout(_logger, layout.Qualified, payload.SchemaFingerprint, layout.Columns.Count, layout.KeyColumns.Count);
        }
        return layout;
    }

    public void Dispose()
    {
        foreach (var format in _formats)
        {
            format.Dispose();
        }
        _formats.Clear();
    }

    [LoggerMessage(EventId = 2100, Level = LogLevel.Debug, Message = "Debezium layout of {Table} for schema fingerprint {Fingerprint}: {Columns} columns, {KeyColumns} key columns")]
    private static partial void LogLayout(ILogger logger, string table, string fingerprint, int columns, int keyColumns);
}
