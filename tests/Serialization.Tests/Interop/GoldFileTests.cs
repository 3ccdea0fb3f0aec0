using System.Globalization;
using System.Text;
using Apache.Arrow;
using Apache.Arrow.Types;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;
using WalBridge.Serialization.Tests.Postgres;
using WalBridge.Tests;

namespace WalBridge.Serialization.Tests.Interop;

/// <summary>
/// Arrow's integration gold files (tests/Serialization.Tests/ArrowGold, written by Arrow's reference implementation) for the
/// types of WalBridge's mapping: the pinned Apache.Arrow reads each stream equal to its JSON (a guard for library
/// upgrades), and the Arrow type our builder produces for every PostgreSQL type is one the gold files carry, with their
/// physical layout.
/// </summary>
public class GoldFileTests
{
    /// <summary>Gold files whose types are in the mapping (some also carry neighbouring types: date64, time32, …).</summary>
    public static TheoryData<string> Files => new()
    {
        "generated_primitive",
        "generated_primitive_zerolength",
        "generated_datetime",
        "generated_decimal",
        "generated_decimal256",
        "generated_nested",
        "generated_map",
        "generated_custom_metadata",
        "generated_duplicate_fieldnames",
    };

    /// <summary>The one type of the mapping that no 1.0.0 gold file carries: Arrow's month_day_nano interval is newer.</summary>
    private const string NoGoldCounterpart = "interval[month_day_nano]";

    private static readonly Lazy<List<(Field Field, IArrowArray Array)>> Golds = new(() => GoldColumns().ToList());

    internal static string Path(string name) => System.IO.Path.Combine(AppContext.BaseDirectory, "ArrowGold", name);

    internal static byte[] Stream(string name) => File.ReadAllBytes(Path(name + ".stream"));

    [Theory]
    [MemberData(nameof(Files))]
    public void Apache_Arrow_reads_the_gold_stream_equal_to_its_json(string name)
    {
        using var json = IntegrationJson.Load(Path(name + ".json.gz"));
        var stream = ArrowPayload.Read(Stream(name));
        IntegrationJson.AssertStreamEquals(json.RootElement, stream);
    }

    /// <summary>Every PostgreSQL type of PgConformanceTests' values (every type of the mapping, arrays included).</summary>
    public static TheoryData<string> MappedTypes()
    {
        var data = new TheoryData<string>();
        foreach (var type in PgConformanceTests.Cases.Select(c => c.TypeName).Distinct())
        {
            data.Add(type);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(MappedTypes))]
    public void The_arrow_type_of_each_postgres_type_has_the_gold_files_physical_layout(string typeName)
    {
        var cases = PgConformanceTests.Cases.Where(c => c.TypeName == typeName).ToList();
        var relation = new PgRelation(1, "public", "t", 'd', [new PgColumn("v", cases[0].Oid, cases[0].Typmod, false)]);
        using var builder = new ChangeBatchBuilder(relation);
        for (var i = 0; i <= cases.Count; i++)
        {
            builder.BeginRow(ChangeOp.Insert, 1);
            if (i < cases.Count)
            {
                builder.AppendValue(Encoding.UTF8.GetBytes(cases[i].Input), TupleFormat.Text);
            }
            else
            {
                builder.AppendNull();
            }

            builder.EndRow();
        }

        var ours = Assert.Single(PgConformanceTests.WriteAndRead(builder).Batches);
        var v = ours.Schema.IndexOf("v");
        AssertExactBuffers(ours.Column(v), typeName);
        AssertHasGoldLayout(ours.Schema.GetFieldByIndex(v), ours.Column(v), typeName);
    }

    [Fact]
    public void The_system_columns_have_the_gold_files_physical_layout()
    {
        var relation = new PgRelation(1, "public", "t", 'f', [new PgColumn("id", PgOid.Int4, -1, true), new PgColumn("note", PgOid.Text, -1, false)]);
        using var builder = new ChangeBatchBuilder(relation);
        builder.BeginRow(ChangeOp.Update, 7);
        builder.AppendValue("1"u8, TupleFormat.Text);
        builder.AppendUnchangedToast();
        builder.BeginBefore();
        builder.AppendValue("1"u8, TupleFormat.Text);
        builder.AppendNull();
        builder.EndRow();
        var batch = Assert.Single(PgConformanceTests.WriteAndRead(builder).Batches);
        foreach (var name in new[] { "_op", "_lsn", "_before", "_unchanged", "_special" })
        {
            AssertExactBuffers(batch.Col(name), name);
            AssertHasGoldLayout(batch.Schema.Field(name), batch.Col(name), name);
        }
    }

    /// <summary>
    /// A gold column of the same Arrow type (decimal precision and scale and the time zone's name aside: they are logical
    /// only), else of the same physical layout, exists; Apache.Arrow gives it as many buffers and children as ours, and its
    /// value buffer has the width our layout says. Nested types are checked level by level, their children on their own.
    /// </summary>
    private static void AssertHasGoldLayout(Field field, IArrowArray column, string what)
    {
        var type = Storage(field.DataType);
        var layout = Layout(type);
        if (layout == NoGoldCounterpart)
        {
            return;
        }

        var gold = Golds.Value.FirstOrDefault(g => TypeKey(Storage(g.Field.DataType)) == TypeKey(type));
        if (gold.Array is null)
        {
            gold = Golds.Value.FirstOrDefault(g => Layout(Storage(g.Field.DataType)) == layout);
        }

        Assert.True(gold.Array is not null, $"{what}: no gold file has a column of type {TypeKey(type)} or of layout {layout}");
        AssertGoldBuffers(gold.Array, Storage(gold.Field.DataType), $"{what}: gold column '{gold.Field.Name}'");
        Assert.Equal(Shape(gold.Array), Shape(column));
        var children = Children(column);
        for (var i = 0; i < children.Count; i++)
        {
            AssertHasGoldLayout(field.Children()[i], children[i], $"{what}.{field.Children()[i].Name}");
        }
    }

    /// <summary>Every column (and nested child) of the gold files' batches with rows, as Apache.Arrow reads them.</summary>
    private static IEnumerable<(Field Field, IArrowArray Array)> GoldColumns()
    {
        foreach (var row in (IEnumerable<object[]>)Files)
        {
            var stream = ArrowPayload.Read(Stream((string)row[0]));
            foreach (var batch in stream.Batches.Where(b => b.Length > 0))
            {
                for (var c = 0; c < batch.ColumnCount; c++)
                {
                    foreach (var pair in Flatten(batch.Schema.GetFieldByIndex(c), batch.Column(c)))
                    {
                        yield return pair;
                    }
                }
            }
        }
    }

    private static IEnumerable<(Field, IArrowArray)> Flatten(Field field, IArrowArray array)
    {
        yield return (field, array);
        var children = Children(array);
        for (var i = 0; i < children.Count; i++)
        {
            foreach (var pair in Flatten(field.Children()[i], children[i]))
            {
                yield return pair;
            }
        }
    }

    private static IReadOnlyList<IArrowArray> Children(IArrowArray array) => (array is ExtensionArray e ? e.Storage : array) switch
    {
        StructArray s => s.Fields,
        ListArray l => [l.Values], // a map's entries struct too
        FixedSizeListArray l => [l.Values],
        _ => [],
    };

    private static IArrowType Storage(IArrowType type) => type is ExtensionType e ? e.StorageType : type;

    /// <summary>
    /// The physical layout of a type: the buffers Arrow's columnar format gives it (validity, value bits, fixed-width values of
    /// N bytes, 32-bit offsets and bytes, 32-bit offsets and one child, children); nested types' children are separate.
    /// </summary>
    private static string Layout(IArrowType type) => type switch
    {
        BooleanType => "validity+bits",
        StringType or BinaryType => "validity+offsets32+bytes",
        IntervalType { Unit: IntervalUnit.MonthDayNanosecond } => NoGoldCounterpart,
        FixedSizeBinaryType f => $"validity+fixed{f.ByteWidth}",
        FixedWidthType f => $"validity+fixed{f.BitWidth / 8}",
        MapType => "validity+offsets32+entries",
        ListType => "validity+offsets32+item",
        StructType s => $"validity+{s.Fields.Count} members",
        _ => type.Name,
    };

    /// <summary>The Arrow type without its logical-only parameters (decimal precision and scale, the time zone's name).</summary>
    private static string TypeKey(IArrowType type) => type switch
    {
        Decimal128Type => "decimal128",
        Decimal256Type => "decimal256",
        TimestampType t => $"timestamp[{t.Unit}{(t.Timezone is null ? "" : ",tz")}]",
        TimeType t => $"{type.Name}{t.BitWidth}[{t.Unit}]",
        IntervalType t => $"interval[{t.Unit}]",
        NumberType n => $"{(n.IsSigned ? "" : "u")}{type.Name}{n.BitWidth}",
        FixedSizeBinaryType f => $"fixed_size_binary({f.ByteWidth.ToString(CultureInfo.InvariantCulture)})",
        StructType s => $"struct({s.Fields.Count})",
        _ => type.Name,
    };

    /// <summary>What Apache.Arrow made of the column: its buffer and child counts.</summary>
    private static string Shape(IArrowArray array)
    {
        var data = (array is ExtensionArray e ? e.Storage : array).Data;
        return $"{data.Buffers.Length} buffers, {data.Children?.Length ?? 0} children";
    }

    /// <summary>Our buffers hold exactly the bytes of the layout (the IPC body pads them), children too.</summary>
    private static void AssertExactBuffers(IArrowArray array, string what)
    {
        var data = (array is ExtensionArray e ? e.Storage : array).Data;
        var n = data.Length;
        var buffers = data.Buffers;
        Assert.True(buffers[0].Length == 0 ? data.NullCount == 0 : buffers[0].Length == (n + 7) / 8, $"{what}: validity of {buffers[0].Length} bytes");
        switch (Storage(data.DataType))
        {
            case BooleanType:
                Assert.True(buffers[1].Length == (n + 7) / 8, $"{what}: {buffers[1].Length} bytes of bits for {n} values");
                break;
            case StringType or BinaryType:
                Assert.True(buffers[1].Length == 4 * (n + 1), $"{what}: offsets");
                Assert.True(buffers[2].Length == buffers[1].Span.CastTo<int>()[n], $"{what}: value bytes");
                break;
            case ListType or MapType:
                Assert.True(buffers[1].Length == 4 * (n + 1), $"{what}: offsets");
                Assert.Equal(buffers[1].Span.CastTo<int>()[n], data.Children[0].Length);
                break;
            case StructType:
                Assert.Single(buffers);
                Assert.All(data.Children, c => Assert.Equal(n, c.Length));
                break;
            case FixedSizeBinaryType f:
                Assert.True(buffers[1].Length == n * f.ByteWidth, $"{what}: {buffers[1].Length} bytes for {n} values of {f.ByteWidth}");
                break;
            case FixedWidthType f:
                Assert.True(buffers[1].Length == n * f.BitWidth / 8, $"{what}: {buffers[1].Length} bytes for {n} values of {f.BitWidth} bits");
                break;
        }

        foreach (var child in data.Children ?? [])
        {
            AssertExactBuffers(ArrowArrayFactory.BuildArray(child), what + " child");
        }
    }

    /// <summary>The gold column's value (or offset) buffer has the width our layout says (plus at most 64 bytes of padding).</summary>
    private static void AssertGoldBuffers(IArrowArray array, IArrowType type, string what)
    {
        var data = array.Data;
        long n = data.Length;
        var expected = type switch
        {
            BooleanType => (n + 7) / 8,
            StringType or BinaryType or ListType or MapType => 4 * (n + 1),
            FixedSizeBinaryType f => n * f.ByteWidth,
            FixedWidthType f => n * f.BitWidth / 8,
            _ => -1,
        };
        if (expected >= 0)
        {
            Assert.True(data.Buffers[1].Length >= expected && data.Buffers[1].Length <= expected + 64, $"{what}: {data.Buffers[1].Length} bytes, expected {expected} (+ padding)");
        }
    }
}
