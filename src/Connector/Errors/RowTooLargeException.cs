using WalBridge.Offsets;

namespace WalBridge.Connector.Errors;

/// <summary>
/// A single row cannot fit in one Kafka record. Fatal: nothing at or past its LSN is
/// acknowledged, so the slot keeps it until the limit is raised.
/// </summary>
public sealed class RowTooLargeException : Exception
{
    /// <param name="table">The table, <c>schema.table</c>.</param>
    /// <param name="lsn">The WAL position of the row's change.</param>
    /// <param name="size">The row's size as a record value of its own (one row: new row, old row, filled TOAST values).</param>
    /// <param name="limit">The producer's record limit (<c>kafka.message.max.bytes</c>).</param>
    /// <param name="overhead">Bytes of the limit kept for headers and Kafka's record framing.</param>
    public RowTooLargeException(string table, Lsn lsn, long size, int limit, int overhead)
        : base($"A single row of table {table} (the change at LSN {lsn}) needs {size:N0} bytes as an Arrow record on its own, " +
               $"more than the {limit - overhead:N0} bytes a record may hold (kafka.message.max.bytes={limit:N0} minus {overhead:N0} for headers). " +
               $"Raise 'kafka.message.max.bytes' (and the topic's max.message.bytes on the broker) above {size + overhead:N0}, then restart; nothing past this LSN was acknowledged.")
    {
        Table = table;
        Lsn = lsn;
        Size = size;
    }

    public RowTooLargeException() { }
    public RowTooLargeException(string message) : base(message) { }
    public RowTooLargeException(string message, Exception inner) : base(message, inner) { }

    public string Table { get; } = "";
    public Lsn Lsn { get; }
    public long Size { get; }
}
