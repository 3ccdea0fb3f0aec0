using System.Buffers.Binary;
using Apache.Arrow;
using Apache.Arrow.Types;

namespace WalBridge.Serialization.Columns;

/// <summary>A bitmap being appended bit by bit; bits past <see cref="Length"/> are kept zero.</summary>
internal sealed class BitmapBuilder : IDisposable
{
    private readonly PooledBuffer _bytes = new();

    public int Length { get; private set; }

    /// <summary>Number of zero bits.</summary>
    public int ZeroCount { get; private set; }

    public ReadOnlyMemory<byte> Memory => _bytes.Memory;

    public int ByteLength => _bytes.Length;

    /// <summary>Counts this bitmap's bytes into <paramref name="meter"/>.</summary>
    public void Attach(ByteMeter meter) => _bytes.Attach(meter);

    public void Append(bool bit)
    {
        var length = Length;
        if ((length & 7) == 0)
        {
            _bytes.AppendByte(bit ? (byte)1 : (byte)0);
        }
        else if (bit)
        {
            _bytes.Last |= (byte)(1 << (length & 7));
        }

        if (!bit)
        {
            ZeroCount++;
        }

        Length = length + 1;
    }

    public void Truncate(int length)
    {
        if ((uint)length > (uint)Length)
        {
            throw new ArgumentOutOfRangeException(nameof(length));
        }

        if (length == 0)
        {
            // Clear, once per batch: no need to count the bits that go.
            ZeroCount = 0;
        }
        else
        {
            var span = _bytes.Span;
            for (var i = length; i < Length; i++)
            {
                if ((span[i >> 3] & (1 << (i & 7))) == 0)
                {
                    ZeroCount--;
                }
            }
        }

        _bytes.Truncate((length + 7) >> 3);
        if ((length & 7) != 0)
        {
            _bytes.Span[length >> 3] &= (byte)((1 << (length & 7)) - 1);
        }

        Length = length;
    }

    public void Dispose() => _bytes.Dispose();
}

/// <summary>
/// Appends values of one Arrow column into pooled buffers of our own and hands them to Apache.Arrow as zero-copy
/// <see cref="ArrowBuffer"/>s of an <see cref="ArrayData"/>, so that Apache.Arrow's arrays and IPC writer use them.
/// </summary>
/// <remarks>
/// <para>Unlike Apache.Arrow's own builders, these can take back what they appended (<see cref="Truncate"/>): the change
/// builder removes a whole row, or the half-appended part of a row, without copying anything.</para>
/// <para><see cref="BuildData"/> returns array data that <em>views</em> the builder's buffers: it is valid until the
/// builder is next appended to, truncated, cleared or disposed (the next build also reuses its buffer and child arrays).
/// Every buffer is handed over with its exact length (Apache.Arrow writes the zero padding). Not thread-safe.</para>
/// </remarks>
internal abstract class ArrayBuilder : IDisposable
{
    private protected ArrayBuilder(Field field, int bufferCount, int childCount)
    {
        Field = field;
        BufferSlots = new ArrowBuffer[bufferCount];
        ChildSlots = childCount == 0 ? [] : new ArrayData[childCount];
    }

    /// <summary>The Apache.Arrow field this column (or child) has in the schema.</summary>
    public Field Field { get; }

    private protected BitmapBuilder Validity { get; } = new();

    public int Length => Validity.Length;

    public int NullCount => Validity.ZeroCount;

    /// <summary>Reused by every build: the data's buffer array (validity first, as Arrow orders them).</summary>
    private protected ArrowBuffer[] BufferSlots { get; }

    /// <summary>Reused by every build: the data's child array.</summary>
    private protected ArrayData[] ChildSlots { get; }

    public abstract void AppendNull();

    /// <summary>Drops every value at index <paramref name="length"/> and beyond.</summary>
    public abstract void Truncate(int length);

    public void Clear() => Truncate(0);

    /// <summary>The values as Apache.Arrow array data over this builder's buffers (see the class remarks for its lifetime).</summary>
    public abstract ArrayData BuildData();

    /// <summary>The values as Apache.Arrow's typed array (e.g. <c>StringArray</c>, <c>StructArray</c>) over this builder's buffers.</summary>
    public IArrowArray Build() => ArrowArrayFactory.BuildArray(BuildData());

    /// <summary>Bytes the IPC body needs for this array (and its children) at most, each buffer padded to 8.</summary>
    public abstract long BodyBytes();

    /// <summary>Counts this array's buffers (and its children's) into <paramref name="meter"/> from now on.</summary>
    public virtual void Attach(ByteMeter meter) => Validity.Attach(meter);

    /// <summary>The validity bitmap, or an empty buffer when there are no nulls (Arrow allows omitting it then).</summary>
    private protected ArrowBuffer ValidityBuffer => NullCount == 0 ? ArrowBuffer.Empty : new ArrowBuffer(Validity.Memory);

    private protected ArrayData CreateData(params ReadOnlySpan<ReadOnlyMemory<byte>> buffers)
    {
        BufferSlots[0] = ValidityBuffer;
        for (var i = 0; i < buffers.Length; i++)
        {
            BufferSlots[i + 1] = new ArrowBuffer(buffers[i]);
        }

        return new ArrayData(Field.DataType, Length, NullCount, 0, BufferSlots, ChildSlots);
    }

    private protected static long Pad(long n) => (n + 7) & ~7L;

    public virtual void Dispose() => Validity.Dispose();
}

/// <summary>Fixed-width values: integers, floats, decimals, dates, times, intervals, fixed-size binary.</summary>
internal sealed class FixedWidthBuilder : ArrayBuilder
{
    private readonly PooledBuffer _data = new();

    public FixedWidthBuilder(Field field, int byteWidth)
        : base(field, 2, 0)
    {
        ByteWidth = byteWidth;
    }

    public int ByteWidth { get; }

    /// <summary>Appends a valid slot and returns its <see cref="ByteWidth"/> bytes for the caller to fill (little-endian).</summary>
    public Span<byte> AppendValue()
    {
        Validity.Append(true);
        return _data.Append(ByteWidth);
    }

    public void AppendInt64(long value) => BinaryPrimitives.WriteInt64LittleEndian(AppendValue(), value);

    public override void AppendNull()
    {
        Validity.Append(false);
        _data.Append(ByteWidth).Clear();
    }

    public override void Truncate(int length)
    {
        Validity.Truncate(length);
        _data.Truncate(length * ByteWidth);
    }

    public override ArrayData BuildData() => CreateData(_data.Memory);

    public override long BodyBytes() => Pad(Validity.ByteLength) + Pad(_data.Length);

    public override void Attach(ByteMeter meter)
    {
        base.Attach(meter);
        _data.Attach(meter);
    }

    public override void Dispose()
    {
        base.Dispose();
        _data.Dispose();
    }
}

internal sealed class BooleanBuilder : ArrayBuilder
{
    private readonly BitmapBuilder _values = new();

    public BooleanBuilder(Field field)
        : base(field, 2, 0)
    {
    }

    public void Append(bool value)
    {
        Validity.Append(true);
        _values.Append(value);
    }

    public override void AppendNull()
    {
        Validity.Append(false);
        _values.Append(false);
    }

    public override void Truncate(int length)
    {
        Validity.Truncate(length);
        _values.Truncate(length);
    }

    public override ArrayData BuildData() => CreateData(_values.Memory);

    public override long BodyBytes() => Pad(Validity.ByteLength) + Pad(_values.ByteLength);

    public override void Attach(ByteMeter meter)
    {
        base.Attach(meter);
        _values.Attach(meter);
    }

    public override void Dispose()
    {
        base.Dispose();
        _values.Dispose();
    }
}

/// <summary>Binary or UTF-8 values with 32-bit offsets.</summary>
internal sealed class VarBinaryBuilder : ArrayBuilder
{
    private readonly PooledBuffer _offsets = new();
    private readonly PooledBuffer _data = new();

    public VarBinaryBuilder(Field field)
        : base(field, 3, 0)
    {
        BinaryPrimitives.WriteInt32LittleEndian(_offsets.Append(4), 0);
    }

    public int DataLength => _data.Length;

    public void Append(ReadOnlySpan<byte> value)
    {
        value.CopyTo(_data.GetTail(value.Length));
        CommitValue(value.Length);
    }

    /// <summary>Returns space for a value of at most <paramref name="maxLength"/> bytes; finish with <see cref="CommitValue"/>.</summary>
    public Span<byte> BeginValue(int maxLength) => _data.GetTail(maxLength);

    /// <summary>Appends a valid slot made of the first <paramref name="length"/> bytes written into <see cref="BeginValue"/>.</summary>
    public void CommitValue(int length)
    {
        if ((long)_data.Length + length > int.MaxValue)
        {
            throw new InvalidOperationException($"Column '{Field.Name}' exceeds 2 GiB of value bytes in one batch.");
        }

        _data.Commit(length);
        Validity.Append(true);
        BinaryPrimitives.WriteInt32LittleEndian(_offsets.Append(4), _data.Length);
    }

    public override void AppendNull()
    {
        Validity.Append(false);
        BinaryPrimitives.WriteInt32LittleEndian(_offsets.Append(4), _data.Length);
    }

    public override void Truncate(int length)
    {
        if ((uint)length > (uint)Length)
        {
            throw new ArgumentOutOfRangeException(nameof(length));
        }

        Validity.Truncate(length);
        _offsets.Truncate(4 * (length + 1));
        _data.Truncate(BinaryPrimitives.ReadInt32LittleEndian(_offsets.Span[(4 * length)..]));
    }

    public override ArrayData BuildData() => CreateData(_offsets.Memory, _data.Memory);

    public override long BodyBytes() => Pad(Validity.ByteLength) + Pad(_offsets.Length) + Pad(_data.Length);

    public override void Attach(ByteMeter meter)
    {
        base.Attach(meter);
        _offsets.Attach(meter);
        _data.Attach(meter);
    }

    public override void Dispose()
    {
        base.Dispose();
        _offsets.Dispose();
        _data.Dispose();
    }
}

/// <summary>
/// Lists (and maps, which are lists of <c>entries</c> structs) with 32-bit offsets: append the elements to
/// <see cref="Values"/>, then call <see cref="EndList"/>.
/// </summary>
internal sealed class ListBuilder : ArrayBuilder
{
    private readonly PooledBuffer _offsets = new();

    public ListBuilder(Field field, ArrayBuilder values)
        : base(field, 2, 1)
    {
        Values = values;
        BinaryPrimitives.WriteInt32LittleEndian(_offsets.Append(4), 0);
    }

    public ArrayBuilder Values { get; }

    /// <summary>Closes a valid list made of the elements appended to <see cref="Values"/> since the previous slot.</summary>
    public void EndList()
    {
        Validity.Append(true);
        BinaryPrimitives.WriteInt32LittleEndian(_offsets.Append(4), Values.Length);
    }

    public override void AppendNull()
    {
        Validity.Append(false);
        BinaryPrimitives.WriteInt32LittleEndian(_offsets.Append(4), Values.Length);
    }

    /// <summary>Index in <see cref="Values"/> where the next (open) list starts.</summary>
    public int ValuesStart => BinaryPrimitives.ReadInt32LittleEndian(_offsets.Span[(4 * Length)..]);

    /// <summary>Drops the elements appended to <see cref="Values"/> since the last closed slot.</summary>
    public void DiscardOpenElements() => Values.Truncate(BinaryPrimitives.ReadInt32LittleEndian(_offsets.Span[(4 * Length)..]));

    public override void Truncate(int length)
    {
        if ((uint)length > (uint)Length)
        {
            throw new ArgumentOutOfRangeException(nameof(length));
        }

        Validity.Truncate(length);
        _offsets.Truncate(4 * (length + 1));
        Values.Truncate(BinaryPrimitives.ReadInt32LittleEndian(_offsets.Span[(4 * length)..]));
    }

    public override ArrayData BuildData()
    {
        ChildSlots[0] = Values.BuildData();
        return CreateData(_offsets.Memory);
    }

    public override long BodyBytes() => Pad(Validity.ByteLength) + Pad(_offsets.Length) + Values.BodyBytes();

    public override void Attach(ByteMeter meter)
    {
        base.Attach(meter);
        _offsets.Attach(meter);
        Values.Attach(meter);
    }

    public override void Dispose()
    {
        base.Dispose();
        _offsets.Dispose();
        Values.Dispose();
    }
}

/// <summary>
/// Structs: append one value to every child, then <see cref="AppendValid"/>; or <see cref="AppendNull"/> (which also
/// appends null children). Apache.Arrow has no struct builder; this one hands its children's buffers over as they are.
/// </summary>
internal sealed class StructBuilder : ArrayBuilder
{
    private readonly ArrayBuilder[] _children;

    public StructBuilder(Field field, IReadOnlyList<ArrayBuilder> children)
        : base(field, 1, children.Count)
    {
        _children = children.ToArray();
    }

    public IReadOnlyList<ArrayBuilder> Children => _children;

    public void AppendValid() => Validity.Append(true);

    public override void AppendNull()
    {
        Validity.Append(false);
        foreach (var child in _children) // array iteration: no enumerator allocation on the row path
        {
            child.AppendNull();
        }
    }

    public override void Truncate(int length)
    {
        Validity.Truncate(length);
        foreach (var child in _children)
        {
            if (child.Length >= length)
            {
                child.Truncate(length);
            }
        }
    }

    public override ArrayData BuildData()
    {
        for (var i = 0; i < _children.Length; i++)
        {
            ChildSlots[i] = _children[i].BuildData();
        }

        return CreateData();
    }

    public override void Attach(ByteMeter meter)
    {
        base.Attach(meter);
        foreach (var child in _children)
        {
            child.Attach(meter);
        }
    }

    public override long BodyBytes()
    {
        var total = Pad(Validity.ByteLength);
        foreach (var child in _children)
        {
            total += child.BodyBytes();
        }

        return total;
    }

    public override void Dispose()
    {
        base.Dispose();
        foreach (var child in _children)
        {
            child.Dispose();
        }
    }
}

/// <summary>Creates the builder matching an Apache.Arrow field's type (the types of docs/format.md's mapping).</summary>
internal static class BuilderFactory
{
    public static ArrayBuilder Create(Field field) => field.DataType switch
    {
        BooleanType => new BooleanBuilder(field),
        BinaryType or StringType => new VarBinaryBuilder(field),
        StructType s => new StructBuilder(field, s.Fields.Select(Create).ToArray()),
        ListType l => new ListBuilder(field, Create(l.ValueField)),
        MapType m => new ListBuilder(field, Create(m.Fields[0])),
        FixedSizeBinaryType f => new FixedWidthBuilder(field, f.ByteWidth),
        FixedWidthType f => new FixedWidthBuilder(field, f.BitWidth / 8),
        _ => throw new NotSupportedException($"No column builder for Arrow type {field.DataType.Name} (field '{field.Name}')."),
    };
}
