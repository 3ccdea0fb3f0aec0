using System.Text.Json;
using Microsoft.Extensions.Logging;
using Npgsql;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Source;
using WalBridge.Connector.Transactions;

namespace WalBridge.Connector.Snapshot;

/// <summary>
/// The signal table (<c>signal.data.collection</c>) in Debezium's shape: <c>id</c>, <c>type</c>, <c>data</c>. This
/// connector carries out <c>execute-snapshot</c> signals whose <c>data</c> is
/// <c>{"data-collections": ["schema.table", …], "type": "incremental"}</c>; anything else is an error.
/// The one owner of the signal's format, for the runner that reads signals and for the writers (the <c>snapshot</c>
/// command, the operations endpoint).
/// </summary>
internal static partial class SignalTable
{
    /// <summary>The only signal type carried out.</summary>
    public const string ExecuteSnapshot = "execute-snapshot";

    /// <summary>The table's name, quoted.</summary>
    public static string Quoted(ConnectorConfig config)
    {
        var name = config.SignalDataCollection ?? throw new InvalidOperationException("signal.data.collection is not set.");
        var dot = name.IndexOf('.', StringComparison.Ordinal);
        return $"{SourceSetup.QuoteIdentifier(name[..dot])}.{SourceSetup.QuoteIdentifier(name[(dot + 1)..])}";
    }

    /// <summary>Creates the signal table when it does not exist (Debezium's columns).</summary>
    public static async Task EnsureAsync(NpgsqlConnection connection, ConnectorConfig config, ILogger logger, CancellationToken cancellationToken)
    {
        await using (var exists = new NpgsqlCommand("SELECT to_regclass($1) IS NOT NULL", connection))
        {
            exists.Parameters.Add(new NpgsqlParameter { Value = Quoted(config) });
            if (await exists.ExecuteScalarAsync(cancellationToken) is true)
            {
                return;
            }
        }

        var ddl = $"CREATE TABLE IF NOT EXISTS {Quoted(config)} (id varchar(64) PRIMARY KEY, type varchar(32) NOT NULL, data varchar(8192))";
        try
        {
            await using var create = new NpgsqlCommand(ddl, connection);
            await create.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UniqueViolation or PostgresErrorCodes.DuplicateTable)
        {
            // Created at the same moment by another session (the running connector, the snapshot command).
            return;
        }
        catch (PostgresException e)
        {
            throw new Errors.SourceNotReadyException(
                $"The signal table {config.SignalDataCollection} (signal.data.collection) does not exist and cannot be created ({e.MessageText}). Create it: {ddl}; or unset signal.data.collection.", e);
        }

        LogCreated(logger, config.SlotName, config.SignalDataCollection!);
    }

    /// <summary>A signal row as a request, or null with the <paramref name="problem"/> that keeps it from being carried out.</summary>
    public static SnapshotRequest? Parse(string id, string type, string? data, out string? problem)
    {
        problem = null;
        if (type != ExecuteSnapshot)
        {
            problem = $"its type '{type}' is not supported (this connector carries out '{ExecuteSnapshot}')";
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(data ?? "");
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                problem = "its data is not a JSON object";
                return null;
            }

            var tables = new List<string>();
            foreach (var property in document.RootElement.EnumerateObject())
            {
                switch (property.Name)
                {
                    case "data-collections" when property.Value.ValueKind == JsonValueKind.Array:
                        foreach (var item in property.Value.EnumerateArray())
                        {
                            if (item.ValueKind != JsonValueKind.String || item.GetString() is not { Length: > 0 } name)
                            {
                                problem = "data-collections must list table names as strings ('schema.table')";
                                return null;
                            }

                            tables.Add(name);
                        }

                        break;
                    case "type" when property.Value.ValueKind == JsonValueKind.String:
                        if (!string.Equals(property.Value.GetString(), "incremental", StringComparison.OrdinalIgnoreCase))
                        {
                            problem = $"snapshot type '{property.Value.GetString()}' is not supported (this connector takes incremental snapshots)";
                            return null;
                        }

                        break;
                    default:
                        problem = $"its data has '{property.Name}', which this connector does not support (it reads 'data-collections' and 'type')";
                        return null;
                }
            }

            if (tables.Count == 0)
            {
                problem = "its data lists no table in data-collections";
                return null;
            }

            return new SnapshotRequest(id, tables.Distinct(StringComparer.Ordinal).ToList());
        }
        catch (JsonException e)
        {
            problem = $"its data is not valid JSON ({e.Message})";
            return null;
        }
    }

    /// <summary>Why <paramref name="table"/> cannot be snapshotted incrementally, or null when it can.</summary>
    public static string? Problem(IReadOnlyList<SnapshotTable> published, string table)
    {
        if (published.FirstOrDefault(t => t.Name == table) is not { } found)
        {
            return "it is not in the connector's publication (name it as schema.table, and select it with table.include.list)";
        }

        if (found.RowKey.Count == 0)
        {
            return $"it has no primary key or replica identity index, so rows read while it changes cannot be matched with the stream's changes. " +
                $"Add one (ALTER TABLE {found.QuotedName} ADD PRIMARY KEY (…); or ALTER TABLE {found.QuotedName} REPLICA IDENTITY USING INDEX …;). " +
                "Without a key its rows are delivered by the initial snapshot only";
        }

        return null;
    }

    /// <summary>
    /// Writes an <c>execute-snapshot</c> signal for <paramref name="tables"/> after checking each; returns its id.
    /// </summary>
    /// <exception cref="ConfigurationException">No signal table is configured, or a table cannot be snapshotted incrementally (the message names each and says why).</exception>
    public static async Task<string> WriteAsync(ConnectorConfig config, IReadOnlyList<string> tables, ILogger logger, CancellationToken cancellationToken)
    {
        if (config.SignalDataCollection is null)
        {
            throw new ConfigurationException("Incremental snapshots are asked for through the signal table: set signal.data.collection (e.g. signal.data.collection=public.walbridge_signal) in the connector's configuration and restart it.");
        }

        if (tables.Count == 0)
        {
            throw new ConfigurationException("Name at least one table to snapshot (schema.table).");
        }

        await using var connection = new NpgsqlConnection(config.ConnectionString(replication: false));
        await connection.OpenAsync(cancellationToken);
        var published = await SnapshotCatalog.LoadAsync(connection, config, cancellationToken);
        var problems = tables.Select(t => (Table: t, Problem: Problem(published, t))).Where(p => p.Problem is not null).ToList();
        if (problems.Count > 0)
        {
            throw new ConfigurationException(string.Join("; ", problems.Select(p => $"Table {p.Table} cannot be snapshotted incrementally: {p.Problem}")) + ".");
        }

        await EnsureAsync(connection, config, logger, cancellationToken);
        var request = new SnapshotRequest(NewId("walbridge"), tables);
        await InsertAsync(connection, config, request, cancellationToken);
        return request.Signal;
    }

    /// <summary>A new signal id: <paramref name="origin"/>, the time and a random part (at most 64 characters).</summary>
    public static string NewId(string origin) => $"{origin}-{DateTimeOffset.UtcNow:yyyyMMddHHmmss}-{Guid.NewGuid():N}";

    /// <summary>Inserts <paramref name="request"/> as an <c>execute-snapshot</c> signal row (the table exists).</summary>
    public static async Task InsertAsync(NpgsqlConnection connection, ConnectorConfig config, SnapshotRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var data = JsonSerializer.Serialize(new Dictionary<string, object> { ["data-collections"] = request.Tables, ["type"] = "incremental" });
        await using var insert = new NpgsqlCommand($"INSERT INTO {Quoted(config)} (id, type, data) VALUES ($1, $2, $3)", connection);
        insert.Parameters.Add(new NpgsqlParameter { Value = request.Signal });
        insert.Parameters.Add(new NpgsqlParameter { Value = ExecuteSnapshot });
        insert.Parameters.Add(new NpgsqlParameter { Value = data });
        await insert.ExecuteNonQueryAsync(cancellationToken);
    }

    [LoggerMessage(EventId = 1518, Level = LogLevel.Information, Message = "Slot {Slot}: created the signal table {Table} (signal.data.collection)")]
    private static partial void LogCreated(ILogger logger, string slot, string table);
}
