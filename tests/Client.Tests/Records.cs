using System.Buffers;
using System.Globalization;
using System.Text;
using Confluent.Kafka;
using WalBridge.Connector.Kafka;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Client.Tests;

/// <summary>
/// Table records as the connector writes them: the rows encoded by its own <see cref="ChangeBatchBuilder"/> (the
/// pgoutput path's encoder), one schema message and one or more record batches, with the headers of docs/format.md.
/// </summary>
internal static class Records
{
    /// <summary><c>public.items (id bigint PRIMARY KEY, note text, payload text, ts timestamptz, amount numeric(10,2), ref uuid, data bytea)</c>.</summary>
    public static readonly PgRelation Items = new(16384, "public", "items", 'd',
    [
        new PgColumn("id", PgOid.Int8, -1, true),
        new PgColumn("note", PgOid.Text, -1, false),
        new PgColumn("payload", PgOid.Text, -1, false),
        new PgColumn("ts", PgOid.TimestampTz, -1, false),
        new PgColumn("amount", PgOid.Numeric, ((10 << 16) | 2) + 4, false),
        new PgColumn("ref", PgOid.Uuid, -1, false),
        new PgColumn("data", PgOid.Bytea, -1, false),
    ]);

    /// <summary>A whole record: the schema message, each batch <paramref name="batches"/> writes (one per call), the end marker.</summary>
    public static byte[] Stream(ArrowCompression compression, params Action<ChangeBatchBuilder>[] batches)
    {
        using var builder = new ChangeBatchBuilder(Items, compression: compression);
        var output = new ArrayBufferWriter<byte>();
        output.Write(builder.SchemaMessage.Span);
        foreach (var batch in batches)
        {
            batch(builder);
            builder.WriteRecordBatch(output);
        }

        output.Write(ArrowMessageWriter.EndOfStream);
        return output.WrittenSpan.ToArray();
    }

    public static void Row(ChangeBatchBuilder builder, ChangeOp op, ulong lsn, params string?[] values)
    {
        builder.BeginRow(op, lsn);
        Values(builder, values);
        builder.EndRow();
    }

    /// <summary>Appends values: null is SQL NULL, <see cref="Unchanged"/> an unsent TOAST value, <see cref="BeginBefore"/> starts the old row.</summary>
    public static void Values(ChangeBatchBuilder builder, params string?[] values)
    {
        foreach (var value in values)
        {
            switch (value)
            {
                case null:
                    builder.AppendNull();
                    break;
                case Unchanged:
                    builder.AppendUnchangedToast();
                    break;
                case BeginBefore:
                    builder.BeginBefore();
                    break;
                default:
                    builder.AppendValue(Encoding.UTF8.GetBytes(value), TupleFormat.Text);
                    break;
            }
        }
    }

    public const string Unchanged = "\u0001unchanged";
    public const string BeginBefore = "\u0001before";

    /// <summary>The headers the connector writes for a record with these transactions and rows.</summary>
    public static Headers Headers(ulong firstCommitLsn, ulong lastCommitLsn, int transactions, int rows, int chunk = 0, bool chunkLast = true, string format = "2")
    {
        var headers = new Headers();
        void Add(string name, string value) => headers.Add(name, Encoding.UTF8.GetBytes(value));
        Add(KafkaHeaders.ContentType, KafkaHeaders.ArrowStreamContentType);
        Add(KafkaHeaders.Format, format);
        Add(KafkaHeaders.Kind, "changes");
        Add(KafkaHeaders.Table, "public.items");
        Add(KafkaHeaders.FirstCommitLsn, Lsn(firstCommitLsn));
        Add(KafkaHeaders.CommitLsn, Lsn(lastCommitLsn));
        Add(KafkaHeaders.Transactions, transactions.ToString(CultureInfo.InvariantCulture));
        Add(KafkaHeaders.Rows, rows.ToString(CultureInfo.InvariantCulture));
        Add(KafkaHeaders.ChunkIndex, chunk.ToString(CultureInfo.InvariantCulture));
        Add(KafkaHeaders.LastChunk, chunkLast ? "true" : "false");
        Add(KafkaHeaders.SchemaFingerprint, "0123456789abcdef");
        return headers;
    }

    private static string Lsn(ulong value) => string.Create(CultureInfo.InvariantCulture, $"{value >> 32:X}/{value & 0xFFFFFFFF:X}");

    /// <summary>Deserializes like a Confluent consumer does: headers in the context, the value as a span.</summary>
    public static WalBridgeRecord Deserialize(byte[] value, Headers headers) =>
        WalBridgeDeserializer.Instance.Deserialize(value, isNull: false, new SerializationContext(MessageComponentType.Value, "shop.public.items", headers));
}
