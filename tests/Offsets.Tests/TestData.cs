namespace WalBridge.Offsets.Tests;

internal static class TestData
{
    public static OffsetKey Key(string slot = "walbridge_slot") => new("walbridge", slot, "appdb");

    public static OffsetRecord Record(string commitLsn = "16/B374D848", uint xid = 7_654_321) => new(
        CommitLsn: Lsn.Parse(commitLsn),
        EndLsn: new Lsn(Lsn.Parse(commitLsn).Value + 0x30),
        Xid: xid,
        CommitTimestamp: new DateTimeOffset(2025, 3, 14, 15, 9, 26, 535, TimeSpan.Zero),
        SourceTransactions: 12,
        Source: new SourceIdentity("7318032514263478291", 3, "walbridge_slot", "walbridge_pub"),
        WrittenAt: new DateTimeOffset(2025, 3, 14, 15, 9, 27, 1, TimeSpan.FromHours(1)));
}

/// <summary>A unique temporary directory, deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "walbridge-offsets-tests-" + Guid.NewGuid().ToString("N"));
    }

    public string Path { get; }

    public void Dispose()
    {
        if (Directory.Exists(Path))
        {
            Directory.Delete(Path, recursive: true);
        }
    }
}
