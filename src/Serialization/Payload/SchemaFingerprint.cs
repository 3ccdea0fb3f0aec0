using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Apache.Arrow;
using Apache.Arrow.Types;

namespace WalBridge.Serialization.Payload;

/// <summary>
/// The schema fingerprint of the <c>walbridge.schema_fingerprint</c> header: the first 16 hex digits (lower case) of the
/// SHA-256 of the schema's canonical text (<see cref="CanonicalText"/>, docs/format.md "Kafka headers"). It depends only
/// on the schema (names, types, nullability, metadata), never on how an encoder lays out the schema message, so the
/// connector and the wal2arrow plugin (native/wal2arrow, its own encoder) compute the same value.
/// </summary>
public static class SchemaFingerprint
{
    /// <summary>First line of the canonical text; a different canonical form would get a new version.</summary>
    public const string Version = "walbridge.schema.v1";

    public static string Compute(Schema schema) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(CanonicalText(schema))))[..16];

    /// <summary>
    /// The canonical text of <paramref name="schema"/>, lines ending in <c>\n</c>:
    /// <code>
    /// walbridge.schema.v1
    /// fields &lt;count&gt;
    /// field &lt;name&gt; &lt;type&gt; nullable|not-null meta &lt;count&gt;[ &lt;key&gt;=&lt;value&gt;]... children &lt;count&gt;
    ///   (each field's children follow it, recursively, in order)
    /// schema meta &lt;count&gt;[ &lt;key&gt;=&lt;value&gt;]...
    /// </code>
    /// Every name, key and value is written as its UTF-8 byte length in decimal, <c>:</c>, and its bytes (so <c>_op</c> is
    /// <c>3:_op</c>); metadata keeps its order. Types: <c>bool</c>, <c>int8</c>…<c>int64</c>, <c>uint8</c>…<c>uint64</c>,
    /// <c>float16</c>/<c>float32</c>/<c>float64</c>, <c>utf8</c>, <c>binary</c>, <c>decimal128(p,s)</c>, <c>decimal256(p,s)</c>,
    /// <c>date32</c>, <c>date64</c>, <c>time32[s|ms]</c>, <c>time64[us|ns]</c>, <c>timestamp[unit]</c> or
    /// <c>timestamp[unit,&lt;tz&gt;]</c> (tz as a length-prefixed string), <c>interval[year_month|day_time|month_day_nano]</c>,
    /// <c>fixed_size_binary(w)</c>, <c>list</c>, <c>struct</c>, <c>map(keys_sorted=false|true)</c>. An extension type is
    /// described by its storage type (its name and metadata are in the field metadata).
    /// </summary>
    public static string CanonicalText(Schema schema)
    {
        ArgumentNullException.ThrowIfNull(schema);
        var text = new StringBuilder(1024);
        text.Append(Version).Append('\n');
        text.Append("fields ").Append(schema.FieldsList.Count.ToString(CultureInfo.InvariantCulture)).Append('\n');
        foreach (var field in schema.FieldsList)
        {
            AppendField(text, field);
        }

        text.Append("schema meta");
        AppendMetadata(text, schema.Metadata);
        text.Append('\n');
        return text.ToString();
    }

    private static void AppendField(StringBuilder text, Field field)
    {
        var type = field.DataType is ExtensionType extension ? extension.StorageType : field.DataType;
        text.Append("field ");
        AppendString(text, field.Name);
        text.Append(' ');
        AppendType(text, type, field.Name);
        text.Append(field.IsNullable ? " nullable" : " not-null");
        text.Append(" meta");
        AppendMetadata(text, field.Metadata);
        var children = type is NestedType nested ? nested.Fields : [];
        text.Append(" children ").Append(children.Count.ToString(CultureInfo.InvariantCulture)).Append('\n');
        foreach (var child in children)
        {
            AppendField(text, child);
        }
    }

    private static void AppendMetadata(StringBuilder text, IReadOnlyDictionary<string, string>? metadata)
    {
        text.Append(' ').Append((metadata?.Count ?? 0).ToString(CultureInfo.InvariantCulture));
        if (metadata is null)
        {
            return;
        }

        foreach (var (key, value) in metadata)
        {
            text.Append(' ');
            AppendString(text, key);
            text.Append('=');
            AppendString(text, value);
        }
    }

    private static void AppendString(StringBuilder text, string value) =>
        text.Append(Encoding.UTF8.GetByteCount(value).ToString(CultureInfo.InvariantCulture)).Append(':').Append(value);

    private static void AppendType(StringBuilder text, IArrowType type, string field)
    {
        switch (type)
        {
            case BooleanType:
                text.Append("bool");
                break;
            case IntegerType t:
                text.Append(t.IsSigned ? "int" : "uint").Append(t.BitWidth.ToString(CultureInfo.InvariantCulture));
                break;
            case HalfFloatType:
                text.Append("float16");
                break;
            case FloatType:
                text.Append("float32");
                break;
            case DoubleType:
                text.Append("float64");
                break;
            case StringType:
                text.Append("utf8");
                break;
            case BinaryType:
                text.Append("binary");
                break;
            case Decimal128Type t:
                text.Append(CultureInfo.InvariantCulture, $"decimal128({t.Precision},{t.Scale})");
                break;
            case Decimal256Type t:
                text.Append(CultureInfo.InvariantCulture, $"decimal256({t.Precision},{t.Scale})");
                break;
            case Date32Type:
                text.Append("date32");
                break;
            case Date64Type:
                text.Append("date64");
                break;
            case Time32Type t:
                text.Append("time32[").Append(Unit(t.Unit)).Append(']');
                break;
            case Time64Type t:
                text.Append("time64[").Append(Unit(t.Unit)).Append(']');
                break;
            case TimestampType t:
                text.Append("timestamp[").Append(Unit(t.Unit));
                if (t.Timezone is not null)
                {
                    text.Append(',');
                    AppendString(text, t.Timezone);
                }

                text.Append(']');
                break;
            case IntervalType t:
                text.Append(t.Unit switch
                {
                    IntervalUnit.YearMonth => "interval[year_month]",
                    IntervalUnit.DayTime => "interval[day_time]",
                    _ => "interval[month_day_nano]",
                });
                break;
            case FixedSizeBinaryType t:
                text.Append("fixed_size_binary(").Append(t.ByteWidth.ToString(CultureInfo.InvariantCulture)).Append(')');
                break;
            case ListType:
                text.Append("list");
                break;
            case StructType:
                text.Append("struct");
                break;
            case MapType t:
                text.Append(t.KeySorted ? "map(keys_sorted=true)" : "map(keys_sorted=false)");
                break;
            default:
                throw new NotSupportedException($"Field '{field}': Arrow type {type.Name} has no canonical form for the schema fingerprint.");
        }
    }

    private static string Unit(TimeUnit unit) => unit switch
    {
        TimeUnit.Second => "s",
        TimeUnit.Millisecond => "ms",
        TimeUnit.Microsecond => "us",
        _ => "ns",
    };
}
