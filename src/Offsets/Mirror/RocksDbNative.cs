using System.Reflection;
using System.Runtime.InteropServices;

namespace WalBridge.Offsets.Mirror;

/// <summary>
/// The few functions of RocksDB's C API (<c>rocksdb/c.h</c>, RocksDB 7.8) the offset mirror needs,
/// bound with source-generated P/Invoke.
/// </summary>
/// <remarks>
/// <para>
/// Library resolution: the logical name <c>"rocksdb"</c> is mapped to <c>librocksdb.so.7.8</c>
/// (Debian's <c>librocksdb-dev</c> runtime soname), falling back to <c>librocksdb.so</c>, by a
/// <see cref="NativeLibrary.SetDllImportResolver"/> registered in this class's static constructor.
/// The runtime allows only ONE resolver per assembly: this is the resolver of the whole
/// WalBridge.Offsets assembly. Any other native library this assembly binds must be handled here
/// (names it does not recognise fall through to the default probing), never by a second
/// <c>SetDllImportResolver</c> call, which would throw <see cref="InvalidOperationException"/>.
/// </para>
/// <para>
/// Error convention: functions taking <c>char** errptr</c> receive a pointer to a zero-initialised
/// slot; on failure RocksDB stores a malloc'd message there, which <see cref="ThrowIfError"/> turns
/// into an exception and releases with <c>rocksdb_free</c>. (A pointer rather than an <c>out</c>
/// parameter, because RocksDB frees a non-null previous value.)
/// </para>
/// </remarks>
internal static partial class RocksDbNative
{
    private const string LibraryName = "rocksdb";

    private static readonly string[] s_candidates = ["librocksdb.so.7.8", "librocksdb.so"];

    static RocksDbNative()
    {
        NativeLibrary.SetDllImportResolver(typeof(RocksDbNative).Assembly, Resolve);
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (libraryName != LibraryName)
            return IntPtr.Zero; // default probing for anything else

        foreach (var candidate in s_candidates)
        {
            if (NativeLibrary.TryLoad(candidate, assembly, searchPath, out var handle))
                return handle;
        }

        throw new DllNotFoundException(
            $"RocksDB's native library was not found (tried {string.Join(", ", s_candidates)}). " +
            "Install the RocksDB 7.8 shared library (Debian: librocksdb7.8 / librocksdb-dev).");
    }

    /// <summary>Throws an <see cref="IOException"/> carrying RocksDB's message if <paramref name="error"/> is set, freeing it.</summary>
    internal static void ThrowIfError(nint error, string operation)
    {
        if (error == 0)
            return;
        throw new IOException($"RocksDB {operation} failed: {TakeError(error)}");
    }

    /// <summary>Copies and frees a RocksDB error message.</summary>
    internal static string TakeError(nint error)
    {
        try
        {
            return Marshal.PtrToStringUTF8(error) ?? "(no message)";
        }
        finally
        {
            rocksdb_free(error);
        }
    }

    // --- options ---

    [LibraryImport(LibraryName)]
    internal static partial RocksDbOptionsHandle rocksdb_options_create();

    [LibraryImport(LibraryName)]
    internal static partial void rocksdb_options_destroy(nint options);

    [LibraryImport(LibraryName)]
    internal static partial void rocksdb_options_set_create_if_missing(RocksDbOptionsHandle options, byte value);

    [LibraryImport(LibraryName)]
    internal static partial RocksDbWriteOptionsHandle rocksdb_writeoptions_create();

    [LibraryImport(LibraryName)]
    internal static partial void rocksdb_writeoptions_destroy(nint options);

    [LibraryImport(LibraryName)]
    internal static partial void rocksdb_writeoptions_set_sync(RocksDbWriteOptionsHandle options, byte value);

    [LibraryImport(LibraryName)]
    internal static partial RocksDbReadOptionsHandle rocksdb_readoptions_create();

    [LibraryImport(LibraryName)]
    internal static partial void rocksdb_readoptions_destroy(nint options);

    // --- database ---

    [LibraryImport(LibraryName, StringMarshalling = StringMarshalling.Utf8)]
    internal static unsafe partial RocksDbHandle rocksdb_open(RocksDbOptionsHandle options, string name, nint* errptr);

    [LibraryImport(LibraryName)]
    internal static partial void rocksdb_close(nint db);

    [LibraryImport(LibraryName)]
    internal static unsafe partial void rocksdb_put(
        RocksDbHandle db, RocksDbWriteOptionsHandle options,
        byte* key, nuint keylen, byte* val, nuint vallen, nint* errptr);

    /// <summary>Returns a malloc'd value (free with <see cref="rocksdb_free"/>) or null if the key is absent.</summary>
    [LibraryImport(LibraryName)]
    internal static unsafe partial nint rocksdb_get(
        RocksDbHandle db, RocksDbReadOptionsHandle options,
        byte* key, nuint keylen, nuint* vallen, nint* errptr);

    [LibraryImport(LibraryName)]
    internal static unsafe partial void rocksdb_delete(
        RocksDbHandle db, RocksDbWriteOptionsHandle options,
        byte* key, nuint keylen, nint* errptr);

    [LibraryImport(LibraryName)]
    internal static partial void rocksdb_free(nint ptr);
}

/// <summary>Owns a <c>rocksdb_t*</c>; releasing closes the database (and its file lock).</summary>
internal sealed class RocksDbHandle : SafeHandle
{
    public RocksDbHandle() : base(0, ownsHandle: true) { }

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        RocksDbNative.rocksdb_close(handle);
        return true;
    }
}

/// <summary>Owns a <c>rocksdb_options_t*</c>.</summary>
internal sealed class RocksDbOptionsHandle : SafeHandle
{
    public RocksDbOptionsHandle() : base(0, ownsHandle: true) { }

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        RocksDbNative.rocksdb_options_destroy(handle);
        return true;
    }
}

/// <summary>Owns a <c>rocksdb_writeoptions_t*</c>.</summary>
internal sealed class RocksDbWriteOptionsHandle : SafeHandle
{
    public RocksDbWriteOptionsHandle() : base(0, ownsHandle: true) { }

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        RocksDbNative.rocksdb_writeoptions_destroy(handle);
        return true;
    }
}

/// <summary>Owns a <c>rocksdb_readoptions_t*</c>.</summary>
internal sealed class RocksDbReadOptionsHandle : SafeHandle
{
    public RocksDbReadOptionsHandle() : base(0, ownsHandle: true) { }

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        RocksDbNative.rocksdb_readoptions_destroy(handle);
        return true;
    }
}
