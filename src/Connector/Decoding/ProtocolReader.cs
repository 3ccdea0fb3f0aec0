using System.Buffers.Binary;
using System.Text;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Transactions;
using WalBridge.Offsets;

namespace WalBridge.Connector.Decoding;

/// <summary>
/// A bounds-checked cursor over one logical replication message (pgoutput's, or wal2arrow's framing). Every read
/// checks the remaining length first and throws <see cref="ReplicationProtocolException"/> naming the field; network
/// byte order (big-endian) throughout, as both protocols specify.
/// </summary>
internal ref struct ProtocolReader
{
    private readonly ReadOnlySpan<byte> _data;
    private readonly Lsn _lsn;
    private int _position;

    public ProtocolReader(ReadOnlySpan<byte> data, Lsn lsn)
    {
        _data = data;
        _lsn = lsn;
        _position = 0;
    }

    public readonly int Position => _position;
    public readonly int Remaining => _data.Length - _position;
    public readonly ReadOnlySpan<byte> Rest => _data[_position..];

    private readonly void Require(int count, string field)
    {
        if (count < 0 || _data.Length - _position < count)
        {
            throw new ReplicationProtocolException(
                $"replication message truncated: {field} needs {count} bytes but {_data.Length - _position} remain", _lsn);
        }
    }

    public byte ReadByte(string field)
    {
        Require(1, field);
        return _data[_position++];
    }

    public short ReadInt16(string field)
    {
        Require(2, field);
        var v = BinaryPrimitives.ReadInt16BigEndian(_data[_position..]);
        _position += 2;
        return v;
    }

    public int ReadInt32(string field)
    {
        Require(4, field);
        var v = BinaryPrimitives.ReadInt32BigEndian(_data[_position..]);
        _position += 4;
        return v;
    }

    public uint ReadUInt32(string field)
    {
        Require(4, field);
        var v = BinaryPrimitives.ReadUInt32BigEndian(_data[_position..]);
        _position += 4;
        return v;
    }

    public long ReadInt64(string field)
    {
        Require(8, field);
        var v = BinaryPrimitives.ReadInt64BigEndian(_data[_position..]);
        _position += 8;
        return v;
    }

    public Lsn ReadLsn(string field) => new((ulong)ReadInt64(field));

    /// <summary>PostgreSQL timestamps: microseconds since 2000-01-01 UTC.</summary>
    public DateTimeOffset ReadTimestamp(string field)
    {
        var micros = ReadInt64(field);
        return PostgresEpoch.AddTicks(micros * 10);
    }

    public ReadOnlySpan<byte> ReadBytes(int count, string field)
    {
        Require(count, field);
        var span = _data.Slice(_position, count);
        _position += count;
        return span;
    }

    /// <summary>A NUL-terminated string (the protocol's <c>String</c>).</summary>
    public string ReadCString(string field)
    {
        var rest = _data[_position..];
        var nul = rest.IndexOf((byte)0);
        if (nul < 0)
        {
            throw new ReplicationProtocolException($"replication message truncated: {field} has no terminating NUL", _lsn);
        }

        var text = Encoding.UTF8.GetString(rest[..nul]);
        _position += nul + 1;
        return text;
    }

    public readonly void ExpectEnd(string message)
    {
        if (_position != _data.Length)
        {
            throw new ReplicationProtocolException(
                $"{message} message has {_data.Length - _position} unexpected trailing bytes", _lsn);
        }
    }

    public static readonly DateTimeOffset PostgresEpoch = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>
    /// The fields both protocols' commit messages share, in this order: flags (must be 0), commit LSN, end LSN,
    /// commit timestamp (pgoutput's Commit and Stream Commit after its xid, wal2arrow's Commit).
    /// </summary>
    public CommitFields ReadCommit(string message)
    {
        var flags = ReadByte(message + ".flags");
        if (flags != 0)
        {
            throw new ReplicationProtocolException($"{message} has unknown flags 0x{flags:X2}", _lsn);
        }

        var commitLsn = ReadLsn(message + ".commit_lsn");
        var endLsn = ReadLsn(message + ".end_lsn");
        var timestamp = ReadTimestamp(message + ".timestamp");
        ExpectEnd(message);
        return new CommitFields(commitLsn, endLsn, timestamp);
    }
}
