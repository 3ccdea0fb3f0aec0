using System.Globalization;
using System.Text;
using Confluent.Kafka;
using WalBridge.Connector.Kafka;
using WalBridge.Serialization.Arrow;
using WalBridge.Serialization.Ipc;
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
                    row.Remove(name);
            }
        }
        if (Rows.Count > 0 && !IdentityColumns.SequenceEqual(oldIdentity, StringComparer.Ordinal))
        {
            var rows = Rows.Values.SelectMany(r => r).ToList();
            Rows.Clear();
            foreach (var row in rows)
                Add(row);
        }
    }

    /// <summary>An insert (or snapshot read).</summary>
    public void Insert(Dictionary<string, string?> values) => Add(values);

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
                values[name] = existing.GetValueOrDefault(name);
        }
        Add(values);
    }

    /// <summary>A delete: one row with the key of <paramref name="values"/> (the old key or old row) goes.</summary>
    public void Delete(Dictionary<string, string?> values, string where) => Take(KeyOf(IdentityColumns, values), where, "delete");

    public void Truncate() => Rows.Clear();

    private void Add(Dictionary<string, string?> values)
    {
        var key = KeyOf(IdentityColumns, values);
        if (!Rows.TryGetValue(key, out var list))
            Rows[key] = list = [];
        list.Add(values);
    }

    private Dictionary<string, string?>? Take(string key, string where, string what)
    {
        if (Rows.TryGetValue(key, out var list) && list.Count > 0)
        {
            var row = list[^1];
            list.RemoveAt(list.Count - 1);
            if (list.Count == 0)
                Rows.Remove(key);
            return row;
        }
        UnmatchedCount++;
        if (Unmatched.Count < MaxUnmatchedListed)
            Unmatched.Add($"{what} of a row that is not in the rebuilt table: key ({TopicReplay.ShowKey(key)}) at {where}");
        return null;
    }

    internal static string KeyOf(IReadOnlyList<string> keyColumns, IReadOnlyDictionary<string, string?>? values) => TopicReplay.KeyOf(keyColumns, values ?? new Dictionary<string, string?>());
}

/// <summary>Reads table topics with <c>read_committed</c> and replays them.</summary>
public static class TopicReplay
{
    internal const char KeySeparator = '\u001f';

    /// <summary>Reads <paramref name="topic"/> to its end and applies every change. Blocking.</summary>
    public static ReplayedTable Replay(IReadOnlyDictionary<string, string> kafka, string topic, CancellationToken cancellationToken)
    {
        var table = new ReplayedTable { Topic = topic };
        var seen = new HashSet<(string Xid, string Lsn, int Chunk)>();
        var lastLsnByPartition = new Dictionary<int, ulong>();
        var expectedChunk = new Dictionary<int, (string Lsn, int Next)>();
        OffsetsTopicReader.ReadToEnd(kafka, topic, message =>
        {
            table.Records++;
            var headers = message.Message.Headers;
            var xid = Header(headers, KafkaHeaders.Xid) ?? "?";
            var lsnText = Header(headers, KafkaHeaders.CommitLsn) ?? "0/0";
            var chunk = int.Parse(Header(headers, KafkaHeaders.ChunkIndex) ?? "0", CultureInfo.InvariantCulture);
            var last = Header(headers, KafkaHeaders.LastChunk) == "true";
            var kind = Header(headers, KafkaHeaders.Kind) ?? "changes";
            var lsn = WalBridge.Offsets.Lsn.Parse(lsnText).Value;
            var partition = message.Partition.Value;

            if (!seen.Add((xid, lsnText, chunk)))
            {
                table.DuplicateRecords++;
                table.Violations.Add($"duplicate record: xid {xid}, commit LSN {lsnText}, chunk {chunk} (offset {message.Offset.Value})");
            }
            if (lastLsnByPartition.TryGetValue(partition, out var previous) && lsn < previous)
                table.Violations.Add($"commit LSN went backwards in partition {partition}: {lsnText} after {new WalBridge.Offsets.Lsn(previous)} (offset {message.Offset.Value})");
            lastLsnByPartition[partition] = lsn;
            table.MaxCommitLsn = WalBridge.Offsets.Lsn.Max(table.MaxCommitLsn, new WalBridge.Offsets.Lsn(lsn));
            if (expectedChunk.TryGetValue(partition, out var open) && open.Lsn is not null)
            {
                if (open.Lsn != lsnText)
                    table.Violations.Add($"the transaction committed at {open.Lsn} has no last chunk: chunk {open.Next} expected, found commit LSN {lsnText} chunk {chunk} (offset {message.Offset.Value})");
                else if (open.Next != chunk)
                    table.Violations.Add($"chunk sequence broken for xid {xid}: expected chunk {open.Next}, found {chunk}");
            }
            else if (chunk != 0)
            {
                table.Violations.Add($"the transaction committed at {lsnText} (xid {xid}) starts at chunk {chunk}, not 0 (offset {message.Offset.Value})");
            }
            expectedChunk[partition] = last ? default : (lsnText, chunk + 1);
            table.Transactions.Add(lsnText);

            if (message.Message.Value is null)
            {
                table.Violations.Add($"record without value at offset {message.Offset.Value}");
                return;
            }
            var stream = ArrowStreamReader.Read(message.Message.Value);
            Describe(table, stream.Schema);
            if (kind == "truncate")
            {
                table.Truncate();
                table.Changes++;
                return;
            }
            foreach (var batch in stream.Batches)
                Apply(table, batch, $"commit LSN {lsnText}, offset {message.Offset.Value}");
        }, cancellationToken);
        foreach (var (partition, open) in expectedChunk)
        {
            if (open.Lsn is not null)
                table.Violations.Add($"the transaction committed at {open.Lsn} has no last chunk in partition {partition}: the topic ends after chunk {open.Next - 1}");
        }
        return table;
    }

    private static void Describe(ReplayedTable table, ArrowSchema schema)
    {
        var key = Meta(schema.Metadata, "pg.primary_key") ?? "";
        table.SetSchema(Meta(schema.Metadata, "pg.schema") ?? table.Schema, Meta(schema.Metadata, "pg.table") ?? table.Table,
            schema.Fields.Where(IsTableColumn).Select(f => f.Name).ToArray(), key.Split(',', StringSplitOptions.RemoveEmptyEntries));
    }

    /// <summary>Table columns carry <c>pg.typoid</c>; the connector's own columns start with '_' and do not.</summary>
    internal static bool IsTableColumn(ArrowField field) => Meta(field.Metadata, "pg.typoid") is not null;

    private static void Apply(ReplayedTable table, RecordBatch batch, string where)
    {
        var op = batch.Column("_op");
        var beforeIndex = batch.Schema.IndexOf("_before");
        var before = beforeIndex >= 0 ? batch.Columns[beforeIndex] as StructArray : null;
        var columns = Enumerable.Range(0, batch.Columns.Count).Where(i => IsTableColumn(batch.Columns[i].Field)).ToArray();
        for (var row = 0; row < batch.Length; row++)
        {
            table.Changes++;
            var values = new Dictionary<string, string?>(StringComparer.Ordinal);
            // RenderCell also reads `_special` (values Arrow cannot hold natively, kept as PostgreSQL text).
            foreach (var column in columns)
                values[batch.Columns[column].Field.Name] = PgTextRenderer.RenderCell(batch, column, row);
            var at = $"{where}, row {row}";
            switch ((string?)op.GetValue(row))
            {
                case "c":
                case "r":
                    table.Insert(values);
                    break;
                case "u":
                {
                    // With an old row (key change, or REPLICA IDENTITY FULL) the row it replaces is the
                    // one under the old key.
                    Dictionary<string, string?>? old = null;
                    if (before is not null && !before.IsNull(row))
                    {
                        old = new Dictionary<string, string?>(StringComparer.Ordinal);
                        for (var member = 0; member < before.Children.Count; member++)
                            old[before.Children[member].Field.Name] = PgTextRenderer.RenderBeforeCell(batch, member, row);
                    }
                    // Columns PostgreSQL did not send (unchanged TOAST) keep their old value.
                    table.Update(old, values, UnchangedColumns(batch, row), at);
                    break;
                }
                case "d":
                    table.Delete(values, at);
                    break;
                default:
                    table.Violations.Add($"unknown _op '{op.GetValue(row)}'");
                    break;
            }
        }
    }

    private static IEnumerable<string> UnchangedColumns(RecordBatch batch, int row)
    {
        var index = -1;
        for (var i = 0; i < batch.Columns.Count; i++)
        {
            if (batch.Columns[i].Field.Name == "_unchanged")
                index = i;
        }
        if (index < 0 || batch.Columns[index].IsNull(row))
            return [];
        return batch.Columns[index].GetValue(row) switch
        {
            IEnumerable<object?> list => list.OfType<string>(),
            _ => [],
        };
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
                builder.Append(KeySeparator);
            builder.Append(values.GetValueOrDefault(name) ?? "\u2400");
        }
        return builder.ToString();
    }

    private static string? Header(Headers headers, string name) =>
        headers.TryGetLastBytes(name, out var bytes) ? Encoding.UTF8.GetString(bytes) : null;

    internal static string? Meta(IReadOnlyList<KeyValuePair<string, string>> metadata, string key)
    {
        foreach (var (k, v) in metadata)
        {
            if (k == key)
                return v;
        }
        return null;
    }
}
