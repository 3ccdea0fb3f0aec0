using System.Buffers;
using System.Text;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Serialization.Tests.Interop;

/// <summary>
/// Reading a record value that is not an Arrow IPC stream fails with <see cref="ArrowPayloadException"/> (which verify and
/// tail report with the record's topic, partition and offset), never with whatever Apache.Arrow's reader happened to throw.
/// </summary>
public class ArrowPayloadTests
{
    private static byte[] ValidStream()
    {
        var relation = new PgRelation(1, "public", "t", 'd', [new PgColumn("id", PgOid.Int4, -1, true), new PgColumn("v", PgOid.Text, -1, false)]);
        using var builder = new ChangeBatchBuilder(relation);
        for (var i = 0; i < 3; i++)
        {
            builder.BeginRow(ChangeOp.Insert, 1);
            builder.AppendValue("1"u8, TupleFormat.Text);
            builder.AppendValue("some text"u8, TupleFormat.Text);
            builder.EndRow();
        }

        var output = new ArrayBufferWriter<byte>();
        builder.WriteStream(output);
        return output.WrittenSpan.ToArray();
    }

    public static TheoryData<string, byte[]> NotStreams()
    {
        var valid = ValidStream();
        var garbage = new byte[4096];
        new Random(5).NextBytes(garbage);
        var data = new TheoryData<string, byte[]>
        {
            { "empty", [] },
            { "JSON text", Encoding.UTF8.GetBytes("{\"op\":\"c\",\"id\":1}") },
            { "random bytes", garbage },
            { "random bytes ending like a stream", [.. garbage, .. ArrowMessageWriter.EndOfStream] },
            { "only the end-of-stream marker", ArrowMessageWriter.EndOfStream.ToArray() },
            { "truncated after the schema", valid[..(valid.Length / 2)] },
            { "without the end-of-stream marker", valid[..^8] },
            { "a record batch cut short", [.. valid[..(valid.Length - 24)], .. ArrowMessageWriter.EndOfStream] },
        };
        return data;
    }

    [Theory]
    [MemberData(nameof(NotStreams))]
    public void A_value_that_is_not_an_Arrow_stream_is_an_ArrowPayloadException(string what, byte[] value)
    {
        var e = Assert.Throws<ArrowPayloadException>(() => ArrowPayload.Read(value));
        Assert.StartsWith("not ", e.Message, StringComparison.Ordinal);
        Assert.False(string.IsNullOrWhiteSpace(what));
    }

    [Fact]
    public void A_valid_stream_reads()
    {
        var payload = ArrowPayload.Read(ValidStream());
        Assert.Equal(3, payload.RowCount);
        Assert.Single(payload.Batches);
    }
}
