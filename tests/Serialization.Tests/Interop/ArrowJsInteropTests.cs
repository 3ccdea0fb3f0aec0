using System.Buffers;
using System.Text;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;
using WalBridge.Serialization.Tests.Postgres;

namespace WalBridge.Serialization.Tests.Interop;

/// <summary>
/// Reads what we write (with Apache.Arrow's writer) with a second, independent implementation: npm apache-arrow installed
/// in tools/arrow-js by scripts/setup.sh (scripts/setup-js.sh), compared value by value with what Apache.Arrow (C#) reads.
/// Always runs; fails when apache-arrow is missing.
/// </summary>
public sealed class ArrowJsInteropTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("walbridge-arrowjs-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    internal string Write(string name, ReadOnlySpan<byte> bytes)
    {
        var path = Path.Combine(_dir, name + ".arrows");
        File.WriteAllBytes(path, bytes.ToArray());
        return path;
    }

    [Fact]
    public void Apache_arrow_js_reads_the_gold_files_as_Apache_Arrow_rewrites_them_to_equal_values()
    {
        // A guard for library upgrades: what the pinned Apache.Arrow reads from the gold streams, written again by
        // ArrowMessageWriter (Apache.Arrow's writer, one batch message after another), reads the same in apache-arrow JS.
        var names = ((IEnumerable<object[]>)GoldFileTests.Files).Select(row => (string)row[0]).ToList();
        var streams = new List<ArrowPayload>();
        var files = new List<string>();
        foreach (var name in names)
        {
            var original = ArrowPayload.Read(GoldFileTests.Stream(name));
            using var writer = new ArrowMessageWriter(original.Schema);
            var output = new ArrayBufferWriter<byte>();
            output.Write(writer.SchemaMessage.Span);
            foreach (var batch in original.Batches)
            {
                writer.WriteRecordBatch(output, batch);
            }

            output.Write(ArrowMessageWriter.EndOfStream);
            files.Add(Write(name, output.WrittenSpan));
            streams.Add(ArrowPayload.Read(output.WrittenMemory.ToArray()));
        }

        var dumps = ArrowJs.Dump(files);
        for (var i = 0; i < names.Count; i++)
        {
            ArrowJs.AssertEqual(dumps[i], streams[i], names[i]);
        }
    }

    [Fact]
    public void Apache_arrow_js_reads_fixed_width_list_elements_after_the_first_row()
    {
        // Regression for dump.js: apache-arrow slices a list's child data (offset advanced AND buffers sliced), so
        // elements must be read by their index within the slice; rows after the first exposed the mistake.
        var relation = new PgRelation(8, "public", "lists", 'd',
        [
            new PgColumn("id", PgOid.Int4, -1, true),
            new PgColumn("days", 1182, -1, false),
            new PgColumn("ats", PgOid.TimestampTzArray, -1, false),
            new PgColumn("amounts", PgOid.NumericArray, ((10 << 16) | 2) + 4, false),
            new PgColumn("spans", 1187, -1, false),
            new PgColumn("times", 1183, -1, false),
        ]);
        using var b = new ChangeBatchBuilder(relation);
        string[][] rows =
        [
            ["1", "{2024-01-01,NULL}", "{\"2024-01-01 00:00:00+00\"}", "{1.50}", "{\"1 day\"}", "{00:00:01}"],
            ["2", "{1999-12-31,2000-01-01,4713-01-01 BC}", "{\"1999-12-31 23:59:59.5+00\",NULL}", "{-2.25,3.00}", "{\"-1 mons +2 days 00:00:03\"}", "{12:00:00,24:00:00}"],
            ["3", "{}", "{}", "{}", "{}", "{}"],
            ["4", "{5874897-12-31}", "{\"2000-01-01 00:00:00+00\"}", "{99999999.99}", "{\"178000000 years\"}", "{23:59:59.999999}"],
        ];
        foreach (var row in rows)
        {
            b.BeginRow(ChangeOp.Insert, 1);
            foreach (var value in row)
            {
                b.AppendValue(Encoding.UTF8.GetBytes(value), TupleFormat.Text);
            }

            b.EndRow();
        }

        var output = new ArrayBufferWriter<byte>();
        b.WriteStream(output);
        var ours = ArrowPayload.Read(output.WrittenMemory.ToArray());
        var dump = Assert.Single(ArrowJs.Dump([Write("lists", output.WrittenSpan)]));
        ArrowJs.AssertEqual(dump, ours, "fixed-width lists");
    }

    [Fact]
    public void Apache_arrow_js_reads_a_change_batch_with_every_mapped_type_and_special_values()
    {
        var columns = PgConformanceTests.Cases.Select(c => (c.Oid, c.Typmod)).Distinct().ToList();
        var relation = new PgRelation(7, "public", "items", 'f',
            [new PgColumn("id", PgOid.Int8, -1, true), .. columns.Select((c, i) => new PgColumn($"c{i}", c.Oid, c.Typmod, false))]);
        using var b = new ChangeBatchBuilder(relation);
        var byType = columns.Select(c => PgConformanceTests.Cases.Concat(PgConformanceTests.SpecialCases).Where(x => x.Oid == c.Oid && x.Typmod == c.Typmod).ToList()).ToList();
        var rows = byType.Max(v => v.Count) + 1;
        for (var r = 0; r < rows; r++)
        {
            b.BeginRow(r % 3 == 0 ? ChangeOp.Update : ChangeOp.Insert, (ulong)(1000 + r));
            b.AppendValue(Encoding.UTF8.GetBytes(r.ToString(System.Globalization.CultureInfo.InvariantCulture)), TupleFormat.Text);
            foreach (var values in byType)
            {
                if (r < values.Count)
                {
                    b.AppendValue(Encoding.UTF8.GetBytes(values[r].Input), TupleFormat.Text);
                }
                else
                {
                    b.AppendNull();
                }
            }

            if (r % 3 == 0)
            {
                b.BeginBefore();
                b.AppendValue("0"u8, TupleFormat.Text);
                foreach (var _ in byType)
                {
                    b.AppendUnchangedToast();
                }
            }

            b.EndRow();
        }

        var output = new ArrayBufferWriter<byte>();
        b.WriteStream(output);
        var ours = ArrowPayload.Read(output.WrittenMemory.ToArray());
        var dump = Assert.Single(ArrowJs.Dump([Write("change-batch", output.WrittenSpan)]));
        ArrowJs.AssertEqual(dump, ours, "change batch");
    }
}
