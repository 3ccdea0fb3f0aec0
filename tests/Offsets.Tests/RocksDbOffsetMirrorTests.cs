using WalBridge.Offsets.Mirror;

namespace WalBridge.Offsets.Tests;

public sealed class RocksDbOffsetMirrorTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Open_creates_the_directory_and_reports_its_full_path()
    {
        var nested = Path.Combine(_dir.Path, "state", "offsets");

        using var mirror = RocksDbOffsetMirror.Open(nested);

        Assert.True(Directory.Exists(nested));
        Assert.Equal(Path.GetFullPath(nested), mirror.Location);
    }

    [Fact]
    public void Write_then_read_round_trips()
    {
        using var mirror = RocksDbOffsetMirror.Open(_dir.Path);
        var key = TestData.Key();
        var record = TestData.Record();

        mirror.Write(key, record);

        Assert.Equal(record, mirror.Read(key));
    }

    [Fact]
    public void Read_of_a_missing_key_returns_null()
    {
        using var mirror = RocksDbOffsetMirror.Open(_dir.Path);

        Assert.Null(mirror.Read(TestData.Key()));
    }

    [Fact]
    public void Record_survives_dispose_and_reopen()
    {
        var key = TestData.Key();
        var record = TestData.Record();
        using (var mirror = RocksDbOffsetMirror.Open(_dir.Path))
        {
            mirror.Write(key, record);
        }

        using var reopened = RocksDbOffsetMirror.Open(_dir.Path);

        Assert.Equal(record, reopened.Read(key));
    }

    [Fact]
    public void Overwrite_keeps_the_latest()
    {
        var key = TestData.Key();
        var latest = TestData.Record("17/10", xid: 2);
        using (var mirror = RocksDbOffsetMirror.Open(_dir.Path))
        {
            mirror.Write(key, TestData.Record("16/B374D848", xid: 1));
            mirror.Write(key, latest);
            Assert.Equal(latest, mirror.Read(key));
        }

        using var reopened = RocksDbOffsetMirror.Open(_dir.Path);
        Assert.Equal(latest, reopened.Read(key));
    }

    [Fact]
    public void Delete_removes_the_record()
    {
        var key = TestData.Key();
        using (var mirror = RocksDbOffsetMirror.Open(_dir.Path))
        {
            mirror.Write(key, TestData.Record());
            mirror.Delete(key);
            Assert.Null(mirror.Read(key));
            mirror.Delete(key); // deleting a missing key is a no-op
        }

        using var reopened = RocksDbOffsetMirror.Open(_dir.Path);
        Assert.Null(reopened.Read(key));
    }

    [Fact]
    public void Two_keys_are_independent()
    {
        using var mirror = RocksDbOffsetMirror.Open(_dir.Path);
        var keyA = TestData.Key("slot_a");
        var keyB = TestData.Key("slot_b");
        var recordA = TestData.Record("1/A", xid: 10);
        var recordB = TestData.Record("2/B", xid: 20);

        mirror.Write(keyA, recordA);
        mirror.Write(keyB, recordB);
        Assert.Equal(recordA, mirror.Read(keyA));
        Assert.Equal(recordB, mirror.Read(keyB));

        mirror.Delete(keyA);
        Assert.Null(mirror.Read(keyA));
        Assert.Equal(recordB, mirror.Read(keyB));
    }

    [Fact]
    public void Opening_an_open_directory_again_fails_with_a_clear_message()
    {
        using var first = RocksDbOffsetMirror.Open(_dir.Path);

        IOException ex = Assert.Throws<OffsetMirrorException>(() => RocksDbOffsetMirror.Open(_dir.Path));

        Assert.False(((OffsetMirrorException)ex).IsTransient);
        Assert.Contains(first.Location, ex.Message, StringComparison.Ordinal);
        Assert.Contains("lock", ex.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("another connector instance", ex.Message, StringComparison.Ordinal);
        Assert.Contains("RocksDB", ex.Message, StringComparison.Ordinal);
        Assert.Contains("state.dir", ex.Message, StringComparison.Ordinal);

        // The failed open must not disturb the open instance, and the lock is released on dispose.
        first.Write(TestData.Key(), TestData.Record());
        first.Dispose();
        using var second = RocksDbOffsetMirror.Open(_dir.Path);
        Assert.Equal(TestData.Record(), second.Read(TestData.Key()));
    }

    [Fact]
    public void Open_fails_clearly_when_the_path_is_a_file()
    {
        Directory.CreateDirectory(_dir.Path);
        var file = Path.Combine(_dir.Path, "not-a-directory");
        File.WriteAllText(file, "x");

        IOException ex = Assert.Throws<OffsetMirrorException>(() => RocksDbOffsetMirror.Open(file));

        Assert.False(((OffsetMirrorException)ex).IsTransient);
        Assert.Contains(file, ex.Message, StringComparison.Ordinal);
        Assert.Contains("offset mirror", ex.Message, StringComparison.Ordinal);
        Assert.Contains("state.dir", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Use_after_dispose_throws_and_dispose_is_idempotent()
    {
        var mirror = RocksDbOffsetMirror.Open(_dir.Path);
        mirror.Dispose();
        mirror.Dispose();

        Assert.Throws<ObjectDisposedException>(() => mirror.Read(TestData.Key()));
        Assert.Throws<ObjectDisposedException>(() => mirror.Write(TestData.Key(), TestData.Record()));
        Assert.Throws<ObjectDisposedException>(() => mirror.Delete(TestData.Key()));
    }

    [Fact]
    public void Reopen_after_dispose_sees_every_change_and_can_write_again()
    {
        var keyA = TestData.Key("slot_a");
        var keyB = TestData.Key("slot_b");
        using (var mirror = RocksDbOffsetMirror.Open(_dir.Path))
        {
            mirror.Write(keyA, TestData.Record("1/A", xid: 1));
            mirror.Write(keyB, TestData.Record("2/B", xid: 2));
        }
        using (var mirror = RocksDbOffsetMirror.Open(_dir.Path))
        {
            Assert.Equal(TestData.Record("1/A", xid: 1), mirror.Read(keyA));
            mirror.Delete(keyA);
            mirror.Write(keyB, TestData.Record("3/C", xid: 3));
        }

        using var reopened = RocksDbOffsetMirror.Open(_dir.Path);
        Assert.Null(reopened.Read(keyA));
        Assert.Equal(TestData.Record("3/C", xid: 3), reopened.Read(keyB));
    }

    [Fact]
    public void Many_reopens_keep_the_record_and_a_bounded_number_of_info_logs()
    {
        var key = TestData.Key();
        for (var i = 1; i <= 15; i++)
        {
            using var mirror = RocksDbOffsetMirror.Open(_dir.Path);
            if (i > 1)
            {
                Assert.Equal(TestData.Record($"{i - 1}/0", xid: (uint)(i - 1)), mirror.Read(key));
            }

            mirror.Write(key, TestData.Record($"{i}/0", xid: (uint)i));
        }

        // RocksDB renames its LOG on every open; the mirror keeps 10 of them (LOG and LOG.old.*).
        var infoLogs = Directory.GetFiles(_dir.Path, "LOG*");
        Assert.InRange(infoLogs.Length, 1, 10);
    }

    [Fact]
    public void Every_write_and_delete_syncs_the_write_ahead_log()
    {
        using var mirror = RocksDbOffsetMirror.Open(_dir.Path);
        var key = TestData.Key();

        mirror.Write(key, TestData.Record("1/A", xid: 1));
        mirror.Write(key, TestData.Record("2/B", xid: 2));
        mirror.Delete(key);
        mirror.Write(TestData.Key("other"), TestData.Record("3/C", xid: 3));

        // RocksDB's own counters: one WAL sync per write, i.e. WriteOptions.sync is in effect.
        var stats = mirror.GetProperty("rocksdb.stats");
        Assert.NotNull(stats);
        Assert.Contains("Cumulative WAL: 4 writes, 4 syncs", stats, StringComparison.Ordinal);
    }

    [Fact]
    public void Reopen_before_next_use_releases_the_lock_and_keeps_the_data()
    {
        var key = TestData.Key();
        using var mirror = RocksDbOffsetMirror.Open(_dir.Path);
        mirror.Write(key, TestData.Record("1/A", xid: 1));

        // What a transient failure (a full disk) does: close now, reopen at the next call.
        mirror.ReopenBeforeNextUse();
        using (var other = RocksDbOffsetMirror.Open(_dir.Path))
        {
            Assert.Equal(TestData.Record("1/A", xid: 1), other.Read(key));
        }

        Assert.Equal(TestData.Record("1/A", xid: 1), mirror.Read(key));
        mirror.Write(key, TestData.Record("2/B", xid: 2));
        Assert.Equal(TestData.Record("2/B", xid: 2), mirror.Read(key));
        Assert.Throws<OffsetMirrorException>(() => RocksDbOffsetMirror.Open(_dir.Path));
    }

    [Fact]
    public void The_native_library_is_the_copy_bundled_in_the_build_output()
    {
        using var mirror = RocksDbOffsetMirror.Open(_dir.Path);

        var loaded = RocksDbOffsetMirror.NativeLibraryPath;

        Assert.NotNull(loaded);
        Assert.StartsWith(Path.Combine(AppContext.BaseDirectory, "runtimes"), loaded, StringComparison.Ordinal);
        Assert.Contains("librocksdb", Path.GetFileName(loaded), StringComparison.Ordinal);
    }

    [Fact]
    public void Null_arguments_are_rejected()
    {
        using var mirror = RocksDbOffsetMirror.Open(_dir.Path);

        Assert.Throws<ArgumentNullException>(() => mirror.Read(null!));
        Assert.Throws<ArgumentNullException>(() => mirror.Write(TestData.Key(), null!));
        Assert.Throws<ArgumentException>(() => RocksDbOffsetMirror.Open(" "));
    }
}
