using System.Runtime.InteropServices;

namespace WalBridge.Connector.Diagnostics;

/// <summary>
/// Keeps glibc's allocator from holding on to memory librdkafka has freed. librdkafka copies every
/// record value (up to <c>message.max.bytes</c>, ~1 MB) with malloc on its own threads; glibc's
/// dynamic mmap threshold then moves such blocks from mmap into per-thread arenas, which it rarely
/// returns to the system, so RSS climbs with the amount ever produced. A fixed threshold keeps
/// large blocks on mmap (unmapped when freed) and two arenas bound fragmentation.
/// Call once, first thing in Main, before any native library allocates. No-op off glibc.
/// </summary>
internal static partial class NativeMemory
{
    private const int MallocTrimThreshold = -1;
    private const int MallocMmapThreshold = -3;
    private const int MallocArenaMax = -8;

    public static void ConfigureAllocator()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        try
        {
            _ = MallOpt(MallocMmapThreshold, 128 * 1024);
            _ = MallOpt(MallocTrimThreshold, 1 * 1024 * 1024);
            _ = MallOpt(MallocArenaMax, 2);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // musl or another libc: nothing to tune.
        }
    }

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int MallOpt(int parameter, int value);
}
