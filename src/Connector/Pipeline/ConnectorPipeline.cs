using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Kafka;
using WalBridge.Connector.Replication;
using WalBridge.Offsets;
using WalBridge.Offsets.Mirror;

namespace WalBridge.Connector.Pipeline;

/// <summary>
/// The start position would lose or duplicate data, so the connector refuses to start. Fatal.
/// </summary>
public sealed class UnsafeStartException : Exception
{
    public UnsafeStartException(string message) : base(message) { }
    public UnsafeStartException(string message, Exception inner) : base(message, inner) { }
    public UnsafeStartException() { }
}

/// <summary>
/// One attempt at streaming: prepare the source, fence older producers, find the committed
/// position in Kafka, then run the replication reader and the Kafka loop until cancellation or
/// the first failure. A new attempt starts from whatever Kafka has committed.
/// </summary>
internal sealed partial class ConnectorPipeline(ConnectorConfig config, ProgressTracker progress, IOffsetMirror? mirror, ILogger logger, DecodingMode mode)
{
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var loop = new KafkaTransactionLoop(config, progress, mirror, logger);
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
            await Quietly(kafkaStart);
            throw;
        }
        progress.OnSourceReady();
        var kafkaOffset = await kafkaStart;
        Lsn committed;
        try
        {
            committed = CheckStartPosition(source, kafkaOffset, loop.OffsetKey);
        }
        catch (UnsafeStartException) when (source.SlotCreated)
        {
            // The slot this start created would only pin WAL: remove it again.
            await new SourceSetup(config, logger).DropSlotAsync(CancellationToken.None);
            throw;
        }
        progress.Reset(committed);

        var channel = Channel.CreateBounded<SourceTransaction>(new BoundedChannelOptions(config.QueueMaxTransactions)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = true,
        });
        using var kafkaStop = new CancellationTokenSource();
        using var readerStop = new CancellationTokenSource();
        var kafka = Task.Factory.StartNew(
            () => loop.Run(channel.Reader, source.Identity, kafkaStop.Token),
            CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        var replication = new ReplicationReader(config, progress, logger, mode);
        var reader = replication.RunAsync(committed, channel.Writer, readerStop.Token);
        var heartbeat = HeartbeatAsync(readerStop.Token);
        var stopRequested = Task.Delay(Timeout.Infinite, cancellationToken);

        var first = await Task.WhenAny(kafka, reader, heartbeat, stopRequested);
        if (first == stopRequested)
        {
            // Graceful stop: the Kafka loop finishes (or aborts) its open transaction, the final
            // position goes to PostgreSQL on the still-open stream, then streaming stops.
            await kafkaStop.CancelAsync();
            await Task.WhenAny(kafka, Task.Delay(TimeSpan.FromSeconds(40), CancellationToken.None));
            if (kafka.IsCompletedSuccessfully)
                await replication.SendFinalStatusAsync(TimeSpan.FromSeconds(5));
            await readerStop.CancelAsync();
            channel.Writer.TryComplete();
            await Task.WhenAll(Quietly(kafka), Quietly(reader), Quietly(heartbeat));
            return;
        }

        await kafkaStop.CancelAsync();
        await readerStop.CancelAsync();
        channel.Writer.TryComplete();
        await Task.WhenAll(Quietly(kafka), Quietly(reader), Quietly(heartbeat));
        // The first failure is the cause; the others only saw the cancellation it caused.
        await first;
        throw new InvalidOperationException("The pipeline stopped without an error or a stop request.");
    }

    private static async Task Quietly(Task task)
    {
        try
        {
            await task;
        }
        catch (Exception)
        {
            // Observed here; the caller reports the first failure only.
        }
    }

    /// <summary>
    /// When nothing was committed for a heartbeat interval, emits a non-transactional logical
    /// decoding message with this connector's prefix. It comes back through the stream after
    /// every earlier commit, so its position can be recorded in Kafka and acknowledged: an idle
    /// slot (published tables quiet, others busy) stops pinning WAL.
    /// </summary>
    private async Task HeartbeatAsync(CancellationToken cancellationToken)
    {
        if (config.HeartbeatInterval <= TimeSpan.Zero)
            return;
        var lastCommitted = progress.Committed;
        while (true)
        {
            try
            {
                await Task.Delay(config.HeartbeatInterval, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            var committed = progress.Committed;
            if (committed != lastCommitted || progress.Queued > 0)
            {
                lastCommitted = committed;
                continue;
            }
            try
            {
                await using var connection = new Npgsql.NpgsqlConnection(config.ConnectionString(replication: false));
                await connection.OpenAsync(cancellationToken);
                await using var emit = new Npgsql.NpgsqlCommand("SELECT pg_logical_emit_message(false, $1, ''::text)", connection);
                emit.Parameters.Add(new Npgsql.NpgsqlParameter { Value = config.HeartbeatPrefix });
                await emit.ExecuteNonQueryAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Npgsql.NpgsqlException e)
            {
                // Not fatal: without heartbeats only idle acknowledgement stops.
                LogHeartbeatFailed(logger, config.SlotName, e.Message);
            }
        }
    }

    private Lsn CheckStartPosition(SourceState source, OffsetRecord? kafkaOffset, OffsetKey key)
    {
        if (mirror is not null)
        {
            var mirrored = mirror.Read(key);
            if (mirrored is not null && (kafkaOffset is null || mirrored.CommitLsn != kafkaOffset.CommitLsn))
                LogMirrorDisagrees(logger, config.SlotName, mirrored.CommitLsn, kafkaOffset?.CommitLsn);
        }

        if (kafkaOffset is null)
        {
            LogFirstStart(logger, config.SlotName, source.SlotConfirmedFlush);
            return Lsn.Zero;
        }

        var recorded = kafkaOffset.Source;
        if (recorded.SystemIdentifier != source.Identity.SystemIdentifier)
            throw new UnsafeStartException(
                $"The offsets topic '{config.OffsetsTopic}' records database system {recorded.SystemIdentifier} but the source is system {source.Identity.SystemIdentifier}: this is another PostgreSQL cluster. " +
                "Use a new 'name' (and topic.prefix) for a new source, or restore the original source.");
        if (source.SlotCreated)
            throw new UnsafeStartException(
                $"Kafka holds changes through LSN {kafkaOffset.CommitLsn} for slot '{config.SlotName}', but the slot did not exist and was just created at {source.SlotConfirmedFlush}: changes in between are lost from the slot. " +
                "Re-snapshot into new topics (a new 'name'/topic.prefix) or accept the gap by deleting this connector's offsets record.");
        if (source.SlotConfirmedFlush > kafkaOffset.CommitLsn)
            throw new UnsafeStartException(
                $"Replication slot '{config.SlotName}' is at {source.SlotConfirmedFlush}, ahead of the last LSN committed to Kafka ({kafkaOffset.CommitLsn}): the slot was dropped and recreated or advanced by someone else, and the changes in between cannot be re-read. " +
                "Re-snapshot into new topics (a new 'name'/topic.prefix), or accept the gap by deleting this connector's offsets record.");

        LogResuming(logger, config.SlotName, kafkaOffset.CommitLsn, source.SlotConfirmedFlush);
        return kafkaOffset.CommitLsn;
    }

    [LoggerMessage(EventId = 3104, Level = LogLevel.Warning, Message = "Heartbeat message for slot {Slot} failed: {Reason}")]
    private static partial void LogHeartbeatFailed(ILogger logger, string slot, string reason);

    [LoggerMessage(EventId = 3101, Level = LogLevel.Information, Message = "No committed position in Kafka for slot {Slot}: starting at the slot's position {Lsn}")]
    private static partial void LogFirstStart(ILogger logger, string slot, Lsn lsn);

    [LoggerMessage(EventId = 3102, Level = LogLevel.Information, Message = "Resuming slot {Slot} after LSN {Lsn} committed in Kafka (slot confirmed through {SlotLsn})")]
    private static partial void LogResuming(ILogger logger, string slot, Lsn lsn, Lsn slotLsn);

    [LoggerMessage(EventId = 3103, Level = LogLevel.Warning, Message = "The local mirror for slot {Slot} says {Lsn} but Kafka says {KafkaLsn}; Kafka is the source of truth")]
    private static partial void LogMirrorDisagrees(ILogger logger, string slot, Lsn lsn, Lsn? kafkaLsn);
}
