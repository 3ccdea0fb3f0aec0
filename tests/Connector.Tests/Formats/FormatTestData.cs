using System.Buffers;
using System.Text;
using Confluent.Kafka;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Formats;
using WalBridge.Connector.Transactions;
using WalBridge.Offsets;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Connector.Tests.Formats;

/// <summary>Builds real payloads with the connector's own ChangeBatchBuilder and captures the formats' records.</summary>
internal static class FormatTestData
{
    public static ConnectorConfig Config(params (string Key, string Value)[] settings)
    {
        var values = new Dictionary<string, string>
        {
            ["name"] = "golden",
            ["database.user"] = "cdc",
            ["database.dbname"] = "postgres",
            ["topic.prefix"] = "PostgreSQL_server",
            ["kafka.bootstrap.servers"] = "127.0.0.1:9",
            ["output.formats"] = "debezium-json",
            ["skipped.operations"] = "none",
        };
        foreach (var (key, value) in settings)
        {
            values[key] = value;
        }
        return ConnectorConfig.FromDictionary(values);
    }

    public static PgRelation Customers(char identity = 'd') => new(16384, "public", "customers", identity,
    [
        new PgColumn("id", PgOid.Int4, -1, true),
        new PgColumn("first_name", PgOid.Varchar, 255 + 4, false),
        new PgColumn("last_name", PgOid.Varchar, 255 + 4, false),
        new PgColumn("email", PgOid.Varchar, 255 + 4, false),
    ]);

    /// <summary>One row: values as PostgreSQL text (null = SQL NULL, <see cref="Unchanged"/> = an unchanged TOAST value).</summary>
    public sealed record Row(ChangeOp Op, ulong Lsn, string?[] Values, string?[]? Before = null);

    public const string Unchanged = "\u0000unchanged";

    public static TablePayload Payload(PgRelation relation, params Row[] rows)
    {
        using var builder = new ChangeBatchBuilder(relation, UnparsedTextPolicy.KeepAsSpecialText);
        foreach (var row in rows)
        {
            builder.BeginRow(row.Op, row.Lsn);
            foreach (var value in row.Values)
            {
                Append(builder, value);
            }
            if (row.Before is not null)
            {
                builder.BeginBefore();
                foreach (var value in row.Before)
                {
                    Append(builder, value);
                }
            }
            builder.EndRow();
        }
        var buffer = new ArrayBufferWriter<byte>();
        builder.WriteStream(buffer);
        var bytes = buffer.WrittenSpan.ToArray();
        return new TablePayload
        {
            Schema = relation.Schema,
            Table = relation.Table,
            Kind = PayloadKind.Changes,
            ChunkIndex = 0,
            IsLastChunk = true,
            RowCount = rows.Length,
            SchemaFingerprint = SchemaFingerprint.Compute(ArrowPayload.Read(bytes).Schema),
            Value = bytes,
        };
    }

    public static TablePayload Truncate(PgRelation relation)
    {
        var changes = Payload(relation);
        return new TablePayload
        {
            Schema = relation.Schema,
            Table = relation.Table,
            Kind = PayloadKind.Truncate,
            ChunkIndex = 0,
            IsLastChunk = true,
            RowCount = 0,
            SchemaFingerprint = changes.SchemaFingerprint,
            Value = changes.Value,
        };
    }

    public static TablePayload Message(string prefix, byte[] content, ulong lsn, bool transactional) => new()
    {
        Schema = "",
        Table = "",
        Kind = PayloadKind.Message,
        ChunkIndex = 0,
        IsLastChunk = true,
        RowCount = 0,
        SchemaFingerprint = "",
        Value = content,
        MessagePrefix = prefix,
        MessageLsn = new Lsn(lsn),
        MessageTransactional = transactional,
    };

    private static void Append(ChangeBatchBuilder builder, string? value)
    {
        if (value is null)
        {
            builder.AppendNull();
        }
        else if (value == Unchanged)
        {
            builder.AppendUnchangedToast();
        }
        else
        {
            builder.AppendValue(Encoding.UTF8.GetBytes(value), TupleFormat.Text);
        }
    }

    public static SourceTransaction Transaction(uint xid, ulong commitLsn, long commitMicros, params TablePayload[] payloads) => new()
    {
        Xid = xid,
        CommitLsn = new Lsn(commitLsn),
        EndLsn = new Lsn(commitLsn + 8),
        CommitTimestamp = DateTimeOffset.UnixEpoch.AddTicks(commitMicros * 10),
        Payloads = payloads,
        RowCount = payloads.Sum(p => p.RowCount),
    };

    /// <summary>A clock stopped at <paramref name="micros"/> since the epoch.</summary>
    public sealed class FixedClock(long micros) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => DateTimeOffset.UnixEpoch.AddTicks(micros * 10);
    }

    public sealed record Captured(string Topic, byte[]? Key, byte[]? Value, Headers? Headers)
    {
        public string KeyText => Key is null ? "null" : Encoding.UTF8.GetString(Key);
        public string ValueText => Value is null ? "null" : Encoding.UTF8.GetString(Value);

        public string? Header(string name) => Headers is not null && Headers.TryGetLastBytes(name, out var bytes) ? Encoding.UTF8.GetString(bytes) : null;
    }

    public sealed class CapturingSink : IRecordSink
    {
        public List<Captured> Records { get; } = [];

        public void Produce(string topic, byte[]? key, byte[]? value, Headers? headers) => Records.Add(new Captured(topic, key, value, headers));
    }

    /// <summary>Produces <paramref name="transactions"/> through a fresh formats stage and returns the records.</summary>
    public static List<Captured> Produce(ConnectorConfig config, long nowMicros, params SourceTransaction[] transactions)
    {
        using var formats = new OutputFormats(config, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, new FixedClock(nowMicros));
        var sink = new CapturingSink();
        foreach (var transaction in transactions)
        {
            formats.Prepare(transaction, _ => { });
            formats.Produce(transaction, sink);
        }
        return sink.Records;
    }
}
