using Microsoft.Extensions.Logging;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Decoding;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Operations;
using WalBridge.Connector.Queue;
using WalBridge.Offsets.Mirror;

namespace WalBridge.Connector.Pipeline;

/// <summary>
/// Keeps the pipeline running: with high availability it first takes the leadership (<see cref="LeaderLock"/>, before
/// anything touches Kafka), then runs attempts; a transient failure (network, broker or PostgreSQL unavailable, an
/// aborted or unknown-outcome Kafka transaction) restarts the attempt from the position committed in Kafka after a
/// bounded backoff; a fatal one ends <see cref="RunAsync"/> with the exception. Operator requests (pause, resume,
/// restart through <see cref="Status"/>) stop the attempt gracefully.
/// </summary>
/// <remarks>
/// Threading: <see cref="RunAsync"/> once, on the host's task. <see cref="Progress"/>, <see cref="Status"/>,
/// <see cref="Metrics"/> and <see cref="Source"/> are thread-safe and may be read (and <see cref="Status"/>'s requests
/// sent) from any thread, before, during and after the run.
/// </remarks>
public sealed partial class ConnectorRunner
{
    private static readonly TimeSpan s_maxBackoff = TimeSpan.FromSeconds(30);

    private readonly ConnectorConfig _config;
    private readonly ILogger _logger;
    private readonly LeaderLock? _leader;
    private DecodingMode _mode = DecodingMode.Initial;

    public ConnectorRunner(ConnectorConfig config, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _logger = logger;
        Source = new SourceMonitor(config, logger);
        _leader = config.HighAvailability ? new LeaderLock(config, Status, logger) : null;
        Metrics = new ConnectorMetrics(config, Status, Progress, Source, () => _leader?.Takeovers ?? 0);
        Progress.Metrics = Metrics;
    }

    /// <summary>The configuration this runner streams with.</summary>
    public ConnectorConfig Config => _config;

    /// <summary>Progress shared across attempts (for status output).</summary>
    public ProgressTracker Progress { get; } = new();

    /// <summary>The state, the last error and the operator controls.</summary>
    public ConnectorStatus Status { get; } = new();

    /// <summary>The Prometheus metrics.</summary>
    public ConnectorMetrics Metrics { get; }

    /// <summary>The polled source figures (WAL position, slot state).</summary>
    public SourceMonitor Source { get; }

    /// <summary>Runs until cancelled or, with <c>snapshot.mode = initial_only</c>, the snapshot is complete (returns normally), or a fatal error (throws).</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        RocksDbOffsetMirror? mirror = null;
        using var background = new CancellationTokenSource();
        var stats = ReportStatsAsync(background.Token);
        var monitor = Source.RunAsync(background.Token);
        try
        {
            var backoff = TimeSpan.FromSeconds(1);
            var attempt = 0;
            while (!cancellationToken.IsCancellationRequested)
            {
                if (Status.PauseRequested)
                {
                    Status.Enter(ConnectorState.Paused);
                    LogPaused(_logger, _config.SlotName, Progress.Committed);
                    try
                    {
                        await Status.WaitWhilePausedAsync(cancellationToken);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                    LogResumed(_logger, _config.SlotName);
                    Metrics.OnRestart("operator");
                }

                attempt++;
                var committedBefore = Progress.Committed;
                var operatorStop = Status.BeginAttempt();
                try
                {
                    if (_leader is not null)
                    {
                        // Leadership first: a standby waits here, before any Kafka call, so it never fences the leader.
                        await _leader.AcquireAsync(cancellationToken);
                    }
                    else
                    {
                        Status.SetLeader(true);
                    }

                    // Opened by the leader only: a standby on the same host may share state.dir (RocksDB locks it).
                    mirror ??= RocksDbOffsetMirror.Open(_config.StateDirectory);

                    Status.Enter(ConnectorState.Starting);
                    using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, operatorStop, _leader?.LostToken ?? CancellationToken.None);
                    var finished = await new ConnectorPipeline(_config, Progress, mirror, _logger, _mode, () => Status.Enter(ConnectorState.Streaming)).RunAsync(stop.Token);
                    if (cancellationToken.IsCancellationRequested || finished)
                    {
                        return;
                    }

                    RecordPlannedStop(operatorStop);
                    attempt = 0;
                    backoff = TimeSpan.FromSeconds(1);
                    continue;
                }
                catch (ReplicationRestartException e)
                {
                    // Not a failure: the stream starts again from the committed position with other options
                    // (text tuples, or no streaming of in-progress transactions for a while).
                    _mode = e.Next(_mode);
                    LogPlannedRestart(_logger, _config.SlotName, e.Message);
                    Metrics.OnRestart("planned");
                    attempt = 0;
                    continue;
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return;
                }
                catch (OperationCanceledException) when (operatorStop.IsCancellationRequested || _leader?.LostToken.IsCancellationRequested == true)
                {
                    RecordPlannedStop(operatorStop);
                    attempt = 0;
                    continue;
                }
                catch (Exception e) when (FailureClassification.Classify(e, _leader is { IsHeld: false }) != FailureKind.Fatal)
                {
                    var kind = FailureClassification.Classify(e, _leader is { IsHeld: false });
                    Metrics.OnFailure(e, kind);
                    if (Progress.Committed > committedBefore)
                    {
                        backoff = TimeSpan.FromSeconds(1);
                    }

                    var cause = FailureClassification.Describe(e);
                    Status.RecordError(kind, cause);
                    Status.Enter(ConnectorState.Retrying, $"retrying in {backoff.TotalSeconds:F0} s");
                    // One line an operator can read (what failed and why, what happens next, what to check); the stack trace only at debug level.
                    var advice = FailureClassification.Advice(e, _config);
                    if (advice is null)
                    {
                        LogTransientFailure(_logger, _config.SlotName, attempt, cause, Progress.Committed, backoff.TotalSeconds);
                    }
                    else
                    {
                        LogTransientFailureWithAdvice(_logger, _config.SlotName, attempt, cause, Progress.Committed, backoff.TotalSeconds, advice);
                    }

                    LogTransientFailureDetail(_logger, e, _config.SlotName);
                    try
                    {
                        await Task.Delay(backoff, cancellationToken);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                    backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, s_maxBackoff.Ticks));
                    Metrics.OnRestart("transient");
                }
                catch (Exception e)
                {
                    Metrics.OnFailure(e, FailureKind.Fatal);
                    Status.RecordError(FailureKind.Fatal, FailureClassification.Describe(e));
                    Status.Enter(ConnectorState.Failed);
                    throw;
                }
            }
        }
        finally
        {
            if (Status.State != ConnectorState.Failed)
            {
                Status.Enter(ConnectorState.Stopped);
            }

            await background.CancelAsync();
            await stats;
            await monitor;
            if (_leader is not null)
            {
                await _leader.DisposeAsync();
            }

            mirror?.Dispose();
        }
    }

    /// <summary>An attempt ended without failing and without a stop of the host: an operator's request or a lost leadership.</summary>
    private void RecordPlannedStop(CancellationToken operatorStop)
    {
        if (operatorStop.IsCancellationRequested)
        {
            if (!Status.PauseRequested)
            {
                LogOperatorRestart(_logger, _config.SlotName, Progress.Committed);
                Metrics.OnRestart("operator");
            }

            return;
        }

        Metrics.OnRestart("leadership");
    }

    /// <summary>Every 30 s: progress and memory, for operators (and for finding where memory goes).</summary>
    private async Task ReportStatsAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Environment.GetEnvironmentVariable("WALBRIDGE_STATS_SECONDS") is { } s && int.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : 30));
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                if (!_logger.IsEnabled(LogLevel.Information) || Status.State is not (ConnectorState.Streaming or ConnectorState.Retrying))
                {
                    continue;
                }

                using var process = System.Diagnostics.Process.GetCurrentProcess();
                var heapMb = GC.GetGCMemoryInfo().HeapSizeBytes >> 20;
                var liveMb = GC.GetTotalMemory(false) >> 20;
                LogStats(_logger, _config.SlotName, Progress.Committed, Progress.CommittedTransactions, Progress.CommittedRows, Progress.Queued,
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

    [LoggerMessage(EventId = 3005, Level = LogLevel.Warning,
        Message = "Pipeline for slot {Slot} failed (attempt {Attempt}): {Cause}; retrying in {BackoffSeconds} s from committed LSN {Lsn}; check {Advice}")]
    private static partial void LogTransientFailureWithAdvice(ILogger logger, string slot, int attempt, string cause, WalBridge.Offsets.Lsn lsn, double backoffSeconds, string advice);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Debug, Message = "Pipeline failure of slot {Slot}, in full")]
    private static partial void LogTransientFailureDetail(ILogger logger, Exception exception, string slot);

    [LoggerMessage(EventId = 4010, Level = LogLevel.Information, Message = "Slot {Slot} paused by an operator, committed through {Lsn}; the leadership is kept")]
    private static partial void LogPaused(ILogger logger, string slot, WalBridge.Offsets.Lsn lsn);

    [LoggerMessage(EventId = 4011, Level = LogLevel.Information, Message = "Slot {Slot} resumed by an operator")]
    private static partial void LogResumed(ILogger logger, string slot);

    [LoggerMessage(EventId = 4012, Level = LogLevel.Information, Message = "Slot {Slot} restarted by an operator from committed LSN {Lsn}")]
    private static partial void LogOperatorRestart(ILogger logger, string slot, WalBridge.Offsets.Lsn lsn);
}
