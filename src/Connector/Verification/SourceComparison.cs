using System.Text;
using Npgsql;
using WalBridge.Connector.Source;

namespace WalBridge.Connector.Verification;

/// <summary>The outcome of comparing one replayed table with the source.</summary>
public sealed record TableComparison(string Table, int SourceRows, int TopicRows, long Changes, int Transactions, IReadOnlyList<string> Differences)
{
    public bool Matches => Differences.Count == 0;
}

/// <summary>Compares a replayed table with the source table, value by value in PostgreSQL's text form.</summary>
public static class SourceComparison
{
    /// <summary>How many differences are listed per table before the rest are only counted.</summary>
    public const int MaxListed = 10;

    public static async Task<TableComparison> CompareAsync(NpgsqlConnection connection, ReplayedTable replayed, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(replayed);
        var differences = new List<string>(replayed.Violations);
        var keyColumns = replayed.KeyColumns.Count > 0 ? replayed.KeyColumns : replayed.Columns;
        var qualified = $"{SourceSetup.QuoteIdentifier(replayed.Schema)}.{SourceSetup.QuoteIdentifier(replayed.Table)}";
        // Values are compared in the form the payload documents: the type's output function
        // (concat() calls it; char(n) keeps its padding, inet its implicit mask), except booleans,
        // which the payload renders like bool::text.
        var booleans = new HashSet<string>(StringComparer.Ordinal);
        await using (var types = new NpgsqlCommand(
            "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND atttypid = 'bool'::regtype", connection))
        {
            types.Parameters.Add(new NpgsqlParameter { Value = qualified });
            await using var reader = await types.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
                booleans.Add(reader.GetString(0));
        }
        var select = string.Join(", ", replayed.Columns.Select(c =>
        {
            var column = SourceSetup.QuoteIdentifier(c);
            return booleans.Contains(c) ? $"{column}::text" : $"CASE WHEN {column} IS NULL THEN NULL ELSE concat({column}) END";
        }));
        var order = string.Join(", ", keyColumns.Select(SourceSetup.QuoteIdentifier));
        var source = new Dictionary<string, Dictionary<string, string?>>(StringComparer.Ordinal);
        // What `SELECT col::text` shows a user: PostgreSQL's default shortest exact floats, UTC, ISO
        // dates. Npgsql itself asks for extra_float_digits=3 at connection start-up, so set it here.
        await using (var settings = new NpgsqlCommand("SET extra_float_digits = 1; SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'", connection))
            await settings.ExecuteNonQueryAsync(cancellationToken);
        await using (var command = new NpgsqlCommand($"SELECT {select} FROM {qualified} ORDER BY {order}", connection))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                var values = new Dictionary<string, string?>(StringComparer.Ordinal);
                for (var i = 0; i < replayed.Columns.Count; i++)
                    values[replayed.Columns[i]] = reader.IsDBNull(i) ? null : reader.GetString(i);
                source[TopicReplay.KeyOf(keyColumns, values)] = values;
            }
        }

        var extra = 0;
        foreach (var (key, row) in source)
        {
            if (!replayed.Rows.TryGetValue(key, out var topicRow))
            {
                Add(differences, $"row {Show(key)} is in the source but not in the topic");
                continue;
            }
            foreach (var column in replayed.Columns)
            {
                var expected = row.GetValueOrDefault(column);
                var actual = topicRow.GetValueOrDefault(column);
                if (!string.Equals(expected, actual, StringComparison.Ordinal))
                    Add(differences, $"row {Show(key)} column {column}: source {Quote(expected)}, topic {Quote(actual)}");
            }
        }
        foreach (var key in replayed.Rows.Keys)
        {
            if (!source.ContainsKey(key))
            {
                extra++;
                Add(differences, $"row {Show(key)} is in the topic but not in the source");
            }
        }
        return new TableComparison($"{replayed.Schema}.{replayed.Table}", source.Count, replayed.Rows.Count, replayed.Changes,
            replayed.Transactions.Count, differences);
    }

    private static void Add(List<string> differences, string text)
    {
        if (differences.Count < MaxListed)
            differences.Add(text);
        else if (differences.Count == MaxListed)
            differences.Add("… more differences not listed");
    }

    private static string Show(string key) => "(" + key.Replace(TopicReplay.KeySeparator, ',') + ")";

    private static string Quote(string? value)
    {
        if (value is null)
            return "NULL";
        var shown = value.Length > 80 ? value[..80] + "…" : value;
        return new StringBuilder().Append('\'').Append(shown).Append('\'').ToString();
    }
}
