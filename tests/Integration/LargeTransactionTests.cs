using System.Diagnostics;
using System.Globalization;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Pipeline;
using WalBridge.Connector.Queue;
using WalBridge.Connector.Verification;
using WalBridge.Offsets;
using Xunit.Abstractions;

namespace WalBridge.Integration.Tests;

/// <summary>Issue 5: a transaction far larger than memory streams in bounded memory.</summary>
[Collection(InfrastructureCollection.Name)]
public sealed class LargeTransactionTests(Infrastructure infrastructure, ITestOutputHelper output)
{
    /// <summary>Rows in the one transaction (about 1 GB of WAL); WALBRIDGE_LARGE_ROWS overrides it for quick local runs.</summary>
    private static readonly int s_rows = int.TryParse(Environment.GetEnvironmentVariable("WALBRIDGE_LARGE_ROWS"), CultureInfo.InvariantCulture, out var n) ? n : 5_000_000;

    private const long RssLimit = 512L << 20;

    [Fact]
    public async Task A_five_million_row_transaction_streams_in_bounded_memory_through_the_spill_store()
    {
        var database = await infrastructure.CreateDatabaseAsync("large");
        await infrastructure.Postgres.ExecuteAsync(
            "CREATE TABLE big (id bigint PRIMARY KEY, bucket int NOT NULL, label text NOT NULL, amount numeric(12,2) NOT NULL, at timestamptz NOT NULL)", database);
        var config = infrastructure.Config(database, "large");
        var configFile = Path.Combine(Path.GetTempPath(), $"walbridge-large-{Guid.NewGuid():N}.properties");
        await File.WriteAllLinesAsync(configFile,
        [
            $"name={config.Name}", $"database.hostname={config.DatabaseHost}", $"database.port={config.DatabasePort}",
            $"database.user={config.DatabaseUser}", $"database.dbname={database}", "database.sslmode=disable",
            $"topic.prefix={config.TopicPrefix}", $"state.dir={config.StateDirectory}",
            $"kafka.bootstrap.servers={infrastructure.Broker.BootstrapServers}",
            "operations.listen=127.0.0.1:0",
        ]);
        using var connector = StartConnector(configFile);
        try
        {
            await WaitForSlotAsync(config.SlotName, database, connector);

            // One transaction; the position inside it (before its commit record) is the target.
            var clock = Stopwatch.StartNew();
            var floor = Lsn.Parse(await infrastructure.Postgres.ScalarAsync<string>($"""
                WITH ins AS (
                    INSERT INTO big SELECT g, g % 1000, md5(g::text) || md5((g * 7)::text), (g % 100000) / 100.0, '2026-01-01 00:00:00+00'::timestamptz + g * interval '1 second'
                    FROM generate_series(1, {s_rows}) g RETURNING 1)
                SELECT (SELECT count(*) FROM ins) * 0 || '' || pg_current_wal_insert_lsn()::text
                """, database).ContinueWith(t => t.Result, TaskScheduler.Default));
            output.WriteLine($"inserted {s_rows:N0} rows in {clock.Elapsed.TotalSeconds:F1} s; WAL now {floor}");

            var spillDirectory = config.SpillDirectory;
            long maxSpill = 0;
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(20);
            while (await ConfirmedAsync(config.SlotName, database) < floor)
            {
                Assert.False(connector.HasExited, $"the connector exited with code {(connector.HasExited ? connector.ExitCode : 0)}");
                Assert.True(DateTime.UtcNow < deadline, "the transaction was not delivered within 20 minutes");
                maxSpill = Math.Max(maxSpill, SpillBytes(spillDirectory));
                await Task.Delay(250);
            }
            output.WriteLine($"delivered after {clock.Elapsed.TotalSeconds:F1} s; largest spill seen {maxSpill / 1048576.0:F0} MB");

            var peak = PeakRss(connector.Id);
            output.WriteLine($"connector peak RSS {peak / 1048576.0:F0} MB");
            Assert.True(peak < RssLimit, $"peak RSS {peak / 1048576.0:F0} MB is not under {RssLimit >> 20} MB");
            Assert.True(maxSpill > 0, "the spill store was never used");
            Assert.Empty(Directory.Exists(spillDirectory) ? Directory.GetFiles(spillDirectory, "*.spill") : []);

            connector.Kill();
            await connector.WaitForExitAsync();
            var report = await PipelineVerifier.VerifyAsync(config, output.WriteLine, CancellationToken.None);
            Assert.True(report.Passed, "verify failed");
            Assert.Equal(s_rows, report.Tables.Single().SourceRows);
        }
        finally
        {
            if (!connector.HasExited)
            {
                connector.Kill(entireProcessTree: true);
            }

            await infrastructure.Postgres.ExecuteAsync(
                $"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{config.SlotName}'", database);
            await infrastructure.Postgres.ExecuteAsync($"DROP TABLE big", database);
            File.Delete(configFile);
            if (Directory.Exists(config.StateDirectory))
            {
                Directory.Delete(config.StateDirectory, recursive: true);
            }
        }
    }

    private static Process StartConnector(string configFile)
    {
        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(typeof(ConnectorRunner).Assembly.Location);
        start.ArgumentList.Add("run");
        start.ArgumentList.Add("--config");
        start.ArgumentList.Add(configFile);
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private async Task WaitForSlotAsync(string slot, string database, Process connector)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (await infrastructure.Postgres.ScalarAsync<long>($"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}' AND active", database) == 0)
        {
            Assert.False(connector.HasExited, "the connector exited before streaming");
            Assert.True(DateTime.UtcNow < deadline, "the connector did not start streaming within 60 s");
            await Task.Delay(100);
        }
    }

    private async Task<Lsn> ConfirmedAsync(string slot, string database) =>
        Lsn.Parse(await infrastructure.Postgres.ScalarAsync<string>(
            $"SELECT coalesce(confirmed_flush_lsn, '0/0')::text FROM pg_replication_slots WHERE slot_name = '{slot}'", database));

    private static long SpillBytes(string directory)
    {
        if (!Directory.Exists(directory))
        {
            return 0;
        }

        long total = 0;
        foreach (var file in Directory.GetFiles(directory, "*.spill"))
        {
            try
            {
                total += new FileInfo(file).Length;
            }
            catch (IOException)
            {
            }
        }
        return total;
    }

    /// <summary>VmHWM: the process's peak resident set size.</summary>
    private static long PeakRss(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
            }
        }
        throw new InvalidOperationException("VmHWM not found");
    }
}
