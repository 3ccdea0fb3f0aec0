using System.Globalization;
using System.IO.Compression;
using System.Numerics;
using System.Text.Json;
using Apache.Arrow;
using Apache.Arrow.Arrays;
using Apache.Arrow.Types;
using WalBridge.Serialization.Payload;
using WalBridge.Tests;

namespace WalBridge.Serialization.Tests.Interop;

/// <summary>Compares what Apache.Arrow reads with Arrow's integration-test JSON (the <c>*.json.gz</c> gold files).</summary>
internal static class IntegrationJson
{
    public static JsonDocument Load(string path)
    {
        using var file = File.OpenRead(path);
        using var gz = new GZipStream(file, CompressionMode.Decompress);
        return JsonDocument.Parse(gz);
    }

    public static void AssertStreamEquals(JsonElement json, ArrowPayload stream)
    {
        var fields = json.GetProperty("schema").GetProperty("fields");
        Assert.Equal(fields.GetArrayLength(), stream.Schema.FieldsList.Count);
        var f = 0;
        foreach (var jf in fields.EnumerateArray())
        {
            AssertFieldEquals(jf, stream.Schema.GetFieldByIndex(f++), checkName: true);
        }

        var batches = json.GetProperty("batches");
        Assert.Equal(batches.GetArrayLength(), stream.Batches.Count);
        var b = 0;
        foreach (var jb in batches.EnumerateArray())
        {
            var batch = stream.Batches[b++];
            Assert.Equal(jb.GetProperty("count").GetInt32(), batch.Length);
            var c = 0;
            foreach (var column in jb.GetProperty("columns").EnumerateArray())
            {
                AssertArrayEquals(column, batch.Column(c++), column.GetProperty("name").GetString()!);
            }
        }
    }

    private static void AssertFieldEquals(JsonElement json, Field field, bool checkName)
    {
        if (checkName)
        {
            // The map_non_canonical stream stores canonical entry names although its JSON does not.
            Assert.Equal(json.GetProperty("name").GetString(), field.Name);
        }

        Assert.Equal(json.GetProperty("nullable").GetBoolean(), field.IsNullable);
        var type = json.GetProperty("type");
        var actual = field.DataType is ExtensionType e ? e.StorageType : field.DataType;
        var what = $"field '{field.Name}': {type.GetRawText()} read as {actual.Name}";
        var same = type.GetProperty("name").GetString() switch
        {
            "int" => actual is IntegerType t && t.BitWidth == type.GetProperty("bitWidth").GetInt32() && t.IsSigned == type.GetProperty("isSigned").GetBoolean(),
            "floatingpoint" => type.GetProperty("precision").GetString() switch
            {
                "HALF" => actual is HalfFloatType,
                "SINGLE" => actual is FloatType,
                _ => actual is DoubleType,
            },
            "bool" => actual is BooleanType,
            "utf8" => actual is StringType,
            "binary" => actual is BinaryType,
            "fixedsizebinary" => actual is FixedSizeBinaryType t && t is not (Decimal128Type or Decimal256Type) && t.ByteWidth == type.GetProperty("byteWidth").GetInt32(),
            "decimal" => (type.TryGetProperty("bitWidth", out var bw) ? bw.GetInt32() : 128) switch
            {
                128 => actual is Decimal128Type t && t.Precision == type.GetProperty("precision").GetInt32() && t.Scale == type.GetProperty("scale").GetInt32(),
                _ => actual is Decimal256Type t && t.Precision == type.GetProperty("precision").GetInt32() && t.Scale == type.GetProperty("scale").GetInt32(),
            },
            "date" => type.GetProperty("unit").GetString() == "DAY" ? actual is Date32Type : actual is Date64Type,
            "time" => actual is TimeType t && Unit(t.Unit) == type.GetProperty("unit").GetString() && t.BitWidth == type.GetProperty("bitWidth").GetInt32(),
            "timestamp" => actual is TimestampType t && Unit(t.Unit) == type.GetProperty("unit").GetString()
                && t.Timezone == (type.TryGetProperty("timezone", out var tz) ? tz.GetString() : null),
            "list" => actual is ListType,
            "fixedsizelist" => actual is FixedSizeListType t && t.ListSize == type.GetProperty("listSize").GetInt32(),
            "struct" => actual is StructType,
            "map" => actual is MapType t && t.KeySorted == type.GetProperty("keysSorted").GetBoolean(),
            _ => false,
        };
        Assert.True(same, what);

        var expected = json.TryGetProperty("metadata", out var metadata)
            ? metadata.EnumerateArray().Select(kv => KeyValuePair.Create(kv.GetProperty("key").GetString()!, kv.GetProperty("value").GetString()!)).ToList()
            : [];
        // Metadata is a map; writers do not agree on its order.
        Assert.Equal(expected.OrderBy(kv => kv.Key, StringComparer.Ordinal), (field.Metadata ?? new Dictionary<string, string>()).OrderBy(kv => kv.Key, StringComparer.Ordinal));

        var children = json.GetProperty("children");
        Assert.Equal(children.GetArrayLength(), field.Children().Count);
        var i = 0;
        foreach (var child in children.EnumerateArray())
        {
            AssertFieldEquals(child, field.Children()[i++], checkName && actual is not MapType);
        }
    }

    private static string Unit(TimeUnit unit) => unit switch
    {
        TimeUnit.Second => "SECOND",
        TimeUnit.Millisecond => "MILLISECOND",
        TimeUnit.Microsecond => "MICROSECOND",
        _ => "NANOSECOND",
    };

    public static void AssertArrayEquals(JsonElement json, IArrowArray array, string path)
    {
        if (array is ExtensionArray extension)
        {
            array = extension.Storage;
        }

        var count = json.GetProperty("count").GetInt32();
        Assert.True(count == array.Length, $"{path}: length {array.Length}, expected {count}");
        if (json.TryGetProperty("VALIDITY", out var validity))
        {
            var i = 0;
            var nulls = 0;
            foreach (var v in validity.EnumerateArray())
            {
                var valid = v.GetInt32() != 0;
                nulls += valid ? 0 : 1;
                Assert.True(valid == array.IsValid(i), $"{path}[{i}]: validity {array.IsValid(i)}, expected {valid}");
                i++;
            }

            Assert.True(nulls == array.NullCount, $"{path}: null count {array.NullCount}, expected {nulls}");
        }

        if (json.TryGetProperty("OFFSET", out var offsets))
        {
            var expected = offsets.EnumerateArray().Select(Int).ToArray();
            var actual = array switch
            {
                BinaryArray a => a.ValueOffsets.ToArray(),
                ListArray a => a.ValueOffsets.ToArray(),
                _ => throw new InvalidOperationException($"{path}: OFFSET for {array.GetType().Name}"),
            };
            if (array.Length > 0 || expected.Length > 0)
            {
                Assert.True(expected.SequenceEqual(actual.Select(o => (long)o)), $"{path}: offsets [{string.Join(",", actual)}], expected [{string.Join(",", expected)}]");
            }
        }

        if (json.TryGetProperty("DATA", out var data))
        {
            var i = 0;
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
            var arrays = array switch
            {
                StructArray s => s.Fields,
                ListArray l => [l.Values], // a map's entries struct too
                FixedSizeListArray l => [l.Values],
                _ => throw new InvalidOperationException($"{path}: children for {array.GetType().Name}"),
            };
            Assert.Equal(children.GetArrayLength(), arrays.Count);
            var c = 0;
            foreach (var child in children.EnumerateArray())
            {
                AssertArrayEquals(child, arrays[c], path + "." + child.GetProperty("name").GetString());
                c++;
            }
        }
    }

    private static long Int(JsonElement e) => e.ValueKind == JsonValueKind.String ? long.Parse(e.GetString()!, CultureInfo.InvariantCulture) : e.GetInt64();

    private static void AssertValue(JsonElement d, IArrowArray array, int i, string path)
    {
        var at = $"{path}[{i}]";
        switch (array)
        {
            case BooleanArray a:
                Assert.True(d.GetBoolean() == a.GetValue(i), at);
                break;
            case Int8Array a: Assert.True(Int(d) == a.Values[i], at); break;
            case Int16Array a: Assert.True(Int(d) == a.Values[i], at); break;
            case Int32Array a: Assert.True(Int(d) == a.Values[i], at); break;
            case Int64Array a: Assert.True(Int(d) == a.Values[i], at); break;
            case UInt8Array a: Assert.True(Int(d) == a.Values[i], at); break;
            case UInt16Array a: Assert.True(Int(d) == a.Values[i], at); break;
            case UInt32Array a: Assert.True(Int(d) == a.Values[i], at); break;
            case UInt64Array a:
                Assert.True(ulong.Parse(d.ValueKind == JsonValueKind.String ? d.GetString()! : d.GetRawText(), CultureInfo.InvariantCulture) == a.Values[i], at);
                break;
            case FloatArray a:
                Assert.True(Math.Abs(d.GetDouble() - a.Values[i]) <= 1e-6 * Math.Max(1, Math.Abs(d.GetDouble())), at);
                break;
            case DoubleArray a:
                Assert.True(Math.Abs(d.GetDouble() - a.Values[i]) <= 1e-12 * Math.Max(1, Math.Abs(d.GetDouble())), at);
                break;
            case Date32Array a: Assert.True(Int(d) == a.Values[i], at); break;
            case Date64Array a: Assert.True(Int(d) == a.Values[i], at); break;
            case Time32Array a: Assert.True(Int(d) == a.Values[i], at); break;
            case Time64Array a: Assert.True(Int(d) == a.Values[i], at); break;
            case TimestampArray a: Assert.True(Int(d) == a.Values[i], at); break;
            case Decimal128Array or Decimal256Array:
                Assert.True(BigInteger.Parse(d.GetString()!, CultureInfo.InvariantCulture) == new BigInteger(((FixedSizeBinaryArray)array).GetBytes(i), isUnsigned: false, isBigEndian: false), at);
                break;
            case StringArray a:
                Assert.True(d.GetString() == a.GetString(i), at);
                break;
            case BinaryArray a:
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
