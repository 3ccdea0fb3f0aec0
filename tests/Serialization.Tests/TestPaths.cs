namespace WalBridge.Serialization.Tests;

/// <summary>Locates the shared conformance data (env WALBRIDGE_SHARED, or a <c>shared</c> directory beside an ancestor of the test binaries).</summary>
internal static class TestPaths
{
    private static readonly Lazy<string> SharedDir = new(FindShared);

    public static string Shared => SharedDir.Value;

    public static string ArrowTesting => Path.Combine(Shared, "arrow-testing");

    public static string Gold(string version, string name) => Path.Combine(ArrowTesting, version, name);

    private static string FindShared()
    {
        string? env = Environment.GetEnvironmentVariable("WALBRIDGE_SHARED");
        if (!string.IsNullOrEmpty(env))
        {
            return env;
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "shared");
            if (Directory.Exists(Path.Combine(candidate, "arrow-testing")))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException("shared/arrow-testing not found above " + AppContext.BaseDirectory + "; set WALBRIDGE_SHARED.");
    }
}
