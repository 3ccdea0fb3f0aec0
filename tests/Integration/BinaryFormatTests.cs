using WalBridge.Connector.Verification;
using WalBridge.Offsets;

namespace WalBridge.Integration.Tests;

/// <summary>Issue 3: pgoutput's binary tuple format where it is exact, text where it is not.</summary>
[Collection(InfrastructureCollection.Name)]
public sealed class BinaryFormatTests(Infrastructure infrastructure)
{
    [Fact]
    public async Task Natively_mapped_tables_stream_binary_tuples_and_a_text_only_type_switches_to_text_without_loss()
    {
        var database = await infrastructure.CreateDatabaseAsync("binary");
        await infrastructure.Postgres.ExecuteAsync("""
            CREATE TABLE native (id bigint PRIMARY KEY, n numeric(20,4), ts timestamptz, d date, f float8, t text, u uuid, a int4[], j jsonb);
            CREATE TABLE addresses (id int PRIMARY KEY, ip inet);
            """, database);
        var config = infrastructure.Config(database, "binary");
        var logger = new CapturingLogger();
        await using (var pipeline = await RunningPipeline.StartAsync(config, logger))
        {
            var before = await LsnAsync(database);
            await infrastructure.Postgres.ExecuteAsync("""
                INSERT INTO native VALUES (1, -12345.6789, '2024-02-29 12:34:56.789012+00', '0044-03-15 BC', 'NaN', 'ü ✓', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,NULL,3}', '{"k": [1, 2.5]}'),
                                          (2, 'NaN', 'infinity', '-infinity', -0.0, NULL, NULL, '{}', 'null');
                UPDATE native SET n = n * 2 WHERE id = 1;
                """, database);
            // Past it: the snapshot's position (the slot's consistent point) can equal a position taken before the statements.
            await pipeline.WaitForCommittedAsync(new Lsn(before.Value + 1), TimeSpan.FromSeconds(90));
            Assert.Contains(logger.Lines, l => l.Contains("binary tuples", StringComparison.Ordinal));
            Assert.DoesNotContain(logger.Lines, l => l.Contains("text tuples", StringComparison.Ordinal));

            // A table whose type only the text format carries: the stream restarts in text, losing nothing.
            var after = await LsnAsync(database);
            await infrastructure.Postgres.ExecuteAsync("INSERT INTO addresses VALUES (1, '10.0.0.1'), (2, '2001:db8::/32'); INSERT INTO native VALUES (3, 1, now(), now(), 1, 'x', NULL, NULL, NULL)", database);
            await pipeline.WaitForCommittedAsync(new Lsn(after.Value + 1), TimeSpan.FromSeconds(90));
            Assert.Contains(logger.Lines, l => l.Contains("column ip (type inet) needs pgoutput's text format", StringComparison.Ordinal));
            Assert.Contains(logger.Lines, l => l.Contains("text tuples", StringComparison.Ordinal));
        }

        var report = await PipelineVerifier.VerifyAsync(config, null, CancellationToken.None);
        Assert.True(report.Passed, string.Join("\n", report.Tables.SelectMany(t => t.Differences)));
        Assert.Equal(3, report.Tables.Single(t => t.Table == "public.native").SourceRows);
        Assert.Equal(2, report.Tables.Single(t => t.Table == "public.addresses").SourceRows);
        await infrastructure.Postgres.ExecuteAsync($"SELECT pg_drop_replication_slot('{config.SlotName}')", database);
        if (Directory.Exists(config.StateDirectory))
        {
            Directory.Delete(config.StateDirectory, recursive: true);
        }
    }

    private async Task<Lsn> LsnAsync(string database) =>
        Lsn.Parse(await infrastructure.Postgres.ScalarAsync<string>("SELECT pg_current_wal_insert_lsn()::text", database));
}
