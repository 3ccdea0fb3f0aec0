using System.Buffers.Binary;
using WalBridge.Serialization.Arrow;
using WalBridge.Serialization.Flatbuffers;

namespace WalBridge.Serialization.Ipc;

/// <summary>A fully read Arrow IPC stream.</summary>
public sealed class ArrowStream
{
    internal ArrowStream(ArrowSchema schema, IReadOnlyList<RecordBatch> batches)
    {
        Schema = schema;
        Batches = batches;
    }

    public ArrowSchema Schema { get; }
    public IReadOnlyList<RecordBatch> Batches { get; }
}

/// <summary>
/// Reads a complete Arrow IPC stream held in memory (for example one Kafka record value).
/// </summary>
/// <remarks>
/// <para>Accepts metadata versions V4 and V5, little-endian, uncompressed, with (non-delta) dictionaries; both the
/// continuation-marker framing and the legacy pre-0.15 framing. The stream must end with an end-of-stream
/// marker and nothing may follow it.</para>
/// <para>Every length and offset is checked before it is used (FlatBuffers references, buffer ranges,
/// value offsets, child lengths). Malformed input or unsupported features throw
/// <see cref="ArrowFormatException"/>, never another exception type. Reading is linear in the input size.</para>
/// <para>The arrays of the result are zero-copy views of <c>stream</c>; keep that memory unchanged while using them.
/// Requires a little-endian host. The bytes of utf8 values are not validated as UTF-8 (structure is; string
/// accessors replace invalid sequences with U+FFFD).</para>
/// </remarks>
public static class ArrowStreamReader
{
    private static readonly ReadOnlyMemory<byte> ZeroOffsets = new byte[8];

    public static ArrowStream Read(ReadOnlyMemory<byte> stream)
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("The Arrow reader requires a little-endian host.");
        }

        try
        {
            return ReadCore(stream);
        }
        catch (ArrowFormatException)
        {
            throw;
        }
        catch (Exception e) when (e is ArgumentException or IndexOutOfRangeException or OverflowException or InvalidCastException or NotSupportedException or InvalidOperationException)
        {
            // Defence in depth: any check we missed still surfaces as a format error.
            throw new ArrowFormatException($"Malformed Arrow stream: {e.Message}", e);
        }
    }

    private static ArrowStream ReadCore(ReadOnlyMemory<byte> stream)
    {
        ArrowSchema? schema = null;
        var batches = new List<RecordBatch>();
        var dictionaryFields = new Dictionary<long, ArrowField>();
        var dictionaries = new Dictionary<long, ArrowArray>();
        int position = 0;
        while (true)
        {
            var span = stream.Span;
            if (position == span.Length)
            {
                throw new ArrowFormatException($"The stream ends at byte {position} without an end-of-stream marker.");
            }

            if (span.Length - position < 4)
            {
                throw new ArrowFormatException($"Truncated message prefix at byte {position}.");
            }

            int metadataLength = BinaryPrimitives.ReadInt32LittleEndian(span[position..]);
            int messageStart = position;
            position += 4;
            if (metadataLength == -1)
            {
                if (span.Length - position < 4)
                {
                    throw new ArrowFormatException($"Truncated message length at byte {position}.");
                }

                metadataLength = BinaryPrimitives.ReadInt32LittleEndian(span[position..]);
                position += 4;
            }

            if (metadataLength == 0)
            {
                if (schema is null)
                {
                    throw new ArrowFormatException("The stream ends before a schema message.");
                }

                if (position != span.Length)
                {
                    throw new ArrowFormatException($"{span.Length - position} unexpected byte(s) after the end-of-stream marker at byte {messageStart}.");
                }

                return new ArrowStream(schema, batches);
            }

            if (metadataLength < 0 || metadataLength > span.Length - position)
            {
                throw new ArrowFormatException($"Message at byte {messageStart} declares {metadataLength} metadata bytes but {span.Length - position} remain.");
            }

            var metadata = stream.Slice(position, metadataLength);
            position += metadataLength;
            var message = FbTable.Root(metadata);
            short version = message.GetInt16(IpcMetadata.MessageVersion, 0);
            if (version > IpcMetadata.MetadataVersionV5 || version < 0)
            {
                throw new ArrowFormatException($"Message at byte {messageStart} has unknown metadata version {version}.");
            }

            if (version < IpcMetadata.MetadataVersionV4)
            {
                throw new ArrowFormatException($"unsupported: message at byte {messageStart} has metadata version V{version + 1}; only V4 and V5 are supported.");
            }

            long bodyLength = message.GetInt64(IpcMetadata.MessageBodyLength, 0);
            if (bodyLength < 0 || bodyLength > span.Length - position)
            {
                throw new ArrowFormatException($"Message at byte {messageStart} declares a {bodyLength}-byte body but {span.Length - position} bytes remain.");
            }

            var body = stream.Slice(position, (int)bodyLength);
            position += (int)bodyLength;
            byte headerType = message.GetByte(IpcMetadata.MessageHeaderType, 0);
            var header = message.GetTable(IpcMetadata.MessageHeader)
                ?? throw new ArrowFormatException($"Message at byte {messageStart} has no header.");
            switch (headerType)
            {
                case IpcMetadata.HeaderSchema:
                    if (schema is not null)
                    {
                        throw new ArrowFormatException($"Second schema message at byte {messageStart}.");
                    }

                    schema = IpcMetadata.DecodeSchema(header);
                    CollectDictionaryFields(schema.Fields, dictionaryFields);
                    break;
                case IpcMetadata.HeaderRecordBatch:
                    if (schema is null)
                    {
                        throw new ArrowFormatException($"Record batch at byte {messageStart} precedes the schema message.");
                    }

                    batches.Add(ReadRecordBatch(schema, header, body, messageStart, dictionaries));
                    break;
                case IpcMetadata.HeaderDictionaryBatch:
                {
                    if (schema is null)
                    {
                        throw new ArrowFormatException($"Dictionary batch at byte {messageStart} precedes the schema message.");
                    }

                    long id = header.GetInt64(0, 0);
                    if (header.GetBool(2, false))
                    {
                        throw new ArrowFormatException($"unsupported: dictionary batch at byte {messageStart} is a delta; delta dictionaries are unsupported.");
                    }

                    if (!dictionaryFields.TryGetValue(id, out var field))
                    {
                        throw new ArrowFormatException($"Dictionary batch at byte {messageStart} has id {id}, which no field of the schema uses.");
                    }

                    var data = header.GetTable(1) ?? throw new ArrowFormatException($"Dictionary batch at byte {messageStart} has no data.");
                    var valueField = new ArrowField(field.Name, field.Type, nullable: true, field.Children, field.Metadata);
                    var dictionarySchema = new ArrowSchema([valueField]);
                    var batch = ReadRecordBatch(dictionarySchema, data, body, messageStart, dictionaries);
                    dictionaries[id] = batch.Columns[0];
                    break;
                }

                default:
                    throw new ArrowFormatException($"unsupported: message at byte {messageStart} has header type {headerType}.");
            }
        }
    }

    private sealed class BatchContext
    {
        public required FbTable.FbVector Nodes;
        public required FbTable.FbVector Buffers;
        public required ReadOnlyMemory<byte> Body;
        public required int MessageStart;
        public required Dictionary<long, ArrowArray> Dictionaries;
        public int NextNode;
        public int NextBuffer;
    }

    private static void CollectDictionaryFields(IReadOnlyList<ArrowField> fields, Dictionary<long, ArrowField> result)
    {
        foreach (var field in fields)
        {
            if (field.Dictionary is { } encoding && !result.TryAdd(encoding.Id, field) && result[encoding.Id].Type != field.Type)
            {
                throw new ArrowFormatException($"Dictionary id {encoding.Id} is used by fields of different types ({result[encoding.Id].Type}, {field.Type}).");
            }

            CollectDictionaryFields(field.Children, result);
        }
    }

    private static RecordBatch ReadRecordBatch(ArrowSchema schema, FbTable header, ReadOnlyMemory<byte> body, int messageStart, Dictionary<long, ArrowArray> dictionaries)
    {
        if (header.Has(IpcMetadata.BatchCompression))
        {
            throw new ArrowFormatException($"unsupported: record batch at byte {messageStart} is compressed; body compression is unsupported.");
        }

        long length = header.GetInt64(IpcMetadata.BatchLength, 0);
        if (length < 0 || length > int.MaxValue)
        {
            throw new ArrowFormatException($"Record batch at byte {messageStart} has invalid length {length}.");
        }

        var context = new BatchContext
        {
            Nodes = header.GetVector(IpcMetadata.BatchNodes, 16),
            Buffers = header.GetVector(IpcMetadata.BatchBuffers, 16),
            Body = body,
            MessageStart = messageStart,
            Dictionaries = dictionaries,
        };
        var columns = new ArrowArray[schema.Fields.Count];
        for (int i = 0; i < columns.Length; i++)
        {
            columns[i] = ReadArray(schema.Fields[i], context);
            if (columns[i].Length != length)
            {
                throw new ArrowFormatException($"Column '{schema.Fields[i].Name}' has length {columns[i].Length} but the record batch at byte {messageStart} has length {length}.");
            }
        }

        return new RecordBatch(schema, (int)length, columns);
    }

    private static ReadOnlyMemory<byte> NextBuffer(BatchContext c, ArrowField field)
    {
        if (c.NextBuffer >= c.Buffers.Length)
        {
            throw new ArrowFormatException($"Record batch at byte {c.MessageStart} has too few buffers (column '{field.Name}').");
        }

        int i = c.NextBuffer++;
        long offset = c.Buffers.GetInt64(i, 0);
        long length = c.Buffers.GetInt64(i, 8);
        if (offset < 0 || length < 0 || offset > c.Body.Length || length > c.Body.Length - offset)
        {
            throw new ArrowFormatException($"Buffer {i} (offset {offset}, length {length}) of column '{field.Name}' lies outside the {c.Body.Length}-byte body of the record batch at byte {c.MessageStart}.");
        }

        return c.Body.Slice((int)offset, (int)length);
    }

    private static void Require(bool condition, BatchContext c, ArrowField field, string what)
    {
        if (!condition)
        {
            throw new ArrowFormatException($"Column '{field.Name}' ({field.Type}) in the record batch at byte {c.MessageStart}: {what}.");
        }
    }

    private static ArrowArray ReadArray(ArrowField field, BatchContext c)
    {
        if (c.NextNode >= c.Nodes.Length)
        {
            throw new ArrowFormatException($"Record batch at byte {c.MessageStart} has too few field nodes (column '{field.Name}').");
        }

        long nodeLength = c.Nodes.GetInt64(c.NextNode, 0);
        long nodeNulls = c.Nodes.GetInt64(c.NextNode, 8);
        c.NextNode++;
        Require(nodeLength >= 0 && nodeLength <= int.MaxValue, c, field, $"invalid length {nodeLength}");
        Require(nodeNulls >= 0 && nodeNulls <= nodeLength, c, field, $"invalid null count {nodeNulls} for length {nodeLength}");
        int length = (int)nodeLength;
        int nullCount = (int)nodeNulls;
        if (field.Dictionary is { } encoding)
        {
            return ReadDictionaryIndices(field, encoding, length, nullCount, c);
        }

        if (field.Type is NullType)
        {
            return ArrowArray.Create(field, length, length, default, [], []);
        }

        var validity = NextBuffer(c, field);
        if (nullCount == 0)
        {
            validity = ReadOnlyMemory<byte>.Empty;
        }
        else
        {
            Require(validity.Length >= ArrowStreamWriter.BitmapBytes(length), c, field, $"validity bitmap has {validity.Length} bytes, needs {ArrowStreamWriter.BitmapBytes(length)}");
        }

        ReadOnlyMemory<byte>[] buffers;
        ArrowArray[] children = [];
        switch (field.Type)
        {
            case BooleanType:
            {
                var data = NextBuffer(c, field);
                Require(data.Length >= ArrowStreamWriter.BitmapBytes(length), c, field, "value bitmap too short");
                buffers = [data];
                break;
            }

            case BinaryType or Utf8Type:
            {
                var offsets = ReadOffsets(c, field, length, 4);
                var data = NextBuffer(c, field);
                CheckOffsets(offsets.Span, length, 4, data.Length, c, field);
                buffers = [offsets, data];
                break;
            }

            case LargeBinaryType or LargeUtf8Type:
            {
                var offsets = ReadOffsets(c, field, length, 8);
                var data = NextBuffer(c, field);
                CheckOffsets(offsets.Span, length, 8, data.Length, c, field);
                buffers = [offsets, data];
                break;
            }

            case ListType or MapType or LargeListType:
            {
                int width = field.Type is LargeListType ? 8 : 4;
                var offsets = ReadOffsets(c, field, length, width);
                var child = ReadArray(field.Children[0], c);
                CheckOffsets(offsets.Span, length, width, child.Length, c, field);
                if (field.Type is MapType)
                {
                    Require(child is StructArray { ChildArrays.Length: 2 }, c, field, "map entries must be a struct of key and value");
                }

                buffers = [offsets];
                children = [child];
                break;
            }

            case FixedSizeListType fsl:
            {
                var child = ReadArray(field.Children[0], c);
                Require(child.Length >= (long)length * fsl.ListSize, c, field, $"child has {child.Length} values, needs {(long)length * fsl.ListSize}");
                buffers = [];
                children = [child];
                break;
            }

            case StructType:
            {
                children = new ArrowArray[field.Children.Count];
                for (int i = 0; i < children.Length; i++)
                {
                    children[i] = ReadArray(field.Children[i], c);
                    Require(children[i].Length >= length, c, field, $"member '{field.Children[i].Name}' has length {children[i].Length}, less than {length}");
                }

                buffers = [];
                break;
            }

            default:
            {
                int width;
                try
                {
                    width = ArrowStreamWriter.FixedByteWidth(field.Type);
                }
                catch (NotSupportedException)
                {
                    throw new ArrowFormatException($"unsupported: column '{field.Name}' has type {field.Type}, which is unsupported.");
                }

                var data = NextBuffer(c, field);
                Require(data.Length >= (long)length * width, c, field, $"data buffer has {data.Length} bytes, needs {(long)length * width}");
                buffers = [data];
                break;
            }
        }

        return ArrowArray.Create(field, length, nullCount, validity, buffers, children);
    }

    private static DictionaryArray ReadDictionaryIndices(ArrowField field, DictionaryEncoding encoding, int length, int nullCount, BatchContext c)
    {
        if (!c.Dictionaries.TryGetValue(encoding.Id, out var dictionary))
        {
            throw new ArrowFormatException($"Column '{field.Name}' in the record batch at byte {c.MessageStart} uses dictionary {encoding.Id}, which no earlier dictionary batch defined.");
        }

        var validity = NextBuffer(c, field);
        if (nullCount == 0)
        {
            validity = ReadOnlyMemory<byte>.Empty;
        }
        else
        {
            Require(validity.Length >= ArrowStreamWriter.BitmapBytes(length), c, field, "validity bitmap too short");
        }

        int width = encoding.IndexType.BitWidth / 8;
        var data = NextBuffer(c, field);
        Require(data.Length >= (long)length * width, c, field, $"index buffer has {data.Length} bytes, needs {(long)length * width}");
        var indexField = new ArrowField(field.Name, encoding.IndexType, field.Nullable);
        var indices = ArrowArray.Create(indexField, length, nullCount, validity, [data], []);
        var result = new DictionaryArray(field, indices, dictionary);
        for (int i = 0; i < length; i++)
        {
            if (indices.IsValid(i))
            {
                long index = result.GetIndex(i);
                Require(index >= 0 && index < dictionary.Length, c, field, $"dictionary index {index} at slot {i} is outside the {dictionary.Length}-value dictionary {encoding.Id}");
            }
        }

        return result;
    }

    private static ReadOnlyMemory<byte> ReadOffsets(BatchContext c, ArrowField field, int length, int width)
    {
        var offsets = NextBuffer(c, field);
        if (length == 0 && offsets.Length < width)
        {
            return ZeroOffsets[..width]; // some writers omit the single offset of an empty array
        }

        Require(offsets.Length >= ((long)length + 1) * width, c, field, $"offsets buffer has {offsets.Length} bytes, needs {((long)length + 1) * width}");
        return offsets;
    }

    private static void CheckOffsets(ReadOnlySpan<byte> offsets, int length, int width, int limit, BatchContext c, ArrowField field)
    {
        long previous = Read(offsets, 0, width);
        Require(previous >= 0 && previous <= limit, c, field, $"first offset {previous} is outside 0..{limit}");
        for (int i = 1; i <= length; i++)
        {
            long next = Read(offsets, i, width);
            if (next < previous || next > limit)
            {
                throw new ArrowFormatException($"Column '{field.Name}' ({field.Type}) in the record batch at byte {c.MessageStart}: offset {i} is {next}, outside {previous}..{limit}.");
            }

            previous = next;
        }

        static long Read(ReadOnlySpan<byte> s, int i, int w) =>
            w == 4 ? BinaryPrimitives.ReadInt32LittleEndian(s[(i * 4)..]) : BinaryPrimitives.ReadInt64LittleEndian(s[(i * 8)..]);
    }
}
