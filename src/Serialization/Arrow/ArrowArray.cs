using System.Runtime.InteropServices;

namespace WalBridge.Serialization.Arrow;

/// <summary>
/// An immutable Arrow array: a column of <see cref="Length"/> values of the type of <see cref="Field"/>.
/// </summary>
/// <remarks>
/// <para>Arrays are views over memory they do not own: arrays produced by
/// <see cref="Ipc.ArrowStreamReader"/> point into the caller's input and stay valid as long as that
/// memory is not modified or returned to a pool.</para>
/// <para>Typed subclasses (e.g. <see cref="Int64Array"/>, <see cref="Utf8Array"/>) add allocation-free
/// accessors; <see cref="GetValue"/> returns a boxed value (null for a null slot) and is meant for
/// tests and tooling. Values at null slots are unspecified.</para>
/// </remarks>
public abstract class ArrowArray
{
    private protected ArrowArray(ArrowField field, int length, int nullCount, ReadOnlyMemory<byte> validity, ReadOnlyMemory<byte>[] buffers, ArrowArray[] children)
    {
        Field = field;
        Length = length;
        NullCount = nullCount;
        Validity = validity;
        Buffers = buffers;
        ChildArrays = children;
    }

    public ArrowField Field { get; }
    public ArrowType Type => Field.Type;
    public int Length { get; }
    public int NullCount { get; }

    /// <summary>The validity bitmap (bit i set = slot i valid); empty when there are no nulls.</summary>
    public ReadOnlyMemory<byte> Validity { get; }

    /// <summary>The type's buffers after the validity bitmap (offsets, data), as laid out in IPC.</summary>
    internal ReadOnlyMemory<byte>[] Buffers { get; }

    internal ArrowArray[] ChildArrays { get; }

    /// <summary>Whether slot <paramref name="index"/> is null.</summary>
    public virtual bool IsNull(int index)
    {
        CheckIndex(index);
        return NullCount != 0 && (Validity.Span[index >> 3] & (1 << (index & 7))) == 0;
    }

    public bool IsValid(int index) => !IsNull(index);

    /// <summary>The boxed value at <paramref name="index"/>, or null for a null slot.</summary>
    public object? GetValue(int index) => IsNull(index) ? null : GetBoxedValue(index);

    private protected abstract object GetBoxedValue(int index);

    private protected void CheckIndex(int index)
    {
        if ((uint)index >= (uint)Length)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"Index must be less than the array length {Length}.");
        }
    }

    public override string ToString() => $"{GetType().Name}({Field}, length {Length}, nulls {NullCount})";

    /// <summary>Creates the typed array for <paramref name="field"/>. Buffers must already be validated.</summary>
    internal static ArrowArray Create(ArrowField field, int length, int nullCount, ReadOnlyMemory<byte> validity, ReadOnlyMemory<byte>[] buffers, ArrowArray[] children)
    {
        var f = field;
        var v = validity;
        var b = buffers;
        return field.Type switch
        {
            NullType => new NullArray(f, length),
            BooleanType => new BooleanArray(f, length, nullCount, v, b),
            IntType { BitWidth: 8, IsSigned: true } => new Int8Array(f, length, nullCount, v, b),
            IntType { BitWidth: 16, IsSigned: true } => new Int16Array(f, length, nullCount, v, b),
            IntType { BitWidth: 32, IsSigned: true } => new Int32Array(f, length, nullCount, v, b),
            IntType { BitWidth: 64, IsSigned: true } => new Int64Array(f, length, nullCount, v, b),
            IntType { BitWidth: 8 } => new UInt8Array(f, length, nullCount, v, b),
            IntType { BitWidth: 16 } => new UInt16Array(f, length, nullCount, v, b),
            IntType { BitWidth: 32 } => new UInt32Array(f, length, nullCount, v, b),
            IntType => new UInt64Array(f, length, nullCount, v, b),
            FloatingPointType { Precision: FloatingPointPrecision.Half } => new HalfFloatArray(f, length, nullCount, v, b),
            FloatingPointType { Precision: FloatingPointPrecision.Single } => new FloatArray(f, length, nullCount, v, b),
            FloatingPointType => new DoubleArray(f, length, nullCount, v, b),
            DecimalType => new DecimalArray(f, length, nullCount, v, b),
            DateType { Unit: DateUnit.Day } => new Date32Array(f, length, nullCount, v, b),
            DateType => new Date64Array(f, length, nullCount, v, b),
            TimeType { BitWidth: 32 } => new Time32Array(f, length, nullCount, v, b),
            TimeType => new Time64Array(f, length, nullCount, v, b),
            TimestampType => new TimestampArray(f, length, nullCount, v, b),
            DurationType => new DurationArray(f, length, nullCount, v, b),
            IntervalType { Unit: IntervalUnit.YearMonth } => new YearMonthIntervalArray(f, length, nullCount, v, b),
            IntervalType { Unit: IntervalUnit.DayTime } => new DayTimeIntervalArray(f, length, nullCount, v, b),
            IntervalType => new MonthDayNanoIntervalArray(f, length, nullCount, v, b),
            BinaryType => new BinaryArray(f, length, nullCount, v, b),
            Utf8Type => new Utf8Array(f, length, nullCount, v, b),
            LargeBinaryType => new LargeBinaryArray(f, length, nullCount, v, b),
            LargeUtf8Type => new LargeUtf8Array(f, length, nullCount, v, b),
            FixedSizeBinaryType => new FixedSizeBinaryArray(f, length, nullCount, v, b),
            ListType => new ListArray(f, length, nullCount, v, b, children),
            LargeListType => new LargeListArray(f, length, nullCount, v, b, children),
            MapType => new MapArray(f, length, nullCount, v, b, children),
            FixedSizeListType => new FixedSizeListArray(f, length, nullCount, v, children),
            StructType => new StructArray(f, length, nullCount, v, children),
            _ => throw new NotSupportedException($"Arrow type {field.Type} is unsupported."),
        };
    }
}

/// <summary>An array of the null type: every slot is null and no buffers exist.</summary>
public sealed class NullArray : ArrowArray
{
    internal NullArray(ArrowField field, int length)
        : base(field, length, length, ReadOnlyMemory<byte>.Empty, [], [])
    {
    }

    public override bool IsNull(int index)
    {
        CheckIndex(index);
        return true;
    }

    private protected override object GetBoxedValue(int index) => throw new InvalidOperationException("Null arrays have no values.");
}

/// <summary>Bit-packed booleans.</summary>
public sealed class BooleanArray : ArrowArray
{
    internal BooleanArray(ArrowField field, int length, int nullCount, ReadOnlyMemory<byte> validity, ReadOnlyMemory<byte>[] buffers)
        : base(field, length, nullCount, validity, buffers, [])
    {
    }

    /// <summary>The value bit at <paramref name="index"/> (meaningless for null slots).</summary>
    public bool GetBit(int index)
    {
        CheckIndex(index);
        return (Buffers[0].Span[index >> 3] & (1 << (index & 7))) != 0;
    }

    public new bool? GetValue(int index) => IsNull(index) ? null : GetBit(index);

    private protected override object GetBoxedValue(int index) => GetBit(index);
}

/// <summary>Fixed-width values of the unmanaged type <typeparamref name="T"/>, stored little-endian (this library requires a little-endian host).</summary>
public abstract class PrimitiveArray<T> : ArrowArray
    where T : unmanaged
{
    private protected PrimitiveArray(ArrowField field, int length, int nullCount, ReadOnlyMemory<byte> validity, ReadOnlyMemory<byte>[] buffers)
        : base(field, length, nullCount, validity, buffers, [])
    {
    }

    /// <summary>All values (null slots included) as a span over the data buffer.</summary>
    public ReadOnlySpan<T> Values => MemoryMarshal.Cast<byte, T>(Buffers[0].Span)[..Length];

    /// <summary>The raw value at <paramref name="index"/> (unspecified for null slots).</summary>
    public T GetRaw(int index)
    {
        CheckIndex(index);
        return Values[index];
    }

    public new T? GetValue(int index) => IsNull(index) ? null : Values[index];

    private protected override object GetBoxedValue(int index) => Values[index];
}

public sealed class Int8Array : PrimitiveArray<sbyte>
{
    internal Int8Array(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }
}

public sealed class Int16Array : PrimitiveArray<short>
{
    internal Int16Array(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }
}

public sealed class Int32Array : PrimitiveArray<int>
{
    internal Int32Array(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }
}

public sealed class Int64Array : PrimitiveArray<long>
{
    internal Int64Array(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }
}

public sealed class UInt8Array : PrimitiveArray<byte>
{
    internal UInt8Array(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }
}

public sealed class UInt16Array : PrimitiveArray<ushort>
{
    internal UInt16Array(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }
}

public sealed class UInt32Array : PrimitiveArray<uint>
{
    internal UInt32Array(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }
}

public sealed class UInt64Array : PrimitiveArray<ulong>
{
    internal UInt64Array(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }
}

public sealed class HalfFloatArray : PrimitiveArray<Half>
{
    internal HalfFloatArray(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }
}

public sealed class FloatArray : PrimitiveArray<float>
{
    internal FloatArray(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }
}

public sealed class DoubleArray : PrimitiveArray<double>
{
    internal DoubleArray(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }
}

/// <summary>Days since 1970-01-01 (proleptic Gregorian).</summary>
public sealed class Date32Array : PrimitiveArray<int>
{
    internal Date32Array(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }
}

/// <summary>Milliseconds since 1970-01-01.</summary>
public sealed class Date64Array : PrimitiveArray<long>
{
    internal Date64Array(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }
}

/// <summary>Time of day in seconds or milliseconds (see the field's <see cref="TimeType"/>).</summary>
public sealed class Time32Array : PrimitiveArray<int>
{
    internal Time32Array(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }
}

/// <summary>Time of day in microseconds or nanoseconds (see the field's <see cref="TimeType"/>).</summary>
public sealed class Time64Array : PrimitiveArray<long>
{
    internal Time64Array(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }
}

/// <summary>Timestamps as counts of the type's unit since 1970-01-01T00:00:00 (UTC when the type has a time zone).</summary>
public sealed class TimestampArray : PrimitiveArray<long>
{
    internal TimestampArray(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }
}

public sealed class DurationArray : PrimitiveArray<long>
{
    internal DurationArray(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }
}

/// <summary>Intervals as a number of months.</summary>
public sealed class YearMonthIntervalArray : PrimitiveArray<int>
{
    internal YearMonthIntervalArray(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }
}

/// <summary>Arrow's DAY_TIME interval value.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct DayTimeInterval(int Days, int Milliseconds);

/// <summary>Arrow's MONTH_DAY_NANO interval value (the three parts are independent).</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct MonthDayNanoInterval(int Months, int Days, long Nanoseconds);

public sealed class DayTimeIntervalArray : PrimitiveArray<DayTimeInterval>
{
    internal DayTimeIntervalArray(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }
}

public sealed class MonthDayNanoIntervalArray : PrimitiveArray<MonthDayNanoInterval>
{
    internal MonthDayNanoIntervalArray(ArrowField f, int length, int nullCount, ReadOnlyMemory<byte> v, ReadOnlyMemory<byte>[] b) : base(f, length, nullCount, v, b) { }
}
