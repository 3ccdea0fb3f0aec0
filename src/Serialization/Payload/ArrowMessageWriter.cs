using System.Buffers;
using Apache.Arrow;
using Apache.Arrow.Ipc;

namespace WalBridge.Serialization.Payload;

/// <summary>
/// The encoded Arrow IPC messages of one schema, all produced by Apache.Arrow's writer: the schema message
/// (<see cref="SchemaMessage"/>), record batch messages without the schema (<see cref="WriteRecordBatch"/>) and the
/// end-of-stream marker (<see cref="EndOfStream"/>).
/// </summary>
/// <remarks>
/// <para>The schema message, any number of record batch messages and the end-of-stream marker concatenated in this order
/// are a valid Arrow IPC stream (metadata V5, no dictionaries), whichever writer instance or process encoded each batch
/// of the same schema: a stream can be assembled from pieces without re-encoding them. A whole stream is
/// <see cref="WriteStream"/>. With <see cref="ArrowCompression"/> other than none the batch bodies are compressed (each
/// batch message says so itself, so such batches may be mixed with uncompressed ones); the schema message is the same.</para>
/// <para>Not thread-safe. Batches are written straight into the caller's <see cref="IBufferWriter{T}"/>; the writer keeps
/// nothing of them.</para>
/// </remarks>
public sealed class ArrowMessageWriter : IDisposable
{
    private static readonly byte[] EndOfStreamBytes = EncodeEndOfStream();

    private readonly BufferWriterStream _stream = new();
    private readonly BatchWriter _writer;
    private readonly byte[] _schemaMessage;

    /// <param name="schema">The schema of every batch.</param>
    /// <param name="compression">Body compression of the record batches this writer encodes.</param>
    public ArrowMessageWriter(Schema schema, ArrowCompression compression = ArrowCompression.None)
    {
        ArgumentNullException.ThrowIfNull(schema);
        Schema = schema;
        Compression = compression;
        _schemaMessage = ArrowSerializationHelpers.SerializeSchema(schema);
        _writer = new BatchWriter(_stream, schema, ArrowCompressions.WriterOptions(compression));
    }

    public Schema Schema { get; }

    /// <summary>Body compression of the record batches this writer encodes.</summary>
    public ArrowCompression Compression { get; }

    /// <summary>The framed schema message (continuation marker, metadata length, flatbuffer, padding), encoded once.</summary>
    public ReadOnlyMemory<byte> SchemaMessage => _schemaMessage;

    /// <summary>The end-of-stream marker as Apache.Arrow writes it: <c>0xFFFFFFFF 0x00000000</c>.</summary>
    public static ReadOnlySpan<byte> EndOfStream => EndOfStreamBytes;

    /// <summary>
    /// Writes <paramref name="batch"/> (of <see cref="Schema"/>) as one framed record batch message: continuation marker,
    /// metadata length, flatbuffer metadata, body. Returns the number of bytes written.
    /// </summary>
    public int WriteRecordBatch(IBufferWriter<byte> output, RecordBatch batch)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(batch);
        _stream.Target = output;
        try
        {
            _writer.WriteRecordBatch(batch);
            return checked((int)_stream.BytesWritten);
        }
        finally
        {
            _stream.Target = null;
        }
    }

    /// <summary>Writes a whole stream: <see cref="SchemaMessage"/>, <paramref name="batch"/>, <see cref="EndOfStream"/>. Returns the bytes written.</summary>
    public int WriteStream(IBufferWriter<byte> output, RecordBatch batch)
    {
        ArgumentNullException.ThrowIfNull(output);
        output.Write(_schemaMessage);
        var batchBytes = WriteRecordBatch(output, batch);
        output.Write(EndOfStreamBytes);
        return _schemaMessage.Length + batchBytes + EndOfStreamBytes.Length;
    }

    public void Dispose() => _writer.Dispose();

    private static byte[] EncodeEndOfStream()
    {
        var buffer = new ArrayBufferWriter<byte>(8);
        using var stream = new BufferWriterStream { Target = buffer };
        using var writer = new BatchWriter(stream, new Schema([], null), options: null);
        writer.WriteEnd();
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Apache.Arrow's stream writer with the schema marked as already written: it writes batch messages only.</summary>
    private sealed class BatchWriter : ArrowStreamWriter
    {
        public BatchWriter(Stream stream, Schema schema, IpcOptions? options)
            : base(stream, schema, leaveOpen: true, options)
        {
            HasWrittenSchema = true;
        }
    }
}
