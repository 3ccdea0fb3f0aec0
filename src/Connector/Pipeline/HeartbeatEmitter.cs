using Microsoft.Extensions.Logging;
using Npgsql;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Queue;

namespace WalBridge.Connector.Pipeline;

/// <summary>
/// When nothing was committed for a heartbeat interval, emits a non-transactional logical decoding message with this
/// connector's prefix. It comes back through the stream after every earlier commit, so its position can be recorded
/// in Kafka and acknowledged: an idle slot (published tables quiet, others busy) stops pinning WAL.
/// </summary>
/// <remarks>One task per pipeline attempt; its connections come from one pooled data source it owns.</remarks>
internal sealed partial class HeartbeatEmitter(ConnectorConfig config, ProgressTracker progress, ILogger logger)
{
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (config.HeartbeatInterval <= TimeSpan.Zero)
        {
            return;
        }

        await using var source = NpgsqlDataSource.Create(config.ConnectionString(replication: false));
        var lastCommitted = progress.Committed;
        while (true)
        {
            try
            {
                await Task.Delay(config.HeartbeatInterval, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            var committed = progress.Committed;
            if (committed != lastCommitted || progress.Queued > 0)
            {
                lastCommitted = committed;
                continue;
            }
            try
            {
                await using var emit = source.CreateCommand("SELECT pg_logical_emit_message(false, $1, ''::text)");
                emit.Parameters.Add(new NpgsqlParameter { Value = config.HeartbeatPrefix });
                await emit.ExecuteNonQueryAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (NpgsqlException e)
            {
                // Not fatal: without heartbeats only idle acknowledgement stops.
                LogHeartbeatFailed(logger, config.SlotName, e.Message);
            }
        }
    }

    [LoggerMessage(EventId = 3104, Level = LogLevel.Warning, Message = "Heartbeat message for slot {Slot} failed: {Reason}")]
    private static partial void LogHeartbeatFailed(ILogger logger, string slot, string reason);
}
