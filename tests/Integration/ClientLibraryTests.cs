using System.Globalization;
using System.Text;
using Confluent.Kafka;
using Npgsql;
using WalBridge.Client;
using WalBridge.DevTools.Embedded;
using WalBridge.Serialization.Payload;
using ClientLsn = WalBridge.Client.Lsn;

namespace WalBridge.Integration.Tests;

/// <summary>
/// Issue 13, item 6: WalBridge.Client reads the real connector's records of a three-partition topic, on both paths,
/// through a read_committed Confluent consumer with <see cref="WalBridgeDeserializer"/>: every operation (insert,
/// update, an update that moves its key with the old key in <c>_before</c> and its delete in the old partition, delete,
/// truncate in every partition), an unchanged TOAST value, values kept in <c>_special</c>, the source transactions and
/// the record headers, each compared with what the workload wrote.
/// </summary>
[Collection(InfrastructureCollection.Name)]
public sealed class ClientLibraryTests(Infrastructure infrastructure)
{
    private const int Partitions = 3;
    private const string Timestamp = "2024-01-02 03:04:05.5+00";

    [Theory]
    [InlineData("pgoutput")]
    [InlineData("wal2arrow")]
    public async Task The_client_reads_every_operation_of_the_connectors_records(string plugin)
    {
        if (plugin == "wal2arrow")
        {
            Assert.True(TemporaryPostgres.Wal2ArrowLibraryDirectory() is not null, "wal2arrow is not built: run scripts/setup.sh");
        }

        var database = await infrastructure.CreateDatabaseAsync("client");
        // payload is stored out of line uncompressed (EXTERNAL), so an update that leaves it alone does not send it.
        await infrastructure.Postgres.ExecuteAsync(
            "CREATE TABLE items (id bigint PRIMARY KEY, note text, payload text, ts timestamptz, amount numeric(10,2)); " +
            "ALTER TABLE items ALTER COLUMN payload SET STORAGE EXTERNAL", database);
        var config = infrastructure.Config(database, "client", new Dictionary<string, string>
        {
            ["plugin"] = plugin,
            ["topic.partitions"] = Partitions.ToString(CultureInfo.InvariantCulture),
        });
        var moved = Enumerable.Range(100, 100).First(id => PartitionOf(id) != PartitionOf(1));
        var payload = string.Concat(Enumerable.Range(0, 400).Select(i => $"{i:D4}-payload-"));   // 5,200 bytes: TOASTed
        var xids = new List<uint>();
        await using (var pipeline = await RunningPipeline.StartAsync(config))
        {
            await using var connection = new NpgsqlConnection(config.ConnectionString(replication: false));
            await connection.OpenAsync();
            async Task Transaction(string sql, params object[] parameters)
            {
                await using var transaction = await connection.BeginTransactionAsync();
                await using (var command = new NpgsqlCommand(sql, connection, transaction))
                {
                    foreach (var parameter in parameters)
                    {
                        command.Parameters.Add(new NpgsqlParameter { Value = parameter });
                    }

                    await command.ExecuteNonQueryAsync();
                }

                await using var xid = new NpgsqlCommand("SELECT (pg_current_xact_id()::text::bigint % 4294967296)::bigint", connection, transaction);
                xids.Add((uint)(long)(await xid.ExecuteScalarAsync())!);
                await transaction.CommitAsync();
            }

            await Transaction($"INSERT INTO items VALUES (1, 'one', $1, '{Timestamp}', 12.50), (2, 'two', 'small', 'infinity', 'NaN')", payload);
            await Transaction("UPDATE items SET note = 'uno' WHERE id = 1");
            await Transaction($"UPDATE items SET id = {moved} WHERE id = 1");
            await Transaction("DELETE FROM items WHERE id = 2");
            await Transaction("TRUNCATE items");
            var floor = Offsets.Lsn.Parse(await infrastructure.Postgres.ScalarAsync<string>("SELECT pg_current_wal_insert_lsn()::text", database));
            await pipeline.WaitForCommittedAsync(floor, TimeSpan.FromSeconds(120));
        }

        var changes = ReadTopic(config.TopicFor("public", "items"), out var records);

        // The record metadata: format 2, the table, rows and transactions as counted, identities growing per partition.
        Assert.All(records, r => Assert.Equal(2, r.Headers.Format));
        Assert.All(records, r => Assert.Equal("public.items", r.Headers.Table));
        Assert.Equal(changes.Count, records.Sum(r => r.Headers.Rows));
        Assert.All(records, r => Assert.Equal(r.Changes.Select(c => c.CommitLsn).Distinct().Count(), r.Headers.Transactions));
        Assert.All(records, r => Assert.Equal((r.Changes[0].CommitLsn, r.Changes[^1].CommitLsn), (r.Headers.FirstCommitLsn, r.Headers.CommitLsn)));
        foreach (var partition in records.GroupBy(r => r.Partition))
        {
            var identities = partition.Select(r => r.Headers.Identity).ToList();
            Assert.Equal(identities.Order(), identities);
            Assert.Equal(identities.Distinct().Count(), identities.Count);
        }

        // Every change, with its source transaction: xids as PostgreSQL gave them, commit LSNs in commit order.
        var byTransaction = changes.GroupBy(c => c.CommitLsn).OrderBy(g => g.Key).ToList();
        Assert.Equal(xids, byTransaction.Select(g => g.Select(c => c.Xid).Distinct().Single()));
        Assert.All(changes, c => Assert.InRange(c.CommitTime, DateTimeOffset.UtcNow.AddMinutes(-10), DateTimeOffset.UtcNow.AddMinutes(1)));

        var inserts = byTransaction[0].OrderBy(c => c.Id).ToList();
        Assert.Equal([$"Insert 1 note='one' payload={payload.Length} chars ts=1704164645500000 amount=12.50", "Insert 2 note='two' payload=5 chars ts=special 'infinity' amount=special 'NaN'"],
            inserts.Select(c => c.Text));

        var update = Assert.Single(byTransaction[1]);
        Assert.Equal("Update 1 note='uno' payload=unchanged ts=1704164645500000 amount=12.50", update.Text);
        Assert.Null(update.BeforeId);

        // The key move: the update in the new key's partition with the old key in _before, and its delete in the old one.
        var move = byTransaction[2].OrderBy(c => c.Operation).ToList();
        Assert.Equal([ChangeOperation.Update, ChangeOperation.Delete], move.Select(c => c.Operation));
        Assert.Equal($"Update {moved} note='uno' payload=unchanged ts=1704164645500000 amount=12.50", move[0].Text);
        Assert.Equal(1, move[0].BeforeId);
        Assert.Equal(PartitionOf(moved), move[0].Partition);
        Assert.Equal(1, move[1].Id);
        Assert.Equal(PartitionOf(1), move[1].Partition);
        Assert.Equal(move[0].Lsn, move[1].Lsn);

        var delete = Assert.Single(byTransaction[3]);
        Assert.Equal(ChangeOperation.Delete, delete.Operation);
        Assert.Equal(2, delete.Id);
        Assert.False(delete.HasAfter);
        Assert.Equal(PartitionOf(2), delete.Partition);

        // A truncate row in every partition, at one LSN, with its (empty) options.
        var truncates = byTransaction[4].ToList();
        Assert.All(truncates, t => Assert.Equal((ChangeOperation.Truncate, ""), (t.Operation, t.TruncateOptions)));
        Assert.Equal(Enumerable.Range(0, Partitions), truncates.Select(t => t.Partition).Order());
        Assert.Single(truncates.Select(t => t.Lsn).Distinct());

        await infrastructure.Postgres.ExecuteAsync(
            $"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{config.SlotName}'", database);
    }

    /// <summary>One change as the client showed it, copied out before its record was disposed.</summary>
    private sealed record SeenChange(int Partition, ChangeOperation Operation, ClientLsn Lsn, uint Xid, ClientLsn CommitLsn, DateTimeOffset CommitTime,
        long? Id, long? BeforeId, bool HasAfter, string? TruncateOptions, string Text);

    private sealed record SeenRecord(int Partition, WalBridgeRecordHeaders Headers, List<SeenChange> Changes);

    /// <summary>Reads every partition to its end with read_committed through WalBridge.Client.</summary>
    private List<SeenChange> ReadTopic(string topic, out List<SeenRecord> records)
    {
        var config = new ConsumerConfig
        {
            BootstrapServers = infrastructure.Broker.BootstrapServers,
            GroupId = $"client-test-{Guid.NewGuid():N}",
            IsolationLevel = IsolationLevel.ReadCommitted,
            EnableAutoCommit = false,
            EnablePartitionEof = true,
        };
        using var consumer = new ConsumerBuilder<Ignore, WalBridgeRecord>(config).SetValueDeserializer(WalBridgeDeserializer.Instance).Build();
        consumer.Assign(Enumerable.Range(0, Partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var reading = Enumerable.Range(0, Partitions).ToHashSet();
        records = [];
        var markers = new List<(int Partition, SnapshotMarker Marker)>();
        var changes = new List<SeenChange>();
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (reading.Count > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{topic} was not read to its end within 120 s");
            var result = consumer.Consume(TimeSpan.FromSeconds(5));
            if (result is null)
            {
                continue;
            }

            if (result.IsPartitionEOF)
            {
                reading.Remove(result.Partition.Value);
                continue;
            }

            using var record = result.Message.Value;
            if (record.Headers!.Marker != SnapshotMarker.None)
            {
                // The (empty) initial snapshot's markers: a start then an end in each partition, no rows.
                Assert.Empty(record.Batches.SelectMany(b => Enumerable.Range(0, b.Length)));
                markers.Add((result.Partition.Value, record.Headers.Marker));
                continue;
            }

            var seen = new SeenRecord(result.Partition.Value, record.Headers!, []);
            foreach (var change in record.Changes)
            {
                var transaction = change.Transaction;
                var row = change.Columns;
                var id = change.Operation == ChangeOperation.Truncate ? null : row.GetInt64("id");
                seen.Changes.Add(new SeenChange(result.Partition.Value, change.Operation, change.Lsn, transaction.Xid, transaction.CommitLsn, transaction.CommitTime,
                    id, change.Before.IsPresent ? change.Before.GetInt64("id") : null, change.After.IsPresent, change.TruncateOptions,
                    change.Operation is ChangeOperation.Insert or ChangeOperation.Update
                        ? $"{change.Operation} {id} note={Cell(row, "note")} payload={Cell(row, "payload")} ts={Cell(row, "ts")} amount={Cell(row, "amount")}"
                        : change.Operation.ToString()));
            }

            records.Add(seen);
            changes.AddRange(seen.Changes);
        }

        foreach (var partition in Enumerable.Range(0, Partitions))
        {
            Assert.Equal([SnapshotMarker.Start, SnapshotMarker.End], markers.Where(m => m.Partition == partition).Select(m => m.Marker));
        }

        return changes;
    }

    private static string Cell(RowValues row, string column) => row.GetState(column) switch
    {
        ValueState.Null => "null",
        ValueState.Unchanged => "unchanged",
        ValueState.Special => $"special '{row.GetSpecialText(column)}'",
        _ => column switch
        {
            "note" => $"'{row.GetString(column)}'",
            "payload" => $"{row.GetString(column)!.Length} chars",
            "ts" => row.GetTimestampMicros(column)!.Value.ToString(CultureInfo.InvariantCulture),
            _ => row.GetDecimalString(column)!,
        },
    };

    private static int PartitionOf(long id)
    {
        var key = new PartitionKey();
        key.Begin();
        key.AddText(Encoding.UTF8.GetBytes(id.ToString(CultureInfo.InvariantCulture)));
        key.End();
        return key.Partition(Partitions);
    }
}
