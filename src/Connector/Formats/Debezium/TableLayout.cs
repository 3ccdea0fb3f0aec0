using Apache.Arrow;
using WalBridge.Connector.Configuration;
using WalBridge.Serialization.Postgres;
using static WalBridge.Connector.Formats.Debezium.ConnectSchema;

namespace WalBridge.Connector.Formats.Debezium;

/// <summary>One table column of the payload: where it is, its name and its codec.</summary>
internal sealed record LayoutColumn(int ArrowIndex, int Member, string Name, ValueCodec Codec, ConnectField ValueField);

/// <summary>
/// Everything the Debezium formats derive from one Arrow payload schema (docs/format.md, format version 2) of a table: the positions of
/// WalBridge's own columns, a codec per table column, and the Connect schemas of the key (<c>&lt;prefix&gt;.&lt;schema&gt;.&lt;table&gt;.Key</c>,
/// the <c>pg.primary_key</c> columns, required), the row (<c>….Value</c>, every column optional) and the envelope
/// (<c>….Envelope</c>). Built once per (table, schema fingerprint); immutable.
/// </summary>
internal sealed class TableLayout
{
    public required string Schema { get; init; }
    public required string Table { get; init; }
    public required string Fingerprint { get; init; }
    public required int OpColumn { get; init; }
    public required int LsnColumn { get; init; }
    public required int BeforeColumn { get; init; }
    public required int UnchangedColumn { get; init; }
    public required int SpecialColumn { get; init; }
    public required IReadOnlyList<LayoutColumn> Columns { get; init; }
    /// <summary>Indexes into <see cref="Columns"/> of the key columns; empty when the events have no key.</summary>
    public required IReadOnlyList<int> KeyColumns { get; init; }
    public required ConnectSchema? KeySchema { get; init; }
    public required ConnectSchema ValueSchema { get; init; }
    public required ConnectSchema EnvelopeSchema { get; init; }

    /// <summary><c>schema.table</c>, Debezium's data collection name.</summary>
    public string Qualified => $"{Schema}.{Table}";

    /// <summary>Describes the schema in messages: table and fingerprint.</summary>
    public string What => $"table {Schema}.{Table}, schema fingerprint {Fingerprint}";

    /// <exception cref="InvalidOperationException">The Arrow schema is not WalBridge's payload layout.</exception>
    public static TableLayout Create(Apache.Arrow.Schema arrow, string fingerprint, string topicPrefix, OutputSettings settings)
    {
        ArgumentNullException.ThrowIfNull(arrow);
        ArgumentNullException.ThrowIfNull(settings);
        var fields = arrow.FieldsList;
        var count = fields.Count;
        var first = ChangeBatchBuilder.LeadingColumns;
        if (count < first + 4 || fields[0].Name != ChangeBatchBuilder.OpColumn || fields[1].Name != ChangeBatchBuilder.LsnColumn
            || fields[first - 1].Name != ChangeBatchBuilder.CommitTimestampColumn || fields[count - 3].Name != ChangeBatchBuilder.BeforeColumn
            || fields[count - 1].Name != ChangeBatchBuilder.SpecialColumn)
        {
            throw new InvalidOperationException($"the Arrow schema ({count} fields) does not have WalBridge's payload layout (_op, _lsn, _xid, _commit_lsn, _commit_ts, columns, _before, _unchanged, _special)");
        }

        var schemaName = Meta(arrow.Metadata, "pg.schema") ?? "";
        var tableName = Meta(arrow.Metadata, "pg.table") ?? "";
        var identity = Meta(arrow.Metadata, "pg.replica_identity") ?? "d";
        var keyNames = (Meta(arrow.Metadata, "pg.primary_key") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries);
        var columns = new List<LayoutColumn>();
        for (var i = first; i < count - 3; i++)
        {
            var codec = ValueCodec.For(fields[i], settings);
            columns.Add(new LayoutColumn(i, i - first, fields[i].Name, codec, new ConnectField(fields[i].Name, codec.Schema)));
        }
        var keys = new List<int>();
        foreach (var name in keyNames)
        {
            var index = columns.FindIndex(c => c.Name == name);
            if (index >= 0 && !keys.Contains(index))
            {
                keys.Add(index);
            }
        }
        // REPLICA IDENTITY FULL without a primary key: pg.primary_key names every column, Debezium's key is null.
        if (identity == "f" && keys.Count == columns.Count && columns.Count > 1)
        {
            keys.Clear();
        }

        var prefix = $"{topicPrefix}.{schemaName}.{tableName}";
        var value = Struct($"{prefix}.Value", optional: true, version: null, [.. columns.Select(c => c.ValueField)]);
        var key = keys.Count == 0
            ? null
            : Struct($"{prefix}.Key", optional: false, version: null, [.. keys.Select(k => new ConnectField(columns[k].Name, columns[k].Codec.Schema.WithOptional(false)))]);
        var envelope = Struct($"{prefix}.Envelope", optional: false, version: 2,
            new ConnectField("before", value),
            new ConnectField("after", value),
            new ConnectField("source", DebeziumSchemas.Source),
            new ConnectField("transaction", DebeziumSchemas.TransactionBlock),
            new ConnectField("op", Of(ConnectType.String)),
            new ConnectField("ts_ms", Of(ConnectType.Int64, optional: true)),
            new ConnectField("ts_us", Of(ConnectType.Int64, optional: true)),
            new ConnectField("ts_ns", Of(ConnectType.Int64, optional: true)));
        return new TableLayout
        {
            Schema = schemaName,
            Table = tableName,
            Fingerprint = fingerprint,
            OpColumn = 0,
            LsnColumn = 1,
            BeforeColumn = count - 3,
            UnchangedColumn = count - 2,
            SpecialColumn = count - 1,
            Columns = columns,
            KeyColumns = keys,
            KeySchema = key,
            ValueSchema = value,
            EnvelopeSchema = envelope,
        };
    }

    private static string? Meta(IReadOnlyDictionary<string, string>? metadata, string key) =>
        metadata is not null && metadata.TryGetValue(key, out var value) ? value : null;
}

/// <summary>The Connect schemas Debezium's PostgreSQL connector shares between tables (its 3.x shapes).</summary>
internal static class DebeziumSchemas
{
    /// <summary><c>io.debezium.connector.postgresql.Source</c>, version 1.</summary>
    public static readonly ConnectSchema Source = Struct("io.debezium.connector.postgresql.Source", optional: false, version: 1,
        new ConnectField("version", Of(ConnectType.String)),
        new ConnectField("connector", Of(ConnectType.String)),
        new ConnectField("name", Of(ConnectType.String)),
        new ConnectField("ts_ms", Of(ConnectType.Int64)),
        new ConnectField("snapshot", new ConnectSchema
        {
            Type = ConnectType.String,
            Optional = true,
            Name = EnumName,
            Version = 1,
            Parameters = [Parameter("allowed", "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental")],
            DefaultString = "false",
        }),
        new ConnectField("db", Of(ConnectType.String)),
        new ConnectField("sequence", Of(ConnectType.String, optional: true)),
        new ConnectField("ts_us", Of(ConnectType.Int64, optional: true)),
        new ConnectField("ts_ns", Of(ConnectType.Int64, optional: true)),
        new ConnectField("schema", Of(ConnectType.String)),
        new ConnectField("table", Of(ConnectType.String)),
        new ConnectField("txId", Of(ConnectType.Int64, optional: true)),
        new ConnectField("lsn", Of(ConnectType.Int64, optional: true)),
        new ConnectField("xmin", Of(ConnectType.Int64, optional: true)),
        new ConnectField("origin", Of(ConnectType.String, optional: true)),
        new ConnectField("origin_lsn", Of(ConnectType.Int64, optional: true)));

    /// <summary><c>event.block</c>: the envelope's <c>transaction</c> field.</summary>
    public static readonly ConnectSchema TransactionBlock = Struct("event.block", optional: true, version: 1,
        new ConnectField("id", Of(ConnectType.String)),
        new ConnectField("total_order", Of(ConnectType.Int64)),
        new ConnectField("data_collection_order", Of(ConnectType.Int64)));

    public static readonly ConnectSchema TransactionKey = Struct("io.debezium.connector.common.TransactionMetadataKey", optional: false, version: 1,
        new ConnectField("id", Of(ConnectType.String)));

    public static readonly ConnectSchema EventCount = Struct("event.collection", optional: true, version: 1,
        new ConnectField("data_collection", Of(ConnectType.String)),
        new ConnectField("event_count", Of(ConnectType.Int64)));

    public static readonly ConnectSchema TransactionValue = Struct("io.debezium.connector.common.TransactionMetadataValue", optional: false, version: 1,
        new ConnectField("status", Of(ConnectType.String)),
        new ConnectField("id", Of(ConnectType.String)),
        new ConnectField("event_count", Of(ConnectType.Int64, optional: true)),
        new ConnectField("data_collections", ArrayOf(EventCount, optional: true)),
        new ConnectField("ts_ms", Of(ConnectType.Int64)));

    public static readonly ConnectSchema MessageKey = Struct("io.debezium.connector.postgresql.MessageKey", optional: false, version: 1,
        new ConnectField("prefix", Of(ConnectType.String, optional: true)));

    /// <summary><c>io.debezium.connector.postgresql.MessageValue</c> for the configured binary handling (the content's type).</summary>
    public static ConnectSchema MessageValue(BinaryHandlingMode mode)
    {
        var message = Struct("io.debezium.connector.postgresql.Message", optional: false, version: 1,
            new ConnectField("prefix", Of(ConnectType.String, optional: true)),
            new ConnectField("content", Of(mode == BinaryHandlingMode.Bytes ? ConnectType.Bytes : ConnectType.String, optional: true)));
        return Struct("io.debezium.connector.postgresql.MessageValue", optional: false, version: 1,
            new ConnectField("op", Of(ConnectType.String)),
            new ConnectField("ts_ms", Of(ConnectType.Int64, optional: true)),
            new ConnectField("source", Source),
            new ConnectField("transaction", TransactionBlock),
            new ConnectField("message", message));
    }
}
