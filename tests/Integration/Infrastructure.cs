using WalBridge.Broker;
using WalBridge.DevTools.Embedded;

namespace WalBridge.Integration.Tests;

/// <summary>
/// One throwaway PostgreSQL and one local broker (its own process) shared by the integration
/// tests; each test owns its database, slot, publication and topic names.
/// </summary>
public sealed class Infrastructure : IAsyncLifetime
{
    public TemporaryPostgres Postgres { get; private set; } = null!;
    public LocalBroker Broker { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var postgres = TemporaryPostgres.StartAsync();
        var broker = LocalBroker.StartAsync(3);
        try
        {
            Postgres = await postgres;
        }
        finally
        {
            Broker = await broker;
        }
    }

    public async Task DisposeAsync()
    {
        if (Broker is not null)
        {
            await Broker.DisposeAsync();
        }

        if (Postgres is not null)
        {
            await Postgres.DisposeAsync();
        }
    }

    /// <summary>A connector configuration for <paramref name="database"/> on this infrastructure, with unique topics and state.</summary>
    public WalBridge.Connector.Configuration.ConnectorConfig Config(string database, string prefix, IReadOnlyDictionary<string, string>? extra = null)
    {
        var values = new Dictionary<string, string>
        {
            ["name"] = database,
            ["database.hostname"] = Postgres.Host,
            ["database.port"] = Postgres.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["database.user"] = Postgres.User,
            ["database.dbname"] = database,
            ["database.sslmode"] = "disable",
            ["topic.prefix"] = $"{prefix}{Guid.NewGuid():N}"[..20],
            ["state.dir"] = Path.Combine(Path.GetTempPath(), $"walbridge-test-state-{Guid.NewGuid():N}"),
            ["kafka.bootstrap.servers"] = Broker.BootstrapServers,
        };
        foreach (var (key, value) in extra ?? new Dictionary<string, string>())
        {
            values[key] = value;
        }

        return WalBridge.Connector.Configuration.ConnectorConfig.FromDictionary(values);
    }

    /// <summary>A position before a fresh marker commit: committed past it means everything before arrived.</summary>
    public async Task<WalBridge.Offsets.Lsn> FloorAsync(string database)
    {
        await using var connection = new Npgsql.NpgsqlConnection(Postgres.ConnectionString(database));
        await connection.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using var marker = new Npgsql.NpgsqlCommand("SELECT pg_logical_emit_message(true, 'test.marker', ''), pg_current_wal_insert_lsn()::text", connection, transaction);
        await using var reader = await marker.ExecuteReaderAsync();
        await reader.ReadAsync();
        var lsn = WalBridge.Offsets.Lsn.Parse(reader.GetString(1));
        await reader.CloseAsync();
        await transaction.CommitAsync();
        return lsn;
    }

    /// <summary>Removes a test's slot (when no connector holds it) and its state directory.</summary>
    public async Task DropSlotAsync(WalBridge.Connector.Configuration.ConnectorConfig config, string database)
    {
        ArgumentNullException.ThrowIfNull(config);
        await Postgres.ExecuteAsync(
            $"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{config.SlotName}' AND NOT active", database);
        if (Directory.Exists(config.StateDirectory))
        {
            Directory.Delete(config.StateDirectory, recursive: true);
        }
    }

    /// <summary>A fresh database with a unique name.</summary>
    public async Task<string> CreateDatabaseAsync(string prefix)
    {
        var name = $"{prefix}_{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 13, 63)];
        await Postgres.ExecuteAsync($"CREATE DATABASE {name}");
        return name;
    }
}

[CollectionDefinition(Name)]
public sealed class InfrastructureCollection : ICollectionFixture<Infrastructure>
{
    public const string Name = "infrastructure";
}
