using System.Text.Json.Nodes;
using WalBridge.Serialization.Postgres;
using static WalBridge.Connector.Tests.Formats.FormatTestData;

namespace WalBridge.Connector.Tests.Formats;

/// <summary>Issue 13: Debezium's type mapping and its switches, the envelope's special cases, in the JSON encoding.</summary>
public class DebeziumTypeMappingTests
{
    private static readonly PgRelation s_types = new(16390, "public", "types", 'd',
    [
        new PgColumn("id", PgOid.Int4, -1, true),
        new PgColumn("n", PgOid.Numeric, ((12 << 16) | 2) + 4, false),
        new PgColumn("v", PgOid.Numeric, -1, false),
        new PgColumn("t", PgOid.Time, 3, false),
        new PgColumn("tu", PgOid.Time, -1, false),
        new PgColumn("ts", PgOid.Timestamp, 3, false),
        new PgColumn("tsu", PgOid.Timestamp, -1, false),
        new PgColumn("tz", PgOid.TimestampTz, -1, false),
        new PgColumn("d", PgOid.Date, -1, false),
        new PgColumn("b", PgOid.Bytea, -1, false),
        new PgColumn("i", PgOid.Interval, -1, false),
        new PgColumn("u", PgOid.Uuid, -1, false),
        new PgColumn("j", PgOid.Jsonb, -1, false),
        new PgColumn("arr", PgOid.Int4Array, -1, false),
        new PgColumn("big", PgOid.Text, -1, false),
    ]);

    private static readonly string?[] s_row =
    [
        "7", "1234.50", "12.500", "12:34:56.789", "12:34:56.789012", "2024-01-02 03:04:05.678", "2024-01-02 03:04:05.678901",
        "2024-01-02 03:04:05.678901+00", "2024-01-02", "\\x0102ff", "1 year 2 mons 3 days 04:05:06.78",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "{\"a\": 1}", "{1,NULL,3}", "large",
    ];

    private static (JsonNode After, JsonNode Schema, Captured Record) Insert(string?[] row, params (string, string)[] settings)
    {
        var records = Produce(Config(settings), 1_700_000_000_000_000, Transaction(9, 1000, 1_700_000_000_000_000, Payload(s_types, new Row(ChangeOp.Insert, 900, row))));
        var record = records[0];
        var value = JsonNode.Parse(record.ValueText)!;
        return (value["payload"]!["after"]!, value["schema"]!["fields"]![1]!, record);
    }

    private static JsonNode FieldSchema(JsonNode valueSchema, string name) => valueSchema["fields"]!.AsArray().Single(f => (string)f!["field"]! == name)!;

    [Fact]
    public void Defaults_map_like_Debezium()
    {
        var (after, schema, _) = Insert(s_row);
        Assert.Equal("AeI6", (string?)after["n"]); // 123450 unscaled, big-endian two's complement
        Assert.Equal("org.apache.kafka.connect.data.Decimal", (string?)FieldSchema(schema, "n")["name"]);
        Assert.Equal("2", (string?)FieldSchema(schema, "n")["parameters"]!["scale"]);
        Assert.Equal("12", (string?)FieldSchema(schema, "n")["parameters"]!["connect.decimal.precision"]);
        Assert.Equal("""{"scale":1,"value":"fQ=="}""", after["v"]!.ToJsonString()); // trailing zeros stripped
        Assert.Equal("io.debezium.data.VariableScaleDecimal", (string?)FieldSchema(schema, "v")["name"]);
        Assert.Equal(45296789, (long)after["t"]!);
        Assert.Equal("io.debezium.time.Time", (string?)FieldSchema(schema, "t")["name"]);
        Assert.Equal(45296789012, (long)after["tu"]!);
        Assert.Equal("io.debezium.time.MicroTime", (string?)FieldSchema(schema, "tu")["name"]);
        Assert.Equal(1704164645678, (long)after["ts"]!);
        Assert.Equal("io.debezium.time.Timestamp", (string?)FieldSchema(schema, "ts")["name"]);
        Assert.Equal(1704164645678901, (long)after["tsu"]!);
        Assert.Equal("io.debezium.time.MicroTimestamp", (string?)FieldSchema(schema, "tsu")["name"]);
        Assert.Equal("2024-01-02T03:04:05.678901Z", (string?)after["tz"]);
        Assert.Equal("io.debezium.time.ZonedTimestamp", (string?)FieldSchema(schema, "tz")["name"]);
        Assert.Equal(19724, (int)after["d"]!);
        Assert.Equal("io.debezium.time.Date", (string?)FieldSchema(schema, "d")["name"]);
        Assert.Equal("AQL/", (string?)after["b"]);
        Assert.Equal(37091106780000, (long)after["i"]!);
        Assert.Equal("io.debezium.time.MicroDuration", (string?)FieldSchema(schema, "i")["name"]);
        Assert.Equal("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", (string?)after["u"]);
        Assert.Equal("io.debezium.data.Uuid", (string?)FieldSchema(schema, "u")["name"]);
        Assert.Equal("{\"a\": 1}", (string?)after["j"]);
        Assert.Equal("io.debezium.data.Json", (string?)FieldSchema(schema, "j")["name"]);
        Assert.Equal("[1,null,3]", after["arr"]!.ToJsonString());
        Assert.Equal("array", (string?)FieldSchema(schema, "arr")["type"]);
        Assert.True((bool)FieldSchema(schema, "arr")["items"]!["optional"]!);
    }

    [Theory]
    [InlineData("double", "1234.5", "12.5")]
    [InlineData("string", "\"1234.50\"", "\"12.500\"")]
    public void Decimal_handling_mode(string mode, string fixedScale, string variable)
    {
        var (after, schema, _) = Insert(s_row, ("decimal.handling.mode", mode));
        Assert.Equal(fixedScale, after["n"]!.ToJsonString());
        Assert.Equal(variable, after["v"]!.ToJsonString());
        Assert.Equal(mode == "double" ? "double" : "string", (string?)FieldSchema(schema, "v")["type"]);
    }

    [Theory]
    [InlineData("precise", "null", true)]
    [InlineData("double", "\"NaN\"", false)]
    [InlineData("string", "\"NAN\"", false)]
    public void NaN_follows_Debezium_where_it_has_a_rule_and_is_kept_in_a_header_otherwise(string mode, string expected, bool inHeader)
    {
        var row = (string?[])s_row.Clone();
        row[2] = "NaN";
        var (after, _, record) = Insert(row, ("decimal.handling.mode", mode));
        Assert.Equal(expected, after["v"]?.ToJsonString() ?? "null");
        Assert.Equal(inHeader ? """{"after.v":"NaN"}""" : null, record.Header("walbridge.special"));
    }

    [Theory]
    [InlineData("adaptive_time_microseconds", 45296789000, "io.debezium.time.MicroTime", 1704164645678, "io.debezium.time.Timestamp")]
    [InlineData("connect", 45296789, "org.apache.kafka.connect.data.Time", 1704164645678, "org.apache.kafka.connect.data.Timestamp")]
    public void Time_precision_mode(string mode, long time3, string timeName, long timestamp3, string timestampName)
    {
        var (after, schema, _) = Insert(s_row, ("time.precision.mode", mode));
        Assert.Equal(time3, (long)after["t"]!);
        Assert.Equal(timeName, (string?)FieldSchema(schema, "t")["name"]);
        Assert.Equal(timestamp3, (long)after["ts"]!);
        Assert.Equal(timestampName, (string?)FieldSchema(schema, "ts")["name"]);
        if (mode == "connect")
        {
            Assert.Equal(1704164645678, (long)after["tsu"]!);
            Assert.Equal(45296789, (long)after["tu"]!);
            Assert.Equal("org.apache.kafka.connect.data.Date", (string?)FieldSchema(schema, "d")["name"]);
        }
    }

    [Theory]
    [InlineData("base64", "AQL/")]
    [InlineData("base64-url-safe", "AQL_")]
    [InlineData("hex", "0102ff")]
    public void Binary_handling_mode(string mode, string expected)
    {
        var (after, schema, _) = Insert(s_row, ("binary.handling.mode", mode));
        Assert.Equal(expected, (string?)after["b"]);
        Assert.Equal("string", (string?)FieldSchema(schema, "b")["type"]);
    }

    [Fact]
    public void Interval_handling_mode_string_is_ISO_8601()
    {
        var (after, schema, _) = Insert(s_row, ("interval.handling.mode", "string"));
        Assert.Equal("P1Y2M3DT4H5M6.78S", (string?)after["i"]);
        Assert.Equal("io.debezium.time.Interval", (string?)FieldSchema(schema, "i")["name"]);
    }

    [Fact]
    public void Infinity_timestamps_follow_Debezium()
    {
        var row = (string?[])s_row.Clone();
        row[6] = "infinity";
        row[7] = "-infinity";
        var (after, _, record) = Insert(row);
        Assert.Equal(9223372036825200000, (long)after["tsu"]!);
        Assert.Equal("-infinity", (string?)after["tz"]);
        Assert.Null(record.Header("walbridge.special"));
    }

    [Fact]
    public void Values_without_a_Debezium_rule_are_null_with_PostgreSQL_text_in_a_header()
    {
        var row = (string?[])s_row.Clone();
        row[13] = "{{1,2},{3,4}}";
        row[8] = "infinity";
        var (after, _, record) = Insert(row);
        Assert.Null(after["arr"]);
        Assert.Null(after["d"]);
        var special = JsonNode.Parse(record.Header("walbridge.special")!)!;
        Assert.Equal("{{1,2},{3,4}}", (string?)special["after.arr"]);
        Assert.Equal("infinity", (string?)special["after.d"]);
    }

    [Fact]
    public void Unchanged_TOAST_values_carry_the_placeholder()
    {
        var row = (string?[])s_row.Clone();
        row[14] = Unchanged;
        var records = Produce(Config(("unavailable.value.placeholder", "__gone")), 1, Transaction(9, 1000, 1, Payload(s_types, new Row(ChangeOp.Update, 900, row))));
        var after = JsonNode.Parse(records[0].ValueText)!["payload"]!["after"]!;
        Assert.Equal("__gone", (string?)after["big"]);
        Assert.Equal("""["big"]""", records[0].Header("walbridge.unchanged"));
    }

    [Fact]
    public void A_changed_primary_key_is_a_delete_a_tombstone_and_a_create()
    {
        var payload = Payload(Customers(), new Row(ChangeOp.Update, 500, ["2", "Anne", "K", "a@x"], Before: ["1", null, null, null]));
        var records = Produce(Config(("output.debezium-json.schemas.enable", "false")), 1, Transaction(9, 1000, 1, payload));
        Assert.Equal(3, records.Count);
        Assert.Equal("d", (string?)JsonNode.Parse(records[0].ValueText)!["op"]);
        Assert.Equal("""{"id":1}""", records[0].KeyText);
        Assert.Equal("""{"id":2}""", records[0].Header("__debezium.newkey"));
        Assert.Null(records[1].Value);
        Assert.Equal("""{"id":1}""", records[1].KeyText);
        Assert.Equal("c", (string?)JsonNode.Parse(records[2].ValueText)!["op"]);
        Assert.Equal("""{"id":2}""", records[2].KeyText);
        Assert.Equal("""{"id":1}""", records[2].Header("__debezium.oldkey"));
    }

    [Fact]
    public void Transaction_metadata_brackets_the_events_with_BEGIN_and_END_counts()
    {
        var orders = new PgRelation(16400, "public", "orders", 'd', [new PgColumn("id", PgOid.Int8, -1, true)]);
        var transaction = Transaction(571, 53195832, 1486500577125000,
            Payload(Customers(), new Row(ChangeOp.Insert, 53195829, ["1", "a", "b", "c"]), new Row(ChangeOp.Insert, 53195830, ["2", "a", "b", "c"])),
            Payload(orders, new Row(ChangeOp.Insert, 53195831, ["9"])));
        var records = Produce(Config(("output.debezium-json.schemas.enable", "false"), ("provide.transaction.metadata", "true")), 1, transaction);
        Assert.Equal(5, records.Count);
        Assert.All(new[] { records[0], records[4] }, r => Assert.Equal("PostgreSQL_server.transaction", r.Topic));
        var begin = JsonNode.Parse(records[0].ValueText)!;
        Assert.Equal("BEGIN", (string?)begin["status"]);
        Assert.Equal("571:53195832", (string?)begin["id"]);
        Assert.Equal(1486500577125, (long)begin["ts_ms"]!);
        Assert.Equal("""{"id":"571:53195832"}""", records[0].KeyText);
        var end = JsonNode.Parse(records[4].ValueText)!;
        Assert.Equal("END", (string?)end["status"]);
        Assert.Equal(3, (long)end["event_count"]!);
        Assert.Equal("""[{"data_collection":"public.customers","event_count":2},{"data_collection":"public.orders","event_count":1}]""", end["data_collections"]!.ToJsonString());
        var third = JsonNode.Parse(records[3].ValueText)!["transaction"]!;
        Assert.Equal("""{"id":"571:53195832","total_order":3,"data_collection_order":1}""", third.ToJsonString());
    }

    [Fact]
    public void Several_formats_get_suffixes_and_only_Debezium_formats_keep_the_plain_names()
    {
        var both = Config(("output.formats", "arrow,debezium-json,debezium-avro"), ("schema.registry.url", "http://127.0.0.1:9"));
        Assert.Equal("", both.Output.TopicSuffixes[Configuration.OutputFormat.Arrow]);
        Assert.Equal(".json", both.Output.TopicSuffixes[Configuration.OutputFormat.DebeziumJson]);
        Assert.Equal(".avro", both.Output.TopicSuffixes[Configuration.OutputFormat.DebeziumAvro]);
        var records = Produce(Config(("output.formats", "arrow,debezium-json")), 1, Transaction(9, 1000, 1, Payload(Customers(), new Row(ChangeOp.Insert, 900, ["1", "a", "b", "c"]))));
        Assert.Equal("PostgreSQL_server.public.customers.json", Assert.Single(records).Topic);
    }
}
