using Microsoft.Extensions.Logging;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Formats.Debezium;
using WalBridge.Connector.Transactions;
using WalBridge.Offsets;

namespace WalBridge.Connector.Formats;

/// <summary>
/// The formats stage: the records of the Debezium formats (<c>output.formats</c> = debezium-json, debezium-avro) for the
/// transaction groups of a Kafka transaction, produced by the Kafka loop into the same Kafka transaction as the Arrow
/// records and the offsets record. Works from the decoded changes (both plugins give the same payload, format v2),
/// read through <see cref="PayloadBatches"/>. The Arrow records themselves stay the Kafka loop's.
/// </summary>
/// <remarks>
/// <para>
/// Where the work runs: on the Kafka loop's thread, never on the replication reader's (the pipeline's bottleneck). The
/// loop calls <see cref="Prepare"/> before it begins a Kafka transaction (topic creation and schema registration, both
/// blocking network calls that must not hold a transaction open) and <see cref="Produce"/> inside it. Decoding one
/// record batch per table partition at a time and handing each record to librdkafka's bounded queue keeps memory
/// bounded whatever the transaction's size, and the reader keeps decoding the next transactions meanwhile.
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
    /// <summary>The commit LSN of the last source transaction before the one being produced (<c>source.sequence</c>).</summary>
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

    /// <summary>The Debezium formats' topics <paramref name="group"/> writes to.</summary>
    public IEnumerable<string> TopicsOf(TransactionGroup group) => _formats.SelectMany(f => f.TopicsOf(group)).Distinct(StringComparer.Ordinal);

    /// <summary>
    /// The Debezium bytes <paramref name="group"/> is expected to add to a Kafka transaction: its rows times the bytes per
    /// row the formats produced so far in this attempt (0 until they produced any). Only an estimate, because the bytes
    /// are known only once the records are encoded, inside the transaction; the Kafka loop adds it to the group's Arrow
    /// bytes against <c>transaction.max.bytes</c>.
    /// </summary>
    public long EstimatedBytes(TransactionGroup group)
    {
        ArgumentNullException.ThrowIfNull(group);
        long bytes = 0;
        foreach (var format in _formats)
        {
            if (format.ProducedRows > 0)
            {
                bytes += format.ProducedBytes / format.ProducedRows * group.RowCount;
            }
        }

        return bytes;
    }

    /// <summary>Key and value bytes of every Debezium record produced so far in this attempt.</summary>
    public long ProducedBytes => _formats.Sum(f => f.ProducedBytes);

    /// <summary>
    /// Creates the Debezium topics of <paramref name="groups"/> (through <paramref name="ensureTopic"/>) and registers the
    /// schemas they need; cheap when every topic and schema is known. Blocking; call outside any Kafka transaction.
    /// </summary>
    /// <exception cref="Errors.SchemaRegistrationException">The registry refused a schema or could not be reached.</exception>
    public void Prepare(IReadOnlyList<TransactionGroup> groups, Action<string> ensureTopic)
    {
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(ensureTopic);
        if (_formats.Count == 0)
        {
            return;
        }

        foreach (var group in groups)
        {
            foreach (var topic in TopicsOf(group))
            {
                ensureTopic(topic);
            }

            foreach (var stream in group.Tables)
            {
                var layout = Layout(stream);
                foreach (var format in _formats)
                {
                    format.Prepare(layout);
                }
            }

            foreach (var format in _formats)
            {
                format.PrepareShared(group);
            }
        }
    }

    /// <summary>
    /// Produces the Debezium formats' records of <paramref name="groups"/> to <paramref name="sink"/>: source transaction
    /// by source transaction in commit order, each change in WAL order, each format's events of it. Inside the open
    /// Kafka transaction, on the Kafka loop's thread. Returns the bytes produced (keys and values).
    /// </summary>
    public long Produce(IReadOnlyList<TransactionGroup> groups, IRecordSink sink)
    {
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(sink);
        if (_formats.Count == 0)
        {
            return 0;
        }

        var before = ProducedBytes;
        var events = new List<DebeziumFormat.TransactionEvents>(_formats.Count);
        foreach (var group in groups)
        {
            if (group.IsHeartbeat)
            {
                continue;
            }

            // A change starts the events of its transaction when its commit LSN differs from the one before (a
            // transaction's changes are contiguous in WAL order; a message outside a transaction is one of its own).
            ulong? open = null;
            var passed = 0;
            foreach (var change in PayloadBatches.InWalOrder(group))
            {
                if (open != change.CommitLsn)
                {
                    End(events);
                    open = change.CommitLsn;
                    // source.sequence names the commit of the source transaction before (with or without events).
                    passed = PassCommitsBefore(group, passed, change.CommitLsn);
                    var transactional = change.Kind != ChangeEntryKind.Message || change.Message!.Transactional;
                    var xid = transactional ? change.Xid : 0;
                    foreach (var format in _formats)
                    {
                        events.Add(format.Start(xid, new Lsn(change.CommitLsn), change.CommitTimestamp, sink, transactional ? _previousCommit : null, group.Snapshot?.Chunk ?? -1));
                    }
                }

                switch (change.Kind)
                {
                    case ChangeEntryKind.Message:
                        foreach (var e in events)
                        {
                            e.Message(change.Message!);
                        }

                        break;
                    case ChangeEntryKind.Truncate:
                    {
                        var layout = Layout(change.Stream!);
                        foreach (var e in events)
                        {
                            e.Truncate(layout, change);
                        }

                        break;
                    }
                    default:
                    {
                        var layout = Layout(change.Stream!);
                        foreach (var e in events)
                        {
                            e.Row(layout, change);
                        }

                        break;
                    }
                }

            }

            End(events);
            PassCommitsBefore(group, passed, ulong.MaxValue);
        }

        return ProducedBytes - before;
    }

    /// <summary>Remembers the commits of <paramref name="group"/>'s transactions from index <paramref name="from"/> that are before <paramref name="commitLsn"/>; returns the next index.</summary>
    private int PassCommitsBefore(TransactionGroup group, int from, ulong commitLsn)
    {
        var transactions = group.Transactions;
        while (from < transactions.Count && transactions[from].CommitLsn.Value < commitLsn)
        {
            _previousCommit = transactions[from].CommitLsn;
            from++;
        }

        return from;
    }

    /// <summary>Ends the events of the open transaction, if any (END events).</summary>
    private static void End(List<DebeziumFormat.TransactionEvents> events)
    {
        foreach (var e in events)
        {
            e.End();
        }

        events.Clear();
    }

    /// <summary>The Debezium layout of a table stream's schema, built once per (table, schema fingerprint).</summary>
    private TableLayout Layout(TableStream stream)
    {
        var key = (stream.Schema, stream.Table, stream.SchemaFingerprint);
        if (!_layouts.TryGetValue(key, out var layout))
        {
            layout = TableLayout.Create(PayloadBatches.SchemaOf(stream), stream.SchemaFingerprint, _config.TopicPrefix, _config.Output);
            _layouts[key] = layout;
            LogLayout(_logger, layout.Qualified, stream.SchemaFingerprint, layout.Columns.Count, layout.KeyColumns.Count);
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
