using System.Diagnostics;
using System.Globalization;
using Npgsql;
using WalBridge.Broker;
using WalBridge.DevTools.Embedded;
using WalBridge.Offsets;
using WalBridge.SchemaRegistry;

namespace WalBridge.Bench;

/// <summary>
/// Runs the benchmark: one throwaway PostgreSQL for the whole run; per workload a database, the
/// local broker (3 brokers, own process) and one slot per path created before the workload, so every
/// path drains the same WAL backlog; then each path in turn, alone on the machine.
/// </summary>
internal sealed class BenchRunner(BenchOptions options, string repoRoot, CancellationToken cancellation)
{
    private const string Publication = "bench_pub";
    private const string PgBin = "/usr/lib/postgresql/15/bin";
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(20);

    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly string _work = Path.Combine(Path.GetTempPath(), $"walbridge-bench-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}");
    private TemporaryPostgres _postgres = null!;
    private string? _peerScript;
    private string? _peerUnavailable;
    private LocalSchemaRegistry? _registry;

    private TimeSpan PathTimeout => options.Quick ? TimeSpan.FromSeconds(180) : TimeSpan.FromMinutes(20);

    public async Task<BenchReport> RunAsync()
    {
        Directory.CreateDirectory(_work);
        var machine = await MachineAsync();
        var report = new BenchReport
        {
            Commit = await CommandOutputAsync("git", ["-C", repoRoot, "rev-parse", "--short", "HEAD"]) ?? "unknown",
            StartedUtc = DateTime.UtcNow,
            Quick = options.Quick,
            Scale = options.Scale,
            Compression = options.Compression,
            Machine = machine,
            ConnectorSettings = options.ConnectorSettings,
        };
        Progress($"bench: {(options.Quick ? "quick" : "full")}{(options.Scale != 1.0 ? $" ×{options.Scale:G3}" : "")}{(options.Compression ? " compression" : "")} run of {string.Join(", ", options.Workloads)} on {MachineInfo.Describe(machine)}, commit {report.Commit}");
        Progress($"bench: work directory {_work}");
        if (options.Paths.Contains(PathNames.Peer))
        {
            await PreparePeerAsync();
        }

        if (options.Paths.Contains(PathNames.OursDebeziumAvro) && options.Workloads.Any(w => PathNames.Runs(PathNames.OursDebeziumAvro, w)))
        {
            // As the demo does: the test registry in its own process, or SCHEMA_REGISTRY_URL's.
            _registry = await LocalSchemaRegistry.StartOrExternalAsync(cancellation);
            Progress($"bench: Schema Registry at {_registry.Url}");
        }

        _postgres = await TemporaryPostgres.StartAsync(new Dictionary<string, string>
        {
            ["shared_buffers"] = "512MB",
            ["max_wal_size"] = "8GB",
            ["checkpoint_timeout"] = "30min",
            ["wal_sender_timeout"] = "120s",
            ["synchronous_commit"] = "on",
        }, cancellation);
        try
        {
            var version = await _postgres.ScalarAsync<string>("SHOW server_version", cancellationToken: cancellation);
            Progress($"bench: PostgreSQL {version} on port {_postgres.Port} ({_postgres.Directory})");
            foreach (var workload in Workload.Create(options.Quick, options.Scale).Where(w => options.Workloads.Contains(w.Id)))
            {
                cancellation.ThrowIfCancellationRequested();
                var result = workload.IsLatency ? await RunLatencyAsync(workload)
                    : workload.IsSnapshot ? await RunSnapshotAsync(workload)
                    : await RunThroughputAsync(workload);
                result.ComputeRatios(workload.IsLatency);
                report.Workloads.Add(result);
                Console.WriteLine();
                Console.WriteLine(Reporting.TextTable(result));
                if (Reporting.StageTable(result) is { } stages)
                {
                    Console.WriteLine(stages);
                }
            }
        }
        finally
        {
            await _postgres.DisposeAsync();
            if (_registry is not null)
            {
                await _registry.DisposeAsync();
            }

            if (!options.KeepLogs)
            {
                try
                {
                    Directory.Delete(_work, recursive: true);
                }
                catch (IOException)
                {
                }
            }
        }
        report.TotalSeconds = _clock.Elapsed.TotalSeconds;
        return report;
    }

    private void Progress(string line) => Console.WriteLine($"[{_clock.Elapsed.TotalSeconds,7:F1}s] {line}");

    /// <summary>One measured run of a path: its settings beyond the defaults (the compression comparison's variants).</summary>
    private sealed record PathRun(string Path, string? Variant, IReadOnlyDictionary<string, string> Settings, string Suffix);

    private static readonly IReadOnlyDictionary<string, string> NoSettings = new Dictionary<string, string>();

    /// <summary>The runs of a throughput workload: each path once, or with --compression each WalBridge path per variant.</summary>
    private IEnumerable<PathRun> PathRuns(Workload workload)
    {
        foreach (var path in options.Paths.Where(p => PathNames.Runs(p, workload.Id)))
        {
            if (!options.Compression || !PathNames.IsOurs(path))
            {
                yield return new PathRun(path, null, PathNames.Settings(path, _registry?.Url), "");
                continue;
            }

            yield return new PathRun(path, "none", NoSettings, "");
            foreach (var codec in new[] { "lz4", "zstd" })
            {
                yield return new PathRun(path, $"kafka.compression.type={codec}", new Dictionary<string, string> { ["kafka.compression.type"] = codec }, $"_k{codec}");
            }

            if (path == PathNames.OursPgOutput)
            {
                foreach (var (codec, suffix) in new[] { ("lz4_frame", "_alz4"), ("zstd", "_azstd") })
                {
                    yield return new PathRun(path, $"arrow.compression={codec}", new Dictionary<string, string> { ["arrow.compression"] = codec }, suffix);
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Throughput workloads (W1–W4): a drained backlog.

    private async Task<WorkloadResult> RunThroughputAsync(Workload workload)
    {
        var result = new WorkloadResult { Id = workload.Id, Title = workload.Title, Rows = workload.Rows, Transactions = workload.Transactions };
        var database = workload.Id.ToLowerInvariant();
        Progress($"{workload.Id}: {workload.Title}");
        await _postgres.ExecuteAsync($"DROP DATABASE IF EXISTS {database}", cancellationToken: cancellation);
        await _postgres.ExecuteAsync($"CREATE DATABASE {database}", cancellationToken: cancellation);
        await _postgres.ExecuteAsync(workload.SchemaSql, database, cancellation);
        if (workload.PrepareSql is not null)
        {
            var prepare = Stopwatch.StartNew();
            await ExecuteLongAsync(database, workload.PrepareSql);
            await ExecuteLongAsync(database, "CHECKPOINT");
            Progress($"{workload.Id}: loaded the table before the slots exist ({prepare.Elapsed.TotalSeconds:F1} s, not measured)");
        }
        await _postgres.ExecuteAsync($"CREATE PUBLICATION {Publication} FOR ALL TABLES", database, cancellation);

        // One slot per run, all before the workload: every run sees the same WAL.
        var runs = PathRuns(workload).ToList();
        var needsKafka = runs.Any(r => r.Path is PathNames.Peer || PathNames.IsConnector(r.Path));
        await using var broker = needsKafka ? await LocalBroker.StartAsync(3, cancellation) : null;
        var slots = new Dictionary<PathRun, string>();
        foreach (var run in runs)
        {
            var slot = $"{database}_{PathNames.Identifier(run.Path)}{run.Suffix}";
            try
            {
                await ExecuteLongAsync(database, $"SELECT pg_create_logical_replication_slot('{slot}', '{PathNames.Plugin(run.Path)}')");
                slots[run] = slot;
            }
            catch (PostgresException e)
            {
                result.Paths.Add(new PathResult { Path = run.Path, Variant = run.Variant, Error = $"cannot create slot {slot}: {e.MessageText}" });
                Progress($"{workload.Id}: {PathNames.Display(run.Path)}: cannot create its slot: {e.MessageText}");
            }
        }

        var startLsn = Lsn.Parse(await _postgres.ScalarAsync<string>("SELECT pg_current_wal_lsn()::text", database, cancellation));
        var generate = Stopwatch.StartNew();
        if (workload.BulkSql is not null)
        {
            await ExecuteLongAsync(database, workload.BulkSql);
        }

        var target = await FinalTransactionAsync(database, workload.FinalSql!);
        result.GenerateSeconds = generate.Elapsed.TotalSeconds;
        var endLsn = Lsn.Parse(await _postgres.ScalarAsync<string>("SELECT pg_current_wal_lsn()::text", database, cancellation));
        result.WalBytes = (long)(endLsn.Value - startLsn.Value);
        Progress($"{workload.Id}: workload written in {result.GenerateSeconds:F1} s: {workload.Rows:N0} row changes in {workload.Transactions:N0} transactions, {result.WalBytes / 1048576.0:F0} MB of WAL; target {target}");

        long? pgoutputBytes = null;
        foreach (var run in runs.Where(slots.ContainsKey))
        {
            cancellation.ThrowIfCancellationRequested();
            var slot = slots[run];
            var path = run.Path;
            if (path == PathNames.PgRecvLogical && pgoutputBytes is null)
            {
                // pg_recvlogical writes to /dev/null: its wire bytes are what peek counts on the same slot (not timed).
                pgoutputBytes = await PgOutputBytesAsync(database, slot);
            }

            PathResult measured;
            try
            {
                measured = path switch
                {
                    PathNames.Peek => await PeekAsync(database, slot, workload),
                    PathNames.PgRecvLogical => await PgRecvLogicalAsync(database, slot, workload, target),
                    PathNames.Peer => await PeerAsync(database, slot, workload, target, broker!),
                    _ => await ConnectorAsync(database, slot, run, workload, target, broker!),
                };
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellation.IsCancellationRequested)
            {
                measured = new PathResult { Path = path, Variant = run.Variant, Error = e.Message };
            }
            if (path == PathNames.Peek && measured.Error is null)
            {
                pgoutputBytes = measured.PayloadBytes;
            }

            if (path == PathNames.PgRecvLogical && measured.Error is null && pgoutputBytes is { } bytes)
            {
                measured.PayloadBytes = bytes;
                measured.KafkaBytes = bytes;
                measured.PayloadMegabytesPerSecond = bytes / 1048576.0 / measured.Seconds;
                measured.Note = "payload = the pgoutput stream's bytes (wire bytes), counted by peek";
                Figures(measured);
            }
            result.Paths.Add(measured);
            Progress($"{workload.Id}: {Reporting.ProgressLine(measured)}");
            await DropSlotAsync(database, slot);
        }
        var order = PathNames.All.ToList();
        var sorted = result.Paths.OrderBy(p => order.IndexOf(p.Path)).ToList(); // stable: variants keep their order
        result.Paths.Clear();
        result.Paths.AddRange(sorted);
        await _postgres.ExecuteAsync($"DROP DATABASE {database} WITH (FORCE)", cancellationToken: cancellation);
        return result;
    }

    /// <summary>Runs the workload's last transaction and returns a WAL position inside it, after its changes and before its commit record: a consumer past it has the whole workload.</summary>
    private async Task<Lsn> FinalTransactionAsync(string database, string sql)
    {
        await using var connection = new NpgsqlConnection(_postgres.ConnectionString(database));
        await connection.OpenAsync(cancellation);
        await using var transaction = await connection.BeginTransactionAsync(cancellation);
        await using (var command = new NpgsqlCommand(sql, connection, transaction) { CommandTimeout = 0 })
        {
            await command.ExecuteNonQueryAsync(cancellation);
        }

        Lsn lsn;
        await using (var position = new NpgsqlCommand("SELECT pg_current_wal_insert_lsn()::text", connection, transaction))
        {
            lsn = Lsn.Parse((string)(await position.ExecuteScalarAsync(cancellation))!);
        }

        await transaction.CommitAsync(cancellation);
        return lsn;
    }

    private async Task ExecuteLongAsync(string database, string sql)
    {
        await using var connection = new NpgsqlConnection(_postgres.ConnectionString(database));
        await connection.OpenAsync(cancellation);
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        await command.ExecuteNonQueryAsync(cancellation);
    }

    private async Task DropSlotAsync(string database, string slot)
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            try
            {
                await _postgres.ExecuteAsync($"SELECT pg_drop_replication_slot('{slot}') FROM pg_replication_slots WHERE slot_name = '{slot}'", database, CancellationToken.None);
                return;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ObjectInUse)
            {
                await Task.Delay(200, CancellationToken.None); // the walsender is still going away
            }
        }
    }

    // --- in-backend decoding ---------------------------------------------------------------------

    private async Task<PathResult> PeekAsync(string database, string slot, Workload workload)
    {
        await using var connection = new NpgsqlConnection(_postgres.ConnectionString(database));
        await connection.OpenAsync(cancellation);
        int backend;
        await using (var pid = new NpgsqlCommand("SELECT pg_backend_pid()", connection))
        {
            backend = (int)(await pid.ExecuteScalarAsync(cancellation))!;
        }

        var sampler = new ProcSampler(backend);
        sampler.Sample();
        var cpuBefore = sampler.CpuSeconds;
        await using var command = new NpgsqlCommand(
            "SELECT count(*), coalesce(sum(length(data)), 0) FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, " +
            $"'proto_version', '1', 'publication_names', '{Publication}')", connection)
        { CommandTimeout = 0 };
        command.Parameters.Add(new NpgsqlParameter { Value = slot });
        var clock = Stopwatch.StartNew();
        long messages, bytes;
        await using (var reader = await command.ExecuteReaderAsync(cancellation))
        {
            await reader.ReadAsync(cancellation);
            messages = reader.GetInt64(0);
            bytes = Convert.ToInt64(reader.GetValue(1), CultureInfo.InvariantCulture);
        }
        var seconds = clock.Elapsed.TotalSeconds;
        sampler.Sample();
        var cpu = sampler.CpuSeconds - cpuBefore;
        return Figures(new PathResult
        {
            Path = PathNames.Peek,
            Seconds = seconds,
            Rows = workload.Rows,
            PayloadBytes = bytes,
            KafkaBytes = bytes,
            Records = messages,
            CpuSeconds = cpu,
            Note = $"{messages:N0} pgoutput messages decoded inside the backend (CPU = that backend's)",
        });
    }

    /// <summary>The bytes of the slot's pgoutput stream, counted by peek (the slot is not advanced).</summary>
    private async Task<long?> PgOutputBytesAsync(string database, string slot)
    {
        try
        {
            await using var connection = new NpgsqlConnection(_postgres.ConnectionString(database));
            await connection.OpenAsync(cancellation);
            await using var command = new NpgsqlCommand(
                "SELECT coalesce(sum(length(data)), 0) FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, " +
                $"'proto_version', '1', 'publication_names', '{Publication}')", connection)
            { CommandTimeout = 0 };
            command.Parameters.Add(new NpgsqlParameter { Value = slot });
            return Convert.ToInt64(await command.ExecuteScalarAsync(cancellation), CultureInfo.InvariantCulture);
        }
        catch (PostgresException)
        {
            return null;
        }
    }

    // --- pg_recvlogical --------------------------------------------------------------------------

    private async Task<PathResult> PgRecvLogicalAsync(string database, string slot, Workload workload, Lsn target)
    {
        var log = Path.Combine(_work, $"{database}-pg_recvlogical.log");
        await using var child = ChildProcess.Start(Path.Combine(PgBin, "pg_recvlogical"),
        [
            "-h", _postgres.Host, "-p", _postgres.Port.ToString(CultureInfo.InvariantCulture), "-U", _postgres.User, "-d", database,
            "-S", slot, "--start", "-E", target.ToString(), "--no-loop",
            "-o", "proto_version=1", "-o", $"publication_names={Publication}", "-f", "/dev/null",
        ], log);
        await using var walsender = new WalSenderWatch(_postgres, database, slot);
        var deadline = DateTime.UtcNow + PathTimeout;
        while (!child.HasExited)
        {
            child.Sampler.Sample();
            await walsender.SampleAsync();
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"pg_recvlogical did not reach {target} within {PathTimeout.TotalSeconds:F0} s; see {log}");
            }

            await Task.WhenAny(child.Exited, Task.Delay(PollInterval, cancellation));
        }
        var seconds = child.Clock.Elapsed.TotalSeconds;
        await child.Exited;
        if (child.ExitCode != 0)
        {
            throw new InvalidOperationException($"pg_recvlogical exited with {child.ExitCode}: {child.LastLines(5)}");
        }

        return Figures(new PathResult
        {
            Path = PathNames.PgRecvLogical,
            Seconds = seconds,
            Rows = workload.Rows,
            CpuSeconds = child.Sampler.CpuSeconds,
            WalSenderCpuSeconds = walsender.CpuSeconds,
            PeakRssMegabytes = child.Sampler.PeakRssBytes / 1048576.0,
        });
    }

    // --- the JS peer -----------------------------------------------------------------------------

    private async Task PreparePeerAsync()
    {
        var script = Path.Combine(repoRoot, "tools", "peer-js", "peer.js");
        var setup = Path.Combine(repoRoot, "scripts", "setup-peer.sh");
        if (!File.Exists(script) || !File.Exists(setup))
        {
            _peerUnavailable = $"{script} or {setup} is missing";
            return;
        }
        var output = await CommandOutputAsync(setup, [], includeErrors: true, requireSuccess: false);
        if (!File.Exists(Path.Combine(repoRoot, "tools", "peer-js", "node_modules", "kafkajs", "package.json")))
        {
            _peerUnavailable = $"scripts/setup-peer.sh did not install the peer: {output}";
            Progress($"bench: the peer is unavailable: {_peerUnavailable}");
            return;
        }
        _peerScript = script;
    }

    private ChildProcess StartPeer(string database, string slot, string topicPrefix, string bootstrap, Lsn? endLsn, string log)
    {
        if (_peerScript is null)
        {
            throw new InvalidOperationException($"the peer is unavailable: {_peerUnavailable}");
        }

        List<string> arguments =
        [
            _peerScript,
            "--host", _postgres.Host, "--port", _postgres.Port.ToString(CultureInfo.InvariantCulture), "--user", _postgres.User,
            "--database", database, "--slot", slot, "--publication", Publication, "--brokers", bootstrap, "--topic-prefix", topicPrefix,
        ];
        if (endLsn is { } end)
        {
            arguments.AddRange(["--end-lsn", end.ToString()]);
        }

        return ChildProcess.Start("node", arguments, log, workingDirectory: Path.GetDirectoryName(_peerScript));
    }

    private async Task<PathResult> PeerAsync(string database, string slot, Workload workload, Lsn target, LocalBroker broker)
    {
        var log = Path.Combine(_work, $"{database}-peer.log");
        var brokerCpu = new ProcSampler(broker.ProcessId);
        brokerCpu.Sample();
        var brokerBefore = brokerCpu.CpuSeconds;
        await using var child = StartPeer(database, slot, $"{database}_peer", broker.BootstrapServers, target, log);
        var ready = child.WhenPrinted("ready");
        var finished = child.WhenPrinted("{\"rows\"");
        await using var walsender = new WalSenderWatch(_postgres, database, slot);
        var deadline = DateTime.UtcNow + PathTimeout;
        double? startup = null;
        while (!finished.IsCompleted && !child.HasExited)
        {
            child.Sampler.Sample();
            await walsender.SampleAsync();
            if (startup is null && ready.IsCompleted)
            {
                startup = child.Clock.Elapsed.TotalSeconds;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the peer did not finish within {PathTimeout.TotalSeconds:F0} s; see {log}");
            }

            await Task.WhenAny(finished, child.Exited, Task.Delay(PollInterval, cancellation));
        }
        var seconds = child.Clock.Elapsed.TotalSeconds;
        child.Sampler.Sample();
        brokerCpu.Sample();
        await Task.WhenAny(child.Exited, Task.Delay(10_000, cancellation));
        var line = child.Output.Split('\n').LastOrDefault(l => l.StartsWith("{\"rows\"", StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"the peer exited ({(child.HasExited ? child.ExitCode : -1)}) without a result: {child.LastLines(8)}");
        using var json = System.Text.Json.JsonDocument.Parse(line);
        var rows = json.RootElement.GetProperty("rows").GetInt64();
        var bytes = json.RootElement.GetProperty("bytes").GetInt64();
        var result = Figures(new PathResult
        {
            Path = PathNames.Peer,
            Seconds = seconds,
            StartupSeconds = startup,
            Rows = rows,
            PayloadBytes = bytes,
            Records = json.RootElement.GetProperty("messages").GetInt64(),
            CpuSeconds = child.Sampler.CpuSeconds,
            WalSenderCpuSeconds = walsender.CpuSeconds,
            BrokerCpuSeconds = brokerCpu.CpuSeconds - brokerBefore,
            PeakRssMegabytes = child.Sampler.PeakRssBytes / 1048576.0,
            Note = "payload = JSON message values, one per row, acknowledged by Kafka (acks=all)",
        });
        await ReadBackAsync(result, broker, $"{database}_peer.public.{workload.Table}");
        if (rows != workload.Rows)
        {
            result.Error = $"the peer delivered {rows:N0} rows, expected {workload.Rows:N0}";
        }

        return result;
    }

    // --- WalBridge (the connector as a child process) -------------------------------------------

    private string WriteConnectorConfig(string database, string slot, string plugin, string topicPrefix, string bootstrap, IReadOnlyDictionary<string, string>? extra = null)
    {
        var values = ConnectorValues(database, slot, plugin, topicPrefix, bootstrap, extra);
        var file = Path.Combine(_work, $"{topicPrefix}.properties");
        File.WriteAllLines(file, values.Select(kv => $"{kv.Key}={kv.Value}"));
        return file;
    }

    /// <summary>A path's connector configuration: the bench's defaults, then --connector-set, then the run's own settings.</summary>
    private Dictionary<string, string> ConnectorValues(string database, string slot, string plugin, string topicPrefix, string bootstrap, IReadOnlyDictionary<string, string>? extra = null)
    {
        var state = Path.Combine(_work, $"{topicPrefix}-state");
        var values = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["name"] = $"bench-{topicPrefix}",
            ["database.hostname"] = _postgres.Host,
            ["database.port"] = _postgres.Port.ToString(CultureInfo.InvariantCulture),
            ["database.user"] = _postgres.User,
            ["database.dbname"] = database,
            ["database.sslmode"] = "disable",
            ["plugin"] = plugin,
            ["slot.name"] = slot,
            ["publication.name"] = Publication,
            ["topic.prefix"] = topicPrefix,
            ["state.dir"] = state,
            ["kafka.bootstrap.servers"] = bootstrap,
            // Any free port for the operations endpoints: other runs on this machine may hold the default one.
            ["operations.listen"] = "127.0.0.1:0",
        };
        foreach (var (key, value) in options.ConnectorSettings.Concat(extra ?? NoSettings))
        {
            values[key] = value;
        }

        return values;
    }

    /// <param name="configFile">The connector's configuration.</param>
    /// <param name="log">Where its output goes.</param>
    /// <param name="stageTrace">The stage trace file (<c>WALBRIDGE_STAGE_TRACE</c>), or null for none.</param>
    private static ChildProcess StartConnector(string configFile, string log, string? stageTrace = null)
    {
        // Our own build of the connector (copied next to this program by the project reference).
        // (WalBridge.Connector.dll: the dev tools' assembly, where TemporaryPostgres lives, has no `run` command.)
        var dll = typeof(WalBridge.Connector.Configuration.ConnectorConfig).Assembly.Location;
        var environment = stageTrace is null ? null : new Dictionary<string, string> { ["WALBRIDGE_STAGE_TRACE"] = stageTrace };
        return ChildProcess.Start("dotnet", [dll, "run", "--config", configFile], log, environment);
    }

    /// <summary>Reads a topic back (read_committed) into the result's record, byte and row figures.</summary>
    private async Task<ReadBackResult> ReadBackAsync(PathResult result, LocalBroker broker, string topic)
    {
        var back = await Task.Run(() => KafkaProbe.ReadBack(broker.BootstrapServers, topic, TimeSpan.FromMinutes(5)), cancellation);
        result.KafkaBytes = back.RecordBytes;
        result.FetchedBytes = back.FetchedBytes;
        if (back.Rows > 0)
        {
            result.KafkaBytesPerRow = back.RecordBytes / (double)back.Rows;
            result.FetchedBytesPerRow = back.FetchedBytes / (double?)back.Rows;
        }

        return back;
    }

    private async Task<PathResult> ConnectorAsync(string database, string slot, PathRun run, Workload workload, Lsn target, LocalBroker broker)
    {
        var path = run.Path;
        var prefix = $"{database}_{PathNames.Identifier(path)}{run.Suffix}";
        var config = WriteConnectorConfig(database, slot, PathNames.Plugin(path), prefix, broker.BootstrapServers, run.Settings);
        var log = Path.Combine(_work, $"{prefix}.log");
        PathResult result;
        var brokerCpu = new ProcSampler(broker.ProcessId);
        brokerCpu.Sample();
        var brokerBefore = brokerCpu.CpuSeconds;
        await using (var child = StartConnector(config, log))
        {
            var streaming = child.WhenPrinted("Streaming slot");
            await using var walsender = new WalSenderWatch(_postgres, database, slot);
            var deadline = DateTime.UtcNow + PathTimeout;
            double? startup = null;
            double seconds;
            while (true)
            {
                var confirmed = await walsender.SampleAsync();
                child.Sampler.Sample();
                if (startup is null && streaming.IsCompleted)
                {
                    startup = child.Clock.Elapsed.TotalSeconds;
                }

                if (confirmed >= target)
                {
                    seconds = child.Clock.Elapsed.TotalSeconds;
                    break;
                }
                if (child.HasExited)
                {
                    throw new InvalidOperationException($"the connector exited with {child.ExitCode} before reaching {target}: {child.LastLines(6)} (log {log})");
                }

                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"the connector did not reach {target} within {PathTimeout.TotalSeconds:F0} s (confirmed {confirmed}); see {log}");
                }

                await Task.Delay(PollInterval, cancellation);
            }
            child.Sampler.Sample();
            brokerCpu.Sample();
            var stopped = await child.StopAsync(TimeSpan.FromSeconds(30));
            result = new PathResult
            {
                Path = path,
                Variant = run.Variant,
                Seconds = seconds,
                StartupSeconds = startup,
                CpuSeconds = child.Sampler.CpuSeconds,
                WalSenderCpuSeconds = walsender.CpuSeconds,
                BrokerCpuSeconds = brokerCpu.CpuSeconds - brokerBefore,
                PeakRssMegabytes = child.Sampler.PeakRssBytes / 1048576.0,
                Note = stopped ? null : "did not stop within 30 s of SIGTERM (killed)",
            };
        }
        var topic = $"{prefix}.public.{workload.Table}";
        var back = await ReadBackAsync(result, broker, topic);
        result.Rows = back.Rows;
        result.Records = back.Records;
        result.PayloadBytes = back.ValueBytes;
        Figures(result);
        if (back.Rows != workload.Rows)
        {
            result.Error = $"read_committed shows {back.Rows:N0} rows in {topic}, expected {workload.Rows:N0}";
        }

        return result;
    }

    private static PathResult Figures(PathResult result)
    {
        if (result.KafkaBytes is { } kafkaBytes && result.Rows is > 0 && result.KafkaBytesPerRow is null)
        {
            result.KafkaBytesPerRow = kafkaBytes / (double)result.Rows;
        }

        if (result.Seconds is > 0 && result.Rows is { } rows)
        {
            result.RowsPerSecond = rows / result.Seconds;
            if (result.PayloadBytes is { } bytes)
            {
                result.PayloadMegabytesPerSecond = bytes / 1048576.0 / result.Seconds;
            }

            if (result.CpuSeconds is { } cpu && rows > 0)
            {
                result.CpuSecondsPerMillionRows = cpu / (rows / 1e6);
            }
        }
        return result;
    }

    // ---------------------------------------------------------------------------------------------
    // W6: the initial snapshot of a loaded table, against binary COPY of the same chunks into /dev/null.

    private async Task<WorkloadResult> RunSnapshotAsync(Workload workload)
    {
        var result = new WorkloadResult { Id = workload.Id, Title = workload.Title, Rows = workload.Rows, Transactions = workload.Transactions };
        var database = workload.Id.ToLowerInvariant();
        Progress($"{workload.Id}: {workload.Title}");
        await _postgres.ExecuteAsync($"DROP DATABASE IF EXISTS {database}", cancellationToken: cancellation);
        await _postgres.ExecuteAsync($"CREATE DATABASE {database}", cancellationToken: cancellation);
        await _postgres.ExecuteAsync(workload.SchemaSql, database, cancellation);
        var load = Stopwatch.StartNew();
        await ExecuteLongAsync(database, workload.PrepareSql!);
        // Frozen (no reader sets hint bits, so the first run pays nothing the later ones do not), analysed (the chunk
        // plan is sized from pg_class), checkpointed; VACUUM also brings the table into the page cache.
        await ExecuteLongAsync(database, $"VACUUM (FREEZE, ANALYZE) {workload.Table}");
        await ExecuteLongAsync(database, "CHECKPOINT");
        // And written back: with fsync off the load leaves about 2 GB of dirty pages (heap and WAL) that the kernel would
        // otherwise write during the first measured run, throttling its own writes (offsets store, logs).
        await CommandOutputAsync("sync", []);
        result.GenerateSeconds = load.Elapsed.TotalSeconds;
        var tableBytes = await _postgres.ScalarAsync<long>($"SELECT pg_table_size('{workload.Table}')", database, cancellation);
        Progress($"{workload.Id}: loaded {workload.Rows:N0} rows ({tableBytes / 1048576.0:F0} MB of heap) in {result.GenerateSeconds:F1} s (not measured)");
        await _postgres.ExecuteAsync($"CREATE PUBLICATION {Publication} FOR ALL TABLES", database, cancellation);

        var paths = options.Paths.Where(p => PathNames.Runs(p, workload.Id)).ToList();
        foreach (var threads in workload.SnapshotThreads)
        {
            cancellation.ThrowIfCancellationRequested();
            var variant = $"snapshot.max.threads={threads}";
            PathResult baseline;
            try
            {
                baseline = await CopyBaselineAsync(database, workload, threads);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellation.IsCancellationRequested)
            {
                baseline = new PathResult { Path = PathNames.CopyBaseline, Variant = variant, SnapshotThreads = threads, Error = e.Message };
            }

            result.Paths.Add(baseline);
            Progress($"{workload.Id}: {Reporting.ProgressLine(baseline)}");
            foreach (var path in paths)
            {
                cancellation.ThrowIfCancellationRequested();
                var slot = $"{database}_{PathNames.Identifier(path)}_t{threads}";
                PathResult measured;
                try
                {
                    // A new broker for every run: the local broker keeps every record in memory, and with the 1 GB of an
                    // earlier run in it its CPU per record grew about fivefold (1.5 → 7–8 CPU s per run), taken from the
                    // connector on a small machine.
                    await using var broker = await LocalBroker.StartAsync(3, cancellation);
                    measured = await SnapshotConnectorAsync(database, slot, path, threads, workload, broker);
                }
                catch (Exception e) when (e is not OperationCanceledException || !cancellation.IsCancellationRequested)
                {
                    measured = new PathResult { Path = path, Variant = variant, SnapshotThreads = threads, Error = e.Message };
                }

                result.Paths.Add(measured);
                Progress($"{workload.Id}: {Reporting.ProgressLine(measured)}");
                await DropSlotAsync(database, slot);
            }
        }

        await _postgres.ExecuteAsync($"DROP DATABASE {database} WITH (FORCE)", cancellationToken: cancellation);
        return result;
    }

    /// <summary>
    /// The baseline: the COPY commands the connector's snapshot runs (SnapshotCatalog: same columns, same TID ranges, same
    /// chunk plan), on <paramref name="threads"/> sessions that share one exported snapshot and take the chunks from one
    /// queue, as the connector's sessions do; the bytes are read (Npgsql raw binary copy) and discarded.
    /// </summary>
    private async Task<PathResult> CopyBaselineAsync(string database, Workload workload, int threads)
    {
        // The connector's configuration (publication, snapshot.chunk.rows with --connector-set) gives the same plan.
        var config = WalBridge.Connector.Configuration.ConnectorConfig.FromDictionary(
            ConnectorValues(database, $"{database}_copy", "pgoutput", $"{database}_copy", "127.0.0.1:9092"));
        await using var coordinator = new NpgsqlConnection(_postgres.ConnectionString(database));
        await coordinator.OpenAsync(cancellation);
        await using (var begin = new NpgsqlCommand("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", coordinator))
        {
            await begin.ExecuteNonQueryAsync(cancellation);
        }

        string exported;
        await using (var export = new NpgsqlCommand("SELECT pg_export_snapshot()", coordinator))
        {
            exported = (string)(await export.ExecuteScalarAsync(cancellation))!;
        }

        var tables = await WalBridge.Connector.Snapshot.SnapshotCatalog.LoadAsync(coordinator, config, cancellation);
        var commands = new System.Collections.Concurrent.ConcurrentQueue<string>();
        foreach (var table in tables)
        {
            var (chunks, pagesPerChunk) = WalBridge.Connector.Snapshot.SnapshotCatalog.Plan(table, config.SnapshotChunkRows, config.TransactionMemoryBytes);
            for (var chunk = 0; chunk < chunks; chunk++)
            {
                commands.Enqueue(table.CopyCommand(chunk, chunks, pagesPerChunk));
            }
        }

        var chunkCount = commands.Count;
        var sessions = new List<(NpgsqlConnection Connection, ProcSampler Backend)>();
        try
        {
            for (var i = 0; i < Math.Min(threads, Math.Max(1, chunkCount)); i++)
            {
                // The connector's snapshot sessions read with this Npgsql buffer: so does the baseline.
                var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_postgres.ConnectionString(database))
                {
                    ReadBufferSize = WalBridge.Connector.Configuration.ConnectorConfig.SnapshotReadBufferSize,
                }.ConnectionString);
                await connection.OpenAsync(cancellation);
                await using (var begin = new NpgsqlCommand($"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{exported}'", connection))
                {
                    await begin.ExecuteNonQueryAsync(cancellation);
                }

                int pid;
                await using (var backend = new NpgsqlCommand("SELECT pg_backend_pid()", connection))
                {
                    pid = (int)(await backend.ExecuteScalarAsync(cancellation))!;
                }

                sessions.Add((connection, new ProcSampler(pid)));
            }

            foreach (var (_, backend) in sessions)
            {
                backend.Sample();
            }

            var backendsBefore = sessions.Sum(s => s.Backend.CpuSeconds);
            using var self = Process.GetCurrentProcess();
            var cpuBefore = self.TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            async Task<long> SessionAsync(NpgsqlConnection connection)
            {
                var buffer = new byte[1 << 16];
                long bytes = 0;
                while (commands.TryDequeue(out var command))
                {
                    await using var copy = await connection.BeginRawBinaryCopyAsync(command, cancellation);
                    int read;
                    while ((read = await copy.ReadAsync(buffer, cancellation)) > 0)
                    {
                        bytes += read;
                    }
                }

                return bytes;
            }

            var copied = await Task.WhenAll(sessions.Select(s => Task.Run(() => SessionAsync(s.Connection), cancellation)));
            var seconds = clock.Elapsed.TotalSeconds;
            self.Refresh();
            var cpu = (self.TotalProcessorTime - cpuBefore).TotalSeconds;
            foreach (var (_, backend) in sessions)
            {
                backend.Sample();
            }

            var backendCpu = sessions.Sum(s => s.Backend.CpuSeconds) - backendsBefore;
            return Figures(new PathResult
            {
                Path = PathNames.CopyBaseline,
                Variant = $"snapshot.max.threads={threads}",
                SnapshotThreads = threads,
                Seconds = seconds,
                Rows = workload.Rows,
                PayloadBytes = copied.Sum(),
                CpuSeconds = cpu,
                Note = string.Create(CultureInfo.InvariantCulture,
                    $"{chunkCount} COPY chunks on {sessions.Count} sessions in one exported snapshot, {copied.Sum() / 1048576.0:F0} MB of binary COPY data discarded; CPU = the reading process (Npgsql); the backends used {backendCpu:F2} CPU s"),
            });
        }
        finally
        {
            foreach (var (connection, _) in sessions)
            {
                await connection.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// The connector with a new slot (it creates it with an exported snapshot) and <c>snapshot.mode=initial</c>, timed from
    /// process start until its log says the snapshot is complete (event 1504, written once the Kafka transaction holding
    /// the end markers and the offsets record with the completed snapshot has committed); then the topic is read back.
    /// </summary>
    private async Task<PathResult> SnapshotConnectorAsync(string database, string slot, string path, int threads, Workload workload, LocalBroker broker)
    {
        var prefix = slot;
        var settings = new Dictionary<string, string>
        {
            ["snapshot.mode"] = "initial",
            ["snapshot.max.threads"] = threads.ToString(CultureInfo.InvariantCulture),
        };
        var config = WriteConnectorConfig(database, slot, PathNames.Plugin(path), prefix, broker.BootstrapServers, settings);
        var log = Path.Combine(_work, $"{prefix}.log");
        var brokerCpu = new ProcSampler(broker.ProcessId);
        brokerCpu.Sample();
        var brokerBefore = brokerCpu.CpuSeconds;
        PathResult result;
        await using (var child = StartConnector(config, log))
        {
            var begins = child.WhenPrinted($"Snapshot of slot {slot} at ");
            var complete = child.WhenPrinted(" complete: ");
            var deadline = DateTime.UtcNow + PathTimeout;
            double? startup = null;
            while (!complete.IsCompleted)
            {
                child.Sampler.Sample();
                if (startup is null && begins.IsCompleted)
                {
                    startup = child.Clock.Elapsed.TotalSeconds;
                }

                if (child.HasExited)
                {
                    throw new InvalidOperationException($"the connector exited with {child.ExitCode} before its snapshot completed: {child.LastLines(6)} (log {log})");
                }

                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"the connector's snapshot did not complete within {PathTimeout.TotalSeconds:F0} s; see {log}");
                }

                await Task.WhenAny(complete, child.Exited, Task.Delay(PollInterval, cancellation));
            }

            var seconds = child.Clock.Elapsed.TotalSeconds;
            child.Sampler.Sample();
            brokerCpu.Sample();
            var stopped = await child.StopAsync(TimeSpan.FromSeconds(30));
            result = new PathResult
            {
                Path = path,
                Variant = $"snapshot.max.threads={threads}",
                SnapshotThreads = threads,
                Seconds = seconds,
                StartupSeconds = startup,
                CpuSeconds = child.Sampler.CpuSeconds,
                BrokerCpuSeconds = brokerCpu.CpuSeconds - brokerBefore,
                PeakRssMegabytes = child.Sampler.PeakRssBytes / 1048576.0,
                Note = stopped ? null : "did not stop within 30 s of SIGTERM (killed)",
            };
        }

        var back = await ReadBackAsync(result, broker, $"{prefix}.public.{workload.Table}");
        result.Rows = back.Rows;
        result.Records = back.Records;
        result.PayloadBytes = back.ValueBytes;
        Figures(result);
        if (back.Rows != workload.Rows)
        {
            result.Error = $"read_committed shows {back.Rows:N0} rows in {prefix}.public.{workload.Table}, expected {workload.Rows:N0}";
        }

        return result;
    }

    // ---------------------------------------------------------------------------------------------
    // W5: latency with the consumer running live.

    private async Task<WorkloadResult> RunLatencyAsync(Workload workload)
    {
        var result = new WorkloadResult { Id = workload.Id, Title = workload.Title, Rows = workload.Rows, Transactions = workload.Transactions };
        var database = workload.Id.ToLowerInvariant();
        Progress($"{workload.Id}: {workload.Title}");
        await _postgres.ExecuteAsync($"DROP DATABASE IF EXISTS {database}", cancellationToken: cancellation);
        await _postgres.ExecuteAsync($"CREATE DATABASE {database}", cancellationToken: cancellation);
        await _postgres.ExecuteAsync(workload.SchemaSql, database, cancellation);
        await _postgres.ExecuteAsync($"CREATE PUBLICATION {Publication} FOR ALL TABLES", database, cancellation);
        await using var broker = await LocalBroker.StartAsync(3, cancellation);
        var nextId = 0L;
        foreach (var path in options.Paths.Where(p => PathNames.Runs(p, workload.Id)))
        {
            cancellation.ThrowIfCancellationRequested();
            if (path is PathNames.Peek or PathNames.PgRecvLogical)
            {
                result.Paths.Add(new PathResult { Path = path, Note = "not measured: commit-to-visible latency needs delivery into Kafka" });
                continue;
            }
            var slot = $"{database}_{path}";
            PathResult measured;
            try
            {
                await ExecuteLongAsync(database, $"SELECT pg_create_logical_replication_slot('{slot}', '{(path == PathNames.OursWal2Arrow ? "wal2arrow" : "pgoutput")}')");
                measured = await LatencyPathAsync(database, slot, path, workload, broker, nextId);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellation.IsCancellationRequested)
            {
                measured = new PathResult { Path = path, Error = e is PostgresException p ? $"cannot create slot {slot}: {p.MessageText}" : e.Message };
            }
            nextId += 10_000_000;
            result.Paths.Add(measured);
            Progress($"{workload.Id}: {Reporting.ProgressLine(measured)}");
            await DropSlotAsync(database, slot);
        }
        await _postgres.ExecuteAsync($"DROP DATABASE {database} WITH (FORCE)", cancellationToken: cancellation);
        return result;
    }

    private async Task<PathResult> LatencyPathAsync(string database, string slot, string path, Workload workload, LocalBroker broker, long firstId)
    {
        var prefix = $"{database}_{path}";
        var topic = $"{prefix}.public.{workload.Table}";
        var log = Path.Combine(_work, $"{prefix}.log");
        var stageTrace = Path.Combine(_work, $"{prefix}-stages.csv");
        var ours = PathNames.IsOurs(path);
        await using var child = ours
            ? StartConnector(WriteConnectorConfig(database, slot, path, prefix, broker.BootstrapServers), log, stageTrace)
            : StartPeer(database, slot, prefix, broker.BootstrapServers, null, log);
        var ready = child.WhenPrinted(ours ? "Streaming slot" : "ready");
        if (await Task.WhenAny(ready, child.Exited, Task.Delay(TimeSpan.FromSeconds(90), cancellation)) != ready)
        {
            throw new InvalidOperationException($"{PathNames.Display(path)} did not start streaming: {child.LastLines(6)} (log {log})");
        }

        var startup = child.Clock.Elapsed.TotalSeconds;

        // The writers: each its own connection and prepared insert, paced at its share of the rate.
        var insertSql = Workload.LatencyInsertSql(workload.Table);
        var writers = new List<(NpgsqlConnection Connection, NpgsqlCommand Insert, NpgsqlParameter<long> Id)>();
        try
        {
            for (var w = 0; w < workload.LatencyWriters; w++)
            {
                var connection = new NpgsqlConnection(_postgres.ConnectionString(database));
                await connection.OpenAsync(cancellation);
                var insert = new NpgsqlCommand(insertSql, connection);
                var id = new NpgsqlParameter<long> { TypedValue = firstId };
                insert.Parameters.Add(id);
                await insert.PrepareAsync(cancellation);
                writers.Add((connection, insert, id));
            }

            // Warm-up: one row, so the topic exists and the consumer is attached before measuring.
            await writers[0].Insert.ExecuteNonQueryAsync(cancellation);
            await KafkaProbe.WaitForTopicAsync(broker.BootstrapServers, topic, TimeSpan.FromSeconds(60));
            using var consumer = new LatencyConsumer(broker.BootstrapServers, topic, json: !ours);
            var warm = Stopwatch.StartNew();
            while (consumer.Seen == 0)
            {
                if (warm.Elapsed > TimeSpan.FromSeconds(60) || child.HasExited)
                {
                    throw new TimeoutException($"the warm-up row did not become visible in {topic}; see {log}");
                }

                await Task.Delay(20, cancellation);
            }
            await Task.Delay(500, cancellation);

            await using var walsender = new WalSenderWatch(_postgres, database, slot);
            await walsender.SampleAsync();
            child.Sampler.Sample();
            var cpuBefore = child.Sampler.CpuSeconds;
            var walsenderBefore = walsender.CpuSeconds;
            var brokerCpu = new ProcSampler(broker.ProcessId);
            brokerCpu.Sample();
            var brokerBefore = brokerCpu.CpuSeconds;
            consumer.Since = DateTime.UtcNow;

            var total = (long)workload.LatencyRate * workload.LatencySeconds;
            var clock = Stopwatch.StartNew();
            var sent = new long[writers.Count];
            async Task WriteAsync(int w)
            {
                var share = total / writers.Count + (w < total % writers.Count ? 1 : 0);
                var rate = workload.LatencyRate / (double)writers.Count;
                var (_, insert, id) = writers[w];
                while (sent[w] < share)
                {
                    var due = Math.Min(share, (long)(clock.Elapsed.TotalSeconds * rate) + 1);
                    while (sent[w] < due)
                    {
                        id.TypedValue = firstId + 1 + w + (sent[w] * writers.Count);
                        await insert.ExecuteNonQueryAsync(cancellation);
                        sent[w]++;
                    }

                    await Task.Delay(1, cancellation);
                }
            }

            var writing = Task.WhenAll(Enumerable.Range(0, writers.Count).Select(w => Task.Run(() => WriteAsync(w), cancellation)));
            while (!writing.IsCompleted)
            {
                child.Sampler.Sample();
                await walsender.SampleAsync();
                await Task.WhenAny(writing, Task.Delay(TimeSpan.FromSeconds(1), cancellation));
            }

            await writing;
            var writeSeconds = clock.Elapsed.TotalSeconds;
            var lag = total - consumer.Samples;
            var drain = Stopwatch.StartNew();
            while (consumer.Samples < total && drain.Elapsed < TimeSpan.FromSeconds(30) && !child.HasExited)
            {
                await Task.Delay(10, cancellation);
            }

            var drainSeconds = drain.Elapsed.TotalSeconds;
            child.Sampler.Sample();
            await walsender.SampleAsync();
            var cpu = child.Sampler.CpuSeconds - cpuBefore;
            brokerCpu.Sample();
            await child.StopAsync(TimeSpan.FromSeconds(30));

            var samples = consumer.Taken;
            var latencies = samples.Select(x => x.LatencyMs).Order().ToArray();
            var result = new PathResult
            {
                Path = path,
                Seconds = writeSeconds,
                StartupSeconds = startup,
                Rows = latencies.Length,
                RowsPerSecond = total / writeSeconds,
                OfferedRate = workload.LatencyRate,
                LagAtEnd = lag,
                DrainSeconds = consumer.Samples >= total ? drainSeconds : null,
                CpuSeconds = cpu,
                CpuSecondsPerMillionRows = cpu / (total / 1e6),
                WalSenderCpuSeconds = walsender.CpuSeconds - walsenderBefore,
                BrokerCpuSeconds = brokerCpu.CpuSeconds - brokerBefore,
                PeakRssMegabytes = child.Sampler.PeakRssBytes / 1048576.0,
                LatencySamples = latencies.Length,
                Note = ours ? "latency = receive time − the row's _commit_ts" : "latency = receive time − the row's sent_us (clock_timestamp() in the insert)",
            };
            if (latencies.Length > 0)
            {
                result.LatencyP50Ms = Stages.Percentile(latencies, 0.50);
                result.LatencyP99Ms = Stages.Percentile(latencies, 0.99);
                result.LatencyMaxMs = latencies[^1];
            }

            if (ours)
            {
                result.LatencyStages = Stages.Breakdown(stageTrace, samples);
            }

            await ReadBackAsync(result, broker, topic);
            if (latencies.Length < total)
            {
                result.Error = $"only {latencies.Length:N0} of {total:N0} transactions became visible within 30 s of the end of the workload";
            }

            return result;
        }
        finally
        {
            foreach (var (connection, insert, _) in writers)
            {
                await insert.DisposeAsync();
                await connection.DisposeAsync();
            }
        }
    }


    // ---------------------------------------------------------------------------------------------

    private static async Task<MachineInfo> MachineAsync()
    {
        var cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal)) is { } line
            ? line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim()
            : "unknown";
        var memKb = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal)) is { } mem
            ? long.Parse(mem["MemTotal:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture)
            : 0;
        var postgres = await CommandOutputAsync(Path.Combine(PgBin, "postgres"), ["--version"]) ?? "PostgreSQL ?";
        return new MachineInfo
        {
            Processors = Environment.ProcessorCount,
            CpuModel = cpu,
            MemoryGigabytes = memKb / 1048576.0,
            Kernel = File.Exists("/proc/sys/kernel/osrelease") ? File.ReadAllText("/proc/sys/kernel/osrelease").Trim() : "?",
            PostgresVersion = postgres.Replace("postgres (PostgreSQL) ", "PostgreSQL ", StringComparison.Ordinal),
            DotnetVersion = Environment.Version.ToString(),
            NodeVersion = await CommandOutputAsync("node", ["--version"]) ?? "none",
        };
    }

    /// <summary>Runs a command and returns its trimmed standard output, or null when it cannot run or fails.</summary>
    internal static async Task<string?> CommandOutputAsync(string file, IReadOnlyList<string> arguments, bool includeErrors = false, bool requireSuccess = true)
    {
        try
        {
            var start = new ProcessStartInfo(file, arguments)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            using var process = Process.Start(start);
            if (process is null)
            {
                return null;
            }

            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            if (requireSuccess && process.ExitCode != 0)
            {
                return null;
            }

            return (includeErrors ? await stdout + await stderr : await stdout).Trim();
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}

/// <summary>Follows a slot: its <c>confirmed_flush_lsn</c>, and the CPU time of the walsender serving it.</summary>
internal sealed class WalSenderWatch(TemporaryPostgres postgres, string database, string slot) : IAsyncDisposable
{
    private NpgsqlConnection? _connection;
    private ProcSampler? _walsender;
    private double _finished;

    /// <summary>CPU seconds of every walsender that served the slot while watched.</summary>
    public double CpuSeconds => _finished + (_walsender?.CpuSeconds ?? 0);

    /// <summary>Samples the walsender and returns the slot's confirmed position.</summary>
    public async Task<Lsn> SampleAsync()
    {
        if (_connection is null)
        {
            _connection = new NpgsqlConnection(postgres.ConnectionString(database));
            await _connection.OpenAsync();
        }
        await using var command = new NpgsqlCommand("SELECT confirmed_flush_lsn::text, active_pid FROM pg_replication_slots WHERE slot_name = $1", _connection);
        command.Parameters.Add(new NpgsqlParameter { Value = slot });
        await using var reader = await command.ExecuteReaderAsync();
        if (!await reader.ReadAsync())
        {
            return Lsn.Zero;
        }

        var confirmed = reader.IsDBNull(0) ? Lsn.Zero : Lsn.Parse(reader.GetString(0));
        if (!reader.IsDBNull(1))
        {
            var pid = reader.GetInt32(1);
            if (_walsender?.Pid != pid)
            {
                _finished += _walsender?.CpuSeconds ?? 0;
                _walsender = new ProcSampler(pid);
            }
        }
        _walsender?.Sample();
        return confirmed;
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection is not null)
        {
            await _connection.DisposeAsync();
        }
    }
}
