using System.Buffers.Binary;
using System.Globalization;
using System.Text.Unicode;
using WalBridge.Serialization.Columns;

namespace WalBridge.Serialization.Postgres;

/// <summary>Dates, times, timestamps (with and without zone, BC years) and intervals, in text form.</summary>
internal static partial class PgValueParser
{
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

        if (!Digits(v, ref pos, 4, 7, out var year) || !Expect(v, ref pos, (byte)'-')
            || !Digits(v, ref pos, 2, 2, out var month) || !Expect(v, ref pos, (byte)'-')
            || !Digits(v, ref pos, 2, 2, out var day))
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

        var year = bc ? 1 - date.Year : date.Year;
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
        if (!Digits(v, ref pos, 2, 2, out var h) || !Expect(v, ref pos, (byte)':')
            || !Digits(v, ref pos, 2, 2, out var m) || !Expect(v, ref pos, (byte)':')
            || !Digits(v, ref pos, 2, 2, out var s))
        {
            return Fail(out problem, "expected HH:MM:SS");
        }

        if (h > maxHours || m > 59 || s > 60)
        {
            return Fail(out problem, "time field out of range");
        }

        if (!ParseFraction(v, ref pos, out var fraction))
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
        var digits = 0;
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

        for (var i = digits; i < 6; i++)
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
        var pos = 0;
        if (!ParseDateFields(v, ref pos, out var date, out problem))
        {
            return false;
        }

        if (!Expect(v, ref pos, (byte)' ') || !ParseTime(v, ref pos, 23, out var micros, out problem))
        {
            problem ??= "expected a time after the date";
            return false;
        }

        long offsetSeconds = 0;
        if (withZone && !ParseUtcOffset(v, ref pos, out offsetSeconds, out problem))
        {
            return false;
        }

        if (!ResolveDate(date, ParseEra(v, ref pos), out var days, out problem) || !AtEnd(v, pos, out problem))
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
        if (!Digits(v, ref pos, 2, 2, out var oh))
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
        var pos = 0;
        var any = false;
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

            if (!Digits(v, ref pos, 1, 18, out var number))
            {
                return Fail(out problem, "expected a number");
            }

            if (pos < v.Length && v[pos] == ':')
            {
                // Time part: hours may have any number of digits.
                pos++;
                if (!Digits(v, ref pos, 2, 2, out var minutes) || !Expect(v, ref pos, (byte)':') || !Digits(v, ref pos, 2, 2, out var seconds)
                    || !ParseFraction(v, ref pos, out var fraction) || minutes > 59 || seconds > 59)
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

            var unitStart = pos;
            while (pos < v.Length && v[pos] >= 'a' && v[pos] <= 'z')
            {
                pos++;
            }

            var unit = v[unitStart..pos];
            var n = sign * number;
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
}
