using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace WalBridge.Connector.Formats.Debezium;

/// <summary>
/// The Avro schema of a Kafka Connect schema, following Confluent's AvroData conventions (what Debezium with the
/// AvroConverter registers): structs become records named after the Connect name (namespace before the last dot),
/// optional values <c>["null", T]</c> with a null default, <c>connect.version</c>/<c>connect.parameters</c>/
/// <c>connect.default</c>/<c>connect.name</c>/<c>connect.type</c> properties, Kafka Connect's logical types as Avro logical
/// types, a named type written once and referenced by its full name afterwards. Names are adjusted to Avro's rules
/// (Debezium's <c>avro</c> adjustment: invalid characters become <c>_</c>). Thread-safe (stateless).
/// </summary>
internal static class AvroSchemaText
{
    private static readonly JsonWriterOptions s_options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string Of(ConnectSchema schema)
    {
        ArgumentNullException.ThrowIfNull(schema);
        var buffer = new ArrayBufferWriter<byte>(4096);
        using (var json = new Utf8JsonWriter(buffer, s_options))
        {
            Write(json, schema, new HashSet<string>(StringComparer.Ordinal), ignoreOptional: false);
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Debezium's <c>avro</c> name adjustment of one name part: characters other than letters, digits and '_' become '_', as does a leading digit.</summary>
    public static string AdjustName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length == 0)
        {
            return "_";
        }

        var sb = new StringBuilder(name.Length);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            var valid = char.IsAsciiLetter(c) || c == '_' || (i > 0 && char.IsAsciiDigit(c));
            sb.Append(valid ? c : '_');
        }
        return sb.ToString();
    }

    /// <summary>A dotted full name with each part adjusted.</summary>
    public static string AdjustFullName(string fullName) => string.Join('.', fullName.Split('.').Select(AdjustName));

    private static void Write(Utf8JsonWriter json, ConnectSchema schema, HashSet<string> named, bool ignoreOptional)
    {
        if (schema.Optional && !ignoreOptional)
        {
            json.WriteStartArray();
            if (schema.DefaultString is null)
            {
                json.WriteStringValue("null");
                Write(json, schema, named, ignoreOptional: true);
            }
            else
            {
                Write(json, schema, named, ignoreOptional: true);
                json.WriteStringValue("null");
            }
            json.WriteEndArray();
            return;
        }

        if (schema.Type == ConnectType.Struct)
        {
            var fullName = AdjustFullName(schema.Name ?? "io.confluent.connect.avro.ConnectDefault");
            if (!named.Add(fullName))
            {
                json.WriteStringValue(fullName);
                return;
            }
            var dot = fullName.LastIndexOf('.');
            json.WriteStartObject();
            json.WriteString("type", "record");
            json.WriteString("name", dot >= 0 ? fullName[(dot + 1)..] : fullName);
            if (dot >= 0)
            {
                json.WriteString("namespace", fullName[..dot]);
            }

            if (schema.Doc is not null)
            {
                json.WriteString("doc", schema.Doc);
            }

            json.WriteStartArray("fields");
            var fieldNames = new HashSet<string>(StringComparer.Ordinal);
            foreach (var field in schema.Fields)
            {
                var name = AdjustName(field.Name);
                if (!fieldNames.Add(name))
                {
                    throw new AvroNameCollisionException(fullName, name);
                }

                json.WriteStartObject();
                json.WriteString("name", name);
                json.WritePropertyName("type");
                Write(json, field.Schema, named, ignoreOptional: false);
                if (field.Schema.DefaultString is { } defaultString)
                {
                    json.WriteString("default", defaultString);
                }
                else if (field.Schema.Optional)
                {
                    json.WriteNull("default");
                }

                json.WriteEndObject();
            }
            json.WriteEndArray();
            WriteConnectProperties(json, schema, fullName, null);
            json.WriteEndObject();
            return;
        }

        var (avroType, connectType) = schema.Type switch
        {
            ConnectType.Int8 => ("int", "int8"),
            ConnectType.Int16 => ("int", "int16"),
            ConnectType.Int32 => ("int", null),
            ConnectType.Int64 => ("long", null),
            ConnectType.Float32 => ("float", null),
            ConnectType.Float64 => ("double", null),
            ConnectType.Boolean => ("boolean", null),
            ConnectType.String => ("string", null),
            ConnectType.Bytes => ("bytes", null),
            ConnectType.Array => ("array", null),
            _ => ("map", (string?)null),
        };
        var plain = schema.Name is null && schema.Version is null && schema.Parameters is null && schema.DefaultString is null && connectType is null
            && schema.Type is not (ConnectType.Array or ConnectType.Map);
        if (plain)
        {
            json.WriteStringValue(avroType);
            return;
        }
        json.WriteStartObject();
        json.WriteString("type", avroType);
        if (schema.Type == ConnectType.Array)
        {
            json.WritePropertyName("items");
            Write(json, schema.ValueSchema!, named, ignoreOptional: false);
        }
        else if (schema.Type == ConnectType.Map)
        {
            json.WritePropertyName("values");
            Write(json, schema.ValueSchema!, named, ignoreOptional: false);
        }

        var isDecimal = schema.Name == ConnectSchema.DecimalName;
        if (isDecimal)
        {
            var scale = Parameter(schema, "scale") ?? "0";
            var precision = Parameter(schema, "connect.decimal.precision") ?? "64";
            json.WriteNumber("scale", int.Parse(scale, System.Globalization.CultureInfo.InvariantCulture));
            json.WriteNumber("precision", int.Parse(precision, System.Globalization.CultureInfo.InvariantCulture));
        }
        WriteConnectProperties(json, schema, schema.Name, connectType);
        var logical = schema.Name switch
        {
            ConnectSchema.DecimalName => "decimal",
            ConnectSchema.ConnectDateName => "date",
            ConnectSchema.ConnectTimeName => "time-millis",
            ConnectSchema.ConnectTimestampName => "timestamp-millis",
            _ => null,
        };
        if (logical is not null)
        {
            json.WriteString("logicalType", logical);
        }

        json.WriteEndObject();
    }

    private static void WriteConnectProperties(Utf8JsonWriter json, ConnectSchema schema, string? name, string? connectType)
    {
        if (schema.Type != ConnectType.Struct && schema.Doc is not null)
        {
            json.WriteString("connect.doc", schema.Doc);
        }

        if (schema.Version is { } version)
        {
            json.WriteNumber("connect.version", version);
        }

        if (schema.Parameters is { Count: > 0 } parameters)
        {
            json.WriteStartObject("connect.parameters");
            foreach (var (key, value) in parameters)
            {
                json.WriteString(key, value);
            }
            json.WriteEndObject();
        }
        if (schema.DefaultString is { } defaultString)
        {
            json.WriteString("connect.default", defaultString);
        }

        if (name is not null)
        {
            json.WriteString("connect.name", name);
        }

        if (connectType is not null)
        {
            json.WriteString("connect.type", connectType);
        }
    }

    private static string? Parameter(ConnectSchema schema, string key) =>
        schema.Parameters?.FirstOrDefault(p => p.Key == key).Value;
}

/// <summary>Two column names of a table become the same Avro field name after Avro's name rules are applied.</summary>
internal sealed class AvroNameCollisionException : Exception
{
    public AvroNameCollisionException(string record, string name)
        : base($"Two fields of Avro record {record} become '{name}' under Avro's naming rules (characters other than letters, digits and '_' are replaced): rename one column or leave the table out of debezium-avro") { }

    public AvroNameCollisionException() { }
    public AvroNameCollisionException(string message) : base(message) { }
    public AvroNameCollisionException(string message, Exception inner) : base(message, inner) { }
}
