namespace WalBridge.Connector.Transactions;

/// <summary>
/// Stores the record pieces of one <see cref="TransactionGroup"/>: in memory up to <c>transaction.memory.bytes</c>, then
/// in a spill file under <c>state.dir/spill</c>, so memory stays bounded whatever the group's (or a transaction's)
/// size. Owned by the <see cref="TransactionFramer"/>. Single-threaded; reusable after <see cref="Complete"/> or
/// <see cref="Discard"/>.
/// </summary>
internal sealed class PayloadCollector(string spillDirectory, long memoryLimit) : IDisposable
{
    private SpillFile? _spill;

    /// <summary>Bytes stored in memory since the last <see cref="Complete"/>.</summary>
    public long MemoryBytes { get; private set; }

    /// <summary>Bytes stored in all since the last <see cref="Complete"/>.</summary>
    public long TotalBytes { get; private set; }

    /// <summary>Copies <paramref name="value"/> to memory or, past the memory limit, to the group's spill file.</summary>
    /// <param name="value">The bytes; copied.</param>
    /// <param name="spillName">Names the spill file if this value starts one (e.g. the first transaction's id).</param>
    /// <exception cref="Errors.LocalStorageException">The spill file cannot be written.</exception>
    public StoredBytes Store(ReadOnlySpan<byte> value, uint spillName) => Store(value, spillName, framedWith: null);

    /// <summary>
    /// Batches from this size on are stored framed: large ones are usually a record by themselves (they are cut at the
    /// record limit), and their arrays are on the large object heap, where a second one per record costs most. Small
    /// ones (a single-row transaction's) are mostly joined with others into one record, where framing would only add
    /// the schema message's bytes to each.
    /// </summary>
    internal const int FramedMinimum = 64 * 1024;

    /// <summary>
    /// <see cref="Store(ReadOnlySpan{byte}, uint)"/> for a record batch of a stream with <paramref name="schemaMessage"/>:
    /// held in memory framed as its whole stream (<see cref="StoredBytes.AsStream"/>).
    /// </summary>
    public StoredBytes StoreBatch(ReadOnlySpan<byte> batch, uint spillName, ReadOnlyMemory<byte> schemaMessage) => Store(batch, spillName, schemaMessage);

    private StoredBytes Store(ReadOnlySpan<byte> value, uint spillName, ReadOnlyMemory<byte>? framedWith)
    {
        TotalBytes += value.Length;
        if (MemoryBytes + value.Length > memoryLimit)
        {
            _spill ??= new SpillFile(spillDirectory, $"group-{spillName}");
            return new StoredBytes(null, _spill, _spill.Append(value), value.Length);
        }

        MemoryBytes += value.Length;
        return framedWith is { } schema && value.Length >= FramedMinimum
            ? StoredBytes.Framed(schema.Span, value)
            : new StoredBytes(value.ToArray(), null, 0, value.Length);
    }

    /// <summary>Hands the spill file (if any) over with what was stored, and starts over.</summary>
    public (SpillFile? Spill, long MemoryBytes, long TotalBytes) Complete()
    {
        var result = (_spill, MemoryBytes, TotalBytes);
        _spill = null;
        MemoryBytes = 0;
        TotalBytes = 0;
        return result;
    }

    /// <summary>Drops everything stored (an unfinished group).</summary>
    public void Discard()
    {
        _spill?.Dispose();
        _spill = null;
        MemoryBytes = 0;
        TotalBytes = 0;
    }

    public void Dispose() => Discard();
}
