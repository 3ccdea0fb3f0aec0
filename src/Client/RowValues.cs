using System.Data.SqlTypes;
using Apache.Arrow;
using Apache.Arrow.Arrays;
using Apache.Arrow.Scalars;
using Apache.Arrow.Types;

namespace WalBridge.Client;

/// <summary>What a column's cell of a change holds (docs/format.md: every null cell is exactly one of three things).</summary>
public enum ValueState
{
    /// <summary>A value, in the column's Arrow type.</summary>
    Value,
    /// <summary>SQL <c>NULL</c>.</summary>
    Null,
    /// <summary>An unchanged TOAST value PostgreSQL did not send (listed in <c>_unchanged</c>): keep the previous value; it is not null.</summary>
    Unchanged,
    /// <summary>A value the column's Arrow type cannot hold, kept as PostgreSQL's exact text in <c>_special</c> (<see cref="RowValues.GetSpecialText"/>).</summary>
    Special,
}

/// <summary>
/// The values of one row of a change, by column name: its table columns (<see cref="Change.Columns"/>) or its old row
/// (<see cref="Change.Before"/>). A view: nothing is copied, valid while the record is not disposed.
/// </summary>
/// <remarks>
/// Typed getters return the value, or null for SQL <c>NULL</c>. A cell that holds no value for another reason makes
/// them throw <see cref="InvalidOperationException"/> instead of returning null: an unchanged TOAST value
/// (<see cref="ValueState.Unchanged"/>, check <see cref="IsUnchanged"/> and keep the previous value) or a value kept as
/// text (<see cref="ValueState.Special"/>, read <see cref="GetSpecialText"/>). <see cref="GetState"/> tells which.
/// A getter of another Arrow type than the column's throws <see cref="InvalidCastException"/> naming both.
/// </remarks>
public readonly struct RowValues
{
    private readonly ChangeBatch _batch;
    private readonly int _row;
    private readonly bool _before;

    internal RowValues(ChangeBatch batch, int row, bool before, bool present)
    {
        _batch = batch;
        _row = row;
        _before = before;
        IsPresent = present;
    }

    /// <summary>Whether the change has this row (an update without <c>_before</c>, a delete's <see cref="Change.After"/>: false).</summary>
    public bool IsPresent { get; }

    /// <summary>The table's column names in this record's schema.</summary>
    public IReadOnlyList<string> Names => Batch.Layout.Names;

    /// <summary>The Apache.Arrow array of <paramref name="column"/> (a table column, or the <c>_before</c> member); index it with <see cref="Change.Row"/>.</summary>
    public IArrowArray GetArray(string column)
    {
        var batch = Present;
        var ordinal = batch.Layout.Ordinal(column);
        return _before ? batch.BeforeMembers[ordinal] : batch.Columns[ordinal];
    }

    /// <summary>The Arrow field of <paramref name="column"/>, with its <c>pg.type</c> and <c>pg.typoid</c> metadata.</summary>
    public Field GetField(string column) => Batch.Batch.Schema.GetFieldByIndex(WalBridgeFormat.LeadingColumns + Batch.Layout.Ordinal(column));

    /// <summary>What the cell of <paramref name="column"/> holds.</summary>
    public ValueState GetState(string column)
    {
        var batch = Present;
        var ordinal = batch.Layout.Ordinal(column);
        return State(batch, ordinal, Array(batch, ordinal));
    }

    /// <summary>Whether the cell is SQL <c>NULL</c> (not an unchanged TOAST value, not a value kept in <c>_special</c>).</summary>
    public bool IsNull(string column) => GetState(column) == ValueState.Null;

    /// <summary>Whether the cell is an unchanged TOAST value PostgreSQL did not send (listed in <c>_unchanged</c>).</summary>
    public bool IsUnchanged(string column) => GetState(column) == ValueState.Unchanged;

    /// <summary>PostgreSQL's exact text of a value the column's Arrow type cannot hold (<c>_special</c>), or null when the cell has none.</summary>
    public string? GetSpecialText(string column)
    {
        var batch = Present;
        var ordinal = batch.Layout.Ordinal(column);
        return batch.SpecialText(_row, _before ? batch.Layout.BeforeNameUtf8[ordinal] : batch.Layout.NameUtf8[ordinal]);
    }

    public bool? GetBoolean(string column) => Cell<BooleanArray>(column, ArrowTypeId.Boolean, out var a) ? a.GetValue(_row) : null;

    public short? GetInt16(string column) => Cell<Int16Array>(column, ArrowTypeId.Int16, out var a) ? a.Values[_row] : null;

    public int? GetInt32(string column) => Cell<Int32Array>(column, ArrowTypeId.Int32, out var a) ? a.Values[_row] : null;

    public long? GetInt64(string column) => Cell<Int64Array>(column, ArrowTypeId.Int64, out var a) ? a.Values[_row] : null;

    /// <summary>An <c>oid</c> column.</summary>
    public uint? GetUInt32(string column) => Cell<UInt32Array>(column, ArrowTypeId.UInt32, out var a) ? a.Values[_row] : null;

    public float? GetSingle(string column) => Cell<FloatArray>(column, ArrowTypeId.Float, out var a) ? a.Values[_row] : null;

    public double? GetDouble(string column) => Cell<DoubleArray>(column, ArrowTypeId.Double, out var a) ? a.Values[_row] : null;

    /// <summary>A <c>utf8</c> column (text types, json, unconstrained numeric, enums, and every type kept as text) as a string.</summary>
    public string? GetString(string column) => Cell<StringArray>(column, ArrowTypeId.String, out var a) ? a.GetString(_row) : null;

    /// <summary>A <c>utf8</c> column's UTF-8 bytes without decoding them; false for SQL <c>NULL</c>.</summary>
    public bool TryGetUtf8(string column, out ReadOnlySpan<byte> utf8)
    {
        utf8 = Cell<StringArray>(column, ArrowTypeId.String, out var a) ? a.GetBytes(_row) : default;
        return a is not null && !a.IsNull(_row);
    }

    /// <summary>A <c>bytea</c> column's bytes (a view of the record); false for SQL <c>NULL</c>.</summary>
    public bool TryGetBytes(string column, out ReadOnlySpan<byte> bytes)
    {
        bytes = Cell<BinaryArray>(column, ArrowTypeId.Binary, out var a) ? a.GetBytes(_row) : default;
        return a is not null && !a.IsNull(_row);
    }

    /// <summary>A <c>numeric(p,s)</c> column with p ≤ 38 (<c>decimal128</c>) as <see cref="SqlDecimal"/>, which holds every such value.</summary>
    public SqlDecimal? GetSqlDecimal(string column) => Cell<Decimal128Array>(column, ArrowTypeId.Decimal128, out var a) ? a.GetSqlDecimal(_row) : null;

    /// <summary>A <c>numeric(p,s)</c> column (<c>decimal128</c> or <c>decimal256</c>) as its exact decimal text, e.g. <c>12.50</c>.</summary>
    public string? GetDecimalString(string column)
    {
        var batch = Present;
        var ordinal = batch.Layout.Ordinal(column);
        var array = Array(batch, ordinal);
        if (!HasValue(batch, ordinal, array))
        {
            return null;
        }

        return array switch
        {
            Decimal128Array d => d.GetString(_row),
            Decimal256Array d => d.GetString(_row),
            _ => throw WrongType(batch, ordinal, array, "decimal128 or decimal256"),
        };
    }

    /// <summary>A <c>uuid</c> column (<c>arrow.uuid</c>).</summary>
    public Guid? GetGuid(string column)
    {
        var batch = Present;
        var ordinal = batch.Layout.Ordinal(column);
        var array = Array(batch, ordinal);
        return !HasValue(batch, ordinal, array) ? null : array switch
        {
            GuidArray g => g.GetGuid(_row),
            _ => throw WrongType(batch, ordinal, array, "arrow.uuid"),
        };
    }

    /// <summary>A <c>date</c> column: days since 1970-01-01 (every PostgreSQL date fits; <see cref="DateOnly"/> does not reach them all).</summary>
    public int? GetDateDays(string column) => Cell<Date32Array>(column, ArrowTypeId.Date32, out var a) ? a.Values[_row] : null;

    /// <summary>A <c>timestamp</c> or <c>timestamptz</c> column: microseconds since 1970-01-01 (wall clock, or UTC).</summary>
    public long? GetTimestampMicros(string column) => Cell<TimestampArray>(column, ArrowTypeId.Timestamp, out var a) ? a.Values[_row] : null;

    /// <summary>A <c>timestamp</c>/<c>timestamptz</c> column as <see cref="DateTimeOffset"/> (UTC); throws <see cref="ArgumentOutOfRangeException"/> outside years 1–9999.</summary>
    public DateTimeOffset? GetDateTimeOffset(string column) =>
        GetTimestampMicros(column) is { } micros ? DateTimeOffset.UnixEpoch.AddTicks(micros * TimeSpan.TicksPerMicrosecond) : null;

    /// <summary>A <c>time</c> column: microseconds since midnight (<c>24:00:00</c> is 86,400,000,000).</summary>
    public long? GetTimeMicros(string column) => Cell<Time64Array>(column, ArrowTypeId.Time64, out var a) ? a.Values[_row] : null;

    /// <summary>An <c>interval</c> column: months, days and nanoseconds, kept apart as PostgreSQL does.</summary>
    public MonthDayNanosecondInterval? GetInterval(string column) =>
        Cell<MonthDayNanosecondIntervalArray>(column, ArrowTypeId.Interval, out var a) ? a.Values[_row] : null;

    /// <summary>
    /// The column's array as <typeparamref name="T"/> when the cell holds a value, for types without a getter here (lists,
    /// …): index it with <see cref="Change.Row"/>. Null for SQL <c>NULL</c>; throws like the typed getters otherwise.
    /// </summary>
    public T? GetValueArray<T>(string column)
        where T : class, IArrowArray
    {
        var batch = Present;
        var ordinal = batch.Layout.Ordinal(column);
        var array = Array(batch, ordinal);
        return !HasValue(batch, ordinal, array) ? null : array as T ?? throw WrongType(batch, ordinal, array, typeof(T).Name);
    }

    private ChangeBatch Batch
    {
        get
        {
            var batch = _batch ?? throw new InvalidOperationException("This RowValues is default: take it from a Change.");
            ObjectDisposedException.ThrowIf(batch.Record.IsDisposed, batch.Record);
            return batch;
        }
    }

    private ChangeBatch Present => IsPresent
        ? Batch
        : throw new InvalidOperationException(_before
            ? "The change has no old row in _before (an insert, delete or truncate, or an update whose key did not change under REPLICA IDENTITY DEFAULT): check IsPresent first."
            : "The change has no such row (a delete's or truncate's After, an insert's OldRow): check IsPresent first.");

    private IArrowArray Array(ChangeBatch batch, int ordinal) => _before ? batch.BeforeMembers[ordinal] : batch.Columns[ordinal];

    private bool Cell<T>(string column, ArrowTypeId type, out T array)
        where T : class, IArrowArray
    {
        var batch = Present;
        var ordinal = batch.Layout.Ordinal(column);
        var untyped = Array(batch, ordinal);
        array = untyped as T ?? throw WrongType(batch, ordinal, untyped, type.ToString());
        return HasValue(batch, ordinal, untyped);
    }

    /// <summary>True for a value; false for SQL NULL; throws for a cell that is null for another reason.</summary>
    private bool HasValue(ChangeBatch batch, int ordinal, IArrowArray array) => State(batch, ordinal, array) switch
    {
        ValueState.Value => true,
        ValueState.Null => false,
        ValueState.Unchanged => throw new InvalidOperationException(
            $"Column '{Name(batch, ordinal)}' of {batch.Record.Table} is an unchanged TOAST value PostgreSQL did not send, not NULL: keep the previous value (check IsUnchanged or GetState before reading)."),
        _ => throw new InvalidOperationException(
            $"Column '{Name(batch, ordinal)}' of {batch.Record.Table} holds a value its Arrow type cannot hold: read PostgreSQL's text with GetSpecialText (check GetState before reading)."),
    };

    private ValueState State(ChangeBatch batch, int ordinal, IArrowArray array)
    {
        if (!array.IsNull(_row))
        {
            return ValueState.Value;
        }

        var name = _before ? batch.Layout.BeforeNameUtf8[ordinal] : batch.Layout.NameUtf8[ordinal];
        if (batch.IsUnchanged(_row, name))
        {
            return ValueState.Unchanged;
        }

        return !batch.Special.IsNull(_row) && batch.SpecialText(_row, name) is not null ? ValueState.Special : ValueState.Null;
    }

    private string Name(ChangeBatch batch, int ordinal) => (_before ? WalBridgeFormat.BeforePrefix : "") + batch.Layout.Names[ordinal];

    private InvalidCastException WrongType(ChangeBatch batch, int ordinal, IArrowArray array, string wanted)
    {
        var field = batch.Batch.Schema.GetFieldByIndex(WalBridgeFormat.LeadingColumns + ordinal);
        var pgType = field.Metadata is { } m && m.TryGetValue("pg.type", out var t) ? t : "?";
        return new InvalidCastException($"Column '{Name(batch, ordinal)}' of {batch.Record.Table} is Arrow {array.Data.DataType.Name} (PostgreSQL {pgType}), not {wanted}: use the getter of its type.");
    }
}
