using System.Reflection;
using System.Runtime.InteropServices;

namespace WalBridge.Broker;

/// <summary>
/// Locates and loads the librdkafka built from source by <c>scripts/setup.sh</c>
/// (<c>.cache/librdkafka/current/lib/librdkafka.so.1</c>) for Confluent.Kafka and for this
/// assembly's own imports of the mock-cluster API.
/// </summary>
/// <remarks>
/// <para>
/// Why: the NuGet mirror has no <c>librdkafka.redist</c> binaries, and on Debian
/// Confluent.Kafka's own loader fails on <c>libdl</c> (only <c>libdl.so.2</c> exists).
/// </para>
/// <para>
/// Threading: <see cref="EnsureLoaded"/> is thread-safe and idempotent; call it before creating
/// any Confluent.Kafka client. Lifetime: the library stays loaded for the life of the process.
/// </para>
/// <para>
/// Only one <see cref="NativeLibrary.SetDllImportResolver"/> can exist per assembly: this
/// class installs the resolvers of Confluent.Kafka's assembly and of WalBridge.Broker, so no
/// other code in the process may install one on those two assemblies (it would throw
/// <see cref="InvalidOperationException"/>, or make this class throw if it ran first).
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
                NativeLibrary.SetDllImportResolver(typeof(Confluent.Kafka.Library).Assembly, Resolve);
                NativeLibrary.SetDllImportResolver(typeof(Librdkafka).Assembly, Resolve);
                resolversInstalled = true;
            }

            // Library.Load returns false when a library was already loaded (e.g. by an earlier
            // call with the same path); both cases leave the client usable.
            Confluent.Kafka.Library.Load(path);
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

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        // Confluent.Kafka imports dlopen from "libdl"; Debian 12 only has libdl.so.2.
        if (libraryName is "libdl" or "libdl.so")
        {
            return NativeLibrary.Load("libdl.so.2");
        }

        // "librdkafka" plus Confluent.Kafka's distribution-specific variants
        // ("alpine-librdkafka", "centos8-librdkafka"): all mean our build.
        if (resolverPath is not null &&
            (libraryName.EndsWith("librdkafka", StringComparison.Ordinal) ||
             libraryName.StartsWith("librdkafka.so", StringComparison.Ordinal)))
        {
            return NativeLibrary.Load(resolverPath);
        }

        return IntPtr.Zero;
    }
}
