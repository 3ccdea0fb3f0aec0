using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;
using Avro.Generic;
using Confluent.Kafka;
using Confluent.SchemaRegistry;
using Confluent.SchemaRegistry.Serdes;
using Npgsql;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Kafka;
using WalBridge.Connector.Source;

namespace WalBridge.Connector.Verification;

/// <summary>A Debezium format's table rebuilt by <see cref="DebeziumReplay"/>, with the columns it cannot compare.</summary>
/// <param name="Table">The rebuilt table (values in PostgreSQL's text form, as <see cref="SourceComparison"/> compares them).</param>
/// <param name="Uncompared">Columns whose Debezium representation loses what PostgreSQL's text shows (the reason per column).</param>
public sealed record DebeziumTable(ReplayedTable Table, IReadOnlyDictionary<string, string> Uncompared);

/// <summary>
/// Rebuilds tables from the topics of a Debezium format (<c>verify</c>, issue 13) without the connector's encoders: JSON
/// read with System.Text.Json, Avro decoded by Confluent's <see cref="AvroDeserializer{T}"/> with the schemas from the
/// registry. Each value is turned back into PostgreSQL's text from the source column's type and the format's handling
/// modes (Debezium's documented representations), the <c>walbridge.special</c> header's texts taking precedence; the
/// events are applied in source order (<c>pg.commit_lsn</c>, then <c>walbridge.event_index</c>), across partitions.
/// </summary>
/// <remarks>
/// Columns whose representation is lossy in the configuration (<c>interval</c> in numeric mode, <c>numeric</c> in
/// double mode, <c>money</c>, <c>timetz</c>, bit strings, geometric types, arrays of those) are left out of the
/// comparison and named. Blocking reads of Kafka; one topic at a time.
/// </remarks>
public static class DebeziumReplay
{
    /// <summary>The table topics of <paramref name="format"/> among <paramref name="topics"/>: the format's suffix, not another format's, not its message or transaction topic.</summary>
    internal static List<string> TableTopics(IEnumerable<string> topics, ConnectorConfig config, OutputFormat format)
    {
        ArgumentNullException.ThrowIfNull(topics);
        ArgumentNullException.ThrowIfNull(config);
        var output = config.Output;
        var suffix = output.TopicSuffixes[format];
        var longer = output.Formats.Where(f => f != format)
            .Select(f => output.TopicSuffixes[f])
            .Where(s => s.Length > suffix.Length && s.EndsWith(suffix, StringComparison.Ordinal))
            .ToArray();
        var shared = output.Formats.Where(f => f != OutputFormat.Arrow)
            .SelectMany(f => new[] { $"{config.TopicPrefix}.message{output.TopicSuffixes[f]}", $"{config.TopicPrefix}.{output.TransactionTopicName}{output.TopicSuffixes[f]}" })
            .ToHashSet(StringComparer.Ordinal);
        var prefix = config.TopicPrefix + ".";
        return topics
            .Where(t => t.Length > prefix.Length + suffix.Length && t.StartsWith(prefix, StringComparison.Ordinal) && t.EndsWith(suffix, StringComparison.Ordinal)
                        && t != config.OffsetsTopic && t != config.MessagesTopic && !shared.Contains(t)
                        && t[prefix.Length..^suffix.Length].Contains('.', StringComparison.Ordinal)
                        && !longer.Any(s => t.EndsWith(s, StringComparison.Ordinal)))
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>Reads <paramref name="topic"/> (a table topic of <paramref name="format"/>) to its end and rebuilds the table. Blocking.</summary>
    /// <param name="kafka">librdkafka settings of the cluster.</param>
    /// <param name="topic">The topic.</param>
    /// <param name="format">Its format (debezium-json or debezium-avro).</param>
    /// <param name="config">The connector's configuration (handling modes, registry).</param>
    /// <param name="connection">The source, for the column types.</param>
    /// <param name="registry">The Schema Registry client (debezium-avro); null otherwise.</param>
    /// <param name="cancellationToken">Stops the reads.</param>
    public static async Task<DebeziumTable> ReplayAsync(IReadOnlyDictionary<string, string> kafka, string topic, OutputFormat format, ConnectorConfig config,
        NpgsqlConnection connection, ISchemaRegistryClient? registry, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(connection);
        var records = new List<Event>();
        var table = new ReplayedTable { Topic = topic };
        var lastPerPartition = new Dictionary<int, ulong>();
        var seen = new HashSet<(ulong, int, long)>();
        OffsetsTopicReader.ReadToEnd(kafka, topic, message =>
        {
            table.Records++;
            var where = $"{message.Topic}[{message.Partition.Value}]@{message.Offset.Value}";
            var headers = message.Message.Headers;
            var commitText = Header(headers, "pg.commit_lsn");
            var indexText = Header(headers, "walbridge.event_index");
            if (commitText is null || indexText is null)
            {
                table.Violations.Add($"record {where} has no pg.commit_lsn or walbridge.event_index header");
                return;
            }

            var commit = WalBridge.Offsets.Lsn.Parse(commitText).Value;
            var index = long.Parse(indexText, CultureInfo.InvariantCulture);
            var snapshotChunk = int.Parse(Header(headers, "walbridge.snapshot.chunk") ?? "-1", CultureInfo.InvariantCulture);
            if (!seen.Add((commit, snapshotChunk, index)))
            {
                table.DuplicateRecords++;
                table.Violations.Add($"duplicate record {where}: event {index} of the transaction committed at {commitText} again");
                return;
            }

            if (lastPerPartition.TryGetValue(message.Partition.Value, out var last) && commit < last)
            {
                table.Violations.Add($"commit LSN went backwards at {where}: {commitText} after {new WalBridge.Offsets.Lsn(last)}");
            }

            lastPerPartition[message.Partition.Value] = commit;
            records.Add(new Event(where, commit, index, message.Message.Key, message.Message.Value, headers));
        }, cancellationToken);

        var decoder = new Decoder(format, topic, registry);
        var converter = new Converter(config.Output);
        var uncompared = new Dictionary<string, string>(StringComparer.Ordinal);
        // Source order: a transaction's events by their index, transactions by commit LSN.
        records.Sort((a, b) => a.CommitLsn != b.CommitLsn ? a.CommitLsn.CompareTo(b.CommitLsn) : a.Index.CompareTo(b.Index));
        Dictionary<string, Column>? columns = null;
        string[]? keyNames = null;
        string schemaName = "", tableName = "";
        foreach (var record in records)
        {
            if (record.Value is null)
            {
                continue; // a tombstone: its delete came before it
            }

            var envelope = await decoder.ValueAsync(record.Value);
            if (envelope is not Dictionary<string, object?> value || value.GetValueOrDefault("op") is not string op)
            {
                table.Violations.Add($"record {record.Where} is not a Debezium change event");
                continue;
            }

            // The table's columns are the fields of the row struct (the published ones: not generated columns); a
            // change of them (ALTER TABLE) comes with the events written after it.
            var fields = (value.GetValueOrDefault("after") ?? value.GetValueOrDefault("before")) as Dictionary<string, object?>;
            if (columns is null || (fields is not null && fields.Keys.Any(f => !columns.ContainsKey(Name(columns, f)))))
            {
                var source = value.GetValueOrDefault("source") as Dictionary<string, object?>;
                schemaName = source?.GetValueOrDefault("schema") as string ?? "";
                tableName = source?.GetValueOrDefault("table") as string ?? "";
                columns = await ColumnsAsync(connection, schemaName, tableName, config.Output, cancellationToken);
            }

            if (fields is not null)
            {
                var names = fields.Keys.Select(f => Name(columns, f)).OrderBy(n => columns.TryGetValue(n, out var c) ? c.Number : int.MaxValue).ToArray();
                if (keyNames is null || !names.SequenceEqual(table.Columns, StringComparer.Ordinal))
                {
                    keyNames ??= record.Key is null ? [] : (await decoder.KeyAsync(record.Key) as Dictionary<string, object?>)?.Keys.Select(k => Name(columns, k)).ToArray() ?? [];
                    table.SetSchema(schemaName, tableName, names, keyNames);
                    uncompared.Clear();
                    foreach (var name in names.Where(n => columns.TryGetValue(n, out var c) && c.Uncompared is not null))
                    {
                        uncompared[name] = columns[name].Uncompared!;
                    }
                }
            }

            table.Changes++;
            table.Transactions.Add(new WalBridge.Offsets.Lsn(record.CommitLsn).ToString());
            table.MaxCommitLsn = WalBridge.Offsets.Lsn.Max(table.MaxCommitLsn, new WalBridge.Offsets.Lsn(record.CommitLsn));
            var specials = Specials(record.Headers);
            var where = record.Where;
            switch (op)
            {
                case "c":
                    table.Insert(Row(converter, columns, value.GetValueOrDefault("after"), specials, "after."));
                    break;
                case "r":
                    {
                        // An incremental snapshot's rows refresh the table; only the initial snapshot's hold all of it.
                        var incremental = (value.GetValueOrDefault("source") as Dictionary<string, object?>)?.GetValueOrDefault("snapshot") as string == "incremental";
                        table.Read(Row(converter, columns, value.GetValueOrDefault("after"), specials, "after."), incremental ? 0 : record.CommitLsn);
                        break;
                    }
                case "u":
                    {
                        var before = value.GetValueOrDefault("before") is { } b ? Row(converter, columns, b, specials, "before.") : null;
                        table.Update(before, Row(converter, columns, value.GetValueOrDefault("after"), specials, "after."), Unchanged(record.Headers), where);
                        break;
                    }
                case "d":
                    table.Delete(Row(converter, columns, value.GetValueOrDefault("before"), specials, "before."), where);
                    break;
                case "t":
                    table.Truncate();
                    break;
                default:
                    table.Violations.Add($"record {where} has op '{op}'");
                    break;
            }
        }

        return new DebeziumTable(table, uncompared);
    }

    private sealed record Event(string Where, ulong CommitLsn, long Index, byte[]? Key, byte[]? Value, Headers Headers);

    /// <summary>A source column: its name, position, type and how its Debezium value reads back as PostgreSQL's text.</summary>
    private sealed record Column(string Name, int Number, string Type, int Modifier, string? ElementType, string? Uncompared);

    private static async Task<Dictionary<string, Column>> ColumnsAsync(NpgsqlConnection connection, string schema, string table, OutputSettings settings, CancellationToken cancellationToken)
    {
        var qualified = $"{SourceSetup.QuoteIdentifier(schema)}.{SourceSetup.QuoteIdentifier(table)}";
        // Domains read as their base type (Debezium maps the base type); typtype 'e' is an enum (a string).
        await using var command = new NpgsqlCommand("""
            SELECT a.attname, a.attnum,
                   CASE WHEN t.typtype = 'e' THEN 'text' ELSE b.typname END,
                   CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
                   CASE WHEN e.typtype = 'e' THEN 'text' ELSE e.typname END
            FROM pg_attribute a
            JOIN pg_type t ON t.oid = a.atttypid
            JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
            LEFT JOIN pg_type e ON e.oid = b.typelem AND b.typcategory = 'A'
            WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """, connection);
        command.Parameters.Add(new NpgsqlParameter { Value = qualified });
        var columns = new Dictionary<string, Column>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var type = reader.GetString(2);
            var element = reader.IsDBNull(4) ? null : reader.GetString(4);
            var name = reader.GetString(0);
            columns[name] = new Column(name, reader.GetInt16(1), type, reader.GetInt32(3), element, LossOf(element ?? type, settings));
        }

        return columns;
    }

    /// <summary>Why a type's Debezium value cannot be read back as PostgreSQL's exact text here, or null when it can.</summary>
    private static string? LossOf(string type, OutputSettings settings) => type switch
    {
        "interval" when settings.IntervalMode == IntervalHandlingMode.Numeric => "interval.handling.mode=numeric counts a month as 30.4375 days",
        "interval" => "ISO-8601 intervals are not read back here",
        "numeric" when settings.DecimalMode == DecimalHandlingMode.Double => "decimal.handling.mode=double rounds",
        "money" => "money is a decimal without PostgreSQL's currency format",
        "timetz" => "Debezium's ZonedTime is in UTC, PostgreSQL keeps the offset",
        "bit" or "varbit" => "Debezium's Bits are not read back here",
        "point" or "line" or "lseg" or "box" or "path" or "polygon" or "circle" => "geometric values are not read back here",
        _ => null,
    };

    /// <summary>The source column a field names (Avro field names are adjusted: other characters than letters, digits and '_' become '_').</summary>
    private static string Name(Dictionary<string, Column> columns, string field)
    {
        if (columns.ContainsKey(field))
        {
            return field;
        }

        foreach (var name in columns.Keys)
        {
            var adjusted = new StringBuilder(name.Length);
            for (var i = 0; i < name.Length; i++)
            {
                var c = name[i];
                adjusted.Append(char.IsAsciiLetter(c) || c == '_' || (i > 0 && char.IsAsciiDigit(c)) ? c : '_');
            }

            if (adjusted.ToString() == field)
            {
                return name;
            }
        }

        return field;
    }

    private static Dictionary<string, string?> Row(Converter converter, Dictionary<string, Column> columns, object? value, Dictionary<string, string> specials, string side)
    {
        var row = new Dictionary<string, string?>(StringComparer.Ordinal);
        if (value is not Dictionary<string, object?> fields)
        {
            return row;
        }

        foreach (var (field, fieldValue) in fields)
        {
            var name = Name(columns, field);
            if (specials.TryGetValue(side + name, out var special))
            {
                row[name] = special;
                continue;
            }

            row[name] = columns.TryGetValue(name, out var column) ? converter.Text(column, fieldValue) : Raw(fieldValue);
        }

        return row;
    }

    /// <summary>Turns a column's Debezium value back into PostgreSQL's text, under one configuration's handling modes.</summary>
    private sealed class Converter(OutputSettings settings)
    {
        /// <summary>PostgreSQL's text (as <c>concat()</c> shows it; booleans as <c>bool::text</c>) of a column's Debezium value.</summary>
        public string? Text(Column column, object? value)
        {
            if (value is null)
            {
                return null;
            }

            if (column.Uncompared is not null)
            {
                return Raw(value);
            }

            if (column.ElementType is { } element && value is List<object?> items)
            {
                var text = new StringBuilder("{");
                for (var i = 0; i < items.Count; i++)
                {
                    if (i > 0)
                    {
                        text.Append(',');
                    }

                    text.Append(items[i] is null ? "NULL" : ArrayElement(Scalar(element, column.Modifier, items[i]!, inArray: true)));
                }

                return text.Append('}').ToString();
            }

            return Scalar(column.Type, column.Modifier, value, inArray: false);
        }

        private string Scalar(string type, int modifier, object value, bool inArray) => type switch
        {
            "bool" => value is true ? (inArray ? "t" : "true") : (inArray ? "f" : "false"),
            "int2" or "int4" or "int8" or "oid" => Convert.ToInt64(value, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture),
            "float4" => Float(value is string s4 ? SpecialFloat(s4) : Convert.ToDouble(value, CultureInfo.InvariantCulture), single: true),
            "float8" => Float(value is string s8 ? SpecialFloat(s8) : Convert.ToDouble(value, CultureInfo.InvariantCulture), single: false),
            "numeric" => Numeric(value, modifier),
            "bytea" => Bytea(value),
            "date" => value is DateTime date ? Date((long)(date.Date - DateTime.UnixEpoch).TotalDays) : Date(Convert.ToInt64(value, CultureInfo.InvariantCulture)),
            "time" => Time(value is TimeSpan span ? span.Ticks / 10 : Convert.ToInt64(value, CultureInfo.InvariantCulture) * (TimeInMillis(modifier) ? 1000 : 1)),
            "timestamp" => Timestamp(value, modifier),
            "timestamptz" => value is string zoned ? Zoned(zoned) : Raw(value) ?? "",
            _ => value as string ?? Raw(value) ?? "",
        };

        /// <summary>Precision of a time or timestamp column (6 when unconstrained).</summary>
        private static int Precision(int modifier) => modifier < 0 ? 6 : modifier;

        /// <summary>Whether a <c>time</c> value holds milliseconds: Debezium's Time (precision 0..3, adaptive) and Connect's Time; MicroTime holds microseconds.</summary>
        private bool TimeInMillis(int modifier) => settings.TimePrecision switch
        {
            TimePrecisionMode.Connect => true,
            TimePrecisionMode.AdaptiveTimeMicroseconds => false,
            _ => Precision(modifier) <= 3,
        };

        /// <summary>Whether a <c>timestamp</c> value holds milliseconds: Debezium's Timestamp (precision 0..3) and Connect's Timestamp; MicroTimestamp holds microseconds.</summary>
        private bool TimestampInMillis(int modifier) => settings.TimePrecision == TimePrecisionMode.Connect || Precision(modifier) <= 3;

        private string Timestamp(object value, int modifier)
        {
            if (value is DateTime moment)
            {
                return TimestampText((moment.Ticks - DateTime.UnixEpoch.Ticks) / 10);
            }

            var number = Convert.ToInt64(value, CultureInfo.InvariantCulture);
            var millis = TimestampInMillis(modifier);
            // Debezium's values for ±infinity (in milliseconds; in microseconds for MicroTimestamp).
            if (number == (millis ? 9223372036825200L : 9223372036825200000L))
            {
                return "infinity";
            }

            if (number == (millis ? -9223372036832400L : -9223372036832400000L))
            {
                return "-infinity";
            }

            return TimestampText(millis ? number * 1000 : number);
        }

        private string Numeric(object value, int modifier)
        {
            switch (value)
            {
                case string text when settings.DecimalMode == DecimalHandlingMode.String:
                    return text;
                case string base64:
                    // JSON: a Connect Decimal is the base64 of the unscaled two's complement, its scale the column's.
                    return Decimal(new BigInteger(Convert.FromBase64String(base64), isUnsigned: false, isBigEndian: true), modifier < 0 ? 0 : (modifier - 4) & 0xFFFF);
                case DecimalValue d:
                    return Decimal(d.Unscaled, d.Scale);
                case Dictionary<string, object?> variable when variable.GetValueOrDefault("value") is { } unscaled:
                    {
                        var scale = Convert.ToInt32(variable.GetValueOrDefault("scale") ?? 0, CultureInfo.InvariantCulture);
                        var bytes = unscaled as byte[] ?? Convert.FromBase64String((string)unscaled);
                        return Decimal(new BigInteger(bytes, isUnsigned: false, isBigEndian: true), scale);
                    }
                default:
                    return Raw(value) ?? "";
            }
        }

        private string Bytea(object value)
        {
            var bytes = value switch
            {
                byte[] raw => raw,
                string text when settings.BinaryMode == BinaryHandlingMode.Hex => Convert.FromHexString(text),
                string text when settings.BinaryMode == BinaryHandlingMode.Base64UrlSafe => Convert.FromBase64String(text.Replace('-', '+').Replace('_', '/').PadRight((text.Length + 3) / 4 * 4, '=')),
                string text => Convert.FromBase64String(text),
                _ => [],
            };
            return "\\x" + Convert.ToHexStringLower(bytes);
        }
    }

    private static double SpecialFloat(string text) => text switch
    {
        "NaN" => double.NaN,
        "Infinity" => double.PositiveInfinity,
        "-Infinity" => double.NegativeInfinity,
        _ => double.Parse(text, CultureInfo.InvariantCulture),
    };

    /// <summary>
    /// The fewest significant digits (as <c>d.dddE±x</c>) that read back as <paramref name="value"/> and are not exactly
    /// halfway to a neighbouring float: PostgreSQL's shortest output (Ryu) leaves such a tie out, .NET's "R" takes it.
    /// </summary>
    private static string Shortest(double value, bool single)
    {
        for (var digits = 1; digits <= (single ? 9 : 17); digits++)
        {
            var format = "E" + (digits - 1).ToString(CultureInfo.InvariantCulture);
            var candidate = single ? ((float)value).ToString(format, CultureInfo.InvariantCulture) : value.ToString(format, CultureInfo.InvariantCulture);
            var back = double.Parse(candidate, NumberStyles.Float, CultureInfo.InvariantCulture);
            if ((single ? (float)back == (float)value : back == value) && !IsHalfway(candidate, value, single))
            {
                return candidate;
            }
        }

        return single ? ((float)value).ToString("E8", CultureInfo.InvariantCulture) : value.ToString("E16", CultureInfo.InvariantCulture);
    }

    /// <summary>Whether the decimal <paramref name="candidate"/> is exactly the midpoint of <paramref name="value"/> and its neighbour on the candidate's side.</summary>
    private static bool IsHalfway(string candidate, double value, bool single)
    {
        var text = candidate.TrimStart('-');
        var e = text.IndexOfAny(['E', 'e']);
        var mantissa = text[..e].Replace(".", "", StringComparison.Ordinal);
        var power10 = int.Parse(text[(e + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture) - (mantissa.Length - 1);
        var n = BigInteger.Parse(mantissa, CultureInfo.InvariantCulture);
        var magnitude = Math.Abs(value);
        var candidateValue = double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
        var decimalAbove = candidateValue > magnitude || (candidateValue == magnitude && CompareExact(n, power10, magnitude) > 0);
        var neighbour = single
            ? (double)(decimalAbove ? MathF.BitIncrement((float)magnitude) : MathF.BitDecrement((float)magnitude))
            : (decimalAbove ? Math.BitIncrement(magnitude) : Math.BitDecrement(magnitude));
        var (na, ea) = Exact(magnitude);
        var (nb, eb) = Exact(neighbour);
        var low = Math.Min(Math.Min(ea, eb), 0);
        var scale10 = Math.Max(-power10, 0);
        // 2·candidate = value + neighbour, both sides times 2^-low · 10^scale10 (integers).
        var left = 2 * n * BigInteger.Pow(10, power10 + scale10) * BigInteger.Pow(2, -low);
        var right = ((na << (ea - low)) + (nb << (eb - low))) * BigInteger.Pow(10, scale10);
        return left == right;
    }

    /// <summary>The sign of <c>n·10^power10 − value</c>, exactly.</summary>
    private static int CompareExact(BigInteger n, int power10, double value)
    {
        var (m, e) = Exact(value);
        var low = Math.Min(e, 0);
        var scale10 = Math.Max(-power10, 0);
        var left = n * BigInteger.Pow(10, power10 + scale10) * BigInteger.Pow(2, -low);
        var right = (m << (e - low)) * BigInteger.Pow(10, scale10);
        return left.CompareTo(right);
    }

    /// <summary>A finite non-negative double as <c>m·2^e</c> exactly.</summary>
    private static (BigInteger Mantissa, int Exponent) Exact(double value)
    {
        var bits = BitConverter.DoubleToInt64Bits(value) & long.MaxValue;
        var biased = (int)(bits >> 52);
        var fraction = bits & ((1L << 52) - 1);
        return biased == 0 ? (fraction, -1074) : (fraction | (1L << 52), biased - 1075);
    }

    /// <summary>PostgreSQL's shortest exact float text: fixed notation for decimal exponents from -4 below the type's digits (15, or 6 for float4), else <c>1e+20</c>.</summary>
    private static string Float(double value, bool single)
    {
        if (double.IsNaN(value))
        {
            return "NaN";
        }

        if (double.IsInfinity(value))
        {
            return value > 0 ? "Infinity" : "-Infinity";
        }

        var shortest = Shortest(value, single);

        // Digits and decimal exponent of the shortest round-trip form.
        var negative = shortest.StartsWith('-');
        var body = negative ? shortest[1..] : shortest;
        var exponent = 0;
        var e = body.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            exponent = int.Parse(body[(e + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            body = body[..e];
        }

        var point = body.IndexOf('.');
        var digits = point < 0 ? body : body.Remove(point, 1);
        var integerDigits = point < 0 ? body.Length : point;
        var leading = digits.Length - digits.TrimStart('0').Length;
        digits = digits.Trim('0');
        if (digits.Length == 0)
        {
            return negative ? "-0" : "0";
        }

        // value = 0.digits × 10^decimalExponent
        var decimalExponent = integerDigits - leading + exponent;
        var scientific = decimalExponent - 1;
        var text = new StringBuilder();
        if (negative)
        {
            text.Append('-');
        }

        if (scientific < -4 || scientific >= (single ? 6 : 15))
        {
            text.Append(digits[0]);
            if (digits.Length > 1)
            {
                text.Append('.').Append(digits, 1, digits.Length - 1);
            }

            text.Append('e').Append(scientific < 0 ? '-' : '+').Append(Math.Abs(scientific).ToString("00", CultureInfo.InvariantCulture));
            return text.ToString();
        }

        if (decimalExponent <= 0)
        {
            text.Append("0.").Append('0', -decimalExponent).Append(digits);
        }
        else if (decimalExponent >= digits.Length)
        {
            text.Append(digits).Append('0', decimalExponent - digits.Length);
        }
        else
        {
            text.Append(digits, 0, decimalExponent).Append('.').Append(digits, decimalExponent, digits.Length - decimalExponent);
        }

        return text.ToString();
    }

    private static string Decimal(BigInteger unscaled, int scale)
    {
        var digits = BigInteger.Abs(unscaled).ToString(CultureInfo.InvariantCulture);
        if (scale > 0)
        {
            digits = digits.PadLeft(scale + 1, '0');
            digits = digits[..^scale] + "." + digits[^scale..];
        }

        return unscaled.Sign < 0 ? "-" + digits : digits;
    }

    /// <summary>A date from days since 1970-01-01 (proleptic Gregorian; years before 1 as <c>… BC</c>).</summary>
    private static string Date(long days)
    {
        var (year, month, day) = Civil(days);
        return year > 0
            ? FormattableString.Invariant($"{year:0000}-{month:00}-{day:00}")
            : FormattableString.Invariant($"{1 - year:0000}-{month:00}-{day:00} BC");
    }

    /// <summary>Howard Hinnant's days-to-civil algorithm (astronomical year numbering).</summary>
    private static (long Year, int Month, int Day) Civil(long days)
    {
        days += 719468;
        var era = (days >= 0 ? days : days - 146096) / 146097;
        var dayOfEra = days - era * 146097;
        var yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146096) / 365;
        var dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100);
        var mp = (5 * dayOfYear + 2) / 153;
        var day = (int)(dayOfYear - (153 * mp + 2) / 5 + 1);
        var month = (int)(mp < 10 ? mp + 3 : mp - 9);
        var year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
        return (year, month, day);
    }

    private static string Time(long micros) =>
        FormattableString.Invariant($"{micros / 3_600_000_000:00}:{micros / 60_000_000 % 60:00}:{micros / 1_000_000 % 60:00}") + Fraction(micros % 1_000_000);

    private static string Fraction(long micros) => micros == 0 ? "" : "." + micros.ToString("000000", CultureInfo.InvariantCulture).TrimEnd('0');

    private static string TimestampText(long micros)
    {
        var days = Math.DivRem(micros, 86_400_000_000L, out var rest);
        if (rest < 0)
        {
            days--;
            rest += 86_400_000_000L;
        }

        var (year, month, day) = Civil(days);
        var text = FormattableString.Invariant($"{(year > 0 ? year : 1 - year):0000}-{month:00}-{day:00} ") + Time(rest);
        return year > 0 ? text : text + " BC";
    }

    /// <summary>Debezium's ZonedTimestamp (ISO-8601, UTC) as PostgreSQL shows a timestamptz with TimeZone UTC.</summary>
    private static string Zoned(string text)
    {
        if (text is "infinity" or "-infinity")
        {
            return text;
        }

        var match = System.Text.RegularExpressions.Regex.Match(text, @"^([+-]?\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z$");
        if (!match.Success)
        {
            return text;
        }

        var year = long.Parse(match.Groups[1].Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        var fraction = match.Groups[7].Success ? match.Groups[7].Value.TrimEnd('0') : "";
        var result = $"{(year > 0 ? year : 1 - year).ToString("0000", CultureInfo.InvariantCulture)}-{match.Groups[2].Value}-{match.Groups[3].Value} {match.Groups[4].Value}:{match.Groups[5].Value}:{match.Groups[6].Value}" +
                     (fraction.Length > 0 ? "." + fraction : "") + "+00";
        return year > 0 ? result : result + " BC";
    }

    /// <summary>An array element as array_out writes it: quoted when empty, NULL, or holding a quote, backslash, brace, comma or white space.</summary>
    private static string ArrayElement(string text)
    {
        var quote = text.Length == 0 || text.Equals("NULL", StringComparison.OrdinalIgnoreCase)
                    || text.Any(c => c is '"' or '\\' or '{' or '}' or ',' or ' ' or '\t' or '\n' or '\r' or '\v' or '\f');
        return quote ? "\"" + text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"" : text;
    }

    /// <summary>A value's plain text (for columns left out of the comparison, which still identify rows of a table without a key).</summary>
    private static string? Raw(object? value) => value switch
    {
        null => null,
        string s => s,
        byte[] b => Convert.ToBase64String(b),
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        Dictionary<string, object?> d => "{" + string.Join(",", d.Select(kv => $"{kv.Key}:{Raw(kv.Value)}")) + "}",
        List<object?> l => "[" + string.Join(",", l.Select(Raw)) + "]",
        _ => value.ToString(),
    };

    private static Dictionary<string, string> Specials(Headers headers)
    {
        var specials = new Dictionary<string, string>(StringComparer.Ordinal);
        if (headers.TryGetLastBytes("walbridge.special", out var bytes))
        {
            using var json = JsonDocument.Parse(bytes);
            foreach (var property in json.RootElement.EnumerateObject())
            {
                specials[property.Name] = property.Value.GetString() ?? "";
            }
        }

        return specials;
    }

    private static List<string> Unchanged(Headers headers)
    {
        var names = new List<string>();
        if (headers.TryGetLastBytes("walbridge.unchanged", out var bytes))
        {
            using var json = JsonDocument.Parse(bytes);
            names.AddRange(json.RootElement.EnumerateArray().Select(e => e.GetString() ?? "").Where(n => !n.StartsWith("_before.", StringComparison.Ordinal)));
        }

        return names;
    }

    private static string? Header(Headers headers, string name) => headers.TryGetLastBytes(name, out var bytes) ? Encoding.UTF8.GetString(bytes) : null;

    /// <summary>An unscaled decimal and its scale (Avro's decimal logical type).</summary>
    private sealed record DecimalValue(BigInteger Unscaled, int Scale);

    /// <summary>Decodes keys and values into plain values: dictionaries (structs), lists, strings, longs, doubles, booleans, byte arrays, decimals.</summary>
    private sealed class Decoder(OutputFormat format, string topic, ISchemaRegistryClient? registry)
    {
        private readonly AvroDeserializer<GenericRecord>? _avro = format == OutputFormat.DebeziumAvro && registry is not null ? new AvroDeserializer<GenericRecord>(registry) : null;

        public Task<object?> KeyAsync(byte[] bytes) => DecodeAsync(bytes, MessageComponentType.Key);

        public Task<object?> ValueAsync(byte[] bytes) => DecodeAsync(bytes, MessageComponentType.Value);

        private async Task<object?> DecodeAsync(byte[] bytes, MessageComponentType component)
        {
            if (_avro is not null)
            {
                var record = await _avro.DeserializeAsync(bytes, false, new SerializationContext(component, topic));
                return FromAvro(record);
            }

            using var json = JsonDocument.Parse(bytes);
            var root = json.RootElement;
            // Kafka Connect's JsonConverter with schemas.enable: {"schema": …, "payload": …}.
            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("payload", out var payload) && root.TryGetProperty("schema", out _))
            {
                root = payload;
            }

            return FromJson(root);
        }

        private static object? FromJson(JsonElement element) => element.ValueKind switch
        {
            JsonValueKind.Object => element.EnumerateObject().ToDictionary(p => p.Name, p => FromJson(p.Value), StringComparer.Ordinal),
            JsonValueKind.Array => element.EnumerateArray().Select(FromJson).ToList(),
            JsonValueKind.String => element.GetString(),
            // (object) keeps a long a long: the conditional's common type would be double, losing digits past 2^53.
            JsonValueKind.Number => element.TryGetInt64(out var integer) ? (object)integer : element.GetDouble(),
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => null,
        };

        private static object? FromAvro(object? value) => value switch
        {
            null => null,
            GenericRecord record => record.Schema.Fields.ToDictionary(f => f.Name, f => FromAvro(record[f.Name]), StringComparer.Ordinal),
            Avro.AvroDecimal d => new DecimalValue(d.UnscaledValue, d.Scale),
            int i => (long)i,
            float f => (double)f,
            string or long or double or bool or byte[] or DateTime or TimeSpan => value,
            System.Collections.IDictionary map => map.Keys.Cast<object>().ToDictionary(k => k.ToString()!, k => FromAvro(map[k]), StringComparer.Ordinal),
            System.Collections.IEnumerable list => list.Cast<object?>().Select(FromAvro).ToList(),
            _ => value,
        };
    }
}
