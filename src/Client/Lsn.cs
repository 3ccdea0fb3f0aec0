using System.Globalization;

namespace WalBridge.Client;

/// <summary>A PostgreSQL WAL position (log sequence number): a 64-bit value written <c>XXX/XXX</c> in hex.</summary>
public readonly record struct Lsn(ulong Value) : IComparable<Lsn>
{
    public static bool operator <(Lsn left, Lsn right) => left.Value < right.Value;
    public static bool operator >(Lsn left, Lsn right) => left.Value > right.Value;
    public static bool operator <=(Lsn left, Lsn right) => left.Value <= right.Value;
    public static bool operator >=(Lsn left, Lsn right) => left.Value >= right.Value;

    public int CompareTo(Lsn other) => Value.CompareTo(other.Value);

    /// <summary>PostgreSQL's text form, e.g. <c>16/B374D848</c>.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Value >> 32:X}/{Value & 0xFFFFFFFF:X}");

    /// <summary>Parses PostgreSQL's text form (<c>16/B374D848</c>, either case).</summary>
    /// <exception cref="FormatException">The text is not two hex numbers of at most 8 digits separated by <c>/</c>.</exception>
    public static Lsn Parse(string text) =>
        TryParse(text, out var lsn) ? lsn : throw new FormatException($"'{text}' is not an LSN (expected PostgreSQL's form, e.g. 16/B374D848)");

    public static bool TryParse(string? text, out Lsn lsn)
    {
        lsn = default;
        var slash = text?.IndexOf('/', StringComparison.Ordinal) ?? -1;
        if (slash <= 0 || slash > 8 || text!.Length - slash - 1 is < 1 or > 8)
        {
            return false;
        }

        if (!uint.TryParse(text.AsSpan(0, slash), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var high)
            || !uint.TryParse(text.AsSpan(slash + 1), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var low))
        {
            return false;
        }

        lsn = new Lsn(((ulong)high << 32) | low);
        return true;
    }
}
