using WalBridge.Serialization.Arrow;
using WalBridge.Serialization.Flatbuffers;

namespace WalBridge.Serialization.Ipc;

/// <summary>Field numbers and encoders for the Arrow IPC FlatBuffers tables (Schema.fbs, Message.fbs).</summary>
internal static class IpcMetadata
{
    public const short MetadataVersionV4 = 3;
    public const short MetadataVersionV5 = 4;

    public const byte HeaderSchema = 1;
    public const byte HeaderDictionaryBatch = 2;
    public const byte HeaderRecordBatch = 3;

    // Message
    public const int MessageVersion = 0;
    public const int MessageHeaderType = 1;
    public const int MessageHeader = 2;
    public const int MessageBodyLength = 3;
    public const int MessageCustomMetadata = 4;

    // Schema
    public const int SchemaEndianness = 0;
    public const int SchemaFields = 1;
    public const int SchemaCustomMetadata = 2;

    // Field
    public const int FieldName = 0;
    public const int FieldNullable = 1;
    public const int FieldTypeType = 2;
    public const int FieldType = 3;
    public const int FieldDictionary = 4;
    public const int FieldChildren = 5;
    public const int FieldCustomMetadata = 6;

    // RecordBatch
    public const int BatchLength = 0;
    public const int BatchNodes = 1;
    public const int BatchBuffers = 2;
    public const int BatchCompression = 3;

    /// <summary>Encodes a Message holding <paramref name="schema"/>; returns the root offset for <see cref="FlatBufferBuilder.Finish"/>.</summary>
    public static int EncodeSchemaMessage(FlatBufferBuilder b, ArrowSchema schema)
    {
        var fieldOffsets = new int[schema.Fields.Count];
        for (int i = 0; i < fieldOffsets.Length; i++)
        {
            fieldOffsets[i] = EncodeField(b, schema.Fields[i]);
        }

        int fields = b.CreateOffsetVector(fieldOffsets);
        int metadata = EncodeMetadata(b, schema.Metadata);
        b.StartTable(4);
        b.AddInt16(SchemaEndianness, 0);
        b.AddOffset(SchemaFields, fields);
        b.AddOffset(SchemaCustomMetadata, metadata);
        int schemaTable = b.EndTable();
        return EncodeMessage(b, HeaderSchema, schemaTable, 0);
    }

    public static int EncodeMessage(FlatBufferBuilder b, byte headerType, int header, long bodyLength)
    {
        b.StartTable(5);
        b.AddInt64(MessageBodyLength, bodyLength);
        b.AddOffset(MessageHeader, header);
        b.AddInt16(MessageVersion, MetadataVersionV5);
        b.AddByte(MessageHeaderType, headerType);
        return b.EndTable();
    }

    private static int EncodeMetadata(FlatBufferBuilder b, IReadOnlyList<KeyValuePair<string, string>> metadata)
    {
        if (metadata.Count == 0)
        {
            return 0;
        }

        var entries = new int[metadata.Count];
        for (int i = 0; i < entries.Length; i++)
        {
            int key = b.CreateString(metadata[i].Key);
            int value = b.CreateString(metadata[i].Value);
            b.StartTable(2);
            b.AddOffset(0, key);
            b.AddOffset(1, value);
            entries[i] = b.EndTable();
        }

        return b.CreateOffsetVector(entries);
    }

    private static int EncodeField(FlatBufferBuilder b, ArrowField field)
    {
        if (field.Dictionary is not null)
        {
            throw new NotSupportedException($"Field '{field.Name}' is dictionary-encoded; the writer does not write dictionaries.");
        }

        int name = b.CreateString(field.Name);
        int type = EncodeType(b, field.Type);
        var childOffsets = new int[field.Children.Count];
        for (int i = 0; i < childOffsets.Length; i++)
        {
            childOffsets[i] = EncodeField(b, field.Children[i]);
        }

        int children = b.CreateOffsetVector(childOffsets);
        int metadata = EncodeMetadata(b, field.Metadata);
        b.StartTable(7);
        b.AddOffset(FieldName, name);
        b.AddOffset(FieldType, type);
        b.AddOffset(FieldChildren, children);
        b.AddOffset(FieldCustomMetadata, metadata);
        b.AddBool(FieldNullable, field.Nullable);
        b.AddByte(FieldTypeType, (byte)field.Type.Id);
        return b.EndTable();
    }

    private static int EncodeType(FlatBufferBuilder b, ArrowType type)
    {
        switch (type)
        {
            case IntType t:
                b.StartTable(2);
                b.AddInt32(0, t.BitWidth);
                b.AddBool(1, t.IsSigned);
                return b.EndTable();
            case FloatingPointType t:
                b.StartTable(1);
                b.AddInt16(0, (short)t.Precision);
                return b.EndTable();
            case DecimalType t:
                b.StartTable(3);
                b.AddInt32(0, t.Precision);
                b.AddInt32(1, t.Scale);
                b.AddInt32(2, t.BitWidth);
                return b.EndTable();
            case DateType t:
                b.StartTable(1);
                b.AddInt16(0, (short)t.Unit);
                return b.EndTable();
            case TimeType t:
                b.StartTable(2);
                b.AddInt16(0, (short)t.Unit);
                b.AddInt32(1, t.BitWidth);
                return b.EndTable();
            case TimestampType t:
                int tz = t.Timezone is null ? 0 : b.CreateString(t.Timezone);
                b.StartTable(2);
                b.AddOffset(1, tz);
                b.AddInt16(0, (short)t.Unit);
                return b.EndTable();
            case IntervalType t:
                b.StartTable(1);
                b.AddInt16(0, (short)t.Unit);
                return b.EndTable();
            case DurationType t:
                b.StartTable(1);
                b.AddInt16(0, (short)t.Unit);
                return b.EndTable();
            case FixedSizeBinaryType t:
                b.StartTable(1);
                b.AddInt32(0, t.ByteWidth);
                return b.EndTable();
            case FixedSizeListType t:
                b.StartTable(1);
                b.AddInt32(0, t.ListSize);
                return b.EndTable();
            case MapType t:
                b.StartTable(1);
                b.AddBool(0, t.KeysSorted);
                return b.EndTable();
            case NullType or BooleanType or BinaryType or Utf8Type or LargeBinaryType or LargeUtf8Type
                or ListType or LargeListType or StructType:
                b.StartTable(0);
                return b.EndTable();
            default:
                throw new NotSupportedException($"Arrow type {type} is unsupported by the writer.");
        }
    }

    /// <summary>Decodes a Schema table. Throws <see cref="ArrowFormatException"/> on malformed or unsupported content.</summary>
    public static ArrowSchema DecodeSchema(FbTable schema)
    {
        if (schema.GetInt16(SchemaEndianness, 0) != 0)
        {
            throw new ArrowFormatException("unsupported: big-endian Arrow streams are not supported.");
        }

        var fieldsVector = schema.GetVector(SchemaFields, 4);
        var fields = new ArrowField[fieldsVector.Length];
        for (int i = 0; i < fields.Length; i++)
        {
            fields[i] = DecodeField(fieldsVector.GetTable(i), 0);
        }

        return new ArrowSchema(fields, DecodeMetadata(schema, SchemaCustomMetadata));
    }

    private static KeyValuePair<string, string>[] DecodeMetadata(FbTable table, int field)
    {
        var vector = table.GetVector(field, 4);
        var result = new KeyValuePair<string, string>[vector.Length];
        for (int i = 0; i < result.Length; i++)
        {
            var kv = vector.GetTable(i);
            result[i] = new(kv.GetString(0) ?? "", kv.GetString(1) ?? "");
        }

        return result;
    }

    private const int MaxNesting = 64;

    private static ArrowField DecodeField(FbTable field, int depth)
    {
        if (depth > MaxNesting)
        {
            throw new ArrowFormatException($"Field nesting is deeper than {MaxNesting} levels.");
        }

        string name = field.GetString(FieldName) ?? "";
        DictionaryEncoding? dictionary = null;
        if (field.GetTable(FieldDictionary) is { } encoding)
        {
            short kind = encoding.GetInt16(3, 0);
            if (kind != 0)
            {
                throw new ArrowFormatException($"unsupported: field '{name}' has dictionary kind {kind}; only dense dictionaries are supported.");
            }

            var indexTable = encoding.GetTable(1);
            IntType indexType;
            try
            {
                indexType = indexTable is { } it ? new IntType(it.GetInt32(0, 0), it.GetBool(1, false)) : ArrowType.Int32;
            }
            catch (ArgumentException e)
            {
                throw new ArrowFormatException($"Field '{name}' has an invalid dictionary index type: {e.Message}", e);
            }

            dictionary = new DictionaryEncoding(encoding.GetInt64(0, 0), indexType, encoding.GetBool(2, false));
        }

        var childVector = field.GetVector(FieldChildren, 4);
        var children = new ArrowField[childVector.Length];
        for (int i = 0; i < children.Length; i++)
        {
            children[i] = DecodeField(childVector.GetTable(i), depth + 1);
        }

        byte typeId = field.GetByte(FieldTypeType, 0);
        var typeTable = field.GetTable(FieldType);
        if (typeTable is null && typeId != 0)
        {
            throw new ArrowFormatException($"Field '{name}' has type id {typeId} but no type table.");
        }

        var type = DecodeType(name, typeId, typeTable ?? default);
        try
        {
            return new ArrowField(name, type, field.GetBool(FieldNullable, false), children, DecodeMetadata(field, FieldCustomMetadata), dictionary);
        }
        catch (ArgumentException e)
        {
            throw new ArrowFormatException($"Field '{name}' is malformed: {e.Message}", e);
        }
    }

    private static ArrowType DecodeType(string name, byte typeId, FbTable t)
    {
        try
        {
            return typeId switch
            {
                (byte)ArrowTypeId.Null => ArrowType.Null,
                (byte)ArrowTypeId.Int => new IntType(t.GetInt32(0, 0), t.GetBool(1, false)),
                (byte)ArrowTypeId.FloatingPoint => new FloatingPointType(Enum<FloatingPointPrecision>(t.GetInt16(0, 0), 2)),
                (byte)ArrowTypeId.Binary => ArrowType.Binary,
                (byte)ArrowTypeId.Utf8 => ArrowType.Utf8,
                (byte)ArrowTypeId.Boolean => ArrowType.Boolean,
                (byte)ArrowTypeId.Decimal => new DecimalType(t.GetInt32(0, 0), t.GetInt32(1, 0), t.GetInt32(2, 128)),
                (byte)ArrowTypeId.Date => new DateType(Enum<DateUnit>(t.GetInt16(0, 1), 1)),
                (byte)ArrowTypeId.Time => new TimeType(Enum<TimeUnit>(t.GetInt16(0, 1), 3), t.GetInt32(1, 32)),
                (byte)ArrowTypeId.Timestamp => new TimestampType(Enum<TimeUnit>(t.GetInt16(0, 0), 3), t.GetString(1)),
                (byte)ArrowTypeId.Interval => new IntervalType(Enum<IntervalUnit>(t.GetInt16(0, 0), 2)),
                (byte)ArrowTypeId.List => ArrowType.List,
                (byte)ArrowTypeId.Struct => ArrowType.Struct,
                (byte)ArrowTypeId.FixedSizeBinary => new FixedSizeBinaryType(t.GetInt32(0, 0)),
                (byte)ArrowTypeId.FixedSizeList => new FixedSizeListType(t.GetInt32(0, 0)),
                (byte)ArrowTypeId.Map => new MapType(t.GetBool(0, false)),
                (byte)ArrowTypeId.Duration => new DurationType(Enum<TimeUnit>(t.GetInt16(0, 1), 3)),
                (byte)ArrowTypeId.LargeBinary => ArrowType.LargeBinary,
                (byte)ArrowTypeId.LargeUtf8 => ArrowType.LargeUtf8,
                (byte)ArrowTypeId.LargeList => ArrowType.LargeList,
                (byte)ArrowTypeId.Union => throw new ArrowFormatException($"unsupported: field '{name}' has a union type; union types are unsupported."),
                >= 22 and <= 26 => throw new ArrowFormatException($"unsupported: field '{name}' has Arrow type id {typeId} (run-end encoded or view types), which is unsupported."),
                _ => throw new ArrowFormatException($"Field '{name}' has unknown Arrow type id {typeId}."),
            };
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new ArrowFormatException($"Field '{name}' has an invalid type: {e.Message}", e);
        }
    }

    private static T Enum<T>(short value, int max)
        where T : struct, Enum
    {
        if (value < 0 || value > max)
        {
            throw new ArrowFormatException($"Enum value {value} is out of range for {typeof(T).Name}.");
        }

        return (T)(object)value;
    }
}
