using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Confluent.Kafka;
using Npgsql;
using WalBridge.Broker;
using WalBridge.Connector.Cli;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Diagnostics;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Kafka;
using WalBridge.Connector.Pipeline;
using WalBridge.Connector.Queue;
using WalBridge.Connector.Source;
using WalBridge.Connector.Verification;
using WalBridge.DevTools.Embedded;
using WalBridge.Offsets;
using WalBridge.SchemaRegistry;

namespace WalBridge.DevTools.Chaos;

/// <summary>
/// <c>connector chaos</c>: crash and fault scenarios against a real PostgreSQL and the local broker
/// while a workload runs, then the exactly-once checks. The connector runs as a child process and
/// is killed with SIGKILL at every fault point and at random moments; PostgreSQL is restarted once
/// and a broker taken down and up once. After every crash a new producer with the connector's
/// transactional id fences the dead one, and the slot's <c>confirmed_flush_lsn</c> must not be past the
/// position committed in Kafka. At the end: <c>verify</c> (every table rebuilt from its topic equals the
/// source, no duplicates, order kept) and non-vacuity (aborted records exist that read_committed hides,
/// every fault point fired). Prints one line per scenario and <c>scenarios: N, violations: M</c>.
/// With <c>--workload random</c> the source is <see cref="RandomWorkload"/> (seeded, <c>--minutes M</c> long, rounds
/// of the same crashes in a seeded order) and <see cref="RandomCheck"/> adds its checks: both readers' rebuilt tables,
/// every committed transaction in each topic it changed, the logical messages (docs/chaos.md).
/// </summary>
internal static partial class ChaosCommand
{
    private const string Database = "chaos";

    public static async Task<int> RunAsync(string[] args)
    {
        var options = new CliArguments(args, ["--rounds", "--plugin", "--seed", "--workload", "--minutes", "--set", "--without", "--outage-seconds", "--prefill"], ["--quick", "--keep-logs"]);
        var quick = options.Flag("--quick");
        var rounds = options.Int("--rounds", quick ? 1 : 3, 1, 100);
        var plugin = options.Value("--plugin") ?? "pgoutput";
        if (plugin is not ("pgoutput" or "wal2arrow"))
        {
            throw new UsageException($"--plugin must be pgoutput or wal2arrow, found '{plugin}'.");
        }

        var workloadName = options.Value("--workload") ?? "chaos";
        if (workloadName is not ("chaos" or "random"))
        {
            throw new UsageException($"--workload must be chaos or random, found '{workloadName}'.");
        }

        var randomMode = workloadName == "random";
        var prefill = options.Int("--prefill", 0, 0, 100_000_000);
        if (randomMode && prefill > 0)
        {
            throw new UsageException("--prefill applies to the chaos workload only.");
        }
        if (!randomMode && (options.Value("--minutes") is not null || options.Value("--without") is not null))
        {
            throw new UsageException("--minutes and --without apply to --workload random only.");
        }

        var minutes = options.Int("--minutes", 1, 1, 24 * 60);
        // P5: Kafka down this long while PostgreSQL keeps writing (0: not run; the suite's long mode runs 300).
        var outageSeconds = options.Int("--outage-seconds", 0, 0, 24 * 3600);
        // Streamed transactions (and so the streaming fault points) exist only with pgoutput; watermark windows only while
        // a snapshot is read (the --prefill scenarios kill inside one; the rounds of streaming scenarios have none).
        bool Applicable(FaultPoint point) => point != FaultPoint.InsideWatermarkWindow && (plugin == "pgoutput" || !FaultInjection.IsStreamingPoint(point));
        var without = (options.Value("--without") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var seed = options.Int("--seed", 20261121, 0, int.MaxValue);
        // The random workload draws from the seed itself; the kill schedule from a generator of its own.
        var random = new Random(randomMode ? seed ^ 0x3C6EF372 : seed);
        var clock = Stopwatch.StartNew();
        var logs = Path.Combine(Path.GetTempPath(), $"walbridge-chaos-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}");
        Directory.CreateDirectory(logs);
        var violations = new List<string>();
        var scenarios = 0;
        void Report(string scenario, string? violation, string detail)
        {
            scenarios++;
            if (violation is null)
            {
                Console.WriteLine($"[{clock.Elapsed.TotalSeconds,6:F1}s] scenario {scenarios,2} {scenario}: ok ({detail})");
            }
            else
            {
                violations.Add($"{scenario}: {violation}");
                Console.WriteLine($"[{clock.Elapsed.TotalSeconds,6:F1}s] scenario {scenarios,2} {scenario}: VIOLATION: {violation} ({detail})");
            }
        }

        Console.WriteLine(randomMode
            ? $"chaos: random workload, seed {seed}, {minutes} minute(s), plugin {plugin}{string.Concat(options.Values("--set").Select(v => ", " + v))}{(without.Length > 0 ? ", without " + string.Join(",", without) : "")}; connector logs in {logs}"
            : $"chaos: {(quick ? "quick" : "full")} run, {rounds} round(s), plugin {plugin}{string.Concat(options.Values("--set").Select(v => ", " + v))}; connector logs in {logs}");
        // A small logical_decoding_work_mem makes PostgreSQL stream the large transactions
        // (protocol 2) while they are in progress, so the spill path and subtransaction aborts run too.
        await using var postgres = await TemporaryPostgres.StartAsync(new Dictionary<string, string>
        {
            ["wal_sender_timeout"] = "20s",
            ["logical_decoding_work_mem"] = "256kB",
        });
        await using var broker = await LocalBroker.StartAsync(3);
        await postgres.ExecuteAsync($"CREATE DATABASE {Database}");
        await postgres.ExecuteAsync(randomMode ? RandomWorkload.Schema : ChaosWorkload.Schema, Database);
        if (prefill > 0)
        {
            await postgres.ExecuteAsync(ChaosWorkload.Prefill(prefill), Database);
        }
        var state = Path.Combine(logs, "state");
        var configFile = Path.Combine(logs, "connector.properties");
        var values = new Dictionary<string, string>
        {
            ["name"] = "chaos",
            ["database.hostname"] = postgres.Host,
            ["database.port"] = postgres.Port.ToString(CultureInfo.InvariantCulture),
            ["database.user"] = postgres.User,
            ["database.dbname"] = Database,
            ["database.sslmode"] = "disable",
            ["topic.prefix"] = "chaos",
            ["plugin"] = plugin,
            ["state.dir"] = state,
            ["heartbeat.interval.ms"] = "1000",
            ["transaction.max.source.transactions"] = "20",
            ["kafka.bootstrap.servers"] = broker.BootstrapServers,
            // Any free port: other runs on this machine may use the default one.
            ["operations.listen"] = "127.0.0.1:0",
            // The random workload's rows carry ~200 KB TOAST values (twice under REPLICA IDENTITY FULL): Kafka's default limit.
            ["kafka.message.max.bytes"] = randomMode ? "1000000" : "300000",
        };
        foreach (var assignment in options.Values("--set"))
        {
            var (key, value) = ConfigSource.ParseOverride(assignment);
            values[key] = value;
        }
        // --set output.formats=…debezium-avro… without a registry: the test Schema Registry (or SCHEMA_REGISTRY_URL's).
        await using var registry = values.TryGetValue("output.formats", out var formats) && formats.Contains("debezium-avro", StringComparison.Ordinal)
                                   && !values.ContainsKey("schema.registry.url")
            ? await LocalSchemaRegistry.StartOrExternalAsync()
            : null;
        if (registry is not null)
        {
            values["schema.registry.url"] = registry.Url;
        }

        await File.WriteAllLinesAsync(configFile, values.Select(kv => $"{kv.Key}={kv.Value}"));
        var config = ConnectorConfig.FromDictionary(values);

        using var stopWorkload = new CancellationTokenSource();
        var randomWorkload = randomMode ? new RandomWorkload(postgres.ConnectionString(Database), seed, without) : null;
        using var workload = randomWorkload ?? (IChaosWorkload)new ChaosWorkload(postgres.ConnectionString(Database), random.Next());
        var workloadTask = workload.RunAsync(stopWorkload.Token);
        var firedPoints = new HashSet<FaultPoint>();
        var fatalErrors = new List<string>();
        var slotCreatedAt = Lsn.Zero;
        int restarts = 0, outages = 0;
        Task CheckAckSafetyAsync(ConnectorConfig config, TemporaryPostgres postgres, string scenario, Action<string, string?, string> report, string? earlierViolation = null) =>
            ChaosCommand.CheckAckSafetyAsync(config, postgres, scenario, report, slotCreatedAt, earlierViolation);
        // A connector that stopped by itself (a fatal error) in the random run: reported where it happened.
        string? StoppedByItself(ConnectorProcess connector)
        {
            if (!randomMode || FatalError(connector.Output) is not { } error)
            {
                return null;
            }

            if (!fatalErrors.Contains(error))
            {
                fatalErrors.Add(error);
            }

            return $"the connector stopped by itself with a fatal error: {error}; see {connector.LogPath}";
        }

        async Task FaultPointAsync(FaultPoint point, string label)
        {
            var hit = point is FaultPoint.AfterStreamStop or FaultPoint.SpoolReplay ? random.Next(1, 3) : random.Next(2, 5);
            var spec = point == FaultPoint.MidProduce
                ? $"{FaultInjection.NameOf(point)}@{hit}:{random.Next(1, 3)}"
                : $"{FaultInjection.NameOf(point)}@{hit}";
            var log = Path.Combine(logs, $"{label}-{FaultInjection.NameOf(point)}.log");
            await using var connector = ConnectorProcess.Start(configFile, spec, log);
            var exited = await connector.WaitForExitAsync(TimeSpan.FromSeconds(90));
            var fired = exited && connector.Output.Contains($"fault point {FaultInjection.NameOf(point)} reached", StringComparison.Ordinal);
            if (fired)
            {
                firedPoints.Add(point);
            }
            else
            {
                connector.Kill();
            }

            var scenario = $"kill -9 at {spec}";
            if (!fired)
            {
                Report(scenario, StoppedByItself(connector) ?? $"the fault point did not fire within 90 s (exited: {exited}); see {log}", "");
            }
            else
            {
                await CheckAckSafetyAsync(config, postgres, scenario, Report);
            }
        }

        async Task RandomKillAsync(string label)
        {
            var delay = TimeSpan.FromMilliseconds(random.Next(1500, 6000));
            string? stopped;
            await using (var connector = ConnectorProcess.Start(configFile, null, Path.Combine(logs, $"{label}.log")))
            {
                await Task.Delay(delay);
                stopped = connector.HasExited ? StoppedByItself(connector) : null;
                connector.Kill();
            }
            await CheckAckSafetyAsync(config, postgres, $"kill -9 after {delay.TotalSeconds:F1} s", Report, stopped);
        }

        async Task PostgresRestartAsync()
        {
            await using var connector = ConnectorProcess.Start(configFile, null, Path.Combine(logs, $"postgres-restart-{++restarts}.log"));
            await WaitStreamingAsync(connector);
            await Task.Delay(1500);
            workload.Pause();
            await postgres.RestartAsync(immediate: true);
            workload.Resume();
            var recovered = await WaitForAcknowledgedProgressAsync(postgres, connector, TimeSpan.FromSeconds(90));
            var stopped = recovered ? null : StoppedByItself(connector);
            connector.Kill();
            await CheckAckSafetyAsync(config, postgres, "PostgreSQL crash-restart while streaming", Report,
                recovered ? null : stopped ?? $"the connector did not resume after the restart; see {connector.LogPath}");
        }

        async Task BrokersDownAsync()
        {
            await using var connector = ConnectorProcess.Start(configFile, null, Path.Combine(logs, $"broker-down-up-{++outages}.log"));
            await WaitStreamingAsync(connector);
            await Task.Delay(1000);
            for (var id = 1; id <= 3; id++)
            {
                await broker.BrokerDownAsync(id);
            }

            await Task.Delay(4000);
            for (var id = 1; id <= 3; id++)
            {
                await broker.BrokerUpAsync(id);
            }

            var recovered = await WaitForAcknowledgedProgressAsync(postgres, connector, TimeSpan.FromSeconds(120));
            var stopped = recovered ? null : StoppedByItself(connector);
            connector.Kill();
            await CheckAckSafetyAsync(config, postgres, "all brokers down for 4 s, then up", Report,
                recovered ? null : stopped ?? $"the connector did not resume after the brokers came back; see {connector.LogPath}");
        }

        // C16: the fault point sends SIGTERM instead of SIGKILL; the connector must finish or abort its open Kafka
        // transaction, report its position and exit 0 within the host's shutdown deadline.
        async Task TerminateAtFaultPointAsync(FaultPoint point)
        {
            var spec = point == FaultPoint.MidProduce
                ? $"{FaultInjection.NameOf(point)}@{random.Next(1, 3)}:{random.Next(1, 3)}/term"
                : $"{FaultInjection.NameOf(point)}@{(FaultInjection.IsStreamingPoint(point) ? 1 : random.Next(1, 4))}/term";
            var log = Path.Combine(logs, $"term-{FaultInjection.NameOf(point)}.log");
            await using var connector = ConnectorProcess.Start(configFile, spec, log);
            var deadline = GracefulStop.HostShutdown + TimeSpan.FromSeconds(10);
            var reached = false;
            var clock = Stopwatch.StartNew();
            while (!connector.HasExited && clock.Elapsed < TimeSpan.FromSeconds(90))
            {
                if (connector.Output.Contains("sending the process SIGTERM", StringComparison.Ordinal))
                {
                    reached = true;
                    break;
                }

                await Task.Delay(50);
            }
            var signalled = clock.Elapsed;
            var exited = reached && await connector.WaitForExitAsync(deadline);
            var took = clock.Elapsed - signalled;
            var scenario = $"SIGTERM at {spec}";
            var violation = !reached
                ? StoppedByItself(connector) ?? $"the fault point did not fire within 90 s; see {log}"
                : !exited
                    ? $"the connector did not exit within the shutdown deadline ({deadline.TotalSeconds:F0} s) of SIGTERM; see {log}"
                    : connector.ExitCode != 0 ? $"the connector exited {connector.ExitCode} after SIGTERM; see {log}" : null;
            if (violation is not null)
            {
                connector.Kill();
            }

            await CheckAckSafetyAsync(config, postgres, $"{scenario} (exit 0 after {took.TotalSeconds:F1} s)", Report, violation);
        }

        // C5: the EndTxn response is lost (delayed past the commit's timeout on every broker): the connector must not
        // assume an outcome; a new producer's InitTransactions and the offsets topic decide (checked by verify at the end).
        async Task EndTxnResponseLostAsync()
        {
            await using var connector = ConnectorProcess.Start(configFile, null, Path.Combine(logs, "endtxn-response-lost.log"));
            await WaitStreamingAsync(connector);
            await Task.Delay(1000);
            for (var id = 1; id <= 3; id++)
            {
                await broker.BrokerPushRequestErrorsAsync(id, KafkaApiKey.EndTxn, (Confluent.Kafka.ErrorCode.NoError, (int)(KafkaTransactionLoop.TransactionCallTimeout.TotalMilliseconds + 5000)));
            }

            var recovered = await WaitForAcknowledgedProgressAsync(postgres, connector, TimeSpan.FromSeconds(180));
            await broker.ClearRequestErrorsAsync(KafkaApiKey.EndTxn);

            var stopped = recovered ? null : StoppedByItself(connector);
            connector.Kill();
            await CheckAckSafetyAsync(config, postgres, "EndTxn response lost (delayed past the commit timeout), then progress", Report,
                recovered ? null : stopped ?? $"the connector did not make progress after the lost EndTxn response; see {connector.LogPath}");
        }

        // P4: a hang-style partition to PostgreSQL (every server process stopped) longer than wal_sender_timeout: the
        // connector must not crash-loop or exit, and must resume from what Kafka committed once the server answers again.
        async Task PostgresPartitionAsync()
        {
            await using var connector = ConnectorProcess.Start(configFile, null, Path.Combine(logs, "postgres-partition.log"));
            await WaitStreamingAsync(connector);
            await Task.Delay(1500);
            workload.Pause();
            await postgres.FreezeAsync(true);
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(25)); // wal_sender_timeout is 20 s here
            }
            finally
            {
                await postgres.FreezeAsync(false);
                workload.Resume();
            }
            var alive = !connector.HasExited;
            var recovered = alive && await WaitForAcknowledgedProgressAsync(postgres, connector, TimeSpan.FromSeconds(150));
            var stopped = recovered ? null : StoppedByItself(connector);
            connector.Kill();
            await CheckAckSafetyAsync(config, postgres, "PostgreSQL unreachable (all processes stopped) for 25 s > wal_sender_timeout, then back", Report,
                recovered ? null : stopped ?? $"the connector {(alive ? "did not resume" : "exited")} after the partition; see {connector.LogPath}");
        }

        // P5: Kafka down for minutes while PostgreSQL keeps writing: the connector waits (its memory bounded by the
        // queue), acknowledges nothing new, and delivers everything once Kafka is back (verify at the end).
        async Task LongKafkaOutageAsync(int seconds)
        {
            await using var connector = ConnectorProcess.Start(configFile, null, Path.Combine(logs, "kafka-outage-long.log"));
            await WaitStreamingAsync(connector);
            await Task.Delay(3000);
            var baseline = ProcessSampler.Sample(connector.Id);
            for (var id = 1; id <= 3; id++)
            {
                await broker.BrokerDownAsync(id);
            }

            var peak = baseline;
            var outage = Stopwatch.StartNew();
            while (outage.Elapsed < TimeSpan.FromSeconds(seconds) && !connector.HasExited)
            {
                await Task.Delay(2000);
                var sample = ProcessSampler.Sample(connector.Id);
                if (sample.RssBytes > peak.RssBytes)
                {
                    peak = sample;
                }
            }
            var exitedDuring = connector.HasExited;
            for (var id = 1; id <= 3; id++)
            {
                await broker.BrokerUpAsync(id);
            }

            var recovered = !exitedDuring && await WaitForAcknowledgedProgressAsync(postgres, connector, TimeSpan.FromSeconds(300));
            // Bounded: the queue (queue.max.bytes), librdkafka's own queue and one transaction in memory, with room for the runtime.
            var bound = baseline.RssBytes + config.QueueMaxBytes + (32L << 20) + config.TransactionMemoryBytes + (256L << 20);
            var detail = $"{workload.Transactions:N0} workload transactions so far; RSS {baseline.RssBytes >> 20} MB before, peak {peak.RssBytes >> 20} MB (bound {bound >> 20} MB)";
            var violation = exitedDuring ? StoppedByItself(connector) ?? $"the connector exited during the outage; see {connector.LogPath}"
                : !recovered ? $"the connector did not resume after Kafka came back; see {connector.LogPath}"
                : peak.RssBytes > bound ? $"memory grew past the bound during the outage: {detail}" : null;
            connector.Kill();
            await CheckAckSafetyAsync(config, postgres, $"Kafka down for {seconds} s while PostgreSQL keeps writing ({detail})", Report, violation);
        }

        // In the random run a connector that stops by itself must not turn every later scenario into a timeout.
        async Task WaitStreamingAsync(ConnectorProcess connector)
        {
            if (!randomMode)
            {
                await connector.WaitForOutputAsync("Streaming slot", TimeSpan.FromSeconds(60));
                return;
            }
            try
            {
                await connector.WaitForOutputAsync("Streaming slot", TimeSpan.FromSeconds(60));
            }
            catch (TimeoutException)
            {
                // reported by the scenario (it does not recover)
            }
        }

        try
        {
            var enabled = false;
            if (prefill > 0)
            {
                // Crashes inside the initial snapshot (matrix: kill inside a chunk, between chunks, inside a watermark
                // window, before a commit) while the workload writes: the first start dies in its exported snapshot; each
                // later one continues it while streaming, its remaining chunks read in watermark windows.
                workload.Enable();
                enabled = true;
                foreach (var spec in new[] { "after-kafka-commit@3", "inside-watermark-window@2", "mid-produce@2:1", "after-mirror-write@4", "before-kafka-commit@2" })
                {
                    var log = Path.Combine(logs, $"00-snapshot-{spec.Replace('@', '-').Replace(':', '-')}.log");
                    await using var connector = ConnectorProcess.Start(configFile, spec, log);
                    var exited = await connector.WaitForExitAsync(TimeSpan.FromSeconds(300));
                    var fired = exited && connector.Output.Contains("fault point", StringComparison.Ordinal);
                    if (!fired)
                    {
                        connector.Kill();
                    }

                    var scenario = $"kill -9 inside the initial snapshot ({prefill:N0} pre-filled rows) at {spec}";
                    if (!fired)
                    {
                        Report(scenario, $"the fault point did not fire within 300 s (exited: {exited}); see {log}", "");
                    }
                    else
                    {
                        await CheckAckSafetyAsync(config, postgres, scenario, Report);
                    }
                }
            }

            // The first start creates the slot; the workload waits for it.
            await using (var first = ConnectorProcess.Start(configFile, null, Path.Combine(logs, "00-first-start.log")))
            {
                await first.WaitForOutputAsync("Streaming slot", TimeSpan.FromSeconds(prefill > 0 ? 600 : 60));
                // A new slot is confirmed through its creation point before the connector acknowledges anything.
                slotCreatedAt = Lsn.Parse(await postgres.ScalarAsync<string>(
                    $"SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '{config.SlotName}'", Database));
                if (!enabled)
                {
                    workload.Enable();
                }

                await Task.Delay(2000);
                first.Kill();
            }
            await CheckAckSafetyAsync(config, postgres, "first start", Report);

            if (randomMode)
            {
                // Rounds of every fault point and a PostgreSQL crash-restart (from the second round on also the brokers'
                // outage, which the quick default runs cover already), in a seeded order with random kills in between,
                // while the time lasts (at least one round); then random kills until it is up.
                var deadline = clock.Elapsed + TimeSpan.FromMinutes(minutes);
                var kills = 0;
                for (var round = 1; round == 1 || clock.Elapsed + TimeSpan.FromSeconds(60) < deadline; round++)
                {
                    var plan = new List<Func<Task>>();
                    foreach (var point in Enum.GetValues<FaultPoint>().Where(Applicable))
                    {
                        plan.Add(() => FaultPointAsync(point, $"r{round}"));
                    }

                    plan.Add(PostgresRestartAsync);
                    if (round > 1)
                    {
                        plan.Add(BrokersDownAsync);
                    }

                    foreach (var step in plan.OrderBy(_ => random.Next()).ToList())
                    {
                        await step();
                        if (random.Next(2) == 0 && clock.Elapsed < deadline)
                        {
                            await RandomKillAsync($"random-kill-{kills++}");
                        }
                    }
                }
                while (clock.Elapsed < deadline)
                {
                    await RandomKillAsync($"random-kill-{kills++}");
                }
            }
            else
            {
                for (var round = 1; round <= rounds; round++)
                {
                    foreach (var point in Enum.GetValues<FaultPoint>().Where(Applicable))
                    {
                        await FaultPointAsync(point, $"r{round}");
                    }

                    for (var i = 0; i < (quick ? 2 : 4); i++)
                    {
                        await RandomKillAsync($"r{round}-random-{i}");
                    }

                    if (round == 1)
                    {
                        await PostgresRestartAsync();
                        await BrokersDownAsync();
                        await EndTxnResponseLostAsync();
                        if (plugin == "pgoutput")
                        {
                            await PostgresPartitionAsync();
                        }
                    }
                }

                // C16: SIGTERM at every fault point: a graceful stop from exactly there, within the shutdown deadline.
                foreach (var point in Enum.GetValues<FaultPoint>().Where(Applicable))
                {
                    await TerminateAtFaultPointAsync(point);
                }

                if (outageSeconds > 0)
                {
                    await LongKafkaOutageAsync(outageSeconds);
                }
            }

            // Quiesce: stop the workload, let a healthy connector catch up, stop it with SIGTERM.
            await stopWorkload.CancelAsync();
            await workloadTask;
            var floor = await workload.LastPositionAsync();
            await using (var final = ConnectorProcess.Start(configFile, null, Path.Combine(logs, "final.log")))
            {
                var caughtUp = await WaitForConfirmedAsync(postgres, floor, final, TimeSpan.FromSeconds(180))
                    // A snapshot continued while streaming (its remaining chunks in watermark windows) must be complete too.
                    && await WaitForSnapshotsAsync(config, final, TimeSpan.FromSeconds(300));
                final.Terminate();
                var exited = await final.WaitForExitAsync(TimeSpan.FromSeconds(45));
                var detail = $"{workload.Transactions:N0} workload transactions, slot confirmed through {floor}";
                if (!caughtUp)
                {
                    Report("final catch-up", StoppedByItself(final) ?? $"the connector did not catch up to {floor} within 180 s (and complete any snapshot within 300 s more); see {final.LogPath}", detail);
                }
                else if (!exited || final.ExitCode != 0)
                {
                    Report("final catch-up and SIGTERM", $"the connector did not exit 0 within 45 s of SIGTERM (exited: {exited}, code {(exited ? final.ExitCode : -1)}); see {final.LogPath}", detail);
                }
                else
                {
                    Report("final catch-up and SIGTERM", null, detail + ", exit 0");
                }
            }
            await CheckAckSafetyAsync(config, postgres, "after the final stop", Report);

            var report = await PipelineVerifier.VerifyAsync(config, line => Console.WriteLine($"         {line}"), CancellationToken.None);
            Report("verify (read_committed replay equals the source, no duplicates, order, offsets)",
                report.Passed ? null : "verification failed (details above)",
                $"{report.Tables.Count} tables, {report.Tables.Sum(t => t.SourceRows):N0} rows, {report.Tables.Sum(t => t.Changes):N0} changes, offsets at {report.LatestOffset?.CommitLsn}");

            var check = randomWorkload is null ? null : await RandomCheck.RunAsync(config, randomWorkload, report, fatalErrors, Report);

            var (committed, uncommitted) = await Task.Run(() => CountRecords(config, broker.BootstrapServers, workload.TableNames, stopEarly: randomMode));
            Report("non-vacuity: aborted Kafka transactions exist and read_committed hides them",
                uncommitted > committed ? null : $"read_uncommitted saw {uncommitted} records, read_committed {committed}: no aborted records, the crashes tested nothing",
                $"read_uncommitted {uncommitted:N0} records, read_committed {committed:N0}");
            var missing = Enum.GetValues<FaultPoint>().Where(Applicable).Where(p => !firedPoints.Contains(p)).ToList();
            Report("non-vacuity: every fault point fired",
                missing.Count == 0 ? null : $"never fired: {string.Join(", ", missing.Select(FaultInjection.NameOf))}",
                string.Join(", ", firedPoints.Select(FaultInjection.NameOf)));
            if (randomWorkload is not null && check is not null)
            {
                RandomCheck.PrintSummary(randomWorkload, check);
            }
        }
        finally
        {
            await stopWorkload.CancelAsync();
            try
            {
                await workloadTask;
            }
            catch (Exception e) when (e is OperationCanceledException or NpgsqlException)
            {
            }
        }

        Console.WriteLine($"scenarios: {scenarios}, violations: {violations.Count}");
        if (violations.Count == 0 && !options.Flag("--keep-logs"))
        {
            Directory.Delete(logs, recursive: true);
        }

        return violations.Count == 0 ? 0 : 1;
    }

    /// <summary>The connector's fatal error in its log (the exception logged with "Fatal error, stopping"), or null.</summary>
    private static string? FatalError(string output)
    {
        const string marker = "Fatal error, stopping";
        var at = output.IndexOf(marker, StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }

        var line = output[at..].Split('\n')[0];
        // "Fatal error, stopping (slot …; nothing later was acknowledged) Exception: message ---> inner …   at …"
        var start = line.IndexOf(") ", StringComparison.Ordinal);
        var error = start >= 0 ? line[(start + 2)..] : line;
        foreach (var end in new[] { " ---> ", "   at " })
        {
            var cut = error.IndexOf(end, StringComparison.Ordinal);
            if (cut > 0)
            {
                error = error[..cut];
            }
        }
        error = error.Trim();
        return error.Length > 400 ? error[..400] + "…" : error;
    }

    /// <summary>
    /// Fences the dead instance (a producer with its transactional id ends its open transaction),
    /// then checks the ack-safety invariant: the slot's confirmed_flush_lsn is not past the position
    /// committed in Kafka.
    /// </summary>
    private static async Task CheckAckSafetyAsync(ConnectorConfig config, TemporaryPostgres postgres, string scenario,
        Action<string, string?, string> report, Lsn slotCreatedAt, string? earlierViolation)
    {
        await Task.Run(() =>
        {
            using var fence = new ProducerBuilder<byte[]?, byte[]?>(new ProducerConfig(config.Kafka.ToDictionary(kv => kv.Key, kv => kv.Value))
            {
                TransactionalId = $"walbridge-{config.Name}",
                EnableIdempotence = true,
            }).Build();
            fence.InitTransactions(TimeSpan.FromSeconds(60));
        });
        var offset = await Task.Run(() => OffsetsTopicReader.ReadLatest(config.Kafka, config.OffsetsTopic,
            new OffsetKey(config.Name, config.SlotName, config.DatabaseName), CancellationToken.None));
        var confirmedText = await postgres.ScalarAsync<string?>(
            $"SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '{config.SlotName}'", Database);
        var confirmed = confirmedText is null ? Lsn.Zero : Lsn.Parse(confirmedText);
        var kafka = offset?.CommitLsn ?? Lsn.Zero;
        var detail = $"slot confirmed {confirmed}, Kafka committed {kafka}";
        if (earlierViolation is not null)
        {
            report(scenario, earlierViolation, detail);
        }
        // While Kafka holds an unfinished snapshot nothing was streamed: a slot created again for it starts ahead.
        else if (confirmed > kafka && confirmed > slotCreatedAt && offset?.Snapshot is not { Complete: false })
        {
            report(scenario, $"ack safety: the slot is confirmed through {confirmed}, past the position committed in Kafka ({kafka})", detail);
        }
        else
        {
            report(scenario, null, detail);
        }
    }

    private static async Task<bool> WaitForAcknowledgedProgressAsync(TemporaryPostgres postgres, ConnectorProcess connector, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                var target = Lsn.Parse(await postgres.ScalarAsync<string>("SELECT pg_current_wal_insert_lsn()::text", Database));
                return await WaitForConfirmedAsync(postgres, target, connector, deadline - DateTime.UtcNow);
            }
            catch (NpgsqlException)
            {
                await Task.Delay(500);
            }
        }
        return false;
    }

    /// <summary>Waits until the committed offsets record holds no unfinished snapshot (initial or incremental).</summary>
    private static async Task<bool> WaitForSnapshotsAsync(ConnectorConfig config, ConnectorProcess connector, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline && !connector.HasExited)
        {
            var offset = await Task.Run(() => OffsetsTopicReader.ReadLatest(config.Kafka, config.OffsetsTopic,
                new OffsetKey(config.Name, config.SlotName, config.DatabaseName), CancellationToken.None));
            if (offset is not null && offset.Snapshot is null or { Complete: true } && offset.Incremental is null or { Tables.Count: 0 })
            {
                return true;
            }

            await Task.Delay(500);
        }

        return false;
    }

    /// <summary>Waits until the slot is confirmed through <paramref name="target"/> (acknowledged, so committed in Kafka).</summary>
    private static async Task<bool> WaitForConfirmedAsync(TemporaryPostgres postgres, Lsn target, ConnectorProcess connector, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline && !connector.HasExited)
        {
            try
            {
                var text = await postgres.ScalarAsync<string?>("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'walbridge_chaos'", Database);
                if (text is not null && Lsn.Parse(text) >= target)
                {
                    return true;
                }
            }
            catch (NpgsqlException)
            {
            }
            await Task.Delay(250);
        }
        return false;
    }

    /// <summary>
    /// Records of the table topics (every partition) as read_committed and read_uncommitted consumers see them. With
    /// <paramref name="stopEarly"/>, topic by topic until one shows aborted records (read_uncommitted sees a
    /// superset of read_committed in every topic, so one is enough for "aborted records exist").
    /// </summary>
    private static (long Committed, long Uncommitted) CountRecords(ConnectorConfig config, string bootstrap, IReadOnlyList<string> tables, bool stopEarly)
    {
        if (stopEarly)
        {
            long committedSoFar = 0, uncommittedSoFar = 0;
            foreach (var table in tables)
            {
                var (c, u) = CountRecords(config, bootstrap, [table], stopEarly: false);
                committedSoFar += c;
                uncommittedSoFar += u;
                if (u > c)
                {
                    break;
                }
            }
            return (committedSoFar, uncommittedSoFar);
        }
        long Count(IsolationLevel isolation)
        {
            var consumerConfig = new ConsumerConfig
            {
                BootstrapServers = bootstrap,
                GroupId = $"walbridge-chaos-count-{Guid.NewGuid():N}",
                EnableAutoCommit = false,
                IsolationLevel = isolation,
                EnablePartitionEof = true,
                AutoOffsetReset = AutoOffsetReset.Earliest,
            };
            long total = 0;
            foreach (var table in tables)
            {
                using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(consumerConfig).Build();
                var topic = config.TopicFor("public", table);
                // Every partition with records (topic.partitions of them); a table the connector never got to (it
                // stopped early) has no topic: nothing to count.
                var pending = new HashSet<int>();
                try
                {
                    using var admin = new DependentAdminClientBuilder(consumer.Handle).Build();
                    var partitions = admin.GetMetadata(topic, TimeSpan.FromSeconds(10)).Topics.FirstOrDefault(t => t.Topic == topic)?.Partitions ?? [];
                    foreach (var partition in partitions)
                    {
                        if (consumer.QueryWatermarkOffsets(new TopicPartition(topic, partition.PartitionId), TimeSpan.FromSeconds(10)).High.Value > 0)
                        {
                            pending.Add(partition.PartitionId);
                        }
                    }
                }
                catch (KafkaException)
                {
                    continue;
                }

                if (pending.Count == 0)
                {
                    continue;
                }

                consumer.Assign(pending.Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
                while (pending.Count > 0 && DateTime.UtcNow < deadline)
                {
                    var result = consumer.Consume(TimeSpan.FromMilliseconds(200));
                    if (result is null)
                    {
                        continue;
                    }

                    if (result.IsPartitionEOF)
                    {
                        pending.Remove(result.Partition.Value);
                        continue;
                    }

                    total++;
                }
            }
            return total;
        }
        return (Count(IsolationLevel.ReadCommitted), Count(IsolationLevel.ReadUncommitted));
    }

    /// <summary>The connector as a child process (<c>run --config</c>), its output captured to a log file.</summary>
    internal sealed partial class ConnectorProcess : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _output = new();
        private readonly StreamWriter _log;

        private ConnectorProcess(Process process, string logPath)
        {
            _process = process;
            LogPath = logPath;
            _log = new StreamWriter(logPath) { AutoFlush = true };
        }

        public string LogPath { get; }
        public int Id => _process.Id;
        public bool HasExited => _process.HasExited;
        public int ExitCode => _process.ExitCode;

        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        public static ConnectorProcess Start(string configFile, string? fault, string logPath)
        {
            var start = new ProcessStartInfo("dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            // The product itself (its own assembly beside this one), as a service manager would run it.
            start.ArgumentList.Add(typeof(WalBridge.Connector.Pipeline.ConnectorRunner).Assembly.Location);
            start.ArgumentList.Add("run");
            start.ArgumentList.Add("--config");
            start.ArgumentList.Add(configFile);
            if (fault is not null)
            {
                start.Environment[FaultInjection.EnvironmentVariable] = fault;
            }

            var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the connector");
            var connector = new ConnectorProcess(process, logPath);
            process.OutputDataReceived += (_, e) => connector.Append(e.Data);
            process.ErrorDataReceived += (_, e) => connector.Append(e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return connector;
        }

        private void Append(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (_output)
            {
                _output.AppendLine(line);
                _log.WriteLine(line);
            }
        }

        public async Task WaitForOutputAsync(string text, TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (!Output.Contains(text, StringComparison.Ordinal))
            {
                if (_process.HasExited || DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"The connector did not print '{text}' (exited: {_process.HasExited}); see {LogPath}");
                }

                await Task.Delay(100);
            }
        }

        public async Task<bool> WaitForExitAsync(TimeSpan timeout)
        {
            using var cancel = new CancellationTokenSource(timeout);
            try
            {
                await _process.WaitForExitAsync(cancel.Token);
                return true;
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }

        /// <summary>SIGKILL: no cleanup, like a crash.</summary>
        public void Kill()
        {
            if (!_process.HasExited)
            {
                _ = KillProcess(_process.Id, 9);
                _process.WaitForExit(10_000);
            }
        }

        /// <summary>SIGTERM: the graceful stop a service manager sends.</summary>
        public void Terminate()
        {
            if (!_process.HasExited)
            {
                _ = KillProcess(_process.Id, 15);
            }
        }

        public async ValueTask DisposeAsync()
        {
            Kill();
            await Task.Delay(50);
            lock (_output)
            {
                _log.Dispose();
            }

            _process.Dispose();
        }

        [LibraryImport("libc", EntryPoint = "kill")]
        private static partial int KillProcess(int pid, int signal);
    }
}
