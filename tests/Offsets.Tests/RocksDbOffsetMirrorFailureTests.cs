using WalBridge.Offsets.Mirror;

namespace WalBridge.Offsets.Tests;

/// <summary>Crashes, a second process, and damaged directories.</summary>
public sealed class RocksDbOffsetMirrorFailureTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Synced_writes_survive_a_kill_without_dispose()
    {
        var location = Path.Combine(_dir.Path, "state");
        using (var child = await MirrorChild.StartAsync(location,
            "write:slot_a:1/A:1", "write:slot_b:2/B:2", "write:slot_a:3/C:3", "write:slot_c:4/D:4", "delete:slot_c"))
        {
            child.Kill(); // SIGKILL while the mirror is open: no Dispose, no close, no finalizer
        }

        // The kernel released the dead process's lock: the directory opens, with every change.
        using var mirror = RocksDbOffsetMirror.Open(location);
        Assert.Equal(TestData.Record("3/C", xid: 3), mirror.Read(TestData.Key("slot_a")));
        Assert.Equal(TestData.Record("2/B", xid: 2), mirror.Read(TestData.Key("slot_b")));
        Assert.Null(mirror.Read(TestData.Key("slot_c")));
    }

    [Fact]
    public async Task A_directory_open_in_another_process_fails_with_a_clear_message_until_that_process_ends()
    {
        var location = Path.Combine(_dir.Path, "state");
        using (var child = await MirrorChild.StartAsync(location, "write:walbridge_slot:5/E:5"))
        {
            var ex = Assert.Throws<OffsetMirrorException>(() => RocksDbOffsetMirror.Open(location));

            Assert.False(ex.IsTransient);
            Assert.Equal(location, ex.Location);
            Assert.Contains($"'{location}'", ex.Message, StringComparison.Ordinal);
            Assert.Contains("locked by another connector instance", ex.Message, StringComparison.Ordinal);
            Assert.Contains("state.dir", ex.Message, StringComparison.Ordinal);
            child.Kill();
        }

        using var mirror = RocksDbOffsetMirror.Open(location);
        Assert.Equal(TestData.Record("5/E", xid: 5), mirror.Read(TestData.Key()));
    }

    [Fact]
    public void A_damaged_CURRENT_file_is_reported_as_corruption_with_what_to_do()
    {
        WriteOneRecordAndClose();
        File.WriteAllText(Path.Combine(_dir.Path, "CURRENT"), "not a manifest name");

        var ex = Assert.Throws<OffsetMirrorException>(() => RocksDbOffsetMirror.Open(_dir.Path));

        AssertCorruption(ex);
        Assert.Contains("CURRENT", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_damaged_MANIFEST_is_reported_as_corruption_with_what_to_do()
    {
        WriteOneRecordAndClose();
        var manifest = Directory.GetFiles(_dir.Path, "MANIFEST-*").Single();
        var bytes = File.ReadAllBytes(manifest);
        for (var i = 8; i < bytes.Length; i += 5)
        {
            bytes[i] ^= 0x5A;
        }

        File.WriteAllBytes(manifest, bytes);

        var ex = Assert.Throws<OffsetMirrorException>(() => RocksDbOffsetMirror.Open(_dir.Path));

        AssertCorruption(ex);
    }

    [Fact]
    public void A_missing_MANIFEST_is_reported_as_corruption_with_what_to_do()
    {
        WriteOneRecordAndClose();
        File.Delete(Directory.GetFiles(_dir.Path, "MANIFEST-*").Single());

        var ex = Assert.Throws<OffsetMirrorException>(() => RocksDbOffsetMirror.Open(_dir.Path));

        AssertCorruption(ex);
        Assert.Contains("MANIFEST", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unusable_lock_file_gives_a_clear_error_that_is_not_transient()
    {
        // The tests run as root, for whom permissions do not apply; a directory where RocksDB
        // needs to open its LOCK file makes the directory just as unusable.
        WriteOneRecordAndClose();
        var lockFile = Path.Combine(_dir.Path, "LOCK");
        File.Delete(lockFile);
        Directory.CreateDirectory(lockFile);

        var ex = Assert.Throws<OffsetMirrorException>(() => RocksDbOffsetMirror.Open(_dir.Path));

        Assert.False(ex.IsTransient);
        Assert.Contains($"'{Path.GetFullPath(_dir.Path)}'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("LOCK", ex.Message, StringComparison.Ordinal);
        Assert.Contains("state.dir", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("another connector instance", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_failed_open_leaves_the_directory_usable_once_repaired()
    {
        WriteOneRecordAndClose();
        var current = Path.Combine(_dir.Path, "CURRENT");
        var original = File.ReadAllText(current);
        File.WriteAllText(current, "garbage");
        Assert.Throws<OffsetMirrorException>(() => RocksDbOffsetMirror.Open(_dir.Path));

        File.WriteAllText(current, original);

        using var mirror = RocksDbOffsetMirror.Open(_dir.Path);
        Assert.Equal(TestData.Record(), mirror.Read(TestData.Key()));
    }

    private void WriteOneRecordAndClose()
    {
        using var mirror = RocksDbOffsetMirror.Open(_dir.Path);
        mirror.Write(TestData.Key(), TestData.Record());
    }

    private void AssertCorruption(OffsetMirrorException ex)
    {
        var location = Path.GetFullPath(_dir.Path);
        Assert.False(ex.IsTransient);
        Assert.Equal(location, ex.Location);
        Assert.Contains($"'{location}'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("corrupted", ex.Message, StringComparison.Ordinal);
        Assert.Contains("move", ex.Message, StringComparison.Ordinal);
        Assert.Contains("state.dir", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Kafka", ex.Message, StringComparison.Ordinal);
    }
}
