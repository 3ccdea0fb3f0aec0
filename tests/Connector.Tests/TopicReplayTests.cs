using System.Buffers;
using System.Text;
using Apache.Arrow;
using Apache.Arrow.Types;
using WalBridge.Connector.Verification;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Connector.Tests;

/// <summary>
/// verify (and the demo) replay table topics; a record value that is not a valid Arrow IPC stream, or not WalBridge's payload
/// layout, is reported as a violation naming its topic, partition and offset, and the replay goes on.
/// </summary>
public class TopicReplayTests
{
    private static readonly PgRelation Relation = new(1, "public", "t", 'd', [new PgColumn("id", PgOid.Int4, -1, true), new PgColumn("v", PgOid.Text, -1, false)]);

    private static byte[] Payload(params (ChangeOp Op, string Id, string? V)[] rows)
    {
        using var builder = new ChangeBatchBuilder(Relation);
        foreach (var (op, id, v) in rows)
        {
            builder.BeginRow(op, 1);
            builder.AppendValue(Encoding.UTF8.GetBytes(id), TupleFormat.Text);
            if (v is null)
            {
                builder.AppendNull();
            }
            else
            {
                builder.AppendValue(Encoding.UTF8.GetBytes(v), TupleFormat.Text);
            }

            builder.EndRow();
        }
        var output = new ArrayBufferWriter<byte>();
        builder.WriteStream(output);
        return output.WrittenSpan.ToArray();
    }

    [Fact]
    public void Records_are_applied_in_order()
    {
        var table = new ReplayedTable { Topic = "shop.public.t" };
        TopicReplay.ApplyRecord(table, "shop.public.t[0]@0", "changes", Payload((ChangeOp.Insert, "1", "a"), (ChangeOp.Insert, "2", null)));
        TopicReplay.ApplyRecord(table, "shop.public.t[0]@1", "changes", Payload((ChangeOp.Update, "1", "b"), (ChangeOp.Delete, "2", null)));
        Assert.Empty(table.Violations);
        Assert.Equal(["id", "v"], table.Columns);
        Assert.Equal(["id"], table.KeyColumns);
        var row = Assert.Single(Assert.Single(table.Rows).Value);
        Assert.Equal("1", row["id"]);
        Assert.Equal("b", row["v"]);
        Assert.Equal(4, table.Changes);
    }

    [Theory]
    [InlineData("JSON text")]
    [InlineData("empty")]
    [InlineData("truncated")]
    public void A_value_that_is_not_an_Arrow_stream_is_a_violation_naming_the_record(string what)
    {
        var valid = Payload((ChangeOp.Insert, "1", "a"));
        var value = what switch
        {
            "JSON text" => Encoding.UTF8.GetBytes("{\"id\": 1}"),
            "empty" => [],
            _ => valid[..(valid.Length / 2)],
        };
        var table = new ReplayedTable { Topic = "shop.public.t" };
        TopicReplay.ApplyRecord(table, "shop.public.t[0]@0", "changes", valid);
        TopicReplay.ApplyRecord(table, "shop.public.t[0]@17", "changes", value);
        var violation = Assert.Single(table.Violations);
        Assert.StartsWith("record shop.public.t[0]@17 is not ", violation, StringComparison.Ordinal);
        Assert.Single(table.Rows); // what was replayed before stays
    }

    [Fact]
    public void An_Arrow_stream_of_another_layout_is_a_violation_naming_the_record()
    {
        var schema = new Schema([new Field("id", Int32Type.Default, true, [new("pg.typoid", "23")])], [new("pg.table", "t")]);
        using var writer = new ArrowMessageWriter(schema);
        var output = new ArrayBufferWriter<byte>();
        writer.WriteStream(output, new RecordBatch(schema, [new Int32Array.Builder().Append(1).Build()], 1));
        var table = new ReplayedTable { Topic = "shop.public.t" };
        TopicReplay.ApplyRecord(table, "shop.public.t[0]@3", "changes", output.WrittenSpan.ToArray());
        var violation = Assert.Single(table.Violations);
        Assert.StartsWith("record shop.public.t[0]@3 does not have the WalBridge payload layout", violation, StringComparison.Ordinal);
    }
}
