using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Verification;
using Xunit.Abstractions;

namespace WalBridge.Integration.Tests;

/// <summary>
/// Issue 14: the operations endpoints of a running connector (a child process, as a service manager runs it): the
/// metrics move the right way while Kafka is down and after it is back, the health checks follow, the admin API
/// pauses, resumes and restarts, refuses without the bearer token, masks secrets, checks requests for snapshots on demand, and
/// <c>connector status</c> prints the same.
/// </summary>
[Collection(InfrastructureCollection.Name)]
public sealed class OperationsTests(Infrastructure infrastructure, ITestOutputHelper output)
{
    private const string Token = "test-token-0123456789abcdef";

    internal static Dictionary<string, string> Values(Infrastructure infrastructure, string database, string prefix, IDictionary<string, string>? extra = null)
    {
        var values = new Dictionary<string, string>
        {
            ["name"] = database,
            ["database.hostname"] = infrastructure.Postgres.Host,
            ["database.port"] = infrastructure.Postgres.Port.ToString(CultureInfo.InvariantCulture),
            ["database.user"] = infrastructure.Postgres.User,
            ["database.dbname"] = database,
            ["database.sslmode"] = "disable",
            ["topic.prefix"] = $"{prefix}{Guid.NewGuid():N}"[..20],
            ["state.dir"] = Path.Combine(Path.GetTempPath(), $"walbridge-test-state-{Guid.NewGuid():N}"),
            ["kafka.bootstrap.servers"] = infrastructure.Broker.BootstrapServers,
            ["heartbeat.interval.ms"] = "1000",
            ["operations.source.poll.interval.ms"] = "300",
            ["ha.poll.interval.ms"] = "300",
        };
        foreach (var (key, value) in extra ?? new Dictionary<string, string>())
        {
            values[key] = value;
        }

        return values;
    }

    [Fact]
    public async Task Metrics_health_and_admin_api_follow_a_kafka_outage_and_operator_requests()
    {
        var database = await infrastructure.CreateDatabaseAsync("ops");
        await infrastructure.Postgres.ExecuteAsync("CREATE TABLE items (id bigserial PRIMARY KEY, v text)", database);
        var values = Values(infrastructure, database, "ops", new Dictionary<string, string>
        {
            ["operations.token"] = Token,
            ["health.ready.max.lag.ms"] = "3000",
            ["database.password"] = "CANARY-PG-unused-by-trust",
        });
        var config = ConnectorConfig.FromDictionary(values);
        var table = $"public.items";
        await using var connector = ConnectorProcess.Start(values, token: Token);
        await connector.WaitForStateAsync(database, "RUNNING", TimeSpan.FromSeconds(90));

        // Without the token: 401 for the admin API and the metrics; the health checks stay open for probes.
        using (var anonymous = new HttpClient { BaseAddress = connector.Http.BaseAddress })
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync($"connectors/{database}/status")).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsync($"connectors/{database}/pause", null)).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("metrics")).StatusCode);
            anonymous.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "wrong-token-0123456789");
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync($"connectors/{database}/config")).StatusCode);
            anonymous.DefaultRequestHeaders.Authorization = null;
            Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("health/live")).StatusCode);
        }

        await InsertAsync(database, 200);
        await WaitForMetricAsync(connector, "walbridge_committed_rows_total", $"table=\"{table}\"", v => v >= 200);
        var metrics = await connector.MetricsAsync();
        Assert.True(ConnectorProcess.Sample(metrics, "walbridge_changes_seen_total", $"op=\"c\",table=\"{table}\"") >= 200 ||
                    ConnectorProcess.Sample(metrics, "walbridge_changes_seen_total", $"table=\"{table}\",op=\"c\"") >= 200, metrics);
        Assert.True(ConnectorProcess.Sample(metrics, "walbridge_kafka_transactions_total", "outcome=\"committed\"") > 0);
        Assert.True(ConnectorProcess.Sample(metrics, "walbridge_kafka_transaction_duration_seconds_count") > 0);
        Assert.True(ConnectorProcess.Sample(metrics, "walbridge_committed_lsn") > 0);
        Assert.Equal(1, ConnectorProcess.Sample(metrics, "walbridge_slot_wal_status", "status=\"reserved\""));
        Assert.Equal(1, ConnectorProcess.Sample(metrics, "walbridge_leader"));
        Assert.Equal(1, ConnectorProcess.Sample(metrics, "walbridge_connector_state", "state=\"streaming\""));
        Assert.NotNull(ConnectorProcess.Sample(metrics, "walbridge_queue_capacity_transactions"));
        Assert.NotNull(ConnectorProcess.Sample(metrics, "process_working_set_bytes"));
        // The initial snapshot (of empty tables here) is complete: each published table has its series.
        foreach (var family in new[] { "walbridge_snapshot_running", "walbridge_snapshot_rows_scanned_total", "walbridge_snapshot_completed" })
        {
            Assert.Contains($"# TYPE {family} ", metrics, StringComparison.Ordinal);
            Assert.Contains($"{family}{{table=", metrics, StringComparison.Ordinal);
        }

        Assert.All(metrics.Split('\n').Where(l => l.StartsWith("walbridge_snapshot_running{", StringComparison.Ordinal)), l => Assert.EndsWith(" 0", l, StringComparison.Ordinal));
        Assert.All(metrics.Split('\n').Where(l => l.StartsWith("walbridge_snapshot_completed{", StringComparison.Ordinal)), l => Assert.EndsWith(" 1", l, StringComparison.Ordinal));
        Assert.DoesNotContain("CANARY-PG", metrics, StringComparison.Ordinal);
        await WaitForReadyAsync(connector, ready: true);

        // Kafka down while PostgreSQL keeps writing: both lag figures grow and the connector is no longer ready.
        var before = await ScrapeLagAsync(connector);
        for (var id = 1; id <= infrastructure.Broker.BrokerCount; id++)
        {
            await infrastructure.Broker.BrokerDownAsync(id);
        }

        try
        {
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(6))
            {
                await InsertAsync(database, 20);
                await Task.Delay(200);
            }
            await Task.Delay(1000); // one more source poll
            var during = await ScrapeLagAsync(connector);
            output.WriteLine($"lag before the outage {before}, during {during}");
            Assert.True(during.Bytes > before.Bytes, $"lag bytes did not grow: {before} → {during}");
            Assert.True(during.Milliseconds > 3000, $"lag ms did not grow past 3 s: {during}");
            await WaitForReadyAsync(connector, ready: false);
        }
        finally
        {
            for (var id = 1; id <= infrastructure.Broker.BrokerCount; id++)
            {
                await infrastructure.Broker.BrokerUpAsync(id);
            }
        }
        var peak = await ScrapeLagAsync(connector);
        // Kafka back: the connector catches up, both figures fall again and it is ready.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        (long Bytes, double Milliseconds) after;
        do
        {
            await Task.Delay(500);
            after = await ScrapeLagAsync(connector);
        }
        while ((after.Milliseconds > 2500 || after.Bytes >= peak.Bytes) && DateTime.UtcNow < deadline);
        output.WriteLine($"lag at the end of the outage {peak}, after the catch-up {after}");
        Assert.True(after.Milliseconds <= 2500 && after.Bytes < peak.Bytes, $"the lag did not fall after Kafka came back: {peak} → {after}");
        await WaitForReadyAsync(connector, ready: true);
        var status = await connector.StatusAsync(database);
        Assert.True(status.GetProperty("walbridge").GetProperty("leader").GetBoolean());

        // Pause: streaming stops (the slot is released, nothing more is committed), the leadership is kept; resume streams again.
        Assert.Equal(HttpStatusCode.Accepted, (await connector.Http.PostAsync($"connectors/{database}/pause", null)).StatusCode);
        await connector.WaitForStateAsync(database, "PAUSED", TimeSpan.FromSeconds(60));
        var pausedRows = await CommittedRowsAsync(connector, table);
        await InsertAsync(database, 50);
        await Task.Delay(1500);
        Assert.Equal(pausedRows, await CommittedRowsAsync(connector, table));
        Assert.Equal(HttpStatusCode.Accepted, (await connector.Http.PostAsync($"connectors/{database}/resume", null)).StatusCode);
        await WaitForMetricAsync(connector, "walbridge_committed_rows_total", $"table=\"{table}\"", v => v >= pausedRows + 50);

        // Restart: a new attempt from the committed position.
        Assert.Equal(HttpStatusCode.Accepted, (await connector.Http.PostAsync($"connectors/{database}/restart", null)).StatusCode);
        await WaitForMetricAsync(connector, "walbridge_restarts_total", "reason=\"operator\"", v => v >= 2);
        await connector.WaitForStateAsync(database, "RUNNING", TimeSpan.FromSeconds(60));

        // Snapshot on demand: the body names the tables; without a signal table it says which setting to add.
        using (var snapshot = await connector.Http.PostAsync($"connectors/{database}/snapshot", new StringContent("not json")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, snapshot.StatusCode);
            Assert.Contains("tables", await snapshot.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using (var snapshot = await connector.Http.PostAsync($"connectors/{database}/snapshot", new StringContent("""{"tables": ["public.items"]}""")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, snapshot.StatusCode);
            Assert.Contains("signal.data.collection", await snapshot.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // Config: secrets masked; an unknown connector is 404.
        var configText = await connector.Http.GetStringAsync($"connectors/{database}/config");
        Assert.DoesNotContain("CANARY-PG", configText, StringComparison.Ordinal);
        Assert.DoesNotContain(Token, configText, StringComparison.Ordinal);
        Assert.Equal("********", JsonDocument.Parse(configText).RootElement.GetProperty("database.password").GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await connector.Http.GetAsync("connectors/other/status")).StatusCode);

        // connector status --config prints the same, as a table.
        var (code, printed) = await CliAsync("status", "--config", connector.ConfigFile);
        output.WriteLine(printed);
        Assert.Equal(0, code);
        Assert.Contains("RUNNING (streaming)", printed, StringComparison.Ordinal);
        Assert.Contains(config.SlotName, printed, StringComparison.Ordinal);
        Assert.Contains("committed_lsn", printed, StringComparison.Ordinal);
        Assert.DoesNotContain("CANARY-PG", printed, StringComparison.Ordinal);
        Assert.DoesNotContain(Token, printed, StringComparison.Ordinal);

        Assert.Equal(0, await connector.TerminateAsync(TimeSpan.FromSeconds(60)));
        Assert.DoesNotContain("CANARY-PG", connector.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(Token, connector.Output, StringComparison.Ordinal);
        var report = await PipelineVerifier.VerifyAsync(config, output.WriteLine, CancellationToken.None);
        Assert.True(report.Passed, "verify failed");
    }

    private async Task InsertAsync(string database, int rows) =>
        await infrastructure.Postgres.ExecuteAsync($"INSERT INTO items (v) SELECT repeat('x', 100) FROM generate_series(1, {rows})", database);

    private static async Task<double> CommittedRowsAsync(ConnectorProcess connector, string table) =>
        ConnectorProcess.Sample(await connector.MetricsAsync(), "walbridge_committed_rows_total", $"table=\"{table}\"") ?? 0;

    private static async Task<(long Bytes, double Milliseconds)> ScrapeLagAsync(ConnectorProcess connector)
    {
        var metrics = await connector.MetricsAsync();
        return ((long)(ConnectorProcess.Sample(metrics, "walbridge_lag_bytes") ?? -1), ConnectorProcess.Sample(metrics, "walbridge_lag_milliseconds") ?? double.NaN);
    }

    internal static async Task WaitForMetricAsync(ConnectorProcess connector, string metric, string labels, Func<double, bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        string metrics;
        do
        {
            metrics = await connector.MetricsAsync();
            if (ConnectorProcess.Sample(metrics, metric, labels) is { } value && condition(value))
            {
                return;
            }

            await Task.Delay(200);
        }
        while (DateTime.UtcNow < deadline && !connector.HasExited);
        throw new TimeoutException($"{metric}{{{labels}}} did not reach the expected value:\n{metrics}\n{connector.Output}");
    }

    private static async Task WaitForReadyAsync(ConnectorProcess connector, bool ready)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        var body = "";
        while (DateTime.UtcNow < deadline)
        {
            using var response = await connector.Http.GetAsync("health/ready");
            body = await response.Content.ReadAsStringAsync();
            if ((response.StatusCode == HttpStatusCode.OK) == ready)
            {
                return;
            }

            await Task.Delay(200);
        }
        throw new TimeoutException($"/health/ready did not become {(ready ? "ready" : "not ready")}: {body}");
    }

    /// <summary>Runs <c>connector</c> with <paramref name="args"/>; its exit code and output.</summary>
    internal static async Task<(int Code, string Output)> CliAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(typeof(WalBridge.Connector.Pipeline.ConnectorRunner).Assembly.Location);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout + await stderr);
    }
}
