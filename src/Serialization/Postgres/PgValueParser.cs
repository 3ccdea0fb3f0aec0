using System.Buffers.Binary;
using System.Globalization;
using System.Text.Unicode;
using WalBridge.Serialization.Columns;

namespace WalBridge.Serialization.Postgres;

/// <summary>
/// Converts pgoutput tuple values (text or binary) and appends them to the column's Arrow builder.
/// Allocation-free on success; failures throw <see cref="PgValueFormatException"/> naming column, type and value.
/// This file holds the entry points and shared helpers; the type families are in PgValueParser.Numeric.cs,
/// .DateTime.cs, .Strings.cs and .Arrays.cs.
/// </summary>
internal static partial class PgValueParser
{
    /// <summary>
    /// Marks a valid PostgreSQL value that the column's Arrow type cannot hold (numeric NaN/±Infinity in a decimal,
    /// ±infinity or out-of-range dates and timestamps, intervals beyond int64 nanoseconds, multi-dimensional arrays,
    /// arrays with a lower bound other than 1, such values as array elements). Never a user-visible message.
    /// </summary>
    private const string SpecialMarker = "\u0000special";

    /// <summary>
    /// Appends <paramref name="value"/> to <paramref name="builder"/> and returns true; or, for a value the Arrow type
    /// cannot hold, appends nothing, writes PostgreSQL's exact text of the value (UTF-8) to <paramref name="specialText"/>
    /// and returns false. Malformed input throws <see cref="PgValueFormatException"/>.
    /// </summary>
    public static bool Append(ArrayBuilder builder, PgColumnType type, string column, ReadOnlySpan<byte> value, TupleFormat format, PooledBuffer specialText)
    {
        var ok = format == TupleFormat.Text ? AppendText(builder, type, value, out var problem) : AppendBinary(builder, type, value, out problem);
        if (ok)
        {
            return true;
        }

        if (IsSpecial(problem))
        {
            if (builder is ListBuilder list)
            {
                list.DiscardOpenElements();
            }

            if (format == TupleFormat.Text)
            {
                value.CopyTo(specialText.Append(value.Length));
            }
            else
            {
                string text;
                try
                {
                    text = PgBinaryText.SpecialText(type, value);
                }
                catch (Exception e) when (e is ArgumentOutOfRangeException or IndexOutOfRangeException or InvalidOperationException)
                {
                    throw new PgValueFormatException(column, type.PgTypeName, PgValueFormatException.Describe(value, format), "malformed value: " + e.Message);
                }

                var max = System.Text.Encoding.UTF8.GetMaxByteCount(text.Length);
                var n = System.Text.Encoding.UTF8.GetBytes(text, specialText.GetTail(max));
                specialText.Commit(n);
            }

            return false;
        }

        throw new PgValueFormatException(column, type.PgTypeName, PgValueFormatException.Describe(value, format), problem ?? "malformed value");
    }

    internal static bool IsSpecial(string? problem) => ReferenceEquals(problem, SpecialMarker);

    /// <summary>Appends a binary value to a scratch builder (used to render binary array elements as text); false with <paramref name="special"/> when Arrow cannot hold it.</summary>
    internal static bool TryAppendBinary(ArrayBuilder builder, PgColumnType type, ReadOnlySpan<byte> value, out bool special, out string? problem)
    {
        var ok = AppendBinary(builder, type, value, out problem);
        special = !ok && IsSpecial(problem);
        return ok;
    }

    private static bool Fail(out string problem, string message)
    {
        problem = message;
        return false;
    }

    private static bool Special(out string problem)
    {
        problem = SpecialMarker;
        return false;
    }

    // ---------------------------------------------------------------- text

    private static bool AppendText(ArrayBuilder builder, PgColumnType type, ReadOnlySpan<byte> v, out string? problem)
    {
        problem = null;
        switch (type.Kind)
        {
            case PgValueKind.Bool:
                if (v.Length == 1 && (v[0] == (byte)'t' || v[0] == (byte)'f'))
                {
                    ((BooleanBuilder)builder).Append(v[0] == (byte)'t');
                    return true;
                }

                return Fail(out problem, "expected 't' or 'f'");
            case PgValueKind.Int16:
                if (short.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var i16))
                {
                    BinaryPrimitives.WriteInt16LittleEndian(Fixed(builder).AppendValue(), i16);
                    return true;
                }

                return Fail(out problem, "not a smallint");
            case PgValueKind.Int32:
                if (int.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var i32))
                {
                    BinaryPrimitives.WriteInt32LittleEndian(Fixed(builder).AppendValue(), i32);
                    return true;
                }

                return Fail(out problem, "not an integer");
            case PgValueKind.Int64:
                if (long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var i64))
                {
                    Fixed(builder).AppendInt64(i64);
                    return true;
                }

                return Fail(out problem, "not a bigint");
            case PgValueKind.Oid:
                if (uint.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var u32))
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(Fixed(builder).AppendValue(), u32);
                    return true;
                }

                return Fail(out problem, "not an oid");
            case PgValueKind.Float32:
                if (TryParseFloat(v, out var f32))
                {
                    // Parse finite values directly as float: the text is float4's shortest exact form.
                    // NaN gets PostgreSQL's own bit pattern (float4in's NAN), as its binary form and wal2arrow have.
                    var f = double.IsNaN(f32) ? PgFloat4NaN
                        : double.IsFinite(f32) && float.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var exact) ? exact : (float)f32;
                    BinaryPrimitives.WriteSingleLittleEndian(Fixed(builder).AppendValue(), f);
                    return true;
                }

                return Fail(out problem, "not a real");
            case PgValueKind.Float64:
                if (TryParseFloat(v, out var f64))
                {
                    BinaryPrimitives.WriteDoubleLittleEndian(Fixed(builder).AppendValue(), f64);
                    return true;
                }

                return Fail(out problem, "not a double precision");
            case PgValueKind.Decimal:
                return ParseDecimalText(Fixed(builder), type, v, out problem);
            case PgValueKind.Text or PgValueKind.Json or PgValueKind.FallbackText or PgValueKind.NumericText or PgValueKind.Jsonb:
                if (!Utf8.IsValid(v))
                {
                    return Fail(out problem, "not valid UTF-8");
                }

                ((VarBinaryBuilder)builder).Append(v);
                return true;
            case PgValueKind.Bytea:
                return ParseByteaText((VarBinaryBuilder)builder, v, out problem);
            case PgValueKind.Date:
                {
                    var pos = 0;
                    if (!ParseDateFields(v, ref pos, out var date, out problem)
                        || !ResolveDate(date, ParseEra(v, ref pos), out var days, out problem) || !AtEnd(v, pos, out problem))
                    {
                        return false;
                    }

                    if (days is > int.MaxValue or < int.MinValue)
                    {
                        return Fail(out problem, "date out of range");
                    }

                    BinaryPrimitives.WriteInt32LittleEndian(Fixed(builder).AppendValue(), (int)days);
                    return true;
                }

            case PgValueKind.Timestamp or PgValueKind.TimestampTz:
                return ParseTimestampText(Fixed(builder), type.Kind == PgValueKind.TimestampTz, v, out problem);
            case PgValueKind.Time:
                {
                    var pos = 0;
                    if (!ParseTime(v, ref pos, 24, out var micros, out problem) || !AtEnd(v, pos, out problem))
                    {
                        return false;
                    }

                    if (micros > PgCalendar.MicrosPerDay)
                    {
                        return Fail(out problem, "time out of range");
                    }

                    Fixed(builder).AppendInt64(micros);
                    return true;
                }

            case PgValueKind.Interval:
                return ParseIntervalText(Fixed(builder), v, out problem);
            case PgValueKind.Uuid:
                return ParseUuidText(Fixed(builder), v, out problem);
            case PgValueKind.Array:
                return ParseArrayText((ListBuilder)builder, type.Element!, v, out problem);
            default:
                return Fail(out problem, $"unsupported conversion {type.Kind}");
        }
    }

    private static FixedWidthBuilder Fixed(ArrayBuilder builder) => (FixedWidthBuilder)builder;

    private static bool AtEnd(ReadOnlySpan<byte> v, int pos, out string? problem)
    {
        problem = pos == v.Length ? null : $"unexpected text at position {pos}";
        return problem is null;
    }

    private static bool IsDigit(byte b) => (uint)(b - '0') <= 9;

    /// <summary>Reads between <paramref name="min"/> and <paramref name="max"/> digits.</summary>
    private static bool Digits(ReadOnlySpan<byte> v, ref int pos, int min, int max, out long value)
    {
        value = 0;
        var start = pos;
        while (pos < v.Length && pos - start < max && IsDigit(v[pos]))
        {
            value = (value * 10) + (v[pos] - '0');
            pos++;
        }

        return pos - start >= min && (pos >= v.Length || !IsDigit(v[pos]));
    }

    private static bool Expect(ReadOnlySpan<byte> v, ref int pos, byte c)
    {
        if (pos < v.Length && v[pos] == c)
        {
            pos++;
            return true;
        }

        return false;
    }

    private static bool Length(ReadOnlySpan<byte> v, int expected, out string? problem)
    {
        problem = v.Length == expected ? null : $"binary value must be {expected} bytes, got {v.Length}";
        return problem is null;
    }

    private static bool AppendBinary(ArrayBuilder builder, PgColumnType type, ReadOnlySpan<byte> v, out string? problem)
    {
        problem = null;
        switch (type.Kind)
        {
            case PgValueKind.Bool:
                if (!Length(v, 1, out problem))
                {
                    return false;
                }

                ((BooleanBuilder)builder).Append(v[0] != 0);
                return true;
            case PgValueKind.Int16:
                if (!Length(v, 2, out problem))
                {
                    return false;
                }

                BinaryPrimitives.WriteInt16LittleEndian(Fixed(builder).AppendValue(), BinaryPrimitives.ReadInt16BigEndian(v));
                return true;
            case PgValueKind.Int32 or PgValueKind.Oid:
                if (!Length(v, 4, out problem))
                {
                    return false;
                }

                BinaryPrimitives.WriteInt32LittleEndian(Fixed(builder).AppendValue(), BinaryPrimitives.ReadInt32BigEndian(v));
                return true;
            case PgValueKind.Int64:
                if (!Length(v, 8, out problem))
                {
                    return false;
                }

                Fixed(builder).AppendInt64(BinaryPrimitives.ReadInt64BigEndian(v));
                return true;
            case PgValueKind.Float32:
                if (!Length(v, 4, out problem))
                {
                    return false;
                }

                BinaryPrimitives.WriteSingleLittleEndian(Fixed(builder).AppendValue(), BinaryPrimitives.ReadSingleBigEndian(v));
                return true;
            case PgValueKind.Float64:
                if (!Length(v, 8, out problem))
                {
                    return false;
                }

                BinaryPrimitives.WriteDoubleLittleEndian(Fixed(builder).AppendValue(), BinaryPrimitives.ReadDoubleBigEndian(v));
                return true;
            case PgValueKind.Decimal:
                return ParseDecimalBinary(Fixed(builder), type, v, out problem);
            case PgValueKind.NumericText:
                return NumericBinaryToText((VarBinaryBuilder)builder, v, out problem);
            case PgValueKind.Text or PgValueKind.Json:
                if (!Utf8.IsValid(v))
                {
                    return Fail(out problem, "not valid UTF-8");
                }

                ((VarBinaryBuilder)builder).Append(v);
                return true;
            case PgValueKind.Jsonb:
                if (v.IsEmpty || v[0] != 1)
                {
                    return Fail(out problem, "unknown jsonb binary version");
                }

                if (!Utf8.IsValid(v[1..]))
                {
                    return Fail(out problem, "not valid UTF-8");
                }

                ((VarBinaryBuilder)builder).Append(v[1..]);
                return true;
            case PgValueKind.Bytea:
                ((VarBinaryBuilder)builder).Append(v);
                return true;
            case PgValueKind.Date:
                {
                    if (!Length(v, 4, out problem))
                    {
                        return false;
                    }

                    var pgDays = BinaryPrimitives.ReadInt32BigEndian(v);
                    if (pgDays is int.MaxValue or int.MinValue)
                    {
                        return Special(out problem);
                    }

                    var days = (long)pgDays + PgCalendar.PgEpochDays;
                    if (days > int.MaxValue)
                    {
                        return Fail(out problem, "date out of range");
                    }

                    BinaryPrimitives.WriteInt32LittleEndian(Fixed(builder).AppendValue(), (int)days);
                    return true;
                }

            case PgValueKind.Timestamp or PgValueKind.TimestampTz:
                {
                    if (!Length(v, 8, out problem))
                    {
                        return false;
                    }

                    var pgMicros = BinaryPrimitives.ReadInt64BigEndian(v);
                    if (pgMicros is long.MaxValue or long.MinValue)
                    {
                        return Special(out problem);
                    }

                    if (pgMicros > long.MaxValue - PgCalendar.PgEpochMicros)
                    {
                        return Special(out problem);
                    }

                    Fixed(builder).AppendInt64(pgMicros + PgCalendar.PgEpochMicros);
                    return true;
                }

            case PgValueKind.Time:
                {
                    if (!Length(v, 8, out problem))
                    {
                        return false;
                    }

                    var micros = BinaryPrimitives.ReadInt64BigEndian(v);
                    if (micros < 0 || micros > PgCalendar.MicrosPerDay)
                    {
                        return Fail(out problem, "time out of range");
                    }

                    Fixed(builder).AppendInt64(micros);
                    return true;
                }

            case PgValueKind.Interval:
                if (!Length(v, 16, out problem))
                {
                    return false;
                }

                return WriteInterval(Fixed(builder), BinaryPrimitives.ReadInt32BigEndian(v[12..]), BinaryPrimitives.ReadInt32BigEndian(v[8..]), BinaryPrimitives.ReadInt64BigEndian(v), out problem);
            case PgValueKind.Uuid:
                if (!Length(v, 16, out problem))
                {
                    return false;
                }

                v.CopyTo(Fixed(builder).AppendValue());
                return true;
            case PgValueKind.Array:
                return ParseArrayBinary((ListBuilder)builder, type.Element!, v, out problem);
            default:
                return Fail(out problem, "binary tuple data is unsupported for this type (its send format is not decoded); replicate it in text format");
        }
    }
}
