using System.Buffers;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql.Replication;
using Npgsql.Replication.Internal;
using NpgsqlTypes;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Diagnostics;
using WalBridge.Connector.Pipeline;
using WalBridge.Connector.Replication.PgOutput;
using WalBridge.Offsets;

namespace WalBridge.Connector.Replication;

/// <summary>
/// Streams the slot through Npgsql's logical replication connection (raw messages), decodes each
/// message with the plugin's decoder (<see cref="IChangeStreamDecoder"/>: pgoutput, or wal2arrow's
/// framing with the Arrow streams passed through) and hands complete source transactions to the Kafka loop
/// through a bounded channel. When the channel is full the reader waits: PostgreSQL's walsender
/// then waits too, so nothing is dropped and memory stays bounded by the channel's capacity.
/// </summary>
/// <remarks>
/// Acknowledgement: the reader reports a position as flushed only after <see cref="ProgressTracker.Committed"/>
/// moved past it (Kafka commit and mirror write done). Npgsql keeps sending status updates on its own
/// timer even while the reader is blocked, so <c>wal_sender_timeout</c> does not fire.
/// One instance streams once; create a new one to restart.
/// </remarks>
internal sealed partial class ReplicationReader(ConnectorConfig config, ProgressTracker progress, ILogger logger, DecodingMode mode)
{
    private LogicalReplicationConnection? _connection;
    private volatile bool _streaming;
    private Lsn _start;

    /// <summary>
    /// Reports the committed position to PostgreSQL now, on the live stream. Used at shutdown after
    /// the Kafka loop finished its last transaction. Best effort: a broken connection is ignored
    /// (the slot then keeps the older position, which only means re-sending, never loss).
    /// </summary>
    public async Task SendFinalStatusAsync(TimeSpan timeout)
    {
        // Only a live stream takes a status update, and only a position past the start is news.
        if (_connection is not { } connection || !_streaming || progress.Committed <= _start)
            return;
        var lsn = new NpgsqlLogSequenceNumber(progress.Committed.Value);
        connection.LastAppliedLsn = lsn;
        connection.LastFlushedLsn = lsn;
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await connection.SendStatusUpdate(cancel.Token);
            LogFinalStatus(logger, config.SlotName, progress.Committed);
        }
        // NullReferenceException: Npgsql throws it when the stream is being torn down concurrently.
        catch (Exception e) when (e is OperationCanceledException or Npgsql.NpgsqlException or InvalidOperationException or ObjectDisposedException or NullReferenceException)
        {
            LogFinalStatusFailed(logger, config.SlotName, e.Message);
        }
    }

    /// <summary>
    /// Streams until cancelled or failed. Transactions with a commit LSN at or below
    /// <paramref name="committed"/> are dropped (already in Kafka).
    /// </summary>
    public async Task RunAsync(Lsn committed, ChannelWriter<SourceTransaction> output, CancellationToken cancellationToken)
    {
        await using var connection = new LogicalReplicationConnection(config.ConnectionString(replication: true))
        {
            WalReceiverStatusInterval = config.StatusInterval,
            WalReceiverTimeout = TimeSpan.FromSeconds(120),
        };
        await connection.Open(cancellationToken);
        _connection = connection;
        _start = committed;
        var start = new NpgsqlLogSequenceNumber(committed.Value);
        connection.LastAppliedLsn = start;
        connection.LastFlushedLsn = start;

        SpillFile.Sweep(config.SpillDirectory);
        using IChangeStreamDecoder decoder = config.Plugin == DecodingPlugin.Wal2Arrow
            ? new Wal2Arrow.Wal2ArrowChangeDecoder(config, committed)
            : new PgOutputChangeDecoder(config, committed, mode.BinaryTuplesAllowed, mode.StreamingAllowed(committed), logger);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var acknowledger = AcknowledgeAsync(connection, committed, stop.Token);

        var slot = new RawSlot(decoder.PluginName, new ReplicationSlotOptions(config.SlotName, start));
        var options = decoder.StartOptions(connection.PostgreSqlVersion.Major);
        LogStarting(logger, config.SlotName, committed, decoder.Protocol);

        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            await foreach (var message in connection.StartLogicalReplication(slot, stop.Token, start, options, bypassingStream: true))
            {
                _streaming = true;
                // The message's declared length: a stream that ends before it means the connection
                // broke mid-message (transient), not a malformed message (fatal).
                var expected = DeclaredLength(message.Data);
                var lsn = new Lsn((ulong)message.WalStart);
                int length;
                if (expected >= 0)
                {
                    // The usual case: the length is known, one read fills the buffer (a short read means
                    // the connection broke mid-message: transient, not a malformed message).
                    if (expected > buffer.Length)
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = ArrayPool<byte>.Shared.Rent((int)expected);
                    }
                    length = await message.Data.ReadAtLeastAsync(buffer.AsMemory(0, (int)expected), (int)expected, throwOnEndOfStream: false, stop.Token);
                    if (length != expected)
                        throw new IOException($"The replication connection ended after {length} of the {expected} bytes of the message at {lsn}; reconnecting.");
                }
                else
                {
                    length = 0;
                    while (true)
                    {
                        if (length == buffer.Length)
                        {
                            var larger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                            buffer.AsSpan(0, length).CopyTo(larger);
                            ArrayPool<byte>.Shared.Return(buffer);
                            buffer = larger;
                        }
                        var read = await message.Data.ReadAsync(buffer.AsMemory(length), stop.Token);
                        if (read == 0)
                            break;
                        length += read;
                    }
                }
                // A transaction that needed the stream without streaming is in Kafka now: stream again.
                if (!mode.StreamingAllowed(committed) && mode.StreamingAllowed(progress.Committed))
                    throw new StreamingResumeException(progress.Committed);
                decoder.Process(buffer.AsSpan(0, length), lsn);
                progress.OnReceived(new Lsn((ulong)message.WalEnd));
                if (decoder.TryTakeCompleted(out var transaction))
                {
                    if (!transaction.IsHeartbeat)
                        FaultInjection.Reach(FaultPoint.AfterCommitMessage);
                    // The queue is bounded by count (the channel) and by the payload bytes it holds in
                    // memory: while over budget, wait for commits. Reading stops, so does the walsender.
                    while (progress.QueuedMemoryBytes > config.QueueMaxBytes && progress.Queued > 0)
                        await progress.WaitForCommitAsync(TimeSpan.FromSeconds(1), stop.Token);
                    progress.OnQueued(transaction.MemoryBytes);
                    await output.WriteAsync(transaction, stop.Token);
                }
            }
        }
        finally
        {
            _connection = null;
            _streaming = false;
            ArrayPool<byte>.Shared.Return(buffer);
            await stop.CancelAsync();
            try
            {
                await acknowledger;
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    private static long DeclaredLength(Stream data)
    {
        try
        {
            return data.Length;
        }
        catch (NotSupportedException)
        {
            return -1;
        }
    }

    /// <summary>
    /// Reports each new committed position to PostgreSQL as flushed and applied. Never reports
    /// anything that is not committed to Kafka (invariant I1).
    /// </summary>
    private async Task AcknowledgeAsync(LogicalReplicationConnection connection, Lsn start, CancellationToken cancellationToken)
    {
        var acknowledged = start;
        while (!cancellationToken.IsCancellationRequested)
        {
            await progress.WaitForCommitAsync(config.StatusInterval, cancellationToken);
            var committed = progress.Committed;
            if (committed <= acknowledged)
                continue;
            var lsn = new NpgsqlLogSequenceNumber(committed.Value);
            connection.LastAppliedLsn = lsn;
            connection.LastFlushedLsn = lsn;
            await connection.SendStatusUpdate(cancellationToken);
            acknowledged = committed;
            LogAcknowledged(logger, config.SlotName, committed);
        }
    }

    /// <summary>The raw-message slot type Npgsql needs for a plugin whose output we decode ourselves.</summary>
    private sealed class RawSlot(string plugin, ReplicationSlotOptions options) : LogicalReplicationSlot(plugin, options);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Information, Message = "Final status update for slot {Slot}: flushed through {Lsn}")]
    private static partial void LogFinalStatus(ILogger logger, string slot, Lsn lsn);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Warning, Message = "Final status update for slot {Slot} failed: {Reason}")]
    private static partial void LogFinalStatusFailed(ILogger logger, string slot, string reason);

    [LoggerMessage(EventId = 1100, Level = LogLevel.Information, Message = "Streaming slot {Slot} from {Lsn} with {Protocol}")]
    private static partial void LogStarting(ILogger logger, string slot, Lsn lsn, string protocol);

    [LoggerMessage(EventId = 1101, Level = LogLevel.Debug, Message = "Acknowledged slot {Slot} through {Lsn}")]
    private static partial void LogAcknowledged(ILogger logger, string slot, Lsn lsn);
}
