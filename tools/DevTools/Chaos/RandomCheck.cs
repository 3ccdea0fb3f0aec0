using System.Text;
using Confluent.Kafka;
using Npgsql;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Kafka;
using WalBridge.Connector.Verification;

namespace WalBridge.DevTools.Chaos;

/// <summary>Counts of the random run's checks, for its summary line.</summary>
internal sealed class RandomCheckResult
{
    public long Mismatches { get; set; }
    public long Duplicates { get; set; }
    public long RowsCompared { get; set; }
    public long MessagesDelivered { get; set; }
}

/// <summary>
/// The random run's checks after the chaos (<c>connector chaos --workload random</c>): every difference our reader's
/// replay found, printed with the seed, table, key, column, expected (PostgreSQL) and actual value; the same tables
/// rebuilt by the independent reader (apache-arrow JS, values rendered by PostgreSQL) and compared again; the messages
/// topic against what the source says committed (every transactional message of a committed transaction outside
/// rolled-back savepoints exactly once, with its transaction's commit LSN; none of the others; non-transactional messages
/// once, or at most once when a crash may have lost them); and the workload's own health.
/// </summary>
internal static class RandomCheck
{
    private const int MaxPrintedPerTable = 20;

    public static async Task<RandomCheckResult> RunAsync(ConnectorConfig config, RandomWorkload workload, VerificationReport ours,
        IReadOnlyList<string> fatalErrors, Action<string, string?, string> report)
    {
        var result = new RandomCheckResult();
        var seed = workload.Seed;
        foreach (var error in fatalErrors)
        {
            Console.WriteLine($"         seed {seed}: the connector stopped with: {error}");
        }

        // 1. Our reader (src/Connector/Verification's replay, already compared by verify): the differences, by seed.
        var ourMismatches = Print(seed, "our reader", ours.Tables);
        var ourDuplicates = ours.Tables.Sum(t => t.DuplicateRecords);
        result.RowsCompared = ours.Tables.Sum(t => (long)t.SourceRows);
        report("random: our reader's rebuilt tables equal PostgreSQL's values (multisets for tables without a key)",
            ourMismatches == 0 && ourDuplicates == 0 ? null : $"{ourMismatches} mismatches, {ourDuplicates} duplicate records (listed above with seed {seed})",
            $"{ours.Tables.Count} tables, {result.RowsCompared:N0} rows");

        // 2. The independent reader.
        var kafka = new Dictionary<string, string>(config.Kafka, StringComparer.Ordinal);
        await using var connection = new NpgsqlConnection(config.ConnectionString(replication: false));
        await connection.OpenAsync();
        long independentMismatches = 0;
        long independentDuplicates = 0;
        Dictionary<string, string> messageInsertLsns = new(StringComparer.Ordinal);
        long transactionMismatches = 0;
        var tool = ArrowJsReplay.FindTool();
        if (tool is null)
        {
            independentMismatches++;
            report("random: the independent reader (apache-arrow JS) rebuilds every table equal to PostgreSQL's values",
                "npm apache-arrow is not installed in tools/arrow-js: run scripts/setup.sh", "");
        }
        else
        {
            var topics = await Task.Run(() => PipelineVerifier.TableTopics(kafka, config));
            var replayed = await ArrowJsReplay.ReplayAsync(kafka, topics, connection, tool, [$"public.{RandomWorkload.MessagesTable}"], CancellationToken.None);
            var comparisons = new List<TableComparison>();
            foreach (var table in replayed.Tables)
            {
                comparisons.Add(await SourceComparison.CompareAsync(connection, table, CancellationToken.None));
            }

            independentMismatches = Print(seed, "apache-arrow", comparisons);
            independentDuplicates = comparisons.Sum(t => t.DuplicateRecords);
            // What no rebuilt table shows: topics no table came out of, tables only one reader rebuilt, partition counts.
            var problems = replayed.TopicViolations.ToList();
            var theirs = comparisons.Select(t => t.Table).ToHashSet(StringComparer.Ordinal);
            var mine = ours.Tables.Select(t => t.Table).ToHashSet(StringComparer.Ordinal);
            problems.AddRange(mine.Except(theirs).Order(StringComparer.Ordinal).Select(t => $"our reader rebuilt {t}, the independent reader did not"));
            problems.AddRange(theirs.Except(mine).Order(StringComparer.Ordinal).Select(t => $"the independent reader rebuilt {t}, our reader did not"));
            problems.AddRange(replayed.PartitionsByTopic.Where(p => p.Value != config.TopicPartitions).Select(p => $"{p.Key} has {p.Value} partitions, not topic.partitions={config.TopicPartitions}"));
            foreach (var problem in problems)
            {
                Console.WriteLine($"         VIOLATION seed {seed} [apache-arrow] {problem}");
            }

            independentMismatches += problems.Count;
            messageInsertLsns = replayed.InsertCommitLsns.GetValueOrDefault($"public.{RandomWorkload.MessagesTable}") ?? messageInsertLsns;
            transactionMismatches = await CheckTransactionsAsync(config, connection, seed, replayed.TransactionsByTopic, report);
            report("random: the independent reader (apache-arrow JS, values rendered by PostgreSQL) rebuilds every table equal to PostgreSQL's values",
                independentMismatches == 0 && independentDuplicates == 0 ? null : $"{independentMismatches} mismatches, {independentDuplicates} duplicate records (listed above with seed {seed})",
                $"{comparisons.Count} tables, {comparisons.Sum(t => (long)t.SourceRows):N0} rows from {replayed.Rows:N0} rows in {replayed.Records:N0} records over {config.TopicPartitions} partition(s) " +
                $"({replayed.KeyMoves:N0} keys moved between partitions, {replayed.Truncates:N0} truncates), {replayed.RenderedBySql:N0} values rendered by PostgreSQL; " +
                $"apache-arrow {replayed.DecodeTime.TotalSeconds:F1} s, replay {replayed.ApplyTime.TotalSeconds:F1} s, rendering {replayed.RenderTime.TotalSeconds:F1} s");
        }

        // 3. Logical decoding messages.
        var (messageMismatches, messageDuplicates, delivered) = await CheckMessagesAsync(config, kafka, connection, workload, messageInsertLsns, report);
        result.MessagesDelivered = delivered;

        // 4. The workload itself: statements PostgreSQL rejected are bugs of the generator (and untested paths).
        report("random: the workload's statements all ran",
            workload.ErrorCount == 0 ? null : $"{workload.ErrorCount} statements failed: {string.Join(" | ", workload.Errors)}",
            $"{workload.Transactions:N0} committed, {workload.RolledBack:N0} rolled back, {workload.UnknownOutcomes:N0} of unknown outcome, " +
            $"{workload.LargeTransactions:N0} large, {workload.DdlTransactions:N0} with ALTER TABLE, {workload.Truncates:N0} with TRUNCATE");

        result.Mismatches = ourMismatches + independentMismatches + messageMismatches + transactionMismatches;
        result.Duplicates = Math.Max(ourDuplicates, independentDuplicates) + messageDuplicates;
        return result;
    }

    /// <summary>The run's last line before the scenario count: <c>random: seed S, T transactions, R rows, M messages: mismatches 0, duplicates 0</c>.</summary>
    public static void PrintSummary(RandomWorkload workload, RandomCheckResult result)
    {
        ArgumentNullException.ThrowIfNull(workload);
        ArgumentNullException.ThrowIfNull(result);
        var transactions = workload.Transactions + workload.RolledBack + workload.UnknownOutcomes;
        Console.WriteLine(
            $"random: seed {workload.Seed}, {transactions:N0} transactions ({workload.Transactions:N0} committed, {workload.RolledBack:N0} rolled back, {workload.UnknownOutcomes:N0} unknown), " +
            $"{workload.RowChanges:N0} row changes, {result.RowsCompared:N0} rows compared, {result.MessagesDelivered:N0} messages: mismatches {result.Mismatches}, duplicates {result.Duplicates}" +
            (workload.Without.Count > 0 ? $" (without {string.Join(",", workload.Without.Order(StringComparer.Ordinal))})" : ""));
    }

    /// <summary>Prints every table's differences with the seed; returns how many there are (replay violations and unmatched changes included, duplicates not).</summary>
    private static long Print(int seed, string reader, IReadOnlyList<TableComparison> tables)
    {
        long total = 0;
        foreach (var table in tables)
        {
            var printed = 0;
            foreach (var mismatch in table.Mismatches)
            {
                if (printed++ < MaxPrintedPerTable)
                {
                    Console.WriteLine(mismatch.Column is null
                        ? $"         MISMATCH seed {seed} [{reader}] table {mismatch.Table} key ({mismatch.Key}): {mismatch.Text}"
                        : $"         MISMATCH seed {seed} [{reader}] table {mismatch.Table} key ({mismatch.Key}) column {mismatch.Column}: {ShowValues(mismatch.Expected, mismatch.Actual)}");
                }
            }
            // Replay violations (duplicates, order, chunk sequence) are the differences that are no value mismatch.
            var violations = table.Differences.Where(d => !table.Mismatches.Any(m => m.Text == d) && !d.StartsWith('…')).ToList();
            foreach (var violation in violations)
            {
                Console.WriteLine($"         {(violation.StartsWith("duplicate", StringComparison.Ordinal) ? "DUPLICATE" : "VIOLATION")} seed {seed} [{reader}] table {table.Table}: {violation}");
            }

            foreach (var unmatched in table.Unmatched)
            {
                Console.WriteLine($"         MISMATCH seed {seed} [{reader}] table {table.Table}: {unmatched}");
            }

            if (printed > MaxPrintedPerTable)
            {
                Console.WriteLine($"         … seed {seed} [{reader}] table {table.Table}: {printed - MaxPrintedPerTable} more mismatches");
            }

            total += table.DifferenceCount - table.DuplicateRecords + table.UnmatchedCount;
        }
        return total;
    }

    /// <summary>Expected (PostgreSQL) and actual values; long ones around their first difference.</summary>
    internal static string ShowValues(string? expected, string? actual)
    {
        static string Quote(string? text) => text is null ? "NULL" : $"'{text}'";
        if (expected is null || actual is null || (expected.Length <= 120 && actual.Length <= 120))
        {
            return $"expected (PostgreSQL) {Quote(expected)}, actual {Quote(actual)}";
        }

        var at = 0;
        while (at < expected.Length && at < actual.Length && expected[at] == actual[at])
        {
            at++;
        }

        var from = Math.Max(0, at - 20);
        string Around(string text) => (from > 0 ? "…" : "") + text[from..Math.Min(text.Length, at + 40)] + (at + 40 < text.Length ? "…" : "");
        return $"expected (PostgreSQL) '{Around(expected)}' ({expected.Length} chars), actual '{Around(actual)}' ({actual.Length} chars), first difference at character {at}";
    }

    /// <summary>
    /// Every transaction the source says committed (<c>rnd_txlog</c>: label, xid, the tables it changed) has rows in the
    /// topic of each table it changed, with one commit LSN, and in no other table topic; no table topic holds a transaction
    /// that did not commit. The topics' transactions are the independent reader's (the rows' <c>_xid</c> and <c>_commit_lsn</c>).
    /// </summary>
    private static async Task<long> CheckTransactionsAsync(ConnectorConfig config, NpgsqlConnection connection, int seed,
        Dictionary<string, Dictionary<string, string>> byTopic, Action<string, string?, string> report)
    {
        var problems = new List<string>();
        long mismatches = 0, checkedChanges = 0;
        var committed = new HashSet<string>(StringComparer.Ordinal);
        var changedTopics = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        var logTopic = config.TopicFor("public", RandomWorkload.TransactionsTable);
        var logged = byTopic.GetValueOrDefault(logTopic) ?? [];
        await using (var command = new NpgsqlCommand($"SELECT label, xid, tables FROM {RandomWorkload.TransactionsTable} ORDER BY xid", connection))
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                var label = reader.GetString(0);
                var xid = ((ulong)reader.GetInt64(1) & 0xFFFF_FFFF).ToString(System.Globalization.CultureInfo.InvariantCulture);
                committed.Add(xid);
                labels[xid] = label;
                logged.TryGetValue(xid, out var lsn);
                var topics = changedTopics[xid] = new HashSet<string>(StringComparer.Ordinal);
                foreach (var table in reader.GetString(2).Split(',', StringSplitOptions.RemoveEmptyEntries))
                {
                    checkedChanges++;
                    var topic = config.TopicFor("public", table);
                    topics.Add(topic);
                    var found = byTopic.GetValueOrDefault(topic)?.GetValueOrDefault(xid);
                    if (found is null)
                    {
                        mismatches++;
                        problems.Add($"MISMATCH seed {seed} [transactions] transaction {label} (xid {xid}{(lsn is null ? "" : $", commit LSN {lsn}")}) committed changes to {table}, but {topic} has no record of it");
                    }
                    else if (lsn is not null && found != lsn)
                    {
                        mismatches++;
                        problems.Add($"MISMATCH seed {seed} [transactions] transaction {label} (xid {xid}): commit LSN {found} in {topic}, {lsn} in {logTopic}");
                    }
                }
            }
        }
        foreach (var (topic, transactions) in byTopic)
        {
            foreach (var (xid, lsn) in transactions.OrderBy(t => WalBridge.Offsets.Lsn.Parse(t.Value)))
            {
                if (!committed.Contains(xid))
                {
                    mismatches++;
                    problems.Add($"MISMATCH seed {seed} [transactions] {topic} holds xid {xid} (commit LSN {lsn}), which did not commit in the source");
                }
                else if (!changedTopics[xid].Contains(topic))
                {
                    mismatches++;
                    problems.Add($"MISMATCH seed {seed} [transactions] {topic} holds rows of transaction {labels[xid]} (xid {xid}, commit LSN {lsn}), which changed only {string.Join(",", changedTopics[xid].Order(StringComparer.Ordinal))}");
                }
            }
        }

        // An empty log would make every check above pass: the workload commits transactions in every run.
        if (committed.Count == 0 || logged.Count == 0)
        {
            mismatches++;
            problems.Add($"MISMATCH seed {seed} [transactions] nothing to check: {committed.Count} committed transactions in {RandomWorkload.TransactionsTable}, {logged.Count} in {logTopic}");
        }
        foreach (var problem in problems.Take(40))
        {
            Console.WriteLine($"         {problem}");
        }

        if (problems.Count > 40)
        {
            Console.WriteLine($"         … seed {seed} [transactions] {problems.Count - 40} more");
        }

        report("random: every committed transaction has rows in the topic of each table it changed and in no other, no other transaction has",
            mismatches == 0 ? null : $"{mismatches} mismatches (listed above with seed {seed})",
            $"{committed.Count:N0} committed transactions, {checkedChanges:N0} (transaction, table) pairs");
        return mismatches;
    }

    private sealed record Delivery(bool Transactional, string Prefix, byte[] Content, string? CommitLsn, string? MessageLsn, long Offset);

    private static async Task<(long Mismatches, long Duplicates, long Delivered)> CheckMessagesAsync(ConnectorConfig config, Dictionary<string, string> kafka,
        NpgsqlConnection connection, RandomWorkload workload, Dictionary<string, string> insertLsns, Action<string, string?, string> report)
    {
        var seed = workload.Seed;
        var deliveries = new Dictionary<string, List<Delivery>>(StringComparer.Ordinal);
        var problems = new List<string>();
        long foreign = 0;
        await Task.Run(() => OffsetsTopicReader.ReadToEnd(kafka, config.MessagesTopic, message =>
        {
            var headers = message.Message.Headers;
            var content = message.Message.Value ?? [];
            var separator = Array.IndexOf(content, (byte)'|');
            var id = separator > 0 ? Encoding.UTF8.GetString(content, 0, separator) : "";
            if (Header(headers, KafkaHeaders.Kind) != "message" || !id.StartsWith("rnd:", StringComparison.Ordinal))
            {
                foreign++;
                problems.Add($"MISMATCH seed {seed} [messages] a record that is not a workload message at offset {message.Offset.Value}: kind {Header(headers, KafkaHeaders.Kind)}, prefix {Header(headers, KafkaHeaders.MessagePrefix)}");
                return;
            }
            if (!deliveries.TryGetValue(id, out var list))
            {
                deliveries[id] = list = [];
            }

            list.Add(new Delivery(Header(headers, KafkaHeaders.MessageTransactional) == "true", Header(headers, KafkaHeaders.MessagePrefix) ?? "",
                content, Header(headers, KafkaHeaders.CommitLsn), Header(headers, KafkaHeaders.MessageLsn), message.Offset.Value));
        }, CancellationToken.None, TimeSpan.FromMinutes(5)));

        // What committed, according to the source.
        var committed = new HashSet<string>(StringComparer.Ordinal);
        await using (var command = new NpgsqlCommand($"SELECT id FROM {RandomWorkload.MessagesTable}", connection))
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                committed.Add(reader.GetString(0));
            }
        }

        long mismatches = foreign, duplicates = 0, bookkeeping = 0, delivered = 0, rolledBackSavepointMessages = 0, streamedRolledBack = 0;
        var emitted = workload.Messages.ToDictionary(m => m.Id, StringComparer.Ordinal);
        foreach (var message in emitted.Values.OrderBy(m => m.Id, StringComparer.Ordinal))
        {
            var got = deliveries.GetValueOrDefault(message.Id) ?? [];
            delivered += got.Count;
            var describe = $"message {message.Id} ({(message.Transactional ? "transactional" : "non-transactional")}, prefix '{message.Prefix}', {message.Context}" +
                (message.Savepoints.Any(s => s.RolledBack) ? $"; savepoint {string.Join("/", message.Savepoints.Where(s => s.RolledBack).Select(s => s.Name))} rolled back" : "") + ")";
            int min, max;
            if (message.Transactional)
            {
                var inSource = committed.Contains(message.Id);
                if ((message.Fate == MessageFate.Delivered && !inSource) || (message.Fate == MessageFate.NotDelivered && inSource))
                {
                    bookkeeping++;
                    problems.Add($"MISMATCH seed {seed} [messages] the workload expected {message.Fate} for {describe} but {RandomWorkload.MessagesTable} says {(inSource ? "committed" : "not committed")}");
                }
                min = max = inSource ? 1 : 0;
                if (message.Savepoints.Any(s => s.RolledBack))
                {
                    rolledBackSavepointMessages++;
                    if (message.InLargeTransaction)
                    {
                        streamedRolledBack++;
                    }
                }
            }
            else
            {
                min = message.Fate == MessageFate.Delivered ? 1 : 0;
                max = 1;
            }
            if (got.Count > max && got.Count > 1)
            {
                duplicates += got.Count - Math.Max(1, max);
                problems.Add($"DUPLICATE seed {seed} [messages] {describe}: delivered {got.Count} times (offsets {string.Join(", ", got.Select(g => g.Offset))})");
            }
            if (got.Count > max && max == 0)
            {
                mismatches++;
                problems.Add($"MISMATCH seed {seed} [messages] {describe}: expected not delivered, actual delivered (commit LSN {got[0].CommitLsn}, offset {got[0].Offset})");
            }
            else if (got.Count < min)
            {
                mismatches++;
                problems.Add($"MISMATCH seed {seed} [messages] {describe}: expected delivered once, actual not delivered");
            }
            foreach (var delivery in got)
            {
                var wrong = new List<string>();
                if (delivery.Transactional != message.Transactional)
                {
                    wrong.Add($"pg.message_transactional {delivery.Transactional.ToString().ToLowerInvariant()}");
                }

                if (delivery.Prefix != message.Prefix)
                {
                    wrong.Add($"pg.message_prefix '{delivery.Prefix}'");
                }

                if (!delivery.Content.AsSpan().SequenceEqual(message.Content))
                {
                    wrong.Add($"content of {delivery.Content.Length} bytes instead of {message.Content.Length}");
                }

                if (message.Transactional && insertLsns.TryGetValue(message.Id, out var transactionLsn) && delivery.CommitLsn != transactionLsn)
                {
                    wrong.Add($"pg.commit_lsn {delivery.CommitLsn}, but its transaction committed at {transactionLsn}");
                }

                if (wrong.Count > 0)
                {
                    mismatches++;
                    problems.Add($"MISMATCH seed {seed} [messages] {describe} at offset {delivery.Offset}: {string.Join("; ", wrong)}");
                }
            }
        }
        foreach (var (id, got) in deliveries.Where(d => !emitted.ContainsKey(d.Key)))
        {
            mismatches += got.Count;
            problems.Add($"MISMATCH seed {seed} [messages] message {id} was delivered {got.Count} times, but the workload never emitted it");
        }
        foreach (var problem in problems.Take(40))
        {
            Console.WriteLine($"         {problem}");
        }

        if (problems.Count > 40)
        {
            Console.WriteLine($"         … seed {seed} [messages] {problems.Count - 40} more");
        }

        mismatches += bookkeeping;
        var transactionalEmitted = emitted.Values.Count(m => m.Transactional);
        report("random: logical messages: each committed one exactly once with its transaction, none of rolled-back transactions or savepoints",
            mismatches == 0 && duplicates == 0 ? null : $"{mismatches} mismatches, {duplicates} duplicates (listed above with seed {seed})",
            $"{emitted.Count:N0} emitted ({transactionalEmitted:N0} transactional, {committed.Count:N0} of them committed; {rolledBackSavepointMessages:N0} in rolled-back savepoints, " +
            $"{streamedRolledBack:N0} of those in streamed transactions), {delivered:N0} delivered");
        return (mismatches, duplicates, delivered);
    }

    private static string? Header(Headers headers, string name) =>
        headers.TryGetLastBytes(name, out var bytes) ? Encoding.UTF8.GetString(bytes) : null;
}
