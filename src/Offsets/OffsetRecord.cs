using System.Text.Json;
using System.Text.Json.Serialization;

namespace WalBridge.Offsets;

/// <summary>
/// Identifies whose progress an offset record holds: the compacted offsets topic keeps one
/// record per key. Serialized as the Kafka record key.
/// </summary>
public sealed record OffsetKey(
    [property: JsonPropertyName("connector")] string Connector,
    [property: JsonPropertyName("slot")] string Slot,
    [property: JsonPropertyName("database")] string Database)
{
    public byte[] ToBytes() => JsonSerializer.SerializeToUtf8Bytes(this, OffsetJsonContext.Default.OffsetKey);

    public static OffsetKey FromBytes(ReadOnlySpan<byte> bytes) =>
        JsonSerializer.Deserialize(bytes, OffsetJsonContext.Default.OffsetKey)
        ?? throw new FormatException("The offsets record key is empty.");
}

/// <summary>
/// The identity of the replication source. A changed identity (another cluster, a new timeline
/// without history, a recreated slot) means the recorded position no longer describes the source.
/// </summary>
public sealed record SourceIdentity(
    [property: JsonPropertyName("system_identifier")] string SystemIdentifier,
    [property: JsonPropertyName("timeline")] uint Timeline,
    [property: JsonPropertyName("slot")] string Slot,
    [property: JsonPropertyName("publication")] string Publication);

/// <summary>
/// The replication position committed to Kafka: written inside every Kafka transaction (so the
/// position and the payloads commit atomically) and mirrored locally after the commit.
/// </summary>
/// <param name="CommitLsn">Commit LSN of the last source transaction included in the Kafka transaction.</param>
/// <param name="EndLsn">End LSN of that transaction's commit record.</param>
/// <param name="Xid">Its transaction id.</param>
/// <param name="CommitTimestamp">Its commit time at the source.</param>
/// <param name="SourceTransactions">How many source transactions the Kafka transaction held.</param>
/// <param name="Source">The identity of the source the position belongs to.</param>
/// <param name="WrittenAt">When the record was produced.</param>
public sealed record OffsetRecord(
    [property: JsonPropertyName("commit_lsn"), JsonConverter(typeof(LsnJsonConverter))] Lsn CommitLsn,
    [property: JsonPropertyName("end_lsn"), JsonConverter(typeof(LsnJsonConverter))] Lsn EndLsn,
    [property: JsonPropertyName("xid")] uint Xid,
    [property: JsonPropertyName("commit_ts")] DateTimeOffset CommitTimestamp,
    [property: JsonPropertyName("source_transactions")] int SourceTransactions,
    [property: JsonPropertyName("source")] SourceIdentity Source,
    [property: JsonPropertyName("written_at")] DateTimeOffset WrittenAt)
{
    /// <summary>The snapshot's progress while one runs (and in the record that completes it); null when none is pending.</summary>
    [JsonPropertyName("snapshot")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public SnapshotState? Snapshot { get; init; }

    /// <summary>
    /// Incremental snapshots (docs/format.md, incremental snapshots): the tables queued or being read while streaming
    /// runs, and the signals already handled; null when none ever ran.
    /// </summary>
    [JsonPropertyName("incremental")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IncrementalSnapshotState? Incremental { get; init; }

    public byte[] ToBytes() => JsonSerializer.SerializeToUtf8Bytes(this, OffsetJsonContext.Default.OffsetRecord);

    public static OffsetRecord FromBytes(ReadOnlySpan<byte> bytes) =>
        JsonSerializer.Deserialize(bytes, OffsetJsonContext.Default.OffsetRecord)
        ?? throw new FormatException("The offsets record value is empty.");
}

/// <summary>
/// The progress of a snapshot (docs/format.md, snapshots), carried in every offsets record written while it runs, so
/// the progress commits atomically with the snapshot rows it describes. Immutable.
/// </summary>
/// <param name="Lsn">The slot's consistent point: the rows read are the tables' state there, and streaming starts after it.</param>
/// <param name="StartedAt">When the snapshot began.</param>
/// <param name="Complete">Whether every table's chunks and the end markers are committed.</param>
/// <param name="Exported">Whether the rows were read in the slot's exported snapshot (false once a resumption read the rest from the tables' current state).</param>
/// <param name="Tables">Per table, in the order they are read.</param>
public sealed record SnapshotState(
    [property: JsonPropertyName("lsn"), JsonConverter(typeof(LsnJsonConverter))] Lsn Lsn,
    [property: JsonPropertyName("started_at")] DateTimeOffset StartedAt,
    [property: JsonPropertyName("complete")] bool Complete,
    [property: JsonPropertyName("exported")] bool Exported,
    [property: JsonPropertyName("tables")] IReadOnlyList<SnapshotTableState> Tables);

/// <summary>One table's snapshot progress: which of its chunks are committed.</summary>
/// <param name="Table"><c>schema.table</c> (unquoted).</param>
/// <param name="Chunks">How many chunks the table was cut into when the snapshot began.</param>
/// <param name="PagesPerChunk">Heap pages per chunk (chunk i reads pages [i·n, (i+1)·n), the last one every page after); 0 for a table read as one chunk.</param>
/// <param name="Done">Committed chunks as inclusive ranges <c>[first, last]</c>, sorted, not overlapping.</param>
/// <param name="Rows">Rows committed so far.</param>
/// <param name="EstimatedRows">The row estimate from the statistics when the snapshot began.</param>
public sealed record SnapshotTableState(
    [property: JsonPropertyName("table")] string Table,
    [property: JsonPropertyName("chunks")] int Chunks,
    [property: JsonPropertyName("pages_per_chunk")] long PagesPerChunk,
    [property: JsonPropertyName("done")] IReadOnlyList<int[]> Done,
    [property: JsonPropertyName("rows")] long Rows,
    [property: JsonPropertyName("estimated_rows")] long EstimatedRows)
{
    /// <summary>
    /// Per topic partition: how many records of snapshot rows are committed there. A snapshot is one source transaction
    /// per partition (at the snapshot LSN) whose records are numbered 0, 1, 2, … in <c>walbridge.chunk</c>, so a record's
    /// identity (first commit LSN, chunk) keeps growing across chunks and restarts; a resumed snapshot continues the count.
    /// </summary>
    [JsonPropertyName("pieces")]
    public IReadOnlyList<int> Pieces { get; init; } = [];

    /// <summary>Records of snapshot rows committed in <paramref name="partition"/>: the next one's <c>walbridge.chunk</c>.</summary>
    public int PiecesIn(int partition) => partition < Pieces.Count ? Pieces[partition] : 0;

    /// <summary>Whether chunk <paramref name="chunk"/> is committed.</summary>
    public bool IsDone(int chunk)
    {
        foreach (var range in Done)
        {
            if (range.Length == 2 && chunk >= range[0] && chunk <= range[1])
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Committed chunks.</summary>
    public int DoneCount => Done.Sum(r => r.Length == 2 ? r[1] - r[0] + 1 : 0);

    /// <summary>
    /// This state with <paramref name="chunk"/> committed (ranges merged), <paramref name="rows"/> more rows and, per
    /// partition, <paramref name="records"/> more records.
    /// </summary>
    public SnapshotTableState WithDone(int chunk, long rows, IReadOnlyDictionary<int, int>? records = null)
    {
        var pieces = Pieces.ToList();
        foreach (var (partition, count) in records ?? new Dictionary<int, int>())
        {
            while (pieces.Count <= partition)
            {
                pieces.Add(0);
            }

            pieces[partition] += count;
        }

        var set = new SortedSet<int>();
        foreach (var range in Done)
        {
            for (var i = range[0]; i <= range[1]; i++)
            {
                set.Add(i);
            }
        }

        set.Add(chunk);
        var merged = new List<int[]>();
        foreach (var i in set)
        {
            if (merged.Count > 0 && merged[^1][1] == i - 1)
            {
                merged[^1][1] = i;
            }
            else
            {
                merged.Add([i, i]);
            }
        }

        return this with { Done = merged, Rows = Rows + rows, Pieces = pieces };
    }
}

/// <summary>
/// The progress of incremental snapshots (read in key order inside watermark windows while streaming runs), carried in
/// every offsets record, so a table's progress commits atomically with the rows it describes. Immutable.
/// </summary>
/// <param name="Tables">Tables queued or being read, in the order they are read (a table leaves once its end marker is committed).</param>
/// <param name="Signals">Ids of the signals already handled (the latest <see cref="MaxSignals"/>), so none is carried out twice.</param>
public sealed record IncrementalSnapshotState(
    [property: JsonPropertyName("tables")] IReadOnlyList<IncrementalTableState> Tables,
    [property: JsonPropertyName("signals")] IReadOnlyList<string> Signals)
{
    /// <summary>How many handled signal ids are kept.</summary>
    public const int MaxSignals = 1000;

    /// <summary>No table pending, no signal handled.</summary>
    public static IncrementalSnapshotState Empty { get; } = new([], []);

    /// <summary>The table being read (the first one), or null when none is queued.</summary>
    [JsonIgnore]
    public IncrementalTableState? Current => Tables.Count > 0 ? Tables[0] : null;

    /// <summary>This state with <paramref name="signal"/> handled (the oldest ids beyond <see cref="MaxSignals"/> dropped).</summary>
    public IncrementalSnapshotState WithSignal(string signal)
    {
        var signals = Signals.Where(s => s != signal).Append(signal).ToList();
        return this with { Signals = signals.Count > MaxSignals ? signals[^MaxSignals..] : signals };
    }
}

/// <summary>One table's incremental snapshot.</summary>
/// <param name="Table"><c>schema.table</c> (unquoted).</param>
/// <param name="Signal">The id of the signal that asked for it.</param>
/// <param name="Lsn">The commit LSN of the window that wrote its start marker (the markers' <c>walbridge.snapshot.lsn</c>); zero before.</param>
/// <param name="LastKey">PostgreSQL's text of the key columns of the last row read (the next window reads after it); null before the first.</param>
/// <param name="Rows">Rows delivered so far.</param>
/// <param name="Retry">
/// Keys to read again (each PostgreSQL's text of the key columns): rows changed by an update that left a TOAST value
/// unsent while the table was being read, whose complete row a consumer may not hold yet.
/// </param>
public sealed record IncrementalTableState(
    [property: JsonPropertyName("table")] string Table,
    [property: JsonPropertyName("signal")] string Signal,
    [property: JsonPropertyName("lsn"), JsonConverter(typeof(LsnJsonConverter))] Lsn Lsn,
    [property: JsonPropertyName("last_key")] IReadOnlyList<string?>? LastKey,
    [property: JsonPropertyName("rows")] long Rows,
    [property: JsonPropertyName("retry")] IReadOnlyList<IReadOnlyList<string?>> Retry)
{
    /// <summary>Whether the key range (or every heap page range) is read to its end (only keys to read again may be left).</summary>
    [JsonPropertyName("exhausted")]
    public bool Exhausted { get; init; }

    /// <summary>
    /// An interrupted initial snapshot resumed while streaming: the table is read by its heap page ranges (the initial
    /// snapshot's plan) instead of in key order; these are the chunks not read yet. Null in key order.
    /// </summary>
    [JsonPropertyName("remaining_chunks")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<int>? RemainingChunks { get; init; }

    /// <summary>The initial snapshot's plan: chunks the table was cut into (with <see cref="RemainingChunks"/>).</summary>
    [JsonPropertyName("chunks")]
    public int Chunks { get; init; }

    /// <summary>The initial snapshot's plan: heap pages per chunk (with <see cref="RemainingChunks"/>).</summary>
    [JsonPropertyName("pages_per_chunk")]
    public long PagesPerChunk { get; init; }

    /// <summary>The table's rows complete the initial snapshot (its end marker is the initial snapshot's, not an incremental one's).</summary>
    [JsonPropertyName("initial")]
    public bool Initial { get; init; }

    /// <summary>Whether the start marker is committed (the window that wrote it set <see cref="Lsn"/>).</summary>
    [JsonIgnore]
    public bool Started => !Lsn.IsZero;
}

/// <summary>Writes an <see cref="Lsn"/> as PostgreSQL's text form so the topic is readable with any tool.</summary>
public sealed class LsnJsonConverter : JsonConverter<Lsn>
{
    public override Lsn Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        Lsn.Parse(reader.GetString() ?? throw new JsonException("An LSN must be a string like 16/B374D848."));

    public override void Write(Utf8JsonWriter writer, Lsn value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStringValue(value.ToString());
    }
}

[JsonSerializable(typeof(OffsetKey))]
[JsonSerializable(typeof(OffsetRecord))]
[JsonSerializable(typeof(SnapshotState))]
[JsonSerializable(typeof(IncrementalSnapshotState))]
internal sealed partial class OffsetJsonContext : JsonSerializerContext;
