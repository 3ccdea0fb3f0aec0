namespace WalBridge.Client;

/// <summary>
/// The names of WalBridge's payload format 2 (docs/format.md) that a consumer reads: the Kafka headers of a table record
/// and the system columns of its Arrow schema.
/// </summary>
/// <remarks>
/// Why the client defines them instead of referencing the connector's: the connector's names live in its executable
/// (<c>WalBridge.Connector.Kafka.KafkaHeaders</c>) and in <c>WalBridge.Serialization</c> (<c>ChangeBatchBuilder</c>),
/// neither of which is a package, and this client must install on its own with Apache.Arrow and Confluent.Kafka only.
/// Making the connector reference the client instead would tie the product's encoder to a consumer package and its
/// release cycle. So the format document stays the owner of the names, each side spells them once, and
/// tests/Client.Tests asserts that every name here equals the connector's.
/// </remarks>
public static class WalBridgeFormat
{
    /// <summary>The payload format version this client reads (<see cref="FormatHeader"/>).</summary>
    public const int SupportedVersion = 2;

    /// <summary>Header: the payload format version, <c>2</c>. Records without it (format 1, the messages topic) are not table records of format 2.</summary>
    public const string FormatHeader = "walbridge.format";
    /// <summary>Header: <c>application/vnd.apache.arrow.stream</c> on table records.</summary>
    public const string ContentTypeHeader = "content-type";
    /// <summary>The <see cref="ContentTypeHeader"/> of table records.</summary>
    public const string ArrowStreamContentType = "application/vnd.apache.arrow.stream";
    /// <summary>Header: <c>changes</c> on table records.</summary>
    public const string KindHeader = "walbridge.kind";
    /// <summary>The <see cref="KindHeader"/> of table records.</summary>
    public const string ChangesKind = "changes";
    /// <summary>The <see cref="KindHeader"/> of snapshot markers (no rows; <see cref="SnapshotHeader"/> says start or end).</summary>
    public const string SnapshotKind = "snapshot";
    /// <summary>Header: <c>read</c> on records of snapshot rows, <c>start</c>/<c>end</c> on snapshot markers; absent on streamed changes.</summary>
    public const string SnapshotHeader = "walbridge.snapshot";
    /// <summary>Header: the chunk of the table's snapshot a record of snapshot rows belongs to.</summary>
    public const string SnapshotChunkHeader = "walbridge.snapshot.chunk";
    /// <summary>Header: the snapshot's LSN (its consistent point, the rows' commit LSN).</summary>
    public const string SnapshotLsnHeader = "walbridge.snapshot.lsn";
    /// <summary>Header on snapshot markers: the table's snapshot rows (end: delivered; start: estimated).</summary>
    public const string SnapshotRowsHeader = "walbridge.snapshot.rows";
    /// <summary>Header: <c>schema.table</c>.</summary>
    public const string TableHeader = "pg.table";
    /// <summary>Header: the commit LSN of the first source transaction with rows in the record.</summary>
    public const string FirstCommitLsnHeader = "walbridge.first_commit_lsn";
    /// <summary>Header: the commit LSN of the last source transaction with rows in the record.</summary>
    public const string CommitLsnHeader = "pg.commit_lsn";
    /// <summary>Header: how many source transactions have rows in the record.</summary>
    public const string TransactionsHeader = "walbridge.transactions";
    /// <summary>Header: how many rows the record holds.</summary>
    public const string RowsHeader = "walbridge.rows";
    /// <summary>Header: which piece of its first transaction's rows the record starts with.</summary>
    public const string ChunkHeader = "walbridge.chunk";
    /// <summary>Header: <c>true</c> when the rows of the record's last transaction end in it.</summary>
    public const string ChunkLastHeader = "walbridge.chunk_last";
    /// <summary>Header: the schema fingerprint (16 hex digits).</summary>
    public const string SchemaFingerprintHeader = "walbridge.schema_fingerprint";

    /// <summary>Column 0: the change's operation code (<see cref="ChangeOperation"/>).</summary>
    public const string OpColumn = "_op";
    /// <summary>Column 1: the change's WAL position.</summary>
    public const string LsnColumn = "_lsn";
    /// <summary>Column 2: the source transaction's id.</summary>
    public const string XidColumn = "_xid";
    /// <summary>Column 3: the source transaction's commit LSN.</summary>
    public const string CommitLsnColumn = "_commit_lsn";
    /// <summary>Column 4: the source transaction's commit time.</summary>
    public const string CommitTimestampColumn = "_commit_ts";
    /// <summary>Columns before the table's own.</summary>
    public const int LeadingColumns = 5;
    /// <summary>Column n+5: the old row of an update.</summary>
    public const string BeforeColumn = "_before";
    /// <summary>Column n+6: the names of unchanged TOAST values PostgreSQL did not send.</summary>
    public const string UnchangedColumn = "_unchanged";
    /// <summary>Column n+7: column name → PostgreSQL's text of values the Arrow type cannot hold.</summary>
    public const string SpecialColumn = "_special";
    /// <summary>The prefix of <see cref="UnchangedColumn"/> names and <see cref="SpecialColumn"/> keys that refer to <c>_before</c> members.</summary>
    public const string BeforePrefix = "_before.";
    /// <summary>The <see cref="SpecialColumn"/> key of a truncate row: the TRUNCATE's options.</summary>
    public const string TruncateOptionsKey = "_truncate";
    /// <summary>Field metadata key that only table columns (and <c>_before</c> members) carry.</summary>
    public const string TypeOidMetadata = "pg.typoid";
}
