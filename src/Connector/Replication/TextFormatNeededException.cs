using WalBridge.Offsets;

namespace WalBridge.Connector.Replication;

/// <summary>
/// A table streamed in pgoutput's binary tuple format has a column that only the text format
/// carries exactly. Not an error for the user: the runner restarts the pipeline from the committed
/// position with text tuples for the rest of the process's life.
/// </summary>
public sealed class TextFormatNeededException : Exception
{
    public TextFormatNeededException(string message, Lsn lsn) : base($"{message} (at WAL position {lsn})") => Lsn = lsn;
    public TextFormatNeededException() { }
    public TextFormatNeededException(string message) : base(message) { }
    public TextFormatNeededException(string message, Exception inner) : base(message, inner) { }

    public Lsn Lsn { get; }
}
