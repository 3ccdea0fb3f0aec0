namespace WalBridge.Offsets.Mirror;

/// <summary>
/// A local, durable copy of the offset records committed to Kafka.
/// </summary>
/// <remarks>
/// <para>
/// Kafka (the compacted offsets topic, written inside every Kafka transaction) is the source of
/// truth for the replication position. The mirror only exists so a restart can start quickly and
/// so an operator can inspect the last committed position without reading the topic; a missing or
/// stale mirror entry must never override what Kafka holds.
/// </para>
/// <para>
/// Implementations are not thread-safe: callers must invoke the members from one thread at a
/// time (the connector's commit loop is the only writer). <see cref="IDisposable.Dispose"/> must
/// not run concurrently with other calls.
/// </para>
/// </remarks>
public interface IOffsetMirror : IDisposable
{
    /// <summary>Returns the record stored under <paramref name="key"/>, or <see langword="null"/> if there is none.</summary>
    OffsetRecord? Read(OffsetKey key);

    /// <summary>
    /// Stores <paramref name="record"/> under <paramref name="key"/>, replacing any previous record.
    /// The write is synced: when this method returns, the record survives a process or machine crash.
    /// </summary>
    void Write(OffsetKey key, OffsetRecord record);

    /// <summary>Removes the record stored under <paramref name="key"/> (a no-op if there is none). Synced like <see cref="Write"/>.</summary>
    void Delete(OffsetKey key);

    /// <summary>Where the mirror lives (for a directory-based store, its full path); for logs and diagnostics.</summary>
    string Location { get; }
}
