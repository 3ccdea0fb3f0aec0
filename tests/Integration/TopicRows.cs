using System.Text;
using Apache.Arrow;
using Confluent.Kafka;
using WalBridge.Connector.Kafka;
using WalBridge.Offsets;
using WalBridge.Serialization.Payload;
using WalBridge.Tests;

namespace WalBridge.Integration.Tests;

/// <summary>One committed table record (payload format v2) as a read_committed consumer sees it, decoded by Apache.Arrow.</summary>
internal sealed record TableRecord(int Partition, long Offset, Headers Headers, byte[] Value, ArrowPayload Payload)
{
    public string Header(string name) =>
        Headers.TryGetLastBytes(name, out var bytes) ? Encoding.UTF8.GetString(bytes) : throw new KeyNotFoundException($"record {Partition}@{Offset} has no header '{name}'");

    public Lsn FirstCommitLsn => Lsn.Parse(Header(KafkaHeaders.FirstCommitLsn));
    public Lsn CommitLsn => Lsn.Parse(Header(KafkaHeaders.CommitLsn));
    public int Chunk => int.Parse(Header(KafkaHeaders.ChunkIndex), System.Globalization.CultureInfo.InvariantCulture);
    public bool ChunkLast => Header(KafkaHeaders.LastChunk) == "true";
    public string Fingerprint => Header(KafkaHeaders.SchemaFingerprint);

    /// <summary>The table's own column names in this record's schema.</summary>
    public string[] Names => Payload.Schema.FieldsList.Where(f => f.Metadata?.ContainsKey("pg.typoid") == true).Select(f => f.Name).ToArray();
}

/// <summary>One row of a table topic, in topic order: its record, batch and position.</summary>
internal sealed record TopicRow(TableRecord Record, RecordBatch Batch, int Row)
{
    public string Op => Batch.Col("_op").Value(Row) as string ?? "?";
    public ulong Lsn => (ulong)Batch.Col("_lsn").Value(Row)!;
    public uint Xid => (uint)Batch.Col("_xid").Value(Row)!;
    public Lsn CommitLsn => new((ulong)Batch.Col("_commit_lsn").Value(Row)!);

    /// <summary>The raw Arrow value of a column (<see cref="ArrowTestExtensions.Value"/>).</summary>
    public object? this[string column] => Batch.Col(column).Value(Row);

    /// <summary>PostgreSQL's text of a table column, <c>_special</c> included (null for NULL and unsent TOAST values).</summary>
    public string? Text(string column) => WalBridge.Serialization.Postgres.PgTextRenderer.RenderCell(Batch, Batch.Schema.IndexOf(column), Row);

    public bool IsNull(string column) => Batch.Col(column).IsNull(Row);
}

/// <summary>Reads table topics of payload format v2 for assertions.</summary>
internal static class TopicRows
{
    /// <summary>Every committed record of <paramref name="topic"/>, by partition then offset; snapshot markers only when <paramref name="snapshotMarkers"/>.</summary>
    public static List<TableRecord> Records(string bootstrapServers, string topic, bool snapshotMarkers = false)
    {
        var records = new List<TableRecord>();
        OffsetsTopicReader.ReadToEnd(new Dictionary<string, string> { ["bootstrap.servers"] = bootstrapServers }, topic, message =>
        {
            if (!snapshotMarkers && message.Message.Headers.TryGetLastBytes(KafkaHeaders.Kind, out var kind) && Encoding.UTF8.GetString(kind) == KafkaHeaders.KindSnapshot)
            {
                return;
            }

            var value = message.Message.Value ?? [];
            records.Add(new TableRecord(message.Partition.Value, message.Offset.Value, message.Message.Headers, value, ArrowPayload.Read(value)));
        }, CancellationToken.None, TimeSpan.FromSeconds(120));
        return [.. records.OrderBy(r => r.Partition).ThenBy(r => r.Offset)];
    }

    /// <summary>
    /// The records holding rows of the source transaction committed at <paramref name="commitLsn"/>, in order, checked
    /// against the chunk headers (docs/format.md): every piece after the first starts its record with the transaction's
    /// next chunk number; only the record with its last rows says <c>walbridge.chunk_last = true</c>.
    /// </summary>
    public static List<TableRecord> PiecesOf(IReadOnlyList<TableRecord> records, Lsn commitLsn)
    {
        var pieces = records.Where(r => Rows([r]).Any(row => row.CommitLsn == commitLsn)).ToList();
        Assert.NotEmpty(pieces);
        for (var k = 0; k < pieces.Count; k++)
        {
            if (k > 0)
            {
                Assert.Equal(commitLsn, pieces[k].FirstCommitLsn);
                Assert.Equal(k, pieces[k].Chunk);
            }

            if (k < pieces.Count - 1)
            {
                Assert.Equal(commitLsn, pieces[k].CommitLsn);
                Assert.False(pieces[k].ChunkLast, $"piece {k} of the transaction committed at {commitLsn} says it is the last");
            }
        }

        Assert.True(pieces[^1].ChunkLast);
        return pieces;
    }

    /// <summary>Every row of <paramref name="topic"/>, by partition then offset then batch order.</summary>
    public static List<TopicRow> Rows(string bootstrapServers, string topic) => Rows(Records(bootstrapServers, topic));

    public static List<TopicRow> Rows(IEnumerable<TableRecord> records)
    {
        var rows = new List<TopicRow>();
        foreach (var record in records)
        {
            foreach (var batch in record.Payload.Batches)
            {
                for (var row = 0; row < batch.Length; row++)
                {
                    rows.Add(new TopicRow(record, batch, row));
                }
            }
        }

        return rows;
    }
}
