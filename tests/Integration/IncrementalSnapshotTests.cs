using Npgsql;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Kafka;
using WalBridge.Connector.Snapshot;
using WalBridge.Connector.Verification;
using WalBridge.Offsets;

namespace WalBridge.Integration.Tests;

/// <summary>
/// Incremental snapshots (DBLog watermarks) against a real PostgreSQL and the broker: asked for through the signal
/// table while writes go on, resumed after kill -9, refused for tables without a key, and automatic for tables newly
/// selected by table.include.list. verify (read_committed) checks each table against the source row by row.
/// </summary>
[Collection(InfrastructureCollection.Name)]
public sealed class IncrementalSnapshotTests(Infrastructure infrastructure)
{
    private static readonly TimeSpan s_catchUp = TimeSpan.FromSeconds(180);

    /// <summary>6,000 rows; every 10th row holds an external TOAST value, so label-only updates leave it unsent.</summary>
    private const string Tables = """
        CREATE TABLE items (id int PRIMARY KEY, label text, payload text);
        ALTER TABLE items ALTER payload SET STORAGE EXTERNAL;
        CREATE TABLE keyless (a int, b text);
        ALTER TABLE keyless REPLICA IDENTITY FULL;
        INSERT INTO items SELECT i, 'row ' || i, CASE WHEN i % 10 = 0 THEN repeat(md5(i::text), 200) END FROM generate_series(1, 6000) AS i;
        INSERT INTO keyless SELECT i, 'k' FROM generate_series(1, 50) AS i;
        ANALYZE items;
        """;

    /// <summary>Changes while the snapshot reads: updates leaving the TOAST value unsent, deletes, inserts, key moves.</summary>
    private static async Task WriteWhileAsync(string connectionString, CancellationToken stop)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(CancellationToken.None);
        var random = new Random(7);
        var next = 100_000;
        while (!stop.IsCancellationRequested)
        {
            var id = random.Next(1, 6000);
            var sql = random.Next(5) switch
            {
                0 => $"DELETE FROM items WHERE id = {id}",
                1 => $"INSERT INTO items VALUES ({next++}, 'new', NULL)",
                2 => $"UPDATE items SET id = {next++} WHERE id = {id}",
                _ => $"UPDATE items SET label = 'changed {random.Next()}' WHERE id IN ({id}, {id / 10 * 10})",
            };
            await using var command = new NpgsqlCommand(sql, connection);
            await command.ExecuteNonQueryAsync(CancellationToken.None);
            await Task.Delay(2, CancellationToken.None);
        }
    }

    [Theory]
    [InlineData("pgoutput")]
    [InlineData("wal2arrow")]
    public async Task A_signalled_incremental_snapshot_delivers_every_row_while_writes_go_on_and_no_row_stays_stale(string plugin)
    {
        var database = await infrastructure.CreateDatabaseAsync("incr");
        await infrastructure.Postgres.ExecuteAsync(Tables, database);
        var config = infrastructure.Config(database, "incr", new Dictionary<string, string>
        {
            ["plugin"] = plugin,
            ["snapshot.mode"] = "no_data",
            ["signal.data.collection"] = "public.walbridge_signal",
            ["incremental.snapshot.chunk.size"] = "400",
            ["topic.partitions"] = "3",
        });
        var log = new CapturingLogger();
        await using (var pipeline = await RunningPipeline.StartAsync(config, log))
        {
            using var stop = new CancellationTokenSource();
            var writer = WriteWhileAsync(infrastructure.Postgres.ConnectionString(database), stop.Token);
            var signal = await SignalTable.WriteAsync(config, ["public.items"], log, CancellationToken.None);
            try
            {
                await WaitForIncrementalAsync(config, state => state.Signals.Contains(signal) && state.Tables.Count == 0, log);
            }
            finally
            {
                await stop.CancelAsync();
                await writer;
            }

            await pipeline.WaitForCommittedAsync(await infrastructure.FloorAsync(database), s_catchUp);
            // Handled signals are deleted from the signal table.
            await WaitUntilAsync(async () => await CountAsync(database, "SELECT count(*) FROM walbridge_signal") == 0);
        }

        var report = await PipelineVerifier.VerifyAsync(config, null, CancellationToken.None);
        Assert.True(report.Passed, string.Join("\n", report.Tables.SelectMany(t => t.Differences).Concat(report.OffsetProblems)));
        Assert.All(report.Tables, t => Assert.Equal(0, t.DuplicateRecords));

        var records = TopicRows.Records(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "items"), snapshotMarkers: true);
        var markers = records.Where(r => r.Header(KafkaHeaders.Kind) == KafkaHeaders.KindSnapshot).ToList();
        // A start and an end marker in each partition, both incremental, the start before the partition's first r row.
        Assert.Equal(6, markers.Count);
        Assert.All(markers, m => Assert.Equal(KafkaHeaders.SnapshotModeIncremental, m.Header(KafkaHeaders.SnapshotMode)));
        var rows = TopicRows.Rows(records.Where(r => r.Header(KafkaHeaders.Kind) == KafkaHeaders.KindChanges)).ToList();
        var reads = rows.Where(r => r.Op == "r").ToList();
        // Every key that stayed is read once, and again only after an update left its TOAST value unsent.
        Assert.InRange(reads.Select(r => r["id"]).Distinct().Count(), 3000, 9000);
        Assert.InRange(reads.Count, 3000, 12000);
        foreach (var partition in Enumerable.Range(0, 3))
        {
            var inPartition = records.Where(r => r.Partition == partition).ToList();
            var start = inPartition.FindIndex(r => r.Header(KafkaHeaders.Kind) == KafkaHeaders.KindSnapshot && r.Header(KafkaHeaders.Snapshot) == "start");
            var firstRead = inPartition.FindIndex(r => r.Header(KafkaHeaders.Kind) == KafkaHeaders.KindChanges && TopicRows.Rows([r]).Any(x => x.Op == "r"));
            Assert.InRange(start, 0, firstRead);
        }

        Assert.Contains(log.Lines, l => l.Contains("public.items complete", StringComparison.Ordinal));
        await infrastructure.DropSlotAsync(config, database);
    }

    [Fact]
    public async Task A_table_without_a_key_is_refused_with_an_error_naming_it_and_what_to_add()
    {
        var database = await infrastructure.CreateDatabaseAsync("incrkey");
        await infrastructure.Postgres.ExecuteAsync(Tables, database);
        var config = infrastructure.Config(database, "incrkey", new Dictionary<string, string>
        {
            ["snapshot.mode"] = "no_data",
            ["signal.data.collection"] = "public.walbridge_signal",
        });
        var log = new CapturingLogger();
        await using (var pipeline = await RunningPipeline.StartAsync(config, log))
        {
            // The writers refuse it before writing a signal.
            var error = await Assert.ThrowsAsync<ConfigurationException>(() => SignalTable.WriteAsync(config, ["public.keyless"], new CapturingLogger(), CancellationToken.None));
            Assert.Contains("public.keyless", error.Message, StringComparison.Ordinal);
            Assert.Contains("ADD PRIMARY KEY", error.Message, StringComparison.Ordinal);
            var missing = await Assert.ThrowsAsync<ConfigurationException>(() => SignalTable.WriteAsync(config, ["public.nosuch"], new CapturingLogger(), CancellationToken.None));
            Assert.Contains("public.nosuch", missing.Message, StringComparison.Ordinal);

            // A signal written by hand (Debezium's shape) is refused by the running connector, logged and deleted; a
            // signal of an unknown type too.
            await WaitUntilAsync(async () => await CountAsync(database, "SELECT count(*) FROM pg_tables WHERE tablename = 'walbridge_signal'") == 1);
            await infrastructure.Postgres.ExecuteAsync("""
                INSERT INTO walbridge_signal VALUES ('by-hand', 'execute-snapshot', '{"data-collections": ["public.keyless"], "type": "incremental"}');
                INSERT INTO walbridge_signal VALUES ('odd', 'pause-snapshot', '{}');
                """, database);
            await WaitUntilAsync(async () => await CountAsync(database, "SELECT count(*) FROM walbridge_signal") == 0);
        }

        Assert.Contains(log.Lines, l => l.Contains("table public.keyless is refused", StringComparison.Ordinal) && l.Contains("ADD PRIMARY KEY", StringComparison.Ordinal));
        Assert.Contains(log.Lines, l => l.Contains("Signal odd", StringComparison.Ordinal) && l.Contains("pause-snapshot", StringComparison.Ordinal));
        var records = TopicRows.Records(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "keyless"), snapshotMarkers: true);
        Assert.Empty(records);
        await infrastructure.DropSlotAsync(config, database);
    }

    [Fact]
    public async Task Killed_inside_a_watermark_window_the_snapshot_resumes_from_the_last_committed_key()
    {
        var database = await infrastructure.CreateDatabaseAsync("incrkill");
        await infrastructure.Postgres.ExecuteAsync(Tables, database);
        var values = OperationsTests.Values(infrastructure, database, "incrkill", new Dictionary<string, string>
        {
            ["snapshot.mode"] = "no_data",
            ["signal.data.collection"] = "public.walbridge_signal",
            ["incremental.snapshot.chunk.size"] = "500",
        });
        var config = ConnectorConfig.FromDictionary(values);
        // The begin window, then four chunks; the process dies inside the fifth window (its low watermark written).
        await using (var first = ConnectorProcess.Start(values, new Dictionary<string, string> { ["WALBRIDGE_FAULT"] = "inside-watermark-window@6" }))
        {
            await first.WaitForOutputAsync("Streaming slot", s_catchUp);
            // The snapshot command writes the signal (and checks the table first).
            var (code, output) = await OperationsTests.CliAsync("snapshot", "--config", first.ConfigFile, "--tables", "public.items");
            Assert.True(code == 0, output);
            Assert.Contains("written to public.walbridge_signal", output, StringComparison.Ordinal);
            var (refused, why) = await OperationsTests.CliAsync("snapshot", "--config", first.ConfigFile, "--tables", "public.keyless");
            Assert.Equal(2, refused);
            Assert.Contains("ADD PRIMARY KEY", why, StringComparison.Ordinal);
            var deadline = DateTime.UtcNow + s_catchUp;
            while (!first.HasExited && DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }

            Assert.True(first.HasExited, "the fault point must kill the connector inside a watermark window");
        }

        var partial = ReadOffsets(config);
        var table = Assert.Single(partial!.Incremental!.Tables);
        Assert.Equal(2000, table.Rows);
        Assert.Equal(["2000"], table.LastKey);

        await using (var second = ConnectorProcess.Start(values))
        {
            await second.WaitForOutputAsync("public.items complete", s_catchUp);
            await infrastructure.Postgres.ExecuteAsync("INSERT INTO items VALUES (90001, 'after resume', NULL)", database);
            var floor = await infrastructure.FloorAsync(database);
            await WaitUntilAsync(() => Task.FromResult(ReadOffsets(config) is { } latest && latest.CommitLsn >= floor));
            await second.TerminateAsync(TimeSpan.FromSeconds(30));
        }

        var report = await PipelineVerifier.VerifyAsync(config, null, CancellationToken.None);
        Assert.True(report.Passed, string.Join("\n", report.Tables.SelectMany(t => t.Differences).Concat(report.OffsetProblems)));
        // Nothing read twice: the resumed snapshot read after the committed key.
        var reads = TopicRows.Rows(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "items")).Where(r => r.Op == "r").ToList();
        Assert.Equal(6000, reads.Count);
        Assert.Equal(6000, reads.Select(r => r["id"]).Distinct().Count());
        await infrastructure.DropSlotAsync(config, database);
    }

    [Fact]
    public async Task A_table_newly_selected_by_the_include_list_is_snapshotted_automatically()
    {
        var database = await infrastructure.CreateDatabaseAsync("incradd");
        await infrastructure.Postgres.ExecuteAsync(Tables + "CREATE TABLE later (id bigint PRIMARY KEY, v text); INSERT INTO later SELECT i, 'v' || i FROM generate_series(1, 3000) i;", database);
        var values = OperationsTests.Values(infrastructure, database, "incradd", new Dictionary<string, string>
        {
            ["table.include.list"] = "public.items",
            ["snapshot.chunk.rows"] = "2000",
            ["incremental.snapshot.chunk.size"] = "700",
        });
        var config = ConnectorConfig.FromDictionary(values);
        await using (var pipeline = await RunningPipeline.StartAsync(config))
        {
            await pipeline.WaitForCommittedAsync(await infrastructure.FloorAsync(database), s_catchUp);
        }

        values["table.include.list"] = "public.items,public.later";
        var wider = ConnectorConfig.FromDictionary(values);
        var log = new CapturingLogger();
        await using (var pipeline = await RunningPipeline.StartAsync(wider, log))
        {
            await infrastructure.Postgres.ExecuteAsync("UPDATE later SET v = 'changed' WHERE id % 100 = 0; DELETE FROM later WHERE id % 333 = 0;", database);
            await WaitForIncrementalAsync(wider, state => state.Signals.Any(s => s.StartsWith("auto-", StringComparison.Ordinal)) && state.Tables.Count == 0, log);
            await pipeline.WaitForCommittedAsync(await infrastructure.FloorAsync(database), s_catchUp);
        }

        Assert.True(log.Lines.Any(l => l.Contains("newly selects public.later", StringComparison.Ordinal)), string.Join("\n", log.Lines));
        var report = await PipelineVerifier.VerifyAsync(wider, null, CancellationToken.None);
        Assert.True(report.Passed, string.Join("\n", report.Tables.SelectMany(t => t.Differences).Concat(report.OffsetProblems)));
        var reads = TopicRows.Rows(infrastructure.Broker.BootstrapServers, wider.TopicFor("public", "later")).Where(r => r.Op == "r").ToList();
        Assert.InRange(reads.Count, 2900, 3000);
        await infrastructure.DropSlotAsync(wider, database);
    }

    private OffsetRecord? ReadOffsets(ConnectorConfig config) =>
        OffsetsTopicReader.ReadLatest(new Dictionary<string, string> { ["bootstrap.servers"] = infrastructure.Broker.BootstrapServers },
            config.OffsetsTopic, new OffsetKey(config.Name, config.SlotName, config.DatabaseName), CancellationToken.None);

    private async Task WaitForIncrementalAsync(ConnectorConfig config, Func<IncrementalSnapshotState, bool> done, CapturingLogger log)
    {
        try
        {
            await WaitUntilAsync(() => Task.FromResult(ReadOffsets(config)?.Incremental is { } state && done(state)));
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException(e.Message + "\n" + string.Join("\n", log.Lines.TakeLast(40)), e);
        }
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + s_catchUp;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("The incremental snapshot did not reach the expected state in time.");
            }

            await Task.Delay(300);
        }
    }

    private async Task<long> CountAsync(string database, string sql)
    {
        await using var connection = new NpgsqlConnection(infrastructure.Postgres.ConnectionString(database));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
