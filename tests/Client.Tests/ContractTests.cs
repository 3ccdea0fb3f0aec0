using WalBridge.Connector.Kafka;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Client.Tests;

/// <summary>
/// The client spells the format's names itself (<see cref="WalBridgeFormat"/> says why); these are the connector's
/// spellings, so a rename on either side fails here.
/// </summary>
public class ContractTests
{
    [Fact]
    public void The_header_names_are_the_connectors()
    {
        Assert.Equal(KafkaHeaders.Format, WalBridgeFormat.FormatHeader);
        Assert.Equal(KafkaHeaders.CurrentFormat, WalBridgeFormat.SupportedVersion.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(KafkaHeaders.ContentType, WalBridgeFormat.ContentTypeHeader);
        Assert.Equal(KafkaHeaders.ArrowStreamContentType, WalBridgeFormat.ArrowStreamContentType);
        Assert.Equal(KafkaHeaders.Kind, WalBridgeFormat.KindHeader);
        Assert.Equal(KafkaHeaders.Table, WalBridgeFormat.TableHeader);
        Assert.Equal(KafkaHeaders.FirstCommitLsn, WalBridgeFormat.FirstCommitLsnHeader);
        Assert.Equal(KafkaHeaders.CommitLsn, WalBridgeFormat.CommitLsnHeader);
        Assert.Equal(KafkaHeaders.Transactions, WalBridgeFormat.TransactionsHeader);
        Assert.Equal(KafkaHeaders.Rows, WalBridgeFormat.RowsHeader);
        Assert.Equal(KafkaHeaders.ChunkIndex, WalBridgeFormat.ChunkHeader);
        Assert.Equal(KafkaHeaders.LastChunk, WalBridgeFormat.ChunkLastHeader);
        Assert.Equal(KafkaHeaders.SchemaFingerprint, WalBridgeFormat.SchemaFingerprintHeader);
        Assert.Equal(KafkaHeaders.KindChanges, WalBridgeFormat.ChangesKind);
        Assert.Equal(KafkaHeaders.KindSnapshot, WalBridgeFormat.SnapshotKind);
        Assert.Equal(KafkaHeaders.Snapshot, WalBridgeFormat.SnapshotHeader);
        Assert.Equal(KafkaHeaders.SnapshotChunk, WalBridgeFormat.SnapshotChunkHeader);
        Assert.Equal(KafkaHeaders.SnapshotLsn, WalBridgeFormat.SnapshotLsnHeader);
        Assert.Equal(KafkaHeaders.SnapshotRows, WalBridgeFormat.SnapshotRowsHeader);
    }

    [Fact]
    public void The_column_names_are_the_encoders()
    {
        Assert.Equal(ChangeBatchBuilder.OpColumn, WalBridgeFormat.OpColumn);
        Assert.Equal(ChangeBatchBuilder.LsnColumn, WalBridgeFormat.LsnColumn);
        Assert.Equal(ChangeBatchBuilder.XidColumn, WalBridgeFormat.XidColumn);
        Assert.Equal(ChangeBatchBuilder.CommitLsnColumn, WalBridgeFormat.CommitLsnColumn);
        Assert.Equal(ChangeBatchBuilder.CommitTimestampColumn, WalBridgeFormat.CommitTimestampColumn);
        Assert.Equal(ChangeBatchBuilder.LeadingColumns, WalBridgeFormat.LeadingColumns);
        Assert.Equal(ChangeBatchBuilder.BeforeColumn, WalBridgeFormat.BeforeColumn);
        Assert.Equal(ChangeBatchBuilder.UnchangedColumn, WalBridgeFormat.UnchangedColumn);
        Assert.Equal(ChangeBatchBuilder.SpecialColumn, WalBridgeFormat.SpecialColumn);
        Assert.Equal(ChangeBatchBuilder.TruncateOptionsKey, WalBridgeFormat.TruncateOptionsKey);
        // The schema the encoder writes has the system columns where the client looks for them.
        using var builder = new ChangeBatchBuilder(Records.Items);
        var fields = builder.Schema.FieldsList;
        Assert.Equal([WalBridgeFormat.OpColumn, WalBridgeFormat.LsnColumn, WalBridgeFormat.XidColumn, WalBridgeFormat.CommitLsnColumn, WalBridgeFormat.CommitTimestampColumn],
            fields.Take(WalBridgeFormat.LeadingColumns).Select(f => f.Name));
        Assert.Equal([WalBridgeFormat.BeforeColumn, WalBridgeFormat.UnchangedColumn, WalBridgeFormat.SpecialColumn], fields.TakeLast(3).Select(f => f.Name));
        Assert.All(fields.Skip(WalBridgeFormat.LeadingColumns).SkipLast(3), f => Assert.True(f.Metadata.ContainsKey(WalBridgeFormat.TypeOidMetadata)));
    }

    [Theory]
    [InlineData("0/0", 0UL)]
    [InlineData("16/B374D848", 0x16B374D848UL)]
    [InlineData("FFFFFFFF/FFFFFFFF", ulong.MaxValue)]
    public void An_lsn_reads_and_prints_PostgreSQLs_form(string text, ulong value)
    {
        Assert.Equal(new Lsn(value), Lsn.Parse(text));
        Assert.Equal(text, new Lsn(value).ToString());
        Assert.Equal(new Lsn(value), Lsn.Parse(text.ToLowerInvariant()));
    }

    [Theory]
    [InlineData("")]
    [InlineData("16")]
    [InlineData("/1")]
    [InlineData("1/")]
    [InlineData("100000000/0")]
    [InlineData("G/0")]
    public void A_malformed_lsn_is_refused(string text)
    {
        Assert.False(Lsn.TryParse(text, out _));
        Assert.Throws<FormatException>(() => Lsn.Parse(text));
    }
}
