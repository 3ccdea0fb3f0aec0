using System.Buffers;

namespace WalBridge.Serialization.Columns;

/// <summary>
/// A growable byte buffer rented from <see cref="ArrayPool{T}.Shared"/>.
/// </summary>
/// <remarks>
/// Lifetime: the rented array is kept across <see cref="Truncate"/> (so a builder reused for the next
/// batch does not reallocate) and returned to the pool by <see cref="Dispose"/>. Views handed out by
/// <see cref="Memory"/> are valid until the next append, truncate or dispose. Growth doubles, so appends are amortised O(1).
/// </remarks>
internal sealed class PooledBuffer : IDisposable
{
    private byte[] _array = [];
    private int _length;
    private ByteMeter? _meter;

    public int Length
    {
        get => _length;
        private set
        {
            if (_meter is { } meter)
            {
                meter.Bytes += value - _length;
            }

            _length = value;
        }
    }

    /// <summary>Counts this buffer's length into <paramref name="meter"/> from now on (its current length included).</summary>
    public void Attach(ByteMeter meter)
    {
        ArgumentNullException.ThrowIfNull(meter);
        _meter = meter;
        meter.Bytes += _length;
        meter.Buffers++;
    }

    public int Capacity => _array.Length;

    public Span<byte> Span => _array.AsSpan(0, Length);

    public ReadOnlyMemory<byte> Memory => _array.AsMemory(0, Length);

    /// <summary>Appends <paramref name="count"/> bytes and returns them for writing (their content is unspecified).</summary>
    public Span<byte> Append(int count)
    {
        Ensure((long)Length + count);
        var span = _array.AsSpan(Length, count);
        Length += count;
        return span;
    }

    /// <summary>Appends one byte.</summary>
    public void AppendByte(byte value)
    {
        if (Length == _array.Length)
        {
            Ensure((long)Length + 1);
        }

        _array[_length] = value;
        Length = _length + 1;
    }

    /// <summary>The last byte (the buffer must not be empty).</summary>
    public ref byte Last => ref _array[Length - 1];

    /// <summary>Returns writable space of at least <paramref name="count"/> bytes after the end without committing it.</summary>
    public Span<byte> GetTail(int count)
    {
        Ensure((long)Length + count);
        return _array.AsSpan(Length, count);
    }

    /// <summary>Commits <paramref name="count"/> bytes previously written through <see cref="GetTail"/>.</summary>
    public void Commit(int count)
    {
        if ((uint)count > (uint)(_array.Length - Length))
        {
            throw new ArgumentOutOfRangeException(nameof(count));
        }

        Length += count;
    }

    public void Truncate(int length)
    {
        if ((uint)length > (uint)Length)
        {
            throw new ArgumentOutOfRangeException(nameof(length));
        }

        Length = length;
    }

    // The check is inlined into every append; growing is the rare, separate call.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private void Ensure(long capacity)
    {
        if (capacity > _array.Length)
        {
            Grow(capacity);
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private void Grow(long capacity)
    {
        if (capacity > Array.MaxLength)
        {
            throw new InvalidOperationException($"An Arrow buffer cannot exceed {Array.MaxLength} bytes.");
        }

        var size = Math.Max(Math.Max(capacity, (long)_array.Length * 2), 256);
        var next = ArrayPool<byte>.Shared.Rent((int)Math.Min(size, Array.MaxLength));
        _array.AsSpan(0, Length).CopyTo(next);
        if (_array.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_array);
        }

        _array = next;
    }

    public void Dispose()
    {
        if (_array.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_array);
        }

        _array = [];
        Length = 0;
    }
}

/// <summary>
/// The total length of a set of <see cref="PooledBuffer"/>s, kept up to date as they grow and shrink, so that a size
/// bound over many columns costs O(1) per row instead of a walk over every column.
/// </summary>
/// <remarks>Not thread-safe: shared by the buffers of one builder, used on its thread.</remarks>
internal sealed class ByteMeter
{
    /// <summary>The sum of the attached buffers' lengths.</summary>
    public long Bytes { get; set; }

    /// <summary>How many buffers are attached (each is padded to 8 bytes in the IPC body: at most 7 bytes each).</summary>
    public int Buffers { get; set; }

    /// <summary>An upper bound of the IPC body the attached buffers need, each padded to 8.</summary>
    public long PaddedBytes => Bytes + (7L * Buffers);
}
