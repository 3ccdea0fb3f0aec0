using System.Buffers.Binary;
using System.Globalization;
using System.Text.Unicode;
using WalBridge.Serialization.Columns;

namespace WalBridge.Serialization.Postgres;

/// <summary>One-dimensional arrays in text and binary form, into lists of the element type.</summary>
internal static partial class PgValueParser
{
    [ThreadStatic]
    private static byte[]? t_unescapeScratch;

    private static bool IsArraySpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or (byte)'\v' or (byte)'\f';

    /// <summary>
    /// Parses array_out text (<c>{1,2,NULL}</c>, <c>{"a b","c\"d"}</c>) of a one-dimensional array with lower bound 1.
    /// Elements are converted by the element type's text parser into the list's child builder.
    /// </summary>
    private static bool ParseArrayText(ListBuilder builder, PgColumnType element, ReadOnlySpan<byte> v, out string? problem)
    {
        if (!v.IsEmpty && v[0] == '[')
        {
            return Special(out problem); // explicit bounds: a lower bound other than 1
        }

        var pos = 0;
        if (!Expect(v, ref pos, (byte)'{'))
        {
            return Fail(out problem, "expected '{'");
        }

        if (pos < v.Length && v[pos] == '{')
        {
            return Special(out problem);
        }

        if (Expect(v, ref pos, (byte)'}'))
        {
            builder.EndList();
            return AtEnd(v, pos, out problem);
        }

        var child = builder.Values;
        while (true)
        {
            ReadOnlySpan<byte> item;
            var isNull = false;
            if (pos < v.Length && v[pos] == '"')
            {
                var start = ++pos;
                var escaped = false;
                while (pos < v.Length && v[pos] != '"')
                {
                    if (v[pos] == '\\')
                    {
                        escaped = true;
                        pos++;
                    }

                    pos++;
                }

                if (pos >= v.Length)
                {
                    return Fail(out problem, "unterminated quoted array element");
                }

                item = escaped ? Unescape(v[start..pos]) : v[start..pos];
                pos++;
            }
            else
            {
                var start = pos;
                var escaped = false;
                while (pos < v.Length && v[pos] != ',' && v[pos] != '}')
                {
                    if (v[pos] is (byte)'{' or (byte)'"')
                    {
                        return Fail(out problem, "unexpected character in array element");
                    }

                    if (v[pos] == '\\')
                    {
                        escaped = true;
                        pos++;
                    }

                    pos++;
                }

                if (pos > v.Length)
                {
                    return Fail(out problem, "unterminated array");
                }

                item = v[start..pos];
                while (!item.IsEmpty && IsArraySpace(item[0]))
                {
                    item = item[1..];
                }

                while (!item.IsEmpty && IsArraySpace(item[^1]))
                {
                    item = item[..^1];
                }

                if (item.IsEmpty)
                {
                    return Fail(out problem, "empty unquoted array element");
                }

                isNull = !escaped && item.Length == 4 && (item[0] | 0x20) == 'n' && (item[1] | 0x20) == 'u' && (item[2] | 0x20) == 'l' && (item[3] | 0x20) == 'l';
                if (escaped)
                {
                    item = Unescape(item);
                }
            }

            if (isNull)
            {
                child.AppendNull();
            }
            else if (!AppendText(child, element, item, out problem))
            {
                if (!IsSpecial(problem))
                {
                    problem = $"array element {child.Length - builder.ValuesStart + 1}: {problem}";
                }

                return false;
            }

            if (Expect(v, ref pos, (byte)','))
            {
                continue;
            }

            if (Expect(v, ref pos, (byte)'}'))
            {
                break;
            }

            return Fail(out problem, "expected ',' or '}' in array");
        }

        if (!AtEnd(v, pos, out problem))
        {
            return false;
        }

        builder.EndList();
        return true;
    }

    /// <summary>Removes array-literal backslash escapes into a reused per-thread buffer (valid until the next call).</summary>
    private static ReadOnlySpan<byte> Unescape(ReadOnlySpan<byte> escaped)
    {
        var scratch = t_unescapeScratch;
        if (scratch is null || scratch.Length < escaped.Length)
        {
            scratch = new byte[Math.Max(escaped.Length, 256)];
            t_unescapeScratch = scratch;
        }

        var o = 0;
        for (var i = 0; i < escaped.Length; i++)
        {
            if (escaped[i] == '\\' && i + 1 < escaped.Length)
            {
                i++;
            }

            scratch[o++] = escaped[i];
        }

        return scratch.AsSpan(0, o);
    }

    /// <summary>Parses array_send output: ndim, has-null flag, element OID, (size, lower bound) per dimension, then length-prefixed elements.</summary>
    private static bool ParseArrayBinary(ListBuilder builder, PgColumnType element, ReadOnlySpan<byte> v, out string? problem)
    {
        if (v.Length < 12)
        {
            return Fail(out problem, "binary array shorter than its header");
        }

        var ndim = BinaryPrimitives.ReadInt32BigEndian(v);
        var elementOid = BinaryPrimitives.ReadUInt32BigEndian(v[8..]);
        if (elementOid != element.TypeOid)
        {
            return Fail(out problem, $"binary array has element type {elementOid}, expected {element.TypeOid}");
        }

        if (ndim == 0)
        {
            builder.EndList();
            return AtEnd(v, 12, out problem);
        }

        if (ndim != 1)
        {
            return ndim > 1 ? Special(out problem) : Fail(out problem, "invalid array dimension count");
        }

        if (v.Length < 20)
        {
            return Fail(out problem, "binary array shorter than its header");
        }

        var count = BinaryPrimitives.ReadInt32BigEndian(v[12..]);
        var lowerBound = BinaryPrimitives.ReadInt32BigEndian(v[16..]);
        if (lowerBound != 1)
        {
            return Special(out problem);
        }

        if (count < 0 || count > (v.Length - 20) / 4)
        {
            return Fail(out problem, "binary array has an invalid element count");
        }

        var child = builder.Values;
        var pos = 20;
        for (var i = 0; i < count; i++)
        {
            if (v.Length - pos < 4)
            {
                return Fail(out problem, "truncated binary array");
            }

            var length = BinaryPrimitives.ReadInt32BigEndian(v[pos..]);
            pos += 4;
            if (length == -1)
            {
                child.AppendNull();
                continue;
            }

            if (length < 0 || length > v.Length - pos)
            {
                return Fail(out problem, "truncated binary array element");
            }

            if (!AppendBinary(child, element, v.Slice(pos, length), out problem))
            {
                if (!IsSpecial(problem))
                {
                    problem = $"array element {i + 1}: {problem}";
                }

                return false;
            }

            pos += length;
        }

        if (!AtEnd(v, pos, out problem))
        {
            return false;
        }

        builder.EndList();
        return true;
    }

    // ---------------------------------------------------------------- decimals
}
