using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Kafka;
using WalBridge.Connector.Pipeline;
using WalBridge.Connector.Queue;
using WalBridge.Connector.Verification;
using WalBridge.Offsets;

namespace WalBridge.Integration.Tests;

/// <summary>
/// Issue 3, point 5, against the running bridge: a transaction's rows for one table are cut into records that fit
/// <c>kafka.message.max.bytes</c>, with chunk headers; a single row that cannot fit stops the connector with an error
/// naming table, LSN, size and the setting, and nothing past it is acknowledged.
/// </summary>
[Collection(InfrastructureCollection.Name)]
public sealed class ChunkingTests(Infrastructure infrastructure)
{
    private const int Limit = 200_000;
    private static readonly TimeSpan s_catchUp = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task A_transaction_larger_than_the_record_limit_arrives_as_ordered_chunks_that_each_fit()
    {
        var database = await infrastructure.CreateDatabaseAsync("chunks");
        await infrastructure.Postgres.ExecuteAsync("CREATE TABLE chunked (id int PRIMARY KEY, v text)", database);
        var config = infrastructure.Config(database, "chunks", new Dictionary<string, string>
        {
            ["kafka.message.max.bytes"] = Limit.ToString(CultureInfo.InvariantCulture),
        });
        // What the transaction did, in WAL order: (op, id, v as PostgreSQL has it).
        var expected = new List<(string Op, string Id, string? V)>();
        Lsn floor;
        await using (var pipeline = await RunningPipeline.StartAsync(config))
        {
            await using var connection = new NpgsqlConnection(config.ConnectionString(replication: false));
            await connection.OpenAsync();
            await using (var transaction = await connection.BeginTransactionAsync())
            {
                // ~2000 rows of 320 incompressible characters: about 0.7 MB of Arrow data, several records at 200 kB.
                await ReadAsync(connection, transaction, """
                    INSERT INTO chunked
                    SELECT i, (SELECT string_agg(md5(i::text || '-' || j::text), '' ORDER BY j) FROM generate_series(1, 10) j)
                    FROM generate_series(1, 2000) i
                    RETURNING 'c', id::text, v
                    """, expected);
                await ReadAsync(connection, transaction, "UPDATE chunked SET v = 'updated ' || id WHERE id % 500 = 0 RETURNING 'u', id::text, v", expected);
                await ReadAsync(connection, transaction, "DELETE FROM chunked WHERE id IN (7, 1999) RETURNING 'd', id::text, NULL::text", expected);
                await transaction.CommitAsync();
            }
            // A small transaction after it: one record, chunk 0 and last.
            await using (var transaction = await connection.BeginTransactionAsync())
            {
                await ReadAsync(connection, transaction, "INSERT INTO chunked VALUES (5000, 'small ✓') RETURNING 'c', id::text, v", expected);
                await using (var lsn = new NpgsqlCommand("SELECT pg_current_wal_insert_lsn()::text", connection, transaction))
                {
                    floor = Lsn.Parse((string)(await lsn.ExecuteScalarAsync())!);
                }

                await transaction.CommitAsync();
            }
            await pipeline.WaitForCommittedAsync(floor, s_catchUp);
        }
        Assert.Equal(2000 + 4 + 2 + 1, expected.Count);

        var records = TopicRows.Records(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "chunked"));
        var commits = TopicRows.Rows(records).Select(r => r.CommitLsn).Distinct().ToList();
        Assert.Equal(2, commits.Count);
        Assert.True(commits[1] > commits[0]);
        // The big transaction: consecutive records of its chunks 0, 1, 2, ..., each within the limit and filled.
        var big = TopicRows.PiecesOf(records, commits[0]);
        Assert.True(big.Count >= 3, $"the big transaction arrived as {big.Count} record(s)");
        Assert.Equal(records.Take(big.Count), big);
        for (var i = 0; i < big.Count; i++)
        {
            var record = big[i];
            Assert.True(record.Value.Length <= Limit, $"chunk {i} is {record.Value.Length} bytes, more than kafka.message.max.bytes={Limit}");
            Assert.Equal(commits[0], record.FirstCommitLsn);
            Assert.Equal(i, record.Chunk);
            Assert.Equal(big[0].Fingerprint, record.Fingerprint);
            Assert.Equal("changes", record.Header(KafkaHeaders.Kind));
            Assert.Equal(KafkaHeaders.CurrentFormat, record.Header(KafkaHeaders.Format));
        }
        Assert.Single(TopicRows.Rows(big).Select(r => r.Xid).Distinct());
        // Chunks are filled: all but the last hold more than half the limit.
        Assert.All(big.SkipLast(1), r => Assert.True(r.Value.Length > Limit / 2, $"a chunk of only {r.Value.Length} bytes"));

        // The small transaction: whole in one record (with the big one's last rows, or alone as chunk 0).
        var small = Assert.Single(TopicRows.PiecesOf(records, commits[1]));
        Assert.Equal(commits[1], small.CommitLsn);
        Assert.True(small.ChunkLast);
        Assert.True(small.FirstCommitLsn == commits[1] ? small.Chunk == 0 : small == big[^1]);

        // Together, decoded by apache-arrow: exactly the transactions' rows, in order.
        var documents = ArrowJsDump.Dump(records.Select(r => r.Value).ToList());
        var seen = new List<(string Op, string Id, string? V)>();
        var seenCommits = new List<string>();
        for (var d = 0; d < documents.Count; d++)
        {
            var rows = (int)documents[d]["rows"]!;
            Assert.Equal(rows.ToString(CultureInfo.InvariantCulture), records[d].Header(KafkaHeaders.Rows));
            Assert.True(rows > 0);
            var ops = ArrowJsDump.Column(documents[d], "_op");
            var ids = ArrowJsDump.Column(documents[d], "id");
            var values = ArrowJsDump.Column(documents[d], "v");
            var rowCommits = ArrowJsDump.Column(documents[d], "_commit_lsn");
            for (var row = 0; row < rows; row++)
            {
                seen.Add(((string)ops[row]!, ((int)ids[row]!).ToString(CultureInfo.InvariantCulture), (string?)values[row]));
                seenCommits.Add((string)rowCommits[row]!);
            }
        }

        Assert.Equal([.. Enumerable.Repeat(commits[0].Value.ToString(CultureInfo.InvariantCulture), expected.Count - 1), commits[1].Value.ToString(CultureInfo.InvariantCulture)], seenCommits);
        Assert.Equal(expected.Count, seen.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.True(expected[i] == seen[i], $"row {i}: expected {expected[i]}, Kafka has {seen[i]}");
        }

        await CleanupAsync(config, database);
    }

    /// <summary>
    /// Issue 15, point 1: under REPLICA IDENTITY FULL an update that does not touch a TOASTed column carries the value
    /// twice (the old row, and the new row filled from it). Several such rows together exceed the record limit although
    /// each fits: they must be cut into records that each fit, never stop the connector.
    /// </summary>
    [Theory]
    [InlineData("pgoutput", "auto")]
    [InlineData("pgoutput", "off")]
    [InlineData("wal2arrow", "auto")]
    public async Task Updates_of_large_toasted_rows_under_full_identity_are_cut_into_records_that_fit(string plugin, string binaryFormat)
    {
        var database = await infrastructure.CreateDatabaseAsync("toastfull");
        await infrastructure.Postgres.ExecuteAsync("""
            CREATE TABLE notes (n int, label text, body text);
            ALTER TABLE notes REPLICA IDENTITY FULL;
            """, database);
        const int limit = 1_000_000;
        var config = infrastructure.Config(database, "toastfull", new Dictionary<string, string>
        {
            ["plugin"] = plugin,
            ["binary.format"] = binaryFormat,
            ["kafka.message.max.bytes"] = limit.ToString(CultureInfo.InvariantCulture),
        });
        Lsn floor;
        await using (var pipeline = await RunningPipeline.StartAsync(config))
        {
            // Three rows with a 180,000-byte incompressible value (stored out of line), then one transaction that
            // updates one row twice and another once without touching it: about 1.2 MB of row data.
            await infrastructure.Postgres.ExecuteAsync("""
                INSERT INTO notes SELECT g, 'row ' || g, (SELECT string_agg(md5(g::text || '.' || i::text), '' ORDER BY i) FROM generate_series(1, 5625) i)
                FROM generate_series(1, 3) g;
                """, database);
            await infrastructure.Postgres.ExecuteAsync("""
                BEGIN;
                UPDATE notes SET label = 'first update' WHERE n = 1;
                UPDATE notes SET label = 'second update' WHERE n = 1;
                UPDATE notes SET label = 'updated' WHERE n = 2;
                COMMIT;
                """, database);
            floor = await LsnAsync(database);
            await infrastructure.Postgres.ExecuteAsync("INSERT INTO notes VALUES (4, 'after', 'small')", database);
            await pipeline.WaitForCommittedAsync(floor, s_catchUp);
        }

        var records = TopicRows.Records(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "notes"));
        Assert.All(records, r => Assert.True(r.Value.Length <= limit - ConnectorConfig.RecordOverhead,
            $"a record of {r.Value.Length:N0} bytes exceeds the record limit"));
        // The update transaction: its three rows in more than one record, chunk headers in order.
        var commits = TopicRows.Rows(records).Select(r => r.CommitLsn).Distinct().ToList();
        Assert.Equal(3, commits.Count);
        var update = TopicRows.PiecesOf(records, commits[1]);
        Assert.True(update.Count >= 2, $"the update transaction arrived in {update.Count} record(s)");
        Assert.Equal(3, TopicRows.Rows(update).Count(r => r.CommitLsn == commits[1]));
        Assert.All(TopicRows.Rows(update).Where(r => r.CommitLsn == commits[1]), r => Assert.Equal("u", r.Op));

        var report = await PipelineVerifier.VerifyAsync(config, null, CancellationToken.None);
        Assert.True(report.Passed, string.Join("\n", report.Tables.SelectMany(t => t.Differences)));
        Assert.Equal(4, report.Tables.Single().SourceRows);
        await CleanupAsync(config, database);
    }

    [Fact]
    public async Task A_row_that_cannot_fit_stops_the_connector_and_nothing_past_it_is_acknowledged()
    {
        var database = await infrastructure.CreateDatabaseAsync("toolarge");
        await infrastructure.Postgres.ExecuteAsync("CREATE TABLE big (id int PRIMARY KEY, v text)", database);
        // Fixed names, so that the restart below continues the same connector with a raised limit.
        var fixedNames = new Dictionary<string, string>
        {
            ["topic.prefix"] = $"toolarge{Guid.NewGuid():N}"[..20],
            ["state.dir"] = Path.Combine(Path.GetTempPath(), $"walbridge-test-state-{Guid.NewGuid():N}"),
        };
        var config = infrastructure.Config(database, "toolarge", new Dictionary<string, string>(fixedNames)
        {
            ["kafka.message.max.bytes"] = Limit.ToString(CultureInfo.InvariantCulture),
        });

        using var stop = new CancellationTokenSource();
        var runner = new ConnectorRunner(config, NullLogger.Instance);
        var run = runner.RunAsync(stop.Token);
        await Task.WhenAny(runner.Progress.SourceReady, run).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.False(run.IsCompleted, "the connector stopped before the workload");

        // A transaction before the big row: delivered.
        var beforeSmall = await LsnAsync(database);
        await infrastructure.Postgres.ExecuteAsync("INSERT INTO big VALUES (1, 'fits')", database);
        var deadline = DateTime.UtcNow + s_catchUp;
        while (runner.Progress.Committed < beforeSmall)
        {
            Assert.False(run.IsCompleted, "the connector stopped on the small transaction");
            Assert.True(DateTime.UtcNow < deadline, "the small transaction was not committed");
            await Task.Delay(50);
        }

        // One row of 400,000 incompressible characters, with a 200,000-byte limit.
        var beforeBig = await LsnAsync(database);
        Lsn insideBig;
        await using (var connection = new NpgsqlConnection(config.ConnectionString(replication: false)))
        {
            await connection.OpenAsync();
            await using var transaction = await connection.BeginTransactionAsync();
            await using (var insert = new NpgsqlCommand(
                "INSERT INTO big SELECT 2, string_agg(md5(i::text), '' ORDER BY i) FROM generate_series(1, 12500) i", connection, transaction))
            {
                await insert.ExecuteNonQueryAsync();
            }

            await using (var lsn = new NpgsqlCommand("SELECT pg_current_wal_insert_lsn()::text", connection, transaction))
            {
                insideBig = Lsn.Parse((string)(await lsn.ExecuteScalarAsync())!);
            }

            await transaction.CommitAsync();
        }

        var error = await Assert.ThrowsAsync<RowTooLargeException>(() => run.WaitAsync(TimeSpan.FromSeconds(90)));
        Assert.Equal("public.big", error.Table);
        Assert.True(error.Lsn >= beforeBig, $"the error's LSN {error.Lsn} is before the big transaction ({beforeBig})");
        Assert.True(error.Size > Limit, $"reported size {error.Size}");
        Assert.True(error.Size > 400_000, $"reported size {error.Size} is less than the value alone");
        Assert.Contains("public.big", error.Message, StringComparison.Ordinal);
        Assert.Contains(error.Lsn.ToString(), error.Message, StringComparison.Ordinal);
        Assert.Contains(error.Size.ToString("N0", CultureInfo.InvariantCulture), error.Message, StringComparison.Ordinal);
        Assert.Contains("kafka.message.max.bytes", error.Message, StringComparison.Ordinal);
        Assert.Contains(Limit.ToString("N0", CultureInfo.InvariantCulture), error.Message, StringComparison.Ordinal);

        // Nothing at or past the big row's transaction was acknowledged or recorded as committed.
        var confirmed = Lsn.Parse(await infrastructure.Postgres.ScalarAsync<string>(
            $"SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '{config.SlotName}'", database));
        Assert.True(confirmed <= beforeBig, $"the slot is confirmed through {confirmed}, past the start of the big transaction {beforeBig}");
        Assert.True(runner.Progress.Committed <= beforeBig);
        var kafka = new Dictionary<string, string> { ["bootstrap.servers"] = infrastructure.Broker.BootstrapServers };
        var offset = OffsetsTopicReader.ReadLatest(kafka, config.OffsetsTopic, new OffsetKey(config.Name, config.SlotName, database), CancellationToken.None);
        Assert.NotNull(offset);
        Assert.True(offset.CommitLsn <= beforeBig, $"the offsets topic records {offset.CommitLsn}, past {beforeBig}");
        Assert.True(offset.CommitLsn >= beforeSmall);

        // The transaction before it was delivered; the big row was not.
        var delivered = KafkaRecord.ReadAll(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "big"));
        var only = Assert.Single(delivered);
        Assert.Equal("1", only.Header(KafkaHeaders.Rows));
        var document = Assert.Single(ArrowJsDump.Dump([only.Value]));
        Assert.Equal("fits", (string)ArrowJsDump.Column(document, "v")[0]!);

        // Nothing was lost: with the limit raised, the same connector delivers the row from the slot.
        var raised = infrastructure.Config(database, "toolarge", new Dictionary<string, string>(fixedNames)
        {
            ["kafka.message.max.bytes"] = "2000000",
        });
        await using (var pipeline = await RunningPipeline.StartAsync(raised))
        {
            await pipeline.WaitForCommittedAsync(insideBig, s_catchUp);
        }

        var after = KafkaRecord.ReadAll(infrastructure.Broker.BootstrapServers, config.TopicFor("public", "big"));
        Assert.Equal(2, after.Count);
        var bigDocument = ArrowJsDump.Dump([after[1].Value])[0];
        Assert.Equal(2, (int)ArrowJsDump.Column(bigDocument, "id")[0]!);
        Assert.Equal(400_000, ((string)ArrowJsDump.Column(bigDocument, "v")[0]!).Length);

        await CleanupAsync(config, database);
    }

    private static async Task ReadAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, List<(string, string, string?)> into)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            into.Add((reader.GetString(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2)));
        }
    }

    private async Task<Lsn> LsnAsync(string database) =>
        Lsn.Parse(await infrastructure.Postgres.ScalarAsync<string>("SELECT pg_current_wal_insert_lsn()::text", database));

    private async Task CleanupAsync(ConnectorConfig config, string database)
    {
        await infrastructure.Postgres.ExecuteAsync(
            $"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{config.SlotName}'", database);
        if (Directory.Exists(config.StateDirectory))
        {
            Directory.Delete(config.StateDirectory, recursive: true);
        }
    }
}
