namespace WalBridge.Connector.Pipeline;

/// <summary>
/// Collects one source transaction's record values: in memory up to
/// <c>transaction.memory.bytes</c>, then in a spill file, so memory stays bounded whatever the
/// transaction's size. Shared by both plugins' decoders. Single-threaded; reusable after
/// <see cref="Complete"/> or <see cref="Discard"/>.
/// </summary>
internal sealed class PayloadCollector(string spillDirectory, long memoryLimit) : IDisposable
{
    private readonly List<TablePayload> _payloads = [];
    private SpillFile? _spill;
    private long _memory;

    public int Count => _payloads.Count;

    /// <summary>
    /// Adds a record: <paramref name="value"/> is copied (to memory or the spill file) and
    /// <paramref name="describe"/> fills in everything else about it.
    /// </summary>
    public TablePayload Add(ReadOnlySpan<byte> value, string xidForSpillName, Func<byte[]?, SpillFile?, long, int, TablePayload> describe)
    {
        ArgumentNullException.ThrowIfNull(describe);
        TablePayload payload;
        if (_memory + value.Length > memoryLimit)
        {
            _spill ??= new SpillFile(spillDirectory, $"txn-{xidForSpillName}");
            payload = describe(null, _spill, _spill.Append(value), value.Length);
        }
        else
        {
            _memory += value.Length;
            payload = describe(value.ToArray(), null, 0, value.Length);
        }
        _payloads.Add(payload);
        return payload;
    }

    /// <summary>Adds a record whose value is already an array (kept in memory).</summary>
    public void Add(TablePayload payload)
    {
        ArgumentNullException.ThrowIfNull(payload);
        _memory += payload.Length;
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

    /// <summary>Drops everything collected (skipped or aborted transaction).</summary>
    public void Discard()
    {
        _payloads.Clear();
        _spill?.Dispose();
        _spill = null;
        _memory = 0;
    }

    public void Dispose() => Discard();
}
