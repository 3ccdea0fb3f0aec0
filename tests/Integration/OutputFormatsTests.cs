using System.Text;
using System.Text.Json.Nodes;
using Avro.Generic;
using Confluent.Kafka;
using Confluent.SchemaRegistry;
using Confluent.SchemaRegistry.Serdes;
using Npgsql;
using WalBridge.Connector.Kafka;
using WalBridge.Offsets;
using WalBridge.SchemaRegistry;

namespace WalBridge.Integration.Tests;

/// <summary>
/// Issue 13, end to end through the real pipeline (PostgreSQL, pgoutput, the test broker, the test registry):
/// arrow, debezium-json and debezium-avro from one connector, each format's records committed with the same source
/// transactions (read_committed), in Debezium's shapes.
/// </summary>
[Collection(InfrastructureCollection.Name)]
public sealed class OutputFormatsTests(Infrastructure infrastructure)
{
    [Fact]
    public async Task Three_formats_carry_the_same_changes_in_the_same_Kafka_transactions()
    {
        await using var registry = await LocalSchemaRegistry.StartOrExternalAsync();
        var database = await infrastructure.CreateDatabaseAsync("formats");
        await infrastructure.Postgres.ExecuteAsync("CREATE TABLE items (id int4 PRIMARY KEY, label text, price numeric(10,2), at timestamptz)", database);
        var config = infrastructure.Config(database, "fmt", new Dictionary<string, string>
        {
            ["output.formats"] = "arrow,debezium-json,debezium-avro",
            ["schema.registry.url"] = registry.Url,
            ["output.debezium-json.schemas.enable"] = "false",
            ["provide.transaction.metadata"] = "true",
        });
        Lsn floor;
        await using (var pipeline = await RunningPipeline.StartAsync(config))
        {
            await using var connection = new NpgsqlConnection(infrastructure.Postgres.ConnectionString(database));
            await connection.OpenAsync();
            for (var t = 0; t < 5; t++)
            {
                await using var command = new NpgsqlCommand(FormattableString.Invariant(
                    $"INSERT INTO items VALUES ({t}, 'item {t}', {t}.50, '2024-01-01 00:00:0{t}+00'); UPDATE items SET label = 'changed' WHERE id = {t};"), connection);
                await command.ExecuteNonQueryAsync();
            }
            await using (var delete = new NpgsqlCommand("DELETE FROM items WHERE id = 0", connection))
            {
                await delete.ExecuteNonQueryAsync();
            }
            await using var lsn = new NpgsqlCommand("SELECT pg_current_wal_insert_lsn()::text", connection);
            floor = Lsn.Parse((string)(await lsn.ExecuteScalarAsync())!);
            await pipeline.WaitForCommittedAsync(floor, TimeSpan.FromSeconds(90));
        }

        var kafka = new Dictionary<string, string> { ["bootstrap.servers"] = infrastructure.Broker.BootstrapServers };
        var arrowLsns = new SortedSet<string>(TopicRows.Rows(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "items")).Select(r => r.CommitLsn.ToString()), StringComparer.Ordinal);
        Assert.Equal(6, arrowLsns.Count);

        var json = new List<(string? Op, string Lsn, bool Tombstone)>();
        OffsetsTopicReader.ReadToEnd(kafka, $"{config.TopicPrefix}.public.items.json", m =>
            json.Add((m.Message.Value is null ? null : (string?)JsonNode.Parse(m.Message.Value)!["op"], Header(m, "pg.commit_lsn")!, m.Message.Value is null)), CancellationToken.None);
        Assert.Equal(["c", "u", "c", "u", "c", "u", "c", "u", "c", "u", "d", null], json.Select(j => j.Op));
        Assert.True(json[^1].Tombstone);
        Assert.Equal(arrowLsns, new SortedSet<string>(json.Select(j => j.Lsn), StringComparer.Ordinal));

        using var client = new CachedSchemaRegistryClient(new SchemaRegistryConfig { Url = registry.Url });
        var deserializer = new AvroDeserializer<GenericRecord>(client);
        var avroTopic = $"{config.TopicPrefix}.public.items.avro";
        var avro = new List<GenericRecord?>();
        var avroLsns = new SortedSet<string>(StringComparer.Ordinal);
        OffsetsTopicReader.ReadToEnd(kafka, avroTopic, m =>
        {
            avroLsns.Add(Header(m, "pg.commit_lsn")!);
            avro.Add(m.Message.Value is null ? null
                : deserializer.DeserializeAsync(m.Message.Value, false, new SerializationContext(MessageComponentType.Value, avroTopic)).GetAwaiter().GetResult());
        }, CancellationToken.None);
        Assert.Equal(["c", "u", "c", "u", "c", "u", "c", "u", "c", "u", "d"], avro.Where(a => a is not null).Select(a => (string)a!["op"]));
        Assert.Equal("changed", ((GenericRecord)avro[1]!["after"])["label"]);
        Assert.Equal(new Avro.AvroDecimal(0.50m), ((GenericRecord)avro[0]!["after"])["price"]);
        Assert.Equal(arrowLsns, avroLsns);

        var transactions = new List<string>();
        OffsetsTopicReader.ReadToEnd(kafka, $"{config.TopicPrefix}.transaction.json", m => transactions.Add((string)JsonNode.Parse(m.Message.Value!)!["status"]!), CancellationToken.None);
        Assert.Equal(12, transactions.Count);
        Assert.Equal(6, transactions.Count(s => s == "END"));
    }

    private static string? Header(ConsumeResult<byte[]?, byte[]?> message, string name) =>
        message.Message.Headers.TryGetLastBytes(name, out var bytes) ? Encoding.UTF8.GetString(bytes) : null;
}
