using Apache.Arrow;

namespace WalBridge.Client;

/// <summary>The source (PostgreSQL) transaction of a change: the <c>_xid</c>, <c>_commit_lsn</c> and <c>_commit_ts</c> columns.</summary>
/// <param name="Xid">The 32-bit transaction id logical decoding gives (it wraps around: identify a transaction by <paramref name="CommitLsn"/>).</param>
/// <param name="CommitLsn">The commit LSN: unique per transaction, and the order of transactions.</param>
/// <param name="CommitTimestampMicros">The commit time at the source, microseconds since the Unix epoch (UTC).</param>
public readonly record struct SourceTransaction(uint Xid, Lsn CommitLsn, long CommitTimestampMicros)
{
    /// <summary>The commit time (microsecond precision).</summary>
    public DateTimeOffset CommitTime => DateTimeOffset.UnixEpoch.AddTicks(CommitTimestampMicros * TimeSpan.TicksPerMicrosecond);
}

/// <summary>
/// One row change of a <see cref="WalBridgeRecord"/>: a view of one row of one of its record batches (nothing is copied).
/// Valid as long as its record is not disposed; safe to read from several threads.
/// </summary>
public readonly struct Change
{
    private readonly ChangeBatch _batch;

    internal Change(ChangeBatch batch, int row)
    {
        _batch = batch;
        Row = row;
    }

    /// <summary>The record batch holding the change (owned by the record), for reading arrays directly.</summary>
    public RecordBatch Batch => Checked.Batch;

    /// <summary>The change's row in <see cref="Batch"/>.</summary>
    public int Row { get; }

    /// <summary><c>_op</c>. Every row's code was checked when the record was read: an unknown one fails there.</summary>
    public ChangeOperation Operation => Checked.Ops[Row];

    /// <summary><c>_lsn</c>: the change's WAL position. Not unique (a COPY's rows, a truncate's copies in every partition, a moved key's delete share it).</summary>
    public Lsn Lsn => new(Checked.Lsn.Values[Row]);

    /// <summary>The source transaction the change belongs to.</summary>
    public SourceTransaction Transaction
    {
        get
        {
            var batch = Checked;
            return new SourceTransaction(batch.Xid.Values[Row], new Lsn(batch.CommitLsn.Values[Row]), batch.CommitTimestamp.Values[Row]);
        }
    }

    /// <summary>
    /// The table columns of the row as format.md's <em>Where the old row is</em> defines them: the new row of an insert
    /// or update, the deleted row (or only its key) of a delete, all null in a truncate row.
    /// </summary>
    public RowValues Columns => new(Checked, Row, before: false, present: true);

    /// <summary>The new row: <see cref="Columns"/> for inserts, updates and snapshot reads; absent otherwise.</summary>
    public RowValues After
    {
        get
        {
            var op = Operation;
            return new RowValues(_batch, Row, before: false, present: op is ChangeOperation.Insert or ChangeOperation.Update or ChangeOperation.Read);
        }
    }

    /// <summary>
    /// <c>_before</c>: an update's old row (under <c>REPLICA IDENTITY FULL</c>) or old key (when the update changed the
    /// key); absent (<see cref="RowValues.IsPresent"/> false) otherwise, and always for inserts, deletes and truncates.
    /// </summary>
    public RowValues Before
    {
        get
        {
            var batch = Checked;
            return new RowValues(batch, Row, before: true, present: !batch.Before.IsNull(Row));
        }
    }

    /// <summary>
    /// The old row, wherever the format puts it: a delete's <see cref="Columns"/>, an update's <see cref="Before"/>
    /// (absent when PostgreSQL sent none: then the key did not change and <see cref="Columns"/> identifies the row).
    /// </summary>
    public RowValues OldRow => Operation switch
    {
        ChangeOperation.Delete => Columns,
        ChangeOperation.Update => Before,
        _ => new RowValues(_batch, Row, before: false, present: false),
    };

    /// <summary>A truncate row's options (<c>cascade</c>, <c>restart_identity</c>, both comma-separated, or empty); null for other changes.</summary>
    public string? TruncateOptions => Operation == ChangeOperation.Truncate
        ? _batch.SpecialText(Row, "_truncate"u8) ?? ""
        : null;

    public override string ToString() => $"{Operation} at {Lsn} of transaction {Transaction.Xid} ({Transaction.CommitLsn})";

    private ChangeBatch Checked
    {
        get
        {
            var batch = _batch ?? throw new InvalidOperationException("This Change is default: take changes from a WalBridgeRecord.");
            ObjectDisposedException.ThrowIf(batch.Record.IsDisposed, batch.Record);
            return batch;
        }
    }
}
