using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using System.Text.Json.Nodes;
using Apache.Arrow;
using Apache.Arrow.Types;
using WalBridge.Serialization.Payload;
using WalBridge.Tests;

namespace WalBridge.Serialization.Tests.Interop;

/// <summary>
/// Runs the independent reader (npm apache-arrow, tools/arrow-js/dump.js) and renders what Apache.Arrow (C#) reads in the
/// same canonical cell form (see the comment at the top of dump.js) so the two can be compared value by value.
/// </summary>
internal static class ArrowJs
{
    /// <summary>tools/arrow-js of this repository; fails (never skips) when apache-arrow is not installed there.</summary>
    public static string Directory
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "tools", "arrow-js");
                if (File.Exists(Path.Combine(candidate, "dump.js")))
                {
                    Assert.True(
                        File.Exists(Path.Combine(candidate, "node_modules", "apache-arrow", "package.json")),
                        $"npm apache-arrow is not installed in {candidate}: run scripts/setup.sh (or scripts/setup-js.sh).");
                    return candidate;
                }
            }

            Assert.Fail($"tools/arrow-js not found above {AppContext.BaseDirectory}: run the tests from the repository, after scripts/setup.sh.");
            return "";
        }
    }

    /// <summary>Decodes each file with apache-arrow; one JSON document per file.</summary>
    public static IReadOnlyList<JsonObject> Dump(IReadOnlyList<string> files)
    {
        var dir = Directory;
        var psi = new ProcessStartInfo("node", [Path.Combine(dir, "dump.js"), .. files])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = dir,
        };
        using var node = Process.Start(psi) ?? throw new InvalidOperationException("could not start node");
        var stderr = node.StandardError.ReadToEndAsync();
        var lines = new List<JsonObject>();
        string? line;
        while ((line = node.StandardOutput.ReadLine()) is not null)
        {
            lines.Add(JsonNode.Parse(line)!.AsObject());
        }

        node.WaitForExit();
        Assert.True(node.ExitCode == 0, "apache-arrow failed: " + stderr.Result);
        Assert.Equal(files.Count, lines.Count);
        return lines;
    }

    /// <summary>Apache.Arrow's value at <paramref name="i"/> in dump.js's canonical form.</summary>
    public static JsonNode? Cell(IArrowArray array, int i)
    {
        if (array is ExtensionArray extension)
        {
            array = extension.Storage;
        }

        if (array.IsNull(i))
        {
            return null;
        }

        static string S(long v) => v.ToString(CultureInfo.InvariantCulture);
        static JsonNode Float(double x) =>
            double.IsNaN(x) ? "NaN" : double.IsPositiveInfinity(x) ? "Infinity" : double.IsNegativeInfinity(x) ? "-Infinity"
            : x == 0 && double.IsNegative(x) ? "-0" : JsonValue.Create(x);
        return array switch
        {
            BooleanArray a => a.GetValue(i),
            Int8Array a => a.Values[i],
            Int16Array a => a.Values[i],
            Int32Array a => a.Values[i],
            UInt8Array a => a.Values[i],
            UInt16Array a => a.Values[i],
            UInt32Array a => a.Values[i],
            Int64Array a => S(a.Values[i]),
            UInt64Array a => a.Values[i].ToString(CultureInfo.InvariantCulture),
            FloatArray a => Float(a.Values[i]),
            DoubleArray a => Float(a.Values[i]),
            HalfFloatArray a => Float((double)a.Values[i]),
            StringArray a => a.GetString(i),
            BinaryArray a => Convert.ToHexStringLower(a.GetBytes(i)),
            Decimal128Array or Decimal256Array => new BigInteger(((Apache.Arrow.Arrays.FixedSizeBinaryArray)array).GetBytes(i), isUnsigned: false, isBigEndian: false).ToString(CultureInfo.InvariantCulture),
            Apache.Arrow.Arrays.FixedSizeBinaryArray a => Convert.ToHexStringLower(a.GetBytes(i)),
            Date32Array a => S(a.Values[i]),
            Date64Array a => S(a.Values[i]),
            Time32Array a => S(a.Values[i]),
            Time64Array a => S(a.Values[i]),
            TimestampArray a => S(a.Values[i]),
            DurationArray a => S(a.Values[i]),
            MonthDayNanosecondIntervalArray a => new JsonArray(a.Values[i].Months, a.Values[i].Days, S(a.Values[i].Nanoseconds)),
            MapArray a => Map(a, i),
            ListArray a => Range(a.ValueOffsets[i], a.ValueOffsets[i + 1], a.Values),
            FixedSizeListArray a => Range(i * ((FixedSizeListType)a.Data.DataType).ListSize, (i + 1) * ((FixedSizeListType)a.Data.DataType).ListSize, a.Values),
            StructArray a => new JsonArray(a.Fields.Select(c => Cell(c, i)).ToArray()),
            _ => throw new NotSupportedException(array.GetType().Name),
        };
    }

    private static JsonArray Range(int start, int end, IArrowArray values)
    {
        var result = new JsonArray();
        for (var k = start; k < end; k++)
        {
            result.Add(Cell(values, k));
        }

        return result;
    }

    private static JsonArray Map(MapArray map, int i)
    {
        var result = new JsonArray();
        for (var k = map.ValueOffsets[i]; k < map.ValueOffsets[i + 1]; k++)
        {
            result.Add(new JsonArray(Cell(map.Keys, k), Cell(map.Values, k)));
        }

        return result;
    }

    /// <summary>Asserts that apache-arrow's dump equals Apache.Arrow's view of <paramref name="stream"/>: fields (types with their parameters, metadata), rows, values.</summary>
    public static void AssertEqual(JsonObject js, ArrowPayload stream, string what)
    {
        var fields = js["fields"]!.AsArray();
        Assert.Equal(stream.Schema.FieldsList.Count, fields.Count);
        for (var f = 0; f < fields.Count; f++)
        {
            AssertField(fields[f]!.AsObject(), stream.Schema.GetFieldByIndex(f), $"{what}: field {f}");
        }

        Assert.Equal(Sorted(stream.Schema.Metadata ?? new Dictionary<string, string>()), Sorted(Pairs(js["metadata"]!.AsArray())));
        var rows = stream.Batches.Sum(b => b.Length);
        Assert.Equal(rows, (int)js["rows"]!);
        var columns = js["columns"]!.AsArray();
        for (var c = 0; c < stream.Schema.FieldsList.Count; c++)
        {
            var jsColumn = columns[c]!.AsArray();
            var row = 0;
            foreach (var batch in stream.Batches)
            {
                for (var i = 0; i < batch.Length; i++, row++)
                {
                    var ours = Cell(batch.Column(c), i);
                    var theirs = jsColumn[row];
                    Assert.True(Same(theirs, ours), $"{what}: column {c} '{stream.Schema.GetFieldByIndex(c).Name}' row {row}: apache-arrow {theirs?.ToJsonString() ?? "null"}, Apache.Arrow {ours?.ToJsonString() ?? "null"}");
                }
            }
        }
    }

    private static void AssertField(JsonObject js, Field field, string what)
    {
        Assert.Equal(field.Name, (string)js["name"]!);
        Assert.True(field.IsNullable == (bool)js["nullable"]!, $"{what}: nullable");
        var type = field.DataType is ExtensionType e ? e.StorageType : field.DataType;
        var (typeId, parameters) = Describe(type);
        Assert.True(typeId == (string)js["typeId"]!, $"{what}: type {type.Name}, apache-arrow {js["type"]}");
        Assert.True(Same(parameters, js["params"]), $"{what}: {type.Name} parameters {parameters.ToJsonString()}, apache-arrow {js["params"]!.ToJsonString()}");
        Assert.Equal(Sorted(field.Metadata ?? new Dictionary<string, string>()), Sorted(Pairs(js["metadata"]!.AsArray())));
        var children = js["children"]!.AsArray();
        Assert.Equal(field.Children().Count, children.Count);
        for (var i = 0; i < children.Count; i++)
        {
            AssertField(children[i]!.AsObject(), field.Children()[i], $"{what}.{i}");
        }
    }

    private static string Unit(TimeUnit unit) => unit switch
    {
        TimeUnit.Second => "SECOND",
        TimeUnit.Millisecond => "MILLISECOND",
        TimeUnit.Microsecond => "MICROSECOND",
        _ => "NANOSECOND",
    };

    /// <summary>The type as dump.js describes it: apache-arrow's Type enum name and the type's parameters.</summary>
    private static (string TypeId, JsonObject Params) Describe(IArrowType type) => type switch
    {
        BooleanType => ("Bool", []),
        IntegerType n => ("Int", new() { ["bitWidth"] = n.BitWidth, ["isSigned"] = n.IsSigned }),
        HalfFloatType => ("Float", new() { ["precision"] = "HALF" }),
        FloatType => ("Float", new() { ["precision"] = "SINGLE" }),
        DoubleType => ("Float", new() { ["precision"] = "DOUBLE" }),
        StringType => ("Utf8", []),
        BinaryType => ("Binary", []),
        Decimal128Type d => ("Decimal", new() { ["precision"] = d.Precision, ["scale"] = d.Scale, ["bitWidth"] = 128 }),
        Decimal256Type d => ("Decimal", new() { ["precision"] = d.Precision, ["scale"] = d.Scale, ["bitWidth"] = 256 }),
        FixedSizeBinaryType f => ("FixedSizeBinary", new() { ["byteWidth"] = f.ByteWidth }),
        Date32Type => ("Date", new() { ["unit"] = "DAY" }),
        Date64Type => ("Date", new() { ["unit"] = "MILLISECOND" }),
        TimeType t => ("Time", new() { ["unit"] = Unit(t.Unit), ["bitWidth"] = t.BitWidth }),
        TimestampType t => ("Timestamp", new() { ["unit"] = Unit(t.Unit), ["timezone"] = t.Timezone }),
        DurationType t => ("Duration", new() { ["unit"] = Unit(t.Unit) }),
        IntervalType t => ("Interval", new() { ["unit"] = t.Unit switch { IntervalUnit.YearMonth => "YEAR_MONTH", IntervalUnit.DayTime => "DAY_TIME", _ => "MONTH_DAY_NANO" } }),
        FixedSizeListType t => ("FixedSizeList", new() { ["listSize"] = t.ListSize }),
        MapType t => ("Map", new() { ["keysSorted"] = t.KeySorted }),
        ListType => ("List", []),
        StructType => ("Struct", []),
        _ => (type.Name, []),
    };

    private static List<KeyValuePair<string, string>> Pairs(JsonArray array) =>
        array.Select(p => KeyValuePair.Create((string)p![0]!, (string)p[1]!)).ToList();

    private static List<KeyValuePair<string, string>> Sorted(IEnumerable<KeyValuePair<string, string>> pairs) =>
        pairs.OrderBy(p => p.Key, StringComparer.Ordinal).ThenBy(p => p.Value, StringComparer.Ordinal).ToList();

    /// <summary>Structural equality; numbers compare by exact double value.</summary>
    public static bool Same(JsonNode? a, JsonNode? b)
    {
        if (a is null || b is null)
        {
            return a is null && b is null;
        }

        if (a is JsonArray x && b is JsonArray y)
        {
            return x.Count == y.Count && x.Zip(y).All(p => Same(p.First, p.Second));
        }

        if (a is JsonObject ox && b is JsonObject oy)
        {
            return ox.Count == oy.Count && ox.All(kv => oy.TryGetPropertyValue(kv.Key, out var v) && Same(kv.Value, v));
        }

        if (a is JsonValue va && b is JsonValue vb)
        {
            var ka = va.GetValueKind();
            var kb = vb.GetValueKind();
            if (ka == System.Text.Json.JsonValueKind.Number && kb == System.Text.Json.JsonValueKind.Number)
            {
                return double.Parse(va.ToJsonString(), CultureInfo.InvariantCulture) == double.Parse(vb.ToJsonString(), CultureInfo.InvariantCulture);
            }

            return ka == kb && va.ToJsonString() == vb.ToJsonString();
        }

        return false;
    }
}
