namespace WalBridge.Offsets.Mirror;

/// <summary>
/// An <see cref="IOffsetMirror"/> kept in a RocksDB database in a local directory (the
/// connector's <c>state.dir</c>). Keys are <see cref="OffsetKey.ToBytes"/>, values
/// <see cref="OffsetRecord.ToBytes"/> (JSON, so the store is readable with <c>ldb</c>).
/// Writes and deletes are synced (<c>WriteOptions.sync = true</c>).
/// </summary>
/// <remarks>
/// Not thread-safe: use from one thread at a time, as <see cref="IOffsetMirror"/> requires.
/// RocksDB locks the directory while it is open, so only one instance (in any process) can hold a
/// given directory; <see cref="Dispose"/> releases the lock.
/// </remarks>
public sealed class RocksDbOffsetMirror : IOffsetMirror
{
    private readonly RocksDbHandle _db;
    private readonly RocksDbWriteOptionsHandle _writeOptions;
    private readonly RocksDbReadOptionsHandle _readOptions;
    private bool _disposed;

    private RocksDbOffsetMirror(string location, RocksDbHandle db, RocksDbWriteOptionsHandle writeOptions, RocksDbReadOptionsHandle readOptions)
    {
        Location = location;
        _db = db;
        _writeOptions = writeOptions;
        _readOptions = readOptions;
    }

    /// <inheritdoc />
    public string Location { get; }

    /// <summary>
    /// Opens the mirror in <paramref name="directory"/>, creating the directory and the database if
    /// they do not exist.
    /// </summary>
    /// <exception cref="IOException">
    /// The database cannot be opened; the message names the directory and carries RocksDB's reason
    /// (for a lock error, another connector instance with the same <c>state.dir</c> is probably running).
    /// </exception>
    public static unsafe RocksDbOffsetMirror Open(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        var location = Path.GetFullPath(directory);
        try
        {
            Directory.CreateDirectory(location);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"Cannot create the offset mirror directory '{location}': {e.Message}", e);
        }

        RocksDbWriteOptionsHandle? writeOptions = null;
        RocksDbReadOptionsHandle? readOptions = null;
        RocksDbHandle? db = null;
        try
        {
            using (var options = RocksDbNative.rocksdb_options_create())
            {
                RocksDbNative.rocksdb_options_set_create_if_missing(options, 1);
                nint error = 0;
                db = RocksDbNative.rocksdb_open(options, location, &error);
                if (error != 0)
                {
                    var message = RocksDbNative.TakeError(error);
                    var hint = message.Contains("lock", StringComparison.OrdinalIgnoreCase)
                        ? " The database is locked: another connector instance (in this or another process) using the same state.dir may be running."
                        : string.Empty;
                    throw new IOException(
                        $"Cannot open the offset mirror (RocksDB) in '{location}': {message}.{hint}");
                }
                if (db.IsInvalid)
                    throw new IOException($"Cannot open the offset mirror (RocksDB) in '{location}': rocksdb_open returned no database.");
            }

            writeOptions = RocksDbNative.rocksdb_writeoptions_create();
            RocksDbNative.rocksdb_writeoptions_set_sync(writeOptions, 1);
            readOptions = RocksDbNative.rocksdb_readoptions_create();

            var mirror = new RocksDbOffsetMirror(location, db, writeOptions, readOptions);
            db = null;
            writeOptions = null;
            readOptions = null;
            return mirror;
        }
        finally
        {
            db?.Dispose();
            writeOptions?.Dispose();
            readOptions?.Dispose();
        }
    }

    /// <inheritdoc />
    public unsafe OffsetRecord? Read(OffsetKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        ObjectDisposedException.ThrowIf(_disposed, this);

        var keyBytes = key.ToBytes();
        nint error = 0;
        nuint length = 0;
        nint value;
        fixed (byte* k = keyBytes)
        {
            value = RocksDbNative.rocksdb_get(_db, _readOptions, k, (nuint)keyBytes.Length, &length, &error);
        }
        RocksDbNative.ThrowIfError(error, $"read of the offset mirror in '{Location}'");
        if (value == 0)
            return null;
        try
        {
            return OffsetRecord.FromBytes(new ReadOnlySpan<byte>((void*)value, checked((int)length)));
        }
        finally
        {
            RocksDbNative.rocksdb_free(value);
        }
    }

    /// <inheritdoc />
    public unsafe void Write(OffsetKey key, OffsetRecord record)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(record);
        ObjectDisposedException.ThrowIf(_disposed, this);

        var keyBytes = key.ToBytes();
        var valueBytes = record.ToBytes();
        nint error = 0;
        fixed (byte* k = keyBytes)
        fixed (byte* v = valueBytes)
        {
            RocksDbNative.rocksdb_put(_db, _writeOptions, k, (nuint)keyBytes.Length, v, (nuint)valueBytes.Length, &error);
        }
        RocksDbNative.ThrowIfError(error, $"write to the offset mirror in '{Location}'");
    }

    /// <inheritdoc />
    public unsafe void Delete(OffsetKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        ObjectDisposedException.ThrowIf(_disposed, this);

        var keyBytes = key.ToBytes();
        nint error = 0;
        fixed (byte* k = keyBytes)
        {
            RocksDbNative.rocksdb_delete(_db, _writeOptions, k, (nuint)keyBytes.Length, &error);
        }
        RocksDbNative.ThrowIfError(error, $"delete from the offset mirror in '{Location}'");
    }

    /// <summary>Closes the database and releases its directory lock. Idempotent.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _db.Dispose();
        _writeOptions.Dispose();
        _readOptions.Dispose();
    }

    /// <inheritdoc />
    public override string ToString() => $"RocksDbOffsetMirror({Location})";
}
