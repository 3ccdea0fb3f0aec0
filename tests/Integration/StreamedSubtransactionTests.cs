using System.Text;
using Npgsql;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Kafka;
using WalBridge.Connector.Verification;
using WalBridge.Offsets;

namespace WalBridge.Integration.Tests;

/// <summary>
/// Issue 15, point 2: transactional logical decoding messages follow the same subtransaction rules as rows in every
/// path: a message written inside a subtransaction that is rolled back is never delivered, one written outside it
/// (before, after, or in a released subtransaction) is delivered exactly once, also when pgoutput streams the
/// transaction while it is in progress (and labels messages with the top-level xid only).
/// </summary>
[Collection(InfrastructureCollection.Name)]
public sealed class StreamedSubtransactionTests(Infrastructure infrastructure)
{
    private static readonly TimeSpan s_catchUp = TimeSpan.FromSeconds(120);

    [Theory]
    [InlineData("pgoutput", "auto")]
    [InlineData("pgoutput", "off")]
    [InlineData("wal2arrow", "auto")]
    public async Task Messages_of_rolled_back_subtransactions_are_never_delivered(string plugin, string binaryFormat)
    {
        var database = await infrastructure.CreateDatabaseAsync("subxmsg");
        // The smallest decoding memory, so that pgoutput streams the transactions below while they run
        // (the walsender reads the database's settings when the connector connects).
        await infrastructure.Postgres.ExecuteAsync($"ALTER DATABASE {database} SET logical_decoding_work_mem = '64kB'");
        await infrastructure.Postgres.ExecuteAsync("CREATE TABLE events (id int PRIMARY KEY, payload text NOT NULL)", database);
        var config = infrastructure.Config(database, "subxmsg", new Dictionary<string, string>
        {
            ["plugin"] = plugin,
            ["binary.format"] = binaryFormat,
        });
        var logger = new CapturingLogger();
        await using (var pipeline = await RunningPipeline.StartAsync(config, logger))
        {
            await infrastructure.Postgres.ExecuteAsync("""
                BEGIN;
                INSERT INTO events SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 1000) g;
                SELECT pg_logical_emit_message(true, 'app', 'kept: before the savepoint');
                SAVEPOINT doomed;
                SELECT pg_logical_emit_message(true, 'app', 'lost: inside the rolled-back savepoint');
                INSERT INTO events SELECT g, repeat(md5(g::text), 8) FROM generate_series(100001, 101000) g;
                ROLLBACK TO SAVEPOINT doomed;
                SELECT pg_logical_emit_message(true, 'app', 'kept: after the rollback');
                SAVEPOINT released;
                SELECT pg_logical_emit_message(true, 'app', 'kept: in a released savepoint');
                INSERT INTO events SELECT g, repeat(md5(g::text), 8) FROM generate_series(1001, 2000) g;
                RELEASE SAVEPOINT released;
                COMMIT;
                """, database);
            // Rolled back after its only message: nothing of the subtransaction, the rest kept.
            await infrastructure.Postgres.ExecuteAsync("""
                BEGIN;
                INSERT INTO events SELECT g, repeat(md5(g::text), 8) FROM generate_series(2001, 3000) g;
                SAVEPOINT a;
                INSERT INTO events SELECT g, repeat(md5(g::text), 8) FROM generate_series(200001, 201000) g;
                SAVEPOINT b;
                SELECT pg_logical_emit_message(true, 'app', 'lost: nested in a rolled-back savepoint');
                RELEASE SAVEPOINT b;
                ROLLBACK TO SAVEPOINT a;
                SELECT pg_logical_emit_message(true, 'app', 'kept: second transaction');
                COMMIT;
                """, database);
            // The same shape in a small transaction (decoded whole by PostgreSQL in any mode).
            await infrastructure.Postgres.ExecuteAsync("""
                BEGIN;
                SAVEPOINT s;
                SELECT pg_logical_emit_message(true, 'app', 'lost: small transaction');
                INSERT INTO events VALUES (-1, 'lost');
                ROLLBACK TO SAVEPOINT s;
                SELECT pg_logical_emit_message(true, 'app', 'kept: small transaction');
                INSERT INTO events VALUES (-2, 'kept');
                COMMIT;
                """, database);
            await pipeline.WaitForCommittedAsync(await infrastructure.FloorAsync(database), s_catchUp);
            // Once Kafka holds everything the stream read again, the next message brings streaming back.
            await infrastructure.Postgres.ExecuteAsync("INSERT INTO events VALUES (-3, 'after the resumption')", database);
            await pipeline.WaitForCommittedAsync(await infrastructure.FloorAsync(database), s_catchUp);
        }

        if (plugin == "pgoutput")
        {
            // The first transaction was streamed, could not be attributed, and was read again whole; then
            // streaming resumed. (wal2arrow does not stream: PostgreSQL always decodes at commit.)
            Assert.Contains(logger.Lines, l => l.Contains("reading it again without streaming", StringComparison.Ordinal));
            Assert.Contains(logger.Lines, l => l.Contains("streaming in-progress transactions again", StringComparison.Ordinal));
        }
        var messages = Messages(config).Where(m => m.Prefix == "app").Select(m => m.Content).ToList();
        Assert.Equal(
            ["kept: before the savepoint", "kept: after the rollback", "kept: in a released savepoint", "kept: second transaction", "kept: small transaction"],
            messages);
        var report = await PipelineVerifier.VerifyAsync(config, null, CancellationToken.None);
        Assert.True(report.Passed, string.Join("\n", report.Tables.SelectMany(t => t.Differences)));
        Assert.Equal(3002, report.Tables.Single().SourceRows);
        await infrastructure.DropSlotAsync(config, database);
    }

    private List<(string Prefix, string Content)> Messages(ConnectorConfig config)
    {
        var messages = new List<(string, string)>();
        OffsetsTopicReader.ReadToEnd(new Dictionary<string, string> { ["bootstrap.servers"] = infrastructure.Broker.BootstrapServers }, config.MessagesTopic, message =>
        {
            var prefix = message.Message.Headers.TryGetLastBytes(KafkaHeaders.MessagePrefix, out var bytes) ? Encoding.UTF8.GetString(bytes) : "";
            messages.Add((prefix, Encoding.UTF8.GetString(message.Message.Value ?? [])));
        }, CancellationToken.None);
        return messages;
    }
}
