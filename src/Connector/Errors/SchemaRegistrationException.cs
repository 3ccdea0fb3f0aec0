namespace WalBridge.Connector.Errors;

/// <summary>
/// The Schema Registry did not register (or look up) a schema of the debezium-avro format. The message names the
/// registry's subject, the schema (table and WalBridge schema fingerprint), the version it conflicts with when the
/// registry says so, and the registry's own answer (HTTP status and error code).
/// </summary>
/// <remarks>
/// <see cref="IsTransient"/> is true only where the failure can heal by itself: the registry unreachable, timing out,
/// or answering 5xx/408/429. Then the pipeline restarts from the position committed in Kafka (nothing was produced for
/// the transaction yet: schemas are registered before the Kafka transaction begins). A refusal (409 incompatible schema,
/// 422 invalid schema, 401/403 not allowed, any other 4xx) needs a person: fatal.
/// </remarks>
public sealed class SchemaRegistrationException : Exception
{
    public SchemaRegistrationException(string subject, string what, int? httpStatus, int? errorCode, bool isTransient, string message, Exception? inner)
        : base(message, inner)
    {
        Subject = subject;
        What = what;
        HttpStatus = httpStatus;
        ErrorCode = errorCode;
        IsTransient = isTransient;
    }

    public SchemaRegistrationException() { }
    public SchemaRegistrationException(string message) : base(message) { }
    public SchemaRegistrationException(string message, Exception inner) : base(message, inner) { }

    /// <summary>The registry subject (<c>&lt;topic&gt;-key</c> or <c>&lt;topic&gt;-value</c>).</summary>
    public string Subject { get; } = "";

    /// <summary>What the schema describes, e.g. <c>public.orders, schema fingerprint 3f9a0c1e5b7d2a46</c>.</summary>
    public string What { get; } = "";

    public int? HttpStatus { get; }

    /// <summary>The registry's <c>error_code</c> (e.g. 409 incompatible, 42201 invalid schema).</summary>
    public int? ErrorCode { get; }

    public bool IsTransient { get; }
}
