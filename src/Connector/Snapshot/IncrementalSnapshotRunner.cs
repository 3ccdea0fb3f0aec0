using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Diagnostics;
using WalBridge.Connector.Queue;
using WalBridge.Connector.Transactions;
using WalBridge.Offsets;

namespace WalBridge.Connector.Snapshot;

/// <summary>
/// Incremental snapshots while streaming runs (DBLog, docs/format.md "Incremental snapshots"): takes requests from the
/// signal table (<c>signal.data.collection</c>, Debezium's <c>execute-snapshot</c> signal) and from the pipeline
/// (tables newly added to the publication), and reads each queued table in key order, one chunk of
/// <c>incremental.snapshot.chunk.size</c> rows per watermark window. The stream's side of a window is
/// <see cref="SnapshotWindows"/>: the chunk's rows whose keys changed inside the window are dropped there, the others
/// become <c>_op = r</c> rows of the high watermark's transaction, committed with the table's progress.
/// </summary>
/// <remarks>
/// One task per pipeline attempt, next to the replication reader; its connection is its own. A window is prepared only
/// after the previous one is committed in Kafka, so a crash re-reads at most one chunk. Failures of the source end the
/// attempt (transient: the next attempt continues from the committed progress).
/// </remarks>
internal sealed partial class IncrementalSnapshotRunner(ConnectorConfig config, ProgressTracker progress, SnapshotWindows windows, ILogger logger)
{
    private static readonly TimeSpan s_progressInterval = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan s_idlePoll = TimeSpan.FromMilliseconds(200);
    private readonly Channel<SnapshotRequest> _requests = Channel.CreateUnbounded<SnapshotRequest>();

    /// <summary>Queues a request from the pipeline (tables newly added to the publication). Thread-safe.</summary>
    public void Request(SnapshotRequest request) => _requests.Writer.TryWrite(request);

    /// <summary>Runs until cancelled or failed.</summary>
    /// <exception cref="NpgsqlException">The source failed (transient).</exception>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        // Its windows read chunks with COPY, as the initial snapshot's sessions do: the same read buffer.
        await using var connection = new NpgsqlConnection(config.ConnectionString(replication: false, ConnectorConfig.SnapshotReadBufferSize));
        await connection.OpenAsync(cancellationToken);
        // Columns read as text must print as the walsender prints them (as for the initial snapshot).
        await using (var settings = new NpgsqlCommand("SET extra_float_digits = 3", connection))
        {
            await settings.ExecuteNonQueryAsync(cancellationToken);
        }

        if (config.SignalDataCollection is not null)
        {
            await SignalTable.EnsureAsync(connection, config, logger, cancellationToken);
        }

        var pending = new List<SnapshotRequest>();
        var nextPoll = DateTime.UtcNow;
        var lastReport = Stopwatch.GetTimestamp();
        var tableStarted = Stopwatch.GetTimestamp();
        string? reportedTable = null;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (config.SignalDataCollection is not null && DateTime.UtcNow >= nextPoll)
            {
                pending.AddRange(await PollSignalsAsync(connection, pending, cancellationToken));
                nextPoll = DateTime.UtcNow + config.SignalPollInterval;
            }

            while (_requests.Reader.TryRead(out var request))
            {
                if (await ValidateAsync(connection, request, cancellationToken) is not { } valid)
                {
                    continue;
                }

                if (config.SignalDataCollection is not null)
                {
                    // Durable: the signal table keeps the request until a committed window has queued its tables.
                    await SignalTable.InsertAsync(connection, config, valid, cancellationToken);
                    nextPoll = DateTime.UtcNow;
                }
                else
                {
                    pending.Add(valid);
                }
            }

            var state = windows.State;
            var current = state.Current;
            var tableName = current?.Table ?? pending.FirstOrDefault(r => r.Tables.Count > 0)?.Tables[0];
            if (tableName is null)
            {
                await Task.Delay(s_idlePoll, cancellationToken);
                continue;
            }

            var table = (await SnapshotCatalog.LoadAsync(connection, config, cancellationToken, only: tableName)).FirstOrDefault();
            var kind = current is null || !current.Started ? WindowKind.Begin : current.Retry.Count > 0 ? WindowKind.Retry : WindowKind.Range;
            if (table is null || table.RowKey is not { Count: > 0 })
            {
                // Gone from the publication (or lost its key) since it was queued: it leaves the queue without markers.
                LogTableSkipped(logger, config.SlotName, tableName, table is null ? "it is no longer published" : "it has no primary key or replica identity index any more");
                kind = WindowKind.Skip;
            }

            if (reportedTable != tableName && kind == WindowKind.Begin)
            {
                reportedTable = tableName;
                tableStarted = Stopwatch.GetTimestamp();
                LogTableStarting(logger, config.SlotName, tableName, table?.EstimatedRows ?? 0, config.IncrementalChunkSize);
            }

            var window = new SnapshotWindow
            {
                Id = Guid.NewGuid().ToString("N"),
                Kind = kind,
                Table = tableName,
                Relation = table?.Relation ?? new Serialization.Postgres.PgRelation(0, "", "", 'd', []),
                KeyColumns = table?.RowKey ?? [],
                Requests = [.. pending],
                RetryKeys = kind == WindowKind.Retry ? current!.Retry.Take(config.IncrementalChunkSize).ToList() : [],
                Chunk = kind == WindowKind.Range && current?.RemainingChunks is { Count: > 0 } remaining ? remaining[0] : -1,
            };
            var lsn = await RunWindowAsync(connection, window, table, current, cancellationToken);
            pending.Clear();
            await WaitCommittedAsync(lsn, cancellationToken);

            var after = progress.Incremental?.Tables.FirstOrDefault(t => t.Table == tableName);
            if (after is null && kind != WindowKind.Skip && current is { Started: true })
            {
                var seconds = Stopwatch.GetElapsedTime(tableStarted).TotalSeconds;
                LogTableCompleted(logger, config.SlotName, tableName, lsn, seconds);
                reportedTable = null;
            }
            else if (after is not null && Stopwatch.GetElapsedTime(lastReport) >= s_progressInterval)
            {
                lastReport = Stopwatch.GetTimestamp();
                var seconds = Math.Max(0.001, Stopwatch.GetElapsedTime(tableStarted).TotalSeconds);
                var estimate = Math.Max(after.Rows, table?.EstimatedRows ?? 0);
                var rate = after.Rows / seconds;
                var left = rate > 0 ? TimeSpan.FromSeconds((estimate - after.Rows) / rate).ToString(@"hh\:mm\:ss", System.Globalization.CultureInfo.InvariantCulture) : "?";
                LogProgress(logger, config.SlotName, tableName, after.Rows, estimate, estimate > 0 ? 100.0 * after.Rows / estimate : 100, rate, after.Retry.Count, left);
            }
        }
    }

    /// <summary>One window: low watermark, the chunk query, high watermark; returns the high watermark's commit LSN once its rows are in the stream.</summary>
    private async Task<Lsn> RunWindowAsync(NpgsqlConnection connection, SnapshotWindow window, SnapshotTable? table, IncrementalTableState? current, CancellationToken cancellationToken)
    {
        windows.Prepare(window);
        try
        {
            await EmitAsync(connection, SnapshotWindows.LowContent(window.Id), cancellationToken);
            FaultInjection.Reach(FaultPoint.InsideWatermarkWindow);
            if (table is not null && current is { Exhausted: true } && window.Kind == WindowKind.Range)
            {
                // Nothing left to read (a resumed initial snapshot's table whose chunks were all committed): the end marker.
                windows.Ready(window, [], exhausted: true);
            }
            else if (table is not null && window.Kind is WindowKind.Range or WindowKind.Retry)
            {
                var limit = config.IncrementalChunkSize;
                var pages = current?.RemainingChunks is not null;
                var sql = window.Kind == WindowKind.Retry
                    ? table.KeyedCopyCommand(window.KeyColumns, current?.LastKey, window.RetryKeys, limit, bounded: !pages)
                    : pages
                        ? table.CopyCommand(window.Chunk, current!.Chunks, current.PagesPerChunk, window.KeyColumns)
                        : table.KeyedCopyCommand(window.KeyColumns, current?.LastKey, null, limit);
                var rows = await ReadRowsAsync(connection, table, window.KeyColumns.Count, sql, cancellationToken);
                windows.Ready(window, rows, exhausted: window.Kind == WindowKind.Range && !pages ? rows.Count < limit : current?.Exhausted ?? false);
            }
            else
            {
                windows.Ready(window, [], exhausted: false);
            }

            await EmitAsync(connection, SnapshotWindows.HighContent(window.Id), cancellationToken);
            return await window.Emitted.Task.WaitAsync(cancellationToken);
        }
        catch
        {
            windows.Abandon(window);
            throw;
        }
    }

    /// <summary>A watermark: a transactional logical decoding message in a transaction of its own.</summary>
    private async Task EmitAsync(NpgsqlConnection connection, string content, CancellationToken cancellationToken)
    {
        await using var emit = new NpgsqlCommand("SELECT pg_logical_emit_message(true, $1, $2)", connection);
        emit.Parameters.Add(new NpgsqlParameter { Value = windows.Prefix });
        emit.Parameters.Add(new NpgsqlParameter { Value = content });
        await emit.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Reads a chunk (binary COPY, the key columns' text appended) into memory.</summary>
    private static async Task<List<WindowRow>> ReadRowsAsync(NpgsqlConnection connection, SnapshotTable table, int keyColumns, string sql, CancellationToken cancellationToken)
    {
        var rows = new List<WindowRow>();
        await using var copy = await connection.BeginRawBinaryCopyAsync(sql, cancellationToken);
        using var reader = new CopyTupleReader(copy, table.TextColumns(), table.Name, Lsn.Zero, keyColumns);
        await reader.ReadAllAsync(image => rows.Add(new WindowRow(image.ToArray(), reader.TrailingText())), null, cancellationToken);
        return rows;
    }

    private async Task WaitCommittedAsync(Lsn lsn, CancellationToken cancellationToken)
    {
        while (progress.Committed < lsn)
        {
            await progress.WaitForCommitAsync(TimeSpan.FromMilliseconds(200), cancellationToken);
        }
    }

    /// <summary>
    /// New <c>execute-snapshot</c> signals, validated. Signals already handled (their tables queued in a committed
    /// offsets record) are deleted from the table; a signal that cannot be carried out is logged as an error and
    /// deleted; the others are returned (and deleted once handled).
    /// </summary>
    private async Task<List<SnapshotRequest>> PollSignalsAsync(NpgsqlConnection connection, List<SnapshotRequest> pending, CancellationToken cancellationToken)
    {
        var handled = new HashSet<string>(progress.Incremental?.Signals ?? [], StringComparer.Ordinal);
        var found = new List<(string Id, string Type, string? Data)>();
        await using (var query = new NpgsqlCommand($"SELECT id::text, type::text, data::text FROM {SignalTable.Quoted(config)}", connection))
        {
            await using var reader = await query.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                found.Add((reader.GetString(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2)));
            }
        }

        var requests = new List<SnapshotRequest>();
        var delete = new List<string>();
        foreach (var (id, type, data) in found)
        {
            if (handled.Contains(id))
            {
                delete.Add(id);
                continue;
            }

            if (pending.Any(p => p.Signal == id))
            {
                continue;
            }

            var parsed = SignalTable.Parse(id, type, data, out var problem);
            if (parsed is null)
            {
                LogSignalRejected(logger, config.SlotName, id, problem!);
                delete.Add(id);
                continue;
            }

            if (await ValidateAsync(connection, parsed, cancellationToken) is { } valid)
            {
                var names = string.Join(", ", valid.Tables);
                LogSignalAccepted(logger, config.SlotName, id, names);
                requests.Add(valid);
            }
            else
            {
                delete.Add(id);
            }
        }

        if (delete.Count > 0)
        {
            await using var remove = new NpgsqlCommand($"DELETE FROM {SignalTable.Quoted(config)} WHERE id::text = ANY($1)", connection);
            remove.Parameters.Add(new NpgsqlParameter { Value = delete.ToArray() });
            await remove.ExecuteNonQueryAsync(cancellationToken);
        }

        return requests;
    }

    /// <summary>The request with the tables that can be snapshotted incrementally; each other table is logged as an error. Null when none is left.</summary>
    private async Task<SnapshotRequest?> ValidateAsync(NpgsqlConnection connection, SnapshotRequest request, CancellationToken cancellationToken)
    {
        var published = await SnapshotCatalog.LoadAsync(connection, config, cancellationToken);
        var tables = new List<string>();
        foreach (var name in request.Tables)
        {
            if (SignalTable.Problem(published, name) is { } problem)
            {
                LogTableRefused(logger, config.SlotName, request.Signal, name, problem);
                continue;
            }

            tables.Add(name);
        }

        return tables.Count > 0 ? request with { Tables = tables } : null;
    }

    [LoggerMessage(EventId = 1511, Level = LogLevel.Information,
        Message = "Incremental snapshot of slot {Slot}: {Table} starts (~{Estimate} rows, {ChunkSize} per watermark window) while streaming goes on")]
    private static partial void LogTableStarting(ILogger logger, string slot, string table, long estimate, int chunkSize);

    [LoggerMessage(EventId = 1512, Level = LogLevel.Information,
        Message = "Incremental snapshot of slot {Slot}: {Table} {Rows} of ~{Estimate} rows ({Percent:F1}%), {RowsPerSecond:F0} rows/s, {Retry} keys to read again, {Left} left")]
    private static partial void LogProgress(ILogger logger, string slot, string table, long rows, long estimate, double percent, double rowsPerSecond, int retry, string left);

    [LoggerMessage(EventId = 1513, Level = LogLevel.Information,
        Message = "Incremental snapshot of slot {Slot}: {Table} complete (end marker committed at {Lsn}) in {Seconds:F1} s")]
    private static partial void LogTableCompleted(ILogger logger, string slot, string table, Lsn lsn, double seconds);

    [LoggerMessage(EventId = 1514, Level = LogLevel.Information, Message = "Signal {Signal} for slot {Slot}: incremental snapshot of {Tables} queued")]
    private static partial void LogSignalAccepted(ILogger logger, string slot, string signal, string tables);

    [LoggerMessage(EventId = 1515, Level = LogLevel.Error, Message = "Signal {Signal} for slot {Slot} is not carried out and is deleted: {Problem}")]
    private static partial void LogSignalRejected(ILogger logger, string slot, string signal, string problem);

    [LoggerMessage(EventId = 1516, Level = LogLevel.Error, Message = "Incremental snapshot of slot {Slot} (signal {Signal}): table {Table} is refused: {Problem}")]
    private static partial void LogTableRefused(ILogger logger, string slot, string signal, string table, string problem);

    [LoggerMessage(EventId = 1517, Level = LogLevel.Error, Message = "Incremental snapshot of slot {Slot}: {Table} leaves the queue unfinished: {Reason}")]
    private static partial void LogTableSkipped(ILogger logger, string slot, string table, string reason);
}
