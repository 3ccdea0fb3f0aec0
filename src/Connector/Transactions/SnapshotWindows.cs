using System.Text;
using Apache.Arrow;
using WalBridge.Offsets;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Connector.Transactions;

/// <summary>What a watermark window of an incremental snapshot does.</summary>
internal enum WindowKind
{
    /// <summary>Queues the tables of new requests and writes the current table's start marker; reads no rows.</summary>
    Begin,
    /// <summary>Reads the next rows in key order after the table's last key.</summary>
    Range,
    /// <summary>Reads the rows of the table's retry keys again.</summary>
    Retry,
    /// <summary>Takes the table off the queue unfinished (it is no longer published, or lost its key); no markers.</summary>
    Skip,
}

/// <summary>A row an incremental snapshot window read: its pgoutput TupleData image and its key (PostgreSQL's text of the key columns).</summary>
internal sealed record WindowRow(byte[] Tuple, IReadOnlyList<string?> Key);

/// <summary>A table queued by a request (a signal or a table newly added to the publication).</summary>
internal sealed record SnapshotRequest(string Signal, IReadOnlyList<string> Tables);

/// <summary>
/// One DBLog watermark window, prepared by the incremental snapshot runner: between its low and high watermark (two
/// logical decoding messages the runner writes around its chunk query) the stream's changes to the table are watched,
/// and at the high watermark the chunk's rows whose keys changed in between are dropped (the stream already carries
/// their newer state) and the others are emitted as <c>_op = r</c> rows of the high watermark's transaction.
/// </summary>
internal sealed class SnapshotWindow
{
    public required string Id { get; init; }
    public required WindowKind Kind { get; init; }
    /// <summary><c>schema.table</c>.</summary>
    public required string Table { get; init; }
    /// <summary>The relation as pgoutput describes it (its rows are written with this schema).</summary>
    public required PgRelation Relation { get; init; }
    /// <summary>The key columns the rows are identified by, in key order.</summary>
    public required IReadOnlyList<string> KeyColumns { get; init; }
    /// <summary>Requests whose tables are queued (and whose signals count as handled) when this window's high watermark passes.</summary>
    public IReadOnlyList<SnapshotRequest> Requests { get; init; } = [];
    /// <summary>Range windows of a resumed initial snapshot: the heap page chunk read (else -1).</summary>
    public int Chunk { get; init; } = -1;
    /// <summary>Retry windows: the keys read again.</summary>
    public IReadOnlyList<IReadOnlyList<string?>> RetryKeys { get; init; } = [];

    /// <summary>The rows read (set by the runner before it writes the high watermark).</summary>
    public IReadOnlyList<WindowRow> Rows { get; set; } = [];
    /// <summary>Range windows: whether the range is exhausted (fewer rows than asked for).</summary>
    public bool Exhausted { get; set; }

    /// <summary>Completed with the high watermark's commit LSN once its rows are in the stream's group; faulted when the window cannot complete.</summary>
    public TaskCompletionSource<Lsn> Emitted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Reader thread: the low watermark was seen.</summary>
    internal bool Open { get; set; }
    /// <summary>Reader thread: keys changed in the stream since the low watermark.</summary>
    internal HashSet<string> Changed { get; } = new(StringComparer.Ordinal);
    /// <summary>Reader thread: the table was truncated since the low watermark.</summary>
    internal bool Truncated { get; set; }
}

/// <summary>What the high watermark emits: rows and markers, into the high watermark's transaction.</summary>
/// <param name="Window">The window.</param>
/// <param name="Rows">The rows to write as <c>_op = r</c>.</param>
/// <param name="Start">Whether the table's start marker is written.</param>
/// <param name="End">Whether the table's end marker is written (its snapshot completes).</param>
/// <param name="TableRows">The rows delivered for the table including these (for the end marker).</param>
/// <param name="SnapshotLsn">The table's snapshot LSN (its markers' <c>walbridge.snapshot.lsn</c>).</param>
/// <param name="Initial">Whether the markers are the initial snapshot's (a resumed one), not an incremental snapshot's.</param>
internal sealed record WindowEmission(SnapshotWindow Window, IReadOnlyList<WindowRow> Rows, bool Start, bool End, long TableRows, Lsn SnapshotLsn, bool Initial = false);

/// <summary>
/// The one owner of incremental snapshot state on the stream's side (DBLog watermarks, docs/format.md "Incremental
/// snapshots"): the window the runner has open, the keys the stream changed inside it, and the snapshot progress as of
/// the stream position read so far, which every group carries into its Kafka transaction's offsets record.
/// </summary>
/// <remarks>
/// Thread-safe: the runner prepares windows on its task; the replication reader's thread reports watermarks and
/// batches. At most one window is open. Progress only moves at high watermarks and through keys to read again, and is
/// committed with the group holding them, so a crash loses at most the open window (read again after the restart).
/// </remarks>
internal sealed class SnapshotWindows
{
    private readonly object _gate = new();
    private readonly string _prefix;
    private IncrementalSnapshotState _state;
    private SnapshotWindow? _window;

    /// <param name="slot">Names the watermark messages' prefix (one per slot).</param>
    /// <param name="committed">The progress committed in Kafka (the stream starts from there).</param>
    public SnapshotWindows(string slot, IncrementalSnapshotState? committed)
    {
        _prefix = PrefixBase + slot;
        _state = committed ?? IncrementalSnapshotState.Empty;
    }

    /// <summary>Every watermark message's prefix starts with this (followed by the slot name).</summary>
    public const string PrefixBase = "walbridge.watermark.";

    /// <summary>This slot's watermark prefix.</summary>
    public string Prefix => _prefix;

    /// <summary>The low watermark's content for a window.</summary>
    public static string LowContent(string id) => "low " + id;

    /// <summary>The high watermark's content for a window.</summary>
    public static string HighContent(string id) => "high " + id;

    /// <summary>The progress as of the stream position read so far (ahead of what Kafka has committed).</summary>
    public IncrementalSnapshotState State
    {
        get
        {
            lock (_gate)
            {
                return _state;
            }
        }
    }

    /// <summary>
    /// Whether groups must carry <see cref="State"/>: it holds something, or a window closed in this attempt (its
    /// last table may have just left the queue, which the offsets record must say).
    /// </summary>
    public bool Carries
    {
        get
        {
            lock (_gate)
            {
                return _closedAny || _state.Tables.Count > 0 || _state.Signals.Count > 0;
            }
        }
    }

    private bool _closedAny;

    /// <summary>Runner: the window whose watermarks come next. Replaces (and fails) one left open.</summary>
    public void Prepare(SnapshotWindow window)
    {
        ArgumentNullException.ThrowIfNull(window);
        lock (_gate)
        {
            _window?.Emitted.TrySetException(new InvalidOperationException($"Watermark window {_window.Id} was replaced before its high watermark."));
            _window = window;
        }
    }

    /// <summary>Runner: the window's rows are read (before its high watermark is written).</summary>
    public void Ready(SnapshotWindow window, IReadOnlyList<WindowRow> rows, bool exhausted)
    {
        ArgumentNullException.ThrowIfNull(window);
        lock (_gate)
        {
            window.Rows = rows;
            window.Exhausted = exhausted;
        }
    }

    /// <summary>Runner: the window is given up (its query failed); its watermarks are ignored.</summary>
    public void Abandon(SnapshotWindow window)
    {
        lock (_gate)
        {
            if (_window == window)
            {
                _window = null;
            }
        }
    }

    /// <summary>Whether a logical decoding message is one of the watermarks of any connector (never delivered as a message).</summary>
    public static bool IsWatermark(string prefix) => prefix.StartsWith(PrefixBase, StringComparison.Ordinal);

    /// <summary>Whether the stream must report batches of <paramref name="schema"/>.<paramref name="table"/> (<see cref="Observe"/>).</summary>
    public bool Watches(string schema, string table)
    {
        lock (_gate)
        {
            return IsWatched(schema + "." + table);
        }
    }

    /// <summary>A window is open on the table, or its snapshot has started (its keys to read again are collected).</summary>
    private bool IsWatched(string table) =>
        (_window is { Open: true } w && w.Table == table) || _state.Tables.Any(t => t.Started && t.Table == table);

    /// <summary>
    /// Reader thread: a watermark message in a transaction that is being delivered. A low watermark opens its window;
    /// a high one closes it and returns what to emit into the transaction (before its Commit), or null when the
    /// watermark is not this slot's or belongs to no open window (one written before a restart).
    /// </summary>
    /// <param name="prefix">The message's prefix.</param>
    /// <param name="content">Its content.</param>
    /// <param name="commitLsn">The transaction's commit LSN.</param>
    public WindowEmission? OnWatermark(string prefix, ReadOnlySpan<byte> content, Lsn commitLsn)
    {
        if (prefix != _prefix)
        {
            return null;
        }

        var text = Encoding.UTF8.GetString(content);
        lock (_gate)
        {
            if (_window is not { } window)
            {
                return null;
            }

            if (text == LowContent(window.Id))
            {
                window.Open = true;
                return null;
            }

            if (text != HighContent(window.Id))
            {
                return null;
            }

            _window = null;
            if (!window.Open)
            {
                window.Emitted.TrySetException(new InvalidOperationException($"The high watermark of window {window.Id} came without its low watermark."));
                return null;
            }

            return Close(window, commitLsn);
        }
    }

    /// <summary>The progress after <paramref name="window"/>'s high watermark, and what it emits.</summary>
    private WindowEmission Close(SnapshotWindow window, Lsn commitLsn)
    {
        _closedAny = true;
        var state = _state;
        foreach (var request in window.Requests)
        {
            var queued = state.Tables.ToList();
            foreach (var table in request.Tables)
            {
                if (!queued.Any(t => t.Table == table))
                {
                    queued.Add(new IncrementalTableState(table, request.Signal, Lsn.Zero, null, 0, []));
                }
            }

            state = (state with { Tables = queued }).WithSignal(request.Signal);
        }

        var tables = state.Tables.ToList();
        var index = tables.FindIndex(t => t.Table == window.Table);
        if (index < 0)
        {
            _state = state;
            return new WindowEmission(window, [], false, false, 0, Lsn.Zero);
        }

        var current = tables[index];
        if (window.Kind == WindowKind.Skip)
        {
            tables.RemoveAt(index);
            _state = state with { Tables = tables };
            return new WindowEmission(window, [], false, false, current.Rows, current.Lsn);
        }

        var kept = window.Truncated ? [] : window.Rows.Where(r => !window.Changed.Contains(KeyText(r.Key))).ToList();
        var start = false;
        switch (window.Kind)
        {
            case WindowKind.Begin:
                start = !current.Started;
                current = current with { Lsn = current.Started ? current.Lsn : commitLsn };
                break;
            case WindowKind.Range when current.RemainingChunks is { } remaining:
                var left = remaining.Where(c => c != window.Chunk).ToList();
                current = current with { RemainingChunks = left, Exhausted = left.Count == 0 };
                break;
            case WindowKind.Range:
                current = current with
                {
                    LastKey = window.Rows.Count > 0 ? window.Rows[^1].Key : current.LastKey,
                    Exhausted = window.Exhausted,
                };
                break;
            case WindowKind.Retry:
                // Read again now, unless changed inside the window (dropped: the key stays when that change left a
                // TOAST value unsent too, Observe added it then).
                var read = new HashSet<string>(window.RetryKeys.Select(KeyText).Where(k => !window.Changed.Contains(k)), StringComparer.Ordinal);
                current = current with { Retry = current.Retry.Where(k => !read.Contains(KeyText(k))).ToList() };
                break;
        }

        current = current with { Rows = current.Rows + kept.Count };
        var end = current.Started && current.Exhausted && current.Retry.Count == 0;
        if (end)
        {
            tables.RemoveAt(index);
        }
        else
        {
            tables[index] = current;
        }

        _state = state with { Tables = tables };
        return new WindowEmission(window, kept, start, end, current.Rows, current.Lsn, current.Initial);
    }

    /// <summary>Adds a key to read again to a started table's progress (at once: the group holding the change carries it).</summary>
    private void AddRetry(string table, IReadOnlyList<string?> key)
    {
        var tables = _state.Tables.ToList();
        var index = tables.FindIndex(t => t.Table == table && t.Started);
        if (index < 0)
        {
            return;
        }

        var text = KeyText(key);
        if (tables[index].Retry.Any(k => KeyText(k) == text))
        {
            return;
        }

        tables[index] = tables[index] with { Retry = [.. tables[index].Retry, key] };
        _state = _state with { Tables = tables };
    }

    /// <summary>
    /// Reader thread: a record batch of a watched table (<see cref="Watches"/>) as it joins the group. The keys of its
    /// changed rows (old keys too) enter the open window's changed set; keys of updates that left a TOAST value unsent
    /// are read again later (a consumer may not hold the row's complete state); a truncate drops the whole window.
    /// Snapshot rows (<c>_op = r</c>) are not changes.
    /// </summary>
    public void Observe(string schema, string table, ReadOnlySpan<byte> schemaMessage, ReadOnlySpan<byte> batch)
    {
        var name = schema + "." + table;
        lock (_gate)
        {
            if (!IsWatched(name))
            {
                return;
            }

            var stream = new byte[schemaMessage.Length + batch.Length + ArrowMessageWriter.EndOfStream.Length];
            schemaMessage.CopyTo(stream);
            batch.CopyTo(stream.AsSpan(schemaMessage.Length));
            ArrowMessageWriter.EndOfStream.CopyTo(stream.AsSpan(schemaMessage.Length + batch.Length));
            var payload = ArrowPayload.Read(stream);
            var window = _window is { Open: true } w && w.Table == name ? w : null;
            var retrying = _state.Tables.Any(t => t.Started && t.Table == name);
            var keyColumns = window?.KeyColumns ?? KeyColumnsOf(payload.Schema);
            foreach (var record in payload.Batches)
            {
                ObserveBatch(name, record, keyColumns, window, retrying);
            }
        }
    }

    private void ObserveBatch(string table, RecordBatch batch, IReadOnlyList<string> keyColumns, SnapshotWindow? window, bool retrying)
    {
        var schema = batch.Schema;
        var op = (StringArray)batch.Column(schema.GetFieldIndex(ChangeBatchBuilder.OpColumn));
        var keyIndexes = keyColumns.Select(name => schema.GetFieldIndex(name)).ToArray();
        if (keyIndexes.Any(i => i < 0))
        {
            return;
        }

        var unchangedIndex = schema.GetFieldIndex(ChangeBatchBuilder.UnchangedColumn);
        var unchanged = unchangedIndex >= 0 ? batch.Column(unchangedIndex) : null;
        var beforeIndex = schema.GetFieldIndex(ChangeBatchBuilder.BeforeColumn);
        int[]? beforeMembers = null;
        if (beforeIndex >= 0 && batch.Column(beforeIndex) is StructArray && schema.GetFieldByIndex(beforeIndex).DataType is Apache.Arrow.Types.StructType beforeType)
        {
            beforeMembers = keyColumns.Select(k => beforeType.Fields.ToList().FindIndex(f => f.Name == k)).ToArray();
        }

        for (var row = 0; row < batch.Length; row++)
        {
            var kind = op.GetString(row);
            if (kind == "r")
            {
                continue;
            }

            if (kind == "t")
            {
                if (window is not null)
                {
                    window.Truncated = true;
                }

                continue;
            }

            var key = keyIndexes.Select(i => PgTextRenderer.RenderCell(batch, i, row)).ToArray();
            window?.Changed.Add(KeyText(key));
            if (beforeMembers is not null && beforeMembers.All(m => m >= 0) && !batch.Column(beforeIndex).IsNull(row))
            {
                var old = beforeMembers.Select(m => PgTextRenderer.RenderBeforeCell(batch, m, row)).ToArray();
                window?.Changed.Add(KeyText(old));
            }

            if (retrying && kind == "u" && unchanged is not null && !unchanged.IsNull(row))
            {
                AddRetry(table, key);
            }
        }
    }

    /// <summary>The key columns a payload's schema names in its <c>pg.primary_key</c> metadata.</summary>
    private static string[] KeyColumnsOf(Apache.Arrow.Schema schema) =>
        schema.Metadata is { } metadata && metadata.TryGetValue("pg.primary_key", out var keys) && keys.Length > 0 ? keys.Split(',') : [];

    /// <summary>A key as one comparable string.</summary>
    public static string KeyText(IReadOnlyList<string?> key) =>
        string.Join('\u001f', key.Select(v => v is null ? "\u0000" : v.Replace("\u001f", "\u001f\u001f", StringComparison.Ordinal)));
}
