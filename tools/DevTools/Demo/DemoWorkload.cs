using Npgsql;
using NpgsqlTypes;
using WalBridge.Connector.Cli;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Queue;
using WalBridge.Connector.Source;
using WalBridge.Offsets;

namespace WalBridge.DevTools.Demo;

/// <summary>
/// The demo's sample tables and a mixed insert/update/delete workload over them, one serial
/// session at a bounded transaction rate.
/// </summary>
internal sealed class DemoWorkload(string connectionString)
{
    public static readonly string[] Tables = ["customers", "orders"];

    public const string Schema = """
        CREATE TABLE customers (
            id          bigserial PRIMARY KEY,
            name        text NOT NULL,
            email       varchar(120),
            tier        int2,
            visits      int4,
            balance     numeric(12,2),
            rating      float4,
            score       float8,
            active      bool,
            birthday    date,
            created_at  timestamptz,
            updated_at  timestamp,
            avatar      bytea,
            external_id uuid
        );
        CREATE TABLE orders (
            id          bigserial PRIMARY KEY,
            customer_id bigint NOT NULL,
            amount      numeric(10,2) NOT NULL,
            status      varchar(20) NOT NULL,
            quantity    int4,
            placed_at   timestamptz NOT NULL,
            note        text
        );
        """;

    /// <summary>
    /// Rows that exist before the connector starts, so every demo run delivers them through the snapshot: customers
    /// (with nulls in every nullable column now and then) and orders.
    /// </summary>
    public static string Prefill(int customers, int orders) => $"""
        INSERT INTO customers (name, email, tier, visits, balance, rating, score, active, birthday, created_at, updated_at, avatar, external_id)
        SELECT 'prefilled ' || i, CASE WHEN i % 7 = 0 THEN NULL ELSE 'user' || i || '@example.com' END, (i % 5)::int2, i % 1000,
               (i * 1.37)::numeric(12,2), (i % 97) / 7.0, i / 3.0, i % 2 = 0, date '1970-01-01' + (i % 20000),
               timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute', timestamp '2024-01-01' + i * interval '1 second',
               CASE WHEN i % 5 = 0 THEN NULL ELSE decode(md5(i::text), 'hex') END, md5(i::text)::uuid
        FROM generate_series(1, {customers}) AS i;
        INSERT INTO orders (customer_id, amount, status, quantity, placed_at, note)
        SELECT 1 + i % {customers}, (i % 10000) / 10.0, (ARRAY['new','paid','shipped','delivered','cancelled'])[1 + i % 5], i % 9,
               timestamptz '2024-06-01 00:00:00+00' + i * interval '1 second', CASE WHEN i % 3 = 0 THEN NULL ELSE 'prefilled order ' || i END
        FROM generate_series(1, {orders}) AS i;
        ANALYZE customers, orders;
        """;

    private static readonly string[] s_names = ["Ada Lovelace", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov", "Donald Knuth", "Zoë Ångström", "李小龙", "Ñandú Pérez", "O'Brien \"Quoted\"", "tab\there"];
    private static readonly string[] s_statuses = ["new", "paid", "shipped", "delivered", "cancelled"];

    private readonly Random _random = new(20261121);
    private long _transactions;
    private long _rows;

    public long Transactions => Interlocked.Read(ref _transactions);
    public long Rows => Interlocked.Read(ref _rows);

    /// <summary>A WAL position inside the last transaction, before its commit record: once the bridge has committed past it, it has everything.</summary>
    public Lsn LastCommitFloor { get; private set; }

    public async Task RunAsync(TimeSpan duration, int transactionsPerSecond, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken);
        var customerIds = new List<long>();
        var orderIds = new List<long>();
        var start = DateTime.UtcNow;
        var end = start + duration;
        while (DateTime.UtcNow < end)
        {
            var due = start + TimeSpan.FromSeconds(Transactions / (double)transactionsPerSecond);
            var wait = due - DateTime.UtcNow;
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, cancellationToken);
            }

            await OneTransactionAsync(connection, customerIds, orderIds, captureLsn: false, cancellationToken);
        }
        await OneTransactionAsync(connection, customerIds, orderIds, captureLsn: true, cancellationToken);
    }

    private async Task OneTransactionAsync(NpgsqlConnection connection, List<long> customerIds, List<long> orderIds, bool captureLsn, CancellationToken cancellationToken)
    {
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var rows = 0;
        var inserts = _random.Next(1, 6);
        for (var i = 0; i < inserts; i++)
        {
            if (customerIds.Count == 0 || _random.Next(3) == 0)
            {
                customerIds.Add(await InsertCustomerAsync(connection, cancellationToken));
            }
            else
            {
                orderIds.Add(await InsertOrderAsync(connection, customerIds[_random.Next(customerIds.Count)], cancellationToken));
            }

            rows++;
        }
        if (customerIds.Count > 0 && _random.Next(2) == 0)
        {
            await using var update = new NpgsqlCommand(
                "UPDATE customers SET visits = coalesce(visits, 0) + 1, balance = balance + $2, updated_at = now()::timestamp, active = NOT coalesce(active, false) WHERE id = $1", connection);
            update.Parameters.Add(new NpgsqlParameter { Value = customerIds[_random.Next(customerIds.Count)] });
            update.Parameters.Add(new NpgsqlParameter { Value = Math.Round((decimal)(_random.NextDouble() * 200 - 100), 2) });
            rows += await update.ExecuteNonQueryAsync(cancellationToken);
        }
        if (orderIds.Count > 0 && _random.Next(2) == 0)
        {
            await using var update = new NpgsqlCommand("UPDATE orders SET status = $2, note = NULL WHERE id = $1", connection);
            update.Parameters.Add(new NpgsqlParameter { Value = orderIds[_random.Next(orderIds.Count)] });
            update.Parameters.Add(new NpgsqlParameter { Value = s_statuses[_random.Next(s_statuses.Length)] });
            rows += await update.ExecuteNonQueryAsync(cancellationToken);
        }
        if (orderIds.Count > 10 && _random.Next(4) == 0)
        {
            var index = _random.Next(orderIds.Count);
            await using var delete = new NpgsqlCommand("DELETE FROM orders WHERE id = $1", connection);
            delete.Parameters.Add(new NpgsqlParameter { Value = orderIds[index] });
            rows += await delete.ExecuteNonQueryAsync(cancellationToken);
            orderIds.RemoveAt(index);
        }
        if (customerIds.Count > 20 && _random.Next(10) == 0)
        {
            var index = _random.Next(customerIds.Count);
            await using var delete = new NpgsqlCommand("DELETE FROM customers WHERE id = $1", connection);
            delete.Parameters.Add(new NpgsqlParameter { Value = customerIds[index] });
            rows += await delete.ExecuteNonQueryAsync(cancellationToken);
            customerIds.RemoveAt(index);
        }
        if (captureLsn)
        {
            await using var lsn = new NpgsqlCommand("SELECT pg_current_wal_insert_lsn()::text", connection);
            LastCommitFloor = Lsn.Parse((string)(await lsn.ExecuteScalarAsync(cancellationToken))!);
        }
        await transaction.CommitAsync(cancellationToken);
        Interlocked.Increment(ref _transactions);
        Interlocked.Add(ref _rows, rows);
    }

    private async Task<long> InsertCustomerAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var insert = new NpgsqlCommand(
            "INSERT INTO customers (name, email, tier, visits, balance, rating, score, active, birthday, created_at, updated_at, avatar, external_id) " +
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id", connection);
        var name = s_names[_random.Next(s_names.Length)];
        var nullable = _random.Next(8) == 0;
        insert.Parameters.Add(new NpgsqlParameter { Value = name });
        insert.Parameters.Add(new NpgsqlParameter { Value = nullable ? DBNull.Value : $"{name.Split(' ')[0].ToLowerInvariant()}{_random.Next(10_000)}@example.com", NpgsqlDbType = NpgsqlDbType.Varchar });
        insert.Parameters.Add(new NpgsqlParameter { Value = (short)_random.Next(-3, 4) });
        insert.Parameters.Add(new NpgsqlParameter { Value = nullable ? DBNull.Value : _random.Next() });
        insert.Parameters.Add(new NpgsqlParameter { Value = Math.Round((decimal)(_random.NextDouble() * 2_000_000 - 1_000_000), 2) });
        insert.Parameters.Add(new NpgsqlParameter { Value = (float)(_random.NextDouble() * 5) });
        insert.Parameters.Add(new NpgsqlParameter { Value = nullable ? DBNull.Value : (_random.NextDouble() - 0.5) * Math.Pow(10, _random.Next(-20, 20)) });
        insert.Parameters.Add(new NpgsqlParameter { Value = _random.Next(2) == 0 });
        insert.Parameters.Add(new NpgsqlParameter { Value = nullable ? DBNull.Value : new DateOnly(1900, 1, 1).AddDays(_random.Next(0, 45_000)), NpgsqlDbType = NpgsqlDbType.Date });
        insert.Parameters.Add(new NpgsqlParameter { Value = DateTime.UtcNow.AddMicroseconds(-_random.Next(0, int.MaxValue)), NpgsqlDbType = NpgsqlDbType.TimestampTz });
        insert.Parameters.Add(new NpgsqlParameter { Value = new DateTime(2020, 1, 1).AddSeconds(_random.Next(0, 200_000_000)), NpgsqlDbType = NpgsqlDbType.Timestamp });
        var avatar = new byte[_random.Next(0, 64)];
        _random.NextBytes(avatar);
        insert.Parameters.Add(new NpgsqlParameter { Value = nullable ? DBNull.Value : avatar, NpgsqlDbType = NpgsqlDbType.Bytea });
        insert.Parameters.Add(new NpgsqlParameter { Value = Guid.NewGuid() });
        return (long)(await insert.ExecuteScalarAsync(cancellationToken))!;
    }

    private async Task<long> InsertOrderAsync(NpgsqlConnection connection, long customerId, CancellationToken cancellationToken)
    {
        await using var insert = new NpgsqlCommand(
            "INSERT INTO orders (customer_id, amount, status, quantity, placed_at, note) VALUES ($1, $2, $3, $4, now(), $5) RETURNING id", connection);
        insert.Parameters.Add(new NpgsqlParameter { Value = customerId });
        insert.Parameters.Add(new NpgsqlParameter { Value = Math.Round((decimal)(_random.NextDouble() * 10_000), 2) });
        insert.Parameters.Add(new NpgsqlParameter { Value = s_statuses[0] });
        insert.Parameters.Add(new NpgsqlParameter { Value = _random.Next(1, 100) });
        insert.Parameters.Add(new NpgsqlParameter { Value = _random.Next(3) == 0 ? DBNull.Value : $"deliver to door {_random.Next(1, 300)} — please ring", NpgsqlDbType = NpgsqlDbType.Text });
        return (long)(await insert.ExecuteScalarAsync(cancellationToken))!;
    }
}
