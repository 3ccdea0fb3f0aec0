using System.Buffers.Binary;
using System.Globalization;
using System.Text.Unicode;
using WalBridge.Serialization.Columns;

namespace WalBridge.Serialization.Postgres;

/// <summary>Numbers: floats (PostgreSQL's NaN bit patterns), numeric in text and binary form into decimal128/256 or exact text.</summary>
internal static partial class PgValueParser
{
    /// <summary>
    /// PostgreSQL's float8 NaN (<c>get_float8_nan()</c>, C's <c>NAN</c>): the quiet NaN with the sign bit clear,
    /// 0x7FF8000000000000. .NET's <see cref="double.NaN"/> has the sign bit set (0xFFF8000000000000); the text
    /// parser uses PostgreSQL's pattern so that a NaN read from text has the same bytes as one read from
    /// pgoutput's binary form or written by wal2arrow.
    /// </summary>
    internal static readonly double PgFloat8NaN = BitConverter.Int64BitsToDouble(0x7FF8_0000_0000_0000);

    /// <summary>PostgreSQL's float4 NaN (<c>get_float4_nan()</c>): 0x7FC00000.</summary>
    internal static readonly float PgFloat4NaN = BitConverter.Int32BitsToSingle(0x7FC0_0000);

    private static bool TryParseFloat(ReadOnlySpan<byte> v, out double value)
    {
        if (v.SequenceEqual("NaN"u8))
        {
            value = PgFloat8NaN;
            return true;
        }

        if (v.SequenceEqual("Infinity"u8))
        {
            value = double.PositiveInfinity;
            return true;
        }

        if (v.SequenceEqual("-Infinity"u8))
        {
            value = double.NegativeInfinity;
            return true;
        }

        // Reject spellings double.TryParse would accept but PostgreSQL never prints (whitespace, "∞", hex...).
        foreach (var b in v)
        {
            if (!((b >= '0' && b <= '9') || b == '.' || b == 'e' || b == 'E' || b == '+' || b == '-'))
            {
                value = 0;
                return false;
            }
        }

        return double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>Accumulates an unsigned integer of up to 256 bits, digit by digit, counting significant digits.</summary>
    private ref struct DecimalAccumulator
    {
        private readonly Span<ulong> _limbs;
        private readonly int _precision;
        private int _significant;

        public DecimalAccumulator(Span<ulong> limbs, int precision)
        {
            _limbs = limbs;
            _limbs.Clear();
            _precision = precision;
            _significant = 0;
        }

        public bool IsZero => _significant == 0;

        /// <summary>Appends one decimal digit; false when the value would exceed the precision.</summary>
        public bool Push(int digit)
        {
            if (_significant == 0 && digit == 0)
            {
                return true;
            }

            if (++_significant > _precision)
            {
                return false;
            }

            var carry = (ulong)digit;
            for (var i = 0; i < _limbs.Length; i++)
            {
                var t = ((UInt128)_limbs[i] * 10) + carry;
                _limbs[i] = (ulong)t;
                carry = (ulong)(t >> 64);
            }

            return true;
        }

        /// <summary>Writes the value (negated when <paramref name="negative"/>) as little-endian two's complement.</summary>
        public readonly void WriteTo(Span<byte> destination, bool negative)
        {
            ulong carry = 1;
            for (var i = 0; i < _limbs.Length; i++)
            {
                var limb = _limbs[i];
                if (negative)
                {
                    var t = (UInt128)(~limb) + carry;
                    limb = (ulong)t;
                    carry = (ulong)(t >> 64);
                }

                BinaryPrimitives.WriteUInt64LittleEndian(destination[(i * 8)..], limb);
            }
        }
    }

    private static bool ParseDecimalText(FixedWidthBuilder builder, PgColumnType type, ReadOnlySpan<byte> v, out string? problem)
    {
        if (v.SequenceEqual("NaN"u8) || v.SequenceEqual("Infinity"u8) || v.SequenceEqual("-Infinity"u8))
        {
            return Special(out problem);
        }

        var pos = 0;
        var negative = false;
        if (pos < v.Length && (v[pos] == '-' || v[pos] == '+'))
        {
            negative = v[pos] == '-';
            pos++;
        }

        var intStart = pos;
        while (pos < v.Length && IsDigit(v[pos]))
        {
            pos++;
        }

        var integer = v[intStart..pos];
        var fraction = ReadOnlySpan<byte>.Empty;
        if (pos < v.Length && v[pos] == '.')
        {
            var fracStart = ++pos;
            while (pos < v.Length && IsDigit(v[pos]))
            {
                pos++;
            }

            fraction = v[fracStart..pos];
        }

        if (pos != v.Length || (integer.IsEmpty && fraction.IsEmpty))
        {
            return Fail(out problem, "not a numeric value");
        }

        Span<ulong> limbs = stackalloc ulong[4];
        var width = builder.ByteWidth;
        var acc = new DecimalAccumulator(limbs[..(width / 8)], type.Precision);
        foreach (var b in integer)
        {
            if (!acc.Push(b - '0'))
            {
                return Fail(out problem, $"value exceeds numeric({type.Precision},{type.Scale})");
            }
        }

        for (var i = 0; i < type.Scale; i++)
        {
            if (!acc.Push(i < fraction.Length ? fraction[i] - '0' : 0))
            {
                return Fail(out problem, $"value exceeds numeric({type.Precision},{type.Scale})");
            }
        }

        for (var i = type.Scale; i < fraction.Length; i++)
        {
            if (fraction[i] != '0')
            {
                return Fail(out problem, $"value has more than {type.Scale} fraction digits");
            }
        }

        acc.WriteTo(builder.AppendValue(), negative && !acc.IsZero);
        problem = null;
        return true;
    }

    private const ushort NumericPos = 0x0000;

    private const ushort NumericNeg = 0x4000;

    private const ushort NumericNaN = 0xC000;

    private const ushort NumericPInf = 0xD000;

    private const ushort NumericNInf = 0xF000;

    private readonly ref struct BinaryNumeric
    {
        public BinaryNumeric(ReadOnlySpan<byte> v)
        {
            NDigits = BinaryPrimitives.ReadInt16BigEndian(v);
            Weight = BinaryPrimitives.ReadInt16BigEndian(v[2..]);
            Sign = BinaryPrimitives.ReadUInt16BigEndian(v[4..]);
            DScale = BinaryPrimitives.ReadInt16BigEndian(v[6..]);
            Digits = v[8..];
        }

        public short NDigits { get; }
        public short Weight { get; }
        public ushort Sign { get; }
        public short DScale { get; }
        public ReadOnlySpan<byte> Digits { get; }

        public int Digit(int index) => index >= 0 && index < NDigits ? BinaryPrimitives.ReadInt16BigEndian(Digits[(index * 2)..]) : 0;

        public static bool TryValidate(ReadOnlySpan<byte> v, out string? problem)
        {
            if (v.Length < 8)
            {
                return Fail(out problem, "binary numeric shorter than its header");
            }

            var n = new BinaryNumeric(v);
            if (n.NDigits < 0 || v.Length != 8 + (2 * n.NDigits) || n.DScale < 0)
            {
                return Fail(out problem, "binary numeric has an inconsistent length");
            }

            if (n.Sign is not (NumericPos or NumericNeg or NumericNaN or NumericPInf or NumericNInf))
            {
                return Fail(out problem, "binary numeric has an invalid sign");
            }

            for (var i = 0; i < n.NDigits; i++)
            {
                if ((uint)n.Digit(i) > 9999)
                {
                    return Fail(out problem, "binary numeric has an invalid digit");
                }
            }

            problem = null;
            return true;
        }
    }

    private static bool ParseDecimalBinary(FixedWidthBuilder builder, PgColumnType type, ReadOnlySpan<byte> v, out string? problem)
    {
        if (!BinaryNumeric.TryValidate(v, out problem))
        {
            return false;
        }

        var n = new BinaryNumeric(v);
        if (n.Sign is NumericNaN or NumericPInf or NumericNInf)
        {
            return Special(out problem);
        }

        if (type.Precision <= MaxSmallPrecision)
        {
            return ParseSmallDecimalBinary(builder, type, n, out problem);
        }

        Span<ulong> limbs = stackalloc ulong[4];
        var acc = new DecimalAccumulator(limbs[..(builder.ByteWidth / 8)], type.Precision);

        // Decimal digit with exponent e (value = Σ digit·10^e) lives in group (weight - floor(e/4)).
        var maxExp = (4L * n.Weight) + 3;
        for (var e = maxExp; e >= -type.Scale; e--)
        {
            if (!acc.Push(DecimalDigit(n, e)))
            {
                return Fail(out problem, $"value exceeds numeric({type.Precision},{type.Scale})");
            }
        }

        // Digits below the scale must be zero.
        var minExp = 4L * (n.Weight - n.NDigits + 1);
        for (var e = Math.Min(-type.Scale - 1, maxExp); e >= minExp; e--)
        {
            if (DecimalDigit(n, e) != 0)
            {
                return Fail(out problem, $"value has more than {type.Scale} fraction digits");
            }
        }

        acc.WriteTo(builder.AppendValue(), n.Sign == NumericNeg && !acc.IsZero);
        problem = null;
        return true;
    }

    /// <summary>The largest precision whose unscaled values (below 10^18) <see cref="ParseSmallDecimalBinary"/> sums in 64 bits.</summary>
    private const int MaxSmallPrecision = 18;

    /// <summary>10^0 … 10^18.</summary>
    private static readonly ulong[] s_powersOfTen = PowersOfTen();

    private static ulong[] PowersOfTen()
    {
        var powers = new ulong[MaxSmallPrecision + 1];
        powers[0] = 1;
        for (var i = 1; i < powers.Length; i++)
        {
            powers[i] = powers[i - 1] * 10;
        }

        return powers;
    }

    /// <summary>
    /// <see cref="ParseDecimalBinary"/> for precisions up to <see cref="MaxSmallPrecision"/>, the common case (money,
    /// quantities): the unscaled value is summed one base-10000 group at a time instead of one decimal digit at a time
    /// through 128- or 256-bit limbs. Same results and the same errors, in the same order (too large before too many
    /// fraction digits).
    /// </summary>
    private static bool ParseSmallDecimalBinary(FixedWidthBuilder builder, PgColumnType type, BinaryNumeric n, out string? problem)
    {
        // Group i holds the digits of 10000^(weight - i); in the unscaled integer (value × 10^scale) its units are 10^exponent.
        UInt128 value = 0;
        var tooLarge = false;
        var belowScale = false;
        for (var i = 0; i < n.NDigits; i++)
        {
            var group = n.Digit(i);
            if (group == 0)
            {
                continue;
            }

            var exponent = (4L * (n.Weight - i)) + type.Scale;
            if (exponent >= 0)
            {
                if (exponent > MaxSmallPrecision)
                {
                    // At least 10^19: more digits than the precision allows.
                    tooLarge = true;
                    continue;
                }

                value += (UInt128)(ulong)group * s_powersOfTen[exponent];
            }
            else if (exponent <= -4)
            {
                belowScale = true;
            }
            else
            {
                var divisor = (int)s_powersOfTen[-exponent];
                belowScale |= group % divisor != 0;
                value += (ulong)(group / divisor);
            }
        }

        if (tooLarge || value >= s_powersOfTen[type.Precision])
        {
            return Fail(out problem, $"value exceeds numeric({type.Precision},{type.Scale})");
        }

        if (belowScale)
        {
            return Fail(out problem, $"value has more than {type.Scale} fraction digits");
        }

        var signed = n.Sign == NumericNeg ? -(Int128)value : (Int128)value;
        var destination = builder.AppendValue();
        BinaryPrimitives.WriteInt128LittleEndian(destination, signed);
        // A wider decimal (never chosen for these precisions, but the builder decides): sign-extended.
        destination[16..].Fill(signed < 0 ? (byte)0xFF : (byte)0);
        problem = null;
        return true;
    }

    private static int DecimalDigit(BinaryNumeric n, long exponent)
    {
        var groupExp = PgCalendar.FloorDiv(exponent, 4);
        var index = n.Weight - groupExp;
        if (index < 0 || index >= n.NDigits)
        {
            return 0;
        }

        var group = n.Digit((int)index);
        var within = (int)(exponent - (groupExp * 4));
        return within switch
        {
            0 => group % 10,
            1 => group / 10 % 10,
            2 => group / 100 % 10,
            _ => group / 1000,
        };
    }

    /// <summary>Binary numeric → PostgreSQL's text output (as numeric_out prints it).</summary>
    private static bool NumericBinaryToText(VarBinaryBuilder builder, ReadOnlySpan<byte> v, out string? problem)
    {
        if (!BinaryNumeric.TryValidate(v, out problem))
        {
            return false;
        }

        var n = new BinaryNumeric(v);
        switch (n.Sign)
        {
            case NumericNaN:
                builder.Append("NaN"u8);
                return true;
            case NumericPInf:
                builder.Append("Infinity"u8);
                return true;
            case NumericNInf:
                builder.Append("-Infinity"u8);
                return true;
        }

        var max = 2 + (4 * (Math.Max((int)n.Weight, 0) + 1)) + 1 + n.DScale + 4;
        var dest = builder.BeginValue(max);
        var o = 0;
        if (n.Sign == NumericNeg)
        {
            dest[o++] = (byte)'-';
        }

        int d;
        if (n.Weight < 0)
        {
            d = n.Weight + 1;
            dest[o++] = (byte)'0';
        }
        else
        {
            for (d = 0; d <= n.Weight; d++)
            {
                var dig = n.Digit(d);
                var put = d > 0;
                for (var div = 1000; div >= 1; div /= 10)
                {
                    var d1 = dig / div;
                    dig -= d1 * div;
                    put |= d1 > 0 || div == 1;
                    if (put)
                    {
                        dest[o++] = (byte)('0' + d1);
                    }
                }
            }
        }

        if (n.DScale > 0)
        {
            dest[o++] = (byte)'.';
            var end = o + n.DScale;
            for (var i = 0; i < n.DScale; d++, i += 4)
            {
                var dig = n.Digit(d);
                for (var div = 1000; div >= 1; div /= 10)
                {
                    var d1 = dig / div;
                    dig -= d1 * div;
                    dest[o++] = (byte)('0' + d1);
                }
            }

            o = end;
        }

        builder.CommitValue(o);
        return true;
    }

    // ---------------------------------------------------------------- binary
}
