using System.Buffers;
using System.Buffers.Binary;
using WalBridge.Serialization.Arrow;
using WalBridge.Serialization.Flatbuffers;

namespace WalBridge.Serialization.Ipc;

/// <summary>
/// Writes an Arrow IPC stream (metadata version V5, little-endian, uncompressed) into an
/// <see cref="IBufferWriter{T}"/>: the schema message, then record batches, then the end-of-stream marker
/// (<c>0xFFFFFFFF 0x00000000</c>).
/// </summary>
/// <remarks>
/// Every message is framed as continuation marker, metadata length, FlatBuffers metadata padded to 8 bytes,
/// then the body, in which every buffer starts at an 8-byte aligned offset and is zero-padded to a multiple of 8.
/// Validity bitmaps of arrays without nulls are written as empty buffers.
/// The writer does not retain arrays after <see cref="WriteRecordBatch"/> returns. Not thread-safe.
/// </remarks>
public sealed class ArrowStreamWriter
{
    private static readonly byte[] ZeroPadding = new byte[8];
    private readonly IBufferWriter<byte> _output;
    private readonly FlatBufferBuilder _builder = new(1024);
    private readonly List<(long Length, long NullCount)> _nodes = [];
    private readonly List<(ReadOnlyMemory<byte> Data, long Length)> _buffers = [];
    private bool _schemaWritten;
    private bool _finished;

    public ArrowStreamWriter(IBufferWriter<byte> output, ArrowSchema schema)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(schema);
        _output = output;
        Schema = schema;
    }

    public ArrowSchema Schema { get; }

    /// <summary>Total bytes written to the output so far.</summary>
    public long BytesWritten { get; private set; }

    /// <summary>Writes a whole stream (schema, batches, EOS) and returns the number of bytes written.</summary>
    public static long WriteStream(IBufferWriter<byte> output, ArrowSchema schema, IEnumerable<RecordBatch> batches)
    {
        ArgumentNullException.ThrowIfNull(batches);
        var writer = new ArrowStreamWriter(output, schema);
        writer.WriteSchema();
        foreach (var batch in batches)
        {
            writer.WriteRecordBatch(batch);
        }

        writer.WriteEnd();
        return writer.BytesWritten;
    }

    /// <summary>Encodes the schema message (framing included) into a new array; deterministic for a given schema.</summary>
    public static byte[] EncodeSchemaMessage(ArrowSchema schema)
    {
        ArgumentNullException.ThrowIfNull(schema);
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new ArrowStreamWriter(buffer, schema);
        writer.WriteSchema();
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Writes the schema message; called implicitly by the first <see cref="WriteRecordBatch"/>.</summary>
    public void WriteSchema()
    {
        if (_schemaWritten)
        {
            throw new InvalidOperationException("The schema message was already written.");
        }

        _builder.Reset();
        int root = IpcMetadata.EncodeSchemaMessage(_builder, Schema);
        WriteMetadata(_builder.Finish(root));
        _schemaWritten = true;
    }

    /// <summary>Writes pre-encoded schema message bytes (from <see cref="EncodeSchemaMessage"/> for the same schema).</summary>
    internal void WriteSchemaBytes(ReadOnlySpan<byte> encodedSchemaMessage)
    {
        if (_schemaWritten)
        {
            throw new InvalidOperationException("The schema message was already written.");
        }

        Write(encodedSchemaMessage);
        _schemaWritten = true;
    }

    public void WriteRecordBatch(RecordBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (_finished)
        {
            throw new InvalidOperationException("The stream has already ended.");
        }

        if (!_schemaWritten)
        {
            WriteSchema();
        }

        if (batch.Columns.Count != Schema.Fields.Count)
        {
            throw new ArgumentException("The record batch does not match the writer's schema.", nameof(batch));
        }

        _nodes.Clear();
        _buffers.Clear();
        foreach (var column in batch.Columns)
        {
            Collect(column);
        }

        long bodyLength = 0;
        foreach (var (_, length) in _buffers)
        {
            bodyLength += Align8(length);
        }

        _builder.Reset();
        _builder.StartInt64PairVector(_buffers.Count);
        long offset = bodyLength;
        for (int i = _buffers.Count - 1; i >= 0; i--)
        {
            offset -= Align8(_buffers[i].Length);
            _builder.PushInt64Pair(offset, _buffers[i].Length);
        }

        int buffers = _builder.EndVector();
        _builder.StartInt64PairVector(_nodes.Count);
        for (int i = _nodes.Count - 1; i >= 0; i--)
        {
            _builder.PushInt64Pair(_nodes[i].Length, _nodes[i].NullCount);
        }

        int nodes = _builder.EndVector();
        _builder.StartTable(4);
        _builder.AddInt64(IpcMetadata.BatchLength, batch.Length);
        _builder.AddOffset(IpcMetadata.BatchNodes, nodes);
        _builder.AddOffset(IpcMetadata.BatchBuffers, buffers);
        int header = _builder.EndTable();
        int root = IpcMetadata.EncodeMessage(_builder, IpcMetadata.HeaderRecordBatch, header, bodyLength);
        WriteMetadata(_builder.Finish(root));

        foreach (var (data, length) in _buffers)
        {
            WriteBuffer(data.Span, length);
        }

        _nodes.Clear();
        _buffers.Clear();
    }

    /// <summary>Writes the end-of-stream marker. No further writes are allowed.</summary>
    public void WriteEnd()
    {
        if (_finished)
        {
            return;
        }

        if (!_schemaWritten)
        {
            WriteSchema();
        }

        Span<byte> eos = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(eos, 0xFFFFFFFF);
        BinaryPrimitives.WriteInt32LittleEndian(eos[4..], 0);
        Write(eos);
        _finished = true;
    }

    /// <summary>An upper bound of the framed record batch metadata size for the given node and buffer counts.</summary>
    internal static int RecordBatchMetadataUpperBound(int nodeCount, int bufferCount) =>
        160 + (16 * (nodeCount + bufferCount));

    /// <summary>Counts the field nodes and buffers a record batch of <paramref name="schema"/> has.</summary>
    internal static (int Nodes, int Buffers) CountLayout(ArrowSchema schema)
    {
        int nodes = 0, buffers = 0;
        void Visit(ArrowField field)
        {
            nodes++;
            buffers += field.Type switch
            {
                NullType => 0,
                BinaryType or Utf8Type or LargeBinaryType or LargeUtf8Type => 3,
                FixedSizeListType or StructType => 1,
                _ => 2,
            };
            foreach (var child in field.Children)
            {
                Visit(child);
            }
        }

        foreach (var field in schema.Fields)
        {
            Visit(field);
        }

        return (nodes, buffers);
    }

    internal static long Align8(long n) => (n + 7) & ~7L;

    private void Collect(ArrowArray array)
    {
        int length = array.Length;
        _nodes.Add((length, array.NullCount));
        if (array.Type is NullType)
        {
            return;
        }

        _buffers.Add((array.Validity, array.NullCount == 0 ? 0 : BitmapBytes(length)));
        switch (array.Type)
        {
            case BooleanType:
                _buffers.Add((array.Buffers[0], BitmapBytes(length)));
                break;
            case BinaryType or Utf8Type:
                _buffers.Add((array.Buffers[0], 4L * (length + 1)));
                _buffers.Add((array.Buffers[1], ((BinaryArrayBase)array).GetOffsetOrZero(length)));
                break;
            case LargeBinaryType or LargeUtf8Type:
                _buffers.Add((array.Buffers[0], 8L * (length + 1)));
                _buffers.Add((array.Buffers[1], length == 0 || array.Buffers[0].Length == 0 ? 0 : ((LargeBinaryArrayBase)array).GetOffset(length)));
                break;
            case ListType or MapType:
                _buffers.Add((array.Buffers[0], 4L * (length + 1)));
                Collect(array.ChildArrays[0]);
                break;
            case LargeListType:
                _buffers.Add((array.Buffers[0], 8L * (length + 1)));
                Collect(array.ChildArrays[0]);
                break;
            case FixedSizeListType or StructType:
                foreach (var child in array.ChildArrays)
                {
                    Collect(child);
                }

                break;
            default:
                _buffers.Add((array.Buffers[0], (long)length * FixedByteWidth(array.Type)));
                break;
        }
    }

    internal static long BitmapBytes(int length) => ((long)length + 7) / 8;

    /// <summary>Byte width of a fixed-width type's data buffer values.</summary>
    internal static int FixedByteWidth(ArrowType type) => type switch
    {
        IntType t => t.BitWidth / 8,
        FloatingPointType t => t.BitWidth / 8,
        DecimalType t => t.BitWidth / 8,
        DateType { Unit: DateUnit.Day } => 4,
        DateType => 8,
        TimeType t => t.BitWidth / 8,
        TimestampType or DurationType => 8,
        IntervalType { Unit: IntervalUnit.YearMonth } => 4,
        IntervalType { Unit: IntervalUnit.DayTime } => 8,
        IntervalType => 16,
        FixedSizeBinaryType t => t.ByteWidth,
        _ => throw new NotSupportedException($"Arrow type {type} is not fixed-width."),
    };

    private void WriteMetadata(ReadOnlySpan<byte> flatbuffer)
    {
        int padded = (int)Align8(flatbuffer.Length);
        var span = _output.GetSpan(8 + padded);
        BinaryPrimitives.WriteUInt32LittleEndian(span, 0xFFFFFFFF);
        BinaryPrimitives.WriteInt32LittleEndian(span[4..], padded);
        flatbuffer.CopyTo(span[8..]);
        span.Slice(8 + flatbuffer.Length, padded - flatbuffer.Length).Clear();
        _output.Advance(8 + padded);
        BytesWritten += 8 + padded;
    }

    /// <summary>Writes <paramref name="length"/> bytes of <paramref name="data"/> (zero-filled past its end) plus padding to 8.</summary>
    private void WriteBuffer(ReadOnlySpan<byte> data, long length)
    {
        long remaining = length;
        var source = data[..(int)Math.Min(data.Length, length)];
        while (!source.IsEmpty)
        {
            var span = _output.GetSpan(Math.Min(source.Length, 1 << 20));
            int n = Math.Min(span.Length, source.Length);
            source[..n].CopyTo(span);
            _output.Advance(n);
            source = source[n..];
            remaining -= n;
        }

        long zeros = remaining + (Align8(length) - length);
        while (zeros > 0)
        {
            int n = (int)Math.Min(zeros, ZeroPadding.Length);
            Write(ZeroPadding.AsSpan(0, n));
            zeros -= n;
            BytesWritten -= n; // counted below together with the data
        }

        BytesWritten += Align8(length);
    }

    private void Write(ReadOnlySpan<byte> bytes)
    {
        var span = _output.GetSpan(bytes.Length);
        bytes.CopyTo(span);
        _output.Advance(bytes.Length);
        BytesWritten += bytes.Length;
    }
}
