using Microsoft.Extensions.Logging;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Decoding;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Kafka;
using WalBridge.Connector.Queue;
using WalBridge.Connector.Replication;
using WalBridge.Connector.Snapshot;
using WalBridge.Connector.Source;
using WalBridge.Connector.Transactions;
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
    /// <summary>Runs the attempt until a stop request or the first failure.</summary>
    /// <returns>True when the job is finished (<c>snapshot.mode = initial_only</c>: the snapshot is complete); false after a stop request.</returns>
    public async Task<bool> RunAsync(CancellationToken cancellationToken)
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
        var kafkaOffset = await kafkaStart;
        if (kafkaOffset is null && config.SnapshotMode.TakesInitialSnapshot() && !source.SlotCreated && !config.SlotFailover)
        {
            // The slot exists but nothing is committed in Kafka (an earlier start stopped before its first commit): a new
            // slot exports the snapshot that the stream continues without a gap; the old one holds nothing delivered.
            LogRecreatingSlot(logger, config.SlotName);
            source = await NewSlotAsync(source, cancellationToken);
        }

        Offsets.Lsn committed;
        bool resnapshot;
        try
        {
            committed = StartPosition.Decide(config, source, kafkaOffset, mirror, loop.OffsetKey, logger, out resnapshot);
        }
        catch (UnsafeStartException) when (source.SlotCreated)
        {
            // The slot this start created would only pin WAL: remove it again.
            await source.DisposeExportAsync();
            await new SourceSetup(config, logger).DropSlotAsync(CancellationToken.None);
            throw;
        }
        catch
        {
            await source.DisposeExportAsync();
            throw;
        }

        var restarted = false;
        Offsets.IncrementalSnapshotState? resumed = null;
        if (kafkaOffset?.Snapshot is { Complete: false } pending && !resnapshot && !config.SlotFailover && config.SnapshotMode != SnapshotMode.InitialOnly)
        {
            resumed = await ResumeWhileStreamingAsync(pending, kafkaOffset.Incremental, cancellationToken);
        }

        if (kafkaOffset?.Snapshot is { Complete: false } interrupted && !resnapshot && !config.SlotFailover && resumed is null)
        {
            // The interrupted snapshot's exported snapshot died with its session. Reading the remaining chunks from the
            // tables' current state would let the stream replay changes those rows already show (and repeat rows of
            // tables without a key); a new slot exports a new snapshot and the snapshot starts over in it, exactly.
            LogRestartingSnapshot(logger, config.SlotName, interrupted.Lsn, interrupted.Tables.Sum(t => t.DoneCount), interrupted.Tables.Sum(t => t.Chunks));
            source = await NewSlotAsync(source, cancellationToken);
            restarted = source.Export is not null;
        }

        var snapshot = resumed is null ? SnapshotStartOf(source, kafkaOffset, resnapshot || restarted) : null;
        if (snapshot?.Export is null)
        {
            await source.DisposeExportAsync();
        }

        if (snapshot is null && config.SnapshotMode == SnapshotMode.InitialOnly)
        {
            LogNothingToSnapshot(logger, config.SlotName, committed);
            return true;
        }

        if (snapshot is null || snapshot.Resume is not null)
        {
            // Kafka holds a position: every change committed from now on is delivered.
            progress.OnSourceReady();
        }
        // Otherwise a new snapshot signals it once its plan is committed (SnapshotRunner): only then does a restart find a
        // position to continue from instead of a slot without one (which it would recreate).

        progress.Reset(committed);
        progress.Snapshot.Load(resumed is not null ? kafkaOffset!.Snapshot : snapshot?.Resume);
        progress.Incremental = kafkaOffset?.Incremental;
        onStreaming?.Invoke();
        var windows = new SnapshotWindows(config.SlotName, resumed ?? kafkaOffset?.Incremental);
        var incremental = new IncrementalSnapshotRunner(config, progress, windows, logger);
        if (source.AddedTables.Count > 0 && kafkaOffset is not null && config.SnapshotMode.TakesInitialSnapshot() && (snapshot is null || snapshot.Resume is not null))
        {
            // Tables newly selected by table.include.list: their existing rows come through an incremental snapshot.
            var added = string.Join(", ", source.AddedTables);
            LogAddedTables(logger, config.SlotName, added);
            incremental.Request(new SnapshotRequest(SignalTable.NewId("auto"), source.AddedTables));
        }

        var queue = new TransactionQueue(config.QueueMaxTransactions, config.QueueMaxBytes, progress);
        if (resumed is not null)
        {
            // One offsets record completes the interrupted snapshot and queues its remaining chunks for the windows.
            await queue.EnqueueAsync(new TransactionGroup
            {
                Transactions = [],
                Tables = [],
                Messages = [],
                Position = committed,
                Snapshot = new SnapshotPart { Lsn = kafkaOffset!.Snapshot!.Lsn, Completes = true },
                Incremental = resumed,
            }, cancellationToken);
        }

        using var kafkaStop = new CancellationTokenSource();
        using var readerStop = new CancellationTokenSource();
        var kafka = Task.Factory.StartNew(
            () => loop.Run(queue.Reader, source.Identity, kafkaStop.Token),
            CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        using var replication = new ReplicationReader(config, progress, logger, mode, windows);
        // The snapshot (when one is due) first, then the stream from where it ends: the reader's task covers both.
        var reader = snapshot is null
            ? replication.RunAsync(committed, queue, readerStop.Token)
            : SnapshotThenStreamAsync(snapshot, replication, queue, readerStop.Token);
        // With heartbeats off (heartbeat.interval.ms = 0) the emitter returns at once, which must not end the attempt.
        var heartbeat = config.HeartbeatInterval > TimeSpan.Zero
            ? new HeartbeatEmitter(config, progress, logger).RunAsync(readerStop.Token)
            : Task.Delay(Timeout.Infinite, readerStop.Token);
        var stopRequested = Task.Delay(Timeout.Infinite, cancellationToken);
        // Incremental snapshots run while streaming does, once an initial snapshot (if any) is complete; never with initial_only.
        var snapshots = config.SnapshotMode == SnapshotMode.InitialOnly
            ? Task.Delay(Timeout.Infinite, readerStop.Token)
            : IncrementalAfterAsync(snapshot, incremental, readerStop.Token);

        try
        {
            var first = await Task.WhenAny(kafka, reader, heartbeat, snapshots, stopRequested);
            var finished = first == reader && reader.IsCompletedSuccessfully && config.SnapshotMode == SnapshotMode.InitialOnly;
            if (first == stopRequested || finished)
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
                await Task.WhenAll(Quietly(kafka, "Kafka loop"), Quietly(reader, "replication reader"), Quietly(heartbeat, "heartbeat"), Quietly(snapshots, "incremental snapshots"));
                if (finished)
                {
                    LogSnapshotOnlyDone(logger, config.SlotName, progress.Committed);
                }

                return finished;
            }

            await kafkaStop.CancelAsync();
            await readerStop.CancelAsync();
            queue.Complete();
            // The first failure is the cause; the others only saw the cancellation it caused.
            await Task.WhenAll(Quietly(kafka, "Kafka loop", first), Quietly(reader, "replication reader", first), Quietly(heartbeat, "heartbeat", first), Quietly(snapshots, "incremental snapshots", first));
            await first;
            throw new InvalidOperationException("The pipeline stopped without an error or a stop request.");
        }
        finally
        {
            queue.DisposeRemaining();
        }
    }

    /// <summary>
    /// Whether this attempt snapshots, and how (the one rule, <c>snapshot.mode</c>): an interrupted snapshot recorded in
    /// Kafka starts over in a new slot's exported snapshot (<paramref name="resnapshot"/>), or, where no slot can export
    /// one (<c>slot.failover</c>), resumes with its remaining chunks read from the tables' current state; with no position
    /// in Kafka a mode that takes an initial snapshot reads the tables (in the slot's exported snapshot when this start
    /// created the slot); <c>when_needed</c> also after a gap in the slot.
    /// </summary>
    private SnapshotStart? SnapshotStartOf(SourceState source, Offsets.OffsetRecord? kafkaOffset, bool resnapshot)
    {
        if (kafkaOffset?.Snapshot is { Complete: false } pending && !resnapshot)
        {
            return new SnapshotStart(pending.Lsn, null, pending, "resumed");
        }

        if ((kafkaOffset is null && config.SnapshotMode.TakesInitialSnapshot()) || resnapshot)
        {
            var lsn = source.Export?.ConsistentPoint ?? source.SlotConfirmedFlush;
            return new SnapshotStart(lsn, source.Export, null, resnapshot ? "when_needed" : "initial");
        }

        return null;
    }

    /// <summary>The snapshot, then (unless <c>initial_only</c>) the stream after its consistent point.</summary>
    private async Task SnapshotThenStreamAsync(SnapshotStart snapshot, ReplicationReader replication, TransactionQueue queue, CancellationToken cancellationToken)
    {
        await new SnapshotRunner(config, progress, logger).RunAsync(snapshot, queue, cancellationToken);
        if (config.SnapshotMode == SnapshotMode.InitialOnly)
        {
            return;
        }

        await replication.RunAsync(Offsets.Lsn.Max(progress.Committed, snapshot.Lsn), queue, cancellationToken);
    }

    /// <summary>
    /// An interrupted initial snapshot whose exported snapshot is gone continues while streaming: each table's remaining
    /// heap page chunks are read in watermark windows (DBLog), the stream from the snapshot LSN replays every change
    /// since, so only the uncommitted chunks are read again. Needs a key on every table with chunks left (the windows
    /// match rows by key); otherwise null, and the snapshot starts over in a new exported snapshot.
    /// </summary>
    private async Task<Offsets.IncrementalSnapshotState?> ResumeWhileStreamingAsync(Offsets.SnapshotState interrupted, Offsets.IncrementalSnapshotState? incremental, CancellationToken cancellationToken)
    {
        List<SnapshotTable> published;
        await using (var connection = new Npgsql.NpgsqlConnection(config.ConnectionString(replication: false)))
        {
            await connection.OpenAsync(cancellationToken);
            published = await SnapshotCatalog.LoadAsync(connection, config, cancellationToken);
        }

        var byName = published.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var tables = new List<Offsets.IncrementalTableState>();
        foreach (var table in interrupted.Tables)
        {
            if (!byName.TryGetValue(table.Table, out var found))
            {
                continue;
            }

            var remaining = Enumerable.Range(0, table.Chunks).Where(c => !table.IsDone(c)).ToList();
            if (remaining.Count > 0 && found.RowKey.Count == 0)
            {
                LogCannotResume(logger, config.SlotName, interrupted.Lsn, table.Table);
                return null;
            }

            // A table read as one chunk (small, or a partitioned root) had nothing committed: it is read in key order
            // in windows of incremental.snapshot.chunk.size rows instead of holding it whole in one window.
            var byPages = table.Chunks > 1 && table.PagesPerChunk > 0;
            tables.Add(new Offsets.IncrementalTableState(table.Table, $"initial-{interrupted.Lsn}", interrupted.Lsn, null, table.Rows, [])
            {
                Chunks = table.Chunks,
                PagesPerChunk = table.PagesPerChunk,
                RemainingChunks = byPages ? remaining : null,
                Exhausted = remaining.Count == 0,
                Initial = true,
            });
        }

        var queued = incremental ?? Offsets.IncrementalSnapshotState.Empty;
        var left = interrupted.Tables.Sum(t => t.Chunks - t.DoneCount);
        LogResumingWhileStreaming(logger, config.SlotName, interrupted.Lsn, interrupted.Tables.Sum(t => t.DoneCount), interrupted.Tables.Sum(t => t.Chunks), interrupted.Tables.Sum(t => t.Rows), left);
        return queued with { Tables = [.. tables, .. queued.Tables.Where(q => tables.All(t => t.Table != q.Table))] };
    }

    [LoggerMessage(EventId = 3114, Level = LogLevel.Warning,
        Message = "Slot {Slot}: the snapshot at {Lsn} was interrupted with {Done} of {Chunks} chunks committed ({Rows} rows, not read again); streaming continues from {Lsn} and the {Remaining} remaining chunks are read meanwhile in watermark windows (re-read: only chunks that were read but not committed, at most one per session)")]
    private static partial void LogResumingWhileStreaming(ILogger logger, string slot, Offsets.Lsn lsn, int done, int chunks, long rows, int remaining);

    [LoggerMessage(EventId = 3115, Level = LogLevel.Warning,
        Message = "Slot {Slot}: the snapshot at {Lsn} cannot continue while streaming because table {Table} has chunks left and no key to match rows with the stream by; it starts over")]
    private static partial void LogCannotResume(ILogger logger, string slot, Offsets.Lsn lsn, string table);

    /// <summary>Drops the slot (nothing delivered depends on it) and prepares the source again: a new slot exports a new snapshot.</summary>
    private async Task<SourceState> NewSlotAsync(SourceState source, CancellationToken cancellationToken)
    {
        await source.DisposeExportAsync();
        var setup = new SourceSetup(config, logger);
        await setup.DropSlotAsync(cancellationToken);
        return await setup.PrepareAsync(cancellationToken);
    }

    /// <summary>The incremental snapshots' runner, after the initial snapshot (when one runs in this attempt) is complete.</summary>
    private async Task IncrementalAfterAsync(SnapshotStart? snapshot, IncrementalSnapshotRunner incremental, CancellationToken cancellationToken)
    {
        if (snapshot is not null)
        {
            await progress.Snapshot.WaitUntilAsync((_, completed) => completed == snapshot.Lsn, cancellationToken);
        }

        await incremental.RunAsync(cancellationToken);
    }

    [LoggerMessage(EventId = 3113, Level = LogLevel.Information,
        Message = "Slot {Slot}: table.include.list newly selects {Tables}; their existing rows follow in an incremental snapshot")]
    private static partial void LogAddedTables(ILogger logger, string slot, string tables);

    [LoggerMessage(EventId = 3111, Level = LogLevel.Warning,
        Message = "Slot {Slot}: the snapshot at {Lsn} was interrupted with {Done} of {Chunks} chunks committed; its exported snapshot is gone, so it starts over in a new slot's exported snapshot (the committed chunks are read again; consumers start the tables anew at the new start markers)")]
    private static partial void LogRestartingSnapshot(ILogger logger, string slot, Offsets.Lsn lsn, int done, int chunks);

    [LoggerMessage(EventId = 3108, Level = LogLevel.Warning,
        Message = "Slot {Slot} exists but Kafka holds no position for it: dropping and creating it again, so the initial snapshot is exported by the slot the stream continues from")]
    private static partial void LogRecreatingSlot(ILogger logger, string slot);

    [LoggerMessage(EventId = 3109, Level = LogLevel.Information,
        Message = "snapshot.mode = initial_only: the snapshot of slot {Slot} is complete (committed through {Lsn}); stopping without streaming. The slot keeps WAL from then on: drop it (SELECT pg_drop_replication_slot('<slot>');) unless streaming will follow")]
    private static partial void LogSnapshotOnlyDone(ILogger logger, string slot, Offsets.Lsn lsn);

    [LoggerMessage(EventId = 3110, Level = LogLevel.Information,
        Message = "snapshot.mode = initial_only: slot {Slot} has no snapshot to take (Kafka holds position {Lsn}); stopping")]
    private static partial void LogNothingToSnapshot(ILogger logger, string slot, Offsets.Lsn lsn);

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
