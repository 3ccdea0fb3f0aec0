using System.Buffers;

namespace WalBridge.Serialization.Payload;

/// <summary>
/// A write-only <see cref="Stream"/> that appends to an <see cref="IBufferWriter{T}"/> (retargetable, counting), so that
/// Apache.Arrow's <c>ArrowStreamWriter</c> writes straight into the caller's buffer without an intermediate copy.
/// </summary>
internal sealed class BufferWriterStream : Stream
{
    /// <summary>Large writes are copied in pieces of at most this size (segmented writers hand out bounded spans).</summary>
    private const int MaxChunk = 1 << 20;

    private IBufferWriter<byte>? _target;

    /// <summary>Where the next writes go.</summary>
    public IBufferWriter<byte>? Target
    {
        get => _target;
        set
        {
            _target = value;
            BytesWritten = 0;
        }
    }

    /// <summary>Bytes written since <see cref="Target"/> was last set.</summary>
    public long BytesWritten { get; private set; }

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        var target = _target ?? throw new InvalidOperationException("The stream has no target buffer.");
        while (!buffer.IsEmpty)
        {
            var span = target.GetSpan(Math.Min(buffer.Length, MaxChunk));
            var n = Math.Min(span.Length, buffer.Length);
            buffer[..n].CopyTo(span);
            target.Advance(n);
            buffer = buffer[n..];
            BytesWritten += n;
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void WriteByte(byte value) => Write([value]);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Write(buffer.AsSpan(offset, count));
        return Task.CompletedTask;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
