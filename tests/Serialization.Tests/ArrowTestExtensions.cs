using Apache.Arrow;
using Apache.Arrow.Arrays;
using Apache.Arrow.Types;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Tests;

/// <summary>
/// Test helpers over Apache.Arrow's arrays and schemas (shared by the test projects as a linked file): look-ups by name,
/// metadata, PostgreSQL text of a column, and boxed values for assertions.
/// </summary>
internal static class ArrowTestExtensions
{
    /// <summary>Index of the first field named <paramref name="name"/> (ordinal), or -1.</summary>
    public static int IndexOf(this Schema schema, string name)
    {
        for (var i = 0; i < schema.FieldsList.Count; i++)
        {
            if (schema.FieldsList[i].Name == name)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>The first field named <paramref name="name"/>; throws when there is none.</summary>
    public static Field Field(this Schema schema, string name) =>
        schema.IndexOf(name) is >= 0 and var i ? schema.GetFieldByIndex(i) : throw new KeyNotFoundException($"no field '{name}'");

    /// <summary>The first column named <paramref name="name"/>; throws when there is none.</summary>
    public static IArrowArray Col(this RecordBatch batch, string name) =>
        batch.Schema.IndexOf(name) is >= 0 and var i ? batch.Column(i) : throw new KeyNotFoundException($"no column '{name}'");

    public static string? GetMetadata(this Field field, string key) =>
        field.Metadata is not null && field.Metadata.TryGetValue(key, out var value) ? value : null;

    public static string? GetMetadata(this Schema schema, string key) =>
        schema.Metadata is not null && schema.Metadata.TryGetValue(key, out var value) ? value : null;

    /// <summary>The child fields of a nested type (list item, struct members, map entries), else none.</summary>
    public static IReadOnlyList<Field> Children(this Field field) =>
        (field.DataType is ExtensionType e ? e.StorageType : field.DataType) is NestedType nested ? nested.Fields : [];

    /// <summary>PostgreSQL's text of column <paramref name="column"/> in <paramref name="row"/> (the value column only, no <c>_special</c>).</summary>
    public static string? Render(this RecordBatch batch, string column, int row)
    {
        var i = batch.Schema.IndexOf(column);
        return PgTextRenderer.Render(batch.Column(i), batch.Schema.GetFieldByIndex(i), row);
    }

    /// <summary>The strings of the list in <paramref name="row"/> (e.g. <c>_unchanged</c>), or null for a null list.</summary>
    public static string[]? Strings(this IArrowArray array, int row)
    {
        var list = (ListArray)array;
        if (list.IsNull(row))
        {
            return null;
        }

        var values = (StringArray)list.Values;
        return Enumerable.Range(list.ValueOffsets[row], list.ValueOffsets[row + 1] - list.ValueOffsets[row]).Select(i => values.GetString(i)).ToArray();
    }

    /// <summary>Start (inclusive) and end (exclusive) of a list slot in its values.</summary>
    public static (int Start, int End) Range(this ListArray list, int row) => (list.ValueOffsets[row], list.ValueOffsets[row + 1]);

    /// <summary>
    /// The boxed value in <paramref name="row"/>, or null for a null slot: CLR numbers of the array's type, strings, byte
    /// arrays for binary, fixed-size binary and uuid values, decimal text for decimals, <c>object?[]</c> for lists and
    /// structs, and for maps a list of <c>object?[] { key, value }</c>.
    /// </summary>
    public static object? Value(this IArrowArray array, int row)
    {
        if (array is GuidArray guid)
        {
            return guid.IsNull(row) ? null : guid.StorageArray.GetBytes(row).ToArray();
        }

        if (array.IsNull(row))
        {
            return null;
        }

        return array switch
        {
            BooleanArray a => a.GetValue(row),
            Int8Array a => a.Values[row],
            Int16Array a => a.Values[row],
            Int32Array a => a.Values[row],
            Int64Array a => a.Values[row],
            UInt8Array a => a.Values[row],
            UInt16Array a => a.Values[row],
            UInt32Array a => a.Values[row],
            UInt64Array a => a.Values[row],
            FloatArray a => a.Values[row],
            DoubleArray a => a.Values[row],
            Date32Array a => a.Values[row],
            Time64Array a => a.Values[row],
            TimestampArray a => a.Values[row],
            MonthDayNanosecondIntervalArray a => a.Values[row],
            Decimal128Array a => a.GetString(row),
            Decimal256Array a => a.GetString(row),
            StringArray a => a.GetString(row),
            BinaryArray a => a.GetBytes(row).ToArray(),
            FixedSizeBinaryArray a => a.GetBytes(row).ToArray(),
            MapArray a => Enumerable.Range(a.ValueOffsets[row], a.ValueOffsets[row + 1] - a.ValueOffsets[row])
                .Select(i => (object?)new object?[] { a.Keys.Value(i), a.Values.Value(i) }).ToArray(),
            ListArray a => Enumerable.Range(a.ValueOffsets[row], a.ValueOffsets[row + 1] - a.ValueOffsets[row]).Select(i => a.Values.Value(i)).ToArray(),
            StructArray a => a.Fields.Select(f => f.Value(row)).ToArray(),
            _ => throw new NotSupportedException(array.GetType().Name),
        };
    }
}
