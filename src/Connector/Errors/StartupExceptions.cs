namespace WalBridge.Connector.Errors;

/// <summary>
/// The start position would lose or duplicate data, so the connector refuses to start. Fatal: the message says
/// what happened (slot recreated, slot ahead of Kafka, another database system) and what to do.
/// </summary>
public sealed class UnsafeStartException : Exception
{
    public UnsafeStartException(string message) : base(message) { }
    public UnsafeStartException(string message, Exception inner) : base(message, inner) { }
    public UnsafeStartException() { }
}

/// <summary>The slot is held by another process. Transient: retried with backoff (a fenced predecessor lets go).</summary>
public sealed class SlotInUseException : Exception
{
    public SlotInUseException(string message) : base(message) { }
    public SlotInUseException(string message, Exception inner) : base(message, inner) { }
    public SlotInUseException() { }
}
