using System.Globalization;
using System.Text;
using Apache.Arrow;
using Apache.Arrow.Arrays;
using Apache.Arrow.Scalars;
using Apache.Arrow.Types;

namespace WalBridge.Serialization.Postgres;

/// <summary>
/// Renders decoded Arrow values (Apache.Arrow arrays, as <c>ArrowPayload</c> or Apache.Arrow's <c>ArrowStreamReader</c>
/// read them) back into PostgreSQL's text output, i.e. what <c>SELECT col::text</c> prints with <c>DateStyle=ISO</c>,
/// <c>TimeZone=UTC</c>, <c>IntervalStyle=postgres</c>, <c>extra_float_digits=1</c> (shortest exact floats) and
/// <c>bytea_output=hex</c>.
/// </summary>
/// <remarks>
/// The PostgreSQL type is taken from the field metadata <c>pg.typoid</c> (falling back to the Arrow type when absent);
/// Apache.Arrow arrays carry no field, so it is passed along (the record batch's schema, a list's item field, a struct's
/// member field). Used by the demo, verify and the tests to compare with the source database; allocates.
/// </remarks>
public static class PgTextRenderer
{
    /// <summary>The PostgreSQL text of <paramref name="column"/>[<paramref name="row"/>] (a column of <paramref name="field"/>), or null for SQL NULL.</summary>
    /// <remarks>Booleans print as <c>true</c>/<c>false</c> (the <c>bool::text</c> cast), but as <c>t</c>/<c>f</c> inside arrays (the array output function).</remarks>
    public static string? Render(IArrowArray column, Field field, int row) => Render(column, field, row, topLevel: true);

    /// <summary>
    /// The PostgreSQL text of table column <paramref name="column"/> (index into <paramref name="batch"/>'s columns) in
    /// <paramref name="row"/>, taking the <c>_special</c> column into account: a value Arrow cannot hold (null in the
    /// value column, its exact text in <c>_special</c>) is returned as that text. Returns null for SQL NULL and for an
    /// unchanged TOAST value that was not sent (listed in <c>_unchanged</c>; check it to tell the two apart).
    /// </summary>
    public static string? RenderCell(RecordBatch batch, int column, int row)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var array = batch.Column(column);
        var field = batch.Schema.GetFieldByIndex(column);
        if (!array.IsNull(row))
        {
            return Render(array, field, row);
        }

        return GetSpecialText(batch, field.Name, row);
    }

    /// <summary>
    /// Like <see cref="RenderCell"/> for the old-row value of <c>_before</c> member <paramref name="member"/> (index among
    /// the struct's members); null when the old row or the member was not sent, or is SQL NULL.
    /// </summary>
    public static string? RenderBeforeCell(RecordBatch batch, int member, int row)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var index = -1;
        for (var i = batch.ColumnCount - 1; i >= 0; i--)
        {
            if (batch.Column(i) is StructArray && batch.Schema.GetFieldByIndex(i).Name == ChangeBatchBuilder.BeforeColumn)
            {
                index = i;
                break;
            }
        }

        if (index < 0)
        {
            throw new KeyNotFoundException($"The record batch has no '{ChangeBatchBuilder.BeforeColumn}' column.");
        }

        var before = (StructArray)batch.Column(index);
        if (before.IsNull(row))
        {
            return null;
        }

        var array = before.Fields[member];
        var field = ((StructType)batch.Schema.GetFieldByIndex(index).DataType).Fields[member];
        return array.IsNull(row) ? GetSpecialText(batch, ChangeBatchBuilder.BeforeColumn + "." + field.Name, row) : Render(array, field, row);
    }

    /// <summary>
    /// The entry <paramref name="key"/> (a table column name, or <c>_before.</c> + name) of the <c>_special</c> map in
    /// <paramref name="row"/>: PostgreSQL's exact text of a value its Arrow column cannot hold. Null when absent (or when
    /// the batch has no <c>_special</c> column, as in streams written before it existed).
    /// </summary>
    public static string? GetSpecialText(RecordBatch batch, string key, int row)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(key);
        var last = batch.ColumnCount - 1;
        if (last < 0 || batch.Column(last) is not MapArray map || batch.Schema.GetFieldByIndex(last).Name != ChangeBatchBuilder.SpecialColumn || map.IsNull(row))
        {
            return null;
        }

        var start = map.ValueOffsets[row];
        var end = map.ValueOffsets[row + 1];
        var keys = (StringArray)map.Keys;
        var values = (StringArray)map.Values;
        for (var i = start; i < end; i++)
        {
            if (keys.GetString(i) == key)
            {
                return values.GetString(i);
            }
        }

        return null;
    }

    /// <summary>An element's text as array_out prints it before quoting (booleans as t/f).</summary>
    internal static string? RenderElement(IArrowArray column, Field field, int row) => Render(column, field, row, topLevel: false);

    private static string? Render(IArrowArray column, Field field, int row, bool topLevel)
    {
        ArgumentNullException.ThrowIfNull(column);
        ArgumentNullException.ThrowIfNull(field);
        if (column.IsNull(row))
        {
            return null;
        }

        var oid = field.Metadata is { } metadata && metadata.TryGetValue(PgTypeMapping.TypeOidKey, out var typoid)
            && uint.TryParse(typoid, NumberStyles.None, CultureInfo.InvariantCulture, out var o) ? o : 0;
        switch (column)
        {
            case BooleanArray a:
                return a.GetValue(row) == true ? (topLevel ? "true" : "t") : (topLevel ? "false" : "f");
            case Int16Array a:
                return a.Values[row].ToString(CultureInfo.InvariantCulture);
            case Int32Array a:
                return a.Values[row].ToString(CultureInfo.InvariantCulture);
            case Int64Array a:
                return a.Values[row].ToString(CultureInfo.InvariantCulture);
            case UInt32Array a:
                return a.Values[row].ToString(CultureInfo.InvariantCulture);
            case FloatArray a:
                return FormatFloat(a.Values[row], single: true);
            case DoubleArray a:
                return FormatFloat(a.Values[row], single: false);
            case Decimal128Array a:
                return a.GetString(row);
            case Decimal256Array a:
                return a.GetString(row);
            case StringArray a:
                return a.GetString(row);
            case BinaryArray a:
                return FormatBytea(a.GetBytes(row));
            case Date32Array a:
                return FormatDate(a.Values[row]);
            case TimestampArray a when a.Data.DataType is TimestampType { Unit: TimeUnit.Microsecond } ts:
                return FormatTimestamp(a.Values[row], ts.Timezone is not null);
            case Time64Array a when a.Data.DataType is Time64Type { Unit: TimeUnit.Microsecond }:
                return FormatTime(a.Values[row]);
            case MonthDayNanosecondIntervalArray a:
                return FormatInterval(a.Values[row]);
            case GuidArray a:
                return FormatUuid(a.StorageArray.GetBytes(row));
            case FixedSizeBinaryArray a when a.GetBytes(row).Length == 16 && (oid == PgOid.Uuid || IsUuidExtension(field)):
                return FormatUuid(a.GetBytes(row));
            case MapArray:
                break;
            case ListArray a:
                return FormatArray(a, ((ListType)field.DataType).ValueField, row);
        }

        throw new NotSupportedException($"PgTextRenderer cannot render column '{field.Name}' of Arrow type {field.DataType.Name}.");
    }

    private static bool IsUuidExtension(Field field) =>
        field.Metadata is { } metadata && metadata.TryGetValue(PgTypeMapping.ExtensionNameKey, out var name) && name == "arrow.uuid";

    /// <summary>float4/float8 output with extra_float_digits &gt; 0: shortest exact digits, PostgreSQL's notation.</summary>
    /// <summary>
    /// The shortest decimal (in <c>d.dddE±x</c> form) that lies strictly inside the rounding interval of
    /// <paramref name="value"/>. PostgreSQL's Ryu never picks a decimal exactly on the interval's boundary
    /// (it prints 17 digits for 2.5893367489750208e+16), while .NET's shortest form accepts it
    /// (2.589336748975021e+16): both parse to the same double, but the text must be PostgreSQL's.
    /// </summary>
    private static string ShortestDigits(double value, bool single)
    {
        var maxDigits = single ? 9 : 17;
        for (var precision = 1; precision < maxDigits; precision++)
        {
            var candidate = single
                ? ((float)value).ToString("E" + (precision - 1).ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture)
                : value.ToString("E" + (precision - 1).ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
            var roundTrips = single
                ? float.Parse(candidate, NumberStyles.Float, CultureInfo.InvariantCulture) == (float)value
                : double.Parse(candidate, NumberStyles.Float, CultureInfo.InvariantCulture) == value;
            if (roundTrips && !IsOnRoundingBoundary(candidate, value, single))
            {
                return candidate;
            }
        }

        return single
            ? ((float)value).ToString("E8", CultureInfo.InvariantCulture)
            : value.ToString("E16", CultureInfo.InvariantCulture);
    }

    /// <summary>Whether the decimal <paramref name="candidate"/> is exactly halfway between <paramref name="value"/> and a neighbour (exact arithmetic).</summary>
    private static bool IsOnRoundingBoundary(string candidate, double value, bool single)
    {
        // value = m · 2^e exactly.
        long m;
        int e;
        bool powerOfTwo;
        if (single)
        {
            var bits = BitConverter.SingleToInt32Bits((float)value) & 0x7FFFFFFF;
            var biased = bits >> 23;
            var fraction = bits & 0x7FFFFF;
            m = biased == 0 ? fraction : fraction | 0x800000;
            e = (biased == 0 ? 1 : biased) - 127 - 23;
            powerOfTwo = fraction == 0 && biased > 1;
        }
        else
        {
            var bits = BitConverter.DoubleToInt64Bits(value) & 0x7FFFFFFFFFFFFFFF;
            var biased = (int)(bits >> 52);
            var fraction = bits & 0xFFFFFFFFFFFFF;
            m = biased == 0 ? fraction : fraction | (1L << 52);
            e = (biased == 0 ? 1 : biased) - 1023 - 52;
            powerOfTwo = fraction == 0 && biased > 1;
        }

        // candidate = n · 10^k exactly.
        var text = candidate.TrimStart('-');
        var exponentIndex = text.IndexOfAny(['E', 'e']);
        var mantissa = text[..exponentIndex].Replace(".", "", StringComparison.Ordinal);
        var k = int.Parse(text[(exponentIndex + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture) - (mantissa.Length - 1);
        var n = System.Numerics.BigInteger.Parse(mantissa, CultureInfo.InvariantCulture);

        // The gap to the neighbour on the candidate's side: 2^e, or 2^(e-1) below a power of two.
        var scaledCandidateAbove = n * System.Numerics.BigInteger.Pow(10, Math.Max(k, 0));
        var tenDenominator = Math.Max(-k, 0);
        var twoDenominator = Math.Max(1 - e, 0);
        var candidateScaled = scaledCandidateAbove * System.Numerics.BigInteger.Pow(2, twoDenominator);
        var valueScaled = new System.Numerics.BigInteger(m) * System.Numerics.BigInteger.Pow(2, e + twoDenominator) * System.Numerics.BigInteger.Pow(10, tenDenominator);
        var difference = candidateScaled - valueScaled;
        if (difference.IsZero)
        {
            return false;
        }

        var gapExponent = difference.Sign < 0 && powerOfTwo ? e - 1 : e;
        var gapScaled = System.Numerics.BigInteger.Pow(2, gapExponent + twoDenominator) * System.Numerics.BigInteger.Pow(10, tenDenominator);
        return System.Numerics.BigInteger.Abs(difference) * 2 == gapScaled;
    }

    public static string FormatFloat(double value, bool single)
    {
        if (double.IsNaN(value))
        {
            return "NaN";
        }

        if (double.IsInfinity(value))
        {
            return value > 0 ? "Infinity" : "-Infinity";
        }

        if (value == 0)
        {
            return double.IsNegative(value) ? "-0" : "0";
        }

        // Shortest digits as PostgreSQL's Ryu chooses them, re-laid out like its output.
        var r = ShortestDigits(value, single);
        var negative = r[0] == '-';
        if (negative)
        {
            r = r[1..];
        }

        var exponentIndex = r.IndexOfAny(['E', 'e']);
        var exponent = 0;
        var mantissa = r;
        if (exponentIndex >= 0)
        {
            exponent = int.Parse(r[(exponentIndex + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            mantissa = r[..exponentIndex];
        }

        var dot = mantissa.IndexOf('.', StringComparison.Ordinal);
        var digits = dot >= 0 ? mantissa.Remove(dot, 1) : mantissa;
        var pointPosition = (dot >= 0 ? dot : mantissa.Length) + exponent; // digits before the decimal point
        var leadingZeros = digits.Length - digits.TrimStart('0').Length;
        digits = digits.Trim('0');
        pointPosition -= leadingZeros;
        var decimalExponent = pointPosition - 1; // value = d.ddd × 10^decimalExponent
        var threshold = single ? 6 : 15;
        var sb = new StringBuilder(32);
        if (negative)
        {
            sb.Append('-');
        }

        if (decimalExponent < -4 || decimalExponent >= threshold)
        {
            sb.Append(digits[0]);
            if (digits.Length > 1)
            {
                sb.Append('.').Append(digits, 1, digits.Length - 1);
            }

            sb.Append('e').Append(decimalExponent < 0 ? '-' : '+').Append(Math.Abs(decimalExponent).ToString("00", CultureInfo.InvariantCulture));
        }
        else if (decimalExponent < 0)
        {
            sb.Append("0.").Append('0', -decimalExponent - 1).Append(digits);
        }
        else if (digits.Length <= decimalExponent + 1)
        {
            sb.Append(digits).Append('0', decimalExponent + 1 - digits.Length);
        }
        else
        {
            sb.Append(digits, 0, decimalExponent + 1).Append('.').Append(digits, decimalExponent + 1, digits.Length - decimalExponent - 1);
        }

        return sb.ToString();
    }

    private static string FormatBytea(ReadOnlySpan<byte> bytes) => "\\x" + Convert.ToHexStringLower(bytes);

    /// <summary>
    /// Writes <paramref name="value"/> (not negative) in decimal with at least <paramref name="minDigits"/> digits, zero-padded
    /// as <c>%0Nd</c> does; returns the characters written.
    /// </summary>
    private static int WriteDigits(Span<char> destination, long value, int minDigits)
    {
        var digits = 1;
        for (var rest = value / 10; rest != 0; rest /= 10)
        {
            digits++;
        }

        digits = Math.Max(digits, minDigits);
        for (var i = digits - 1; i >= 0; i--)
        {
            destination[i] = (char)('0' + (value % 10));
            value /= 10;
        }

        return digits;
    }

    /// <summary>
    /// date_out with DateStyle ISO: <c>YYYY-MM-DD</c>, the year with at least four digits; astronomical year Y ≤ 0 is printed as
    /// year 1 - Y and <paramref name="bc"/> is set (the caller appends <c> BC</c> at the very end, after any time and offset).
    /// </summary>
    private static int WriteDate(Span<char> destination, long days, out bool bc)
    {
        var (year, month, day) = PgCalendar.CivilFromDays(days);
        bc = year <= 0;
        var n = WriteDigits(destination, bc ? 1 - year : year, 4);
        destination[n++] = '-';
        n += WriteDigits(destination[n..], month, 2);
        destination[n++] = '-';
        n += WriteDigits(destination[n..], day, 2);
        return n;
    }

    /// <summary><c>HH:MM:SS</c> with the fractional seconds PostgreSQL prints: up to six digits, trailing zeros dropped.</summary>
    private static int WriteTime(Span<char> destination, long micros)
    {
        var seconds = micros / 1_000_000;
        var fraction = micros % 1_000_000;
        var n = WriteDigits(destination, seconds / 3600, 2);
        destination[n++] = ':';
        n += WriteDigits(destination[n..], seconds / 60 % 60, 2);
        destination[n++] = ':';
        n += WriteDigits(destination[n..], seconds % 60, 2);
        if (fraction != 0)
        {
            destination[n++] = '.';
            var digits = 6;
            while (fraction % 10 == 0)
            {
                fraction /= 10;
                digits--;
            }

            n += WriteDigits(destination[n..], fraction, digits);
        }

        return n;
    }

    private static int WriteBc(Span<char> destination, bool bc)
    {
        if (!bc)
        {
            return 0;
        }

        " BC".CopyTo(destination);
        return 3;
    }

    public static string FormatDate(int days)
    {
        Span<char> text = stackalloc char[24];
        var n = WriteDate(text, days, out var bc);
        n += WriteBc(text[n..], bc);
        return new string(text[..n]);
    }

    public static string FormatTimestamp(long microsSinceEpoch, bool withZone)
    {
        var days = PgCalendar.FloorDiv(microsSinceEpoch, PgCalendar.MicrosPerDay);
        var timeOfDay = microsSinceEpoch - (days * PgCalendar.MicrosPerDay);
        return FormatTimestamp(days, timeOfDay, withZone);
    }

    /// <summary>
    /// timestamp_out / timestamptz_out (TimeZone UTC) of a timestamp given as days since 1970-01-01 and microseconds into the
    /// day (no int64 overflow for any PostgreSQL timestamp): <c>YYYY-MM-DD HH:MM:SS[.ffffff][+00][ BC]</c>, BC after the offset.
    /// </summary>
    internal static string FormatTimestamp(long days, long timeOfDay, bool withZone)
    {
        Span<char> text = stackalloc char[48];
        var n = WriteDate(text, days, out var bc);
        text[n++] = ' ';
        n += WriteTime(text[n..], timeOfDay);
        if (withZone)
        {
            "+00".CopyTo(text[n..]);
            n += 3;
        }

        n += WriteBc(text[n..], bc);
        return new string(text[..n]);
    }

    public static string FormatTime(long micros)
    {
        Span<char> text = stackalloc char[24];
        return new string(text[..WriteTime(text, micros)]);
    }

    /// <summary>interval_out with IntervalStyle=postgres (microsecond resolution).</summary>
    public static string FormatInterval(MonthDayNanosecondInterval value) => FormatInterval(value.Months, value.Days, value.Nanoseconds / 1000);

    /// <summary>interval_out of PostgreSQL's own representation (months, days, microseconds).</summary>
    internal static string FormatInterval(int totalMonths, int days, long micros)
    {
        var years = totalMonths / 12;
        var months = totalMonths % 12;
        var hours = micros / 3_600_000_000L;
        micros -= hours * 3_600_000_000L;
        var minutes = micros / 60_000_000L;
        micros -= minutes * 60_000_000L;
        var seconds = micros / 1_000_000L;
        var fraction = micros - (seconds * 1_000_000L);

        var sb = new StringBuilder(48);
        var isZero = true;
        var isBefore = false;
        void Part(long n, string unit)
        {
            if (n == 0)
            {
                return;
            }

            sb.Append(isZero ? "" : " ").Append(isBefore && n > 0 ? "+" : "").Append(n.ToString(CultureInfo.InvariantCulture))
                .Append(' ').Append(unit).Append(n != 1 ? "s" : "");
            isBefore = n < 0;
            isZero = false;
        }

        Part(years, "year");
        Part(months, "mon");
        Part(days, "day");
        if (isZero || hours != 0 || minutes != 0 || seconds != 0 || fraction != 0)
        {
            var minus = hours < 0 || minutes < 0 || seconds < 0 || fraction < 0;
            sb.Append(isZero ? "" : " ").Append(minus ? "-" : isBefore ? "+" : "")
                .Append(Math.Abs(hours).ToString("00", CultureInfo.InvariantCulture)).Append(':')
                .Append(Math.Abs(minutes).ToString("00", CultureInfo.InvariantCulture)).Append(':')
                .Append(Math.Abs(seconds).ToString("00", CultureInfo.InvariantCulture));
            if (fraction != 0)
            {
                sb.Append('.').Append(Math.Abs(fraction).ToString("000000", CultureInfo.InvariantCulture).TrimEnd('0'));
            }
        }

        return sb.ToString();
    }

    /// <summary>array_out: <c>{e1,e2,NULL}</c>, quoting elements that are empty, <c>NULL</c>, or contain <c>{}",\</c> or white space.</summary>
    private static string FormatArray(ListArray array, Field item, int row)
    {
        var start = array.ValueOffsets[row];
        var end = array.ValueOffsets[row + 1];
        var sb = new StringBuilder(2 + (8 * (end - start)));
        sb.Append('{');
        for (var i = start; i < end; i++)
        {
            if (i > start)
            {
                sb.Append(',');
            }

            var element = Render(array.Values, item, i, topLevel: false);
            if (element is null)
            {
                sb.Append("NULL");
            }
            else
            {
                AppendArrayElement(sb, element);
            }
        }

        return sb.Append('}').ToString();
    }

    /// <summary>Appends a non-null element as array_out does: quoted and backslash-escaped when needed.</summary>
    internal static void AppendArrayElement(StringBuilder sb, string element)
    {
        if (!NeedsQuotes(element))
        {
            sb.Append(element);
            return;
        }

        sb.Append('"');
        foreach (var c in element)
        {
            if (c is '"' or '\\')
            {
                sb.Append('\\');
            }

            sb.Append(c);
        }

        sb.Append('"');
    }

    private static bool NeedsQuotes(string element)
    {
        if (element.Length == 0 || element.Equals("NULL", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        foreach (var c in element)
        {
            if (c is '{' or '}' or ',' or '"' or '\\' or ' ' or '\t' or '\n' or '\r' or '\v' or '\f')
            {
                return true;
            }
        }

        return false;
    }

    public static string FormatUuid(ReadOnlySpan<byte> bytes)
    {
        var hex = Convert.ToHexStringLower(bytes);
        return $"{hex[..8]}-{hex[8..12]}-{hex[12..16]}-{hex[16..20]}-{hex[20..]}";
    }
}
