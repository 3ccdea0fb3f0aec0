using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using Npgsql;
using Npgsql.Replication;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Errors;
using WalBridge.Offsets;

namespace WalBridge.Connector.Source;

/// <summary>What the source looks like once it is ready to stream.</summary>
/// <param name="Identity">System identifier, timeline, slot and publication.</param>
/// <param name="SlotConfirmedFlush">The slot's <c>confirmed_flush_lsn</c> (zero when just created).</param>
/// <param name="SlotCreated">Whether this start created the slot.</param>
public sealed record SourceState(SourceIdentity Identity, Lsn SlotConfirmedFlush, bool SlotCreated)
{
    /// <summary>
    /// When this start created the slot with an exported snapshot (<c>snapshot.mode</c> other than <c>no_data</c>): the
    /// snapshot, valid until it is disposed. Null otherwise.
    /// </summary>
    public ExportedSnapshot? Export { get; init; }

    /// <summary>Closes the exported snapshot's connection, if any (idempotent).</summary>
    public async ValueTask DisposeExportAsync()
    {
        if (Export is not null)
        {
            await Export.DisposeAsync();
        }
    }

    /// <summary>Whether the slot was invalidated and replaced by this start (<c>snapshot.mode = when_needed</c>): changes since Kafka's position are lost.</summary>
    public bool SlotReplaced { get; init; }

    /// <summary>Tables this start added to the filtered publication (newly selected by <c>table.include.list</c>), as <c>schema.table</c>.</summary>
    public IReadOnlyList<string> AddedTables { get; init; } = [];

    /// <summary>The current timeline's history (where each earlier timeline ended); empty on timeline 1.</summary>
    public IReadOnlyList<TimelineSwitch> TimelineHistory { get; init; } = [];
}

/// <summary>
/// The snapshot a new slot exported: the tables' state at the slot's consistent point. Sessions import it with
/// <c>SET TRANSACTION SNAPSHOT</c> while the replication connection that created the slot stays open and idle;
/// disposing closes that connection, after which the name is no longer valid.
/// </summary>
/// <param name="Name">The snapshot's name for <c>SET TRANSACTION SNAPSHOT</c>.</param>
/// <param name="ConsistentPoint">The slot's consistent point: streaming delivers exactly the transactions committed after it.</param>
/// <param name="Connection">The replication connection holding the snapshot.</param>
public sealed record ExportedSnapshot(string Name, Lsn ConsistentPoint, LogicalReplicationConnection Connection) : IAsyncDisposable
{
    public ValueTask DisposeAsync() => Connection.DisposeAsync();
}

/// <summary>
/// Prepares the source before streaming: checks every precondition (each failure names what to
/// change), creates the publication or keeps a filtered one in sync with the table lists, and
/// creates the replication slot when missing. Runs once per pipeline start.
/// </summary>
internal sealed partial class SourceSetup(ConnectorConfig config, ILogger logger)
{
    private string PluginName => config.Plugin.Name();

    /// <summary>Tables this start added to the filtered publication (<c>schema.table</c>).</summary>
    private readonly List<string> _addedTables = [];

    /// <summary><c>server_version_num</c> of the source, read by <see cref="PrepareAsync"/>.</summary>
    private int _serverVersion;

    /// <exception cref="SourceNotReadyException">A precondition fails; the message says what to change.</exception>
    /// <exception cref="NpgsqlException">The server cannot be reached (transient).</exception>
    public async Task<SourceState> PrepareAsync(CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(config.ConnectionString(replication: false));
        await connection.OpenAsync(cancellationToken);

        var walLevel = (string?)await Scalar(connection, "SHOW wal_level", cancellationToken);
        if (walLevel != "logical")
        {
            throw new SourceNotReadyException(
                $"The source's wal_level is '{walLevel}', logical replication needs 'logical'. Set wal_level = logical in postgresql.conf (or ALTER SYSTEM SET wal_level = logical) and restart PostgreSQL.");
        }

        if (await Scalar(connection, "SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user", cancellationToken) is not true)
        {
            throw new SourceNotReadyException(
                $"User '{config.DatabaseUser}' has no REPLICATION privilege, which logical replication needs. Grant it: ALTER ROLE \"{config.DatabaseUser}\" WITH REPLICATION; (or connect as a user that has it).");
        }

        if (config.Plugin == DecodingPlugin.Wal2Arrow)
        {
            await CheckWal2ArrowLoadableAsync(connection, cancellationToken);
        }

        _serverVersion = connection.PostgreSqlVersion.Major * 10000 + connection.PostgreSqlVersion.Minor;
        Failover.CheckServer(config, _serverVersion, await Scalar(connection, "SELECT pg_is_in_recovery()", cancellationToken) is true);

        await EnsurePublicationAsync(connection, cancellationToken);
        await CheckReplicaIdentitiesAsync(connection, cancellationToken);
        // A free WAL sender first: creating the slot with an exported snapshot takes one itself.
        await CheckWalSenderAsync(connection, cancellationToken);
        // Identified before the slot is created: the connection exporting the snapshot may run no other command, and
        // the identifying connection is closed again so the export needs only one WAL sender.
        SourceIdentity identity;
        IReadOnlyList<TimelineSwitch> history = [];
        await using (var replication = new LogicalReplicationConnection(config.ConnectionString(replication: true)))
        {
            await replication.Open(cancellationToken);
            var system = await replication.IdentifySystem(cancellationToken);
            identity = new SourceIdentity(system.SystemId, system.Timeline, config.SlotName, config.PublicationName);
            if (system.Timeline > 1)
            {
                var file = await replication.TimelineHistory(system.Timeline, cancellationToken);
                history = Failover.ParseHistory(Encoding.UTF8.GetString(file.Content));
            }
        }

        var (confirmedFlush, created, export, replaced) = await EnsureSlotAsync(connection, cancellationToken);

        return new SourceState(identity, confirmedFlush, created) { TimelineHistory = history, Export = export, SlotReplaced = replaced, AddedTables = [.. _addedTables] };
    }

    /// <summary>
    /// PostgreSQL 15.20+ loads only the output plugins listed in <c>output_plugin_libraries</c> (the
    /// setting does not exist in earlier minors); the library itself must be in the server's library
    /// folder or on <c>dynamic_library_path</c>.
    /// </summary>
    private static async Task CheckWal2ArrowLoadableAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var allowed = new NpgsqlCommand("SELECT current_setting('output_plugin_libraries', true)", connection);
        if (await allowed.ExecuteScalarAsync(cancellationToken) is string list
            && !list.Split(',').Select(s => s.Trim()).Contains(DecodingPlugin.Wal2Arrow.Name()))
        {
            throw new SourceNotReadyException(
                $"plugin = wal2arrow, but this server only loads the output plugins in output_plugin_libraries ('{list}'). " +
                "Add it (output_plugin_libraries = 'pgoutput, test_decoding, wal2arrow' in postgresql.conf; restart), and install wal2arrow.so into the server's library folder (see native/wal2arrow/README.md), or use plugin = pgoutput.");
        }
    }

    private async Task EnsurePublicationAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var quoted = QuoteIdentifier(config.PublicationName);
        bool? allTables = null;
        var viaRoot = false;
        await using (var exists = new NpgsqlCommand("SELECT puballtables, pubviaroot FROM pg_publication WHERE pubname = $1", connection))
        {
            exists.Parameters.Add(new NpgsqlParameter { Value = config.PublicationName });
            await using var reader = await exists.ExecuteReaderAsync(cancellationToken);
            if (await reader.ReadAsync(cancellationToken))
            {
                allTables = reader.GetBoolean(0);
                viaRoot = reader.GetBoolean(1);
            }
        }
        var with = $"WITH (publish_via_partition_root = {(config.PublishViaPartitionRoot ? "true" : "false")})";

        if (!config.FiltersTables)
        {
            if (allTables is null)
            {
                await ExecutePublicationDdlAsync(connection, $"CREATE PUBLICATION {quoted} FOR ALL TABLES {with}", cancellationToken);
            }
            else if (viaRoot != config.PublishViaPartitionRoot)
            {
                await ExecutePublicationDdlAsync(connection, $"ALTER PUBLICATION {quoted} SET (publish_via_partition_root = {(config.PublishViaPartitionRoot ? "true" : "false")})", cancellationToken);
            }

            return;
        }

        // Filtered: the publication holds exactly the tables the lists select, at every start.
        if (allTables is true)
        {
            throw new SourceNotReadyException(
                $"Publication '{config.PublicationName}' is FOR ALL TABLES, but table.include.list/table.exclude.list select tables. Drop it (DROP PUBLICATION {quoted};) so the connector creates a filtered one, or remove the table lists.");
        }

        var wanted = await SelectedTablesAsync(connection, cancellationToken);
        if (wanted.Count == 0)
        {
            throw new SourceNotReadyException(
                $"No table of database '{config.DatabaseName}' is selected by table.include.list/table.exclude.list; check the expressions (they must match the whole 'schema.table').");
        }

        var list = string.Join(", ", wanted);
        if (allTables is null)
        {
            await ExecutePublicationDdlAsync(connection, $"CREATE PUBLICATION {quoted} FOR TABLE {list} {with}", cancellationToken);
            return;
        }
        var current = new List<string>();
        await using (var tables = new NpgsqlCommand(
            // Quoted as QuoteIdentifier quotes (always), so the lists compare equal when the tables are the same.
            "SELECT '\"' || replace(n.nspname, '\"', '\"\"') || '\".\"' || replace(c.relname, '\"', '\"\"') || '\"' FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid " +
            "JOIN pg_class c ON c.oid = r.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE p.pubname = $1 ORDER BY 1", connection))
        {
            tables.Parameters.Add(new NpgsqlParameter { Value = config.PublicationName });
            await using var reader = await tables.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                current.Add(reader.GetString(0));
            }
        }
        if (!current.Order(StringComparer.Ordinal).SequenceEqual(wanted.Order(StringComparer.Ordinal)) || viaRoot != config.PublishViaPartitionRoot)
        {
            var added = wanted.Except(current, StringComparer.Ordinal).ToArray();
            if (added.Length > 0)
            {
                // Unquoted schema.table, as snapshots name tables.
                await using var names = new NpgsqlCommand(
                    "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ANY ($1::text[]::regclass[]) ORDER BY 1", connection);
                names.Parameters.Add(new NpgsqlParameter { Value = added });
                await using var reader = await names.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    _addedTables.Add(reader.GetString(0));
                }
            }

            await ExecutePublicationDdlAsync(connection, $"ALTER PUBLICATION {quoted} SET TABLE {list}", cancellationToken);
            await ExecutePublicationDdlAsync(connection, $"ALTER PUBLICATION {quoted} SET (publish_via_partition_root = {(config.PublishViaPartitionRoot ? "true" : "false")})", cancellationToken);
        }
    }

    /// <summary>Quoted <c>schema.table</c> names of the tables the lists select (partitioned roots, not their partitions).</summary>
    private async Task<List<string>> SelectedTablesAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var tables = new List<string>();
        await using var list = new NpgsqlCommand(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace " +
            "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog', 'information_schema') " +
            "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' ORDER BY 1, 2", connection);
        await using var reader = await list.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var schema = reader.GetString(0);
            var table = reader.GetString(1);
            if (config.Includes(schema, table))
            {
                tables.Add($"{QuoteIdentifier(schema)}.{QuoteIdentifier(table)}");
            }
        }
        return tables;
    }

    private async Task ExecutePublicationDdlAsync(NpgsqlConnection connection, string ddl, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(ddl, connection);
        try
        {
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            throw new SourceNotReadyException(
                $"User '{config.DatabaseUser}' may not change publication '{config.PublicationName}' ({ddl}): {e.MessageText}. Run it as a superuser or the tables' owner, or grant the privilege.", e);
        }
        LogPublicationChanged(logger, config.PublicationName, ddl);
    }

    /// <summary>
    /// Every published table that publishes updates or deletes needs a replica identity that can
    /// carry them: PostgreSQL itself rejects UPDATE/DELETE on such a table otherwise.
    /// </summary>
    private async Task CheckReplicaIdentitiesAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var query = new NpgsqlCommand("""
            SELECT format('%I.%I', t.schemaname, t.tablename), c.relreplident,
                   EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
            FROM pg_publication_tables t
            JOIN pg_namespace n ON n.nspname = t.schemaname
            JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.tablename
            JOIN pg_publication p ON p.pubname = t.pubname
            WHERE t.pubname = $1 AND (p.pubupdate OR p.pubdelete) AND c.relkind = 'r'
              AND (c.relreplident = 'n' OR (c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))
            ORDER BY 1
            """, connection);
        query.Parameters.Add(new NpgsqlParameter { Value = config.PublicationName });
        var problems = new List<string>();
        await using (var reader = await query.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                var table = reader.GetString(0);
                problems.Add(reader.GetChar(1) == 'n'
                    ? $"{table} has REPLICA IDENTITY NOTHING"
                    : $"{table} has REPLICA IDENTITY DEFAULT but no primary key");
            }
        }
        if (problems.Count > 0)
        {
            throw new SourceNotReadyException(
                $"Published tables whose updates and deletes cannot be replicated (PostgreSQL rejects UPDATE/DELETE on them while they are published): {string.Join("; ", problems)}. " +
                "Give each a primary key, or ALTER TABLE <table> REPLICA IDENTITY FULL (or USING INDEX <unique index>), or leave it out with table.exclude.list.");
        }
    }

    private async Task<(Lsn ConfirmedFlush, bool Created, ExportedSnapshot? Export, bool Replaced)> EnsureSlotAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var replaced = false;
        await using (var query = new NpgsqlCommand(
            "SELECT plugin, database, confirmed_flush_lsn::text, slot_type, wal_status FROM pg_replication_slots WHERE slot_name = $1", connection))
        {
            query.Parameters.Add(new NpgsqlParameter { Value = config.SlotName });
            await using var reader = await query.ExecuteReaderAsync(cancellationToken);
            if (await reader.ReadAsync(cancellationToken))
            {
                var plugin = reader.IsDBNull(0) ? null : reader.GetString(0);
                var database = reader.IsDBNull(1) ? null : reader.GetString(1);
                var type = reader.GetString(3);
                if (type != "logical" || plugin != PluginName)
                {
                    throw new SourceNotReadyException(
                        $"Replication slot '{config.SlotName}' exists but is a {type} slot for plugin '{plugin}', not a logical slot for '{PluginName}'. Choose another slot.name or drop that slot.");
                }

                if (database != config.DatabaseName)
                {
                    throw new SourceNotReadyException(
                        $"Replication slot '{config.SlotName}' belongs to database '{database}', not '{config.DatabaseName}'. Choose another slot.name.");
                }

                if (!reader.IsDBNull(4) && reader.GetString(4) == "lost" && config.SnapshotMode == SnapshotMode.WhenNeeded)
                {
                    // when_needed: replace the invalidated slot and snapshot again; the gap is named by StartPosition.
                    await reader.DisposeAsync();
                    LogSlotLostReplacing(logger, config.SlotName);
                    await using var drop = new NpgsqlCommand("SELECT pg_drop_replication_slot($1)", connection);
                    drop.Parameters.Add(new NpgsqlParameter { Value = config.SlotName });
                    await drop.ExecuteNonQueryAsync(cancellationToken);
                    replaced = true;
                    goto create;
                }

                if (!reader.IsDBNull(4) && reader.GetString(4) == "lost")
                {
                    throw new SourceNotReadyException(
                        $"Replication slot '{config.SlotName}' is invalidated (wal_status 'lost': the WAL it needed was removed, see max_slot_wal_keep_size). Changes were lost; set snapshot.mode = when_needed to replace the slot and snapshot the tables again, or re-snapshot into new topics with a new slot.name.");
                }

                var confirmed = reader.IsDBNull(2) ? Lsn.Zero : Lsn.Parse(reader.GetString(2));
                await reader.DisposeAsync();
                if (config.SlotFailover && _serverVersion >= Failover.FailoverSlotsVersion)
                {
                    await CheckFailoverSlotAsync(connection, cancellationToken);
                }

                return (confirmed, false, null, false);
            }
        }

    create:

        var used = Convert.ToInt64(await Scalar(connection, "SELECT count(*) FROM pg_replication_slots", cancellationToken), CultureInfo.InvariantCulture);
        var max = long.Parse((string)(await Scalar(connection, "SHOW max_replication_slots", cancellationToken))!, CultureInfo.InvariantCulture);
        if (used >= max)
        {
            throw new SourceNotReadyException(
                $"No free replication slot for '{config.SlotName}': {used} of max_replication_slots = {max} are in use. Drop unused slots (SELECT slot_name, active FROM pg_replication_slots; SELECT pg_drop_replication_slot('<name>');) or raise max_replication_slots (restart needed).");
        }

        // Creating a logical slot waits for every transaction that holds an xid to end; bound it and
        // say who is in the way instead of hanging.
        await using (var timeout = new NpgsqlCommand(
            $"SET statement_timeout = {(long)config.SlotCreateTimeout.TotalMilliseconds}", connection))
        {
            await timeout.ExecuteNonQueryAsync(cancellationToken);
        }

        if (config.SnapshotMode.TakesInitialSnapshot() && !config.SlotFailover)
        {
            var export = await CreateSlotWithSnapshotAsync(connection, cancellationToken);
            return (export.ConsistentPoint, true, export, replaced);
        }

        // slot.failover (PostgreSQL 17+, checked by Failover.CheckServer): the slot is synchronized to physical standbys.
        // Created from SQL, it exports no snapshot: a snapshot then reads the tables' current state (docs/format.md, snapshots).
        await using var create = new NpgsqlCommand(config.SlotFailover
            ? "SELECT lsn::text FROM pg_create_logical_replication_slot($1, $2, false, false, true)"
            : "SELECT lsn::text FROM pg_create_logical_replication_slot($1, $2)", connection);
        create.Parameters.Add(new NpgsqlParameter { Value = config.SlotName });
        create.Parameters.Add(new NpgsqlParameter { Value = PluginName });
        create.CommandTimeout = 0;
        try
        {
            var lsn = Lsn.Parse((string)(await create.ExecuteScalarAsync(cancellationToken))!);
            LogSlotCreated(logger, config.SlotName, lsn);
            return (lsn, true, null, replaced);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.QueryCanceled)
        {
            var blockers = await BlockersAsync(connection, cancellationToken);
            throw new SourceNotReadyException(
                $"Creating replication slot '{config.SlotName}' waited {config.SlotCreateTimeout.TotalSeconds:F0} s (slot.create.timeout.ms) for transactions that were already running to end. " +
                $"Blocking: {blockers}. Commit or end them (SELECT pg_terminate_backend(<pid>);), then start the connector again.", e);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedFile || e.MessageText.Contains("could not access file", StringComparison.Ordinal))
        {
            throw new SourceNotReadyException(
                $"Cannot create replication slot '{config.SlotName}' with plugin '{PluginName}': {e.MessageText}. Install the plugin into the server's library folder (native/wal2arrow/README.md) or point dynamic_library_path at it, or use plugin = pgoutput.", e);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ConfigurationLimitExceeded)
        {
            throw new SourceNotReadyException(
                $"Cannot create replication slot '{config.SlotName}': {e.MessageText}. Raise max_replication_slots in postgresql.conf (restart needed) or drop unused slots.", e);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            throw new SourceNotReadyException(
                $"User '{config.DatabaseUser}' may not create replication slots: {e.MessageText}. Grant it: ALTER ROLE \"{config.DatabaseUser}\" WITH REPLICATION;", e);
        }
        finally
        {
            await using var reset = new NpgsqlCommand("RESET statement_timeout", connection);
            await reset.ExecuteNonQueryAsync(CancellationToken.None);
        }
    }

    /// <summary>
    /// Creates the slot on a replication connection with <c>EXPORT_SNAPSHOT</c>: the snapshot it returns is the tables'
    /// state at the slot's consistent point, the one point where a snapshot and the stream meet without a gap or an
    /// overlap. The connection stays open (idle) in the returned <see cref="ExportedSnapshot"/>.
    /// </summary>
    private async Task<ExportedSnapshot> CreateSlotWithSnapshotAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var replication = new LogicalReplicationConnection(config.ConnectionString(replication: true));
        try
        {
            await replication.Open(cancellationToken);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(config.SlotCreateTimeout);
            ReplicationSlotOptions options;
            try
            {
                options = await Npgsql.Replication.Internal.LogicalReplicationConnectionExtensions.CreateLogicalReplicationSlot(
                    replication, config.SlotName, PluginName, isTemporary: false, LogicalSlotSnapshotInitMode.Export, twoPhase: false, timeout.Token);
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                var blockers = await BlockersAsync(connection, cancellationToken);
                throw new SourceNotReadyException(
                    $"Creating replication slot '{config.SlotName}' waited {config.SlotCreateTimeout.TotalSeconds:F0} s (slot.create.timeout.ms) for transactions that were already running to end. " +
                    $"Blocking: {blockers}. Commit or end them (SELECT pg_terminate_backend(<pid>);), then start the connector again.", e);
            }

            // Npgsql exposes the exported snapshot's name through the slot object built from the command's result.
            var slot = new ExportingSlot(PluginName, options);
            var lsn = new Lsn((ulong)slot.ConsistentPoint);
            LogSlotCreatedWithSnapshot(logger, config.SlotName, lsn, slot.SnapshotName ?? "");
            return new ExportedSnapshot(slot.SnapshotName ?? throw new ReplicationProtocolException("CREATE_REPLICATION_SLOT returned no snapshot name", lsn), lsn, replication);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedFile || e.MessageText.Contains("could not access file", StringComparison.Ordinal))
        {
            await replication.DisposeAsync();
            throw new SourceNotReadyException(
                $"Cannot create replication slot '{config.SlotName}' with plugin '{PluginName}': {e.MessageText}. Install the plugin into the server's library folder (native/wal2arrow/README.md) or point dynamic_library_path at it, or use plugin = pgoutput.", e);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            await replication.DisposeAsync();
            throw new SourceNotReadyException(
                $"User '{config.DatabaseUser}' may not create replication slots: {e.MessageText}. Grant it: ALTER ROLE \"{config.DatabaseUser}\" WITH REPLICATION;", e);
        }
        catch
        {
            await replication.DisposeAsync();
            throw;
        }
    }

    /// <summary>Npgsql's slot type for a plugin it has no class for (wal2arrow): it reads the exported snapshot's name from the result.</summary>
    private sealed class ExportingSlot(string plugin, ReplicationSlotOptions options) : Npgsql.Replication.Internal.LogicalReplicationSlot(plugin, options);

    /// <summary>PostgreSQL 17+: an existing slot must be a failover slot when slot.failover is set (it cannot be switched from SQL).</summary>
    private async Task CheckFailoverSlotAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var query = new NpgsqlCommand("SELECT failover FROM pg_replication_slots WHERE slot_name = $1", connection);
        query.Parameters.Add(new NpgsqlParameter { Value = config.SlotName });
        if (await query.ExecuteScalarAsync(cancellationToken) is false)
        {
            throw new SourceNotReadyException(
                $"slot.failover = true, but replication slot '{config.SlotName}' exists without failover. Switch it on a replication connection: psql \"dbname={config.DatabaseName} replication=database\" -c 'ALTER_REPLICATION_SLOT {config.SlotName} ( FAILOVER true )' (or set slot.failover = false).");
        }

        var synchronized = (string?)await Scalar(connection, "SELECT current_setting('synchronized_standby_slots', true)", cancellationToken);
        if (string.IsNullOrEmpty(synchronized))
        {
            LogNoSynchronizedStandbys(logger, config.SlotName);
        }
    }

    /// <summary>The oldest sessions holding a transaction id or snapshot, for the slot-creation error.</summary>
    private static async Task<string> BlockersAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var query = new NpgsqlCommand("""
            SELECT pid, coalesce(usename, '?'), coalesce(application_name, ''), coalesce(state, '?'),
                   extract(epoch FROM now() - xact_start)::bigint, left(coalesce(query, ''), 80)
            FROM pg_stat_activity
            WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL)
            ORDER BY xact_start NULLS LAST LIMIT 5
            """, connection);
        await using var reader = await query.ExecuteReaderAsync(cancellationToken);
        var text = new StringBuilder();
        while (await reader.ReadAsync(cancellationToken))
        {
            if (text.Length > 0)
            {
                text.Append("; ");
            }

            text.Append(CultureInfo.InvariantCulture,
                $"pid {reader.GetInt32(0)} (user {reader.GetString(1)}, application '{reader.GetString(2)}', {reader.GetString(3)} in a transaction open for {reader.GetInt64(4)} s, last query '{reader.GetString(5)}')");
        }
        return text.Length > 0 ? text.ToString() : "no session found any more (it may just have ended; start again)";
    }

    /// <summary>Streaming needs a free WAL sender (and the slot must not be in use by another process).</summary>
    private async Task CheckWalSenderAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using (var active = new NpgsqlCommand("SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1 AND active", connection))
        {
            active.Parameters.Add(new NpgsqlParameter { Value = config.SlotName });
            if (await active.ExecuteScalarAsync(cancellationToken) is int pid)
            {
                throw new SlotInUseException(
                    $"Replication slot '{config.SlotName}' is in use by process {pid} (another connector instance, or a previous one that has not disconnected yet). Waiting for it to be released.");
            }
        }
        var senders = Convert.ToInt64(await Scalar(connection, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'", cancellationToken), CultureInfo.InvariantCulture);
        var max = long.Parse((string)(await Scalar(connection, "SHOW max_wal_senders", cancellationToken))!, CultureInfo.InvariantCulture);
        if (senders >= max)
        {
            throw new SourceNotReadyException(
                $"No free WAL sender: {senders} of max_wal_senders = {max} are in use (SELECT pid, application_name FROM pg_stat_replication;). Raise max_wal_senders (restart needed) or stop another replication client.");
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

    private static async Task<object?> Scalar(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync(cancellationToken);
    }

    internal static string QuoteIdentifier(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Publication {Publication}: {Ddl}")]
    private static partial void LogPublicationChanged(ILogger logger, string publication, string ddl);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Information, Message = "Created replication slot {Slot} at {Lsn}")]
    private static partial void LogSlotCreated(ILogger logger, string slot, Lsn lsn);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Warning,
        Message = "Failover slot {Slot}: synchronized_standby_slots is empty, so a promoted standby may lack transactions already in Kafka (the connector then refuses to start there); list the standbys' physical slots in it")]
    private static partial void LogNoSynchronizedStandbys(ILogger logger, string slot);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Information, Message = "Created replication slot {Slot} at {Lsn} with exported snapshot {SnapshotName}")]
    private static partial void LogSlotCreatedWithSnapshot(ILogger logger, string slot, Lsn lsn, string snapshotName);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Warning, Message = "Replication slot {Slot} is invalidated (wal_status lost); snapshot.mode = when_needed: replacing it and snapshotting the tables again")]
    private static partial void LogSlotLostReplacing(ILogger logger, string slot);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning, Message = "Could not drop replication slot {Slot}: {Reason}")]
    private static partial void LogDropFailed(ILogger logger, string slot, string reason);
}
