using System.Globalization;
using Microsoft.Extensions.Logging;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Source;
using WalBridge.Connector.Transactions;
using WalBridge.Offsets;

namespace WalBridge.Connector.Decoding.PgOutput;

/// <summary>
/// pgoutput: our strict decoder, streamed transactions spilled until commit (protocol 2), the batcher that builds the
/// Arrow payloads, and the shared transaction framer.
/// </summary>
internal sealed class PgOutputChangeDecoder : IChangeStreamDecoder
{
    private readonly ConnectorConfig _config;
    private readonly PrimaryKeyCatalog _primaryKeys;
    private readonly TransactionFramer _framer;
    private readonly PgOutputBatcher _batcher;
    private readonly StreamedTransactions _streamed;
    private readonly Func<long> _pendingBytes;
    private readonly bool _binaryAllowed;
    private readonly bool _streamingAllowed;
    private int _protocol = 1;
    private bool _binary;

    /// <param name="config">The connector configuration.</param>
    /// <param name="committed">The position already in Kafka.</param>
    /// <param name="mode">Whether binary tuples and streaming of in-progress transactions may be asked for.</param>
    /// <param name="logger">For values kept as text (see <see cref="PgOutputBatcher"/>).</param>
    /// <param name="metrics">Counts the changes seen per table and operation; null counts nothing.</param>
    /// <param name="windows">The stream's incremental snapshot windows, or null.</param>
    public PgOutputChangeDecoder(ConnectorConfig config, Lsn committed, DecodingMode mode, ILogger logger, Diagnostics.IPipelineMetrics? metrics = null, SnapshotWindows? windows = null)
    {
        ArgumentNullException.ThrowIfNull(mode);
        _config = config;
        _binaryAllowed = mode.BinaryTuplesAllowed && config.BinaryFormat;
        _streamingAllowed = mode.StreamingAllowed(committed);
        _primaryKeys = new PrimaryKeyCatalog(config);
        _framer = new TransactionFramer(config, committed, DecodingPlugin.PgOutput.Name(), windows);
        _batcher = new PgOutputBatcher(config, _framer, logger, _primaryKeys.PrimaryKey, () => _binary, metrics);
        _streamed = new StreamedTransactions(config.SpillDirectory);
        _pendingBytes = () => _batcher.PendingBytes;
    }

    public DecodingPlugin Plugin => DecodingPlugin.PgOutput;

    public string Protocol => $"pgoutput protocol version {_protocol}{(Streaming ? " (streaming)" : "")}, {(_binary ? "binary" : "text")} tuples";

    private bool Streaming => _protocol >= 2 && _streamingAllowed;

    public IReadOnlyList<KeyValuePair<string, string?>> StartOptions(int serverMajorVersion)
    {
        // Protocol 2 (PostgreSQL 14+) streams large in-progress transactions instead of holding them
        // in the server until commit; they go to our spill files. Version 3+ only adds two-phase
        // commit and parallel apply, which the connector does not use.
        _protocol = serverMajorVersion >= 14 ? PgOutputDecoder.MaxProtocolVersion : 1;
        var options = new List<KeyValuePair<string, string?>>
        {
            new("proto_version", _protocol.ToString(CultureInfo.InvariantCulture)),
            new("publication_names", SourceSetup.QuoteIdentifier(_config.PublicationName)),
            // Logical decoding messages: users' own, and our heartbeats (idle acknowledgement).
            new("messages", "true"),
        };
        if (Streaming)
        {
            options.Add(new("streaming", "on"));
        }
        // Binary tuples (PostgreSQL 14+) skip the server's text formatting and our text parsing.
        _binary = _binaryAllowed && serverMajorVersion >= 14;
        if (_binary)
        {
            options.Add(new("binary", "true"));
        }

        return options;
    }

    public void Process(ReadOnlySpan<byte> message, Lsn lsn)
    {
        if (!Streaming || !_streamed.TryHandle(message, lsn, _batcher))
        {
            PgOutputDecoder.Decode(message, lsn, _batcher);
        }
    }

    public bool TryTakeGroup(bool inputIdle, out TransactionGroup group)
    {
        if (!_framer.GroupDue(inputIdle, _pendingBytes))
        {
            group = null!;
            return false;
        }

        _batcher.FlushAll();
        group = _framer.TakeGroup();
        return true;
    }

    public void Dispose()
    {
        _streamed.Dispose();
        _batcher.Dispose();
        _framer.Dispose();
        _primaryKeys.Dispose();
    }
}
