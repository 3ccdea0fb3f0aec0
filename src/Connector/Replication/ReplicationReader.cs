using System.Buffers;
using Microsoft.Extensions.Logging;
using Npgsql.Replication;
using Npgsql.Replication.Internal;
using NpgsqlTypes;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Decoding;
using WalBridge.Connector.Decoding.PgOutput;
using WalBridge.Connector.Decoding.Wal2Arrow;
using WalBridge.Connector.Diagnostics;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Queue;
using WalBridge.Connector.Transactions;
using WalBridge.Offsets;

namespace WalBridge.Connector.Replication;

/// <summary>
/// Streams the slot through Npgsql's logical replication connection (raw messages), decodes each message with the
/// plugin's decoder (<see cref="IChangeStreamDecoder"/>: pgoutput, or wal2arrow's framing with the Arrow streams
/// passed through) and hands complete source transactions to the Kafka loop through the
/// <see cref="TransactionQueue"/>. When the queue is full the reader waits: PostgreSQL's walsender then waits too,
/// so nothing is dropped and memory stays bounded.
/// </summary>
/// <remarks>
/// Acknowledgement: the reader reports a position as flushed only after <see cref="ProgressTracker.Committed"/> moved
/// past it (Kafka commit and mirror write done). Npgsql keeps sending status updates on its own timer even while the
/// reader is blocked, so <c>wal_sender_timeout</c> does not fire. One instance streams once; create a new one to
/// restart. Threading: <see cref="RunAsync"/> runs as one task; <see cref="SendFinalStatusAsync"/> may be called
/// from another, and is serialised with the connection's teardown.
/// </remarks>
/// <param name="config">The connector configuration.</param>
/// <param name="progress">Shared progress.</param>
/// <param name="logger">For the reader's log lines.</param>
/// <param name="mode">Which decoding options this attempt may use.</param>
/// <param name="windows">The attempt's incremental snapshot windows (the decoders report watermarks and watched batches to them), or null.</param>
internal sealed partial class ReplicationReader(ConnectorConfig config, ProgressTracker progress, ILogger logger, DecodingMode mode, SnapshotWindows? windows = null) : IDisposable
{
    /// <summary>Guards <see cref="_connection"/>: a final status update never meets a connection being disposed.</summary>
    private readonly SemaphoreSlim _connectionGate = new(1, 1);
    private LogicalReplicationConnection? _connection;
    private volatile bool _streaming;
    private Lsn _start;

    /// <summary>
    /// Reports the committed position to PostgreSQL now, on the live stream. Used at shutdown after the Kafka loop
    /// finished its last transaction. Best effort: a broken connection is logged and ignored (the slot then keeps the
    /// older position, which only means re-sending, never loss).
    /// </summary>
    public async Task SendFinalStatusAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await _connectionGate.WaitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        try
        {
            // Only a live stream takes a status update, and only a position past the start is news.
            if (_connection is not { } connection || !_streaming || progress.Committed <= _start)
            {
                return;
            }

            var lsn = new NpgsqlLogSequenceNumber(progress.Committed.Value);
            connection.LastAppliedLsn = lsn;
            connection.LastFlushedLsn = lsn;
            await connection.SendStatusUpdate(cancel.Token);
            LogFinalStatus(logger, config.SlotName, progress.Committed);
        }
        catch (Exception e) when (e is OperationCanceledException or Npgsql.NpgsqlException or InvalidOperationException or ObjectDisposedException or IOException)
        {
            LogFinalStatusFailed(logger, config.SlotName, e.Message);
        }
        finally
        {
            _connectionGate.Release();
        }
    }

    /// <summary>
    /// Streams until cancelled or failed. Transactions with a commit LSN at or below <paramref name="committed"/> are
    /// dropped (already in Kafka).
    /// </summary>
    /// <exception cref="ReplicationRestartException">The stream must restart with other options (not a failure).</exception>
    public async Task RunAsync(Lsn committed, TransactionQueue queue, CancellationToken cancellationToken)
    {
        var connection = new LogicalReplicationConnection(config.ConnectionString(replication: true))
        {
            WalReceiverStatusInterval = config.StatusInterval,
            WalReceiverTimeout = TimeSpan.FromSeconds(120),
        };
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task? acknowledger = null;
        var acknowledgement = new AcknowledgementState();
        using var buffer = new MessageBuffer();
        try
        {
            await connection.Open(cancellationToken);
            _connection = connection;
            _start = committed;
            var start = new NpgsqlLogSequenceNumber(committed.Value);
            connection.LastAppliedLsn = start;
            connection.LastFlushedLsn = start;

            SpillFile.Sweep(config.SpillDirectory);
            using IChangeStreamDecoder decoder = config.Plugin == DecodingPlugin.Wal2Arrow
                ? new Wal2ArrowChangeDecoder(config, committed, logger, windows)
                : new PgOutputChangeDecoder(config, committed, mode, logger, progress.Metrics, windows);

            var slot = new RawSlot(decoder.Plugin.Name(), new ReplicationSlotOptions(config.SlotName, start));
            var options = decoder.StartOptions(connection.PostgreSqlVersion.Major);
            LogStarting(logger, config.SlotName, committed, decoder.Protocol);

            await using var messages = connection.StartLogicalReplication(slot, stop.Token, start, options, bypassingStream: true).GetAsyncEnumerator(stop.Token);
            while (true)
            {
                var next = messages.MoveNextAsync();
                // Nothing more waiting on the connection: the open group goes to Kafka now rather than after the
                // next message (which may be a while). Under load the next message is usually buffered already,
                // and the group keeps growing.
                if (!next.IsCompleted && decoder.TryTakeGroup(inputIdle: true, out var idle))
                {
                    await HandOverAsync(idle, queue, stop.Token);
                }

                if (!await next)
                {
                    break;
                }

                var message = messages.Current;
                if (!_streaming)
                {
                    // Status updates are possible only once the stream runs; the first one reports the position
                    // this attempt starts from (what a previous attempt committed may not have been reported yet).
                    _streaming = true;
                    acknowledger = AcknowledgeAsync(connection, acknowledgement, stop);
                }
                var lsn = new Lsn((ulong)message.WalStart);
                var length = await ReadMessageAsync(message.Data, lsn, buffer, stop.Token);
                // A transaction that needed the stream without streaming is in Kafka now: stream again.
                if (!mode.StreamingAllowed(committed) && mode.StreamingAllowed(progress.Committed))
                {
                    throw new StreamingResumeException(progress.Committed);
                }

                decoder.Process(buffer.Array.AsSpan(0, length), lsn);
                progress.OnReceived(new Lsn((ulong)message.WalEnd));
                if (decoder.TryTakeGroup(inputIdle: false, out var group))
                {
                    await HandOverAsync(group, queue, stop.Token);
                }
            }
        }
        catch (OperationCanceledException e) when (acknowledgement.Failure is { } failure && !cancellationToken.IsCancellationRequested)
        {
            throw new ReplicationConnectionLostException(
                $"Reporting the committed position to PostgreSQL failed ({failure.GetType().Name}: {failure.Message}); reconnecting.", new AggregateException(failure, e));
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException && ThrownByNpgsql(e))
        {
            // Npgsql fails this way (not with an NpgsqlException) when the server goes away in the middle of
            // starting or reading the stream, e.g. at a PostgreSQL crash-restart: the connection is lost.
            throw new ReplicationConnectionLostException(
                $"The replication connection failed inside Npgsql ({e.GetType().Name}: {e.Message}); reconnecting.", e);
        }
        finally
        {
            _streaming = false;
            await stop.CancelAsync();
            if (acknowledger is not null)
            {
                await acknowledger; // never throws: failures are kept in the acknowledgement state
            }

            await _connectionGate.WaitAsync(CancellationToken.None);
            try
            {
                _connection = null;
                await connection.DisposeAsync();
            }
            finally
            {
                _connectionGate.Release();
            }
        }
    }

    private static async ValueTask HandOverAsync(TransactionGroup group, TransactionQueue queue, CancellationToken cancellationToken)
    {
        if (!group.IsHeartbeat)
        {
            FaultInjection.Reach(FaultPoint.AfterCommitMessage);
        }

        await queue.EnqueueAsync(group, cancellationToken);
    }

    /// <summary>
    /// Reads one message into <paramref name="buffer"/> (grown when needed) and returns its length. A stream that
    /// ends before its declared length means the connection broke mid-message (transient), not a malformed message
    /// (fatal).
    /// </summary>
    private static async ValueTask<int> ReadMessageAsync(Stream data, Lsn lsn, MessageBuffer buffer, CancellationToken cancellationToken)
    {
        var expected = DeclaredLength(data);
        if (expected >= 0)
        {
            // The usual case: the length is known, one read fills the buffer.
            buffer.Ensure((int)expected, keep: 0);
            var read = await data.ReadAtLeastAsync(buffer.Array.AsMemory(0, (int)expected), (int)expected, throwOnEndOfStream: false, cancellationToken);
            if (read != expected)
            {
                throw new ReplicationConnectionLostException($"The replication connection ended after {read} of the {expected} bytes of the message at {lsn}; reconnecting.");
            }

            return read;
        }
        var length = 0;
        while (true)
        {
            if (length == buffer.Array.Length)
            {
                buffer.Ensure(length * 2, keep: length);
            }

            var read = await data.ReadAsync(buffer.Array.AsMemory(length), cancellationToken);
            if (read == 0)
            {
                return length;
            }

            length += read;
        }
    }

    /// <summary>The reader's message buffer, rented from the pool; valid until the next message is read.</summary>
    private sealed class MessageBuffer : IDisposable
    {
        public byte[] Array { get; private set; } = ArrayPool<byte>.Shared.Rent(64 * 1024);

        /// <summary>Makes the buffer at least <paramref name="size"/> bytes, keeping its first <paramref name="keep"/> bytes.</summary>
        public void Ensure(int size, int keep)
        {
            if (size <= Array.Length)
            {
                return;
            }

            var larger = ArrayPool<byte>.Shared.Rent(size);
            Array.AsSpan(0, keep).CopyTo(larger);
            var old = Array;
            Array = larger;
            ArrayPool<byte>.Shared.Return(old);
        }

        public void Dispose() => ArrayPool<byte>.Shared.Return(Array);
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
    /// Reports each new committed position to PostgreSQL as flushed and applied, the first one at once. Never reports
    /// anything that is not committed to Kafka (invariant I1). A failed status update (the connection broke) is kept in
    /// <paramref name="state"/> and stops the stream, which then restarts from what Kafka committed.
    /// </summary>
    private async Task AcknowledgeAsync(LogicalReplicationConnection connection, AcknowledgementState state, CancellationTokenSource stop)
    {
        var acknowledged = Lsn.Zero;
        var first = true;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                if (!first)
                {
                    await progress.WaitForCommitAsync(config.StatusInterval, stop.Token);
                }

                first = false;
                var committed = progress.Committed;
                if (committed <= acknowledged || committed.IsZero)
                {
                    continue;
                }

                var lsn = new NpgsqlLogSequenceNumber(committed.Value);
                connection.LastAppliedLsn = lsn;
                connection.LastFlushedLsn = lsn;
                await connection.SendStatusUpdate(stop.Token);
                acknowledged = committed;
                LogAcknowledged(logger, config.SlotName, committed);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or InvalidOperationException or IOException or ObjectDisposedException or NullReferenceException)
        {
            state.Failure = e;
            await stop.CancelAsync();
        }
    }

    /// <summary>Whether <paramref name="e"/> was thrown by Npgsql's own code (not ours, and not a wrapped server error).</summary>
    private static bool ThrownByNpgsql(Exception e) => e.TargetSite?.DeclaringType?.Assembly == typeof(Npgsql.NpgsqlConnection).Assembly;

    /// <summary>What the acknowledger saw, for the reader to report.</summary>
    private sealed class AcknowledgementState
    {
        public volatile Exception? Failure;
    }

    public void Dispose() => _connectionGate.Dispose();

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
