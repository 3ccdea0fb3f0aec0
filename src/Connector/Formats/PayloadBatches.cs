using WalBridge.Connector.Transactions;
using WalBridge.Serialization.Payload;

namespace WalBridge.Connector.Formats;

/// <summary>
/// The one place the formats stage reads a source transaction's payload: <see cref="TablePayload"/> (an Arrow IPC
/// stream in memory or in a spill file) to Apache.Arrow record batches with the payload's schema. When the payload
/// representation changes, only this adapter changes.
/// </summary>
internal static class PayloadBatches
{
    /// <summary>Reads <paramref name="payload"/> (a changes or truncate record). The arrays are views of the bytes read.</summary>
    /// <exception cref="ArrowPayloadException">The value is not an Arrow IPC stream.</exception>
    /// <exception cref="Errors.LocalStorageException">A spilled value cannot be read back.</exception>
    public static ArrowPayload Read(TablePayload payload)
    {
        ArgumentNullException.ThrowIfNull(payload);
        return ArrowPayload.Read(payload.GetValue());
    }
}
