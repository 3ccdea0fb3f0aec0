using System.Globalization;
using System.Text;
using Confluent.Kafka;
using WalBridge.Connector.Kafka;
using WalBridge.Serialization.Ipc;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Connector.Cli;

/// <summary>
/// <c>connector tail</c>: reads a table topic with <c>read_committed</c> and prints each record's
/// headers and rows as a table.
/// </summary>
internal static class TailCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        var options = new CliArguments(args, ["--bootstrap-servers", "--topic", "--max", "--set"], ["--from-beginning"]);
        var bootstrap = options.Required("--bootstrap-servers");
        var topic = options.Required("--topic");
        var max = options.Int("--max", int.MaxValue, 1, int.MaxValue);
        var config = new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = $"walbridge-tail-{Guid.NewGuid():N}",
            EnableAutoCommit = false,
            IsolationLevel = IsolationLevel.ReadCommitted,
            AutoOffsetReset = options.Flag("--from-beginning") ? AutoOffsetReset.Earliest : AutoOffsetReset.Latest,
        };
        foreach (var assignment in options.Values("--set"))
        {
            var (key, value) = Configuration.ConfigSource.ParseOverride(assignment);
            config.Set(key, value);
        }

        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(config).Build();
        consumer.Subscribe(topic);
        var printed = 0;
        await Task.Yield();
        try
        {
            while (printed < max)
            {
                var result = consumer.Consume(cancel.Token);
                if (result?.Message?.Value is null)
                    continue;
                Print(result);
                printed++;
            }
        }
        catch (OperationCanceledException)
        {
        }
        consumer.Close();
        return 0;
    }

    private static void Print(ConsumeResult<byte[]?, byte[]?> result)
    {
        var headers = result.Message.Headers;
        string H(string name) => headers.TryGetLastBytes(name, out var b) ? Encoding.UTF8.GetString(b) : "-";
        Console.WriteLine(
            $"── {result.Topic}[{result.Partition.Value}]@{result.Offset.Value}  {H(KafkaHeaders.Kind)}  table {H(KafkaHeaders.Table)}  " +
            $"commit_lsn {H(KafkaHeaders.CommitLsn)}  xid {H(KafkaHeaders.Xid)}  commit_ts {H(KafkaHeaders.CommitTimestamp)}  " +
            $"rows {H(KafkaHeaders.Rows)}  chunk {H(KafkaHeaders.ChunkIndex)}{(H(KafkaHeaders.LastChunk) == "true" ? " (last)" : "")}  " +
            $"schema {H(KafkaHeaders.SchemaFingerprint)}");
        var stream = ArrowStreamReader.Read(result.Message.Value);
        foreach (var batch in stream.Batches)
        {
            var columns = batch.Columns;
            var cells = new string[batch.Length + 1][];
            cells[0] = columns.Select(c => c.Field.Name).ToArray();
            for (var row = 0; row < batch.Length; row++)
            {
                cells[row + 1] = new string[columns.Count];
                for (var c = 0; c < columns.Count; c++)
                    cells[row + 1][c] = Cell(columns[c], row);
            }
            var widths = Enumerable.Range(0, columns.Count).Select(c => cells.Max(r => r[c].Length)).ToArray();
            foreach (var (line, index) in cells.Select((r, i) => (r, i)))
            {
                Console.WriteLine(string.Join(" │ ", line.Select((v, c) => v.PadRight(widths[c]))));
                if (index == 0)
                    Console.WriteLine(string.Join("─┼─", widths.Select(w => new string('─', w))));
            }
        }
        Console.WriteLine();
    }

    private static string Cell(WalBridge.Serialization.Arrow.ArrowArray column, int row)
    {
        string? text;
        if (column.IsNull(row))
            return "NULL";
        if (Verification.TopicReplay.IsTableColumn(column.Field))
        {
            text = PgTextRenderer.Render(column, row);
        }
        else
        {
            var value = column.GetValue(row);
            text = value switch
            {
                IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
                System.Collections.IEnumerable e and not string => "[" + string.Join(",", e.Cast<object?>()) + "]",
                _ => value?.ToString(),
            };
        }
        text ??= "NULL";
        return text.Length > 40 ? text[..39] + "…" : text;
    }
}
