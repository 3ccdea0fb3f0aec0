using System.Diagnostics;
using System.Globalization;
using Npgsql;
using WalBridge.Broker;
using WalBridge.Connector.Cli;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Verification;
using WalBridge.DevTools.Chaos;
using WalBridge.DevTools.Embedded;
using WalBridge.Offsets;

namespace WalBridge.DevTools.Soak;

/// <summary>
/// <c>connector soak --minutes N</c>: one connector process runs for N minutes against a throwaway PostgreSQL and the
/// local broker under the chaos workload's steady load (transfers, inserts, deletes, 1.5 MB streamed transactions),
/// while faults that do not kill it happen at seeded random moments: all brokers down for a few seconds, a PostgreSQL
/// crash-restart, PostgreSQL frozen (a partition), an operator restart through the admin API. Every 5 s its resident
/// memory, open file descriptors, threads and spill space are sampled and printed. At the end the load stops, the
/// connector catches up and is stopped with SIGTERM, <c>verify</c> runs, and the figures must be flat: the last third
/// of the run may not be above the first third (after a warm-up) by more than a fixed margin. Exit code 0 when flat
/// and verified.
/// </summary>
internal static class SoakCommand
{
    private const string Database = "soak";

    public static async Task<int> RunAsync(string[] args)
    {
        var options = new CliArguments(args, ["--minutes", "--plugin", "--seed"], ["--keep-logs"]);
        var minutes = options.Int("--minutes", 10, 1, 7 * 24 * 60);
        var plugin = options.Value("--plugin") ?? "pgoutput";
        if (plugin is not ("pgoutput" or "wal2arrow"))
        {
            throw new UsageException($"--plugin must be pgoutput or wal2arrow, found '{plugin}'.");
        }

        var seed = options.Int("--seed", 14, 0, int.MaxValue);
        var random = new Random(seed);
        var clock = Stopwatch.StartNew();
        void Say(string text) => Console.WriteLine($"[{clock.Elapsed.TotalSeconds,7:F1}s] {text}");
        var logs = Path.Combine(Path.GetTempPath(), $"walbridge-soak-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}");
        Directory.CreateDirectory(logs);
        Say($"soak: {minutes} minute(s), plugin {plugin}, seed {seed}; logs in {logs}");

        await using var postgres = await TemporaryPostgres.StartAsync(new Dictionary<string, string>
        {
            ["wal_sender_timeout"] = "20s",
            ["logical_decoding_work_mem"] = "256kB",
        });
        await using var broker = await LocalBroker.StartAsync(3);
        await postgres.ExecuteAsync($"CREATE DATABASE {Database}");
        await postgres.ExecuteAsync(ChaosWorkload.Schema, Database);
        var port = FreePort();
        var values = new Dictionary<string, string>
        {
            ["name"] = "soak",
            ["database.hostname"] = postgres.Host,
            ["database.port"] = postgres.Port.ToString(CultureInfo.InvariantCulture),
            ["database.user"] = postgres.User,
            ["database.dbname"] = Database,
            ["database.sslmode"] = "disable",
            ["topic.prefix"] = "soak",
            ["plugin"] = plugin,
            ["state.dir"] = Path.Combine(logs, "state"),
            ["heartbeat.interval.ms"] = "1000",
            ["transaction.max.source.transactions"] = "20",
            ["kafka.bootstrap.servers"] = broker.BootstrapServers,
            ["kafka.message.max.bytes"] = "300000",
            ["operations.listen"] = $"127.0.0.1:{port}",
        };
        var configFile = Path.Combine(logs, "connector.properties");
        await File.WriteAllLinesAsync(configFile, values.Select(kv => $"{kv.Key}={kv.Value}"));
        var config = ConnectorConfig.FromDictionary(values);
        var spill = config.SpillDirectory;

        using var workload = new ChaosWorkload(postgres.ConnectionString(Database), random.Next());
        using var stopWorkload = new CancellationTokenSource();
        var workloadTask = workload.RunAsync(stopWorkload.Token);
        var samples = new List<(TimeSpan At, ProcessSample Process, long Spill)>();
        var faults = 0;
        var verdict = new List<string>();
        await using (var connector = ChaosCommand.ConnectorProcess.Start(configFile, null, Path.Combine(logs, "connector.log")))
        {
            await connector.WaitForOutputAsync("Streaming slot", TimeSpan.FromSeconds(90));
            workload.Enable();
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(30) };
            var end = clock.Elapsed + TimeSpan.FromMinutes(minutes);
            var nextFault = clock.Elapsed + TimeSpan.FromSeconds(random.Next(40, 80));
            var nextSample = clock.Elapsed;
            Say("   rss MB │ fds │ threads │ spill MB │ source txns │ note");
            while (clock.Elapsed < end && !connector.HasExited)
            {
                if (clock.Elapsed >= nextSample)
                {
                    var sample = ProcessSampler.Sample(connector.Id);
                    var spilled = SpillBytes(spill);
                    samples.Add((clock.Elapsed, sample, spilled));
                    Say($"{sample.RssBytes / 1048576.0,9:F1} │ {sample.OpenFiles,3} │ {sample.Threads,7} │ {spilled / 1048576.0,8:F1} │ {workload.Transactions,11:N0} │");
                    nextSample += TimeSpan.FromSeconds(5);
                }
                if (clock.Elapsed >= nextFault)
                {
                    faults++;
                    var fault = random.Next(4);
                    Say(fault switch
                    {
                        0 => "fault: all brokers down for 5 s",
                        1 => "fault: PostgreSQL crash-restart",
                        2 => "fault: PostgreSQL frozen for 8 s",
                        _ => "fault: operator restart (POST /connectors/soak/restart)",
                    });
                    switch (fault)
                    {
                        case 0:
                            for (var id = 1; id <= 3; id++)
                            {
                                await broker.BrokerDownAsync(id);
                            }

                            await Task.Delay(5000);
                            for (var id = 1; id <= 3; id++)
                            {
                                await broker.BrokerUpAsync(id);
                            }

                            break;
                        case 1:
                            workload.Pause();
                            await postgres.RestartAsync(immediate: true);
                            workload.Resume();
                            break;
                        case 2:
                            workload.Pause();
                            await postgres.FreezeAsync(true);
                            await Task.Delay(8000);
                            await postgres.FreezeAsync(false);
                            workload.Resume();
                            break;
                        default:
                            using (var response = await http.PostAsync("connectors/soak/restart", null))
                            {
                                response.EnsureSuccessStatusCode();
                            }

                            break;
                    }
                    nextFault = clock.Elapsed + TimeSpan.FromSeconds(random.Next(40, 80));
                }
                await Task.Delay(250);
            }

            if (connector.HasExited)
            {
                verdict.Add($"the connector exited by itself (code {connector.ExitCode}); see {connector.LogPath}");
            }

            await stopWorkload.CancelAsync();
            await workloadTask;
            var floor = await workload.LastPositionAsync();
            Say($"load stopped after {workload.Transactions:N0} transactions; waiting for the connector to acknowledge {floor}…");
            if (!connector.HasExited && !await WaitForConfirmedAsync(postgres, config.SlotName, floor, TimeSpan.FromSeconds(300)))
            {
                verdict.Add($"the connector did not catch up to {floor} within 300 s");
            }

            var final = ProcessSampler.Sample(connector.Id);
            samples.Add((clock.Elapsed, final, SpillBytes(spill)));
            connector.Terminate();
            if (!await connector.WaitForExitAsync(TimeSpan.FromSeconds(90)) || connector.ExitCode != 0)
            {
                verdict.Add($"the connector did not exit 0 within 90 s of SIGTERM; see {connector.LogPath}");
            }
        }

        verdict.AddRange(Flatness(samples));
        var report = await PipelineVerifier.VerifyAsync(config, line => Console.WriteLine($"         {line}"), CancellationToken.None);
        if (!report.Passed)
        {
            verdict.Add("verify failed (details above)");
        }

        Say($"soak: {minutes} minute(s), {faults} faults, {workload.Transactions:N0} source transactions, {samples.Count} samples; " +
            (verdict.Count == 0 ? "flat and verified" : string.Join("; ", verdict)));
        if (verdict.Count == 0 && !options.Flag("--keep-logs"))
        {
            Directory.Delete(logs, recursive: true);
        }

        return verdict.Count == 0 ? 0 : 1;
    }

    /// <summary>
    /// Compares the median of the last third of the samples with the median of the first third after a warm-up (the
    /// first fifth, at least one minute): RSS may grow by 25 % + 64 MB, descriptors by 16, threads by 8; spill space
    /// must be back to zero once the connector caught up.
    /// </summary>
    internal static List<string> Flatness(IReadOnlyList<(TimeSpan At, ProcessSample Process, long Spill)> samples)
    {
        var problems = new List<string>();
        if (samples.Count < 2)
        {
            return problems;
        }

        var warmUp = TimeSpan.FromTicks(Math.Max(TimeSpan.FromMinutes(1).Ticks, samples[^1].At.Ticks / 5));
        var steady = samples.Take(samples.Count - 1).Where(s => s.At >= warmUp).ToList();
        if (steady.Count >= 6)
        {
            var third = steady.Count / 3;
            double Median(IEnumerable<double> values)
            {
                var sorted = values.Order().ToList();
                return sorted[sorted.Count / 2];
            }
            var first = steady.Take(third).ToList();
            var last = steady.Skip(steady.Count - third).ToList();
            var (rss0, rss1) = (Median(first.Select(s => (double)s.Process.RssBytes)), Median(last.Select(s => (double)s.Process.RssBytes)));
            var (fd0, fd1) = (Median(first.Select(s => (double)s.Process.OpenFiles)), Median(last.Select(s => (double)s.Process.OpenFiles)));
            var (th0, th1) = (Median(first.Select(s => (double)s.Process.Threads)), Median(last.Select(s => (double)s.Process.Threads)));
            Console.WriteLine($"flatness (medians, first third → last third after {warmUp.TotalSeconds:F0} s of warm-up): RSS {rss0 / 1048576:F0} → {rss1 / 1048576:F0} MB, fds {fd0} → {fd1}, threads {th0} → {th1}");
            if (rss1 > (rss0 * 1.25) + (64 << 20))
            {
                problems.Add($"RSS grew from {rss0 / 1048576:F0} to {rss1 / 1048576:F0} MB");
            }

            if (fd1 > fd0 + 16)
            {
                problems.Add($"open file descriptors grew from {fd0} to {fd1}");
            }

            if (th1 > th0 + 8)
            {
                problems.Add($"threads grew from {th0} to {th1}");
            }
        }
        if (samples[^1].Spill != 0)
        {
            problems.Add($"{samples[^1].Spill} spill bytes left after the catch-up");
        }

        return problems;
    }

    private static long SpillBytes(string directory)
    {
        try
        {
            return Directory.Exists(directory) ? new DirectoryInfo(directory).EnumerateFiles().Sum(f => f.Length) : 0;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private static async Task<bool> WaitForConfirmedAsync(TemporaryPostgres postgres, string slot, Lsn target, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                var text = await postgres.ScalarAsync<string?>($"SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '{slot}'", Database);
                if (text is not null && Lsn.Parse(text) >= target)
                {
                    return true;
                }
            }
            catch (NpgsqlException)
            {
            }
            await Task.Delay(500);
        }
        return false;
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
