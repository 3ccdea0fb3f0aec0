using System.Globalization;

namespace WalBridge.Bench;

/// <summary>
/// One benchmark workload: its table, what is loaded before the slots exist (not measured), the
/// changes every path then drains (bulk part in autocommit, final transaction from the client so the
/// target position can be taken inside it), or for W5 a paced live workload.
/// </summary>
internal sealed class Workload
{
    public required string Id { get; init; }
    public required string Title { get; init; }
    public required string Table { get; init; }
    /// <summary>Row changes every path must deliver.</summary>
    public required long Rows { get; init; }
    public required long Transactions { get; init; }
    public required string SchemaSql { get; init; }
    public string? PrepareSql { get; init; }
    public string? BulkSql { get; init; }
    public string? FinalSql { get; init; }
    /// <summary>W5, W5b: transactions per second offered and seconds of the live workload.</summary>
    public int LatencyRate { get; init; }
    public int LatencySeconds { get; init; }
    /// <summary>Connections writing the live workload together (each paced at its share of the rate).</summary>
    public int LatencyWriters { get; init; } = 1;
    public bool IsLatency => LatencyRate > 0;
    /// <summary>W6: the <c>snapshot.max.threads</c> values the initial snapshot of the loaded table is measured with (empty for the other workloads).</summary>
    public IReadOnlyList<int> SnapshotThreads { get; init; } = [];
    public bool IsSnapshot => SnapshotThreads.Count > 0;

    /// <summary>Every workload id, in run order.</summary>
    public static readonly IReadOnlyList<string> Ids = ["W1", "W2", "W3", "W4", "W5", "W5b", "W6"];

    /// <summary>The throughput workloads the compression comparison runs by default.</summary>
    public static readonly IReadOnlyList<string> CompressionIds = ["W1", "W2", "W3"];

    private const string Columns =
        "id bigint PRIMARY KEY, account int NOT NULL, amount numeric(12,2) NOT NULL, note text NOT NULL, label text NOT NULL, " +
        "created_at timestamptz NOT NULL, active bool NOT NULL, quantity int NOT NULL";

    /// <summary>The 8 columns of W1/W2/W4 rows for ids from <paramref name="from"/> to <paramref name="to"/> (SQL expressions, may use plpgsql variables).</summary>
    private static string Rows8(string table, string from, string to) =>
        $"INSERT INTO {table} SELECT g, (g % 100000)::int, round((g % 1000000) / 100.0, 2), md5(g::text) || md5((g + 1)::text), " +
        $"'customer-' || (g % 5000), timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second', g % 2 = 0, (g % 1000)::int " +
        $"FROM generate_series({from}, {to}) g";

    private static string N(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <param name="quick">Scaled-down workloads.</param>
    /// <param name="scale">A further factor on every size and duration (1 = as documented; smoke runs use e.g. 0.05).</param>
    public static IReadOnlyList<Workload> Create(bool quick, double scale = 1.0)
    {
        const int TxRows = 1000;
        long Scaled(long full, long min) => Math.Max(min, (long)Math.Round(full * scale));
        // W1 and W3 are whole 1,000-row transactions, W3 at least 2,000 rows (its delete loop needs two transactions).
        var w1Rows = Scaled(quick ? 100_000L : 1_000_000L, 2 * TxRows) / TxRows * TxRows;
        var w1Tx = w1Rows / TxRows;
        var w2Tx = Scaled(quick ? 10_000L : 100_000L, 10);
        var w3Rows = Scaled(quick ? 10_000L : 100_000L, 4 * TxRows) / (2 * TxRows) * (2 * TxRows);
        var w3Updates = w3Rows / TxRows;
        var w3Deletes = w3Rows / 2 / TxRows;
        var w4Rows = Scaled(quick ? 500_000L : 5_000_000L, 1000);
        var w5Seconds = (int)Scaled(quick ? 5 : 30, 2);
        const int W5bRate = 10_000;
        var w6Rows = Scaled(quick ? 200_000L : 5_000_000L, 1000);
        return
        [
            new Workload
            {
                Id = "W1",
                Title = $"{w1Rows:N0} inserts, 8 columns, {TxRows:N0}-row transactions",
                Table = "w1",
                Rows = w1Rows,
                Transactions = w1Tx,
                SchemaSql = $"CREATE TABLE w1 ({Columns})",
                BulkSql = $"DO $$ BEGIN FOR t IN 0..{N(w1Tx - 2)} LOOP {Rows8("w1", $"t * {TxRows} + 1", $"t * {TxRows} + {TxRows}")}; COMMIT; END LOOP; END $$",
                FinalSql = Rows8("w1", N((w1Tx - 1) * TxRows + 1), N(w1Tx * TxRows)),
            },
            new Workload
            {
                Id = "W2",
                Title = $"{w2Tx:N0} single-row transactions",
                Table = "w2",
                Rows = w2Tx,
                Transactions = w2Tx,
                SchemaSql = $"CREATE TABLE w2 ({Columns})",
                BulkSql = $"DO $$ BEGIN FOR i IN 1..{N(w2Tx - 1)} LOOP {Rows8("w2", "i", "i")}; COMMIT; END LOOP; END $$",
                FinalSql = Rows8("w2", N(w2Tx), N(w2Tx)),
            },
            new Workload
            {
                Id = "W3",
                Title = $"{w3Rows:N0} updates + {w3Rows / 2:N0} deletes, REPLICA IDENTITY FULL, 2 KB text + jsonb, {TxRows:N0}-row transactions",
                Table = "w3",
                Rows = w3Rows + w3Rows / 2,
                Transactions = w3Updates + w3Deletes,
                SchemaSql = "CREATE TABLE w3 (id bigint PRIMARY KEY, n int NOT NULL, body text NOT NULL, doc jsonb NOT NULL); ALTER TABLE w3 REPLICA IDENTITY FULL",
                PrepareSql =
                    "INSERT INTO w3 SELECT g, 0, (SELECT string_agg(md5((g * 64 + i)::text), '') FROM generate_series(1, 64) i), " +
                    "jsonb_build_object('id', g, 'name', 'item-' || g, 'score', 0, 'tags', jsonb_build_array('red', 'green', 'blue'), " +
                    $"'attributes', jsonb_build_object('weight', g % 97, 'size', 'L')) FROM generate_series(1, {N(w3Rows)}) g",
                BulkSql =
                    $"DO $$ BEGIN FOR t IN 0..{N(w3Updates - 1)} LOOP " +
                    $"UPDATE w3 SET n = n + 1, doc = jsonb_set(doc, '{{score}}', to_jsonb(n + 1)) WHERE id BETWEEN t * {TxRows} + 1 AND t * {TxRows} + {TxRows}; COMMIT; END LOOP; " +
                    $"FOR t IN 0..{N(w3Deletes - 2)} LOOP DELETE FROM w3 WHERE id BETWEEN t * {TxRows} + 1 AND t * {TxRows} + {TxRows}; COMMIT; END LOOP; END $$",
                FinalSql = $"DELETE FROM w3 WHERE id BETWEEN {N((w3Deletes - 1) * TxRows + 1)} AND {N(w3Deletes * TxRows)}",
            },
            new Workload
            {
                Id = "W4",
                Title = $"one {w4Rows:N0}-row transaction (memory)",
                Table = "w4",
                Rows = w4Rows,
                Transactions = 1,
                SchemaSql = $"CREATE TABLE w4 ({Columns})",
                FinalSql = Rows8("w4", "1", N(w4Rows)),
            },
            new Workload
            {
                Id = "W5",
                Title = $"latency: 1,000 single-row transactions/s for {w5Seconds} s, synchronous_commit=on",
                Table = "w5",
                Rows = 1000L * w5Seconds,
                Transactions = 1000L * w5Seconds,
                SchemaSql = $"CREATE TABLE w5 ({Columns}, sent_us bigint NOT NULL)",
                LatencyRate = 1000,
                LatencySeconds = w5Seconds,
            },
            new Workload
            {
                Id = "W5b",
                Title = $"sustained: {W5bRate:N0} single-row transactions/s offered for {w5Seconds} s, synchronous_commit=on, 4 writers",
                Table = "w5b",
                Rows = (long)W5bRate * w5Seconds,
                Transactions = (long)W5bRate * w5Seconds,
                SchemaSql = $"CREATE TABLE w5b ({Columns}, sent_us bigint NOT NULL)",
                LatencyRate = W5bRate,
                LatencySeconds = w5Seconds,
                LatencyWriters = 4,
            },
            new Workload
            {
                Id = "W6",
                Title = $"initial snapshot of a {w6Rows:N0}-row, 8-column table, snapshot.max.threads 2 (default) and 4",
                Table = "w6",
                Rows = w6Rows,
                Transactions = 0,
                SchemaSql = $"CREATE TABLE w6 ({Columns})",
                // Loaded, frozen (no hint-bit writes while reading) and analysed (the chunk plan reads pg_class) before any slot exists.
                PrepareSql = Rows8("w6", "1", N(w6Rows)),
                SnapshotThreads = [2, 4],
            },
        ];
    }

    /// <summary>The live workloads' single-row insert into <paramref name="table"/>; $1 is the id, <c>sent_us</c> is the wall clock when the row is written.</summary>
    public static string LatencyInsertSql(string table) =>
        $"INSERT INTO {table} SELECT g, (g % 100000)::int, round((g % 1000000) / 100.0, 2), md5(g::text) || md5((g + 1)::text), " +
        "'customer-' || (g % 5000), clock_timestamp(), g % 2 = 0, (g % 1000)::int, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint " +
        "FROM (SELECT $1::bigint AS g) s";
}
