using WalBridge.Connector.Configuration;
using WalBridge.Offsets;

namespace WalBridge.Connector.Pipeline;

/// <summary>
/// Logical decoding messages (<c>pg_logical_emit_message</c>) and heartbeats as the pipeline carries
/// them, shared by both plugins' decoders.
/// </summary>
internal static class LogicalMessages
{
    /// <summary>Whether a message prefix belongs to a WalBridge heartbeat (ours or another connector's).</summary>
    public static bool IsHeartbeat(string prefix) => prefix.StartsWith(ConnectorConfig.HeartbeatPrefixBase, StringComparison.Ordinal);

    /// <summary>A record for the messages topic, carrying the message's content unchanged.</summary>
    public static TablePayload Payload(ConnectorConfig config, string prefix, Lsn messageLsn, bool transactional, ReadOnlySpan<byte> content) => new()
    {
        Topic = config.MessagesTopic,
        Schema = "",
        Table = "",
        Kind = PayloadKind.Message,
        ChunkIndex = 0,
        IsLastChunk = true,
        RowCount = 0,
        SchemaFingerprint = "",
        Value = content.ToArray(),
        MessagePrefix = prefix,
        MessageLsn = messageLsn,
        MessageTransactional = transactional,
    };

    /// <summary>
    /// Something positioned at <paramref name="lsn"/> outside any transaction (a heartbeat, or a
    /// non-transactional message): every commit before it was handed over already, so its position
    /// may be recorded in Kafka and acknowledged.
    /// </summary>
    public static SourceTransaction Positioned(Lsn lsn, IReadOnlyList<TablePayload> payloads, bool heartbeat) => new()
    {
        Xid = 0,
        CommitLsn = lsn,
        EndLsn = lsn,
        CommitTimestamp = DateTimeOffset.UtcNow,
        Payloads = payloads,
        RowCount = 0,
        IsHeartbeat = heartbeat,
    };
}
