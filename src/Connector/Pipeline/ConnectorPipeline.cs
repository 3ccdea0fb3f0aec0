using Microsoft.Extensions.Logging;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Decoding;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Kafka;
using WalBridge.Connector.Queue;
using WalBridge.Connector.Replication;
using WalBridge.Connector.Source;
using WalBridge.Offsets.Mirror;

namespace WalBridge.Connector.Pipeline;

/// <summary>
/// One attempt at streaming: prepare the source, fence older producers, find the committed position in Kafka, then
/// run the replication reader, the Kafka loop and the heartbeat until cancellation or the first failure. A new
/// attempt starts from whatever Kafka has committed.
/// </summary>
/// <remarks>
/// Threads: the replication reader and the heartbeat are tasks; the Kafka loop runs on a dedicated thread (its calls
/// block). They meet in the <see cref="TransactionQueue"/> and the <see cref="ProgressTracker"/>.
/// </remarks>
/// <param name="config">The connector configuration.</param>
/// <param name="progress">Shared progress (committed position, queue accounting, metrics hooks).</param>
/// <param name="mirror">The local copy of the committed position, or null.</param>
/// <param name="logger">For the stages' log lines.</param>
/// <param name="mode">Which decoding options this attempt may use.</param>
/// <param name="onStreaming">Called once the start position is decided and streaming begins (for the status), or null.</param>
internal sealed partial class ConnectorPipeline(ConnectorConfig config, ProgressTracker progress, IOffsetMirror? mirror, ILogger logger, DecodingMode mode, Action? onStreaming = null)
{
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var loop = new KafkaTransactionLoop(config, progress, mirror, logger);
        // Kafka's start-up order (invariant I3: fence first, then read what is committed) runs while
        // the source is prepared; the two are independent and both must finish before streaming.
        var kafkaStart = Task.Run(() =>
        {
            loop.Initialize();
            return loop.ReadCommittedOffset(cancellationToken);
        }, cancellationToken);
        SourceState source;
        try
        {
            source = await new SourceSetup(config, logger).PrepareAsync(cancellationToken);
        }
        catch
        {
            // Report the source's failure at once: Kafka's start-up (InitTransactions may wait up to its timeout) ends
            // on its own and only then releases its producer.
            _ = Quietly(kafkaStart, "Kafka start-up").ContinueWith(_ => loop.Dispose(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            throw;
        }
        using var disposeLoop = loop;
        progress.OnSourceReady();
        var kafkaOffset = await kafkaStart;
        Offsets.Lsn committed;
        try
        {
            committed = StartPosition.Decide(config, source, kafkaOffset, mirror, loop.OffsetKey, logger);
        }
        catch (UnsafeStartException) when (source.SlotCreated)
        {
            // The slot this start created would only pin WAL: remove it again.
            await new SourceSetup(config, logger).DropSlotAsync(CancellationToken.None);
            throw;
        }
        progress.Reset(committed);
        onStreaming?.Invoke();

        var queue = new TransactionQueue(config.QueueMaxTransactions, config.QueueMaxBytes, progress);
        using var kafkaStop = new CancellationTokenSource();
        using var readerStop = new CancellationTokenSource();
        var kafka = Task.Factory.StartNew(
            () => loop.Run(queue.Reader, source.Identity, kafkaStop.Token),
            CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        using var replication = new ReplicationReader(config, progress, logger, mode);
        var reader = replication.RunAsync(committed, queue, readerStop.Token);
        // With heartbeats off (heartbeat.interval.ms = 0) the emitter returns at once, which must not end the attempt.
        var heartbeat = config.HeartbeatInterval > TimeSpan.Zero
            ? new HeartbeatEmitter(config, progress, logger).RunAsync(readerStop.Token)
            : Task.Delay(Timeout.Infinite, readerStop.Token);
        var stopRequested = Task.Delay(Timeout.Infinite, cancellationToken);

        try
        {
            var first = await Task.WhenAny(kafka, reader, heartbeat, stopRequested);
            if (first == stopRequested)
            {
                // Graceful stop: the Kafka loop finishes (or aborts) its open transaction, the final
                // position goes to PostgreSQL on the still-open stream, then streaming stops.
                await kafkaStop.CancelAsync();
                await Task.WhenAny(kafka, Task.Delay(GracefulStop.KafkaFinish, CancellationToken.None));
                if (kafka.IsCompletedSuccessfully)
                {
                    await replication.SendFinalStatusAsync(GracefulStop.FinalStatus);
                }

                await readerStop.CancelAsync();
                queue.Complete();
                await Task.WhenAll(Quietly(kafka, "Kafka loop"), Quietly(reader, "replication reader"), Quietly(heartbeat, "heartbeat"));
                return;
            }

            await kafkaStop.CancelAsync();
            await readerStop.CancelAsync();
            queue.Complete();
            // The first failure is the cause; the others only saw the cancellation it caused.
            await Task.WhenAll(Quietly(kafka, "Kafka loop", first), Quietly(reader, "replication reader", first), Quietly(heartbeat, "heartbeat", first));
            await first;
            throw new InvalidOperationException("The pipeline stopped without an error or a stop request.");
        }
        finally
        {
            queue.DisposeRemaining();
        }
    }

    /// <summary>
    /// Waits for a part that is being stopped. Its failure, unless it is the <paramref name="cause"/> reported by the
    /// caller or a cancellation, is logged: it is never the reason the attempt ends, but an operator should see it.
    /// </summary>
    private async Task Quietly(Task task, string part, Task? cause = null)
    {
        try
        {
            await task;
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e) when (task != cause)
        {
            LogPartFailedWhileStopping(logger, config.SlotName, part, e);
        }
        catch (Exception) when (task == cause)
        {
            // The caller rethrows it.
        }
    }

    [LoggerMessage(EventId = 3105, Level = LogLevel.Debug, Message = "While the pipeline of slot {Slot} stopped, the {Part} failed too")]
    private static partial void LogPartFailedWhileStopping(ILogger logger, string slot, string part, Exception exception);
}
