using WalBridge.Offsets;

namespace WalBridge.Connector.Transactions;

/// <summary>Which snapshot marker a record is (docs/format.md, snapshots): the <c>walbridge.snapshot</c> header.</summary>
public enum SnapshotMarkerKind
{
    /// <summary>The table's snapshot begins: the rows that follow with <c>_op = r</c> are its state at the snapshot LSN.</summary>
    Start,
    /// <summary>Every snapshot row of the table is before this record: a consumer now holds the complete table.</summary>
    End,
}

/// <summary>A snapshot marker for one table, written to every partition of its topic.</summary>
/// <param name="Kind">Start or end.</param>
/// <param name="Schema">The table's schema.</param>
/// <param name="Table">The table's name.</param>
/// <param name="SchemaMessage">The table's Arrow schema message: the marker's value is this schema and the end-of-stream marker (no rows).</param>
/// <param name="SchemaFingerprint">That schema's fingerprint.</param>
/// <param name="Partitions">The table's topic partitions (the marker goes to each).</param>
/// <param name="Rows">End markers: the snapshot rows delivered for the table; start markers: the estimate.</param>
public sealed record SnapshotMarker(SnapshotMarkerKind Kind, string Schema, string Table, ReadOnlyMemory<byte> SchemaMessage, string SchemaFingerprint, int Partitions, long Rows)
{
    /// <summary>An incremental snapshot's marker (written in the stream at a high watermark), not the initial snapshot's.</summary>
    public bool Incremental { get; init; }

    /// <summary>Incremental markers: the table's snapshot LSN (the commit LSN of the window that wrote its start marker).</summary>
    public Lsn SnapshotLsn { get; init; }
}

/// <summary>
/// What a <see cref="TransactionGroup"/> contributes to a running snapshot. A group carrying one is written alone in
/// its Kafka transaction, and the offsets record of that transaction holds the snapshot's progress including it.
/// </summary>
public sealed class SnapshotPart
{
    /// <summary>The snapshot's consistent point: the <c>_commit_lsn</c> of its rows and the position streaming starts after.</summary>
    public required Lsn Lsn { get; init; }

    /// <summary>The chunk's table (<c>schema.table</c>), or null for a group of markers only.</summary>
    public string? Table { get; init; }

    /// <summary>The chunk's index within its table, or -1.</summary>
    public int Chunk { get; init; } = -1;

    /// <summary>The chunk's rows.</summary>
    public long Rows { get; init; }

    /// <summary>Markers written in the same Kafka transaction, after the chunk's rows.</summary>
    public IReadOnlyList<SnapshotMarker> Markers { get; init; } = [];

    /// <summary>The progress to start from when this is the snapshot's first group (its plan), else null.</summary>
    public SnapshotState? Begins { get; init; }

    /// <summary>Whether this group completes the snapshot (its end markers).</summary>
    public bool Completes { get; init; }
}
