using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using System.Text;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Connector.Formats.Debezium;

/// <summary>
/// Text forms Debezium's values take: Java's <c>Double.toString</c>/<c>Float.toString</c> layout (what Kafka Connect's
/// JsonConverter prints), ISO-8601 dates and times as Java's formatters print them, ISO-8601 durations, unscaled
/// decimal bytes (Java's <c>BigInteger.toByteArray</c>). Pure functions; thread-safe.
/// </summary>
internal static class TextForms
{
    /// <summary>Java's <c>Double.toString</c> (shortest digits): <c>100.0</c>, <c>1.0E7</c>, <c>1.234E-5</c>, <c>-0.0</c>.</summary>
    public static string JavaDouble(double value) => JavaLayout(value.ToString("R", CultureInfo.InvariantCulture), value == 0, double.IsNegative(value));

    /// <summary>Java's <c>Float.toString</c> (shortest float digits).</summary>
    public static string JavaFloat(float value) => JavaLayout(value.ToString("R", CultureInfo.InvariantCulture), value == 0, float.IsNegative(value));

    private static string JavaLayout(string shortest, bool zero, bool negative)
    {
        if (zero)
        {
            return negative ? "-0.0" : "0.0";
        }

        // shortest: [-]digits[.digits][E[+-]exp]; rebuild as digits and a decimal exponent.
        var text = shortest.TrimStart('-');
        var exponent = 0;
        var e = text.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            exponent = int.Parse(text.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            text = text[..e];
        }
        var dot = text.IndexOf('.', StringComparison.Ordinal);
        var digits = dot >= 0 ? text.Remove(dot, 1) : text;
        var pointAt = (dot >= 0 ? dot : text.Length) + exponent;
        var leading = digits.Length - digits.TrimStart('0').Length;
        digits = digits.Trim('0');
        pointAt -= leading;
        var decimalExponent = pointAt - 1; // value = d.ddd × 10^decimalExponent
        var sb = new StringBuilder(26);
        if (negative)
        {
            sb.Append('-');
        }

        if (decimalExponent >= -3 && decimalExponent < 7)
        {
            if (pointAt <= 0)
            {
                sb.Append("0.").Append('0', -pointAt).Append(digits);
            }
            else if (digits.Length <= pointAt)
            {
                sb.Append(digits).Append('0', pointAt - digits.Length).Append(".0");
            }
            else
            {
                sb.Append(digits, 0, pointAt).Append('.').Append(digits, pointAt, digits.Length - pointAt);
            }
        }
        else
        {
            sb.Append(digits[0]).Append('.').Append(digits.Length > 1 ? digits[1..] : "0").Append('E').Append(decimalExponent.ToString(CultureInfo.InvariantCulture));
        }

        return sb.ToString();
    }

    /// <summary>Java's <c>BigInteger.toByteArray()</c> of <paramref name="value"/>: minimal big-endian two's complement, at least one byte.</summary>
    public static byte[] UnscaledBytes(BigInteger value) => value.ToByteArray(isUnsigned: false, isBigEndian: true);

    /// <summary>
    /// Parses PostgreSQL's numeric text (<c>-12.3400</c>) into its unscaled value and scale (digits after the point, as written).
    /// False for <c>NaN</c>, <c>Infinity</c> and anything else that is not a plain decimal.
    /// </summary>
    public static bool TryParseDecimal(string text, out BigInteger unscaled, out int scale)
    {
        unscaled = default;
        scale = 0;
        var span = text.AsSpan().Trim();
        var negative = false;
        if (span.Length > 0 && (span[0] == '-' || span[0] == '+'))
        {
            negative = span[0] == '-';
            span = span[1..];
        }
        if (span.Length == 0)
        {
            return false;
        }

        var dot = span.IndexOf('.');
        var whole = dot >= 0 ? span[..dot] : span;
        var fraction = dot >= 0 ? span[(dot + 1)..] : [];
        foreach (var c in whole)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }
        foreach (var c in fraction)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }
        if (whole.Length + fraction.Length == 0)
        {
            return false;
        }

        var digits = string.Concat(whole, fraction);
        unscaled = BigInteger.Parse(digits.Length == 0 ? "0" : digits, NumberStyles.None, CultureInfo.InvariantCulture);
        if (negative)
        {
            unscaled = -unscaled;
        }

        scale = fraction.Length;
        return true;
    }

    /// <summary>Removes trailing zeros of the fraction as Java's <c>stripTrailingZeros</c> does, never below scale 0 (Debezium's VariableScaleDecimal).</summary>
    public static (BigInteger Unscaled, int Scale) StripTrailingZeros(BigInteger unscaled, int scale)
    {
        if (unscaled.IsZero)
        {
            return (BigInteger.Zero, 0);
        }

        while (scale > 0)
        {
            var quotient = BigInteger.DivRem(unscaled, 10, out var remainder);
            if (!remainder.IsZero)
            {
                break;
            }

            unscaled = quotient;
            scale--;
        }
        return (unscaled, scale);
    }

    /// <summary>The plain text of an unscaled decimal (<c>toPlainString</c>).</summary>
    public static string PlainDecimal(BigInteger unscaled, int scale)
    {
        var negative = unscaled.Sign < 0;
        var digits = BigInteger.Abs(unscaled).ToString(CultureInfo.InvariantCulture);
        if (scale > 0)
        {
            if (digits.Length <= scale)
            {
                digits = new string('0', scale - digits.Length + 1) + digits;
            }

            digits = digits[..^scale] + "." + digits[^scale..];
        }
        return negative ? "-" + digits : digits;
    }


    /// <summary>
    /// Debezium's <c>io.debezium.time.ZonedTimestamp</c> text of microseconds since the epoch, UTC, as Java's ISO formatter
    /// prints it: <c>2018-06-20T10:12:00.123456Z</c> with exactly <paramref name="fractionDigits"/> digits (1-6), or with the
    /// fraction left out when zero and <paramref name="fractionDigits"/> is 0. Years beyond 9999 carry a sign (<c>+10000</c>),
    /// years before 1 are astronomical (<c>0000</c> is 1 BC, <c>-0001</c> is 2 BC).
    /// </summary>
    public static string IsoTimestamp(long micros, int fractionDigits)
    {
        var days = PgCalendar.FloorDiv(micros, PgCalendar.MicrosPerDay);
        var timeOfDay = micros - (days * PgCalendar.MicrosPerDay);
        var sb = new StringBuilder(32);
        AppendIsoDate(sb, days);
        sb.Append('T');
        AppendIsoTime(sb, timeOfDay, fractionDigits);
        return sb.Append('Z').ToString();
    }

    /// <summary>An ISO local date: <c>YYYY-MM-DD</c>, signed beyond four digits as Java prints it.</summary>
    public static void AppendIsoDate(StringBuilder sb, long days)
    {
        ArgumentNullException.ThrowIfNull(sb);
        var (year, month, day) = PgCalendar.CivilFromDays(days);
        if (year > 9999)
        {
            sb.Append('+').Append(year.ToString(CultureInfo.InvariantCulture));
        }
        else if (year < 0)
        {
            sb.Append('-').Append((-year).ToString("0000", CultureInfo.InvariantCulture));
        }
        else
        {
            AppendPadded(sb, year, 4);
        }
        AppendPadded(sb.Append('-'), month, 2);
        AppendPadded(sb.Append('-'), day, 2);
    }

    /// <summary>
    /// Appends a non-negative <paramref name="value"/> with at least <paramref name="width"/> digits, zero-padded: what
    /// <c>ToString("00…")</c> prints, without the string and the format parsing (one timestamp per row is hot).
    /// </summary>
    private static void AppendPadded(StringBuilder sb, long value, int width)
    {
        Debug.Assert(value >= 0, "callers pass non-negative fields");
        Span<char> digits = stackalloc char[20];
        var at = digits.Length;
        do
        {
            digits[--at] = (char)('0' + (value % 10));
            value /= 10;
        }
        while (value > 0);
        while (digits.Length - at < width)
        {
            digits[--at] = '0';
        }

        sb.Append(digits[at..]);
    }

    /// <summary>
    /// <c>HH:MM:SS</c> and a fraction: exactly <paramref name="fractionDigits"/> digits when 1-9; when 0, Java's
    /// ISO_LOCAL_TIME form (the fraction's significant digits, none when zero).
    /// </summary>
    public static void AppendIsoTime(StringBuilder sb, long micros, int fractionDigits)
    {
        ArgumentNullException.ThrowIfNull(sb);
        var seconds = micros / 1_000_000;
        var fraction = micros % 1_000_000;
        if (micros < 0)
        {
            // Not a time of day (never passed today): the general form, with its minus signs.
            sb.Append((seconds / 3600).ToString("00", CultureInfo.InvariantCulture)).Append(':')
                .Append((seconds / 60 % 60).ToString("00", CultureInfo.InvariantCulture)).Append(':')
                .Append((seconds % 60).ToString("00", CultureInfo.InvariantCulture));
            if (fractionDigits > 0)
            {
                sb.Append('.').Append((fraction * 1000).ToString("000000000", CultureInfo.InvariantCulture), 0, Math.Min(fractionDigits, 9));
            }
            else if (fraction != 0)
            {
                sb.Append('.').Append((fraction * 1000).ToString("000000000", CultureInfo.InvariantCulture).TrimEnd('0'));
            }

            return;
        }

        AppendPadded(sb, seconds / 3600, 2);
        AppendPadded(sb.Append(':'), seconds / 60 % 60, 2);
        AppendPadded(sb.Append(':'), seconds % 60, 2);
        if (fractionDigits <= 0 && fraction == 0)
        {
            return;
        }

        // The nanoseconds as nine digits: all of them cut to fractionDigits, or (0) the significant ones.
        Span<char> nanos = stackalloc char[9];
        var value = fraction * 1000;
        for (var i = 8; i >= 0; i--)
        {
            nanos[i] = (char)('0' + (value % 10));
            value /= 10;
        }

        sb.Append('.').Append(fractionDigits > 0 ? nanos[..Math.Min(fractionDigits, 9)] : nanos.TrimEnd('0'));
    }

    /// <summary>
    /// Debezium's <c>io.debezium.time.Interval</c>: <c>P&lt;y&gt;Y&lt;m&gt;M&lt;d&gt;DT&lt;h&gt;H&lt;m&gt;M&lt;s&gt;S</c> from PostgreSQL's
    /// months, days and microseconds, split the way PostgreSQL prints them (years and hours truncated toward zero).
    /// </summary>
    public static string IsoInterval(int months, int days, long micros)
    {
        var years = months / 12;
        var restMonths = months % 12;
        var hours = micros / 3_600_000_000L;
        var rest = micros - (hours * 3_600_000_000L);
        var minutes = rest / 60_000_000L;
        rest -= minutes * 60_000_000L;
        var seconds = PlainDecimal(rest, 6);
        if (seconds.Contains('.', StringComparison.Ordinal))
        {
            seconds = seconds.TrimEnd('0').TrimEnd('.');
        }

        if (seconds is "-0" or "")
        {
            seconds = "0";
        }

        return FormattableString.Invariant($"P{years}Y{restMonths}M{days}DT{hours}H{minutes}M{seconds}S");
    }

    /// <summary>
    /// Debezium's <c>io.debezium.time.MicroDuration</c>: the approximate microseconds of an interval with 365.25 / 12 days
    /// per month, computed in double precision in the same order as Debezium does (and saturated like Java's cast).
    /// </summary>
    public static long MicroDuration(int months, int days, long micros)
    {
        var years = months / 12;
        var restMonths = months % 12;
        var hours = (int)(micros / 3_600_000_000L);
        var rest = micros - (hours * 3_600_000_000L);
        var minutes = (int)(rest / 60_000_000L);
        rest -= minutes * 60_000_000L;
        var seconds = rest / 1e6;
        const double DaysPerMonth = 365.25 / 12.0d;
        var numberOfDays = (((years * 12) + restMonths) * DaysPerMonth) + days;
        var numberOfSeconds = (((((numberOfDays * 24) + hours) * 60) + minutes) * 60) + seconds;
        var result = numberOfSeconds * 1e6;
        if (double.IsNaN(result))
        {
            return 0;
        }

        if (result >= 9.223372036854775807e18)
        {
            return long.MaxValue;
        }

        return result <= -9.223372036854775808e18 ? long.MinValue : (long)result;
    }
}
