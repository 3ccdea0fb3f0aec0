using Npgsql;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Source;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Connector.Snapshot;

/// <summary>A published table as the snapshot reads it.</summary>
/// <param name="Relation">The relation exactly as pgoutput's Relation message describes it (same columns, key flags, type names), so snapshot rows have the streamed rows' schema.</param>
/// <param name="PrimaryKey">The primary key's columns (empty without one).</param>
/// <param name="Partitioned">A partitioned root (published via the root): read as one chunk through the root.</param>
/// <param name="Pages">Heap pages when the snapshot began.</param>
/// <param name="EstimatedRows">Rows by the statistics (<c>reltuples</c>), or estimated from the pages when never analysed.</param>
/// <param name="RowFilter">The publication's row filter for the table (PostgreSQL 15+), or null.</param>
/// <param name="Bytes">The table's size on disk with its TOAST table (<c>pg_table_size</c>) when the snapshot began; 0 when unknown.</param>
internal sealed record SnapshotTable(PgRelation Relation, IReadOnlyList<string> PrimaryKey, bool Partitioned, long Pages, long EstimatedRows, string? RowFilter, long Bytes = 0)
{
    /// <summary><c>schema.table</c>, unquoted: the name in the offsets record and the log.</summary>
    public string Name => $"{Relation.Schema}.{Relation.Table}";

    public string QuotedName => $"{SourceSetup.QuoteIdentifier(Relation.Schema)}.{SourceSetup.QuoteIdentifier(Relation.Table)}";

    /// <summary>
    /// The columns rows are identified by (the stream's <c>pg.primary_key</c>): the replica identity's key, the primary key
    /// under <c>REPLICA IDENTITY FULL</c>; empty without one (<c>FULL</c> without a primary key, or <c>NOTHING</c>).
    /// </summary>
    public IReadOnlyList<string> RowKey =>
        Relation.ReplicaIdentity switch
        {
            'f' => Relation.Columns.Where(c => PrimaryKey.Contains(c.Name)).Select(c => c.Name).ToList(),
            'n' => [],
            _ => Relation.Columns.Where(c => c.IsKey).Select(c => c.Name).ToList(),
        };

    /// <summary>Per column: whether it is read as PostgreSQL's text (its type is kept as text, or its binary send format is not parsed exactly).</summary>
    public bool[] TextColumns() => Relation.Columns.Select(c => !PgTypeMapping.SupportsBinary(c)).ToArray();

    /// <summary>
    /// The <c>COPY</c> reading chunk <paramref name="chunk"/> of <paramref name="chunks"/>: heap pages
    /// [chunk·n, (chunk+1)·n) by a TID range scan (the last chunk takes every page after, so rows on pages added since the
    /// plan are read too); the whole table when <paramref name="pagesPerChunk"/> is 0.
    /// </summary>
    /// <param name="chunk">The chunk.</param>
    /// <param name="chunks">The chunks of the plan.</param>
    /// <param name="pagesPerChunk">Heap pages per chunk.</param>
    /// <param name="keyColumns">When given, each key column's PostgreSQL text is appended (an incremental window's row key).</param>
    public string CopyCommand(int chunk, int chunks, long pagesPerChunk, IReadOnlyList<string>? keyColumns = null)
    {
        var text = TextColumns();
        var columns = string.Join(", ", Relation.Columns.Select((c, i) => SourceSetup.QuoteIdentifier(c.Name) + (text[i] ? "::text" : ""))
            .Concat((keyColumns ?? []).Select((k, i) => $"{SourceSetup.QuoteIdentifier(k)}::text AS _walbridge_key_{i}")));
        var conditions = new List<string>();
        if (pagesPerChunk > 0 && !Partitioned)
        {
            if (chunk > 0)
            {
                conditions.Add($"ctid >= '({chunk * pagesPerChunk},0)'::tid");
            }

            if (chunk < chunks - 1)
            {
                conditions.Add($"ctid < '({(chunk + 1) * pagesPerChunk},0)'::tid");
            }
        }

        if (RowFilter is not null)
        {
            conditions.Add($"({RowFilter})");
        }

        var where = conditions.Count > 0 ? " WHERE " + string.Join(" AND ", conditions) : "";
        return $"COPY (SELECT {columns} FROM {(Partitioned ? "" : "ONLY ")}{QuotedName}{where}) TO STDOUT (FORMAT binary)";
    }

    /// <summary>
    /// The <c>COPY</c> of an incremental snapshot window: at most <paramref name="limit"/> rows in key order after
    /// <paramref name="after"/> (null: from the first), or the rows of <paramref name="keys"/> up to <paramref name="after"/>; every column as for the
    /// initial snapshot, then each key column's PostgreSQL text (the row's key, compared with the stream's keys).
    /// Key values are PostgreSQL's text of each key column, written as string literals that take the column's type.
    /// </summary>
    /// <param name="keyColumns">The key columns, in key order.</param>
    /// <param name="after">The last key read (range: read after it; keys: read only up to it when <paramref name="bounded"/>).</param>
    /// <param name="keys">Keys to read again, or null for the next range.</param>
    /// <param name="limit">Rows at most.</param>
    /// <param name="bounded">Keys: only those up to <paramref name="after"/> (key order); false reads every one (a table read by heap pages).</param>
    public string KeyedCopyCommand(IReadOnlyList<string> keyColumns, IReadOnlyList<string?>? after, IReadOnlyList<IReadOnlyList<string?>>? keys, int limit, bool bounded = true)
    {
        ArgumentNullException.ThrowIfNull(keyColumns);
        var text = TextColumns();
        var quotedKeys = keyColumns.Select(SourceSetup.QuoteIdentifier).ToList();
        var columns = string.Join(", ", Relation.Columns.Select((c, i) => SourceSetup.QuoteIdentifier(c.Name) + (text[i] ? "::text" : ""))
            .Concat(quotedKeys.Select((k, i) => $"{k}::text AS _walbridge_key_{i}")));
        var tuple = quotedKeys.Count == 1 ? quotedKeys[0] : $"({string.Join(", ", quotedKeys)})";
        var conditions = new List<string>();
        if (keys is not null)
        {
            // Keys after the last one read need no second read: the range reaches them later.
            conditions.Add($"{tuple} IN ({string.Join(", ", keys.Select(Values))})");
            if (bounded)
            {
                conditions.Add(after is not null ? $"{tuple} <= {Values(after)}" : "false");
            }
        }
        else if (after is not null)
        {
            conditions.Add($"{tuple} > {Values(after)}");
        }

        if (RowFilter is not null)
        {
            conditions.Add($"({RowFilter})");
        }

        var where = conditions.Count > 0 ? " WHERE " + string.Join(" AND ", conditions) : "";
        return $"COPY (SELECT {columns} FROM {(Partitioned ? "" : "ONLY ")}{QuotedName}{where} ORDER BY {string.Join(", ", quotedKeys)} LIMIT {limit}) TO STDOUT (FORMAT binary)";

        string Values(IReadOnlyList<string?> key)
        {
            if (key.Count != keyColumns.Count)
            {
                throw new InvalidOperationException($"A key of {Name} has {key.Count} values, its key {keyColumns.Count} columns.");
            }

            var literals = key.Select(v => v is null ? "NULL" : "E'" + v.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "''", StringComparison.Ordinal) + "'").ToList();
            return literals.Count == 1 ? literals[0] : $"({string.Join(", ", literals)})";
        }
    }
}

/// <summary>Reads the published tables and their layout from the catalog, as pgoutput would describe them.</summary>
internal static class SnapshotCatalog
{
    /// <summary>Rows per heap page assumed for a table never analysed (<c>reltuples</c> −1) to cut it into chunks.</summary>
    private const long RowsPerPageGuess = 60;

    /// <summary>The publication's tables (or only <paramref name="only"/>, <c>schema.table</c>, when it is published), in name order.</summary>
    public static async Task<List<SnapshotTable>> LoadAsync(NpgsqlConnection connection, ConnectorConfig config, CancellationToken cancellationToken, string? only = null)
    {
        var v15 = connection.PostgreSqlVersion.Major >= 15;
        var tables = new List<(uint Oid, string Schema, string Table, char Identity, char Kind, long Pages, double Tuples, string[]? Columns, string? Filter, long Bytes)>();
        await using (var query = new NpgsqlCommand($"""
            SELECT c.oid, n.nspname, c.relname, c.relreplident, c.relkind,
                   greatest(c.relpages::bigint, pg_relation_size(c.oid) / current_setting('block_size')::bigint),
                   c.reltuples::float8, {(v15 ? "t.attnames, t.rowfilter" : "NULL::text[], NULL::text")}, pg_table_size(c.oid)
            FROM pg_publication_tables t
            JOIN pg_namespace n ON n.nspname = t.schemaname
            JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.tablename
            WHERE t.pubname = $1 AND ($2::text IS NULL OR n.nspname || '.' || c.relname = $2::text)
            ORDER BY n.nspname, c.relname
            """, connection))
        {
            query.Parameters.Add(new NpgsqlParameter { Value = config.PublicationName });
            query.Parameters.Add(new NpgsqlParameter { Value = (object?)only ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
            await using var reader = await query.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                tables.Add(((uint)reader.GetFieldValue<uint>(0), reader.GetString(1), reader.GetString(2), reader.GetChar(3), reader.GetChar(4),
                    reader.GetInt64(5), reader.GetDouble(6), reader.IsDBNull(7) ? null : reader.GetFieldValue<string[]>(7), reader.IsDBNull(8) ? null : reader.GetString(8),
                    reader.IsDBNull(9) ? 0 : reader.GetInt64(9)));
            }
        }

        var result = new List<SnapshotTable>(tables.Count);
        foreach (var t in tables)
        {
            var (columns, primaryKey) = await ColumnsAsync(connection, t.Oid, t.Identity, t.Columns, cancellationToken);
            var estimated = t.Tuples >= 0 ? (long)t.Tuples : t.Pages * RowsPerPageGuess;
            result.Add(new SnapshotTable(new PgRelation(t.Oid, t.Schema, t.Table, t.Identity, columns), primaryKey, t.Kind == 'p', t.Pages, estimated, t.Filter, t.Bytes));
        }

        return result;
    }

    /// <summary>
    /// What a snapshot row is assumed to add to its Arrow payload beyond its share of the table's bytes: the change
    /// columns (<c>_op</c>, <c>_lsn</c>, <c>_xid</c>, commit LSN and time), the null <c>_before</c> row and the offsets and
    /// validity bits of every column.
    /// </summary>
    internal const long EnvelopeBytesPerRow = 96;

    /// <summary>The fewest rows a chunk is cut to for its size (very wide rows: the spill file takes the rest).</summary>
    internal const long MinChunkRows = 1000;

    /// <summary>
    /// How many chunks and pages per chunk a table is cut into: about <paramref name="chunkRows"/> rows each
    /// (<c>snapshot.chunk.rows</c>), fewer when the rows are wide: a chunk is one source transaction of its session, and
    /// its Arrow payload should fit in <paramref name="memoryBytes"/> (<c>transaction.memory.bytes</c>; estimated from the
    /// table's bytes per row, with a quarter left for the estimate's error), since what does not is written to a spill
    /// file and read back before it can be sent.
    /// </summary>
    public static (int Chunks, long PagesPerChunk) Plan(SnapshotTable table, long chunkRows, long memoryBytes)
    {
        if (table.Bytes > 0 && table.EstimatedRows > 0 && memoryBytes > 0)
        {
            var rowBytes = (table.Bytes / table.EstimatedRows) + EnvelopeBytesPerRow;
            chunkRows = Math.Min(chunkRows, Math.Max(MinChunkRows, memoryBytes / 4 * 3 / rowBytes));
        }

        if (table.Partitioned || table.Pages == 0 || table.EstimatedRows <= chunkRows)
        {
            return (1, 0);
        }

        var chunks = (long)Math.Ceiling(table.EstimatedRows / (double)chunkRows);
        var pagesPerChunk = Math.Max(1, (long)Math.Ceiling(table.Pages / (double)chunks));
        return ((int)Math.Min(int.MaxValue, (table.Pages + pagesPerChunk - 1) / pagesPerChunk), pagesPerChunk);
    }

    /// <summary>
    /// The columns pgoutput sends (attribute order; no dropped or generated columns; the publication's column list),
    /// their key flags by the replica identity, and for types from OID 10000 on the name pgoutput's Type message gives
    /// (a domain's ultimate base type).
    /// </summary>
    private static async Task<(List<PgColumn> Columns, List<string> PrimaryKey)> ColumnsAsync(
        NpgsqlConnection connection, uint oid, char identity, string[]? published, CancellationToken cancellationToken)
    {
        await using var query = new NpgsqlCommand("""
            SELECT a.attname, a.atttypid, a.atttypmod,
                   a.attnum = ANY (coalesce((SELECT i.indkey::int2[] FROM pg_index i
                        WHERE i.indrelid = a.attrelid AND CASE $2 WHEN 'i' THEN i.indisreplident WHEN 'd' THEN i.indisprimary ELSE false END LIMIT 1), '{}')),
                   a.attnum = ANY (coalesce((SELECT i.indkey::int2[] FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary), '{}')),
                   CASE WHEN a.atttypid >= 10000 THEN (
                       WITH RECURSIVE d(o) AS (SELECT a.atttypid UNION ALL SELECT t.typbasetype FROM pg_type t JOIN d ON t.oid = d.o WHERE t.typtype = 'd')
                       SELECT tn.nspname || '.' || tt.typname FROM d JOIN pg_type tt ON tt.oid = d.o JOIN pg_namespace tn ON tn.oid = tt.typnamespace
                       WHERE tt.typtype <> 'd' LIMIT 1)
                   END
            FROM pg_attribute a
            WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
            ORDER BY a.attnum
            """, connection);
        query.Parameters.Add(new NpgsqlParameter { Value = oid, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Oid });
        query.Parameters.Add(new NpgsqlParameter { Value = identity.ToString(), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Char });
        var columns = new List<PgColumn>();
        var primaryKey = new List<string>();
        await using var reader = await query.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var name = reader.GetString(0);
            if (published is not null && !published.Contains(name, StringComparer.Ordinal))
            {
                continue;
            }

            var key = identity == 'f' || reader.GetBoolean(3);
            if (reader.GetBoolean(4))
            {
                primaryKey.Add(name);
            }

            columns.Add(new PgColumn(name, reader.GetFieldValue<uint>(1), reader.GetInt32(2), key, reader.IsDBNull(5) ? null : reader.GetString(5)));
        }

        return (columns, primaryKey);
    }
}
