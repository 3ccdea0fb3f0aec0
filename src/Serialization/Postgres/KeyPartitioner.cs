using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using WalBridge.Serialization.Payload;

namespace WalBridge.Serialization.Postgres;

/// <summary>
/// Assigns a table's rows to partitions by their key (<see cref="PartitionKey"/>, the one definition of the rule):
/// collects PostgreSQL's text of each replica-identity key column from pgoutput's text or binary tuple values.
/// </summary>
/// <remarks>
/// A binary value is turned into PostgreSQL's text for the types keys commonly have (integers, oid, text types, uuid,
/// bool, date); for another type <see cref="AddValue"/> returns false and the caller needs the text tuple format.
/// Not thread-safe (one per decoding thread); allocation-free per row.
/// </remarks>
public sealed class KeyPartitioner
{
    private readonly PartitionKey _key = new();
    private readonly PgValueKind[] _kinds;
    private readonly byte[] _scratch = new byte[64];

    /// <param name="relation">The table; its columns flagged <see cref="PgColumn.IsKey"/> are the key, in column order.</param>
    /// <param name="partitions">The topic's partition count (1: every row goes to partition 0, nothing is computed).</param>
    /// <param name="keyless">
    /// The table has no key even though columns are flagged (REPLICA IDENTITY FULL without a primary key: pgoutput flags
    /// every column, but the whole row is no partition key); its rows go to partition 0.
    /// </param>
    public KeyPartitioner(PgRelation relation, int partitions, bool keyless = false)
    {
        ArgumentNullException.ThrowIfNull(relation);
        ArgumentOutOfRangeException.ThrowIfLessThan(partitions, 1);
        Partitions = partitions;
        KeyColumns = keyless ? [] : relation.Columns.Select((c, i) => (c, i)).Where(x => x.c.IsKey).Select(x => x.i).ToArray();
        _kinds = relation.Columns.Select(c => PgTypeMapping.Resolve(c).Kind).ToArray();
    }

    public int Partitions { get; }

    /// <summary>Ordinals of the key columns among the table's columns; empty for a table without a key (partition 0).</summary>
    public IReadOnlyList<int> KeyColumns { get; }

    /// <summary>Whether rows are spread at all: more than one partition and a key.</summary>
    public bool Spreads => Partitions > 1 && KeyColumns.Count > 0;

    /// <summary>Starts a row's key.</summary>
    public void Begin() => _key.Begin();

    /// <summary>
    /// The next key column's value (<paramref name="column"/> is its ordinal in the table). Returns false when a binary
    /// value of this type cannot be turned into PostgreSQL's text here (use the text tuple format).
    /// </summary>
    public bool AddValue(int column, ReadOnlySpan<byte> value, TupleFormat format)
    {
        if (format == TupleFormat.Text)
        {
            _key.AddText(value);
            return true;
        }

        switch (_kinds[column])
        {
            case PgValueKind.Text:
                _key.AddText(value);
                return true;
            case PgValueKind.Int16 when value.Length == 2:
                return AddFormatted(BinaryPrimitives.ReadInt16BigEndian(value));
            case PgValueKind.Int32 when value.Length == 4:
                return AddFormatted(BinaryPrimitives.ReadInt32BigEndian(value));
            case PgValueKind.Int64 when value.Length == 8:
                return AddFormatted(BinaryPrimitives.ReadInt64BigEndian(value));
            case PgValueKind.Oid when value.Length == 4:
                return AddFormatted(BinaryPrimitives.ReadUInt32BigEndian(value));
            case PgValueKind.Bool when value.Length == 1:
                _key.AddText(value[0] != 0 ? "t"u8 : "f"u8);
                return true;
            case PgValueKind.Uuid when value.Length == 16:
            {
                var text = _scratch.AsSpan(0, 36);
                var hex = Convert.ToHexStringLower(value);
                Encoding.ASCII.GetBytes(hex.AsSpan(0, 8), text);
                text[8] = (byte)'-';
                Encoding.ASCII.GetBytes(hex.AsSpan(8, 4), text[9..]);
                text[13] = (byte)'-';
                Encoding.ASCII.GetBytes(hex.AsSpan(12, 4), text[14..]);
                text[18] = (byte)'-';
                Encoding.ASCII.GetBytes(hex.AsSpan(16, 4), text[19..]);
                text[23] = (byte)'-';
                Encoding.ASCII.GetBytes(hex.AsSpan(20, 12), text[24..]);
                _key.AddText(text);
                return true;
            }
            case PgValueKind.Date when value.Length == 4:
            {
                var pgDays = BinaryPrimitives.ReadInt32BigEndian(value);
                if (pgDays is int.MaxValue or int.MinValue)
                {
                    _key.AddText(pgDays > 0 ? "infinity"u8 : "-infinity"u8);
                    return true;
                }

                _key.AddText(Encoding.UTF8.GetBytes(PgTextRenderer.FormatDate(pgDays + PgCalendar.PgEpochDays)));
                return true;
            }
            default:
                return false;
        }
    }

    /// <summary>The next key column is SQL NULL.</summary>
    public void AddNull() => _key.AddNull();

    /// <summary>Ends the key and returns its partition.</summary>
    public int End()
    {
        _key.End();
        return _key.Partition(Partitions);
    }

    private bool AddFormatted<T>(T number)
        where T : IUtf8SpanFormattable
    {
        if (!number.TryFormat(_scratch, out var written, default, CultureInfo.InvariantCulture))
        {
            return false;
        }

        _key.AddText(_scratch.AsSpan(0, written));
        return true;
    }
}
