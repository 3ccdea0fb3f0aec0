using WalBridge.Connector.Cli;
using WalBridge.Connector.Configuration;

namespace WalBridge.Connector;

/// <summary>The <c>connector</c> command line: run, demo, tail, broker.</summary>
internal static class Program
{
    private const string Usage = """
        usage: connector <command> [options]

        commands:
          run    --config <file> [--set key=value ...]    run the connector (a generic-host service)
          demo   [--seconds N] [--plugin pgoutput]        throwaway PostgreSQL + local broker, a workload, then verification
          verify --config <file> [--set key=value ...]    audit the topics against the source (read_committed)
          tail   --bootstrap-servers <list> --topic <t> [--from-beginning] [--max N]
                                                          print a table topic's Arrow payloads as rows
          chaos  [--quick] [--rounds N]                   crash/fault scenarios, then verification (see scripts/chaos.sh)
          broker [--brokers N]                            run the local Kafka-protocol broker (librdkafka mock cluster)

        Configuration keys (Kafka Connect style) are described in README.md.
        """;

    private static async Task<int> Main(string[] args)
    {
        Diagnostics.NativeMemory.ConfigureAllocator();
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
                "run" => await RunCommand.RunAsync(rest),
                "demo" => await DemoCommand.RunAsync(rest),
                "tail" => await TailCommand.RunAsync(rest),
                "verify" => await VerifyCommand.RunAsync(rest),
                "chaos" => await ChaosCommand.RunAsync(rest),
                "broker" => await BrokerCommand.RunAsync(rest),
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
}
