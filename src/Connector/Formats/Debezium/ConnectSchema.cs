namespace WalBridge.Connector.Formats.Debezium;

/// <summary>Kafka Connect's schema types, as Debezium's events use them.</summary>
internal enum ConnectType
{
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    String,
    Bytes,
    Array,
    Map,
    Struct,
}

/// <summary>One field of a <see cref="ConnectSchema"/> struct.</summary>
internal sealed record ConnectField(string Name, ConnectSchema Schema)
{
    /// <summary>The name, JSON-encoded once (UTF-8 kept as it is).</summary>
    public System.Text.Json.JsonEncodedText JsonName { get; } = System.Text.Json.JsonEncodedText.Encode(Name, System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping);
}

/// <summary>
/// A Kafka Connect schema (type, optional, semantic name, version, parameters, default, members): the model both
/// Debezium encodings are written from. The JSON encoding prints it as JsonConverter does; the Avro encoding turns it
/// into an Avro schema as Confluent's AvroData does. Immutable; shared between threads.
/// </summary>
internal sealed class ConnectSchema
{
    public required ConnectType Type { get; init; }
    public bool Optional { get; init; }
    public string? Name { get; init; }
    public int? Version { get; init; }
    public string? Doc { get; init; }
    public IReadOnlyList<KeyValuePair<string, string>>? Parameters { get; init; }
    /// <summary>A default value; only string defaults occur (<c>source.snapshot</c>).</summary>
    public string? DefaultString { get; init; }
    public IReadOnlyList<ConnectField> Fields { get; init; } = [];
    /// <summary>Array items or map values.</summary>
    public ConnectSchema? ValueSchema { get; init; }
    /// <summary>Map keys.</summary>
    public ConnectSchema? KeySchema { get; init; }

    public static ConnectSchema Of(ConnectType type, bool optional = false, string? name = null, int? version = null,
        params KeyValuePair<string, string>[] parameters) =>
        new() { Type = type, Optional = optional, Name = name, Version = version, Parameters = parameters.Length == 0 ? null : parameters };

    public static ConnectSchema Struct(string? name, bool optional, int? version, params ConnectField[] fields) =>
        new() { Type = ConnectType.Struct, Name = name, Optional = optional, Version = version, Fields = fields };

    public static ConnectSchema ArrayOf(ConnectSchema items, bool optional) =>
        new() { Type = ConnectType.Array, Optional = optional, ValueSchema = items };

    public static ConnectSchema MapOf(ConnectSchema keys, ConnectSchema values, bool optional) =>
        new() { Type = ConnectType.Map, Optional = optional, KeySchema = keys, ValueSchema = values };

    /// <summary>This schema, optional (or required).</summary>
    public ConnectSchema WithOptional(bool optional) => optional == Optional ? this : new ConnectSchema
    {
        Type = Type,
        Optional = optional,
        Name = Name,
        Version = Version,
        Doc = Doc,
        Parameters = Parameters,
        DefaultString = DefaultString,
        Fields = Fields,
        ValueSchema = ValueSchema,
        KeySchema = KeySchema,
    };

    public static KeyValuePair<string, string> Parameter(string key, string value) => new(key, value);

    // Kafka Connect's and Debezium's semantic type names.
    public const string DecimalName = "org.apache.kafka.connect.data.Decimal";
    public const string ConnectDateName = "org.apache.kafka.connect.data.Date";
    public const string ConnectTimeName = "org.apache.kafka.connect.data.Time";
    public const string ConnectTimestampName = "org.apache.kafka.connect.data.Timestamp";
    public const string VariableScaleDecimalName = "io.debezium.data.VariableScaleDecimal";
    public const string DateName = "io.debezium.time.Date";
    public const string TimeName = "io.debezium.time.Time";
    public const string MicroTimeName = "io.debezium.time.MicroTime";
    public const string TimestampName = "io.debezium.time.Timestamp";
    public const string MicroTimestampName = "io.debezium.time.MicroTimestamp";
    public const string ZonedTimestampName = "io.debezium.time.ZonedTimestamp";
    public const string ZonedTimeName = "io.debezium.time.ZonedTime";
    public const string MicroDurationName = "io.debezium.time.MicroDuration";
    public const string IntervalName = "io.debezium.time.Interval";
    public const string JsonName = "io.debezium.data.Json";
    public const string XmlName = "io.debezium.data.Xml";
    public const string UuidName = "io.debezium.data.Uuid";
    public const string BitsName = "io.debezium.data.Bits";
    public const string EnumName = "io.debezium.data.Enum";
    public const string LtreeName = "io.debezium.data.Ltree";
    public const string PointName = "io.debezium.data.geometry.Point";
}
