using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Pipeline;

namespace WalBridge.Connector.Hosting;

/// <summary>
/// Hosts the connector in Microsoft.Extensions.Hosting's generic host: starts with the host,
/// stops on SIGINT/SIGTERM (the open Kafka transaction is finished or aborted first), and on a
/// fatal error logs it, sets exit code 1 and stops the host.
/// </summary>
internal sealed partial class ConnectorService(
    ConnectorConfig config,
    ConnectorRunner runner,
    ILogger<ConnectorService> logger,
    IHostApplicationLifetime lifetime) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Let the host finish starting before the blocking parts of start-up run.
        await Task.Yield();
        LogStarting(logger, config.Name, config.SlotName, config.PublicationName, config.Plugin);
        try
        {
            await runner.RunAsync(stoppingToken);
            LogStopped(logger, config.SlotName, runner.Progress.Committed);
            if (!stoppingToken.IsCancellationRequested)
            {
                // The job is done (snapshot.mode = initial_only): exit 0.
                lifetime.StopApplication();
            }
        }
        catch (Exception e)
        {
            LogFatal(logger, e, config.SlotName, runner.Progress.Committed);
            Environment.ExitCode = 1;
            lifetime.StopApplication();
        }
    }

    [LoggerMessage(EventId = 3201, Level = LogLevel.Information, Message = "Connector {Name} starting: slot {Slot}, publication {Publication}, plugin {Plugin}")]
    private static partial void LogStarting(ILogger logger, string name, string slot, string publication, DecodingPlugin plugin);

    [LoggerMessage(EventId = 3202, Level = LogLevel.Information, Message = "Connector stopped; slot {Slot} committed through {Lsn}")]
    private static partial void LogStopped(ILogger logger, string slot, WalBridge.Offsets.Lsn lsn);

    [LoggerMessage(EventId = 3203, Level = LogLevel.Critical, Message = "Fatal error, stopping (slot {Slot}, committed through {Lsn}; nothing later was acknowledged)")]
    private static partial void LogFatal(ILogger logger, Exception exception, string slot, WalBridge.Offsets.Lsn lsn);
}
