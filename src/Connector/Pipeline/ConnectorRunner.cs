using Confluent.Kafka;
using Microsoft.Extensions.Logging;
using Npgsql;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Replication;
using WalBridge.Offsets.Mirror;

namespace WalBridge.Connector.Pipeline;

/// <summary>
/// Keeps the pipeline running: a transient failure (network, broker or PostgreSQL unavailable,
/// an aborted or unknown-outcome Kafka transaction) restarts it from the position committed in
/// Kafka after a bounded backoff; a fatal one ends <see cref="RunAsync"/> with the exception.
/// </summary>
public sealed partial class ConnectorRunner(ConnectorConfig config, ILogger logger)
{
    private static readonly TimeSpan s_maxBackoff = TimeSpan.FromSeconds(30);

    /// <summary>Progress shared across attempts (for status output).</summary>
    public ProgressTracker Progress { get; } = new();

    /// <summary>Runs until cancelled (returns normally) or a fatal error (throws).</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        RocksDbOffsetMirror? mirror = null;
        try
        {
            mirror = RocksDbOffsetMirror.Open(config.StateDirectory);
            var backoff = TimeSpan.FromSeconds(1);
            var attempt = 0;
            while (!cancellationToken.IsCancellationRequested)
            {
                attempt++;
                var committedBefore = Progress.Committed;
                try
                {
                    await new ConnectorPipeline(config, Progress, mirror, logger).RunAsync(cancellationToken);
                    return;
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e) when (!IsFatal(e))
                {
                    if (Progress.Committed > committedBefore)
                        backoff = TimeSpan.FromSeconds(1);
                    LogTransientFailure(logger, e, config.SlotName, Progress.Committed, attempt, backoff.TotalSeconds);
                    try
                    {
                        await Task.Delay(backoff, cancellationToken);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                    backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, s_maxBackoff.Ticks));
                }
            }
        }
        finally
        {
            mirror?.Dispose();
        }
    }

    /// <summary>Whether an exception means "stop": retrying cannot help without a change by a person.</summary>
    public static bool IsFatal(Exception e) => e switch
    {
        ConfigurationException or SourceNotReadyException or ReplicationProtocolException or RowTooLargeException or UnsafeStartException => true,
        KafkaException k => k.Error.IsFatal || k.Error.Code is ErrorCode.TransactionalIdAuthorizationFailed or ErrorCode.TopicAuthorizationFailed
            or ErrorCode.ClusterAuthorizationFailed or ErrorCode.Local_Fenced or ErrorCode.ProducerFenced or ErrorCode.InvalidConfig,
        PostgresException p => p.SqlState is PostgresErrorCodes.InvalidPassword or PostgresErrorCodes.InvalidAuthorizationSpecification
            or PostgresErrorCodes.InvalidCatalogName or PostgresErrorCodes.InsufficientPrivilege or PostgresErrorCodes.UndefinedObject,
        ArgumentException or InvalidOperationException when e.Source == "WalBridge.Broker" => true,
        _ => false,
    };

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning,
        Message = "Pipeline for slot {Slot} failed (attempt {Attempt}); restarting from committed LSN {Lsn} in {BackoffSeconds} s")]
    private static partial void LogTransientFailure(ILogger logger, Exception exception, string slot, WalBridge.Offsets.Lsn lsn, int attempt, double backoffSeconds);
}
