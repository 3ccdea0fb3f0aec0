using System.Diagnostics;
using System.Globalization;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Decoding.PgOutput;
using WalBridge.Connector.Queue;
using WalBridge.Connector.Source;
using WalBridge.Connector.Transactions;
using WalBridge.Offsets;

namespace WalBridge.Connector.Snapshot;

/// <summary>How a snapshot starts.</summary>
/// <param name="Lsn">The consistent point: rows are the tables' state there, streaming starts after it.</param>
/// <param name="Export">The slot's exported snapshot to read in, or null to read the tables' current state.</param>
/// <param name="Resume">The committed progress of an interrupted snapshot to continue, or null for a new one.</param>
/// <param name="Reason">Why it runs (for the log): <c>initial</c>, <c>resumed</c>, <c>when_needed</c>.</param>
internal sealed record SnapshotStart(Lsn Lsn, ExportedSnapshot? Export, SnapshotState? Resume, string Reason);

/// <summary>
/// Delivers the published tables' existing rows (docs/format.md, snapshots): plans chunks, writes each table's start
/// marker, reads the chunks on <c>snapshot.max.threads</c> sessions (binary COPY of a TID range, through the same
/// batcher as streamed rows, <c>_op = r</c>) into the <see cref="TransactionQueue"/>, each chunk alone in a Kafka
/// transaction whose offsets record carries the snapshot's progress, then the end markers, which complete it.
/// </summary>
/// <remarks>
/// <para>Runs before streaming starts, on the pipeline's task; its sessions are tasks. Memory: each session holds one
/// chunk (spilled past <c>transaction.memory.bytes</c>) and the queue's bounds apply; a session hands its next chunk
/// over only after its previous one is committed, so a crash re-reads at most one chunk per session.</para>
/// <para>Consistency: with the slot's exported snapshot every session imports it (REPEATABLE READ), so the rows are
/// exactly the state at the consistent point and streaming continues with no gap and no overlap. A resumed snapshot
/// (the exported snapshot died with its session) reads the remaining chunks' current state; streaming then replays
/// every change after the consistent point, so each row ends in its current state (docs/format.md says what a
/// consumer sees meanwhile).</para>
/// </remarks>
internal sealed partial class SnapshotRunner(ConnectorConfig config, ProgressTracker progress, ILogger logger)
{
    private static readonly TimeSpan s_progressInterval = TimeSpan.FromSeconds(3);

    /// <summary>Runs the snapshot to completion: returns once its end markers are committed.</summary>
    /// <exception cref="NpgsqlException">The source failed (transient: the next attempt resumes from the committed chunks).</exception>
    public async Task RunAsync(SnapshotStart start, TransactionQueue queue, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        List<SnapshotTable> tables;
        await using (var connection = new NpgsqlConnection(config.ConnectionString(replication: false)))
        {
            await connection.OpenAsync(cancellationToken);
            if (start.Export is not null)
            {
                // The catalog as of the snapshot: the table list and columns the rows are read with.
                await using var begin = new NpgsqlCommand($"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{start.Export.Name}'", connection);
                await begin.ExecuteNonQueryAsync(cancellationToken);
            }

            tables = await SnapshotCatalog.LoadAsync(connection, config, cancellationToken);
        }

        var state = start.Resume ?? Plan(start, tables);
        var byName = tables.ToDictionary(t => t.Name, StringComparer.Ordinal);
        foreach (var missing in state.Tables.Where(t => !byName.ContainsKey(t.Table)))
        {
            LogTableGone(logger, config.SlotName, missing.Table, start.Lsn);
        }

        var planned = state.Tables.Where(t => byName.ContainsKey(t.Table)).ToList();
        var work = new List<ChunkWork>();
        foreach (var table in planned)
        {
            for (var chunk = 0; chunk < table.Chunks; chunk++)
            {
                if (!table.IsDone(chunk))
                {
                    work.Add(new ChunkWork(byName[table.Table], chunk, table.Chunks, table.PagesPerChunk));
                }
            }
        }

        var doneChunks = planned.Sum(t => t.DoneCount);
        var totalChunks = planned.Sum(t => t.Chunks);
        var committedRows = planned.Sum(t => t.Rows);
        var estimatedRows = planned.Sum(t => t.EstimatedRows);
        var sessions = Math.Min(config.SnapshotMaxThreads, Math.Max(1, work.Count));
        if (start.Resume is not null)
        {
            LogResuming(logger, config.SlotName, start.Lsn, doneChunks, totalChunks, committedRows, work.Count);
        }
        else
        {
            LogStarting(logger, config.SlotName, start.Lsn, planned.Count, totalChunks, estimatedRows, start.Export is not null ? "the slot's exported snapshot" : "the tables' current state", sessions);
        }

        var counters = planned.ToDictionary(t => t.Table, t => new TableCounter(t.EstimatedRows, t.Rows, work.Count(w => w.Table.Name == t.Table)), StringComparer.Ordinal);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var reporter = ReportProgressAsync(counters, stop.Token);
        var anchored = Task.CompletedTask;
        try
        {
            if (start.Resume is null)
            {
                // The start markers come first: any committed chunk implies they are in Kafka.
                await queue.EnqueueAsync(MarkerGroup(start, tables, state, SnapshotMarkerKind.Start, begins: state), cancellationToken);
                anchored = AnchorAsync(start.Lsn, stop.Token);
            }

            var channel = Channel.CreateUnbounded<ChunkWork>();
            foreach (var item in work)
            {
                channel.Writer.TryWrite(item);
            }

            channel.Writer.Complete();
            var imported = new CountdownEvent(sessions);
            var workers = Enumerable.Range(0, sessions)
                .Select(i => Task.Run(() => SessionAsync(i, start, channel.Reader, queue, counters, imported, stop.Token), stop.Token))
                .ToList();
            if (start.Export is not null)
            {
                // The exported snapshot lives as long as the connection that created the slot: close it once every session holds it.
                // Every session signals once it holds the snapshot (or failed): a session done early must not close it for the others.
                while (!imported.IsSet && !workers.Any(w => w.IsFaulted || w.IsCanceled))
                {
                    await Task.Delay(10, stop.Token);
                }

                await start.Export.DisposeAsync();
            }

            try
            {
                await Task.WhenAll(workers);
            }
            catch
            {
                await stop.CancelAsync();
                throw;
            }

            var final = progress.Snapshot.Committed ?? state;
            await queue.EnqueueAsync(MarkerGroup(start, tables, final, SnapshotMarkerKind.End, begins: null), cancellationToken);
            await progress.Snapshot.WaitUntilAsync((_, completed) => completed == start.Lsn, cancellationToken);
            var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            var rows = counters.Values.Sum(c => c.Read);
            var rate = rows / Math.Max(0.001, seconds);
            LogCompleted(logger, config.SlotName, start.Lsn, planned.Count, rows, seconds, rate);
        }
        finally
        {
            await stop.CancelAsync();
            if (start.Export is not null)
            {
                // Closed after the import on success; on any failure here too, so the exporting connection never lingers.
                await start.Export.DisposeAsync();
            }

            try
            {
                await reporter;
                await anchored;
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    /// <summary>
    /// Once the plan (with the start markers) is committed, Kafka holds a position: from then on a restart resumes this
    /// snapshot and streams every later change, so the source counts as ready (<see cref="ProgressTracker.SourceReady"/>).
    /// </summary>
    private async Task AnchorAsync(Lsn lsn, CancellationToken cancellationToken)
    {
        await progress.Snapshot.WaitUntilAsync((state, completed) => state is not null || completed == lsn, cancellationToken);
        progress.OnSourceReady();
    }

    /// <summary>A new snapshot's plan: every table cut into chunks by its statistics.</summary>
    private SnapshotState Plan(SnapshotStart start, List<SnapshotTable> tables) =>
        new(start.Lsn, DateTimeOffset.UtcNow, Complete: false, Exported: start.Export is not null,
            tables.Select(t =>
            {
                var (chunks, pagesPerChunk) = SnapshotCatalog.Plan(t, config.SnapshotChunkRows, config.TransactionMemoryBytes);
                return new SnapshotTableState(t.Name, chunks, pagesPerChunk, [], 0, t.EstimatedRows);
            }).ToList());

    /// <summary>One session: imports the exported snapshot (or reads current state), then reads chunks until none are left.</summary>
    private async Task SessionAsync(int session, SnapshotStart start, ChannelReader<ChunkWork> work, TransactionQueue queue,
        Dictionary<string, TableCounter> counters, CountdownEvent imported, CancellationToken cancellationToken)
    {
        var signalled = false;
        try
        {
            await using var connection = new NpgsqlConnection(config.ConnectionString(replication: false, ConnectorConfig.SnapshotReadBufferSize));
            await connection.OpenAsync(cancellationToken);
            // Columns read as text must print as the walsender prints them for pgoutput (ConnectionString's replication settings).
            await using (var settings = new NpgsqlCommand("SET extra_float_digits = 3", connection))
            {
                await settings.ExecuteNonQueryAsync(cancellationToken);
            }

            if (start.Export is not null)
            {
                await using var begin = new NpgsqlCommand($"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{start.Export.Name}'", connection);
                await begin.ExecuteNonQueryAsync(cancellationToken);
            }

            imported.Signal();
            signalled = true;
            using var framer = new TransactionFramer(config, Lsn.Zero, "snapshot");
            var primaryKeys = new Dictionary<uint, IReadOnlyList<string>>();
            using var batcher = new PgOutputBatcher(config, framer, logger, id => primaryKeys.TryGetValue(id, out var key) ? key : []);
            var described = new HashSet<uint>();
            ChunkWork? previous = null;
            var timestamp = DateTimeOffset.UtcNow;
            while (await work.WaitToReadAsync(cancellationToken))
            {
                if (!work.TryRead(out var item))
                {
                    continue;
                }

                var table = item.Table;
                primaryKeys[table.Relation.RelationId] = table.PrimaryKey;
                if (start.Export is null)
                {
                    await using var begin = new NpgsqlCommand("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", connection);
                    await begin.ExecuteNonQueryAsync(cancellationToken);
                }

                batcher.OnBegin(start.Lsn, timestamp, 0, start.Lsn);
                if (described.Add(table.Relation.RelationId))
                {
                    batcher.OnRelation(table.Relation, start.Lsn);
                }

                var rows = await ReadChunkAsync(connection, batcher, item, start.Lsn, counters[table.Name], cancellationToken);
                batcher.OnCommit(new CommitFields(start.Lsn, start.Lsn, timestamp), start.Lsn);
                batcher.FlushAll();
                var group = framer.TakeGroup(new SnapshotPart { Lsn = start.Lsn, Table = table.Name, Chunk = item.Chunk, Rows = rows });
                if (start.Export is null)
                {
                    await using var commit = new NpgsqlCommand("COMMIT", connection);
                    await commit.ExecuteNonQueryAsync(cancellationToken);
                }

                if (previous is { } before)
                {
                    // At most one chunk of this session is handed over and not committed.
                    await CommittedAsync(start, before, cancellationToken);
                }

                try
                {
                    await queue.EnqueueAsync(group, cancellationToken);
                }
                catch
                {
                    group.Dispose();
                    throw;
                }

                previous = item;
            }

            if (previous is { } last)
            {
                await CommittedAsync(start, last, cancellationToken);
            }

            LogSessionDone(logger, config.SlotName, session);
        }
        finally
        {
            if (!signalled)
            {
                imported.Signal();
            }
        }
    }

    /// <summary>Until the chunk's Kafka transaction has committed (or the whole snapshot has).</summary>
    private Task CommittedAsync(SnapshotStart start, ChunkWork chunk, CancellationToken cancellationToken) =>
        progress.Snapshot.WaitUntilAsync((state, completed) => completed == start.Lsn ||
            state?.Tables.FirstOrDefault(t => t.Table == chunk.Table.Name)?.IsDone(chunk.Chunk) == true, cancellationToken);

    /// <summary>Reads one chunk with COPY into the batcher; returns its rows.</summary>
    private static async Task<long> ReadChunkAsync(NpgsqlConnection connection, PgOutputBatcher batcher, ChunkWork item, Lsn lsn, TableCounter counter, CancellationToken cancellationToken)
    {
        var table = item.Table;
        var relationId = table.Relation.RelationId;
        await using var copy = await connection.BeginRawBinaryCopyAsync(table.CopyCommand(item.Chunk, item.Chunks, item.PagesPerChunk), cancellationToken);
        using var reader = new CopyTupleReader(copy, table.TextColumns(), table.Name, lsn);
        var rows = await reader.ReadAllAsync(image => batcher.OnRead(relationId, TupleData.Parse(image, lsn, out _), lsn), counter.Add, cancellationToken);
        counter.ChunkDone();
        return rows;
    }

    /// <summary>Start or end markers of every planned table, in one group (start: with the plan).</summary>
    private TransactionGroup MarkerGroup(SnapshotStart start, List<SnapshotTable> tables, SnapshotState state, SnapshotMarkerKind kind, SnapshotState? begins)
    {
        using var framer = new TransactionFramer(config, Lsn.Zero, "snapshot");
        var markers = new List<SnapshotMarker>();
        foreach (var planned in state.Tables)
        {
            var table = tables.FirstOrDefault(t => t.Name == planned.Table);
            if (table is null)
            {
                continue;
            }

            using var keyed = new PgOutputBatcher(config, framer, logger, _ => table.PrimaryKey);
            keyed.OnRelation(table.Relation, start.Lsn);
            var (message, fingerprint) = keyed.SchemaOf(table.Relation.RelationId);
            markers.Add(new SnapshotMarker(kind, table.Relation.Schema, table.Relation.Table, message.ToArray(), fingerprint, config.TopicPartitions,
                kind == SnapshotMarkerKind.Start ? planned.EstimatedRows : planned.Rows));
        }

        return new TransactionGroup
        {
            Transactions = [],
            Tables = [],
            Messages = [],
            Position = start.Lsn,
            PositionTime = DateTimeOffset.UtcNow,
            Snapshot = new SnapshotPart { Lsn = start.Lsn, Markers = markers, Begins = begins, Completes = kind == SnapshotMarkerKind.End },
        };
    }

    /// <summary>Every few seconds: per table rows read of the estimate, rows/s and time left.</summary>
    private async Task ReportProgressAsync(Dictionary<string, TableCounter> counters, CancellationToken cancellationToken)
    {
        var last = counters.ToDictionary(c => c.Key, c => c.Value.Read, StringComparer.Ordinal);
        var clock = Stopwatch.StartNew();
        var previous = TimeSpan.Zero;
        while (!cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(s_progressInterval, cancellationToken);
            var now = clock.Elapsed;
            var seconds = (now - previous).TotalSeconds;
            previous = now;
            foreach (var (table, counter) in counters)
            {
                var read = counter.Read;
                var rate = (read - last[table]) / Math.Max(0.001, seconds);
                last[table] = read;
                if (counter.Finished || (rate == 0 && read == 0))
                {
                    continue;
                }

                var estimate = Math.Max(counter.Estimate, read);
                var left = rate > 0 ? TimeSpan.FromSeconds((estimate - read) / rate) : (TimeSpan?)null;
                LogProgress(logger, config.SlotName, table, read, estimate, estimate > 0 ? 100.0 * read / estimate : 100, rate,
                    left is { } l ? l.ToString(@"hh\:mm\:ss", CultureInfo.InvariantCulture) : "unknown");
            }
        }
    }

    private sealed record ChunkWork(SnapshotTable Table, int Chunk, int Chunks, long PagesPerChunk);

    /// <summary>Rows read of one table (all sessions), for the progress lines.</summary>
    private sealed class TableCounter(long estimate, long committedBefore, int chunksLeft)
    {
        private long _read = committedBefore;
        private int _chunksLeft = chunksLeft;

        public long Estimate { get; } = estimate;
        public long Read => Interlocked.Read(ref _read);
        public bool Finished => Volatile.Read(ref _chunksLeft) <= 0;

        public void Add(long rows) => Interlocked.Add(ref _read, rows);

        public void ChunkDone() => Interlocked.Decrement(ref _chunksLeft);
    }

    [LoggerMessage(EventId = 1501, Level = LogLevel.Information,
        Message = "Snapshot of slot {Slot} at {Lsn} begins: {Tables} tables, {Chunks} chunks, about {EstimatedRows} rows, read in {Source} by {Sessions} sessions")]
    private static partial void LogStarting(ILogger logger, string slot, Lsn lsn, int tables, int chunks, long estimatedRows, string source, int sessions);

    [LoggerMessage(EventId = 1502, Level = LogLevel.Information,
        Message = "Snapshot of slot {Slot} at {Lsn} resumes: {Done} of {Chunks} chunks ({Rows} rows) are committed; {Left} chunks are read from the tables' current state (those in flight when it stopped are read again)")]
    private static partial void LogResuming(ILogger logger, string slot, Lsn lsn, int done, int chunks, long rows, int left);

    [LoggerMessage(EventId = 1503, Level = LogLevel.Information,
        Message = "Snapshot of slot {Slot}: {Table} {Read} of ~{Estimate} rows ({Percent:F1}%), {RowsPerSecond:F0} rows/s, {Left} left")]
    private static partial void LogProgress(ILogger logger, string slot, string table, long read, long estimate, double percent, double rowsPerSecond, string left);

    [LoggerMessage(EventId = 1504, Level = LogLevel.Information,
        Message = "Snapshot of slot {Slot} at {Lsn} complete: {Tables} tables, {Rows} rows read in {Seconds:F1} s ({RowsPerSecond:F0} rows/s); streaming starts after {Lsn}")]
    private static partial void LogCompleted(ILogger logger, string slot, Lsn lsn, int tables, long rows, double seconds, double rowsPerSecond);

    [LoggerMessage(EventId = 1505, Level = LogLevel.Warning,
        Message = "Snapshot of slot {Slot} at {Lsn}: table {Table} is no longer published; its remaining chunks are skipped")]
    private static partial void LogTableGone(ILogger logger, string slot, string table, Lsn lsn);

    [LoggerMessage(EventId = 1506, Level = LogLevel.Debug, Message = "Snapshot of slot {Slot}: session {Session} has no chunk left")]
    private static partial void LogSessionDone(ILogger logger, string slot, int session);
}
