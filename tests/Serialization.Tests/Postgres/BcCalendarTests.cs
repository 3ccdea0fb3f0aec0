using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Apache.Arrow;
using Apache.Arrow.Types;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;
using WalBridge.Tests;

namespace WalBridge.Serialization.Tests.Postgres;

/// <summary>
/// Issue 15: BC dates and timestamps, leap days of BC years in particular (1 BC, 5 BC, … are leap years: year Y BC is
/// astronomical year 1 - Y), through the pipeline's entry point (ChangeBatchBuilder, text and binary tuples) → IPC →
/// reader → PgTextRenderer. Every expected text, day count and send-format value below was printed by PostgreSQL 15
/// (<c>d::text</c>, <c>d - date '1970-01-01'</c>, <c>date_send</c>/<c>timestamp_send</c>/<c>timestamptz_send</c>).
/// </summary>
public class BcCalendarTests
{
    private const long UnixToPgEpochMicros = 946_684_800_000_000;
    private const int UnixToPgEpochDays = 10_957;
    private const uint DateArrayOid = 1182; // date[]

    private static RecordBatch Single(uint oid, ReadOnlySpan<byte> value, TupleFormat format)
    {
        using var builder = new ChangeBatchBuilder(new PgRelation(1, "public", "t", 'd', [new PgColumn("v", oid, -1, false)]));
        builder.BeginRow(ChangeOp.Insert, 1);
        builder.AppendValue(value, format);
        builder.EndRow();
        var output = new ArrayBufferWriter<byte>();
        builder.WriteStream(output);
        return Assert.Single(ArrowPayload.Read(output.WrittenMemory.ToArray()).Batches);
    }

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    /// <summary>PostgreSQL's date text, <c>d - date '1970-01-01'</c>, <c>date_send(d)</c>.</summary>
    public static TheoryData<string, int, string> Dates() => new()
    {
        { "0005-02-29 BC", -720930, "fff4d511" },
        { "0001-02-29 BC", -719469, "fff4dac6" },
        { "0009-02-29 BC", -722391, "fff4cf5c" },
        { "0097-02-29 BC", -754533, "fff451ce" },
        { "0401-02-29 BC", -865566, "fff2a015" }, // astronomical -400: divisible by 400, a leap year
        { "4713-02-29 BC", -2440491, "ffda9808" },
        { "4714-11-24 BC", -2440588, "ffda97a7" }, // PostgreSQL's first date (Julian day 0)
        { "0101-02-28 BC", -755994, "fff44c19" }, // astronomical -100: not a leap year
        { "0101-03-01 BC", -755993, "fff44c1a" },
        { "0001-12-31 BC", -719163, "fff4dbf8" },
        { "0001-01-01", -719162, "fff4dbf9" },
        { "5874897-12-31", 2145042905, "7fda970c" }, // PostgreSQL's last date
    };

    [Theory]
    [MemberData(nameof(Dates))]
    public void Dates_PostgreSQL_prints_parse_from_text_and_binary_to_its_day_number_and_render_back(string text, int daysSince1970, string sendHex)
    {
        var binary = Convert.FromHexString(sendHex);
        Assert.Equal(daysSince1970, BinaryPrimitives.ReadInt32BigEndian(binary) + UnixToPgEpochDays);
        foreach (var (format, value) in new[] { (TupleFormat.Text, Utf8(text)), (TupleFormat.Binary, binary) })
        {
            var batch = Single(PgOid.Date, value, format);
            var v = batch.Schema.IndexOf("v");
            var column = Assert.IsType<Date32Array>(batch.Column(v));
            Assert.False(column.IsNull(0), $"{format} {text}: value column is null");
            Assert.Equal(daysSince1970, column.Values[0]);
            Assert.Equal(text, PgTextRenderer.RenderCell(batch, v, 0));
            Assert.True(batch.Column(ChangeBatchBuilder.SpecialColumn).IsNull(0));
        }
    }

    /// <summary>Type, PostgreSQL's text (TimeZone UTC), <c>timestamp[tz]_send</c>.</summary>
    public static TheoryData<uint, string, string> Timestamps() => new()
    {
        { PgOid.TimestampTz, "3769-02-29 06:40:38.790399+00 BC", "fd7959f545a954ff" },
        { PgOid.TimestampTz, "0001-02-29 00:00:00+00 BC", "ff1fcadffc544000" },
        { PgOid.TimestampTz, "0005-02-29 23:59:59.999999+00 BC", "ff1f5825cc04bfff" },
        { PgOid.TimestampTz, "4714-11-24 00:00:00+00 BC", "fd0f7cc1411fa000" },
        { PgOid.TimestampTz, "0001-12-31 23:59:59.999999+00 BC", "ff1fe2ffc59c5fff" },
        { PgOid.TimestampTz, "294247-01-10 04:00:54.775807+00", "7ffca2fec4c81fff" },
        { PgOid.Timestamp, "0001-02-29 00:00:00 BC", "ff1fcadffc544000" },
        { PgOid.Timestamp, "0005-02-29 12:00:00.5 BC", "ff1f581bbd20b120" },
        { PgOid.Timestamp, "4714-11-24 00:00:00 BC", "fd0f7cc1411fa000" },
        { PgOid.Timestamp, "4713-02-29 23:59:59.999999 BC", "fd0f8474ad925fff" },
    };

    [Theory]
    [MemberData(nameof(Timestamps))]
    public void Timestamps_PostgreSQL_prints_parse_from_text_and_binary_and_render_back(uint oid, string text, string sendHex)
    {
        var binary = Convert.FromHexString(sendHex);
        var expected = BinaryPrimitives.ReadInt64BigEndian(binary) + UnixToPgEpochMicros;
        foreach (var (format, value) in new[] { (TupleFormat.Text, Utf8(text)), (TupleFormat.Binary, binary) })
        {
            var batch = Single(oid, value, format);
            var v = batch.Schema.IndexOf("v");
            var column = Assert.IsType<TimestampArray>(batch.Column(v));
            Assert.False(column.IsNull(0), $"{format} {text}: value column is null");
            Assert.Equal(expected, column.Values[0]);
            Assert.Equal(text, PgTextRenderer.RenderCell(batch, v, 0));
        }
    }

    /// <summary>
    /// timestamptz text in other session time zones (PostgreSQL's text under that TimeZone, its send format, its text
    /// under UTC): local mean time offsets with seconds, offsets west of UTC that move the local date before
    /// PostgreSQL's first date, BC after the offset.
    /// </summary>
    public static TheoryData<string, string, string> ZonedTimestamps() => new()
    {
        { "3769-02-29 03:09:46.790399-03:30:52 BC", "fd7959f545a954ff", "3769-02-29 06:40:38.790399+00 BC" }, // America/St_Johns
        { "4714-11-23 20:29:08-03:30:52 BC", "fd0f7cc1411fa000", "4714-11-24 00:00:00+00 BC" },
        { "0001-02-28 20:29:08-03:30:52 BC", "ff1fcadffc544000", "0001-02-29 00:00:00+00 BC" },
        { "294247-01-10 00:30:54.775807-03:30", "7ffca2fec4c81fff", "294247-01-10 04:00:54.775807+00" },
        { "3769-02-29 12:34:06.790399+05:53:28 BC", "fd7959f545a954ff", "3769-02-29 06:40:38.790399+00 BC" }, // Asia/Kolkata
        { "1900-01-01 05:21:10+05:21:10", "fff4c9ee7c0b8000", "1900-01-01 00:00:00+00" },
        { "294247-01-10 09:30:54.775807+05:30", "7ffca2fec4c81fff", "294247-01-10 04:00:54.775807+00" }, // the last microsecond int64 holds
        { "4714-11-24 00:19:32+00:19:32 BC", "fd0f7cc1411fa000", "4714-11-24 00:00:00+00 BC" }, // Europe/Amsterdam
        { "0001-02-29 00:19:32+00:19:32 BC", "ff1fcadffc544000", "0001-02-29 00:00:00+00 BC" },
        { "1900-01-01 00:19:32+00:19:32", "fff4c9ee7c0b8000", "1900-01-01 00:00:00+00" },
    };

    [Theory]
    [MemberData(nameof(ZonedTimestamps))]
    public void Timestamptz_text_in_any_session_time_zone_gives_the_same_instant(string text, string sendHex, string utcText)
    {
        var expected = BinaryPrimitives.ReadInt64BigEndian(Convert.FromHexString(sendHex)) + UnixToPgEpochMicros;
        var batch = Single(PgOid.TimestampTz, Utf8(text), TupleFormat.Text);
        var v = batch.Schema.IndexOf("v");
        var column = Assert.IsType<TimestampArray>(batch.Column(v));
        Assert.False(column.IsNull(0), $"{text}: value column is null");
        Assert.Equal(expected, column.Values[0]);
        Assert.Equal(utcText, PgTextRenderer.RenderCell(batch, v, 0));
    }

    [Theory]
    [InlineData(PgOid.Date, "0004-02-29 BC")] // astronomical -3: not a leap year (though 4 AD is)
    [InlineData(PgOid.Date, "0101-02-29 BC")]
    [InlineData(PgOid.Date, "0000-01-01")]
    [InlineData(PgOid.Date, "0000-01-01 BC")]
    [InlineData(PgOid.Date, "2023-02-29")]
    [InlineData(PgOid.Date, "0005-02-30 BC")]
    [InlineData(PgOid.Date, "0005-02-29 AD")]
    [InlineData(PgOid.Date, "0005-02-29 BCE")]
    [InlineData(PgOid.Timestamp, "0004-02-29 00:00:00 BC")]
    [InlineData(PgOid.TimestampTz, "0004-02-29 00:00:00+00 BC")]
    [InlineData(PgOid.TimestampTz, "0005-02-29 00:00:00 BC+00")]
    [InlineData(PgOid.TimestampTz, "0005-02-29 00:00:00+00:60 BC")]
    [InlineData(PgOid.TimestampTz, "2024-01-01 00:00:00+05:30:60")]
    [InlineData(PgOid.TimestampTz, "2024-01-01 00:00:00+05:")]
    public void Days_that_do_not_exist_in_their_era_are_rejected(uint oid, string text)
    {
        using var builder = new ChangeBatchBuilder(new PgRelation(1, "public", "t", 'd', [new PgColumn("v", oid, -1, false)]));
        builder.BeginRow(ChangeOp.Insert, 1);
        Assert.Throws<PgValueFormatException>(() => builder.AppendValue(Utf8(text), TupleFormat.Text));
    }

    [Fact]
    public void BC_leap_days_inside_arrays_parse_and_render_like_array_out()
    {
        const string text = "{\"0005-02-29 BC\",2024-02-29,NULL,\"4714-11-24 BC\"}";
        var batch = Single(DateArrayOid, Utf8(text), TupleFormat.Text);
        var v = batch.Schema.IndexOf("v");
        Assert.Equal(text, PgTextRenderer.RenderCell(batch, v, 0));
        var values = (Date32Array)((ListArray)batch.Column(v)).Values;
        Assert.Equal(-720930, values.Values[0]);
        Assert.Equal(-2440588, values.Values[3]);

        const string timestamps = "{\"3769-02-29 06:40:38.790399+00 BC\",\"0001-02-29 00:00:00+00 BC\"}";
        batch = Single(PgOid.TimestampTzArray, Utf8(timestamps), TupleFormat.Text);
        Assert.Equal(timestamps, PgTextRenderer.RenderCell(batch, batch.Schema.IndexOf("v"), 0));
    }
}
