using System.Globalization;
using System.Runtime.InteropServices;

namespace WalBridge.Broker;

/// <summary>
/// <c>WalBridge.Broker [--brokers N] [--exit-on-stdin-eof]</c>: runs a mock Kafka cluster until
/// SIGINT/SIGTERM, the control command <c>shutdown</c>, or (with <c>--exit-on-stdin-eof</c>)
/// the end of standard input. Prints <c>bootstrap.servers=&lt;list&gt;</c> and
/// <c>control=127.0.0.1:&lt;port&gt;</c> on stdout once ready. Exit codes: 0 after a clean
/// stop, 1 when startup failed, 2 for bad arguments.
/// </summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var brokers = 3;
        var exitOnStdinEof = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--brokers" when i + 1 < args.Length &&
                    int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out brokers) &&
                    brokers is >= 1 and <= 32:
                    i++;
                    break;
                case "--exit-on-stdin-eof":
                    exitOnStdinEof = true;
                    break;
                default:
                    await Console.Error.WriteLineAsync(
                        $"WalBridge.Broker: bad argument '{args[i]}'\n" +
                        "usage: WalBridge.Broker [--brokers N (1-32, default 3)] [--exit-on-stdin-eof]");
                    return 2;
            }
        }

        var stop = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);

        // ctx.Cancel keeps the runtime from terminating at once, so the cluster is destroyed
        // (its listeners closed) before we exit.
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
        {
            ctx.Cancel = true;
            stop.TrySetResult("SIGTERM");
        });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx =>
        {
            ctx.Cancel = true;
            stop.TrySetResult("SIGINT");
        });

        MockCluster cluster;
        try
        {
            cluster = new MockCluster(brokers);
        }
        catch (Exception ex) when (ex is InvalidOperationException or DllNotFoundException or EntryPointNotFoundException)
        {
            await Console.Error.WriteLineAsync("WalBridge.Broker: cannot start: " + ex.Message);
            return 1;
        }

        using (cluster)
        {
            await using var control = new ControlServer(cluster);
            _ = control.ShutdownRequested.ContinueWith(
                _ => stop.TrySetResult("shutdown command"), TaskScheduler.Default);

            if (exitOnStdinEof)
            {
                // The parent keeps our stdin open; EOF means it exited or died (even by
                // SIGKILL), and a test broker must not outlive its test run.
                var watcher = new Thread(() =>
                {
                    using var stdin = Console.OpenStandardInput();
                    var buffer = new byte[256];
                    try
                    {
                        while (stdin.Read(buffer, 0, buffer.Length) > 0)
                        {
                        }
                    }
                    catch (IOException)
                    {
                    }

                    stop.TrySetResult("end of stdin");
                })
                { IsBackground = true, Name = "stdin-eof-watcher" };
                watcher.Start();
            }

            Console.Out.WriteLine("bootstrap.servers=" + cluster.BootstrapServers);
            Console.Out.WriteLine($"control=127.0.0.1:{control.Endpoint.Port}");
            Console.Out.Flush();

            var reason = await stop.Task;
            await Console.Error.WriteLineAsync($"WalBridge.Broker: stopping ({reason})");
        }

        return 0;
    }
}
