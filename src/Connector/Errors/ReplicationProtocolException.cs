using WalBridge.Offsets;

namespace WalBridge.Connector.Errors;

/// <summary>
/// The replication stream contained something this version does not understand or that breaks
/// the protocol. Fatal: stop and exit non-zero; nothing past the last committed LSN was
/// acknowledged, so the slot still holds the data.
/// </summary>
public sealed class ReplicationProtocolException : Exception
{
    public ReplicationProtocolException(string message, Lsn lsn)
        : base($"{message} (at WAL position {lsn})") => Lsn = lsn;

    public ReplicationProtocolException() { }
    public ReplicationProtocolException(string message) : base(message) { }
    public ReplicationProtocolException(string message, Exception inner) : base(message, inner) { }

    /// <summary>The WAL position of the offending message.</summary>
    public Lsn Lsn { get; }
}
