using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using Npgsql;
using WalBridge.Connector.Kafka;
using WalBridge.Connector.Verification;
using WalBridge.Offsets;

namespace WalBridge.DevTools.Chaos;

/// <summary>What the independent reader rebuilt: every table in PostgreSQL's text form, ready for <see cref="SourceComparison"/>.</summary>
public sealed class ArrowJsReplayResult
{
    public List<ReplayedTable> Tables { get; } = [];
    /// <summary>Violations of topics no table could be rebuilt from (not one record apache-arrow read as WalBridge's layout).</summary>
    public List<string> TopicViolations { get; } = [];
    /// <summary>For the tracked tables (<c>schema.table</c>): the first column's value of each inserted row → the insert's commit LSN (<c>_commit_lsn</c>).</summary>
    public Dictionary<string, Dictionary<string, string>> InsertCommitLsns { get; } = new(StringComparer.Ordinal);
    /// <summary>Per topic: the source transactions (<c>_xid</c>) with rows in it, with their commit LSN (<c>_commit_lsn</c>).</summary>
    public Dictionary<string, Dictionary<string, string>> TransactionsByTopic { get; } = new(StringComparer.Ordinal);
    /// <summary>Per topic: its partition count as the broker reports it.</summary>
    public Dictionary<string, int> PartitionsByTopic { get; } = new(StringComparer.Ordinal);
    public long Records { get; set; }
    public long Rows { get; set; }
    /// <summary>Updates that moved a key to another partition, each with its delete of the old key in the old partition.</summary>
    public long KeyMoves { get; set; }
    /// <summary>Truncates (each once, however many partitions hold its row).</summary>
    public long Truncates { get; set; }
    /// <summary>Values PostgreSQL turned back into text (the rest were text or bytes already).</summary>
    public long RenderedBySql { get; set; }
    /// <summary>Time spent in apache-arrow (node), in applying the decoded changes, and in rendering.</summary>
    public TimeSpan DecodeTime { get; set; }
    public TimeSpan ApplyTime { get; set; }
    public TimeSpan RenderTime { get; set; }
    /// <summary>Every source transaction's commit timestamp (the raw <c>_commit_ts</c> cell) by its commit LSN, over all topics.</summary>
    internal Dictionary<ulong, string> CommitTimestamps { get; } = [];
}

/// <summary>
/// The independent reader: table topics are read with <c>read_committed</c>, every record is decoded by npm
/// apache-arrow (tools/arrow-js/dump.js, an Arrow implementation WalBridge did not write), each table is rebuilt from
/// the raw decoded cells, and the final values are turned into PostgreSQL's text by PostgreSQL itself: from each raw
/// Arrow value an SQL expression of the column's type is built as docs/format.md's mapping defines it (a timestamp[us]
/// is the epoch plus days plus microseconds, a decimal its unscaled integer with the field's scale, a list
/// <c>ARRAY[…]</c> of its elements, …) and <c>(expression)::text</c> is compared with the source. Neither our Arrow
/// reader nor our renderer is involved; the header rules of a partition (<see cref="RecordSequence"/>) are shared.
/// </summary>
/// <remarks>
/// Format 2: a record is one table's rows of one partition from one or more source transactions, with per-row
/// <c>_xid</c>, <c>_commit_lsn</c> and <c>_commit_ts</c>. Each partition is read in offset order (its header rules,
/// the payload against its headers, rows in source order); then the partitions are merged row by row by
/// (<c>_commit_lsn</c>, <c>_lsn</c>), an update before the delete of the old key it moved to another partition (applied
/// once, the delete checked against the update's old key), a truncate (a row in every partition) applied once. On
/// the way: every change of a key in the partition its row is in, a table without a key in partition 0.
/// </remarks>
public static class ArrowJsReplay
{
    private const char Separator = '\u001e';
    private const int MaxFilesPerRun = 1000;
    private const long MaxBytesPerRun = 16L << 20;
    private const int ExpressionsPerQuery = 200;
    /// <summary>The columns before the table's (format 2): <c>_op</c>, <c>_lsn</c>, <c>_xid</c>, <c>_commit_lsn</c>, <c>_commit_ts</c>.</summary>
    private const int Leading = 5;

    /// <summary>tools/arrow-js above this program, with apache-arrow installed (scripts/setup.sh), or null.</summary>
    public static string? FindTool()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tools", "arrow-js");
            if (File.Exists(Path.Combine(candidate, "dump.js")) && File.Exists(Path.Combine(candidate, "node_modules", "apache-arrow", "package.json")))
            {
                return candidate;
            }
        }
        return null;
    }

    /// <summary>Reads and rebuilds <paramref name="topics"/>; renders through <paramref name="connection"/>. Blocking reads, async rendering.</summary>
    public static async Task<ArrowJsReplayResult> ReplayAsync(IReadOnlyDictionary<string, string> kafka, IReadOnlyList<string> topics, NpgsqlConnection connection,
        string toolDirectory, IReadOnlyCollection<string> trackInserts, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(topics);
        ArgumentNullException.ThrowIfNull(trackInserts);
        var result = new ArrowJsReplayResult();
        var fields = new FieldRegistry();
        var raw = new List<ReplayedTable>();
        var withPrimaryKey = await TablesWithPrimaryKeyAsync(connection, cancellationToken);
        var directory = Path.Combine(Path.GetTempPath(), $"walbridge-arrowjs-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        try
        {
            foreach (var topic in topics)
            {
                var reader = new TopicReader(kafka, topic, toolDirectory, directory, fields, result, trackInserts, withPrimaryKey);
                var table = await Task.Run(() => reader.Read(cancellationToken), cancellationToken);
                if (table.Columns.Count > 0)
                {
                    raw.Add(table);
                }
                else
                {
                    result.TopicViolations.AddRange(table.Violations.Select(v => $"{topic}: {v}"));
                }
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }

        var renderClock = Stopwatch.StartNew();
        var renderer = new SqlRenderer(connection, fields);
        await renderer.PrepareAsync(raw.SelectMany(t => t.Rows.Values).SelectMany(r => r).SelectMany(r => r.Values), cancellationToken);
        result.RenderedBySql = renderer.Rendered;
        foreach (var table in raw)
        {
            var text = new ReplayedTable { Topic = table.Topic, Records = table.Records, Changes = table.Changes, MaxCommitLsn = table.MaxCommitLsn };
            text.SetSchema(table.Schema, table.Table, table.Columns, table.KeyColumns);
            foreach (var row in table.Rows.Values.SelectMany(r => r))
            {
                text.Insert(row.ToDictionary(kv => kv.Key, kv => renderer.Render(kv.Value), StringComparer.Ordinal));
            }

            text.Transactions.UnionWith(table.Transactions);
            text.Violations.AddRange(table.Violations);
            text.DuplicateRecords = table.DuplicateRecords;
            text.Unmatched.AddRange(table.Unmatched);
            text.UnmatchedCount = table.UnmatchedCount;
            result.Tables.Add(text);
        }
        result.RenderTime = renderClock.Elapsed;
        return result;
    }

    /// <summary>
    /// <c>schema.table</c> of the source's tables with a primary key: under REPLICA IDENTITY FULL <c>pg.primary_key</c>
    /// names every column both for a table without a key and for one whose primary key is every column.
    /// </summary>
    private static async Task<HashSet<string>> TablesWithPrimaryKeyAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var tables = new HashSet<string>(StringComparer.Ordinal);
        await using var command = new NpgsqlCommand(
            "SELECT n.nspname || '.' || c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE i.indisprimary",
            connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            tables.Add(reader.GetString(0));
        }

        return tables;
    }

    /// <summary>A record as read from its partition: its value in <see cref="File"/>, its headers' account of itself.</summary>
    private sealed record PendingRecord(string File, long Bytes, string Where, RecordPlace Place, string? TableHeader, string? Key);

    /// <summary>A record's layout as apache-arrow read it, worked out once per distinct schema.</summary>
    private sealed record Layout(string[] Names, int[] Signatures, string[] BeforeNames, int[] BeforeSignatures, string Schema, string Table, string[] Key,
        bool Keyless, string? Problem)
    {
        public string Qualified => $"{Schema}.{Table}";
    }

    /// <summary>Reads one topic: its partitions' records to files, then the merge of their rows into one table.</summary>
    private sealed class TopicReader(IReadOnlyDictionary<string, string> kafka, string topic, string tool, string directory, FieldRegistry fields,
        ArrowJsReplayResult result, IReadOnlyCollection<string> trackInserts, IReadOnlySet<string> withPrimaryKey)
    {
        private readonly Dictionary<string, Layout> _layouts = new(StringComparer.Ordinal);
        private readonly SortedDictionary<int, PartitionCursor> _partitions = [];
        private readonly Dictionary<string, string> _transactions = new(StringComparer.Ordinal);
        private readonly Dictionary<ulong, uint> _xidByCommit = [];
        /// <summary>Per truncate (its commit LSN and LSN): the partitions holding its row.</summary>
        private readonly Dictionary<(ulong CommitLsn, ulong Lsn), HashSet<int>> _truncates = [];
        /// <summary>The partition each live row's key (the identity columns' raw values) is in.</summary>
        private readonly Dictionary<string, int> _keyPartitions = new(StringComparer.Ordinal);
        private string[] _affinityColumns = [];
        private Layout? _applied;
        private int _fileNumber;

        public ReplayedTable Table { get; } = new() { Topic = topic };

        public ReplayedTable Read(CancellationToken cancellationToken)
        {
            result.TransactionsByTopic[topic] = _transactions;
            var partitionCount = PartitionCount();
            result.PartitionsByTopic[topic] = partitionCount;
            OffsetsTopicReader.ReadToEnd(kafka, topic, message =>
            {
                Table.Records++;
                result.Records++;
                var partition = message.Partition.Value;
                if (!_partitions.TryGetValue(partition, out var cursor))
                {
                    _partitions[partition] = cursor = new PartitionCursor(this, partition);
                }

                var where = $"{topic}[{partition}]@{message.Offset.Value}";
                var headers = message.Message.Headers;
                var place = cursor.Sequence.Add(headers, where, Table.Violations);
                if (place.Duplicate)
                {
                    Table.DuplicateRecords++;
                }

                Table.MaxCommitLsn = Lsn.Max(Table.MaxCommitLsn, place.CommitLsn);
                if (Header(headers, KafkaHeaders.Kind) == KafkaHeaders.KindSnapshot)
                {
                    // A snapshot marker (no rows): its place was checked above.
                    return;
                }

                if (Header(headers, KafkaHeaders.Kind) is var kind && kind != KafkaHeaders.KindChanges)
                {
                    Table.Violations.Add($"record {where} has {KafkaHeaders.Kind} '{kind}', not 'changes'");
                }

                if (message.Message.Value is not { } value)
                {
                    Table.Violations.Add($"record {where} has no value");
                    return;
                }
                var file = Path.Combine(directory, $"{_fileNumber++:D7}.arrows");
                File.WriteAllBytes(file, value);
                var key = message.Message.Key is { } bytes ? Encoding.UTF8.GetString(bytes) : null;
                cursor.Records.Add(new PendingRecord(file, value.Length, where, place, Header(headers, KafkaHeaders.Table), key));
            }, cancellationToken, TimeSpan.FromMinutes(10));
            foreach (var (partition, cursor) in _partitions)
            {
                if (cursor.Sequence.End(partition.ToString(CultureInfo.InvariantCulture)) is { } unfinished)
                {
                    Table.Violations.Add(unfinished);
                }
            }

            var clock = Stopwatch.StartNew();
            var decodeBefore = result.DecodeTime;
            Merge(partitionCount);
            result.ApplyTime += clock.Elapsed - (result.DecodeTime - decodeBefore);
            return Table;
        }

        private int PartitionCount()
        {
            using var admin = new AdminClientBuilder(new AdminClientConfig(kafka.ToDictionary(kv => kv.Key, kv => kv.Value))).Build();
            var metadata = admin.GetMetadata(topic, TimeSpan.FromSeconds(15));
            return metadata.Topics.FirstOrDefault(t => t.Topic == topic)?.Partitions.Count ?? 0;
        }

        /// <summary>Every partition's rows in source order: (<c>_commit_lsn</c>, <c>_lsn</c>), an update before a delete at the same change.</summary>
        private void Merge(int partitionCount)
        {
            var cursors = _partitions.Values.Where(c => c.MoveNext()).ToList();
            (ulong CommitLsn, ulong Lsn)? lastTruncate = null;
            // The last update (its change, partition and old key), and the delete of the old key one must be followed by.
            ((ulong CommitLsn, ulong Lsn) Change, int Partition, string OldKey)? lastUpdate = null;
            ((ulong CommitLsn, ulong Lsn) Change, int Partition, string OldKey, string Where)? expectedDelete = null;
            while (cursors.Count > 0)
            {
                var next = cursors[0];
                foreach (var cursor in cursors)
                {
                    if (cursor.CompareTo(next) < 0)
                    {
                        next = cursor;
                    }
                }

                var change = (next.CommitLsn, next.ChangeLsn);
                var where = next.Where;
                if (expectedDelete is { } expected && !(next.Op == "d" && change == expected.Change && next.Partition == expected.Partition))
                {
                    Table.Violations.Add($"the update at {expected.Where} took key ({TopicReplay.ShowKey(expected.OldKey)}) from partition {expected.Partition}, " +
                        $"but no delete of it in partition {expected.Partition} follows at the same change (next: '{next.Op}' at {where})");
                    expectedDelete = null;
                }

                switch (next.Op)
                {
                    case "t":
                        Truncate(next, change, lastTruncate == change, where);
                        lastTruncate = change;
                        break;
                    case "d" when lastUpdate is { } update && update.Change == change:
                        // The delete a key-moving update left in the old partition: the update moved the row already.
                        var key = ReplayedTable.KeyOf(Identity, next.Values());
                        if (update.Partition == next.Partition)
                        {
                            Table.Violations.Add($"a delete at {where} is at the same change as an update in the same partition {next.Partition}");
                        }
                        else if (key != update.OldKey)
                        {
                            Table.Violations.Add($"the delete at {where}, at the change of an update that moved key ({TopicReplay.ShowKey(update.OldKey)}) out of partition {next.Partition}, deletes key ({TopicReplay.ShowKey(key)})");
                        }
                        else
                        {
                            result.KeyMoves++;
                        }

                        expectedDelete = null;
                        lastUpdate = null;
                        break;
                    default:
                        var moved = Apply(next, where);
                        if (next.Op == "u")
                        {
                            lastUpdate = (change, next.Partition, moved.OldKey!);
                            expectedDelete = moved.From is { } from ? (change, from, moved.OldKey!, where) : null;
                        }

                        break;
                }

                if (!next.MoveNext())
                {
                    cursors.Remove(next);
                }
            }

            if (expectedDelete is { } last)
            {
                Table.Violations.Add($"the update at {last.Where} took key ({TopicReplay.ShowKey(last.OldKey)}) from partition {last.Partition}, but the topic ends without its delete there");
            }

            foreach (var ((commitLsn, lsn), partitions) in _truncates)
            {
                if (partitions.Count != partitionCount)
                {
                    Table.Violations.Add($"the truncate at LSN {new Lsn(lsn)} (committed at {new Lsn(commitLsn)}) is in partitions {string.Join(",", partitions.Order())} of the topic's {partitionCount}, not in every one");
                }
            }
        }

        /// <summary>The identity of the table's rows: its key columns, or every column (<see cref="ReplayedTable"/>'s rule).</summary>
        private IReadOnlyList<string> Identity => Table.KeyColumns.Count > 0 ? Table.KeyColumns : Table.Columns;

        private void Truncate(PartitionCursor cursor, (ulong CommitLsn, ulong Lsn) change, bool again, string where)
        {
            TakeSchema(cursor.Layout!);
            if (!_truncates.TryGetValue(change, out var partitions))
            {
                _truncates[change] = partitions = [];
            }

            if (!partitions.Add(cursor.Partition))
            {
                Table.Violations.Add($"the truncate at {where} is in partition {cursor.Partition} twice");
            }

            if (cursor.HasTableValues())
            {
                Table.Violations.Add($"the truncate row at {where} has table column values (all must be null)");
            }

            if (!again)
            {
                Table.Changes++;
                Table.Transactions.Add(new Lsn(change.CommitLsn).ToString());
                result.Truncates++;
                Table.Truncate();
                _keyPartitions.Clear();
            }
        }

        /// <summary>Applies an insert, update or delete; for an update its old key and the partition it moved the key from (or null).</summary>
        private (string? OldKey, int? From) Apply(PartitionCursor cursor, string where)
        {
            var layout = cursor.Layout!;
            TakeSchema(layout);
            Table.Changes++;
            Table.Transactions.Add(new Lsn(cursor.CommitLsn).ToString());
            var partition = cursor.Partition;
            if (layout.Keyless && partition != 0)
            {
                Table.Violations.Add($"a row of a table without a key is in partition {partition}, not 0, at {where}");
            }

            var values = cursor.Values();
            switch (cursor.Op)
            {
                case "c":
                case "r":
                    {
                        var key = ReplayedTable.KeyOf(Identity, values);
                        if (_keyPartitions.TryGetValue(key, out var lives) && lives != partition && Table.Rows.ContainsKey(key))
                        {
                            Table.Violations.Add($"an insert at {where} puts key ({TopicReplay.ShowKey(key)}) in partition {partition}, but a row with it is in partition {lives}");
                        }

                        if (cursor.Op == "r")
                        {
                            Table.Read(values, cursor.CommitLsn);
                        }
                        else
                        {
                            Table.Insert(values);
                        }

                        _keyPartitions[key] = partition;
                        if (trackInserts.Contains(layout.Qualified) && cursor.FirstTableValue() is { } first)
                        {
                            if (!result.InsertCommitLsns.TryGetValue(layout.Qualified, out var tracked))
                            {
                                result.InsertCommitLsns[layout.Qualified] = tracked = new Dictionary<string, string>(StringComparer.Ordinal);
                            }

                            tracked[first] = new Lsn(cursor.CommitLsn).ToString();
                        }

                        return (null, null);
                    }
                case "u":
                    {
                        var old = cursor.Before(Table.Violations);
                        var oldKey = ReplayedTable.KeyOf(Identity, old ?? values);
                        int? from = _keyPartitions.TryGetValue(oldKey, out var lives) && lives != partition ? lives : null;
                        Table.Update(old, values, cursor.Unchanged(), where);
                        if (!Table.Rows.ContainsKey(oldKey))
                        {
                            _keyPartitions.Remove(oldKey);
                        }

                        _keyPartitions[ReplayedTable.KeyOf(Identity, values)] = partition;
                        return (oldKey, from);
                    }
                case "d":
                    {
                        var key = ReplayedTable.KeyOf(Identity, values);
                        if (_keyPartitions.TryGetValue(key, out var lives) && lives != partition)
                        {
                            Table.Violations.Add($"a delete at {where} of key ({TopicReplay.ShowKey(key)}) is in partition {partition}, but its row is in partition {lives}");
                        }

                        Table.Delete(values, where);
                        if (!Table.Rows.ContainsKey(key))
                        {
                            _keyPartitions.Remove(key);
                        }

                        return (null, null);
                    }
                default:
                    Table.Violations.Add($"unknown _op '{cursor.Op}' at {where}");
                    return (null, null);
            }
        }

        /// <summary>The table takes the schema of the row being applied (a new one after an ALTER TABLE); keys are placed anew when its identity changes.</summary>
        private void TakeSchema(Layout layout)
        {
            if (ReferenceEquals(layout, _applied))
            {
                return;
            }

            Table.SetSchema(layout.Schema, layout.Table, layout.Names, layout.Key);
            _applied = layout;
            var identity = Identity.ToArray();
            if (!identity.SequenceEqual(_affinityColumns, StringComparer.Ordinal))
            {
                // Under another identity (a replica identity switched, a column added to a table without a key) rows
                // are placed by another key: where the existing ones went says nothing about their next changes.
                _keyPartitions.Clear();
                _affinityColumns = identity;
            }
        }

        /// <summary>A record's source transaction: one commit LSN per xid and one xid and commit timestamp per commit LSN.</summary>
        public void NoteTransaction(uint xid, ulong commitLsn, string timestamp, string where)
        {
            var xidText = xid.ToString(CultureInfo.InvariantCulture);
            var lsnText = new Lsn(commitLsn).ToString();
            if (_transactions.TryGetValue(xidText, out var earlier) && earlier != lsnText)
            {
                Table.Violations.Add($"xid {xid} has two commit LSNs, {earlier} and {lsnText} ({where})");
            }

            _transactions[xidText] = lsnText;
            if (_xidByCommit.TryGetValue(commitLsn, out var other) && other != xid)
            {
                Table.Violations.Add($"commit LSN {lsnText} has two xids, {other} and {xid} ({where})");
            }

            _xidByCommit[commitLsn] = xid;
            if (result.CommitTimestamps.TryGetValue(commitLsn, out var stamp) && stamp != timestamp)
            {
                Table.Violations.Add($"the transaction committed at {lsnText} has two commit timestamps, {stamp} and {timestamp} µs ({where})");
            }

            result.CommitTimestamps[commitLsn] = timestamp;
        }

        /// <summary>
        /// Decodes records of <paramref name="dry"/> (whose decoded records ran out) and, in the same node run (its start
        /// costs half a second), of the other partitions with room: round robin within a run's limits.
        /// </summary>
        public void Fill(PartitionCursor dry)
        {
            var batch = new List<(PartitionCursor Cursor, PendingRecord Record)>();
            long bytes = 0;
            var open = _partitions.Values.Where(c => c.CanQueue).OrderBy(c => c == dry ? 0 : 1).ToList();
            while (open.Count > 0 && batch.Count < MaxFilesPerRun && bytes < MaxBytesPerRun)
            {
                foreach (var cursor in open.ToList())
                {
                    if (!cursor.CanQueue || batch.Count >= MaxFilesPerRun || bytes >= MaxBytesPerRun)
                    {
                        open.Remove(cursor);
                        continue;
                    }

                    var record = cursor.TakeUndecoded();
                    batch.Add((cursor, record));
                    bytes += record.Bytes;
                }
            }

            var clock = Stopwatch.StartNew();
            var documents = Dump(tool, batch.Select(b => b.Record.File).ToList());
            result.DecodeTime += clock.Elapsed;
            for (var i = 0; i < batch.Count; i++)
            {
                batch[i].Cursor.Enqueue(batch[i].Record, documents[i]);
                File.Delete(batch[i].Record.File);
            }
        }

        public Layout LayoutOf(JsonElement document)
        {
            var fieldsText = document.GetProperty("fields").GetRawText() + document.GetProperty("metadata").GetRawText();
            if (!_layouts.TryGetValue(fieldsText, out var layout))
            {
                _layouts[fieldsText] = layout = Describe(document, fields, withPrimaryKey);
            }

            return layout;
        }

        public void Violation(string text) => Table.Violations.Add(text);

        public void CountRows(long rows) => result.Rows += rows;
    }

    /// <summary>One partition's records in offset order, decoded in batches as the merge reaches them, row by row.</summary>
    private sealed class PartitionCursor(TopicReader reader, int partition)
    {
        private readonly Queue<(PendingRecord Record, JsonDocument Document)> _decoded = new();
        private int _nextRecord;
        private long _queuedBytes;
        private JsonDocument? _document;
        private JsonElement[] _cells = [];
        private string?[] _ops = [];
        private ulong[] _lsns = [];
        private ulong[] _commitLsns = [];
        private int _rows;
        private (ulong CommitLsn, ulong Lsn) _previous;
        private string? _previousWhere;

        public int Partition => partition;
        public RecordSequence Sequence { get; } = new();
        public List<PendingRecord> Records { get; } = [];
        public PendingRecord? Record { get; private set; }
        public Layout? Layout { get; private set; }
        /// <summary>The current row within its record.</summary>
        public int Row { get; private set; } = -1;
        public string? Op => _ops[Row];
        public ulong ChangeLsn => _lsns[Row];
        public ulong CommitLsn => _commitLsns[Row];
        public string Where => $"{Record!.Where}, row {Row} (apache-arrow)";

        public bool MoveNext()
        {
            Row++;
            while (_document is null || Row >= _rows)
            {
                _document?.Dispose();
                _document = null;
                if (_decoded.Count == 0 && !Decode())
                {
                    return false;
                }

                var (record, document) = _decoded.Dequeue();
                _queuedBytes -= record.Bytes;
                _document = document;
                Record = record;
                Row = 0;
                Open(record, document.RootElement);
            }

            var here = (CommitLsn, ChangeLsn);
            if (_previousWhere is not null && here.CompareTo(_previous) < 0)
            {
                reader.Violation($"rows out of source order in partition {partition}: {Where} (commit LSN {new Lsn(CommitLsn)}, LSN {new Lsn(ChangeLsn)}) comes after {_previousWhere} " +
                    $"(commit LSN {new Lsn(_previous.CommitLsn)}, LSN {new Lsn(_previous.Lsn)})");
            }

            _previous = here;
            _previousWhere = Where;
            return true;
        }

        /// <summary>Source order over partitions: commit LSN, then LSN; at the same change an update before the delete of the key it moved.</summary>
        public int CompareTo(PartitionCursor other)
        {
            var order = (CommitLsn, ChangeLsn).CompareTo((other.CommitLsn, other.ChangeLsn));
            if (order == 0)
            {
                order = (Op == "d" ? 1 : 0).CompareTo(other.Op == "d" ? 1 : 0);
            }

            return order == 0 ? partition.CompareTo(other.Partition) : order;
        }

        /// <summary>Decodes this partition's next records (with other partitions' in the same node run); false when none are left.</summary>
        private bool Decode()
        {
            if (!HasUndecoded)
            {
                return false;
            }

            reader.Fill(this);
            return true;
        }

        public bool HasUndecoded => _nextRecord < Records.Count;

        /// <summary>Whether the partition has records to decode and room for them (decoded records waiting are bounded like a node run).</summary>
        public bool CanQueue => HasUndecoded && _decoded.Count < MaxFilesPerRun && _queuedBytes < MaxBytesPerRun;

        public PendingRecord TakeUndecoded() => Records[_nextRecord++];

        public void Enqueue(PendingRecord record, JsonDocument document)
        {
            _decoded.Enqueue((record, document));
            _queuedBytes += record.Bytes;
        }

        /// <summary>Takes a record's layout and system columns, and checks its payload against its headers.</summary>
        private void Open(PendingRecord record, JsonElement document)
        {
            _rows = 0;
            Layout = reader.LayoutOf(document);
            if (Layout.Problem is not null)
            {
                reader.Violation($"{Layout.Problem} ({record.Where})");
                return;
            }

            _cells = document.GetProperty("columns").EnumerateArray().ToArray();
            var rows = document.GetProperty("rows").GetInt32();
            _ops = new string?[rows];
            _lsns = new ulong[rows];
            _commitLsns = new ulong[rows];
            for (var row = 0; row < rows; row++)
            {
                var op = _cells[0][row];
                _ops[row] = op.ValueKind == JsonValueKind.String ? op.GetString() : null;
                if (!UInt64(_cells[1][row], out _lsns[row]) || !UInt64(_cells[3][row], out _commitLsns[row])
                    || _cells[2][row] is not { ValueKind: JsonValueKind.Number } xid || _cells[4][row] is not { ValueKind: JsonValueKind.String } timestamp)
                {
                    reader.Violation($"record {record.Where}, row {row}: _lsn, _xid, _commit_lsn or _commit_ts is null or not a number (apache-arrow)");
                    return;
                }

                reader.NoteTransaction(xid.GetUInt32(), _commitLsns[row], timestamp.GetString()!, $"{record.Where}, row {row}");
            }

            var place = record.Place;
            var problems = new List<string>();
            if (rows == 0)
            {
                problems.Add("holds no rows");
            }
            else
            {
                if (_commitLsns[0] != place.FirstCommitLsn.Value)
                {
                    problems.Add($"starts with a row committed at {new Lsn(_commitLsns[0])}, but {KafkaHeaders.FirstCommitLsn} is {place.FirstCommitLsn}");
                }

                if (_commitLsns[^1] != place.CommitLsn.Value)
                {
                    problems.Add($"ends with a row committed at {new Lsn(_commitLsns[^1])}, but {KafkaHeaders.CommitLsn} is {place.CommitLsn}");
                }
            }

            if (place.Rows != rows)
            {
                problems.Add($"holds {rows} rows, but {KafkaHeaders.Rows} says {place.Rows}");
            }

            var transactions = _commitLsns.Distinct().Count();
            if (place.Transactions != transactions)
            {
                problems.Add($"holds rows of {transactions} transactions, but {KafkaHeaders.Transactions} says {place.Transactions}");
            }

            if (record.TableHeader != Layout.Qualified)
            {
                problems.Add($"is table {Layout.Qualified}, but {KafkaHeaders.Table} says '{record.TableHeader}'");
            }

            if (record.Key != Layout.Qualified)
            {
                problems.Add($"is table {Layout.Qualified}, but its key is '{record.Key}'");
            }

            foreach (var problem in problems)
            {
                reader.Violation($"record {record.Where} {problem} (apache-arrow)");
            }

            reader.CountRows(rows);
            _rows = rows;
        }

        private static bool UInt64(JsonElement cell, out ulong value)
        {
            value = 0;
            return cell.ValueKind == JsonValueKind.String && ulong.TryParse(cell.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out value);
        }

        private Dictionary<string, string?> Special()
        {
            var special = new Dictionary<string, string?>(StringComparer.Ordinal);
            if (_cells[^1][Row] is { ValueKind: JsonValueKind.Array } entries)
            {
                foreach (var entry in entries.EnumerateArray())
                {
                    special[entry[0].GetString()!] = entry[1].GetString();
                }
            }

            return special;
        }

        /// <summary>The row's table columns as encoded raw cells (see <see cref="Encode"/>).</summary>
        public Dictionary<string, string?> Values()
        {
            var layout = Layout!;
            var special = Special();
            var values = new Dictionary<string, string?>(StringComparer.Ordinal);
            for (var c = 0; c < layout.Names.Length; c++)
            {
                values[layout.Names[c]] = Encode(layout.Signatures[c], _cells[c + Leading][Row], special.GetValueOrDefault(layout.Names[c]));
            }

            return values;
        }

        /// <summary>The first table column's value when it is a string (the tracked tables' text key).</summary>
        public string? FirstTableValue() =>
            Layout!.Names.Length > 0 && _cells[Leading][Row] is { ValueKind: JsonValueKind.String } first ? first.GetString() : null;

        /// <summary>Whether any table column of the row is not null (a truncate row has none).</summary>
        public bool HasTableValues()
        {
            for (var c = 0; c < Layout!.Names.Length; c++)
            {
                if (_cells[c + Leading][Row].ValueKind != JsonValueKind.Null)
                {
                    return true;
                }
            }

            return false;
        }

        /// <summary>An update's old row (<c>_before</c>) as encoded raw cells, or null.</summary>
        public Dictionary<string, string?>? Before(List<string> violations)
        {
            var layout = Layout!;
            var members = _cells[^3][Row];
            if (members.ValueKind != JsonValueKind.Array)
            {
                return null;
            }

            if (members.GetArrayLength() != layout.BeforeNames.Length)
            {
                violations.Add($"_before has {members.GetArrayLength()} members but {layout.BeforeNames.Length} fields at {Where}");
                return null;
            }
            var special = Special();
            var old = new Dictionary<string, string?>(StringComparer.Ordinal);
            var m = 0;
            foreach (var member in members.EnumerateArray())
            {
                var name = layout.BeforeNames[m];
                old[name] = Encode(layout.BeforeSignatures[m], member, special.GetValueOrDefault("_before." + name));
                m++;
            }

            return old;
        }

        /// <summary>The columns whose unchanged TOAST value the row does not carry (<c>_unchanged</c>).</summary>
        public List<string> Unchanged() =>
            _cells[^2][Row] is { ValueKind: JsonValueKind.Array } list ? list.EnumerateArray().Select(n => n.GetString()!).ToList() : [];
    }

    private static Layout Describe(JsonElement document, FieldRegistry fields, IReadOnlySet<string> withPrimaryKey)
    {
        var schemaFields = document.GetProperty("fields").EnumerateArray().ToList();
        var metadata = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var pair in document.GetProperty("metadata").EnumerateArray())
        {
            metadata[pair[0].GetString()!] = pair[1].GetString();
        }

        static string Name(JsonElement field) => field.GetProperty("name").GetString()!;
        static string TypeOf(JsonElement field) => $"{field.GetProperty("typeId").GetString()}{field.GetProperty("params").GetRawText()}";
        // Positions are the contract (format 2): _op, _lsn, _xid, _commit_lsn, _commit_ts, the table's columns, _before,
        // _unchanged, _special; the system columns with their exact types.
        var count = schemaFields.Count;
        var columns = Enumerable.Range(Leading, Math.Max(0, count - Leading - 3)).Select(i => schemaFields[i]).ToArray();
        string[] leading = ["_op", "_lsn", "_xid", "_commit_lsn", "_commit_ts"];
        string[] leadingTypes =
        [
            "Utf8{}", "Int{\"bitWidth\":64,\"isSigned\":false}", "Int{\"bitWidth\":32,\"isSigned\":false}", "Int{\"bitWidth\":64,\"isSigned\":false}",
            "Timestamp{\"unit\":\"MICROSECOND\",\"timezone\":\"UTC\"}",
        ];
        if (count < Leading + 4 || !leading.SequenceEqual(schemaFields.Take(Leading).Select(Name), StringComparer.Ordinal)
            || !leadingTypes.SequenceEqual(schemaFields.Take(Leading).Select(TypeOf), StringComparer.Ordinal)
            || Name(schemaFields[count - 3]) != "_before" || Name(schemaFields[count - 2]) != "_unchanged" || Name(schemaFields[count - 1]) != "_special"
            || columns.Any(f => Meta(f, "pg.typoid") is null))
        {
            var problem = $"apache-arrow reads an unexpected column layout: {string.Join(", ", schemaFields.Select(f => $"{Name(f)} {TypeOf(f)}"))}";
            return new Layout([], [], [], [], "", "", [], false, problem);
        }

        var before = schemaFields[count - 3].GetProperty("children").EnumerateArray().ToArray();
        var names = columns.Select(Name).ToArray();
        if (!before.Select(Name).SequenceEqual(names, StringComparer.Ordinal))
        {
            return new Layout([], [], [], [], "", "", [], false,
                $"apache-arrow reads _before members {string.Join(", ", before.Select(Name))}, not the table's columns {string.Join(", ", names)}");
        }

        var schema = metadata.GetValueOrDefault("pg.schema") ?? "";
        var table = metadata.GetValueOrDefault("pg.table") ?? "";
        var key = (metadata.GetValueOrDefault("pg.primary_key") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries);
        // Without a key (none, or under REPLICA IDENTITY FULL every column of a table without a primary key) rows go to partition 0.
        var keyless = key.Length == 0
            || (metadata.GetValueOrDefault("pg.replica_identity") == "f" && key.ToHashSet(StringComparer.Ordinal).SetEquals(names) && !withPrimaryKey.Contains($"{schema}.{table}"));
        return new Layout(names, columns.Select(fields.Register).ToArray(), before.Select(Name).ToArray(), before.Select(fields.Register).ToArray(),
            schema, table, key, keyless, null);
    }

    /// <summary>
    /// Runs dump.js over the files, a large batch split between two node processes (one per core: this side only
    /// waits); one JSON document per file, in order (the caller disposes them).
    /// </summary>
    private static List<JsonDocument> Dump(string tool, List<string> files)
    {
        if (files.Count < 64 || Environment.ProcessorCount < 2)
        {
            return DumpOne(tool, files);
        }

        var half = files.Count / 2;
        var first = Task.Run(() => DumpOne(tool, files[..half]));
        var second = DumpOne(tool, files[half..]);
        return [.. first.GetAwaiter().GetResult(), .. second];
    }

    private static List<JsonDocument> DumpOne(string tool, List<string> files)
    {
        var start = new ProcessStartInfo("node", [Path.Combine(tool, "dump.js"), .. files])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = tool,
        };
        using var node = Process.Start(start) ?? throw new InvalidOperationException("could not start node");
        var stderr = node.StandardError.ReadToEndAsync();
        var documents = new List<JsonDocument>(files.Count);
        while (node.StandardOutput.ReadLine() is { } line)
        {
            documents.Add(JsonDocument.Parse(line));
        }

        node.WaitForExit();
        if (node.ExitCode != 0 || documents.Count != files.Count)
        {
            foreach (var document in documents)
            {
                document.Dispose();
            }

            throw new InvalidOperationException($"apache-arrow (tools/arrow-js/dump.js) could not read a payload (exit code {node.ExitCode}, {documents.Count} of {files.Count} read): {stderr.Result}");
        }
        return documents;
    }

    /// <summary>
    /// A raw cell as a comparable string: the field's signature id, whether the JSON cell was a string, and its exact
    /// JSON (or string) content; values Arrow cannot hold are their <c>_special</c> text; SQL NULL is null.
    /// </summary>
    private static string? Encode(int signature, JsonElement cell, string? special)
    {
        if (cell.ValueKind == JsonValueKind.Null)
        {
            return special is null ? null : "S" + Separator + special;
        }

        return cell.ValueKind == JsonValueKind.String
            ? string.Create(CultureInfo.InvariantCulture, $"{signature}{Separator}s{cell.GetString()}")
            : string.Create(CultureInfo.InvariantCulture, $"{signature}{Separator}j{cell.GetRawText()}");
    }

    private static string? Header(Headers headers, string name) =>
        headers.TryGetLastBytes(name, out var bytes) ? Encoding.UTF8.GetString(bytes) : null;

    internal static string? Meta(JsonObject field, string key) =>
        field["metadata"]!.AsArray().Where(p => (string)p![0]! == key).Select(p => (string?)p![1]).FirstOrDefault();

    private static string? Meta(JsonElement field, string key)
    {
        foreach (var pair in field.GetProperty("metadata").EnumerateArray())
        {
            if (pair[0].GetString() == key)
            {
                return pair[1].GetString();
            }
        }
        return null;
    }

    /// <summary>Field types seen (type, parameters, pg.type, extension, children), numbered.</summary>
    private sealed class FieldRegistry
    {
        private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);

        public List<JsonObject> Fields { get; } = [];

        public int Register(JsonElement field)
        {
            var signature = Signature(field);
            if (!_ids.TryGetValue(signature, out var id))
            {
                id = Fields.Count;
                _ids[signature] = id;
                Fields.Add(JsonNode.Parse(field.GetRawText())!.AsObject());
            }
            return id;
        }

        private static string Signature(JsonElement field) =>
            $"{field.GetProperty("typeId").GetString()}{field.GetProperty("params").GetRawText()}|{Meta(field, "pg.type")}|{Meta(field, "ARROW:extension:name")}"
            + $"[{string.Join(";", field.GetProperty("children").EnumerateArray().Select(Signature))}]";
    }

    /// <summary>Turns encoded cells into PostgreSQL's text: text and bytes directly, everything else through PostgreSQL.</summary>
    private sealed class SqlRenderer(NpgsqlConnection connection, FieldRegistry fields)
    {
        private readonly Dictionary<string, string?> _rendered = new(StringComparer.Ordinal);

        public long Rendered { get; private set; }

        public async Task PrepareAsync(IEnumerable<string?> values, CancellationToken cancellationToken)
        {
            await using (var settings = new NpgsqlCommand("SET extra_float_digits = 1; SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'", connection))
            {
                await settings.ExecuteNonQueryAsync(cancellationToken);
            }

            var pending = new List<(string Encoded, string Sql)>();
            foreach (var encoded in values)
            {
                if (encoded is null || _rendered.ContainsKey(encoded))
                {
                    continue;
                }

                var (direct, sql) = Translate(encoded);
                if (sql is null)
                {
                    _rendered[encoded] = direct;
                    continue;
                }
                _rendered[encoded] = null;
                pending.Add((encoded, sql));
            }
            foreach (var chunk in pending.Chunk(ExpressionsPerQuery))
            {
                try
                {
                    var texts = await QueryAsync(chunk.Select(c => c.Sql).ToList(), cancellationToken);
                    for (var i = 0; i < chunk.Length; i++)
                    {
                        _rendered[chunk[i].Encoded] = texts[i];
                    }
                }
                catch (PostgresException)
                {
                    foreach (var (encoded, sql) in chunk)
                    {
                        try
                        {
                            _rendered[encoded] = (await QueryAsync([sql], cancellationToken))[0];
                        }
                        catch (PostgresException e)
                        {
                            _rendered[encoded] = $"<apache-arrow value {encoded[(encoded.IndexOf(Separator, StringComparison.Ordinal) + 2)..]} that PostgreSQL cannot read back: {e.MessageText}>";
                        }
                    }
                }
            }
            Rendered = pending.Count;
        }

        private async Task<List<string?>> QueryAsync(List<string> expressions, CancellationToken cancellationToken)
        {
            await using var command = new NpgsqlCommand("SELECT " + string.Join(", ", expressions.Select(e => $"({e})::text")), connection);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            await reader.ReadAsync(cancellationToken);
            var texts = new List<string?>(expressions.Count);
            for (var i = 0; i < expressions.Count; i++)
            {
                texts.Add(reader.IsDBNull(i) ? null : reader.GetString(i));
            }

            return texts;
        }

        public string? Render(string? encoded) => encoded is null ? null : _rendered[encoded];

        /// <summary>The text itself when the value is text already, or an SQL expression PostgreSQL must render.</summary>
        private (string? Direct, string? Sql) Translate(string encoded)
        {
            var separator = encoded.IndexOf(Separator, StringComparison.Ordinal);
            if (encoded[..separator] == "S")
            {
                return (encoded[(separator + 1)..], null);
            }

            var field = fields.Fields[int.Parse(encoded[..separator], CultureInfo.InvariantCulture)];
            var isString = encoded[separator + 1] == 's';
            var content = encoded[(separator + 2)..];
            var cell = isString ? JsonValue.Create(content) : JsonNode.Parse(content);
            return (string)field["typeId"]! switch
            {
                "Utf8" or "LargeUtf8" => (content, null),
                "Binary" or "LargeBinary" => ("\\x" + content, null),
                "Bool" => (content == "true" ? "true" : "false", null),
                "Int" => (content, null),
                _ => (null, Sql(cell, field)),
            };
        }
    }

    /// <summary>
    /// An SQL expression of the field's PostgreSQL type (<c>pg.type</c>) whose value is what the raw Arrow cell means under
    /// docs/format.md's mapping, built from the exact integers dump.js prints (floats from their shortest round-trip text).
    /// </summary>
    private static string Sql(JsonNode? cell, JsonObject field)
    {
        var pgType = Meta(field, "pg.type") ?? throw new InvalidOperationException($"field {field["name"]} has no pg.type");
        if (cell is null)
        {
            return $"NULL::{pgType}";
        }

        var parameters = field["params"]!.AsObject();
        switch ((string)field["typeId"]!)
        {
            case "Bool":
                return (bool)cell ? "true" : "false";
            case "Int":
                return $"{Literal(Raw(cell))}::{pgType}";
            case "Float":
                return (string)parameters["precision"]! == "SINGLE" ? $"({Literal(Raw(cell))}::float8)::real" : $"{Literal(Raw(cell))}::float8";
            case "Decimal":
                return $"{Literal(Scaled(BigInteger.Parse((string)cell!, CultureInfo.InvariantCulture), (int)parameters["scale"]!))}::{pgType}";
            case "Utf8":
            case "LargeUtf8":
                return $"{Literal((string)cell!)}::{pgType}";
            case "Binary":
            case "LargeBinary":
                return $"{Literal("\\x" + (string)cell!)}::bytea";
            case "FixedSizeBinary":
                return $"{Literal((string)cell!)}::uuid";
            case "Date":
                return (string)parameters["unit"]! == "DAY"
                    ? $"('1970-01-01'::date + {Literal((string)cell!)}::int4)"
                    : throw new InvalidOperationException($"date unit {parameters["unit"]}");
            case "Timestamp":
                {
                    var micros = Micros((string)parameters["unit"]!, BigInteger.Parse((string)cell!, CultureInfo.InvariantCulture));
                    var day = BigInteger.Parse("86400000000", CultureInfo.InvariantCulture);
                    var within = ((micros % day) + day) % day;
                    var days = (micros - within) / day;
                    var epoch = (string?)parameters["timezone"] is null ? "'1970-01-01 00:00:00'::timestamp" : "'1970-01-01 00:00:00+00'::timestamptz";
                    return $"({epoch} + make_interval(days => {Literal(days.ToString(CultureInfo.InvariantCulture))}::int4) + {Literal(Clock(within))}::interval)::{pgType}";
                }
            case "Time":
                {
                    var micros = Micros((string)parameters["unit"]!, BigInteger.Parse((string)cell!, CultureInfo.InvariantCulture));
                    return $"{Literal(Clock(micros))}::{pgType}";
                }
            case "Interval":
                {
                    if ((string)parameters["unit"]! != "MONTH_DAY_NANO")
                    {
                        throw new InvalidOperationException($"interval unit {parameters["unit"]}");
                    }

                    var parts = cell.AsArray();
                    var nanos = BigInteger.Parse((string)parts[2]!, CultureInfo.InvariantCulture);
                    if (nanos % 1000 != 0)
                    {
                        return Literal($"<interval with {nanos} ns: not whole microseconds>");
                    }

                    var micros = nanos / 1000;
                    return $"(make_interval(months => {(int)parts[0]!}, days => {(int)parts[1]!}) + {Literal((micros < 0 ? "-" : "") + Clock(BigInteger.Abs(micros)))}::interval)";
                }
            case "List":
            case "LargeList":
                {
                    var child = field["children"]!.AsArray()[0]!.AsObject();
                    var items = cell.AsArray();
                    return items.Count == 0 ? $"'{{}}'::{pgType}" : $"ARRAY[{string.Join(", ", items.Select(item => Sql(item, child)))}]::{pgType}";
                }
            default:
                throw new InvalidOperationException($"no SQL rendering for Arrow type {field["type"]}");
        }
    }

    private static BigInteger Micros(string unit, BigInteger value) => unit switch
    {
        "MICROSECOND" => value,
        "MILLISECOND" => value * 1000,
        "SECOND" => value * 1_000_000,
        "NANOSECOND" => value / 1000,
        _ => throw new InvalidOperationException($"time unit {unit}"),
    };

    /// <summary>Non-negative microseconds as <c>H:MM:SS.ffffff</c> (hours not wrapped).</summary>
    private static string Clock(BigInteger micros)
    {
        var hours = micros / 3_600_000_000;
        var rest = (long)(micros % 3_600_000_000);
        return string.Create(CultureInfo.InvariantCulture, $"{hours}:{rest / 60_000_000:D2}:{rest / 1_000_000 % 60:D2}.{rest % 1_000_000:D6}");
    }

    private static string Raw(JsonNode cell) => cell.GetValueKind() == JsonValueKind.String ? (string)cell! : cell.ToJsonString();

    private static string Scaled(BigInteger unscaled, int scale)
    {
        var digits = BigInteger.Abs(unscaled).ToString(CultureInfo.InvariantCulture).PadLeft(scale + 1, '0');
        var text = scale == 0 ? digits : $"{digits[..^scale]}.{digits[^scale..]}";
        return unscaled.Sign < 0 ? "-" + text : text;
    }

    private static string Literal(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";
}
