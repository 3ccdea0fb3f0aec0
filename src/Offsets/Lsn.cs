using System.Globalization;

namespace WalBridge.Offsets;

/// <summary>
/// A PostgreSQL WAL position (log sequence number). Immutable value type; ordered; printed and
/// parsed in PostgreSQL's <c>XXXXXXXX/XXXXXXXX</c> form.
/// </summary>
public readonly record struct Lsn(ulong Value) : IComparable<Lsn>
{
    /// <summary>The invalid/zero position (PostgreSQL's <c>InvalidXLogRecPtr</c>).</summary>
    public static readonly Lsn Zero;

    /// <summary>The highest representable position: a bound above every real one.</summary>
    public static readonly Lsn MaxValue = new(ulong.MaxValue);

    /// <summary>Whether this is the zero position.</summary>
    public bool IsZero => Value == 0;

    public int CompareTo(Lsn other) => Value.CompareTo(other.Value);

    public static bool operator <(Lsn left, Lsn right) => left.Value < right.Value;
    public static bool operator >(Lsn left, Lsn right) => left.Value > right.Value;
    public static bool operator <=(Lsn left, Lsn right) => left.Value <= right.Value;
    public static bool operator >=(Lsn left, Lsn right) => left.Value >= right.Value;

    /// <summary>The larger of two positions: progress that may only move forward uses this.</summary>
    public static Lsn Max(Lsn a, Lsn b) => a.Value >= b.Value ? a : b;

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{(uint)(Value >> 32):X}/{(uint)Value:X}");

    /// <summary>The <see cref="ToString"/> form as UTF-8 bytes (a Kafka header value), without an intermediate string.</summary>
    public byte[] ToUtf8()
    {
        Span<byte> text = stackalloc byte[17];
        var high = (uint)(Value >> 32);
        var low = (uint)Value;
        high.TryFormat(text, out var written, "X", CultureInfo.InvariantCulture);
        text[written++] = (byte)'/';
        low.TryFormat(text[written..], out var lowWritten, "X", CultureInfo.InvariantCulture);
        return text[..(written + lowWritten)].ToArray();
    }

    /// <summary>Parses <c>XXX/XXX</c>; throws <see cref="FormatException"/> naming the input otherwise.</summary>
    public static Lsn Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return TryParse(text, out var lsn)
            ? lsn
            : throw new FormatException($"'{text}' is not a PostgreSQL LSN (expected the form 16/B374D848).");
    }

    public static bool TryParse(string? text, out Lsn lsn)
    {
        lsn = Zero;
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }

        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || slash == text.Length - 1 || slash > 8 || text.Length - slash - 1 > 8)
        {
            return false;
        }

        if (!uint.TryParse(text.AsSpan(0, slash), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var hi) ||
            !uint.TryParse(text.AsSpan(slash + 1), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var lo))
        {
            return false;
        }

        lsn = new Lsn(((ulong)hi << 32) | lo);
        return true;
    }
}
