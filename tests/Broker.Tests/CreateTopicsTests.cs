using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace WalBridge.Broker.Tests;

/// <summary>
/// The patched mock broker implements CreateTopics (v0..v4): an admin client creates topics with
/// the partitions it asks for, and gets a broker's per-topic errors.
/// </summary>
public sealed class CreateTopicsTests
{
    [Fact]
    public async Task Admin_client_creates_topics_with_their_partitions_and_gets_per_topic_errors()
    {
        // One broker: a replication factor of 3 must be capped, not refused.
        await using var broker = await LocalBroker.StartAsync(brokers: 1);
        using var admin = Admin(broker);
        var topic = Kafka.UniqueName("created");

        await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 3, ReplicationFactor = 3 }]);

        var partitions = Assert.Single(admin.GetMetadata(topic, Kafka.Bound).Topics).Partitions;
        Assert.Equal([0, 1, 2], partitions.Select(p => p.PartitionId).Order());
        Assert.All(partitions, p => Assert.Equal([1], p.Replicas));

        var again = await Assert.ThrowsAsync<CreateTopicsException>(
            () => admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 3 }]));
        var exists = Assert.Single(again.Results);
        Assert.Equal(topic, exists.Topic);
        Assert.Equal(ErrorCode.TopicAlreadyExists, exists.Error.Code);
        Assert.Contains("already exists", exists.Error.Reason, StringComparison.Ordinal);

        // Per-topic results: the valid topic of the same request is created.
        var noPartitions = Kafka.UniqueName("zero");
        var noReplicas = Kafka.UniqueName("norf");
        var valid = Kafka.UniqueName("valid");
        var invalid = await Assert.ThrowsAsync<CreateTopicsException>(() => admin.CreateTopicsAsync(
        [
            new TopicSpecification { Name = noPartitions, NumPartitions = 0 },
            new TopicSpecification { Name = noReplicas, NumPartitions = 1, ReplicationFactor = 0 },
            new TopicSpecification { Name = valid, NumPartitions = 2 },
            new TopicSpecification { Name = "bad name", NumPartitions = 1 },
        ]));
        Assert.Equal(
            [ErrorCode.InvalidPartitions, ErrorCode.InvalidReplicationFactor, ErrorCode.NoError, ErrorCode.TopicException],
            invalid.Results.Select(r => r.Error.Code));
        Assert.Equal(2, Assert.Single(admin.GetMetadata(valid, Kafka.Bound).Topics).Partitions.Count);

        // Explicit replica assignments are refused rather than half honoured.
        var assigned = await Assert.ThrowsAsync<CreateTopicsException>(() => admin.CreateTopicsAsync(
            [new TopicSpecification { Name = Kafka.UniqueName("assigned"), NumPartitions = 1, ReplicasAssignments = new() { [0] = [1] } }]));
        Assert.Equal(ErrorCode.InvalidReplicaAssignment, Assert.Single(assigned.Results).Error.Code);
    }

    [Fact]
    public async Task Configs_are_accepted_defaults_apply_and_validate_only_creates_nothing()
    {
        await using var broker = await LocalBroker.StartAsync(brokers: 3);
        using var admin = Admin(broker);

        // What the connector asks for its offsets topic.
        var compacted = Kafka.UniqueName("offsets");
        await admin.CreateTopicsAsync(
        [
            new TopicSpecification
            {
                Name = compacted,
                NumPartitions = 1,
                ReplicationFactor = -1,
                Configs = new() { ["cleanup.policy"] = "compact", ["min.insync.replicas"] = "2" },
            },
        ]);
        var partition = Assert.Single(Assert.Single(admin.GetMetadata(compacted, Kafka.Bound).Topics).Partitions);
        Assert.Equal(3, partition.Replicas.Length);

        // -1 partitions (KIP-464): the broker default, which is 1 for the local broker.
        var defaulted = Kafka.UniqueName("defaulted");
        await admin.CreateTopicsAsync([new TopicSpecification { Name = defaulted, NumPartitions = -1, ReplicationFactor = -1 }]);
        Assert.Single(Assert.Single(admin.GetMetadata(defaulted, Kafka.Bound).Topics).Partitions);

        // validate_only: checked (a duplicate is still reported), nothing created.
        var validated = Kafka.UniqueName("validated");
        var validateOnly = new CreateTopicsOptions { ValidateOnly = true };
        await admin.CreateTopicsAsync([new TopicSpecification { Name = validated, NumPartitions = 2 }], validateOnly);
        var duplicate = await Assert.ThrowsAsync<CreateTopicsException>(
            () => admin.CreateTopicsAsync([new TopicSpecification { Name = compacted, NumPartitions = 2 }], validateOnly));
        Assert.Equal(ErrorCode.TopicAlreadyExists, Assert.Single(duplicate.Results).Error.Code);
        await admin.CreateTopicsAsync([new TopicSpecification { Name = validated, NumPartitions = 4 }]);
        Assert.Equal(4, Assert.Single(admin.GetMetadata(validated, Kafka.Bound).Topics).Partitions.Count);
    }

    [Fact]
    public async Task A_pushed_CreateTopics_error_is_reported_once_and_creates_nothing()
    {
        await using var broker = await LocalBroker.StartAsync(brokers: 1);
        using var admin = Admin(broker);
        var topic = Kafka.UniqueName("injected");

        // The control channel's "push-errors 19 44".
        await broker.PushRequestErrorsAsync(KafkaApiKey.CreateTopics, ErrorCode.PolicyViolation);
        var failed = await Assert.ThrowsAsync<CreateTopicsException>(
            () => admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 2 }]));
        Assert.Equal(ErrorCode.PolicyViolation, Assert.Single(failed.Results).Error.Code);

        // The error is used up, and the failed request created nothing.
        await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 2 }]);
        Assert.Equal(2, Assert.Single(admin.GetMetadata(topic, Kafka.Bound).Topics).Partitions.Count);
    }

    [Fact]
    public async Task Transactions_span_the_partitions_of_a_created_topic()
    {
        await using var broker = await LocalBroker.StartAsync(brokers: 3);
        using var admin = Admin(broker);
        var topic = Kafka.UniqueName("multi");
        await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 3 }]);

        using var producer = new ProducerBuilder<Null, string>(new ProducerConfig
        {
            BootstrapServers = broker.BootstrapServers,
            TransactionalId = Kafka.UniqueName("tx"),
            LingerMs = 0,
        }).Build();
        producer.InitTransactions(Kafka.Bound);

        producer.BeginTransaction();
        await ProduceToEachPartitionAsync(producer, topic, "committed");
        producer.CommitTransaction(Kafka.Bound);
        producer.BeginTransaction();
        await ProduceToEachPartitionAsync(producer, topic, "aborted");
        producer.AbortTransaction(Kafka.Bound);
        producer.BeginTransaction();
        await ProduceToEachPartitionAsync(producer, topic, "later");
        producer.CommitTransaction(Kafka.Bound);

        using var consumer = Kafka.Consumer(broker, IsolationLevel.ReadCommitted);
        for (var partition = 0; partition < 3; partition++)
        {
            var (values, end) = Kafka.ReadToEnd(consumer, topic, partition);
            Assert.Equal([$"committed-{partition}-0", $"committed-{partition}-1", $"later-{partition}-0", $"later-{partition}-1"], values);
            // Two records and a marker per transaction.
            Assert.Equal(9, end);
        }
    }

    [Fact]
    public async Task Every_advertised_CreateTopics_version_answers_in_its_own_layout()
    {
        await using var broker = await LocalBroker.StartAsync(brokers: 1);
        using var wire = await KafkaWire.ConnectAsync(broker.BootstrapServers);

        // Exactly v0..v4 are advertised: v5 and later are flexible versions.
        var versions = await wire.SendAsync(ApiVersionsKey, 0, []);
        Assert.NotNull(versions);
        Assert.Equal(0, versions.I16());
        var advertised = new Dictionary<short, (short Min, short Max)>();
        for (var n = versions.I32(); n > 0; n--)
        {
            var key = versions.I16();
            var min = versions.I16();
            advertised[key] = (min, versions.I16());
        }

        Assert.Equal(((short)0, (short)4), advertised[(short)KafkaApiKey.CreateTopics]);

        for (short version = 0; version <= 4; version++)
        {
            var name = WireTopic(version);
            Assert.Equal([(name, 0, null)], await CreateAsync(wire, version, [(name, version + 1)]));

            var again = Assert.Single(await CreateAsync(wire, version, [(name, 1)]));
            Assert.Equal((name, (short)36), (again.Name, again.Error));
            // v0 has no ErrorMessage.
            if (version == 0)
            {
                Assert.Null(again.Message);
            }
            else
            {
                Assert.Contains("already exists", again.Message, StringComparison.Ordinal);
            }
        }

        // validate_only (v1+) creates nothing.
        var validated = Kafka.UniqueName("wire-validated");
        Assert.Equal([(validated, 0, null)], await CreateAsync(wire, 1, [(validated, 2)], validateOnly: true));
        Assert.Equal([(validated, 0, null)], await CreateAsync(wire, 1, [(validated, 2)]));

        // A name given twice is refused (once) and not created; the rest of the request is.
        var twice = Kafka.UniqueName("wire-twice");
        var once = Kafka.UniqueName("wire-once");
        var results = await CreateAsync(wire, 4, [(twice, 1), (once, 1), (twice, 2)]);
        Assert.Equal([(twice, (short)42), (once, (short)0)], results.Select(r => (r.Name, r.Error)));

        using (var admin = Admin(broker))
        {
            for (short version = 0; version <= 4; version++)
            {
                var metadata = Assert.Single(admin.GetMetadata(WireTopic(version), Kafka.Bound).Topics);
                Assert.Equal(version + 1, metadata.Partitions.Count);
            }

            var all = admin.GetMetadata(Kafka.Bound).Topics.Select(t => t.Topic).ToList();
            Assert.DoesNotContain(twice, all);
            Assert.Contains(once, all);
        }

        // An unadvertised version is refused: the broker closes the connection.
        Assert.Null(await wire.SendAsync((short)KafkaApiKey.CreateTopics, 5, CreateTopicsBody(5, [(Kafka.UniqueName("wire-v5"), 1)], false)));

        string WireTopic(short version) => $"wire-v{version}-{broker.ProcessId}";
    }

    private const short ApiVersionsKey = (short)KafkaApiKey.ApiVersions;

    /// <summary>CreateTopics vN (N in 0..4) with each topic's partitions, replication factor 1 and a compacted config.</summary>
    private static byte[] CreateTopicsBody(short version, IReadOnlyList<(string Name, int Partitions)> topics, bool validateOnly)
    {
        var body = new KafkaWire.Writer().I32(topics.Count);
        foreach (var (name, partitions) in topics)
        {
            // Name, NumPartitions, ReplicationFactor, #Assignments, #Configs (Name, Value).
            body.Str(name).I32(partitions).I16(1).I32(0).I32(1).Str("cleanup.policy").Str("compact");
        }

        // TimeoutMs, then ValidateOnly from v1.
        body.I32(5000);
        if (version >= 1)
        {
            body.I8(validateOnly ? (sbyte)1 : (sbyte)0);
        }

        return body.ToArray();
    }

    /// <summary>Sends CreateTopics vN and parses its response: ThrottleTimeMs (v2+), then per topic Name, ErrorCode, ErrorMessage (v1+).</summary>
    private static async Task<List<(string? Name, short Error, string? Message)>> CreateAsync(
        KafkaWire wire, short version, IReadOnlyList<(string Name, int Partitions)> topics, bool validateOnly = false)
    {
        var response = await wire.SendAsync((short)KafkaApiKey.CreateTopics, version, CreateTopicsBody(version, topics, validateOnly));
        Assert.NotNull(response);
        if (version >= 2)
        {
            Assert.Equal(0, response.I32());
        }

        var results = new List<(string? Name, short Error, string? Message)>();
        for (var n = response.I32(); n > 0; n--)
        {
            var name = response.Str();
            var error = response.I16();
            results.Add((name, error, version >= 1 ? response.Str() : null));
        }

        Assert.Equal(0, response.Remaining);
        return results;
    }

    private static IAdminClient Admin(LocalBroker broker)
    {
        Librdkafka.EnsureLoaded();
        return new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServers }).Build();
    }

    private static async Task ProduceToEachPartitionAsync(IProducer<Null, string> producer, string topic, string prefix)
    {
        for (var partition = 0; partition < 3; partition++)
        {
            for (var i = 0; i < 2; i++)
            {
                var report = await producer.ProduceAsync(
                    new TopicPartition(topic, partition), new Message<Null, string> { Value = $"{prefix}-{partition}-{i}" });
                Assert.Equal(PersistenceStatus.Persisted, report.Status);
                Assert.Equal(partition, report.Partition.Value);
            }
        }
    }
}
