using System.Text.Json.Nodes;
using WalBridge.Connector.Formats;
using WalBridge.Serialization.Postgres;
using static WalBridge.Connector.Tests.Formats.FormatTestData;

namespace WalBridge.Connector.Tests.Formats;

/// <summary>
/// Issue 13: the debezium-json payloads equal the change events of Debezium's documentation (Golden/, adapted as its
/// README says) for insert, update, delete, truncate, snapshot read and message events.
/// </summary>
public class DebeziumJsonGoldenTests
{
    private static readonly string s_version = "walbridge-" + typeof(OutputFormats).Assembly.GetName().Version!.ToString(3);

    private static JsonNode Golden(string name) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Formats", "Golden", name)).Replace("<VERSION>", s_version, StringComparison.Ordinal))!;

    /// <summary>The previous source transaction (commit LSN 24023119), then <paramref name="transaction"/>; the records of the latter.</summary>
    private static List<Captured> After24023119(long nowMicros, TestTransaction transaction, params (string, string)[] settings)
    {
        var records = Produce(Config([("output.debezium-json.schemas.enable", "false"), .. settings]), nowMicros, Transaction(554, 24023119, 1559033900000000), transaction);
        return records;
    }

    private static void AssertJson(JsonNode expected, string actual) =>
        Assert.True(JsonNode.DeepEquals(expected, JsonNode.Parse(actual)), $"expected\n{expected.ToJsonString()}\nactual\n{actual}");

    [Fact]
    public void Insert_matches_the_documented_create_event()
    {
        var payload = Payload(Customers(), new Row(ChangeOp.Insert, 24023128, ["1", "Anne", "Kretchmar", "annek@noanswer.org"]));
        var records = After24023119(1559033904863841, Transaction(555, 24023200, 1559033904863123, payload));
        var record = Assert.Single(records);
        Assert.Equal("PostgreSQL_server.public.customers", record.Topic);
        AssertJson(JsonNode.Parse("""{"id":1}""")!, record.KeyText);
        AssertJson(Golden("insert.json"), record.ValueText);
    }

    [Fact]
    public void Snapshot_read_matches_the_documented_read_event()
    {
        var payload = Payload(Customers(), new Row(ChangeOp.Read, 24023128, ["1", "Anne", "Kretchmar", "annek@noanswer.org"]));
        var record = Assert.Single(After24023119(1559033904863841, Transaction(555, 24023200, 1559033904863123, payload)));
        // A read inside a source transaction is an incremental snapshot's (a high watermark's transaction): Debezium
        // writes "incremental" there; the initial snapshot's reads (no transaction, _xid 0) keep the documented "true".
        var expected = Golden("read.json");
        expected["source"]!["snapshot"] = "incremental";
        AssertJson(expected, record.ValueText);
    }

    [Fact]
    public void Update_matches_the_documented_update_event()
    {
        var payload = Payload(Customers(), new Row(ChangeOp.Update, 24023128, ["1", "Anne Marie", "Kretchmar", "annek@noanswer.org"]));
        var record = Assert.Single(After24023119(1465584025523514, Transaction(556, 24023200, 1559033904863769, payload)));
        AssertJson(Golden("update.json"), record.ValueText);
    }

    [Fact]
    public void Delete_matches_the_documented_delete_event_and_is_followed_by_a_tombstone()
    {
        var payload = Payload(Customers(), new Row(ChangeOp.Delete, 46523128, ["1", null, null, null]));
        var records = After24023119(1465581902461496, Transaction(556, 46523200, 1559033904863852, payload));
        Assert.Equal(2, records.Count);
        AssertJson(Golden("delete.json"), records[0].ValueText);
        Assert.Null(records[1].Value);
        Assert.Equal(records[0].KeyText, records[1].KeyText);
        Assert.Equal("""{"id":1}""", records[1].KeyText);
    }

    [Fact]
    public void Tombstones_can_be_switched_off()
    {
        var payload = Payload(Customers(), new Row(ChangeOp.Delete, 46523128, ["1", null, null, null]));
        var records = After24023119(1465581902461496, Transaction(556, 46523200, 1559033904863852, payload), ("tombstones.on.delete", "false"));
        Assert.Single(records);
    }

    [Fact]
    public void Truncate_matches_the_documented_truncate_event_with_a_null_key()
    {
        var records = After24023119(1559033904961654, Transaction(556, 46523200, 1559033904863112, Truncate(Customers(), 46523128)));
        var record = Assert.Single(records);
        Assert.Null(record.Key);
        AssertJson(Golden("truncate.json"), record.ValueText);
    }

    [Fact]
    public void Truncates_are_skipped_by_default_as_in_Debezium()
    {
        var config = Config(("output.debezium-json.schemas.enable", "false"), ("skipped.operations", "t"));
        Assert.Empty(Produce(config, 1, Transaction(556, 46523200, 1559033904863112, Truncate(Customers(), 46523128))));
    }

    [Fact]
    public void Message_matches_the_documented_message_event()
    {
        var records = After24023119(1559033904961000, Transaction(556, 46523200, 1559033904863879, Message("foo", Convert.FromBase64String("Ymfy"), 46523128, transactional: true)));
        var record = Assert.Single(records);
        Assert.Equal("PostgreSQL_server.message", record.Topic);
        AssertJson(JsonNode.Parse("""{"prefix":"foo"}""")!, record.KeyText);
        AssertJson(Golden("message.json"), record.ValueText);
    }

    [Fact]
    public void Schemas_enable_wraps_key_and_value_in_the_JsonConverter_envelope()
    {
        var payload = Payload(Customers(), new Row(ChangeOp.Insert, 24023128, ["1", "Anne", "Kretchmar", "annek@noanswer.org"]));
        var record = Assert.Single(Produce(Config(), 1, Transaction(555, 24023200, 1, payload)));
        var key = JsonNode.Parse(record.KeyText)!;
        Assert.Equal("PostgreSQL_server.public.customers.Key", (string?)key["schema"]!["name"]);
        Assert.Equal("""{"type":"int32","optional":false,"field":"id"}""", key["schema"]!["fields"]![0]!.ToJsonString());
        Assert.Equal(1, (int)key["payload"]!["id"]!);
        var value = JsonNode.Parse(record.ValueText)!;
        var schema = value["schema"]!;
        Assert.Equal("PostgreSQL_server.public.customers.Envelope", (string?)schema["name"]);
        Assert.Equal(2, (int)schema["version"]!);
        Assert.Equal(["before", "after", "source", "transaction", "op", "ts_ms", "ts_us", "ts_ns"], schema["fields"]!.AsArray().Select(f => (string)f!["field"]!));
        var after = schema["fields"]![1]!;
        Assert.Equal("PostgreSQL_server.public.customers.Value", (string?)after["name"]);
        Assert.True((bool)after["optional"]!);
        var source = schema["fields"]![2]!;
        Assert.Equal("io.debezium.connector.postgresql.Source", (string?)source["name"]);
        var snapshot = source["fields"]!.AsArray().Single(f => (string)f!["field"]! == "snapshot")!;
        Assert.Equal("io.debezium.data.Enum", (string?)snapshot["name"]);
        Assert.Equal("false", (string?)snapshot["default"]);
        Assert.Equal("Anne", (string?)value["payload"]!["after"]!["first_name"]);
    }
}
