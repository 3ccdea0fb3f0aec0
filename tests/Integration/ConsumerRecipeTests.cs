using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Npgsql;
using WalBridge.Connector.Configuration;
using WalBridge.DevTools.Embedded;
using WalBridge.Offsets;
using WalBridge.Serialization.Payload;
using WalBridgeExample;

namespace WalBridge.Integration.Tests;

/// <summary>
/// Issue 11, point 6: the consumer recipes of docs/format.md run as written there, on real records of a table topic with
/// three partitions. The .NET recipe is compiled into this project from the document (Integration.Tests.csproj extracts
/// the block after <c>&lt;!-- recipe:dotnet --&gt;</c>); the JavaScript one (after <c>&lt;!-- recipe:js --&gt;</c>) runs in
/// node with npm apache-arrow (tools/arrow-js) and kafkajs (tools/peer-js), consuming from the test broker itself. The
/// workload has many source transactions in one record, a transaction cut into chunks in every partition, a key moving
/// to another partition, a COPY, truncates; both recipes must print exactly the source transactions that committed.
/// </summary>
[Collection(InfrastructureCollection.Name)]
public sealed class ConsumerRecipeTests(Infrastructure infrastructure)
{
    private const int Partitions = 3;

    [Theory]
    [InlineData("pgoutput")]
    [InlineData("wal2arrow")]
    public async Task The_documented_recipes_read_every_source_transaction_once_in_commit_order(string plugin)
    {
        if (plugin == "wal2arrow")
        {
            Assert.True(TemporaryPostgres.Wal2ArrowLibraryDirectory() is not null, "wal2arrow is not built: run scripts/setup.sh");
        }

        var database = await infrastructure.CreateDatabaseAsync("recipe");
        await infrastructure.Postgres.ExecuteAsync("CREATE TABLE orders (id bigint PRIMARY KEY, note text)", database);
        var config = infrastructure.Config(database, "recipe", new Dictionary<string, string>
        {
            ["plugin"] = plugin,
            ["topic.partitions"] = Partitions.ToString(CultureInfo.InvariantCulture),
            // Small records: the large transaction is cut into several chunks in every partition.
            ["kafka.message.max.bytes"] = "24000",
        });

        // The slot exists from the first start on; the workload then runs while the connector is stopped, so that the
        // restarted connector finds all of it at once and puts many source transactions into one Kafka transaction.
        await using (await RunningPipeline.StartAsync(config))
        {
        }

        var expected = await RunWorkloadAsync(config);
        var floor = Lsn.Parse(await infrastructure.Postgres.ScalarAsync<string>("SELECT pg_current_wal_insert_lsn()::text", database));
        await using (var pipeline = await RunningPipeline.StartAsync(config))
        {
            await pipeline.WaitForCommittedAsync(floor, TimeSpan.FromSeconds(120));
        }

        var topic = config.TopicFor("public", "orders");
        var records = TopicRows.Records(infrastructure.Broker.BootstrapServers, topic);
        // The layouts the recipes must cope with are really there.
        Assert.Equal(Enumerable.Range(0, Partitions), records.Select(r => r.Partition).Distinct().Order());
        Assert.Contains(records, r => r.Chunk > 0);
        Assert.Contains(records, r => !r.ChunkLast);
        Assert.Contains(records, r => int.Parse(r.Header("walbridge.transactions"), CultureInfo.InvariantCulture) > 1);
        var rows = TopicRows.Rows(records);
        // The moved key's delete in its old partition (docs/format.md, "Partitions"), on both paths.
        Assert.Contains(rows, r => r.Op == "d" && r.Text("id") == "3" && r.Record.Partition == PartitionOf(3));

        Assert.Equal(Partitions, rows.Count(r => r.Op == "t" && r.CommitLsn == rows[^1].CommitLsn));
        // COPY's rows share a WAL record, so their _lsn, also across partitions: _lsn alone does not identify a change.
        Assert.Contains(rows.Where(r => r.Op == "c").GroupBy(r => (r.CommitLsn, r.Lsn)), g => g.Select(r => r.Record.Partition).Distinct().Count() > 1);

        // .NET, reading the topic to its end with Confluent.Kafka.
        var dotnet = new StringWriter();
        OrdersExample.Print(TableTopic.ReadToEnd(infrastructure.Broker.BootstrapServers, topic), dotnet);
        AssertTransactions(expected, dotnet.ToString());

        // .NET, streaming: the records offered one at a time, partitions interleaved, each twice; Take after every record.
        var streaming = new TableTopic(Partitions);
        var released = new List<SourceTransaction>();
        var queues = records.GroupBy(r => r.Partition).Select(g => new Queue<TableRecord>(g)).ToList();
        while (queues.Any(q => q.Count > 0))
        {
            foreach (var queue in queues.Where(q => q.Count > 0))
            {
                var record = queue.Dequeue();
                Assert.True(streaming.Add(record.Partition, record.Headers, record.Value));
                Assert.False(streaming.Add(record.Partition, record.Headers, record.Value));
                released.AddRange(streaming.Take());
            }
        }

        // The last transaction truncates: its row in every partition releases everything before it, and itself.
        Assert.Empty(streaming.Take(all: true));
        var streamed = new StringWriter();
        OrdersExample.Print(released, streamed);
        Assert.Equal(dotnet.ToString(), streamed.ToString());

        // JavaScript, following the topic with kafkajs.
        var js = RunJsRecipe(infrastructure.Broker.BootstrapServers, topic, expected.Count);
        Assert.Equal(dotnet.ToString().ReplaceLineEndings("\n"), js);

        await infrastructure.Postgres.ExecuteAsync(
            $"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{config.SlotName}'", database);
    }

    /// <summary>One source transaction as the recipes print it: its xid and its change lines (in order unless <paramref name="Unordered"/>).</summary>
    private sealed record ExpectedTransaction(uint Xid, List<string> Changes, bool Unordered = false);

    /// <summary>Runs the workload, one source transaction after the other, and returns what each one changed.</summary>
    private static async Task<List<ExpectedTransaction>> RunWorkloadAsync(ConnectorConfig config)
    {
        // A key that moves: from 3's partition to one that is not 3's.
        var moved = Enumerable.Range(100, 100).First(id => PartitionOf(id) != PartitionOf(3));
        var expected = new List<ExpectedTransaction>();
        await using var connection = new NpgsqlConnection(config.ConnectionString(replication: false));
        await connection.OpenAsync();

        async Task Transaction(string sql, IEnumerable<string> changes, Func<NpgsqlConnection, Task>? more = null, bool unordered = false)
        {
            await using var transaction = await connection.BeginTransactionAsync();
            await using (var command = new NpgsqlCommand(sql, connection, transaction))
            {
                await command.ExecuteNonQueryAsync();
            }

            if (more is not null)
            {
                await more(connection);
            }

            await using var xid = new NpgsqlCommand("SELECT (pg_current_xact_id()::text::bigint % 4294967296)::bigint", connection, transaction);
            var id = (uint)(long)(await xid.ExecuteScalarAsync())!;
            await transaction.CommitAsync();
            expected.Add(new ExpectedTransaction(id, changes.ToList(), unordered));
        }

        await Transaction("INSERT INTO orders VALUES (1, 'one'), (2, 'two'), (3, 'three'), (4, 'four'), (5, 'five'), (6, 'six')",
            Enumerable.Range(1, 6).Select(i => $"c {i}"));
        // The key change's delete in 3's old partition is a repeat of the update: printed once, as the update.
        await Transaction($"UPDATE orders SET note = 'zwei' WHERE id = 2; UPDATE orders SET id = {moved} WHERE id = 3; DELETE FROM orders WHERE id = 4",
            ["u 2", $"u {moved} (was 3)", "d 4"]);
        await Transaction("INSERT INTO orders SELECT i, repeat(md5(i::text), 10) FROM generate_series(1000, 1599) i",
            Enumerable.Range(1000, 600).Select(i => $"c {i}"));
        // COPY writes its rows in multi-row WAL records: rows of different partitions may share their _lsn.
        await Transaction("SELECT 1", Enumerable.Range(50, 5).Select(i => $"c {i}"), async c =>
        {
            await using var copy = await c.BeginTextImportAsync("COPY orders (id, note) FROM STDIN");
            for (var i = 50; i < 55; i++)
            {
                await copy.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{i}\tcopied {i}"));
            }
        }, unordered: true);
        // A truncate row is in every partition: printed once.
        await Transaction("TRUNCATE orders; INSERT INTO orders VALUES (7, 'seven')", ["t", "c 7"]);
        await Transaction("INSERT INTO orders VALUES (8, 'eight')", ["c 8"]);
        await Transaction("INSERT INTO orders VALUES (9, 'nine')", ["c 9"]);
        await Transaction("UPDATE orders SET note = 'acht' WHERE id = 8", ["u 8"]);
        await Transaction("TRUNCATE orders", ["t"]);
        return expected;
    }

    private static int PartitionOf(long id)
    {
        var key = new PartitionKey();
        key.Begin();
        key.AddText(Encoding.UTF8.GetBytes(id.ToString(CultureInfo.InvariantCulture)));
        key.End();
        return key.Partition(Partitions);
    }

    /// <summary>The printed transactions are the expected ones, in order, with increasing commit LSNs.</summary>
    private static void AssertTransactions(List<ExpectedTransaction> expected, string printed)
    {
        var lines = printed.ReplaceLineEndings("\n").TrimEnd('\n').Split('\n');
        var actual = new List<(uint Xid, Lsn CommitLsn, int Count, List<string> Changes)>();
        foreach (var line in lines)
        {
            if (Regex.Match(line, @"^transaction (\d+) at ([0-9A-F]+/[0-9A-F]+): (\d+) changes$") is { Success: true } match)
            {
                actual.Add((uint.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture), Lsn.Parse(match.Groups[2].Value),
                    int.Parse(match.Groups[3].Value, CultureInfo.InvariantCulture), []));
            }
            else
            {
                Assert.StartsWith("  ", line);
                actual[^1].Changes.Add(line[2..]);
            }
        }

        Assert.Equal(expected.Select(e => e.Xid), actual.Select(a => a.Xid));
        for (var i = 0; i < expected.Count; i++)
        {
            var want = expected[i].Unordered ? expected[i].Changes.Order(StringComparer.Ordinal) : expected[i].Changes.AsEnumerable();
            var got = expected[i].Unordered ? actual[i].Changes.Order(StringComparer.Ordinal) : actual[i].Changes.AsEnumerable();
            Assert.Equal(want, got);
            Assert.Equal(actual[i].Count, actual[i].Changes.Count);
            Assert.True(i == 0 || actual[i].CommitLsn > actual[i - 1].CommitLsn, $"transaction {i} is not after transaction {i - 1}");
        }
    }

    /// <summary>Runs docs/format.md's JavaScript recipe as written there, with a harness that prints what it hands out.</summary>
    private static string RunJsRecipe(string bootstrapServers, string topic, int transactions)
    {
        var recipe = RecipeBlock("js", "js");
        var tools = Path.GetDirectoryName(ArrowJsDump.ToolDirectory)!;
        var kafkajs = Path.Combine(tools, "peer-js", "node_modules");
        Assert.True(File.Exists(Path.Combine(kafkajs, "kafkajs", "package.json")), $"npm kafkajs is not installed in {kafkajs}: run scripts/setup.sh (or scripts/setup-peer.sh).");
        var directory = Path.Combine(Path.GetTempPath(), $"walbridge-recipe-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        try
        {
            File.WriteAllText(Path.Combine(directory, "recipe.js"), recipe);
            var output = Path.Combine(directory, "transactions.txt");
            File.WriteAllText(Path.Combine(directory, "harness.js"), """
                const fs = require('fs');
                const { TableTopic, follow, describe } = require('./recipe.js');
                const [brokers, topic, count, output] = process.argv.slice(2);
                // Every record is offered twice: the second time it must be refused.
                const add = TableTopic.prototype.add;
                TableTopic.prototype.add = function (partition, message) {
                  const added = add.call(this, partition, message);
                  if (added && add.call(this, partition, message)) {
                    throw new Error('a record was accepted twice');
                  }
                  return added;
                };
                let seen = 0;
                const timer = setTimeout(() => { console.error(`timed out after ${seen} transactions`); process.exit(2); }, 90000);
                follow({
                  brokers: brokers.split(','), topic, groupId: `recipe-test-${process.pid}`,
                  onTransaction: (transaction) => {
                    fs.appendFileSync(output, describe(transaction) + '\n');
                    if (++seen === Number(count)) {
                      clearTimeout(timer);
                      process.exit(0);
                    }
                  },
                }).catch((error) => { console.error(error); process.exit(1); });
                """);
            var start = new ProcessStartInfo("node", [Path.Combine(directory, "harness.js"), bootstrapServers, topic, transactions.ToString(CultureInfo.InvariantCulture), output])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = directory,
            };
            start.Environment["NODE_PATH"] = string.Join(':', Path.Combine(tools, "arrow-js", "node_modules"), kafkajs);
            start.Environment["KAFKAJS_NO_PARTITIONER_WARNING"] = "1";
            using var node = Process.Start(start)!;
            var stdout = node.StandardOutput.ReadToEndAsync();
            var stderr = node.StandardError.ReadToEndAsync();
            if (!node.WaitForExit(TimeSpan.FromSeconds(120)))
            {
                node.Kill(entireProcessTree: true);
            }

            node.WaitForExit();
            Assert.True(node.ExitCode == 0, $"node exited with {node.ExitCode}: {stderr.Result}\n{stdout.Result}");
            return File.ReadAllText(output);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>The code block after <c>&lt;!-- recipe:NAME --&gt;</c> in docs/format.md.</summary>
    private static string RecipeBlock(string name, string language)
    {
        var document = Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(ArrowJsDump.ToolDirectory))!, "docs", "format.md");
        var match = Regex.Match(File.ReadAllText(document), $@"<!-- recipe:{name} -->\s*```{language}\n(.*?)\n```", RegexOptions.Singleline);
        Assert.True(match.Success, $"docs/format.md has no recipe block '{name}'");
        return match.Groups[1].Value + "\n";
    }
}
