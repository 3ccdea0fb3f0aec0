using System.Globalization;
using System.Text;
using WalBridge.Connector.Formats.Debezium;

namespace WalBridge.Connector.Tests.Formats;

/// <summary>
/// The ISO forms of Debezium's <c>ZonedTimestamp</c> and times are written digit by digit (they are per-row hot); they
/// must print exactly what the .NET formatting they replaced printed, for every field width and fraction setting.
/// </summary>
public class TextFormsTests
{
    [Fact]
    public void Iso_timestamps_and_times_print_what_invariant_formatting_prints()
    {
        var random = new Random(13);
        long[] edges = [0, 1, 999_999, 1_000_000, 86_399_999_999, 86_400_000_000, -1, -86_400_000_000, 1_704_164_645_500_000,
            253_402_300_799_999_999 /* 9999-12-31 23:59:59.999999 */, -62_135_596_800_000_000 /* 0001-01-01 */, -62_167_219_200_000_000 /* 0000-01-01 */];
        var values = edges.Concat(Enumerable.Range(0, 20_000).Select(_ => random.NextInt64(-62_167_219_200_000_000, 253_402_300_800_000_000)));
        foreach (var micros in values)
        {
            foreach (var digits in new[] { 0, 1, 3, 6, 9 })
            {
                Assert.Equal(ReferenceIsoTimestamp(micros, digits), TextForms.IsoTimestamp(micros, digits));
            }
        }

        foreach (var micros in edges.Concat([86_400_000_000L, 90_000_000_000L, -5_000_001L]))
        {
            foreach (var digits in new[] { 0, 2, 6 })
            {
                var actual = new StringBuilder();
                TextForms.AppendIsoTime(actual, micros, digits);
                Assert.Equal(ReferenceIsoTime(micros, digits), actual.ToString());
            }
        }
    }

    /// <summary>The form as written before: the date by <c>PgCalendar</c>, every field by <c>ToString("00…")</c>.</summary>
    private static string ReferenceIsoTimestamp(long micros, int fractionDigits)
    {
        var days = WalBridge.Serialization.Postgres.PgCalendar.FloorDiv(micros, WalBridge.Serialization.Postgres.PgCalendar.MicrosPerDay);
        var (year, month, day) = WalBridge.Serialization.Postgres.PgCalendar.CivilFromDays(days);
        var date = year > 9999 ? "+" + year.ToString(CultureInfo.InvariantCulture)
            : year < 0 ? "-" + (-year).ToString("0000", CultureInfo.InvariantCulture)
            : year.ToString("0000", CultureInfo.InvariantCulture);
        date += "-" + month.ToString("00", CultureInfo.InvariantCulture) + "-" + day.ToString("00", CultureInfo.InvariantCulture);
        return date + "T" + ReferenceIsoTime(micros - (days * WalBridge.Serialization.Postgres.PgCalendar.MicrosPerDay), fractionDigits) + "Z";
    }

    private static string ReferenceIsoTime(long micros, int fractionDigits)
    {
        var seconds = micros / 1_000_000;
        var fraction = micros % 1_000_000;
        var text = (seconds / 3600).ToString("00", CultureInfo.InvariantCulture) + ":" + (seconds / 60 % 60).ToString("00", CultureInfo.InvariantCulture)
            + ":" + (seconds % 60).ToString("00", CultureInfo.InvariantCulture);
        if (fractionDigits > 0)
        {
            return text + "." + (fraction * 1000).ToString("000000000", CultureInfo.InvariantCulture)[..Math.Min(fractionDigits, 9)];
        }

        return fraction != 0 ? text + "." + (fraction * 1000).ToString("000000000", CultureInfo.InvariantCulture).TrimEnd('0') : text;
    }
}
