using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using Npgsql;
using WalBridge.Connector.Kafka;
using WalBridge.Connector.Verification;

namespace WalBridge.DevTools.Chaos;

/// <summary>What the independent reader rebuilt: every table in PostgreSQL's text form, ready for <see cref="SourceComparison"/>.</summary>
public sealed class ArrowJsReplayResult
{
    public List<ReplayedTable> Tables { get; } = [];
    /// <summary>For the tracked tables (<c>schema.table</c>): the first column's value of each inserted row → the insert's commit LSN.</summary>
    public Dictionary<string, Dictionary<string, string>> InsertCommitLsns { get; } = new(StringComparer.Ordinal);
    /// <summary>Per topic: the transactions (<c>pg.xid</c>) its records hold, with their commit LSN.</summary>
    public Dictionary<string, Dictionary<string, string>> TransactionsByTopic { get; } = new(StringComparer.Ordinal);
    public long Records { get; set; }
    /// <summary>Values PostgreSQL turned back into text (the rest were text or bytes already).</summary>
    public long RenderedBySql { get; set; }
    /// <summary>Time spent in apache-arrow (node), in applying the decoded changes, and in rendering.</summary>
    public TimeSpan DecodeTime { get; set; }
    public TimeSpan ApplyTime { get; set; }
    public TimeSpan RenderTime { get; set; }
}

/// <summary>
/// The independent reader: table topics are read with <c>read_committed</c>, every record is decoded by npm
/// apache-arrow (tools/arrow-js/dump.js, an Arrow implementation WalBridge did not write), each table is rebuilt from
/// the raw decoded cells (the changes applied in order, as <see cref="TopicReplay"/> does with our reader), and the
/// final values are turned into PostgreSQL's text by PostgreSQL itself: from each raw Arrow value an SQL expression of
/// the column's type is built as docs/format.md's mapping defines it (a timestamp[us] is the epoch plus days plus
/// microseconds, a decimal its unscaled integer with the field's scale, a list <c>ARRAY[…]</c> of its elements, …) and
/// <c>(expression)::text</c> is compared with the source. Neither our Arrow reader nor our renderer is involved.
/// </summary>
public static class ArrowJsReplay
{
    private const char Separator = '\u001e';
    private const int MaxFilesPerRun = 1000;
    private const long MaxBytesPerRun = 16L << 20;
    private const int ExpressionsPerQuery = 200;

    /// <summary>tools/arrow-js above this program, with apache-arrow installed (scripts/setup.sh), or null.</summary>
    public static string? FindTool()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tools", "arrow-js");
            if (File.Exists(Path.Combine(candidate, "dump.js")) && File.Exists(Path.Combine(candidate, "node_modules", "apache-arrow", "package.json")))
            {
                return candidate;
            }
        }
        return null;
    }

    /// <summary>Reads and rebuilds <paramref name="topics"/>; renders through <paramref name="connection"/>. Blocking reads, async rendering.</summary>
    public static async Task<ArrowJsReplayResult> ReplayAsync(IReadOnlyDictionary<string, string> kafka, IReadOnlyList<string> topics, NpgsqlConnection connection,
        string toolDirectory, IReadOnlyCollection<string> trackInserts, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(topics);
        ArgumentNullException.ThrowIfNull(trackInserts);
        var result = new ArrowJsReplayResult();
        var fields = new FieldRegistry();
        var raw = new List<ReplayedTable>();
        var directory = Path.Combine(Path.GetTempPath(), $"walbridge-arrowjs-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        try
        {
            foreach (var topic in topics)
            {
                var table = await Task.Run(() => ReadTopic(kafka, topic, toolDirectory, directory, fields, result, trackInserts, cancellationToken), cancellationToken);
                if (table.Columns.Count > 0)
                {
                    raw.Add(table);
                }
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }

        var renderClock = Stopwatch.StartNew();
        var renderer = new SqlRenderer(connection, fields);
        await renderer.PrepareAsync(raw.SelectMany(t => t.Rows.Values).SelectMany(r => r).SelectMany(r => r.Values), cancellationToken);
        result.RenderedBySql = renderer.Rendered;
        foreach (var table in raw)
        {
            var text = new ReplayedTable { Topic = table.Topic, Records = table.Records, Changes = table.Changes, MaxCommitLsn = table.MaxCommitLsn };
            text.SetSchema(table.Schema, table.Table, table.Columns, table.KeyColumns);
            foreach (var row in table.Rows.Values.SelectMany(r => r))
            {
                text.Insert(row.ToDictionary(kv => kv.Key, kv => renderer.Render(kv.Value), StringComparer.Ordinal));
            }

            text.Transactions.UnionWith(table.Transactions);
            text.Violations.AddRange(table.Violations);
            text.DuplicateRecords = table.DuplicateRecords;
            text.Unmatched.AddRange(table.Unmatched);
            text.UnmatchedCount = table.UnmatchedCount;
            result.Tables.Add(text);
        }
        result.RenderTime = renderClock.Elapsed;
        return result;
    }

    private sealed record PendingRecord(string File, string Xid, string CommitLsn, int Chunk, string Kind, long Offset);

    private static ReplayedTable ReadTopic(IReadOnlyDictionary<string, string> kafka, string topic, string tool, string directory, FieldRegistry fields,
        ArrowJsReplayResult result, IReadOnlyCollection<string> trackInserts, CancellationToken cancellationToken)
    {
        var table = new ReplayedTable { Topic = topic };
        var pending = new List<PendingRecord>();
        long pendingBytes = 0;
        var fileNumber = 0;
        var layouts = new Dictionary<string, Layout>(StringComparer.Ordinal);
        var seen = new HashSet<(string, string, int)>();
        var transactions = new Dictionary<string, string>(StringComparer.Ordinal);
        result.TransactionsByTopic[topic] = transactions;
        void Flush()
        {
            if (pending.Count == 0)
            {
                return;
            }

            var clock = Stopwatch.StartNew();
            var documents = Dump(tool, pending.Select(p => p.File).ToList());
            result.DecodeTime += clock.Elapsed;
            clock.Restart();
            for (var i = 0; i < pending.Count; i++)
            {
                using var document = documents[i];
                Apply(table, document.RootElement, pending[i], fields, layouts, result, trackInserts);
            }
            result.ApplyTime += clock.Elapsed;
            foreach (var record in pending)
            {
                File.Delete(record.File);
            }

            pending.Clear();
            pendingBytes = 0;
        }
        OffsetsTopicReader.ReadToEnd(kafka, topic, message =>
        {
            table.Records++;
            result.Records++;
            var headers = message.Message.Headers;
            var xid = Header(headers, KafkaHeaders.Xid) ?? "?";
            var lsn = Header(headers, KafkaHeaders.CommitLsn) ?? "0/0";
            var chunk = int.Parse(Header(headers, KafkaHeaders.ChunkIndex) ?? "0", CultureInfo.InvariantCulture);
            if (!seen.Add((xid, lsn, chunk)))
            {
                table.DuplicateRecords++;
                table.Violations.Add($"duplicate record: xid {xid}, commit LSN {lsn}, chunk {chunk} (offset {message.Offset.Value})");
            }
            table.Transactions.Add(lsn);
            if (transactions.TryGetValue(xid, out var earlier) && earlier != lsn)
            {
                table.Violations.Add($"xid {xid} appears with two commit LSNs, {earlier} and {lsn} (offset {message.Offset.Value})");
            }

            transactions[xid] = lsn;
            table.MaxCommitLsn = WalBridge.Offsets.Lsn.Max(table.MaxCommitLsn, WalBridge.Offsets.Lsn.Parse(lsn));
            if (message.Message.Value is not { } value)
            {
                table.Violations.Add($"record without value at offset {message.Offset.Value}");
                return;
            }
            var file = Path.Combine(directory, $"{fileNumber++:D7}.arrows");
            File.WriteAllBytes(file, value);
            pending.Add(new PendingRecord(file, xid, lsn, chunk, Header(headers, KafkaHeaders.Kind) ?? "changes", message.Offset.Value));
            pendingBytes += value.Length;
            if (pending.Count >= MaxFilesPerRun || pendingBytes >= MaxBytesPerRun)
            {
                Flush();
            }
        }, cancellationToken, TimeSpan.FromMinutes(10));
        Flush();
        return table;
    }

    /// <summary>
    /// Runs dump.js over the files, a large batch split between two node processes (one per core: this side only
    /// waits); one JSON document per file, in order (the caller disposes them).
    /// </summary>
    private static List<JsonDocument> Dump(string tool, List<string> files)
    {
        if (files.Count < 64 || Environment.ProcessorCount < 2)
        {
            return DumpOne(tool, files);
        }

        var half = files.Count / 2;
        var first = Task.Run(() => DumpOne(tool, files[..half]));
        var second = DumpOne(tool, files[half..]);
        return [.. first.GetAwaiter().GetResult(), .. second];
    }

    private static List<JsonDocument> DumpOne(string tool, List<string> files)
    {
        var start = new ProcessStartInfo("node", [Path.Combine(tool, "dump.js"), .. files])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = tool,
        };
        using var node = Process.Start(start) ?? throw new InvalidOperationException("could not start node");
        var stderr = node.StandardError.ReadToEndAsync();
        var documents = new List<JsonDocument>(files.Count);
        while (node.StandardOutput.ReadLine() is { } line)
        {
            documents.Add(JsonDocument.Parse(line));
        }

        node.WaitForExit();
        if (node.ExitCode != 0 || documents.Count != files.Count)
        {
            foreach (var document in documents)
            {
                document.Dispose();
            }

            throw new InvalidOperationException($"apache-arrow (tools/arrow-js/dump.js) could not read a payload (exit code {node.ExitCode}, {documents.Count} of {files.Count} read): {stderr.Result}");
        }
        return documents;
    }

    /// <summary>A record's layout as apache-arrow read it, worked out once per distinct schema.</summary>
    private sealed record Layout(string[] Names, int[] Signatures, string[] BeforeNames, int[] BeforeSignatures, string Schema, string Table, string[] Key, string? Problem);

    private static Layout Describe(JsonElement document, FieldRegistry fields)
    {
        var schemaFields = document.GetProperty("fields").EnumerateArray().ToList();
        var metadata = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var pair in document.GetProperty("metadata").EnumerateArray())
        {
            metadata[pair[0].GetString()!] = pair[1].GetString();
        }

        string Name(JsonElement field) => field.GetProperty("name").GetString()!;
        // Positions are the contract (docs/format.md): _op, _lsn, the table's columns, _before, _unchanged, _special.
        var count = schemaFields.Count;
        var columns = Enumerable.Range(2, Math.Max(0, count - 5)).Select(i => schemaFields[i]).ToArray();
        string? problem = null;
        if (count < 5 || Name(schemaFields[0]) != "_op" || Name(schemaFields[count - 3]) != "_before"
            || Name(schemaFields[count - 2]) != "_unchanged" || Name(schemaFields[count - 1]) != "_special"
            || columns.Any(f => Meta(f, "pg.typoid") is null))
        {
            problem = $"apache-arrow reads an unexpected column layout: {string.Join(", ", schemaFields.Select(Name))}";
            return new Layout([], [], [], [], "", "", [], problem);
        }
        var before = schemaFields[count - 3].GetProperty("children").EnumerateArray().ToArray();
        return new Layout(columns.Select(Name).ToArray(), columns.Select(fields.Register).ToArray(),
            before.Select(Name).ToArray(), before.Select(fields.Register).ToArray(),
            metadata.GetValueOrDefault("pg.schema") ?? "", metadata.GetValueOrDefault("pg.table") ?? "",
            (metadata.GetValueOrDefault("pg.primary_key") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries), null);
    }

    private static void Apply(ReplayedTable table, JsonElement document, PendingRecord record, FieldRegistry fields, Dictionary<string, Layout> layouts,
        ArrowJsReplayResult result, IReadOnlyCollection<string> trackInserts)
    {
        var fieldsText = document.GetProperty("fields").GetRawText() + document.GetProperty("metadata").GetRawText();
        if (!layouts.TryGetValue(fieldsText, out var layout))
        {
            layouts[fieldsText] = layout = Describe(document, fields);
        }

        if (layout.Problem is not null)
        {
            table.Violations.Add($"{layout.Problem} (offset {record.Offset})");
            return;
        }
        table.SetSchema(layout.Schema, layout.Table, layout.Names, layout.Key);
        var qualified = $"{table.Schema}.{table.Table}";
        if (record.Kind == "truncate")
        {
            table.Truncate();
            table.Changes++;
            return;
        }
        var cells = document.GetProperty("columns").EnumerateArray().ToArray();
        var count = cells.Length;
        var rows = document.GetProperty("rows").GetInt32();
        Dictionary<string, string>? tracked = null;
        if (trackInserts.Contains(qualified) && !result.InsertCommitLsns.TryGetValue(qualified, out tracked))
        {
            result.InsertCommitLsns[qualified] = tracked = new Dictionary<string, string>(StringComparer.Ordinal);
        }

        for (var row = 0; row < rows; row++)
        {
            table.Changes++;
            var special = new Dictionary<string, string?>(StringComparer.Ordinal);
            if (cells[count - 1][row] is { ValueKind: JsonValueKind.Array } entries)
            {
                foreach (var entry in entries.EnumerateArray())
                {
                    special[entry[0].GetString()!] = entry[1].GetString();
                }
            }
            var unchanged = cells[count - 2][row] is { ValueKind: JsonValueKind.Array } list
                ? list.EnumerateArray().Select(n => n.GetString()!).ToList()
                : [];
            var values = new Dictionary<string, string?>(StringComparer.Ordinal);
            for (var c = 0; c < layout.Names.Length; c++)
            {
                values[layout.Names[c]] = Encode(layout.Signatures[c], cells[c + 2][row], special.GetValueOrDefault(layout.Names[c]));
            }

            var where = $"commit LSN {record.CommitLsn}, offset {record.Offset}, row {row} (apache-arrow)";
            var op = cells[0][row];
            switch (op.ValueKind == JsonValueKind.String ? op.GetString() : null)
            {
                case "c":
                case "r":
                    table.Insert(values);
                    if (tracked is not null && layout.Names.Length > 0 && cells[2][row] is { ValueKind: JsonValueKind.String } first)
                    {
                        tracked[first.GetString()!] = record.CommitLsn;
                    }

                    break;
                case "u":
                    {
                        Dictionary<string, string?>? old = null;
                        var members = cells[count - 3][row];
                        if (members.ValueKind == JsonValueKind.Array && members.GetArrayLength() != layout.BeforeNames.Length)
                        {
                            table.Violations.Add($"_before has {members.GetArrayLength()} members but {layout.BeforeNames.Length} fields at {where}");
                        }
                        else if (members.ValueKind == JsonValueKind.Array)
                        {
                            old = new Dictionary<string, string?>(StringComparer.Ordinal);
                            var m = 0;
                            foreach (var member in members.EnumerateArray())
                            {
                                var name = layout.BeforeNames[m];
                                old[name] = Encode(layout.BeforeSignatures[m], member, special.GetValueOrDefault("_before." + name));
                                m++;
                            }
                        }
                        table.Update(old, values, unchanged, where);
                        break;
                    }
                case "d":
                    table.Delete(values, where);
                    break;
                default:
                    table.Violations.Add($"unknown _op {op.GetRawText()} at {where}");
                    break;
            }
        }
    }

    /// <summary>
    /// A raw cell as a comparable string: the field's signature id, whether the JSON cell was a string, and its exact
    /// JSON (or string) content; values Arrow cannot hold are their <c>_special</c> text; SQL NULL is null.
    /// </summary>
    private static string? Encode(int signature, JsonElement cell, string? special)
    {
        if (cell.ValueKind == JsonValueKind.Null)
        {
            return special is null ? null : "S" + Separator + special;
        }

        return cell.ValueKind == JsonValueKind.String
            ? string.Create(CultureInfo.InvariantCulture, $"{signature}{Separator}s{cell.GetString()}")
            : string.Create(CultureInfo.InvariantCulture, $"{signature}{Separator}j{cell.GetRawText()}");
    }

    private static string? Header(Headers headers, string name) =>
        headers.TryGetLastBytes(name, out var bytes) ? Encoding.UTF8.GetString(bytes) : null;

    internal static string? Meta(JsonObject field, string key) =>
        field["metadata"]!.AsArray().Where(p => (string)p![0]! == key).Select(p => (string?)p![1]).FirstOrDefault();

    private static string? Meta(JsonElement field, string key)
    {
        foreach (var pair in field.GetProperty("metadata").EnumerateArray())
        {
            if (pair[0].GetString() == key)
            {
                return pair[1].GetString();
            }
        }
        return null;
    }

    /// <summary>Field types seen (type, parameters, pg.type, extension, children), numbered.</summary>
    private sealed class FieldRegistry
    {
        private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);

        public List<JsonObject> Fields { get; } = [];

        public int Register(JsonElement field)
        {
            var signature = Signature(field);
            if (!_ids.TryGetValue(signature, out var id))
            {
                id = Fields.Count;
                _ids[signature] = id;
                Fields.Add(JsonNode.Parse(field.GetRawText())!.AsObject());
            }
            return id;
        }

        private static string Signature(JsonElement field) =>
            $"{field.GetProperty("typeId").GetString()}{field.GetProperty("params").GetRawText()}|{Meta(field, "pg.type")}|{Meta(field, "ARROW:extension:name")}"
            + $"[{string.Join(";", field.GetProperty("children").EnumerateArray().Select(Signature))}]";
    }

    /// <summary>Turns encoded cells into PostgreSQL's text: text and bytes directly, everything else through PostgreSQL.</summary>
    private sealed class SqlRenderer(NpgsqlConnection connection, FieldRegistry fields)
    {
        private readonly Dictionary<string, string?> _rendered = new(StringComparer.Ordinal);

        public long Rendered { get; private set; }

        public async Task PrepareAsync(IEnumerable<string?> values, CancellationToken cancellationToken)
        {
            await using (var settings = new NpgsqlCommand("SET extra_float_digits = 1; SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'", connection))
            {
                await settings.ExecuteNonQueryAsync(cancellationToken);
            }

            var pending = new List<(string Encoded, string Sql)>();
            foreach (var encoded in values)
            {
                if (encoded is null || _rendered.ContainsKey(encoded))
                {
                    continue;
                }

                var (direct, sql) = Translate(encoded);
                if (sql is null)
                {
                    _rendered[encoded] = direct;
                    continue;
                }
                _rendered[encoded] = null;
                pending.Add((encoded, sql));
            }
            foreach (var chunk in pending.Chunk(ExpressionsPerQuery))
            {
                try
                {
                    var texts = await QueryAsync(chunk.Select(c => c.Sql).ToList(), cancellationToken);
                    for (var i = 0; i < chunk.Length; i++)
                    {
                        _rendered[chunk[i].Encoded] = texts[i];
                    }
                }
                catch (PostgresException)
                {
                    foreach (var (encoded, sql) in chunk)
                    {
                        try
                        {
                            _rendered[encoded] = (await QueryAsync([sql], cancellationToken))[0];
                        }
                        catch (PostgresException e)
                        {
                            _rendered[encoded] = $"<apache-arrow value {encoded[(encoded.IndexOf(Separator, StringComparison.Ordinal) + 2)..]} that PostgreSQL cannot read back: {e.MessageText}>";
                        }
                    }
                }
            }
            Rendered = pending.Count;
        }

        private async Task<List<string?>> QueryAsync(List<string> expressions, CancellationToken cancellationToken)
        {
            await using var command = new NpgsqlCommand("SELECT " + string.Join(", ", expressions.Select(e => $"({e})::text")), connection);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            await reader.ReadAsync(cancellationToken);
            var texts = new List<string?>(expressions.Count);
            for (var i = 0; i < expressions.Count; i++)
            {
                texts.Add(reader.IsDBNull(i) ? null : reader.GetString(i));
            }

            return texts;
        }

        public string? Render(string? encoded) => encoded is null ? null : _rendered[encoded];

        /// <summary>The text itself when the value is text already, or an SQL expression PostgreSQL must render.</summary>
        private (string? Direct, string? Sql) Translate(string encoded)
        {
            var separator = encoded.IndexOf(Separator, StringComparison.Ordinal);
            if (encoded[..separator] == "S")
            {
                return (encoded[(separator + 1)..], null);
            }

            var field = fields.Fields[int.Parse(encoded[..separator], CultureInfo.InvariantCulture)];
            var isString = encoded[separator + 1] == 's';
            var content = encoded[(separator + 2)..];
            var cell = isString ? JsonValue.Create(content) : JsonNode.Parse(content);
            return (string)field["typeId"]! switch
            {
                "Utf8" or "LargeUtf8" => (content, null),
                "Binary" or "LargeBinary" => ("\\x" + content, null),
                "Bool" => (content == "true" ? "true" : "false", null),
                "Int" => (content, null),
                _ => (null, Sql(cell, field)),
            };
        }
    }

    /// <summary>
    /// An SQL expression of the field's PostgreSQL type (<c>pg.type</c>) whose value is what the raw Arrow cell means under
    /// docs/format.md's mapping, built from the exact integers dump.js prints (floats from their shortest round-trip text).
    /// </summary>
    private static string Sql(JsonNode? cell, JsonObject field)
    {
        var pgType = Meta(field, "pg.type") ?? throw new InvalidOperationException($"field {field["name"]} has no pg.type");
        if (cell is null)
        {
            return $"NULL::{pgType}";
        }

        var parameters = field["params"]!.AsObject();
        switch ((string)field["typeId"]!)
        {
            case "Bool":
                return (bool)cell ? "true" : "false";
            case "Int":
                return $"{Literal(Raw(cell))}::{pgType}";
            case "Float":
                return (string)parameters["precision"]! == "SINGLE" ? $"({Literal(Raw(cell))}::float8)::real" : $"{Literal(Raw(cell))}::float8";
            case "Decimal":
                return $"{Literal(Scaled(BigInteger.Parse((string)cell!, CultureInfo.InvariantCulture), (int)parameters["scale"]!))}::{pgType}";
            case "Utf8":
            case "LargeUtf8":
                return $"{Literal((string)cell!)}::{pgType}";
            case "Binary":
            case "LargeBinary":
                return $"{Literal("\\x" + (string)cell!)}::bytea";
            case "FixedSizeBinary":
                return $"{Literal((string)cell!)}::uuid";
            case "Date":
                return (string)parameters["unit"]! == "DAY"
                    ? $"('1970-01-01'::date + {Literal((string)cell!)}::int4)"
                    : throw new InvalidOperationException($"date unit {parameters["unit"]}");
            case "Timestamp":
                {
                    var micros = Micros((string)parameters["unit"]!, BigInteger.Parse((string)cell!, CultureInfo.InvariantCulture));
                    var day = BigInteger.Parse("86400000000", CultureInfo.InvariantCulture);
                    var within = ((micros % day) + day) % day;
                    var days = (micros - within) / day;
                    var epoch = (string?)parameters["timezone"] is null ? "'1970-01-01 00:00:00'::timestamp" : "'1970-01-01 00:00:00+00'::timestamptz";
                    return $"({epoch} + make_interval(days => {Literal(days.ToString(CultureInfo.InvariantCulture))}::int4) + {Literal(Clock(within))}::interval)::{pgType}";
                }
            case "Time":
                {
                    var micros = Micros((string)parameters["unit"]!, BigInteger.Parse((string)cell!, CultureInfo.InvariantCulture));
                    return $"{Literal(Clock(micros))}::{pgType}";
                }
            case "Interval":
                {
                    if ((string)parameters["unit"]! != "MONTH_DAY_NANO")
                    {
                        throw new InvalidOperationException($"interval unit {parameters["unit"]}");
                    }

                    var parts = cell.AsArray();
                    var nanos = BigInteger.Parse((string)parts[2]!, CultureInfo.InvariantCulture);
                    if (nanos % 1000 != 0)
                    {
                        return Literal($"<interval with {nanos} ns: not whole microseconds>");
                    }

                    var micros = nanos / 1000;
                    return $"(make_interval(months => {(int)parts[0]!}, days => {(int)parts[1]!}) + {Literal((micros < 0 ? "-" : "") + Clock(BigInteger.Abs(micros)))}::interval)";
                }
            case "List":
            case "LargeList":
                {
                    var child = field["children"]!.AsArray()[0]!.AsObject();
                    var items = cell.AsArray();
                    return items.Count == 0 ? $"'{{}}'::{pgType}" : $"ARRAY[{string.Join(", ", items.Select(item => Sql(item, child)))}]::{pgType}";
                }
            default:
                throw new InvalidOperationException($"no SQL rendering for Arrow type {field["type"]}");
        }
    }

    private static BigInteger Micros(string unit, BigInteger value) => unit switch
    {
        "MICROSECOND" => value,
        "MILLISECOND" => value * 1000,
        "SECOND" => value * 1_000_000,
        "NANOSECOND" => value / 1000,
        _ => throw new InvalidOperationException($"time unit {unit}"),
    };

    /// <summary>Non-negative microseconds as <c>H:MM:SS.ffffff</c> (hours not wrapped).</summary>
    private static string Clock(BigInteger micros)
    {
        var hours = micros / 3_600_000_000;
        var rest = (long)(micros % 3_600_000_000);
        return string.Create(CultureInfo.InvariantCulture, $"{hours}:{rest / 60_000_000:D2}:{rest / 1_000_000 % 60:D2}.{rest % 1_000_000:D6}");
    }

    private static string Raw(JsonNode cell) => cell.GetValueKind() == JsonValueKind.String ? (string)cell! : cell.ToJsonString();

    private static string Scaled(BigInteger unscaled, int scale)
    {
        var digits = BigInteger.Abs(unscaled).ToString(CultureInfo.InvariantCulture).PadLeft(scale + 1, '0');
        var text = scale == 0 ? digits : $"{digits[..^scale]}.{digits[^scale..]}";
        return unscaled.Sign < 0 ? "-" + text : text;
    }

    private static string Literal(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";
}
