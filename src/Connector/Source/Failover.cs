using System.Globalization;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Errors;
using WalBridge.Offsets;

namespace WalBridge.Connector.Source;

/// <summary>One line of a timeline history file: <see cref="Timeline"/> ended at <see cref="SwitchPoint"/>, where its successor forked off.</summary>
public readonly record struct TimelineSwitch(uint Timeline, Lsn SwitchPoint);

/// <summary>
/// The rules for PostgreSQL failover: failover slots (<c>slot.failover</c>, PostgreSQL 17+) and the timeline check after
/// a promotion (matrix P9/P10). Pure functions; <see cref="SourceSetup"/> reads what they need from the server.
/// </summary>
public static class Failover
{
    /// <summary>The first PostgreSQL version with failover slots (<c>server_version_num</c>).</summary>
    public const int FailoverSlotsVersion = 170000;

    /// <summary>Refuses settings the server cannot honour: failover slots before 17, streaming a standby when it cannot be streamed.</summary>
    /// <exception cref="SourceNotReadyException">What is wrong and what to change.</exception>
    public static void CheckServer(ConnectorConfig config, int serverVersionNumber, bool inRecovery)
    {
        ArgumentNullException.ThrowIfNull(config);
        var version = $"{serverVersionNumber / 10000}.{serverVersionNumber % 10000}";
        if (config.SlotFailover && serverVersionNumber < FailoverSlotsVersion)
        {
            throw new SourceNotReadyException(
                $"slot.failover = true needs PostgreSQL 17 or later (failover slots, synchronized to physical standbys with sync_replication_slots); the source runs PostgreSQL {version}. " +
                "Set slot.failover = false (a promoted standby then has no slot: the connector refuses to start there and the topics need a re-snapshot), or upgrade the source.");
        }

        if (inRecovery && serverVersionNumber < 160000)
        {
            throw new SourceNotReadyException(
                $"database.hostname {config.DatabaseHost} is a standby (in recovery), and PostgreSQL {version} decodes logically only on a primary. Point the connector at the primary.");
        }

        if (inRecovery && config.SlotFailover)
        {
            throw new SourceNotReadyException(
                $"database.hostname {config.DatabaseHost} is a standby (in recovery): a failover slot synchronized there can be streamed only after the standby is promoted. Point the connector at the primary, or promote this server.");
        }
    }

    /// <summary>Parses a timeline history file (<c>TIMELINE_HISTORY</c>): lines <c>parent-timeline TAB switch-lsn TAB reason</c>.</summary>
    /// <exception cref="FormatException">A line is not in that form.</exception>
    public static IReadOnlyList<TimelineSwitch> ParseHistory(string content)
    {
        ArgumentNullException.ThrowIfNull(content);
        var switches = new List<TimelineSwitch>();
        foreach (var raw in content.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var fields = line.Split('\t', ' ');
            if (fields.Length < 2 || !uint.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var timeline))
            {
                throw new FormatException($"Timeline history line '{line}' is not 'timeline<TAB>switch-lsn<TAB>reason'.");
            }

            switches.Add(new TimelineSwitch(timeline, Lsn.Parse(fields[1])));
        }
        return switches;
    }

    /// <summary>
    /// After a promotion the source runs on a newer timeline than the one recorded with the committed position. That is
    /// safe only when everything committed in Kafka was written before the recorded timeline ended (its switch point):
    /// later transactions existed only on the old primary ("phantom" transactions the new one never had).
    /// </summary>
    /// <returns>The switch point checked, or null when the timeline did not change.</returns>
    /// <exception cref="UnsafeStartException">Kafka holds changes the current timeline does not have, or the history does not lead back to the recorded timeline.</exception>
    public static Lsn? CheckTimeline(ConnectorConfig config, uint recordedTimeline, Lsn committed, uint currentTimeline, IReadOnlyList<TimelineSwitch> history)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(history);
        if (recordedTimeline == currentTimeline)
        {
            return null;
        }

        if (recordedTimeline > currentTimeline)
        {
            throw new UnsafeStartException(
                $"Kafka's committed position {committed} was recorded on timeline {recordedTimeline}, but the source runs on the older timeline {currentTimeline}: it was restored to an earlier point (PITR) and lacks changes that are in the topics. " +
                "Re-snapshot into new topics (a new 'name'/topic.prefix).");
        }

        var ended = history.Where(s => s.Timeline == recordedTimeline).Select(s => (Lsn?)s.SwitchPoint).FirstOrDefault();
        if (ended is not { } switchPoint)
        {
            throw new UnsafeStartException(
                $"Kafka's committed position {committed} was recorded on timeline {recordedTimeline}, which is not in the history of the source's timeline {currentTimeline}: this server did not descend from the one the topics came from. " +
                "Point the connector at the right server, or re-snapshot into new topics.");
        }

        if (committed > switchPoint)
        {
            throw new UnsafeStartException(
                $"The source was promoted: timeline {recordedTimeline} ended at {switchPoint}, but Kafka holds changes through {committed} from the old primary that the new one never received (phantom transactions; matrix P10). " +
                "Use failover slots with synchronized_standby_slots (PostgreSQL 17, slot.failover = true) to prevent this; now re-snapshot into new topics.");
        }

        return switchPoint;
    }
}
