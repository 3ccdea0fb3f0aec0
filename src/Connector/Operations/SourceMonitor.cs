using Microsoft.Extensions.Logging;
using Npgsql;
using WalBridge.Connector.Configuration;
using WalBridge.Offsets;

namespace WalBridge.Connector.Operations;

/// <summary>What the last poll of the source said about its WAL and the replication slot.</summary>
/// <param name="At">When the poll ran.</param>
/// <param name="CurrentWal">The server's current WAL position (<c>pg_current_wal_lsn()</c>; on a standby the replayed position).</param>
/// <param name="SlotExists">Whether the slot exists.</param>
/// <param name="WalStatus">The slot's <c>wal_status</c> (reserved, extended, unreserved, lost), or null.</param>
/// <param name="RestartLsn">The oldest WAL the slot still needs.</param>
/// <param name="ConfirmedFlush">The slot's <c>confirmed_flush_lsn</c>: what the connector acknowledged.</param>
/// <param name="SlotActive">Whether a walsender streams the slot now.</param>
/// <param name="SafeWalSize">Bytes of WAL that may still be written before the slot is invalidated (<c>safe_wal_size</c>), or null when unlimited.</param>
public sealed record SourceSnapshot(DateTimeOffset At, Lsn CurrentWal, bool SlotExists, string? WalStatus, Lsn RestartLsn, Lsn ConfirmedFlush, bool SlotActive, long? SafeWalSize)
{
    /// <summary>WAL the slot keeps on the server's disk (current position − restart_lsn).</summary>
    public long RetainedWalBytes => SlotExists && !RestartLsn.IsZero && CurrentWal >= RestartLsn ? (long)(CurrentWal.Value - RestartLsn.Value) : 0;
}

/// <summary>
/// Polls the source every <see cref="ConnectorConfig.SourcePollInterval"/> for the lag figures: the server's WAL
/// position and the slot's <c>wal_status</c>, retained WAL and <c>safe_wal_size</c>. Warns when the slot is about to
/// lose WAL and reports an invalidated slot as an error (the next pipeline start refuses it with what to do).
/// </summary>
/// <remarks>
/// One task for the process, independent of pipeline attempts and of the leadership: a standby reports the same
/// source figures. Its own connection (application_name <c>walbridge:&lt;name&gt;:monitor</c>); a failed poll only
/// marks the source unreachable (<see cref="SourceReachable"/>) and is retried at the next interval. Never throws.
/// </remarks>
public sealed partial class SourceMonitor(ConnectorConfig config, ILogger logger)
{
    private volatile SourceSnapshot? _last;
    private volatile bool _reachable;
    private string? _reportedStatus;

    /// <summary>The last successful poll, or null before the first.</summary>
    public SourceSnapshot? Last => _last;

    /// <summary>Whether the last poll succeeded.</summary>
    public bool SourceReachable => _reachable;

    /// <summary>Polls until <paramref name="cancellationToken"/> is cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var builder = new NpgsqlConnectionStringBuilder(config.ConnectionString(replication: false))
        {
            ApplicationName = $"walbridge:{config.Name}:monitor",
            Timeout = 10,
            CommandTimeout = 10,
        };
        NpgsqlConnection? connection = null;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                try
                {
                    if (connection is null)
                    {
                        connection = new NpgsqlConnection(builder.ConnectionString);
                        await connection.OpenAsync(cancellationToken);
                    }

                    var snapshot = await PollAsync(connection, cancellationToken);
                    _last = snapshot;
                    _reachable = true;
                    Report(snapshot);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or InvalidOperationException or OperationCanceledException
                    or System.Security.Authentication.AuthenticationException)
                {
                    _reachable = false;
                    LogPollFailed(logger, config.SlotName, e.Message);
                    if (connection is not null)
                    {
                        await connection.DisposeAsync();
                        connection = null;
                    }
                }
                try
                {
                    await Task.Delay(config.SourcePollInterval, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
        finally
        {
            if (connection is not null)
            {
                await connection.DisposeAsync();
            }
        }
    }

    private async Task<SourceSnapshot> PollAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var query = new NpgsqlCommand("""
            SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text,
                   s.slot_name IS NOT NULL, s.wal_status, s.restart_lsn::text, s.confirmed_flush_lsn::text, coalesce(s.active, false), s.safe_wal_size
            FROM (SELECT 1) AS one LEFT JOIN pg_replication_slots s ON s.slot_name = $1
            """, connection);
        query.Parameters.Add(new NpgsqlParameter { Value = config.SlotName });
        await using var reader = await query.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        Lsn Position(int column) => reader.IsDBNull(column) ? Lsn.Zero : Lsn.Parse(reader.GetString(column));
        return new SourceSnapshot(
            DateTimeOffset.UtcNow,
            Position(0),
            reader.GetBoolean(1),
            reader.IsDBNull(2) ? null : reader.GetString(2),
            Position(3),
            Position(4),
            reader.GetBoolean(5),
            reader.IsDBNull(6) ? null : reader.GetInt64(6));
    }

    /// <summary>Logs a change of the slot's WAL status that an operator must act on: once per change.</summary>
    private void Report(SourceSnapshot snapshot)
    {
        var status = snapshot.WalStatus;
        if (status == _reportedStatus)
        {
            return;
        }

        _reportedStatus = status;
        switch (status)
        {
            case "unreserved":
                LogSlotAtRisk(logger, config.SlotName, snapshot.RetainedWalBytes, snapshot.SafeWalSize ?? 0);
                break;
            case "lost":
                LogSlotLost(logger, config.SlotName, snapshot.RestartLsn);
                break;
            case "reserved" or "extended":
                break;
            default:
                break;
        }
    }

    [LoggerMessage(EventId = 4101, Level = LogLevel.Debug, Message = "Polling the source for slot {Slot} failed: {Reason}")]
    private static partial void LogPollFailed(ILogger logger, string slot, string reason);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Warning,
        Message = "Replication slot {Slot} is about to lose WAL: wal_status unreserved, {RetainedBytes} bytes retained, {SafeWalSize} bytes until max_slot_wal_keep_size invalidates it. The connector must catch up (check Kafka), or raise max_slot_wal_keep_size")]
    private static partial void LogSlotAtRisk(ILogger logger, string slot, long retainedBytes, long safeWalSize);

    [LoggerMessage(EventId = 4103, Level = LogLevel.Error,
        Message = "Replication slot {Slot} was invalidated (wal_status lost; restart_lsn {Lsn}): PostgreSQL removed WAL it needed (max_slot_wal_keep_size) and those changes are lost. The connector refuses to stream from it; re-snapshot into new topics with a new slot.name")]
    private static partial void LogSlotLost(ILogger logger, string slot, Lsn lsn);
}
