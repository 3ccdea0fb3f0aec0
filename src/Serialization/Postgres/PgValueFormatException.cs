namespace WalBridge.Serialization.Postgres;

/// <summary>
/// A PostgreSQL value could not be converted to its Arrow column: malformed text/binary input, or a value the
/// column's Arrow type cannot hold (e.g. numeric NaN in a decimal column). The message names the column,
/// the PostgreSQL type and the offending value (truncated).
/// </summary>
public sealed class PgValueFormatException : Exception
{
    private const int MaxValueChars = 64;

    public PgValueFormatException()
    {
    }

    public PgValueFormatException(string message)
        : base(message)
    {
    }

    public PgValueFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    internal PgValueFormatException(string column, string pgType, string value, string problem)
        : base($"Column '{column}' ({pgType}): {problem}; value: {value}")
    {
        Column = column;
        PgType = pgType;
        Value = value;
    }

    /// <summary>The column name, when known.</summary>
    public string? Column { get; }

    /// <summary>The column's PostgreSQL type (format_type style), when known.</summary>
    public string? PgType { get; }

    /// <summary>The offending value as text (truncated; binary input shown as hex).</summary>
    public string? Value { get; }

    internal static string Describe(ReadOnlySpan<byte> value, TupleFormat format)
    {
        if (format == TupleFormat.Binary)
        {
            var hex = Convert.ToHexString(value[..Math.Min(value.Length, MaxValueChars / 2)]);
            return "0x" + hex + (value.Length > MaxValueChars / 2 ? $"… ({value.Length} bytes)" : "");
        }

        var text = System.Text.Encoding.UTF8.GetString(value[..Math.Min(value.Length, MaxValueChars)]);
        return "'" + text + (value.Length > MaxValueChars ? $"…' ({value.Length} bytes)" : "'");
    }
}
