using Apache.Arrow;
using Apache.Arrow.Ipc;

namespace WalBridge.Serialization.Payload;

/// <summary>
/// One Kafka record value read with Apache.Arrow's <see cref="ArrowStreamReader"/>: the schema and the record batches of
/// the Arrow IPC stream. <c>arrow.uuid</c> columns are read as Apache.Arrow's <see cref="GuidArray"/> (the extension is
/// registered in <see cref="Context"/>); every other column has its plain Arrow type (<c>arrow.json</c> stays a
/// <c>StringArray</c> whose field carries the extension metadata). Compressed bodies (LZ4_FRAME, ZSTD: the
/// <c>arrow.compression</c> setting) are decompressed.
/// </summary>
/// <remarks>The arrays of uncompressed batches are zero-copy views of the value: keep that memory unchanged while using
/// them (those of compressed batches are decompressed copies).</remarks>
public sealed class ArrowPayload
{
    private ArrowPayload(Schema schema, IReadOnlyList<RecordBatch> batches)
    {
        Schema = schema;
        Batches = batches;
    }

    /// <summary>Apache.Arrow's reading context for payloads: the default allocator, the LZ4_FRAME and ZSTD codecs, <c>arrow.uuid</c> registered.</summary>
    public static ArrowContext Context { get; } = CreateContext();

    public Schema Schema { get; }

    public IReadOnlyList<RecordBatch> Batches { get; }

    /// <summary>Total rows of all batches.</summary>
    public int RowCount => Batches.Sum(b => b.Length);

    /// <summary>
    /// Reads a whole stream. A value that is not an Arrow IPC stream (no schema message, a truncated message, no
    /// end-of-stream marker, anything Apache.Arrow's reader rejects) throws <see cref="ArrowPayloadException"/>.
    /// </summary>
    public static ArrowPayload Read(ReadOnlyMemory<byte> stream)
    {
        if (stream.Length < ArrowMessageWriter.EndOfStream.Length + 8)
        {
            throw new ArrowPayloadException($"not an Arrow IPC stream: {stream.Length} bytes are too few for a schema message and the end-of-stream marker");
        }

        if (!stream.Span.EndsWith(ArrowMessageWriter.EndOfStream))
        {
            throw new ArrowPayloadException($"not a complete Arrow IPC stream: the {stream.Length} bytes do not end with the end-of-stream marker");
        }

        try
        {
            using var reader = new ArrowStreamReader(Context, stream);
            var schema = reader.Schema ?? throw new ArrowPayloadException("not an Arrow IPC stream: no schema message");
            var batches = new List<RecordBatch>(1);
            while (reader.ReadNextRecordBatch() is { } batch)
            {
                batches.Add(batch);
            }

            return new ArrowPayload(schema, batches);
        }
        catch (Exception e) when (e is not (ArrowPayloadException or OutOfMemoryException))
        {
            throw new ArrowPayloadException($"not a valid Arrow IPC stream ({stream.Length} bytes): {e.GetType().Name}: {e.Message}", e);
        }
    }

    private static ArrowContext CreateContext()
    {
        var registry = new ExtensionTypeRegistry();
        registry.Register(GuidExtensionDefinition.Instance);
        return new ArrowContext(compressionCodecFactory: ArrowCompressions.CodecFactory, extensionRegistry: registry);
    }
}

/// <summary>A Kafka record value that is not the Arrow IPC stream it should be.</summary>
public sealed class ArrowPayloadException : Exception
{
    public ArrowPayloadException()
    {
    }

    public ArrowPayloadException(string message)
        : base(message)
    {
    }

    public ArrowPayloadException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
