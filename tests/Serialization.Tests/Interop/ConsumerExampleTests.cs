using System.Buffers;
using Apache.Arrow;
using Apache.Arrow.Ipc;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Serialization.Tests.Interop;

/// <summary>
/// A payload of the builder read with plain Apache.Arrow, typed arrays and <c>_special</c> by hand (docs/format.md; the .NET
/// consumer recipe itself is compiled from the document and run by tests/Integration/ConsumerRecipeTests).
/// </summary>
public class ConsumerExampleTests
{
    [Fact]
    public void The_documented_Apache_Arrow_example_reads_a_payload()
    {
        var relation = new PgRelation(16384, "public", "orders", 'd',
        [
            new PgColumn("id", PgOid.Int8, -1, true),
            new PgColumn("ts", PgOid.TimestampTz, -1, false),
            new PgColumn("ref", PgOid.Uuid, -1, false),
        ]);
        using var builder = new ChangeBatchBuilder(relation);
        builder.BeginRow(ChangeOp.Insert, 1);
        builder.AppendValue("7"u8, TupleFormat.Text);
        builder.AppendValue("2024-01-02 03:04:05.5+00"u8, TupleFormat.Text);
        builder.AppendValue("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"u8, TupleFormat.Text);
        builder.EndRow();
        builder.BeginRow(ChangeOp.Update, 2);
        builder.AppendValue("8"u8, TupleFormat.Text);
        builder.AppendValue("infinity"u8, TupleFormat.Text);
        builder.AppendNull();
        builder.EndRow();
        var output = new ArrayBufferWriter<byte>();
        builder.WriteStream(output);
        ReadOnlyMemory<byte> value = output.WrittenMemory.ToArray();
        var seen = new List<string>();

        // ---- reading it (record.Message.Value → value; results collected in `seen`)
        var registry = new ExtensionTypeRegistry();
        registry.Register(GuidExtensionDefinition.Instance);
        var context = new ArrowContext(extensionRegistry: registry);

        using var reader = new ArrowStreamReader(context, value);
        var table = reader.Schema.Metadata["pg.table"];
        while (reader.ReadNextRecordBatch() is { } batch)
        {
            var op = (StringArray)batch.Column("_op");
            var id = (Int64Array)batch.Column("id");
            var ts = (TimestampArray)batch.Column("ts");
            var reference = (GuidArray)batch.Column("ref");
            var special = (MapArray)batch.Column(batch.ColumnCount - 1);
            var keys = (StringArray)special.Keys;
            var texts = (StringArray)special.Values;
            for (var row = 0; row < batch.Length; row++)
            {
                var change = op.GetString(row);
                var key = id.GetValue(row);
                var micros = ts.GetValue(row);
                var guid = reference.GetGuid(row);
                string? tsText = null;
                if (!special.IsNull(row))
                {
                    for (var i = special.ValueOffsets[row]; i < special.ValueOffsets[row + 1]; i++)
                    {
                        if (keys.GetString(i) == "ts")
                        {
                            tsText = texts.GetString(i);
                        }
                    }
                }

                seen.Add($"{table} {change} {key} {micros} {guid} {tsText} {PgTextRenderer.RenderCell(batch, batch.Schema.GetFieldIndex("ts"), row)}");
            }
        }

        // ---- what it found
        Assert.Equal(
        [
            "orders c 7 1704164645500000 a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11  2024-01-02 03:04:05.5+00",
            "orders u 8   infinity infinity",
        ], seen);
    }
}
