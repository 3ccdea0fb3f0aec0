using WalBridge.Connector.Cli;
using WalBridge.Connector.Configuration;

namespace WalBridge.Connector;

/// <summary>
/// The connector's command line: <c>run</c> (the service), <c>verify</c>, <c>status</c>, <c>snapshot</c> and <c>tail</c>. The developer tools
/// (<c>demo</c>, <c>chaos</c>, <c>bench</c>, <c>broker</c>) are a separate program, tools/DevTools; the
/// <c>./connector</c> script reaches both.
/// </summary>
internal static class Program
{
    private const string Usage = """
        usage: connector <command> [options]

        commands:
          run    --config <file> [--set key=value ...]    run the connector (a generic-host service)
          verify --config <file> [--set key=value ...]    audit the topics against the source (read_committed)
          status --config <file> [--set key=value ...]    ask a running connector (operations.listen) for its status and configuration
          snapshot --config <file> --tables <schema.table,...> [--set key=value ...]
                                                          ask the connector for incremental snapshots of tables (writes a signal to signal.data.collection)
          tail   --bootstrap-servers <list> --topic <t> [--from-beginning] [--max N]
                                                          print a table topic's Arrow payloads as rows

        Developer tools (./connector demo|chaos|bench|broker) are described in README.md.

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
                "tail" => await TailCommand.RunAsync(rest),
                "verify" => await VerifyCommand.RunAsync(rest),
                "status" => await StatusCommand.RunAsync(rest),
                "snapshot" => await SnapshotCommand.RunAsync(rest),
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
