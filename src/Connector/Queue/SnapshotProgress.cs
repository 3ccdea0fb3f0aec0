using WalBridge.Connector.Transactions;
using WalBridge.Offsets;

namespace WalBridge.Connector.Queue;

/// <summary>
/// The committed progress of the running snapshot (which chunks of which tables are in Kafka), the one owner of that
/// state: loaded from the offsets record at the start of an attempt, advanced by the Kafka loop after each commit,
/// awaited by the snapshot readers. Thread-safe. Like the committed LSN it only moves forward within an attempt.
/// </summary>
public sealed class SnapshotProgress
{
    private readonly object _gate = new();
    private SnapshotState? _committed;
    private Lsn _completed;
    private SnapshotState? _lastCompleted;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The committed state, or null when no snapshot is pending (none ran, or the last one completed).</summary>
    public SnapshotState? Committed
    {
        get
        {
            lock (_gate)
            {
                return _committed;
            }
        }
    }

    /// <summary>The last snapshot this process completed (its final state), or null.</summary>
    public SnapshotState? LastCompleted
    {
        get
        {
            lock (_gate)
            {
                return _lastCompleted;
            }
        }
    }

    /// <summary>Sets the state read from Kafka at the start of an attempt.</summary>
    public void Load(SnapshotState? state)
    {
        lock (_gate)
        {
            _committed = state is { Complete: false } ? state : null;
            Signal();
        }
    }

    /// <summary>
    /// The state the offsets record of a Kafka transaction holding <paramref name="groups"/> must carry: the committed
    /// state with their chunks added; the completing state once; null when no snapshot is pending. Does not change
    /// <see cref="Committed"/>.
    /// </summary>
    /// <param name="groups">The Kafka transaction's groups.</param>
    /// <param name="records">Records of snapshot rows the transaction holds per table partition (numbered from <see cref="SnapshotTableState.PiecesIn"/>).</param>
    public SnapshotState? After(IReadOnlyList<TransactionGroup> groups, IReadOnlyDictionary<(string Table, int Partition), int>? records = null)
    {
        ArgumentNullException.ThrowIfNull(groups);
        SnapshotState? state;
        lock (_gate)
        {
            state = _committed;
        }

        foreach (var group in groups)
        {
            if (group.Snapshot is not { } part)
            {
                continue;
            }

            if (part.Begins is { } begins)
            {
                state = begins;
            }

            if (state is null)
            {
                throw new InvalidOperationException("A snapshot chunk arrived before the snapshot's plan.");
            }

            if (part.Table is { } table)
            {
                var tables = state.Tables.ToList();
                var index = tables.FindIndex(t => t.Table == table);
                if (index < 0)
                {
                    throw new InvalidOperationException($"Snapshot chunk of {table}, which the snapshot's plan does not list.");
                }

                var added = records?.Where(r => r.Key.Table == table).ToDictionary(r => r.Key.Partition, r => r.Value);
                tables[index] = tables[index].WithDone(part.Chunk, part.Rows, added);
                state = state with { Tables = tables };
            }

            if (part.Completes)
            {
                state = state with { Complete = true };
            }
        }

        return state;
    }

    /// <summary>After the commit (and the mirror write) of a Kafka transaction whose offsets record held <paramref name="state"/>.</summary>
    public void OnCommitted(SnapshotState? state)
    {
        lock (_gate)
        {
            if (state is { Complete: true })
            {
                _completed = state.Lsn;
                _lastCompleted = state;
            }

            _committed = state is { Complete: false } ? state : null;
            Signal();
        }
    }

    /// <summary>
    /// Waits until <paramref name="condition"/> holds for the committed state (null: no snapshot pending) and the
    /// snapshot LSN of the last snapshot completed in this process (zero when none).
    /// </summary>
    public async Task WaitUntilAsync(Func<SnapshotState?, Lsn, bool> condition, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(condition);
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                if (condition(_committed, _completed))
                {
                    return;
                }

                changed = _changed.Task;
            }

            await changed.WaitAsync(cancellationToken);
        }
    }

    private void Signal()
    {
        var previous = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        previous.TrySetResult();
    }
}
