using System.Buffers;
using Apache.Arrow;
using Apache.Arrow.Types;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;
using WalBridge.Tests;

namespace WalBridge.Serialization.Tests.Postgres;

/// <summary>
/// NaN has many bit patterns. PostgreSQL's is the quiet NaN with the sign bit clear (float8 0x7FF8000000000000,
/// float4 0x7FC00000: what float8in/float4in store and float8send/float4send send, and so what wal2arrow copies from
/// the Datum). .NET's <see cref="double.NaN"/> has the sign bit set. A NaN parsed from pgoutput's text must get
/// PostgreSQL's pattern so that the text path, the binary path and wal2arrow write byte-identical streams.
/// </summary>
public class FloatNaNTests
{
    private static readonly PgRelation Table = new(1, "public", "t", 'd',
    [
        new PgColumn("r", PgOid.Float4, -1, false),
        new PgColumn("d", PgOid.Float8, -1, false),
        new PgColumn("rs", 1021, -1, false),
        new PgColumn("ds", PgOid.Float8Array, -1, false),
    ]);

    private static byte[] Stream(TupleFormat format)
    {
        using var b = new ChangeBatchBuilder(Table);
        b.BeginRow(ChangeOp.Insert, 7);
        if (format == TupleFormat.Text)
        {
            b.AppendValue("NaN"u8, format);
            b.AppendValue("NaN"u8, format);
            b.AppendValue("{NaN,1.5}"u8, format);
            b.AppendValue("{NaN,-Infinity}"u8, format);
        }
        else
        {
            // PostgreSQL 15's send formats (see pg15_text_values.tsv).
            b.AppendValue(Convert.FromHexString("7fc00000"), format);
            b.AppendValue(Convert.FromHexString("7ff8000000000000"), format);
            b.AppendValue(Convert.FromHexString("0000000100000000000002bc0000000200000001000000047fc00000000000043fc00000"), format);
            b.AppendValue(Convert.FromHexString("0000000100000000000002bd0000000200000001000000087ff800000000000000000008fff0000000000000"), format);
        }

        b.EndRow();
        var output = new ArrayBufferWriter<byte>();
        b.WriteStream(output);
        return output.WrittenSpan.ToArray();
    }

    [Fact]
    public void PostgreSQL_NaN_constants_have_the_sign_bit_clear()
    {
        Assert.Equal(0x7FF8_0000_0000_0000, BitConverter.DoubleToInt64Bits(PgValueParser.PgFloat8NaN));
        Assert.Equal(0x7FC0_0000, BitConverter.SingleToInt32Bits(PgValueParser.PgFloat4NaN));
        Assert.NotEqual(0x7FF8_0000_0000_0000, BitConverter.DoubleToInt64Bits(double.NaN)); // why this matters
    }

    [Fact]
    public void A_NaN_parsed_from_text_has_PostgreSQLs_bit_pattern()
    {
        var batch = Assert.Single(ArrowPayload.Read(Stream(TupleFormat.Text)).Batches);
        Assert.Equal(0x7FC0_0000, BitConverter.SingleToInt32Bits(((FloatArray)batch.Column("r")).Values[0]));
        Assert.Equal(0x7FF8_0000_0000_0000, BitConverter.DoubleToInt64Bits(((DoubleArray)batch.Column("d")).Values[0]));
        var rs = (ListArray)batch.Column("rs");
        Assert.Equal(0x7FC0_0000, BitConverter.SingleToInt32Bits(((FloatArray)rs.Values).Values[rs.Range(0).Start]));
        var ds = (ListArray)batch.Column("ds");
        Assert.Equal(0x7FF8_0000_0000_0000, BitConverter.DoubleToInt64Bits(((DoubleArray)ds.Values).Values[ds.Range(0).Start]));
        Assert.Equal("NaN", PgTextRenderer.RenderCell(batch, batch.Schema.IndexOf("d"), 0));
        Assert.Equal("{NaN,1.5}", PgTextRenderer.RenderCell(batch, batch.Schema.IndexOf("rs"), 0));
    }

    [Fact]
    public void The_text_and_binary_paths_write_byte_identical_streams_for_NaN()
    {
        var text = Stream(TupleFormat.Text);
        var binary = Stream(TupleFormat.Binary);
        Assert.Equal(Convert.ToHexString(binary), Convert.ToHexString(text));
    }

    [Fact]
    public void The_binary_path_keeps_the_bits_PostgreSQL_sent()
    {
        // A NaN computed inside PostgreSQL (e.g. 'inf' - 'inf' on x86) may carry the sign bit; binary values are copied as sent.
        using var b = new ChangeBatchBuilder(Table);
        b.BeginRow(ChangeOp.Insert, 1);
        b.AppendValue(Convert.FromHexString("ffc00000"), TupleFormat.Binary);
        b.AppendValue(Convert.FromHexString("fff8000000000000"), TupleFormat.Binary);
        b.AppendNull();
        b.AppendNull();
        b.EndRow();
        var output = new ArrayBufferWriter<byte>();
        b.WriteStream(output);
        var batch = Assert.Single(ArrowPayload.Read(output.WrittenMemory.ToArray()).Batches);
        Assert.Equal(unchecked((int)0xFFC0_0000), BitConverter.SingleToInt32Bits(((FloatArray)batch.Column("r")).Values[0]));
        Assert.Equal(unchecked((long)0xFFF8_0000_0000_0000), BitConverter.DoubleToInt64Bits(((DoubleArray)batch.Column("d")).Values[0]));
    }
}
