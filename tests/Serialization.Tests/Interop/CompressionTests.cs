using System.Buffers;
using System.Globalization;
using System.Text;
using Apache.Arrow;
using Apache.Arrow.Ipc;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;
using WalBridge.Tests;

namespace WalBridge.Serialization.Tests.Interop;

/// <summary>
/// Arrow IPC body compression (<c>arrow.compression</c>): what the builder writes with LZ4_FRAME or ZSTD is the same data
/// for Apache.Arrow (through <see cref="ArrowPayload"/>, as every reader of ours) and for apache-arrow JS (with the
/// codecs tools/arrow-js registers), its size bound still holds, and compressed and uncompressed batches share a stream.
/// </summary>
public sealed class CompressionTests : IDisposable
{
    private static readonly PgRelation Orders = new(16400, "public", "orders", 'd',
    [
        new PgColumn("id", PgOid.Int8, -1, true),
        new PgColumn("note", PgOid.Text, -1, false),
        new PgColumn("amount", PgOid.Numeric, ((12 << 16) | 2) + 4, false),
        new PgColumn("at", PgOid.TimestampTz, -1, false),
        new PgColumn("paid", PgOid.Bool, -1, false),
    ]);

    private readonly string _dir = Directory.CreateTempSubdirectory("walbridge-compression-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static void Rows(ChangeBatchBuilder b, int first, int count, Func<int, string>? note = null)
    {
        for (var i = first; i < first + count; i++)
        {
            b.SetTransaction((uint)(1000 + (i / 10)), (ulong)(5000 + (i / 10)), 1_700_000_000_000_000 + i);
            b.BeginRow(i % 7 == 3 ? ChangeOp.Delete : ChangeOp.Insert, (ulong)(100 + i));
            b.AppendValue(Encoding.UTF8.GetBytes(i.ToString(CultureInfo.InvariantCulture)), TupleFormat.Text);
            if (i % 5 == 4)
            {
                b.AppendNull();
            }
            else
            {
                b.AppendValue(Encoding.UTF8.GetBytes(note?.Invoke(i) ?? $"customer-{i % 50} ordered item {i % 13}"), TupleFormat.Text);
            }

            b.AppendValue(Encoding.UTF8.GetBytes($"{i}.{i % 100:D2}"), TupleFormat.Text);
            b.AppendValue("2024-01-02 03:04:05.123456+00"u8, TupleFormat.Text);
            b.AppendValue(i % 2 == 0 ? "t"u8 : "f"u8, TupleFormat.Text);
            b.EndRow();
        }
    }

    private static byte[] Stream(ArrowCompression compression, int rows, Func<int, string>? note = null)
    {
        using var b = new ChangeBatchBuilder(Orders, compression: compression);
        Rows(b, 0, rows, note);
        var output = new ArrayBufferWriter<byte>();
        b.WriteStream(output);
        return output.WrittenSpan.ToArray();
    }

    private static void AssertSameRows(ArrowPayload expected, ArrowPayload actual)
    {
        Assert.Equal(SchemaFingerprint.CanonicalText(expected.Schema), SchemaFingerprint.CanonicalText(actual.Schema));
        Assert.Equal(expected.RowCount, actual.RowCount);
        var e = Assert.Single(expected.Batches);
        var a = Assert.Single(actual.Batches);
        for (var r = 0; r < e.Length; r++)
        {
            foreach (var column in Orders.Columns)
            {
                Assert.Equal(e.Render(column.Name, r), a.Render(column.Name, r));
            }

            foreach (var system in new[] { ChangeBatchBuilder.LsnColumn, ChangeBatchBuilder.CommitLsnColumn })
            {
                Assert.Equal(((UInt64Array)e.Col(system)).Values[r], ((UInt64Array)a.Col(system)).Values[r]);
            }

            Assert.Equal(((StringArray)e.Col(ChangeBatchBuilder.OpColumn)).GetString(r), ((StringArray)a.Col(ChangeBatchBuilder.OpColumn)).GetString(r));
            Assert.Equal(((UInt32Array)e.Col(ChangeBatchBuilder.XidColumn)).Values[r], ((UInt32Array)a.Col(ChangeBatchBuilder.XidColumn)).Values[r]);
            Assert.Equal(((TimestampArray)e.Col(ChangeBatchBuilder.CommitTimestampColumn)).GetTimestamp(r), ((TimestampArray)a.Col(ChangeBatchBuilder.CommitTimestampColumn)).GetTimestamp(r));
        }
    }

    [Theory]
    [InlineData(ArrowCompression.Lz4Frame)]
    [InlineData(ArrowCompression.Zstd)]
    public void A_compressed_stream_holds_the_same_rows_for_our_reader_and_is_smaller(ArrowCompression compression)
    {
        var plain = Stream(ArrowCompression.None, 2000);
        var compressed = Stream(compression, 2000);
        Assert.True(compressed.Length < plain.Length / 2, $"{compression}: {compressed.Length} bytes, uncompressed {plain.Length}");
        AssertSameRows(ArrowPayload.Read(plain), ArrowPayload.Read(compressed));

        // The schema message is not compressed: the same bytes open both streams.
        using var builder = new ChangeBatchBuilder(Orders, compression: compression);
        Assert.True(compressed.AsSpan().StartsWith(builder.SchemaMessage.Span));
        Assert.Equal(compression, builder.Compression);
    }

    [Theory]
    [InlineData(ArrowCompression.Lz4Frame)]
    [InlineData(ArrowCompression.Zstd)]
    public void Apache_arrow_js_reads_compressed_bodies_with_the_codecs_the_dump_tool_registers(ArrowCompression compression)
    {
        var stream = Stream(compression, 300);
        var path = Path.Combine(_dir, $"{compression.Name()}.arrows");
        File.WriteAllBytes(path, stream);
        var dump = Assert.Single(ArrowJs.Dump([path]));
        ArrowJs.AssertEqual(dump, ArrowPayload.Read(stream), $"{compression.Name()} stream");
    }

    [Theory]
    [InlineData(ArrowCompression.Lz4Frame)]
    [InlineData(ArrowCompression.Zstd)]
    public void The_size_bound_holds_for_incompressible_values(ArrowCompression compression)
    {
        var random = new Random(11);
        string Noise(int i)
        {
            var bytes = new byte[200 + (i % 300)];
            random.NextBytes(bytes);
            return Convert.ToBase64String(bytes);
        }

        foreach (var rows in new[] { 1, 7, 500 })
        {
            using var b = new ChangeBatchBuilder(Orders, compression: compression);
            Rows(b, 0, rows, Noise);
            var bound = b.EstimatedSize;
            var output = new ArrayBufferWriter<byte>();
            var written = b.WriteStream(output);
            Assert.True(written <= bound, $"{compression}, {rows} rows: {written} bytes written, bound {bound}");
            Assert.Equal(rows, ArrowPayload.Read(output.WrittenMemory).RowCount);
        }
    }

    /// <summary>Each batch says how its body is compressed: a record may hold batches of differently configured writers.</summary>
    [Fact]
    public void Compressed_and_uncompressed_batches_of_one_schema_are_one_stream()
    {
        using var plain = new ChangeBatchBuilder(Orders);
        using var lz4 = new ChangeBatchBuilder(Orders, compression: ArrowCompression.Lz4Frame);
        using var zstd = new ChangeBatchBuilder(Orders, compression: ArrowCompression.Zstd);
        Assert.True(plain.SchemaMessage.Span.SequenceEqual(zstd.SchemaMessage.Span));
        var output = new ArrayBufferWriter<byte>();
        output.Write(plain.SchemaMessage.Span);
        var first = 0;
        foreach (var (builder, rows) in new[] { (plain, 3), (lz4, 40), (zstd, 25), (plain, 1) })
        {
            Rows(builder, first, rows);
            builder.WriteRecordBatch(output);
            first += rows;
        }

        output.Write(ArrowMessageWriter.EndOfStream);
        var stream = output.WrittenSpan.ToArray();
        var payload = ArrowPayload.Read(stream);
        Assert.Equal([3, 40, 25, 1], payload.Batches.Select(b => b.Length));
        var row = 0;
        foreach (var batch in payload.Batches)
        {
            for (var r = 0; r < batch.Length; r++, row++)
            {
                Assert.Equal(row.ToString(CultureInfo.InvariantCulture), batch.Render("id", r));
                Assert.Equal((ulong)(100 + row), ((UInt64Array)batch.Col(ChangeBatchBuilder.LsnColumn)).Values[r]);
            }
        }

        var path = Path.Combine(_dir, "mixed.arrows");
        File.WriteAllBytes(path, stream);
        ArrowJs.AssertEqual(Assert.Single(ArrowJs.Dump([path])), payload, "mixed stream");
    }

    /// <summary>A reader without the codecs fails on a compressed batch: consumers must register LZ4_FRAME/ZSTD (docs/format.md).</summary>
    [Fact]
    public void A_reader_without_codecs_rejects_a_compressed_batch()
    {
        var stream = Stream(ArrowCompression.Zstd, 10);
        using var reader = new ArrowStreamReader(stream);
        Assert.ThrowsAny<Exception>(() => reader.ReadNextRecordBatch());
    }

    [Theory]
    [InlineData("none", ArrowCompression.None)]
    [InlineData("lz4_frame", ArrowCompression.Lz4Frame)]
    [InlineData("zstd", ArrowCompression.Zstd)]
    public void Names_round_trip(string name, ArrowCompression compression)
    {
        Assert.Equal(compression, ArrowCompressions.Parse(name));
        Assert.Equal(name, compression.Name());
    }

    [Theory]
    [InlineData("lz4")]
    [InlineData("ZSTD")]
    [InlineData("")]
    public void Other_names_are_not_compressions(string name) => Assert.Null(ArrowCompressions.Parse(name));
}
