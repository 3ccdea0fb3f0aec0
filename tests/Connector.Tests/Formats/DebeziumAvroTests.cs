using Avro.Generic;
using Confluent.Kafka;
using Confluent.SchemaRegistry;
using Confluent.SchemaRegistry.Serdes;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Formats;
using WalBridge.SchemaRegistry;
using WalBridge.Serialization.Postgres;
using static WalBridge.Connector.Tests.Formats.FormatTestData;

namespace WalBridge.Connector.Tests.Formats;

/// <summary>
/// Issue 13: debezium-avro records decoded by Confluent's Avro deserializer (Apache.Avro, schemas fetched from the
/// registry by the id in the wire format): an implementation WalBridge did not write. Schema evolution through the test
/// registry, a refused incompatible schema, and the registry down.
/// </summary>
public sealed class DebeziumAvroTests : IAsyncLifetime
{
    private LocalSchemaRegistry _registry = null!;

    public async Task InitializeAsync() => _registry = await LocalSchemaRegistry.StartOrExternalAsync();

    public async Task DisposeAsync() => await _registry.DisposeAsync();

    private Configuration.ConnectorConfig Avro(string prefix, params (string, string)[] more) =>
        Config([("output.formats", "debezium-avro"), ("schema.registry.url", _registry.Url), ("topic.prefix", prefix), .. more]);

    private static string Prefix() => "avro" + Guid.NewGuid().ToString("N")[..8];

    private GenericRecord? Decode(Captured record, string topic, bool key = false)
    {
        using var client = new CachedSchemaRegistryClient(new SchemaRegistryConfig { Url = _registry.Url });
        var deserializer = new AvroDeserializer<GenericRecord>(client);
        var bytes = key ? record.Key : record.Value;
        return bytes is null ? null : deserializer.DeserializeAsync(bytes, false, new SerializationContext(key ? MessageComponentType.Key : MessageComponentType.Value, topic)).GetAwaiter().GetResult();
    }

    [Fact]
    public async Task Records_decode_with_Confluents_deserializer_and_carry_Debeziums_names()
    {
        var prefix = Prefix();
        var payload = Payload(Customers(), new Row(ChangeOp.Insert, 24023128, ["1", "Anne", "Kretchmar", "annek@noanswer.org"]),
            new Row(ChangeOp.Delete, 24023130, ["1", null, null, null]));
        var records = Produce(Avro(prefix), 1559033904863841, Transaction(555, 24023200, 1559033904863123, payload));
        var topic = $"{prefix}.public.customers";
        Assert.Equal(3, records.Count);
        Assert.All(records, r => Assert.Equal(topic, r.Topic));
        Assert.Equal(0, records[0].Value![0]); // Confluent's magic byte

        var key = Decode(records[0], topic, key: true)!;
        Assert.Equal($"{prefix}.public.customers.Key", key.Schema.Fullname);
        Assert.Equal(1, key["id"]);
        var insert = Decode(records[0], topic)!;
        Assert.Equal($"{prefix}.public.customers.Envelope", insert.Schema.Fullname);
        Assert.Equal("c", insert["op"]);
        Assert.Null(insert["before"]);
        var after = (GenericRecord)insert["after"];
        Assert.Equal($"{prefix}.public.customers.Value", after.Schema.Fullname);
        Assert.Equal("Anne", after["first_name"]);
        var source = (GenericRecord)insert["source"];
        Assert.Equal("io.debezium.connector.postgresql.Source", source.Schema.Fullname);
        Assert.Equal(555L, source["txId"]);
        Assert.Equal(24023128L, source["lsn"]);
        Assert.Equal("false", source["snapshot"]);
        Assert.Equal(1559033904863L, source["ts_ms"]);

        var delete = Decode(records[1], topic)!;
        Assert.Equal("d", delete["op"]);
        Assert.Equal(1, ((GenericRecord)delete["before"])["id"]);
        Assert.Null(records[2].Value); // tombstone

        using var client = new CachedSchemaRegistryClient(new SchemaRegistryConfig { Url = _registry.Url });
        var subjects = await client.GetAllSubjectsAsync();
        Assert.Contains($"{topic}-key", subjects);
        Assert.Contains($"{topic}-value", subjects);
    }

    [Fact]
    public void Type_switches_reach_the_Avro_reader()
    {
        var prefix = Prefix();
        var relation = new PgRelation(20, "public", "t", 'd',
        [
            new PgColumn("id", PgOid.Int2, -1, true),
            new PgColumn("n", PgOid.Numeric, ((12 << 16) | 2) + 4, false),
            new PgColumn("tz", PgOid.TimestampTz, -1, false),
            new PgColumn("b", PgOid.Bytea, -1, false),
            new PgColumn("arr", PgOid.TextArray, -1, false),
            new PgColumn("f", PgOid.Float8, -1, false),
        ]);
        var payload = Payload(relation, new Row(ChangeOp.Insert, 10, ["3", "-12.34", "2024-01-02 03:04:05.6+00", "\\x00ff", "{a,NULL,\"b c\"}", "NaN"]));
        var records = Produce(Avro(prefix, ("decimal.handling.mode", "string"), ("binary.handling.mode", "hex")), 1, Transaction(9, 100, 1, payload));
        var after = (GenericRecord)Decode(records[0], $"{prefix}.public.t")!["after"];
        Assert.Equal(3, after["id"]);
        Assert.Equal("-12.34", after["n"]);
        Assert.Equal("2024-01-02T03:04:05.600000Z", after["tz"]);
        Assert.Equal("00ff", after["b"]);
        Assert.Equal(new object?[] { "a", null, "b c" }, (object?[])after["arr"]);
        Assert.True(double.IsNaN((double)after["f"]));

        var precise = Produce(Avro(Prefix()), 1, Transaction(9, 100, 1, payload));
        var preciseTopic = precise[0].Topic;
        var decimalValue = ((GenericRecord)Decode(precise[0], preciseTopic)!["after"])["n"];
        Assert.Equal(new Avro.AvroDecimal(-12.34m), decimalValue);
    }

    [Fact]
    public async Task Added_column_registers_the_next_version_and_a_retyped_one_is_refused()
    {
        var prefix = Prefix();
        var v1 = new PgRelation(30, "public", "evolve", 'd', [new PgColumn("id", PgOid.Int4, -1, true), new PgColumn("x", PgOid.Int4, -1, false)]);
        var v2 = v1 with { Columns = [.. v1.Columns, new PgColumn("added", PgOid.Text, -1, false)] };
        var v3 = v1 with { Columns = [v1.Columns[0], new PgColumn("x", PgOid.Text, -1, false)] };
        var config = Avro(prefix);
        using (var formats = new OutputFormats(config, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance))
        {
            var sink = new CapturingSink();
            foreach (var relation in new[] { v1, v2 })
            {
                var transaction = Transaction(9, 100, 1, Payload(relation, new Row(ChangeOp.Insert, 10, [.. relation.Columns.Select(_ => "1")])));
                PrepareGroup(formats, config, transaction);
                ProduceGroup(formats, config, transaction, sink);
            }
            var subject = $"{prefix}.public.evolve-value";
            using var client = new CachedSchemaRegistryClient(new SchemaRegistryConfig { Url = _registry.Url });
            Assert.Equal([1, 2], await client.GetSubjectVersionsAsync(subject));
            var newer = (GenericRecord)Decode(sink.Records[1], $"{prefix}.public.evolve")!["after"];
            Assert.Equal("1", newer["added"]);

            var incompatible = Transaction(9, 100, 1, Payload(v3, new Row(ChangeOp.Insert, 10, ["1", "text"])));
            var e = Assert.Throws<SchemaRegistrationException>(() => PrepareGroup(formats, config, incompatible));
            Assert.False(e.IsTransient);
            Assert.Equal(FailureKind.Fatal, FailureClassification.Classify(e));
            Assert.Equal(subject, e.Subject);
            Assert.Equal(409, e.HttpStatus);
            Assert.Contains("version 2", e.Message, StringComparison.Ordinal);
            Assert.Contains(subject, e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Registry_down_is_transient_and_registration_succeeds_once_it_is_back()
    {
        if (_registry.IsExternal)
        {
            return; // a real registry cannot be stopped from here
        }

        var prefix = Prefix();
        var config = Avro(prefix);
        var transaction = Transaction(9, 100, 1, Payload(Customers(), new Row(ChangeOp.Insert, 10, ["1", "a", "b", "c"])));
        await _registry.StopAsync();
        using (var formats = new OutputFormats(config, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance))
        {
            var e = Assert.Throws<SchemaRegistrationException>(() => PrepareGroup(formats, config, transaction));
            Assert.True(e.IsTransient);
            Assert.Equal(FailureKind.Transient, FailureClassification.Classify(e));
        }
        await _registry.RestartAsync();
        using (var formats = new OutputFormats(config, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance))
        {
            PrepareGroup(formats, config, transaction);
            var sink = new CapturingSink();
            ProduceGroup(formats, config, transaction, sink);
            Assert.Equal("a", ((GenericRecord)Decode(sink.Records[0], $"{prefix}.public.customers")!["after"])["first_name"]);
        }
    }

    [Fact]
    public async Task Credentials_the_registry_refuses_are_fatal()
    {
        await using var secured = await LocalSchemaRegistry.StartAsync("user:secret");
        var config = Config(("output.formats", "debezium-avro"), ("schema.registry.url", secured.Url), ("schema.registry.basic.auth.user.info", "user:wrong"), ("topic.prefix", Prefix()));
        using var formats = new OutputFormats(config, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        var transaction = Transaction(9, 100, 1, Payload(Customers(), new Row(ChangeOp.Insert, 10, ["1", "a", "b", "c"])));
        var e = Assert.Throws<SchemaRegistrationException>(() => PrepareGroup(formats, config, transaction));
        Assert.False(e.IsTransient);
        Assert.Equal(401, e.HttpStatus);

        var good = Config(("output.formats", "debezium-avro"), ("schema.registry.url", secured.Url), ("schema.registry.basic.auth.user.info", "user:secret"), ("topic.prefix", Prefix()));
        using var allowed = new OutputFormats(good, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        PrepareGroup(allowed, good, transaction);
    }
}
