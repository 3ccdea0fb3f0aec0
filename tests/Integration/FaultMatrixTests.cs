using System.Diagnostics;
using System.Globalization;
using System.Text;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Kafka;
using WalBridge.Connector.Operations;
using WalBridge.Connector.Pipeline;
using WalBridge.Connector.Verification;
using WalBridge.DevTools.Embedded;
using WalBridge.Offsets;
using Xunit.Abstractions;

namespace WalBridge.Integration.Tests;

/// <summary>
/// Issue 14, rows of the fault matrix (shared/docs/anchors/reliability.md) as integration tests with their outcome
/// asserted: P7 (slot invalidated by max_slot_wal_keep_size: detected, named, never silent), P12 (ALTER PUBLICATION
/// ADD/DROP TABLE at runtime) and P17 (state.dir's disk full: a named error, nothing acknowledged that is not in Kafka).
/// </summary>
[Collection(InfrastructureCollection.Name)]
public sealed class FaultMatrixTests(Infrastructure infrastructure, ITestOutputHelper output)
{
    [Fact]
    public async Task P7_an_invalidated_slot_is_reported_by_the_metrics_and_the_log_and_refused_with_a_named_fatal_error()
    {
        // Its own server: invalidating a slot needs a WAL limit and a checkpoint, which would hit other tests' slots.
        await using var postgres = await TemporaryPostgres.StartAsync(new Dictionary<string, string>
        {
            ["max_slot_wal_keep_size"] = "32MB",
            ["min_wal_size"] = "32MB",
            ["max_wal_size"] = "64MB",
        });
        await postgres.ExecuteAsync("CREATE DATABASE p7");
        await postgres.ExecuteAsync("CREATE TABLE t (id bigserial PRIMARY KEY, v text)", "p7");
        var config = ConnectorConfig.FromDictionary(new Dictionary<string, string>
        {
            ["name"] = "p7",
            ["database.hostname"] = postgres.Host,
            ["database.port"] = postgres.Port.ToString(CultureInfo.InvariantCulture),
            ["database.user"] = postgres.User,
            ["database.dbname"] = "p7",
            ["database.sslmode"] = "disable",
            ["topic.prefix"] = $"p7{Guid.NewGuid():N}"[..16],
            ["state.dir"] = Path.Combine(Path.GetTempPath(), $"walbridge-test-state-{Guid.NewGuid():N}"),
            ["kafka.bootstrap.servers"] = infrastructure.Broker.BootstrapServers,
            ["operations.source.poll.interval.ms"] = "200",
            ["heartbeat.interval.ms"] = "0",
        });
        var logger = new CapturingLogger();
        var runner = new ConnectorRunner(config, logger);
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var run = runner.RunAsync(stop.Token);
        await WaitAsync(() => runner.Status.State == ConnectorState.Streaming, run, "streaming");
        await postgres.ExecuteAsync("INSERT INTO t (v) SELECT 'x' FROM generate_series(1, 10)", "p7");
        await WaitAsync(() => runner.Progress.CommittedRows >= 10, run, "the first rows committed");
        Assert.Contains("walbridge_slot_wal_status{status=\"reserved\"", await MetricsAsync(runner), StringComparison.Ordinal);

        // Paused (the slot is idle), the server writes past the limit and checkpoints: the slot is invalidated.
        runner.Status.RequestPause();
        await WaitAsync(() => runner.Status.State == ConnectorState.Paused, run, "paused");
        for (var i = 0; i < 6; i++)
        {
            await postgres.ExecuteAsync("INSERT INTO t (v) VALUES ('more'); SELECT pg_switch_wal();", "p7");
        }
        await postgres.ExecuteAsync("CHECKPOINT", "p7");
        Assert.Equal("lost", await postgres.ScalarAsync<string>("SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'walbridge_p7'", "p7"));
        await WaitAsync(() => runner.Source.Last?.WalStatus == "lost", run, "the monitor to see wal_status lost");
        var metrics = await MetricsAsync(runner);
        Assert.Contains("walbridge_slot_wal_status{status=\"lost\",connector=\"p7\",slot=\"walbridge_p7\"} 1", metrics.Replace("{connector=\"p7\",slot=\"walbridge_p7\",status=\"lost\"}", "{status=\"lost\",connector=\"p7\",slot=\"walbridge_p7\"}", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.Contains(logger.Lines, l => l.Contains("Replication slot walbridge_p7 was invalidated", StringComparison.Ordinal));

        // Resumed, the connector refuses the slot: fatal, with what happened and what to do.
        runner.Status.Resume();
        var error = await Assert.ThrowsAsync<SourceNotReadyException>(() => run);
        output.WriteLine(error.Message);
        Assert.Contains("invalidated", error.Message, StringComparison.Ordinal);
        Assert.Contains("max_slot_wal_keep_size", error.Message, StringComparison.Ordinal);
        Assert.Equal(ConnectorState.Failed, runner.Status.State);
        Assert.Equal(FailureKind.Fatal, runner.Status.LastError?.Kind);
    }

    [Fact]
    public async Task P12_tables_added_to_and_dropped_from_the_publication_at_runtime_start_and_stop_streaming_there()
    {
        var database = await infrastructure.CreateDatabaseAsync("p12");
        await infrastructure.Postgres.ExecuteAsync(
            "CREATE TABLE a (id int PRIMARY KEY, phase text); CREATE TABLE b (id int PRIMARY KEY, phase text); CREATE PUBLICATION p12_pub FOR TABLE a", database);
        // An operator-managed publication (no table lists): the connector leaves its table list alone.
        var config = infrastructure.Config(database, "p12", new Dictionary<string, string> { ["publication.name"] = "p12_pub" });
        await using var pipeline = await RunningPipeline.StartAsync(config);
        await infrastructure.Postgres.ExecuteAsync("INSERT INTO a VALUES (1, 'before'); INSERT INTO b VALUES (1, 'before')", database);
        await infrastructure.Postgres.ExecuteAsync("ALTER PUBLICATION p12_pub ADD TABLE b", database);
        await infrastructure.Postgres.ExecuteAsync("INSERT INTO a VALUES (2, 'both'); INSERT INTO b VALUES (2, 'both')", database);
        await infrastructure.Postgres.ExecuteAsync("ALTER PUBLICATION p12_pub DROP TABLE a", database);
        await infrastructure.Postgres.ExecuteAsync("INSERT INTO a VALUES (3, 'after'); INSERT INTO b VALUES (3, 'after')", database);
        var end = Lsn.Parse(await infrastructure.Postgres.ScalarAsync<string>("SELECT pg_current_wal_insert_lsn()::text", database));
        await infrastructure.Postgres.ExecuteAsync("INSERT INTO b VALUES (4, 'marker')", database);
        await pipeline.WaitForCommittedAsync(end, TimeSpan.FromSeconds(60));

        var kafka = new Dictionary<string, string> { ["bootstrap.servers"] = infrastructure.Broker.BootstrapServers };
        var a = await Task.Run(() => TopicReplay.Replay(kafka, config.TopicFor("public", "a"), CancellationToken.None));
        var b = await Task.Run(() => TopicReplay.Replay(kafka, config.TopicFor("public", "b"), CancellationToken.None));
        string Phases(ReplayedTable table) => string.Join(",", table.Rows.Values.SelectMany(r => r).Select(r => r["phase"]).Order(StringComparer.Ordinal));
        output.WriteLine($"a: {Phases(a)}; b: {Phases(b)}");
        // a streams until it leaves the publication, b from when it joins (no history without a snapshot); the topics are the usual ones.
        Assert.Equal("before,both", Phases(a));
        Assert.Equal("after,both,marker", Phases(b));
        Assert.Empty(a.Violations);
        Assert.Empty(b.Violations);
    }

    [Fact]
    public async Task P17_a_full_state_dir_is_a_named_transient_error_and_nothing_is_acknowledged_that_is_not_in_Kafka()
    {
        Assert.True(Environment.UserName == "root", "this test mounts a small tmpfs for state.dir and needs root (CI and the dev machines run as root)");
        var database = await infrastructure.CreateDatabaseAsync("p17");
        await infrastructure.Postgres.ExecuteAsync("CREATE TABLE big (id bigserial PRIMARY KEY, v text)", database);
        var mount = Path.Combine(Path.GetTempPath(), $"walbridge-p17-{Guid.NewGuid():N}");
        Directory.CreateDirectory(mount);
        await RunAsync("mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", mount);
        try
        {
            var config = infrastructure.Config(database, "p17", new Dictionary<string, string>
            {
                ["state.dir"] = Path.Combine(mount, "state"),
                // Every chunk of a transaction goes to the spill file under state.dir.
                ["transaction.memory.bytes"] = "0",
                ["kafka.message.max.bytes"] = "300000",
            });
            var logger = new CapturingLogger();
            var runner = new ConnectorRunner(config, logger);
            using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(4));
            var run = runner.RunAsync(stop.Token);
            await WaitAsync(() => runner.Status.State == ConnectorState.Streaming, run, "streaming");
            await infrastructure.Postgres.ExecuteAsync("INSERT INTO big (v) SELECT md5(g::text) FROM generate_series(1, 100) g", database);
            await WaitAsync(() => runner.Progress.CommittedRows >= 100, run, "the first rows committed");

            // Fill the disk, then a transaction whose spill file cannot fit.
            var filler = Path.Combine(mount, "filler");
            await FillAsync(filler);
            await infrastructure.Postgres.ExecuteAsync("INSERT INTO big (v) SELECT repeat(md5(g::text), 40) FROM generate_series(1, 2500) g", database);
            await WaitAsync(() => runner.Status.LastError is { } e && e.Message.Contains("disk is full", StringComparison.Ordinal), run, "the disk-full error");
            var error = runner.Status.LastError!;
            output.WriteLine(error.Message);
            Assert.Equal(FailureKind.Transient, error.Kind);
            Assert.Contains("state.dir", error.Message, StringComparison.Ordinal);
            Assert.Contains(logger.Lines, l => l.Contains("disk is full", StringComparison.Ordinal) && l.Contains("retrying in", StringComparison.Ordinal));
            Assert.Equal(100, runner.Progress.CommittedRows);
            await AssertAckSafeAsync(config, database);

            // Space again: the connector recovers by itself and delivers the transaction once.
            File.Delete(filler);
            await WaitAsync(() => runner.Progress.CommittedRows >= 2600, run, "the large transaction committed after the disk had space again");
            await AssertAckSafeAsync(config, database);
            await stop.CancelAsync();
            await run;
            var report = await PipelineVerifier.VerifyAsync(config, output.WriteLine, CancellationToken.None);
            Assert.True(report.Passed, "verify failed");
        }
        finally
        {
            await RunAsync("umount", "-l", mount);
            Directory.Delete(mount, recursive: true);
        }
    }

    /// <summary>The slot is never confirmed past the position committed in Kafka (invariant I1).</summary>
    private async Task AssertAckSafeAsync(ConnectorConfig config, string database)
    {
        var kafka = await Task.Run(() => OffsetsTopicReader.ReadLatest(config.Kafka, config.OffsetsTopic, new OffsetKey(config.Name, config.SlotName, config.DatabaseName), CancellationToken.None));
        var confirmed = Lsn.Parse(await infrastructure.Postgres.ScalarAsync<string>(
            $"SELECT coalesce(confirmed_flush_lsn, '0/0')::text FROM pg_replication_slots WHERE slot_name = '{config.SlotName}'", database));
        Assert.True(kafka is not null && confirmed <= kafka.CommitLsn, $"the slot is confirmed through {confirmed}, Kafka holds {kafka?.CommitLsn}");
    }

    private static async Task FillAsync(string path)
    {
        var block = new byte[64 * 1024];
        await using var file = new FileStream(path, FileMode.Create);
        try
        {
            while (true)
            {
                await file.WriteAsync(block);
                await file.FlushAsync();
            }
        }
        catch (IOException)
        {
            // full
        }
    }

    private static async Task<string> MetricsAsync(ConnectorRunner runner)
    {
        using var stream = new MemoryStream();
        await runner.Metrics.WriteAsync(stream, CancellationToken.None);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static async Task WaitAsync(Func<bool> condition, Task run, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (!condition())
        {
            if (run.IsCompleted)
            {
                await run;
                throw new InvalidOperationException($"the connector stopped before {what}");
            }

            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(100);
        }
    }

    private static async Task RunAsync(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"{file} {string.Join(' ', args)}: {await stderr}");
    }
}
