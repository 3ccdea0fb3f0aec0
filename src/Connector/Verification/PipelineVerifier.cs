using Confluent.Kafka;
using Npgsql;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Kafka;
using WalBridge.Offsets;

namespace WalBridge.Connector.Verification;

/// <summary>The outcome of auditing one connector's topics against its source.</summary>
public sealed record VerificationReport(
    IReadOnlyList<TableComparison> Tables,
    IReadOnlyList<string> OffsetProblems,
    OffsetRecord? LatestOffset,
    Lsn MaxDataCommitLsn)
{
    public bool Passed => OffsetProblems.Count == 0 && Tables.All(t => t.Matches);
}

/// <summary>
/// Audits a pipeline end to end with <c>read_committed</c> reads: every table topic replayed (its
/// partitions merged in source order) and compared with the source table — the Arrow topics, and each
/// enabled Debezium format's topics rebuilt from their events (<see cref="DebeziumReplay"/>) — the header
/// rules of each Arrow partition (<see cref="RecordSequence"/>: no (first commit LSN, chunk) twice, commit
/// LSNs increasing, chunks continued), and the offsets topic consistent with the data and the source. The
/// source should be quiet while it runs (rows that change during the audit show up as differences).
/// </summary>
public static class PipelineVerifier
{
    public static async Task<VerificationReport> VerifyAsync(ConnectorConfig config, Action<string>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(config);
        var kafka = new Dictionary<string, string>(config.Kafka, StringComparer.Ordinal);
        var topics = await Task.Run(() => TableTopics(kafka, config), cancellationToken);

        await using var connection = new NpgsqlConnection(config.ConnectionString(replication: false));
        await connection.OpenAsync(cancellationToken);
        var tables = new List<TableComparison>();
        var maxDataLsn = Lsn.Zero;
        foreach (var topic in topics)
        {
            var replayed = await Task.Run(() => TopicReplay.Replay(kafka, topic, cancellationToken), cancellationToken);
            if (replayed.Columns.Count == 0)
            {
                continue; // only message or empty records: nothing to compare
            }

            maxDataLsn = Lsn.Max(maxDataLsn, replayed.MaxCommitLsn);
            var comparison = await SourceComparison.CompareAsync(connection, replayed, cancellationToken);
            tables.Add(comparison);
            progress?.Invoke(
                $"{comparison.Table}: {comparison.SourceRows:N0} source rows, {comparison.TopicRows:N0} rebuilt from {comparison.Changes:N0} changes in {comparison.Transactions:N0} transactions: {(comparison.Matches ? "match" : "MISMATCH")}");
            foreach (var difference in comparison.Differences)
            {
                progress?.Invoke($"    {difference}");
            }
        }

        foreach (var format in config.Output.Formats.Where(f => f != OutputFormat.Arrow))
        {
            var (comparisons, maxLsn) = await VerifyDebeziumAsync(kafka, config, format, connection, progress, cancellationToken);
            tables.AddRange(comparisons);
            maxDataLsn = Lsn.Max(maxDataLsn, maxLsn);
        }

        var problems = new List<string>();
        var offsets = await Task.Run(() => ReadOffsets(kafka, config, problems, cancellationToken), cancellationToken);
        if (offsets is null)
        {
            if (maxDataLsn > Lsn.Zero)
            {
                problems.Add($"the offsets topic '{config.OffsetsTopic}' has no record for this connector, but table topics hold data through {maxDataLsn}");
            }
        }
        else
        {
            if (offsets.CommitLsn < maxDataLsn)
            {
                problems.Add($"the offsets record says {offsets.CommitLsn} but table topics hold a transaction committed at {maxDataLsn}: data is ahead of the recorded position");
            }

            await using var system = new NpgsqlCommand("SELECT system_identifier::text FROM pg_control_system()", connection);
            var systemId = (string?)await system.ExecuteScalarAsync(cancellationToken);
            if (systemId != offsets.Source.SystemIdentifier)
            {
                problems.Add($"the offsets record belongs to database system {offsets.Source.SystemIdentifier}, the source is {systemId}");
            }
        }
        foreach (var problem in problems)
        {
            progress?.Invoke($"offsets: {problem}");
        }

        // Not a problem of the topics, but the reason a table can differ: its snapshot is not complete yet.
        if (offsets?.Snapshot is { Complete: false } pending)
        {
            progress?.Invoke($"note: the snapshot at {pending.Lsn} is not complete ({pending.Tables.Sum(t => t.DoneCount)} of {pending.Tables.Sum(t => t.Chunks)} chunks): tables may lack rows until it is");
        }

        foreach (var table in offsets?.Incremental?.Tables ?? [])
        {
            progress?.Invoke($"note: the snapshot of {table.Table} is still being read while streaming ({table.Rows} rows so far): it may lack rows until its end marker");
        }

        return new VerificationReport(tables, problems, offsets, maxDataLsn);
    }

    /// <summary>Rebuilds every table topic of a Debezium format (<see cref="DebeziumReplay"/>) and compares it with the source.</summary>
    private static async Task<(List<TableComparison> Tables, Lsn MaxCommitLsn)> VerifyDebeziumAsync(Dictionary<string, string> kafka, ConnectorConfig config, OutputFormat format,
        NpgsqlConnection connection, Action<string>? progress, CancellationToken cancellationToken)
    {
        var name = OutputSettings.Name(format);
        var all = await Task.Run(() =>
        {
            using var admin = new AdminClientBuilder(new AdminClientConfig(kafka)).Build();
            return admin.GetMetadata(TimeSpan.FromSeconds(15)).Topics.Select(t => t.Topic).ToList();
        }, cancellationToken);
        using var registry = format == OutputFormat.DebeziumAvro ? new Confluent.SchemaRegistry.CachedSchemaRegistryClient(config.Output.SchemaRegistry) : null;
        var tables = new List<TableComparison>();
        var maxLsn = Lsn.Zero;
        foreach (var topic in DebeziumReplay.TableTopics(all, config, format))
        {
            var rebuilt = await DebeziumReplay.ReplayAsync(kafka, topic, format, config, connection, registry, cancellationToken);
            var replayed = rebuilt.Table;
            if (replayed.Columns.Count == 0)
            {
                continue; // only tombstones, or empty
            }

            maxLsn = Lsn.Max(maxLsn, replayed.MaxCommitLsn);
            var comparison = await SourceComparison.CompareAsync(connection, replayed, cancellationToken, rebuilt.Uncompared.Keys.ToArray()) with
            {
                Format = name,
                Uncompared = rebuilt.Uncompared,
            };
            tables.Add(comparison);
            progress?.Invoke(
                $"{name} {comparison.Table}: {comparison.SourceRows:N0} source rows, {comparison.TopicRows:N0} rebuilt from {comparison.Changes:N0} events in {comparison.Transactions:N0} transactions: {(comparison.Matches ? "match" : "MISMATCH")}" +
                (rebuilt.Uncompared.Count > 0 ? $" (not compared: {string.Join(", ", rebuilt.Uncompared.Select(u => $"{u.Key}, {u.Value}"))})" : ""));
            foreach (var difference in comparison.Differences)
            {
                progress?.Invoke($"    {difference}");
            }
        }

        return (tables, maxLsn);
    }

    /// <summary>
    /// The Arrow table topics: named <c>&lt;topic.prefix&gt;.&lt;schema&gt;.&lt;table&gt;</c> and the Arrow format's suffix
    /// (<c>output.arrow.topic.suffix</c>), without the offsets and messages topics and without the Debezium formats'
    /// topics (those end with their own suffix, <c>output.&lt;format&gt;.topic.suffix</c>). None when <c>output.formats</c>
    /// leaves Arrow out.
    /// </summary>
    internal static List<string> TableTopics(Dictionary<string, string> kafka, ConnectorConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!config.Output.Includes(OutputFormat.Arrow))
        {
            return [];
        }

        using var admin = new AdminClientBuilder(new AdminClientConfig(kafka)).Build();
        var metadata = admin.GetMetadata(TimeSpan.FromSeconds(15));
        return ArrowTableTopics(metadata.Topics.Select(t => t.Topic), config);
    }

    /// <summary>Of <paramref name="topics"/>, the Arrow table topics of <paramref name="config"/> (see <see cref="TableTopics"/>).</summary>
    internal static List<string> ArrowTableTopics(IEnumerable<string> topics, ConnectorConfig config)
    {
        ArgumentNullException.ThrowIfNull(topics);
        ArgumentNullException.ThrowIfNull(config);
        var output = config.Output;
        var arrowSuffix = output.TopicSuffixes.GetValueOrDefault(OutputFormat.Arrow, "");
        // A Debezium suffix that ends with the Arrow one (".json" beside "", ".cdc.avro" beside ".avro") would
        // otherwise match as an Arrow topic of a table whose name ends with the rest.
        var debeziumSuffixes = output.Formats.Where(f => f != OutputFormat.Arrow)
            .Select(f => output.TopicSuffixes[f])
            .Where(s => s.Length > arrowSuffix.Length && s.EndsWith(arrowSuffix, StringComparison.Ordinal))
            .ToArray();
        var prefix = config.TopicPrefix + ".";
        return topics
            .Where(t => t.Length > prefix.Length + arrowSuffix.Length && t.StartsWith(prefix, StringComparison.Ordinal) && t.EndsWith(arrowSuffix, StringComparison.Ordinal)
                        && t != config.OffsetsTopic && t != config.MessagesTopic
                        && t[prefix.Length..^arrowSuffix.Length].Contains('.', StringComparison.Ordinal)
                        && !debeziumSuffixes.Any(s => t.EndsWith(s, StringComparison.Ordinal)))
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    private static OffsetRecord? ReadOffsets(Dictionary<string, string> kafka, ConnectorConfig config, List<string> problems, CancellationToken cancellationToken)
    {
        var key = new OffsetKey(config.Name, config.SlotName, config.DatabaseName).ToBytes();
        OffsetRecord? latest = null;
        OffsetsTopicReader.ReadToEnd(kafka, config.OffsetsTopic, message =>
        {
            if (message.Message.Key is null || !message.Message.Key.AsSpan().SequenceEqual(key) || message.Message.Value is not { Length: > 0 } value)
            {
                return;
            }

            var record = OffsetRecord.FromBytes(value);
            if (latest is not null && record.CommitLsn < latest.CommitLsn)
            {
                problems.Add($"offsets record at offset {message.Offset.Value} goes back from {latest.CommitLsn} to {record.CommitLsn}");
            }

            latest = record;
        }, cancellationToken);
        return latest;
    }
}
