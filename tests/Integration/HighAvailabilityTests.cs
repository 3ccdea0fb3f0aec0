using System.Diagnostics;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Verification;
using WalBridge.Offsets;
using Xunit.Abstractions;

namespace WalBridge.Integration.Tests;

/// <summary>
/// Issue 14, high availability (and the matrix's P18, two instances on one slot): instances with the same name elect
/// one leader through a PostgreSQL advisory lock taken before any Kafka call. A standby never fences the leader, one
/// that cannot reach PostgreSQL fences nobody, and when the leader is killed under load a standby takes over without
/// losing or duplicating anything (<c>verify</c>).
/// </summary>
[Collection(InfrastructureCollection.Name)]
public sealed class HighAvailabilityTests(Infrastructure infrastructure, ITestOutputHelper output)
{
    [Fact]
    public async Task A_standby_waits_without_fencing_and_takes_over_when_the_leader_is_killed_under_load()
    {
        var database = await infrastructure.CreateDatabaseAsync("ha");
        await infrastructure.Postgres.ExecuteAsync("CREATE TABLE items (id bigserial PRIMARY KEY, v text)", database);
        var values = OperationsTests.Values(infrastructure, database, "ha");
        var config = ConnectorConfig.FromDictionary(values);
        // Each instance has its own host, so its own state.dir.
        var standbyValues = new Dictionary<string, string>(values) { ["state.dir"] = values["state.dir"] + "-standby" };
        // A third instance with the same name that cannot reach PostgreSQL.
        var unreachableValues = new Dictionary<string, string>(values)
        {
            ["state.dir"] = values["state.dir"] + "-unreachable",
            ["database.port"] = ConnectorProcess.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
        };

        await using var leader = ConnectorProcess.Start(values);
        await leader.WaitForStateAsync(database, "RUNNING", TimeSpan.FromSeconds(90));
        await using var standby = ConnectorProcess.Start(standbyValues);
        await standby.WaitForStateAsync(database, "UNASSIGNED", TimeSpan.FromSeconds(90));
        await using var unreachable = ConnectorProcess.Start(unreachableValues);
        await unreachable.WaitForOutputAsync("retrying in", TimeSpan.FromSeconds(60));

        using var stopLoad = new CancellationTokenSource();
        var inserted = 0;
        var load = Task.Run(async () =>
        {
            while (!stopLoad.IsCancellationRequested)
            {
                await infrastructure.Postgres.ExecuteAsync("INSERT INTO items (v) SELECT md5(g::text) FROM generate_series(1, 10) g", database);
                Interlocked.Add(ref inserted, 10);
                await Task.Delay(20);
            }
        });

        // The leader keeps committing with both others running: nobody fenced it.
        var committedWithStandby = ConnectorProcess.Sample(await leader.MetricsAsync(), "walbridge_source_transactions_total") ?? 0;
        await OperationsTests.WaitForMetricAsync(leader, "walbridge_source_transactions_total", "", v => v >= committedWithStandby + 20);
        Assert.Equal(0, ConnectorProcess.Sample(await standby.MetricsAsync(), "walbridge_leader"));
        Assert.Equal("UNASSIGNED", (await standby.StatusAsync(database)).GetProperty("connector").GetProperty("state").GetString());
        Assert.DoesNotContain("fenced", leader.Output, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Fatal", leader.Output, StringComparison.Ordinal);
        Assert.Contains("Standby:", standby.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Streaming slot", standby.Output, StringComparison.Ordinal);
        // The unreachable one said so in one line (no stack trace at information level) and never led.
        var line = unreachable.Output.Split('\n').First(l => l.Contains("retrying in", StringComparison.Ordinal));
        output.WriteLine(line);
        Assert.Contains($"PostgreSQL at {infrastructure.Postgres.Host}:{unreachableValues["database.port"]}", line, StringComparison.Ordinal);
        Assert.Contains("check", line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", unreachable.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Streaming slot", unreachable.Output, StringComparison.Ordinal);

        // kill -9 the leader under load: the standby takes over.
        var killedAt = Stopwatch.StartNew();
        leader.Kill();
        await standby.WaitForOutputAsync("Streaming slot", TimeSpan.FromSeconds(120));
        var streamingAfter = killedAt.Elapsed;
        var resumedFrom = ConnectorProcess.Sample(await standby.MetricsAsync(), "walbridge_source_transactions_total") ?? 0;
        await OperationsTests.WaitForMetricAsync(standby, "walbridge_source_transactions_total", "", v => v > resumedFrom);
        var committingAfter = killedAt.Elapsed;
        output.WriteLine($"takeover: the standby streamed {streamingAfter.TotalSeconds:F1} s and committed {committingAfter.TotalSeconds:F1} s after kill -9 of the leader");
        Console.WriteLine($"ha takeover: streaming after {streamingAfter.TotalSeconds:F1} s, committing after {committingAfter.TotalSeconds:F1} s (kill -9 of the leader under load)");
        Assert.Contains("Took over connector", standby.Output, StringComparison.Ordinal);

        await stopLoad.CancelAsync();
        await load;
        var end = Lsn.Parse(await infrastructure.Postgres.ScalarAsync<string>("SELECT pg_current_wal_lsn()::text", database));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (Lsn.Parse(await infrastructure.Postgres.ScalarAsync<string>(
            $"SELECT coalesce(confirmed_flush_lsn, '0/0')::text FROM pg_replication_slots WHERE slot_name = '{config.SlotName}'", database)) < end)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the new leader did not catch up:\n{standby.Output}");
            await Task.Delay(200);
        }

        Assert.Equal(0, await standby.TerminateAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(0, await unreachable.TerminateAsync(TimeSpan.FromSeconds(60)));
        var report = await PipelineVerifier.VerifyAsync(config, output.WriteLine, CancellationToken.None);
        Assert.True(report.Passed, "verify failed (a duplicate or a lost change)");
        Assert.Equal(inserted, report.Tables.Single().SourceRows);
    }
}
