using NativeImport;
using RocksDbSharp;

namespace WalBridge.Offsets.Mirror;

/// <summary>
/// An <see cref="IOffsetMirror"/> kept in a RocksDB database in a local directory (the
/// connector's <c>state.dir</c>), through the RocksDB NuGet package (RocksDbSharp, with RocksDB's
/// native library bundled). Keys are <see cref="OffsetKey.ToBytes"/>, values
/// <see cref="OffsetRecord.ToBytes"/> (JSON, so the store is readable with <c>ldb</c>).
/// Writes and deletes are synced (<c>WriteOptions.sync = true</c>): the write-ahead log is
/// fsync'd before <see cref="Write"/> or <see cref="Delete"/> returns.
/// </summary>
/// <remarks>
/// <para>
/// Not thread-safe: use from one thread at a time, as <see cref="IOffsetMirror"/> requires.
/// RocksDB locks the directory while it is open, so only one instance (in any process) can hold a
/// given directory; <see cref="Dispose"/> releases the lock, and so does the end of the process
/// (a killed connector leaves no lock behind).
/// </para>
/// <para>
/// Errors: every failure is an <see cref="OffsetMirrorException"/> (an <see cref="IOException"/>)
/// whose message names the directory and the <c>state.dir</c> setting and says what to do, and
/// whose <see cref="OffsetMirrorException.IsTransient"/> tells whether it may heal by itself. A
/// full disk (or quota) is transient: after such a failure the database is closed and reopened
/// at the next call, because after a failed log write RocksDB may refuse further writes until it
/// recovers by itself or is reopened. A lock held by another instance, a permission problem, a
/// corrupted database or any other RocksDB error is not transient. A damaged tail of RocksDB's
/// write-ahead log (a write cut short by a crash) is dropped on open (point-in-time recovery);
/// the mirror may then lag behind Kafka, which is harmless because Kafka is the source of truth.
/// </para>
/// <para>
/// Native library: RocksDbSharp loads <c>librocksdb.so</c> itself with <c>dlopen</c> (not
/// through .NET's native library probing), from <c>runtimes/&lt;rid&gt;/native</c> under the
/// working directory or the application's directory, where the build copies the package's native
/// assets (its jemalloc build first, which loads only where libjemalloc is installed), and only
/// then by name from the system's library path. <see cref="Open"/> refuses a library found by
/// name: the managed binding is made for the bundled RocksDB version, and a system librocksdb
/// (Debian's is RocksDB 7.8) is another one.
/// </para>
/// </remarks>
public sealed class RocksDbOffsetMirror : IOffsetMirror
{
    private readonly WriteOptions _writeOptions;
    private RocksDb? _db; // null after a transient failure closed it: reopened at the next call
    private bool _disposed;

    private RocksDbOffsetMirror(string location, RocksDb db)
    {
        Location = location;
        _db = db;
        _writeOptions = new WriteOptions().SetSync(true);
    }

    /// <inheritdoc />
    public string Location { get; }

    /// <summary>The native RocksDB library in use (the path it was loaded from), once a mirror was opened.</summary>
    internal static string? NativeLibraryPath => Auto.LoadedPath;

    /// <summary>
    /// Opens the mirror in <paramref name="directory"/>, creating the directory and the database if
    /// they do not exist.
    /// </summary>
    /// <exception cref="OffsetMirrorException">
    /// The database cannot be opened; the message names the directory and the <c>state.dir</c>
    /// setting, carries RocksDB's reason and says what to do (for a lock error: another connector
    /// instance with the same <c>state.dir</c> is running). Not transient, except for a full disk.
    /// </exception>
    /// <exception cref="DllNotFoundException">RocksDB's native library is missing from the application's output.</exception>
    public static RocksDbOffsetMirror Open(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        var location = Path.GetFullPath(directory);
        try
        {
            Directory.CreateDirectory(location);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OffsetMirrorException(
                $"Cannot create the offset mirror directory '{location}': {e.Message} " +
                "Set state.dir to a directory the connector can create and write.",
                location, isTransient: false, e);
        }

        EnsureBundledNativeLibrary();
        return new RocksDbOffsetMirror(location, OpenDatabase(location));
    }

    /// <inheritdoc />
    public OffsetRecord? Read(OffsetKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var db = Database();
        byte[]? value;
        try
        {
            value = db.Get(key.ToBytes().AsSpan());
        }
        catch (RocksDbSharpException e)
        {
            throw Failure("Reading from", e);
        }
        return value is null ? null : OffsetRecord.FromBytes(value);
    }

    /// <inheritdoc />
    public void Write(OffsetKey key, OffsetRecord record)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(record);
        var db = Database();
        try
        {
            db.Put(key.ToBytes().AsSpan(), record.ToBytes().AsSpan(), cf: null, _writeOptions);
        }
        catch (RocksDbSharpException e)
        {
            throw Failure("Writing to", e);
        }
    }

    /// <inheritdoc />
    public void Delete(OffsetKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var db = Database();
        try
        {
            db.Remove(key.ToBytes().AsSpan(), cf: null, _writeOptions);
        }
        catch (RocksDbSharpException e)
        {
            throw Failure("Deleting from", e);
        }
    }

    /// <summary>Closes the database and releases its directory lock. Idempotent.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _db?.Dispose();
        _db = null;
    }

    /// <inheritdoc />
    public override string ToString() => $"RocksDbOffsetMirror({Location})";

    /// <summary>
    /// Closes the database now (releasing the directory lock) and reopens it at the next call: what a
    /// transient failure does, because after a failed log write RocksDB may refuse further writes until
    /// it recovers by itself or is reopened.
    /// </summary>
    internal void ReopenBeforeNextUse()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _db?.Dispose();
        _db = null;
    }

    /// <summary>A RocksDB property of the open database (for example <c>rocksdb.stats</c>), for diagnostics.</summary>
    internal string? GetProperty(string name) => Database().GetProperty(name);

    /// <summary>The open database, reopening it first if a transient failure closed it.</summary>
    private RocksDb Database()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _db ??= OpenDatabase(Location);
    }

    /// <summary>Classifies a failed call; after a transient one the database is closed and reopened at the next use.</summary>
    private OffsetMirrorException Failure(string operation, RocksDbSharpException e)
    {
        var failure = RocksDbFailure.Describe(operation, Location, e);
        if (failure.IsTransient)
        {
            ReopenBeforeNextUse();
        }

        return failure;
    }

    private static RocksDb OpenDatabase(string location)
    {
        var options = new DbOptions()
            .SetCreateIfMissing(true)
            // RocksDB's info log (LOG) is rotated on every open; a connector restarted often
            // (crash tests, deployments) would otherwise collect up to 1000 old logs.
            .SetKeepLogFileNum(10);
        try
        {
            return RocksDb.Open(options, location);
        }
        catch (RocksDbSharpException e)
        {
            throw RocksDbFailure.Describe("Opening", location, e);
        }
        finally
        {
            GC.KeepAlive(options);
        }
    }

    /// <summary>
    /// Loads RocksDbSharp's native library (on first use) and checks that it is the copy bundled in
    /// the RocksDB package, found under a directory (<c>runtimes/&lt;rid&gt;/native</c>), and not a
    /// library of another version found by name on the system's library path.
    /// </summary>
    private static void EnsureBundledNativeLibrary()
    {
        try
        {
            _ = Native.Instance;
        }
        catch (TypeInitializationException e)
        {
            throw new DllNotFoundException(
                "RocksDB's native library, bundled in the RocksDB NuGet package, could not be loaded. The build copies it to " +
                $"runtimes/<rid>/native in the application's directory ('{AppContext.BaseDirectory}'); check that it is there. " +
                (e.InnerException ?? e).Message, e);
        }
        var loaded = Auto.LoadedPath;
        if (string.IsNullOrEmpty(loaded) || !Path.IsPathRooted(loaded))
        {
            throw new DllNotFoundException(
                $"RocksDB's native library was loaded by name ('{loaded}') from the system's library path, not from the copy " +
                $"bundled in the RocksDB NuGet package (runtimes/<rid>/native in '{AppContext.BaseDirectory}'), which is missing " +
                "or does not load on this machine (it needs glibc 2.34 or later). A system librocksdb is another RocksDB version " +
                "and is not used: rebuild the application so that the package's native assets are in its output.");
        }
    }
}
