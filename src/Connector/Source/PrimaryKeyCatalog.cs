using Npgsql;
using WalBridge.Connector.Configuration;

namespace WalBridge.Connector.Source;

/// <summary>
/// Looks up tables' primary keys in the source catalog. Needed because under REPLICA IDENTITY FULL
/// pgoutput's Relation message flags every column as part of the key, while consumers (and
/// <c>pg.primary_key</c>) want the real key. Queried only when such a Relation message arrives (rare);
/// the answer reflects the catalog now, not at the message's WAL position.
/// </summary>
/// <remarks>Used by the replication reader's thread only; synchronous on purpose (called from the decoder).</remarks>
internal sealed class PrimaryKeyCatalog(ConnectorConfig config) : IDisposable
{
    private NpgsqlConnection? _connection;

    /// <summary>The primary key's column names of <paramref name="relationId"/>, or an empty list when it has none.</summary>
    /// <exception cref="NpgsqlException">The source cannot be reached (transient; the pipeline restarts).</exception>
    public IReadOnlyList<string> PrimaryKey(uint relationId)
    {
        if (_connection is null)
        {
            _connection = new NpgsqlConnection(config.ConnectionString(replication: false));
            _connection.Open();
        }
        using var query = new NpgsqlCommand(
            // Key columns only (an INCLUDE column is not part of the key).
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid " +
            "AND a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1]) " +
            "WHERE i.indrelid = $1 AND i.indisprimary ORDER BY a.attnum", _connection);
        query.Parameters.Add(new NpgsqlParameter { Value = relationId, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Oid });
        var columns = new List<string>();
        using var reader = query.ExecuteReader();
        while (reader.Read())
        {
            columns.Add(reader.GetString(0));
        }

        return columns;
    }

    public void Dispose() => _connection?.Dispose();
}
