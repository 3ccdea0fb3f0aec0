using System.Globalization;
using System.Text.Json.Nodes;
using WalBridge.Connector.Configuration;
using WalBridge.Offsets;

namespace WalBridge.Integration.Tests;

/// <summary>
/// Issue 15, point 4: where the old row is (docs/format.md, "Where the old row is"), the same for both plugins and
/// both tuple modes, decoded by apache-arrow: a delete's old row or key is in the table columns and <c>_before</c> is
/// null; an update carries its old row in <c>_before</c> under FULL, the old key only when the key changed otherwise.
/// </summary>
[Collection(InfrastructureCollection.Name)]
public sealed class OldRowPlacementTests(Infrastructure infrastructure)
{
    [Theory]
    [InlineData("pgoutput", "auto")]
    [InlineData("pgoutput", "off")]
    [InlineData("wal2arrow", "auto")]
    public async Task Deletes_carry_the_old_row_in_the_table_columns_and_updates_in_before(string plugin, string binaryFormat)
    {
        var database = await infrastructure.CreateDatabaseAsync("oldrow");
        await infrastructure.Postgres.ExecuteAsync("""
            CREATE TABLE keyed (id int PRIMARY KEY, v text);
            CREATE TABLE full_nokey (a int, b text);
            ALTER TABLE full_nokey REPLICA IDENTITY FULL;
            """, database);
        var config = infrastructure.Config(database, "oldrow", new Dictionary<string, string> { ["plugin"] = plugin, ["binary.format"] = binaryFormat });
        await using (var pipeline = await RunningPipeline.StartAsync(config))
        {
            await infrastructure.Postgres.ExecuteAsync("""
                INSERT INTO keyed VALUES (1, 'one'), (2, 'two');
                INSERT INTO full_nokey VALUES (1, 'x'), (2, 'y');
                BEGIN;
                UPDATE keyed SET v = 'uno' WHERE id = 1;
                UPDATE keyed SET id = 20 WHERE id = 2;
                DELETE FROM keyed WHERE id = 1;
                UPDATE full_nokey SET b = 'z' WHERE a = 2;
                DELETE FROM full_nokey WHERE a = 1;
                COMMIT;
                """, database);
            var floor = Lsn.Parse(await infrastructure.Postgres.ScalarAsync<string>("SELECT pg_current_wal_insert_lsn()::text", database));
            await infrastructure.Postgres.ExecuteAsync("INSERT INTO keyed VALUES (99, 'marker')", database);
            await pipeline.WaitForCommittedAsync(floor, TimeSpan.FromSeconds(120));
        }

        var keyed = Rows(config, "keyed").Skip(2).Take(3).ToList();
        Assert.Equal(["u", "u", "d"], keyed.Select(r => r.Op));
        Assert.Equal(("1", "uno"), keyed[0].Row);
        Assert.Null(keyed[0].Before);                    // key unchanged: no old tuple
        Assert.Equal(("20", "two"), keyed[1].Row);
        Assert.Equal(("2", null), keyed[1].Before);      // key changed: the old key, other members null
        Assert.Equal(("1", null), keyed[2].Row);         // delete: the old key in the table columns
        Assert.Null(keyed[2].Before);

        var full = Rows(config, "full_nokey").Skip(2).ToList();
        Assert.Equal(["u", "d"], full.Select(r => r.Op));
        Assert.Equal(("2", "z"), full[0].Row);
        Assert.Equal(("2", "y"), full[0].Before);        // FULL: the whole old row
        Assert.Equal(("1", "x"), full[1].Row);           // delete under FULL: the whole old row in the table columns
        Assert.Null(full[1].Before);

        await infrastructure.Postgres.ExecuteAsync(
            $"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{config.SlotName}'", database);
    }

    /// <summary>Every row of the table's topic in order, decoded by apache-arrow: (op, (col0, col1), _before as (col0, col1) or null).</summary>
    private List<(string Op, (string?, string?) Row, (string?, string?)? Before)> Rows(ConnectorConfig config, string table)
    {
        var records = KafkaRecord.ReadAll(infrastructure.Broker.BootstrapServers, config.TopicFor("public", table));
        var rows = new List<(string, (string?, string?), (string?, string?)?)>();
        foreach (var document in ArrowJsDump.Dump(records.Select(r => r.Value).ToList()))
        {
            var fields = document["fields"]!.AsArray();
            var ops = ArrowJsDump.Column(document, "_op");
            var first = ArrowJsDump.Column(document, fields[5]!["name"]!.GetValue<string>());
            var second = ArrowJsDump.Column(document, fields[6]!["name"]!.GetValue<string>());
            var before = ArrowJsDump.Column(document, "_before");
            for (var row = 0; row < ops.Count; row++)
            {
                (string?, string?)? old = before[row] is JsonArray members ? (Text(members[0]), Text(members[1])) : null;
                rows.Add(((string)ops[row]!, (Text(first[row]), Text(second[row])), old));
            }
        }
        return rows;
    }

    private static string? Text(JsonNode? cell) => cell switch
    {
        null => null,
        JsonValue value when value.TryGetValue<int>(out var number) => number.ToString(CultureInfo.InvariantCulture),
        _ => cell.GetValue<string>(),
    };
}
