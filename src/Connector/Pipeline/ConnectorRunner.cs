using Microsoft.Extensions.Logging;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Decoding;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Queue;
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
                    {
                        backoff = TimeSpan.FromSeconds(1);
                    }
                    // One line an operator can read (what failed and why, what happens next); the stack trace only at debug level.
                    LogTransientFailure(logger, config.SlotName, attempt, FailureClassification.Describe(e), Progress.Committed, backoff.TotalSeconds);
                    LogTransientFailureDetail(logger, e, config.SlotName);
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
                {
                    continue;
                }

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

    /// <summary>Whether an exception means "stop" (see <see cref="FailureClassification"/>, the one owner of the rule).</summary>
    public static bool IsFatal(Exception e) => FailureClassification.IsFatal(e);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Information, Message = "Slot {Slot}: {Reason}")]
    private static partial void LogPlannedRestart(ILogger logger, string slot, string reason);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning,
        Message = "Pipeline for slot {Slot} failed (attempt {Attempt}): {Cause}; retrying in {BackoffSeconds} s from committed LSN {Lsn}")]
    private static partial void LogTransientFailure(ILogger logger, string slot, int attempt, string cause, WalBridge.Offsets.Lsn lsn, double backoffSeconds);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Debug, Message = "Pipeline failure of slot {Slot}, in full")]
    private static partial void LogTransientFailureDetail(ILogger logger, Exception exception, string slot);
}
