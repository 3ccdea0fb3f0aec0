using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace WalBridge.Connector.Formats.Debezium;

/// <summary>
/// Kafka Connect's JsonConverter encoding of a value: INT* as numbers, FLOAT* as Java prints them (<c>NaN</c> and
/// <c>Infinity</c> as strings, as Jackson does), BYTES as base64 strings, structs as objects, maps with string keys as
/// objects. Optionally wrapped in <c>{"schema": …, "payload": …}</c> (<c>schemas.enable</c>). Not thread-safe; reuse
/// after <see cref="Reset"/>.
/// </summary>
internal sealed class JsonConnectWriter : IConnectWriter, IDisposable
{
    private static readonly JsonWriterOptions s_options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true };
    private static readonly JsonEncodedText s_schema = JsonEncodedText.Encode("schema");
    private static readonly JsonEncodedText s_payload = JsonEncodedText.Encode("payload");
    private readonly ArrayBufferWriter<byte> _buffer = new(1024);
    private readonly Utf8JsonWriter _json;

    public JsonConnectWriter() => _json = new Utf8JsonWriter(_buffer, s_options);

    public void Dispose() => _json.Dispose();

    public void Reset()
    {
        _json.Flush();
        _buffer.ResetWrittenCount();
        _json.Reset(_buffer);
    }

    /// <summary>Starts <c>{"schema": schemaJson, "payload":</c>; the value written next is the payload.</summary>
    public void BeginEnvelope(ReadOnlySpan<byte> schemaJson)
    {
        _json.WriteStartObject();
        _json.WritePropertyName(s_schema);
        _json.WriteRawValue(schemaJson, skipInputValidation: true);
        _json.WritePropertyName(s_payload);
    }

    public void EndEnvelope() => _json.WriteEndObject();

    /// <summary>The bytes written since the last <see cref="Reset"/>, copied.</summary>
    public byte[] ToArray()
    {
        _json.Flush();
        return _buffer.WrittenSpan.ToArray();
    }

    public void Null(ConnectSchema schema) => _json.WriteNullValue();

    public void Boolean(ConnectSchema schema, bool value) => _json.WriteBooleanValue(value);

    public void Integer(ConnectSchema schema, long value) => _json.WriteNumberValue(value);

    public void Float32(ConnectSchema schema, float value)
    {
        if (float.IsFinite(value))
        {
            _json.WriteRawValue(TextForms.JavaFloat(value), skipInputValidation: true);
        }
        else
        {
            _json.WriteStringValue(float.IsNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity");
        }
    }

    public void Float64(ConnectSchema schema, double value)
    {
        if (double.IsFinite(value))
        {
            _json.WriteRawValue(TextForms.JavaDouble(value), skipInputValidation: true);
        }
        else
        {
            _json.WriteStringValue(double.IsNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity");
        }
    }

    public void String(ConnectSchema schema, ReadOnlySpan<byte> utf8) => _json.WriteStringValue(utf8);

    public void String(ConnectSchema schema, string value) => _json.WriteStringValue(value);

    public void Bytes(ConnectSchema schema, ReadOnlySpan<byte> value) => _json.WriteBase64StringValue(value);

    public void BeginStruct(ConnectSchema schema) => _json.WriteStartObject();

    public void Field(ConnectField field) => _json.WritePropertyName(field.JsonName);

    public void EndStruct() => _json.WriteEndObject();

    public void BeginArray(ConnectSchema schema, int count) => _json.WriteStartArray();

    public void EndArray() => _json.WriteEndArray();

    public void BeginMap(ConnectSchema schema, int count) => _json.WriteStartObject();

    public void MapKey(string key) => _json.WritePropertyName(key);

    public void EndMap() => _json.WriteEndObject();

    /// <summary>JsonConverter's JSON form of <paramref name="schema"/> (its key order: type, members, optional, name, version, doc, parameters, default, field).</summary>
    public static byte[] SchemaJson(ConnectSchema schema)
    {
        ArgumentNullException.ThrowIfNull(schema);
        var buffer = new ArrayBufferWriter<byte>(2048);
        using (var json = new Utf8JsonWriter(buffer, s_options))
        {
            WriteSchema(json, schema, null);
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteSchema(Utf8JsonWriter json, ConnectSchema schema, string? fieldName)
    {
        json.WriteStartObject();
        json.WriteString("type", schema.Type switch
        {
            ConnectType.Int8 => "int8",
            ConnectType.Int16 => "int16",
            ConnectType.Int32 => "int32",
            ConnectType.Int64 => "int64",
            ConnectType.Float32 => "float",
            ConnectType.Float64 => "double",
            ConnectType.Boolean => "boolean",
            ConnectType.String => "string",
            ConnectType.Bytes => "bytes",
            ConnectType.Array => "array",
            ConnectType.Map => "map",
            _ => "struct",
        });
        switch (schema.Type)
        {
            case ConnectType.Array:
                json.WritePropertyName("items");
                WriteSchema(json, schema.ValueSchema!, null);
                break;
            case ConnectType.Map:
                json.WritePropertyName("keys");
                WriteSchema(json, schema.KeySchema!, null);
                json.WritePropertyName("values");
                WriteSchema(json, schema.ValueSchema!, null);
                break;
            case ConnectType.Struct:
                json.WriteStartArray("fields");
                foreach (var field in schema.Fields)
                {
                    WriteSchema(json, field.Schema, field.Name);
                }
                json.WriteEndArray();
                break;
        }
        json.WriteBoolean("optional", schema.Optional);
        if (schema.Name is not null)
        {
            json.WriteString("name", schema.Name);
        }

        if (schema.Version is { } version)
        {
            json.WriteNumber("version", version);
        }

        if (schema.Doc is not null)
        {
            json.WriteString("doc", schema.Doc);
        }

        if (schema.Parameters is { Count: > 0 } parameters)
        {
            json.WriteStartObject("parameters");
            foreach (var (key, value) in parameters)
            {
                json.WriteString(key, value);
            }
            json.WriteEndObject();
        }
        if (schema.DefaultString is not null)
        {
            json.WriteString("default", schema.DefaultString);
        }

        if (fieldName is not null)
        {
            json.WriteString("field", fieldName);
        }

        json.WriteEndObject();
    }
}
