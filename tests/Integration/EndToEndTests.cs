using System.Text;
using Confluent.Kafka;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Kafka;
using WalBridge.Connector.Pipeline;
using WalBridge.Connector.Queue;
using WalBridge.Connector.Verification;
using WalBridge.Offsets;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;
using WalBridge.Tests;

namespace WalBridge.Integration.Tests;

[Collection(InfrastructureCollection.Name)]
public sealed class EndToEndTests(Infrastructure infrastructure)
{
    private static readonly TimeSpan s_catchUp = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Twenty_transactions_over_two_tables_arrive_exactly_once_with_exact_values()
    {
        var database = await infrastructure.CreateDatabaseAsync("e2e");
        await infrastructure.Postgres.ExecuteAsync("""
            CREATE TABLE items (
                id int4 PRIMARY KEY, small int2, big int8, real4 float4, real8 float8, flag bool,
                label text, code varchar(12), price numeric(12,2), day date, at timestamp, at_tz timestamptz,
                blob bytea, ref uuid);
            CREATE TABLE events (id bigint PRIMARY KEY, kind text NOT NULL, amount numeric(38,4));
            """, database);
        var config = Config(database, "e2e");
        var expected = new List<string>();

        await using (var pipeline = await RunningPipeline.StartAsync(config))
        {
            await using var connection = new NpgsqlConnection(infrastructure.Postgres.ConnectionString(database));
            await connection.OpenAsync();
            Lsn floor = default;
            for (var t = 0; t < 20; t++)
            {
                await using var transaction = await connection.BeginTransactionAsync();
                var sql = new StringBuilder();
                // Every transaction inserts into both tables; some update and delete earlier rows.
                sql.Append(FormattableString.Invariant($"""
                    INSERT INTO items VALUES ({t}, {t - 10}, {(long)t * 1_000_000_007 - 9_000_000_000}, {t}.5, {t}.25e-3, {(t % 2 == 0 ? "true" : "false")},
                        'label {t} ✓', 'c{t}', {t * 37}.{t:00}, '2024-01-{t + 1:00}', '2024-02-03 04:05:{t:00}.123456', '2024-02-03 04:05:06.5+02',
                        '\x{t:x2}00ff', '00000000-0000-0000-0000-{t:000000000000}');
                    INSERT INTO events VALUES ({t}, 'created', -{t}.0001);
                    """));
                expected.Add($"items c {t}");
                expected.Add($"events c {t}");
                if (t >= 3)
                {
                    sql.Append(FormattableString.Invariant($"UPDATE items SET label = NULL, price = -0.01, flag = NOT flag WHERE id = {t - 3};"));
                    expected.Add($"items u {t - 3}");
                }
                if (t >= 5 && t % 5 == 0)
                {
                    sql.Append(FormattableString.Invariant($"DELETE FROM events WHERE id = {t - 5};"));
                    expected.Add($"events d {t - 5}");
                }
                if (t == 19)
                {
                    sql.Append("SELECT 1;");
                }

                await using (var command = new NpgsqlCommand(sql.ToString(), connection, transaction))
                {
                    await command.ExecuteNonQueryAsync();
                }

                if (t == 19)
                {
                    await using var lsn = new NpgsqlCommand("SELECT pg_current_wal_insert_lsn()::text", connection, transaction);
                    floor = Lsn.Parse((string)(await lsn.ExecuteScalarAsync())!);
                }
                await transaction.CommitAsync();
            }
            await pipeline.WaitForCommittedAsync(floor, s_catchUp);
        }

        var kafka = new Dictionary<string, string> { ["bootstrap.servers"] = infrastructure.Broker.BootstrapServers };
        // 1. The changes, in order, exactly once, decoded by a read_committed consumer.
        var seen = new List<string>();
        var commitLsns = new List<Lsn>();
        foreach (var table in new[] { "items", "events" })
        {
            OffsetsTopicReader.ReadToEnd(kafka, config.TopicFor("public", table), message =>
            {
                Assert.Equal(KafkaHeaders.ArrowStreamContentType, Header(message, KafkaHeaders.ContentType));
                Assert.Equal($"public.{table}", Header(message, KafkaHeaders.Table));
                commitLsns.Add(Lsn.Parse(Header(message, KafkaHeaders.CommitLsn)!));
                var stream = ArrowPayload.Read(message.Message.Value);
                Assert.Equal(table, Meta(stream.Schema.Metadata, "pg.table"));
                Assert.Equal("id", Meta(stream.Schema.Metadata, "pg.primary_key"));
                var rows = 0;
                foreach (var batch in stream.Batches)
                {
                    for (var row = 0; row < batch.Length; row++)
                    {
                        seen.Add($"{table} {batch.Column("_op").Value(row)} {batch.Render("id", row)}");
                        rows++;
                    }
                }
                Assert.Equal(rows.ToString(System.Globalization.CultureInfo.InvariantCulture), Header(message, KafkaHeaders.Rows));
            }, CancellationToken.None);
        }
        Assert.Equal(expected.Where(e => e.StartsWith("items", StringComparison.Ordinal)), seen.Where(e => e.StartsWith("items", StringComparison.Ordinal)));
        Assert.Equal(expected.Where(e => e.StartsWith("events", StringComparison.Ordinal)), seen.Where(e => e.StartsWith("events", StringComparison.Ordinal)));

        // 2. Every value equals PostgreSQL's own text rendering of the current rows.
        await using (var connection = new NpgsqlConnection(config.ConnectionString(replication: false)))
        {
            await connection.OpenAsync();
            foreach (var table in new[] { "items", "events" })
            {
                var replayed = TopicReplay.Replay(kafka, config.TopicFor("public", table), CancellationToken.None);
                var comparison = await SourceComparison.CompareAsync(connection, replayed, CancellationToken.None);
                Assert.True(comparison.Matches, string.Join("\n", comparison.Differences));
                Assert.Equal(20, comparison.Transactions);
            }
        }

        // 3. The offsets topic holds the last transaction's commit LSN; the slot is not past it.
        var offset = OffsetsTopicReader.ReadLatest(kafka, config.OffsetsTopic, new OffsetKey(config.Name, config.SlotName, database), CancellationToken.None);
        Assert.NotNull(offset);
        Assert.Equal(commitLsns.Max(), offset.CommitLsn);
        Assert.Equal(config.SlotName, offset.Source.Slot);
        var confirmed = Lsn.Parse(await infrastructure.Postgres.ScalarAsync<string>(
            $"SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '{config.SlotName}'", database));
        Assert.True(confirmed <= offset.CommitLsn, $"slot confirmed_flush_lsn {confirmed} is beyond the committed offset {offset.CommitLsn}");
        Assert.True(confirmed > Lsn.Zero);

        await DropSlotAsync(config, database);
    }

    [Fact]
    public async Task Restart_resumes_after_the_committed_position_without_duplicates()
    {
        var database = await infrastructure.CreateDatabaseAsync("resume");
        await infrastructure.Postgres.ExecuteAsync("CREATE TABLE t (id int PRIMARY KEY, v text)", database);
        var config = Config(database, "resume");
        for (var round = 0; round < 3; round++)
        {
            await using var pipeline = await RunningPipeline.StartAsync(config);
            Lsn floor = default;
            for (var i = 0; i < 5; i++)
            {
                // A position before the last commit record: committed past it means everything arrived.
                floor = Lsn.Parse(await infrastructure.Postgres.ScalarAsync<string>("SELECT pg_current_wal_insert_lsn()::text", database));
                await infrastructure.Postgres.ExecuteAsync($"INSERT INTO t VALUES ({round * 10 + i}, 'round {round}')", database);
            }
            await pipeline.WaitForCommittedAsync(floor, s_catchUp);
        }
        var kafka = new Dictionary<string, string> { ["bootstrap.servers"] = infrastructure.Broker.BootstrapServers };
        var replayed = TopicReplay.Replay(kafka, config.TopicFor("public", "t"), CancellationToken.None);
        Assert.Empty(replayed.Violations);
        Assert.Equal(15, replayed.Changes);
        Assert.Equal(15, replayed.Transactions.Count);
        await DropSlotAsync(config, database);
    }

    private ConnectorConfig Config(string database, string prefix) => ConnectorConfig.FromDictionary(new Dictionary<string, string>
    {
        ["name"] = database,
        ["database.hostname"] = infrastructure.Postgres.Host,
        ["database.port"] = infrastructure.Postgres.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["database.user"] = infrastructure.Postgres.User,
        ["database.dbname"] = database,
        ["database.sslmode"] = "disable",
        ["topic.prefix"] = $"{prefix}{Guid.NewGuid():N}"[..20],
        ["state.dir"] = Path.Combine(Path.GetTempPath(), $"walbridge-test-state-{Guid.NewGuid():N}"),
        ["kafka.bootstrap.servers"] = infrastructure.Broker.BootstrapServers,
    });

    private async Task DropSlotAsync(ConnectorConfig config, string database)
    {
        await infrastructure.Postgres.ExecuteAsync($"SELECT pg_drop_replication_slot('{config.SlotName}')", database);
        try
        {
            Directory.Delete(config.StateDirectory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    private static string? Header(ConsumeResult<byte[]?, byte[]?> message, string name) =>
        message.Message.Headers.TryGetLastBytes(name, out var bytes) ? Encoding.UTF8.GetString(bytes) : null;

    private static string? Meta(IReadOnlyDictionary<string, string>? metadata, string key) =>
        metadata is not null && metadata.TryGetValue(key, out var value) ? value : null;
}

/// <summary>A connector running in the test process; disposing stops it and surfaces its failure.</summary>
internal sealed class RunningPipeline : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly ConnectorRunner _runner;
    private readonly Task _task;

    private RunningPipeline(ConnectorConfig config, Microsoft.Extensions.Logging.ILogger? logger)
    {
        _runner = new ConnectorRunner(config, logger ?? NullLogger.Instance);
        _task = _runner.RunAsync(_stop.Token);
    }

    public ProgressTracker Progress => _runner.Progress;

    /// <summary>
    /// Starts the connector and returns once its slot exists (changes from then on are kept) and, unless
    /// <paramref name="duringSnapshot"/>, its initial snapshot is complete (so a test that stops it at once finds a
    /// finished snapshot, and streaming, at its next start).
    /// </summary>
    public static async Task<RunningPipeline> StartAsync(ConnectorConfig config, Microsoft.Extensions.Logging.ILogger? logger = null, bool duringSnapshot = false)
    {
        var pipeline = new RunningPipeline(config, logger);
        await Task.WhenAny(pipeline.Progress.SourceReady, pipeline._task).WaitAsync(TimeSpan.FromSeconds(60));
        if (!duringSnapshot && !pipeline._task.IsCompleted)
        {
            await Task.WhenAny(pipeline.Progress.Snapshot.WaitUntilAsync((pending, _) => pending is null, CancellationToken.None), pipeline._task)
                .WaitAsync(TimeSpan.FromSeconds(120));
        }

        if (pipeline._task.IsCompleted)
        {
            await pipeline._task;
        }

        return pipeline;
    }

    public async Task WaitForCommittedAsync(Lsn floor, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (_runner.Progress.Committed < floor)
        {
            if (_task.IsCompleted)
            {
                await _task;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"The connector did not commit through {floor} within {timeout} (committed {_runner.Progress.Committed}).");
            }

            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await _stop.CancelAsync();
        await _task;
        _stop.Dispose();
    }

    private bool _disposed;
}
