using Microsoft.Extensions.Logging;
using Npgsql;
using Npgsql.Replication;
using WalBridge.Connector.Configuration;
using WalBridge.Offsets;

namespace WalBridge.Connector.Replication;

/// <summary>What the source looks like once it is ready to stream.</summary>
/// <param name="Identity">System identifier, timeline, slot and publication.</param>
/// <param name="SlotConfirmedFlush">The slot's <c>confirmed_flush_lsn</c> (zero when just created).</param>
/// <param name="SlotCreated">Whether this start created the slot.</param>
public sealed record SourceState(SourceIdentity Identity, Lsn SlotConfirmedFlush, bool SlotCreated);

/// <summary>
/// Checks the source's preconditions and creates the publication and the replication slot when
/// missing. Runs once per pipeline start, before streaming.
/// </summary>
internal sealed partial class SourceSetup(ConnectorConfig config, ILogger logger)
{
    private const string PluginName = "pgoutput";

    /// <exception cref="SourceNotReadyException">A precondition fails; the message says what to change.</exception>
    /// <exception cref="NpgsqlException">The server cannot be reached (transient).</exception>
    public async Task<SourceState> PrepareAsync(CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(config.ConnectionString(replication: false));
        await connection.OpenAsync(cancellationToken);

        var walLevel = (string?)await Scalar(connection, "SHOW wal_level", cancellationToken);
        if (walLevel != "logical")
            throw new SourceNotReadyException(
                $"The source's wal_level is '{walLevel}', logical replication needs 'logical'. Set wal_level = logical in postgresql.conf (or ALTER SYSTEM SET wal_level = logical) and restart PostgreSQL.");

        await EnsurePublicationAsync(connection, cancellationToken);
        var (confirmedFlush, created) = await EnsureSlotAsync(connection, cancellationToken);

        await using var replication = new LogicalReplicationConnection(config.ConnectionString(replication: true));
        await replication.Open(cancellationToken);
        var system = await replication.IdentifySystem(cancellationToken);
        var identity = new SourceIdentity(system.SystemId, system.Timeline, config.SlotName, config.PublicationName);
        return new SourceState(identity, confirmedFlush, created);
    }

    private async Task EnsurePublicationAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using (var exists = new NpgsqlCommand("SELECT 1 FROM pg_publication WHERE pubname = $1", connection))
        {
            exists.Parameters.Add(new NpgsqlParameter { Value = config.PublicationName });
            if (await exists.ExecuteScalarAsync(cancellationToken) is not null)
                return;
        }

        string ddl;
        var quoted = QuoteIdentifier(config.PublicationName);
        if (config.TableIncludeList.Count == 0)
        {
            ddl = $"CREATE PUBLICATION {quoted} FOR ALL TABLES";
        }
        else
        {
            var tables = new List<string>();
            await using (var list = new NpgsqlCommand(
                "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace " +
                "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' " +
                "ORDER BY 1, 2", connection))
            await using (var reader = await list.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    var schema = reader.GetString(0);
                    var table = reader.GetString(1);
                    if (config.Includes(schema, table))
                        tables.Add($"{QuoteIdentifier(schema)}.{QuoteIdentifier(table)}");
                }
            }
            if (tables.Count == 0)
                throw new SourceNotReadyException(
                    $"No table of database '{config.DatabaseName}' matches table.include.list; check the expressions (they must match the whole 'schema.table').");
            ddl = $"CREATE PUBLICATION {quoted} FOR TABLE {string.Join(", ", tables)}";
        }

        await using var create = new NpgsqlCommand(ddl, connection);
        try
        {
            await create.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            throw new SourceNotReadyException(
                $"User '{config.DatabaseUser}' may not create publication '{config.PublicationName}': {e.MessageText}. Create it as a superuser or table owner, or grant the privilege.", e);
        }
        LogPublicationCreated(logger, config.PublicationName, ddl);
    }

    private async Task<(Lsn ConfirmedFlush, bool Created)> EnsureSlotAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using (var query = new NpgsqlCommand(
            "SELECT plugin, database, confirmed_flush_lsn::text, slot_type FROM pg_replication_slots WHERE slot_name = $1", connection))
        {
            query.Parameters.Add(new NpgsqlParameter { Value = config.SlotName });
            await using var reader = await query.ExecuteReaderAsync(cancellationToken);
            if (await reader.ReadAsync(cancellationToken))
            {
                var plugin = reader.IsDBNull(0) ? null : reader.GetString(0);
                var database = reader.IsDBNull(1) ? null : reader.GetString(1);
                var type = reader.GetString(3);
                if (type != "logical" || plugin != PluginName)
                    throw new SourceNotReadyException(
                        $"Replication slot '{config.SlotName}' exists but is a {type} slot for plugin '{plugin}', not a logical slot for '{PluginName}'. Choose another slot.name or drop that slot.");
                if (database != config.DatabaseName)
                    throw new SourceNotReadyException(
                        $"Replication slot '{config.SlotName}' belongs to database '{database}', not '{config.DatabaseName}'. Choose another slot.name.");
                var confirmed = reader.IsDBNull(2) ? Lsn.Zero : Lsn.Parse(reader.GetString(2));
                return (confirmed, false);
            }
        }

        await using var create = new NpgsqlCommand("SELECT lsn::text FROM pg_create_logical_replication_slot($1, $2)", connection);
        create.Parameters.Add(new NpgsqlParameter { Value = config.SlotName });
        create.Parameters.Add(new NpgsqlParameter { Value = PluginName });
        create.CommandTimeout = 120;
        try
        {
            var lsn = Lsn.Parse((string)(await create.ExecuteScalarAsync(cancellationToken))!);
            LogSlotCreated(logger, config.SlotName, lsn);
            return (lsn, true);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ConfigurationLimitExceeded)
        {
            throw new SourceNotReadyException(
                $"Cannot create replication slot '{config.SlotName}': {e.MessageText}. Raise max_replication_slots in postgresql.conf (restart needed) or drop unused slots.", e);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            throw new SourceNotReadyException(
                $"User '{config.DatabaseUser}' may not create replication slots: {e.MessageText}. Grant it: ALTER ROLE {config.DatabaseUser} WITH REPLICATION.", e);
        }
    }

    /// <summary>Drops the configured slot (best effort; used when a start is refused right after creating it).</summary>
    public async Task DropSlotAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = new NpgsqlConnection(config.ConnectionString(replication: false));
            await connection.OpenAsync(cancellationToken);
            await using var drop = new NpgsqlCommand(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", connection);
            drop.Parameters.Add(new NpgsqlParameter { Value = config.SlotName });
            await drop.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (NpgsqlException e)
        {
            LogDropFailed(logger, config.SlotName, e.Message);
        }
    }

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning, Message = "Could not drop replication slot {Slot}: {Reason}")]
    private static partial void LogDropFailed(ILogger logger, string slot, string reason);

    private static async Task<object?> Scalar(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync(cancellationToken);
    }

    internal static string QuoteIdentifier(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Created publication {Publication}: {Ddl}")]
    private static partial void LogPublicationCreated(ILogger logger, string publication, string ddl);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Information, Message = "Created replication slot {Slot} at {Lsn}")]
    private static partial void LogSlotCreated(ILogger logger, string slot, Lsn lsn);
}
