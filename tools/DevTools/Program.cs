using System.Diagnostics;
using System.Runtime.InteropServices;
using WalBridge.Connector.Cli;
using WalBridge.Connector.Configuration;
using WalBridge.DevTools.Chaos;
using WalBridge.DevTools.Demo;

namespace WalBridge.DevTools;

/// <summary>
/// The developer tools' command line, reached through <c>./connector</c>: <c>demo</c>, <c>chaos</c>, <c>bench</c>
/// and <c>broker</c>. They run the connector (src/Connector) against a throwaway PostgreSQL and the test broker.
/// </summary>
internal static class Program
{
    private const string Usage = """
        usage: connector <dev command> [options]

        developer commands:
          demo   [--seconds N] [--plugin pgoutput|wal2arrow] [--rate N] [--verbose]
                                                          throwaway PostgreSQL + local broker, a workload, then verification
          chaos  [--quick] [--rounds N] [--plugin pgoutput|wal2arrow] [--seed N] [--outage-seconds S]
                                                          crash/fault scenarios, then verification (see scripts/chaos.sh)
          chaos  --workload random [--seed N] [--minutes M] [--plugin P] [--set key=value ...] [--without F1,F2]
                                                          the randomized end-to-end check under the same crashes (docs/chaos.md)
          soak   [--minutes N] [--plugin P] [--seed N]    steady load and random faults on one connector; RSS, fds, threads, spill must stay flat
          broker [--brokers N]                            run the local Kafka-protocol broker (librdkafka mock cluster)
          bench  [--quick] [--scale F] [--compression] [--json <file>] [--workloads W1,...]
                                                          throughput, latency, CPU, memory vs pg_recvlogical and a peer (docs/benchmarks.md)
        """;

    private static async Task<int> Main(string[] args)
    {
        WalBridge.Connector.Diagnostics.NativeMemory.ConfigureAllocator();
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            Console.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }
        var rest = args[1..];
        try
        {
            return args[0] switch
            {
                "demo" => await DemoCommand.RunAsync(rest),
                "chaos" => await ChaosCommand.RunAsync(rest),
                "broker" => await BrokerCommand.RunAsync(rest),
                "soak" => await Soak.SoakCommand.RunAsync(rest),
                "bench" => await BenchAsync(rest),
                _ => throw new UsageException($"Unknown command '{args[0]}'."),
            };
        }
        catch (UsageException e)
        {
            await Console.Error.WriteLineAsync($"connector: {e.Message}\n\n{Usage}");
            return 2;
        }
        catch (ConfigurationException e)
        {
            await Console.Error.WriteLineAsync($"connector: configuration error: {e.Message}");
            return 2;
        }
    }

    /// <summary>
    /// <c>bench</c>: the benchmark is its own program, bench/Bench (it references this project, so this
    /// project cannot reference it). Found in the source tree above this program, built when missing or
    /// older than the sources, and run as a child process with the same arguments and console.
    /// </summary>
    private static async Task<int> BenchAsync(string[] args)
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "bench", "Bench", "Bench.csproj")))
        {
            root = root.Parent;
        }

        if (root is null)
        {
            throw new UsageException($"bench needs the source tree: bench/Bench/Bench.csproj was not found above {AppContext.BaseDirectory}.");
        }

        var project = Path.Combine(root.FullName, "bench", "Bench");
        var dll = Path.Combine(project, "bin", "Release", "net10.0", "WalBridge.Bench.dll");
        var built = File.Exists(dll) ? File.GetLastWriteTimeUtc(dll) : DateTime.MinValue;
        bool Newer(string directory) => Directory.Exists(directory) && Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories)
            .Any(f => (f.EndsWith(".cs", StringComparison.Ordinal) || f.EndsWith(".csproj", StringComparison.Ordinal) || f.EndsWith(".props", StringComparison.Ordinal))
                && !f.Contains("/bin/", StringComparison.Ordinal) && !f.Contains("/obj/", StringComparison.Ordinal) && File.GetLastWriteTimeUtc(f) > built);
        if (Newer(project) || Newer(Path.Combine(root.FullName, "src")) || Newer(Path.Combine(root.FullName, "tools", "DevTools")) || File.GetLastWriteTimeUtc(Path.Combine(root.FullName, "Directory.Build.props")) > built)
        {
            await Console.Error.WriteLineAsync("connector: building the benchmark (bench/Bench)…");
            var code = await RunChildAsync("dotnet", ["build", project, "-c", "Release", "--nologo", "-v", "q", "-clp:ErrorsOnly"]);
            if (code != 0)
            {
                return code;
            }

            File.SetLastWriteTimeUtc(dll, DateTime.UtcNow); // an up-to-date build leaves the file alone
        }
        return await RunChildAsync("dotnet", [dll, .. args]);

        static async Task<int> RunChildAsync(string file, IEnumerable<string> arguments)
        {
            using var process = Process.Start(new ProcessStartInfo(file, arguments) { UseShellExecute = false })
                ?? throw new InvalidOperationException($"could not start {file}");
            // Ctrl+C reaches the child too (same process group): wait while it cleans up. SIGTERM is
            // passed on as SIGINT, which the benchmark handles by stopping everything it started.
            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => context.Cancel = true);
            using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
            {
                context.Cancel = true;
                using var kill = Process.Start("kill", ["-INT", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
                kill?.WaitForExit();
            });
            await process.WaitForExitAsync();
            return process.ExitCode;
        }
    }
}
