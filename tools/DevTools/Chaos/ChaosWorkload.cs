using Npgsql;
using WalBridge.Connector.Cli;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Queue;
using WalBridge.Connector.Source;
using WalBridge.Offsets;

namespace WalBridge.DevTools.Chaos;

/// <summary>
/// The chaos run's source workload: transfers touching two tables in one transaction, inserts,
/// updates, deletes, and now and then a large transaction (about 1.5 MB, several Kafka records).
/// One serial session; survives PostgreSQL restarts by reconnecting.
/// </summary>
internal sealed class ChaosWorkload(string connectionString, int seed) : IChaosWorkload
{
    public static readonly string[] Tables = ["accounts", "ledger", "documents"];

    public IReadOnlyList<string> TableNames => Tables;

    public const string Schema = """
        CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance numeric(14,2) NOT NULL, updated_at timestamptz NOT NULL);
        CREATE TABLE ledger (id bigint PRIMARY KEY, account_id int NOT NULL, amount numeric(12,2) NOT NULL, memo text);
        CREATE TABLE documents (id int PRIMARY KEY, revision int NOT NULL, body text NOT NULL);
        """;

    /// <summary>
    /// Rows that exist before the connector first starts (<c>chaos --prefill N</c>), so the crashes of the first scenarios
    /// land inside the initial snapshot: ledger rows with ids from 10⁹ on, which the workload's own ids never reach.
    /// </summary>
    public static string Prefill(long rows) => $"""
        INSERT INTO ledger SELECT 1000000000 + g, g % 500, (g % 100000) / 100.0, CASE WHEN g % 4 = 0 THEN NULL ELSE 'prefilled ' || g END
        FROM generate_series(1, {rows}) AS g;
        ANALYZE ledger;
        """;

    private readonly Random _random = new(seed);
    private readonly SemaphoreSlim _gate = new(0, 1);
    private volatile bool _paused;
    private long _transactions;
    private long _nextLedgerId = 1;
    private int _nextAccountId = 1;
    private int _nextDocumentId = 1;

    public long Transactions => Interlocked.Read(ref _transactions);

    public void Dispose() => _gate.Dispose();

    /// <summary>Lets the workload start (after the slot exists).</summary>
    public void Enable() => _gate.Release();

    public void Pause() => _paused = true;

    public void Resume() => _paused = false;

    public async Task RunAsync(CancellationToken cancellationToken)
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
                        connection = new NpgsqlConnection(connectionString);
                        await connection.OpenAsync(CancellationToken.None);
                    }
                    await OneTransactionAsync(connection);
                    Interlocked.Increment(ref _transactions);
                    await Task.Delay(_random.Next(5, 25), CancellationToken.None);
                }
                catch (Exception e) when (e is NpgsqlException or InvalidOperationException or IOException)
                {
                    // PostgreSQL restarting: whether the last commit happened does not matter, the
                    // verification compares with whatever the source ends up holding.
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

    private async Task OneTransactionAsync(NpgsqlConnection connection)
    {
        await using var transaction = await connection.BeginTransactionAsync();
        var kind = _random.Next(100);
        if (_nextAccountId <= 20 || kind < 15)
        {
            for (var i = _random.Next(1, 4); i > 0; i--)
            {
                await ExecuteAsync(connection, "INSERT INTO accounts VALUES ($1, $2, $3, now())", _nextAccountId++, $"owner {_random.Next(1000)}", 1000m);
            }
        }
        else if (kind < 70)
        {
            var from = _random.Next(1, _nextAccountId);
            var to = _random.Next(1, _nextAccountId);
            var amount = Math.Round((decimal)_random.NextDouble() * 100, 2);
            await ExecuteAsync(connection, "UPDATE accounts SET balance = balance - $2, updated_at = now() WHERE id = $1", from, amount);
            await ExecuteAsync(connection, "UPDATE accounts SET balance = balance + $2, updated_at = now() WHERE id = $1", to, amount);
            await ExecuteAsync(connection, "INSERT INTO ledger VALUES ($1, $2, $3, $4)", _nextLedgerId++, from, -amount, $"to {to}");
            await ExecuteAsync(connection, "INSERT INTO ledger VALUES ($1, $2, $3, NULL)", _nextLedgerId++, to, amount);
        }
        else if (kind < 85)
        {
            await ExecuteAsync(connection, "DELETE FROM ledger WHERE id = $1", (long)_random.Next(1, (int)Math.Max(2, _nextLedgerId)));
        }
        else if (kind < 97)
        {
            await ExecuteAsync(connection, "INSERT INTO documents VALUES ($1, 1, $2)", _nextDocumentId++, new string('d', _random.Next(10, 2000)));
        }
        else
        {
            // Large: about 1.5 MB of rows in one transaction, cut into several Kafka records.
            var first = _nextDocumentId;
            _nextDocumentId += 3000;
            await ExecuteAsync(connection,
                "INSERT INTO documents SELECT g, 1, repeat(md5(g::text), 15) FROM generate_series($1::int, $2::int) g", first, first + 2999);
            // A subtransaction that is rolled back: its rows must never appear.
            await ExecuteAsync(connection, "SAVEPOINT doomed");
            await ExecuteAsync(connection,
                "INSERT INTO documents SELECT g, 99, repeat('x', 400) FROM generate_series($1::int, $2::int) g", first + 3000, first + 3999);
            await ExecuteAsync(connection, "UPDATE accounts SET balance = -1 WHERE id = 1");
            await ExecuteAsync(connection, "ROLLBACK TO SAVEPOINT doomed");
            _nextDocumentId += 1000;
            await ExecuteAsync(connection, "UPDATE documents SET revision = revision + 1 WHERE id BETWEEN $1 AND $2 AND id % 7 = 0", first, first + 2999);
        }
        await transaction.CommitAsync();
    }

    /// <inheritdoc/>
    public async Task<Lsn> LastPositionAsync()
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await using var connection = new NpgsqlConnection(connectionString);
                await connection.OpenAsync();
                await using var transaction = await connection.BeginTransactionAsync();
                await ExecuteAsync(connection, "INSERT INTO ledger VALUES ($1, 0, 0, 'end of workload')", _nextLedgerId++);
                await using var position = new NpgsqlCommand("SELECT pg_current_wal_insert_lsn()::text", connection);
                var lsn = Lsn.Parse((string)(await position.ExecuteScalarAsync())!);
                await transaction.CommitAsync();
                return lsn;
            }
            catch (NpgsqlException) when (attempt < 20)
            {
                await Task.Delay(500);
            }
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, params object[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter });
        }

        await command.ExecuteNonQueryAsync();
    }
}
