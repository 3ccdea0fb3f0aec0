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

    private DecodingMode _mode = DecodingMode.Initial;

    /// <summary>Progress shared across attempts (for status output).</summary>
    public ProgressTracker Progress { get; } = new();

    /// <summary>Runs until cancelled (returns normally) or a fatal error (throws).</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        RocksDbOffsetMirror? mirror = null;
        using var statsStop = new CancellationTokenSource();
        var stats = ReportStatsAsync(statsStop.Token);
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
                    await new ConnectorPipeline(config, Progress, mirror, logger, _mode).RunAsync(cancellationToken);
                    return;
                }
                catch (ReplicationRestartException e)
                {
                    // Not a failure: the stream starts again from the committed position with other options
                    // (text tuples, or no streaming of in-progress transactions for a while).
                    _mode = e.Next(_mode);
                    LogPlannedRestart(logger, config.SlotName, e.Message);
                    attempt = 0;
                    continue;
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
            await statsStop.CancelAsync();
            await stats;
            mirror?.Dispose();
        }
    }

    /// <summary>Every 30 s: progress and memory, for operators (and for finding where memory goes).</summary>
    private async Task ReportStatsAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Environment.GetEnvironmentVariable("WALBRIDGE_STATS_SECONDS") is { } s && int.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : 30));
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                if (!logger.IsEnabled(LogLevel.Information))
                    continue;
                using var process = System.Diagnostics.Process.GetCurrentProcess();
                var heapMb = GC.GetGCMemoryInfo().HeapSizeBytes >> 20;
                var liveMb = GC.GetTotalMemory(false) >> 20;
                LogStats(logger, config.SlotName, Progress.Committed, Progress.CommittedTransactions, Progress.CommittedRows, Progress.Queued,
                    process.WorkingSet64 >> 20, process.PeakWorkingSet64 >> 20, heapMb, liveMb);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(EventId = 3002, Level = LogLevel.Information,
        Message = "Slot {Slot} committed through {Lsn}: {Transactions} transactions, {Rows} rows; {Queued} queued; RSS {RssMb} MB (peak {PeakRssMb} MB), managed heap {HeapMb} MB ({LiveMb} MB live)")]
    private static partial void LogStats(ILogger logger, string slot, WalBridge.Offsets.Lsn lsn, long transactions, long rows, int queued, long rssMb, long peakRssMb, long heapMb, long liveMb);

    /// <summary>
    /// Whether an exception means "stop". Only failures known to heal by themselves are retried
    /// (connections, an unavailable or restarting server, Kafka transaction aborts and timeouts, a
    /// slot still held by a predecessor); configuration and source problems, protocol violations, a
    /// row that can never fit, an unsafe start position and anything unexpected stop the connector.
    /// A failure of the local offset mirror (<see cref="OffsetMirrorException"/>, an
    /// <see cref="IOException"/>) is retried only when the mirror says it may heal (a full disk);
    /// a lock held by another instance, a permission problem or a corrupted mirror stops the
    /// connector with a message that names <c>state.dir</c> and what to do.
    /// </summary>
    public static bool IsFatal(Exception e) => !IsTransient(e);

    private static bool IsTransient(Exception e) => e switch
    {
        ConfigurationException or SourceNotReadyException or ReplicationProtocolException or RowTooLargeException or UnsafeStartException => false,
        OffsetMirrorException m => m.IsTransient,
        SlotInUseException or IOException or System.Net.Sockets.SocketException or TimeoutException => true,
        KafkaException k => !k.Error.IsFatal && k.Error.Code is not (ErrorCode.TransactionalIdAuthorizationFailed or ErrorCode.TopicAuthorizationFailed
            or ErrorCode.ClusterAuthorizationFailed or ErrorCode.Local_Fenced or ErrorCode.ProducerFenced or ErrorCode.InvalidConfig
            or ErrorCode.MsgSizeTooLarge),
        PostgresException p => p.IsTransient || p.SqlState.StartsWith("08", StringComparison.Ordinal) || p.SqlState is PostgresErrorCodes.ObjectInUse
            or PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow
            or PostgresErrorCodes.TooManyConnections or PostgresErrorCodes.QueryCanceled or PostgresErrorCodes.IdleSessionTimeout,
        NpgsqlException => true, // not a server error: the connection broke or could not be made
        OperationCanceledException => true, // a timeout inside a client library, not our stop request
        AggregateException a => a.InnerExceptions.All(IsTransient),
        _ => e.InnerException is not null && IsTransient(e.InnerException),
    };

    [LoggerMessage(EventId = 3003, Level = LogLevel.Information, Message = "Slot {Slot}: {Reason}")]
    private static partial void LogPlannedRestart(ILogger logger, string slot, string reason);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning,
        Message = "Pipeline for slot {Slot} failed (attempt {Attempt}); restarting from committed LSN {Lsn} in {BackoffSeconds} s")]
    private static partial void LogTransientFailure(ILogger logger, Exception exception, string slot, WalBridge.Offsets.Lsn lsn, int attempt, double backoffSeconds);
}
