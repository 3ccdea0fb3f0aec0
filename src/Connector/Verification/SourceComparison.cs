using System.Text;
using Npgsql;
using WalBridge.Connector.Source;

namespace WalBridge.Connector.Verification;

/// <summary>
/// One difference between a rebuilt table and the source: the table, the row's key (for a table without a key, a
/// description of the row), the column (null when a whole row is missing or extra) and both values in PostgreSQL's
/// text form.
/// </summary>
public sealed record Mismatch(string Table, string Key, string? Column, string? Expected, string? Actual, string Text);

/// <summary>The outcome of comparing one replayed table with the source.</summary>
public sealed record TableComparison(string Table, int SourceRows, int TopicRows, long Changes, int Transactions, IReadOnlyList<string> Differences)
{
    public bool Matches => Differences.Count == 0;

    /// <summary>Every value difference found (not only the listed ones).</summary>
    public IReadOnlyList<Mismatch> Mismatches { get; init; } = [];

    /// <summary>How many differences there are in all (replay violations included), listed or not.</summary>
    public int DifferenceCount { get; init; }

    /// <summary>The format the table was rebuilt from (<c>arrow</c>, <c>debezium-json</c>, <c>debezium-avro</c>).</summary>
    public string Format { get; init; } = "arrow";

    /// <summary>Columns left out of the comparison, with the reason (a Debezium format's lossy representation).</summary>
    public IReadOnlyDictionary<string, string> Uncompared { get; init; } = new Dictionary<string, string>();

    /// <summary>Records the topic held more than once (same transaction, table and chunk).</summary>
    public int DuplicateRecords { get; init; }

    /// <summary>Updates and deletes of rows the rebuilt table did not hold (described: the first few).</summary>
    public IReadOnlyList<string> Unmatched { get; init; } = [];

    public long UnmatchedCount { get; init; }
}

/// <summary>
/// Compares a replayed table with the source table, value by value in PostgreSQL's text form. Rows are matched by
/// key; a table without a key is compared as a multiset (identical rows counted). Only columns both sides have are
/// compared: a column dropped from the source after the topic's last change is left out, a column added after it
/// must be NULL in every source row (generated columns, which pgoutput does not publish, excepted).
/// </summary>
public static class SourceComparison
{
    /// <summary>How many differences are listed per table before the rest are only counted.</summary>
    public const int MaxListed = 10;

    /// <param name="connection">The source.</param>
    /// <param name="replayed">The rebuilt table.</param>
    /// <param name="cancellationToken">Stops the queries.</param>
    /// <param name="uncompared">Columns not to compare (their values in <paramref name="replayed"/> still identify rows of a table without a key).</param>
    public static async Task<TableComparison> CompareAsync(NpgsqlConnection connection, ReplayedTable replayed, CancellationToken cancellationToken,
        IReadOnlyCollection<string>? uncompared = null)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(replayed);
        var tableName = $"{replayed.Schema}.{replayed.Table}";
        var listed = new List<string>();
        var mismatches = new List<Mismatch>();
        var count = 0;
        var sourceRows = 0;
        void Difference(string text)
        {
            count++;
            if (listed.Count < MaxListed)
            {
                listed.Add(text);
            }
            else if (listed.Count == MaxListed)
            {
                listed.Add("… more differences not listed");
            }
        }
        void Value(string key, string? column, string? expected, string? actual, string text)
        {
            mismatches.Add(new Mismatch(tableName, key, column, expected, actual, text));
            Difference(text);
        }
        foreach (var violation in replayed.Violations)
        {
            Difference(violation);
        }

        var qualified = $"{SourceSetup.QuoteIdentifier(replayed.Schema)}.{SourceSetup.QuoteIdentifier(replayed.Table)}";
        // Values are compared in the form the payload documents: the type's output function
        // (concat() calls it; char(n) keeps its padding, inet its implicit mask), except booleans,
        // which the payload renders like bool::text.
        var sourceColumns = new List<(string Name, bool Boolean, bool Generated)>();
        await using (var types = new NpgsqlCommand(
            "SELECT attname, atttypid = 'bool'::regtype, attgenerated <> '' FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum", connection))
        {
            types.Parameters.Add(new NpgsqlParameter { Value = qualified });
            await using var reader = await types.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                sourceColumns.Add((reader.GetString(0), reader.GetBoolean(1), reader.GetBoolean(2)));
            }
        }
        if (sourceColumns.Count == 0)
        {
            Difference($"table {tableName} is in the topic but not in the source");
            return Result();
        }
        var inSource = sourceColumns.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        var skipped = uncompared ?? [];
        var compared = replayed.Columns.Where(c => inSource.Contains(c) && !skipped.Contains(c)).ToArray();
        var booleans = sourceColumns.Where(c => c.Boolean).Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        // Without a key (under REPLICA IDENTITY FULL pg.primary_key then names every column) the whole row is the identity.
        var keyless = replayed.KeyColumns.Count == 0 || replayed.KeyColumns.ToHashSet(StringComparer.Ordinal).SetEquals(replayed.Columns);
        var keyColumns = keyless ? compared : replayed.KeyColumns.Where(inSource.Contains).ToArray();

        // What `SELECT col::text` shows a user: PostgreSQL's default shortest exact floats, UTC, ISO
        // dates. Npgsql itself asks for extra_float_digits=3 at connection start-up, so set it here.
        await using (var settings = new NpgsqlCommand("SET extra_float_digits = 1; SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'", connection))
        {
            await settings.ExecuteNonQueryAsync(cancellationToken);
        }

        // Columns added in the source after the topic's last change of the table: no row can hold a value there yet.
        // (Generated columns are not published by PostgreSQL 15's pgoutput at all.)
        foreach (var added in sourceColumns.Where(c => !c.Generated && !replayed.Columns.Contains(c.Name, StringComparer.Ordinal)).Select(c => c.Name))
        {
            var column = SourceSetup.QuoteIdentifier(added);
            await using var command = new NpgsqlCommand($"SELECT count(*) FROM {qualified} WHERE {column} IS NOT NULL", connection);
            var nonNull = (long)(await command.ExecuteScalarAsync(cancellationToken))!;
            if (nonNull > 0)
            {
                Value("every row", null, null, null, $"column {added}: {nonNull} source rows have a value, but the topic's newest schema has no such column");
            }
        }

        var select = compared.Length == 0 ? "1" : string.Join(", ", compared.Select(c =>
        {
            var column = SourceSetup.QuoteIdentifier(c);
            return booleans.Contains(c) ? $"{column}::text" : $"CASE WHEN {column} IS NULL THEN NULL ELSE concat({column}) END";
        }));
        var source = new Dictionary<string, List<Dictionary<string, string?>>>(StringComparer.Ordinal);
        await using (var command = new NpgsqlCommand($"SELECT {select} FROM {qualified}", connection))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                var values = new Dictionary<string, string?>(StringComparer.Ordinal);
                for (var i = 0; i < compared.Length; i++)
                {
                    values[compared[i]] = reader.IsDBNull(i) ? null : reader.GetString(i);
                }

                Group(source, TopicReplay.KeyOf(keyColumns, values), values);
                sourceRows++;
            }
        }
        var topic = new Dictionary<string, List<Dictionary<string, string?>>>(StringComparer.Ordinal);
        foreach (var row in replayed.Rows.Values.SelectMany(r => r))
        {
            Group(topic, TopicReplay.KeyOf(keyColumns, row), row);
        }

        // Rows present on one side only (or more often on one side): kept to be paired up for a table without a key.
        var onlySource = new List<(string Key, Dictionary<string, string?> Row)>();
        var onlyTopic = new List<(string Key, Dictionary<string, string?> Row)>();
        foreach (var key in source.Keys.Concat(topic.Keys.Where(k => !source.ContainsKey(k))).Order(StringComparer.Ordinal))
        {
            var expected = source.GetValueOrDefault(key) ?? [];
            var actual = topic.GetValueOrDefault(key) ?? [];
            var both = Math.Min(expected.Count, actual.Count);
            for (var i = 0; i < both; i++)
            {
                foreach (var column in compared)
                {
                    var e = expected[i].GetValueOrDefault(column);
                    var a = actual[i].GetValueOrDefault(column);
                    if (!string.Equals(e, a, StringComparison.Ordinal))
                    {
                        Value(Show(key), column, e, a, $"row ({Show(key)}) column {column}: source {Quote(e)}, topic {Quote(a)}");
                    }
                }
            }
            if (expected.Count == actual.Count)
            {
                continue;
            }

            if (keyless)
            {
                onlySource.AddRange(expected.Skip(both).Select(r => (key, r)));
                onlyTopic.AddRange(actual.Skip(both).Select(r => (key, r)));
            }
            else if (actual.Count == 0)
            {
                Value(Show(key), null, "(row)", null, $"row ({Show(key)}) is in the source but not in the topic");
            }
            else if (expected.Count == 0)
            {
                Value(Show(key), null, null, "(row)", actual.Count == 1
                    ? $"row ({Show(key)}) is in the topic but not in the source"
                    : $"row ({Show(key)}) is in the topic {actual.Count} times but not in the source");
            }
            else
            {
                Value(Show(key), null, $"{expected.Count} rows", $"{actual.Count} rows", $"row ({Show(key)}) is in the source {expected.Count} times, in the topic {actual.Count} times");
            }
        }
        if (keyless)
        {
            PairUp(onlySource, onlyTopic, compared, Value);
        }

        return Result();

        TableComparison Result() => new(tableName, sourceRows, replayed.RowCount, replayed.Changes, replayed.Transactions.Count, listed)
        {
            Mismatches = mismatches,
            DifferenceCount = count,
            DuplicateRecords = replayed.DuplicateRecords,
            Unmatched = replayed.Unmatched,
            UnmatchedCount = replayed.UnmatchedCount,
        };
    }

    /// <summary>
    /// A table without a key: rows of the source and of the topic that found no identical partner. A source row and a
    /// topic row that agree on most columns are shown as one row with differing values; the rest as missing or extra.
    /// </summary>
    private static void PairUp(List<(string Key, Dictionary<string, string?> Row)> onlySource, List<(string Key, Dictionary<string, string?> Row)> onlyTopic,
        string[] columns, Action<string, string?, string?, string?, string> value)
    {
        var unpairedTopic = new List<(string Key, Dictionary<string, string?> Row)>(onlyTopic);
        foreach (var (key, row) in onlySource)
        {
            var best = -1;
            var bestEqual = 0;
            for (var i = 0; i < unpairedTopic.Count; i++)
            {
                var equal = columns.Count(c => string.Equals(row.GetValueOrDefault(c), unpairedTopic[i].Row.GetValueOrDefault(c), StringComparison.Ordinal));
                if (equal > bestEqual)
                {
                    best = i;
                    bestEqual = equal;
                }
            }
            if (best < 0 || bestEqual * 2 < columns.Length)
            {
                value(Describe(row, columns), null, "(row)", null, $"row ({Describe(row, columns)}) is in the source but not in the topic (table without a key)");
                continue;
            }
            var partner = unpairedTopic[best].Row;
            unpairedTopic.RemoveAt(best);
            var shown = Describe(row, columns);
            foreach (var column in columns)
            {
                var e = row.GetValueOrDefault(column);
                var a = partner.GetValueOrDefault(column);
                if (!string.Equals(e, a, StringComparison.Ordinal))
                {
                    value(shown, column, e, a, $"row ({shown}) (table without a key) column {column}: source {Quote(e)}, topic {Quote(a)}");
                }
            }
        }
        foreach (var (_, row) in unpairedTopic)
        {
            value(Describe(row, columns), null, null, "(row)", $"row ({Describe(row, columns)}) is in the topic but not in the source (table without a key)");
        }
    }

    /// <summary>A row of a table without a key, by its first few columns.</summary>
    private static string Describe(Dictionary<string, string?> row, string[] columns) =>
        string.Join(", ", columns.Take(4).Select(c => $"{c}={Shorten(row.GetValueOrDefault(c))}")) + (columns.Length > 4 ? ", …" : "");

    private static void Group(Dictionary<string, List<Dictionary<string, string?>>> into, string key, Dictionary<string, string?> row)
    {
        if (!into.TryGetValue(key, out var list))
        {
            into[key] = list = [];
        }

        list.Add(row);
    }

    private static string Show(string key) => TopicReplay.ShowKey(key);

    private static string Shorten(string? value) => value is null ? "NULL" : value.Length > 40 ? $"{value[..40]}… ({value.Length} chars)" : value;

    private static string Quote(string? value)
    {
        if (value is null)
        {
            return "NULL";
        }

        var shown = value.Length > 80 ? value[..80] + $"… ({value.Length} chars)" : value;
        return new StringBuilder().Append('\'').Append(shown).Append('\'').ToString();
    }
}
