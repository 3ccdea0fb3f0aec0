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
    public byte[] ToBytes() => JsonSerializer.SerializeToUtf8Bytes(this, OffsetJsonContext.Default.OffsetRecord);

    public static OffsetRecord FromBytes(ReadOnlySpan<byte> bytes) =>
        JsonSerializer.Deserialize(bytes, OffsetJsonContext.Default.OffsetRecord)
        ?? throw new FormatException("The offsets record value is empty.");
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
internal sealed partial class OffsetJsonContext : JsonSerializerContext;
