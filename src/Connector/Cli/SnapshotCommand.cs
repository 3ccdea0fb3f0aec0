using Microsoft.Extensions.Logging.Abstractions;
using WalBridge.Connector.Snapshot;

namespace WalBridge.Connector.Cli;

/// <summary>
/// <c>snapshot --config F --tables schema.t1,schema.t2</c>: asks the connector for incremental snapshots of tables by
/// writing an <c>execute-snapshot</c> signal into its signal table (<c>signal.data.collection</c>); the running connector
/// carries it out while streaming goes on. Every table is checked first (published, with a key).
/// </summary>
internal static class SnapshotCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        var options = new CliArguments(args, ["--config", "--set", "--tables"], []);
        var tablesText = options.Value("--tables") ?? throw new UsageException("snapshot needs --tables schema.table[,schema.table...].");
        var tables = tablesText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.Ordinal).ToList();
        var config = RunCommand.LoadConfig(args.Where((_, i) => !IsTablesArgument(args, i)).ToArray(), out _);
        try
        {
            var id = await SignalTable.WriteAsync(config, tables, NullLogger.Instance, CancellationToken.None);
            Console.WriteLine($"signal {id} written to {config.SignalDataCollection}: connector {config.Name} snapshots {string.Join(", ", tables)} while it streams.");
            Console.WriteLine("Progress: its log (events 1511 start, 1512 progress, 1513 complete) and the walbridge.snapshot markers in each table's topic.");
            return 0;
        }
        catch (Npgsql.NpgsqlException e)
        {
            await Console.Error.WriteLineAsync($"connector: cannot write the signal to the source: {e.Message}");
            return 1;
        }
    }

    /// <summary>Whether argument <paramref name="i"/> is <c>--tables</c> or its value (not for the configuration's parser).</summary>
    private static bool IsTablesArgument(string[] args, int i) =>
        args[i] == "--tables" || args[i].StartsWith("--tables=", StringComparison.Ordinal) || (i > 0 && args[i - 1] == "--tables");
}
