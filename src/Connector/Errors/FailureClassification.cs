using Confluent.Kafka;
using Npgsql;
using WalBridge.Connector.Configuration;
using WalBridge.Offsets.Mirror;

namespace WalBridge.Connector.Errors;

/// <summary>What a failure of the pipeline asks the caller to do.</summary>
public enum FailureKind
{
    /// <summary>It may heal by itself (a connection, an unavailable server): retry from the position committed in Kafka, with backoff.</summary>
    Transient,

    /// <summary>Kafka aborted (or may have aborted) the open transaction: abort it and replay from the committed position, with backoff.</summary>
    AbortRequired,

    /// <summary>It cannot heal without a person (configuration, source, protocol, a row that can never fit): stop and exit non-zero.</summary>
    Fatal,
}

/// <summary>
/// The one owner of the rule that decides whether a pipeline failure stops the connector. Only failures known to
/// heal by themselves are retried; anything unexpected is fatal.
/// </summary>
public static class FailureClassification
{
    /// <summary>Classifies <paramref name="e"/>; an <see cref="AggregateException"/> is as severe as its worst inner exception.</summary>
    public static FailureKind Classify(Exception e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return e switch
        {
            ConfigurationException or SourceNotReadyException or ReplicationProtocolException or RowTooLargeException or UnsafeStartException
                => FailureKind.Fatal,
            LocalStorageException storage => storage.DiskFull ? FailureKind.Transient : FailureKind.Fatal,
            // The registry unreachable or overloaded heals; a refused schema or credentials do not.
            SchemaRegistrationException registry => registry.IsTransient ? FailureKind.Transient : FailureKind.Fatal,
            // The offset mirror says itself whether it may heal (a full disk) or not (a lock held by another
            // instance, permissions, corruption).
            OffsetMirrorException mirror => mirror.IsTransient ? FailureKind.Transient : FailureKind.Fatal,
            SlotInUseException or ReplicationConnectionLostException or IOException or System.Net.Sockets.SocketException or TimeoutException
                => FailureKind.Transient,
            // Thrown by a transactional call when the open transaction must be aborted (the Kafka loop aborts it).
            KafkaTxnRequiresAbortException => FailureKind.AbortRequired,
            KafkaException k => Classify(k.Error),
            PostgresException p => p.IsTransient || p.SqlState.StartsWith("08", StringComparison.Ordinal) || p.SqlState is PostgresErrorCodes.ObjectInUse
                or PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow
                or PostgresErrorCodes.TooManyConnections or PostgresErrorCodes.QueryCanceled or PostgresErrorCodes.IdleSessionTimeout
                    ? FailureKind.Transient
                    : FailureKind.Fatal,
            // TLS verification failed (verify-ca/verify-full: unknown CA, wrong host name): retrying cannot fix a certificate.
            NpgsqlException { InnerException: System.Security.Authentication.AuthenticationException } => FailureKind.Fatal,
            System.Security.Authentication.AuthenticationException => FailureKind.Fatal,
            NpgsqlException => FailureKind.Transient, // not a server error: the connection broke or could not be made
            OperationCanceledException => FailureKind.Transient, // a timeout inside a client library, not our stop request
            AggregateException a => a.InnerExceptions.Select(Classify).DefaultIfEmpty(FailureKind.Fatal).Max(),
            _ => e.InnerException is { } inner ? Classify(inner) : FailureKind.Fatal,
        };
    }

    /// <summary>Whether <paramref name="e"/> stops the connector.</summary>
    public static bool IsFatal(Exception e) => Classify(e) == FailureKind.Fatal;

    /// <summary>
    /// Classifies a failure of an instance that runs with high availability: once its leadership was lost (its lock
    /// session failed), being fenced by the new leader is expected and only sends it back to waiting, so it is
    /// transient; otherwise the rule of <see cref="Classify(Exception)"/> applies.
    /// </summary>
    public static FailureKind Classify(Exception e, bool leadershipLost) =>
        leadershipLost && IsFenced(e) ? FailureKind.Transient : Classify(e);

    /// <summary>Whether <paramref name="e"/> (or an exception inside it) says another producer with the same transactional.id fenced this one.</summary>
    public static bool IsFenced(Exception e)
    {
        for (var current = e; current is not null; current = current.InnerException)
        {
            if (current is KafkaException { Error.Code: ErrorCode.Local_Fenced or ErrorCode.ProducerFenced or ErrorCode.InvalidProducerEpoch })
            {
                return true;
            }

            if (current is AggregateException aggregate && aggregate.InnerExceptions.Any(IsFenced))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// What an operator should check for <paramref name="e"/>, in a few words naming the setting or the component; null
    /// when the failure's own message says it already (the source preconditions, the mirror, the start position).
    /// </summary>
    public static string? Advice(Exception e, ConnectorConfig config)
    {
        ArgumentNullException.ThrowIfNull(e);
        ArgumentNullException.ThrowIfNull(config);
        var database = $"PostgreSQL at {config.DatabaseHost}:{config.DatabasePort} (database.hostname, database.port)";
        for (var current = e; current is not null; current = current.InnerException)
        {
            if (current is System.Security.Authentication.AuthenticationException)
            {
                return $"the TLS certificate of {database}: database.sslmode = {config.DatabaseSslMode} needs a server certificate signed by the CA in database.sslrootcert" +
                    (config.DatabaseSslMode == "verify-full" ? $" and naming the host '{config.DatabaseHost}' (database.hostname)" : "");
            }
        }

        for (var current = e; current is not null; current = current.InnerException)
        {
            switch (current)
            {
                case PostgresException p when p.SqlState is PostgresErrorCodes.InvalidPassword or PostgresErrorCodes.InvalidAuthorizationSpecification:
                    return $"the user and password for {database} (database.user, database.password or database.password.file) and pg_hba.conf";
                case PostgresException p when p.SqlState is PostgresErrorCodes.CannotConnectNow or PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown:
                    return $"that {database} has finished starting or restarting";
                case SlotInUseException:
                    return "which process holds the slot (SELECT active_pid FROM pg_replication_slots); a stopped instance's walsender lets go within wal_sender_timeout";
                case KafkaException:
                    return $"that the Kafka brokers in kafka.bootstrap.servers ({(config.Kafka.TryGetValue("bootstrap.servers", out var servers) ? servers : "?")}) are up and reachable";
                case LocalStorageException or OffsetMirrorException:
                    return null;
                case NpgsqlException or System.Net.Sockets.SocketException:
                    return $"that {database} is running and reachable from this host";
                default:
                    break;
            }
        }
        return null;
    }

    private static FailureKind Classify(Error error)
    {
        if (error.IsFatal || error.Code is ErrorCode.TransactionalIdAuthorizationFailed or ErrorCode.TopicAuthorizationFailed
            or ErrorCode.ClusterAuthorizationFailed or ErrorCode.Local_Fenced or ErrorCode.ProducerFenced or ErrorCode.InvalidConfig
            or ErrorCode.MsgSizeTooLarge)
        {
            return FailureKind.Fatal;
        }

        return FailureKind.Transient;
    }

    /// <summary>
    /// One line for an operator: the failure and its causes (inner exceptions), each as its message, without stack
    /// traces, e.g. <c>NpgsqlException: Failed to connect to 127.0.0.1:5432 ← SocketException: Connection refused</c>.
    /// </summary>
    public static string Describe(Exception e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var parts = new List<string>();
        for (var current = e; current is not null && parts.Count < 4; current = current.InnerException)
        {
            if (current is AggregateException { InnerExceptions.Count: > 0 } aggregate)
            {
                current = aggregate.InnerExceptions[0];
            }

            var text = $"{current.GetType().Name}: {current.Message.ReplaceLineEndings(" ")}";
            if (parts.Count == 0 || !parts[^1].Contains(current.Message, StringComparison.Ordinal))
            {
                parts.Add(text);
            }
        }
        return string.Join(" ← ", parts);
    }
}
