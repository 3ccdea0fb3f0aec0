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
            {
                values[name] = existing.GetValueOrDefault(name);
            }
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
            {
                table.Violations.Add($"commit LSN went backwards in partition {partition}: {lsnText} after {new WalBridge.Offsets.Lsn(previous)} (offset {message.Offset.Value})");
            }

            lastLsnByPartition[partition] = lsn;
            table.MaxCommitLsn = WalBridge.Offsets.Lsn.Max(table.MaxCommitLsn, new WalBridge.Offsets.Lsn(lsn));
            if (expectedChunk.TryGetValue(partition, out var open) && open.Lsn is not null)
            {
                if (open.Lsn != lsnText)
                {
                    table.Violations.Add($"the transaction committed at {open.Lsn} has no last chunk: chunk {open.Next} expected, found commit LSN {lsnText} chunk {chunk} (offset {message.Offset.Value})");
                }
                else if (open.Next != chunk)
                {
                    table.Violations.Add($"chunk sequence broken for xid {xid}: expected chunk {open.Next}, found {chunk}");
                }
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
            ApplyRecord(table, $"{message.Topic}[{partition}]@{message.Offset.Value} (commit LSN {lsnText})", kind, message.Message.Value);
        }, cancellationToken);
        foreach (var (partition, open) in expectedChunk)
        {
            if (open.Lsn is not null)
            {
                table.Violations.Add($"the transaction committed at {open.Lsn} has no last chunk in partition {partition}: the topic ends after chunk {open.Next - 1}");
            }
        }
        return table;
    }

    /// <summary>
    /// Applies one record value (<paramref name="where"/> names it: topic[partition]@offset, in every message about it). A value that is not a valid
    /// Arrow IPC stream, or not WalBridge's payload layout, is recorded as a violation naming the record; replay goes on.
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
            if (kind == "truncate")
            {
                table.Truncate();
                table.Changes++;
                return;
            }
            foreach (var batch in payload.Batches)
            {
                Apply(table, batch, where);
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

    private static void Apply(ReplayedTable table, RecordBatch batch, string where)
    {
        var opIndex = IndexOf(batch.Schema, "_op");
        if (opIndex < 0 || batch.Column(opIndex) is not StringArray op)
        {
            throw new InvalidOperationException("no utf8 column _op");
        }

        var beforeIndex = IndexOf(batch.Schema, "_before");
        var before = beforeIndex >= 0 ? batch.Column(beforeIndex) as StructArray : null;
        var beforeFields = before is not null ? ((StructType)batch.Schema.GetFieldByIndex(beforeIndex).DataType).Fields : [];
        var columns = Enumerable.Range(0, batch.ColumnCount).Where(i => IsTableColumn(batch.Schema.GetFieldByIndex(i))).ToArray();
        for (var row = 0; row < batch.Length; row++)
        {
            table.Changes++;
            var values = new Dictionary<string, string?>(StringComparer.Ordinal);
            // RenderCell also reads `_special` (values Arrow cannot hold natively, kept as PostgreSQL text).
            foreach (var column in columns)
            {
                values[batch.Schema.GetFieldByIndex(column).Name] = PgTextRenderer.RenderCell(batch, column, row);
            }

            var at = $"{where}, row {row}";
            switch (op.GetString(row))
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
                            for (var member = 0; member < beforeFields.Count; member++)
                            {
                                old[beforeFields[member].Name] = PgTextRenderer.RenderBeforeCell(batch, member, row);
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
                    table.Violations.Add($"unknown _op '{op.GetString(row)}' at {at}");
                    break;
            }
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

    private static string? Header(Headers headers, string name) =>
        headers.TryGetLastBytes(name, out var bytes) ? Encoding.UTF8.GetString(bytes) : null;

    internal static string? Meta(IReadOnlyDictionary<string, string>? metadata, string key) =>
        metadata is not null && metadata.TryGetValue(key, out var value) ? value : null;
}
