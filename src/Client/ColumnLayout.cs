using System.Text;
using Apache.Arrow;
using Apache.Arrow.Types;

namespace WalBridge.Client;

/// <summary>
/// Where the columns of one record's schema are (docs/format.md, <em>Columns</em>): the system columns at positions 0–4
/// and the last three, the table's columns between them, looked up by name. Built once per record; immutable.
/// </summary>
internal sealed class ColumnLayout
{
    private readonly Dictionary<string, int> _ordinals;

    private ColumnLayout(Schema schema, string[] names, Dictionary<string, int> ordinals)
    {
        Schema = schema;
        Names = names;
        _ordinals = ordinals;
        NameUtf8 = [.. names.Select(Encoding.UTF8.GetBytes)];
        BeforeNameUtf8 = [.. names.Select(n => Encoding.UTF8.GetBytes(WalBridgeFormat.BeforePrefix + n))];
    }

    public Schema Schema { get; }

    /// <summary>The table's column names, in attribute order.</summary>
    public string[] Names { get; }

    /// <summary>The names as UTF-8, to find them in <c>_unchanged</c> and <c>_special</c> without decoding every entry.</summary>
    public byte[][] NameUtf8 { get; }

    /// <summary><c>_before.</c> + the name, as UTF-8.</summary>
    public byte[][] BeforeNameUtf8 { get; }

    public int TableColumns => Names.Length;

    public int BeforeIndex => WalBridgeFormat.LeadingColumns + Names.Length;

    /// <summary>The ordinal (0-based, among the table's columns) of the first table column named <paramref name="name"/>.</summary>
    /// <exception cref="ArgumentException">The table has no such column.</exception>
    public int Ordinal(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _ordinals.TryGetValue(name, out var ordinal)
            ? ordinal
            : throw new ArgumentException($"The table has no column '{name}' in this record's schema (its columns: {string.Join(", ", Names)}).", nameof(name));
    }

    /// <summary>Checks that <paramref name="schema"/> has format 2's layout and returns where its columns are.</summary>
    public static ColumnLayout For(Schema schema)
    {
        var fields = schema.FieldsList;
        if (fields.Count < WalBridgeFormat.LeadingColumns + 4)
        {
            throw Invalid(schema, $"it has {fields.Count} fields, fewer than the 8 system columns and one table column");
        }

        Expect(schema, 0, WalBridgeFormat.OpColumn, ArrowTypeId.String);
        Expect(schema, 1, WalBridgeFormat.LsnColumn, ArrowTypeId.UInt64);
        Expect(schema, 2, WalBridgeFormat.XidColumn, ArrowTypeId.UInt32);
        Expect(schema, 3, WalBridgeFormat.CommitLsnColumn, ArrowTypeId.UInt64);
        Expect(schema, 4, WalBridgeFormat.CommitTimestampColumn, ArrowTypeId.Timestamp);
        var n = fields.Count - WalBridgeFormat.LeadingColumns - 3;
        Expect(schema, n + 5, WalBridgeFormat.BeforeColumn, ArrowTypeId.Struct);
        Expect(schema, n + 6, WalBridgeFormat.UnchangedColumn, ArrowTypeId.List);
        Expect(schema, n + 7, WalBridgeFormat.SpecialColumn, ArrowTypeId.Map);
        var names = new string[n];
        var ordinals = new Dictionary<string, int>(n, StringComparer.Ordinal);
        for (var i = 0; i < n; i++)
        {
            names[i] = fields[WalBridgeFormat.LeadingColumns + i].Name;
            ordinals.TryAdd(names[i], i);   // duplicate names are allowed by Arrow; the first one wins (format.md, Name collisions)
        }

        if (((StructType)fields[n + 5].DataType).Fields.Count != n)
        {
            throw Invalid(schema, $"_before has {((StructType)fields[n + 5].DataType).Fields.Count} members for {n} table columns");
        }

        return new ColumnLayout(schema, names, ordinals);
    }

    private static void Expect(Schema schema, int index, string name, ArrowTypeId type)
    {
        var field = schema.GetFieldByIndex(index);
        if (field.Name != name || field.DataType.TypeId != type)
        {
            throw Invalid(schema, $"field {index} is '{field.Name}' ({field.DataType.TypeId}), not '{name}' ({type})");
        }
    }

    private static WalBridgeFormatException Invalid(Schema schema, string problem)
    {
        var table = schema.Metadata is { } metadata && metadata.TryGetValue("pg.table", out var name) ? $" of table {name}" : "";
        return new WalBridgeFormatException($"The record's Arrow schema{table} is not WalBridge payload format {WalBridgeFormat.SupportedVersion}'s layout: {problem}.");
    }
}
