using System.Buffers.Binary;
using System.Text;
using WalBridge.Serialization.Ipc;

namespace WalBridge.Serialization.Flatbuffers;

/// <summary>
/// A bounds-checked view of one FlatBuffers table inside a metadata buffer.
/// </summary>
/// <remarks>
/// Every read validates offsets against the buffer; any inconsistency throws
/// <see cref="ArrowFormatException"/>. Absent fields yield the caller's default.
/// </remarks>
internal readonly struct FbTable
{
    private readonly ReadOnlyMemory<byte> _buffer;
    private readonly int _position;
    private readonly int _vtable;
    private readonly int _vtableLength;

    private FbTable(ReadOnlyMemory<byte> buffer, int position)
    {
        var span = buffer.Span;
        _buffer = buffer;
        _position = position;
        Check(span, position, 4, "table");
        long vtable = (long)position - BinaryPrimitives.ReadInt32LittleEndian(span[position..]);
        if (vtable < 0 || vtable > span.Length - 4)
        {
            throw new ArrowFormatException($"FlatBuffers vtable offset out of range at {position}.");
        }

        _vtable = (int)vtable;
        _vtableLength = BinaryPrimitives.ReadUInt16LittleEndian(span[_vtable..]);
        if (_vtableLength < 4 || (_vtableLength & 1) != 0 || _vtable + _vtableLength > span.Length)
        {
            throw new ArrowFormatException($"FlatBuffers vtable at {_vtable} has invalid length {_vtableLength}.");
        }

        int tableLength = BinaryPrimitives.ReadUInt16LittleEndian(span[(_vtable + 2)..]);
        if (tableLength < 4 || (long)position + tableLength > span.Length)
        {
            throw new ArrowFormatException($"FlatBuffers table at {position} has invalid length {tableLength}.");
        }
    }

    /// <summary>Opens the root table of a finished buffer.</summary>
    public static FbTable Root(ReadOnlyMemory<byte> buffer)
    {
        Check(buffer.Span, 0, 4, "root offset");
        uint root = BinaryPrimitives.ReadUInt32LittleEndian(buffer.Span);
        if (root > (uint)buffer.Length - 4)
        {
            throw new ArrowFormatException($"FlatBuffers root offset {root} is outside the {buffer.Length}-byte buffer.");
        }

        return new FbTable(buffer, (int)root);
    }

    private static void Check(ReadOnlySpan<byte> span, long position, long size, string what)
    {
        if (position < 0 || size < 0 || position + size > span.Length)
        {
            throw new ArrowFormatException($"FlatBuffers {what} at {position} (+{size}) is outside the {span.Length}-byte metadata.");
        }
    }

    /// <summary>Absolute position of a field, or -1 when absent.</summary>
    private int FieldPosition(int field, int size)
    {
        int entry = 4 + (2 * field);
        if (entry + 2 > _vtableLength)
        {
            return -1;
        }

        var span = _buffer.Span;
        int rel = BinaryPrimitives.ReadUInt16LittleEndian(span[(_vtable + entry)..]);
        if (rel == 0)
        {
            return -1;
        }

        int tableLength = BinaryPrimitives.ReadUInt16LittleEndian(span[(_vtable + 2)..]);
        if (rel + size > tableLength)
        {
            throw new ArrowFormatException($"FlatBuffers field {field} of table at {_position} lies outside the table.");
        }

        return _position + rel;
    }

    public bool Has(int field) => FieldPosition(field, 1) >= 0;

    public byte GetByte(int field, byte defaultValue)
    {
        int p = FieldPosition(field, 1);
        return p < 0 ? defaultValue : _buffer.Span[p];
    }

    public bool GetBool(int field, bool defaultValue) => GetByte(field, defaultValue ? (byte)1 : (byte)0) != 0;

    public short GetInt16(int field, short defaultValue)
    {
        int p = FieldPosition(field, 2);
        return p < 0 ? defaultValue : BinaryPrimitives.ReadInt16LittleEndian(_buffer.Span[p..]);
    }

    public int GetInt32(int field, int defaultValue)
    {
        int p = FieldPosition(field, 4);
        return p < 0 ? defaultValue : BinaryPrimitives.ReadInt32LittleEndian(_buffer.Span[p..]);
    }

    public long GetInt64(int field, long defaultValue)
    {
        int p = FieldPosition(field, 8);
        return p < 0 ? defaultValue : BinaryPrimitives.ReadInt64LittleEndian(_buffer.Span[p..]);
    }

    /// <summary>Follows the uoffset stored at <paramref name="position"/>.</summary>
    private int Deref(int position)
    {
        var span = _buffer.Span;
        Check(span, position, 4, "offset");
        uint rel = BinaryPrimitives.ReadUInt32LittleEndian(span[position..]);
        long target = position + (long)rel;
        if (rel == 0 || target > span.Length - 4)
        {
            throw new ArrowFormatException($"FlatBuffers reference at {position} points outside the metadata.");
        }

        return (int)target;
    }

    public FbTable? GetTable(int field)
    {
        int p = FieldPosition(field, 4);
        return p < 0 ? null : new FbTable(_buffer, Deref(p));
    }

    public string? GetString(int field)
    {
        int p = FieldPosition(field, 4);
        return p < 0 ? null : ReadString(_buffer, Deref(p));
    }

    private static string ReadString(ReadOnlyMemory<byte> buffer, int position)
    {
        var span = buffer.Span;
        Check(span, position, 4, "string length");
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(span[position..]);
        Check(span, position + 4L, length, "string");
        try
        {
            return new UTF8Encoding(false, true).GetString(span.Slice(position + 4, (int)length));
        }
        catch (DecoderFallbackException e)
        {
            throw new ArrowFormatException($"FlatBuffers string at {position} is not valid UTF-8.", e);
        }
    }

    /// <summary>A vector field; <see cref="FbVector.Length"/> is 0 when absent.</summary>
    public FbVector GetVector(int field, int elementSize)
    {
        int p = FieldPosition(field, 4);
        if (p < 0)
        {
            return default;
        }

        int start = Deref(p);
        var span = _buffer.Span;
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(span[start..]);
        Check(span, start + 4L, (long)length * elementSize, "vector");
        return new FbVector(_buffer, start + 4, (int)length, elementSize);
    }

    internal readonly struct FbVector
    {
        private readonly ReadOnlyMemory<byte> _buffer;
        private readonly int _start;
        private readonly int _elementSize;

        public FbVector(ReadOnlyMemory<byte> buffer, int start, int length, int elementSize)
        {
            _buffer = buffer;
            _start = start;
            Length = length;
            _elementSize = elementSize;
        }

        public int Length { get; }

        private int ElementPosition(int index)
        {
            if ((uint)index >= (uint)Length)
            {
                throw new ArgumentOutOfRangeException(nameof(index));
            }

            return _start + (index * _elementSize);
        }

        public FbTable GetTable(int index)
        {
            int p = ElementPosition(index);
            var span = _buffer.Span;
            uint rel = BinaryPrimitives.ReadUInt32LittleEndian(span[p..]);
            long target = p + (long)rel;
            if (rel == 0 || target > span.Length - 4)
            {
                throw new ArrowFormatException($"FlatBuffers vector element at {p} points outside the metadata.");
            }

            return new FbTable(_buffer, (int)target);
        }

        public long GetInt64(int index, int fieldOffset) =>
            BinaryPrimitives.ReadInt64LittleEndian(_buffer.Span[(ElementPosition(index) + fieldOffset)..]);

        public byte GetByte(int index) => _buffer.Span[ElementPosition(index)];
    }
}
