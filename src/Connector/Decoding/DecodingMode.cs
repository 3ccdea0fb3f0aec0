using WalBridge.Offsets;

namespace WalBridge.Connector.Decoding;

/// <summary>
/// How the replication stream is asked for, beyond the configuration: a pipeline attempt starts with the mode the
/// previous one left (a <see cref="ReplicationRestartException"/> changes it). Immutable.
/// </summary>
/// <param name="BinaryTuplesAllowed">Whether pgoutput may send binary tuples (false once a table needed text).</param>
/// <param name="StreamingOffThrough">
/// While the position committed in Kafka is below this, pgoutput is asked not to stream in-progress transactions
/// (a streamed transaction could not be decoded exactly, see <see cref="StreamingNotExactException"/>); once Kafka
/// has committed through it, the stream restarts with streaming. <see cref="Lsn.Zero"/>: streaming as configured.
/// </param>
public sealed record DecodingMode(bool BinaryTuplesAllowed, Lsn StreamingOffThrough)
{
    /// <summary>The mode of a first attempt: binary tuples where configured, streaming where the server supports it.</summary>
    public static DecodingMode Initial { get; } = new(BinaryTuplesAllowed: true, StreamingOffThrough: Lsn.Zero);

    /// <summary>Whether in-progress transactions may be streamed when Kafka has committed through <paramref name="committed"/>.</summary>
    public bool StreamingAllowed(Lsn committed) => committed >= StreamingOffThrough;
}

/// <summary>
/// A planned restart, not a failure: the pipeline is torn down and started again from the position committed in
/// Kafka with the mode <see cref="Next"/> gives. Nothing is acknowledged past the committed position, so PostgreSQL
/// sends everything after it again.
/// </summary>
public abstract class ReplicationRestartException : Exception
{
    protected ReplicationRestartException(string message) : base(message) { }
    protected ReplicationRestartException(string message, Exception inner) : base(message, inner) { }
    protected ReplicationRestartException() { }

    /// <summary>The mode the next attempt streams with.</summary>
    public abstract DecodingMode Next(DecodingMode current);
}

/// <summary>
/// A table streamed in pgoutput's binary tuple format has a column that only the text format carries exactly: the
/// rest of the process streams text tuples.
/// </summary>
public sealed class TextFormatNeededException : ReplicationRestartException
{
    public TextFormatNeededException(string message, Lsn lsn) : base($"{message} (at WAL position {lsn})") => Lsn = lsn;
    public TextFormatNeededException() { }
    public TextFormatNeededException(string message) : base(message) { }
    public TextFormatNeededException(string message, Exception inner) : base(message, inner) { }

    public Lsn Lsn { get; }

    public override DecodingMode Next(DecodingMode current)
    {
        ArgumentNullException.ThrowIfNull(current);
        return current with { BinaryTuplesAllowed = false };
    }
}

/// <summary>
/// A transaction that pgoutput streamed while in progress cannot be decoded exactly: it holds a transactional logical
/// decoding message written before one of its subtransactions was rolled back, and in streamed mode pgoutput labels
/// messages with the top-level transaction id only (rows carry their subtransaction's id), so whether the message
/// belongs to the rolled-back subtransaction is unknown. The stream restarts without streaming until Kafka has
/// committed through the transaction: PostgreSQL then decodes it whole at its commit, applying the rollback itself.
/// </summary>
public sealed class StreamingNotExactException : ReplicationRestartException
{
    public StreamingNotExactException(uint xid, Lsn commitLsn)
        : base($"Streamed transaction {xid} (commit {commitLsn}) has a transactional message written before a rolled-back subtransaction, " +
               "which streamed pgoutput does not attribute; reading it again without streaming")
    {
        Xid = xid;
        CommitLsn = commitLsn;
    }

    public StreamingNotExactException() { }
    public StreamingNotExactException(string message) : base(message) { }
    public StreamingNotExactException(string message, Exception inner) : base(message, inner) { }

    public uint Xid { get; }
    public Lsn CommitLsn { get; }

    public override DecodingMode Next(DecodingMode current)
    {
        ArgumentNullException.ThrowIfNull(current);
        return current with { StreamingOffThrough = Lsn.Max(current.StreamingOffThrough, CommitLsn) };
    }
}

/// <summary>Kafka has committed past the transaction that needed the stream without streaming: stream again as configured.</summary>
public sealed class StreamingResumeException : ReplicationRestartException
{
    public StreamingResumeException(Lsn committed)
        : base($"Kafka committed through {committed}; streaming in-progress transactions again") => Committed = committed;

    public StreamingResumeException() { }
    public StreamingResumeException(string message) : base(message) { }
    public StreamingResumeException(string message, Exception inner) : base(message, inner) { }

    public Lsn Committed { get; }

    public override DecodingMode Next(DecodingMode current)
    {
        ArgumentNullException.ThrowIfNull(current);
        return current with { StreamingOffThrough = Lsn.Zero };
    }
}
