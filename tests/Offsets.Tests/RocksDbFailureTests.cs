using WalBridge.Offsets.Mirror;

namespace WalBridge.Offsets.Tests;

/// <summary>
/// The classification of RocksDB's error texts (<c>Status::ToString()</c>), including the ones a
/// test cannot provoke here (a full disk, permissions as root).
/// </summary>
public sealed class RocksDbFailureTests
{
    private const string Location = "/var/lib/walbridge/state/orders";

    [Theory]
    [InlineData("IO error: No space left on device: While appending to file: /var/lib/walbridge/state/orders/000004.log: No space left on device", nameof(RocksDbFailure.Kind.NoSpace))]
    [InlineData("IO error: No space left on device: While open a file for appending: /var/lib/walbridge/state/orders/LOG: No space left on device", nameof(RocksDbFailure.Kind.NoSpace))]
    [InlineData("IO error: While appending to file: /var/lib/walbridge/state/orders/000004.log: Disk quota exceeded", nameof(RocksDbFailure.Kind.NoSpace))]
    [InlineData("IO error: While open a file for appending: /var/lib/walbridge/state/orders/000004.log: Permission denied", nameof(RocksDbFailure.Kind.Permission))]
    [InlineData("IO error: while open a file for lock: /var/lib/walbridge/state/orders/LOCK: Permission denied", nameof(RocksDbFailure.Kind.Permission))]
    [InlineData("IO error: While mkdir if missing: /var/lib/walbridge/state/orders: Read-only file system", nameof(RocksDbFailure.Kind.Permission))]
    [InlineData("IO error: While lock file: /var/lib/walbridge/state/orders/LOCK: Resource temporarily unavailable", nameof(RocksDbFailure.Kind.Locked))]
    [InlineData("IO error: lock hold by current process, acquire time 1796122152 acquiring thread 28161: /var/lib/walbridge/state/orders/LOCK: No locks available", nameof(RocksDbFailure.Kind.Locked))]
    [InlineData("Corruption: CURRENT file does not end with newline", nameof(RocksDbFailure.Kind.Corruption))]
    [InlineData("Corruption: block checksum mismatch: stored = 1, computed = 2 in /var/lib/walbridge/state/orders/000009.sst", nameof(RocksDbFailure.Kind.Corruption))]
    [InlineData("IO error: No such file or directory: While opening a file for sequentially reading: /var/lib/walbridge/state/orders/MANIFEST-000005: No such file or directory", nameof(RocksDbFailure.Kind.Corruption))]
    [InlineData("Resource busy: ", nameof(RocksDbFailure.Kind.Busy))]
    [InlineData("Operation timed out: ", nameof(RocksDbFailure.Kind.Busy))]
    [InlineData("Operation failed. Try again.: ", nameof(RocksDbFailure.Kind.Busy))]
    [InlineData("IO error: While pread offset 0 len 4096: /var/lib/walbridge/state/orders/000009.sst: Input/output error", nameof(RocksDbFailure.Kind.Other))]
    [InlineData("Invalid argument: Column family not found: default", nameof(RocksDbFailure.Kind.Other))]
    public void Classifies_rocksdb_messages(string message, string expected)
    {
        Assert.Equal(expected, RocksDbFailure.Classify(message).ToString());
    }

    [Theory]
    [InlineData(nameof(RocksDbFailure.Kind.NoSpace), "IO error: No space left on device: While appending to file: /x/000004.log: No space left on device", true)]
    [InlineData(nameof(RocksDbFailure.Kind.Busy), "Resource busy: ", true)]
    [InlineData(nameof(RocksDbFailure.Kind.Permission), "IO error: While open a file for appending: /x/000004.log: Permission denied", false)]
    [InlineData(nameof(RocksDbFailure.Kind.Locked), "IO error: While lock file: /x/LOCK: Resource temporarily unavailable", false)]
    [InlineData(nameof(RocksDbFailure.Kind.Corruption), "Corruption: checksum mismatch", false)]
    [InlineData(nameof(RocksDbFailure.Kind.Other), "IO error: While pread offset 0 len 4096: /x/000009.sst: Input/output error", false)]
    public void Only_failures_that_may_heal_are_transient_and_every_message_says_where_and_what_to_change(
        string kind, string rocksDbMessage, bool transient)
    {
        Assert.Equal(kind, RocksDbFailure.Classify(rocksDbMessage).ToString());

        var ex = RocksDbFailure.Describe("Writing to", Location, rocksDbMessage, inner: null);

        Assert.Equal(transient, ex.IsTransient);
        Assert.Equal(Location, ex.Location);
        Assert.IsAssignableFrom<IOException>(ex);
        Assert.StartsWith($"Writing to the offset mirror (RocksDB) in '{Location}' failed", ex.Message, StringComparison.Ordinal);
        Assert.Contains("state.dir", ex.Message, StringComparison.Ordinal);
        Assert.Contains(rocksDbMessage.TrimEnd(), ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Messages_say_what_to_do()
    {
        static string Message(string rocksDb) => RocksDbFailure.Describe("Opening", Location, rocksDb, inner: null).Message;

        Assert.Contains("Free space", Message("IO error: No space left on device"), StringComparison.Ordinal);
        Assert.Contains("read and write access", Message("IO error: x: Permission denied"), StringComparison.Ordinal);
        Assert.Contains("Stop that instance", Message("IO error: While lock file: /x/LOCK: Resource temporarily unavailable"), StringComparison.Ordinal);
        Assert.Contains("move '" + Location + "' aside", Message("Corruption: bad block"), StringComparison.Ordinal);
    }
}
