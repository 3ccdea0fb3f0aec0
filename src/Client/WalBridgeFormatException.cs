namespace WalBridge.Client;

/// <summary>
/// A Kafka record that is not a WalBridge table record this client can read: another payload format version, a record
/// of another topic (the messages or offsets topic), a value that is not a valid Arrow IPC stream, or a schema or value
/// the format does not allow (an unknown <c>_op</c> code). Never skip such a record silently: it means the producer and
/// this client disagree about the contract (upgrade WalBridge.Client, or read the right topic).
/// </summary>
public sealed class WalBridgeFormatException : Exception
{
    public WalBridgeFormatException()
    {
    }

    public WalBridgeFormatException(string message)
        : base(message)
    {
    }

    public WalBridgeFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
