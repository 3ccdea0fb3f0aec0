using System.Globalization;
using System.Text;
using WalBridge.Serialization.Arrow;

namespace WalBridge.Serialization.Postgres;

/// <summary>
/// Renders decoded Arrow values back into PostgreSQL's text output, i.e. what <c>SELECT col::text</c> prints with
/// <c>DateStyle=ISO</c>, <c>TimeZone=UTC</c>, <c>IntervalStyle=postgres</c>, <c>extra_float_digits=1</c>
/// (shortest exact floats) and <c>bytea_output=hex</c>.
/// </summary>
/// <remarks>
/// The PostgreSQL type is taken from the field metadata <c>pg.typoid</c> (falling back to the Arrow type when absent).
/// Used by the demo and the tests to compare with the source database; allocates.
/// </remarks>
public static class PgTextRenderer
{
    /// <summary>The PostgreSQL text of <paramref name="column"/>[<paramref name="row"/>], or null for SQL NULL.</summary>
    public static string? Render(ArrowArray column, int row)
    {
        ArgumentNullException.ThrowIfNull(column);
        if (column.IsNull(row))
        {
            return null;
        }

        uint oid = uint.TryParse(column.Field.GetMetadata(PgTypeMapping.TypeOidKey), NumberStyles.None, CultureInfo.InvariantCulture, out uint o) ? o : 0;
        switch (column)
        {
            case BooleanArray a:
                return a.GetBit(row) ? "t" : "f";
            case Int16Array a:
                return a.GetRaw(row).ToString(CultureInfo.InvariantCulture);
            case Int32Array a:
                return a.GetRaw(row).ToString(CultureInfo.InvariantCulture);
            case Int64Array a:
                return a.GetRaw(row).ToString(CultureInfo.InvariantCulture);
            case UInt32Array a:
                return a.GetRaw(row).ToString(CultureInfo.InvariantCulture);
            case FloatArray a:
                return FormatFloat(a.GetRaw(row), single: true);
            case DoubleArray a:
                return FormatFloat(a.GetRaw(row), single: false);
            case DecimalArray a:
                return a.GetString(row);
            case BinaryArray a:
                return FormatBytea(a.GetBytes(row));
            case Utf8Array a:
                return a.GetString(row);
            case Date32Array a:
                return FormatDate(a.GetRaw(row));
            case TimestampArray a when a.Type is TimestampType { Unit: TimeUnit.Microsecond } ts:
                return FormatTimestamp(a.GetRaw(row), ts.Timezone is not null);
            case Time64Array a when a.Type is TimeType { Unit: TimeUnit.Microsecond }:
                return FormatTime(a.GetRaw(row));
            case MonthDayNanoIntervalArray a:
                return FormatInterval(a.GetRaw(row));
            case FixedSizeBinaryArray a when a.ByteWidth == 16 && (oid == PgOid.Uuid || a.Field.ExtensionName == "arrow.uuid"):
                return FormatUuid(a.GetBytes(row));
            default:
                throw new NotSupportedException($"PgTextRenderer cannot render column '{column.Field.Name}' of Arrow type {column.Type}.");
        }
    }

    /// <summary>float4/float8 output with extra_float_digits &gt; 0: shortest exact digits, PostgreSQL's notation.</summary>
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

        // Shortest round-trip digits from .NET ("R"), re-laid out like PostgreSQL's ryu-based output.
        string r = single ? ((float)value).ToString("R", CultureInfo.InvariantCulture) : value.ToString("R", CultureInfo.InvariantCulture);
        bool negative = r[0] == '-';
        if (negative)
        {
            r = r[1..];
        }

        int exponentIndex = r.IndexOfAny(['E', 'e']);
        int exponent = 0;
        string mantissa = r;
        if (exponentIndex >= 0)
        {
            exponent = int.Parse(r[(exponentIndex + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            mantissa = r[..exponentIndex];
        }

        int dot = mantissa.IndexOf('.', StringComparison.Ordinal);
        string digits = dot >= 0 ? mantissa.Remove(dot, 1) : mantissa;
        int pointPosition = (dot >= 0 ? dot : mantissa.Length) + exponent; // digits before the decimal point
        int leadingZeros = digits.Length - digits.TrimStart('0').Length;
        digits = digits.Trim('0');
        pointPosition -= leadingZeros;
        int decimalExponent = pointPosition - 1; // value = d.ddd × 10^decimalExponent
        int threshold = single ? 6 : 15;
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

    private static void AppendDate(StringBuilder sb, long days, out bool bc)
    {
        var (year, month, day) = PgCalendar.CivilFromDays(days);
        bc = year <= 0;
        long printed = bc ? 1 - year : year;
        sb.Append(printed.ToString("0000", CultureInfo.InvariantCulture)).Append('-')
            .Append(month.ToString("00", CultureInfo.InvariantCulture)).Append('-')
            .Append(day.ToString("00", CultureInfo.InvariantCulture));
    }

    public static string FormatDate(int days)
    {
        var sb = new StringBuilder(16);
        AppendDate(sb, days, out bool bc);
        return bc ? sb.Append(" BC").ToString() : sb.ToString();
    }

    private static void AppendTime(StringBuilder sb, long micros)
    {
        long seconds = micros / 1_000_000;
        long fraction = micros % 1_000_000;
        sb.Append((seconds / 3600).ToString("00", CultureInfo.InvariantCulture)).Append(':')
            .Append((seconds / 60 % 60).ToString("00", CultureInfo.InvariantCulture)).Append(':')
            .Append((seconds % 60).ToString("00", CultureInfo.InvariantCulture));
        if (fraction != 0)
        {
            sb.Append('.').Append(fraction.ToString("000000", CultureInfo.InvariantCulture).TrimEnd('0'));
        }
    }

    public static string FormatTimestamp(long microsSinceEpoch, bool withZone)
    {
        long days = PgCalendar.FloorDiv(microsSinceEpoch, PgCalendar.MicrosPerDay);
        long timeOfDay = microsSinceEpoch - (days * PgCalendar.MicrosPerDay);
        var sb = new StringBuilder(40);
        AppendDate(sb, days, out bool bc);
        sb.Append(' ');
        AppendTime(sb, timeOfDay);
        if (withZone)
        {
            sb.Append("+00");
        }

        return bc ? sb.Append(" BC").ToString() : sb.ToString();
    }

    public static string FormatTime(long micros)
    {
        var sb = new StringBuilder(16);
        AppendTime(sb, micros);
        return sb.ToString();
    }

    /// <summary>interval_out with IntervalStyle=postgres (microsecond resolution).</summary>
    public static string FormatInterval(MonthDayNanoInterval value)
    {
        int years = value.Months / 12;
        int months = value.Months % 12;
        int days = value.Days;
        long micros = value.Nanoseconds / 1000;
        long hours = micros / 3_600_000_000L;
        micros -= hours * 3_600_000_000L;
        long minutes = micros / 60_000_000L;
        micros -= minutes * 60_000_000L;
        long seconds = micros / 1_000_000L;
        long fraction = micros - (seconds * 1_000_000L);

        var sb = new StringBuilder(48);
        bool isZero = true;
        bool isBefore = false;
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
            bool minus = hours < 0 || minutes < 0 || seconds < 0 || fraction < 0;
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

    public static string FormatUuid(ReadOnlySpan<byte> bytes)
    {
        string hex = Convert.ToHexStringLower(bytes);
        return $"{hex[..8]}-{hex[8..12]}-{hex[12..16]}-{hex[16..20]}-{hex[20..]}";
    }
}
