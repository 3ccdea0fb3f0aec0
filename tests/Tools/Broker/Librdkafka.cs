using System.Reflection;
using System.Runtime.InteropServices;

namespace WalBridge.Broker;

/// <summary>
/// Locates and loads the librdkafka built from source by <c>scripts/setup.sh</c>
/// (<c>.cache/librdkafka/current/lib/librdkafka.so.1</c>) for this assembly's own imports of the
/// mock-cluster API.
/// </summary>
/// <remarks>
/// <para>
/// Why a source build: the mock cluster of the shipped librdkafka (2.16.0) still ignores aborted
/// transactions in Fetch, so a <c>read_committed</c> consumer would see aborted records, and it has no
/// CreateTopics; our patches (scripts/patches) add both. Only the test broker uses this build: Kafka clients, in the connector
/// and in the tests, use Confluent.Kafka with its <c>librdkafka.redist</c> package as shipped.
/// </para>
/// <para>
/// Threading: <see cref="EnsureLoaded"/> is thread-safe and idempotent. Lifetime: the library stays
/// loaded for the life of the process. It installs the one <see cref="NativeLibrary.SetDllImportResolver"/>
/// of the WalBridge.Broker assembly.
/// </para>
/// </remarks>
public static class Librdkafka
{
    /// <summary>Environment variable that may name the full path of <c>librdkafka.so.1</c>.</summary>
    public const string PathEnvironmentVariable = "WALBRIDGE_LIBRDKAFKA";

    /// <summary>Path of the library below the repository root.</summary>
    public const string RelativePath = ".cache/librdkafka/current/lib/librdkafka.so.1";

    private static readonly Lock Gate = new();
    private static string? loadedPath;
    private static string? resolverPath;
    private static bool resolversInstalled;

    /// <summary>
    /// Loads librdkafka once per process and returns its full path.
    /// </summary>
    /// <returns>The full path of the loaded <c>librdkafka.so.1</c>.</returns>
    /// <exception cref="InvalidOperationException">
    /// The library was not found (run <c>scripts/setup.sh</c>), or another resolver is already
    /// installed on one of the two assemblies.
    /// </exception>
    /// <exception cref="DllNotFoundException">The library exists but cannot be loaded.</exception>
    public static string EnsureLoaded()
    {
        lock (Gate)
        {
            if (loadedPath is not null)
            {
                return loadedPath;
            }

            var path = Locate();
            resolverPath = path;
            if (!resolversInstalled)
            {
                NativeLibrary.SetDllImportResolver(typeof(Librdkafka).Assembly, Resolve);
                resolversInstalled = true;
            }

            NativeLibrary.Load(path);
            loadedPath = path;
            return path;
        }
    }

    /// <summary>
    /// Finds the library without loading it: <see cref="PathEnvironmentVariable"/> if set,
    /// else <see cref="RelativePath"/> in <see cref="AppContext.BaseDirectory"/> or one of its
    /// parents.
    /// </summary>
    /// <exception cref="InvalidOperationException">Not found.</exception>
    public static string Locate()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable(PathEnvironmentVariable);
        if (!string.IsNullOrEmpty(fromEnvironment))
        {
            if (!File.Exists(fromEnvironment))
            {
                throw new InvalidOperationException(
                    $"{PathEnvironmentVariable} names '{fromEnvironment}', which does not exist.");
            }

            return Path.GetFullPath(fromEnvironment);
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, RelativePath);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException(
            $"librdkafka not found: no {RelativePath} above '{AppContext.BaseDirectory}' and " +
            $"{PathEnvironmentVariable} is not set. Run scripts/setup.sh in the repository root " +
            "to build it.");
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath) =>
        resolverPath is not null && libraryName == "librdkafka" ? NativeLibrary.Load(resolverPath) : IntPtr.Zero;
}
