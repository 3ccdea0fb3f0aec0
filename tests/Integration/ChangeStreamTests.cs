using System.Text;
using Apache.Arrow;
using Apache.Arrow.Types;
using Confluent.Kafka;
using Npgsql;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Kafka;
using WalBridge.Connector.Verification;
using WalBridge.Offsets;
using WalBridge.Serialization.Payload;
using WalBridge.Tests;

namespace WalBridge.Integration.Tests;

/// <summary>Issue 5: TOAST, schema changes, truncate, logical messages and the types met in the wild.</summary>
[Collection(InfrastructureCollection.Name)]
public sealed class ChangeStreamTests(Infrastructure infrastructure)
{
    private static readonly TimeSpan s_catchUp = TimeSpan.FromSeconds(90);

    private sealed record Record(string Kind, Lsn CommitLsn, int Chunk, string? Fingerprint, ArrowPayload? Stream, byte[] Value, Headers Headers);

    [Fact]
    public async Task An_unchanged_toasted_value_is_marked_unchanged_and_filled_under_replica_identity_full()
    {
        var database = await infrastructure.CreateDatabaseAsync("toast");
        await infrastructure.Postgres.ExecuteAsync("""
            CREATE TABLE docs (id int PRIMARY KEY, title text, body text);
            CREATE TABLE docs_full (id int PRIMARY KEY, title text, body text);
            ALTER TABLE docs_full REPLICA IDENTITY FULL;
            ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
            ALTER TABLE docs_full ALTER COLUMN body SET STORAGE EXTERNAL;
            """, database);
        var config = infrastructure.Config(database, "toast", new Dictionary<string, string> { ["kafka.message.max.bytes"] = "8000000" });
        var body = string.Concat(Enumerable.Range(0, 40_000).Select(i => Guid.NewGuid().ToString("N")))[..1_000_000];
        await using (var pipeline = await RunningPipeline.StartAsync(config))
        {
            foreach (var table in new[] { "docs", "docs_full" })
            {
                await using var connection = new NpgsqlConnection(infrastructure.Postgres.ConnectionString(database));
                await connection.OpenAsync();
                await using (var insert = new NpgsqlCommand($"INSERT INTO {table} VALUES (1, 'first', $1)", connection))
                {
                    insert.Parameters.Add(new NpgsqlParameter { Value = body });
                    await insert.ExecuteNonQueryAsync();
                }
                await using var update = new NpgsqlCommand($"UPDATE {table} SET title = 'second' WHERE id = 1", connection);
                await update.ExecuteNonQueryAsync();
            }
            await pipeline.WaitForCommittedAsync(await FloorAsync(database), s_catchUp);
        }

        var plain = Records(config.TopicFor("public", "docs")).Last();
        var updated = plain.Stream!.Batches.Single();
        Assert.Equal("u", updated.Column("_op").Value(0));
        Assert.True(updated.Column("body").IsNull(0), "the unchanged TOAST value must not be sent as a value under REPLICA IDENTITY DEFAULT");
        Assert.Equal(["body"], ((IReadOnlyList<object?>)updated.Column("_unchanged").Value(0)!).Cast<string>());
        Assert.Equal("second", updated.Column("title").Value(0));

        var full = Records(config.TopicFor("public", "docs_full")).Last().Stream!.Batches.Single();
        Assert.Equal(body, full.Column("body").Value(0));
        Assert.True(full.Column("_unchanged").IsNull(0));

        var report = await PipelineVerifier.VerifyAsync(config, null, CancellationToken.None);
        Assert.True(report.Passed, string.Join("\n", report.Tables.SelectMany(t => t.Differences)));
        await DropSlotAsync(config, database);
    }

    [Fact]
    public async Task Schema_changes_between_and_inside_transactions_give_each_payload_the_table_schema_of_its_moment()
    {
        var database = await infrastructure.CreateDatabaseAsync("ddl");
        await infrastructure.Postgres.ExecuteAsync("CREATE TABLE t (id int PRIMARY KEY, a text, b int)", database);
        var config = infrastructure.Config(database, "ddl");
        await using (var pipeline = await RunningPipeline.StartAsync(config))
        {
            await infrastructure.Postgres.ExecuteAsync("INSERT INTO t VALUES (1, 'one', 1)", database);
            await infrastructure.Postgres.ExecuteAsync("ALTER TABLE t ADD COLUMN c numeric(8,2)", database);
            await infrastructure.Postgres.ExecuteAsync("INSERT INTO t VALUES (2, 'two', 2, 2.5)", database);
            // Inside one transaction: rows before and after a DROP COLUMN.
            await infrastructure.Postgres.ExecuteAsync(
                "BEGIN; INSERT INTO t VALUES (3, 'three', 3, 3.5); ALTER TABLE t DROP COLUMN b; INSERT INTO t VALUES (4, 'four', 4.5); UPDATE t SET a = 'ONE' WHERE id = 1; COMMIT", database);
            // A type change rewrites existing rows without change events (logical decoding does not
            // decode table rewrites), so the rows are touched afterwards to stream their new values.
            await infrastructure.Postgres.ExecuteAsync("ALTER TABLE t ALTER COLUMN c TYPE bigint USING c::bigint", database);
            await infrastructure.Postgres.ExecuteAsync("INSERT INTO t VALUES (5, 'five', 5)", database);
            await infrastructure.Postgres.ExecuteAsync("ALTER TABLE t RENAME COLUMN a TO label", database);
            await infrastructure.Postgres.ExecuteAsync("INSERT INTO t VALUES (6, 'six', 6)", database);
            await infrastructure.Postgres.ExecuteAsync("UPDATE t SET c = c", database);
            await pipeline.WaitForCommittedAsync(await FloorAsync(database), s_catchUp);
        }

        var records = Records(config.TopicFor("public", "t"));
        string Shape(Record r) => string.Join(",", r.Stream!.Schema.FieldsList.Where(TopicReplay.IsTableColumn)
            .Select(f => $"{f.Name}:{f.DataType.Name}"));
        var shapes = records.Select(Shape).ToList();
        Assert.Equal(7, records.Count);
        Assert.StartsWith("id:", shapes[0], StringComparison.Ordinal);
        Assert.Equal(["id", "a", "b"], Names(records[0]));
        Assert.Equal(["id", "a", "b", "c"], Names(records[1]));
        // The transaction with the DROP COLUMN: two chunks, old then new schema, same commit LSN.
        Assert.Equal(["id", "a", "b", "c"], Names(records[2]));
        Assert.Equal(["id", "a", "c"], Names(records[3]));
        Assert.Equal(records[2].CommitLsn, records[3].CommitLsn);
        Assert.Equal([0, 1], new[] { records[2].Chunk, records[3].Chunk });
        Assert.Equal(2, records[3].Stream!.Batches.Single().Length);
        Assert.Contains("Decimal", records[3].Stream!.Schema.FieldsList.Single(f => f.Name == "c").DataType.Name, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("Int", records[4].Stream!.Schema.FieldsList.Single(f => f.Name == "c").DataType.Name, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(["id", "label", "c"], Names(records[5]));
        Assert.Equal(["id", "label", "c"], Names(records[6]));
        // The fingerprint changes exactly when the schema changes.
        for (var i = 1; i < records.Count; i++)
        {
            Assert.Equal(shapes[i] == shapes[i - 1], records[i].Fingerprint == records[i - 1].Fingerprint);
        }

        var report = await PipelineVerifier.VerifyAsync(config, null, CancellationToken.None);
        Assert.True(report.Passed, string.Join("\n", report.Tables.SelectMany(t => t.Differences)));
        await DropSlotAsync(config, database);
    }

    [Fact]
    public async Task Truncates_and_logical_messages_arrive_in_order_inside_their_transaction()
    {
        var database = await infrastructure.CreateDatabaseAsync("trunc");
        await infrastructure.Postgres.ExecuteAsync(
            "CREATE TABLE parent (id int PRIMARY KEY); CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent); CREATE TABLE solo (id serial PRIMARY KEY)", database);
        var config = infrastructure.Config(database, "trunc");
        await using (var pipeline = await RunningPipeline.StartAsync(config))
        {
            await infrastructure.Postgres.ExecuteAsync("""
                BEGIN;
                INSERT INTO parent VALUES (1), (2); INSERT INTO child VALUES (10, 1); INSERT INTO solo DEFAULT VALUES;
                SELECT pg_logical_emit_message(true, 'app.audit', 'before truncate');
                TRUNCATE parent, solo RESTART IDENTITY CASCADE;
                SELECT pg_logical_emit_message(true, 'app.audit', 'after truncate');
                INSERT INTO parent VALUES (3); INSERT INTO solo DEFAULT VALUES;
                COMMIT;
                """, database);
            await infrastructure.Postgres.ExecuteAsync("SELECT pg_logical_emit_message(false, 'app.audit', 'outside')", database);
            await infrastructure.Postgres.ExecuteAsync("TRUNCATE child", database);
            await pipeline.WaitForCommittedAsync(await FloorAsync(database), s_catchUp);
        }

        var parent = Records(config.TopicFor("public", "parent"));
        var child = Records(config.TopicFor("public", "child"));
        var solo = Records(config.TopicFor("public", "solo"));
        // parent: rows, truncate, rows — one source transaction, chunks 0..2 in order.
        Assert.Equal(["changes", "truncate", "changes"], parent.Select(r => r.Kind));
        Assert.Single(parent.Select(r => r.CommitLsn).Distinct());
        Assert.Equal([0, 1, 2], parent.Select(r => r.Chunk));
        Assert.Equal("cascade,restart_identity", Header(parent[1].Headers, KafkaHeaders.TruncateOptions));
        Assert.Equal(["changes", "truncate", "changes"], solo.Select(r => r.Kind));
        // child: truncated by CASCADE inside the first transaction, then on its own.
        Assert.Equal(["changes", "truncate", "truncate"], child.Select(r => r.Kind));
        Assert.Equal(parent[0].CommitLsn, child[1].CommitLsn);
        Assert.True(child[2].CommitLsn > child[1].CommitLsn);

        // (The test's own position markers are messages too, with another prefix.)
        var messages = Records(config.MessagesTopic).Where(m => Header(m.Headers, KafkaHeaders.MessagePrefix) == "app.audit").ToList();
        Assert.Equal(["before truncate", "after truncate", "outside"], messages.Select(m => Encoding.UTF8.GetString(m.Value)));
        Assert.Equal(["true", "true", "false"], messages.Select(m => Header(m.Headers, KafkaHeaders.MessageTransactional)));
        Assert.Equal(parent[0].CommitLsn, messages[0].CommitLsn);
        Assert.Equal(parent[0].CommitLsn, messages[1].CommitLsn);
        Assert.True(Lsn.Parse(Header(messages[0].Headers, KafkaHeaders.MessageLsn)!) < Lsn.Parse(Header(messages[1].Headers, KafkaHeaders.MessageLsn)!));
        Assert.True(messages[2].CommitLsn > messages[1].CommitLsn);

        var report = await PipelineVerifier.VerifyAsync(config, null, CancellationToken.None);
        Assert.True(report.Passed, string.Join("\n", report.Tables.SelectMany(t => t.Differences)));
        await DropSlotAsync(config, database);
    }

    [Fact]
    public async Task Types_met_in_the_wild_stream_without_stopping()
    {
        var database = await infrastructure.CreateDatabaseAsync("wild");
        await infrastructure.Postgres.ExecuteAsync("""
            CREATE TYPE mood AS ENUM ('sad', 'ok');
            CREATE DOMAIN scores AS int[] CHECK (array_length(VALUE, 1) < 10);
            CREATE DOMAIN positive AS int CHECK (VALUE > 0);
            CREATE TABLE nokey (v text, n int);
            ALTER TABLE nokey REPLICA IDENTITY FULL;
            CREATE TABLE generated (id int PRIMARY KEY, price numeric(10,2), doubled numeric(10,2) GENERATED ALWAYS AS (price * 2) STORED);
            CREATE TABLE typed (id int PRIMARY KEY, m mood, s scores, p positive, ms mood[]);
            """, database);
        var config = infrastructure.Config(database, "wild");
        await using (var pipeline = await RunningPipeline.StartAsync(config))
        {
            await infrastructure.Postgres.ExecuteAsync("""
                INSERT INTO nokey VALUES ('a', 1), ('a', 1), ('b', 2);
                UPDATE nokey SET n = 3 WHERE v = 'b';
                DELETE FROM nokey WHERE v = 'a';
                INSERT INTO generated (id, price) VALUES (1, 1.25), (2, 2.5);
                UPDATE generated SET price = 9.99 WHERE id = 2;
                INSERT INTO typed VALUES (1, 'sad', '{1,2}', 5, '{sad,ok}');
                """, database);
            // An enum value added while streaming.
            await infrastructure.Postgres.ExecuteAsync("ALTER TYPE mood ADD VALUE 'happy'", database);
            await infrastructure.Postgres.ExecuteAsync("INSERT INTO typed VALUES (2, 'happy', '{}', 7, '{happy}'); UPDATE typed SET m = 'happy' WHERE id = 1", database);
            await pipeline.WaitForCommittedAsync(await FloorAsync(database), s_catchUp);
        }

        var report = await PipelineVerifier.VerifyAsync(config, null, CancellationToken.None);
        Assert.True(report.Passed, string.Join("\n", report.Tables.SelectMany(t => t.Differences)));
        Assert.Equal(3, report.Tables.Count);
        var typed = Records(config.TopicFor("public", "typed")).Last().Stream!;
        Assert.Equal("happy", typed.Batches.Single().Column("m").Value(typed.Batches.Single().Length - 1));
        // Generated columns are not published by PostgreSQL 15's pgoutput; the rest of the row is.
        Assert.DoesNotContain(Records(config.TopicFor("public", "generated"))[0].Stream!.Schema.FieldsList, f => f.Name == "doubled");
        await DropSlotAsync(config, database);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Partitioned_tables_follow_publish_via_partition_root(bool viaRoot)
    {
        var database = await infrastructure.CreateDatabaseAsync("parts");
        await infrastructure.Postgres.ExecuteAsync("""
            CREATE TABLE measurements (id int, at date, v int, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
            CREATE TABLE measurements_2024 PARTITION OF measurements FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
            CREATE TABLE measurements_2025 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
            """, database);
        var config = infrastructure.Config(database, "parts", new Dictionary<string, string>
        {
            ["table.include.list"] = "public\\.measurements",
            ["publication.via.partition.root"] = viaRoot ? "true" : "false",
        });
        await using (var pipeline = await RunningPipeline.StartAsync(config))
        {
            await infrastructure.Postgres.ExecuteAsync(
                "INSERT INTO measurements VALUES (1, '2024-06-01', 10), (2, '2025-06-01', 20); UPDATE measurements SET v = 11 WHERE id = 1", database);
            await pipeline.WaitForCommittedAsync(await FloorAsync(database), s_catchUp);
        }

        if (viaRoot)
        {
            // Every partition's changes appear under the root table, in its one topic.
            var root = Records(config.TopicFor("public", "measurements"));
            Assert.Equal(3, root.Sum(r => r.Stream!.Batches.Sum(b => b.Length)));
            Assert.All(root, r => Assert.Equal("measurements", r.Stream!.Schema.Metadata.Single(m => m.Key == "pg.table").Value));
        }
        else
        {
            Assert.Equal(2, Records(config.TopicFor("public", "measurements_2024")).Sum(r => r.Stream!.Batches.Sum(b => b.Length)));
            Assert.Equal(1, Records(config.TopicFor("public", "measurements_2025")).Sum(r => r.Stream!.Batches.Sum(b => b.Length)));
        }
        await DropSlotAsync(config, database);
    }

    private List<Record> Records(string topic)
    {
        var records = new List<Record>();
        OffsetsTopicReader.ReadToEnd(new Dictionary<string, string> { ["bootstrap.servers"] = infrastructure.Broker.BootstrapServers }, topic, message =>
        {
            var headers = message.Message.Headers;
            var kind = Header(headers, KafkaHeaders.Kind)!;
            var value = message.Message.Value ?? [];
            records.Add(new Record(kind, Lsn.Parse(Header(headers, KafkaHeaders.CommitLsn)!),
                int.Parse(Header(headers, KafkaHeaders.ChunkIndex) ?? "0", System.Globalization.CultureInfo.InvariantCulture),
                Header(headers, KafkaHeaders.SchemaFingerprint), kind == "message" ? null : ArrowPayload.Read(value), value, headers));
        }, CancellationToken.None);
        return records;
    }

    private static string[] Names(Record record) => record.Stream!.Schema.FieldsList.Where(TopicReplay.IsTableColumn).Select(f => f.Name).ToArray();

    private static string? Header(Headers headers, string name) => headers.TryGetLastBytes(name, out var bytes) ? Encoding.UTF8.GetString(bytes) : null;

    /// <summary>A position before a fresh marker commit: committed past it means everything before arrived.</summary>
    private async Task<Lsn> FloorAsync(string database)
    {
        await using var connection = new NpgsqlConnection(infrastructure.Postgres.ConnectionString(database));
        await connection.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using var marker = new NpgsqlCommand("SELECT pg_logical_emit_message(true, 'test.marker', ''), pg_current_wal_insert_lsn()::text", connection, transaction);
        await using var reader = await marker.ExecuteReaderAsync();
        await reader.ReadAsync();
        var lsn = Lsn.Parse(reader.GetString(1));
        await reader.CloseAsync();
        await transaction.CommitAsync();
        return lsn;
    }

    private async Task DropSlotAsync(ConnectorConfig config, string database)
    {
        await infrastructure.Postgres.ExecuteAsync(
            $"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{config.SlotName}'", database);
        if (Directory.Exists(config.StateDirectory))
        {
            Directory.Delete(config.StateDirectory, recursive: true);
        }
    }
}
