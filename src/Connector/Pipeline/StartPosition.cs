using Microsoft.Extensions.Logging;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Source;
using WalBridge.Offsets;
using WalBridge.Offsets.Mirror;

namespace WalBridge.Connector.Pipeline;

/// <summary>
/// The rule for where streaming starts: the position committed in Kafka wins (the mirror is only compared with it),
/// and a start that would lose data or read another database system is refused with what to do.
/// </summary>
internal static partial class StartPosition
{
    /// <summary>The position to stream after: everything at or before it is in Kafka.</summary>
    /// <param name="config">The configuration (slot name, snapshot mode, failover).</param>
    /// <param name="source">What the source looks like now.</param>
    /// <param name="kafkaOffset">The position committed in Kafka, or null.</param>
    /// <param name="mirror">The local mirror (only compared).</param>
    /// <param name="key">This connector's offsets key.</param>
    /// <param name="logger">For the decision's log line.</param>
    /// <param name="resnapshot">
    /// Set when <c>snapshot.mode = when_needed</c> turns a start that would lose data (the slot was lost, recreated or
    /// moved past Kafka's position) into a new snapshot: the gap is logged, and the returned position is where the new
    /// slot starts.
    /// </param>
    /// <exception cref="UnsafeStartException">The slot and Kafka disagree in a way that loses data, or the source is another system.</exception>
    public static Lsn Decide(ConnectorConfig config, SourceState source, OffsetRecord? kafkaOffset, IOffsetMirror? mirror, OffsetKey key, ILogger logger, out bool resnapshot)
    {
        resnapshot = false;
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(source);
        if (mirror is not null)
        {
            var mirrored = mirror.Read(key);
            if (mirrored is not null && (kafkaOffset is null || mirrored.CommitLsn != kafkaOffset.CommitLsn))
            {
                LogMirrorDisagrees(logger, config.SlotName, mirrored.CommitLsn, kafkaOffset?.CommitLsn);
            }
        }

        if (kafkaOffset is null)
        {
            LogFirstStart(logger, config.SlotName, source.SlotConfirmedFlush);
            return Lsn.Zero;
        }

        var recorded = kafkaOffset.Source;
        if (recorded.SystemIdentifier != source.Identity.SystemIdentifier)
        {
            throw new UnsafeStartException(
                $"The offsets topic '{config.OffsetsTopic}' records database system {recorded.SystemIdentifier} but the source is system {source.Identity.SystemIdentifier}: this is another PostgreSQL cluster. " +
                "Use a new 'name' (and topic.prefix) for a new source, or restore the original source.");
        }

        if (Failover.CheckTimeline(config, recorded.Timeline, kafkaOffset.CommitLsn, source.Identity.Timeline, source.TimelineHistory) is { } switchPoint)
        {
            LogTimelineChanged(logger, config.SlotName, recorded.Timeline, source.Identity.Timeline, switchPoint, kafkaOffset.CommitLsn);
        }

        if (kafkaOffset.Snapshot is { Complete: false } pending)
        {
            // A snapshot is in progress and nothing was streamed after its LSN: the pipeline starts it over in a new slot
            // (which may already be ahead, or have been recreated, by an earlier such start), so no change can be missing.
            LogSnapshotPending(logger, config.SlotName, pending.Lsn, source.SlotConfirmedFlush);
            return kafkaOffset.CommitLsn;
        }

        if (config.SnapshotMode == SnapshotMode.WhenNeeded && (source.SlotCreated || source.SlotConfirmedFlush > kafkaOffset.CommitLsn))
        {
            // The changes between Kafka's position and the slot's are gone from the slot: a new snapshot replaces them.
            LogResnapshot(logger, config.SlotName, kafkaOffset.CommitLsn, source.SlotConfirmedFlush, source.SlotReplaced ? "was invalidated and replaced" : source.SlotCreated ? "did not exist and was created" : "is ahead of Kafka");
            resnapshot = true;
            return source.SlotConfirmedFlush;
        }

        if (source.SlotCreated)
        {
            throw new UnsafeStartException(
                $"Kafka holds changes through LSN {kafkaOffset.CommitLsn} for slot '{config.SlotName}', but the slot did not exist and was just created at {source.SlotConfirmedFlush}: changes in between are lost from the slot. " +
                "Re-snapshot into new topics (a new 'name'/topic.prefix) or accept the gap by deleting this connector's offsets record.");
        }

        if (source.SlotConfirmedFlush > kafkaOffset.CommitLsn)
        {
            throw new UnsafeStartException(
                $"Replication slot '{config.SlotName}' is at {source.SlotConfirmedFlush}, ahead of the last LSN committed to Kafka ({kafkaOffset.CommitLsn}): the slot was dropped and recreated or advanced by someone else, and the changes in between cannot be re-read. " +
                "Re-snapshot into new topics (a new 'name'/topic.prefix), or accept the gap by deleting this connector's offsets record.");
        }

        LogResuming(logger, config.SlotName, kafkaOffset.CommitLsn, source.SlotConfirmedFlush);
        return kafkaOffset.CommitLsn;
    }

    [LoggerMessage(EventId = 3112, Level = LogLevel.Information,
        Message = "Slot {Slot}: Kafka holds an unfinished snapshot at {Lsn} and nothing streamed after it (slot at {SlotLsn})")]
    private static partial void LogSnapshotPending(ILogger logger, string slot, Lsn lsn, Lsn slotLsn);

    [LoggerMessage(EventId = 3107, Level = LogLevel.Warning,
        Message = "Slot {Slot} {What}: changes after {KafkaLsn} up to {SlotLsn} cannot be read from it (a gap); snapshot.mode = when_needed takes a new snapshot, whose start and end markers tell consumers which rows are current")]
    private static partial void LogResnapshot(ILogger logger, string slot, Lsn kafkaLsn, Lsn slotLsn, string what);

    [LoggerMessage(EventId = 3101, Level = LogLevel.Information, Message = "No committed position in Kafka for slot {Slot}: starting at the slot's position {Lsn}")]
    private static partial void LogFirstStart(ILogger logger, string slot, Lsn lsn);

    [LoggerMessage(EventId = 3102, Level = LogLevel.Information, Message = "Resuming slot {Slot} after LSN {Lsn} committed in Kafka (slot confirmed through {SlotLsn})")]
    private static partial void LogResuming(ILogger logger, string slot, Lsn lsn, Lsn slotLsn);

    [LoggerMessage(EventId = 3106, Level = LogLevel.Warning,
        Message = "Slot {Slot}: the source was promoted (timeline {Recorded} → {Current}, switch at {SwitchPoint}); Kafka's position {Lsn} is before the switch, so nothing in the topics is missing on the new primary")]
    private static partial void LogTimelineChanged(ILogger logger, string slot, uint recorded, uint current, Lsn switchPoint, Lsn lsn);

    [LoggerMessage(EventId = 3103, Level = LogLevel.Warning, Message = "The local mirror for slot {Slot} says {Lsn} but Kafka says {KafkaLsn}; Kafka is the source of truth")]
    private static partial void LogMirrorDisagrees(ILogger logger, string slot, Lsn lsn, Lsn? kafkaLsn);
}
