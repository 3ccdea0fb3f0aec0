using System.Runtime.CompilerServices;
using WalBridge.Connector.Configuration;

namespace WalBridge.Connector.Formats.Debezium;

/// <summary>
/// How one Debezium format turns a Connect value into record bytes: the JSON converter (optionally with the schema in
/// every record) or Avro in Confluent's wire format (schemas registered under TopicNameStrategy subjects). Used by
/// one thread (the Kafka loop's).
/// </summary>
internal interface IFormatEncoding : IDisposable
{
    OutputFormat Format { get; }

    /// <summary>Makes <paramref name="schema"/> writable (Avro: registers it). Blocking; call outside a Kafka transaction.</summary>
    /// <exception cref="Errors.SchemaRegistrationException">The registry refused it or could not be reached.</exception>
    void Prepare(string subject, ConnectSchema schema, string what);

    /// <summary>Starts a record for <paramref name="schema"/>; write exactly one value of it, then call <see cref="End"/>.</summary>
    IConnectWriter Begin(string subject, ConnectSchema schema, string what);

    byte[] End();
}

/// <summary>Kafka Connect's JsonConverter (<c>schemas.enable</c> from <c>output.debezium-json.schemas.enable</c>).</summary>
internal sealed class JsonEncoding(bool schemasEnabled) : IFormatEncoding
{
    private readonly JsonConnectWriter _writer = new();
    private readonly ConditionalWeakTable<ConnectSchema, byte[]> _schemas = new();

    public OutputFormat Format => OutputFormat.DebeziumJson;

    public void Prepare(string subject, ConnectSchema schema, string what)
    {
    }

    public IConnectWriter Begin(string subject, ConnectSchema schema, string what)
    {
        _writer.Reset();
        if (schemasEnabled)
        {
            _writer.BeginEnvelope(_schemas.GetValue(schema, JsonConnectWriter.SchemaJson));
        }

        return _writer;
    }

    public byte[] End()
    {
        if (schemasEnabled)
        {
            _writer.EndEnvelope();
        }

        return _writer.ToArray();
    }

    public void Dispose() => _writer.Dispose();
}

/// <summary>Avro binary with Confluent's wire format header; schemas registered through <see cref="SchemaRegistration"/>.</summary>
internal sealed class AvroEncoding(SchemaRegistration registry) : IFormatEncoding
{
    private readonly AvroConnectWriter _writer = new();
    private readonly ConditionalWeakTable<ConnectSchema, string> _texts = new();
    private readonly Dictionary<(string Subject, ConnectSchema Schema), int> _ids = new();
    private string? _lastSubject;
    private ConnectSchema? _lastSchema;
    private int _lastId;

    public OutputFormat Format => OutputFormat.DebeziumAvro;

    /// <summary>The Avro schema text registered for <paramref name="schema"/>.</summary>
    public string SchemaText(ConnectSchema schema) => _texts.GetValue(schema, AvroSchemaText.Of);

    public void Prepare(string subject, ConnectSchema schema, string what)
    {
        if (!_ids.ContainsKey((subject, schema)))
        {
            _ids[(subject, schema)] = registry.Register(subject, SchemaText(schema), what);
        }
    }

    public IConnectWriter Begin(string subject, ConnectSchema schema, string what)
    {
        // Consecutive events mostly share their subject (the same string instance: the format caches names per table),
        // so the id of the last one is reused without hashing the subject for every row.
        if (!ReferenceEquals(subject, _lastSubject) || !ReferenceEquals(schema, _lastSchema))
        {
            Prepare(subject, schema, what);
            _lastId = _ids[(subject, schema)];
            _lastSubject = subject;
            _lastSchema = schema;
        }

        _writer.Reset();
        _writer.WireHeader(_lastId);
        return _writer;
    }

    public byte[] End() => _writer.ToArray();

    public void Dispose() => registry.Dispose();
}
