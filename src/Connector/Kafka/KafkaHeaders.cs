using System.Globalization;

namespace WalBridge.Connector.Kafka;

/// <summary>
/// Names of the Kafka record headers the connector writes (the wire contract; docs/format.md, format version 2).
/// Values are UTF-8 text.
/// </summary>
public static class KafkaHeaders
{
    public const string ContentType = "content-type";
    public const string ArrowStreamContentType = "application/vnd.apache.arrow.stream";
    public const string OctetStreamContentType = "application/octet-stream";

    /// <summary>The payload format version of table records: <see cref="CurrentFormat"/>.</summary>
    public const string Format = "walbridge.format";
    /// <summary>The format this connector writes.</summary>
    public const string CurrentFormat = "2";

    /// <summary><c>changes</c> (table records) or <c>message</c> (messages topic).</summary>
    public const string Kind = "walbridge.kind";
    /// <summary>Table records: the commit LSN of the last source transaction with rows in the record; messages: their transaction's.</summary>
    public const string CommitLsn = "pg.commit_lsn";
    /// <summary>Table records: the commit LSN of the first source transaction with rows in the record.</summary>
    public const string FirstCommitLsn = "walbridge.first_commit_lsn";
    /// <summary>Table records: how many source transactions have rows in the record.</summary>
    public const string Transactions = "walbridge.transactions";
    /// <summary>Messages: the transaction id (0 for a non-transactional message).</summary>
    public const string Xid = "pg.xid";
    /// <summary>Messages: ISO-8601 UTC with microseconds.</summary>
    public const string CommitTimestamp = "pg.commit_ts";
    /// <summary><c>schema.table</c>.</summary>
    public const string Table = "pg.table";
    public const string Rows = "walbridge.rows";
    /// <summary>Which piece of its first transaction's rows (of this table partition) the record starts with: 0 when it starts with them.</summary>
    public const string ChunkIndex = "walbridge.chunk";
    /// <summary><c>true</c> when the record's last transaction's rows (of this table partition) end in it.</summary>
    public const string LastChunk = "walbridge.chunk_last";
    public const string SchemaFingerprint = "walbridge.schema_fingerprint";
    /// <summary>Message records: the prefix given to <c>pg_logical_emit_message</c>.</summary>
    public const string MessagePrefix = "pg.message_prefix";
    /// <summary>Message records: the message's own WAL position.</summary>
    public const string MessageLsn = "pg.message_lsn";
    /// <summary>Message records: <c>true</c> when emitted inside a transaction (delivered with it), <c>false</c> otherwise.</summary>
    public const string MessageTransactional = "pg.message_transactional";

    /// <summary>
    /// Snapshot records: <c>read</c> on a record of snapshot rows (<c>_op = r</c>), <c>start</c> or <c>end</c> on a table's
    /// snapshot markers (<see cref="Kind"/> <c>snapshot</c>, no rows). Absent on streamed changes.
    /// </summary>
    public const string Snapshot = "walbridge.snapshot";
    /// <summary>Snapshot rows: which chunk of the table's snapshot the record belongs to (with <see cref="ChunkIndex"/>, the piece of that chunk).</summary>
    public const string SnapshotChunk = "walbridge.snapshot.chunk";
    /// <summary>Snapshot records: the snapshot's consistent point (the rows' <c>_commit_lsn</c>).</summary>
    public const string SnapshotLsn = "walbridge.snapshot.lsn";

    /// <summary>
    /// Snapshot markers: <c>incremental</c> on an incremental snapshot's markers (its rows are upserts inside the stream,
    /// docs/format.md "Incremental snapshots"); absent on the initial snapshot's.
    /// </summary>
    public const string SnapshotMode = "walbridge.snapshot.mode";

    /// <summary>The <see cref="SnapshotMode"/> value of incremental snapshot markers.</summary>
    public const string SnapshotModeIncremental = "incremental";

    /// <summary>Snapshot markers: the table's snapshot rows (end marker: delivered; start marker: the statistics' estimate).</summary>
    public const string SnapshotRows = "walbridge.snapshot.rows";

    /// <summary><see cref="Kind"/> of table records holding changes (snapshot rows included).</summary>
    public const string KindChanges = "changes";
    /// <summary><see cref="Kind"/> of snapshot markers.</summary>
    public const string KindSnapshot = "snapshot";

    /// <summary>A timestamp header value: ISO-8601 UTC with microseconds.</summary>
    public static string Timestamp(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);
}
