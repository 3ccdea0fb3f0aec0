using Npgsql;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Kafka;
using WalBridge.Connector.Pipeline;
using WalBridge.Connector.Verification;
using WalBridge.Offsets;

namespace WalBridge.Integration.Tests;

/// <summary>
/// snapshot.mode against a real PostgreSQL and the broker: rows that exist before the connector starts are delivered
/// (with markers), exactly once, in parallel chunks; no_data and initial_only; resumption after kill -9.
/// </summary>
[Collection(InfrastructureCollection.Name)]
public sealed class SnapshotTests(Infrastructure infrastructure)
{
    private static readonly TimeSpan s_catchUp = TimeSpan.FromSeconds(120);

    private const string Tables = """
        CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
        CREATE TABLE big (id int PRIMARY KEY, label text, amount numeric(12,3), feeling mood, tags text[], at timestamptz, span interval);
        CREATE TABLE keyless (a int, b text);
        ALTER TABLE keyless REPLICA IDENTITY FULL;
        INSERT INTO big SELECT i, CASE WHEN i % 11 = 0 THEN NULL ELSE 'row ' || i END, i / 7.0, (ARRAY['sad','ok','happy']::mood[])[1 + i % 3],
            ARRAY['t' || i, NULL], timestamptz '2025-01-01 00:00:00+00' + i * interval '1 second', i * interval '1 minute'
            FROM generate_series(1, 12000) AS i;
        INSERT INTO keyless SELECT i % 50, 'same ' || (i % 50) FROM generate_series(1, 500) AS i;
        ANALYZE big, keyless;
        """;

    [Theory]
    [InlineData("pgoutput")]
    [InlineData("wal2arrow")]
    public async Task Initial_snapshot_delivers_existing_rows_once_with_markers_then_streams_later_changes(string plugin)
    {
        var database = await infrastructure.CreateDatabaseAsync("snap");
        await infrastructure.Postgres.ExecuteAsync(Tables, database);
        var config = infrastructure.Config(database, "snap", new Dictionary<string, string>
        {
            ["plugin"] = plugin,
            ["snapshot.chunk.rows"] = "2000",
            ["snapshot.max.threads"] = "3",
            ["topic.partitions"] = "3",
        });
        var log = new CapturingLogger();
        // The changes run while the snapshot is read: the exported snapshot keeps them out of the r rows.
        await using (var pipeline = await RunningPipeline.StartAsync(config, log, duringSnapshot: true))
        {
            await infrastructure.Postgres.ExecuteAsync("""
                UPDATE big SET label = 'changed' WHERE id % 1000 = 0;
                DELETE FROM big WHERE id % 997 = 0;
                INSERT INTO big VALUES (20001, 'after', 1, 'ok', NULL, now(), NULL);
                INSERT INTO keyless VALUES (7, 'after');
                """, database);
            try
            {
                await pipeline.WaitForCommittedAsync(await infrastructure.FloorAsync(database), s_catchUp);
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException(e.Message + "\n" + string.Join("\n", log.Lines.TakeLast(60)), e);
            }
        }

        var report = await PipelineVerifier.VerifyAsync(config, null, CancellationToken.None);
        Assert.True(report.Passed, string.Join("\n", report.Tables.SelectMany(t => t.Differences).Concat(report.OffsetProblems)));

        var records = TopicRows.Records(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "big"), snapshotMarkers: true);
        var markers = records.Where(r => r.Header(KafkaHeaders.Kind) == KafkaHeaders.KindSnapshot).ToList();
        // A start and an end marker in each of the 3 partitions, the start before every snapshot row of its partition.
        Assert.Equal(6, markers.Count);
        foreach (var partition in Enumerable.Range(0, 3))
        {
            var inPartition = records.Where(r => r.Partition == partition).ToList();
            Assert.Equal("start", inPartition[0].Header(KafkaHeaders.Snapshot));
            var end = inPartition.FindIndex(r => r.Header(KafkaHeaders.Kind) == KafkaHeaders.KindSnapshot && r.Header(KafkaHeaders.Snapshot) == "end");
            Assert.True(end > 0);
            Assert.Equal("12000", inPartition[end].Header(KafkaHeaders.SnapshotRows));
            Assert.Equal("0", inPartition[end].Header(KafkaHeaders.Rows));
            Assert.All(inPartition.Take(end).Skip(1), r => Assert.Equal("read", r.Header(KafkaHeaders.Snapshot)));
            Assert.DoesNotContain(inPartition.Skip(end + 1), r => r.Headers.TryGetLastBytes(KafkaHeaders.Snapshot, out _));
        }

        var rows = TopicRows.Rows(records.Where(r => r.Header(KafkaHeaders.Kind) == KafkaHeaders.KindChanges));
        Assert.Equal(12000, rows.Count(r => r.Op == "r"));
        Assert.Equal(12000, rows.Where(r => r.Op == "r").Select(r => r["id"]).Distinct().Count());
        // Several chunks, each alone in its Kafka transaction.
        Assert.True(records.Select(r => r.Headers.TryGetLastBytes(KafkaHeaders.SnapshotChunk, out var c) ? System.Text.Encoding.UTF8.GetString(c) : null).Distinct().Count() > 5);
        var offset = OffsetsTopicReader.ReadLatest(new Dictionary<string, string> { ["bootstrap.servers"] = infrastructure.Broker.BootstrapServers },
            config.OffsetsTopic, new OffsetKey(config.Name, config.SlotName, config.DatabaseName), CancellationToken.None);
        Assert.NotNull(offset);
        Assert.Null(offset.Snapshot);

        var keyless = TopicRows.Rows(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "keyless"));
        Assert.Equal(500, keyless.Count(r => r.Op == "r"));
        await infrastructure.DropSlotAsync(config, database);
    }

    [Fact]
    public async Task No_data_mode_delivers_only_changes_after_the_slot()
    {
        var database = await infrastructure.CreateDatabaseAsync("nodata");
        await infrastructure.Postgres.ExecuteAsync(Tables, database);
        var config = infrastructure.Config(database, "nodata", new Dictionary<string, string> { ["snapshot.mode"] = "no_data" });
        await using (var pipeline = await RunningPipeline.StartAsync(config))
        {
            await infrastructure.Postgres.ExecuteAsync("INSERT INTO big VALUES (30001, 'new', 1, 'ok', NULL, now(), NULL)", database);
            await pipeline.WaitForCommittedAsync(await infrastructure.FloorAsync(database), s_catchUp);
        }

        var records = TopicRows.Records(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "big"), snapshotMarkers: true);
        Assert.DoesNotContain(records, r => r.Header(KafkaHeaders.Kind) == KafkaHeaders.KindSnapshot);
        var rows = TopicRows.Rows(records);
        Assert.Equal(["c"], rows.Select(r => r.Op).ToArray());
        await infrastructure.DropSlotAsync(config, database);
    }

    [Fact]
    public async Task Initial_only_snapshots_and_stops_without_streaming()
    {
        var database = await infrastructure.CreateDatabaseAsync("snaponly");
        await infrastructure.Postgres.ExecuteAsync(Tables, database);
        var config = infrastructure.Config(database, "snaponly", new Dictionary<string, string> { ["snapshot.mode"] = "initial_only", ["snapshot.chunk.rows"] = "5000" });
        var runner = new ConnectorRunner(config, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        // Returns by itself once the snapshot is complete.
        await runner.RunAsync(CancellationToken.None).WaitAsync(s_catchUp);
        await infrastructure.Postgres.ExecuteAsync("INSERT INTO big VALUES (40001, 'late', 1, 'ok', NULL, now(), NULL)", database);

        var rows = TopicRows.Rows(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "big"));
        Assert.Equal(12000, rows.Count(r => r.Op == "r"));
        Assert.DoesNotContain(rows, r => r.Op != "r");
        await infrastructure.DropSlotAsync(config, database);
    }

    [Fact]
    public async Task A_connector_killed_inside_the_snapshot_reads_only_the_uncommitted_chunks_again_while_streaming_and_verify_holds()
    {
        var database = await infrastructure.CreateDatabaseAsync("snapkill");
        await infrastructure.Postgres.ExecuteAsync(Tables, database);
        var values = OperationsTests.Values(infrastructure, database, "snapkill", new Dictionary<string, string>
        {
            ["snapshot.chunk.rows"] = "1000",
            ["snapshot.max.threads"] = "2",
            // Tables with a key continue while streaming (a table without one would start the snapshot over).
            ["table.include.list"] = "public.big",
        });
        // The 4th Kafka commit: the start markers, then three chunks; the process dies before its mirror write.
        await using (var first = ConnectorProcess.Start(values, new Dictionary<string, string> { ["WALBRIDGE_FAULT"] = "after-kafka-commit@4" }))
        {
            var deadline = DateTime.UtcNow + s_catchUp;
            while (!first.HasExited && DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }

            Assert.True(first.HasExited, "the fault point must kill the connector inside the snapshot");
        }

        var config = ConnectorConfig.FromDictionary(values);
        var partial = OffsetsTopicReader.ReadLatest(new Dictionary<string, string> { ["bootstrap.servers"] = infrastructure.Broker.BootstrapServers },
            config.OffsetsTopic, new OffsetKey(config.Name, config.SlotName, config.DatabaseName), CancellationToken.None);
        Assert.NotNull(partial?.Snapshot);
        Assert.False(partial.Snapshot.Complete);
        var committedChunks = partial.Snapshot.Tables.Sum(t => t.DoneCount);
        Assert.Equal(3, committedChunks);

        await using (var second = ConnectorProcess.Start(values))
        {
            await second.WaitForOutputAsync("public.big complete", s_catchUp);
            Assert.Contains("was interrupted with 3 of", second.Output, StringComparison.Ordinal);
            Assert.Contains("remaining chunks are read meanwhile in watermark windows", second.Output, StringComparison.Ordinal);
            await infrastructure.Postgres.ExecuteAsync("INSERT INTO big VALUES (50001, 'after resume', 1, 'ok', NULL, now(), NULL)", database);
            var floor = await infrastructure.FloorAsync(database);
            var deadline = DateTime.UtcNow + s_catchUp;
            while (DateTime.UtcNow < deadline)
            {
                var latest = OffsetsTopicReader.ReadLatest(new Dictionary<string, string> { ["bootstrap.servers"] = infrastructure.Broker.BootstrapServers },
                    config.OffsetsTopic, new OffsetKey(config.Name, config.SlotName, config.DatabaseName), CancellationToken.None);
                if (latest is not null && latest.CommitLsn >= floor)
                {
                    break;
                }

                await Task.Delay(300);
            }

            await second.TerminateAsync(TimeSpan.FromSeconds(30));
        }

        var report = await PipelineVerifier.VerifyAsync(config, null, CancellationToken.None);
        Assert.True(report.Passed, string.Join("\n", report.Tables.SelectMany(t => t.Differences).Concat(report.OffsetProblems)));
        Assert.All(report.Tables, t => Assert.Equal(0, t.DuplicateRecords));
        // One snapshot: its committed chunks at the snapshot LSN, the others read in windows while streaming; no row
        // read twice (the chunk that was not committed was never visible).
        var records = TopicRows.Records(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "big"), snapshotMarkers: true);
        var markers = records.Where(r => r.Header(KafkaHeaders.Kind) == KafkaHeaders.KindSnapshot).ToList();
        Assert.Equal(["end", "start"], markers.Select(m => m.Header(KafkaHeaders.Snapshot)).Order().ToArray());
        Assert.Single(markers.Select(m => m.Header(KafkaHeaders.SnapshotLsn)).Distinct());
        Assert.DoesNotContain(markers, m => m.Headers.TryGetLastBytes(KafkaHeaders.SnapshotMode, out _));
        var rows = TopicRows.Rows(records.Where(r => r.Header(KafkaHeaders.Kind) == KafkaHeaders.KindChanges));
        var reads = rows.Where(r => r.Op == "r").ToList();
        Assert.Equal(12000, reads.Count);
        Assert.Equal(12000, reads.Select(r => r["id"]).Distinct().Count());
        Assert.Equal(partial.Snapshot.Tables.Sum(t => t.Rows), reads.Count(r => r.CommitLsn == partial.Snapshot.Lsn));
        await infrastructure.DropSlotAsync(config, database);
    }

    [Fact]
    public async Task When_needed_snapshots_again_after_the_slot_was_dropped_and_the_replay_drops_rows_deleted_in_the_gap()
    {
        var database = await infrastructure.CreateDatabaseAsync("needed");
        await infrastructure.Postgres.ExecuteAsync(Tables, database);
        var config = infrastructure.Config(database, "needed", new Dictionary<string, string> { ["snapshot.mode"] = "when_needed", ["snapshot.chunk.rows"] = "4000" });
        await using (var pipeline = await RunningPipeline.StartAsync(config))
        {
            await infrastructure.Postgres.ExecuteAsync("INSERT INTO big VALUES (60001, 'first run', 1, 'ok', NULL, now(), NULL)", database);
            await pipeline.WaitForCommittedAsync(await infrastructure.FloorAsync(database), s_catchUp);
        }

        // The gap: the slot goes, and changes happen that no slot keeps.
        await infrastructure.Postgres.ExecuteAsync($"""
            SELECT pg_drop_replication_slot('{config.SlotName}');
            DELETE FROM big WHERE id <= 100;
            UPDATE big SET label = 'in the gap' WHERE id BETWEEN 101 AND 200;
            INSERT INTO big VALUES (60002, 'gap', 1, 'ok', NULL, now(), NULL);
            """, database);
        var log = new CapturingLogger();
        await using (var pipeline = await RunningPipeline.StartAsync(config, log))
        {
            await infrastructure.Postgres.ExecuteAsync("INSERT INTO big VALUES (60003, 'second run', 1, 'ok', NULL, now(), NULL)", database);
            await pipeline.WaitForCommittedAsync(await infrastructure.FloorAsync(database), s_catchUp);
        }

        Assert.Contains(log.Lines, l => l.Contains("when_needed takes a new snapshot", StringComparison.Ordinal));
        var records = TopicRows.Records(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "big"), snapshotMarkers: true);
        var starts = records.Where(r => r.Header(KafkaHeaders.Kind) == KafkaHeaders.KindSnapshot && r.Header(KafkaHeaders.Snapshot) == "start")
            .Select(r => r.Header(KafkaHeaders.SnapshotLsn)).ToList();
        Assert.Equal(2, starts.Distinct().Count());
        var report = await PipelineVerifier.VerifyAsync(config, null, CancellationToken.None);
        Assert.True(report.Passed, string.Join("\n", report.Tables.SelectMany(t => t.Differences).Concat(report.OffsetProblems)));
        await infrastructure.DropSlotAsync(config, database);
    }

    [Fact]
    public void An_unknown_snapshot_mode_is_a_configuration_error_naming_the_values()
    {
        var error = Assert.Throws<ConfigurationException>(() => infrastructure.Config("db", "bad", new Dictionary<string, string> { ["snapshot.mode"] = "always" }));
        Assert.Contains("snapshot.mode", error.Message, StringComparison.Ordinal);
        Assert.Contains("when_needed", error.Message, StringComparison.Ordinal);
    }
}
