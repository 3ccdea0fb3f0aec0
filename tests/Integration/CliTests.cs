using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Pipeline;
using WalBridge.Connector.Queue;
using WalBridge.Offsets;

namespace WalBridge.Integration.Tests;

/// <summary>The <c>connector</c> command line as a user runs it: a separate process.</summary>
[Collection(InfrastructureCollection.Name)]
public sealed partial class CliTests(Infrastructure infrastructure)
{
    private static readonly string s_connectorDll = typeof(ConnectorRunner).Assembly.Location;

    [Fact]
    public async Task Run_with_a_missing_key_exits_2_and_names_the_key()
    {
        using var process = Start(["run", "--set", "name=x", "--set", "database.user=u", "--set", "topic.prefix=p", "--set", "kafka.bootstrap.servers=b:1"]);
        var (exit, output) = await WaitAsync(process, TimeSpan.FromSeconds(60));
        Assert.Equal(2, exit);
        Assert.Contains("'database.dbname'", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_with_an_unknown_key_exits_2_and_names_the_key()
    {
        var file = Path.Combine(Path.GetTempPath(), $"walbridge-{Guid.NewGuid():N}.properties");
        await File.WriteAllTextAsync(file, "name=x\ndatabase.user=u\ndatabase.dbname=d\ntopic.prefix=p\nkafka.bootstrap.servers=b:1\nslot.nmae=oops\n");
        try
        {
            using var process = Start(["run", "--config", file]);
            var (exit, output) = await WaitAsync(process, TimeSpan.FromSeconds(60));
            Assert.Equal(2, exit);
            Assert.Contains("'slot.nmae'", output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Run_streams_stops_cleanly_on_SIGTERM_and_never_prints_the_password()
    {
        var database = await infrastructure.CreateDatabaseAsync("cli");
        await infrastructure.Postgres.ExecuteAsync("CREATE TABLE notes (id int PRIMARY KEY, body text)", database);
        var prefix = $"cli{Guid.NewGuid():N}"[..16];
        var state = Path.Combine(Path.GetTempPath(), $"walbridge-cli-state-{Guid.NewGuid():N}");
        const string Password = "s3cret-Pa55word";
        var config = Path.Combine(Path.GetTempPath(), $"walbridge-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(config, $$"""
            {"name": "{{database}}", "config": {
              "database.hostname": "127.0.0.1", "database.port": {{infrastructure.Postgres.Port}},
              "database.user": "postgres", "database.password": "{{Password}}", "database.dbname": "{{database}}",
              "database.sslmode": "disable", "topic.prefix": "{{prefix}}", "state.dir": "{{state}}",
              "kafka.bootstrap.servers": "{{infrastructure.Broker.BootstrapServers}}", "operations.listen": "127.0.0.1:0"
            }
            }
            """);
        var slot = $"walbridge_{database}";
        using var process = Start(["run", "--config", config]);
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            // Wait for the slot, then write, then wait until the position is acknowledged.
            await Eventually(async () => await infrastructure.Postgres.ScalarAsync<long>(
                $"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}'", database) == 1, "the slot to be created", process, output);
            var before = Lsn.Parse(await infrastructure.Postgres.ScalarAsync<string>("SELECT pg_current_wal_insert_lsn()::text", database));
            await infrastructure.Postgres.ExecuteAsync("INSERT INTO notes VALUES (1, 'hello from the CLI test')", database);
            await Eventually(async () =>
            {
                var confirmed = await infrastructure.Postgres.ScalarAsync<string?>(
                    $"SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '{slot}'", database);
                return confirmed is not null && Lsn.Parse(confirmed) > before;
            }, "the insert to be acknowledged", process, output);

            Assert.Equal(0, Kill(process.Id, 15));
            Assert.True(process.WaitForExit(TimeSpan.FromSeconds(30)), "the connector did not stop within 30 s of SIGTERM");
            process.WaitForExit();
            Assert.Equal(0, process.ExitCode);
            string text;
            lock (output)
            {
                text = output.ToString();
            }

            Assert.Contains("Connector stopped", text, StringComparison.Ordinal);
            Assert.DoesNotContain(Password, text, StringComparison.Ordinal);

            // tail decodes the record as a table.
            using var tail = Start(["tail", "--bootstrap-servers", infrastructure.Broker.BootstrapServers, "--topic", $"{prefix}.public.notes", "--from-beginning", "--max", "3"]);
            var (tailExit, tailOutput) = await WaitAsync(tail, TimeSpan.FromSeconds(60));
            Assert.Equal(0, tailExit);
            Assert.Contains("table public.notes", tailOutput, StringComparison.Ordinal);
            Assert.Contains("hello from the CLI test", tailOutput, StringComparison.Ordinal);
            Assert.Contains("_op", tailOutput, StringComparison.Ordinal);
            Assert.Contains("format 2", tailOutput, StringComparison.Ordinal);
            Assert.Contains("_commit_lsn", tailOutput, StringComparison.Ordinal);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            await infrastructure.Postgres.ExecuteAsync($"SELECT pg_drop_replication_slot('{slot}')", database);
            File.Delete(config);
            if (Directory.Exists(state))
            {
                Directory.Delete(state, recursive: true);
            }
        }
    }

    private static Process Start(IEnumerable<string> args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(s_connectorDll);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return Process.Start(start) ?? throw new InvalidOperationException("could not start the connector");
    }

    private static async Task<(int Exit, string Output)> WaitAsync(Process process, TimeSpan timeout)
    {
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"connector did not exit within {timeout}");
        }
        return (process.ExitCode, await stdout + await stderr);
    }

    private static async Task Eventually(Func<Task<bool>> condition, string what, Process process, StringBuilder output)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!await condition())
        {
            if (process.HasExited || DateTime.UtcNow > deadline)
            {
                string text;
                lock (output)
                {
                    text = output.ToString();
                }

                throw new TimeoutException($"Waited in vain for {what} (connector {(process.HasExited ? $"exited {process.ExitCode}" : "running")}):\n{text}");
            }
            await Task.Delay(100);
        }
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}
