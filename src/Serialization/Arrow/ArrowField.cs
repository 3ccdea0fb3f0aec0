namespace WalBridge.Serialization.Arrow;

/// <summary>
/// A named, typed column (or child of a nested column). Immutable.
/// </summary>
/// <remarks>
/// Nested types carry their element/member fields in <see cref="Children"/>: one child for
/// list, large list, fixed-size list and map (the map's <c>entries</c> struct), one per member for struct.
/// Metadata keeps its order (Arrow allows duplicate keys; <see cref="GetMetadata"/> returns the first).
/// </remarks>
public sealed class ArrowField
{
    private static readonly KeyValuePair<string, string>[] NoMetadata = [];
    private static readonly ArrowField[] NoChildren = [];

    public ArrowField(
        string name,
        ArrowType type,
        bool nullable,
        IReadOnlyList<ArrowField>? children = null,
        IReadOnlyList<KeyValuePair<string, string>>? metadata = null,
        DictionaryEncoding? dictionary = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(type);
        Name = name;
        Type = type;
        Nullable = nullable;
        Children = children is null || children.Count == 0 ? NoChildren : children.ToArray();
        Metadata = metadata is null || metadata.Count == 0 ? NoMetadata : metadata.ToArray();
        Dictionary = dictionary;
        int expected = type switch
        {
            ListType or LargeListType or FixedSizeListType or MapType => 1,
            StructType => -1,
            _ => 0,
        };
        if (expected >= 0 && Children.Count != expected)
        {
            throw new ArgumentException($"Field '{name}' of type {type} needs {expected} child field(s), got {Children.Count}.", nameof(children));
        }
    }

    public string Name { get; }
    public ArrowType Type { get; }
    public bool Nullable { get; }
    public IReadOnlyList<ArrowField> Children { get; }
    public IReadOnlyList<KeyValuePair<string, string>> Metadata { get; }

    /// <summary>
    /// Set when the column is dictionary-encoded in the stream: <see cref="Type"/> is then the type of the dictionary's
    /// values and the column's data are indices of <see cref="DictionaryEncoding.IndexType"/> (see <see cref="DictionaryArray"/>).
    /// </summary>
    public DictionaryEncoding? Dictionary { get; }

    /// <summary>The value of the first metadata entry with this key, or null.</summary>
    public string? GetMetadata(string key)
    {
        foreach (var kv in Metadata)
        {
            if (kv.Key == key)
            {
                return kv.Value;
            }
        }

        return null;
    }

    /// <summary>The canonical extension name (<c>ARROW:extension:name</c>), if any.</summary>
    public string? ExtensionName => GetMetadata("ARROW:extension:name");

    public override string ToString() => $"{Name}: {Type}{(Nullable ? "" : " not null")}";
}

/// <summary>The schema of a stream: ordered fields plus schema-level metadata. Immutable.</summary>
public sealed class ArrowSchema
{
    private static readonly KeyValuePair<string, string>[] NoMetadata = [];

    public ArrowSchema(IReadOnlyList<ArrowField> fields, IReadOnlyList<KeyValuePair<string, string>>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(fields);
        Fields = fields.ToArray();
        Metadata = metadata is null || metadata.Count == 0 ? NoMetadata : metadata.ToArray();
    }

    public IReadOnlyList<ArrowField> Fields { get; }
    public IReadOnlyList<KeyValuePair<string, string>> Metadata { get; }

    /// <summary>Index of the first field named <paramref name="name"/> (ordinal comparison), or -1.</summary>
    public int IndexOf(string name)
    {
        for (int i = 0; i < Fields.Count; i++)
        {
            if (Fields[i].Name == name)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>The value of the first schema metadata entry with this key, or null.</summary>
    public string? GetMetadata(string key)
    {
        foreach (var kv in Metadata)
        {
            if (kv.Key == key)
            {
                return kv.Value;
            }
        }

        return null;
    }
}

/// <summary>How a field is dictionary-encoded (Arrow's <c>DictionaryEncoding</c>): dictionary id, index type, ordering.</summary>
public sealed record DictionaryEncoding(long Id, IntType IndexType, bool IsOrdered);
