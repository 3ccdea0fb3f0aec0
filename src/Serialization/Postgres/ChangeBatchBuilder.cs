using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Unicode;
using Apache.Arrow;
using Apache.Arrow.Types;
using WalBridge.Serialization.Columns;
using WalBridge.Serialization.Payload;

namespace WalBridge.Serialization.Postgres;

/// <summary>
/// Accumulates the rows of ONE (source transaction, table) and writes them as one Arrow IPC stream, or as one record
/// batch message of a stream whose schema message is <see cref="SchemaMessage"/>.
/// Not thread-safe; reusable after <see cref="WriteStream"/>/<see cref="WriteRecordBatch"/>/<see cref="Clear"/> (keeps its buffers).
/// </summary>
/// <remarks>
/// <para>Columns (see docs/format.md): <c>_op</c> (utf8, not null), <c>_lsn</c> (uint64, not null), the table's
/// columns (nullable, new row; for a delete the old key/row), <c>_before</c> (nullable struct of the table's
/// columns: the old row when PostgreSQL sent one), <c>_unchanged</c> (nullable list&lt;utf8&gt;: names of the
/// columns whose unchanged TOAST value PostgreSQL did not send, <c>_before.</c>-prefixed for the old row;
/// null when every value was sent). Such columns hold null in the value column. <c>_special</c> (nullable
/// map&lt;utf8, utf8&gt;): for values the column's Arrow type cannot hold (numeric NaN/±Infinity in a decimal,
/// ±infinity or out-of-range dates/timestamps, intervals beyond int64 nanoseconds, multi-dimensional arrays, arrays with
/// a lower bound other than 1, such values as array elements), the column name (<c>_before.</c>-prefixed for the old
/// row) mapped to PostgreSQL's exact text of the value; the value column holds null. Null when the row has none.</para>
/// <para>Row protocol: <see cref="BeginRow"/>, one append per table column in attribute order, optionally
/// <see cref="BeginBefore"/> and one append per column of the old row, then <see cref="EndRow"/>. If an append
/// throws (<see cref="PgValueFormatException"/>) or <see cref="EndRow"/> finds a wrong column count, the current
/// row is discarded and the builder is back in the state after the previous <see cref="EndRow"/>.</para>
/// <para>Memory: values go into buffers rented from <see cref="ArrayPool{T}.Shared"/>; they are kept across
/// batches and returned by <see cref="Dispose"/>. Appending a row does not allocate once the buffers have grown.</para>
/// <para>Encoding: the schema is an Apache.Arrow <see cref="Apache.Arrow.Schema"/>; writing hands the buffers to Apache.Arrow
/// as zero-copy arrays of a <see cref="RecordBatch"/> and Apache.Arrow's <c>ArrowStreamWriter</c> encodes the messages
/// (see <see cref="ArrowMessageWriter"/>).</para>
/// </remarks>
public sealed class ChangeBatchBuilder : IDisposable
{
    public const string OpColumn = "_op";
    public const string LsnColumn = "_lsn";
    public const string XidColumn = "_xid";
    public const string CommitLsnColumn = "_commit_lsn";
    public const string CommitTimestampColumn = "_commit_ts";

    /// <summary>The <c>_special</c> key of a truncate row (<c>_op = t</c>): the TRUNCATE's options.</summary>
    public const string TruncateOptionsKey = "_truncate";

    /// <summary>Columns before the table's own: <c>_op</c>, <c>_lsn</c>, <c>_xid</c>, <c>_commit_lsn</c>, <c>_commit_ts</c>.</summary>
    public const int LeadingColumns = 5;
    public const string BeforeColumn = "_before";
    public const string UnchangedColumn = "_unchanged";
    public const string SpecialColumn = "_special";

    private static readonly byte[][] OpBytes = CreateOpBytes();

    private readonly UnparsedTextPolicy _unparsedText;
    private readonly PgColumnType[] _types;
    private readonly string[] _names;
    private readonly ArrayBuilder[] _values;
    private readonly ArrayBuilder[] _beforeValues;
    private readonly VarBinaryBuilder _op;
    private readonly FixedWidthBuilder _lsn;
    private readonly FixedWidthBuilder _xid;
    private readonly FixedWidthBuilder _commitLsn;
    private readonly FixedWidthBuilder _commitTimestamp;
    private static readonly byte[] TruncateKeyUtf8 = Encoding.UTF8.GetBytes(TruncateOptionsKey);
    private readonly StructBuilder _before;
    private readonly ListBuilder _unchanged;
    private readonly VarBinaryBuilder _unchangedNames;
    private readonly byte[][] _nameUtf8;
    private readonly byte[][] _beforeNameUtf8;
    private readonly ArrowMessageWriter _messages;
    private readonly IArrowArray[] _columns;
    private readonly int _batchMetadataUpperBound;
    private readonly int[] _unchangedColumns;
    private readonly ListBuilder _special;
    private readonly StructBuilder _specialEntries;
    private readonly VarBinaryBuilder _specialKeys;
    private readonly VarBinaryBuilder _specialValues;
    private readonly PooledBuffer _specialText = new();
    /// <summary>The body buffers' total length (not <see cref="_specialText"/>, a scratch buffer).</summary>
    private readonly ByteMeter _bodyMeter = new();
    private readonly ArrayBufferWriter<byte> _measure = new(1024);
    private readonly int[] _specialColumns;
    private readonly int[] _specialEnds;
    private int _specialCount;
    private int _unchangedCount;
    private bool _rowOpen;
    private bool _inBefore;
    private int _column;
    private ChangeOp _rowOp;
    private ulong _rowLsn;
    private uint _transactionXid;
    private ulong _transactionCommitLsn;
    private long _transactionCommitMicros;
    private bool _disposed;

    /// <param name="relation">The table.</param>
    /// <param name="unparsedText">What <see cref="AppendValue"/> does with a text value the parser does not take.</param>
    /// <param name="compression">Body compression of the record batches written (<c>arrow.compression</c>).</param>
    public ChangeBatchBuilder(PgRelation relation, UnparsedTextPolicy unparsedText = UnparsedTextPolicy.Throw, ArrowCompression compression = ArrowCompression.None)
    {
        ArgumentNullException.ThrowIfNull(relation);
        Relation = relation;
        _unparsedText = unparsedText;
        var n = relation.Columns.Count;
        _types = new PgColumnType[n];
        _names = new string[n];
        var tableFields = new Field[n];
        for (var i = 0; i < n; i++)
        {
            var column = relation.Columns[i];
            _types[i] = PgTypeMapping.Resolve(column);
            _names[i] = column.Name;
            tableFields[i] = _types[i].CreateField(column.Name);
        }

        if (n == 0)
        {
            // Apache.Arrow cannot represent a struct without members (its StructType requires at least one field).
            throw new NotSupportedException($"Table {relation.Schema}.{relation.Table} has no columns: its _before struct would have no members, which Apache.Arrow cannot represent.");
        }

        var fields = new List<Field>(n + LeadingColumns + 3)
        {
            new(OpColumn, StringType.Default, nullable: false),
            new(LsnColumn, UInt64Type.Default, nullable: false),
            new(XidColumn, UInt32Type.Default, nullable: false),
            new(CommitLsnColumn, UInt64Type.Default, nullable: false),
            new(CommitTimestampColumn, new TimestampType(TimeUnit.Microsecond, "UTC"), nullable: false),
        };
        fields.AddRange(tableFields);
        var beforeField = new Field(BeforeColumn, new StructType(tableFields), nullable: true);
        var unchangedField = new Field(UnchangedColumn, new ListType(new Field("item", StringType.Default, nullable: false)), nullable: true);
        var specialField = new Field(SpecialColumn, new MapType(
            new Field("key", StringType.Default, nullable: false),
            new Field("value", StringType.Default, nullable: true),
            keySorted: false), nullable: true);
        fields.Add(beforeField);
        fields.Add(unchangedField);
        fields.Add(specialField);

        var primaryKey = string.Join(",", relation.Columns.Where(c => c.IsKey).Select(c => c.Name));
        Schema = new Schema(fields,
        [
            new("pg.schema", relation.Schema),
            new("pg.table", relation.Table),
            new("pg.relid", relation.RelationId.ToString(CultureInfo.InvariantCulture)),
            new("pg.replica_identity", relation.ReplicaIdentity.ToString()),
            new("pg.primary_key", primaryKey),
        ]);

        _op = new VarBinaryBuilder(fields[0]);
        _lsn = new FixedWidthBuilder(fields[1], 8);
        _xid = new FixedWidthBuilder(fields[2], 4);
        _commitLsn = new FixedWidthBuilder(fields[3], 8);
        _commitTimestamp = new FixedWidthBuilder(fields[4], 8);
        _values = tableFields.Select(BuilderFactory.Create).ToArray();
        _before = (StructBuilder)BuilderFactory.Create(beforeField);
        _beforeValues = _before.Children.ToArray();
        _unchanged = (ListBuilder)BuilderFactory.Create(unchangedField);
        _unchangedNames = (VarBinaryBuilder)_unchanged.Values;
        _nameUtf8 = _names.Select(Encoding.UTF8.GetBytes).ToArray();
        _beforeNameUtf8 = _names.Select(name => Encoding.UTF8.GetBytes(BeforeColumn + "." + name)).ToArray();
        _unchangedColumns = new int[2 * n];
        _special = (ListBuilder)BuilderFactory.Create(specialField);
        _specialEntries = (StructBuilder)_special.Values;
        _specialKeys = (VarBinaryBuilder)_specialEntries.Children[0];
        _specialValues = (VarBinaryBuilder)_specialEntries.Children[1];
        _specialColumns = new int[2 * n];
        _specialEnds = new int[2 * n];
        _columns = new IArrowArray[fields.Count];
        foreach (var builder in (ArrayBuilder[])[_op, _lsn, _xid, _commitLsn, _commitTimestamp, .. _values, _before, _unchanged, _special])
        {
            builder.Attach(_bodyMeter);
        }

        _messages = new ArrowMessageWriter(Schema, compression);
        SchemaFingerprint = Payload.SchemaFingerprint.Compute(Schema);

        // The record batch metadata does not depend on the values, only on the layout and on two integers (the row count,
        // absent from the flatbuffer while it is 0, and the body length): the empty batch's message plus room for both.
        var empty = new ArrayBufferWriter<byte>(1024);
        _batchMetadataUpperBound = _messages.WriteRecordBatch(empty, BuildRecordBatch()) + BatchMetadataSlack;
    }

    /// <summary>Room for the row count and body length fields (8 bytes each) and their alignment in the batch metadata.</summary>
    private const int BatchMetadataSlack = 32;

    public PgRelation Relation { get; }

    /// <summary>The Apache.Arrow schema of the payload (docs/format.md): columns, types, nullability, field and schema metadata.</summary>
    public Schema Schema { get; }

    /// <summary>The encoded schema message (framing included) as Apache.Arrow writes it; encoded once per builder.</summary>
    public ReadOnlyMemory<byte> SchemaMessage => _messages.SchemaMessage;

    /// <summary>
    /// The schema fingerprint (<see cref="Payload.SchemaFingerprint"/>): first 16 hex digits of the SHA-256 of the schema's
    /// canonical text; changes exactly when the Arrow schema (fields, types, nullability, metadata) changes.
    /// </summary>
    public string SchemaFingerprint { get; }

    /// <summary>Number of completed rows.</summary>
    public int RowCount { get; private set; }

    /// <summary>
    /// An upper bound of the size in bytes of the stream <see cref="WriteStream"/> would write now (completed rows only).
    /// O(1): every column buffer counts its growth into one meter as rows are appended, so the per-row size check does
    /// not walk the columns.
    /// </summary>
    /// <remarks>With compression the bound is that of the uncompressed body plus what a codec may add (see
    /// <see cref="CompressionSlack"/>): chunks are cut by it, so a compressed record is at most as large as an
    /// uncompressed one would be, usually much smaller.</remarks>
    public long EstimatedSize =>
        _messages.SchemaMessage.Length + _batchMetadataUpperBound + _bodyMeter.PaddedBytes + ArrowMessageWriter.EndOfStream.Length +
        (_messages.Compression == ArrowCompression.None ? 0 : CompressionSlack(_bodyMeter.Bytes, _bodyMeter.Buffers));

    /// <summary>
    /// What body compression may add to <paramref name="bytes"/> in <paramref name="buffers"/> buffers at most: each
    /// compressed buffer starts with its 8-byte uncompressed length, and incompressible data may grow by a frame header
    /// and per-block overhead (LZ4 frame: 19 bytes and 4 per 64 KB block; Zstandard: about 1/256 and a few bytes per
    /// block). Generous: an overestimate only cuts chunks a little early.
    /// </summary>
    private static long CompressionSlack(long bytes, int buffers) => (buffers * 64L) + (bytes / 128) + 64;

    /// <summary>Body compression of the record batches written.</summary>
    public ArrowCompression Compression => _messages.Compression;

    /// <summary>
    /// The source transaction the following rows belong to: its id, commit LSN and commit time (microseconds since
    /// 1970-01-01 UTC), stored in <c>_xid</c>, <c>_commit_lsn</c> and <c>_commit_ts</c> of every row until the next call.
    /// Rows of several transactions may share one batch; each row says which transaction it belongs to.
    /// </summary>
    public void SetTransaction(uint xid, ulong commitLsn, long commitMicrosSinceUnixEpoch)
    {
        _transactionXid = xid;
        _transactionCommitLsn = commitLsn;
        _transactionCommitMicros = commitMicrosSinceUnixEpoch;
    }

    /// <summary>
    /// Appends a truncate row (<c>_op = t</c>) of the current transaction: every table column null, <c>_before</c> and
    /// <c>_unchanged</c> null, and <c>_special</c> holding <see cref="TruncateOptionsKey"/> → the options
    /// (<paramref name="options"/>: <c>cascade</c>, <c>restart_identity</c>, both comma-separated, or empty).
    /// </summary>
    public void AppendTruncateRow(ulong lsn, ReadOnlySpan<byte> options)
    {
        BeginRow(ChangeOp.Truncate, lsn);
        foreach (var builder in _values)
        {
            builder.AppendNull();
        }

        _column = _values.Length;
        _before.AppendNull();
        AppendRowTail();
        _unchanged.AppendNull();
        _specialKeys.Append(TruncateKeyUtf8);
        _specialValues.Append(options);
        _specialEntries.AppendValid();
        _special.EndList();
        RowCount++;
        _rowOpen = false;
    }

    /// <summary>Starts a row. Throws <see cref="InvalidOperationException"/> if a row is already open.</summary>
    public void BeginRow(ChangeOp op, ulong lsn)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_rowOpen)
        {
            throw new InvalidOperationException("BeginRow called while a row is open; call EndRow first.");
        }

        if (op is not (ChangeOp.Insert or ChangeOp.Update or ChangeOp.Delete or ChangeOp.Read or ChangeOp.Truncate))
        {
            throw new ArgumentOutOfRangeException(nameof(op), op, "Unknown change operation.");
        }

        _rowOpen = true;
        _inBefore = false;
        _column = 0;
        _rowOp = op;
        _rowLsn = lsn;
        _unchangedCount = 0;
        _specialCount = 0;
        _specialText.Truncate(0);
    }

    private ArrayBuilder NextBuilder()
    {
        if (!_rowOpen)
        {
            throw new InvalidOperationException("No row is open; call BeginRow first.");
        }

        if (_column >= _values.Length)
        {
            var columns = _values.Length;
            AbortRow();
            throw new InvalidOperationException($"Table {Relation.Schema}.{Relation.Table} has {columns} columns; too many values appended (row discarded).");
        }

        return _inBefore ? _beforeValues[_column] : _values[_column];
    }

    /// <summary>The next column of the current row is SQL NULL.</summary>
    public void AppendNull()
    {
        NextBuilder().AppendNull();
        _column++;
    }

    /// <summary>The next column is an unchanged TOAST value PostgreSQL did not send: null in the value column, named in <c>_unchanged</c>.</summary>
    public void AppendUnchangedToast()
    {
        NextBuilder().AppendNull();
        _unchangedColumns[_unchangedCount++] = _inBefore ? _values.Length + _column : _column;
        _column++;
    }

    /// <summary>
    /// The next column's value in pgoutput text (UTF-8) or binary form. A value the column's Arrow type cannot hold is
    /// stored as null with its exact PostgreSQL text in <c>_special</c>. Text the parser does not take is, under
    /// <see cref="UnparsedTextPolicy.KeepAsSpecialText"/>, kept the same way (counted in <see cref="TextFallbacks"/>);
    /// otherwise, and for malformed binary input, <see cref="PgValueFormatException"/> is thrown and the row is discarded.
    /// </summary>
    public void AppendValue(ReadOnlySpan<byte> value, TupleFormat format)
    {
        var builder = NextBuilder();
        var specialTextLength = _specialText.Length;
        try
        {
            if (!PgValueParser.Append(builder, _types[_column], _names[_column], value, format, _specialText))
            {
                builder.AppendNull();
                AddSpecial();
            }
        }
        catch (PgValueFormatException e) when (_unparsedText == UnparsedTextPolicy.KeepAsSpecialText && format == TupleFormat.Text && Utf8.IsValid(value))
        {
            // PostgreSQL's output function printed this text, so it is a valid value of its type in a form the parser
            // does not take. It is kept losslessly, as that exact text in _special, instead of stopping the stream
            // for good; the caller learns of it through TextFallbacks and reports it.
            builder.Truncate(RowCount);
            _specialText.Truncate(specialTextLength);
            value.CopyTo(_specialText.Append(value.Length));
            builder.AppendNull();
            AddSpecial();
            TextFallbacks++;
            LastTextFallback = e.Message;
        }
        catch
        {
            AbortRow();
            throw;
        }

        _column++;
    }

    private void AddSpecial()
    {
        _specialColumns[_specialCount] = _inBefore ? _values.Length + _column : _column;
        _specialEnds[_specialCount++] = _specialText.Length;
    }

    /// <summary>
    /// How many text values the parser did not take since the builder was created: each was kept as PostgreSQL's exact
    /// text in <c>_special</c> (null in its column) instead of its Arrow type. Should stay 0; a change means a form of
    /// a value the parser does not know, see <see cref="LastTextFallback"/>.
    /// </summary>
    public int TextFallbacks { get; private set; }

    /// <summary>Why the latest value counted in <see cref="TextFallbacks"/> was kept as text (column, type, value, problem).</summary>
    public string? LastTextFallback { get; private set; }

    /// <summary>After all new-row columns: the old row follows, in the same column order, for <c>_before</c>.</summary>
    public void BeginBefore()
    {
        if (!_rowOpen || _inBefore)
        {
            throw new InvalidOperationException("BeginBefore needs an open row and may be called once per row.");
        }

        if (_column != _values.Length)
        {
            var got = _column;
            AbortRow();
            throw new InvalidOperationException($"BeginBefore after {got} of {_values.Length} columns of {Relation.Schema}.{Relation.Table} (row discarded).");
        }

        _inBefore = true;
        _column = 0;
    }

    /// <summary>Completes the row. Throws <see cref="InvalidOperationException"/> (and discards the row) if the wrong number of columns was appended.</summary>
    public void EndRow()
    {
        if (!_rowOpen)
        {
            throw new InvalidOperationException("No row is open; call BeginRow first.");
        }

        if (_column != _values.Length)
        {
            var got = _column;
            var before = _inBefore;
            AbortRow();
            throw new InvalidOperationException($"Row of {Relation.Schema}.{Relation.Table} has {got} {(before ? "old-row " : "")}values, expected {_values.Length} (row discarded).");
        }

        if (_inBefore)
        {
            _before.AppendValid();
        }
        else
        {
            _before.AppendNull();
        }

        AppendRowTail();
        if (_unchangedCount == 0)
        {
            _unchanged.AppendNull();
        }
        else
        {
            for (var i = 0; i < _unchangedCount; i++)
            {
                var c = _unchangedColumns[i];
                _unchangedNames.Append(c < _values.Length ? _nameUtf8[c] : _beforeNameUtf8[c - _values.Length]);
            }

            _unchanged.EndList();
        }

        if (_specialCount == 0)
        {
            _special.AppendNull();
        }
        else
        {
            var start = 0;
            for (var i = 0; i < _specialCount; i++)
            {
                var c = _specialColumns[i];
                _specialKeys.Append(c < _values.Length ? _nameUtf8[c] : _beforeNameUtf8[c - _values.Length]);
                _specialValues.Append(_specialText.Span[start.._specialEnds[i]]);
                _specialEntries.AppendValid();
                start = _specialEnds[i];
            }

            _special.EndList();
            _specialCount = 0;
        }

        RowCount++;
        _rowOpen = false;
        _inBefore = false;
    }

    /// <summary>The row's own leading columns: operation, LSN and its transaction.</summary>
    private void AppendRowTail()
    {
        _op.Append(OpBytes[(byte)_rowOp]);
        _lsn.AppendInt64(unchecked((long)_rowLsn));
        BinaryPrimitives.WriteUInt32LittleEndian(_xid.AppendValue(), _transactionXid);
        _commitLsn.AppendInt64(unchecked((long)_transactionCommitLsn));
        _commitTimestamp.AppendInt64(_transactionCommitMicros);
    }

    /// <summary>
    /// Removes the last completed row, as if it had never been appended: the builder is back in the state after the
    /// previous <see cref="EndRow"/>. Used to cut a chunk just before the row that made it too large. Throws if no row
    /// is complete or a row is open.
    /// </summary>
    public void RemoveLastRow()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_rowOpen || RowCount == 0)
        {
            throw new InvalidOperationException("RemoveLastRow needs at least one completed row and no open row.");
        }

        var length = RowCount - 1;
        _op.Truncate(length);
        _lsn.Truncate(length);
        _xid.Truncate(length);
        _commitLsn.Truncate(length);
        _commitTimestamp.Truncate(length);
        foreach (var builder in _values)
        {
            builder.Truncate(length);
        }

        _before.Truncate(length);
        _unchanged.Truncate(length);
        _special.Truncate(length);
        RowCount = length;
    }

    private void AbortRow()
    {
        // Always truncate: a list column may hold elements of an unfinished list without a new slot.
        foreach (var builder in _values)
        {
            builder.Truncate(RowCount);
        }

        foreach (var builder in _beforeValues)
        {
            builder.Truncate(RowCount);
        }

        _rowOpen = false;
        _inBefore = false;
        _column = 0;
        _unchangedCount = 0;
        _specialCount = 0;
    }

    /// <summary>
    /// Writes the schema message, one record batch holding the completed rows, and the end-of-stream marker;
    /// returns the number of bytes written, then clears the rows. Throws if a row is open.
    /// </summary>
    public int WriteStream(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        CheckWritable();
        var written = _messages.WriteStream(output, BuildRecordBatch());
        System.Array.Clear(_columns);
        Clear();
        return written;
    }

    /// <summary>
    /// Writes the completed rows as one framed record batch message (continuation marker, metadata length, flatbuffer,
    /// body) without the schema message, returns the number of bytes written, then clears the rows. After
    /// <see cref="SchemaMessage"/>, any number of such messages and <see cref="ArrowMessageWriter.EndOfStream"/> form one
    /// valid stream. Throws if a row is open.
    /// </summary>
    public int WriteRecordBatch(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        CheckWritable();
        var written = _messages.WriteRecordBatch(output, BuildRecordBatch());
        System.Array.Clear(_columns);
        Clear();
        return written;
    }

    /// <summary>The size of the record batch message <see cref="WriteRecordBatch"/> would write now, without clearing the rows.</summary>
    public int MeasureRecordBatch()
    {
        CheckWritable();
        _measure.ResetWrittenCount();
        var written = _messages.WriteRecordBatch(_measure, BuildRecordBatch());
        System.Array.Clear(_columns);
        return written;
    }

    private void CheckWritable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_rowOpen)
        {
            throw new InvalidOperationException("Cannot write while a row is open.");
        }
    }

    /// <summary>
    /// The completed rows as an Apache.Arrow record batch whose arrays view this builder's buffers: valid until the next
    /// append, removal, write, clear or dispose.
    /// </summary>
    internal RecordBatch BuildRecordBatch()
    {
        var c = 0;
        _columns[c++] = _op.Build();
        _columns[c++] = _lsn.Build();
        _columns[c++] = _xid.Build();
        _columns[c++] = _commitLsn.Build();
        _columns[c++] = _commitTimestamp.Build();
        foreach (var builder in _values)
        {
            _columns[c++] = builder.Build();
        }

        _columns[c++] = _before.Build();
        _columns[c++] = _unchanged.Build();
        _columns[c] = _special.Build();
        return new RecordBatch(Schema, _columns, RowCount);
    }

    /// <summary>Drops all rows (and an open row), keeping the buffers for reuse.</summary>
    public void Clear()
    {
        _op.Clear();
        _lsn.Clear();
        _xid.Clear();
        _commitLsn.Clear();
        _commitTimestamp.Clear();
        foreach (var builder in _values)
        {
            builder.Clear();
        }

        _before.Clear();
        _unchanged.Clear();
        _special.Clear();
        RowCount = 0;
        _rowOpen = false;
        _inBefore = false;
        _column = 0;
        _unchangedCount = 0;
        _specialCount = 0;
    }

    /// <summary>Returns the pooled buffers. The builder cannot be used afterwards.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _op.Dispose();
        _lsn.Dispose();
        _xid.Dispose();
        _commitLsn.Dispose();
        _commitTimestamp.Dispose();
        foreach (var builder in _values)
        {
            builder.Dispose();
        }

        _before.Dispose();
        _unchanged.Dispose();
        _special.Dispose();
        _specialText.Dispose();
        _messages.Dispose();
    }

    private static byte[][] CreateOpBytes()
    {
        var result = new byte[256][];
        foreach (var op in Enum.GetValues<ChangeOp>())
        {
            result[(byte)op] = [(byte)op];
        }

        return result;
    }
}

/// <summary>What a <see cref="ChangeBatchBuilder"/> does with a text value its type's parser does not take.</summary>
public enum UnparsedTextPolicy
{
    /// <summary>Throw <see cref="PgValueFormatException"/> and discard the row (strict: for tests and tools).</summary>
    Throw,

    /// <summary>
    /// Keep it losslessly: null in its column and its exact text in <c>_special</c>. For a replication stream, where the
    /// text was printed by PostgreSQL's own output function and so is a valid value of its type: one unusual value must
    /// never stop the stream for good.
    /// </summary>
    KeepAsSpecialText,
}
