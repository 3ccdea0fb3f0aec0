using WalBridge.Connector.Diagnostics;
using WalBridge.Connector.Transactions;

namespace WalBridge.Connector.Kafka;

/// <summary>Turns one committed Kafka transaction into the metrics hooks' figures (per Kafka transaction and per table).</summary>
internal static class CommitMetrics
{
    /// <summary>Reports <paramref name="batch"/>, just committed. Called on the Kafka loop's thread before the transactions are disposed.</summary>
    public static void Report(IPipelineMetrics metrics, IReadOnlyList<SourceTransaction> batch, long bytes, TimeSpan duration)
    {
        var sourceTransactions = 0;
        var tables = new Dictionary<(string Schema, string Table), (int Transactions, long Rows, long Bytes)>();
        var seen = new HashSet<(string, string)>();
        foreach (var transaction in batch)
        {
            if (transaction.IsHeartbeat)
            {
                continue;
            }

            sourceTransactions++;
            seen.Clear();
            foreach (var payload in transaction.Payloads)
            {
                if (payload.Kind == PayloadKind.Message)
                {
                    continue;
                }

                var key = (payload.Schema, payload.Table);
                var sum = tables.GetValueOrDefault(key);
                tables[key] = (sum.Transactions + (seen.Add(key) ? 1 : 0), sum.Rows + payload.RowCount, sum.Bytes + payload.Length);
            }
        }
        foreach (var ((schema, table), sum) in tables)
        {
            metrics.OnTableCommitted(schema, table, sum.Transactions, sum.Rows, sum.Bytes);
        }

        metrics.OnKafkaTransactionCommitted(duration, bytes, sourceTransactions, batch[^1].CommitTimestamp);
    }
}
