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

    public int Length { get; private set; }

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

        _array[Length++] = value;
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

    private void Ensure(long capacity)
    {
        if (capacity <= _array.Length)
        {
            return;
        }

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
