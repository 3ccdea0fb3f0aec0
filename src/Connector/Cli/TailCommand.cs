using System.Globalization;
using System.Text;
using Apache.Arrow;
using Apache.Arrow.Types;
using Confluent.Kafka;
using WalBridge.Connector.Kafka;
using WalBridge.Serialization.Payload;
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
                {
                    continue;
                }

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
        var where = $"── {result.Topic}[{result.Partition.Value}]@{result.Offset.Value}  {H(KafkaHeaders.Kind)}";
        Console.WriteLine(H(KafkaHeaders.Kind) == "message"
            ? $"{where}  prefix {H(KafkaHeaders.MessagePrefix)}  message_lsn {H(KafkaHeaders.MessageLsn)}  transactional {H(KafkaHeaders.MessageTransactional)}  " +
              $"commit_lsn {H(KafkaHeaders.CommitLsn)}  xid {H(KafkaHeaders.Xid)}  commit_ts {H(KafkaHeaders.CommitTimestamp)}"
            : $"{where}  table {H(KafkaHeaders.Table)}  format {H(KafkaHeaders.Format)}  " +
              $"commit_lsn {H(KafkaHeaders.FirstCommitLsn)}..{H(KafkaHeaders.CommitLsn)}  transactions {H(KafkaHeaders.Transactions)}  " +
              $"rows {H(KafkaHeaders.Rows)}  chunk {H(KafkaHeaders.ChunkIndex)}{(H(KafkaHeaders.LastChunk) == "true" ? " (last)" : "")}  " +
              $"schema {H(KafkaHeaders.SchemaFingerprint)}");
        if (H(KafkaHeaders.Kind) == "message")
        {
            Console.WriteLine(Encoding.UTF8.GetString(result.Message.Value!));
            Console.WriteLine();
            return;
        }

        ArrowPayload payload;
        try
        {
            payload = ArrowPayload.Read(result.Message.Value);
        }
        catch (ArrowPayloadException e)
        {
            Console.WriteLine($"record {result.Topic}[{result.Partition.Value}]@{result.Offset.Value} is {e.Message}");
            Console.WriteLine();
            return;
        }
        foreach (var batch in payload.Batches)
        {
            PrintBatch(batch);
        }

        Console.WriteLine();
    }

    internal static void PrintBatch(RecordBatch batch)
    {
        var fields = batch.Schema.FieldsList;
        var cells = new string[batch.Length + 1][];
        cells[0] = fields.Select(f => f.Name).ToArray();
        for (var row = 0; row < batch.Length; row++)
        {
            cells[row + 1] = new string[fields.Count];
            for (var c = 0; c < fields.Count; c++)
            {
                cells[row + 1][c] = Cell(batch.Column(c), fields[c], row);
            }
        }
        var widths = Enumerable.Range(0, fields.Count).Select(c => cells.Max(r => r[c].Length)).ToArray();
        foreach (var (line, index) in cells.Select((r, i) => (r, i)))
        {
            Console.WriteLine(string.Join(" │ ", line.Select((v, c) => v.PadRight(widths[c]))));
            if (index == 0)
            {
                Console.WriteLine(string.Join("─┼─", widths.Select(w => new string('─', w))));
            }
        }
    }

    private static string Cell(IArrowArray column, Field field, int row)
    {
        if (column.IsNull(row))
        {
            return "NULL";
        }

        var text = Verification.TopicReplay.IsTableColumn(field) ? PgTextRenderer.Render(column, field, row) : Own(column, field, row);
        text ??= "NULL";
        return text.Length > 40 ? text[..39] + "…" : text;
    }

    /// <summary>The connector's own columns: <c>_op</c>, <c>_lsn</c>, <c>_xid</c>, <c>_commit_lsn</c>, <c>_commit_ts</c>, <c>_before</c> (the old row), <c>_unchanged</c> (a list of names), <c>_special</c> (name → text).</summary>
    private static string? Own(IArrowArray column, Field field, int row) => column switch
    {
        _ when column.IsNull(row) => null,
        StringArray a => a.GetString(row),
        UInt64Array a => a.Values[row].ToString(CultureInfo.InvariantCulture),
        UInt32Array a => a.Values[row].ToString(CultureInfo.InvariantCulture),
        TimestampArray a => a.GetTimestamp(row)?.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture),
        MapArray { Keys: StringArray keys, Values: StringArray values } a =>
            "[" + string.Join(",", Enumerable.Range(a.ValueOffsets[row], a.ValueOffsets[row + 1] - a.ValueOffsets[row])
                .Select(i => $"{keys.GetString(i)}={values.GetString(i)}")) + "]",
        ListArray { Values: StringArray items } a =>
            "[" + string.Join(",", Enumerable.Range(a.ValueOffsets[row], a.ValueOffsets[row + 1] - a.ValueOffsets[row]).Select(i => items.GetString(i))) + "]",
        StructArray a when field.DataType is StructType type =>
            "[" + string.Join(",", type.Fields.Select((member, i) => a.Fields[i].IsNull(row) ? "NULL" : PgTextRenderer.Render(a.Fields[i], member, row))) + "]",
        _ => column.Data.DataType.Name,
    };
}
