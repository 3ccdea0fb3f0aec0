using Microsoft.Extensions.Logging.Abstractions;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Kafka;
using WalBridge.Connector.Pipeline;
using WalBridge.Connector.Queue;
using WalBridge.Connector.Verification;
using WalBridge.Offsets;

namespace WalBridge.Integration.Tests;

/// <summary>Start-up safety and recovery (issue 4): Kafka is the source of truth, the slot is checked against it.</summary>
[Collection(InfrastructureCollection.Name)]
public sealed class RecoveryTests(Infrastructure infrastructure)
{
    private static readonly TimeSpan s_catchUp = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Deleting_the_local_mirror_recovers_from_Kafka_alone_without_duplicates()
    {
        var database = await infrastructure.CreateDatabaseAsync("mirror");
        await infrastructure.Postgres.ExecuteAsync("CREATE TABLE t (id int PRIMARY KEY, v text)", database);
        var config = infrastructure.Config(database, "mirror");
        await InsertAndWaitAsync(config, database, 0, 10);
        Assert.True(Directory.Exists(config.StateDirectory), "the mirror was not written");

        Directory.Delete(config.StateDirectory, recursive: true);
        await InsertAndWaitAsync(config, database, 10, 10);

        var replayed = TopicReplay.Replay(Kafka(), config.TopicFor("public", "t"), CancellationToken.None);
        Assert.Empty(replayed.Violations);
        Assert.Equal(20, replayed.Changes);
        Assert.Equal(20, replayed.Rows.Count);
        await CleanupAsync(config, database);
    }

    [Fact]
    public async Task A_slot_dropped_and_recreated_while_stopped_makes_the_connector_refuse_to_start()
    {
        var database = await infrastructure.CreateDatabaseAsync("regap");
        await infrastructure.Postgres.ExecuteAsync("CREATE TABLE t (id int PRIMARY KEY, v text)", database);
        var config = infrastructure.Config(database, "regap");
        await InsertAndWaitAsync(config, database, 0, 3);

        // Someone drops and recreates the slot while the connector is stopped; changes happen in between.
        await infrastructure.Postgres.ExecuteAsync($"SELECT pg_drop_replication_slot('{config.SlotName}')", database);
        await infrastructure.Postgres.ExecuteAsync("INSERT INTO t VALUES (100, 'lost from the slot')", database);
        await infrastructure.Postgres.ExecuteAsync($"SELECT pg_create_logical_replication_slot('{config.SlotName}', 'pgoutput')", database);

        var runner = new ConnectorRunner(config, NullLogger.Instance);
        var error = await Assert.ThrowsAsync<UnsafeStartException>(() => runner.RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains($"Replication slot '{config.SlotName}'", error.Message, StringComparison.Ordinal);
        Assert.Contains("ahead of the last LSN committed to Kafka", error.Message, StringComparison.Ordinal);
        Assert.Contains("dropped and recreated", error.Message, StringComparison.Ordinal);
        await CleanupAsync(config, database);
    }

    [Fact]
    public async Task A_slot_dropped_while_stopped_is_not_silently_recreated()
    {
        var database = await infrastructure.CreateDatabaseAsync("nogap");
        await infrastructure.Postgres.ExecuteAsync("CREATE TABLE t (id int PRIMARY KEY, v text)", database);
        var config = infrastructure.Config(database, "nogap");
        await InsertAndWaitAsync(config, database, 0, 3);
        await infrastructure.Postgres.ExecuteAsync($"SELECT pg_drop_replication_slot('{config.SlotName}')", database);

        var runner = new ConnectorRunner(config, NullLogger.Instance);
        var error = await Assert.ThrowsAsync<UnsafeStartException>(() => runner.RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains("did not exist and was just created", error.Message, StringComparison.Ordinal);
        await CleanupAsync(config, database);
    }

    [Fact]
    public async Task An_idle_slot_advances_while_other_tables_are_busy()
    {
        var database = await infrastructure.CreateDatabaseAsync("idle");
        await infrastructure.Postgres.ExecuteAsync("CREATE TABLE quiet (id int PRIMARY KEY); CREATE TABLE busy (id serial PRIMARY KEY, v text)", database);
        var config = infrastructure.Config(database, "idle", new Dictionary<string, string>
        {
            ["table.include.list"] = "public\\.quiet",
            ["heartbeat.interval.ms"] = "300",
        });
        await using var pipeline = await RunningPipeline.StartAsync(config);
        var before = await LsnAsync(database);
        await infrastructure.Postgres.ExecuteAsync("INSERT INTO quiet VALUES (1)", database);
        await pipeline.WaitForCommittedAsync(before, s_catchUp);

        // Only the unpublished table changes: WAL grows, nothing is delivered.
        for (var i = 0; i < 50; i++)
        {
            await infrastructure.Postgres.ExecuteAsync("INSERT INTO busy (v) SELECT repeat('x', 200) FROM generate_series(1, 100)", database);
        }

        var busyEnd = await LsnAsync(database);

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        Lsn confirmed;
        while ((confirmed = await ConfirmedAsync(config, database)) < busyEnd)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the idle slot stayed at {confirmed}, behind {busyEnd}");
            await Task.Delay(200);
        }

        // The acknowledged position is recorded in Kafka first (ack safety).
        var offset = OffsetsTopicReader.ReadLatest(Kafka(), config.OffsetsTopic, new OffsetKey(config.Name, config.SlotName, database), CancellationToken.None);
        Assert.NotNull(offset);
        Assert.True(offset.CommitLsn >= confirmed, $"the slot is confirmed through {confirmed} but Kafka only holds {offset.CommitLsn}");
        await pipeline.DisposeAsync();
        await CleanupAsync(config, database);
    }

    private async Task InsertAndWaitAsync(ConnectorConfig config, string database, int first, int count)
    {
        await using var pipeline = await RunningPipeline.StartAsync(config);
        Lsn floor = default;
        for (var i = first; i < first + count; i++)
        {
            floor = await LsnAsync(database);
            await infrastructure.Postgres.ExecuteAsync($"INSERT INTO t VALUES ({i}, 'row {i}')", database);
        }
        await pipeline.WaitForCommittedAsync(floor, s_catchUp);
    }

    private async Task<Lsn> LsnAsync(string database) =>
        Lsn.Parse(await infrastructure.Postgres.ScalarAsync<string>("SELECT pg_current_wal_insert_lsn()::text", database));

    private async Task<Lsn> ConfirmedAsync(ConnectorConfig config, string database) =>
        Lsn.Parse(await infrastructure.Postgres.ScalarAsync<string>(
            $"SELECT coalesce(confirmed_flush_lsn, '0/0')::text FROM pg_replication_slots WHERE slot_name = '{config.SlotName}'", database));

    private Dictionary<string, string> Kafka() => new() { ["bootstrap.servers"] = infrastructure.Broker.BootstrapServers };

    private async Task CleanupAsync(ConnectorConfig config, string database)
    {
        await infrastructure.Postgres.ExecuteAsync(
            $"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{config.SlotName}'", database);
        if (Directory.Exists(config.StateDirectory))
        {
            Directory.Delete(config.StateDirectory, recursive: true);
        }
    }
}
