using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.TestDecoding;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Pipeline;
using WalBridge.Connector.Source;
using WalBridge.DevTools.Embedded;

namespace WalBridge.Integration.Tests;

/// <summary>Issue 5: the connector prepares the source and names every precondition that fails.</summary>
[Collection(InfrastructureCollection.Name)]
public sealed class SourceSetupTests(Infrastructure infrastructure)
{
    private static async Task<Exception> StartFailsAsync(ConnectorConfig config)
    {
        var runner = new ConnectorRunner(config, NullLogger.Instance);
        try
        {
            return await Assert.ThrowsAnyAsync<Exception>(() => runner.RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(90)));
        }
        finally
        {
            if (Directory.Exists(config.StateDirectory))
            {
                Directory.Delete(config.StateDirectory, recursive: true);
            }
        }
    }

    private ConnectorConfig ConfigFor(TemporaryPostgres postgres, string database, IReadOnlyDictionary<string, string>? extra = null)
    {
        var values = new Dictionary<string, string>
        {
            ["name"] = database,
            ["database.hostname"] = postgres.Host,
            ["database.port"] = postgres.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["database.user"] = postgres.User,
            ["database.dbname"] = database,
            ["database.sslmode"] = "disable",
            ["topic.prefix"] = $"setup{Guid.NewGuid():N}"[..20],
            ["state.dir"] = Path.Combine(Path.GetTempPath(), $"walbridge-test-state-{Guid.NewGuid():N}"),
            ["kafka.bootstrap.servers"] = infrastructure.Broker.BootstrapServers,
        };
        foreach (var (key, value) in extra ?? new Dictionary<string, string>())
        {
            values[key] = value;
        }

        return ConnectorConfig.FromDictionary(values);
    }

    [Fact]
    public async Task Wal_level_not_logical_is_named()
    {
        await using var postgres = await TemporaryPostgres.StartAsync(new Dictionary<string, string> { ["wal_level"] = "replica" });
        var error = await StartFailsAsync(ConfigFor(postgres, "postgres"));
        Assert.IsType<SourceNotReadyException>(error);
        Assert.Contains("wal_level is 'replica'", error.Message, StringComparison.Ordinal);
        Assert.Contains("wal_level = logical", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_replication_privilege_is_named()
    {
        var database = await infrastructure.CreateDatabaseAsync("norepl");
        var role = $"norepl_{Guid.NewGuid():N}"[..20];
        await infrastructure.Postgres.ExecuteAsync($"CREATE ROLE {role} LOGIN; GRANT ALL ON DATABASE {database} TO {role}");
        var config = ConfigFor(infrastructure.Postgres, database, new Dictionary<string, string> { ["database.user"] = role });
        var error = await StartFailsAsync(config);
        Assert.IsType<SourceNotReadyException>(error);
        Assert.Contains($"User '{role}' has no REPLICATION privilege", error.Message, StringComparison.Ordinal);
        Assert.Contains("WITH REPLICATION", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task No_free_replication_slot_is_named()
    {
        await using var postgres = await TemporaryPostgres.StartAsync(new Dictionary<string, string> { ["max_replication_slots"] = "1" });
        await postgres.ExecuteAsync("SELECT pg_create_logical_replication_slot('someone_else', 'pgoutput')");
        var error = await StartFailsAsync(ConfigFor(postgres, "postgres"));
        Assert.IsType<SourceNotReadyException>(error);
        Assert.Contains("No free replication slot", error.Message, StringComparison.Ordinal);
        Assert.Contains("max_replication_slots = 1", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task No_free_wal_sender_is_named()
    {
        await using var postgres = await TemporaryPostgres.StartAsync(new Dictionary<string, string> { ["max_wal_senders"] = "1" });
        await postgres.ExecuteAsync("SELECT pg_create_logical_replication_slot('busy_sender', 'test_decoding')");
        // Occupy the only WAL sender.
        await using var other = new LogicalReplicationConnection(postgres.ConnectionString());
        await other.Open();
        using var stop = new CancellationTokenSource();
        var stream = other.StartReplication(new TestDecodingReplicationSlot("busy_sender"), stop.Token).GetAsyncEnumerator(stop.Token);
        var pending = stream.MoveNextAsync().AsTask();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (await postgres.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'") == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the other replication client did not start");
            await Task.Delay(100);
        }
        try
        {
            var error = await StartFailsAsync(ConfigFor(postgres, "postgres"));
            Assert.IsType<SourceNotReadyException>(error);
            Assert.Contains("No free WAL sender", error.Message, StringComparison.Ordinal);
            Assert.Contains("max_wal_senders = 1", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            await stop.CancelAsync();
            try
            {
                await pending;
            }
            catch (Exception e) when (e is OperationCanceledException or NpgsqlException)
            {
            }
        }
    }

    [Fact]
    public async Task A_published_table_without_usable_replica_identity_is_named()
    {
        var database = await infrastructure.CreateDatabaseAsync("identity");
        await infrastructure.Postgres.ExecuteAsync(
            "CREATE TABLE keyed (id int PRIMARY KEY); CREATE TABLE loose (v text); CREATE TABLE nothing (id int PRIMARY KEY); ALTER TABLE nothing REPLICA IDENTITY NOTHING", database);
        var config = ConfigFor(infrastructure.Postgres, database);
        var error = await StartFailsAsync(config);
        Assert.IsType<SourceNotReadyException>(error);
        Assert.Contains("public.loose has REPLICA IDENTITY DEFAULT but no primary key", error.Message, StringComparison.Ordinal);
        Assert.Contains("public.nothing has REPLICA IDENTITY NOTHING", error.Message, StringComparison.Ordinal);
        Assert.Contains("table.exclude.list", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("keyed", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Slot_creation_behind_an_idle_transaction_times_out_and_names_the_blocker()
    {
        var database = await infrastructure.CreateDatabaseAsync("blocked");
        await infrastructure.Postgres.ExecuteAsync("CREATE TABLE t (id int PRIMARY KEY)", database);
        await using var blocker = new NpgsqlConnection(infrastructure.Postgres.ConnectionString(database) + ";Application Name=the-blocker");
        await blocker.OpenAsync();
        await using var transaction = await blocker.BeginTransactionAsync();
        await using (var write = new NpgsqlCommand("INSERT INTO t VALUES (1)", blocker, transaction))
        {
            await write.ExecuteNonQueryAsync();
        }

        await using var pidCommand = new NpgsqlCommand("SELECT pg_backend_pid()", blocker, transaction);
        var pid = (int)(await pidCommand.ExecuteScalarAsync())!;

        var config = ConfigFor(infrastructure.Postgres, database, new Dictionary<string, string> { ["slot.create.timeout.ms"] = "2000" });
        var error = await StartFailsAsync(config);
        Assert.IsType<SourceNotReadyException>(error);
        Assert.Contains($"pid {pid}", error.Message, StringComparison.Ordinal);
        Assert.Contains("the-blocker", error.Message, StringComparison.Ordinal);
        Assert.Contains("slot.create.timeout.ms", error.Message, StringComparison.Ordinal);
        await transaction.RollbackAsync();
    }

    [Fact]
    public async Task The_publication_follows_the_include_and_exclude_lists()
    {
        var database = await infrastructure.CreateDatabaseAsync("pubsync");
        await infrastructure.Postgres.ExecuteAsync(
            "CREATE TABLE a1 (id int PRIMARY KEY); CREATE TABLE a2 (id int PRIMARY KEY); CREATE TABLE b1 (id int PRIMARY KEY)", database);
        var first = infrastructure.Config(database, "pubsync", new Dictionary<string, string> { ["table.include.list"] = "public\\.a.*", ["table.exclude.list"] = "public\\.a2" });
        await using (await RunningPipeline.StartAsync(first))
        {
            Assert.Equal(["a1"], await PublishedAsync(first, database));
        }

        var second = infrastructure.Config(database, "pubsync", new Dictionary<string, string> { ["table.include.list"] = "public\\.a2,public\\.b1" });
        second = ConnectorConfig.FromDictionary(new Dictionary<string, string>
        {
            ["name"] = first.Name,
            ["database.hostname"] = first.DatabaseHost,
            ["database.port"] = first.DatabasePort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["database.user"] = first.DatabaseUser,
            ["database.dbname"] = database,
            ["database.sslmode"] = "disable",
            ["topic.prefix"] = first.TopicPrefix,
            ["state.dir"] = first.StateDirectory,
            ["kafka.bootstrap.servers"] = infrastructure.Broker.BootstrapServers,
            ["table.include.list"] = "public\\.a2,public\\.b1",
        });
        await using (await RunningPipeline.StartAsync(second))
        {
            Assert.Equal(["a2", "b1"], await PublishedAsync(second, database));
        }

        await infrastructure.Postgres.ExecuteAsync($"SELECT pg_drop_replication_slot('{first.SlotName}')", database);
        Directory.Delete(first.StateDirectory, recursive: true);
    }

    private async Task<List<string>> PublishedAsync(ConnectorConfig config, string database)
    {
        await using var connection = new NpgsqlConnection(infrastructure.Postgres.ConnectionString(database));
        await connection.OpenAsync();
        await using var query = new NpgsqlCommand("SELECT tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1", connection);
        query.Parameters.Add(new NpgsqlParameter { Value = config.PublicationName });
        var tables = new List<string>();
        await using var reader = await query.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            tables.Add(reader.GetString(0));
        }

        return tables;
    }
}
