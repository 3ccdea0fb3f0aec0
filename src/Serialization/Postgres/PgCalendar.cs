namespace WalBridge.Serialization.Postgres;

/// <summary>
/// Proleptic Gregorian calendar arithmetic on astronomical years (1 BC = year 0), as PostgreSQL uses: the one definition,
/// shared by the parsers, the PostgreSQL text renderer and the Debezium text forms. Pure functions, thread-safe.
/// </summary>
public static class PgCalendar
{
    /// <summary>Days from 1970-01-01 to PostgreSQL's epoch 2000-01-01.</summary>
    public const int PgEpochDays = 10957;

    /// <summary>Microseconds from 1970-01-01 to 2000-01-01.</summary>
    public const long PgEpochMicros = PgEpochDays * 86_400_000_000L;

    public const long MicrosPerDay = 86_400_000_000L;

    /// <summary>Days since 1970-01-01 of a civil date (H. Hinnant's algorithm; valid for negative years).</summary>
    public static long DaysFromCivil(long year, int month, int day)
    {
        year -= month <= 2 ? 1 : 0;
        var era = (year >= 0 ? year : year - 399) / 400;
        var yoe = year - (era * 400);
        long doy = ((153 * (month > 2 ? month - 3 : month + 9)) + 2) / 5 + day - 1;
        var doe = (yoe * 365) + (yoe / 4) - (yoe / 100) + doy;
        return (era * 146097) + doe - 719468;
    }

    /// <summary>Days since 1970-01-01 to (astronomical year, month, day).</summary>
    public static (long Year, int Month, int Day) CivilFromDays(long days)
    {
        days += 719468;
        var era = (days >= 0 ? days : days - 146096) / 146097;
        var doe = days - (era * 146097);
        var yoe = (doe - (doe / 1460) + (doe / 36524) - (doe / 146096)) / 365;
        var year = yoe + (era * 400);
        var doy = doe - ((365 * yoe) + (yoe / 4) - (yoe / 100));
        var mp = ((5 * doy) + 2) / 153;
        var day = (int)(doy - (((153 * mp) + 2) / 5) + 1);
        var month = (int)(mp < 10 ? mp + 3 : mp - 9);
        return (year + (month <= 2 ? 1 : 0), month, day);
    }

    public static bool IsValidDate(long year, int month, int day)
    {
        if (month < 1 || month > 12 || day < 1 || day > 31)
        {
            return false;
        }

        var (y, m, d) = CivilFromDays(DaysFromCivil(year, month, day));
        return y == year && m == month && d == day;
    }

    public static long FloorDiv(long a, long b)
    {
        var q = a / b;
        return (a % b != 0) && ((a < 0) != (b < 0)) ? q - 1 : q;
    }
}
