using System.Buffers.Binary;
using System.Text;

namespace WalBridge.Connector.Formats.Debezium;

/// <summary>
/// Avro's binary encoding of a Kafka Connect value for the Avro schema <see cref="AvroSchemaText"/> derives from the same
/// Connect schema: optional values are unions (<c>["null", T]</c>, or <c>[T, "null"]</c> when the field has a default),
/// structs are records, arrays and maps are written as one block. Prefixed with Confluent's wire format (magic byte 0,
/// the schema id big-endian). Not thread-safe; reuse after <see cref="Reset"/>.
/// </summary>
internal sealed class AvroConnectWriter : IConnectWriter
{
    private byte[] _buffer = new byte[1024];
    private int _length;

    public void Reset() => _length = 0;

    /// <summary>Confluent's wire format header: magic byte 0 and the registered schema id.</summary>
    public void WireHeader(int schemaId)
    {
        Ensure(5);
        _buffer[_length] = 0;
        BinaryPrimitives.WriteInt32BigEndian(_buffer.AsSpan(_length + 1), schemaId);
        _length += 5;
    }

    public byte[] ToArray() => _buffer.AsSpan(0, _length).ToArray();

    public void Null(ConnectSchema schema)
    {
        if (!schema.Optional)
        {
            throw new InvalidOperationException("null for a required Avro field");
        }

        WriteLong(schema.DefaultString is null ? 0 : 1);
    }

    public void Boolean(ConnectSchema schema, bool value)
    {
        Branch(schema);
        Ensure(1);
        _buffer[_length++] = value ? (byte)1 : (byte)0;
    }

    public void Integer(ConnectSchema schema, long value)
    {
        Branch(schema);
        WriteLong(value);
    }

    public void Float32(ConnectSchema schema, float value)
    {
        Branch(schema);
        Ensure(4);
        BinaryPrimitives.WriteSingleLittleEndian(_buffer.AsSpan(_length), value);
        _length += 4;
    }

    public void Float64(ConnectSchema schema, double value)
    {
        Branch(schema);
        Ensure(8);
        BinaryPrimitives.WriteDoubleLittleEndian(_buffer.AsSpan(_length), value);
        _length += 8;
    }

    public void String(ConnectSchema schema, ReadOnlySpan<byte> utf8) => Bytes(schema, utf8);

    public void String(ConnectSchema schema, string value)
    {
        Branch(schema);
        var count = Encoding.UTF8.GetByteCount(value);
        WriteLong(count);
        Ensure(count);
        _length += Encoding.UTF8.GetBytes(value, _buffer.AsSpan(_length));
    }

    public void Bytes(ConnectSchema schema, ReadOnlySpan<byte> value)
    {
        Branch(schema);
        WriteLong(value.Length);
        Ensure(value.Length);
        value.CopyTo(_buffer.AsSpan(_length));
        _length += value.Length;
    }

    public void BeginStruct(ConnectSchema schema) => Branch(schema);

    public void Field(ConnectField field)
    {
    }

    public void EndStruct()
    {
    }

    public void BeginArray(ConnectSchema schema, int count)
    {
        Branch(schema);
        if (count > 0)
        {
            WriteLong(count);
        }
    }

    public void EndArray() => WriteLong(0);

    public void BeginMap(ConnectSchema schema, int count) => BeginArray(schema, count);

    public void MapKey(string key) => String(ConnectSchema.Of(ConnectType.String), key);

    public void EndMap() => WriteLong(0);

    private void Branch(ConnectSchema schema)
    {
        if (schema.Optional)
        {
            WriteLong(schema.DefaultString is null ? 1 : 0);
        }
    }

    private void WriteLong(long value)
    {
        Ensure(10);
        var zigzag = (ulong)((value << 1) ^ (value >> 63));
        while (zigzag >= 0x80)
        {
            _buffer[_length++] = (byte)(zigzag | 0x80);
            zigzag >>= 7;
        }
        _buffer[_length++] = (byte)zigzag;
    }

    private void Ensure(int more)
    {
        if (_length + more > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + more));
        }
    }
}
