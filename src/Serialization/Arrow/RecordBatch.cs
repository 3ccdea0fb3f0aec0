namespace WalBridge.Serialization.Arrow;

/// <summary>A set of equal-length columns matching a schema. Immutable; columns are views (see <see cref="ArrowArray"/>).</summary>
public sealed class RecordBatch
{
    public RecordBatch(ArrowSchema schema, int length, IReadOnlyList<ArrowArray> columns)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(columns);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (columns.Count != schema.Fields.Count)
        {
            throw new ArgumentException($"The schema has {schema.Fields.Count} fields but {columns.Count} columns were given.", nameof(columns));
        }

        for (int i = 0; i < columns.Count; i++)
        {
            if (columns[i].Length != length)
            {
                throw new ArgumentException($"Column '{schema.Fields[i].Name}' has length {columns[i].Length}, expected {length}.", nameof(columns));
            }
        }

        Schema = schema;
        Length = length;
        Columns = columns.ToArray();
    }

    public ArrowSchema Schema { get; }
    public int Length { get; }
    public IReadOnlyList<ArrowArray> Columns { get; }

    public ArrowArray Column(int index) => Columns[index];

    /// <summary>The first column named <paramref name="name"/>; throws <see cref="KeyNotFoundException"/> if none.</summary>
    public ArrowArray Column(string name)
    {
        int i = Schema.IndexOf(name);
        return i >= 0 ? Columns[i] : throw new KeyNotFoundException($"The record batch has no column '{name}'.");
    }
}
