using Apache.Arrow;

namespace WalBridge.Client;

/// <summary>One record batch of a record with its columns cast to their format 2 array types once, for the change views.</summary>
internal sealed class ChangeBatch
{
    public ChangeBatch(WalBridgeRecord record, ColumnLayout layout, RecordBatch batch)
    {
        Record = record;
        Layout = layout;
        Batch = batch;
        Op = (StringArray)batch.Column(0);
        Lsn = (UInt64Array)batch.Column(1);
        Xid = (UInt32Array)batch.Column(2);
        CommitLsn = (UInt64Array)batch.Column(3);
        CommitTimestamp = (TimestampArray)batch.Column(4);
        Columns = new IArrowArray[layout.TableColumns];
        for (var i = 0; i < Columns.Length; i++)
        {
            Columns[i] = batch.Column(WalBridgeFormat.LeadingColumns + i);
        }

        Before = (StructArray)batch.Column(layout.BeforeIndex);
        BeforeMembers = [.. Before.Fields];
        Unchanged = (ListArray)batch.Column(layout.BeforeIndex + 1);
        UnchangedNames = (StringArray)Unchanged.Values;
        Special = (MapArray)batch.Column(layout.BeforeIndex + 2);
        SpecialKeys = (StringArray)Special.Keys;
        SpecialValues = (StringArray)Special.Values;
        Ops = new ChangeOperation[batch.Length];
        for (var row = 0; row < Ops.Length; row++)
        {
            Ops[row] = ParseOp(Op.GetBytes(row), row);
        }
    }

    public WalBridgeRecord Record { get; }
    public ColumnLayout Layout { get; }
    public RecordBatch Batch { get; }
    public StringArray Op { get; }
    /// <summary>Every row's <c>_op</c>, checked once when the record is read: unknown codes fail there, not while iterating.</summary>
    public ChangeOperation[] Ops { get; }
    public UInt64Array Lsn { get; }
    public UInt32Array Xid { get; }
    public UInt64Array CommitLsn { get; }
    public TimestampArray CommitTimestamp { get; }
    public IArrowArray[] Columns { get; }
    public StructArray Before { get; }
    public IArrowArray[] BeforeMembers { get; }
    public ListArray Unchanged { get; }
    public StringArray UnchangedNames { get; }
    public MapArray Special { get; }
    public StringArray SpecialKeys { get; }
    public StringArray SpecialValues { get; }

    /// <summary>Whether <c>_unchanged</c> of <paramref name="row"/> lists <paramref name="name"/> (UTF-8).</summary>
    public bool IsUnchanged(int row, ReadOnlySpan<byte> name)
    {
        if (Unchanged.IsNull(row))
        {
            return false;
        }

        for (var i = Unchanged.ValueOffsets[row]; i < Unchanged.ValueOffsets[row + 1]; i++)
        {
            if (UnchangedNames.GetBytes(i).SequenceEqual(name))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The <c>_special</c> text of <paramref name="row"/> under <paramref name="key"/> (UTF-8), or null.</summary>
    public string? SpecialText(int row, ReadOnlySpan<byte> key)
    {
        if (Special.IsNull(row))
        {
            return null;
        }

        for (var i = Special.ValueOffsets[row]; i < Special.ValueOffsets[row + 1]; i++)
        {
            if (SpecialKeys.GetBytes(i).SequenceEqual(key))
            {
                return SpecialValues.GetString(i);
            }
        }

        return null;
    }

    private ChangeOperation ParseOp(ReadOnlySpan<byte> code, int row) => code.Length == 1
        ? code[0] switch
        {
            (byte)'c' => ChangeOperation.Insert,
            (byte)'u' => ChangeOperation.Update,
            (byte)'d' => ChangeOperation.Delete,
            (byte)'t' => ChangeOperation.Truncate,
            (byte)'r' => ChangeOperation.Read,
            _ => throw UnknownOp(code, row),
        }
        : throw UnknownOp(code, row);

    private WalBridgeFormatException UnknownOp(ReadOnlySpan<byte> code, int row) => new(
        $"Row {row} of a record batch of {Record.Table} has _op '{System.Text.Encoding.UTF8.GetString(code)}', which payload format " +
        $"{WalBridgeFormat.SupportedVersion} does not define (c, u, d, t, r): upgrade WalBridge.Client; do not skip the row.");
}
