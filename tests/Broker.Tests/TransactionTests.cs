using Confluent.Kafka;

namespace WalBridge.Broker.Tests;

/// <summary>
/// The patched mock broker honours transactions: read_committed consumers see neither aborted
/// nor open transactions, read_uncommitted consumers see everything.
/// </summary>
public sealed class TransactionTests
{
    [Fact]
    public async Task Read_committed_skips_aborted_and_open_transactions_read_uncommitted_sees_all()
    {
        await using var broker = await LocalBroker.StartAsync();
        Librdkafka.EnsureLoaded();
        // Not created beforehand: the first produce auto-creates it (one partition).
        var topic = Kafka.UniqueName("txn");

        var producerConfig = new ProducerConfig
        {
            BootstrapServers = broker.BootstrapServers,
            TransactionalId = Kafka.UniqueName("tx"),
            EnableIdempotence = true,
            LingerMs = 0,
        };
        using var producer = new ProducerBuilder<Null, string>(producerConfig).Build();
        producer.InitTransactions(Kafka.Bound);

        string[] a = ["a0", "a1", "a2"], b = ["b0", "b1", "b2"], c = ["c0", "c1", "c2"];

        producer.BeginTransaction();
        await ProduceAllAsync(producer, topic, a);
        producer.CommitTransaction(Kafka.Bound);

        // Transaction B: its records reach the broker but stay uncommitted.
        producer.BeginTransaction();
        foreach (var value in b)
        {
            producer.Produce(topic, new Message<Null, string> { Value = value });
        }

        Assert.Equal(0, producer.Flush(Kafka.Bound));

        using (var committed = Kafka.Consumer(broker, IsolationLevel.ReadCommitted))
        using (var uncommitted = Kafka.Consumer(broker, IsolationLevel.ReadUncommitted))
        {
            // A: offsets 0-2, commit marker 3, B: 4-6. read_committed must stop at the LSO (4).
            var (openCommittedView, committedEnd) = Kafka.ReadToEnd(committed, topic);
            Assert.Equal(a, openCommittedView);
            Assert.Equal(4, committedEnd);

            var (openUncommittedView, uncommittedEnd) = Kafka.ReadToEnd(uncommitted, topic);
            Assert.Equal([.. a, .. b], openUncommittedView);
            Assert.Equal(7, uncommittedEnd);
        }

        producer.AbortTransaction(Kafka.Bound);

        producer.BeginTransaction();
        await ProduceAllAsync(producer, topic, c);
        producer.CommitTransaction(Kafka.Bound);

        using (var committed = Kafka.Consumer(broker, IsolationLevel.ReadCommitted))
        {
            var (values, end) = Kafka.ReadToEnd(committed, topic);
            Assert.Equal([.. a, .. c], values);
            // a0-a2, commit, b0-b2, abort, c0-c2, commit: nothing is open, so LSO = HWM.
            Assert.Equal(12, end);
        }

        using (var uncommitted = Kafka.Consumer(broker, IsolationLevel.ReadUncommitted))
        {
            var (values, end) = Kafka.ReadToEnd(uncommitted, topic);
            Assert.Equal([.. a, .. b, .. c], values);
            Assert.Equal(12, end);
        }
    }

    [Fact]
    public async Task A_new_producer_with_the_same_transactional_id_aborts_the_open_transaction_and_fences_the_old_one()
    {
        await using var broker = await LocalBroker.StartAsync();
        Librdkafka.EnsureLoaded();
        var topic = Kafka.UniqueName("fence");
        var transactionalId = Kafka.UniqueName("tx");
        ProducerConfig Config() => new()
        {
            BootstrapServers = broker.BootstrapServers,
            TransactionalId = transactionalId,
            EnableIdempotence = true,
            LingerMs = 0,
        };

        using var zombie = new ProducerBuilder<Null, string>(Config()).Build();
        zombie.InitTransactions(Kafka.Bound);
        zombie.BeginTransaction();
        await ProduceAllAsync(zombie, topic, ["z0"]);
        zombie.CommitTransaction(Kafka.Bound);
        // The zombie's second transaction reaches the broker, then its owner "dies".
        zombie.BeginTransaction();
        foreach (var value in new[] { "z1", "z2" })
        {
            zombie.Produce(topic, new Message<Null, string> { Value = value });
        }
        Assert.Equal(0, zombie.Flush(Kafka.Bound));

        using var successor = new ProducerBuilder<Null, string>(Config()).Build();
        successor.InitTransactions(Kafka.Bound);
        successor.BeginTransaction();
        await ProduceAllAsync(successor, topic, ["s0"]);
        successor.CommitTransaction(Kafka.Bound);

        using (var committed = Kafka.Consumer(broker, IsolationLevel.ReadCommitted))
        {
            var (values, _) = Kafka.ReadToEnd(committed, topic);
            Assert.Equal(["z0", "s0"], values);
        }
        using (var uncommitted = Kafka.Consumer(broker, IsolationLevel.ReadUncommitted))
        {
            var (values, _) = Kafka.ReadToEnd(uncommitted, topic);
            Assert.Equal(["z0", "z1", "z2", "s0"], values);
        }

        // The fenced instance can no longer commit what it had open.
        Assert.ThrowsAny<KafkaException>(() => zombie.CommitTransaction(Kafka.Bound));
    }

    [Fact]
    public async Task Read_committed_sees_non_transactional_records_written_after_an_aborted_transaction()
    {
        // The aborted-transaction list must only cover the aborted range: later records of
        // other producers (and later transactions of the same producer) stay visible.
        await using var broker = await LocalBroker.StartAsync(brokers: 1);
        Librdkafka.EnsureLoaded();
        var topic = Kafka.UniqueName("mixed");
        await broker.CreateTopicAsync(topic, 1);

        using var plain = new ProducerBuilder<Null, string>(
            new ProducerConfig { BootstrapServers = broker.BootstrapServers, LingerMs = 0 }).Build();
        using var txn = new ProducerBuilder<Null, string>(new ProducerConfig
        {
            BootstrapServers = broker.BootstrapServers,
            TransactionalId = Kafka.UniqueName("tx"),
            LingerMs = 0,
        }).Build();
        txn.InitTransactions(Kafka.Bound);

        await ProduceAllAsync(plain, topic, ["p0"]);
        txn.BeginTransaction();
        await ProduceAllAsync(txn, topic, ["x0", "x1"]);
        txn.AbortTransaction(Kafka.Bound);
        await ProduceAllAsync(plain, topic, ["p1"]);
        txn.BeginTransaction();
        await ProduceAllAsync(txn, topic, ["t0"]);
        txn.CommitTransaction(Kafka.Bound);
        txn.BeginTransaction();
        await ProduceAllAsync(txn, topic, ["y0"]);
        txn.AbortTransaction(Kafka.Bound);

        using var committed = Kafka.Consumer(broker, IsolationLevel.ReadCommitted);
        var (values, _) = Kafka.ReadToEnd(committed, topic);
        Assert.Equal(["p0", "p1", "t0"], values);
    }

    private static async Task ProduceAllAsync(IProducer<Null, string> producer, string topic, IEnumerable<string> values)
    {
        foreach (var value in values)
        {
            var report = await producer.ProduceAsync(topic, new Message<Null, string> { Value = value });
            Assert.Equal(PersistenceStatus.Persisted, report.Status);
        }
    }
}
