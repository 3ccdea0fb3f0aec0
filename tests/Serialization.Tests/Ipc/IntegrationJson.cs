using System.Globalization;
using System.IO.Compression;
using System.Numerics;
using System.Text.Json;
using WalBridge.Serialization.Arrow;
using WalBridge.Serialization.Ipc;

namespace WalBridge.Serialization.Tests.Ipc;

/// <summary>Compares arrays with Arrow's integration-test JSON (the <c>*.json.gz</c> gold files).</summary>
internal static class IntegrationJson
{
    public static JsonDocument Load(string path)
    {
        using var file = File.OpenRead(path);
        using var gz = new GZipStream(file, CompressionMode.Decompress);
        return JsonDocument.Parse(gz);
    }

    public static void AssertStreamEquals(JsonElement json, ArrowStream stream)
    {
        var fields = json.GetProperty("schema").GetProperty("fields");
        Assert.Equal(fields.GetArrayLength(), stream.Schema.Fields.Count);
        int f = 0;
        var idMap = new Dictionary<long, HashSet<long>>(); // JSON dictionary id → the stream's (writers renumber them)
        foreach (var jf in fields.EnumerateArray())
        {
            AssertFieldEquals(jf, stream.Schema.Fields[f++], true, idMap);
        }

        var batches = json.GetProperty("batches");
        Assert.Equal(batches.GetArrayLength(), stream.Batches.Count);
        int b = 0;
        foreach (var jb in batches.EnumerateArray())
        {
            var batch = stream.Batches[b++];
            Assert.Equal(jb.GetProperty("count").GetInt32(), batch.Length);
            int c = 0;
            foreach (var column in jb.GetProperty("columns").EnumerateArray())
            {
                AssertArrayEquals(column, batch.Columns[c++], column.GetProperty("name").GetString()!);
            }

            // Dictionary values (the batch columns above hold the indices).
            if (json.TryGetProperty("dictionaries", out var dictionaries))
            {
                var found = new Dictionary<long, ArrowArray>();
                foreach (var column in batch.Columns)
                {
                    CollectDictionaries(column, found);
                }

                foreach (var d in dictionaries.EnumerateArray())
                {
                    long id = d.GetProperty("id").GetInt64();
                    foreach (long streamId in idMap.GetValueOrDefault(id) ?? [])
                    {
                        if (found.TryGetValue(streamId, out var values))
                        {
                            AssertArrayEquals(d.GetProperty("data").GetProperty("columns")[0], values, $"dictionary {id}");
                        }
                    }
                }
            }
        }
    }

    private static void CollectDictionaries(ArrowArray array, Dictionary<long, ArrowArray> found)
    {
        if (array is DictionaryArray d)
        {
            found[d.Field.Dictionary!.Id] = d.Dictionary;
            CollectDictionaries(d.Dictionary, found);
            return;
        }

        IReadOnlyList<ArrowArray> children = array switch
        {
            StructArray s => s.Children,
            ListArrayBase l => [l.Values],
            _ => [],
        };
        foreach (var child in children)
        {
            CollectDictionaries(child, found);
        }
    }

    private static void AssertFieldEquals(JsonElement json, ArrowField field, bool checkName = true, Dictionary<long, HashSet<long>>? idMap = null)
    {
        if (checkName)
        {
            // The map_non_canonical stream stores canonical entry names although its JSON does not.
            Assert.Equal(json.GetProperty("name").GetString(), field.Name);
        }

        Assert.Equal(json.GetProperty("nullable").GetBoolean(), field.Nullable);
        var type = json.GetProperty("type");
        string name = type.GetProperty("name").GetString()!;
        string expectedId = name switch
        {
            "int" => "Int",
            "floatingpoint" => "FloatingPoint",
            "bool" => "Boolean",
            "null" => "Null",
            "utf8" => "Utf8",
            "binary" => "Binary",
            "largeutf8" => "LargeUtf8",
            "largebinary" => "LargeBinary",
            "fixedsizebinary" => "FixedSizeBinary",
            "decimal" => "Decimal",
            "date" => "Date",
            "time" => "Time",
            "timestamp" => "Timestamp",
            "interval" => "Interval",
            "duration" => "Duration",
            "list" => "List",
            "largelist" => "LargeList",
            "fixedsizelist" => "FixedSizeList",
            "struct" => "Struct",
            "map" => "Map",
            _ => name,
        };
        Assert.Equal(expectedId, field.Type.Id.ToString());
        switch (field.Type)
        {
            case IntType t:
                Assert.Equal(type.GetProperty("bitWidth").GetInt32(), t.BitWidth);
                Assert.Equal(type.GetProperty("isSigned").GetBoolean(), t.IsSigned);
                break;
            case DecimalType t:
                Assert.Equal(type.GetProperty("precision").GetInt32(), t.Precision);
                Assert.Equal(type.GetProperty("scale").GetInt32(), t.Scale);
                Assert.Equal(type.TryGetProperty("bitWidth", out var bw) ? bw.GetInt32() : 128, t.BitWidth);
                break;
            case TimestampType t:
                Assert.Equal(type.TryGetProperty("timezone", out var tz) ? tz.GetString() : null, t.Timezone);
                Assert.Equal(type.GetProperty("unit").GetString(), Unit(t.Unit));
                break;
            case FixedSizeBinaryType t:
                Assert.Equal(type.GetProperty("byteWidth").GetInt32(), t.ByteWidth);
                break;
            case FixedSizeListType t:
                Assert.Equal(type.GetProperty("listSize").GetInt32(), t.ListSize);
                break;
        }

        if (json.TryGetProperty("metadata", out var metadata))
        {
            var expected = metadata.EnumerateArray().Select(kv => KeyValuePair.Create(kv.GetProperty("key").GetString()!, kv.GetProperty("value").GetString()!)).ToList();
            // Metadata is a map; writers do not agree on its order.
            Assert.Equal(expected.OrderBy(kv => kv.Key, StringComparer.Ordinal), field.Metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal));
        }

        if (json.TryGetProperty("dictionary", out var dictionary))
        {
            Assert.NotNull(field.Dictionary);
            long jsonId = dictionary.GetProperty("id").GetInt64();
            if (idMap is not null)
            {
                if (!idMap.TryGetValue(jsonId, out var ids))
                {
                    idMap[jsonId] = ids = [];
                }

                ids.Add(field.Dictionary.Id);
            }

            var indexType = dictionary.GetProperty("indexType");
            Assert.Equal(indexType.GetProperty("bitWidth").GetInt32(), field.Dictionary.IndexType.BitWidth);
            Assert.Equal(indexType.GetProperty("isSigned").GetBoolean(), field.Dictionary.IndexType.IsSigned);
            Assert.Equal(dictionary.GetProperty("isOrdered").GetBoolean(), field.Dictionary.IsOrdered);
        }
        else
        {
            Assert.Null(field.Dictionary);
        }

        var children = json.GetProperty("children");
        Assert.Equal(children.GetArrayLength(), field.Children.Count);
        int i = 0;
        foreach (var child in children.EnumerateArray())
        {
            AssertFieldEquals(child, field.Children[i++], checkName && field.Type is not MapType, idMap);
        }
    }

    private static string Unit(TimeUnit unit) => unit switch
    {
        TimeUnit.Second => "SECOND",
        TimeUnit.Millisecond => "MILLISECOND",
        TimeUnit.Microsecond => "MICROSECOND",
        _ => "NANOSECOND",
    };

    public static void AssertArrayEquals(JsonElement json, ArrowArray array, string path)
    {
        if (array is DictionaryArray dictionary)
        {
            // The JSON column of a dictionary-encoded field holds the indices.
            array = dictionary.Indices;
        }

        int count = json.GetProperty("count").GetInt32();
        Assert.True(count == array.Length, $"{path}: length {array.Length}, expected {count}");
        if (json.TryGetProperty("VALIDITY", out var validity))
        {
            int i = 0;
            int nulls = 0;
            foreach (var v in validity.EnumerateArray())
            {
                bool valid = v.GetInt32() != 0;
                nulls += valid ? 0 : 1;
                Assert.True(valid == array.IsValid(i), $"{path}[{i}]: validity {array.IsValid(i)}, expected {valid}");
                i++;
            }

            Assert.True(nulls == array.NullCount, $"{path}: null count {array.NullCount}, expected {nulls}");
        }
        else if (array.Type is NullType)
        {
            for (int i = 0; i < count; i++)
            {
                Assert.True(array.IsNull(i));
                Assert.Null(array.GetValue(i));
            }
        }

        if (json.TryGetProperty("OFFSET", out var offsets))
        {
            var expected = offsets.EnumerateArray().Select(o => o.ValueKind == JsonValueKind.String ? long.Parse(o.GetString()!, CultureInfo.InvariantCulture) : o.GetInt64()).ToArray();
            var actual = new long[array.Length + 1];
            for (int i = 0; i <= array.Length; i++)
            {
                actual[i] = array switch
                {
                    BinaryArrayBase a => a.GetOffset(i),
                    LargeBinaryArrayBase a => a.GetOffset(i),
                    ListArray a => a.GetOffset(i),
                    LargeListArray a => a.GetOffset(i),
                    _ => throw new InvalidOperationException($"{path}: OFFSET for {array.GetType().Name}"),
                };
            }

            if (array.Length > 0 || expected.Length > 0)
            {
                Assert.True(expected.SequenceEqual(actual), $"{path}: offsets [{string.Join(",", actual)}], expected [{string.Join(",", expected)}]");
            }
        }

        if (json.TryGetProperty("DATA", out var data))
        {
            int i = 0;
            foreach (var d in data.EnumerateArray())
            {
                if (array.IsValid(i))
                {
                    AssertValue(d, array, i, path);
                }

                i++;
            }
        }

        if (json.TryGetProperty("children", out var children) && children.GetArrayLength() > 0)
        {
            IReadOnlyList<ArrowArray> arrays = array switch
            {
                StructArray s => s.Children,
                ListArrayBase l => [l.Values],
                _ => throw new InvalidOperationException($"{path}: children for {array.GetType().Name}"),
            };
            Assert.Equal(children.GetArrayLength(), arrays.Count);
            int c = 0;
            foreach (var child in children.EnumerateArray())
            {
                AssertArrayEquals(child, arrays[c], path + "." + child.GetProperty("name").GetString());
                c++;
            }
        }
    }

    private static long Int(JsonElement e) => e.ValueKind == JsonValueKind.String ? long.Parse(e.GetString()!, CultureInfo.InvariantCulture) : e.GetInt64();

    private static void AssertValue(JsonElement d, ArrowArray array, int i, string path)
    {
        string at = $"{path}[{i}]";
        switch (array)
        {
            case BooleanArray a:
                Assert.True(d.GetBoolean() == a.GetBit(i), at);
                break;
            case Int8Array a: Assert.True(Int(d) == a.GetRaw(i), at); break;
            case Int16Array a: Assert.True(Int(d) == a.GetRaw(i), at); break;
            case Int32Array a: Assert.True(Int(d) == a.GetRaw(i), at); break;
            case Int64Array a: Assert.True(Int(d) == a.GetRaw(i), at); break;
            case UInt8Array a: Assert.True(Int(d) == a.GetRaw(i), at); break;
            case UInt16Array a: Assert.True(Int(d) == a.GetRaw(i), at); break;
            case UInt32Array a: Assert.True(Int(d) == a.GetRaw(i), at); break;
            case UInt64Array a:
                Assert.True(ulong.Parse(d.ValueKind == JsonValueKind.String ? d.GetString()! : d.GetRawText(), CultureInfo.InvariantCulture) == a.GetRaw(i), at);
                break;
            case FloatArray a:
                Assert.True(Math.Abs(d.GetDouble() - a.GetRaw(i)) <= 1e-6 * Math.Max(1, Math.Abs(d.GetDouble())), at);
                break;
            case DoubleArray a:
                Assert.True(Math.Abs(d.GetDouble() - a.GetRaw(i)) <= 1e-12 * Math.Max(1, Math.Abs(d.GetDouble())), at);
                break;
            case Date32Array a: Assert.True(Int(d) == a.GetRaw(i), at); break;
            case Date64Array a: Assert.True(Int(d) == a.GetRaw(i), at); break;
            case Time32Array a: Assert.True(Int(d) == a.GetRaw(i), at); break;
            case Time64Array a: Assert.True(Int(d) == a.GetRaw(i), at); break;
            case TimestampArray a: Assert.True(Int(d) == a.GetRaw(i), at); break;
            case DurationArray a: Assert.True(Int(d) == a.GetRaw(i), at); break;
            case YearMonthIntervalArray a: Assert.True(Int(d) == a.GetRaw(i), at); break;
            case DayTimeIntervalArray a:
                Assert.Equal(new DayTimeInterval(d.GetProperty("days").GetInt32(), d.GetProperty("milliseconds").GetInt32()), a.GetRaw(i));
                break;
            case MonthDayNanoIntervalArray a:
                Assert.Equal(new MonthDayNanoInterval(d.GetProperty("months").GetInt32(), d.GetProperty("days").GetInt32(), Int(d.GetProperty("nanoseconds"))), a.GetRaw(i));
                break;
            case DecimalArray a:
                Assert.True(BigInteger.Parse(d.GetString()!, CultureInfo.InvariantCulture) == a.GetUnscaled(i), at);
                break;
            case Utf8Array a:
                Assert.True(d.GetString() == a.GetString(i), at);
                break;
            case LargeUtf8Array a:
                Assert.True(d.GetString() == a.GetString(i), at);
                break;
            case BinaryArrayBase a:
                Assert.True(d.GetString() == Convert.ToHexString(a.GetBytes(i)), at);
                break;
            case LargeBinaryArrayBase a:
                Assert.True(d.GetString() == Convert.ToHexString(a.GetBytes(i)), at);
                break;
            case FixedSizeBinaryArray a:
                Assert.True(d.GetString() == Convert.ToHexString(a.GetBytes(i)), at);
                break;
            default:
                throw new InvalidOperationException($"{at}: no comparison for {array.GetType().Name}");
        }
    }
}
