using System.Globalization;
using System.Text;

namespace WalBridge.DevTools.Chaos;

/// <summary>
/// SQL expressions for random values of every type the payload maps (docs/format.md), mixing ordinary values with
/// each type's edge values: integer limits, NaN, ±Infinity, -0 and subnormal floats, numeric at its precision limits
/// and beyond decimal128, NaN and ±Infinity numeric, empty, Unicode (outside the BMP, combining, control characters)
/// and large text, empty and large bytea, ±infinity and BC dates and timestamps, the largest timestamps, 24:00, interval
/// extremes, arrays with NULL elements, empty, multi-dimensional and with other lower bounds, enums, domains and the
/// types kept as text. Every expression is a literal or a deterministic SQL expression, so the same seed makes the same
/// statements.
/// </summary>
internal sealed class RandomValues(Random random, bool bcDates)
{
    private static readonly string[] s_fragments =
    [
        "a", "b", "z", "Q", " ", "  ", "0", "42", "-", "_", ".", ",", ";", ":", "'", "''", "\"", "\\", "\\\\", "/", "{", "}", "[", "]",
        "(", ")", "=", "NULL", "null", "true", "é", "ü", "ß", "ñ", "Ω", "Ж", "中文", "日本語", "한국어", "עברית", "العربية", "हिन्दी",
        "😀", "🎉", "👩‍👩‍👧", "𝄞", "𠜎", "\U0010FFFD", "\u0301", "e\u0301", "\u200b", "\u202e", "\ufeff", "\ufffd", "ﬁ", "ǅ",
        "\t", "\n", "\r\n", "\u0001", "\u001f", "\u007f", "\u00a0", "%", "_%", "$1", "E'x'", "\\x00", "<a>", "&amp;", "word", "lorem ipsum",
    ];

    private static readonly string[] s_jsonDocuments =
    [
        """{"b": 1, "a" : [1, 2.50, "x"]}""", "[]", "{}", "null", "true", "0", "-0", "1.000", "1e400", "\"\"", "\"😀 é\"",
        """{"a": 1, "a": 2}""", """{"nested": {"deeper": {"deepest": [null, false, {"k": "v"}]}}}""",
        """  [ 1 ,  2 , 3 ]  """, """{"😀": "é", "n": 1.000, "z": null, "s": "\u00e9x\n\"q\""}""", """{"big": 123456789012345678901234567890.5}""",
"""{"esc": "tab\tand\\backslash"}""",
    ];

    public Random Random { get; } = random;

    public bool BcDates { get; } = bcDates;

    public bool Chance(int percent) => Random.Next(100) < percent;

    public T Pick<T>(IReadOnlyList<T> items) => items[Random.Next(items.Count)];

    /// <summary>A single-quoted SQL string literal (standard_conforming_strings).</summary>
    public static string Literal(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";

    public static string Typed(string text, string type) => $"{Literal(text)}::{type}";

    private string OrNull(int nullPercent, Func<string> value) => Chance(nullPercent) ? "NULL" : value();

    // ---- scalars ---------------------------------------------------------------------------------------

    public string Bool() => OrNull(10, () => Chance(50) ? "true" : "false");

    public string Int2() => OrNull(8, () => Chance(30) ? Pick(["-32768", "32767", "0", "-1", "1"]) : Random.Next(-32768, 32768).ToString(CultureInfo.InvariantCulture));

    public string Int4() => OrNull(8, () => Chance(30) ? Pick(["-2147483648", "2147483647", "0", "-1"]) : Random.Next(int.MinValue, int.MaxValue).ToString(CultureInfo.InvariantCulture));

    public string Int8() => OrNull(8, () => Chance(30)
        ? Pick(["-9223372036854775808", "9223372036854775807", "0", "-1", "4294967296"])
        : Random.NextInt64(long.MinValue, long.MaxValue).ToString(CultureInfo.InvariantCulture));

    public string Oid() => OrNull(8, () => Chance(30) ? Pick(["0", "4294967295", "1"]) : ((uint)Random.NextInt64(0, 1L << 32)).ToString(CultureInfo.InvariantCulture));

    public string Float4() => OrNull(8, () => Typed(Float4Text(), "float4"));

    public string Float4Text()
    {
        if (Chance(35))
        {
            return Pick(["NaN", "Infinity", "-Infinity", "-0", "0", "1.4e-45", "1.17549435e-38", "1.1754942e-38", "3.4028235e+38", "-3.4028235e+38", "0.1", "16777217"]);
        }

        while (true)
        {
            var value = BitConverter.Int32BitsToSingle(Random.Next(int.MinValue, int.MaxValue));
            if (float.IsFinite(value))
            {
                return value.ToString("R", CultureInfo.InvariantCulture);
            }
        }
    }

    public string Float8() => OrNull(8, () => Typed(Float8Text(), "float8"));

    public string Float8Text()
    {
        if (Chance(35))
        {
            return Pick(["NaN", "Infinity", "-Infinity", "-0", "0", "5e-324", "-5e-324", "2.2250738585072014e-308", "2.225073858507201e-308",
                "1.7976931348623157e+308", "-1.7976931348623157e+308", "0.1", "9007199254740993", "1e+300", "123456.789"]);
        }
        if (Chance(40))
        {
            return Math.Round((Random.NextDouble() - 0.5) * 1e6, Random.Next(0, 6)).ToString("R", CultureInfo.InvariantCulture);
        }

        while (true)
        {
            var value = BitConverter.Int64BitsToDouble(Random.NextInt64(long.MinValue, long.MaxValue));
            if (double.IsFinite(value))
            {
                return value.ToString("R", CultureInfo.InvariantCulture);
            }
        }
    }

    /// <summary>numeric(p,s): its limits, NaN, zero, and random values within the precision.</summary>
    public string Numeric(int precision, int scale) => OrNull(8, () => Typed(NumericText(precision, scale), $"numeric({precision},{scale})"));

    public string NumericText(int precision, int scale)
    {
        var integerDigits = precision - scale;
        if (Chance(30))
        {
            var max = (integerDigits > 0 ? new string('9', integerDigits) : "0") + (scale > 0 ? "." + new string('9', scale) : "");
            var tiny = scale > 0 ? "0." + new string('0', scale - 1) + "1" : "1";
            return Pick(["NaN", max, "-" + max, "0", tiny, "-" + tiny]);
        }
        var digits = Random.Next(0, integerDigits + 1);
        var text = new StringBuilder();
        if (Chance(50))
        {
            text.Append('-');
        }

        text.Append(digits == 0 ? "0" : Digits(digits, leadingNonZero: true));
        if (scale > 0)
        {
            text.Append('.').Append(Digits(Random.Next(0, scale + 1), leadingNonZero: false));
        }

        return text.ToString().TrimEnd('.');
    }

    /// <summary>Unconstrained numeric: NaN, ±Infinity, huge and tiny magnitudes (far beyond decimal256), many digits.</summary>
    public string NumericAny() => OrNull(8, () =>
    {
        if (Chance(35))
        {
            return Pick(["'NaN'::numeric", "'Infinity'::numeric", "'-Infinity'::numeric", "0", "'-0'::numeric", "'1e1000'::numeric", "'-1e-1000'::numeric",
                "'0.000000000000000000000000000000000000000000000000000000001'::numeric", "'123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890'::numeric",
                "('-1.5e+300'::numeric + '0.000000000000000000000000000000000000000000000000000001')", "'1.0000000000'::numeric"]);
        }
        var text = (Chance(50) ? "-" : "") + Digits(Random.Next(1, 40), leadingNonZero: true) + (Chance(70) ? "." + Digits(Random.Next(0, 40), leadingNonZero: false) : "");
        return Typed(text.TrimEnd('.'), "numeric");
    });

    private string Digits(int count, bool leadingNonZero)
    {
        var builder = new StringBuilder(count);
        for (var i = 0; i < count; i++)
        {
            builder.Append((char)('0' + (i == 0 && leadingNonZero ? Random.Next(1, 10) : Random.Next(10))));
        }

        return builder.ToString();
    }

    /// <summary>Text of up to <paramref name="codePoints"/> characters (PostgreSQL counts code points) from the fragment pool.</summary>
    public string TextValue(int codePoints)
    {
        if (Chance(10))
        {
            return "";
        }

        var target = Random.Next(1, codePoints + 1);
        var builder = new StringBuilder();
        var count = 0;
        for (var guard = 0; guard < 200 && count < target; guard++)
        {
            var fragment = Pick(s_fragments);
            var runes = fragment.EnumerateRunes().Count();
            if (count + runes > codePoints)
            {
                continue;
            }

            builder.Append(fragment);
            count += runes;
        }
        return builder.ToString();
    }

    public string Text() => OrNull(8, () => Chance(5) ? $"repeat({Literal(TextValue(8))}, {Random.Next(100, 400)})" : Literal(TextValue(60)));

    public string Varchar(int length) => OrNull(8, () => Literal(TextValue(length)));

    /// <summary>char(n): blank-padded; trailing blanks of the input are insignificant.</summary>
    public string Bpchar(int length) => OrNull(8, () => Literal(TextValue(length)));

    /// <summary>name: at most 63 bytes (longer input is cut at a character boundary, so stay within).</summary>
    public string Name() => OrNull(8, () =>
    {
        if (Chance(20))
        {
            return Literal(new string('n', 63));
        }

        var text = TextValue(30);
        while (Encoding.UTF8.GetByteCount(text) > 63)
        {
            text = text[..^1];
        }
        // never leave half a surrogate pair
        if (text.Length > 0 && char.IsHighSurrogate(text[^1]))
        {
            text = text[..^1];
        }

        return Literal(text);
    });

    public string Bytea() => OrNull(8, () =>
    {
        if (Chance(30))
        {
            return Pick(["'\\x'::bytea", "'\\x00'::bytea", "'\\x000000ff0000'::bytea", "'\\xdeadbeef'::bytea", "'\\xffffffffffffffff'::bytea"]);
        }

        if (Chance(8))
        {
            return $"decode((SELECT string_agg(md5(g::text || '{Random.Next()}'), '') FROM generate_series(1, {Random.Next(100, 3000)}) g), 'hex')";
        }

        var bytes = new byte[Random.Next(1, 64)];
        Random.NextBytes(bytes);
        return Typed("\\x" + Convert.ToHexStringLower(bytes), "bytea");
    });

    // ---- dates and times -------------------------------------------------------------------------------

    private static bool IsLeap(long astronomicalYear) =>
        astronomicalYear % 4 == 0 && (astronomicalYear % 100 != 0 || astronomicalYear % 400 == 0);

    private static int DaysIn(long astronomicalYear, int month) => month switch
    {
        2 => IsLeap(astronomicalYear) ? 29 : 28,
        4 or 6 or 9 or 11 => 30,
        _ => 31,
    };

    /// <summary>A valid calendar date as PostgreSQL input: AD years up to <paramref name="maxYear"/>, BC years (when enabled) down to 4713 BC.</summary>
    private string DateText(long maxYear)
    {
        long year;
        var roll = Random.Next(100);
        if (BcDates && roll < 12)
        {
            year = -Random.Next(0, 4713); // astronomical: 0 = 1 BC, -4712 = 4713 BC
        }
        else if (roll < 60)
        {
            year = Random.Next(1900, 2100);
        }
        else if (roll < 90)
        {
            year = Random.Next(1, 10000);
        }
        else
        {
            year = Random.NextInt64(10000, maxYear);
        }

        var month = Random.Next(1, 13);
        // Leap days are edge values of their own.
        var day = month == 2 && IsLeap(year) && Chance(30) ? 29 : Random.Next(1, DaysIn(year, month) + 1);
        return year > 0
            ? string.Create(CultureInfo.InvariantCulture, $"{year:D4}-{month:D2}-{day:D2}")
            : string.Create(CultureInfo.InvariantCulture, $"{1 - year:D4}-{month:D2}-{day:D2} BC");
    }

    private string TimeText(bool allow2400, int fractionDigits = 6)
    {
        if (allow2400 && Chance(5))
        {
            return "24:00:00";
        }

        var text = string.Create(CultureInfo.InvariantCulture, $"{Random.Next(24):D2}:{Random.Next(60):D2}:{Random.Next(60):D2}");
        return fractionDigits > 0 && Chance(70) ? text + "." + Digits(Random.Next(1, fractionDigits + 1), leadingNonZero: false) : text;
    }

    public string Date() => OrNull(8, () => Typed(DateValueText(), "date"));

    public string DateValueText()
    {
        if (Chance(25))
        {
            List<string> edges = ["infinity", "-infinity", "5874897-12-31", "0001-01-01", "1970-01-01", "2000-02-29", "1999-12-31"];
            if (BcDates)
            {
                edges.AddRange(["4713-01-01 BC", "0005-02-29 BC", "0001-12-31 BC", "0001-01-01 BC"]);
            }

            return Pick(edges);
        }
        return DateText(5874897);
    }

    public string Timestamp(int? precision = null) => OrNull(8, () => Typed(TimestampText(), precision is { } p ? $"timestamp({p})" : "timestamp"));

    public string TimestampText()
    {
        if (Chance(25))
        {
            List<string> edges = ["infinity", "-infinity", "294276-12-31 23:59:59.999999", "294247-01-10 04:00:54.775807", "294247-01-10 04:00:54.775808",
                "2000-01-01 00:00:00", "1970-01-01 00:00:00.000001", "1969-12-31 23:59:59.999999"];
            if (BcDates)
            {
                edges.AddRange(["4713-01-01 00:00:00 BC", "3769-02-29 06:40:38.790399 BC", "0001-12-31 23:59:59.999999 BC"]);
            }

            return Pick(edges);
        }
        return DateText(294276) is var date && date.EndsWith(" BC", StringComparison.Ordinal)
            ? $"{date[..^3]} {TimeText(false)} BC"
            : $"{date} {TimeText(false)}";
    }

    public string TimestampTz() => OrNull(8, () => Typed(TimestampTzText(), "timestamptz"));

    public string TimestampTzText()
    {
        if (Chance(25))
        {
            List<string> edges = ["infinity", "-infinity", "294276-12-31 23:59:59.999999+00", "294247-01-10 04:00:54.775807+00", "2024-02-29 12:34:56.789012+05:30",
                "2000-01-01 00:00:00-15:59", "1970-01-01 00:00:00+00"];
            if (BcDates)
            {
                edges.AddRange(["3769-02-29 06:40:38.790399+00 BC", "4713-01-01 00:00:00+00 BC", "0001-01-01 00:00:00+00 BC"]);
            }

            return Pick(edges);
        }
        var offset = Pick(["+00", "+00", "+05:30", "-08", "+14", "-03:30", "+01"]);
        var date = DateText(294200);
        return date.EndsWith(" BC", StringComparison.Ordinal)
            ? $"{date[..^3]} {TimeText(false)}{offset} BC"
            : $"{date} {TimeText(false)}{offset}";
    }

    public string Time() => OrNull(8, () => Typed(Chance(20) ? Pick(["00:00:00", "24:00:00", "23:59:59.999999", "12:00:00.5"]) : TimeText(true), "time"));

    public string Interval() => OrNull(8, () => Typed(IntervalText(), "interval"));

    public string IntervalText()
    {
        if (Chance(30))
        {
            return Pick(["0", "178000000 years", "-178000000 years", "2147483647 days", "-2147483648 days", "2562047:47:16.854775", "-2562047:47:16.854775",
                "178000000 years 2147483647 days 2562047:47:16.854775", "-178000000 years -2147483648 days -2562047:47:16.854775", "2562048 hours", "-2562048 hours",
                "1 mon -1 days +00:00:00.000001", "-1 mons +2 days -00:00:01.5", "00:00:00.000001", "1 year 2 mons 3 days 04:05:06.789"]);
        }
        return string.Create(CultureInfo.InvariantCulture,
            $"{Random.Next(-100, 100)} years {Random.Next(-11, 12)} mons {Random.Next(-1000, 1000)} days {(Chance(50) ? "-" : "")}{Random.Next(0, 200)}:{Random.Next(60):D2}:{Random.Next(60):D2}.{Random.Next(1_000_000):D6}");
    }

    public string Uuid() => OrNull(8, () => Typed(UuidText(), "uuid"));

    public string UuidText()
    {
        if (Chance(20))
        {
            return Pick(["00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]);
        }

        var bytes = new byte[16];
        Random.NextBytes(bytes);
        var hex = Convert.ToHexStringLower(bytes);
        return $"{hex[..8]}-{hex[8..12]}-{hex[12..16]}-{hex[16..20]}-{hex[20..]}";
    }

    public string JsonText()
    {
        if (Chance(60))
        {
            return Pick(s_jsonDocuments);
        }

        var builder = new StringBuilder("{");
        for (var i = Random.Next(0, 5); i > 0; i--)
        {
            builder.Append(System.Text.Json.JsonSerializer.Serialize(TextValue(8))).Append(": ");
            builder.Append(Random.Next(4) switch
            {
                0 => System.Text.Json.JsonSerializer.Serialize(TextValue(12)),
                1 => Random.Next(-1000, 1000).ToString(CultureInfo.InvariantCulture) + (Chance(50) ? ".50" : ""),
                2 => "[1, null, \"x\"]",
                _ => Chance(50) ? "true" : "null",
            });
            if (i > 1)
            {
                builder.Append(", ");
            }
        }
        return builder.Append('}').ToString();
    }

    public string Json() => OrNull(8, () => Typed(JsonText(), "json"));

    public string Jsonb() => OrNull(8, () => Typed(JsonText(), "jsonb"));

    // ---- arrays ----------------------------------------------------------------------------------------

    /// <summary>A one-dimensional array of <paramref name="type"/>: empty, with NULL elements, or random elements.</summary>
    public string Array(string type, Func<string> element) => OrNull(8, () =>
    {
        if (Chance(12))
        {
            return $"'{{}}'::{type}[]";
        }

        var items = new List<string>();
        for (var i = Random.Next(1, 6); i > 0; i--)
        {
            items.Add(Chance(15) ? $"NULL::{type}" : element());
        }

        return $"ARRAY[{string.Join(", ", items)}]::{type}[]";
    });

    public string Int4Array() => Array("int4", () => Random.Next(int.MinValue, int.MaxValue).ToString(CultureInfo.InvariantCulture));

    /// <summary>int4[] holding multi-dimensional arrays and other lower bounds (kept in <c>_special</c>), or plain ones.</summary>
    public string MultiDimensionalInt4() => OrNull(8, () =>
    {
        string Element() => Chance(15) ? "NULL" : Random.Next(-1000, 1000).ToString(CultureInfo.InvariantCulture);
        return Random.Next(6) switch
        {
            0 => $"'{{{{{Element()},{Element()}}},{{{Element()},{Element()}}}}}'::int4[]",
            1 => $"'{{{{{Element()},{Element()},{Element()}}},{{{Element()},{Element()},{Element()}}}}}'::int4[]",
            2 => $"'{{{{{{{Element()}}}}}}}'::int4[]",
            3 => $"'[0:1]={{{Element()},{Element()}}}'::int4[]",
            4 => "'{}'::int4[]",
            _ => $"'{{{Element()},{Element()}}}'::int4[]",
        };
    });

    public string Text(IReadOnlyList<string> choices) => Literal(Pick(choices));
}
