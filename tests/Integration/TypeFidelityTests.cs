using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Npgsql;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Kafka;
using WalBridge.Offsets;

namespace WalBridge.Integration.Tests;

/// <summary>
/// Issue 3's type-fidelity acceptance, end to end: a table with one column of every mapped type, filled with ordinary,
/// extreme and NULL values and every lossless case, goes through the RUNNING bridge (pgoutput → connector → Kafka); the
/// Kafka payloads are decoded by apache-arrow JS (tools/arrow-js/dump.js, not our reader); every value, interpreted
/// under docs/format.md's mapping, must equal PostgreSQL's own <c>SELECT col::text</c> of the row as the change made it
/// (captured inside the same transaction, with extra_float_digits=1, TimeZone UTC, DateStyle ISO, IntervalStyle
/// postgres, bytea_output hex). Values Arrow cannot hold come from <c>_special</c>; unchanged TOAST values from
/// <c>_unchanged</c>.
/// </summary>
/// <remarks>
/// Turning an Arrow value back into PostgreSQL text is done by PostgreSQL itself wherever it is not trivial: the test
/// builds an SQL expression from the raw Arrow value as the mapping documents it (e.g. a timestamp[us] is
/// <c>epoch + days + microseconds</c>, a decimal is its unscaled integer with the field's scale, a list is
/// <c>ARRAY[...]</c> of its elements) and compares <c>(expression)::text</c> with the source's text. So the check is
/// independent of WalBridge's own renderer, and exact (no value goes through a JS or .NET float or date type).
/// </remarks>
[Collection(InfrastructureCollection.Name)]
public sealed class TypeFidelityTests(Infrastructure infrastructure)
{
    private static readonly TimeSpan s_catchUp = TimeSpan.FromSeconds(120);

    /// <summary>Column, DDL type, the Arrow type apache-arrow must see (see <see cref="Signature"/>), pg.type.</summary>
    private static readonly (string Name, string Ddl, string Arrow, string PgType)[] s_columns =
    [
        ("id", "int4", "Int32", "integer"),
        ("c_bool", "bool", "Bool", "boolean"),
        ("c_int2", "int2", "Int16", "smallint"),
        ("c_int4", "int4", "Int32", "integer"),
        ("c_int8", "int8", "Int64", "bigint"),
        ("c_oid", "oid", "UInt32", "oid"),
        ("c_float4", "float4", "Float:SINGLE", "real"),
        ("c_float8", "float8", "Float:DOUBLE", "double precision"),
        ("c_num_small", "numeric(5,2)", "Decimal128(5,2)", "numeric(5,2)"),
        ("c_num_38", "numeric(38,10)", "Decimal128(38,10)", "numeric(38,10)"),
        ("c_num_76", "numeric(76,20)", "Decimal256(76,20)", "numeric(76,20)"),
        ("c_num", "numeric", "Utf8", "numeric"),
        ("c_text", "text", "Utf8", "text"),
        ("c_varchar", "varchar(20)", "Utf8", "character varying(20)"),
        ("c_bpchar", "char(5)", "Utf8", "character(5)"),
        ("c_name", "name", "Utf8", "name"),
        ("c_bytea", "bytea", "Binary", "bytea"),
        ("c_date", "date", "Date:DAY", "date"),
        ("c_ts", "timestamp", "Timestamp:MICROSECOND", "timestamp without time zone"),
        ("c_ts3", "timestamp(3)", "Timestamp:MICROSECOND", "timestamp(3) without time zone"),
        ("c_tstz", "timestamptz", "Timestamp:MICROSECOND:UTC", "timestamp with time zone"),
        ("c_time", "time", "Time64:MICROSECOND", "time without time zone"),
        ("c_timetz", "timetz", "Utf8", "time with time zone"),
        ("c_interval", "interval", "Interval:MONTH_DAY_NANO", "interval"),
        ("c_uuid", "uuid", "FixedSizeBinary16+arrow.uuid", "uuid"),
        ("c_json", "json", "Utf8+arrow.json", "json"),
        ("c_jsonb", "jsonb", "Utf8+arrow.json", "jsonb"),
        ("a_int4", "int4[]", "List<Int32>", "integer[]"),
        ("a_text", "text[]", "List<Utf8>", "text[]"),
        ("a_varchar", "varchar(3)[]", "List<Utf8>", "character varying(3)[]"),
        ("a_num", "numeric(10,2)[]", "List<Decimal128(10,2)>", "numeric(10,2)[]"),
        ("a_float4", "float4[]", "List<Float:SINGLE>", "real[]"),
        ("a_float8", "float8[]", "List<Float:DOUBLE>", "double precision[]"),
        ("a_bool", "bool[]", "List<Bool>", "boolean[]"),
        ("a_bytea", "bytea[]", "List<Binary>", "bytea[]"),
        ("a_date", "date[]", "List<Date:DAY>", "date[]"),
        ("a_time", "time[]", "List<Time64:MICROSECOND>", "time without time zone[]"),
        ("a_tstz", "timestamptz[]", "List<Timestamp:MICROSECOND:UTC>", "timestamp with time zone[]"),
        ("a_interval", "interval[]", "List<Interval:MONTH_DAY_NANO>", "interval[]"),
        ("a_uuid", "uuid[]", "List<FixedSizeBinary16+arrow.uuid>", "uuid[]"),
        ("a_jsonb", "jsonb[]", "List<Utf8+arrow.json>", "jsonb[]"),
        ("c_mood", "mood", "Utf8", "public.mood"),
        ("c_dom_int", "positive_int", "Int32", "integer"),
        ("c_dom_text", "short_text", "Utf8", "text"),
        ("c_inet", "inet", "Utf8", "inet"),
        ("c_point", "point", "Utf8", "point"),
        ("c_money", "money", "Utf8", "money"),
        ("c_xml", "xml", "Utf8", "xml"),
        ("c_tsvector", "tsvector", "Utf8", "tsvector"),
        ("c_range", "int4range", "Utf8", "int4range"),
        ("c_bit", "bit(4)", "Utf8", "bit(4)"),
        ("a_inet", "inet[]", "Utf8", "inet[]"),
        ("c_big", "text", "Utf8", "text"),
    ];

    /// <summary>Rows inserted by the first transaction: column → SQL expression (absent columns are NULL).</summary>
    private static readonly (int Id, Dictionary<string, string> Values)[] s_rows =
    [
        (1, new() // ordinary values
        {
            ["c_bool"] = "true", ["c_int2"] = "123", ["c_int4"] = "-45678", ["c_int8"] = "9876543210", ["c_oid"] = "4000000000",
            ["c_float4"] = "3.14", ["c_float8"] = "2.718281828459045",
            ["c_num_small"] = "1.5", ["c_num_38"] = "12345.6789",
            ["c_num_76"] = "-1234567890123456789012345678901234567890.12345678901234567890",
            ["c_num"] = "3.14159265358979323846264338327950288419716939937510",
            ["c_text"] = """'hello, world — "quoted" \back\slash'""", ["c_varchar"] = "'varchar'", ["c_bpchar"] = "'ab'",
            ["c_name"] = "'a_name'", ["c_bytea"] = """'\xdeadbeef'""",
            ["c_date"] = "'2024-02-29'", ["c_ts"] = "'2024-02-29 12:34:56.789012'", ["c_ts3"] = "'2024-02-29 12:34:56.7894'",
            ["c_tstz"] = "'2024-02-29 12:34:56.789012+05:30'", ["c_time"] = "'12:34:56.789012'", ["c_timetz"] = "'12:34:56.5+05:30'",
            ["c_interval"] = "'1 year 2 mons 3 days 04:05:06.789'", ["c_uuid"] = "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
            ["c_json"] = """'{"b": 1, "a" : [1, 2.50, "x"]}'""", ["c_jsonb"] = """'{"b": 1, "a" : [1, 2.50, "x"]}'""",
            ["a_int4"] = "'{1,NULL,3}'",
            ["a_text"] = """ARRAY['a b', 'c,d', '', 'NULL', NULL, 'quote"s', 'back\slash', '{braces}', '😀 𝄞']""",
            ["a_varchar"] = "'{abc,NULL,x}'", ["a_num"] = "'{1.5,-2.25,NULL}'", ["a_float4"] = "'{0.1,NaN,-Infinity}'",
            ["a_float8"] = "'{1.5,NaN,Infinity,-0}'", ["a_bool"] = "'{t,f,NULL}'",
            ["a_bytea"] = """ARRAY['\x00ff'::bytea, NULL, '\x'::bytea]""", ["a_date"] = "'{2024-01-01,NULL,1999-12-31}'",
            ["a_time"] = "'{00:00:00,12:00:00.5,24:00:00}'", ["a_tstz"] = """'{"2024-01-01 00:00:00+00","1999-12-31 23:59:59.5-08"}'""",
            ["a_interval"] = "ARRAY['1 day'::interval, '-1 mons +2 days -00:00:01.5', NULL]",
            ["a_uuid"] = "'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}'",
            ["a_jsonb"] = """ARRAY['{"k": [1, 2]}'::jsonb, 'null'::jsonb, NULL]""",
            ["c_mood"] = "'happy'", ["c_dom_int"] = "42", ["c_dom_text"] = "'domain text'",
            ["c_inet"] = "'192.168.0.1/24'", ["c_point"] = "'(1.5,-2)'", ["c_money"] = "12.34", ["c_xml"] = """'<a x="1">t</a>'""",
            ["c_tsvector"] = "'a fat cat'", ["c_range"] = "'[1,10)'", ["c_bit"] = "B'1010'", ["a_inet"] = "'{10.0.0.1,::1,NULL}'",
        }),
        (2, new() // extreme values
        {
            ["c_bool"] = "false", ["c_int2"] = "-32768", ["c_int4"] = "2147483647", ["c_int8"] = "-9223372036854775808",
            ["c_oid"] = "4294967295", ["c_float4"] = "'3.4028235e+38'", ["c_float8"] = "'-1.7976931348623157e+308'",
            ["c_num_small"] = "-999.99", ["c_num_38"] = "-9999999999999999999999999999.9999999999",
            ["c_num_76"] = "99999999999999999999999999999999999999999999999999999999.99999999999999999999",
            ["c_num"] = "'-1.5e+300'::numeric + '0.000000000000000000000000000000000000000000000000000001'",
            ["c_text"] = "''", ["c_varchar"] = "'😀𝄞𠜎 ünï ✓\U0010FFFD'", ["c_bpchar"] = "'😀𝄞'", ["c_name"] = "repeat('n', 63)",
            ["c_bytea"] = """'\x000000ff0000'""",
            ["c_date"] = "'4713-01-01 BC'", ["c_ts"] = "'4713-01-01 00:00:00 BC'", ["c_ts3"] = "'1999-12-31 23:59:59.999'",
            ["c_tstz"] = "'294247-01-10 04:00:54.775807+00'", ["c_time"] = "'24:00:00'", ["c_timetz"] = "'00:00:00-15:59'",
            ["c_interval"] = "'178000000 years 2147483647 days 2562047:47:16.854775'",
            ["c_uuid"] = "'ffffffff-ffff-ffff-ffff-ffffffffffff'", ["c_json"] = "'[]'",
            ["c_jsonb"] = """'{"😀": "é", "n": 1.000, "z": null, "s": "\u00e9x"}'""",
            ["a_int4"] = "'{}'", ["a_text"] = "'{}'", ["a_varchar"] = "'{}'", ["a_num"] = "'{}'",
            ["a_float4"] = "'{1e-45,3.4028235e+38}'", ["a_float8"] = "'{5e-324,2.2250738585072014e-308,-1.7976931348623157e+308}'",
            ["a_bool"] = "'{}'", ["a_bytea"] = "'{}'", ["a_date"] = "'{4713-01-01 BC,5874897-12-31}'", ["a_time"] = "'{}'",
            ["a_tstz"] = "'{}'", ["a_interval"] = "'{}'", ["a_uuid"] = "'{}'", ["a_jsonb"] = "'{}'",
            ["c_mood"] = "'ünïcode 😀'", ["c_dom_int"] = "2147483647", ["c_dom_text"] = "''",
            ["c_inet"] = "'::ffff:1.2.3.4/128'", ["c_point"] = "'(1e+300,-0)'", ["c_money"] = "'-92233720368547758.08'",
            ["c_xml"] = "'<x>😀</x>'", ["c_tsvector"] = "''", ["c_range"] = "'empty'", ["c_bit"] = "B'0000'", ["a_inet"] = "'{}'",
        }),
        (3, new()), // every column NULL
        (4, new() // values Arrow cannot hold: null + exact text in _special
        {
            ["c_float4"] = "'NaN'", ["c_float8"] = "'-Infinity'",
            ["c_num_small"] = "'NaN'", ["c_num_38"] = "'NaN'", ["c_num_76"] = "'NaN'", ["c_num"] = "'Infinity'",
            ["c_text"] = "E'tab\\there\\nnewline 😀 \\u0001 end'",
            ["c_date"] = "'infinity'", ["c_ts"] = "'-infinity'", ["c_ts3"] = "'294276-12-31 23:59:59.999'", ["c_tstz"] = "'infinity'",
            ["c_interval"] = "'2562048 hours'", ["c_bytea"] = """'\x00'""",
            ["a_int4"] = "'{{1,2},{3,NULL}}'", ["a_text"] = "'[0:2]={a,b,c}'", ["a_num"] = "'{NaN,1}'",
            ["a_date"] = "'{infinity,2024-01-01,NULL}'", ["a_tstz"] = """'[2:2]={"2024-01-01 00:00:00+00"}'""",
            ["a_time"] = "'{{00:00:01}}'", ["a_float8"] = "'{{1,2}}'", ["a_interval"] = "'{2562048 hours}'",
            ["c_mood"] = "'with space'", ["c_dom_int"] = "1",
        }),
        (5, new() // a text value of a few MB (incompressible enough to be stored out of line), characters outside the BMP
        {
            ["c_int4"] = "5", ["c_text"] = "'big row'",
            ["c_big"] = "(SELECT string_agg(md5(i::text) || '😀', '' ORDER BY i) FROM generate_series(1, 80000) i)",
        }),
        (6, new() // the other ends
        {
            ["c_bool"] = "true", ["c_int2"] = "32767", ["c_int4"] = "-2147483648", ["c_int8"] = "9223372036854775807", ["c_oid"] = "0",
            ["c_float4"] = "'-0'", ["c_float8"] = "'-0'", ["c_num_small"] = "0.00", ["c_num_38"] = "0.0000000001",
            ["c_num_76"] = "-0.00000000000000000001", ["c_num"] = "'-Infinity'",
            ["c_text"] = "repeat('x', 10000)", ["c_bytea"] = """'\x'""",
            ["c_date"] = "'5874897-12-31'", ["c_ts"] = "'294247-01-10 04:00:54.775807'", ["c_ts3"] = "'0001-01-01 00:00:00 BC'",
            ["c_tstz"] = "'-infinity'", ["c_time"] = "'00:00:00'", ["c_timetz"] = "'24:00:00+15:59'",
            ["c_interval"] = "'-178000000 years -2147483648 days -2562047:47:16.854775'",
            ["c_uuid"] = "'00000000-0000-0000-0000-000000000000'", ["c_json"] = "'null'", ["c_jsonb"] = "'\"\"'",
            ["c_mood"] = "'sad'", ["c_dom_int"] = "1", ["c_dom_text"] = "'z'",
        }),
    ];

    /// <summary>The second transaction: updates (one changes the key; one leaves the big TOAST value unchanged).</summary>
    private static readonly (int Id, int NewId, string Set)[] s_updates =
    [
        (1, 1, "c_text = 'updated', c_float8 = 'NaN', c_num_38 = 'NaN', a_int4 = '{}', c_mood = 'ok', c_dom_int = 7, c_jsonb = '[1, {\"b\": 2}]'"),
        (5, 5, "c_int4 = 7"),
        (2, 20, "id = 20, c_text = 'key changed'"),
        (4, 4, "c_date = '2024-01-01', a_int4 = '{5}', c_ts = '2000-01-01 00:00:00', c_num_small = 1, c_num_38 = 2.5"),
        (6, 6, "c_bool = NULL, c_int8 = NULL, c_date = NULL, c_text = NULL, c_json = NULL"),
    ];

    /// <summary>The third transaction: deletes (of the all-NULL row, of the re-keyed row and of the big row).</summary>
    private static readonly int[] s_deletes = [3, 20, 5];

    private sealed record ExpectedChange(char Op, string?[]? New, string?[]? Old);

    [Fact]
    public async Task Every_mapped_type_goes_through_the_running_bridge_and_apache_arrow_reads_PostgreSQLs_own_values()
    {
        var database = await infrastructure.CreateDatabaseAsync("fidelity");
        var ddl = new StringBuilder("""
            CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'with space', 'ünïcode 😀');
            CREATE DOMAIN positive_int AS int4 CHECK (VALUE > 0);
            CREATE DOMAIN short_text AS text CHECK (length(VALUE) < 100);
            """);
        foreach (var table in new[] { "every_type", "every_type_full" })
        {
            ddl.Append(CultureInfo.InvariantCulture, $"CREATE TABLE {table} (");
            ddl.AppendJoin(", ", s_columns.Select(c => c.Name == "id" ? "id int4 PRIMARY KEY" : $"{c.Name} {c.Ddl}"));
            ddl.Append(");");
        }
        ddl.Append("ALTER TABLE every_type_full REPLICA IDENTITY FULL;");
        await infrastructure.Postgres.ExecuteAsync(ddl.ToString(), database);

        // Records of a few MB: the big row is far above the 1 MB default.
        var config = infrastructure.Config(database, "fidelity", new Dictionary<string, string> { ["kafka.message.max.bytes"] = "16000000" });
        var expected = new Dictionary<string, List<ExpectedChange>> { ["every_type"] = [], ["every_type_full"] = [] };

        await using (var pipeline = await RunningPipeline.StartAsync(config))
        {
            // The same session settings as the replication connection, except extra_float_digits=1 (what users see).
            await using var connection = new NpgsqlConnection(config.ConnectionString(replication: false));
            await connection.OpenAsync();
            await using (var transaction = await connection.BeginTransactionAsync())
            {
                foreach (var (id, values) in s_rows)
                {
                    foreach (var table in expected.Keys)
                    {
                        var sql = $"INSERT INTO {table} (id{string.Concat(values.Keys.Select(k => ", " + k))}) VALUES ({id}{string.Concat(values.Values.Select(v => ", " + v))})";
                        await ExecuteAsync(connection, transaction, sql);
                        expected[table].Add(new ExpectedChange('c', await TextsAsync(connection, transaction, table, id), null));
                    }
                }
                await transaction.CommitAsync();
            }
            await using (var transaction = await connection.BeginTransactionAsync())
            {
                foreach (var (id, newId, set) in s_updates)
                {
                    foreach (var table in expected.Keys)
                    {
                        var old = await TextsAsync(connection, transaction, table, id);
                        await ExecuteAsync(connection, transaction, $"UPDATE {table} SET {set} WHERE id = {id}");
                        expected[table].Add(new ExpectedChange('u', await TextsAsync(connection, transaction, table, newId), old));
                    }
                }
                await transaction.CommitAsync();
            }
            Lsn floor;
            await using (var transaction = await connection.BeginTransactionAsync())
            {
                foreach (var id in s_deletes)
                {
                    foreach (var table in expected.Keys)
                    {
                        var old = await TextsAsync(connection, transaction, table, id);
                        await ExecuteAsync(connection, transaction, $"DELETE FROM {table} WHERE id = {id}");
                        expected[table].Add(new ExpectedChange('d', null, old));
                    }
                }
                await using (var lsn = new NpgsqlCommand("SELECT pg_current_wal_insert_lsn()::text", connection, transaction))
                {
                    floor = Lsn.Parse((string)(await lsn.ExecuteScalarAsync())!);
                }

                await transaction.CommitAsync();
            }
            await pipeline.WaitForCommittedAsync(floor, s_catchUp);
        }

        await using (var connection = new NpgsqlConnection(config.ConnectionString(replication: false)))
        {
            await connection.OpenAsync();
            foreach (var (table, changes) in expected)
            {
                var full = table == "every_type_full";
                var records = KafkaRecord.ReadAll(infrastructure.Broker.BootstrapServers, config.TopicFor("public", table));
                // Three source transactions, all rows in one partition, in commit order (several may share a record).
                var documents = ArrowJsDump.Dump(records.Select(r => r.Value).ToList());
                var checkedValues = 0;
                var specials = 0;
                var unchanged = 0;
                var change = 0;
                for (var r = 0; r < records.Count; r++)
                {
                    var document = documents[r];
                    Assert.Equal(KafkaHeaders.ArrowStreamContentType, records[r].Header(KafkaHeaders.ContentType));
                    Assert.Equal($"public.{table}", records[r].Header(KafkaHeaders.Table));
                    AssertSchema(document, table, full);
                    var rows = (int)document["rows"]!;
                    Assert.Equal(rows.ToString(CultureInfo.InvariantCulture), records[r].Header(KafkaHeaders.Rows));
                    for (var row = 0; row < rows; row++, change++)
                    {
                        Assert.True(change < changes.Count, $"{table}: more rows in Kafka than changes made");
                        var counts = await AssertRowAsync(connection, table, full, document, row, changes[change]);
                        checkedValues += counts.Values;
                        specials += counts.Specials;
                        unchanged += counts.Unchanged;
                    }
                }
                Assert.Equal(changes.Count, change);
                var commitLsns = documents.SelectMany(d => ArrowJsDump.Column(d, "_commit_lsn").Select(c => ulong.Parse((string)c!, CultureInfo.InvariantCulture))).ToList();
                Assert.Equal(3, commitLsns.Distinct().Count());
                Assert.Equal(commitLsns.Order(), commitLsns);
                // Every row's columns were compared; the lossless paths were really taken.
                Assert.True(checkedValues > changes.Count * 40, $"{table}: only {checkedValues} values compared");
                Assert.True(specials >= 20, $"{table}: only {specials} values came from _special");
                // Under DEFAULT PostgreSQL does not send the unchanged big value (id 5's update): it must be marked as
                // such. Under FULL it sends the whole old row, so the value is known and may arrive in full (it is
                // compared like any other value above, or accepted as unchanged when it did not change).
                if (!full)
                {
                    Assert.True(unchanged >= 1, $"{table}: the unchanged TOAST value was never reported as unchanged");
                }
            }
        }

        await infrastructure.Postgres.ExecuteAsync($"SELECT pg_drop_replication_slot('{config.SlotName}')", database);
        if (Directory.Exists(config.StateDirectory))
        {
            Directory.Delete(config.StateDirectory, recursive: true);
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>PostgreSQL's <c>col::text</c> of every column of row <paramref name="id"/>, as the transaction sees it now.</summary>
    private static async Task<string?[]> TextsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string table, int id)
    {
        var sql = $"SELECT {string.Join(", ", s_columns.Select(c => TextOf(c.Name, c.Ddl)))} FROM {table} WHERE id = {id}";
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync(), $"row {id} of {table} not found");
        var texts = new string?[s_columns.Length];
        for (var i = 0; i < texts.Length; i++)
        {
            texts[i] = reader.IsDBNull(i) ? null : reader.GetString(i);
        }

        return texts;
    }

    /// <summary>
    /// <c>col::text</c>, except for the two types whose cast to text is a function rather than the type's output:
    /// <c>character(n)</c> (the cast strips the blank padding) and <c>inet</c> (the cast adds a /32 or /128 mask).
    /// For those the documented mapping holds the output function's text (what pgoutput sends, what
    /// <c>format('%s', col)</c> prints: <c>character(n)</c> keeps its padding).
    /// </summary>
    private static string TextOf(string column, string ddl) =>
        ddl.StartsWith("char(", StringComparison.Ordinal) || ddl == "inet" ? $"CASE WHEN {column} IS NOT NULL THEN format('%s', {column}) END" : $"{column}::text";

    private static void AssertSchema(JsonObject document, string table, bool full)
    {
        var fields = document["fields"]!.AsArray().Select(f => f!.AsObject()).ToList();
        var names = fields.Select(f => (string)f["name"]!).ToList();
        string[] expectedNames = ["_op", "_lsn", "_xid", "_commit_lsn", "_commit_ts", .. s_columns.Select(c => c.Name), "_before", "_unchanged", "_special"];
        Assert.Equal(expectedNames, names);
        var metadata = document["metadata"]!.AsArray().ToDictionary(p => (string)p![0]!, p => (string?)p![1]);
        Assert.Equal("public", metadata["pg.schema"]);
        Assert.Equal(table, metadata["pg.table"]);
        Assert.Equal(full ? "f" : "d", metadata["pg.replica_identity"]);
        // Under REPLICA IDENTITY FULL pgoutput flags every column; the connector reports the real primary key.
        Assert.Equal("id", metadata["pg.primary_key"]);
        var before = fields[^3]["children"]!.AsArray();
        for (var i = 0; i < s_columns.Length; i++)
        {
            foreach (var field in new[] { fields[i + 5], before[i]!.AsObject() })
            {
                Assert.True(s_columns[i].Arrow == Signature(field), $"{s_columns[i].Name}: apache-arrow reads {Signature(field)}, expected {s_columns[i].Arrow}");
                Assert.Equal(s_columns[i].PgType, ArrowJsDump.Meta(field, "pg.type"));
                Assert.NotNull(ArrowJsDump.Meta(field, "pg.typoid"));
            }
        }
        Assert.Equal("Utf8", Signature(fields[0]));
        Assert.Equal("UInt64", Signature(fields[1]));
        Assert.Equal("UInt32", Signature(fields[2]));
        Assert.Equal("UInt64", Signature(fields[3]));
        Assert.Equal("Timestamp:MICROSECOND:UTC", Signature(fields[4]));
        Assert.Equal("List<Utf8>", Signature(fields[^2]));
        Assert.Equal("Map", (string)fields[^1]["typeId"]!);
    }

    /// <summary>A compact description of the Arrow type apache-arrow decoded, e.g. <c>Decimal256(76,20)</c> or <c>List&lt;Int32&gt;</c>.</summary>
    private static string Signature(JsonObject field)
    {
        var typeId = (string)field["typeId"]!;
        var p = field["params"]!.AsObject();
        var signature = typeId switch
        {
            "Int" => $"{((bool)p["isSigned"]! ? "" : "U")}Int{(int)p["bitWidth"]!}",
            "Float" => $"Float:{(string)p["precision"]!}",
            "Decimal" => $"Decimal{(int)p["bitWidth"]!}({(int)p["precision"]!},{(int)p["scale"]!})",
            "Date" => $"Date:{(string)p["unit"]!}",
            "Time" => $"Time{(int)p["bitWidth"]!}:{(string)p["unit"]!}",
            "Timestamp" => $"Timestamp:{(string)p["unit"]!}" + ((string?)p["timezone"] is { } tz ? $":{tz}" : ""),
            "Interval" => $"Interval:{(string)p["unit"]!}",
            "FixedSizeBinary" => $"FixedSizeBinary{(int)p["byteWidth"]!}",
            "List" => $"List<{Signature(field["children"]!.AsArray()[0]!.AsObject())}>",
            _ => typeId,
        };
        return ArrowJsDump.Meta(field, "ARROW:extension:name") is { } extension ? $"{signature}+{extension}" : signature;
    }

    private readonly record struct Counts(int Values, int Specials, int Unchanged);

    /// <summary>Compares one decoded row with the change PostgreSQL made.</summary>
    private static async Task<Counts> AssertRowAsync(NpgsqlConnection connection, string table, bool full, JsonObject document, int row, ExpectedChange change)
    {
        var where = $"{table} change {change.Op} of id {change.New?[0] ?? change.Old?[0]}";
        Assert.Equal(change.Op.ToString(), (string)ArrowJsDump.Column(document, "_op")[row]!);
        Assert.True(ulong.Parse((string)ArrowJsDump.Column(document, "_lsn")[row]!, CultureInfo.InvariantCulture) > 0);
        var special = ArrowJsDump.Column(document, "_special")[row] is JsonArray entries
            ? entries.ToDictionary(e => (string)e![0]!, e => (string?)e![1])
            : [];
        var unchangedNames = ArrowJsDump.Column(document, "_unchanged")[row] is JsonArray names
            ? names.Select(n => (string)n!).ToHashSet()
            : [];
        Assert.True(special.Count > 0 || ArrowJsDump.Column(document, "_special")[row] is null);
        Assert.True(unchangedNames.Count > 0 || ArrowJsDump.Column(document, "_unchanged")[row] is null);

        // What PostgreSQL sent: the new row (insert, update) or the old row / old key (delete), and an old row for
        // _before under REPLICA IDENTITY FULL or when the key changed.
        string?[] KeyOnly(string?[] texts) => texts.Select((t, i) => i == 0 ? t : null).ToArray();
        var newRow = change.Op == 'd' ? (full ? change.Old : KeyOnly(change.Old!)) : change.New!;
        var beforeRow = change.Op != 'u' ? null
            : full ? change.Old
            : change.Old![0] != change.New![0] ? KeyOnly(change.Old!) : null;

        var comparisons = new List<(string What, string? Expected, string? Direct, string? Sql)>();
        var counts = new Counts();
        var fields = document["fields"]!.AsArray();
        var beforeCell = ArrowJsDump.Column(document, "_before")[row];
        var beforeFields = fields[^3]!["children"]!.AsArray();
        Assert.Equal(beforeRow is null, beforeCell is null);
        for (var i = 0; i < s_columns.Length; i++)
        {
            var name = s_columns[i].Name;
            var field = fields[i + 5]!.AsObject();
            var cell = ArrowJsDump.Column(document, name)[row];
            if (cell is null && unchangedNames.Contains(name))
            {
                // An unchanged TOAST value: only possible when the update did not touch it.
                Assert.True(change.Op == 'u' && change.Old![i] == change.New![i], $"{where}: {name} reported unchanged but it changed");
                Assert.False(special.ContainsKey(name));
                counts = counts with { Unchanged = counts.Unchanged + 1 };
                continue;
            }
            Add(comparisons, ref counts, $"{where}: {name}", newRow![i], field, cell, special, name);
            if (beforeRow is not null)
            {
                var beforeMember = beforeCell!.AsArray()[i];
                Assert.DoesNotContain($"_before.{name}", unchangedNames);
                Add(comparisons, ref counts, $"{where}: _before.{name}", beforeRow[i], beforeFields[i]!.AsObject(), beforeMember, special, $"_before.{name}");
            }
        }
        Assert.True(special.Keys.All(k => comparisons.Any(c => c.What.EndsWith(": " + k, StringComparison.Ordinal))), $"{where}: unexpected _special keys");

        // Non-trivial Arrow values are turned back into text by PostgreSQL, in one query per row.
        var sqlComparisons = comparisons.Where(c => c.Sql is not null).ToList();
        var rendered = new List<string?>();
        if (sqlComparisons.Count > 0)
        {
            var sql = "SELECT " + string.Join(", ", sqlComparisons.Select(c => $"({c.Sql})::text"));
            await using var command = new NpgsqlCommand(sql, connection);
            await using var reader = await command.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            for (var k = 0; k < sqlComparisons.Count; k++)
            {
                rendered.Add(reader.IsDBNull(k) ? null : reader.GetString(k));
            }
        }
        var next = 0;
        foreach (var c in comparisons)
        {
            var actual = c.Sql is null ? c.Direct : rendered[next++];
            Assert.True(c.Expected == actual,
                $"{c.What}: PostgreSQL has {Show(c.Expected)}, the Kafka payload (apache-arrow) gives {Show(actual)}" + (c.Sql is null ? "" : $" via {Show(c.Sql)}"));
        }
        return counts;
    }

    private static string Show(string? text) => text is null ? "NULL" : text.Length > 200 ? $"'{text[..200]}…' ({text.Length} chars)" : $"'{text}'";

    private static void Add(List<(string, string?, string?, string?)> comparisons, ref Counts counts, string what, string? expected,
        JsonObject field, JsonNode? cell, Dictionary<string, string?> special, string key)
    {
        counts = counts with { Values = counts.Values + 1 };
        if (cell is null)
        {
            // Null in the value column: a value Arrow cannot hold (text in _special), or SQL NULL.
            if (special.TryGetValue(key, out var text))
            {
                counts = counts with { Specials = counts.Specials + 1 };
                comparisons.Add((what, expected, text, null));
            }
            else
            {
                comparisons.Add((what, expected, null, null));
            }
            return;
        }
        Assert.False(special.ContainsKey(key), $"{what}: both a value and a _special entry");
        switch ((string)field["typeId"]!)
        {
            case "Utf8":
                comparisons.Add((what, expected, (string)cell!, null));
                break;
            case "Binary":
                comparisons.Add((what, expected, "\\x" + (string)cell!, null));
                break;
            default:
                comparisons.Add((what, expected, null, Sql(cell, field)));
                break;
        }
    }

    /// <summary>
    /// An SQL expression of the column's PostgreSQL type (pg.type) whose value is what the Arrow cell means under the
    /// documented mapping. Built from the exact stored integers dump.js prints (never from JS dates or numbers, except
    /// floats, whose shortest round-trip text parses back to the same IEEE value).
    /// </summary>
    private static string Sql(JsonNode? cell, JsonObject field)
    {
        var pgType = ArrowJsDump.Meta(field, "pg.type") ?? throw new InvalidOperationException("no pg.type");
        if (cell is null)
        {
            return $"NULL::{pgType}";
        }

        var p = field["params"]!.AsObject();
        switch ((string)field["typeId"]!)
        {
            case "Bool":
                return (bool)cell ? "true" : "false";
            case "Int":
                return $"{Literal(Raw(cell))}::{pgType}";
            case "Float":
                return (string)p["precision"]! == "SINGLE" ? $"({Literal(Raw(cell))}::float8)::real" : $"{Literal(Raw(cell))}::float8";
            case "Decimal":
                return $"{Literal(Scaled(BigInteger.Parse((string)cell!, CultureInfo.InvariantCulture), (int)p["scale"]!))}::{pgType}";
            case "Utf8":
                return $"{Literal((string)cell!)}::{pgType}";
            case "Binary":
                return $"{Literal("\\x" + (string)cell!)}::bytea";
            case "FixedSizeBinary":
                Assert.Equal("arrow.uuid", ArrowJsDump.Meta(field, "ARROW:extension:name"));
                return $"{Literal((string)cell!)}::uuid";
            case "Date":
                Assert.Equal("DAY", (string)p["unit"]!);
                return $"('1970-01-01'::date + '{long.Parse((string)cell!, CultureInfo.InvariantCulture)}'::int4)";
            case "Timestamp":
                {
                    Assert.Equal("MICROSECOND", (string)p["unit"]!);
                    var micros = BigInteger.Parse((string)cell!, CultureInfo.InvariantCulture);
                    var days = BigInteger.Divide(micros - Mod(micros, 86_400_000_000), 86_400_000_000);
                    var epoch = (string?)p["timezone"] is null ? "'1970-01-01 00:00:00'::timestamp" : "'1970-01-01 00:00:00+00'::timestamptz";
                    return $"({epoch} + make_interval(days => '{days}'::int4) + '{Mod(micros, 86_400_000_000)} microseconds'::interval)::{pgType}";
                }
            case "Time":
                {
                    Assert.Equal("MICROSECOND", (string)p["unit"]!);
                    var micros = long.Parse((string)cell!, CultureInfo.InvariantCulture);
                    Assert.InRange(micros, 0, 86_400_000_000);
                    var text = string.Create(CultureInfo.InvariantCulture,
                        $"{micros / 3_600_000_000:D2}:{micros / 60_000_000 % 60:D2}:{micros / 1_000_000 % 60:D2}.{micros % 1_000_000:D6}");
                    return $"'{text}'::{pgType}";
                }
            case "Interval":
                {
                    Assert.Equal("MONTH_DAY_NANO", (string)p["unit"]!);
                    var parts = cell.AsArray();
                    var nanos = BigInteger.Parse((string)parts[2]!, CultureInfo.InvariantCulture);
                    Assert.True(Mod(nanos, 1000) == 0, $"interval nanoseconds {nanos} are not whole microseconds");
                    return $"(make_interval(months => '{(int)parts[0]!}'::int4, days => '{(int)parts[1]!}'::int4) + '{nanos / 1000} microseconds'::interval)";
                }
            case "List":
                {
                    var child = field["children"]!.AsArray()[0]!.AsObject();
                    var items = cell.AsArray();
                    return items.Count == 0 ? $"'{{}}'::{pgType}" : $"ARRAY[{string.Join(", ", items.Select(item => Sql(item, child)))}]::{pgType}";
                }
            default:
                throw new NotSupportedException($"no SQL rendering for Arrow type {field["type"]}");
        }
    }

    /// <summary>A JSON cell's exact text: numbers as written by JSON.stringify (shortest round trip), strings as they are.</summary>
    private static string Raw(JsonNode cell) =>
        cell.GetValueKind() == JsonValueKind.String ? (string)cell! : cell.ToJsonString();

    private static BigInteger Mod(BigInteger value, BigInteger modulus) => ((value % modulus) + modulus) % modulus;

    private static string Scaled(BigInteger unscaled, int scale)
    {
        var digits = BigInteger.Abs(unscaled).ToString(CultureInfo.InvariantCulture).PadLeft(scale + 1, '0');
        var text = scale == 0 ? digits : $"{digits[..^scale]}.{digits[^scale..]}";
        return unscaled.Sign < 0 ? "-" + text : text;
    }

    private static string Literal(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";
}
