using System.Text;
using System.Text.Json.Nodes;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;
using static WalBridge.Connector.Tests.Formats.FormatTestData;

namespace WalBridge.Connector.Tests.Formats;

/// <summary>
/// The Debezium formats on payload format v2 groups (several transactions, tables and partitions per group): events in
/// WAL order, in the partition of their Arrow row, one truncate event per table, and a primary-key change that moves
/// its key to another partition still Debezium's delete, tombstone and create (not one more delete).
/// </summary>
public class DebeziumPartitionTests
{
    private const int Partitions = 4;

    private static Configuration.ConnectorConfig Partitioned(params (string, string)[] settings) =>
        Config([("output.debezium-json.schemas.enable", "false"), ("topic.partitions", Partitions.ToString(System.Globalization.CultureInfo.InvariantCulture)), .. settings]);

    /// <summary>The documented partition of an <c>int4</c> key: Kafka's murmur2 of the JSON array of its text, positive, modulo the partitions.</summary>
    private static int PartitionOfId(int id) => (PartitionKey.Murmur2(Encoding.UTF8.GetBytes($"[\"{id}\"]")) & 0x7FFFFFFF) % Partitions;

    private static Row Insert(ulong lsn, int id) => new(ChangeOp.Insert, lsn, [id.ToString(System.Globalization.CultureInfo.InvariantCulture), "a", "b", "c"]);

    [Fact]
    public void Each_event_goes_to_the_partition_of_its_Arrow_row()
    {
        var rows = Enumerable.Range(1, 40).Select(id => Insert((ulong)(1000 + id), id)).ToArray();
        var config = Partitioned();
        var transaction = Transaction(9, 5000, 1, Payload(Customers(), rows));
        using (var group = Group(config, transaction))
        {
            // The Arrow rows are spread over every partition (the test exercises more than partition 0).
            Assert.Equal(Partitions, group.Tables.Select(t => t.Partition).Distinct().Count());
        }

        var records = Produce(config, 1, transaction);
        Assert.Equal(40, records.Count);
        foreach (var record in records)
        {
            var id = (int)JsonNode.Parse(record.KeyText)!["id"]!;
            Assert.Equal(PartitionOfId(id), record.Partition);
        }

        // One partition's events keep the rows' order.
        foreach (var partition in records.GroupBy(r => r.Partition))
        {
            var lsns = partition.Select(r => (long)JsonNode.Parse(r.ValueText)!["source"]!["lsn"]!).ToList();
            Assert.Equal(lsns.Order(), lsns);
        }
    }

    [Fact]
    public void A_key_moving_to_another_partition_is_one_delete_tombstone_and_create()
    {
        var moved = Enumerable.Range(2, 100).First(id => PartitionOfId(id) != PartitionOfId(1));
        var config = Partitioned(("provide.transaction.metadata", "true"));
        var insert = Transaction(9, 2000, 1, Payload(Customers(), Insert(1000, 1)));
        var update = Transaction(10, 3000, 2, Payload(Customers(), new Row(ChangeOp.Update, 2500, [moved.ToString(System.Globalization.CultureInfo.InvariantCulture), "a", "b", "c"], Before: ["1", null, null, null])));
        using (var group = Group(config, update))
        {
            // The connector's partitioner left a delete of the old key in the old key's partition.
            Assert.Equal(new[] { PartitionOfId(1), PartitionOfId(moved) }.Order(), group.Tables.Select(t => t.Partition).Order());
        }

        var records = Produce(config, 1, insert, update).Where(r => r.Topic == "PostgreSQL_server.public.customers").ToList();
        Assert.Equal(4, records.Count);
        var (delete, tombstone, create) = (records[1], records[2], records[3]);
        Assert.Equal("d", (string?)JsonNode.Parse(delete.ValueText)!["op"]);
        Assert.Equal("""{"id":1}""", delete.KeyText);
        Assert.Equal(PartitionOfId(1), delete.Partition);
        Assert.Null(tombstone.Value);
        Assert.Equal("""{"id":1}""", tombstone.KeyText);
        Assert.Equal(PartitionOfId(1), tombstone.Partition);
        Assert.Equal("c", (string?)JsonNode.Parse(create.ValueText)!["op"]);
        Assert.Equal($$"""{"id":{{moved}}}""", create.KeyText);
        Assert.Equal(PartitionOfId(moved), create.Partition);

        var end = JsonNode.Parse(Produce(config, 1, insert, update).Last(r => r.Topic == "PostgreSQL_server.transaction").ValueText)!;
        Assert.Equal("10:3000", (string?)end["id"]);
        Assert.Equal(2, (long)end["event_count"]!);
    }

    [Fact]
    public void A_truncate_is_one_event_although_every_partition_has_its_row()
    {
        var config = Partitioned(("provide.transaction.metadata", "true"));
        var truncate = Transaction(10, 3000, 2, Truncate(Customers(), 2500));
        using (var group = Group(config, truncate))
        {
            Assert.Equal(Partitions, group.Tables.Count);
        }

        var records = Produce(config, 1, Transaction(9, 2000, 1, Payload(Customers(), Insert(1000, 1), Insert(1001, 2))), truncate);
        var truncates = records.Where(r => r.Value is not null && (string?)JsonNode.Parse(r.ValueText)!["op"] == "t").ToList();
        var single = Assert.Single(truncates);
        Assert.Equal("null", single.KeyText);
        Assert.Equal(0, single.Partition);
        Assert.Equal(2500, (long)JsonNode.Parse(single.ValueText)!["source"]!["lsn"]!);
        var end = JsonNode.Parse(records.Last(r => r.Topic == "PostgreSQL_server.transaction").ValueText)!;
        Assert.Equal(1, (long)end["event_count"]!);
    }

    [Theory]
    [InlineData("lz4_frame")]
    [InlineData("zstd")]
    public void Compressed_batches_give_the_same_events(string compression)
    {
        var rows = Enumerable.Range(1, 20).Select(id => Insert((ulong)(1000 + id), id)).ToArray();
        var transaction = Transaction(9, 5000, 1, Payload(Customers(), rows));
        using (var uncompressedGroup = Group(Partitioned(), transaction))
        using (var compressedGroup = Group(Partitioned(("arrow.compression", compression)), transaction))
        {
            // The batches really are encoded differently.
            Assert.NotEqual(uncompressedGroup.Tables.SelectMany(t => t.Batches).Sum(b => b.Bytes.Length), compressedGroup.Tables.SelectMany(t => t.Batches).Sum(b => b.Bytes.Length));
        }

        var plain = Produce(Partitioned(), 1, transaction);
        var compressed = Produce(Partitioned(("arrow.compression", compression)), 1, transaction);
        Assert.Equal(plain.Select(r => (r.Topic, r.Partition, r.KeyText, r.ValueText)), compressed.Select(r => (r.Topic, r.Partition, r.KeyText, r.ValueText)));
    }

    [Fact]
    public void Transactions_of_one_group_are_each_bracketed_and_their_events_follow_WAL_order_across_tables()
    {
        var orders = new PgRelation(16400, "public", "orders", 'd', [new PgColumn("id", PgOid.Int8, -1, true)]);
        var config = Partitioned(("provide.transaction.metadata", "true"));
        var records = Produce(config, 1,
            Transaction(9, 2000, 1, Payload(Customers(), Insert(1000, 1)), Payload(orders, new Row(ChangeOp.Insert, 1001, ["7"])), Payload(Customers(), Insert(1002, 2))),
            Transaction(10, 3000, 2, Payload(orders, new Row(ChangeOp.Insert, 2001, ["8"])), Payload(Customers(), Insert(2002, 3))));
        var shape = records.Select(r => r.Topic.EndsWith(".transaction", StringComparison.Ordinal)
            ? (string)JsonNode.Parse(r.ValueText)!["status"]! + " " + (string)JsonNode.Parse(r.ValueText)!["id"]!
            : r.Topic["PostgreSQL_server.public.".Length..] + " " + (long)JsonNode.Parse(r.ValueText)!["source"]!["lsn"]!).ToList();
        Assert.Equal(
        [
            "BEGIN 9:2000", "customers 1000", "orders 1001", "customers 1002", "END 9:2000",
            "BEGIN 10:3000", "orders 2001", "customers 2002", "END 10:3000",
        ], shape);

        // source.sequence names the previous transaction's commit.
        var last = JsonNode.Parse(records[^2].ValueText)!["source"]!;
        Assert.Equal("""["2000","2002"]""", (string?)last["sequence"]);
        Assert.Equal(10, (long)last["txId"]!);
    }
}
