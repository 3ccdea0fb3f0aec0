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
            NpgsqlException => FailureKind.Transient, // not a server error: the connection broke or could not be made
            OperationCanceledException => FailureKind.Transient, // a timeout inside a client library, not our stop request
            AggregateException a => a.InnerExceptions.Select(Classify).DefaultIfEmpty(FailureKind.Fatal).Max(),
            _ => e.InnerException is { } inner ? Classify(inner) : FailureKind.Fatal,
        };
    }

    /// <summary>Whether <paramref name="e"/> stops the connector.</summary>
    public static bool IsFatal(Exception e) => Classify(e) == FailureKind.Fatal;

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
