using WalBridge.Connector.Diagnostics;
using WalBridge.Connector.Transactions;

namespace WalBridge.Connector.Kafka;

/// <summary>Turns a committed Kafka transaction into the operations metrics' per-table and per-transaction figures.</summary>
internal static class CommitMetrics
{
    /// <summary>Reports <paramref name="groups"/>, just committed. Called on the Kafka loop's thread before the groups are disposed.</summary>
    /// <remarks>
    /// A table's source transactions are counted per partition (a transaction cut into pieces counts once: a batch
    /// that continues the previous one's transaction does not add it again); with several partitions the table's
    /// figure is its busiest partition's count, because one source transaction may have rows in every partition.
    /// </remarks>
    public static void Report(IPipelineMetrics metrics, IReadOnlyList<TransactionGroup> groups, long bytes, TimeSpan duration)
    {
        var sourceTransactions = 0;
        var lastCommit = DateTimeOffset.MinValue;
        var partitions = new Dictionary<(string Schema, string Table, int Partition), int>();
        var tables = new Dictionary<(string Schema, string Table), (long Rows, long Bytes)>();
        foreach (var group in groups)
        {
            sourceTransactions += group.Transactions.Count;
            if (group.PositionTime > lastCommit)
            {
                lastCommit = group.PositionTime;
            }

            foreach (var stream in group.Tables)
            {
                var partitionKey = (stream.Schema, stream.Table, stream.Partition);
                var tableKey = (stream.Schema, stream.Table);
                var transactions = partitions.GetValueOrDefault(partitionKey);
                var sum = tables.GetValueOrDefault(tableKey);
                foreach (var batch in stream.Batches)
                {
                    transactions += batch.Transactions - (batch.FirstChunk > 0 ? 1 : 0);
                    sum = (sum.Rows + batch.Rows, sum.Bytes + batch.Bytes.Length);
                }

                partitions[partitionKey] = transactions;
                tables[tableKey] = sum;
            }
        }

        foreach (var ((schema, table), sum) in tables)
        {
            var transactions = 0;
            foreach (var ((s, t, _), count) in partitions)
            {
                if (s == schema && t == table)
                {
                    transactions = Math.Max(transactions, count);
                }
            }

            metrics.OnTableCommitted(schema, table, transactions, sum.Rows, sum.Bytes);
        }

        metrics.OnKafkaTransactionCommitted(duration, bytes, sourceTransactions, lastCommit);
    }
}
