using System.Globalization;
using System.Text;
using Confluent.Kafka;

namespace WalBridge.Client;

/// <summary>
/// The record-level metadata of a WalBridge table record, from its Kafka headers (docs/format.md, <em>Kafka headers</em>).
/// Immutable; safe to share between threads.
/// </summary>
public sealed class WalBridgeRecordHeaders
{
    private WalBridgeRecordHeaders(int format, string table, Lsn firstCommitLsn, Lsn commitLsn, int transactions, int rows,
        int chunk, bool chunkLast, string schemaFingerprint, SnapshotMarker marker = SnapshotMarker.None, int snapshotChunk = -1, long snapshotRows = 0)
    {
        Marker = marker;
        SnapshotChunk = snapshotChunk;
        SnapshotRows = snapshotRows;
        Format = format;
        Table = table;
        FirstCommitLsn = firstCommitLsn;
        CommitLsn = commitLsn;
        Transactions = transactions;
        Rows = rows;
        Chunk = chunk;
        ChunkLast = chunkLast;
        SchemaFingerprint = schemaFingerprint;
    }

    /// <summary><c>walbridge.format</c>: always <see cref="WalBridgeFormat.SupportedVersion"/> (others are refused).</summary>
    public int Format { get; }

    /// <summary><c>pg.table</c>: <c>schema.table</c>.</summary>
    public string Table { get; }

    /// <summary><c>walbridge.first_commit_lsn</c>: the commit LSN of the record's first source transaction.</summary>
    public Lsn FirstCommitLsn { get; }

    /// <summary><c>pg.commit_lsn</c>: the commit LSN of the record's last source transaction.</summary>
    public Lsn CommitLsn { get; }

    /// <summary><c>walbridge.transactions</c>: how many source transactions have rows in the record.</summary>
    public int Transactions { get; }

    /// <summary><c>walbridge.rows</c>: the rows of the record (truncate rows and moved keys' deletes included).</summary>
    public int Rows { get; }

    /// <summary><c>walbridge.chunk</c>: which piece of its first transaction the record starts with (0: its first rows).</summary>
    public int Chunk { get; }

    /// <summary><c>walbridge.chunk_last</c>: whether the record's last transaction ends in it (false: it goes on in the partition's next record).</summary>
    public bool ChunkLast { get; }

    /// <summary><c>walbridge.schema_fingerprint</c>: changes exactly when the table's Arrow schema changes.</summary>
    public string SchemaFingerprint { get; }

    /// <summary>Whether the record is a snapshot marker (<c>walbridge.kind = snapshot</c>: no rows), and which.</summary>
    public SnapshotMarker Marker { get; }

    /// <summary>
    /// <c>walbridge.snapshot.chunk</c>: for a record of snapshot rows (<c>_op = r</c>), the chunk of the table's snapshot it
    /// was read in (informational: chunks are read in parallel and committed in any order); -1 for streamed changes and markers.
    /// </summary>
    public int SnapshotChunk { get; }

    /// <summary>Whether the record holds snapshot rows.</summary>
    public bool IsSnapshot => SnapshotChunk >= 0;

    /// <summary>Snapshot markers: <c>walbridge.snapshot.rows</c> (end: the rows the snapshot delivered for the table; start: the estimate); else 0.</summary>
    public long SnapshotRows { get; }

    /// <summary>
    /// The record's identity within its partition, (<see cref="FirstCommitLsn"/>, <see cref="Chunk"/>): it grows strictly
    /// from record to record, so a record whose identity is not greater than the last one applied is a repeat to skip. A
    /// snapshot counts as one transaction per partition at the snapshot LSN whose records are numbered on in
    /// <see cref="Chunk"/>. Markers are outside the sequence (identity (snapshot LSN, 0)): skip or apply them by
    /// <see cref="Marker"/>.
    /// </summary>
    public (Lsn FirstCommitLsn, int Chunk) Identity => (FirstCommitLsn, Chunk);

    /// <summary>
    /// The source transactions of the record that end in it: every one up to <see cref="CommitLsn"/> when
    /// <see cref="ChunkLast"/>, else every one before it (the last goes on in the next record).
    /// </summary>
    public bool EndsTransaction(Lsn commitLsn) => commitLsn < CommitLsn || (commitLsn == CommitLsn && ChunkLast);

    /// <summary>
    /// Reads and checks the headers of a table record. Throws <see cref="WalBridgeFormatException"/> when
    /// <c>walbridge.format</c> is missing (format 1, the messages topic, another producer) or is a version other than
    /// <see cref="WalBridgeFormat.SupportedVersion"/>, or when a header the format requires is missing or malformed.
    /// </summary>
    public static WalBridgeRecordHeaders Parse(Headers? headers)
    {
        if (headers is null)
        {
            throw new WalBridgeFormatException(
                "The Kafka record has no headers: WalBridge table records carry walbridge.format and the record metadata there. " +
                "Do not exclude headers from the consumer's ConsumeResultFields.");
        }

        var format = Text(headers, WalBridgeFormat.FormatHeader) ?? throw new WalBridgeFormatException(
            $"The Kafka record has no {WalBridgeFormat.FormatHeader} header, so it is not a WalBridge table record of payload format " +
            $"{WalBridgeFormat.SupportedVersion} (format 1 records and the messages and offsets topics have none): read a table topic of a WalBridge that writes format {WalBridgeFormat.SupportedVersion}.");
        if (format != WalBridgeFormat.SupportedVersion.ToString(CultureInfo.InvariantCulture))
        {
            throw new WalBridgeFormatException(
                $"The record is in WalBridge payload format '{format}'; this WalBridge.Client reads format {WalBridgeFormat.SupportedVersion} only. " +
                "Upgrade WalBridge.Client to a version that knows this format (records of unknown formats must not be skipped).");
        }

        var contentType = Text(headers, WalBridgeFormat.ContentTypeHeader);
        if (contentType is not null && contentType != WalBridgeFormat.ArrowStreamContentType)
        {
            throw new WalBridgeFormatException($"The record's {WalBridgeFormat.ContentTypeHeader} is '{contentType}', not {WalBridgeFormat.ArrowStreamContentType}: it is not a WalBridge table record.");
        }

        var kind = Text(headers, WalBridgeFormat.KindHeader);
        if (kind == WalBridgeFormat.SnapshotKind)
        {
            var marker = Required(headers, WalBridgeFormat.SnapshotHeader) switch
            {
                "start" => SnapshotMarker.Start,
                "end" => SnapshotMarker.End,
                var other => throw Malformed(WalBridgeFormat.SnapshotHeader, other, "start or end"),
            };
            var at = LsnHeader(headers, WalBridgeFormat.SnapshotLsnHeader);
            var rowsText = Required(headers, WalBridgeFormat.SnapshotRowsHeader);
            var snapshotRows = long.TryParse(rowsText, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) ? parsed : throw Malformed(WalBridgeFormat.SnapshotRowsHeader, rowsText, "a non-negative integer");
            return new WalBridgeRecordHeaders(WalBridgeFormat.SupportedVersion, Required(headers, WalBridgeFormat.TableHeader), at, at, 0,
                Count(headers, WalBridgeFormat.RowsHeader), 0, true, Required(headers, WalBridgeFormat.SchemaFingerprintHeader), marker, -1, snapshotRows);
        }

        if (kind is not null && kind != WalBridgeFormat.ChangesKind)
        {
            throw new WalBridgeFormatException($"The record's {WalBridgeFormat.KindHeader} is '{kind}', not '{WalBridgeFormat.ChangesKind}' or '{WalBridgeFormat.SnapshotKind}': it is not a table record.");
        }

        var snapshotChunk = -1;
        if (Text(headers, WalBridgeFormat.SnapshotHeader) is { } snapshot)
        {
            if (snapshot != "read")
            {
                throw Malformed(WalBridgeFormat.SnapshotHeader, snapshot, "read on a record of rows");
            }

            snapshotChunk = Count(headers, WalBridgeFormat.SnapshotChunkHeader);
        }

        var chunkLast = Required(headers, WalBridgeFormat.ChunkLastHeader) switch
        {
            "true" => true,
            "false" => false,
            var other => throw Malformed(WalBridgeFormat.ChunkLastHeader, other, "true or false"),
        };
        return new WalBridgeRecordHeaders(
            WalBridgeFormat.SupportedVersion,
            Required(headers, WalBridgeFormat.TableHeader),
            LsnHeader(headers, WalBridgeFormat.FirstCommitLsnHeader),
            LsnHeader(headers, WalBridgeFormat.CommitLsnHeader),
            Count(headers, WalBridgeFormat.TransactionsHeader),
            Count(headers, WalBridgeFormat.RowsHeader),
            Count(headers, WalBridgeFormat.ChunkHeader),
            chunkLast,
            Required(headers, WalBridgeFormat.SchemaFingerprintHeader),
            SnapshotMarker.None,
            snapshotChunk);
    }

    private static string? Text(Headers headers, string name) =>
        headers.TryGetLastBytes(name, out var bytes) ? Encoding.UTF8.GetString(bytes) : null;

    private static string Required(Headers headers, string name) =>
        Text(headers, name) ?? throw new WalBridgeFormatException($"The WalBridge table record has no {name} header, which payload format {WalBridgeFormat.SupportedVersion} requires.");

    private static Lsn LsnHeader(Headers headers, string name)
    {
        var text = Required(headers, name);
        return Lsn.TryParse(text, out var lsn) ? lsn : throw Malformed(name, text, "an LSN such as 16/B374D848");
    }

    private static int Count(Headers headers, string name)
    {
        var text = Required(headers, name);
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : throw Malformed(name, text, "a non-negative integer");
    }

    private static WalBridgeFormatException Malformed(string name, string value, string expected) =>
        new($"The record's {name} header is '{value}', not {expected}.");
}

/// <summary>Which snapshot marker a record is (docs/format.md, <em>Snapshots</em>).</summary>
public enum SnapshotMarker
{
    /// <summary>Not a marker: a record of rows.</summary>
    None,
    /// <summary>The table's snapshot begins: the <c>r</c> rows that follow are its state at the snapshot LSN.</summary>
    Start,
    /// <summary>Every snapshot row of the table is before it: the consumer holds the complete table.</summary>
    End,
}
