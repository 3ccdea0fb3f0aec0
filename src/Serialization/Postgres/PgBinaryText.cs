using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using WalBridge.Serialization.Columns;

namespace WalBridge.Serialization.Postgres;

/// <summary>
/// PostgreSQL's text output for binary-format (pgoutput <c>binary 'true'</c>) values the Arrow column cannot hold,
/// so that they can be carried losslessly in the <c>_special</c> column exactly as the text format would.
/// Only called for values <see cref="PgValueParser"/> classified as special; allocates (rare path).
/// </summary>
internal static class PgBinaryText
{
    public static string SpecialText(PgColumnType type, ReadOnlySpan<byte> v)
    {
        switch (type.Kind)
        {
            case PgValueKind.Decimal:
                // Only NaN and ±Infinity are special for a decimal column (sign word at offset 4).
                return BinaryPrimitives.ReadUInt16BigEndian(v[4..]) switch
                {
                    0xC000 => "NaN",
                    0xD000 => "Infinity",
                    0xF000 => "-Infinity",
                    _ => throw new InvalidOperationException("A finite numeric is not a special value."),
                };
            case PgValueKind.Date:
                return BinaryPrimitives.ReadInt32BigEndian(v) > 0 ? "infinity" : "-infinity";
            case PgValueKind.Timestamp or PgValueKind.TimestampTz:
                {
                    var pgMicros = BinaryPrimitives.ReadInt64BigEndian(v);
                    if (pgMicros is long.MaxValue or long.MinValue)
                    {
                        return pgMicros > 0 ? "infinity" : "-infinity";
                    }

                    var pgDays = PgCalendar.FloorDiv(pgMicros, PgCalendar.MicrosPerDay);
                    var timeOfDay = pgMicros - (pgDays * PgCalendar.MicrosPerDay);
                    return PgTextRenderer.FormatTimestamp(pgDays + PgCalendar.PgEpochDays, timeOfDay, type.Kind == PgValueKind.TimestampTz);
                }

            case PgValueKind.Interval:
                {
                    var micros = BinaryPrimitives.ReadInt64BigEndian(v);
                    var days = BinaryPrimitives.ReadInt32BigEndian(v[8..]);
                    var months = BinaryPrimitives.ReadInt32BigEndian(v[12..]);
                    if (months == int.MaxValue && days == int.MaxValue && micros == long.MaxValue)
                    {
                        return "infinity";
                    }

                    if (months == int.MinValue && days == int.MinValue && micros == long.MinValue)
                    {
                        return "-infinity";
                    }

                    return PgTextRenderer.FormatInterval(months, days, micros);
                }

            case PgValueKind.Array:
                return ArrayText(type.Element!, v);
            default:
                throw new InvalidOperationException($"{type.PgTypeName} values have no special binary form.");
        }
    }

    /// <summary>array_out of an array_send value: optional <c>[lb:ub]…=</c> decoration, nested braces, quoted elements.</summary>
    private static string ArrayText(PgColumnType element, ReadOnlySpan<byte> v)
    {
        var ndim = BinaryPrimitives.ReadInt32BigEndian(v);
        if (ndim == 0)
        {
            return "{}";
        }

        var sizes = new int[ndim];
        var lowerBounds = new int[ndim];
        var decorate = false;
        for (var d = 0; d < ndim; d++)
        {
            sizes[d] = BinaryPrimitives.ReadInt32BigEndian(v[(12 + (8 * d))..]);
            lowerBounds[d] = BinaryPrimitives.ReadInt32BigEndian(v[(16 + (8 * d))..]);
            decorate |= lowerBounds[d] != 1;
        }

        var sb = new StringBuilder();
        if (decorate)
        {
            for (var d = 0; d < ndim; d++)
            {
                sb.Append('[').Append(lowerBounds[d].ToString(CultureInfo.InvariantCulture)).Append(':')
                    .Append(((long)lowerBounds[d] + sizes[d] - 1).ToString(CultureInfo.InvariantCulture)).Append(']');
            }

            sb.Append('=');
        }

        var pos = 12 + (8 * ndim);
        var field = element.CreateField("item");
        using var scratch = BuilderFactory.Create(field);
        AppendLevel(sb, element, scratch, v, ref pos, sizes, 0);
        return sb.ToString();
    }

    private static void AppendLevel(StringBuilder sb, PgColumnType element, ArrayBuilder scratch, ReadOnlySpan<byte> v, ref int pos, int[] sizes, int level)
    {
        sb.Append('{');
        for (var i = 0; i < sizes[level]; i++)
        {
            if (i > 0)
            {
                sb.Append(',');
            }

            if (level < sizes.Length - 1)
            {
                AppendLevel(sb, element, scratch, v, ref pos, sizes, level + 1);
                continue;
            }

            var length = BinaryPrimitives.ReadInt32BigEndian(v[pos..]);
            pos += 4;
            if (length == -1)
            {
                sb.Append("NULL");
                continue;
            }

            var bytes = v.Slice(pos, length);
            pos += length;
            string text;
            scratch.Clear();
            if (PgValueParser.TryAppendBinary(scratch, element, bytes, out var special, out var problem))
            {
                text = PgTextRenderer.RenderElement(scratch.Build(), scratch.Field, 0) ?? "NULL";
            }
            else if (special)
            {
                text = SpecialText(element, bytes);
            }
            else
            {
                throw new PgValueFormatException($"Array element of type {element.PgTypeName}: {problem}");
            }

            PgTextRenderer.AppendArrayElement(sb, text);
        }

        sb.Append('}');
    }
}
