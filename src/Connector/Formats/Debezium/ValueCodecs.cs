using System.Globalization;
using System.Numerics;
using System.Security.Cryptography;
using System.Text;
using Apache.Arrow;
using Apache.Arrow.Arrays;
using Apache.Arrow.Types;
using WalBridge.Connector.Configuration;
using WalBridge.Serialization.Postgres;
using static WalBridge.Connector.Formats.Debezium.ConnectSchema;

namespace WalBridge.Connector.Formats.Debezium;

/// <summary>
/// Writes one table column's values (Apache.Arrow cells of the payload) the way Debezium's PostgreSQL connector represents
/// that column type, for the configured modes. One codec per column (and list item) of a table schema; immutable,
/// thread-safe.
/// </summary>
internal abstract class ValueCodec(ConnectSchema schema)
{
    /// <summary>The column's Connect schema, optional (as in the <c>Value</c> struct).</summary>
    public ConnectSchema Schema { get; } = schema;

    /// <summary>Writes the non-null value at <paramref name="row"/> for <paramref name="schema"/> (this codec's schema, optional or not).</summary>
    public abstract void Write(IConnectWriter writer, ConnectSchema schema, IArrowArray array, int row);

    /// <summary>
    /// Writes the value of a cell Arrow could not hold (PostgreSQL's text from <c>_special</c>) where Debezium has a rule
    /// for it; false when it has none (the caller writes null and records the text in the <c>walbridge.special</c> header).
    /// </summary>
    public virtual bool TryWriteSpecial(IConnectWriter writer, ConnectSchema schema, string text) => false;

    /// <summary>Writes Debezium's placeholder for an unchanged TOAST value; false when the type has none.</summary>
    public virtual bool TryWritePlaceholder(IConnectWriter writer, ConnectSchema schema, byte[] placeholder) => false;

    /// <summary>Builds the codec of an Arrow field carrying <c>pg.type</c>/<c>pg.typoid</c> (a table column or a list item).</summary>
    public static ValueCodec For(Field field, OutputSettings settings)
    {
        ArgumentNullException.ThrowIfNull(field);
        ArgumentNullException.ThrowIfNull(settings);
        var pgType = field.Metadata is { } m && m.TryGetValue(PgTypeMapping.TypeKey, out var t) ? t : "";
        var extension = field.Metadata is { } x && x.TryGetValue(PgTypeMapping.ExtensionNameKey, out var e) ? e : null;
        if (extension == "arrow.uuid" || field.DataType is GuidType)
        {
            return new UuidCodec();
        }

        switch (field.DataType)
        {
            case BooleanType:
                return new BooleanCodec();
            case Int16Type:
                return new IntegerCodec(Of(ConnectType.Int16, optional: true));
            case Int32Type:
                return new IntegerCodec(Of(ConnectType.Int32, optional: true));
            case Int64Type:
            case UInt32Type:
                return new IntegerCodec(Of(ConnectType.Int64, optional: true));
            case FloatType:
                return new FloatCodec(single: true);
            case DoubleType:
                return new FloatCodec(single: false);
            case Decimal128Type d:
                return new DecimalCodec(d.Precision, d.Scale, settings.DecimalMode);
            case Decimal256Type d:
                return new DecimalCodec(d.Precision, d.Scale, settings.DecimalMode);
            case BinaryType:
                return new BinaryCodec(settings.BinaryMode);
            case Date32Type:
                return new DateCodec(settings.TimePrecision);
            case TimestampType ts when ts.Timezone is not null:
                return new ZonedTimestampCodec(Precision(pgType));
            case TimestampType:
                return new TimestampCodec(Precision(pgType), settings.TimePrecision);
            case Time64Type:
                return new TimeCodec(Precision(pgType), settings.TimePrecision);
            case IntervalType:
                return new IntervalCodec(settings.IntervalMode);
            case FixedSizeBinaryType { ByteWidth: 16 }:
                return new UuidCodec();
            case ListType list:
                return new ListCodec(For(list.ValueField, settings));
            case StringType:
                return TextCodec(pgType, extension, settings);
            default:
                return new TextRenderingCodec(field);
        }
    }

    private static ValueCodec TextCodec(string pgType, string? extension, OutputSettings settings)
    {
        if (extension == "arrow.json")
        {
            return new StringCodec(Of(ConnectType.String, optional: true, name: JsonName, version: 1));
        }

        var baseType = pgType.Split('(')[0].Trim();
        if (pgType.EndsWith("[]", StringComparison.Ordinal))
        {
            return new ArrayTextCodec(pgType);
        }

        switch (baseType)
        {
            case "numeric":
                return new NumericTextCodec(settings.DecimalMode);
            case "money":
                return new MoneyCodec(settings.DecimalMode, settings.MoneyFractionDigits);
            case "xml":
                return new StringCodec(Of(ConnectType.String, optional: true, name: XmlName, version: 1));
            case "time with time zone":
                return new ZonedTimeCodec();
            case "bit":
            case "bit varying":
                return BitsCodec.Create(pgType);
            case "point":
                return new PointCodec();
        }

        if (pgType.EndsWith(".ltree", StringComparison.Ordinal))
        {
            return new StringCodec(Of(ConnectType.String, optional: true, name: LtreeName, version: 1));
        }

        return new StringCodec(Of(ConnectType.String, optional: true));
    }

    /// <summary>The fractional-second precision in a <c>pg.type</c> such as <c>timestamp(3) with time zone</c> (6 when none is given).</summary>
    internal static int Precision(string pgType)
    {
        var open = pgType.IndexOf('(', StringComparison.Ordinal);
        var close = pgType.IndexOf(')', StringComparison.Ordinal);
        return open >= 0 && close > open && int.TryParse(pgType.AsSpan(open + 1, close - open - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var p) ? p : 6;
    }

    protected static string Utf8(IArrowArray array, int row) => ((StringArray)array).GetString(row);
}

internal sealed class BooleanCodec() : ValueCodec(Of(ConnectType.Boolean, optional: true))
{
    public override void Write(IConnectWriter writer, ConnectSchema schema, IArrowArray array, int row) =>
        writer.Boolean(schema, ((BooleanArray)array).GetValue(row) == true);
}

internal sealed class IntegerCodec(ConnectSchema schema) : ValueCodec(schema)
{
    public override void Write(IConnectWriter writer, ConnectSchema schema, IArrowArray array, int row)
    {
        var value = array switch
        {
            Int16Array a => a.Values[row],
            Int32Array a => a.Values[row],
            Int64Array a => a.Values[row],
            UInt32Array a => (long)a.Values[row],
            _ => throw new InvalidCastException($"integer codec on {array.Data.DataType.Name}"),
        };
        writer.Integer(schema, value);
    }
}

internal sealed class FloatCodec(bool single) : ValueCodec(Of(single ? ConnectType.Float32 : ConnectType.Float64, optional: true))
{
    public override void Write(IConnectWriter writer, ConnectSchema schema, IArrowArray array, int row)
    {
        if (single)
        {
            writer.Float32(schema, ((FloatArray)array).Values[row]);
        }
        else
        {
            writer.Float64(schema, ((DoubleArray)array).Values[row]);
        }
    }
}

/// <summary>Shared decimal output for the three <c>decimal.handling.mode</c>s.</summary>
internal abstract class DecimalOutput(ConnectSchema schema, DecimalHandlingMode mode) : ValueCodec(schema)
{
    protected DecimalHandlingMode Mode { get; } = mode;

    protected static ConnectSchema SchemaFor(DecimalHandlingMode mode, int precision, int scale) => mode switch
    {
        DecimalHandlingMode.Double => Of(ConnectType.Float64, optional: true),
        DecimalHandlingMode.String => Of(ConnectType.String, optional: true),
        _ => Of(ConnectType.Bytes, optional: true, name: DecimalName, version: 1,
            Parameter("scale", scale.ToString(CultureInfo.InvariantCulture)),
            Parameter("connect.decimal.precision", precision.ToString(CultureInfo.InvariantCulture))),
    };

    protected void WriteDecimal(IConnectWriter writer, ConnectSchema schema, BigInteger unscaled, int scale)
    {
        switch (Mode)
        {
            case DecimalHandlingMode.Double:
                writer.Float64(schema, double.Parse(TextForms.PlainDecimal(unscaled, scale), NumberStyles.Float, CultureInfo.InvariantCulture));
                break;
            case DecimalHandlingMode.String:
                writer.String(schema, TextForms.PlainDecimal(unscaled, scale));
                break;
            default:
                writer.Bytes(schema, TextForms.UnscaledBytes(unscaled));
                break;
        }
    }

    /// <summary>NaN and ±Infinity: Debezium's double and string modes have a rule (Double.NaN, <c>NAN</c>); precise has none.</summary>
    public override bool TryWriteSpecial(IConnectWriter writer, ConnectSchema schema, string text)
    {
        var (number, name) = text switch
        {
            "NaN" => (double.NaN, "NAN"),
            "Infinity" => (double.PositiveInfinity, "POSITIVE_INFINITY"),
            "-Infinity" => (double.NegativeInfinity, "NEGATIVE_INFINITY"),
            _ => (0d, null),
        };
        if (name is null)
        {
            return false;
        }

        switch (Mode)
        {
            case DecimalHandlingMode.Double:
                writer.Float64(schema, number);
                return true;
            case DecimalHandlingMode.String:
                writer.String(schema, name);
                return true;
            default:
                return false;
        }
    }
}

/// <summary><c>numeric(p,s)</c> held as decimal128/decimal256.</summary>
internal sealed class DecimalCodec(int precision, int scale, DecimalHandlingMode mode) : DecimalOutput(SchemaFor(mode, precision, scale), mode)
{
    public override void Write(IConnectWriter writer, ConnectSchema schema, IArrowArray array, int row)
    {
        var width = array is Decimal128Array ? 16 : 32;
        var bytes = ((FixedSizeBinaryArray)array).ValueBuffer.Span.Slice((array.Offset + row) * width, width);
        WriteDecimal(writer, schema, new BigInteger(bytes, isUnsigned: false, isBigEndian: false), scale);
    }
}

/// <summary>Unconstrained <c>numeric</c> (PostgreSQL's text): Debezium's <c>VariableScaleDecimal</c> in precise mode.</summary>
internal sealed class NumericTextCodec(DecimalHandlingMode mode) : DecimalOutput(VariableSchema(mode), mode)
{
    private static readonly ConnectSchema s_scale = Of(ConnectType.Int32);
    private static readonly ConnectSchema s_value = Of(ConnectType.Bytes);

    private static ConnectSchema VariableSchema(DecimalHandlingMode mode) => mode == DecimalHandlingMode.Precise
        ? new ConnectSchema
        {
            Type = ConnectType.Struct,
            Optional = true,
            Name = VariableScaleDecimalName,
            Version = 1,
            Doc = "Variable scaled decimal",
            Fields = [new ConnectField("scale", s_scale), new ConnectField("value", s_value)],
        }
        : SchemaFor(mode, 0, 0);

    public override void Write(IConnectWriter writer, ConnectSchema schema, IArrowArray array, int row)
    {
        var text = Utf8(array, row);
        if (!TextForms.TryParseDecimal(text, out var unscaled, out var scale))
        {
            if (TryWriteSpecial(writer, schema, text))
            {
                return;
            }

            throw new UnrepresentableValueException(text);
        }
        if (Mode != DecimalHandlingMode.Precise)
        {
            if (Mode == DecimalHandlingMode.String)
            {
                writer.String(schema, text);
            }
            else
            {
                WriteDecimal(writer, schema, unscaled, scale);
            }

            return;
        }
        var (stripped, strippedScale) = TextForms.StripTrailingZeros(unscaled, scale);
        writer.BeginStruct(schema);
        writer.Field(schema.Fields[0]);
        writer.Integer(s_scale, strippedScale);
        writer.Field(schema.Fields[1]);
        writer.Bytes(s_value, TextForms.UnscaledBytes(stripped));
        writer.EndStruct();
    }
}

/// <summary><c>money</c> (PostgreSQL's text, e.g. <c>-$1,234.56</c>): a decimal with <c>money.fraction.digits</c>.</summary>
internal sealed class MoneyCodec(DecimalHandlingMode mode, int digits) : DecimalOutput(mode == DecimalHandlingMode.Precise
    ? Of(ConnectType.Bytes, optional: true, name: DecimalName, version: 1, Parameter("scale", digits.ToString(CultureInfo.InvariantCulture)))
    : SchemaFor(mode, 0, digits), mode)
{
    public override void Write(IConnectWriter writer, ConnectSchema schema, IArrowArray array, int row)
    {
        var text = Utf8(array, row);
        var negative = text.Contains('-', StringComparison.Ordinal) || text.StartsWith('(');
        var plain = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (char.IsAsciiDigit(c) || c == '.')
            {
                plain.Append(c);
            }
        }
        if (!TextForms.TryParseDecimal(plain.ToString(), out var unscaled, out var scale))
        {
            throw new UnrepresentableValueException(text);
        }

        while (scale < digits)
        {
            unscaled *= 10;
            scale++;
        }
        WriteDecimal(writer, schema, negative ? -unscaled : unscaled, scale);
    }
}

/// <summary>Strings (text types, json, xml, ltree, enums and every type WalBridge keeps as PostgreSQL's text).</summary>
internal sealed class StringCodec(ConnectSchema schema) : ValueCodec(schema)
{
    public override void Write(IConnectWriter writer, ConnectSchema schema, IArrowArray array, int row) =>
        writer.String(schema, ((StringArray)array).GetBytes(row));

    public override bool TryWriteSpecial(IConnectWriter writer, ConnectSchema schema, string text)
    {
        writer.String(schema, text);
        return true;
    }

    public override bool TryWritePlaceholder(IConnectWriter writer, ConnectSchema schema, byte[] placeholder)
    {
        writer.String(schema, placeholder);
        return true;
    }
}

/// <summary>A type WalBridge renders as PostgreSQL text that has no Arrow array Debezium's mapping knows (safety net).</summary>
internal sealed class TextRenderingCodec(Field field) : ValueCodec(Of(ConnectType.String, optional: true))
{
    public override void Write(IConnectWriter writer, ConnectSchema schema, IArrowArray array, int row) =>
        writer.String(schema, PgTextRenderer.Render(array, field, row) ?? "");
}

/// <summary><c>bytea</c> per <c>binary.handling.mode</c>.</summary>
internal sealed class BinaryCodec(BinaryHandlingMode mode) : ValueCodec(mode == BinaryHandlingMode.Bytes ? Of(ConnectType.Bytes, optional: true) : Of(ConnectType.String, optional: true))
{
    public override void Write(IConnectWriter writer, ConnectSchema schema, IArrowArray array, int row) =>
        WriteBytes(writer, schema, ((BinaryArray)array).GetBytes(row));

    public void WriteBytes(IConnectWriter writer, ConnectSchema schema, ReadOnlySpan<byte> bytes)
    {
        switch (mode)
        {
            case BinaryHandlingMode.Bytes:
                writer.Bytes(schema, bytes);
                break;
            case BinaryHandlingMode.Base64:
                writer.String(schema, Convert.ToBase64String(bytes));
                break;
            case BinaryHandlingMode.Base64UrlSafe:
                writer.String(schema, Convert.ToBase64String(bytes).Replace('+', '-').Replace('/', '_'));
                break;
            default:
                writer.String(schema, Convert.ToHexStringLower(bytes));
                break;
        }
    }

    public override bool TryWritePlaceholder(IConnectWriter writer, ConnectSchema schema, byte[] placeholder)
    {
        WriteBytes(writer, schema, placeholder);
        return true;
    }
}

internal sealed class DateCodec(TimePrecisionMode mode) : ValueCodec(Of(ConnectType.Int32, optional: true, name: mode == TimePrecisionMode.Connect ? ConnectDateName : DateName, version: 1))
{
    public override void Write(IConnectWriter writer, ConnectSchema schema, IArrowArray array, int row) =>
        writer.Integer(schema, ((Date32Array)array).Values[row]);
}

/// <summary><c>timestamp(p)</c>: milliseconds (<c>Timestamp</c>) up to p = 3 or in connect mode, else microseconds (<c>MicroTimestamp</c>).</summary>
internal sealed class TimestampCodec : ValueCodec
{
    /// <summary>PostgreSQL's JDBC driver's infinity values, which Debezium emits for <c>±infinity</c> timestamps.</summary>
    internal const long PositiveInfinityMicros = 9223372036825200000;
    internal const long NegativeInfinityMicros = -9223372036832400000;
    private readonly bool _millis;

    public TimestampCodec(int precision, TimePrecisionMode mode)
        : base(Of(ConnectType.Int64, optional: true,
            name: mode == TimePrecisionMode.Connect ? ConnectTimestampName : precision <= 3 ? TimestampName : MicroTimestampName, version: 1)) =>
        _millis = mode == TimePrecisionMode.Connect || precision <= 3;

    public override void Write(IConnectWriter writer, ConnectSchema schema, IArrowArray array, int row)
    {
        var micros = ((TimestampArray)array).Values[row];
        writer.Integer(schema, _millis ? PgCalendar.FloorDiv(micros, 1000) : micros);
    }

    public override bool TryWriteSpecial(IConnectWriter writer, ConnectSchema schema, string text)
    {
        long? value = text switch
        {
            "infinity" => PositiveInfinityMicros,
            "-infinity" => NegativeInfinityMicros,
            _ => null,
        };
        if (value is not { } micros)
        {
            return false;
        }

        writer.Integer(schema, _millis ? micros / 1000 : micros);
        return true;
    }
}

/// <summary><c>timestamptz(p)</c>: <c>ZonedTimestamp</c>, ISO-8601 in UTC with p fraction digits.</summary>
internal sealed class ZonedTimestampCodec(int precision) : ValueCodec(Of(ConnectType.String, optional: true, name: ZonedTimestampName, version: 1))
{
    public override void Write(IConnectWriter writer, ConnectSchema schema, IArrowArray array, int row) =>
        writer.String(schema, TextForms.IsoTimestamp(((TimestampArray)array).Values[row], precision));

    public override bool TryWriteSpecial(IConnectWriter writer, ConnectSchema schema, string text)
    {
        if (text is "infinity" or "-infinity")
        {
            writer.String(schema, text);
            return true;
        }
        return false;
    }
}

/// <summary><c>time(p)</c>: <c>Time</c> (milliseconds) up to p = 3 in adaptive mode or in connect mode, else <c>MicroTime</c>.</summary>
internal sealed class TimeCodec : ValueCodec
{
    private readonly bool _millis;

    public TimeCodec(int precision, TimePrecisionMode mode)
        : base(mode switch
        {
            TimePrecisionMode.Connect => Of(ConnectType.Int32, optional: true, name: ConnectTimeName, version: 1),
            TimePrecisionMode.Adaptive when precision <= 3 => Of(ConnectType.Int32, optional: true, name: TimeName, version: 1),
            _ => Of(ConnectType.Int64, optional: true, name: MicroTimeName, version: 1),
        }) => _millis = Schema.Type == ConnectType.Int32;

    public override void Write(IConnectWriter writer, ConnectSchema schema, IArrowArray array, int row)
    {
        var micros = ((Time64Array)array).Values[row];
        writer.Integer(schema, _millis ? micros / 1000 : micros);
    }
}

/// <summary><c>timetz</c> (PostgreSQL's text <c>12:34:56.789+05:30</c>): <c>ZonedTime</c>, shifted to UTC.</summary>
internal sealed class ZonedTimeCodec() : ValueCodec(Of(ConnectType.String, optional: true, name: ZonedTimeName, version: 1))
{
    public override void Write(IConnectWriter writer, ConnectSchema schema, IArrowArray array, int row) =>
        writer.String(schema, Convert(Utf8(array, row)));

    /// <summary>PostgreSQL's timetz text to Java's ISO_OFFSET_TIME of the same instant at UTC (<c>07:04:56.789Z</c>).</summary>
    internal static string Convert(string text)
    {
        var sign = text.LastIndexOfAny(['+', '-']);
        if (sign <= 0)
        {
            throw new UnrepresentableValueException(text);
        }

        var time = text[..sign].Split(':');
        var offset = text[(sign + 1)..].Split(':');
        var secondsPart = time.Length > 2 ? time[2] : "0";
        var dot = secondsPart.IndexOf('.', StringComparison.Ordinal);
        var fraction = dot >= 0 ? secondsPart[(dot + 1)..].PadRight(6, '0')[..6] : "0";
        var micros = (((long.Parse(time[0], CultureInfo.InvariantCulture) * 60) + long.Parse(time[1], CultureInfo.InvariantCulture)) * 60
            + long.Parse(dot >= 0 ? secondsPart[..dot] : secondsPart, CultureInfo.InvariantCulture)) * 1_000_000 + long.Parse(fraction, CultureInfo.InvariantCulture);
        var offsetSeconds = (long.Parse(offset[0], CultureInfo.InvariantCulture) * 3600) + (offset.Length > 1 ? long.Parse(offset[1], CultureInfo.InvariantCulture) * 60 : 0)
            + (offset.Length > 2 ? long.Parse(offset[2], CultureInfo.InvariantCulture) : 0);
        if (text[sign] == '-')
        {
            offsetSeconds = -offsetSeconds;
        }

        if (micros == 86_400_000_000L && offsetSeconds == 0)
        {
            return "24:00Z"; // PostgreSQL's end-of-day boundary, as Debezium prints it
        }

        var utc = micros - (offsetSeconds * 1_000_000);
        utc = ((utc % 86_400_000_000L) + 86_400_000_000L) % 86_400_000_000L;
        var sb = new StringBuilder(20);
        TextForms.AppendIsoTime(sb, utc, 0);
        return sb.Append('Z').ToString();
    }
}

/// <summary><c>interval</c>: <c>MicroDuration</c> (numeric) or ISO-8601 <c>Interval</c> (string).</summary>
internal sealed class IntervalCodec(IntervalHandlingMode mode) : ValueCodec(mode == IntervalHandlingMode.String
    ? Of(ConnectType.String, optional: true, name: IntervalName, version: 1)
    : Of(ConnectType.Int64, optional: true, name: MicroDurationName, version: 1))
{
    public override void Write(IConnectWriter writer, ConnectSchema schema, IArrowArray array, int row)
    {
        var value = ((MonthDayNanosecondIntervalArray)array).GetValue(row)!.Value;
        var micros = value.Nanoseconds / 1000;
        if (mode == IntervalHandlingMode.String)
        {
            writer.String(schema, TextForms.IsoInterval(value.Months, value.Days, micros));
        }
        else
        {
            writer.Integer(schema, TextForms.MicroDuration(value.Months, value.Days, micros));
        }
    }
}

internal sealed class UuidCodec() : ValueCodec(Of(ConnectType.String, optional: true, name: UuidName, version: 1))
{
    public override void Write(IConnectWriter writer, ConnectSchema schema, IArrowArray array, int row)
    {
        var bytes = array is GuidArray g ? g.StorageArray.GetBytes(row) : ((FixedSizeBinaryArray)array).GetBytes(row);
        writer.String(schema, PgTextRenderer.FormatUuid(bytes));
    }

    /// <summary>Java's <c>UUID.nameUUIDFromBytes</c> (MD5, version 3), which Debezium uses as the uuid placeholder.</summary>
    internal static string NameUuid(byte[] name)
    {
#pragma warning disable CA5351 // not security: Java's name-based UUID (version 3) is defined with MD5
        var hash = MD5.HashData(name);
#pragma warning restore CA5351
        hash[6] = (byte)((hash[6] & 0x0f) | 0x30);
        hash[8] = (byte)((hash[8] & 0x3f) | 0x80);
        return PgTextRenderer.FormatUuid(hash);
    }
}

/// <summary>One-dimensional arrays held as Arrow lists: an ARRAY of the element's schema.</summary>
internal sealed class ListCodec(ValueCodec element) : ValueCodec(ArrayOf(element.Schema, optional: true))
{
    public ValueCodec Element { get; } = element;

    public override void Write(IConnectWriter writer, ConnectSchema schema, IArrowArray array, int row)
    {
        var list = (ListArray)array;
        var start = list.ValueOffsets[row];
        var end = list.ValueOffsets[row + 1];
        var items = schema.ValueSchema!;
        writer.BeginArray(schema, end - start);
        for (var i = start; i < end; i++)
        {
            if (list.Values.IsNull(i))
            {
                writer.Null(items);
            }
            else
            {
                Element.Write(writer, items, list.Values, i);
            }
        }
        writer.EndArray();
    }

    /// <summary>Debezium's array placeholders: <c>[placeholder]</c> for text, bytes and uuid arrays, the placeholder's bytes as numbers for integer arrays.</summary>
    public override bool TryWritePlaceholder(IConnectWriter writer, ConnectSchema schema, byte[] placeholder)
    {
        var items = schema.ValueSchema!;
        switch (Element)
        {
            case StringCodec:
            case BinaryCodec:
                writer.BeginArray(schema, 1);
                Element.TryWritePlaceholder(writer, items, placeholder);
                writer.EndArray();
                return true;
            case UuidCodec:
                writer.BeginArray(schema, 1);
                writer.String(items, UuidCodec.NameUuid(placeholder));
                writer.EndArray();
                return true;
            case IntegerCodec when items.Type is ConnectType.Int32 or ConnectType.Int64 or ConnectType.Int16:
                writer.BeginArray(schema, placeholder.Length);
                foreach (var b in placeholder)
                {
                    writer.Integer(items, (sbyte)b);
                }
                writer.EndArray();
                return true;
            default:
                return false;
        }
    }
}

/// <summary>Arrays WalBridge keeps as PostgreSQL's text (elements of types without a native Arrow mapping): ARRAY of STRING.</summary>
internal sealed class ArrayTextCodec(string pgType) : ValueCodec(ArrayOf(Of(ConnectType.String, optional: true), optional: true))
{
    public string PgType { get; } = pgType;

    public override void Write(IConnectWriter writer, ConnectSchema schema, IArrowArray array, int row)
    {
        var text = Utf8(array, row);
        var elements = PgArrayText.TryParse(text) ?? throw new UnrepresentableValueException(text);
        writer.BeginArray(schema, elements.Count);
        foreach (var element in elements)
        {
            if (element is null)
            {
                writer.Null(schema.ValueSchema!);
            }
            else
            {
                writer.String(schema.ValueSchema!, element);
            }
        }
        writer.EndArray();
    }

    public override bool TryWritePlaceholder(IConnectWriter writer, ConnectSchema schema, byte[] placeholder)
    {
        writer.BeginArray(schema, 1);
        writer.String(schema.ValueSchema!, placeholder);
        writer.EndArray();
        return true;
    }
}

/// <summary><c>bit(1)</c> as BOOLEAN, longer <c>bit(n)</c>/<c>varbit(n)</c> as Debezium's <c>Bits</c> (little-endian bytes).</summary>
internal sealed class BitsCodec(ConnectSchema schema) : ValueCodec(schema)
{
    public static BitsCodec Create(string pgType)
    {
        var varying = pgType.StartsWith("bit varying", StringComparison.Ordinal);
        var length = pgType.Contains('(', StringComparison.Ordinal) ? Precision(pgType) : varying ? int.MaxValue : 1;
        return new BitsCodec(length == 1
            ? Of(ConnectType.Boolean, optional: true)
            : Of(ConnectType.Bytes, optional: true, name: BitsName, version: 1, Parameter("length", length.ToString(CultureInfo.InvariantCulture))));
    }

    public override void Write(IConnectWriter writer, ConnectSchema schema, IArrowArray array, int row)
    {
        var text = Utf8(array, row);
        if (schema.Type == ConnectType.Boolean)
        {
            writer.Boolean(schema, text.Contains('1', StringComparison.Ordinal));
            return;
        }
        // Bit i (counted from the right end of the text) is bit i%8 of byte i/8, as Java's BitSet.toByteArray gives them.
        var bytes = new byte[Math.Max(1, (text.Length + 7) / 8)];
        var highest = -1;
        for (var i = 0; i < text.Length; i++)
        {
            if (text[text.Length - 1 - i] == '1')
            {
                bytes[i / 8] |= (byte)(1 << (i % 8));
                highest = i;
            }
        }
        writer.Bytes(schema, bytes.AsSpan(0, highest < 0 ? 0 : (highest / 8) + 1));
    }
}

/// <summary><c>point</c> (PostgreSQL's text <c>(x,y)</c>): Debezium's <c>geometry.Point</c> struct with its WKB.</summary>
internal sealed class PointCodec() : ValueCodec(new ConnectSchema
{
    Type = ConnectType.Struct,
    Optional = true,
    Name = PointName,
    Version = 1,
    Doc = "Geometry (POINT)",
    Fields =
    [
        new ConnectField("x", Of(ConnectType.Float64)),
        new ConnectField("y", Of(ConnectType.Float64)),
        new ConnectField("wkb", Of(ConnectType.Bytes, optional: true)),
        new ConnectField("srid", Of(ConnectType.Int32, optional: true)),
    ],
})
{
    public override void Write(IConnectWriter writer, ConnectSchema schema, IArrowArray array, int row)
    {
        var text = Utf8(array, row).Trim('(', ')', ' ');
        var comma = text.IndexOf(',', StringComparison.Ordinal);
        if (comma < 0)
        {
            throw new UnrepresentableValueException(text);
        }

        var x = double.Parse(text[..comma], NumberStyles.Float, CultureInfo.InvariantCulture);
        var y = double.Parse(text[(comma + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture);
        Span<byte> wkb = stackalloc byte[21];
        wkb[0] = 1; // little endian
        BitConverter.TryWriteBytes(wkb[1..], 1u);
        BitConverter.TryWriteBytes(wkb[5..], x);
        BitConverter.TryWriteBytes(wkb[13..], y);
        writer.BeginStruct(schema);
        writer.Field(schema.Fields[0]);
        writer.Float64(schema.Fields[0].Schema, x);
        writer.Field(schema.Fields[1]);
        writer.Float64(schema.Fields[1].Schema, y);
        writer.Field(schema.Fields[2]);
        writer.Bytes(schema.Fields[2].Schema, wkb);
        writer.Field(schema.Fields[3]);
        writer.Null(schema.Fields[3].Schema);
        writer.EndStruct();
    }
}

/// <summary>A value has no representation in the column's Debezium type; the encoder keeps its text in a header instead.</summary>
internal sealed class UnrepresentableValueException : Exception
{
    public UnrepresentableValueException(string text) : base($"no Debezium representation for '{text}'") => Text = text;
    public UnrepresentableValueException() { }
    public UnrepresentableValueException(string message, Exception inner) : base(message, inner) { }

    public string Text { get; } = "";
}
