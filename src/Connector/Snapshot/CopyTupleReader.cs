using System.Buffers;
using System.Buffers.Binary;
using WalBridge.Connector.Errors;
using WalBridge.Offsets;

namespace WalBridge.Connector.Snapshot;

/// <summary>
/// Reads the rows of a <c>COPY … TO STDOUT (FORMAT binary)</c> stream and hands each one over as a pgoutput TupleData
/// image (column count, then per column <c>n</c>, or <c>b</c>/<c>t</c> with length and bytes), so snapshot rows take
/// exactly the path streamed rows take through <see cref="Decoding.PgOutput.PgOutputBatcher"/>. A column whose type
/// is kept as PostgreSQL's text is selected as <c>col::text</c>, whose binary form is that text (kind <c>t</c>).
/// </summary>
/// <remarks>
/// Written by hand because Npgsql's binary exporter decodes every value into a .NET object, while the Arrow builders
/// take the raw send-format bytes (the binary COPY format carries exactly what pgoutput's binary tuples carry). Not
/// thread-safe. Buffers are rented from <see cref="ArrayPool{T}.Shared"/> and returned by <see cref="Dispose"/>; the
/// span a <see cref="TryNext"/> returns is valid until the next call.
/// </remarks>
internal sealed class CopyTupleReader : IDisposable
{
    /// <summary>The binary COPY signature: <c>PGCOPY\n\377\r\n\0</c>.</summary>
    private static readonly byte[] s_signature = [(byte)'P', (byte)'G', (byte)'C', (byte)'O', (byte)'P', (byte)'Y', (byte)'\n', 0xFF, (byte)'\r', (byte)'\n', 0];
    private readonly Stream _stream;
    private readonly bool[] _text;
    private readonly int _columns;
    private readonly string _table;
    private readonly Lsn _lsn;
    private byte[] _input = ArrayPool<byte>.Shared.Rent(1 << 20);
    private byte[] _output = ArrayPool<byte>.Shared.Rent(1 << 16);
    private int _start;
    private int _end;
    private bool _headerRead;
    private bool _eof;

    /// <param name="stream">The COPY data (Npgsql's raw copy stream).</param>
    /// <param name="text">Per column: whether it is selected as text (kind <c>t</c>; else its binary send format, kind <c>b</c>).</param>
    /// <param name="table">Names the table in errors.</param>
    /// <param name="lsn">Names the snapshot's LSN in errors.</param>
    /// <param name="trailing">Columns after the table's that are text and not part of the row (an incremental snapshot's key texts, <see cref="TrailingText"/>).</param>
    public CopyTupleReader(Stream stream, bool[] text, string table, Lsn lsn, int trailing = 0)
    {
        _stream = stream;
        _text = text;
        _columns = text.Length;
        _trailing = trailing;
        _trailingText = new string?[trailing];
        _table = table;
        _lsn = lsn;
    }

    private readonly int _trailing;
    private readonly string?[] _trailingText;

    /// <summary>The trailing columns' text of the row <see cref="TryNext"/> returned last (a new array per call).</summary>
    public string?[] TrailingText() => (string?[])_trailingText.Clone();

    /// <summary>Whether the stream's trailer was read.</summary>
    public bool Ended { get; private set; }

    /// <summary>Receives one row's TupleData image (valid only during the call).</summary>
    public delegate void RowHandler(ReadOnlySpan<byte> tuple);

    /// <summary>
    /// Reads the whole stream, handing each row to <paramref name="onRow"/> and each run of rows buffered together to
    /// <paramref name="onRows"/> (their count, for progress); returns the rows.
    /// </summary>
    /// <exception cref="ReplicationProtocolException">The COPY data is malformed or ends without its trailer.</exception>
    public async Task<long> ReadAllAsync(RowHandler onRow, Action<long>? onRows, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(onRow);
        long rows = 0;
        while (true)
        {
            var drained = Drain(onRow);
            rows += drained;
            onRows?.Invoke(drained);
            if (Ended)
            {
                return rows;
            }

            if (!await FillAsync(cancellationToken))
            {
                drained = Drain(onRow);
                rows += drained;
                onRows?.Invoke(drained);
                return Ended ? rows : throw Malformed("ended without its trailer");
            }
        }
    }

    /// <summary>Hands every complete row in the buffer over (synchronously: the spans live only during the call).</summary>
    private long Drain(RowHandler onRow)
    {
        long rows = 0;
        while (TryNext(out var tuple))
        {
            onRow(tuple);
            rows++;
        }

        return rows;
    }

    /// <summary>Below this much buffered input a fill keeps reading while reads complete without waiting.</summary>
    private const int FillTarget = 256 * 1024;

    /// <summary>
    /// Reads more of the stream; false at its end. Keeps reading while the reads complete at once (Npgsql serves them
    /// from its buffer, one row each) until <see cref="FillTarget"/> bytes are buffered, so rows are drained in runs
    /// rather than one per read; it waits for at most one read.
    /// </summary>
    public async ValueTask<bool> FillAsync(CancellationToken cancellationToken)
    {
        if (_eof)
        {
            return false;
        }

        if (_start > 0)
        {
            Buffer.BlockCopy(_input, _start, _input, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }

        if (_end == _input.Length)
        {
            // One row larger than the buffer: grow (the record limit bounds what a row may be).
            var larger = ArrayPool<byte>.Shared.Rent(_input.Length * 2);
            Buffer.BlockCopy(_input, 0, larger, 0, _end);
            ArrayPool<byte>.Shared.Return(_input);
            _input = larger;
        }

        var any = false;
        while (true)
        {
            var pending = _stream.ReadAsync(_input.AsMemory(_end), cancellationToken);
            var waited = !pending.IsCompleted;
            var read = await pending;
            if (read == 0)
            {
                _eof = true;
                return any;
            }

            _end += read;
            any = true;
            if (waited || _end >= FillTarget || _end == _input.Length)
            {
                return true;
            }
        }
    }

    /// <summary>The next complete row as a TupleData image, or false when more input is needed (or the stream ended).</summary>
    /// <exception cref="ReplicationProtocolException">The COPY data is malformed.</exception>
    public bool TryNext(out ReadOnlySpan<byte> tuple)
    {
        tuple = default;
        var data = _input.AsSpan(_start, _end - _start);
        if (!_headerRead)
        {
            // Signature (11 bytes), flags (int32), header extension length (int32) and the extension.
            if (data.Length < 19)
            {
                return false;
            }

            if (!data[..11].SequenceEqual(s_signature))
            {
                throw Malformed("does not start with the binary COPY signature");
            }

            var extension = BinaryPrimitives.ReadInt32BigEndian(data[15..]);
            if (extension < 0 || data.Length < 19 + extension)
            {
                if (extension < 0)
                {
                    throw Malformed($"has a negative header extension length {extension}");
                }

                return false;
            }

            _start += 19 + extension;
            _headerRead = true;
            data = data[(19 + extension)..];
        }

        if (data.Length < 2)
        {
            return false;
        }

        int count = BinaryPrimitives.ReadInt16BigEndian(data);
        if (count == -1)
        {
            Ended = true;
            _start += 2;
            return false;
        }

        if (count != _columns + _trailing)
        {
            throw Malformed($"has a row of {count} columns, {_columns + _trailing} expected");
        }

        // Input per column: int32 length (-1 null) + bytes; output: kind byte (+ int32 length + bytes).
        var position = 2;
        var outputLength = 2;
        for (var i = 0; i < count; i++)
        {
            if (data.Length < position + 4)
            {
                return false;
            }

            var length = BinaryPrimitives.ReadInt32BigEndian(data[position..]);
            position += 4;
            if (length < -1)
            {
                throw Malformed($"has a negative length {length} in column {i + 1}");
            }

            if (length > 0)
            {
                if (data.Length - position < length)
                {
                    return false;
                }

                position += length;
            }

            outputLength += length < 0 ? 1 : 5 + length;
        }

        EnsureOutput(outputLength);
        var output = _output.AsSpan();
        BinaryPrimitives.WriteInt16BigEndian(output, (short)_columns);
        var read = 2;
        var written = 2;
        for (var i = 0; i < count; i++)
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(data[read..]);
            read += 4;
            if (i >= _columns)
            {
                _trailingText[i - _columns] = length < 0 ? null : System.Text.Encoding.UTF8.GetString(data.Slice(read, length));
                read += Math.Max(0, length);
                continue;
            }

            if (length < 0)
            {
                output[written++] = (byte)'n';
                continue;
            }

            output[written] = _text[i] ? (byte)'t' : (byte)'b';
            BinaryPrimitives.WriteInt32BigEndian(output[(written + 1)..], length);
            data.Slice(read, length).CopyTo(output[(written + 5)..]);
            read += length;
            written += 5 + length;
        }

        _start += position;
        tuple = output[..written];
        return true;
    }

    private void EnsureOutput(int length)
    {
        if (_output.Length < length)
        {
            ArrayPool<byte>.Shared.Return(_output);
            _output = ArrayPool<byte>.Shared.Rent(length);
        }
    }

    private ReplicationProtocolException Malformed(string what) =>
        new($"The snapshot COPY data of {_table} {what}", _lsn);

    public void Dispose()
    {
        ArrayPool<byte>.Shared.Return(_input);
        ArrayPool<byte>.Shared.Return(_output);
        _input = [];
        _output = [];
    }
}
