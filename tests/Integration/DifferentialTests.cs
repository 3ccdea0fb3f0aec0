using System.Text;
using Apache.Arrow;
using Apache.Arrow.Types;
using Npgsql;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Kafka;
using WalBridge.Connector.Verification;
using WalBridge.DevTools.Embedded;
using WalBridge.Offsets;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;
using WalBridge.Tests;

namespace WalBridge.Integration.Tests;

/// <summary>
/// Issue 6: the same mixed workload through both plugins (pgoutput decoded by the connector, and
/// wal2arrow building Arrow inside PostgreSQL) gives the same decoded change stream per table.
/// </summary>
[Collection(InfrastructureCollection.Name)]
public sealed class DifferentialTests(Infrastructure infrastructure)
{
    [Fact]
    public async Task Pgoutput_and_wal2arrow_produce_the_same_tables()
    {
        Assert.True(TemporaryPostgres.Wal2ArrowLibraryDirectory() is not null, "wal2arrow is not built: run scripts/setup.sh");
        var database = await infrastructure.CreateDatabaseAsync("diff");
        await infrastructure.Postgres.ExecuteAsync("""
            CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
            CREATE TABLE everything (
                id int PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, o oid, f4 float4, f8 float8,
                n numeric(12,3), nbig numeric(60,10), nfree numeric, t text, vc varchar(20), bc char(5), nm name, by bytea,
                d date, ts timestamp, tstz timestamptz, tm time, iv interval, u uuid, j json, jb jsonb,
                ai int4[], at text[], m mood, ip inet, body text);
            ALTER TABLE everything ALTER COLUMN body SET STORAGE EXTERNAL;
            CREATE TABLE full_identity (id int PRIMARY KEY, v text, body text);
            ALTER TABLE full_identity REPLICA IDENTITY FULL;
            ALTER TABLE full_identity ALTER COLUMN body SET STORAGE EXTERNAL;
            CREATE TABLE other (k text PRIMARY KEY, n int);
            """, database);
        var pgoutput = infrastructure.Config(database, "diffpg", new Dictionary<string, string> { ["name"] = $"{database}_pg", ["kafka.message.max.bytes"] = "4000000" });
        var wal2arrow = infrastructure.Config(database, "diffw2a", new Dictionary<string, string> { ["name"] = $"{database}_w2a", ["plugin"] = "wal2arrow", ["kafka.message.max.bytes"] = "4000000" });
        var big = string.Concat(Enumerable.Range(0, 2_000).Select(i => Guid.NewGuid().ToString("N")));

        await using (var first = await RunningPipeline.StartAsync(pgoutput))
        await using (var second = await RunningPipeline.StartAsync(wal2arrow))
        {
            await using var connection = new NpgsqlConnection(infrastructure.Postgres.ConnectionString(database));
            await connection.OpenAsync();
            async Task Run(string sql, params object[] parameters)
            {
                await using var command = new NpgsqlCommand(sql, connection);
                foreach (var parameter in parameters)
                {
                    command.Parameters.Add(new NpgsqlParameter { Value = parameter });
                }

                await command.ExecuteNonQueryAsync();
            }
            await Run("""
                INSERT INTO everything VALUES
                  (1, true, -32768, 2147483647, -9223372036854775808, 4294967295, 1.5, -2.25e-300, 12345.678, -12345678901234567890.0123456789, 'NaN',
                   'tëxt ✓ 🎉', 'varchar', 'ab', 'name', '\x00ff00', '2024-02-29', '1999-12-31 23:59:59.999999', '2024-01-01 00:00:00+05',
                   '23:59:59.5', '1 year 2 mons -3 days 04:05:06.7', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}', '{"b": null}',
                   '{1,NULL,3}', '{"x y",NULL}', 'ok', '192.168.0.1/24', $1),
                  (2, NULL, NULL, NULL, NULL, NULL, 'NaN', 'Infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                   'infinity', '-infinity', NULL, NULL, NULL, NULL, NULL, NULL, '{}', NULL, NULL, NULL, NULL);
                """, big);
            await Run("INSERT INTO full_identity VALUES (1, 'one', $1), (2, 'two', 'short')", big);
            await Run("INSERT INTO other SELECT 'k' || g, g FROM generate_series(1, 500) g");
            await Run("BEGIN; UPDATE everything SET i4 = 7, t = 'changed' WHERE id = 1; UPDATE full_identity SET v = 'uno' WHERE id = 1; UPDATE everything SET id = 3 WHERE id = 2; COMMIT");
            await Run("BEGIN; DELETE FROM other WHERE n % 3 = 0; UPDATE other SET n = -n WHERE n % 5 = 0; COMMIT");
            await Run("BEGIN; INSERT INTO other VALUES ('before-truncate', 1); TRUNCATE other; INSERT INTO other VALUES ('after-truncate', 2); COMMIT");
            await Run("ALTER TABLE other ADD COLUMN extra numeric(8,2)");
            await Run("BEGIN; INSERT INTO other VALUES ('x', 3, 1.25); ALTER TABLE other DROP COLUMN n; INSERT INTO other VALUES ('y', 2.5); COMMIT");
            await Run("DELETE FROM full_identity WHERE id = 2; DELETE FROM everything WHERE id = 3");

            await using var transaction = await connection.BeginTransactionAsync();
            await using var position = new NpgsqlCommand("SELECT pg_logical_emit_message(true, 'test.marker', ''), pg_current_wal_insert_lsn()::text", connection, transaction);
            string text;
            await using (var reader = await position.ExecuteReaderAsync())
            {
                await reader.ReadAsync();
                text = reader.GetString(1);
            }
            await transaction.CommitAsync();
            var floor = Lsn.Parse(text);
            await first.WaitForCommittedAsync(floor, TimeSpan.FromSeconds(90));
            await second.WaitForCommittedAsync(floor, TimeSpan.FromSeconds(90));
        }

        foreach (var table in new[] { "everything", "full_identity", "other" })
        {
            var viaPgoutput = Changes(pgoutput.TopicFor("public", table));
            var viaWal2arrow = Changes(wal2arrow.TopicFor("public", table));
            Assert.NotEmpty(viaPgoutput);
            Assert.Equal(viaPgoutput.Count, viaWal2arrow.Count);
            for (var i = 0; i < viaPgoutput.Count; i++)
            {
                Assert.Equal(viaPgoutput[i], viaWal2arrow[i]);
            }
        }

        foreach (var config in new[] { pgoutput, wal2arrow })
        {
            var report = await PipelineVerifier.VerifyAsync(config, null, CancellationToken.None);
            Assert.True(report.Passed, $"{config.Plugin}: " + string.Join("\n", report.Tables.SelectMany(t => t.Differences)));
            await infrastructure.Postgres.ExecuteAsync($"SELECT pg_drop_replication_slot('{config.SlotName}')", database);
            if (Directory.Exists(config.StateDirectory))
            {
                Directory.Delete(config.StateDirectory, recursive: true);
            }
        }
    }

    /// <summary>
    /// The table's change stream, independent of where chunks were cut: one line per change (or
    /// truncate) with the commit LSN, the operation, the change LSN, every column and old-row value
    /// in PostgreSQL's text form, the unchanged-TOAST and special-value markers, and the Arrow type.
    /// </summary>
    private List<string> Changes(string topic)
    {
        var lines = new List<string>();
        OffsetsTopicReader.ReadToEnd(new Dictionary<string, string> { ["bootstrap.servers"] = infrastructure.Broker.BootstrapServers }, topic, message =>
        {
            var stream = ArrowPayload.Read(message.Message.Value);
            foreach (var batch in stream.Batches)
            {
                for (var row = 0; row < batch.Length; row++)
                {
                    var line = new StringBuilder($"{new Lsn((ulong)batch.Col("_commit_lsn").Value(row)!)} xid {batch.Col("_xid").Value(row)} {batch.Col("_op").Value(row)} lsn {batch.Col("_lsn").Value(row)}");
                    for (var c = 0; c < batch.ColumnCount; c++)
                    {
                        var field = batch.Schema.GetFieldByIndex(c);
                        if (TopicReplay.IsTableColumn(field))
                        {
                            line.Append($" | {FieldLine(field)}={PgTextRenderer.RenderCell(batch, c, row) ?? "NULL"}");
                        }
                    }
                    if (batch.Column("_before") is StructArray before && !before.IsNull(row))
                    {
                        var members = batch.Schema.Field("_before").Children();
                        for (var member = 0; member < members.Count; member++)
                        {
                            line.Append($" | before.{members[member].Name}={PgTextRenderer.RenderBeforeCell(batch, member, row) ?? "NULL"}");
                        }
                    }
                    line.Append($" | unchanged={Format(batch.Column("_unchanged").Value(row))} special={Format(batch.Column("_special").Value(row))}");
                    lines.Add(line.ToString());
                }
            }
        }, CancellationToken.None);
        return lines;
    }

    /// <summary>The field's line of the canonical schema text: name, Arrow type with its parameters, nullability, metadata.</summary>
    private static string FieldLine(Field field) => SchemaFingerprint.CanonicalText(new Schema([field], null)).Split('\n')[2];

    private static string Format(object? value) => value switch
    {
        null => "null",
        IEnumerable<object?> items => "[" + string.Join(",", items.Select(Format)) + "]",
        _ => value.ToString() ?? "",
    };
}
