using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using WalBridge.Serialization.Arrow;
using WalBridge.Serialization.Ipc;

namespace WalBridge.Serialization.Tests.Ipc;

/// <summary>
/// Runs the independent reader (npm apache-arrow, tools/arrow-js/dump.js) and renders our own arrays in the same
/// canonical cell form (see the comment at the top of dump.js) so the two can be compared value by value.
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
                string candidate = Path.Combine(dir.FullName, "tools", "arrow-js");
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
        string dir = Directory;
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

    /// <summary>Our reader's value at <paramref name="i"/> in dump.js's canonical form.</summary>
    public static JsonNode? Cell(ArrowArray array, int i)
    {
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
            DictionaryArray a => Cell(a.Dictionary, (int)a.GetIndex(i)),
            BooleanArray a => a.GetBit(i),
            Int8Array a => a.GetRaw(i),
            Int16Array a => a.GetRaw(i),
            Int32Array a => a.GetRaw(i),
            UInt8Array a => a.GetRaw(i),
            UInt16Array a => a.GetRaw(i),
            UInt32Array a => a.GetRaw(i),
            Int64Array a => S(a.GetRaw(i)),
            UInt64Array a => a.GetRaw(i).ToString(CultureInfo.InvariantCulture),
            FloatArray a => Float(a.GetRaw(i)),
            DoubleArray a => Float(a.GetRaw(i)),
            HalfFloatArray a => Float((double)a.GetRaw(i)),
            Utf8Array a => a.GetString(i),
            LargeUtf8Array a => a.GetString(i),
            BinaryArrayBase a => Convert.ToHexStringLower(a.GetBytes(i)),
            LargeBinaryArrayBase a => Convert.ToHexStringLower(a.GetBytes(i)),
            FixedSizeBinaryArray a => Convert.ToHexStringLower(a.GetBytes(i)),
            DecimalArray a => a.GetUnscaled(i).ToString(CultureInfo.InvariantCulture),
            Date32Array a => S(a.GetRaw(i)),
            Date64Array a => S(a.GetRaw(i)),
            Time32Array a => S(a.GetRaw(i)),
            Time64Array a => S(a.GetRaw(i)),
            TimestampArray a => S(a.GetRaw(i)),
            DurationArray a => S(a.GetRaw(i)),
            YearMonthIntervalArray a => a.GetRaw(i),
            DayTimeIntervalArray a => new JsonArray(a.GetRaw(i).Days, a.GetRaw(i).Milliseconds),
            MonthDayNanoIntervalArray a => new JsonArray(a.GetRaw(i).Months, a.GetRaw(i).Days, S(a.GetRaw(i).Nanoseconds)),
            MapArray a => Map(a, i),
            ListArrayBase a => Range(a.GetRange(i), a.Values),
            StructArray a => new JsonArray(a.Children.Select(c => Cell(c, i)).ToArray()),
            _ => throw new NotSupportedException(array.GetType().Name),
        };
    }

    private static JsonArray Range((int Start, int End) range, ArrowArray values)
    {
        var result = new JsonArray();
        for (int k = range.Start; k < range.End; k++)
        {
            result.Add(Cell(values, k));
        }

        return result;
    }

    private static JsonArray Map(MapArray map, int i)
    {
        var (start, end) = map.GetRange(i);
        var result = new JsonArray();
        for (int k = start; k < end; k++)
        {
            result.Add(new JsonArray(Cell(map.Entries.Children[0], k), Cell(map.Entries.Children[1], k)));
        }

        return result;
    }

    /// <summary>Asserts that apache-arrow's dump equals our reader's view of <paramref name="stream"/>.</summary>
    public static void AssertEqual(JsonObject js, ArrowStream stream, string what)
    {
        var fields = js["fields"]!.AsArray();
        Assert.Equal(stream.Schema.Fields.Count, fields.Count);
        for (int f = 0; f < fields.Count; f++)
        {
            AssertField(fields[f]!.AsObject(), stream.Schema.Fields[f], $"{what}: field {f}");
        }

        Assert.Equal(Sorted(stream.Schema.Metadata), Sorted(Pairs(js["metadata"]!.AsArray())));
        int rows = stream.Batches.Sum(b => b.Length);
        Assert.Equal(rows, (int)js["rows"]!);
        var columns = js["columns"]!.AsArray();
        for (int c = 0; c < stream.Schema.Fields.Count; c++)
        {
            var jsColumn = columns[c]!.AsArray();
            int row = 0;
            foreach (var batch in stream.Batches)
            {
                for (int i = 0; i < batch.Length; i++, row++)
                {
                    var ours = Cell(batch.Columns[c], i);
                    var theirs = jsColumn[row];
                    Assert.True(Same(theirs, ours), $"{what}: column {c} '{stream.Schema.Fields[c].Name}' row {row}: apache-arrow {theirs?.ToJsonString() ?? "null"}, ours {ours?.ToJsonString() ?? "null"}");
                }
            }
        }
    }

    private static void AssertField(JsonObject js, ArrowField field, string what)
    {
        Assert.Equal(field.Name, (string)js["name"]!);
        Assert.True(field.Nullable == (bool)js["nullable"]!, $"{what}: nullable");
        string expectedTypeId = field.Type.Id switch
        {
            ArrowTypeId.Boolean => "Bool",
            ArrowTypeId.FloatingPoint => "Float",
            _ => field.Type.Id.ToString(),
        };
        Assert.True(expectedTypeId == (string)js["typeId"]!, $"{what}: type {field.Type}, apache-arrow {js["type"]}");
        Assert.Equal(Sorted(field.Metadata), Sorted(Pairs(js["metadata"]!.AsArray())));
        var children = js["children"]!.AsArray();
        Assert.Equal(field.Children.Count, children.Count);
        for (int i = 0; i < children.Count; i++)
        {
            AssertField(children[i]!.AsObject(), field.Children[i], $"{what}.{i}");
        }
    }

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
