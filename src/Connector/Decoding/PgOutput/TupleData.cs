using System.Buffers.Binary;
using WalBridge.Connector.Errors;
using WalBridge.Offsets;

namespace WalBridge.Connector.Decoding.PgOutput;

/// <summary>How one column of a pgoutput tuple is given.</summary>
internal enum TupleValueKind : byte
{
    Null = (byte)'n',
    UnchangedToast = (byte)'u',
    Text = (byte)'t',
    Binary = (byte)'b',
}

/// <summary>
/// One pgoutput <c>TupleData</c>, already validated and measured: enumerating it cannot run past
/// its end. The spans it yields point into the message buffer and are valid only until the next
/// message is read.
/// </summary>
internal ref struct TupleData
{
    private readonly ReadOnlySpan<byte> _data;
    private int _position;
    private int _remaining;

    private TupleData(ReadOnlySpan<byte> data, int columnCount)
    {
        _data = data;
        _position = 2;
        _remaining = columnCount;
        ColumnCount = columnCount;
    }

    public int ColumnCount { get; }

    /// <summary>
    /// Validates the tuple at the start of <paramref name="data"/> and returns it with its byte length.
    /// </summary>
    public static TupleData Parse(ReadOnlySpan<byte> data, Lsn lsn, out int length)
    {
        if (data.Length < 2)
        {
            throw new ReplicationProtocolException("pgoutput TupleData truncated: no column count", lsn);
        }

        int count = BinaryPrimitives.ReadInt16BigEndian(data);
        if (count < 0)
        {
            throw new ReplicationProtocolException($"pgoutput TupleData has a negative column count {count}", lsn);
        }

        var position = 2;
        for (var i = 0; i < count; i++)
        {
            if (position >= data.Length)
            {
                throw new ReplicationProtocolException($"pgoutput TupleData truncated at column {i + 1} of {count}", lsn);
            }

            var kind = data[position++];
            switch ((TupleValueKind)kind)
            {
                case TupleValueKind.Null:
                case TupleValueKind.UnchangedToast:
                    break;
                case TupleValueKind.Text:
                case TupleValueKind.Binary:
                    if (data.Length - position < 4)
                    {
                        throw new ReplicationProtocolException($"pgoutput TupleData truncated in the length of column {i + 1}", lsn);
                    }

                    var valueLength = BinaryPrimitives.ReadInt32BigEndian(data[position..]);
                    position += 4;
                    if (valueLength < 0 || data.Length - position < valueLength)
                    {
                        throw new ReplicationProtocolException(
                            $"pgoutput TupleData column {i + 1} declares {valueLength} bytes but {data.Length - position} remain", lsn);
                    }

                    position += valueLength;
                    break;
                default:
                    throw new ReplicationProtocolException($"pgoutput TupleData column {i + 1} has unknown kind byte 0x{kind:X2}", lsn);
            }
        }
        length = position;
        return new TupleData(data[..position], count);
    }

    /// <summary>Reads the next column; false after the last.</summary>
    public bool MoveNext(out TupleValueKind kind, out ReadOnlySpan<byte> value)
    {
        if (_remaining == 0)
        {
            kind = default;
            value = default;
            return false;
        }
        _remaining--;
        kind = (TupleValueKind)_data[_position++];
        if (kind is TupleValueKind.Text or TupleValueKind.Binary)
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(_data[_position..]);
            _position += 4;
            value = _data.Slice(_position, length);
            _position += length;
        }
        else
        {
            value = default;
        }
        return true;
    }
}
