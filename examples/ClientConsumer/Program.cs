using Confluent.Kafka;
using WalBridge.Client;

// Follows WalBridge table topics and prints every change: the smallest complete use of WalBridge.Client.
//   dotnet run --project examples/ClientConsumer -- <bootstrap servers> <topic>[,<topic>...] [<group id>]
if (args.Length < 2)
{
    Console.Error.WriteLine("usage: ClientConsumer <bootstrap servers> <topic>[,<topic>...] [<group id>]");
    return 2;
}

var config = new ConsumerConfig
{
    BootstrapServers = args[0],
    GroupId = args.Length > 2 ? args[2] : "walbridge-client-example",
    // Only committed Kafka transactions: records of aborted ones are written again later (docs/format.md).
    IsolationLevel = IsolationLevel.ReadCommitted,
    AutoOffsetReset = AutoOffsetReset.Earliest,
    EnableAutoCommit = false,
};
using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};

using var consumer = new ConsumerBuilder<Ignore, WalBridgeRecord>(config)
    .SetValueDeserializer(WalBridgeDeserializer.Instance)
    .Build();
consumer.Subscribe(args[1].Split(','));
// The last record identity applied per partition: a record seen again (after a rebalance or a restart) is skipped.
var applied = new Dictionary<TopicPartition, (Lsn, int)>();
try
{
    while (!stop.IsCancellationRequested)
    {
        var result = consumer.Consume(stop.Token);
        using var record = result.Message.Value;   // the record owns its Arrow batches: dispose it when done
        var headers = record.Headers!;
        if (headers.Marker != SnapshotMarker.None)
        {
            Console.WriteLine($"{result.TopicPartitionOffset}: {record.Table} snapshot {headers.Marker.ToString().ToLowerInvariant()} at {headers.CommitLsn} ({headers.SnapshotRows} rows)");
            continue;
        }

        if (applied.TryGetValue(result.TopicPartition, out var last) && headers.Identity.CompareTo(last) <= 0)
        {
            continue;
        }

        Console.WriteLine($"{result.TopicPartitionOffset}: {record.Table}, {headers.Rows} rows of {headers.Transactions} transactions " +
            $"({headers.FirstCommitLsn} … {headers.CommitLsn}, chunk {headers.Chunk}{(headers.ChunkLast ? "" : ", continues")})");
        foreach (var change in record.Changes)
        {
            Console.WriteLine($"  {Describe(record, change)}");
        }

        applied[result.TopicPartition] = headers.Identity;
        consumer.Commit(result);   // the record is handled: a restart goes on after it
    }
}
catch (OperationCanceledException)
{
}
catch (ConsumeException e) when (e.InnerException is WalBridgeFormatException format)
{
    // A record this client cannot read (another payload format, another topic): stop rather than skip it.
    Console.Error.WriteLine($"{e.ConsumerRecord?.TopicPartitionOffset}: {format.Message}");
    return 1;
}
finally
{
    consumer.Close();
}

return 0;

static string Describe(WalBridgeRecord record, Change change)
{
    var transaction = change.Transaction;
    var head = $"{change.Operation,-8} xid {transaction.Xid} commit {transaction.CommitLsn} at {transaction.CommitTime:O} lsn {change.Lsn}";
    if (change.Operation == ChangeOperation.Truncate)
    {
        return $"{head} options '{change.TruncateOptions}'";
    }

    var values = string.Join(", ", record.ColumnNames.Select(name => $"{name}={Cell(change.Columns, name)}"));
    var before = change.Before.IsPresent
        ? $" before: {string.Join(", ", record.ColumnNames.Select(name => $"{name}={Cell(change.Before, name)}"))}"
        : "";
    return $"{head} {values}{before}";
}

// A cell as text: the value, NULL, <unchanged> for an unsent TOAST value, or PostgreSQL's text kept in _special.
static string Cell(RowValues row, string name) => row.GetState(name) switch
{
    ValueState.Null => "NULL",
    ValueState.Unchanged => "<unchanged>",
    ValueState.Special => $"'{row.GetSpecialText(name)}'",
    _ => row.GetArray(name) switch
    {
        Apache.Arrow.StringArray => $"'{row.GetString(name)}'",
        Apache.Arrow.Int64Array => $"{row.GetInt64(name)}",
        Apache.Arrow.Int32Array => $"{row.GetInt32(name)}",
        Apache.Arrow.TimestampArray => $"{row.GetTimestampMicros(name)}µs",
        var array => $"<{array.Data.DataType.Name}>",
    },
};
