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

    /// <summary>A record of the messages topic.</summary>
    private sealed record Record(string Kind, Lsn CommitLsn, byte[] Value, Headers Headers);

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
            await pipeline.WaitForCommittedAsync(await infrastructure.FloorAsync(database), s_catchUp);
        }

        var updated = TopicRows.Rows(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "docs")).Last();
        Assert.Equal("u", updated.Op);
        Assert.True(updated.IsNull("body"), "the unchanged TOAST value must not be sent as a value under REPLICA IDENTITY DEFAULT");
        Assert.Equal(["body"], updated.Batch.Col("_unchanged").Strings(updated.Row)!);
        Assert.Equal("second", updated["title"]);

        var full = TopicRows.Rows(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "docs_full")).Last();
        Assert.Equal(body, full["body"]);
        Assert.True(full.IsNull("_unchanged"));

        var report = await PipelineVerifier.VerifyAsync(config, null, CancellationToken.None);
        Assert.True(report.Passed, string.Join("\n", report.Tables.SelectMany(t => t.Differences)));
        await infrastructure.DropSlotAsync(config, database);
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
            await pipeline.WaitForCommittedAsync(await infrastructure.FloorAsync(database), s_catchUp);
        }

        var records = TopicRows.Records(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "t"));
        var rows = TopicRows.Rows(records);
        string Shape(TableRecord r) => string.Join(",", r.Payload.Schema.FieldsList.Where(TopicReplay.IsTableColumn).Select(f => $"{f.Name}:{f.DataType.Name}"));
        // Each row carries the table schema of its moment, whichever record it is in.
        TopicRow Row(string id, string op) => rows.Single(r => r.Text("id") == id && r.Op == op);
        Assert.Equal(["id", "a", "b"], Row("1", "c").Record.Names);
        Assert.Equal(["id", "a", "b", "c"], Row("2", "c").Record.Names);
        // The transaction with the DROP COLUMN: its rows before it in the old schema, after it in the new one, the
        // second part a record of its own (a schema is per record) that continues the transaction (chunk 1).
        var three = Row("3", "c");
        var four = Row("4", "c");
        var oneUpdated = rows.First(r => r.Text("id") == "1" && r.Op == "u");
        Assert.Equal(["id", "a", "b", "c"], three.Record.Names);
        Assert.Equal(["id", "a", "c"], four.Record.Names);
        Assert.Equal(["id", "a", "c"], oneUpdated.Record.Names);
        Assert.Equal(three.CommitLsn, four.CommitLsn);
        Assert.Equal(three.CommitLsn, oneUpdated.CommitLsn);
        Assert.NotEqual(three.Record, four.Record);
        Assert.Equal(three.CommitLsn, four.Record.FirstCommitLsn);
        Assert.Equal(1, four.Record.Chunk);
        Assert.False(three.Record.ChunkLast);
        Assert.Contains("Decimal", four.Record.Payload.Schema.Field("c").DataType.Name, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("Int", Row("5", "c").Record.Payload.Schema.Field("c").DataType.Name, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(["id", "label", "c"], Row("6", "c").Record.Names);
        Assert.Equal(["id", "label", "c"], rows.Last().Record.Names);
        // The fingerprint changes exactly when the schema changes.
        for (var i = 1; i < records.Count; i++)
        {
            Assert.Equal(Shape(records[i]) == Shape(records[i - 1]), records[i].Fingerprint == records[i - 1].Fingerprint);
        }

        var report = await PipelineVerifier.VerifyAsync(config, null, CancellationToken.None);
        Assert.True(report.Passed, string.Join("\n", report.Tables.SelectMany(t => t.Differences)));
        await infrastructure.DropSlotAsync(config, database);
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
            await pipeline.WaitForCommittedAsync(await infrastructure.FloorAsync(database), s_catchUp);
        }

        var parent = TopicRows.Rows(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "parent"));
        var child = TopicRows.Rows(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "child"));
        var solo = TopicRows.Rows(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "solo"));
        // parent: rows, the truncate as a row of its own, rows — one source transaction, in WAL order.
        Assert.Equal(["c", "c", "t", "c"], parent.Select(r => r.Op));
        Assert.Single(parent.Select(r => r.CommitLsn).Distinct());
        Assert.Equal("cascade,restart_identity", TruncateOptionsOf(parent[2]));
        Assert.True(parent[2].IsNull("id"));
        Assert.Equal(["c", "t", "c"], solo.Select(r => r.Op));
        // child: truncated by CASCADE inside the first transaction, then on its own.
        Assert.Equal(["c", "t", "t"], child.Select(r => r.Op));
        Assert.Equal(parent[0].CommitLsn, child[1].CommitLsn);
        Assert.True(child[2].CommitLsn > child[1].CommitLsn);
        Assert.Equal("", TruncateOptionsOf(child[2]));

        // (The test's own position markers are messages too, with another prefix.)
        var messages = Records(config.MessagesTopic).Where(m => Header(m.Headers, KafkaHeaders.MessagePrefix) == "app.audit").ToList();
        Assert.Equal(["before truncate", "after truncate", "outside"], messages.Select(m => Encoding.UTF8.GetString(m.Value)));
        Assert.Equal(["true", "true", "false"], messages.Select(m => Header(m.Headers, KafkaHeaders.MessageTransactional)));
        Assert.Equal(parent[0].CommitLsn, messages[0].CommitLsn);
        Assert.Equal(parent[0].CommitLsn, messages[1].CommitLsn);
        Assert.Equal(parent[0].Xid.ToString(System.Globalization.CultureInfo.InvariantCulture), Header(messages[0].Headers, KafkaHeaders.Xid));
        Assert.True(Lsn.Parse(Header(messages[0].Headers, KafkaHeaders.MessageLsn)!) < Lsn.Parse(Header(messages[1].Headers, KafkaHeaders.MessageLsn)!));
        Assert.True(messages[2].CommitLsn > messages[1].CommitLsn);

        var report = await PipelineVerifier.VerifyAsync(config, null, CancellationToken.None);
        Assert.True(report.Passed, string.Join("\n", report.Tables.SelectMany(t => t.Differences)));
        await infrastructure.DropSlotAsync(config, database);
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
            await pipeline.WaitForCommittedAsync(await infrastructure.FloorAsync(database), s_catchUp);
        }

        var report = await PipelineVerifier.VerifyAsync(config, null, CancellationToken.None);
        Assert.True(report.Passed, string.Join("\n", report.Tables.SelectMany(t => t.Differences)));
        Assert.Equal(3, report.Tables.Count);
        Assert.Equal("happy", TopicRows.Rows(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "typed")).Last()["m"]);
        // Generated columns are not published by PostgreSQL 15's pgoutput; the rest of the row is.
        Assert.DoesNotContain(TopicRows.Records(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "generated"))[0].Payload.Schema.FieldsList, f => f.Name == "doubled");
        await infrastructure.DropSlotAsync(config, database);
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
            await pipeline.WaitForCommittedAsync(await infrastructure.FloorAsync(database), s_catchUp);
        }

        if (viaRoot)
        {
            // Every partition's changes appear under the root table, in its one topic.
            var root = TopicRows.Records(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "measurements"));
            Assert.Equal(3, root.Sum(r => r.Payload.RowCount));
            Assert.All(root, r => Assert.Equal("measurements", r.Payload.Schema.Metadata.Single(m => m.Key == "pg.table").Value));
        }
        else
        {
            Assert.Equal(2, TopicRows.Records(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "measurements_2024")).Sum(r => r.Payload.RowCount));
            Assert.Equal(1, TopicRows.Records(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "measurements_2025")).Sum(r => r.Payload.RowCount));
        }
        await infrastructure.DropSlotAsync(config, database);
    }

    private List<Record> Records(string topic)
    {
        var records = new List<Record>();
        OffsetsTopicReader.ReadToEnd(new Dictionary<string, string> { ["bootstrap.servers"] = infrastructure.Broker.BootstrapServers }, topic, message =>
        {
            var headers = message.Message.Headers;
            var kind = Header(headers, KafkaHeaders.Kind)!;
            var value = message.Message.Value ?? [];
            records.Add(new Record(kind, Lsn.Parse(Header(headers, KafkaHeaders.CommitLsn)!), value, headers));
        }, CancellationToken.None);
        return records;
    }

    /// <summary>A truncate row's options (its <c>_special</c> entry <c>_truncate</c>).</summary>
    private static string? TruncateOptionsOf(TopicRow row) =>
        WalBridge.Serialization.Postgres.PgTextRenderer.GetSpecialText(row.Batch, WalBridge.Serialization.Postgres.ChangeBatchBuilder.TruncateOptionsKey, row.Row);

    private static string? Header(Headers headers, string name) => headers.TryGetLastBytes(name, out var bytes) ? Encoding.UTF8.GetString(bytes) : null;
}
