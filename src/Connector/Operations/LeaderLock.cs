using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using Npgsql;
using WalBridge.Connector.Configuration;

namespace WalBridge.Connector.Operations;

/// <summary>
/// High availability for instances with the same <c>name</c>: exactly one of them leads (streams), the others wait.
/// The leader holds a session-level PostgreSQL advisory lock on a connection of its own for as long as it runs;
/// PostgreSQL releases it when that session ends (the process died, its host vanished, the connection broke).
/// </summary>
/// <remarks>
/// <para>Why a waiting instance never fences the leader: the lock is taken before anything touches Kafka. An instance
/// calls <c>InitTransactions</c> (which fences the previous producer of the transactional id) only after
/// <see cref="AcquireAsync"/> returned, i.e. after PostgreSQL granted it the lock, which it grants to one session at a
/// time and only once the previous holder's session is gone. A standby that cannot reach PostgreSQL cannot get the lock,
/// so it cannot fence anyone either. Delivery does not rest on the lock: Kafka's fencing and the slot's exclusivity
/// still protect the data if two instances ever ran (a leader that lost its session stops streaming at once).</para>
/// <para>Takeover: a standby tries every <c>ha.poll.interval.ms</c>. A leader killed on a live host loses its lock at
/// once (the kernel closes its socket); when the host vanishes PostgreSQL notices through TCP keepalive on the lock
/// session, set to <c>ha.session.timeout.ms</c>. The new leader then waits (at most that long again) for the old
/// walsender to release the slot before it starts.</para>
/// <para>Threading: <see cref="AcquireAsync"/> and <see cref="DisposeAsync"/> from the runner's task; the watch runs as
/// its own task and only cancels <see cref="LostToken"/>.</para>
/// </remarks>
public sealed partial class LeaderLock(ConnectorConfig config, ConnectorStatus status, ILogger logger) : IAsyncDisposable
{
    /// <summary>The advisory lock's first key: "WBLK".</summary>
    private const int LockClass = 0x57424C4B;

    private NpgsqlConnection? _session;
    private CancellationTokenSource _lost = new();
    private CancellationTokenSource? _watchStop;
    private Task? _watch;
    private long _takeovers;

    /// <summary>The advisory lock's second key: a stable hash of the connector's name.</summary>
    public static int LockKey(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var hash = 2166136261u;
        foreach (var b in Encoding.UTF8.GetBytes("walbridge:" + name))
        {
            hash = (hash ^ b) * 16777619u;
        }
        return (int)(hash & 0x7FFFFFFF);
    }

    /// <summary>Whether this instance holds the lock now.</summary>
    public bool IsHeld => _session is not null && !_lost.IsCancellationRequested;

    /// <summary>Cancelled when the lock's session fails: the leadership is lost and streaming must stop.</summary>
    public CancellationToken LostToken => _lost.Token;

    /// <summary>Times this instance became the leader after having waited as a standby.</summary>
    public long Takeovers => Interlocked.Read(ref _takeovers);

    /// <summary>
    /// Returns once this instance leads: at once when it already holds the lock, otherwise after PostgreSQL granted it
    /// (waiting as a standby while another instance holds it) and the slot is free.
    /// </summary>
    /// <exception cref="NpgsqlException">PostgreSQL cannot be reached or refused the connection: the caller retries with backoff (nothing was sent to Kafka).</exception>
    /// <exception cref="OperationCanceledException">Stopped while waiting.</exception>
    public async Task AcquireAsync(CancellationToken cancellationToken)
    {
        if (IsHeld)
        {
            return;
        }

        await ReleaseAsync();
        var builder = new NpgsqlConnectionStringBuilder(config.ConnectionString(replication: false))
        {
            ApplicationName = $"walbridge:{config.Name}:leader:{status.WorkerId}",
            CommandTimeout = 10,
            KeepAlive = Math.Max(1, (int)config.HaPollInterval.TotalSeconds),
        };
        var session = new NpgsqlConnection(builder.ConnectionString);
        try
        {
            await session.OpenAsync(cancellationToken);
            // PostgreSQL's side: notice a vanished leader host within ha.session.timeout.ms (ignored on Unix sockets).
            var seconds = Math.Max(1, (int)(config.HaSessionTimeout.TotalSeconds / 3));
            await ExecuteAsync(session, string.Create(CultureInfo.InvariantCulture,
                $"SET tcp_keepalives_idle = {seconds}; SET tcp_keepalives_interval = {seconds}; SET tcp_keepalives_count = 2; SET tcp_user_timeout = {(long)config.HaSessionTimeout.TotalMilliseconds}"), cancellationToken);
            var key = LockKey(config.Name);
            DateTimeOffset? waitingSince = null;
            while (!await TryLockAsync(session, key, cancellationToken))
            {
                if (waitingSince is null)
                {
                    waitingSince = DateTimeOffset.UtcNow;
                    var holder = await HolderAsync(session, key, cancellationToken);
                    status.SetLeader(false);
                    status.Enter(ConnectorState.Standby, $"instance {holder} leads");
                    LogStandby(logger, config.Name, config.SlotName, holder);
                }

                await Task.Delay(config.HaPollInterval, cancellationToken);
            }

            _session = session;
            var previous = _lost;
            _lost = new CancellationTokenSource();
            previous.Dispose();
            if (waitingSince is { } since)
            {
                Interlocked.Increment(ref _takeovers);
                LogTookOver(logger, config.Name, config.SlotName, (DateTimeOffset.UtcNow - since).TotalSeconds);
            }
            else
            {
                LogLeading(logger, config.Name, config.SlotName);
            }

            status.SetLeader(true);
            await WaitForSlotReleaseAsync(session, cancellationToken);
            _watchStop = new CancellationTokenSource();
            _watch = WatchAsync(session, _lost, _watchStop.Token);
        }
        catch
        {
            if (_session != session)
            {
                await session.DisposeAsync();
            }

            throw;
        }
    }

    /// <summary>
    /// A previous leader's walsender may hold the slot a little longer (until PostgreSQL notices it is gone): wait for
    /// it, at most <c>ha.session.timeout.ms</c>, so the first attempt does not fail on a busy slot.
    /// </summary>
    private async Task WaitForSlotReleaseAsync(NpgsqlConnection session, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + config.HaSessionTimeout;
        var logged = false;
        while (DateTime.UtcNow < deadline)
        {
            await using var active = new NpgsqlCommand("SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1 AND active", session);
            active.Parameters.Add(new NpgsqlParameter { Value = config.SlotName });
            if (await active.ExecuteScalarAsync(cancellationToken) is not int pid)
            {
                return;
            }

            if (!logged)
            {
                logged = true;
                LogSlotStillActive(logger, config.SlotName, pid);
            }

            await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken);
        }
    }

    /// <summary>Checks the lock's session every poll interval; a failed check cancels <paramref name="lost"/>.</summary>
    private async Task WatchAsync(NpgsqlConnection session, CancellationTokenSource lost, CancellationToken stop)
    {
        var limit = TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(3).Ticks, config.HaPollInterval.Ticks * 3));
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(config.HaPollInterval, stop);
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
                timeout.CancelAfter(limit);
                await ExecuteAsync(session, "SELECT 1", timeout.Token);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or InvalidOperationException or OperationCanceledException)
            {
                LogLost(logger, config.Name, config.SlotName, e.Message);
                status.SetLeader(false);
                await lost.CancelAsync();
                return;
            }
        }
    }

    private static async Task<bool> TryLockAsync(NpgsqlConnection session, int key, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT pg_try_advisory_lock($1, $2)", session);
        command.Parameters.Add(new NpgsqlParameter { Value = LockClass });
        command.Parameters.Add(new NpgsqlParameter { Value = key });
        return await command.ExecuteScalarAsync(cancellationToken) is true;
    }

    /// <summary>The lock holder's application name, address and pid, for the standby's log line.</summary>
    private static async Task<string> HolderAsync(NpgsqlConnection session, int key, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""
            SELECT a.application_name, coalesce(host(a.client_addr), 'local'), a.pid
            FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::int4::oid AND l.objid = $2::int4::oid AND l.objsubid = 2
            """, session);
        command.Parameters.Add(new NpgsqlParameter { Value = LockClass });
        command.Parameters.Add(new NpgsqlParameter { Value = key });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken)
            ? $"'{reader.GetString(0)}' (backend pid {reader.GetInt32(2)}, client {reader.GetString(1)})"
            : "(released just now)";
    }

    private static async Task ExecuteAsync(NpgsqlConnection session, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, session);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Ends the lock's session (PostgreSQL releases the lock) and the watch.</summary>
    private async Task ReleaseAsync()
    {
        if (_watchStop is not null)
        {
            await _watchStop.CancelAsync();
            if (_watch is not null)
            {
                await _watch;
            }

            _watchStop.Dispose();
            _watchStop = null;
            _watch = null;
        }
        if (_session is not null)
        {
            await _session.DisposeAsync();
            _session = null;
        }
        status.SetLeader(false);
    }

    public async ValueTask DisposeAsync()
    {
        await ReleaseAsync();
        _lost.Dispose();
    }

    [LoggerMessage(EventId = 4001, Level = LogLevel.Information, Message = "Connector {Name} leads (advisory lock taken before any Kafka call); slot {Slot}")]
    private static partial void LogLeading(ILogger logger, string name, string slot);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Information,
        Message = "Standby: connector {Name} (slot {Slot}) is led by {Holder}; waiting to take over, without touching Kafka or the slot")]
    private static partial void LogStandby(ILogger logger, string name, string slot, string holder);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Warning, Message = "Took over connector {Name} (slot {Slot}) after waiting {Seconds:F1} s as a standby: the previous leader is gone")]
    private static partial void LogTookOver(ILogger logger, string name, string slot, double seconds);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Warning,
        Message = "Leadership of connector {Name} (slot {Slot}) lost: the session holding its lock failed ({Reason}); streaming stops and this instance waits to lead again")]
    private static partial void LogLost(ILogger logger, string name, string slot, string reason);

    [LoggerMessage(EventId = 4005, Level = LogLevel.Information, Message = "Slot {Slot} is still held by walsender pid {Pid} of the previous leader; waiting for PostgreSQL to release it")]
    private static partial void LogSlotStillActive(ILogger logger, string slot, int pid);
}
