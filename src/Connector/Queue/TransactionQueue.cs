using System.Threading.Channels;
using WalBridge.Connector.Transactions;

namespace WalBridge.Connector.Queue;

/// <summary>
/// The bounded hand-over between the replication reader (one writer) and the Kafka transaction loop (one reader):
/// at most <c>queue.max.transactions</c> groups of source transactions, and at most <c>queue.max.bytes</c> of payload
/// bytes held in memory by them. When either bound is reached the writer waits (the channel's full mode is Wait), so
/// the reader stops reading and PostgreSQL's walsender waits too: nothing is dropped and memory stays bounded.
/// </summary>
/// <remarks>
/// Threading: <see cref="EnqueueAsync"/> from the reader's task only; <see cref="Reader"/> from the Kafka loop's
/// thread only. The byte budget is released when the Kafka loop reports a commit to the <see cref="ProgressTracker"/>.
/// Lifetime: one per pipeline attempt; groups still in it when the attempt ends are abandoned (PostgreSQL sends them
/// again) and disposed by <see cref="DisposeRemaining"/>.
/// </remarks>
internal sealed class TransactionQueue
{
    private readonly Channel<TransactionGroup> _channel;
    private readonly long _maxBytes;
    private readonly ProgressTracker _progress;

    public TransactionQueue(int maxGroups, long maxBytes, ProgressTracker progress)
    {
        _channel = Channel.CreateBounded<TransactionGroup>(new BoundedChannelOptions(maxGroups)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = true,
        });
        _maxBytes = maxBytes;
        _progress = progress;
    }

    /// <summary>The Kafka loop's end.</summary>
    public ChannelReader<TransactionGroup> Reader => _channel.Reader;

    /// <summary>Hands a group over, waiting while the queue is full by count or by bytes.</summary>
    public async ValueTask EnqueueAsync(TransactionGroup group, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(group);
        if (Diagnostics.StageTrace.Enabled)
        {
            group.HandedOverMicros = Diagnostics.StageTrace.Now();
        }

        // Over the byte budget, wait for commits (at least one group may always wait, whatever its size).
        while (_progress.QueuedMemoryBytes > _maxBytes && _progress.Queued > 0)
        {
            await _progress.WaitForCommitAsync(TimeSpan.FromSeconds(1), cancellationToken);
        }

        _progress.OnQueued(group.MemoryBytes);
        await _channel.Writer.WriteAsync(group, cancellationToken);
    }

    /// <summary>No more groups will come (the attempt ends).</summary>
    public void Complete() => _channel.Writer.TryComplete();

    /// <summary>Disposes what was never taken (deleting spill files), after both ends stopped.</summary>
    public void DisposeRemaining()
    {
        while (_channel.Reader.TryRead(out var group))
        {
            group.Dispose();
        }
    }
}
