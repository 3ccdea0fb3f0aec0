using WalBridge.Connector.Configuration;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Transactions;
using WalBridge.Offsets;

namespace WalBridge.Connector.Decoding;

/// <summary>
/// Turns one output plugin's logical replication messages into complete source transactions.
/// One per replication session; used by the reader's thread only.
/// </summary>
internal interface IChangeStreamDecoder : IDisposable
{
    /// <summary>The output plugin the slot uses.</summary>
    DecodingPlugin Plugin { get; }

    /// <summary>Options for START_REPLICATION, given the server's major version.</summary>
    IReadOnlyList<KeyValuePair<string, string?>> StartOptions(int serverMajorVersion);

    /// <summary>A short description of the negotiated protocol, for the log.</summary>
    string Protocol { get; }

    /// <summary>Handles one message (its bytes are valid only during the call).</summary>
    /// <exception cref="ReplicationProtocolException">A malformed or unexpected message (fatal).</exception>
    /// <exception cref="ReplicationRestartException">The stream must restart with other options (not a failure).</exception>
    void Process(ReadOnlySpan<byte> message, Lsn lsn);

    /// <summary>
    /// Takes the open group of committed transactions when it is due (<see cref="TransactionFramer.GroupDue"/>), with
    /// every batch of it written. Called after every message, and with <paramref name="inputIdle"/> when no further
    /// message is waiting.
    /// </summary>
    bool TryTakeGroup(bool inputIdle, out TransactionGroup group);
}
