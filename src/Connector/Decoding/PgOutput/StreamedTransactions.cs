using System.Buffers;
using System.Buffers.Binary;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Transactions;
using WalBridge.Offsets;

namespace WalBridge.Connector.Decoding.PgOutput;

/// <summary>
/// Protocol version 2 streaming: PostgreSQL sends a large in-progress transaction in stream blocks (Stream Start …
/// Stream Stop), possibly interleaved with other transactions, long before it commits. Each block's raw messages are
/// appended to the transaction's spill file on local disk; a Stream Abort drops the transaction or marks one of its
/// subtransactions aborted; a Stream Commit replays the file through the normal decoder into the handler, skipping
/// the aborted subtransactions' changes. Memory stays O(one message) whatever the transaction's size.
/// </summary>
/// <remarks>
/// Single-threaded: used by the replication reader only. Owns its spill files. A streamed transaction whose messages
/// cannot be attributed to their subtransactions makes the stream restart without streaming
/// (<see cref="StreamingNotExactException"/>).
/// </remarks>
internal sealed class StreamedTransactions(string spillDirectory) : IDisposable
{
    /// <summary>A spill record's header: Int32 length and Int64 LSN (big-endian), then the message bytes.</summary>
    private const int RecordHeader = 12;

    private readonly Dictionary<uint, Streamed> _transactions = [];
    private Streamed? _current;

    /// <summary>
    /// Handles a stream control message (S, E, c, A) and, inside a stream block, spills the message.
    /// Returns false when the message is an ordinary one outside a stream (for the caller to decode).
    /// </summary>
    public bool TryHandle(ReadOnlySpan<byte> message, Lsn lsn, IPgOutputHandler handler)
    {
        var type = message.IsEmpty ? default : (PgOutputMessageType)message[0];
        var reader = new ProtocolReader(message, lsn);
        switch (type)
        {
            case PgOutputMessageType.StreamStart:
                {
                    reader.ReadByte("type");
                    var xid = reader.ReadUInt32("Stream Start.xid");
                    var first = reader.ReadByte("Stream Start.first_segment");
                    reader.ExpectEnd("pgoutput Stream Start");
                    if (_current is not null)
                    {
                        throw new ReplicationProtocolException($"pgoutput Stream Start for xid {xid} inside the stream block of xid {_current.Xid}", lsn);
                    }

                    if (handler.InTransaction)
                    {
                        throw new ReplicationProtocolException($"pgoutput Stream Start for xid {xid} inside a transaction", lsn);
                    }

                    if (first == 1 && _transactions.Remove(xid, out var stale))
                    {
                        stale.Dispose();
                    }

                    if (!_transactions.TryGetValue(xid, out var streamed))
                    {
                        if (first != 1)
                        {
                            throw new ReplicationProtocolException($"pgoutput Stream Start continues xid {xid}, whose first segment was never received", lsn);
                        }

                        streamed = new Streamed(xid, new SpillFile(spillDirectory, $"stream-{xid}"));
                        _transactions[xid] = streamed;
                    }
                    _current = streamed;
                    return true;
                }
            case PgOutputMessageType.StreamStop:
                reader.ReadByte("type");
                reader.ExpectEnd("pgoutput Stream Stop");
                if (_current is null)
                {
                    throw new ReplicationProtocolException("pgoutput Stream Stop outside a stream block", lsn);
                }

                _current = null;
                Diagnostics.FaultInjection.Reach(Diagnostics.FaultPoint.AfterStreamStop);
                return true;
            case PgOutputMessageType.StreamAbort:
                {
                    reader.ReadByte("type");
                    var xid = reader.ReadUInt32("Stream Abort.xid");
                    var subxid = reader.ReadUInt32("Stream Abort.subxid");
                    reader.ExpectEnd("pgoutput Stream Abort");
                    if (_current is not null)
                    {
                        throw new ReplicationProtocolException($"pgoutput Stream Abort for xid {xid} inside a stream block", lsn);
                    }

                    if (!_transactions.TryGetValue(xid, out var streamed))
                    {
                        return true; // nothing of it was kept (e.g. streamed before this connection started)
                    }

                    if (subxid == xid)
                    {
                        _transactions.Remove(xid);
                        streamed.Dispose();
                    }
                    else
                    {
                        streamed.AbortedSubtransactions.Add(subxid);
                        // The message's WAL position is the end of the subtransaction's abort record
                        // (the walsender sends it at the abort's LSN); without one, assume the worst.
                        streamed.LastSubtransactionAbort = Lsn.Max(streamed.LastSubtransactionAbort, lsn == Lsn.Zero ? Lsn.MaxValue : lsn);
                    }
                    return true;
                }
            case PgOutputMessageType.StreamCommit:
                {
                    reader.ReadByte("type");
                    var xid = reader.ReadUInt32("Stream Commit.xid");
                    var commit = reader.ReadCommit("pgoutput Stream Commit");
                    if (_current is not null)
                    {
                        throw new ReplicationProtocolException($"pgoutput Stream Commit for xid {xid} inside a stream block", lsn);
                    }

                    if (!_transactions.Remove(xid, out var streamed))
                    {
                        throw new ReplicationProtocolException($"pgoutput Stream Commit for xid {xid}, which was never streamed", lsn);
                    }

                    using (streamed)
                    {
                        // Streamed messages carry the top-level xid, not their subtransaction's (rows carry
                        // theirs): one written before a subtransaction rollback may belong to it. Only
                        // PostgreSQL can tell, by decoding the transaction whole at its commit.
                        if (streamed.FirstTransactionalMessage < streamed.LastSubtransactionAbort)
                        {
                            throw new StreamingNotExactException(xid, commit.CommitLsn);
                        }

                        Replay(streamed, commit, lsn, handler);
                    }
                    return true;
                }
            default:
                if (_current is null)
                {
                    return false;
                }

                if (!type.CarriesStreamXid())
                {
                    throw new ReplicationProtocolException($"pgoutput message type '{(char)type}' inside the stream block of xid {_current.Xid}", lsn);
                }

                if (type == PgOutputMessageType.Message)
                {
                    NoteMessage(_current, message, lsn);
                }

                Span<byte> header = stackalloc byte[RecordHeader];
                BinaryPrimitives.WriteInt32BigEndian(header, message.Length);
                BinaryPrimitives.WriteUInt64BigEndian(header[4..], lsn.Value);
                _current.File.Append(header);
                _current.File.Append(message);
                Diagnostics.FaultInjection.Reach(Diagnostics.FaultPoint.MidStream);
                return true;
        }
    }

    /// <summary>Remembers the position of the first transactional message (Message: type, xid, flags, LSN, …).</summary>
    private static void NoteMessage(Streamed streamed, ReadOnlySpan<byte> message, Lsn lsn)
    {
        if (message.Length < 14)
        {
            throw new ReplicationProtocolException("pgoutput streamed Message too short for its flags and LSN", lsn);
        }

        var flags = (LogicalMessageFlags)message[5];
        var messageLsn = new Lsn(BinaryPrimitives.ReadUInt64BigEndian(message[6..]));
        if (flags.HasFlag(LogicalMessageFlags.Transactional) && messageLsn < streamed.FirstTransactionalMessage)
        {
            streamed.FirstTransactionalMessage = messageLsn;
        }
    }

    private static void Replay(Streamed streamed, in CommitFields commit, Lsn commitMessageLsn, IPgOutputHandler handler)
    {
        handler.OnBegin(commit.CommitLsn, commit.Timestamp, streamed.Xid, commitMessageLsn);
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            Span<byte> header = stackalloc byte[RecordHeader];
            long offset = 0;
            var end = streamed.File.Length;
            var halfway = false;
            while (offset < end)
            {
                if (end - offset < RecordHeader)
                {
                    throw streamed.File.Damaged(offset);
                }

                streamed.File.Read(offset, header);
                var length = BinaryPrimitives.ReadInt32BigEndian(header);
                var lsn = new Lsn(BinaryPrimitives.ReadUInt64BigEndian(header[4..]));
                if (length <= 0 || offset + RecordHeader + length > end)
                {
                    throw streamed.File.Damaged(offset);
                }

                if (length > buffer.Length)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = ArrayPool<byte>.Shared.Rent(length);
                }
                var message = buffer.AsSpan(0, length);
                streamed.File.Read(offset + RecordHeader, message);
                offset += RecordHeader + length;
                if (!halfway && offset * 2 >= end)
                {
                    halfway = true;
                    Diagnostics.FaultInjection.Reach(Diagnostics.FaultPoint.SpoolReplay);
                }

                // Changes of aborted subtransactions are dropped; Relation/Type messages always apply.
                if (((PgOutputMessageType)message[0]).IsChange() && streamed.AbortedSubtransactions.Contains(PgOutputDecoder.StreamXid(message, lsn)))
                {
                    continue;
                }

                PgOutputDecoder.Decode(message, lsn, handler, streamed: true);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        handler.OnCommit(commit, commitMessageLsn);
    }

    public void Dispose()
    {
        foreach (var streamed in _transactions.Values)
        {
            streamed.Dispose();
        }

        _transactions.Clear();
        _current = null;
    }

    private sealed class Streamed(uint xid, SpillFile file) : IDisposable
    {
        public uint Xid { get; } = xid;
        public SpillFile File { get; } = file;
        public HashSet<uint> AbortedSubtransactions { get; } = [];

        /// <summary>WAL position of the earliest transactional message; <see cref="Lsn.MaxValue"/> when none.</summary>
        public Lsn FirstTransactionalMessage { get; set; } = Lsn.MaxValue;

        /// <summary>WAL position of the latest subtransaction abort; <see cref="Lsn.Zero"/> when none.</summary>
        public Lsn LastSubtransactionAbort { get; set; } = Lsn.Zero;

        public void Dispose() => File.Dispose();
    }
}
