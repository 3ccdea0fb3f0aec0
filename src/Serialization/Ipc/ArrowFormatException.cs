namespace WalBridge.Serialization.Ipc;

/// <summary>
/// Thrown by <see cref="ArrowStreamReader"/> when the input is not a well-formed Arrow IPC stream, or uses a
/// feature this implementation does not support (the message then starts with "unsupported").
/// The reader throws no other exception type for bad input.
/// </summary>
public sealed class ArrowFormatException : Exception
{
    public ArrowFormatException()
    {
    }

    public ArrowFormatException(string message)
        : base(message)
    {
    }

    public ArrowFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
