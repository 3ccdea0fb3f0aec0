using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Text;

namespace WalBridge.Serialization.Arrow;

/// <summary>An exact decimal: <c>Unscaled × 10^-Scale</c>. <see cref="ToString"/> prints plain decimal notation with exactly <see cref="Scale"/> fraction digits.</summary>
public readonly record struct ArrowDecimal(BigInteger Unscaled, int Scale)
{
    public override string ToString()
    {
        string digits = BigInteger.Abs(Unscaled).ToString(CultureInfo.InvariantCulture);
        string sign = Unscaled.Sign < 0 ? "-" : "";
        if (Scale <= 0)
        {
            return sign + digits + (Unscaled.IsZero ? "" : new string('0', -Scale));
        }

        if (digits.Length <= Scale)
        {
            digits = new string('0', Scale - digits.Length + 1) + digits;
        }

        return sign + digits[..^Scale] + "." + digits[^Scale..];
    }
}

/// <summary>decimal128 or decimal256 values (two's complement, little-endian).</summary>
public sealed class DecimalArray : ArrowArray
{
    internal DecimalArray(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b)
        : base(f, length, nullCount, v, b, [])
    {
        DecimalType = (DecimalType)f.Type;
        ByteWidth = DecimalType.BitWidth / 8;
    }

    public DecimalType DecimalType { get; }
    public int ByteWidth { get; }

    /// <summary>The raw little-endian two's complement bytes of slot <paramref name="index"/>.</summary>
    public ReadOnlySpan<byte> GetBytes(int index)
    {
        CheckIndex(index);
        return Buffers[0].Span.Slice(index * ByteWidth, ByteWidth);
    }

    public BigInteger GetUnscaled(int index) => new(GetBytes(index), isUnsigned: false, isBigEndian: false);

    /// <summary>The unscaled value of a decimal128 slot.</summary>
    public Int128 GetInt128(int index)
    {
        var bytes = GetBytes(index);
        if (ByteWidth != 16)
        {
            throw new InvalidOperationException("GetInt128 needs a decimal128 array.");
        }

        return BinaryPrimitives.ReadInt128LittleEndian(bytes);
    }

    public new ArrowDecimal? GetValue(int index) => IsNull(index) ? null : new ArrowDecimal(GetUnscaled(index), DecimalType.Scale);

    /// <summary>Plain decimal text, or null for a null slot.</summary>
    public string? GetString(int index) => GetValue(index)?.ToString();

    private protected override object GetBoxedValue(int index) => new ArrowDecimal(GetUnscaled(index), DecimalType.Scale);
}

/// <summary>Common base of binary and string arrays with 32-bit offsets.</summary>
public abstract class BinaryArrayBase : ArrowArray
{
    private protected BinaryArrayBase(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b)
        : base(f, length, nullCount, v, b, [])
    {
    }

    public int GetOffset(int index) => BinaryPrimitives.ReadInt32LittleEndian(Buffers[0].Span[(index * 4)..]);

    internal int GetOffsetOrZero(int index) => Buffers[0].Length < (index + 1) * 4 ? 0 : GetOffset(index);

    /// <summary>The bytes of slot <paramref name="index"/> (empty for a null slot).</summary>
    public ReadOnlySpan<byte> GetBytes(int index)
    {
        CheckIndex(index);
        int start = GetOffset(index);
        return Buffers[1].Span[start..GetOffset(index + 1)];
    }
}

public sealed class BinaryArray : BinaryArrayBase
{
    internal BinaryArray(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }

    public new byte[]? GetValue(int index) => IsNull(index) ? null : GetBytes(index).ToArray();

    private protected override object GetBoxedValue(int index) => GetBytes(index).ToArray();
}

/// <summary>UTF-8 strings with 32-bit offsets.</summary>
public sealed class Utf8Array : BinaryArrayBase
{
    internal Utf8Array(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }

    /// <summary>The string at <paramref name="index"/>, or null for a null slot. Allocates.</summary>
    public string? GetString(int index) => IsNull(index) ? null : Encoding.UTF8.GetString(GetBytes(index));

    public new string? GetValue(int index) => GetString(index);

    private protected override object GetBoxedValue(int index) => Encoding.UTF8.GetString(GetBytes(index));
}

/// <summary>Common base of binary and string arrays with 64-bit offsets.</summary>
public abstract class LargeBinaryArrayBase : ArrowArray
{
    private protected LargeBinaryArrayBase(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b)
        : base(f, length, nullCount, v, b, [])
    {
    }

    public long GetOffset(int index) => BinaryPrimitives.ReadInt64LittleEndian(Buffers[0].Span[(index * 8)..]);

    public ReadOnlySpan<byte> GetBytes(int index)
    {
        CheckIndex(index);
        int start = (int)GetOffset(index);
        return Buffers[1].Span[start..(int)GetOffset(index + 1)];
    }
}

public sealed class LargeBinaryArray : LargeBinaryArrayBase
{
    internal LargeBinaryArray(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }

    public new byte[]? GetValue(int index) => IsNull(index) ? null : GetBytes(index).ToArray();

    private protected override object GetBoxedValue(int index) => GetBytes(index).ToArray();
}

public sealed class LargeUtf8Array : LargeBinaryArrayBase
{
    internal LargeUtf8Array(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }

    public string? GetString(int index) => IsNull(index) ? null : Encoding.UTF8.GetString(GetBytes(index));

    public new string? GetValue(int index) => GetString(index);

    private protected override object GetBoxedValue(int index) => Encoding.UTF8.GetString(GetBytes(index));
}

/// <summary>Binary values of a fixed width (e.g. UUIDs).</summary>
public sealed class FixedSizeBinaryArray : ArrowArray
{
    internal FixedSizeBinaryArray(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b)
        : base(f, length, nullCount, v, b, [])
    {
        ByteWidth = ((FixedSizeBinaryType)f.Type).ByteWidth;
    }

    public int ByteWidth { get; }

    public ReadOnlySpan<byte> GetBytes(int index)
    {
        CheckIndex(index);
        return Buffers[0].Span.Slice(index * ByteWidth, ByteWidth);
    }

    public new byte[]? GetValue(int index) => IsNull(index) ? null : GetBytes(index).ToArray();

    private protected override object GetBoxedValue(int index) => GetBytes(index).ToArray();
}

/// <summary>Base of list-like arrays: each slot is a range of the child <see cref="Values"/> array.</summary>
public abstract class ListArrayBase : ArrowArray
{
    private protected ListArrayBase(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b, ArrowArray[] children)
        : base(f, length, nullCount, v, b, children)
    {
    }

    /// <summary>The child array holding the elements of all lists.</summary>
    public ArrowArray Values => ChildArrays[0];

    /// <summary>Start (inclusive) and end (exclusive) of slot <paramref name="index"/> in <see cref="Values"/>.</summary>
    public abstract (int Start, int End) GetRange(int index);

    /// <summary>The boxed elements of the list at <paramref name="index"/>, or null for a null slot.</summary>
    public new IReadOnlyList<object?>? GetValue(int index) => IsNull(index) ? null : (IReadOnlyList<object?>)GetBoxedValue(index);

    private protected override object GetBoxedValue(int index)
    {
        var (start, end) = GetRange(index);
        var result = new object?[end - start];
        for (int i = start; i < end; i++)
        {
            result[i - start] = Values.GetValue(i);
        }

        return result;
    }
}

/// <summary>Lists with 32-bit offsets.</summary>
public class ListArray : ListArrayBase
{
    internal ListArray(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b, ArrowArray[] children)
        : base(f, length, nullCount, v, b, children)
    {
    }

    public int GetOffset(int index) => BinaryPrimitives.ReadInt32LittleEndian(Buffers[0].Span[(index * 4)..]);

    public override (int Start, int End) GetRange(int index)
    {
        CheckIndex(index);
        return (GetOffset(index), GetOffset(index + 1));
    }
}

/// <summary>Maps: lists of <c>entries</c> structs (key, value).</summary>
public sealed class MapArray : ListArray
{
    internal MapArray(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b, ArrowArray[] children)
        : base(f, length, nullCount, v, b, children)
    {
    }

    public StructArray Entries => (StructArray)Values;
}

/// <summary>Lists with 64-bit offsets (lengths within one in-memory stream always fit in 32 bits).</summary>
public sealed class LargeListArray : ListArrayBase
{
    internal LargeListArray(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b, ArrowArray[] children)
        : base(f, length, nullCount, v, b, children)
    {
    }

    public long GetOffset(int index) => BinaryPrimitives.ReadInt64LittleEndian(Buffers[0].Span[(index * 8)..]);

    public override (int Start, int End) GetRange(int index)
    {
        CheckIndex(index);
        return ((int)GetOffset(index), (int)GetOffset(index + 1));
    }
}

public sealed class FixedSizeListArray : ListArrayBase
{
    internal FixedSizeListArray(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ArrowArray[] children)
        : base(f, length, nullCount, v, [], children)
    {
        ListSize = ((FixedSizeListType)f.Type).ListSize;
    }

    public int ListSize { get; }

    public override (int Start, int End) GetRange(int index)
    {
        CheckIndex(index);
        return (index * ListSize, (index + 1) * ListSize);
    }
}

/// <summary>Structs: one child array per member, each of the struct's length.</summary>
public sealed class StructArray : ArrowArray
{
    internal StructArray(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ArrowArray[] children)
        : base(f, length, nullCount, v, [], children)
    {
    }

    public IReadOnlyList<ArrowArray> Children => ChildArrays;

    /// <summary>The first member named <paramref name="name"/>.</summary>
    public ArrowArray Child(string name)
    {
        foreach (var c in ChildArrays)
        {
            if (c.Field.Name == name)
            {
                return c;
            }
        }

        throw new KeyNotFoundException($"Struct '{Field.Name}' has no member '{name}'.");
    }

    /// <summary>The boxed member values (in member order) of slot <paramref name="index"/>, or null for a null slot.</summary>
    public new IReadOnlyList<object?>? GetValue(int index) => IsNull(index) ? null : (IReadOnlyList<object?>)GetBoxedValue(index);

    private protected override object GetBoxedValue(int index)
    {
        var result = new object?[ChildArrays.Length];
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = ChildArrays[i].GetValue(index);
        }

        return result;
    }
}

/// <summary>
/// A dictionary-encoded column as read from a stream: integer <see cref="Indices"/> into <see cref="Dictionary"/>.
/// <see cref="ArrowArray.GetValue"/> returns the dictionary value (null for a null slot).
/// </summary>
public sealed class DictionaryArray : ArrowArray
{
    internal DictionaryArray(ArrowField field, ArrowArray indices, ArrowArray dictionary)
        : base(field, indices.Length, indices.NullCount, indices.Validity, [], [dictionary])
    {
        Indices = indices;
        Dictionary = dictionary;
    }

    /// <summary>The indices (an integer array of the field's <see cref="DictionaryEncoding.IndexType"/>).</summary>
    public ArrowArray Indices { get; }

    /// <summary>The dictionary values (an array of the field's <see cref="ArrowField.Type"/>).</summary>
    public ArrowArray Dictionary { get; }

    /// <summary>The dictionary index of slot <paramref name="index"/> (unspecified for null slots).</summary>
    public long GetIndex(int index) => Indices switch
    {
        Int8Array a => a.GetRaw(index),
        Int16Array a => a.GetRaw(index),
        Int32Array a => a.GetRaw(index),
        Int64Array a => a.GetRaw(index),
        UInt8Array a => a.GetRaw(index),
        UInt16Array a => a.GetRaw(index),
        UInt32Array a => a.GetRaw(index),
        UInt64Array a => (long)a.GetRaw(index),
        _ => throw new InvalidOperationException("Dictionary indices must be integers."),
    };

    private protected override object GetBoxedValue(int index) => Dictionary.GetValue((int)GetIndex(index))!;
}
