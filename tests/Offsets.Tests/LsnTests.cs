namespace WalBridge.Offsets.Tests;

public class LsnTests
{
    [Theory]
    [InlineData("0/0", 0UL)]
    [InlineData("16/B374D848", 0x16_B374D848UL)]
    [InlineData("FFFFFFFF/FFFFFFFF", ulong.MaxValue)]
    [InlineData("0/1", 1UL)]
    [InlineData("1/0", 0x1_00000000UL)]
    public void Parse_and_ToString_round_trip(string text, ulong value)
    {
        var lsn = Lsn.Parse(text);

        Assert.Equal(value, lsn.Value);
        Assert.Equal(text, lsn.ToString());
        Assert.Equal(lsn, Lsn.Parse(lsn.ToString()));
        Assert.Equal(text, System.Text.Encoding.UTF8.GetString(lsn.ToUtf8()));
    }

    [Fact]
    public void Parse_accepts_lower_case_and_prints_upper_case()
    {
        var lsn = Lsn.Parse("16/b374d848");

        Assert.Equal(0x16_B374D848UL, lsn.Value);
        Assert.Equal("16/B374D848", lsn.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("0")]
    [InlineData("/0")]
    [InlineData("0/")]
    [InlineData("/")]
    [InlineData("G/0")]
    [InlineData("0/XYZ")]
    [InlineData("100000000/0")]
    [InlineData("0/100000000")]
    [InlineData("1/2/3")]
    [InlineData(" 1/2")]
    [InlineData("-1/2")]
    public void Invalid_inputs_are_rejected(string text)
    {
        Assert.False(Lsn.TryParse(text, out var lsn));
        Assert.Equal(Lsn.Zero, lsn);
        var ex = Assert.Throws<FormatException>(() => Lsn.Parse(text));
        Assert.Contains($"'{text}'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TryParse_of_null_is_false_and_Parse_of_null_throws()
    {
        Assert.False(Lsn.TryParse(null, out _));
        Assert.Throws<ArgumentNullException>(() => Lsn.Parse(null!));
    }

    [Fact]
    public void Ordering_follows_the_numeric_position()
    {
        var zero = Lsn.Parse("0/0");
        var low = Lsn.Parse("0/FFFFFFFF");
        var high = Lsn.Parse("1/0");
        var max = Lsn.Parse("FFFFFFFF/FFFFFFFF");

        Assert.True(zero < low);
        Assert.True(low < high);
        Assert.True(high < max);
        Assert.True(max > zero);
        Assert.True(high >= Lsn.Parse("1/0"));
        Assert.True(high <= Lsn.Parse("1/0"));
        Assert.Equal(0, high.CompareTo(Lsn.Parse("1/0")));
        Assert.True(Lsn.Parse("16/B374D848").CompareTo(Lsn.Parse("16/B374D849")) < 0);
        Assert.Equal(high, Lsn.Max(low, high));
        Assert.Equal(high, Lsn.Max(high, low));
        Assert.True(zero.IsZero);
        Assert.False(low.IsZero);

        Lsn[] sorted = [max, zero, high, low];
        Array.Sort(sorted);
        Assert.Equal([zero, low, high, max], sorted);
    }
}
