using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Apache.Arrow;
using Apache.Arrow.Types;
using Npgsql;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;
using WalBridge.Tests;

namespace WalBridge.Integration.Tests;

/// <summary>
/// Issue 15: every date PostgreSQL has, from its first (4714-11-24 BC, Julian day 0) to 9999-12-31, a sample beyond up to
/// its last (5874897-12-31), and timestamps / timestamptz at the edges of their range and spread across it, as PostgreSQL
/// itself prints them, in pgoutput's text form (COPY text: the type's output function, DateStyle ISO, the session
/// TimeZone) and binary form (COPY binary: the send function, days / microseconds since 2000-01-01). Each value goes
/// through the pipeline's entry point (<see cref="ChangeBatchBuilder"/> with <see cref="TupleFormat.Text"/> and
/// <see cref="TupleFormat.Binary"/>) → Arrow IPC → reader; the Arrow value must equal PostgreSQL's own number (computed in
/// SQL: <c>d - date '1970-01-01'</c>, or days × 86 400 000 000 + the time of day in microseconds, exact numerics), and
/// <see cref="PgTextRenderer"/> must print PostgreSQL's text back. Values the Arrow type cannot hold (microseconds since
/// 1970 beyond int64) must be null with PostgreSQL's exact text in <c>_special</c>. The COPY output is streamed and
/// checked in chunks.
/// </summary>
[Collection(InfrastructureCollection.Name)]
public sealed class CalendarExhaustiveTests(Infrastructure infrastructure)
{
    /// <summary>PostgreSQL day numbers (days since 2000-01-01) of its first date and of some later ones.</summary>
    private const int FirstDay = -2451545;        // 4714-11-24 BC, Julian day 0

    private const int Day9999_12_31 = 2921939;
    private const int Day10000_01_01 = 2921940;
    private const int Day100000_01_01 = 35793765;
    private const int Day1000000_01_01 = 364512015;
    private const int LastDay = 2145031948;       // 5874897-12-31
    private const int BeyondStride = 9973;        // prime to 146097 and ~215 000 steps: the sample meets every day of the 400-year cycle

    private const int ChunkRows = 8192;
    private const int MaxReported = 20;

    /// <summary>
    /// Every day from PostgreSQL's first date to 9999-12-31; beyond, every <see cref="BeyondStride"/>th day, the 1000 days
    /// around the years that get a sixth and a seventh digit, the first and the last 1000 days.
    /// </summary>
    private static readonly string s_dates = $"""
        SELECT date '2000-01-01' + i FROM generate_series({FirstDay}, {Day9999_12_31}) i
        UNION ALL SELECT date '2000-01-01' + i FROM generate_series({Day10000_01_01}, {LastDay - 1000}, {BeyondStride}) i
        UNION ALL SELECT date '2000-01-01' + i FROM generate_series({Day10000_01_01}, {Day10000_01_01 + 999}) i
        UNION ALL SELECT date '2000-01-01' + i FROM generate_series({Day100000_01_01 - 500}, {Day100000_01_01 + 499}) i
        UNION ALL SELECT date '2000-01-01' + i FROM generate_series({Day1000000_01_01 - 500}, {Day1000000_01_01 + 499}) i
        UNION ALL SELECT date '2000-01-01' + i FROM generate_series({LastDay - 999}, {LastDay}) i
        """;

    private static readonly long s_dateCount =
        (Day9999_12_31 - (long)FirstDay + 1) + (((LastDay - 1000L - Day10000_01_01) / BeyondStride) + 1) + (4 * 1000);

    /// <summary>
    /// Timestamps (one <c>timestamp</c> column): the first and last days of the range, the last day of 1 BC and the
    /// first of 1 AD, BC leap days, the days around the int64 limit of microseconds since 1970 (294247-01-10 04:00:54.775807),
    /// at midnight, the last microsecond of the day, noon and a half, and random microseconds; then random instants over
    /// the whole range, and random instants 1800-2100 (time zone transitions, local mean time). <c>setseed</c> makes every
    /// run, and every time zone of one run, see the same values.
    /// </summary>
    private const string Timestamps = """
        SELECT d + tod
        FROM unnest(ARRAY['4714-11-24 BC', '4714-11-25 BC', '4714-11-26 BC', '4713-02-29 BC', '3769-02-29 BC', '0005-02-29 BC',
                          '0001-02-29 BC', '0001-12-31 BC', '0001-01-01', '0004-02-29', '1969-12-31', '1970-01-01', '2000-01-01',
                          '9999-12-31', '10000-01-01', '294247-01-09', '294247-01-10', '294247-01-11', '294276-12-29',
                          '294276-12-30', '294276-12-31']::date[]) d,
             LATERAL (SELECT unnest(ARRAY[interval '0', interval '23:59:59.999999', interval '12:00:00.5'])
                      UNION ALL SELECT floor(random() * 86400000000)::int8 * interval '1 microsecond' FROM generate_series(1, 20)) x(tod)
        UNION ALL SELECT unnest(ARRAY['294247-01-10 04:00:54.775807', '294247-01-10 04:00:54.775808']::timestamp[])
        UNION ALL SELECT (date '4714-11-24 BC' + floor(random() * 109203528)::int) + floor(random() * 86400000000)::int8 * interval '1 microsecond'
                  FROM generate_series(1, 60000)
        UNION ALL SELECT (date '1800-01-01' + floor(random() * 109572)::int) + floor(random() * 86400000000)::int8 * interval '1 microsecond'
                  FROM generate_series(1, 20000)
        """;

    /// <summary>Microseconds since 1970-01-01 of <c>u</c> (a <c>timestamp</c>), exact, computed by PostgreSQL.</summary>
    private const string MicrosSince1970 = "((u::date - date '1970-01-01')::numeric * 86400000000 + extract(epoch from u::time) * 1000000)::numeric(30,0)";

    /// <summary>timestamptz_out under TimeZone UTC of <c>t</c>, built from PostgreSQL's text of <c>t AT TIME ZONE 'UTC'</c>.</summary>
    private const string UtcText = @"regexp_replace(u::text, '( BC)?$', '+00\1')";

    private sealed record Mismatch(string Value, string PgNumber, string PgText, string Ours);

    /// <summary>Feeds values to a ChangeBatchBuilder and compares the decoded chunk with PostgreSQL's numbers and texts.</summary>
    private sealed class Checker : IDisposable
    {
        private readonly ChangeBatchBuilder _builder;
        private readonly TupleFormat _format;
        private readonly Int128[] _numbers = new Int128[ChunkRows];
        private readonly int[] _inputEnds = new int[ChunkRows];
        private byte[] _inputs = new byte[ChunkRows * 16];
        private readonly string[] _expectedTexts = new string[ChunkRows];
        private readonly ArrayBufferWriter<byte> _output = new();
        private int _count;

        public Checker(uint typeOid, TupleFormat format)
        {
            _builder = new ChangeBatchBuilder(new PgRelation(1, "public", "calendar", 'd', [new PgColumn("v", typeOid, -1, false)]));
            _format = format;
        }

        public long Rows { get; private set; }

        public long Specials { get; private set; }

        public long MismatchCount { get; private set; }

        public List<Mismatch> Mismatches { get; } = [];

        /// <summary>One value as the tuple carries it, PostgreSQL's number for it, its text as the Arrow value renders back (and as <c>_special</c> carries it).</summary>
        public void Add(ReadOnlySpan<byte> value, Int128 pgNumber, string expectedText)
        {
            var start = _count == 0 ? 0 : _inputEnds[_count - 1];
            if (_inputs.Length < start + value.Length)
            {
                System.Array.Resize(ref _inputs, Math.Max(_inputs.Length * 2, start + value.Length));
            }

            value.CopyTo(_inputs.AsSpan(start));
            _inputEnds[_count] = start + value.Length;
            _numbers[_count] = pgNumber;
            _expectedTexts[_count] = expectedText;
            _builder.BeginRow(ChangeOp.Read, (ulong)Rows);
            try
            {
                _builder.AppendValue(value, _format);
                _builder.EndRow();
            }
            catch (PgValueFormatException e)
            {
                Report(_count, "rejected: " + e.Message);
                return;
            }
            finally
            {
                Rows++;
            }

            if (++_count == ChunkRows)
            {
                Flush();
            }
        }

        public void Flush()
        {
            if (_count == 0)
            {
                return;
            }

            _output.ResetWrittenCount();
            _builder.WriteStream(_output);
            var batch = Assert.Single(ArrowPayload.Read(_output.WrittenMemory).Batches);
            var v = batch.Schema.IndexOf("v");
            var column = batch.Column(v);
            for (var row = 0; row < _count; row++)
            {
                var rendered = PgTextRenderer.RenderCell(batch, v, row);
                var expected = _numbers[row];
                var fits = column is Date32Array ? expected >= int.MinValue && expected <= int.MaxValue : expected >= long.MinValue && expected <= long.MaxValue;
                if (column.IsNull(row))
                {
                    Specials++;
                    if (fits || rendered != _expectedTexts[row])
                    {
                        Report(row, $"null, _special {(rendered is null ? "absent" : $"'{rendered}'")}");
                    }

                    continue;
                }

                Int128 ours = column switch
                {
                    Date32Array dates => dates.Values[row],
                    TimestampArray timestamps => timestamps.Values[row],
                    _ => throw new InvalidOperationException($"unexpected Arrow column {column.Data.DataType.Name}"),
                };
                if (ours != expected || rendered != _expectedTexts[row])
                {
                    Report(row, $"{ours.ToString(CultureInfo.InvariantCulture)}, rendered '{rendered}'");
                }
            }

            _count = 0;
        }

        private string Input(int row)
        {
            var start = row == 0 ? 0 : _inputEnds[row - 1];
            var bytes = _inputs.AsSpan(start.._inputEnds[row]);
            return _format == TupleFormat.Text ? $"'{Encoding.UTF8.GetString(bytes)}'" : "0x" + Convert.ToHexStringLower(bytes);
        }

        private void Report(int row, string ours)
        {
            MismatchCount++;
            if (Mismatches.Count < MaxReported)
            {
                Mismatches.Add(new Mismatch(Input(row), _numbers[row].ToString(CultureInfo.InvariantCulture), _expectedTexts[row], ours));
            }
        }

        public void AssertClean(string what)
        {
            Flush();
            var message = new StringBuilder($"{what}: {MismatchCount} of {Rows} values differ from PostgreSQL's:");
            foreach (var m in Mismatches)
            {
                message.Append(CultureInfo.InvariantCulture, $"\n  value {m.Value}: PostgreSQL {m.PgNumber} '{m.PgText}', ours {m.Ours}");
            }

            Assert.True(MismatchCount == 0, message.ToString());
        }

        public void Dispose() => _builder.Dispose();
    }

    /// <summary>A COPY ... TO STDOUT output, buffered so that whole lines / tuples can be handled as spans of bytes.</summary>
    private sealed class CopyBuffer(Func<Memory<byte>, ValueTask<int>> source)
    {
        private byte[] _buffer = new byte[1 << 20];
        private int _start;
        private int _end;

        public ReadOnlySpan<byte> Data => _buffer.AsSpan(_start, _end - _start);

        public void Consume(int bytes) => _start += bytes;

        /// <summary>A binary COPY's raw bytes.</summary>
        public static CopyBuffer Of(Stream stream) => new(memory => stream.ReadAsync(memory));

        /// <summary>A text COPY's characters (Npgsql's text export), as UTF-8.</summary>
        public static CopyBuffer Of(TextReader reader)
        {
            var chars = new char[1 << 18];
            var encoder = Encoding.UTF8.GetEncoder();
            return new(async memory =>
            {
                var max = Math.Min(chars.Length, memory.Length / 4);
                var n = await reader.ReadAsync(chars.AsMemory(0, max));
                return encoder.GetBytes(chars.AsSpan(0, n), memory.Span, flush: n == 0);
            });
        }

        /// <summary>Reads more bytes (keeping the unconsumed ones); false at the end of the output.</summary>
        public async Task<bool> FillAsync()
        {
            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }

            if (_buffer.Length - _end < 4096)
            {
                System.Array.Resize(ref _buffer, _buffer.Length * 2);
            }

            var read = await source(_buffer.AsMemory(_end));
            _end += read;
            return read > 0;
        }
    }

    private static readonly byte[] s_binarySignature = [(byte)'P', (byte)'G', (byte)'C', (byte)'O', (byte)'P', (byte)'Y', (byte)'\n', 0xFF, (byte)'\r', (byte)'\n', 0];

    private async Task<NpgsqlConnection> OpenAsync(string timeZone)
    {
        var connection = new NpgsqlConnection(infrastructure.Postgres.ConnectionString());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"SET DateStyle = 'ISO'; SET IntervalStyle = 'postgres'; SET TimeZone = '{timeZone}'; SELECT setseed(0.15)", connection);
        await command.ExecuteNonQueryAsync();
        return connection;
    }

    /// <summary>
    /// COPY (<paramref name="select"/>) TO STDOUT in text format, whose rows are: the value (its output function: what
    /// pgoutput sends in text tuples), PostgreSQL's number, and optionally the expected rendering (else the value's text).
    /// </summary>
    private async Task<Checker> CheckTextAsync(uint typeOid, string select, string timeZone)
    {
        await using var connection = await OpenAsync(timeZone);
        var checker = new Checker(typeOid, TupleFormat.Text);
        try
        {
            using var copy = await connection.BeginTextExportAsync($"COPY ({select}) TO STDOUT");
            var buffer = CopyBuffer.Of(copy);
            while (await buffer.FillAsync())
            {
                ConsumeTextLines(buffer, checker);
            }

            Assert.True(buffer.Data.IsEmpty, "COPY text output ends with an incomplete line");
            checker.Flush();
            return checker;
        }
        catch
        {
            checker.Dispose();
            throw;
        }
    }

    private static void ConsumeTextLines(CopyBuffer buffer, Checker checker)
    {
        var data = buffer.Data;
        var consumed = 0;
        while (true)
        {
            var eol = data[consumed..].IndexOf((byte)'\n');
            if (eol < 0)
            {
                break;
            }

            var line = data.Slice(consumed, eol);
            consumed += eol + 1;
            var tab1 = line.IndexOf((byte)'\t');
            var value = line[..tab1];
            var rest = line[(tab1 + 1)..];
            var tab2 = rest.IndexOf((byte)'\t');
            var number = tab2 < 0 ? rest : rest[..tab2];
            var expected = Encoding.UTF8.GetString(tab2 < 0 ? value : rest[(tab2 + 1)..]);
            checker.Add(value, Int128.Parse(number, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture), expected);
        }

        buffer.Consume(consumed);
    }

    /// <summary>
    /// COPY (<paramref name="select"/>) TO STDOUT (FORMAT binary), whose rows are: the value (its send format: what pgoutput
    /// sends in binary tuples), PostgreSQL's number as text, and the expected rendering (PostgreSQL's text of the value).
    /// </summary>
    private async Task<Checker> CheckBinaryAsync(uint typeOid, string select)
    {
        await using var connection = await OpenAsync("UTC");
        var checker = new Checker(typeOid, TupleFormat.Binary);
        try
        {
            await using var copy = await connection.BeginRawBinaryCopyAsync($"COPY ({select}) TO STDOUT (FORMAT binary)");
            var buffer = CopyBuffer.Of(copy);
            bool header = false, trailer = false;
            while (await buffer.FillAsync())
            {
                ConsumeBinaryTuples(buffer, checker, ref header, ref trailer);
            }

            Assert.True(trailer && buffer.Data.IsEmpty, "COPY binary output does not end with its trailer");
            checker.Flush();
            return checker;
        }
        catch
        {
            checker.Dispose();
            throw;
        }
    }

    private static void ConsumeBinaryTuples(CopyBuffer buffer, Checker checker, ref bool header, ref bool trailer)
    {
        var data = buffer.Data;
        var consumed = 0;
        if (!header)
        {
            if (data.Length < s_binarySignature.Length + 8)
            {
                return;
            }

            Assert.True(data[..s_binarySignature.Length].SequenceEqual(s_binarySignature), "not a COPY binary stream");
            var extension = BinaryPrimitives.ReadInt32BigEndian(data[(s_binarySignature.Length + 4)..]);
            if (data.Length < s_binarySignature.Length + 8 + extension)
            {
                return;
            }

            consumed = s_binarySignature.Length + 8 + extension;
            header = true;
        }

        Span<Range> fields = stackalloc Range[3];
        while (!trailer && data.Length - consumed >= 2)
        {
            var pos = consumed;
            var count = BinaryPrimitives.ReadInt16BigEndian(data[pos..]);
            pos += 2;
            if (count == -1)
            {
                trailer = true;
                consumed = pos;
                break;
            }

            Assert.Equal(3, count);
            var complete = true;
            for (var f = 0; f < 3 && complete; f++)
            {
                if (data.Length - pos < 4)
                {
                    complete = false;
                    break;
                }

                var length = BinaryPrimitives.ReadInt32BigEndian(data[pos..]);
                Assert.True(length >= 0, "unexpected NULL in the COPY output");
                pos += 4;
                if (data.Length - pos < length)
                {
                    complete = false;
                    break;
                }

                fields[f] = new Range(pos, pos + length);
                pos += length;
            }

            if (!complete)
            {
                break;
            }

            consumed = pos;
            checker.Add(data[fields[0]], Int128.Parse(data[fields[2]], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture),
                Encoding.UTF8.GetString(data[fields[1]]));
        }

        buffer.Consume(consumed);
    }

    [Fact]
    public async Task Every_date_PostgreSQL_has_parses_from_text_to_its_day_number_and_renders_back()
    {
        // The series' bounds are PostgreSQL's own limits and year boundaries (a day less than the first is out of range).
        Assert.Equal("4714-11-24 BC|9999-12-31|10000-01-01|100000-01-01|1000000-01-01|5874897-12-31", await infrastructure.Postgres.ScalarAsync<string>(
            $"SELECT concat_ws('|', date '2000-01-01' + {FirstDay}, date '2000-01-01' + {Day9999_12_31}, date '2000-01-01' + {Day10000_01_01}, " +
            $"date '2000-01-01' + {Day100000_01_01}, date '2000-01-01' + {Day1000000_01_01}, date '2000-01-01' + {LastDay})"));
        await Assert.ThrowsAsync<PostgresException>(() => infrastructure.Postgres.ScalarAsync<string>($"SELECT (date '2000-01-01' + {FirstDay - 1})::text"));
        await Assert.ThrowsAsync<PostgresException>(() => infrastructure.Postgres.ScalarAsync<string>($"SELECT (date '2000-01-01' + {LastDay + 1})::text"));

        using var checker = await CheckTextAsync(PgOid.Date, $"SELECT d, d - date '1970-01-01' FROM ({s_dates}) s(d)", "UTC");
        checker.AssertClean("date, text tuples");
        Assert.Equal(s_dateCount, checker.Rows);
        Assert.Equal(0, checker.Specials);
    }

    [Fact]
    public async Task Every_date_PostgreSQL_has_parses_from_binary_to_its_day_number_and_renders_back()
    {
        using var checker = await CheckBinaryAsync(PgOid.Date, $"SELECT d, d::text, (d - date '1970-01-01')::text FROM ({s_dates}) s(d)");
        checker.AssertClean("date, binary tuples");
        Assert.Equal(s_dateCount, checker.Rows);
        Assert.Equal(0, checker.Specials);
    }

    [Fact]
    public async Task Timestamps_across_the_whole_range_parse_from_text_and_binary_and_render_back()
    {
        var select = $"SELECT u, {MicrosSince1970} FROM ({Timestamps}) s(u)";
        using var text = await CheckTextAsync(PgOid.Timestamp, select, "UTC");
        text.AssertClean("timestamp, text tuples");
        using var binary = await CheckBinaryAsync(PgOid.Timestamp, $"SELECT u, u::text, {MicrosSince1970}::text FROM ({Timestamps}) s(u)");
        binary.AssertClean("timestamp, binary tuples");
        Assert.Equal(text.Rows, binary.Rows);
        Assert.True(text.Rows > 80000, $"{text.Rows} timestamps");

        // The edge days after 294247-01-10 04:00:54.775807 (and some random instants) are beyond int64 microseconds since 1970.
        Assert.InRange(text.Specials, 1 + (3 * 23), 1000);
        Assert.Equal(text.Specials, binary.Specials);
    }

    [Fact]
    public async Task Timestamptz_across_the_whole_range_parses_from_binary_and_renders_back()
    {
        using var binary = await CheckBinaryAsync(PgOid.TimestampTz,
            $"SELECT t, t::text, {MicrosSince1970}::text FROM ({Timestamps}) s(u0), LATERAL (SELECT u0 AT TIME ZONE 'UTC') x(t), LATERAL (SELECT t AT TIME ZONE 'UTC') y(u)");
        binary.AssertClean("timestamptz, binary tuples");
        Assert.True(binary.Rows > 80000, $"{binary.Rows} timestamps");
        Assert.InRange(binary.Specials, 1 + (3 * 23), 1000);
    }

    /// <summary>pgoutput prints timestamptz in the walsender's TimeZone: offsets with minutes, local mean time with seconds, BC after the offset.</summary>
    [Theory]
    [InlineData("UTC")]
    [InlineData("Asia/Kolkata")]
    [InlineData("America/St_Johns")]
    [InlineData("Europe/Amsterdam")]
    [InlineData("Africa/Monrovia")]
    [InlineData("Pacific/Kiritimati")]
    public async Task Timestamptz_text_in_any_session_time_zone_parses_to_PostgreSQLs_instant(string timeZone)
    {
        // Rendered back in UTC (the renderer's and the connector's session zone); a value Arrow cannot hold keeps the exact
        // text PostgreSQL sent in _special, i.e. in the session's zone.
        var select = $"""
            SELECT t, {MicrosSince1970}, CASE WHEN {MicrosSince1970} > 9223372036854775807 THEN t::text ELSE {UtcText} END
            FROM ({Timestamps}) s(u0), LATERAL (SELECT u0 AT TIME ZONE 'UTC') x(t), LATERAL (SELECT t AT TIME ZONE 'UTC') y(u)
            """;
        using var checker = await CheckTextAsync(PgOid.TimestampTz, select, timeZone);
        checker.AssertClean($"timestamptz, text tuples, TimeZone {timeZone}");
        Assert.True(checker.Rows > 80000, $"{checker.Rows} timestamps");
        Assert.InRange(checker.Specials, 1 + (3 * 23), 1000);
    }
}
