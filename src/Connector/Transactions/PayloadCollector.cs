namespace WalBridge.Connector.Transactions;

/// <summary>Where a record value was stored: in memory (<see cref="Memory"/>) or in a spill file.</summary>
internal readonly record struct StoredValue(byte[]? Memory, SpillFile? Spill, long SpillOffset, int Length);

/// <summary>
/// Collects one source transaction's record values: in memory up to <c>transaction.memory.bytes</c>, then in a
/// spill file under <c>state.dir/spill</c>, so memory stays bounded whatever the transaction's size. Owned by the
/// <see cref="TransactionFramer"/>. Single-threaded; reusable after <see cref="Complete"/> or <see cref="Discard"/>.
/// </summary>
internal sealed class PayloadCollector(string spillDirectory, long memoryLimit) : IDisposable
{
    private readonly List<TablePayload> _payloads = [];
    private SpillFile? _spill;
    private long _memory;

    /// <summary>Copies <paramref name="value"/> to memory or, past the memory limit, to the transaction's spill file.</summary>
    /// <param name="value">The bytes; copied.</param>
    /// <param name="spillName">Names the spill file if this value starts one (e.g. the transaction id).</param>
    /// <exception cref="Errors.LocalStorageException">The spill file cannot be written.</exception>
    public StoredValue Store(ReadOnlySpan<byte> value, uint spillName)
    {
        if (_memory + value.Length > memoryLimit)
        {
            _spill ??= new SpillFile(spillDirectory, $"txn-{spillName}");
            return new StoredValue(null, _spill, _spill.Append(value), value.Length);
        }
        _memory += value.Length;
        return new StoredValue(value.ToArray(), null, 0, value.Length);
    }

    /// <summary>Adds a record whose value was stored with <see cref="Store"/>.</summary>
    public void Add(TablePayload payload)
    {
        ArgumentNullException.ThrowIfNull(payload);
        _payloads.Add(payload);
    }

    /// <summary>Hands the collected records (and the spill file) to a new transaction and starts over.</summary>
    public (IReadOnlyList<TablePayload> Payloads, SpillFile? Spill) Complete()
    {
        var result = ((IReadOnlyList<TablePayload>)[.. _payloads], _spill);
        _payloads.Clear();
        _spill = null;
        _memory = 0;
        return result;
    }

    /// <summary>Drops everything collected (a skipped or unfinished transaction).</summary>
    public void Discard()
    {
        _payloads.Clear();
        _spill?.Dispose();
        _spill = null;
        _memory = 0;
    }

    public void Dispose() => Discard();
}
