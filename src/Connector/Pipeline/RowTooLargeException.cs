using WalBridge.Offsets;

namespace WalBridge.Connector.Pipeline;

/// <summary>
/// A single row cannot fit in one Kafka record. Fatal: nothing at or past its LSN is
/// acknowledged, so the slot keeps it until the limit is raised.
/// </summary>
public sealed class RowTooLargeException : Exception
{
    public RowTooLargeException(string table, Lsn lsn, long size, int limit)
        : base($"A row of table {table} at LSN {lsn} needs {size:N0} bytes as an Arrow record, more than the producer's limit of {limit:N0} bytes. " +
               "Raise 'kafka.message.max.bytes' (and the topic's max.message.bytes on the broker) above the row size, then restart; nothing past this LSN was acknowledged.")
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
