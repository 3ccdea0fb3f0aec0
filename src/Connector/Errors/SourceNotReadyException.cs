namespace WalBridge.Connector.Errors;

/// <summary>
/// The source database cannot be streamed from as configured (wal_level, privileges, slot or
/// publication problems). Fatal: the message says what to change.
/// </summary>
public sealed class SourceNotReadyException : Exception
{
    public SourceNotReadyException(string message) : base(message) { }
    public SourceNotReadyException(string message, Exception inner) : base(message, inner) { }
    public SourceNotReadyException() { }
}
