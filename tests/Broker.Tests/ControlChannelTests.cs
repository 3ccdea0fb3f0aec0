using Confluent.Kafka;

namespace WalBridge.Broker.Tests;

public sealed class ControlChannelTests
{
    [Fact]
    public async Task Ping_answers_ok_and_unknown_commands_are_errors()
    {
        await using var broker = await LocalBroker.StartAsync(brokers: 1);

        Assert.Equal("ok", await broker.SendControlAsync("ping"));

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => broker.SendControlAsync("bogus 1 2"));
        Assert.Contains("error unknown command 'bogus'", error.Message, StringComparison.Ordinal);

        var badArgs = await Assert.ThrowsAsync<InvalidOperationException>(() => broker.SendControlAsync("broker-down x"));
        Assert.Contains("error bad broker id 'x'", badArgs.Message, StringComparison.Ordinal);

        // The channel keeps serving after errors.
        Assert.Equal("ok", await broker.SendControlAsync("ping"));
    }

    [Fact]
    public async Task Topic_create_makes_the_requested_partitions_and_refuses_duplicates()
    {
        await using var broker = await LocalBroker.StartAsync(brokers: 3);
        Librdkafka.EnsureLoaded();
        var topic = Kafka.UniqueName("created");

        await broker.CreateTopicAsync(topic, 5);

        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServers }).Build();
        var metadata = admin.GetMetadata(topic, Kafka.Bound);
        Assert.Equal(5, Assert.Single(metadata.Topics).Partitions.Count);

        var duplicate = await Assert.ThrowsAsync<InvalidOperationException>(() => broker.CreateTopicAsync(topic, 5));
        Assert.Contains("TopicAlreadyExists", duplicate.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Producer_retries_through_a_leader_outage()
    {
        await using var broker = await LocalBroker.StartAsync(brokers: 3);
        Librdkafka.EnsureLoaded();
        var topic = Kafka.UniqueName("outage");
        await broker.CreateTopicAsync(topic, 1);

        using var producer = new ProducerBuilder<Null, string>(new ProducerConfig
        {
            BootstrapServers = broker.BootstrapServers,
            EnableIdempotence = true,
            LingerMs = 0,
            // Reconnect quickly once the broker is back (default backoff grows to 10 s).
            ReconnectBackoffMs = 50,
            ReconnectBackoffMaxMs = 500,
            MessageTimeoutMs = 60_000,
        }).Build();

        var first = await producer.ProduceAsync(topic, new Message<Null, string> { Value = "before" });
        Assert.Equal(PersistenceStatus.Persisted, first.Status);

        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServers }).Build();
        var leader = Assert.Single(Assert.Single(admin.GetMetadata(topic, Kafka.Bound).Topics).Partitions).Leader;

        await broker.BrokerDownAsync(leader);
        var during = producer.ProduceAsync(topic, new Message<Null, string> { Value = "during" });

        // The mock does not move leadership, so nothing can be written while the leader is
        // down: the delivery must still be pending (it would only fail after 60 s).
        var early = await Task.WhenAny(during, Task.Delay(TimeSpan.FromSeconds(1.5)));
        Assert.NotSame(during, early);

        await broker.BrokerUpAsync(leader);
        var completed = await Task.WhenAny(during, Task.Delay(Kafka.Bound));
        Assert.True(completed == during, $"Delivery did not complete within {Kafka.Bound} after broker {leader} came back up.");
        var report = await during;
        Assert.Equal(PersistenceStatus.Persisted, report.Status);
        Assert.Equal(1, report.Offset.Value);

        using var consumer = Kafka.Consumer(broker, IsolationLevel.ReadCommitted);
        var (values, _) = Kafka.ReadToEnd(consumer, topic);
        Assert.Equal(["before", "during"], values);
    }

    [Fact]
    public async Task Pushed_request_errors_are_returned_to_clients()
    {
        await using var broker = await LocalBroker.StartAsync(brokers: 1);
        Librdkafka.EnsureLoaded();
        var topic = Kafka.UniqueName("errors");
        await broker.CreateTopicAsync(topic, 1);

        using var producer = new ProducerBuilder<Null, string>(new ProducerConfig
        {
            BootstrapServers = broker.BootstrapServers,
            LingerMs = 0,
            // Non-retriable for the client: the pushed error surfaces in the delivery report.
            EnableIdempotence = false,
            MessageSendMaxRetries = 0,
        }).Build();

        // Warm up metadata and the connection so the pushed error hits the Produce request.
        await producer.ProduceAsync(topic, new Message<Null, string> { Value = "warm" });

        await broker.PushRequestErrorsAsync(KafkaApiKey.Produce, ErrorCode.MsgSizeTooLarge);
        var failed = await Assert.ThrowsAsync<ProduceException<Null, string>>(
            () => producer.ProduceAsync(topic, new Message<Null, string> { Value = "rejected" }));
        Assert.Equal(ErrorCode.MsgSizeTooLarge, failed.Error.Code);

        // The error stack is used up: the next request succeeds.
        var ok = await producer.ProduceAsync(topic, new Message<Null, string> { Value = "accepted" });
        Assert.Equal(PersistenceStatus.Persisted, ok.Status);

        // Pushed, then cleared: never delivered to a client.
        await broker.PushRequestErrorsAsync(KafkaApiKey.Produce, ErrorCode.MsgSizeTooLarge);
        await broker.ClearRequestErrorsAsync(KafkaApiKey.Produce);
        ok = await producer.ProduceAsync(topic, new Message<Null, string> { Value = "after-clear" });
        Assert.Equal(PersistenceStatus.Persisted, ok.Status);

        // Broker-level error with a delay, then success.
        await broker.BrokerPushRequestErrorsAsync(1, KafkaApiKey.Produce, (ErrorCode.MsgSizeTooLarge, 10));
        failed = await Assert.ThrowsAsync<ProduceException<Null, string>>(
            () => producer.ProduceAsync(topic, new Message<Null, string> { Value = "rejected-by-broker" }));
        Assert.Equal(ErrorCode.MsgSizeTooLarge, failed.Error.Code);
    }
}
