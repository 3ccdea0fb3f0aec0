using System.Text.RegularExpressions;

namespace WalBridge.Connector.Tests;

/// <summary>
/// Issue 10: the connector's folders (one per stage, docs/ARCHITECTURE.md) have no cycles between them, and the
/// product never depends on test tooling. Read from the source tree: a folder uses another when one of its files
/// names that folder's namespace in a using directive or a qualified name.
/// </summary>
public partial class LayoutTests
{
    private static readonly string[] s_crossCutting = ["Configuration", "Errors", "Diagnostics"];

    [Fact]
    public void Folders_of_the_connector_have_no_cycles()
    {
        var graph = FolderGraph();
        Assert.True(graph.Count >= 10, $"only {graph.Count} folders found under src/Connector");
        foreach (var start in graph.Keys)
        {
            var path = FindCycle(graph, start, [start]);
            Assert.True(path is null, $"folders form a cycle: {string.Join(" → ", path ?? [])}");
        }
    }

    [Fact]
    public void Cross_cutting_folders_use_no_stage()
    {
        var graph = FolderGraph();
        foreach (var folder in s_crossCutting)
        {
            var uses = graph.GetValueOrDefault(folder, []).Where(u => !s_crossCutting.Contains(u)).ToList();
            Assert.True(uses.Count == 0, $"{folder} uses {string.Join(", ", uses)}");
        }
    }

    [Fact]
    public void Nothing_that_ships_references_test_tooling()
    {
        var src = Path.Combine(Root, "src");
        foreach (var project in Directory.EnumerateFiles(src, "*.csproj", SearchOption.AllDirectories))
        {
            foreach (Match reference in ProjectReference().Matches(File.ReadAllText(project)))
            {
                var target = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(project)!, reference.Groups[1].Value.Replace('\\', '/')));
                Assert.True(target.StartsWith(src + "/", StringComparison.Ordinal),
                    $"{Path.GetRelativePath(Root, project)} references {Path.GetRelativePath(Root, target)}, which is not a shipped project under src/");
            }
        }
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Root, "src"), "*.cs", SearchOption.AllDirectories).Where(f => !f.Contains("/obj/", StringComparison.Ordinal)))
        {
            Assert.DoesNotContain("WalBridge.Broker", File.ReadAllText(file), StringComparison.Ordinal);
        }
    }

    private static Dictionary<string, HashSet<string>> FolderGraph()
    {
        var connector = Path.Combine(Root, "src", "Connector");
        var graph = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(connector, "*.cs", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(connector, file);
            if (relative.StartsWith("obj", StringComparison.Ordinal) || relative.StartsWith("bin", StringComparison.Ordinal) || !relative.Contains('/', StringComparison.Ordinal))
            {
                continue;
            }

            var folder = relative[..relative.IndexOf('/', StringComparison.Ordinal)];
            var uses = graph.TryGetValue(folder, out var set) ? set : graph[folder] = [];
            foreach (Match match in NamespaceUse().Matches(File.ReadAllText(file)))
            {
                var used = match.Groups[1].Value;
                if (used != folder)
                {
                    uses.Add(used);
                }
            }
        }
        return graph;
    }

    private static List<string>? FindCycle(Dictionary<string, HashSet<string>> graph, string node, List<string> path)
    {
        foreach (var next in graph.GetValueOrDefault(node, []))
        {
            if (next == path[0])
            {
                return [.. path, next];
            }

            if (path.Contains(next))
            {
                continue;
            }

            if (FindCycle(graph, next, [.. path, next]) is { } cycle)
            {
                return cycle;
            }
        }
        return null;
    }

    private static string Root
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Connector.sln")))
                {
                    return dir.FullName;
                }
            }
            throw new DirectoryNotFoundException("Connector.sln not found above " + AppContext.BaseDirectory);
        }
    }

    [GeneratedRegex("<ProjectReference Include=\"([^\"]+)\"")]
    private static partial Regex ProjectReference();

    [GeneratedRegex(@"WalBridge\.Connector\.([A-Z][A-Za-z]+)")]
    private static partial Regex NamespaceUse();
}
