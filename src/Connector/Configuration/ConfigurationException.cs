namespace WalBridge.Connector.Configuration;

/// <summary>
/// The configuration is unusable. Fatal: the process stops with a non-zero exit code; the message
/// names the key to change.
/// </summary>
public sealed class ConfigurationException : Exception
{
    public ConfigurationException(string message) : base(message) { }
    public ConfigurationException(string message, Exception inner) : base(message, inner) { }
    public ConfigurationException() { }
}
