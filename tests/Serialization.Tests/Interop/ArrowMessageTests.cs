using System.Buffers;
using System.Buffers.Binary;
using System.Data.SqlTypes;
using System.Globalization;
using System.Text;
using Apache.Arrow;
using Apache.Arrow.Ipc;
using Apache.Arrow.Types;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;
using WalBridge.Serialization.Tests.Postgres;
using WalBridge.Tests;

namespace WalBridge.Serialization.Tests.Interop;

/// <summary>
/// The encoding primitives (schema message, record batch messages, end-of-stream marker; all written by Apache.Arrow) and
/// what they promise: concatenated in order they are one valid stream for Apache.Arrow and apache-arrow JS.
/// </summary>
public sealed class ArrowMessageTests : IDisposable
{
    private static readonly PgRelation Items = new(16390, "public", "items", 'd',
    [
        new PgColumn("id", PgOid.Int8, -1, true),
        new PgColumn("name", PgOid.Text, -1, false),
        new PgColumn("price", PgOid.Numeric, ((10 << 16) | 2) + 4, false),
        new PgColumn("at", PgOid.TimestampTz, -1, false),
        new PgColumn("ref", PgOid.Uuid, -1, false),
        new PgColumn("tags", PgOid.TextArray, -1, false),
    ]);

    private readonly string _dir = Directory.CreateTempSubdirectory("walbridge-messages-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static void Row(ChangeBatchBuilder b, ChangeOp op, ulong lsn, params string?[] values)
    {
        b.BeginRow(op, lsn);
        foreach (var v in values)
        {
            if (v is null)
            {
                b.AppendNull();
            }
            else
            {
                b.AppendValue(Encoding.UTF8.GetBytes(v), TupleFormat.Text);
            }
        }

        b.EndRow();
    }

    private static void Transaction(ChangeBatchBuilder b, int txn, int rows)
    {
        for (var r = 0; r < rows; r++)
        {
            var id = (txn * 100 + r).ToString(CultureInfo.InvariantCulture);
            Row(b, r % 2 == 0 ? ChangeOp.Insert : ChangeOp.Delete, (ulong)(txn * 1000 + r), id, r == 1 ? null : $"item {id}", "12.50",
                "2024-01-02 03:04:05.5+00", r == 2 ? null : "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "{x,NULL,\"y z\"}");
        }
    }

    /// <summary>
    /// Payload v2's shape: the record batches of several source transactions after one schema message. The batches come from
    /// two builders of the same table (as the plugin's and the connector's would), and one has no rows.
    /// </summary>
    [Fact]
    public void A_schema_message_several_batch_messages_and_the_end_of_stream_are_one_stream_for_both_readers()
    {
        using var first = new ChangeBatchBuilder(Items);
        using var second = new ChangeBatchBuilder(Items);
        Assert.True(first.SchemaMessage.Span.SequenceEqual(second.SchemaMessage.Span));
        var output = new ArrayBufferWriter<byte>();
        output.Write(first.SchemaMessage.Span);
        int[] rows = [3, 0, 5, 1];
        var lengths = new List<int>();
        for (var t = 0; t < rows.Length; t++)
        {
            var builder = t % 2 == 0 ? first : second;
            Transaction(builder, t, rows[t]);
            var before = output.WrittenCount;
            var written = builder.WriteRecordBatch(output);
            Assert.Equal(output.WrittenCount - before, written);
            Assert.Equal(0, builder.RowCount);
            lengths.Add(written);
        }

        output.Write(ArrowMessageWriter.EndOfStream);
        var stream = output.WrittenSpan.ToArray();
        Assert.All(lengths, l => Assert.Equal(0, l % 8));

        // Apache.Arrow's own reader: one schema, four batches, then the end.
        using (var reader = new ArrowStreamReader(ArrowPayload.Context, stream))
        {
            Assert.Equal(SchemaFingerprint.CanonicalText(first.Schema), SchemaFingerprint.CanonicalText(reader.Schema));
            for (var t = 0; t < rows.Length; t++)
            {
                var batch = reader.ReadNextRecordBatch();
                Assert.NotNull(batch);
                Assert.Equal(rows[t], batch.Length);
                for (var r = 0; r < rows[t]; r++)
                {
                    Assert.Equal((ulong)(t * 1000 + r), ((UInt64Array)batch.Col("_lsn")).Values[r]);
                    Assert.Equal((t * 100 + r).ToString(CultureInfo.InvariantCulture), batch.Render("id", r));
                    Assert.Equal(r == 1 ? null : $"item {t * 100 + r}", batch.Render("name", r));
                    Assert.Equal("{x,NULL,\"y z\"}", batch.Render("tags", r));
                    Assert.Equal(r == 2 ? null : "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", batch.Render("ref", r));
                }
            }

            Assert.Null(reader.ReadNextRecordBatch());
        }

        // apache-arrow (JS): the same rows and values as Apache.Arrow reads.
        var path = Path.Combine(_dir, "concatenated.arrows");
        File.WriteAllBytes(path, stream);
        var payload = ArrowPayload.Read(stream);
        Assert.Equal(rows.Length, payload.Batches.Count);
        var dump = Assert.Single(ArrowJs.Dump([path]));
        Assert.Equal(rows.Sum(), (int)dump["rows"]!);
        ArrowJs.AssertEqual(dump, payload, "schema + 4 batch messages + end of stream");
    }

    [Fact]
    public void WriteStream_is_the_schema_message_one_batch_message_and_the_end_of_stream()
    {
        using var builder = new ChangeBatchBuilder(Items);
        Transaction(builder, 1, 4);
        var batchOnly = new ArrayBufferWriter<byte>();
        var batchBytes = builder.WriteRecordBatch(batchOnly);
        Transaction(builder, 1, 4);
        var whole = new ArrayBufferWriter<byte>();
        var total = builder.WriteStream(whole);
        Assert.Equal(whole.WrittenCount, total);
        Assert.Equal(builder.SchemaMessage.Length + batchBytes + 8, total);
        Assert.True(whole.WrittenSpan.SequenceEqual([.. builder.SchemaMessage.Span, .. batchOnly.WrittenSpan, .. ArrowMessageWriter.EndOfStream]));
        AssertStreamLayout(whole.WrittenSpan.ToArray(), builder.SchemaMessage.Span);
    }

    [Fact]
    public void The_end_of_stream_marker_is_the_continuation_marker_and_a_zero_length()
    {
        Assert.Equal(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0 }, ArrowMessageWriter.EndOfStream.ToArray());
    }

    [Fact]
    public void The_schema_message_is_encoded_once_and_decodes_to_the_builders_schema()
    {
        using var builder = new ChangeBatchBuilder(Items);
        var message = builder.SchemaMessage;
        Transaction(builder, 1, 2);
        builder.WriteStream(new ArrayBufferWriter<byte>());
        Assert.True(builder.SchemaMessage.Equals(message)); // the same memory: encoded once
        Assert.Equal(0xFFFFFFFFu, BinaryPrimitives.ReadUInt32LittleEndian(message.Span));
        Assert.Equal(message.Length - 8, BinaryPrimitives.ReadInt32LittleEndian(message.Span[4..]));
        Assert.Equal(0, message.Length % 8);
        var schema = ArrowSerializationHelpers.DeserializeSchema(message);
        Assert.Equal(SchemaFingerprint.CanonicalText(builder.Schema), SchemaFingerprint.CanonicalText(schema));
    }

    /// <summary>
    /// numeric(p,s) with 38 &lt; p ≤ 76 is decimal256: the values our parser writes equal what Apache.Arrow's own string path
    /// (<c>Decimal256Array.Builder.Append(string)</c>) makes of PostgreSQL's text, up to precision 76, and read back through
    /// the library's <c>GetString</c>; decimal128 also matches its <c>SqlDecimal</c> path.
    /// </summary>
    [Theory]
    [InlineData(76, 0, new[] { "9999999999999999999999999999999999999999999999999999999999999999999999999999", "-9999999999999999999999999999999999999999999999999999999999999999999999999999", "0", "1", "-1" })]
    [InlineData(76, 38, new[] { "99999999999999999999999999999999999999.99999999999999999999999999999999999999", "-0.00000000000000000000000000000000000001", "0.00000000000000000000000000000000000000" })]
    [InlineData(76, 76, new[] { "0.9999999999999999999999999999999999999999999999999999999999999999999999999999", "-0.0000000000000000000000000000000000000000000000000000000000000000000000000001" })]
    [InlineData(39, 5, new[] { "1234567890123456789012345678901234.56789", "-0.00001" })]
    [InlineData(38, 10, new[] { "1234567890123456789012345678.0123456789", "-9999999999999999999999999999.9999999999", "0.0000000000" })]
    [InlineData(12, 2, new[] { "-12345.67", "0.05", "9999999999.99" })]
    public void Decimals_equal_the_librarys_string_path_and_read_back_exactly(int precision, int scale, string[] values)
    {
        var relation = new PgRelation(1, "public", "t", 'd', [new PgColumn("v", PgOid.Numeric, ((precision << 16) | scale) + 4, false)]);
        using var builder = new ChangeBatchBuilder(relation);
        foreach (var value in values)
        {
            Row(builder, ChangeOp.Insert, 1, value);
        }

        var batch = Assert.Single(PgConformanceTests.WriteAndRead(builder).Batches);
        var column = batch.Col("v");
        for (var i = 0; i < values.Length; i++)
        {
            Assert.Equal(values[i], batch.Render("v", i));
        }

        if (precision > 38)
        {
            var type = Assert.IsType<Decimal256Type>(batch.Schema.Field("v").DataType);
            Assert.Equal((precision, scale), (type.Precision, type.Scale));
            var library = new Decimal256Array.Builder(type).AppendRange(values).Build();
            var ours = (Decimal256Array)column;
            for (var i = 0; i < values.Length; i++)
            {
                Assert.True(library.GetBytes(i).SequenceEqual(ours.GetBytes(i)), $"{values[i]}: our bytes differ from Apache.Arrow's");
                Assert.Equal(values[i], ours.GetString(i));
            }
        }
        else
        {
            var type = Assert.IsType<Decimal128Type>(batch.Schema.Field("v").DataType);
            var fromStrings = new Decimal128Array.Builder(type).AppendRange(values).Build();
            var fromSql = new Decimal128Array.Builder(type);
            foreach (var value in values)
            {
                fromSql.Append(SqlDecimal.Parse(value));
            }

            var sql = fromSql.Build();
            var ours = (Decimal128Array)column;
            for (var i = 0; i < values.Length; i++)
            {
                Assert.True(fromStrings.GetBytes(i).SequenceEqual(ours.GetBytes(i)), $"{values[i]}: our bytes differ from Apache.Arrow's string path");
                Assert.True(sql.GetBytes(i).SequenceEqual(ours.GetBytes(i)), $"{values[i]}: our bytes differ from Apache.Arrow's SqlDecimal path");
                Assert.Equal(values[i], ours.GetString(i));
            }
        }
    }

    /// <summary>
    /// Checks a payload's message structure without decoding flatbuffers ourselves: it is the schema message, one record
    /// batch message and the end-of-stream marker, every message 8-byte aligned and framed with the continuation marker;
    /// Apache.Arrow reads the batch message on its own (after the schema) and the whole stream as one schema and one batch.
    /// </summary>
    internal static void AssertStreamLayout(byte[] stream, ReadOnlySpan<byte> schemaMessage)
    {
        Assert.True(stream.AsSpan().StartsWith(schemaMessage), "the stream starts with the schema message");
        Assert.True(stream.AsSpan().EndsWith(ArrowMessageWriter.EndOfStream), "the stream ends with the end-of-stream marker");
        Assert.Equal(0, schemaMessage.Length % 8);
        var batchMessage = stream.AsMemory(schemaMessage.Length, stream.Length - schemaMessage.Length - 8);
        Assert.Equal(0, batchMessage.Length % 8);
        Assert.Equal(0xFFFFFFFFu, BinaryPrimitives.ReadUInt32LittleEndian(batchMessage.Span));
        var metadata = BinaryPrimitives.ReadInt32LittleEndian(batchMessage.Span[4..]);
        Assert.Equal(0, metadata % 8);
        Assert.True(8 + metadata <= batchMessage.Length);

        var schema = ArrowSerializationHelpers.DeserializeSchema(schemaMessage.ToArray());
        Assert.NotNull(ArrowSerializationHelpers.DeserializeRecordBatch(schema, batchMessage));
        using var reader = new ArrowStreamReader(stream);
        Assert.NotNull(reader.ReadNextRecordBatch());
        Assert.Null(reader.ReadNextRecordBatch());
    }
}
