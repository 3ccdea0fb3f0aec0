using System.Buffers.Binary;
using System.Globalization;
using System.Text.Unicode;
using WalBridge.Serialization.Columns;

namespace WalBridge.Serialization.Postgres;

/// <summary>
/// Converts pgoutput tuple values (text or binary) and appends them to the column's Arrow builder.
/// Allocation-free on success; failures throw <see cref="PgValueFormatException"/> naming column, type and value.
/// </summary>
internal static class PgValueParser
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
        bool ok = format == TupleFormat.Text ? AppendText(builder, type, value, out string? problem) : AppendBinary(builder, type, value, out problem);
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

                int max = System.Text.Encoding.UTF8.GetMaxByteCount(text.Length);
                int n = System.Text.Encoding.UTF8.GetBytes(text, specialText.GetTail(max));
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
        bool ok = AppendBinary(builder, type, value, out problem);
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
                if (short.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out short i16))
                {
                    BinaryPrimitives.WriteInt16LittleEndian(Fixed(builder).AppendValue(), i16);
                    return true;
                }

                return Fail(out problem, "not a smallint");
            case PgValueKind.Int32:
                if (int.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int i32))
                {
                    BinaryPrimitives.WriteInt32LittleEndian(Fixed(builder).AppendValue(), i32);
                    return true;
                }

                return Fail(out problem, "not an integer");
            case PgValueKind.Int64:
                if (long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long i64))
                {
                    Fixed(builder).AppendInt64(i64);
                    return true;
                }

                return Fail(out problem, "not a bigint");
            case PgValueKind.Oid:
                if (uint.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out uint u32))
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(Fixed(builder).AppendValue(), u32);
                    return true;
                }

                return Fail(out problem, "not an oid");
            case PgValueKind.Float32:
                if (TryParseFloat(v, out double f32))
                {
                    // Parse finite values directly as float: the text is float4's shortest exact form.
                    // NaN gets PostgreSQL's own bit pattern (float4in's NAN), as its binary form and wal2arrow have.
                    float f = double.IsNaN(f32) ? PgFloat4NaN
                        : double.IsFinite(f32) && float.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out float exact) ? exact : (float)f32;
                    BinaryPrimitives.WriteSingleLittleEndian(Fixed(builder).AppendValue(), f);
                    return true;
                }

                return Fail(out problem, "not a real");
            case PgValueKind.Float64:
                if (TryParseFloat(v, out double f64))
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
                int pos = 0;
                if (!ParseDateFields(v, ref pos, out var date, out problem)
                    || !ResolveDate(date, ParseEra(v, ref pos), out long days, out problem) || !AtEnd(v, pos, out problem))
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
                int pos = 0;
                if (!ParseTime(v, ref pos, 24, out long micros, out problem) || !AtEnd(v, pos, out problem))
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

    /// <summary>
    /// PostgreSQL's float8 NaN (<c>get_float8_nan()</c>, C's <c>NAN</c>): the quiet NaN with the sign bit clear,
    /// 0x7FF8000000000000. .NET's <see cref="double.NaN"/> has the sign bit set (0xFFF8000000000000); the text
    /// parser uses PostgreSQL's pattern so that a NaN read from text has the same bytes as one read from
    /// pgoutput's binary form or written by wal2arrow.
    /// </summary>
    internal static readonly double PgFloat8NaN = BitConverter.Int64BitsToDouble(0x7FF8_0000_0000_0000);

    /// <summary>PostgreSQL's float4 NaN (<c>get_float4_nan()</c>): 0x7FC00000.</summary>
    internal static readonly float PgFloat4NaN = BitConverter.Int32BitsToSingle(0x7FC0_0000);

    private static bool TryParseFloat(ReadOnlySpan<byte> v, out double value)
    {
        if (v.SequenceEqual("NaN"u8))
        {
            value = PgFloat8NaN;
            return true;
        }

        if (v.SequenceEqual("Infinity"u8))
        {
            value = double.PositiveInfinity;
            return true;
        }

        if (v.SequenceEqual("-Infinity"u8))
        {
            value = double.NegativeInfinity;
            return true;
        }

        // Reject spellings double.TryParse would accept but PostgreSQL never prints (whitespace, "∞", hex...).
        foreach (byte b in v)
        {
            if (!((b >= '0' && b <= '9') || b == '.' || b == 'e' || b == 'E' || b == '+' || b == '-'))
            {
                value = 0;
                return false;
            }
        }

        return double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out value);
    }

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
        int start = pos;
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

    /// <summary>The fields of a <c>YYYY-MM-DD</c> as printed (the year as written, before any BC suffix is applied).</summary>
    private readonly record struct DateFields(long Year, int Month, int Day);

    /// <summary>
    /// Reads <c>YYYY-MM-DD</c> (4 to 7 year digits: PostgreSQL prints at least four, and dates reach 5874897) without
    /// validating it: whether it is a real day depends on the era, which DateStyle ISO prints at the very end
    /// (after the time and the UTC offset), so <see cref="ResolveDate"/> validates once <see cref="ParseEra"/> has read it.
    /// </summary>
    private static bool ParseDateFields(ReadOnlySpan<byte> v, ref int pos, out DateFields date, out string? problem)
    {
        date = default;
        if (v.SequenceEqual("infinity"u8) || v.SequenceEqual("-infinity"u8))
        {
            return Special(out problem);
        }

        if (!Digits(v, ref pos, 4, 7, out long year) || !Expect(v, ref pos, (byte)'-')
            || !Digits(v, ref pos, 2, 2, out long month) || !Expect(v, ref pos, (byte)'-')
            || !Digits(v, ref pos, 2, 2, out long day))
        {
            return Fail(out problem, "expected YYYY-MM-DD");
        }

        date = new DateFields(year, (int)month, (int)day);
        problem = null;
        return true;
    }

    /// <summary>Reads an optional trailing <c> BC</c>; true when present.</summary>
    private static bool ParseEra(ReadOnlySpan<byte> v, ref int pos)
    {
        if (!v[pos..].StartsWith(" BC"u8))
        {
            return false;
        }

        pos += 3;
        return true;
    }

    /// <summary>
    /// Days since 1970-01-01 of a printed date in its era: year Y BC is astronomical year 1 - Y (1 BC = year 0, a leap
    /// year, as are 5 BC, 9 BC, …). Validated in the proleptic Gregorian calendar of that astronomical year, so BC leap
    /// days (0005-02-29 BC) are accepted and days that do not exist in that year (0004-02-29 BC) are rejected.
    /// </summary>
    private static bool ResolveDate(DateFields date, bool bc, out long days, out string? problem)
    {
        days = 0;
        if (date.Year == 0)
        {
            return Fail(out problem, "invalid date: there is no year 0 (1 BC is followed by 1 AD)");
        }

        long year = bc ? 1 - date.Year : date.Year;
        if (!PgCalendar.IsValidDate(year, date.Month, date.Day))
        {
            return Fail(out problem, bc ? "invalid BC date" : "invalid date");
        }

        days = PgCalendar.DaysFromCivil(year, date.Month, date.Day);
        problem = null;
        return true;
    }

    /// <summary>Parses <c>HH:MM:SS[.ffffff]</c> into microseconds; hours up to <paramref name="maxHours"/>.</summary>
    private static bool ParseTime(ReadOnlySpan<byte> v, ref int pos, int maxHours, out long micros, out string? problem)
    {
        micros = 0;
        if (!Digits(v, ref pos, 2, 2, out long h) || !Expect(v, ref pos, (byte)':')
            || !Digits(v, ref pos, 2, 2, out long m) || !Expect(v, ref pos, (byte)':')
            || !Digits(v, ref pos, 2, 2, out long s))
        {
            return Fail(out problem, "expected HH:MM:SS");
        }

        if (h > maxHours || m > 59 || s > 60)
        {
            return Fail(out problem, "time field out of range");
        }

        if (!ParseFraction(v, ref pos, out long fraction))
        {
            return Fail(out problem, "bad fractional seconds");
        }

        micros = (((h * 60) + m) * 60 + s) * 1_000_000 + fraction;
        problem = null;
        return true;
    }

    private static bool ParseFraction(ReadOnlySpan<byte> v, ref int pos, out long micros)
    {
        micros = 0;
        if (pos >= v.Length || v[pos] != '.')
        {
            return true;
        }

        pos++;
        int digits = 0;
        while (pos < v.Length && IsDigit(v[pos]))
        {
            if (digits < 6)
            {
                micros = (micros * 10) + (v[pos] - '0');
            }
            else if (v[pos] != '0')
            {
                return false; // finer than microseconds: PostgreSQL never prints this
            }

            digits++;
            pos++;
        }

        for (int i = digits; i < 6; i++)
        {
            micros *= 10;
        }

        return digits > 0;
    }

    /// <summary>
    /// timestamp_out / timestamptz_out with DateStyle ISO: <c>YYYY-MM-DD HH:MM:SS[.ffffff][±HH[:MM[:SS]]][ BC]</c>. The
    /// offset is the session TimeZone's at that instant (seconds for local mean time, e.g. <c>+00:19:32</c>); the BC
    /// suffix comes last, after the offset.
    /// </summary>
    private static bool ParseTimestampText(FixedWidthBuilder builder, bool withZone, ReadOnlySpan<byte> v, out string? problem)
    {
        int pos = 0;
        if (!ParseDateFields(v, ref pos, out var date, out problem))
        {
            return false;
        }

        if (!Expect(v, ref pos, (byte)' ') || !ParseTime(v, ref pos, 23, out long micros, out problem))
        {
            problem ??= "expected a time after the date";
            return false;
        }

        long offsetSeconds = 0;
        if (withZone && !ParseUtcOffset(v, ref pos, out offsetSeconds, out problem))
        {
            return false;
        }

        if (!ResolveDate(date, ParseEra(v, ref pos), out long days, out problem) || !AtEnd(v, pos, out problem))
        {
            return false;
        }

        // The local day's start can lie beyond int64 while the instant itself does not (294247-01-10 09:30:54.775807+05:30
        // is long.MaxValue microseconds): add the time of day and the offset first, they are small.
        long value;
        try
        {
            value = checked((days * PgCalendar.MicrosPerDay) + (micros - (offsetSeconds * 1_000_000)));
        }
        catch (OverflowException)
        {
            return Special(out problem); // beyond 294247-01-10: microseconds since 1970 overflow int64
        }

        builder.AppendInt64(value);
        return true;
    }

    /// <summary>Reads a UTC offset as EncodeTimezone prints it: <c>±HH</c>, <c>±HH:MM</c> or <c>±HH:MM:SS</c> (east positive).</summary>
    private static bool ParseUtcOffset(ReadOnlySpan<byte> v, ref int pos, out long offsetSeconds, out string? problem)
    {
        offsetSeconds = 0;
        if (pos >= v.Length || (v[pos] != '+' && v[pos] != '-'))
        {
            return Fail(out problem, "expected a UTC offset such as +00");
        }

        long sign = v[pos++] == '-' ? -1 : 1;
        if (!Digits(v, ref pos, 2, 2, out long oh))
        {
            return Fail(out problem, "bad UTC offset");
        }

        long om = 0, os = 0;
        if (Expect(v, ref pos, (byte)':'))
        {
            if (!Digits(v, ref pos, 2, 2, out om)
                || (Expect(v, ref pos, (byte)':') && !Digits(v, ref pos, 2, 2, out os)))
            {
                return Fail(out problem, "bad UTC offset");
            }
        }

        if (om > 59 || os > 59)
        {
            return Fail(out problem, "bad UTC offset");
        }

        offsetSeconds = sign * ((oh * 3600) + (om * 60) + os);
        problem = null;
        return true;
    }

    private static bool ParseIntervalText(FixedWidthBuilder builder, ReadOnlySpan<byte> v, out string? problem)
    {
        // PostgreSQL's IntervalStyle=postgres output: [N year[s]] [N mon[s]] [N day[s]] [[+-]H:MM:SS[.f]]
        if (v.SequenceEqual("infinity"u8) || v.SequenceEqual("-infinity"u8))
        {
            return Special(out problem); // PostgreSQL 17+
        }

        long months = 0, days = 0, micros = 0;
        int pos = 0;
        bool any = false;
        while (pos < v.Length)
        {
            if (any && !Expect(v, ref pos, (byte)' '))
            {
                return Fail(out problem, "expected a space between interval parts");
            }

            long sign = 1;
            if (pos < v.Length && (v[pos] == '-' || v[pos] == '+'))
            {
                sign = v[pos] == '-' ? -1 : 1;
                pos++;
            }

            if (!Digits(v, ref pos, 1, 18, out long number))
            {
                return Fail(out problem, "expected a number");
            }

            if (pos < v.Length && v[pos] == ':')
            {
                // Time part: hours may have any number of digits.
                pos++;
                if (!Digits(v, ref pos, 2, 2, out long minutes) || !Expect(v, ref pos, (byte)':') || !Digits(v, ref pos, 2, 2, out long seconds)
                    || !ParseFraction(v, ref pos, out long fraction) || minutes > 59 || seconds > 59)
                {
                    return Fail(out problem, "bad interval time part");
                }

                try
                {
                    micros = checked(micros + (sign * ((((number * 60) + minutes) * 60 + seconds) * 1_000_000 + fraction)));
                }
                catch (OverflowException)
                {
                    return Special(out problem); // only the extreme values PostgreSQL allows reach this
                }

                any = true;
                continue;
            }

            if (!Expect(v, ref pos, (byte)' '))
            {
                return Fail(out problem, "expected a unit after the number");
            }

            int unitStart = pos;
            while (pos < v.Length && v[pos] >= 'a' && v[pos] <= 'z')
            {
                pos++;
            }

            var unit = v[unitStart..pos];
            long n = sign * number;
            if (unit.SequenceEqual("year"u8) || unit.SequenceEqual("years"u8))
            {
                months += n * 12;
            }
            else if (unit.SequenceEqual("mon"u8) || unit.SequenceEqual("mons"u8))
            {
                months += n;
            }
            else if (unit.SequenceEqual("day"u8) || unit.SequenceEqual("days"u8))
            {
                days += n;
            }
            else
            {
                return Fail(out problem, "unknown interval unit (IntervalStyle must be 'postgres')");
            }

            any = true;
        }

        if (!any)
        {
            return Fail(out problem, "empty interval");
        }

        return WriteInterval(builder, months, days, micros, out problem);
    }

    private static bool WriteInterval(FixedWidthBuilder builder, long months, long days, long micros, out string? problem)
    {
        if (months is > int.MaxValue or < int.MinValue || days is > int.MaxValue or < int.MinValue
            || micros is > long.MaxValue / 1000 or < long.MinValue / 1000)
        {
            return Special(out problem);
        }

        var span = builder.AppendValue();
        BinaryPrimitives.WriteInt32LittleEndian(span, (int)months);
        BinaryPrimitives.WriteInt32LittleEndian(span[4..], (int)days);
        BinaryPrimitives.WriteInt64LittleEndian(span[8..], micros * 1000);
        problem = null;
        return true;
    }

    private static int HexValue(byte c) => c switch
    {
        >= (byte)'0' and <= (byte)'9' => c - '0',
        >= (byte)'a' and <= (byte)'f' => c - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => c - 'A' + 10,
        _ => -1,
    };

    private static bool ParseUuidText(FixedWidthBuilder builder, ReadOnlySpan<byte> v, out string? problem)
    {
        Span<byte> bytes = stackalloc byte[16];
        int n = 0;
        int pos = 0;
        while (pos < v.Length)
        {
            if (v[pos] == '-' && n is 4 or 6 or 8 or 10 && pos > 0)
            {
                pos++;
                continue;
            }

            if (n == 16 || pos + 1 >= v.Length)
            {
                return Fail(out problem, "expected 32 hex digits");
            }

            int hi = HexValue(v[pos]), lo = HexValue(v[pos + 1]);
            if (hi < 0 || lo < 0)
            {
                return Fail(out problem, "expected hex digits");
            }

            bytes[n++] = (byte)((hi << 4) | lo);
            pos += 2;
        }

        if (n != 16)
        {
            return Fail(out problem, "expected 32 hex digits");
        }

        bytes.CopyTo(builder.AppendValue());
        problem = null;
        return true;
    }

    private static bool ParseByteaText(VarBinaryBuilder builder, ReadOnlySpan<byte> v, out string? problem)
    {
        if (v.Length >= 2 && v[0] == '\\' && v[1] == 'x')
        {
            var hex = v[2..];
            if ((hex.Length & 1) != 0)
            {
                return Fail(out problem, "odd number of hex digits");
            }

            var dest = builder.BeginValue(hex.Length / 2);
            for (int i = 0; i < dest.Length; i++)
            {
                int hi = HexValue(hex[2 * i]), lo = HexValue(hex[(2 * i) + 1]);
                if (hi < 0 || lo < 0)
                {
                    return Fail(out problem, "bad hex digit");
                }

                dest[i] = (byte)((hi << 4) | lo);
            }

            builder.CommitValue(dest.Length);
            problem = null;
            return true;
        }

        // bytea_output = escape: backslash escapes \\ and \ooo, other bytes literal.
        var output = builder.BeginValue(v.Length);
        int o = 0;
        for (int i = 0; i < v.Length; i++)
        {
            if (v[i] != '\\')
            {
                output[o++] = v[i];
            }
            else if (i + 1 < v.Length && v[i + 1] == '\\')
            {
                output[o++] = (byte)'\\';
                i++;
            }
            else if (i + 3 < v.Length && v[i + 1] is >= (byte)'0' and <= (byte)'3' && v[i + 2] is >= (byte)'0' and <= (byte)'7' && v[i + 3] is >= (byte)'0' and <= (byte)'7')
            {
                output[o++] = (byte)(((v[i + 1] - '0') << 6) | ((v[i + 2] - '0') << 3) | (v[i + 3] - '0'));
                i += 3;
            }
            else
            {
                return Fail(out problem, "bad bytea escape");
            }
        }

        builder.CommitValue(o);
        problem = null;
        return true;
    }

    // ---------------------------------------------------------------- arrays

    [ThreadStatic]
    private static byte[]? t_unescapeScratch;

    private static bool IsArraySpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or (byte)'\v' or (byte)'\f';

    /// <summary>
    /// Parses array_out text (<c>{1,2,NULL}</c>, <c>{"a b","c\"d"}</c>) of a one-dimensional array with lower bound 1.
    /// Elements are converted by the element type's text parser into the list's child builder.
    /// </summary>
    private static bool ParseArrayText(ListBuilder builder, PgColumnType element, ReadOnlySpan<byte> v, out string? problem)
    {
        if (!v.IsEmpty && v[0] == '[')
        {
            return Special(out problem); // explicit bounds: a lower bound other than 1
        }

        int pos = 0;
        if (!Expect(v, ref pos, (byte)'{'))
        {
            return Fail(out problem, "expected '{'");
        }

        if (pos < v.Length && v[pos] == '{')
        {
            return Special(out problem);
        }

        if (Expect(v, ref pos, (byte)'}'))
        {
            builder.EndList();
            return AtEnd(v, pos, out problem);
        }

        var child = builder.Values;
        while (true)
        {
            ReadOnlySpan<byte> item;
            bool isNull = false;
            if (pos < v.Length && v[pos] == '"')
            {
                int start = ++pos;
                bool escaped = false;
                while (pos < v.Length && v[pos] != '"')
                {
                    if (v[pos] == '\\')
                    {
                        escaped = true;
                        pos++;
                    }

                    pos++;
                }

                if (pos >= v.Length)
                {
                    return Fail(out problem, "unterminated quoted array element");
                }

                item = escaped ? Unescape(v[start..pos]) : v[start..pos];
                pos++;
            }
            else
            {
                int start = pos;
                bool escaped = false;
                while (pos < v.Length && v[pos] != ',' && v[pos] != '}')
                {
                    if (v[pos] is (byte)'{' or (byte)'"')
                    {
                        return Fail(out problem, "unexpected character in array element");
                    }

                    if (v[pos] == '\\')
                    {
                        escaped = true;
                        pos++;
                    }

                    pos++;
                }

                if (pos > v.Length)
                {
                    return Fail(out problem, "unterminated array");
                }

                item = v[start..pos];
                while (!item.IsEmpty && IsArraySpace(item[0]))
                {
                    item = item[1..];
                }

                while (!item.IsEmpty && IsArraySpace(item[^1]))
                {
                    item = item[..^1];
                }

                if (item.IsEmpty)
                {
                    return Fail(out problem, "empty unquoted array element");
                }

                isNull = !escaped && item.Length == 4 && (item[0] | 0x20) == 'n' && (item[1] | 0x20) == 'u' && (item[2] | 0x20) == 'l' && (item[3] | 0x20) == 'l';
                if (escaped)
                {
                    item = Unescape(item);
                }
            }

            if (isNull)
            {
                child.AppendNull();
            }
            else if (!AppendText(child, element, item, out problem))
            {
                if (!IsSpecial(problem))
                {
                    problem = $"array element {child.Length - builder.ValuesStart + 1}: {problem}";
                }

                return false;
            }

            if (Expect(v, ref pos, (byte)','))
            {
                continue;
            }

            if (Expect(v, ref pos, (byte)'}'))
            {
                break;
            }

            return Fail(out problem, "expected ',' or '}' in array");
        }

        if (!AtEnd(v, pos, out problem))
        {
            return false;
        }

        builder.EndList();
        return true;
    }

    /// <summary>Removes array-literal backslash escapes into a reused per-thread buffer (valid until the next call).</summary>
    private static ReadOnlySpan<byte> Unescape(ReadOnlySpan<byte> escaped)
    {
        var scratch = t_unescapeScratch;
        if (scratch is null || scratch.Length < escaped.Length)
        {
            scratch = new byte[Math.Max(escaped.Length, 256)];
            t_unescapeScratch = scratch;
        }

        int o = 0;
        for (int i = 0; i < escaped.Length; i++)
        {
            if (escaped[i] == '\\' && i + 1 < escaped.Length)
            {
                i++;
            }

            scratch[o++] = escaped[i];
        }

        return scratch.AsSpan(0, o);
    }

    /// <summary>Parses array_send output: ndim, has-null flag, element OID, (size, lower bound) per dimension, then length-prefixed elements.</summary>
    private static bool ParseArrayBinary(ListBuilder builder, PgColumnType element, ReadOnlySpan<byte> v, out string? problem)
    {
        if (v.Length < 12)
        {
            return Fail(out problem, "binary array shorter than its header");
        }

        int ndim = BinaryPrimitives.ReadInt32BigEndian(v);
        uint elementOid = BinaryPrimitives.ReadUInt32BigEndian(v[8..]);
        if (elementOid != element.TypeOid)
        {
            return Fail(out problem, $"binary array has element type {elementOid}, expected {element.TypeOid}");
        }

        if (ndim == 0)
        {
            builder.EndList();
            return AtEnd(v, 12, out problem);
        }

        if (ndim != 1)
        {
            return ndim > 1 ? Special(out problem) : Fail(out problem, "invalid array dimension count");
        }

        if (v.Length < 20)
        {
            return Fail(out problem, "binary array shorter than its header");
        }

        int count = BinaryPrimitives.ReadInt32BigEndian(v[12..]);
        int lowerBound = BinaryPrimitives.ReadInt32BigEndian(v[16..]);
        if (lowerBound != 1)
        {
            return Special(out problem);
        }

        if (count < 0 || count > (v.Length - 20) / 4)
        {
            return Fail(out problem, "binary array has an invalid element count");
        }

        var child = builder.Values;
        int pos = 20;
        for (int i = 0; i < count; i++)
        {
            if (v.Length - pos < 4)
            {
                return Fail(out problem, "truncated binary array");
            }

            int length = BinaryPrimitives.ReadInt32BigEndian(v[pos..]);
            pos += 4;
            if (length == -1)
            {
                child.AppendNull();
                continue;
            }

            if (length < 0 || length > v.Length - pos)
            {
                return Fail(out problem, "truncated binary array element");
            }

            if (!AppendBinary(child, element, v.Slice(pos, length), out problem))
            {
                if (!IsSpecial(problem))
                {
                    problem = $"array element {i + 1}: {problem}";
                }

                return false;
            }

            pos += length;
        }

        if (!AtEnd(v, pos, out problem))
        {
            return false;
        }

        builder.EndList();
        return true;
    }

    // ---------------------------------------------------------------- decimals

    /// <summary>Accumulates an unsigned integer of up to 256 bits, digit by digit, counting significant digits.</summary>
    private ref struct DecimalAccumulator
    {
        private readonly Span<ulong> _limbs;
        private readonly int _precision;
        private int _significant;

        public DecimalAccumulator(Span<ulong> limbs, int precision)
        {
            _limbs = limbs;
            _limbs.Clear();
            _precision = precision;
            _significant = 0;
        }

        public bool IsZero => _significant == 0;

        /// <summary>Appends one decimal digit; false when the value would exceed the precision.</summary>
        public bool Push(int digit)
        {
            if (_significant == 0 && digit == 0)
            {
                return true;
            }

            if (++_significant > _precision)
            {
                return false;
            }

            ulong carry = (ulong)digit;
            for (int i = 0; i < _limbs.Length; i++)
            {
                UInt128 t = ((UInt128)_limbs[i] * 10) + carry;
                _limbs[i] = (ulong)t;
                carry = (ulong)(t >> 64);
            }

            return true;
        }

        /// <summary>Writes the value (negated when <paramref name="negative"/>) as little-endian two's complement.</summary>
        public readonly void WriteTo(Span<byte> destination, bool negative)
        {
            ulong carry = 1;
            for (int i = 0; i < _limbs.Length; i++)
            {
                ulong limb = _limbs[i];
                if (negative)
                {
                    UInt128 t = (UInt128)(~limb) + carry;
                    limb = (ulong)t;
                    carry = (ulong)(t >> 64);
                }

                BinaryPrimitives.WriteUInt64LittleEndian(destination[(i * 8)..], limb);
            }
        }
    }

    private static bool ParseDecimalText(FixedWidthBuilder builder, PgColumnType type, ReadOnlySpan<byte> v, out string? problem)
    {
        if (v.SequenceEqual("NaN"u8) || v.SequenceEqual("Infinity"u8) || v.SequenceEqual("-Infinity"u8))
        {
            return Special(out problem);
        }

        int pos = 0;
        bool negative = false;
        if (pos < v.Length && (v[pos] == '-' || v[pos] == '+'))
        {
            negative = v[pos] == '-';
            pos++;
        }

        int intStart = pos;
        while (pos < v.Length && IsDigit(v[pos]))
        {
            pos++;
        }

        var integer = v[intStart..pos];
        var fraction = ReadOnlySpan<byte>.Empty;
        if (pos < v.Length && v[pos] == '.')
        {
            int fracStart = ++pos;
            while (pos < v.Length && IsDigit(v[pos]))
            {
                pos++;
            }

            fraction = v[fracStart..pos];
        }

        if (pos != v.Length || (integer.IsEmpty && fraction.IsEmpty))
        {
            return Fail(out problem, "not a numeric value");
        }

        Span<ulong> limbs = stackalloc ulong[4];
        int width = builder.ByteWidth;
        var acc = new DecimalAccumulator(limbs[..(width / 8)], type.Precision);
        foreach (byte b in integer)
        {
            if (!acc.Push(b - '0'))
            {
                return Fail(out problem, $"value exceeds numeric({type.Precision},{type.Scale})");
            }
        }

        for (int i = 0; i < type.Scale; i++)
        {
            if (!acc.Push(i < fraction.Length ? fraction[i] - '0' : 0))
            {
                return Fail(out problem, $"value exceeds numeric({type.Precision},{type.Scale})");
            }
        }

        for (int i = type.Scale; i < fraction.Length; i++)
        {
            if (fraction[i] != '0')
            {
                return Fail(out problem, $"value has more than {type.Scale} fraction digits");
            }
        }

        acc.WriteTo(builder.AppendValue(), negative && !acc.IsZero);
        problem = null;
        return true;
    }

    private const ushort NumericPos = 0x0000;
    private const ushort NumericNeg = 0x4000;
    private const ushort NumericNaN = 0xC000;
    private const ushort NumericPInf = 0xD000;
    private const ushort NumericNInf = 0xF000;

    private readonly ref struct BinaryNumeric
    {
        public BinaryNumeric(ReadOnlySpan<byte> v)
        {
            NDigits = BinaryPrimitives.ReadInt16BigEndian(v);
            Weight = BinaryPrimitives.ReadInt16BigEndian(v[2..]);
            Sign = BinaryPrimitives.ReadUInt16BigEndian(v[4..]);
            DScale = BinaryPrimitives.ReadInt16BigEndian(v[6..]);
            Digits = v[8..];
        }

        public short NDigits { get; }
        public short Weight { get; }
        public ushort Sign { get; }
        public short DScale { get; }
        public ReadOnlySpan<byte> Digits { get; }

        public int Digit(int index) => index >= 0 && index < NDigits ? BinaryPrimitives.ReadInt16BigEndian(Digits[(index * 2)..]) : 0;

        public static bool TryValidate(ReadOnlySpan<byte> v, out string? problem)
        {
            if (v.Length < 8)
            {
                return Fail(out problem, "binary numeric shorter than its header");
            }

            var n = new BinaryNumeric(v);
            if (n.NDigits < 0 || v.Length != 8 + (2 * n.NDigits) || n.DScale < 0)
            {
                return Fail(out problem, "binary numeric has an inconsistent length");
            }

            if (n.Sign is not (NumericPos or NumericNeg or NumericNaN or NumericPInf or NumericNInf))
            {
                return Fail(out problem, "binary numeric has an invalid sign");
            }

            for (int i = 0; i < n.NDigits; i++)
            {
                if ((uint)n.Digit(i) > 9999)
                {
                    return Fail(out problem, "binary numeric has an invalid digit");
                }
            }

            problem = null;
            return true;
        }
    }

    private static bool ParseDecimalBinary(FixedWidthBuilder builder, PgColumnType type, ReadOnlySpan<byte> v, out string? problem)
    {
        if (!BinaryNumeric.TryValidate(v, out problem))
        {
            return false;
        }

        var n = new BinaryNumeric(v);
        if (n.Sign is NumericNaN or NumericPInf or NumericNInf)
        {
            return Special(out problem);
        }

        Span<ulong> limbs = stackalloc ulong[4];
        var acc = new DecimalAccumulator(limbs[..(builder.ByteWidth / 8)], type.Precision);

        // Decimal digit with exponent e (value = Σ digit·10^e) lives in group (weight - floor(e/4)).
        long maxExp = (4L * n.Weight) + 3;
        for (long e = maxExp; e >= -type.Scale; e--)
        {
            if (!acc.Push(DecimalDigit(n, e)))
            {
                return Fail(out problem, $"value exceeds numeric({type.Precision},{type.Scale})");
            }
        }

        // Digits below the scale must be zero.
        long minExp = 4L * (n.Weight - n.NDigits + 1);
        for (long e = Math.Min(-type.Scale - 1, maxExp); e >= minExp; e--)
        {
            if (DecimalDigit(n, e) != 0)
            {
                return Fail(out problem, $"value has more than {type.Scale} fraction digits");
            }
        }

        acc.WriteTo(builder.AppendValue(), n.Sign == NumericNeg && !acc.IsZero);
        problem = null;
        return true;
    }

    private static int DecimalDigit(BinaryNumeric n, long exponent)
    {
        long groupExp = PgCalendar.FloorDiv(exponent, 4);
        long index = n.Weight - groupExp;
        if (index < 0 || index >= n.NDigits)
        {
            return 0;
        }

        int group = n.Digit((int)index);
        int within = (int)(exponent - (groupExp * 4));
        return within switch
        {
            0 => group % 10,
            1 => group / 10 % 10,
            2 => group / 100 % 10,
            _ => group / 1000,
        };
    }

    /// <summary>Binary numeric → PostgreSQL's text output (as numeric_out prints it).</summary>
    private static bool NumericBinaryToText(VarBinaryBuilder builder, ReadOnlySpan<byte> v, out string? problem)
    {
        if (!BinaryNumeric.TryValidate(v, out problem))
        {
            return false;
        }

        var n = new BinaryNumeric(v);
        switch (n.Sign)
        {
            case NumericNaN:
                builder.Append("NaN"u8);
                return true;
            case NumericPInf:
                builder.Append("Infinity"u8);
                return true;
            case NumericNInf:
                builder.Append("-Infinity"u8);
                return true;
        }

        int max = 2 + (4 * (Math.Max((int)n.Weight, 0) + 1)) + 1 + n.DScale + 4;
        var dest = builder.BeginValue(max);
        int o = 0;
        if (n.Sign == NumericNeg)
        {
            dest[o++] = (byte)'-';
        }

        int d;
        if (n.Weight < 0)
        {
            d = n.Weight + 1;
            dest[o++] = (byte)'0';
        }
        else
        {
            for (d = 0; d <= n.Weight; d++)
            {
                int dig = n.Digit(d);
                bool put = d > 0;
                for (int div = 1000; div >= 1; div /= 10)
                {
                    int d1 = dig / div;
                    dig -= d1 * div;
                    put |= d1 > 0 || div == 1;
                    if (put)
                    {
                        dest[o++] = (byte)('0' + d1);
                    }
                }
            }
        }

        if (n.DScale > 0)
        {
            dest[o++] = (byte)'.';
            int end = o + n.DScale;
            for (int i = 0; i < n.DScale; d++, i += 4)
            {
                int dig = n.Digit(d);
                for (int div = 1000; div >= 1; div /= 10)
                {
                    int d1 = dig / div;
                    dig -= d1 * div;
                    dest[o++] = (byte)('0' + d1);
                }
            }

            o = end;
        }

        builder.CommitValue(o);
        return true;
    }

    // ---------------------------------------------------------------- binary

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

                int pgDays = BinaryPrimitives.ReadInt32BigEndian(v);
                if (pgDays is int.MaxValue or int.MinValue)
                {
                    return Special(out problem);
                }

                long days = (long)pgDays + PgCalendar.PgEpochDays;
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

                long pgMicros = BinaryPrimitives.ReadInt64BigEndian(v);
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

                long micros = BinaryPrimitives.ReadInt64BigEndian(v);
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
