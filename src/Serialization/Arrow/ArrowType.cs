namespace WalBridge.Serialization.Arrow;

/// <summary>Arrow type identifiers, numbered like the <c>Type</c> union in Arrow's Schema.fbs.</summary>
public enum ArrowTypeId : byte
{
    Null = 1,
    Int = 2,
    FloatingPoint = 3,
    Binary = 4,
    Utf8 = 5,
    Boolean = 6,
    Decimal = 7,
    Date = 8,
    Time = 9,
    Timestamp = 10,
    Interval = 11,
    List = 12,
    Struct = 13,
    Union = 14,
    FixedSizeBinary = 15,
    FixedSizeList = 16,
    Map = 17,
    Duration = 18,
    LargeBinary = 19,
    LargeUtf8 = 20,
    LargeList = 21,
}

/// <summary>Time resolution, numbered like Arrow's <c>TimeUnit</c>.</summary>
public enum TimeUnit : short
{
    Second = 0,
    Millisecond = 1,
    Microsecond = 2,
    Nanosecond = 3,
}

/// <summary>Date resolution, numbered like Arrow's <c>DateUnit</c>.</summary>
public enum DateUnit : short
{
    Day = 0,
    Millisecond = 1,
}

/// <summary>Interval layout, numbered like Arrow's <c>IntervalUnit</c>.</summary>
public enum IntervalUnit : short
{
    YearMonth = 0,
    DayTime = 1,
    MonthDayNano = 2,
}

/// <summary>Floating point precision, numbered like Arrow's <c>Precision</c>.</summary>
public enum FloatingPointPrecision : short
{
    Half = 0,
    Single = 1,
    Double = 2,
}

/// <summary>
/// An Arrow logical type. Types are immutable records with value equality; child types of nested
/// types (list, struct, map) are described by the children of the <see cref="ArrowField"/>.
/// </summary>
public abstract record ArrowType
{
    private protected ArrowType()
    {
    }

    public abstract ArrowTypeId Id { get; }

    /// <summary>Whether values of this type have child arrays.</summary>
    public virtual bool IsNested => false;

    public static NullType Null { get; } = new();
    public static BooleanType Boolean { get; } = new();
    public static IntType Int8 { get; } = new(8, true);
    public static IntType Int16 { get; } = new(16, true);
    public static IntType Int32 { get; } = new(32, true);
    public static IntType Int64 { get; } = new(64, true);
    public static IntType UInt8 { get; } = new(8, false);
    public static IntType UInt16 { get; } = new(16, false);
    public static IntType UInt32 { get; } = new(32, false);
    public static IntType UInt64 { get; } = new(64, false);
    public static FloatingPointType Float16 { get; } = new(FloatingPointPrecision.Half);
    public static FloatingPointType Float32 { get; } = new(FloatingPointPrecision.Single);
    public static FloatingPointType Float64 { get; } = new(FloatingPointPrecision.Double);
    public static BinaryType Binary { get; } = new();
    public static Utf8Type Utf8 { get; } = new();
    public static LargeBinaryType LargeBinary { get; } = new();
    public static LargeUtf8Type LargeUtf8 { get; } = new();
    public static DateType Date32 { get; } = new(DateUnit.Day);
    public static DateType Date64 { get; } = new(DateUnit.Millisecond);
    public static ListType List { get; } = new();
    public static LargeListType LargeList { get; } = new();
    public static StructType Struct { get; } = new();
}

public sealed record NullType : ArrowType
{
    public override ArrowTypeId Id => ArrowTypeId.Null;

    public override string ToString() => "null";
}

public sealed record BooleanType : ArrowType
{
    public override ArrowTypeId Id => ArrowTypeId.Boolean;

    public override string ToString() => "bool";
}

/// <summary>Integer of 8, 16, 32 or 64 bits.</summary>
public sealed record IntType : ArrowType
{
    public IntType(int bitWidth, bool isSigned)
    {
        if (bitWidth is not (8 or 16 or 32 or 64))
        {
            throw new ArgumentOutOfRangeException(nameof(bitWidth), bitWidth, "Integer bit width must be 8, 16, 32 or 64.");
        }

        BitWidth = bitWidth;
        IsSigned = isSigned;
    }

    public int BitWidth { get; }
    public bool IsSigned { get; }
    public override ArrowTypeId Id => ArrowTypeId.Int;

    public override string ToString() => (IsSigned ? "int" : "uint") + BitWidth;
}

public sealed record FloatingPointType(FloatingPointPrecision Precision) : ArrowType
{
    public override ArrowTypeId Id => ArrowTypeId.FloatingPoint;

    public int BitWidth => Precision switch
    {
        FloatingPointPrecision.Half => 16,
        FloatingPointPrecision.Single => 32,
        _ => 64,
    };

    public override string ToString() => "float" + BitWidth;
}

/// <summary>Fixed-point decimal stored as a two's complement little-endian integer of 128 or 256 bits.</summary>
public sealed record DecimalType : ArrowType
{
    public DecimalType(int precision, int scale, int bitWidth = 128)
    {
        if (bitWidth is not (128 or 256))
        {
            throw new ArgumentOutOfRangeException(nameof(bitWidth), bitWidth, "Decimal bit width must be 128 or 256.");
        }

        int max = bitWidth == 128 ? 38 : 76;
        if (precision < 1 || precision > max)
        {
            throw new ArgumentOutOfRangeException(nameof(precision), precision, $"Decimal{bitWidth} precision must be 1..{max}.");
        }

        Precision = precision;
        Scale = scale;
        BitWidth = bitWidth;
    }

    public int Precision { get; }
    public int Scale { get; }
    public int BitWidth { get; }
    public override ArrowTypeId Id => ArrowTypeId.Decimal;

    public override string ToString() => $"decimal{BitWidth}({Precision},{Scale})";
}

public sealed record DateType(DateUnit Unit) : ArrowType
{
    public override ArrowTypeId Id => ArrowTypeId.Date;

    public override string ToString() => Unit == DateUnit.Day ? "date32" : "date64";
}

/// <summary>Time of day: 32 bits for seconds/milliseconds, 64 bits for micro/nanoseconds.</summary>
public sealed record TimeType : ArrowType
{
    public TimeType(TimeUnit unit, int bitWidth)
    {
        bool ok = unit is TimeUnit.Second or TimeUnit.Millisecond ? bitWidth == 32 : bitWidth == 64;
        if (!ok)
        {
            throw new ArgumentOutOfRangeException(nameof(bitWidth), bitWidth, $"Time with unit {unit} cannot have bit width {bitWidth}.");
        }

        Unit = unit;
        BitWidth = bitWidth;
    }

    public TimeUnit Unit { get; }
    public int BitWidth { get; }
    public override ArrowTypeId Id => ArrowTypeId.Time;

    public override string ToString() => $"time{BitWidth}[{Unit}]";
}

/// <summary>64-bit timestamp; <see cref="Timezone"/> null means a naive (wall clock) timestamp.</summary>
public sealed record TimestampType(TimeUnit Unit, string? Timezone) : ArrowType
{
    public override ArrowTypeId Id => ArrowTypeId.Timestamp;

    public override string ToString() => Timezone is null ? $"timestamp[{Unit}]" : $"timestamp[{Unit}, {Timezone}]";
}

public sealed record IntervalType(IntervalUnit Unit) : ArrowType
{
    public override ArrowTypeId Id => ArrowTypeId.Interval;

    public override string ToString() => $"interval[{Unit}]";
}

public sealed record DurationType(TimeUnit Unit) : ArrowType
{
    public override ArrowTypeId Id => ArrowTypeId.Duration;

    public override string ToString() => $"duration[{Unit}]";
}

public sealed record BinaryType : ArrowType
{
    public override ArrowTypeId Id => ArrowTypeId.Binary;

    public override string ToString() => "binary";
}

public sealed record Utf8Type : ArrowType
{
    public override ArrowTypeId Id => ArrowTypeId.Utf8;

    public override string ToString() => "utf8";
}

public sealed record LargeBinaryType : ArrowType
{
    public override ArrowTypeId Id => ArrowTypeId.LargeBinary;

    public override string ToString() => "large_binary";
}

public sealed record LargeUtf8Type : ArrowType
{
    public override ArrowTypeId Id => ArrowTypeId.LargeUtf8;

    public override string ToString() => "large_utf8";
}

public sealed record FixedSizeBinaryType : ArrowType
{
    public FixedSizeBinaryType(int byteWidth)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(byteWidth);
        ByteWidth = byteWidth;
    }

    public int ByteWidth { get; }
    public override ArrowTypeId Id => ArrowTypeId.FixedSizeBinary;

    public override string ToString() => $"fixed_size_binary({ByteWidth})";
}

/// <summary>Variable-size list with 32-bit offsets; the element field is the single child of the field.</summary>
public sealed record ListType : ArrowType
{
    public override ArrowTypeId Id => ArrowTypeId.List;
    public override bool IsNested => true;

    public override string ToString() => "list";
}

/// <summary>Variable-size list with 64-bit offsets.</summary>
public sealed record LargeListType : ArrowType
{
    public override ArrowTypeId Id => ArrowTypeId.LargeList;
    public override bool IsNested => true;

    public override string ToString() => "large_list";
}

public sealed record FixedSizeListType : ArrowType
{
    public FixedSizeListType(int listSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(listSize);
        ListSize = listSize;
    }

    public int ListSize { get; }
    public override ArrowTypeId Id => ArrowTypeId.FixedSizeList;
    public override bool IsNested => true;

    public override string ToString() => $"fixed_size_list({ListSize})";
}

/// <summary>Struct: one child field per member.</summary>
public sealed record StructType : ArrowType
{
    public override ArrowTypeId Id => ArrowTypeId.Struct;
    public override bool IsNested => true;

    public override string ToString() => "struct";
}

/// <summary>Map: a list of non-null <c>entries</c> structs holding <c>key</c> and <c>value</c>.</summary>
public sealed record MapType(bool KeysSorted) : ArrowType
{
    public override ArrowTypeId Id => ArrowTypeId.Map;
    public override bool IsNested => true;

    public override string ToString() => "map";
}
