using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Npgsql;
using WalBridge.Broker;
using WalBridge.Connector.Cli;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Pipeline;
using WalBridge.Connector.Queue;
using WalBridge.Connector.Source;
using WalBridge.Connector.Verification;
using WalBridge.DevTools.Embedded;
using WalBridge.SchemaRegistry;

namespace WalBridge.DevTools.Demo;

/// <summary>
/// <c>connector demo</c>: everything on embedded defaults. Starts a throwaway PostgreSQL and the
/// local broker, creates sample tables, runs a mixed workload while the bridge streams, then reads
/// every topic back with <c>read_committed</c> and compares with the source: with <c>--formats</c>, each
/// format's topics (the Debezium ones rebuilt from their events; debezium-avro with the test Schema Registry), one
/// <c>verified:</c> line per format. Stops everything it started, also on failure or Ctrl-C.
/// </summary>
internal static class DemoCommand
{
    /// <summary>Rows in the demo's tables before the connector starts (its initial snapshot).</summary>
    private const int PrefilledCustomers = 20_000;
    private const int PrefilledOrders = 40_000;
    private const string Database = "demo";

    public static async Task<int> RunAsync(string[] args)
    {
        var options = new CliArguments(args, ["--seconds", "--plugin", "--rate", "--formats"], ["--verbose"]);
        var seconds = options.Int("--seconds", 30, 1, 86_400);
        var plugin = options.Value("--plugin") ?? "pgoutput";
        if (plugin is not ("pgoutput" or "wal2arrow"))
        {
            throw new UsageException($"--plugin must be pgoutput or wal2arrow, found '{plugin}'.");
        }

        var rate = options.Int("--rate", 200, 1, 100_000);
        var formats = options.Value("--formats") ?? "arrow";
        var formatList = formats.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (formatList.Length == 0 || formatList.Any(f => OutputSettings.Parse(f) is null))
        {
            throw new UsageException($"--formats takes a comma-separated list of arrow, debezium-json and debezium-avro, found '{formats}'.");
        }

        var avro = formatList.Contains(OutputSettings.Name(OutputFormat.DebeziumAvro));

        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };
        var clock = Stopwatch.StartNew();
        Say(clock, "starting a throwaway PostgreSQL 15 and the local Kafka-protocol broker (3 brokers)…");
        var postgresTask = TemporaryPostgres.StartAsync(cancellationToken: cancel.Token);
        var brokerTask = LocalBroker.StartAsync(3, cancel.Token);
        // debezium-avro needs a Schema Registry: the test registry in its own process (or SCHEMA_REGISTRY_URL's).
        var registryTask = avro ? LocalSchemaRegistry.StartOrExternalAsync(cancel.Token) : Task.FromResult<LocalSchemaRegistry?>(null)!;
        TemporaryPostgres? postgres = null;
        LocalBroker? broker = null;
        LocalSchemaRegistry? registry = null;
        var stateDirectory = Path.Combine(Path.GetTempPath(), $"walbridge-demo-state-{Guid.NewGuid():N}");
        try
        {
            try
            {
                postgres = await postgresTask;
            }
            finally
            {
                try
                {
                    broker = await brokerTask;
                }
                finally
                {
                    registry = await registryTask;
                }
            }
            Say(clock, $"PostgreSQL on 127.0.0.1:{postgres.Port}, broker at {broker.BootstrapServers}" + (registry is null ? "" : $", Schema Registry at {registry.Url}"));

            await postgres.ExecuteAsync($"CREATE DATABASE {Database}", cancellationToken: cancel.Token);
            await postgres.ExecuteAsync(DemoWorkload.Schema, Database, cancel.Token);
            await postgres.ExecuteAsync(DemoWorkload.Prefill(PrefilledCustomers, PrefilledOrders), Database, cancel.Token);
            Say(clock, $"pre-filled {PrefilledCustomers:N0} customers and {PrefilledOrders:N0} orders: the connector delivers them as its initial snapshot (snapshot.mode = initial)");

            var settings = new Dictionary<string, string>
            {
                ["name"] = "demo",
                ["database.hostname"] = postgres.Host,
                ["database.port"] = postgres.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["database.user"] = postgres.User,
                ["database.dbname"] = Database,
                ["database.sslmode"] = "disable",
                ["plugin"] = plugin,
                ["topic.prefix"] = "demo",
                ["state.dir"] = stateDirectory,
                ["kafka.bootstrap.servers"] = broker.BootstrapServers,
                ["output.formats"] = string.Join(",", formatList),
                // Several chunks per table, so the demo shows the snapshot's chunks and progress.
                ["snapshot.chunk.rows"] = "10000",
            };
            if (registry is not null)
            {
                settings["schema.registry.url"] = registry.Url;
            }

            var config = ConnectorConfig.FromDictionary(settings);

            using var loggerFactory = LoggerFactory.Create(b => b
                .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; })
                .SetMinimumLevel(options.Flag("--verbose") ? LogLevel.Debug : LogLevel.Warning));
            var runner = new ConnectorRunner(config, loggerFactory.CreateLogger("walbridge"));
            using var stopConnector = CancellationTokenSource.CreateLinkedTokenSource(cancel.Token);
            var connector = runner.RunAsync(stopConnector.Token);
            // The workload starts only once the slot exists: the slot keeps every change from its creation on.
            await Task.WhenAny(runner.Progress.SourceReady, connector);
            if (connector.IsCompleted)
            {
                await connector;
            }

            Say(clock, $"streaming tables {string.Join(", ", DemoWorkload.Tables.Select(t => $"public.{t}"))} → topics demo.public.* as {string.Join(", ", formatList)}; workload for {seconds} s at about {rate} transactions/s");
            var workload = new DemoWorkload(postgres.ConnectionString(Database));
            var workloadTask = workload.RunAsync(TimeSpan.FromSeconds(seconds), rate, cancel.Token);
            var lastRows = 0L;
            var lastTick = clock.Elapsed;
            var snapshotShown = false;
            var snapshotDoneShown = false;
            while (!workloadTask.IsCompleted)
            {
                await Task.WhenAny(workloadTask, Task.Delay(1000, cancel.Token));
                if (connector.IsCompleted)
                {
                    break;
                }

                var progress = runner.Progress;
                var now = clock.Elapsed;
                var rowsPerSecond = (progress.CommittedRows - lastRows) / Math.Max((now - lastTick).TotalSeconds, 0.001);
                lastRows = progress.CommittedRows;
                lastTick = now;
                if (progress.Snapshot.Committed is { } snapshot)
                {
                    Say(clock, $"snapshot at {snapshot.Lsn}: " + string.Join(", ", snapshot.Tables.Select(t =>
                        $"{t.Table} {t.Rows:N0} of ~{t.EstimatedRows:N0} rows ({t.DoneCount} of {t.Chunks} chunks)")) + " committed");
                    snapshotShown = true;
                }
                else if (snapshotShown && !snapshotDoneShown)
                {
                    Say(clock, "snapshot complete: every pre-filled row is in Kafka; streaming continues from its consistent point");
                    snapshotDoneShown = true;
                }

                Say(clock, $"source {workload.Transactions,7:N0} txns {workload.Rows,8:N0} rows │ kafka {progress.CommittedTransactions,7:N0} txns {progress.CommittedRows,8:N0} rows {progress.CommittedBytes / 1048576.0,7:N1} MB in {progress.KafkaTransactions:N0} Kafka txns │ {rowsPerSecond,7:N0} rows/s │ lag {Math.Max(0, workload.Transactions - progress.CommittedTransactions):N0} txns");
            }
            if (connector.IsCompleted)
            {
                await connector; // surfaces a fatal error
            }

            await workloadTask;

            Say(clock, "workload done; waiting for the bridge to commit the last transaction…");
            var deadline = clock.Elapsed + TimeSpan.FromSeconds(120);
            while (runner.Progress.Committed < workload.LastCommitFloor)
            {
                if (connector.IsCompleted)
                {
                    await connector;
                }

                if (clock.Elapsed > deadline)
                {
                    throw new TimeoutException($"The bridge did not commit through {workload.LastCommitFloor} within 120 s (committed: {runner.Progress.Committed}).");
                }

                await Task.Delay(100, cancel.Token);
            }
            Say(clock, $"caught up: {runner.Progress.CommittedTransactions:N0} source transactions, {runner.Progress.CommittedRows:N0} rows in {runner.Progress.KafkaTransactions:N0} Kafka transactions, committed through {runner.Progress.Committed}");
            await stopConnector.CancelAsync();
            await connector;

            Say(clock, "reading every topic back with read_committed and comparing with the source…");
            var kafka = new Dictionary<string, string> { ["bootstrap.servers"] = broker.BootstrapServers };
            await using var connection = new NpgsqlConnection(config.ConnectionString(replication: false));
            await connection.OpenAsync(cancel.Token);
            var results = new List<TableComparison>();
            if (config.Output.Includes(OutputFormat.Arrow))
            {
                foreach (var table in DemoWorkload.Tables)
                {
                    var replayed = await Task.Run(() => TopicReplay.Replay(kafka, config.TopicFor("public", table), cancel.Token), cancel.Token);
                    if (replayed.Columns.Count == 0)
                    {
                        replayed.Schema = "public";
                        replayed.Table = table;
                        replayed.Violations.Add("the topic holds no records");
                    }

                    results.Add(Show(clock, await SourceComparison.CompareAsync(connection, replayed, cancel.Token), null));
                }
            }

            using var registryClient = registry is null ? null : new Confluent.SchemaRegistry.CachedSchemaRegistryClient(config.Output.SchemaRegistry);
            foreach (var format in config.Output.Formats.Where(f => f != OutputFormat.Arrow))
            {
                foreach (var table in DemoWorkload.Tables)
                {
                    var topic = $"{config.TopicPrefix}.public.{table}{config.Output.TopicSuffixes[format]}";
                    var rebuilt = await DebeziumReplay.ReplayAsync(kafka, topic, format, config, connection, registryClient, cancel.Token);
                    if (rebuilt.Table.Columns.Count == 0)
                    {
                        rebuilt.Table.Schema = "public";
                        rebuilt.Table.Table = table;
                        rebuilt.Table.Violations.Add("the topic holds no change events");
                    }

                    var comparison = await SourceComparison.CompareAsync(connection, rebuilt.Table, cancel.Token, rebuilt.Uncompared.Keys.ToArray()) with
                    {
                        Format = OutputSettings.Name(format),
                        Uncompared = rebuilt.Uncompared,
                    };
                    results.Add(Show(clock, comparison, topic));
                }
            }

            var passed = true;
            foreach (var format in results.GroupBy(r => r.Format))
            {
                var tables = format.ToList();
                if (tables.All(r => r.Matches))
                {
                    Console.WriteLine(
                        $"verified: {(formatList.Length > 1 || format.Key != "arrow" ? format.Key + ": " : "")}{tables.Count} tables, {tables.Sum(r => r.SourceRows):N0} rows equal to the source, rebuilt from {tables.Sum(r => r.Changes):N0} changes " +
                        $"in {runner.Progress.CommittedTransactions:N0} source transactions, each exactly once (read_committed)");
                }
                else
                {
                    Console.WriteLine($"MISMATCH: {format.Key}: {tables.Count(r => !r.Matches)} of {tables.Count} tables differ from the source (details above)");
                    passed = false;
                }
            }

            return passed ? 0 : 1;
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            Console.WriteLine("demo interrupted");
            return 130;
        }
        catch (Exception e) when (e is not UsageException)
        {
            await Console.Error.WriteLineAsync($"demo failed: {e.GetType().Name}: {e.Message}");
            return 1;
        }
        finally
        {
            Say(clock, registry is null ? "stopping PostgreSQL and the broker…" : "stopping PostgreSQL, the broker and the Schema Registry…");
            if (broker is not null)
            {
                await broker.DisposeAsync();
            }

            if (registry is not null)
            {
                await registry.DisposeAsync();
            }

            if (postgres is not null)
            {
                await postgres.DisposeAsync();
            }

            try
            {
                Directory.Delete(stateDirectory, recursive: true);
            }
            catch (DirectoryNotFoundException)
            {
            }
        }
    }

    /// <summary>Prints one table's comparison (and its differences) and returns it.</summary>
    private static TableComparison Show(Stopwatch clock, TableComparison comparison, string? topic)
    {
        var what = topic is null ? comparison.Table : $"{comparison.Table} ({comparison.Format}, {topic})";
        Say(clock, $"  {what}: {comparison.SourceRows:N0} source rows, {comparison.TopicRows:N0} rebuilt from {comparison.Changes:N0} changes in {comparison.Transactions:N0} transactions: {(comparison.Matches ? "match" : "MISMATCH")}" +
                   (comparison.Uncompared.Count > 0 ? $" (not compared: {string.Join(", ", comparison.Uncompared.Keys)})" : ""));
        foreach (var difference in comparison.Differences)
        {
            Console.WriteLine($"      {difference}");
        }

        return comparison;
    }

    private static void Say(Stopwatch clock, string text) => Console.WriteLine($"[{clock.Elapsed.TotalSeconds,6:F1}s] {text}");
}
