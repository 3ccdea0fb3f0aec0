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
/// directly with the source.
/// </summary>
public sealed class ReplayedTable
{
    public required string Topic { get; init; }
    public string Schema { get; set; } = "";
    public string Table { get; set; } = "";
    /// <summary>Table column names, from the newest payload's schema.</summary>
    public IReadOnlyList<string> Columns { get; set; } = [];
    /// <summary>Key column names (<c>pg.primary_key</c>).</summary>
    public IReadOnlyList<string> KeyColumns { get; set; } = [];
    /// <summary>Rows by their key (key values joined with U+001F).</summary>
    public Dictionary<string, Dictionary<string, string?>> Rows { get; } = new(StringComparer.Ordinal);
    public int Records { get; set; }
    public long Changes { get; set; }
    public HashSet<string> Transactions { get; } = new(StringComparer.Ordinal);
    /// <summary>The highest commit LSN among the topic's records.</summary>
    public WalBridge.Offsets.Lsn MaxCommitLsn { get; set; }
    /// <summary>Contract violations found while reading (duplicates, order, chunk sequence).</summary>
    public List<string> Violations { get; } = [];
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
                table.Violations.Add($"duplicate record: xid {xid}, commit LSN {lsnText}, chunk {chunk} (offset {message.Offset.Value})");
            if (lastLsnByPartition.TryGetValue(partition, out var previous) && lsn < previous)
                table.Violations.Add($"commit LSN went backwards in partition {partition}: {lsnText} after {new WalBridge.Offsets.Lsn(previous)} (offset {message.Offset.Value})");
            lastLsnByPartition[partition] = lsn;
            table.MaxCommitLsn = WalBridge.Offsets.Lsn.Max(table.MaxCommitLsn, new WalBridge.Offsets.Lsn(lsn));
            if (expectedChunk.TryGetValue(partition, out var open) && open.Lsn == lsnText && open.Next != chunk)
                table.Violations.Add($"chunk sequence broken for xid {xid}: expected chunk {open.Next}, found {chunk}");
            expectedChunk[partition] = last ? default : (lsnText, chunk + 1);
            table.Transactions.Add(lsnText);

            if (message.Message.Value is null)
            {
                table.Violations.Add($"record without value at offset {message.Offset.Value}");
                return;
            }
            ApplyRecord(table, $"{message.Topic}[{partition}]@{message.Offset.Value}", kind, message.Message.Value);
        }, cancellationToken);
        return table;
    }

    /// <summary>
    /// Applies one record value (<paramref name="where"/> names it: topic[partition]@offset). A value that is not a valid
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
                table.Rows.Clear();
                table.Changes++;
                return;
            }
            foreach (var batch in payload.Batches)
                Apply(table, batch);
        }
        catch (Exception e) when (e is ArgumentException or InvalidCastException or InvalidOperationException or KeyNotFoundException or NotSupportedException or IndexOutOfRangeException or FormatException or OverflowException)
        {
            table.Violations.Add($"record {where} does not have the WalBridge payload layout ({e.GetType().Name}: {e.Message})");
        }
    }

    private static void Describe(ReplayedTable table, Schema schema)
    {
        table.Schema = Meta(schema.Metadata, "pg.schema") ?? table.Schema;
        table.Table = Meta(schema.Metadata, "pg.table") ?? table.Table;
        var key = Meta(schema.Metadata, "pg.primary_key") ?? "";
        table.KeyColumns = key.Split(',', StringSplitOptions.RemoveEmptyEntries);
        table.Columns = schema.FieldsList.Where(IsTableColumn).Select(f => f.Name).ToArray();
    }

    /// <summary>Table columns carry <c>pg.typoid</c>; the connector's own columns start with '_' and do not.</summary>
    internal static bool IsTableColumn(Field field) => Meta(field.Metadata, "pg.typoid") is not null;

    /// <summary>Index of the first column named <paramref name="name"/> (ordinal), or -1.</summary>
    internal static int IndexOf(Schema schema, string name)
    {
        for (var i = 0; i < schema.FieldsList.Count; i++)
        {
            if (schema.FieldsList[i].Name == name)
                return i;
        }
        return -1;
    }

    private static void Apply(ReplayedTable table, RecordBatch batch)
    {
        var opIndex = IndexOf(batch.Schema, "_op");
        if (opIndex < 0 || batch.Column(opIndex) is not StringArray op)
            throw new InvalidOperationException("no utf8 column _op");
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
                values[batch.Schema.GetFieldByIndex(column).Name] = PgTextRenderer.RenderCell(batch, column, row);
            var key = KeyOf(table.KeyColumns.Count > 0 ? table.KeyColumns : table.Columns, values);
            switch (op.GetString(row))
            {
                case "c":
                case "r":
                    table.Rows[key] = values;
                    break;
                case "u":
                {
                    // With an old row (key change, or REPLICA IDENTITY FULL) the row it replaces is the
                    // one under the old key.
                    var oldKey = key;
                    if (before is not null && !before.IsNull(row))
                    {
                        var old = new Dictionary<string, string?>(StringComparer.Ordinal);
                        for (var member = 0; member < beforeFields.Count; member++)
                            old[beforeFields[member].Name] = PgTextRenderer.RenderBeforeCell(batch, member, row);
                        oldKey = KeyOf(table.KeyColumns.Count > 0 ? table.KeyColumns : table.Columns, old);
                    }
                    if (table.Rows.Remove(oldKey, out var existing))
                    {
                        // Columns PostgreSQL did not send (unchanged TOAST) keep their old value.
                        foreach (var name in UnchangedColumns(batch, row))
                            values[name] = existing.GetValueOrDefault(name);
                    }
                    table.Rows[key] = values;
                    break;
                }
                case "d":
                    table.Rows.Remove(key);
                    break;
                default:
                    table.Violations.Add($"unknown _op '{op.GetString(row)}'");
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
                index = i;
        }
        if (index < 0 || batch.Column(index) is not ListArray { Values: StringArray names } list || list.IsNull(row))
            return [];
        var result = new List<string>();
        for (var i = list.ValueOffsets[row]; i < list.ValueOffsets[row + 1]; i++)
            result.Add(names.GetString(i));
        return result;
    }

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

    internal static string? Meta(IReadOnlyDictionary<string, string>? metadata, string key) =>
        metadata is not null && metadata.TryGetValue(key, out var value) ? value : null;
}
