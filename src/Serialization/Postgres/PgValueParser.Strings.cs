using System.Buffers.Binary;
using System.Globalization;
using System.Text.Unicode;
using WalBridge.Serialization.Columns;

namespace WalBridge.Serialization.Postgres;

/// <summary>uuid and bytea in text form.</summary>
internal static partial class PgValueParser
{
    private static int HexValue(byte c) => c switch
    {
        >= (byte)'0' and <= (byte)'9' => c - '0',
        >= (byte)'a' and <= (byte)'f' => c - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => c - 'A' + 10,
        _ => -1,
    };

    private static bool ParseUuidText(FixedWidthBuilder builder, ReadOnlySpan<byte> v, out string? problem)
    {
        Span<byte> bytes = stackalloc byte[16];
        var n = 0;
        var pos = 0;
        while (pos < v.Length)
        {
            if (v[pos] == '-' && n is 4 or 6 or 8 or 10 && pos > 0)
            {
                pos++;
                continue;
            }

            if (n == 16 || pos + 1 >= v.Length)
            {
                return Fail(out problem, "expected 32 hex digits");
            }

            int hi = HexValue(v[pos]), lo = HexValue(v[pos + 1]);
            if (hi < 0 || lo < 0)
            {
                return Fail(out problem, "expected hex digits");
            }

            bytes[n++] = (byte)((hi << 4) | lo);
            pos += 2;
        }

        if (n != 16)
        {
            return Fail(out problem, "expected 32 hex digits");
        }

        bytes.CopyTo(builder.AppendValue());
        problem = null;
        return true;
    }

    private static bool ParseByteaText(VarBinaryBuilder builder, ReadOnlySpan<byte> v, out string? problem)
    {
        if (v.Length >= 2 && v[0] == '\\' && v[1] == 'x')
        {
            var hex = v[2..];
            if ((hex.Length & 1) != 0)
            {
                return Fail(out problem, "odd number of hex digits");
            }

            var dest = builder.BeginValue(hex.Length / 2);
            for (var i = 0; i < dest.Length; i++)
            {
                int hi = HexValue(hex[2 * i]), lo = HexValue(hex[(2 * i) + 1]);
                if (hi < 0 || lo < 0)
                {
                    return Fail(out problem, "bad hex digit");
                }

                dest[i] = (byte)((hi << 4) | lo);
            }

            builder.CommitValue(dest.Length);
            problem = null;
            return true;
        }

        // bytea_output = escape: backslash escapes \\ and \ooo, other bytes literal.
        var output = builder.BeginValue(v.Length);
        var o = 0;
        for (var i = 0; i < v.Length; i++)
        {
            if (v[i] != '\\')
            {
                output[o++] = v[i];
            }
            else if (i + 1 < v.Length && v[i + 1] == '\\')
            {
                output[o++] = (byte)'\\';
                i++;
            }
            else if (i + 3 < v.Length && v[i + 1] is >= (byte)'0' and <= (byte)'3' && v[i + 2] is >= (byte)'0' and <= (byte)'7' && v[i + 3] is >= (byte)'0' and <= (byte)'7')
            {
                output[o++] = (byte)(((v[i + 1] - '0') << 6) | ((v[i + 2] - '0') << 3) | (v[i + 3] - '0'));
                i += 3;
            }
            else
            {
                return Fail(out problem, "bad bytea escape");
            }
        }

        builder.CommitValue(o);
        problem = null;
        return true;
    }

    // ---------------------------------------------------------------- arrays
}
