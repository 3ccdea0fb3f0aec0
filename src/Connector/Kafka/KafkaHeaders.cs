namespace WalBridge.Connector.Kafka;

/// <summary>
/// Names of the Kafka record headers the connector writes (the wire contract; docs/format.md).
/// Values are UTF-8 text.
/// </summary>
public static class KafkaHeaders
{
    public const string ContentType = "content-type";
    public const string ArrowStreamContentType = "application/vnd.apache.arrow.stream";
    /// <summary><c>changes</c> or <c>truncate</c>.</summary>
    public const string Kind = "walbridge.kind";
    public const string CommitLsn = "pg.commit_lsn";
    public const string Xid = "pg.xid";
    /// <summary>ISO-8601 UTC with microseconds.</summary>
    public const string CommitTimestamp = "pg.commit_ts";
    /// <summary><c>schema.table</c>.</summary>
    public const string Table = "pg.table";
    public const string Rows = "walbridge.rows";
    public const string ChunkIndex = "walbridge.chunk";
    /// <summary><c>true</c> on the table's last record of the transaction.</summary>
    public const string LastChunk = "walbridge.chunk_last";
    public const string SchemaFingerprint = "walbridge.schema_fingerprint";
    /// <summary>On truncate records: <c>cascade</c>, <c>restart_identity</c>, both comma-separated, or empty.</summary>
    public const string TruncateOptions = "walbridge.truncate_options";
    /// <summary>Message records: the prefix given to <c>pg_logical_emit_message</c>.</summary>
    public const string MessagePrefix = "pg.message_prefix";
    /// <summary>Message records: the message's own WAL position.</summary>
    public const string MessageLsn = "pg.message_lsn";
    /// <summary>Message records: <c>true</c> when emitted inside a transaction (delivered with it), <c>false</c> otherwise.</summary>
    public const string MessageTransactional = "pg.message_transactional";
    public const string OctetStreamContentType = "application/octet-stream";

    /// <summary>The <see cref="TruncateOptions"/> header value: <c>cascade</c>, <c>restart_identity</c>, both comma-separated, or empty.</summary>
    public static string TruncateOptionsText(Transactions.TruncateOptions options) => options switch
    {
        Transactions.TruncateOptions.Cascade | Transactions.TruncateOptions.RestartIdentity => "cascade,restart_identity",
        Transactions.TruncateOptions.Cascade => "cascade",
        Transactions.TruncateOptions.RestartIdentity => "restart_identity",
        _ => "",
    };
}
