using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Serialization.Tests.Postgres;

/// <summary>
/// numeric in PostgreSQL's binary send format (base-10000 groups) gives exactly what its text form gives: the same
/// decimal128/256 bytes, or the same error. Precisions up to 18 take a separate, group-at-a-time path, so both sides
/// of that line are covered, with values too large, with too many fraction digits, negative zero and small weights.
/// </summary>
public sealed class NumericBinaryTests
{
    /// <summary>PostgreSQL's numeric send format of a plain decimal literal (as numeric_send writes it).</summary>
    internal static byte[] Send(string literal)
    {
        var negative = literal.StartsWith('-');
        var digits = literal.TrimStart('-', '+');
        var point = digits.IndexOf('.', StringComparison.Ordinal);
        var integer = point < 0 ? digits : digits[..point];
        var fraction = point < 0 ? "" : digits[(point + 1)..];
        var dscale = fraction.Length;
        integer = integer.PadLeft((integer.Length + 3) / 4 * 4, '0');
        fraction = fraction.PadRight((fraction.Length + 3) / 4 * 4, '0');
        var all = integer + fraction;
        var groups = new List<short>();
        for (var i = 0; i < all.Length; i += 4)
        {
            groups.Add(short.Parse(all.AsSpan(i, 4), CultureInfo.InvariantCulture));
        }

        var weight = (integer.Length / 4) - 1;
        while (groups.Count > 0 && groups[0] == 0)
        {
            groups.RemoveAt(0);
            weight--;
        }

        while (groups.Count > 0 && groups[^1] == 0)
        {
            groups.RemoveAt(groups.Count - 1);
        }

        if (groups.Count == 0)
        {
            weight = 0;
            negative = false;
        }

        var bytes = new byte[8 + (2 * groups.Count)];
        BinaryPrimitives.WriteInt16BigEndian(bytes, (short)groups.Count);
        BinaryPrimitives.WriteInt16BigEndian(bytes.AsSpan(2), (short)weight);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(4), negative ? (ushort)0x4000 : (ushort)0);
        BinaryPrimitives.WriteInt16BigEndian(bytes.AsSpan(6), (short)dscale);
        for (var i = 0; i < groups.Count; i++)
        {
            BinaryPrimitives.WriteInt16BigEndian(bytes.AsSpan(8 + (2 * i)), groups[i]);
        }

        return bytes;
    }

    /// <summary>The Arrow stream of one row holding <paramref name="value"/>, or the conversion error's message.</summary>
    private static string Convert(int precision, int scale, ReadOnlySpan<byte> value, TupleFormat format)
    {
        var relation = new PgRelation(1, "public", "t", 'd', [new PgColumn("v", PgOid.Numeric, ((precision << 16) | scale) + 4, false)]);
        using var builder = new ChangeBatchBuilder(relation);
        builder.BeginRow(ChangeOp.Insert, 1);
        try
        {
            builder.AppendValue(value, format);
        }
        catch (PgValueFormatException e)
        {
            // The message ends with the value as sent (text or hex): compare the problem only.
            return "error: " + e.Message[..e.Message.LastIndexOf("; value: ", StringComparison.Ordinal)];
        }

        builder.EndRow();
        var output = new ArrayBufferWriter<byte>();
        builder.WriteStream(output);
        return System.Convert.ToHexString(output.WrittenSpan);
    }

    public static TheoryData<int, int> Types() => new()
    {
        { 12, 2 }, { 18, 0 }, { 18, 18 }, { 18, 4 }, { 1, 0 }, { 19, 2 }, { 38, 10 }, { 50, 6 },
    };

    [Theory]
    [MemberData(nameof(Types))]
    public void Binary_numeric_converts_like_its_text_form(int precision, int scale)
    {
        var random = new Random((precision * 100) + scale);
        var literals = new List<string>
        {
            "0", "-0", "0.00", "-0.0000", "1", "-1", "0.01", "-0.01", "9999", "10000", "0.0001", "0.00001",
            new string('9', precision - Math.Min(precision, scale)) is { Length: > 0 } whole ? whole : "0",
            "1" + new string('0', Math.Max(0, precision - scale)),
            "12.5", "12.500000", "12.505", "1234567890123456.78", "99999999999999999999.99", "0." + new string('0', 17) + "1",
        };
        for (var i = 0; i < 400; i++)
        {
            var text = new StringBuilder();
            if (random.Next(2) == 0)
            {
                text.Append('-');
            }

            var integerDigits = random.Next(0, precision + 4);
            text.Append(integerDigits == 0 ? "0" : random.Next(1, 10).ToString(CultureInfo.InvariantCulture));
            for (var d = 1; d < integerDigits; d++)
            {
                text.Append((char)('0' + random.Next(10)));
            }

            var fractionDigits = random.Next(0, scale + 3);
            if (fractionDigits > 0)
            {
                text.Append('.');
                for (var d = 0; d < fractionDigits; d++)
                {
                    // Mostly zeros past the scale, so that in-range values with trailing zeros come up often.
                    text.Append(d >= scale && random.Next(3) > 0 ? '0' : (char)('0' + random.Next(10)));
                }
            }

            literals.Add(text.ToString());
        }

        var errors = 0;
        var mismatches = new List<string>();
        foreach (var literal in literals)
        {
            var fromText = Convert(precision, scale, Encoding.ASCII.GetBytes(literal), TupleFormat.Text);
            var fromBinary = Convert(precision, scale, Send(literal), TupleFormat.Binary);
            if (fromText != fromBinary)
            {
                mismatches.Add($"{literal}: text {fromText[..Math.Min(80, fromText.Length)]}, binary {fromBinary[..Math.Min(80, fromBinary.Length)]}");
            }
            errors += fromText.StartsWith("error: ", StringComparison.Ordinal) ? 1 : 0;
        }

        Assert.Empty(mismatches);
        // Both outcomes were exercised.
        Assert.InRange(errors, 1, literals.Count - 1);
    }

    [Fact]
    public void The_send_format_helper_writes_what_postgresql_sends_for_12_50()
    {
        // ndigits 2, weight 0, sign +, dscale 2, digits 12 5000 (numeric_send of 12.50).
        Assert.Equal("0002000000000002000C1388", System.Convert.ToHexString(Send("12.50")));
    }
}
