using System.Diagnostics;

namespace WalBridge.Broker.Tests;

/// <summary>Runs after the parallel tests: one test changes a process-wide environment variable.</summary>
[CollectionDefinition(nameof(LifetimeTests), DisableParallelization = true)]
public sealed class LifetimeCollection;

[Collection(nameof(LifetimeTests))]
public sealed class LifetimeTests
{
    [Fact]
    public async Task DisposeAsync_stops_the_broker_process()
    {
        var broker = await LocalBroker.StartAsync(brokers: 1);
        var pid = broker.ProcessId;
        try
        {
            Assert.True(IsRunning(pid), $"broker pid {pid} should run after StartAsync");
            Assert.Equal("ok", await broker.SendControlAsync("ping"));
        }
        finally
        {
            await broker.DisposeAsync();
        }

        Assert.False(IsRunning(pid), $"broker pid {pid} still runs after DisposeAsync");
        Assert.True(broker.HasExited);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => broker.SendControlAsync("ping"));
        await broker.DisposeAsync(); // idempotent
    }

    [Fact]
    public async Task Broker_exits_when_its_stdin_closes()
    {
        // What protects against a dead parent: the parent's end of the stdin pipe closes.
        var dll = typeof(LocalBroker).Assembly.Location;
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { dll, "--brokers", "1", "--exit-on-stdin-eof" })
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi)!;
        try
        {
            var stderr = process.StandardError.ReadToEndAsync();
            using var startup = new CancellationTokenSource(Kafka.Bound);
            string? line;
            do
            {
                line = await process.StandardOutput.ReadLineAsync(startup.Token);
            }
            while (line is not null && !line.StartsWith("control=", StringComparison.Ordinal));
            if (line is null)
            {
                Assert.Fail("broker exited before printing control=...: " + await stderr);
            }

            process.StandardInput.Close();
            using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await process.WaitForExitAsync(exit.Token);
            Assert.Equal(0, process.ExitCode);
            Assert.Contains("end of stdin", await stderr, StringComparison.Ordinal);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }

    [Fact]
    public async Task Startup_failure_reports_the_child_stderr()
    {
        // A missing librdkafka must surface as a clear error naming the fix, with the child's
        // stderr, and leave no process behind.
        var saved = Environment.GetEnvironmentVariable(Librdkafka.PathEnvironmentVariable);
        Environment.SetEnvironmentVariable(Librdkafka.PathEnvironmentVariable, "/nonexistent/librdkafka.so.1");
        try
        {
            var error = await Assert.ThrowsAsync<InvalidOperationException>(() => LocalBroker.StartAsync(brokers: 1));
            Assert.Contains("exited with code 1", error.Message, StringComparison.Ordinal);
            Assert.Contains("/nonexistent/librdkafka.so.1", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Environment.SetEnvironmentVariable(Librdkafka.PathEnvironmentVariable, saved);
        }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
