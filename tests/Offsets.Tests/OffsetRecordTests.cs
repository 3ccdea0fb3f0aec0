using System.Text;

namespace WalBridge.Offsets.Tests;

public class OffsetRecordTests
{
    [Fact]
    public void Record_json_round_trips()
    {
        var record = TestData.Record();

        var bytes = record.ToBytes();
        var back = OffsetRecord.FromBytes(bytes);

        Assert.Equal(record, back);
        Assert.Equal(record.WrittenAt.Offset, back.WrittenAt.Offset);
    }

    [Fact]
    public void Record_json_uses_snake_case_names_and_text_lsns()
    {
        var json = Encoding.UTF8.GetString(TestData.Record().ToBytes());

        Assert.Contains("\"commit_lsn\":\"16/B374D848\"", json, StringComparison.Ordinal);
        Assert.Contains("\"end_lsn\":\"16/B374D878\"", json, StringComparison.Ordinal);
        Assert.Contains("\"system_identifier\":\"7318032514263478291\"", json, StringComparison.Ordinal);
    }

    [Fact]
    public void Key_json_round_trips()
    {
        var key = TestData.Key();

        Assert.Equal(key, OffsetKey.FromBytes(key.ToBytes()));
    }

    [Fact]
    public void Json_null_is_rejected()
    {
        Assert.Throws<FormatException>(() => OffsetRecord.FromBytes("null"u8));
        Assert.Throws<FormatException>(() => OffsetKey.FromBytes("null"u8));
    }
}
