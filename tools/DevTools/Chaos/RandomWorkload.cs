using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Npgsql;
using WalBridge.Connector.Cli;
using WalBridge.Offsets;

namespace WalBridge.DevTools.Chaos;

/// <summary>What became of a logical decoding message the workload emitted, as far as the workload knows.</summary>
internal enum MessageFate
{
    /// <summary>Must be delivered exactly once.</summary>
    Delivered,
    /// <summary>Must never be delivered (its transaction or subtransaction rolled back).</summary>
    NotDelivered,
    /// <summary>
    /// Transactional: the commit's outcome is unknown (the connection broke during COMMIT), the source decides
    /// (<c>rnd_messages</c>). Non-transactional: not known to be flushed to WAL before a crash; at most once.
    /// </summary>
    Unknown,
}

/// <summary>One <c>pg_logical_emit_message</c> call of the workload.</summary>
internal sealed class EmittedMessage
{
    public required string Id { get; init; }
    public required string Prefix { get; init; }
    public required byte[] Content { get; init; }
    public required bool Transactional { get; init; }
    /// <summary>Where it was emitted, for failure output (transaction, savepoints, streamed or not).</summary>
    public required string Context { get; set; }
    /// <summary>The savepoints around it when it was emitted (innermost last).</summary>
    public required IReadOnlyList<RandomWorkload.Savepoint> Savepoints { get; init; }
    public bool InLargeTransaction { get; init; }
    public MessageFate Fate { get; set; } = MessageFate.Unknown;
}

/// <summary>
/// The randomized end-to-end workload (<c>connector chaos --workload random</c>): a seeded generator over a wide
/// schema — every mapped type with edge values, REPLICA IDENTITY DEFAULT, FULL with and without a primary key, USING
/// INDEX, tables without a key holding identical rows, TOAST values updated and left untouched, key updates — running
/// random transactions: multi-table mixes of inserts, updates and deletes, savepoints rolled back or released with rows
/// and transactional logical messages inside, non-transactional messages, rolled-back transactions, large transactions
/// that PostgreSQL streams (with rolled-back savepoints inside), TRUNCATE (alone or among other changes, in rolled-back
/// savepoints too), ALTER TABLE ADD COLUMN / DROP COLUMN / ALTER TYPE / REPLICA IDENTITY. A second session runs small
/// transactions concurrently, so streamed transactions interleave with others.
/// </summary>
/// <remarks>
/// Rows are chosen by SQL (<c>id &gt;= r ORDER BY id LIMIT k</c>, <c>ctid</c> for tables without a key), so the
/// generator needs no exact model of the tables and survives commits of unknown outcome. Every transactional message
/// is recorded in <c>rnd_messages</c> in the same subtransaction, so the source itself tells which committed.
/// </remarks>
internal sealed partial class RandomWorkload : IChaosWorkload
{
    /// <summary>Parts of the workload that <c>--without</c> can leave out, to narrow a failure down.</summary>
    public static readonly IReadOnlyDictionary<string, string> Features = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["bc-dates"] = "BC dates and timestamps among the edge values",
        ["full-toast-unchanged"] = "updates of REPLICA IDENTITY FULL rows that leave a TOASTed value unchanged",
        ["rollback-messages"] = "transactional messages in rolled-back savepoints (PostgreSQL streams any transaction over logical_decoding_work_mem, large TOAST values included)",
        ["text-kept"] = "the table of types kept as text (makes binary.format=auto switch to text tuples)",
        ["large"] = "large transactions PostgreSQL streams",
        ["truncate"] = "TRUNCATE",
        ["ddl"] = "ALTER TABLE",
        ["side"] = "the concurrent second session",
    };

    public const string MessagesTable = "rnd_messages";

    /// <summary>One row per committed workload transaction: its label, xid and the tables it changed.</summary>
    public const string TransactionsTable = "rnd_txlog";

    /// <summary>Columns of the two wide tables: every type with a native Arrow mapping (binary-capable), domains, a TOAST column.</summary>
    private static readonly (string Name, string Ddl, Func<RandomValues, string> Value)[] s_wideColumns =
    [
        ("c_bool", "bool", v => v.Bool()),
        ("c_int2", "int2", v => v.Int2()),
        ("c_int4", "int4", v => v.Int4()),
        ("c_int8", "int8", v => v.Int8()),
        ("c_oid", "oid", v => v.Oid()),
        ("c_float4", "float4", v => v.Float4()),
        ("c_float8", "float8", v => v.Float8()),
        ("c_num_small", "numeric(5,2)", v => v.Numeric(5, 2)),
        ("c_num_38", "numeric(38,10)", v => v.Numeric(38, 10)),
        ("c_num_76", "numeric(76,20)", v => v.Numeric(76, 20)),
        ("c_num_int", "numeric(40,0)", v => v.Numeric(40, 0)),
        ("c_num", "numeric", v => v.NumericAny()),
        ("c_text", "text", v => v.Text()),
        ("c_varchar", "varchar(20)", v => v.Varchar(20)),
        ("c_bpchar", "char(5)", v => v.Bpchar(5)),
        ("c_name", "name", v => v.Name()),
        ("c_bytea", "bytea", v => v.Bytea()),
        ("c_date", "date", v => v.Date()),
        ("c_ts", "timestamp", v => v.Timestamp()),
        ("c_ts3", "timestamp(3)", v => v.Timestamp(3)),
        ("c_tstz", "timestamptz", v => v.TimestampTz()),
        ("c_time", "time", v => v.Time()),
        ("c_interval", "interval", v => v.Interval()),
        ("c_uuid", "uuid", v => v.Uuid()),
        ("c_json", "json", v => v.Json()),
        ("c_jsonb", "jsonb", v => v.Jsonb()),
        ("a_int2", "int2[]", v => v.Array("int2", () => v.Int2().Replace("NULL", "0", StringComparison.Ordinal))),
        ("a_int4", "int4[]", v => v.Int4Array()),
        ("a_int8", "int8[]", v => v.Array("int8", () => v.Random.NextInt64(long.MinValue, long.MaxValue).ToString(CultureInfo.InvariantCulture))),
        ("a_text", "text[]", v => v.Array("text", () => RandomValues.Literal(v.TextValue(12)))),
        ("a_varchar", "varchar(3)[]", v => v.Array("varchar(3)", () => RandomValues.Literal(v.TextValue(3)))),
        ("a_num", "numeric(10,2)[]", v => v.Array("numeric(10,2)", () => RandomValues.Typed(v.NumericText(10, 2), "numeric"))),
        ("a_numany", "numeric[]", v => v.Array("numeric", () => v.Chance(20) ? "'Infinity'::numeric" : RandomValues.Typed(v.NumericText(30, 12), "numeric"))),
        ("a_float4", "float4[]", v => v.Array("float4", () => RandomValues.Typed(v.Float4Text(), "float4"))),
        ("a_float8", "float8[]", v => v.Array("float8", () => RandomValues.Typed(v.Float8Text(), "float8"))),
        ("a_bool", "bool[]", v => v.Array("bool", () => v.Chance(50) ? "true" : "false")),
        ("a_bytea", "bytea[]", v => v.Array("bytea", () => v.Chance(20) ? "'\\x'::bytea" : $"'\\x{v.Random.Next():x8}00'::bytea")),
        ("a_date", "date[]", v => v.Array("date", () => RandomValues.Typed(v.DateValueText(), "date"))),
        ("a_ts", "timestamp[]", v => v.Array("timestamp", () => RandomValues.Typed(v.TimestampText(), "timestamp"))),
        ("a_tstz", "timestamptz[]", v => v.Array("timestamptz", () => RandomValues.Typed(v.TimestampTzText(), "timestamptz"))),
        ("a_time", "time[]", v => v.Array("time", () => v.Chance(20) ? "'24:00:00'::time" : $"'{v.Random.Next(24):D2}:{v.Random.Next(60):D2}:{v.Random.Next(60):D2}.{v.Random.Next(1000000):D6}'::time")),
        ("a_interval", "interval[]", v => v.Array("interval", () => RandomValues.Typed(v.IntervalText(), "interval"))),
        ("a_uuid", "uuid[]", v => v.Array("uuid", () => RandomValues.Typed(v.UuidText(), "uuid"))),
        ("a_json", "json[]", v => v.Array("json", () => RandomValues.Typed(v.JsonText(), "json"))),
        ("a_jsonb", "jsonb[]", v => v.Array("jsonb", () => RandomValues.Typed(v.JsonText(), "jsonb"))),
        ("m_int4", "int4[]", v => v.MultiDimensionalInt4()),
        ("c_dom_int", "rnd_posint", v => v.Chance(10) ? "NULL" : v.Pick(["1", "2147483647", v.Random.Next(1, int.MaxValue).ToString(CultureInfo.InvariantCulture)])),
        ("c_dom_text", "rnd_label", v => v.Chance(10) ? "NULL" : RandomValues.Literal(v.TextValue(40))),
        ("c_dom_price", "rnd_price", v => v.Chance(10) ? "NULL" : RandomValues.Typed(v.NumericText(10, 2), "numeric")),
        ("c_dom_ids", "rnd_ids", v => v.Int4Array()),
        ("c_big", "text", _ => "NULL"), // set by Big()
    ];

    /// <summary>Columns of types kept as PostgreSQL text (pgoutput text format only).</summary>
    private static readonly (string Name, string Ddl, Func<RandomValues, string> Value)[] s_textKeptColumns =
    [
        ("c_mood", "rnd_mood", v => v.Chance(10) ? "NULL" : v.Text(["sad", "ok", "happy", "with space", "ünïcode 😀", "quote's", "NULL"])),
        ("c_inet", "inet", v => v.Chance(10) ? "NULL" : v.Text(["192.168.0.1/24", "10.0.0.1", "::1", "::ffff:1.2.3.4/128", "2001:db8::/32", "0.0.0.0/0"])),
        ("c_cidr", "cidr", v => v.Chance(10) ? "NULL" : v.Text(["10.0.0.0/8", "192.168.100.128/25", "2001:db8::/48", "::/0"])),
        ("c_mac", "macaddr", v => v.Chance(10) ? "NULL" : RandomValues.Literal($"08:00:2b:{v.Random.Next(256):x2}:{v.Random.Next(256):x2}:{v.Random.Next(256):x2}")),
        ("c_timetz", "timetz", v => v.Chance(10) ? "NULL" : v.Text(["12:34:56.5+05:30", "00:00:00-15:59", "24:00:00+15:59", "23:59:59.999999+00"])),
        ("c_money", "money", v => v.Chance(10) ? "NULL" : v.Pick(["12.34", "'-92233720368547758.08'", "'92233720368547758.07'", "0"])),
        ("c_point", "point", v => v.Chance(10) ? "NULL" : v.Text(["(1.5,-2)", "(1e+300,-0)", "(0,0)", "(NaN,Infinity)"])),
        ("c_range", "int4range", v => v.Chance(10) ? "NULL" : v.Text(["[1,10)", "empty", "(,)", "[-2147483648,2147483647)", "(5,]"])),
        ("c_tsrange", "tstzrange", v => v.Chance(10) ? "NULL" : v.Text(["[2024-01-01 00:00:00+00,infinity)", "empty", "(-infinity,2000-01-01 12:00:00+05:30]"])),
        ("c_bit", "bit(4)", v => v.Chance(10) ? "NULL" : v.Pick(["B'1010'", "B'0000'", "B'1111'"])),
        ("c_varbit", "varbit", v => v.Chance(10) ? "NULL" : v.Pick(["B''", "B'1'", "B'10101010101010101'"])),
        ("c_tsvector", "tsvector", v => v.Chance(10) ? "NULL" : v.Text(["a fat cat", "", "'quoted word' x:1A y:2B,3", "ünï 😀"])),
        ("c_xml", "xml", v => v.Chance(10) ? "NULL" : v.Text(["<a x=\"1\">t</a>", "<x>😀</x>", "text only", "<e/>"])),
        ("a_inet", "inet[]", v => v.Chance(10) ? "NULL" : v.Text(["{10.0.0.1,::1,NULL}", "{}", "{192.168.0.1/24}"])),
        ("a_mood", "rnd_mood[]", v => v.Chance(10) ? "NULL" : v.Text(["{sad,happy}", "{}", "{NULL,\"with space\"}"])),
        ("c_host", "rnd_host", v => v.Chance(10) ? "NULL" : v.Text(["127.0.0.1", "fe80::1/64"])),
        ("a_label", "rnd_label[]", v => v.Chance(10) ? "NULL" : v.Text(["{a,b}", "{}", "{\"x y\",NULL}"])),
        ("c_ts_dom", "rnd_stamp", v => v.Chance(10) ? "NULL" : RandomValues.Typed(v.TimestampText(), "timestamp")),
    ];

    private static readonly string s_wideColumnDdl = string.Join(", ", s_wideColumns.Select(c => $"{c.Name} {c.Ddl}"));

    /// <summary>The schema, created before the slot.</summary>
    public static readonly string Schema = $"""
        CREATE TYPE rnd_mood AS ENUM ('sad', 'ok', 'happy', 'with space', 'ünïcode 😀', 'quote''s', 'NULL');
        CREATE DOMAIN rnd_posint AS int4 CHECK (VALUE > 0);
        CREATE DOMAIN rnd_label AS text CHECK (length(VALUE) < 200);
        CREATE DOMAIN rnd_price AS numeric(10,2);
        CREATE DOMAIN rnd_ids AS int4[];
        CREATE DOMAIN rnd_host AS inet;
        CREATE DOMAIN rnd_stamp AS timestamp(2);
        CREATE TABLE rnd_wide (id int4 PRIMARY KEY, {s_wideColumnDdl});
        CREATE TABLE rnd_wide_full (id int4 PRIMARY KEY, {s_wideColumnDdl});
        ALTER TABLE rnd_wide_full REPLICA IDENTITY FULL;
        CREATE TABLE rnd_nokey (grp int4, n int8, f8 float8, t text, d date, ts timestamptz, nm numeric(12,3), b bytea, j jsonb, big text);
        ALTER TABLE rnd_nokey REPLICA IDENTITY FULL;
        CREATE TABLE rnd_dups (grp int2, v text, x int4);
        ALTER TABLE rnd_dups REPLICA IDENTITY FULL;
        CREATE TABLE rnd_idx (k1 text NOT NULL, k2 int8 NOT NULL, v numeric, note varchar(50), flag bool, big text);
        CREATE UNIQUE INDEX rnd_idx_key ON rnd_idx (k1, k2);
        ALTER TABLE rnd_idx REPLICA IDENTITY USING INDEX rnd_idx_key;
        CREATE TABLE rnd_text_kept (id int8 PRIMARY KEY, {string.Join(", ", s_textKeptColumns.Select(c => $"{c.Name} {c.Ddl}"))});
        CREATE TABLE rnd_ddl (id int4 PRIMARY KEY, a text, b int4);
        CREATE TABLE rnd_bulk (id int8 GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, batch int4 NOT NULL, payload text, n numeric(20,4), at timestamptz);
        CREATE TABLE rnd_side (id int8 PRIMARY KEY, v int4, t text, at timestamp);
        CREATE TABLE {MessagesTable} (id text PRIMARY KEY, prefix text NOT NULL, context text);
        CREATE TABLE {TransactionsTable} (label text PRIMARY KEY, xid int8 NOT NULL, tables text NOT NULL);
        """;

    private static readonly string[] s_tables =
        ["rnd_wide", "rnd_wide_full", "rnd_nokey", "rnd_dups", "rnd_idx", "rnd_text_kept", "rnd_ddl", "rnd_bulk", "rnd_side", MessagesTable, TransactionsTable];

    private static readonly string[] s_ddlTypes =
        ["integer", "bigint", "text", "character varying(30)", "numeric(12,2)", "timestamp with time zone", "boolean", "jsonb", "double precision", "date", "integer[]"];

    private readonly string _connectionString;
    private readonly HashSet<string> _without;
    private readonly SemaphoreSlim _gate = new(0, 2);
    private readonly ConcurrentDictionary<string, EmittedMessage> _messages = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _errors = new();
    private readonly List<Session> _sessions = [];
    private volatile bool _paused;
    private long _transactions;
    private long _rolledBack;
    private long _unknown;
    private long _rowChanges;
    private long _errorCount;
    private long _largeTransactions;
    private long _ddl;
    private long _truncates;
    // Row ids only grow, so no insert collides, whatever the outcome of earlier commits.
    private int _nextWide = 1;
    private int _nextWideFull = 1;
    private long _nextIdx = 1;
    private long _nextTextKept = 1;
    private int _nextDdl = 1;
    private int _nextDdlColumn = 1;
    private long _nextSide = 1;
    private int _nextBatch = 1;
    private long _salt;

    public RandomWorkload(string connectionString, int seed, IEnumerable<string> without)
    {
        _connectionString = connectionString;
        Seed = seed;
        _without = new HashSet<string>(without, StringComparer.Ordinal);
        foreach (var feature in _without)
        {
            if (!Features.ContainsKey(feature))
            {
                throw new UsageException($"--without: unknown feature '{feature}'; known: {string.Join(", ", Features.Keys)}.");
            }
        }
    }

    public int Seed { get; }

    public IReadOnlyList<string> TableNames => s_tables;

    public long Transactions => Interlocked.Read(ref _transactions);
    public long RolledBack => Interlocked.Read(ref _rolledBack);
    public long UnknownOutcomes => Interlocked.Read(ref _unknown);
    public long RowChanges => Interlocked.Read(ref _rowChanges);
    public long LargeTransactions => Interlocked.Read(ref _largeTransactions);
    public long DdlTransactions => Interlocked.Read(ref _ddl);
    public long Truncates => Interlocked.Read(ref _truncates);

    /// <summary>Statements of the workload that PostgreSQL rejected (a generator bug): count and the first few.</summary>
    public long ErrorCount => Interlocked.Read(ref _errorCount);
    public IReadOnlyCollection<string> Errors => _errors;

    public IReadOnlyCollection<EmittedMessage> Messages => (IReadOnlyCollection<EmittedMessage>)_messages.Values;

    public IReadOnlySet<string> Without => _without;

    private bool Has(string feature) => !_without.Contains(feature);

    public void Dispose() => _gate.Dispose();

    public void Enable() => _gate.Release(2);

    public void Pause() => _paused = true;

    public void Resume() => _paused = false;

    public Task RunAsync(CancellationToken cancellationToken)
    {
        var main = new Session("a", Seed, Has("bc-dates"));
        _sessions.Add(main);
        var tasks = new List<Task> { RunSessionAsync(main, MainTransactionAsync, cancellationToken) };
        if (Has("side"))
        {
            var side = new Session("b", unchecked((Seed * 31) + 7), Has("bc-dates"));
            _sessions.Add(side);
            tasks.Add(RunSessionAsync(side, SideTransactionAsync, cancellationToken));
        }
        return Task.WhenAll(tasks);
    }

    /// <summary>A savepoint (subtransaction) of the workload; whether it was rolled back is known when it closes.</summary>
    internal sealed class Savepoint(string name)
    {
        public string Name { get; } = name;
        public bool RolledBack { get; set; }
    }

    /// <summary>One client session with its own seeded generator.</summary>
    private sealed class Session(string name, int seed, bool bcDates)
    {
        public string Name { get; } = name;
        public Random Random { get; } = new(seed);
        public RandomValues Values { get; } = new(new Random(seed ^ 0x5EED), bcDates);
        public long MessageCounter { get; set; }
        public long TransactionCounter { get; set; }
        /// <summary>Non-transactional messages emitted since this session's last successful commit (not known to be flushed).</summary>
        public List<EmittedMessage> Unflushed { get; } = [];
        public Dictionary<string, List<(string Name, string Type)>> Columns { get; } = new(StringComparer.Ordinal);
        public bool Committing { get; set; }
    }

    /// <summary>The transaction being run: its label, open savepoints and messages.</summary>
    private sealed class Transaction(NpgsqlTransaction handle, string label, bool large)
    {
        public NpgsqlTransaction Handle { get; } = handle;
        public string Label { get; } = label;
        public bool Large { get; } = large;
        public List<Savepoint> Open { get; } = [];
        public List<EmittedMessage> Messages { get; } = [];
        public long Rows { get; set; }
        public int NextSavepoint { get; set; } = 1;
        /// <summary>Open savepoints that will be rolled back.</summary>
        public int Doomed { get; set; }
        /// <summary>Tables a statement changed (or truncated), with the savepoints open at the time.</summary>
        public List<(string Table, Savepoint[] Open)> Touched { get; } = [];

        public void Touch(string table) => Touched.Add((table, Open.ToArray()));

        /// <summary>The tables whose topics must hold this transaction when it commits.</summary>
        public string TouchedTables() => string.Join(",", Touched.Where(t => !t.Open.Any(s => s.RolledBack)).Select(t => t.Table).Distinct().Order(StringComparer.Ordinal));
    }

    private async Task RunSessionAsync(Session session, Func<Session, NpgsqlConnection, Task> oneTransaction, CancellationToken cancellationToken)
    {
        try
        {
            await _gate.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        NpgsqlConnection? connection = null;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                if (_paused)
                {
                    await Task.Delay(100, CancellationToken.None);
                    continue;
                }
                try
                {
                    if (connection is null)
                    {
                        connection = new NpgsqlConnection(_connectionString);
                        await connection.OpenAsync(CancellationToken.None);
                        session.Columns.Clear();
                    }
                    await oneTransaction(session, connection);
                    await Task.Delay(session.Random.Next(15, 45), CancellationToken.None);
                }
                catch (Exception e) when (IsConnectionFailure(e))
                {
                    // PostgreSQL restarting (or the connection broke): the open transaction is gone, a commit in
                    // flight has an unknown outcome (its messages are resolved from rnd_messages at the end), and
                    // non-transactional messages not yet flushed may be lost (they stay Unknown: at most once).
                    session.Unflushed.Clear();
                    if (connection is not null)
                    {
                        await connection.DisposeAsync();
                    }

                    connection = null;
                    await Task.Delay(300, CancellationToken.None);
                }
            }
        }
        finally
        {
            if (connection is not null)
            {
                await connection.DisposeAsync();
            }
        }
    }

    private static bool IsConnectionFailure(Exception e) => e switch
    {
        PostgresException p => p.SqlState.StartsWith("08", StringComparison.Ordinal) || p.SqlState.StartsWith("57P", StringComparison.Ordinal),
        NpgsqlException or IOException or InvalidOperationException or ObjectDisposedException or TimeoutException => true,
        _ => false,
    };

    /// <summary>Runs <paramref name="body"/> in a transaction and settles the fate of its messages.</summary>
    private async Task InTransactionAsync(Session session, NpgsqlConnection connection, string kind, bool large, bool commit,
        Func<Transaction, Task> body)
    {
        var label = $"{session.Name}#{++session.TransactionCounter} ({kind})";
        var handle = await connection.BeginTransactionAsync();
        var transaction = new Transaction(handle, label, large);
        try
        {
            await body(transaction);
            if (commit)
            {
                // The source's own record of what committed (and where its changes must appear).
                transaction.Touch(TransactionsTable);
                await ExecuteAsync(connection, null, $"INSERT INTO {TransactionsTable} VALUES ($1, txid_current(), $2)", label, transaction.TouchedTables());
                session.Committing = true;
                await handle.CommitAsync();
                session.Committing = false;
                Interlocked.Increment(ref _transactions);
                Interlocked.Add(ref _rowChanges, transaction.Rows);
                Settle(transaction, committed: true);
                // The commit flushed WAL past every earlier record of this session.
                foreach (var message in session.Unflushed)
                {
                    message.Fate = MessageFate.Delivered;
                }

                session.Unflushed.Clear();
            }
            else
            {
                await handle.RollbackAsync();
                Interlocked.Increment(ref _rolledBack);
                Settle(transaction, committed: false);
            }
        }
        catch (PostgresException e) when (!IsConnectionFailure(e))
        {
            // A statement of the generator PostgreSQL rejected: a bug of the workload, reported at the end.
            if (Interlocked.Increment(ref _errorCount) <= 10)
            {
                _errors.Enqueue($"{label}: {e.SqlState} {e.MessageText}" + (e.Data["sql"] is string sql ? $" in: {(sql.Length > 300 ? sql[..300] + "…" : sql)}" : ""));
            }

            Settle(transaction, committed: false);
            try
            {
                await handle.RollbackAsync();
            }
            catch (Exception rollback) when (IsConnectionFailure(rollback))
            {
            }
        }
        catch (Exception e) when (IsConnectionFailure(e))
        {
            if (session.Committing)
            {
                Interlocked.Increment(ref _unknown);
                foreach (var message in transaction.Messages.Where(m => m.Transactional))
                {
                    message.Context += "; the connection broke during COMMIT (outcome unknown)";
                }
            }
            else
            {
                Settle(transaction, committed: false);
            }
            session.Committing = false;
            throw;
        }
        finally
        {
            try
            {
                await handle.DisposeAsync();
            }
            catch (Exception e) when (IsConnectionFailure(e))
            {
            }
        }
    }

    private static void Settle(Transaction transaction, bool committed)
    {
        foreach (var message in transaction.Messages.Where(m => m.Transactional))
        {
            message.Fate = committed && !message.Savepoints.Any(s => s.RolledBack) ? MessageFate.Delivered : MessageFate.NotDelivered;
        }
    }

    private static async Task<int> ExecuteAsync(NpgsqlConnection connection, Transaction? transaction, string sql, params object?[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter ?? DBNull.Value });
        }

        int rows;
        try
        {
            rows = await command.ExecuteNonQueryAsync();
            if (transaction is not null && (rows > 0 || sql.StartsWith("TRUNCATE", StringComparison.Ordinal)))
            {
                foreach (var table in ChangedTables(sql))
                {
                    transaction.Touch(table);
                }
            }
        }
        catch (PostgresException e) when (!IsConnectionFailure(e))
        {
            e.Data["sql"] = sql;
            throw;
        }
        if (transaction is not null && rows > 0)
        {
            transaction.Rows += rows;
        }

        return rows;
    }

    /// <summary>The tables an INSERT, UPDATE, DELETE or TRUNCATE of the workload changes.</summary>
    private static string[] ChangedTables(string sql)
    {
        if (DmlTarget().Match(sql) is { Success: true } dml)
        {
            return [dml.Groups[1].Value];
        }

        if (TruncateTargets().Match(sql) is { Success: true } truncate)
        {
            return truncate.Groups[1].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        }

        return [];
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^(?:INSERT INTO|UPDATE|DELETE FROM) (\w+)")]
    private static partial System.Text.RegularExpressions.Regex DmlTarget();

    [System.Text.RegularExpressions.GeneratedRegex(@"^TRUNCATE (?:ONLY )?([\w, ]+?)(?: RESTART IDENTITY| CONTINUE IDENTITY| CASCADE)?$")]
    private static partial System.Text.RegularExpressions.Regex TruncateTargets();

    /// <summary>Runs <paramref name="body"/> inside a savepoint that is then rolled back or released.</summary>
    private static async Task SavepointAsync(Transaction transaction, bool rollBack, Func<Task> body)
    {
        var savepoint = new Savepoint($"sp{transaction.NextSavepoint++}");
        await transaction.Handle.SaveAsync(savepoint.Name);
        transaction.Open.Add(savepoint);
        if (rollBack)
        {
            transaction.Doomed++;
        }

        var rowsBefore = transaction.Rows;
        await body();
        transaction.Open.Remove(savepoint);
        if (rollBack)
        {
            transaction.Doomed--;
        }

        if (rollBack)
        {
            await transaction.Handle.RollbackAsync(savepoint.Name);
            savepoint.RolledBack = true;
            transaction.Rows = rowsBefore;
            await transaction.Handle.ReleaseAsync(savepoint.Name);
        }
        else
        {
            await transaction.Handle.ReleaseAsync(savepoint.Name);
        }
    }

    /// <summary>Emits a logical decoding message with unique content; a transactional one is recorded in rnd_messages beside it.</summary>
    private async Task MessageAsync(Session session, NpgsqlConnection connection, Transaction? transaction, bool transactional)
    {
        if (transactional && transaction is { Doomed: > 0 } && !Has("rollback-messages"))
        {
            return;
        }

        var id = $"rnd:{Seed}:{session.Name}:{++session.MessageCounter}";
        var values = session.Values;
        var prefix = values.Pick(["rnd.app", "rnd.audit/ünï 😀", "rnd." + new string('p', 200), "rnd.x"]);
        var payload = values.Random.Next(6) switch
        {
            0 => [],
            1 => Encoding.UTF8.GetBytes(values.TextValue(40)),
            2 => Encoding.UTF8.GetBytes(new string('m', values.Random.Next(1000, 12000))),
            3 => [0, 1, 2, 0xff, 0xfe, 0, 0xc3, 0x28],
            _ => Encoding.UTF8.GetBytes("plain payload"),
        };
        var content = Encoding.UTF8.GetBytes(id + "|").Concat(payload).ToArray();
        var context = transaction is null
            ? "outside any transaction"
            : $"in {transaction.Label}" + (transaction.Open.Count > 0 ? $", savepoint {string.Join("/", transaction.Open.Select(s => s.Name))}" : ", top level")
              + (transaction.Large ? ", a large transaction (streamed)" : "");
        var message = new EmittedMessage
        {
            Id = id,
            Prefix = prefix,
            Content = content,
            Transactional = transactional,
            Context = context,
            Savepoints = transaction?.Open.ToArray() ?? [],
            InLargeTransaction = transaction?.Large ?? false,
        };
        _messages[id] = message;
        if (transactional)
        {
            transaction?.Messages.Add(message);
        }
        else
        {
            session.Unflushed.Add(message);
        }

        await ExecuteAsync(connection, null, "SELECT pg_logical_emit_message($1, $2, $3)", transactional, prefix, content);
        if (transactional)
        {
            await ExecuteAsync(connection, transaction, $"INSERT INTO {MessagesTable} VALUES ($1, $2, $3)", id, prefix, context);
        }
    }

    // ---- the main session ------------------------------------------------------------------------------

    private async Task MainTransactionAsync(Session session, NpgsqlConnection connection)
    {
        var random = session.Random;
        var roll = random.Next(100);
        if (roll < 2)
        {
            // A non-transactional message outside any transaction (autocommit).
            await MessageAsync(session, connection, null, transactional: false);
            return;
        }
        if (roll < 3 && Has("large"))
        {
            await LargeTransactionAsync(session, connection);
            return;
        }
        if (roll < 7 && Has("truncate"))
        {
            await InTransactionAsync(session, connection, "truncate", false, commit: random.Next(10) > 0, async transaction =>
            {
                Interlocked.Increment(ref _truncates);
                if (random.Next(2) == 0)
                {
                    await RowOperationAsync(session, connection, transaction, "rnd_dups");
                }

                if (random.Next(4) == 0)
                {
                    await SavepointAsync(transaction, rollBack: true, () => TruncateAsync(session, connection, transaction));
                }

                await TruncateAsync(session, connection, transaction);
                for (var i = random.Next(0, 3); i > 0; i--)
                {
                    await RowOperationAsync(session, connection, transaction, random.Next(2) == 0 ? "rnd_dups" : "rnd_bulk");
                }
            });
            return;
        }
        if (roll < 10 && Has("ddl"))
        {
            await InTransactionAsync(session, connection, "ddl", false, commit: random.Next(8) > 0, async transaction =>
            {
                Interlocked.Increment(ref _ddl);
                if (random.Next(5) == 0)
                {
                    // DDL undone by a rolled-back savepoint: its schema must never show.
                    await SavepointAsync(transaction, rollBack: true, async () =>
                    {
                        await DdlAsync(session, connection, transaction);
                        await RowOperationAsync(session, connection, transaction, "rnd_ddl");
                    });
                    session.Columns.Clear();
                }
                await DdlAsync(session, connection, transaction);
                for (var i = random.Next(1, 3); i > 0; i--)
                {
                    await RowOperationAsync(session, connection, transaction, random.Next(3) == 0 ? "rnd_wide" : "rnd_ddl");
                }

                await RowOperationAsync(session, connection, transaction, "rnd_dups");
                await RowOperationAsync(session, connection, transaction, "rnd_idx");
            });
            session.Columns.Clear();
            return;
        }
        if (roll < 12 && Has("text-kept"))
        {
            await InTransactionAsync(session, connection, "text-kept", false, commit: true, async transaction =>
            {
                for (var i = random.Next(1, 4); i > 0; i--)
                {
                    await RowOperationAsync(session, connection, transaction, "rnd_text_kept");
                }
            });
            return;
        }
        if (roll < 26)
        {
            // Savepoints, nested, rolled back or released, with rows and messages inside.
            await InTransactionAsync(session, connection, "savepoints", false, commit: random.Next(12) > 0, async transaction =>
            {
                await RandomStepsAsync(session, connection, transaction, random.Next(1, 3));
                for (var i = random.Next(1, 4); i > 0; i--)
                {
                    await NestedSavepointsAsync(session, connection, transaction, depth: 0);
                }

                await RandomStepsAsync(session, connection, transaction, random.Next(0, 3));
            });
            return;
        }
        if (roll < 33)
        {
            // Rolled back as a whole: no row and no transactional message of it may appear; non-transactional ones do.
            await InTransactionAsync(session, connection, "rollback", false, commit: false, async transaction =>
            {
                await RandomStepsAsync(session, connection, transaction, random.Next(1, 6));
                await MessageAsync(session, connection, transaction, transactional: true);
                if (random.Next(2) == 0)
                {
                    await MessageAsync(session, connection, transaction, transactional: false);
                }
            });
            return;
        }
        if (roll < 43)
        {
            // TOAST: big values set, changed, left untouched (also with a key change), deleted.
            await InTransactionAsync(session, connection, "toast", false, commit: true, async transaction =>
            {
                for (var i = random.Next(1, 4); i > 0; i--)
                {
                    await ToastOperationAsync(session, connection, transaction);
                }
            });
            return;
        }
        if (roll < 50)
        {
            // The same row inserted, updated several times and deleted, or deleted and inserted again, in one transaction.
            await InTransactionAsync(session, connection, "same-row", false, commit: true, async transaction =>
                await SameRowAsync(session, connection, transaction));
            return;
        }
        // Mixed: a few changes over several tables, messages now and then.
        await InTransactionAsync(session, connection, "mixed", false, commit: random.Next(25) > 0, async transaction =>
        {
            await RandomStepsAsync(session, connection, transaction, random.Next(1, 7));
            if (random.Next(4) == 0)
            {
                await MessageAsync(session, connection, transaction, transactional: random.Next(3) > 0);
            }
        });
    }

    private static readonly string[] s_stepTables = ["rnd_wide", "rnd_wide", "rnd_wide_full", "rnd_wide_full", "rnd_nokey", "rnd_dups", "rnd_dups", "rnd_idx", "rnd_ddl", "rnd_bulk"];

    private async Task RandomStepsAsync(Session session, NpgsqlConnection connection, Transaction transaction, int steps)
    {
        for (var i = 0; i < steps; i++)
        {
            if (session.Random.Next(8) == 0)
            {
                await MessageAsync(session, connection, transaction, transactional: session.Random.Next(4) > 0);
            }
            else
            {
                await RowOperationAsync(session, connection, transaction, session.Random.Next(s_stepTables.Length) is var t ? s_stepTables[t] : "rnd_wide");
            }
        }
    }

    private async Task NestedSavepointsAsync(Session session, NpgsqlConnection connection, Transaction transaction, int depth)
    {
        var random = session.Random;
        await SavepointAsync(transaction, rollBack: random.Next(100) < 45, async () =>
        {
            await RandomStepsAsync(session, connection, transaction, random.Next(0, 3));
            await MessageAsync(session, connection, transaction, transactional: random.Next(5) > 0);
            if (depth < 2 && random.Next(3) == 0)
            {
                await NestedSavepointsAsync(session, connection, transaction, depth + 1);
            }

            await RandomStepsAsync(session, connection, transaction, random.Next(0, 2));
        });
    }

    /// <summary>
    /// A transaction larger than logical_decoding_work_mem, so PostgreSQL streams it while it runs: bulk rows,
    /// savepoints rolled back or released with rows and messages inside, updates and deletes; sometimes rolled back.
    /// </summary>
    private async Task LargeTransactionAsync(Session session, NpgsqlConnection connection)
    {
        var random = session.Random;
        var commit = random.Next(6) > 0;
        await InTransactionAsync(session, connection, "large", true, commit, async transaction =>
        {
            Interlocked.Increment(ref _largeTransactions);
            var batch = _nextBatch++;
            var salt = Interlocked.Increment(ref _salt);
            await BulkInsertAsync(connection, transaction, batch, random.Next(700, 1400), salt);
            await MessageAsync(session, connection, transaction, transactional: true);
            for (var round = random.Next(1, 3); round > 0; round--)
            {
                var rollBack = random.Next(100) < 60;
                await SavepointAsync(transaction, rollBack, async () =>
                {
                    await BulkInsertAsync(connection, transaction, batch, random.Next(200, 700), salt + 1000);
                    await MessageAsync(session, connection, transaction, transactional: true);
                    if (random.Next(2) == 0)
                    {
                        await MessageAsync(session, connection, transaction, transactional: true);
                    }

                    if (random.Next(3) == 0)
                    {
                        await MessageAsync(session, connection, transaction, transactional: false);
                    }

                    await RandomStepsAsync(session, connection, transaction, random.Next(1, 4));
                    // More rows after the messages: the subtransaction's changes are streamed before it ends.
                    await BulkInsertAsync(connection, transaction, batch, random.Next(200, 600), salt + 2000);
                });
                await ExecuteAsync(connection, transaction, "UPDATE rnd_bulk SET n = n + 1, payload = left(payload, 20) WHERE batch = $1 AND id % $2 = 0", batch, (long)random.Next(3, 9));
                await RandomStepsAsync(session, connection, transaction, random.Next(1, 3));
            }
            await ExecuteAsync(connection, transaction, "DELETE FROM rnd_bulk WHERE batch = $1 AND id % $2 = 1", batch, (long)random.Next(4, 12));
            if (random.Next(3) == 0)
            {
                await ExecuteAsync(connection, transaction, "DELETE FROM rnd_bulk WHERE batch < $1", batch - 4);
            }

            await MessageAsync(session, connection, transaction, transactional: true);
        });
    }

    private static Task<int> BulkInsertAsync(NpgsqlConnection connection, Transaction transaction, int batch, int rows, long salt) =>
        ExecuteAsync(connection, transaction,
            "INSERT INTO rnd_bulk (batch, payload, n, at) SELECT $1, repeat(md5(g::text || $3::text), 10), g * 1.25, '2024-01-01 00:00:00+00'::timestamptz + g * interval '1.5 seconds' FROM generate_series(1, $2) g",
            batch, rows, salt.ToString(CultureInfo.InvariantCulture));

    private static async Task TruncateAsync(Session session, NpgsqlConnection connection, Transaction transaction)
    {
        var statement = session.Random.Next(10) switch
        {
            0 or 1 or 2 => "TRUNCATE rnd_dups",
            3 or 4 => "TRUNCATE rnd_bulk RESTART IDENTITY",
            5 or 6 => "TRUNCATE rnd_dups, rnd_bulk",
            7 => "TRUNCATE rnd_nokey",
            8 => "TRUNCATE ONLY rnd_idx CONTINUE IDENTITY",
            _ => "TRUNCATE rnd_wide_full, rnd_dups CASCADE",
        };
        await ExecuteAsync(connection, transaction, statement);
    }

    /// <summary>ALTER TABLE: a column added, dropped or retyped (to a type with the same text), or a replica identity switched.</summary>
    private async Task DdlAsync(Session session, NpgsqlConnection connection, Transaction transaction)
    {
        var random = session.Random;
        var roll = random.Next(10);
        if (roll < 2)
        {
            // A table without a key gains or loses a column: its rows' identity changes.
            var columns = await ColumnsAsync(session, connection, "rnd_dups");
            var extra = columns.Where(c => c.Name.StartsWith("x_", StringComparison.Ordinal)).ToList();
            if (extra.Count > 0 && random.Next(2) == 0)
            {
                await ExecuteAsync(connection, transaction, $"ALTER TABLE rnd_dups DROP COLUMN {extra[random.Next(extra.Count)].Name}");
            }
            else
            {
                await ExecuteAsync(connection, transaction, $"ALTER TABLE rnd_dups ADD COLUMN x_{_nextDdlColumn++} {session.Values.Pick(["int4", "text", "date"])}");
            }

            session.Columns.Remove("rnd_dups");
            return;
        }
        if (roll < 3)
        {
            await using (var command = new NpgsqlCommand("SELECT relreplident::text FROM pg_class WHERE oid = 'rnd_idx'::regclass", connection))
            {
                var identity = (string?)await command.ExecuteScalarAsync();
                await ExecuteAsync(connection, transaction, identity == "f"
                    ? "ALTER TABLE rnd_idx REPLICA IDENTITY USING INDEX rnd_idx_key"
                    : "ALTER TABLE rnd_idx REPLICA IDENTITY FULL");
            }
            return;
        }
        var ddlColumns = await ColumnsAsync(session, connection, "rnd_ddl");
        var others = ddlColumns.Where(c => c.Name != "id").ToList();
        if (roll < 6 || others.Count == 0)
        {
            await ExecuteAsync(connection, transaction, $"ALTER TABLE rnd_ddl ADD COLUMN c_{_nextDdlColumn++} {session.Values.Pick(s_ddlTypes)}");
        }
        else if (roll < 8 && others.Count > 1)
        {
            await ExecuteAsync(connection, transaction, $"ALTER TABLE rnd_ddl DROP COLUMN {others[random.Next(others.Count)].Name}");
        }
        else
        {
            // Retyped to a type whose text is the same for every existing value: the rows already in the topic stay right.
            var (name, type) = others[random.Next(others.Count)];
            var target = type switch
            {
                "integer" => "bigint",
                "bigint" => "numeric",
                "character varying(30)" => "character varying(60)",
                "character varying(60)" => "text",
                "numeric(12,2)" => "numeric(14,2)",
                "boolean" => "text",
                "smallint" => "integer",
                _ => null,
            };
            if (target is not null)
            {
                await ExecuteAsync(connection, transaction, $"ALTER TABLE rnd_ddl ALTER COLUMN {name} TYPE {target}");
            }
            else
            {
                await ExecuteAsync(connection, transaction, $"ALTER TABLE rnd_ddl ADD COLUMN c_{_nextDdlColumn++} {session.Values.Pick(s_ddlTypes)}");
            }
        }
        session.Columns.Remove("rnd_ddl");
    }

    private static async Task<List<(string Name, string Type)>> ColumnsAsync(Session session, NpgsqlConnection connection, string table)
    {
        if (session.Columns.TryGetValue(table, out var cached))
        {
            return cached;
        }

        var columns = new List<(string, string)>();
        await using (var command = new NpgsqlCommand(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum", connection))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = table });
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                columns.Add((reader.GetString(0), reader.GetString(1)));
            }
        }
        session.Columns[table] = columns;
        return columns;
    }

    private static string ValueFor(RandomValues values, string type) => type switch
    {
        "integer" => values.Int4(),
        "bigint" => values.Int8(),
        "smallint" => values.Int2(),
        "text" => values.Text(),
        "character varying(30)" => values.Varchar(30),
        "character varying(60)" => values.Varchar(60),
        "numeric(12,2)" => values.Numeric(12, 2),
        "numeric(14,2)" => values.Numeric(14, 2),
        "numeric" => values.NumericAny(),
        "timestamp with time zone" => values.TimestampTz(),
        "boolean" => values.Bool(),
        "jsonb" => values.Jsonb(),
        "double precision" => values.Float8(),
        "date" => values.Date(),
        "integer[]" => values.Int4Array(),
        _ => "NULL",
    };

    /// <summary>A TOAST value: NULL, short, compressible (stored inline compressed) or incompressible md5 chains of ~20 KB and ~200 KB (stored out of line).</summary>
    private string Big(RandomValues values, int largePercent = 5)
    {
        var roll = values.Random.Next(100);
        var salt = Interlocked.Increment(ref _salt);
        if (roll < largePercent)
        {
            return $"(SELECT string_agg(md5(g::text || '{Seed}-{salt}'), '') FROM generate_series(1, 6250) g)";
        }

        if (roll < largePercent + 25)
        {
            return $"(SELECT string_agg(md5(g::text || '{Seed}-{salt}'), '') FROM generate_series(1, 640) g)";
        }

        if (roll < largePercent + 45)
        {
            return $"repeat({RandomValues.Literal(values.TextValue(6))}, 600)";
        }

        if (roll < largePercent + 70)
        {
            return "NULL";
        }

        return RandomValues.Literal(values.TextValue(30));
    }

    private string WideRow(RandomValues values, int id) =>
        $"({id}, {string.Join(", ", s_wideColumns.Select(c => c.Name == "c_big" ? Big(values) : c.Value(values)))})";

    private static readonly string s_wideNames = "id, " + string.Join(", ", s_wideColumns.Select(c => c.Name));

    private async Task RowOperationAsync(Session session, NpgsqlConnection connection, Transaction transaction, string table)
    {
        var random = session.Random;
        var values = session.Values;
        var op = random.Next(100);
        switch (table)
        {
            case "rnd_wide":
            case "rnd_wide_full":
                {
                    var full = table == "rnd_wide_full";
                    if (op < 45)
                    {
                        var id = full ? _nextWideFull++ : _nextWide++;
                        await ExecuteAsync(connection, transaction, $"INSERT INTO {table} ({s_wideNames}) VALUES {WideRow(values, id)}");
                    }
                    else if (op < 85)
                    {
                        var set = s_wideColumns.Where(c => c.Name != "c_big" && random.Next(s_wideColumns.Length) < 4).Select(c => $"{c.Name} = {c.Value(values)}").ToList();
                        if (set.Count == 0 || random.Next(6) == 0 || (full && !Has("full-toast-unchanged")))
                        {
                            set.Add($"c_big = {Big(values, 4)}");
                        }

                        await ExecuteAsync(connection, transaction,
                        $"UPDATE {table} SET {string.Join(", ", set)} WHERE id IN (SELECT id FROM {table} WHERE id >= $1 ORDER BY id LIMIT $2)",
                        random.Next(1, Math.Max(2, full ? _nextWideFull : _nextWide)), (long)random.Next(1, 3));
                    }
                    else
                    {
                        await ExecuteAsync(connection, transaction, $"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE id >= $1 ORDER BY id LIMIT 1)",
                            random.Next(1, Math.Max(2, full ? _nextWideFull : _nextWide)));
                    }
                    break;
                }
            case "rnd_nokey":
                {
                    if (op < 45)
                    {
                        // Sometimes several identical rows (the same deterministic expressions).
                        var copies = random.Next(4) == 0 ? random.Next(2, 4) : 1;
                        var big = Big(values, 15);
                        await ExecuteAsync(connection, transaction,
                            $"INSERT INTO rnd_nokey SELECT {random.Next(10)}, {values.Int8()}, {values.Float8()}, {values.Text()}, {values.Date()}, {values.TimestampTz()}, {values.Numeric(12, 3)}, {values.Bytea()}, {values.Jsonb()}, {big} FROM generate_series(1, {copies})");
                    }
                    else if (op < 80)
                    {
                        var set = random.Next(3) switch
                        {
                            0 => $"n = {values.Int8()}",
                            1 => $"t = {values.Text()}, d = {values.Date()}",
                            _ => $"nm = {values.Numeric(12, 3)}, f8 = {values.Float8()}",
                        };
                        if (random.Next(5) == 0 || !Has("full-toast-unchanged"))
                        {
                            set += $", big = {Big(values, 10)}";
                        }

                        await ExecuteAsync(connection, transaction,
                        $"UPDATE rnd_nokey SET {set} WHERE ctid IN (SELECT ctid FROM rnd_nokey WHERE grp = $1 LIMIT $2)", random.Next(10), (long)random.Next(1, 4));
                    }
                    else
                    {
                        await ExecuteAsync(connection, transaction, "DELETE FROM rnd_nokey WHERE ctid IN (SELECT ctid FROM rnd_nokey WHERE grp = $1 LIMIT 1)", random.Next(10));
                    }
                    break;
                }
            case "rnd_dups":
                {
                    var columns = await ColumnsAsync(session, connection, "rnd_dups");
                    if (op < 45)
                    {
                        var copies = random.Next(3) == 0 ? random.Next(2, 5) : 1;
                        var row = string.Join(", ", columns.Select(c => c.Name switch
                        {
                            "grp" => random.Next(5).ToString(CultureInfo.InvariantCulture),
                            "v" => random.Next(3) == 0 ? "NULL" : RandomValues.Literal(values.Pick(["dup", "same", "", "😀", "x"])),
                            _ => ValueFor(values, c.Type),
                        }));
                        await ExecuteAsync(connection, transaction, $"INSERT INTO rnd_dups ({string.Join(", ", columns.Select(c => c.Name))}) SELECT {row} FROM generate_series(1, {copies})");
                    }
                    else if (op < 70)
                    {
                        await ExecuteAsync(connection, transaction,
                            "UPDATE rnd_dups SET x = $2 WHERE ctid IN (SELECT ctid FROM rnd_dups WHERE grp = $1 LIMIT $3)", (short)random.Next(5), random.Next(3), (long)random.Next(1, 3));
                    }
                    else if (op < 80)
                    {
                        // A no-op update: the same row again.
                        await ExecuteAsync(connection, transaction, "UPDATE rnd_dups SET v = v WHERE ctid IN (SELECT ctid FROM rnd_dups WHERE grp = $1 LIMIT 1)", (short)random.Next(5));
                    }
                    else
                    {
                        await ExecuteAsync(connection, transaction, "DELETE FROM rnd_dups WHERE ctid IN (SELECT ctid FROM rnd_dups WHERE grp = $1 LIMIT $2)", (short)random.Next(5), (long)random.Next(1, 3));
                    }
                    break;
                }
            case "rnd_idx":
                {
                    var k1 = values.Pick(["alpha", "beta", "gamma ünï", "δ 😀", ""]);
                    if (op < 40)
                    {
                        await ExecuteAsync(connection, transaction, $"INSERT INTO rnd_idx VALUES ($1, $2, {values.NumericAny()}, {values.Varchar(50)}, {values.Bool()}, {Big(values, 8)})", k1, _nextIdx++);
                    }
                    else if (op < 65)
                    {
                        var set = $"v = {values.NumericAny()}, note = {values.Varchar(50)}";
                        if (random.Next(4) == 0 || !Has("full-toast-unchanged"))
                        {
                            set += $", big = {Big(values, 6)}";
                        }

                        await ExecuteAsync(connection, transaction,
                        $"UPDATE rnd_idx SET {set} WHERE (k1, k2) IN (SELECT k1, k2 FROM rnd_idx WHERE k2 >= $1 ORDER BY k2 LIMIT 2)", random.NextInt64(1, Math.Max(2, _nextIdx)));
                    }
                    else if (op < 85)
                    {
                        // Key change, TOAST value untouched.
                        var set = !Has("full-toast-unchanged") ? $", big = {Big(values, 6)}" : "";
                        await ExecuteAsync(connection, transaction,
                            $"UPDATE rnd_idx SET k2 = $2, flag = NOT coalesce(flag, false){set} WHERE (k1, k2) IN (SELECT k1, k2 FROM rnd_idx WHERE k2 >= $1 ORDER BY k2 LIMIT 1)",
                            random.NextInt64(1, Math.Max(2, _nextIdx)), _nextIdx++);
                    }
                    else
                    {
                        await ExecuteAsync(connection, transaction, "DELETE FROM rnd_idx WHERE (k1, k2) IN (SELECT k1, k2 FROM rnd_idx WHERE k2 >= $1 ORDER BY k2 LIMIT 1)",
                            random.NextInt64(1, Math.Max(2, _nextIdx)));
                    }
                    break;
                }
            case "rnd_text_kept":
                {
                    if (op < 50)
                    {
                        await ExecuteAsync(connection, transaction,
                            $"INSERT INTO rnd_text_kept VALUES ({_nextTextKept++}, {string.Join(", ", s_textKeptColumns.Select(c => c.Value(values)))})");
                    }
                    else if (op < 85)
                    {
                        var set = s_textKeptColumns.Where(_ => random.Next(4) == 0).Select(c => $"{c.Name} = {c.Value(values)}").DefaultIfEmpty("c_mood = 'ok'");
                        await ExecuteAsync(connection, transaction,
                            $"UPDATE rnd_text_kept SET {string.Join(", ", set)} WHERE id IN (SELECT id FROM rnd_text_kept WHERE id >= $1 ORDER BY id LIMIT 2)",
                            random.NextInt64(1, Math.Max(2, _nextTextKept)));
                    }
                    else
                    {
                        await ExecuteAsync(connection, transaction, "DELETE FROM rnd_text_kept WHERE id IN (SELECT id FROM rnd_text_kept WHERE id >= $1 ORDER BY id LIMIT 1)",
                            random.NextInt64(1, Math.Max(2, _nextTextKept)));
                    }
                    break;
                }
            case "rnd_ddl":
                {
                    var columns = await ColumnsAsync(session, connection, "rnd_ddl");
                    var others = columns.Where(c => c.Name != "id").ToList();
                    if (op < 50 || others.Count == 0)
                    {
                        await ExecuteAsync(connection, transaction,
                            $"INSERT INTO rnd_ddl ({string.Join(", ", columns.Select(c => c.Name))}) VALUES ({_nextDdl++}{string.Concat(others.Select(c => ", " + ValueFor(values, c.Type)))})");
                    }
                    else if (op < 85)
                    {
                        var chosen = others.Where(_ => random.Next(2) == 0).DefaultIfEmpty(others[0]).Select(c => $"{c.Name} = {ValueFor(values, c.Type)}");
                        await ExecuteAsync(connection, transaction,
                            $"UPDATE rnd_ddl SET {string.Join(", ", chosen)} WHERE id IN (SELECT id FROM rnd_ddl WHERE id >= $1 ORDER BY id LIMIT 3)", random.Next(1, Math.Max(2, _nextDdl)));
                    }
                    else
                    {
                        await ExecuteAsync(connection, transaction, "DELETE FROM rnd_ddl WHERE id IN (SELECT id FROM rnd_ddl WHERE id >= $1 ORDER BY id LIMIT 1)", random.Next(1, Math.Max(2, _nextDdl)));
                    }
                    break;
                }
            case "rnd_bulk":
                {
                    if (op < 60)
                    {
                        await ExecuteAsync(connection, transaction, $"INSERT INTO rnd_bulk (batch, payload, n, at) VALUES (0, {values.Text()}, {values.Numeric(20, 4)}, {values.TimestampTz()})");
                    }
                    else if (op < 85)
                    {
                        await ExecuteAsync(connection, transaction, $"UPDATE rnd_bulk SET payload = {values.Text()} WHERE id IN (SELECT id FROM rnd_bulk ORDER BY id DESC LIMIT 1)");
                    }
                    else
                    {
                        await ExecuteAsync(connection, transaction, "DELETE FROM rnd_bulk WHERE id IN (SELECT id FROM rnd_bulk WHERE batch = 0 ORDER BY id LIMIT 1)");
                    }
                    break;
                }
            default:
                throw new ArgumentOutOfRangeException(nameof(table), table, "not a workload table");
        }
    }

    /// <summary>Updates about TOAST values: untouched (with and without a key change), changed, set to NULL, deleted with them.</summary>
    private async Task ToastOperationAsync(Session session, NpgsqlConnection connection, Transaction transaction)
    {
        var random = session.Random;
        var values = session.Values;
        switch (random.Next(8))
        {
            case 0:
                {
                    // Several rows of the table without a key updated without touching their big value (known defect 1 when
                    // the filled-in old values are not counted in the record size).
                    var set = Has("full-toast-unchanged") ? $"n = {values.Int8()}" : $"n = {values.Int8()}, big = {Big(values, 10)}";
                    await ExecuteAsync(connection, transaction,
                        $"UPDATE rnd_nokey SET {set} WHERE ctid IN (SELECT ctid FROM rnd_nokey WHERE big IS NOT NULL AND length(big) > 100000 LIMIT $1)", (long)random.Next(2, 4));
                    break;
                }
            case 1:
                {
                    var id = _nextWide++;
                    await ExecuteAsync(connection, transaction, $"INSERT INTO rnd_wide ({s_wideNames}) VALUES {WideRow(values, id)}");
                    await ExecuteAsync(connection, transaction, $"UPDATE rnd_wide SET c_big = {Big(values, 60)} WHERE id = $1", id);
                    break;
                }
            case 2:
                {
                    // DEFAULT identity: the big value is not sent (_unchanged), also when the key changes.
                    var newId = _nextWide++;
                    await ExecuteAsync(connection, transaction,
                        $"UPDATE rnd_wide SET id = $2, c_int4 = {values.Int4()} WHERE id = (SELECT id FROM rnd_wide WHERE id >= $1 AND c_big IS NOT NULL ORDER BY id LIMIT 1)",
                        random.Next(1, Math.Max(2, _nextWide)), newId);
                    break;
                }
            case 3:
                {
                    var set = Has("full-toast-unchanged") ? $"c_text = {values.Text()}" : $"c_text = {values.Text()}, c_big = {Big(values, 5)}";
                    await ExecuteAsync(connection, transaction,
                        $"UPDATE rnd_wide_full SET {set} WHERE id IN (SELECT id FROM rnd_wide_full WHERE id >= $1 AND c_big IS NOT NULL ORDER BY id LIMIT $2)",
                        random.Next(1, Math.Max(2, _nextWideFull)), (long)random.Next(1, 3));
                    break;
                }
            case 4:
                {
                    var newId = _nextWideFull++;
                    var set = Has("full-toast-unchanged") ? "" : $", c_big = {Big(values, 5)}";
                    await ExecuteAsync(connection, transaction,
                        $"UPDATE rnd_wide_full SET id = $2{set} WHERE id = (SELECT id FROM rnd_wide_full WHERE id >= $1 ORDER BY id LIMIT 1)",
                        random.Next(1, Math.Max(2, _nextWideFull)), newId);
                    break;
                }
            case 5:
                await ExecuteAsync(connection, transaction,
                    $"UPDATE rnd_wide SET c_big = {Big(values, 30)}, c_bytea = {values.Bytea()} WHERE id IN (SELECT id FROM rnd_wide WHERE id >= $1 ORDER BY id LIMIT 2)",
                    random.Next(1, Math.Max(2, _nextWide)));
                break;
            case 6:
                await ExecuteAsync(connection, transaction,
                    "UPDATE rnd_idx SET note = 'toast untouched' WHERE (k1, k2) IN (SELECT k1, k2 FROM rnd_idx WHERE big IS NOT NULL ORDER BY k2 DESC LIMIT 2)");
                break;
            default:
                await ExecuteAsync(connection, transaction,
                    "DELETE FROM rnd_wide_full WHERE id IN (SELECT id FROM rnd_wide_full WHERE c_big IS NOT NULL AND id >= $1 ORDER BY id LIMIT 1)",
                    random.Next(1, Math.Max(2, _nextWideFull)));
                break;
        }
    }

    private async Task SameRowAsync(Session session, NpgsqlConnection connection, Transaction transaction)
    {
        var random = session.Random;
        var values = session.Values;
        var full = random.Next(2) == 0;
        var table = full ? "rnd_wide_full" : "rnd_wide";
        var id = full ? _nextWideFull++ : _nextWide++;
        await ExecuteAsync(connection, transaction, $"INSERT INTO {table} ({s_wideNames}) VALUES {WideRow(values, id)}");
        for (var i = random.Next(1, 4); i > 0; i--)
        {
            var column = s_wideColumns[random.Next(s_wideColumns.Length - 1)];
            var big = full && !Has("full-toast-unchanged") ? $", c_big = {Big(values, 0)}" : "";
            await ExecuteAsync(connection, transaction, $"UPDATE {table} SET {column.Name} = {column.Value(values)}{big} WHERE id = $1", id);
        }
        switch (random.Next(3))
        {
            case 0:
                await ExecuteAsync(connection, transaction, $"DELETE FROM {table} WHERE id = $1", id);
                break;
            case 1:
                await ExecuteAsync(connection, transaction, $"DELETE FROM {table} WHERE id = $1", id);
                await ExecuteAsync(connection, transaction, $"INSERT INTO {table} ({s_wideNames}) VALUES {WideRow(values, id)}");
                break;
            default:
                await SavepointAsync(transaction, rollBack: true, async () =>
                    await ExecuteAsync(connection, transaction, $"DELETE FROM {table} WHERE id = $1", id));
                break;
        }
    }

    // ---- the side session ------------------------------------------------------------------------------

    /// <summary>Small transactions of their own, concurrent with the main session (so streamed transactions interleave with them).</summary>
    private async Task SideTransactionAsync(Session session, NpgsqlConnection connection)
    {
        var random = session.Random;
        var values = session.Values;
        await Task.Delay(random.Next(30, 80), CancellationToken.None);
        await InTransactionAsync(session, connection, "side", false, commit: random.Next(15) > 0, async transaction =>
        {
            for (var i = random.Next(1, 4); i > 0; i--)
            {
                switch (random.Next(6))
                {
                    case 0:
                    case 1:
                        await ExecuteAsync(connection, transaction, $"INSERT INTO rnd_side VALUES ($1, {values.Int4()}, {values.Text()}, {values.Timestamp()})", _nextSide++);
                        break;
                    case 2:
                        await ExecuteAsync(connection, transaction, $"UPDATE rnd_side SET v = {values.Int4()}, at = {values.Timestamp()} WHERE id = (SELECT id FROM rnd_side WHERE id >= $1 ORDER BY id LIMIT 1)",
                            random.NextInt64(1, Math.Max(2, _nextSide)));
                        break;
                    case 3:
                        await ExecuteAsync(connection, transaction, "DELETE FROM rnd_side WHERE id = (SELECT id FROM rnd_side WHERE id >= $1 ORDER BY id LIMIT 1)",
                            random.NextInt64(1, Math.Max(2, _nextSide)));
                        break;
                    case 4:
                        await MessageAsync(session, connection, transaction, transactional: random.Next(4) > 0);
                        break;
                    default:
                        await SavepointAsync(transaction, rollBack: random.Next(2) == 0, async () =>
                        {
                            await ExecuteAsync(connection, transaction, $"INSERT INTO rnd_side VALUES ($1, {values.Int4()}, 'in a savepoint', NULL)", _nextSide++);
                            await MessageAsync(session, connection, transaction, transactional: true);
                        });
                        break;
                }
            }
        });
    }

    /// <inheritdoc/>
    public async Task<Lsn> LastPositionAsync()
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await using var connection = new NpgsqlConnection(_connectionString);
                await connection.OpenAsync();
                await using var transaction = await connection.BeginTransactionAsync();
                await ExecuteAsync(connection, null, "INSERT INTO rnd_side VALUES ($1, 0, 'end of workload', NULL)", _nextSide++);
                await ExecuteAsync(connection, null, $"INSERT INTO {TransactionsTable} VALUES ($1, txid_current(), $2) ON CONFLICT (label) DO NOTHING",
                    $"end#{_nextSide}", $"rnd_side,{TransactionsTable}");
                await using var position = new NpgsqlCommand("SELECT pg_current_wal_insert_lsn()::text", connection);
                var lsn = Lsn.Parse((string)(await position.ExecuteScalarAsync())!);
                await transaction.CommitAsync();
                // This commit flushed WAL past every message emitted since the sessions' last connection failure.
                foreach (var session in _sessions)
                {
                    foreach (var message in session.Unflushed)
                    {
                        message.Fate = MessageFate.Delivered;
                    }

                    session.Unflushed.Clear();
                }
                return lsn;
            }
            catch (NpgsqlException) when (attempt < 20)
            {
                await Task.Delay(500);
            }
        }
    }
}
