using System.Buffers.Binary;
using System.Text;

namespace WalBridge.Serialization.Flatbuffers;

/// <summary>
/// A minimal FlatBuffers encoder, written for the few Arrow IPC metadata tables we emit.
/// </summary>
/// <remarks>
/// Like every FlatBuffers encoder it writes back to front: children (strings, vectors, tables) are
/// created first and referenced later by the offset those calls return. Offsets returned by this
/// type are measured from the <em>end</em> of the buffer and are only meaningful to the same builder.
/// Every scalar field is written explicitly, even when it equals the schema default, so the output
/// never depends on default values; vtables are not de-duplicated. The encoding is deterministic.
/// Not thread-safe. <see cref="Reset"/> makes the builder reusable without reallocating.
/// </remarks>
internal sealed class FlatBufferBuilder
{
    private byte[] _buffer;
    private int _space;           // index of the first written byte; data lives in _buffer[_space..]
    private int _minAlign = 1;
    private int[] _vtable = new int[16];
    private int _vtableFields = -1; // -1: not inside a table
    private int _objectStart;
    private int _vectorCount = -1;

    public FlatBufferBuilder(int initialSize = 256)
    {
        _buffer = new byte[Math.Max(initialSize, 16)];
        _space = _buffer.Length;
    }

    /// <summary>Bytes written so far (the offset of the most recently written byte from the end).</summary>
    public int Offset => _buffer.Length - _space;

    public void Reset()
    {
        _space = _buffer.Length;
        _minAlign = 1;
        _vtableFields = -1;
        _vectorCount = -1;
    }

    private void Grow(int needed)
    {
        int used = _buffer.Length - _space;
        int newSize = Math.Max(_buffer.Length * 2, used + needed + 16);
        var n = new byte[newSize];
        Buffer.BlockCopy(_buffer, _space, n, newSize - used, used);
        _space = newSize - used;
        _buffer = n;
    }

    /// <summary>Aligns so that after writing <paramref name="additional"/> bytes, a value of <paramref name="size"/> bytes is aligned.</summary>
    private void Prep(int size, int additional)
    {
        if (size > _minAlign)
        {
            _minAlign = size;
        }

        int pad = (~(Offset + additional) + 1) & (size - 1);
        if (_space < pad + size + additional)
        {
            Grow(pad + size + additional);
        }

        for (int i = 0; i < pad; i++)
        {
            _buffer[--_space] = 0;
        }
    }

    private void Ensure(int bytes)
    {
        if (_space < bytes)
        {
            Grow(bytes);
        }
    }

    private void PutByte(byte v) => _buffer[--_space] = v;

    private void PutInt16(short v)
    {
        _space -= 2;
        BinaryPrimitives.WriteInt16LittleEndian(_buffer.AsSpan(_space), v);
    }

    private void PutInt32(int v)
    {
        _space -= 4;
        BinaryPrimitives.WriteInt32LittleEndian(_buffer.AsSpan(_space), v);
    }

    private void PutInt64(long v)
    {
        _space -= 8;
        BinaryPrimitives.WriteInt64LittleEndian(_buffer.AsSpan(_space), v);
    }

    public void StartTable(int fieldCount)
    {
        if (_vtableFields >= 0)
        {
            throw new InvalidOperationException("FlatBuffers tables cannot be nested while being built.");
        }

        if (_vtable.Length < fieldCount)
        {
            _vtable = new int[fieldCount];
        }

        Array.Clear(_vtable, 0, fieldCount);
        _vtableFields = fieldCount;
        _objectStart = Offset;
    }

    private void Slot(int field) => _vtable[field] = Offset;

    public void AddByte(int field, byte value)
    {
        Prep(1, 0);
        PutByte(value);
        Slot(field);
    }

    public void AddBool(int field, bool value) => AddByte(field, value ? (byte)1 : (byte)0);

    public void AddInt16(int field, short value)
    {
        Prep(2, 0);
        PutInt16(value);
        Slot(field);
    }

    public void AddInt32(int field, int value)
    {
        Prep(4, 0);
        PutInt32(value);
        Slot(field);
    }

    public void AddInt64(int field, long value)
    {
        Prep(8, 0);
        PutInt64(value);
        Slot(field);
    }

    /// <summary>Adds a reference to an already written string, vector or table.</summary>
    public void AddOffset(int field, int offset)
    {
        if (offset == 0)
        {
            return; // absent
        }

        AddOffsetValue(offset);
        Slot(field);
    }

    private void AddOffsetValue(int offset)
    {
        Prep(4, 0);
        if (offset > Offset)
        {
            throw new InvalidOperationException("FlatBuffers offset must refer to an object written earlier.");
        }

        PutInt32(Offset - offset + 4);
    }

    public int EndTable()
    {
        if (_vtableFields < 0)
        {
            throw new InvalidOperationException("EndTable without StartTable.");
        }

        AddInt32Raw(0); // placeholder for the soffset to the vtable
        int objectOffset = Offset;
        int fields = _vtableFields;
        while (fields > 0 && _vtable[fields - 1] == 0)
        {
            fields--;
        }

        Ensure(2 * (fields + 2));
        for (int i = fields - 1; i >= 0; i--)
        {
            PutInt16(_vtable[i] != 0 ? checked((short)(objectOffset - _vtable[i])) : (short)0);
        }

        PutInt16(checked((short)(objectOffset - _objectStart)));
        PutInt16(checked((short)((fields + 2) * 2)));
        int vtableOffset = Offset;
        BinaryPrimitives.WriteInt32LittleEndian(_buffer.AsSpan(_buffer.Length - objectOffset), vtableOffset - objectOffset);
        _vtableFields = -1;
        return objectOffset;
    }

    private void AddInt32Raw(int value)
    {
        Prep(4, 0);
        PutInt32(value);
    }

    public int CreateString(string value)
    {
        int byteCount = Encoding.UTF8.GetByteCount(value);
        Prep(4, byteCount + 1);
        PutByte(0);
        _space -= byteCount;
        Encoding.UTF8.GetBytes(value, _buffer.AsSpan(_space, byteCount));
        PutInt32(byteCount);
        return Offset;
    }

    /// <summary>Creates a vector of references to tables/strings (offsets as returned by this builder).</summary>
    public int CreateOffsetVector(ReadOnlySpan<int> offsets)
    {
        Prep(4, 4 * offsets.Length);
        for (int i = offsets.Length - 1; i >= 0; i--)
        {
            AddOffsetValue(offsets[i]);
        }

        PutInt32(offsets.Length);
        return Offset;
    }

    public int CreateInt64Vector(ReadOnlySpan<long> values)
    {
        Prep(4, 8 * values.Length);
        Prep(8, 8 * values.Length);
        for (int i = values.Length - 1; i >= 0; i--)
        {
            PutInt64(values[i]);
        }

        Prep(4, 0);
        PutInt32(values.Length);
        return Offset;
    }

    /// <summary>
    /// Starts a vector of structs made of two int64 values each (Arrow's FieldNode and Buffer).
    /// Push the elements in reverse order with <see cref="PushInt64Pair"/>, then call <see cref="EndVector"/>.
    /// </summary>
    public void StartInt64PairVector(int count)
    {
        Prep(4, 16 * count);
        Prep(8, 16 * count);
        _vectorCount = count;
    }

    public void PushInt64Pair(long first, long second)
    {
        Ensure(16);
        PutInt64(second);
        PutInt64(first);
    }

    public int EndVector()
    {
        if (_vectorCount < 0)
        {
            throw new InvalidOperationException("EndVector without StartVector.");
        }

        // Elements were written aligned; the length prefix needs no padding (int64 elements keep 4-byte alignment).
        Ensure(4);
        PutInt32(_vectorCount);
        _vectorCount = -1;
        return Offset;
    }

    /// <summary>Finishes the buffer with <paramref name="root"/> as root table and returns the encoded bytes (a view into the builder, valid until the next mutation).</summary>
    public ReadOnlySpan<byte> Finish(int root)
    {
        Prep(Math.Max(_minAlign, 8), 4);
        AddOffsetValue(root);
        return _buffer.AsSpan(_space);
    }
}
