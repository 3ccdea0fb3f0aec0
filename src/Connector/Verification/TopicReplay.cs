using System.Globalization;
using System.Text;
using Apache.Arrow;
using Apache.Arrow.Types;
using Confluent.Kafka;
using WalBridge.Connector.Kafka;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Connector.Verification;

/// <summary>
/// A table's current state rebuilt from its topic: every committed change applied in order.
/// Values are PostgreSQL's text form (as <c>SELECT col::text</c> prints them) so they compare
/// directly with the source. Rows are a multiset: a table without a key (<c>REPLICA IDENTITY
/// FULL</c>, its identity is the whole row) can hold identical rows, and each update or delete
/// takes away one of them.
/// </summary>
public sealed class ReplayedTable
{
    /// <summary>How many unmatched changes are described in <see cref="Unmatched"/> before the rest are only counted.</summary>
    public const int MaxUnmatchedListed = 20;

    public required string Topic { get; init; }
    public string Schema { get; set; } = "";
    public string Table { get; set; } = "";
    /// <summary>Table column names, from the newest payload's schema.</summary>
    public IReadOnlyList<string> Columns { get; private set; } = [];
    /// <summary>Key column names (<c>pg.primary_key</c>; every column for a table without a key).</summary>
    public IReadOnlyList<string> KeyColumns { get; private set; } = [];
    /// <summary>
    /// Rows by their key (key values joined with U+001F). A list holds more than one row only when the
    /// topic gave several rows the same key: identical rows of a table without a key (or a duplicate).
    /// </summary>
    public Dictionary<string, List<Dictionary<string, string?>>> Rows { get; } = new(StringComparer.Ordinal);
    /// <summary>All rows, counting identical ones.</summary>
    public int RowCount => Rows.Values.Sum(r => r.Count);
    public int Records { get; set; }
    public long Changes { get; set; }
    public HashSet<string> Transactions { get; } = new(StringComparer.Ordinal);
    /// <summary>The highest commit LSN among the topic's records.</summary>
    public WalBridge.Offsets.Lsn MaxCommitLsn { get; set; }
    /// <summary>Contract violations found while reading (duplicates, order, chunk sequence).</summary>
    public List<string> Violations { get; } = [];
    /// <summary>Duplicate records among <see cref="Violations"/>.</summary>
    public int DuplicateRecords { get; set; }
    /// <summary>
    /// Updates and deletes whose old row was not in the rebuilt table (the first <see cref="MaxUnmatchedListed"/>).
    /// Expected only when rows existed before the topic's first record.
    /// </summary>
    public List<string> Unmatched { get; } = [];
    public long UnmatchedCount { get; internal set; }

    private IReadOnlyList<string> IdentityColumns => KeyColumns.Count > 0 ? KeyColumns : Columns;

    /// <summary>
    /// Takes the schema of the next payload. When the identity columns change (a column added to or
    /// dropped from a table without a key) the rows are filed again under their new keys; values of
    /// columns the table no longer has are forgotten (a column added later under the same name starts null).
    /// </summary>
    public void SetSchema(string schema, string table, IReadOnlyList<string> columns, IReadOnlyList<string> keyColumns)
    {
        ArgumentNullException.ThrowIfNull(columns);
        ArgumentNullException.ThrowIfNull(keyColumns);
        Schema = schema;
        Table = table;
        var columnsChanged = !columns.SequenceEqual(Columns, StringComparer.Ordinal);
        var oldIdentity = IdentityColumns;
        Columns = columns.ToArray();
        KeyColumns = keyColumns.ToArray();
        if (columnsChanged && Rows.Count > 0)
        {
            var current = new HashSet<string>(Columns, StringComparer.Ordinal);
            foreach (var row in Rows.Values.SelectMany(r => r))
            {
                foreach (var name in row.Keys.Where(k => !current.Contains(k)).ToList())
                {
                    row.Remove(name);
                }
            }
        }
        if (Rows.Count > 0 && !IdentityColumns.SequenceEqual(oldIdentity, StringComparer.Ordinal))
        {
            var rows = Rows.Values.SelectMany(r => r).ToList();
            Rows.Clear();
            foreach (var row in rows)
            {
                Add(row);
            }
        }
    }

    /// <summary>An insert.</summary>
    public void Insert(Dictionary<string, string?> values) => Add(values);

    /// <summary>
    /// A snapshot read (<c>_op = r</c>): the row's state, an upsert for a table with a key (docs/format.md: after a resumed
    /// snapshot a read may repeat what a change already delivered), an insert without one.
    /// </summary>
    /// <param name="values">The row.</param>
    /// <param name="snapshotLsn">Its initial snapshot's LSN (<c>_commit_lsn</c>), or 0 for an incremental snapshot's row (a refresh).
    /// The first read of a later initial snapshot over rows already held (a <c>when_needed</c> re-snapshot after a gap)
    /// starts the table anew: that snapshot holds the complete table.</param>
    public void Read(Dictionary<string, string?> values, ulong snapshotLsn)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (snapshotLsn != 0 && snapshotLsn != _snapshotLsn)
        {
            _snapshotLsn = snapshotLsn;
            Rows.Clear();
        }
        // Without a primary key the identity is the whole row (pg.primary_key lists every column): identical rows are
        // separate rows there, so a read adds one.
        if (KeyColumns.Count > 0 && KeyColumns.Count < Columns.Count)
        {
            Rows.Remove(KeyOf(IdentityColumns, values));
        }

        Add(values);
    }

    /// <summary>
    /// An update: the row under <paramref name="oldValues"/>' key (the old row PostgreSQL sent, with a
    /// changed key or under REPLICA IDENTITY FULL) or else under the new row's key is replaced; the
    /// columns in <paramref name="unchanged"/> (TOAST values PostgreSQL did not send) keep their old value.
    /// </summary>
    public void Update(Dictionary<string, string?>? oldValues, Dictionary<string, string?> values, IEnumerable<string> unchanged, string where)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(unchanged);
        var existing = Take(KeyOf(IdentityColumns, oldValues ?? values), where, "update");
        if (existing is not null)
        {
            foreach (var name in unchanged)
            {
                values[name] = existing.GetValueOrDefault(name);
            }
        }
        Add(values);
    }

    /// <summary>The LSN of the snapshot whose rows were read last (zero before any).</summary>
    private ulong _snapshotLsn;

    /// <summary>A delete: one row with the key of <paramref name="values"/> (the old key or old row) goes.</summary>
    public void Delete(Dictionary<string, string?> values, string where) => Take(KeyOf(IdentityColumns, values), where, "delete");

    public void Truncate() => Rows.Clear();

    private void Add(Dictionary<string, string?> values)
    {
        var key = KeyOf(IdentityColumns, values);
        if (!Rows.TryGetValue(key, out var list))
        {
            Rows[key] = list = [];
        }

        list.Add(values);
    }

    private Dictionary<string, string?>? Take(string key, string where, string what)
    {
        if (Rows.TryGetValue(key, out var list) && list.Count > 0)
        {
            var row = list[^1];
            list.RemoveAt(list.Count - 1);
            if (list.Count == 0)
            {
                Rows.Remove(key);
            }

            return row;
        }
        UnmatchedCount++;
        if (Unmatched.Count < MaxUnmatchedListed)
        {
            Unmatched.Add($"{what} of a row that is not in the rebuilt table: key ({TopicReplay.ShowKey(key)}) at {where}");
        }

        return null;
    }

    internal static string KeyOf(IReadOnlyList<string> keyColumns, IReadOnlyDictionary<string, string?>? values) => TopicReplay.KeyOf(keyColumns, values ?? new Dictionary<string, string?>());
}

/// <summary>Reads table topics with <c>read_committed</c> and replays them.</summary>
public static class TopicReplay
{
    internal const char KeySeparator = '\u001f';

    /// <summary>
    /// Reads <paramref name="topic"/> to its end and applies every change. Blocking. One partition is applied record by
    /// record; several are merged row by row in source order (<c>_commit_lsn</c>, then <c>_lsn</c>), a truncate row
    /// (present in every partition) applied once, and a key that moved partitions deleted before it is inserted.
    /// </summary>
    public static ReplayedTable Replay(IReadOnlyDictionary<string, string> kafka, string topic, CancellationToken cancellationToken)
    {
        var table = new ReplayedTable { Topic = topic };
        var partitions = new SortedDictionary<int, PartitionRecords>();
        OffsetsTopicReader.ReadToEnd(kafka, topic, message =>
        {
            table.Records++;
            var partition = message.Partition.Value;
            if (!partitions.TryGetValue(partition, out var records))
            {
                partitions[partition] = records = new PartitionRecords();
            }

            var where = $"{message.Topic}[{partition}]@{message.Offset.Value}";
            Check(table, records, message.Message.Headers, where);
            if (message.Message.Value is null)
            {
                table.Violations.Add($"record {where} has no value");
                return;
            }

            records.Values.Add((where, message.Message.Value));
        }, cancellationToken);
        foreach (var (partition, records) in partitions)
        {
            if (records.Sequence.End(partition.ToString(CultureInfo.InvariantCulture)) is { } unfinished)
            {
                table.Violations.Add(unfinished);
            }
        }

        if (partitions.Count <= 1)
        {
            foreach (var records in partitions.Values)
            {
                foreach (var (where, value) in records.Values)
                {
                    ApplyRecord(table, where, "changes", value);
                }
            }

            return table;
        }

        Merge(table, partitions.Values);
        return table;
    }

    /// <summary>A partition's records as read, and its chunk sequence so far.</summary>
    private sealed class PartitionRecords
    {
        public List<(string Where, byte[] Value)> Values { get; } = [];
        public RecordSequence Sequence { get; } = new();
    }

    /// <summary>The record's place in its partition: <see cref="RecordSequence"/>'s rules.</summary>
    private static void Check(ReplayedTable table, PartitionRecords records, Headers headers, string where)
    {
        var place = records.Sequence.Add(headers, where, table.Violations);
        if (place.Duplicate)
        {
            table.DuplicateRecords++;
        }

        table.MaxCommitLsn = WalBridge.Offsets.Lsn.Max(table.MaxCommitLsn, place.CommitLsn);
    }

    /// <summary>Applies the rows of several partitions in source order.</summary>
    private static void Merge(ReplayedTable table, IEnumerable<PartitionRecords> partitions)
    {
        var cursors = new List<RowCursor>();
        foreach (var records in partitions)
        {
            var cursor = new RowCursor(table, records.Values);
            if (cursor.MoveNext())
            {
                cursors.Add(cursor);
            }
        }

        (ulong CommitLsn, ulong Lsn) lastTruncate = default;
        (ulong CommitLsn, ulong Lsn) lastUpdate = default;
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

            var view = next.View!;
            var identity = (view.CommitLsn(next.Row), view.Lsn(next.Row));
            var op = view.Op.GetString(next.Row);
            // A truncate is in every partition: once. An update that moved its key to another partition left a delete
            // of the old key in the old one: the update (applied first, see RowCursor.CompareTo) moved the row already.
            var repeat = (op == "t" && identity == lastTruncate) || (op == "d" && identity == lastUpdate);
            if (!repeat)
            {
                if (op == "t")
                {
                    lastTruncate = identity;
                }
                else if (op == "u")
                {
                    lastUpdate = identity;
                }

                if (next.Describe)
                {
                    Describe(table, view.Batch.Schema);
                    next.Describe = false;
                }

                ApplyRow(table, view, next.Row, $"{next.Where}, row {next.Row}");
            }

            if (!next.MoveNext())
            {
                cursors.Remove(next);
            }
        }
    }

    /// <summary>Walks one partition's rows, record by record.</summary>
    private sealed class RowCursor(ReplayedTable table, List<(string Where, byte[] Value)> records)
    {
        private int _record = -1;
        private IReadOnlyList<RecordBatch> _batches = [];
        private int _batch;

        public BatchView? View { get; private set; }
        public int Row { get; private set; }
        public string Where { get; private set; } = "";
        /// <summary>Whether the table must take the schema of the current record before its next row is applied.</summary>
        public bool Describe { get; set; }

        public bool MoveNext()
        {
            Row++;
            while (View is null || Row >= View.Batch.Length)
            {
                Row = 0;
                if (View is not null && ++_batch < _batches.Count)
                {
                    View = new BatchView(_batches[_batch]);
                    continue;
                }

                if (++_record >= records.Count)
                {
                    return false;
                }

                Where = records[_record].Where;
                try
                {
                    _batches = ArrowPayload.Read(records[_record].Value).Batches;
                }
                catch (ArrowPayloadException e)
                {
                    table.Violations.Add($"record {Where} is {e.Message}");
                    _batches = [];
                }

                _batch = 0;
                View = _batches.Count > 0 ? new BatchView(_batches[0]) : null;
                Describe = true;
                if (View is null)
                {
                    Row = 0;
                    continue;
                }
            }

            return true;
        }

        /// <summary>Source order: commit LSN, then LSN; at the same change the update before the delete of a key it moved.</summary>
        public int CompareTo(RowCursor other)
        {
            var a = View!;
            var b = other.View!;
            var byCommit = a.CommitLsn(Row).CompareTo(b.CommitLsn(other.Row));
            if (byCommit != 0)
            {
                return byCommit;
            }

            var byLsn = a.Lsn(Row).CompareTo(b.Lsn(other.Row));
            if (byLsn != 0)
            {
                return byLsn;
            }

            return Rank(a.Op.GetString(Row)).CompareTo(Rank(b.Op.GetString(other.Row)));
        }

        private static int Rank(string? op) => op == "d" ? 1 : 0;
    }

    /// <summary>
    /// Applies one record value (<paramref name="where"/> names it: topic[partition]@offset, in every message about it).
    /// A value that is not a valid Arrow IPC stream, or not WalBridge's payload layout, is recorded as a violation naming
    /// the record; replay goes on.
    /// </summary>
    internal static void ApplyRecord(ReplayedTable table, string where, string kind, byte[] value)
    {
        ArrowPayload payload;
        try
        {
            payload = ArrowPayload.Read(value);
        }
        catch (ArrowPayloadException e)
        {
            table.Violations.Add($"record {where} is {e.Message}");
            return;
        }
        try
        {
            Describe(table, payload.Schema);
            _ = kind;
            foreach (var batch in payload.Batches)
            {
                var view = new BatchView(batch);
                for (var row = 0; row < batch.Length; row++)
                {
                    ApplyRow(table, view, row, $"{where}, row {row}");
                }
            }
        }
        catch (Exception e) when (e is ArgumentException or InvalidCastException or InvalidOperationException or KeyNotFoundException or NotSupportedException or IndexOutOfRangeException or FormatException or OverflowException)
        {
            table.Violations.Add($"record {where} does not have the WalBridge payload layout ({e.GetType().Name}: {e.Message})");
        }
    }

    private static void Describe(ReplayedTable table, Schema schema)
    {
        var key = Meta(schema.Metadata, "pg.primary_key") ?? "";
        table.SetSchema(Meta(schema.Metadata, "pg.schema") ?? table.Schema, Meta(schema.Metadata, "pg.table") ?? table.Table,
            schema.FieldsList.Where(IsTableColumn).Select(f => f.Name).ToArray(), key.Split(',', StringSplitOptions.RemoveEmptyEntries));
    }

    /// <summary>Table columns carry <c>pg.typoid</c>; the connector's own columns start with '_' and do not.</summary>
    internal static bool IsTableColumn(Field field) => Meta(field.Metadata, "pg.typoid") is not null;

    /// <summary>Index of the first column named <paramref name="name"/> (ordinal), or -1.</summary>
    internal static int IndexOf(Schema schema, string name)
    {
        for (var i = 0; i < schema.FieldsList.Count; i++)
        {
            if (schema.FieldsList[i].Name == name)
            {
                return i;
            }
        }
        return -1;
    }

    /// <summary>The columns of one record batch that replay reads.</summary>
    private sealed class BatchView
    {
        public BatchView(RecordBatch batch)
        {
            Batch = batch;
            var opIndex = IndexOf(batch.Schema, "_op");
            Op = opIndex >= 0 && batch.Column(opIndex) is StringArray op ? op : throw new InvalidOperationException("no utf8 column _op");
            LsnColumn = batch.Column(IndexOf(batch.Schema, "_lsn")) as UInt64Array ?? throw new InvalidOperationException("no uint64 column _lsn");
            CommitLsnColumn = batch.Column(IndexOf(batch.Schema, "_commit_lsn")) as UInt64Array ?? throw new InvalidOperationException("no uint64 column _commit_lsn");
            XidColumn = batch.Column(IndexOf(batch.Schema, "_xid")) as UInt32Array ?? throw new InvalidOperationException("no uint32 column _xid");
            var beforeIndex = IndexOf(batch.Schema, "_before");
            Before = beforeIndex >= 0 ? batch.Column(beforeIndex) as StructArray : null;
            BeforeFields = Before is not null ? ((StructType)batch.Schema.GetFieldByIndex(beforeIndex).DataType).Fields : [];
            Columns = Enumerable.Range(0, batch.ColumnCount).Where(i => IsTableColumn(batch.Schema.GetFieldByIndex(i))).ToArray();
        }

        public RecordBatch Batch { get; }
        public StringArray Op { get; }
        public UInt64Array LsnColumn { get; }
        public UInt64Array CommitLsnColumn { get; }
        public StructArray? Before { get; }
        public IReadOnlyList<Field> BeforeFields { get; }
        public int[] Columns { get; }

        public ulong Lsn(int row) => LsnColumn.GetValue(row) ?? 0;
        public ulong CommitLsn(int row) => CommitLsnColumn.GetValue(row) ?? 0;
        public UInt32Array XidColumn { get; }
        public uint Xid(int row) => XidColumn.GetValue(row) ?? 0;
    }

    private static void ApplyRow(ReplayedTable table, BatchView view, int row, string at)
    {
        var batch = view.Batch;
        table.Changes++;
        table.Transactions.Add(new WalBridge.Offsets.Lsn(view.CommitLsn(row)).ToString());
        var op = view.Op.GetString(row);
        if (op == "t")
        {
            table.Truncate();
            return;
        }

        var values = new Dictionary<string, string?>(StringComparer.Ordinal);
        // RenderCell also reads `_special` (values Arrow cannot hold natively, kept as PostgreSQL text).
        foreach (var column in view.Columns)
        {
            values[batch.Schema.GetFieldByIndex(column).Name] = PgTextRenderer.RenderCell(batch, column, row);
        }

        switch (op)
        {
            case "c":
                table.Insert(values);
                break;
            case "r":
                // The initial snapshot's rows (no transaction: _xid 0) hold the whole table at its LSN; an incremental
                // snapshot's (in a high watermark's transaction) refresh rows.
                table.Read(values, view.Xid(row) == 0 ? view.CommitLsn(row) : 0);
                break;
            case "u":
                {
                    // With an old row (key change, or REPLICA IDENTITY FULL) the row it replaces is the
                    // one under the old key.
                    Dictionary<string, string?>? old = null;
                    if (view.Before is not null && !view.Before.IsNull(row))
                    {
                        old = new Dictionary<string, string?>(StringComparer.Ordinal);
                        for (var member = 0; member < view.BeforeFields.Count; member++)
                        {
                            old[view.BeforeFields[member].Name] = PgTextRenderer.RenderBeforeCell(batch, member, row);
                        }
                    }
                    // Columns PostgreSQL did not send (unchanged TOAST) keep their old value.
                    table.Update(old, values, UnchangedColumns(batch, row), at);
                    break;
                }
            case "d":
                table.Delete(values, at);
                break;
            default:
                table.Violations.Add($"unknown _op '{op}' at {at}");
                break;
        }
    }

    private static List<string> UnchangedColumns(RecordBatch batch, int row)
    {
        var index = -1;
        for (var i = 0; i < batch.ColumnCount; i++)
        {
            if (batch.Schema.GetFieldByIndex(i).Name == "_unchanged")
            {
                index = i;
            }
        }
        if (index < 0 || batch.Column(index) is not ListArray { Values: StringArray names } list || list.IsNull(row))
        {
            return [];
        }

        var result = new List<string>();
        for (var i = list.ValueOffsets[row]; i < list.ValueOffsets[row + 1]; i++)
        {
            result.Add(names.GetString(i));
        }

        return result;
    }

    /// <summary>A key for display: its values separated by commas, long ones shortened.</summary>
    internal static string ShowKey(string key) =>
        string.Join(", ", key.Split(KeySeparator).Select(v => v.Length > 40 ? $"{v[..40]}… ({v.Length} chars)" : v));

    internal static string KeyOf(IReadOnlyList<string> keyColumns, IReadOnlyDictionary<string, string?> values)
    {
        var builder = new StringBuilder();
        foreach (var name in keyColumns)
        {
            if (builder.Length > 0)
            {
                builder.Append(KeySeparator);
            }

            builder.Append(values.GetValueOrDefault(name) ?? "\u2400");
        }
        return builder.ToString();
    }

    internal static string? Meta(IReadOnlyDictionary<string, string>? metadata, string key) =>
        metadata is not null && metadata.TryGetValue(key, out var value) ? value : null;
}
