using System.Net;
using Confluent.SchemaRegistry;
using Microsoft.Extensions.Logging;
using WalBridge.Connector.Errors;

namespace WalBridge.Connector.Formats.Debezium;

/// <summary>
/// Registers the debezium-avro format's schemas with the Schema Registry (Confluent.SchemaRegistry's client, the
/// <c>schema.registry.*</c> settings passed through) under TopicNameStrategy subjects and caches the ids: a schema is
/// registered once per (subject, schema text) for the life of this object. Registering a schema the subject already
/// holds returns its id; a new one becomes the subject's next version if the registry's compatibility rule accepts it.
/// </summary>
/// <remarks>
/// Threading: one thread (the Kafka loop's). Blocking calls; called before a Kafka transaction begins. Errors: every
/// failure is a <see cref="SchemaRegistrationException"/> naming the subject and the schema, transient only when the
/// registry is unreachable, times out or answers 5xx/408/429. Lifetime: one per pipeline attempt.
/// </remarks>
internal sealed partial class SchemaRegistration(IReadOnlyDictionary<string, string> settings, ILogger logger) : IDisposable
{
    private readonly Dictionary<(string Subject, string Schema), int> _ids = [];
    private CachedSchemaRegistryClient? _client;

    /// <summary>The id of <paramref name="schema"/> under <paramref name="subject"/>, registering it when new. Blocking.</summary>
    /// <param name="subject">The subject (<c>&lt;topic&gt;-key</c> or <c>&lt;topic&gt;-value</c>).</param>
    /// <param name="schema">The Avro schema text.</param>
    /// <param name="what">What the schema describes, for error messages (table and fingerprint).</param>
    /// <exception cref="SchemaRegistrationException">The registry refused the schema or could not be reached.</exception>
    public int Register(string subject, string schema, string what)
    {
        if (_ids.TryGetValue((subject, schema), out var id))
        {
            return id;
        }

        _client ??= new CachedSchemaRegistryClient(settings);
        try
        {
            id = _client.RegisterSchemaAsync(subject, new Schema(schema, SchemaType.Avro), normalize: false).GetAwaiter().GetResult();
        }
        catch (SchemaRegistryException e)
        {
            throw Refused(subject, what, e);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or TimeoutException or IOException)
        {
            var unauthorized = e is HttpRequestException { StatusCode: HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden } || e.Message == "Unauthorized";
            throw new SchemaRegistrationException(subject, what, unauthorized ? 401 : null, null, isTransient: !unauthorized,
                unauthorized
                    ? $"The Schema Registry refused the credentials when registering the schema of {what} under subject '{subject}': check 'schema.registry.basic.auth.user.info' (or the bearer settings)"
                    : $"The Schema Registry at {Url} could not be reached to register the schema of {what} under subject '{subject}' ({e.GetType().Name}: {e.Message}); retrying from the committed position",
                e);
        }
        _ids[(subject, schema)] = id;
        LogRegistered(logger, subject, id, what);
        return id;
    }

    private string Url => settings.TryGetValue("schema.registry.url", out var url) ? url : "?";

    private SchemaRegistrationException Refused(string subject, string what, SchemaRegistryException e)
    {
        var status = (int)e.Status;
        var transient = status >= 500 || status is 408 or 429;
        string text;
        if (status == 409)
        {
            var latest = LatestVersion(subject);
            text = $"The Schema Registry refused the schema of {what} under subject '{subject}' as incompatible with {(latest is { } v ? $"version {v}" : "the subject's registered versions")} " +
                   $"(HTTP 409, error code {e.ErrorCode}: {e.Message}). The table changed in a way its compatibility rule does not allow: " +
                   $"change the subject's compatibility level (PUT /config/{subject}) or delete the subject, then restart; nothing past this transaction was acknowledged";
        }
        else if (status is 401 or 403)
        {
            text = $"The Schema Registry answered {status} when registering the schema of {what} under subject '{subject}' ({e.Message}): check 'schema.registry.basic.auth.user.info' and the principal's permissions on the subject";
        }
        else
        {
            text = $"The Schema Registry answered HTTP {status}, error code {e.ErrorCode} when registering the schema of {what} under subject '{subject}': {e.Message}" +
                   (transient ? "; retrying from the committed position" : "");
        }
        return new SchemaRegistrationException(subject, what, status, e.ErrorCode, transient, text, e);
    }

    private int? LatestVersion(string subject)
    {
        try
        {
            return _client!.GetLatestSchemaAsync(subject).GetAwaiter().GetResult().Version;
        }
        catch (Exception e) when (e is SchemaRegistryException or HttpRequestException or TaskCanceledException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        _client?.Dispose();
        _client = null;
    }

    [LoggerMessage(EventId = 2101, Level = LogLevel.Information, Message = "Registered schema id {Id} under subject {Subject} ({What})")]
    private static partial void LogRegistered(ILogger logger, string subject, int id, string what);
}
