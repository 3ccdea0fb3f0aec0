using System.Text;
using System.Text.Json.Nodes;
using Avro.Generic;
using Confluent.Kafka;
using Confluent.SchemaRegistry;
using Confluent.SchemaRegistry.Serdes;
using Npgsql;
using WalBridge.Connector.Kafka;
using WalBridge.Connector.Verification;
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

        // verify rebuilds the table from every format (the Debezium ones from their events) and compares each with the source.
        var report = await PipelineVerifier.VerifyAsync(config, null, CancellationToken.None);
        Assert.True(report.Passed, string.Join("\n", report.Tables.SelectMany(t => t.Differences).Concat(report.OffsetProblems)));
        Assert.Equal(["arrow", "debezium-json", "debezium-avro"], report.Tables.Select(t => t.Format));
        Assert.All(report.Tables, t => Assert.Equal(4, t.SourceRows));
    }

    [Fact]
    public async Task Verify_rebuilds_every_type_from_both_Debezium_formats()
    {
        await using var registry = await LocalSchemaRegistry.StartOrExternalAsync();
        var database = await infrastructure.CreateDatabaseAsync("fmttypes");
        await infrastructure.Postgres.ExecuteAsync("""
            CREATE TABLE kinds (id int8 PRIMARY KEY, s int2, f4 real, f8 float8, n numeric, n2 numeric(12,3), b bool, by bytea, d date, t time, t3 time(3),
                                ts timestamp, ts3 timestamp(3), tz timestamptz, u uuid, j jsonb, ta text[], ia int4[], iv interval, big text, e varchar(20),
                                gen int8 GENERATED ALWAYS AS (id * 2) STORED);
            ALTER TABLE kinds ALTER COLUMN big SET STORAGE EXTERNAL;
            CREATE TABLE bag (a int4, b text);
            ALTER TABLE bag REPLICA IDENTITY FULL;
            """, database);
        var config = infrastructure.Config(database, "fmk", new Dictionary<string, string>
        {
            ["output.formats"] = "arrow,debezium-json,debezium-avro",
            ["schema.registry.url"] = registry.Url,
            ["topic.partitions"] = "2",
            ["skipped.operations"] = "none",
        });
        await using (var pipeline = await RunningPipeline.StartAsync(config))
        {
            await infrastructure.Postgres.ExecuteAsync("""
                INSERT INTO kinds VALUES
                  (1, -3, 1.5, 0.1, 'NaN', 12.5, true, '\x00ff', '2024-02-29', '12:34:56.789012', '01:02:03.4', '2024-01-02 03:04:05.678901', '1999-12-31 23:59:59.9',
                   '2024-06-01 12:00:00.5+02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k": [1, 2.5]}', '{a,NULL,"b c",""}', '{1,NULL,3}', '1 year 2 mons 3 days', repeat('x', 10000), 'é'),
                  (2, NULL, 'Infinity', 1e20, 123.456, -0.001, false, '', '0044-03-15 BC', '24:00:00', NULL, 'infinity', '-infinity',
                   '1970-01-01 00:00:00+00', NULL, 'null', '{}', '{}', NULL, 'short', NULL),
                  (3, 7, -0.25, 1e-7, 1e30, 0, NULL, NULL, NULL, '00:00:00', NULL, '0001-01-01 00:00:00', NULL, NULL, NULL, NULL, NULL, NULL, '-5 minutes', NULL, 'x'),
                  (4, 1, 1, 1, 1, 1, true, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
                -- 2.5893367489750208e+16 is halfway to a neighbour at 16 digits: PostgreSQL prints 17.
                UPDATE kinds SET s = 99, f8 = 2.5893367489750208e+16 WHERE id = 1;
                UPDATE kinds SET id = 10 WHERE id = 3;
                DELETE FROM kinds WHERE id = 4;
                ALTER TABLE kinds ADD COLUMN added text;
                UPDATE kinds SET added = 'new' WHERE id = 1;
                INSERT INTO bag VALUES (1, 'a'), (1, 'a'), (2, NULL);
                UPDATE bag SET b = 'z' WHERE a = 2;
                DELETE FROM bag WHERE ctid = (SELECT min(ctid) FROM bag WHERE a = 1);
                """, database);
            var floor = Lsn.Parse(await infrastructure.Postgres.ScalarAsync<string>("SELECT pg_current_wal_insert_lsn()::text", database));
            await pipeline.WaitForCommittedAsync(floor, TimeSpan.FromSeconds(90));
        }

        var lines = new List<string>();
        var report = await PipelineVerifier.VerifyAsync(config, lines.Add, CancellationToken.None);
        Assert.True(report.Passed, string.Join("\n", lines));
        Assert.Equal(6, report.Tables.Count);
        var json = report.Tables.Single(t => t.Format == "debezium-json" && t.Table == "public.kinds");
        Assert.Equal(3, json.SourceRows);
        Assert.Equal(["iv"], json.Uncompared.Keys);

        // A change the connector did not stream (it is stopped) is a difference in every format's rebuilt table.
        await infrastructure.Postgres.ExecuteAsync("UPDATE kinds SET ts3 = '1999-12-31 23:59:59.8' WHERE id = 1", database);
        var changed = await PipelineVerifier.VerifyAsync(config, null, CancellationToken.None);
        Assert.Equal(["arrow", "debezium-json", "debezium-avro"], changed.Tables.Where(t => !t.Matches).Select(t => t.Format));
        Assert.All(changed.Tables.Where(t => !t.Matches), t => Assert.Equal("ts3", Assert.Single(t.Mismatches).Column));
    }

    [Fact]
    public async Task Debezium_events_share_their_Arrow_rows_partitions_and_verify_replays_only_the_Arrow_topics()
    {
        await using var registry = await LocalSchemaRegistry.StartOrExternalAsync();
        var database = await infrastructure.CreateDatabaseAsync("fmtparts");
        await infrastructure.Postgres.ExecuteAsync("CREATE TABLE items (id int4 PRIMARY KEY, label text)", database);
        var config = infrastructure.Config(database, "fmp", new Dictionary<string, string>
        {
            ["output.formats"] = "arrow,debezium-json,debezium-avro",
            ["schema.registry.url"] = registry.Url,
            ["output.debezium-json.schemas.enable"] = "false",
            ["topic.partitions"] = "3",
            ["skipped.operations"] = "none",
        });
        await using (var pipeline = await RunningPipeline.StartAsync(config))
        {
            await infrastructure.Postgres.ExecuteAsync("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 30) g", database);
            // Primary-key changes: most move their key to another partition.
            await infrastructure.Postgres.ExecuteAsync("UPDATE items SET id = id + 100 WHERE id <= 10", database);
            await infrastructure.Postgres.ExecuteAsync("DELETE FROM items WHERE id = 30", database);
            await infrastructure.Postgres.ExecuteAsync("TRUNCATE items", database);
            await infrastructure.Postgres.ExecuteAsync("INSERT INTO items VALUES (1, 'again'), (2, 'again')", database);
            var floor = Lsn.Parse(await infrastructure.Postgres.ScalarAsync<string>("SELECT pg_current_wal_insert_lsn()::text", database));
            await pipeline.WaitForCommittedAsync(floor, TimeSpan.FromSeconds(90));
        }

        var kafka = new Dictionary<string, string> { ["bootstrap.servers"] = infrastructure.Broker.BootstrapServers };
        var jsonTopic = $"{config.TopicPrefix}.public.items.json";
        using (var admin = new AdminClientBuilder(new AdminClientConfig(kafka)).Build())
        {
            var metadata = admin.GetMetadata(TimeSpan.FromSeconds(10));
            Assert.Equal(3, metadata.Topics.Single(t => t.Topic == jsonTopic).Partitions.Count);
            Assert.Equal(3, metadata.Topics.Single(t => t.Topic == $"{config.TopicPrefix}.public.items.avro").Partitions.Count);
        }

        // Where the Arrow rows of each key are (inserts and updates carry the new key, deletes the old one).
        var arrowPartition = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var row in TopicRows.Rows(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "items")).Where(r => r.Op != "t"))
        {
            var id = row.Text("id")!;
            Assert.True(arrowPartition.TryAdd(id, row.Record.Partition) || arrowPartition[id] == row.Record.Partition, $"key {id} is in two Arrow partitions");
        }

        var events = new List<(int Partition, string Key, string? Op, string? Lsn)>();
        OffsetsTopicReader.ReadToEnd(kafka, jsonTopic, m =>
        {
            var key = m.Message.Key is null ? "null" : Encoding.UTF8.GetString(m.Message.Key);
            var value = m.Message.Value is null ? null : JsonNode.Parse(m.Message.Value)!;
            events.Add((m.Partition.Value, key, (string?)value?["op"], value?["source"]?["lsn"]?.ToString()));
        }, CancellationToken.None);
        foreach (var e in events.Where(e => e.Key != "null"))
        {
            var id = JsonNode.Parse(e.Key)!["id"]!.ToString();
            Assert.Equal(arrowPartition[id], e.Partition);
        }

        var ops = events.Where(e => e.Op is not null).GroupBy(e => e.Op!).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(30 + 10 + 2, ops["c"]); // inserts, and the creates of the ten changed keys
        Assert.Equal(10 + 1, ops["d"]);      // the deletes of the ten old keys (not twice), the delete of 30
        Assert.Equal(1, ops["t"]);           // one truncate event, although every partition has the truncate row
        Assert.False(ops.ContainsKey("u"));
        Assert.Equal(11, events.Count(e => e.Op is null));
        // A primary-key change's delete, tombstone and create share the change's LSN.
        foreach (var change in events.Where(e => e.Op == "d").GroupBy(e => e.Lsn).Where(g => events.Count(e => e.Lsn == g.Key && e.Op == "c") == 1))
        {
            Assert.Single(change);
        }

        var report = await PipelineVerifier.VerifyAsync(config, null, CancellationToken.None);
        Assert.True(report.Passed, string.Join("\n", report.Tables.SelectMany(t => t.Differences).Concat(report.OffsetProblems)));
        Assert.Equal([("arrow", "public.items"), ("debezium-json", "public.items"), ("debezium-avro", "public.items")], report.Tables.Select(t => (t.Format, t.Table)));
    }

    private static string? Header(ConsumeResult<byte[]?, byte[]?> message, string name) =>
        message.Message.Headers.TryGetLastBytes(name, out var bytes) ? Encoding.UTF8.GetString(bytes) : null;
}
