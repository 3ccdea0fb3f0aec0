using System.Buffers;
using System.Text;
using Apache.Arrow;
using Apache.Arrow.Types;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;
using WalBridge.Tests;

namespace WalBridge.Serialization.Tests.Postgres;

/// <summary>Values that are legal in PostgreSQL and must survive builder → IPC stream → reader byte for byte.</summary>
public class UnusualValueTests
{
    private static readonly PgRelation Table = new(1, "public", "t", 'd',
    [
        new PgColumn("id", PgOid.Int4, -1, true),
        new PgColumn("body", PgOid.Text, -1, false),
        new PgColumn("blob", PgOid.Bytea, -1, false),
        new PgColumn("tags", PgOid.TextArray, -1, false),
    ]);

    private static RecordBatch RoundTrip(ChangeBatchBuilder builder)
    {
        var output = new ArrayBufferWriter<byte>();
        builder.WriteStream(output);
        return Assert.Single(ArrowPayload.Read(output.WrittenMemory.ToArray()).Batches);
    }

    [Theory]
    [InlineData(TupleFormat.Text)]
    [InlineData(TupleFormat.Binary)]
    public void Characters_outside_the_BMP_and_bytea_with_zero_bytes_round_trip(TupleFormat format)
    {
        const string text = "𝄞 music, 😀 emoji, 𠜎 CJK ext B, \U0010FFFD last plane, é, ✓";
        byte[] blob = [0, 0, 1, 0, 255, 0, 0];
        using var b = new ChangeBatchBuilder(Table);
        b.BeginRow(ChangeOp.Insert, 1);
        b.AppendValue("1"u8, TupleFormat.Text);
        b.AppendValue(Encoding.UTF8.GetBytes(text), format);
        b.AppendValue(format == TupleFormat.Text ? Encoding.ASCII.GetBytes("\\x" + Convert.ToHexStringLower(blob)) : blob, format);
        b.AppendValue(Encoding.UTF8.GetBytes("{\"😀 a\",𝄞,NULL}"), TupleFormat.Text);
        b.EndRow();
        var batch = RoundTrip(b);
        Assert.Equal(text, ((StringArray)batch.Column("body")).GetString(0));
        Assert.True(Encoding.UTF8.GetBytes(text).AsSpan().SequenceEqual(((StringArray)batch.Column("body")).GetBytes(0)));
        Assert.Equal(blob, ((BinaryArray)batch.Column("blob")).GetBytes(0).ToArray());
        Assert.Equal("\\x00000100ff0000", PgTextRenderer.RenderCell(batch, batch.Schema.GetFieldIndex("blob"), 0));
        Assert.Equal(new object?[] { "😀 a", "𝄞", null }, (object?[])batch.Column("tags").Value(0)!);
        Assert.Equal("{\"😀 a\",𝄞,NULL}", PgTextRenderer.RenderCell(batch, batch.Schema.GetFieldIndex("tags"), 0));
    }

    [Fact]
    public void A_100_MB_text_value_round_trips_exactly()
    {
        // 100 MiB of UTF-8 mixing 1-, 2-, 3- and 4-byte sequences, no NUL (PostgreSQL text cannot hold \0).
        var unit = Encoding.UTF8.GetBytes("abc é ✓ 😀 xyz\n");
        var value = new byte[100 * 1024 * 1024 / unit.Length * unit.Length];
        for (var i = 0; i < value.Length; i += unit.Length)
        {
            unit.CopyTo(value, i);
        }

        using var b = new ChangeBatchBuilder(Table);
        b.BeginRow(ChangeOp.Insert, 1);
        b.AppendValue("1"u8, TupleFormat.Text);
        b.AppendValue(value, TupleFormat.Text);
        b.AppendValue(value.AsSpan(0, 1000), TupleFormat.Binary);
        b.AppendNull();
        b.EndRow();
        Assert.True(b.EstimatedSize > value.Length);
        var batch = RoundTrip(b);
        var body = (StringArray)batch.Column("body");
        Assert.Equal(value.Length, body.GetBytes(0).Length);
        Assert.True(body.GetBytes(0).SequenceEqual(value));
        Assert.True(((BinaryArray)batch.Column("blob")).GetBytes(0).SequenceEqual(value.AsSpan(0, 1000)));
        Assert.True(batch.Column("tags").IsNull(0));
    }
}
