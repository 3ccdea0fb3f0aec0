using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Microsoft.Extensions.Logging;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Transactions;

namespace WalBridge.Connector.Kafka;

/// <summary>
/// The one owner of topic names and topic creation: maps a payload to its topic (<c>&lt;topic.prefix&gt;.&lt;schema&gt;.&lt;table&gt;</c>,
/// the messages topic, the offsets topic) and creates topics that do not exist yet with <c>topic.partitions</c>
/// partitions (the offsets topic compacted), through one admin client. The metadata probe never auto-creates (it would
/// create the topic with the broker's default partition count); brokers without CreateTopics fall back to their own
/// auto-creation, and the partition count is checked after it.
/// </summary>
/// <remarks>
/// Threading: used by the Kafka loop's thread only. Topics are created before a Kafka transaction begins, never
/// inside one (a metadata round trip inside an open transaction only delays it towards its timeout). Lifetime: one
/// per pipeline attempt.
/// </remarks>
internal sealed partial class TopicManager(ConnectorConfig config, IReadOnlyDictionary<string, string> kafka, ILogger logger) : IDisposable
{
    private readonly HashSet<string> _known = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Schema, string Table), string> _names = [];
    private IAdminClient? _admin;
    private bool _adminUnsupported;

    /// <summary>The topic of a table's records.</summary>
    public string TopicOf(string schema, string table)
    {
        if (!_names.TryGetValue((schema, table), out var topic))
        {
            topic = config.TopicFor(schema, table);
            _names[(schema, table)] = topic;
        }

        return topic;
    }

    /// <summary>The topic of logical decoding messages.</summary>
    public string MessagesTopic => config.MessagesTopic;

    /// <summary>Creates the topics <paramref name="group"/> writes to that do not exist. Blocking; outside any Kafka transaction.</summary>
    public void EnsureTopics(TransactionGroup group)
    {
        ArgumentNullException.ThrowIfNull(group);
        foreach (var stream in group.Tables)
        {
            Ensure(TopicOf(stream.Schema, stream.Table), compacted: false);
        }

        if (group.Messages.Count > 0)
        {
            Ensure(config.MessagesTopic, compacted: false);
        }

        // Snapshot markers come before a table's first rows: their topics are created here too.
        foreach (var marker in (group.Snapshot?.Markers ?? []).Concat(group.StreamMarkers))
        {
            Ensure(TopicOf(marker.Schema, marker.Table), compacted: false);
        }
    }

    /// <summary>Creates <paramref name="topic"/> when it does not exist. Blocking; outside any Kafka transaction.</summary>
    public void Ensure(string topic, bool compacted)
    {
        if (_adminUnsupported || _known.Contains(topic))
        {
            return;
        }

        _admin ??= new AdminClientBuilder(new AdminClientConfig(kafka.ToDictionary(kv => kv.Key, kv => kv.Value))
        {
            // A probe that auto-creates would make the topic with the broker's default partition count, and the
            // CreateTopics that follows would find it already there.
            AllowAutoCreateTopics = false,
        }).Build();
        var metadata = _admin.GetMetadata(topic, TimeSpan.FromSeconds(10));
        if (metadata.Topics.Count == 1 && metadata.Topics[0].Error.Code == ErrorCode.NoError && metadata.Topics[0].Partitions.Count > 0)
        {
            CheckPartitions(topic, metadata.Topics[0].Partitions.Count, compacted);
            _known.Add(topic);
            return;
        }
        var specification = new TopicSpecification
        {
            Name = topic,
            NumPartitions = config.TopicPartitions,
            ReplicationFactor = config.TopicReplicationFactor,
        };
        if (compacted)
        {
            specification.Configs = new Dictionary<string, string> { ["cleanup.policy"] = "compact" };
        }

        try
        {
            _admin.CreateTopicsAsync([specification]).GetAwaiter().GetResult();
            LogTopicCreated(logger, topic);
        }
        catch (CreateTopicsException e) when (e.Results.All(r => r.Error.Code == ErrorCode.TopicAlreadyExists))
        {
        }
        catch (KafkaException e) when (e.Error.Code is ErrorCode.Local_UnsupportedFeature or ErrorCode.UnsupportedVersion or ErrorCode.InvalidRequest)
        {
            _adminUnsupported = true;
            LogAdminUnsupported(logger, e.Error.Reason);
        }
        if (!_adminUnsupported)
        {
            // Read back what exists now (created here, by a concurrent creator, or auto-created by the broker).
            var created = _admin.GetMetadata(topic, TimeSpan.FromSeconds(10));
            if (created.Topics.Count == 1 && created.Topics[0].Partitions.Count > 0)
            {
                CheckPartitions(topic, created.Topics[0].Partitions.Count, compacted);
            }
        }

        _known.Add(topic);
    }

    /// <summary>
    /// A table topic needs at least <c>topic.partitions</c> partitions (rows are spread by key over that many); the
    /// offsets topic is written to partition 0 only.
    /// </summary>
    private void CheckPartitions(string topic, int partitions, bool compacted)
    {
        if (!compacted && partitions < config.TopicPartitions)
        {
            throw new ConfigurationException(
                $"Topic '{topic}' has {partitions} partition(s), but topic.partitions = {config.TopicPartitions} spreads rows over {config.TopicPartitions}. " +
                $"Add partitions to the topic (kafka-topics.sh --alter --topic {topic} --partitions {config.TopicPartitions}; a key's rows written before stay where they are), or set topic.partitions = {partitions}.");
        }
    }

    public void Dispose()
    {
        _admin?.Dispose();
        _admin = null;
    }

    [LoggerMessage(EventId = 2002, Level = LogLevel.Information, Message = "Created topic {Topic}")]
    private static partial void LogTopicCreated(ILogger logger, string topic);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Information, Message = "The broker does not support CreateTopics ({Reason}); relying on its topic auto-creation")]
    private static partial void LogAdminUnsupported(ILogger logger, string reason);
}
