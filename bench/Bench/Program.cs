using WalBridge.Bench;

// `connector bench` (src/Connector/Program.cs runs this program as a child process): throughput,
// latency, CPU and memory of both WalBridge paths against in-backend decoding, pg_recvlogical and a
// JavaScript peer, all measured in one run. See docs/benchmarks.md.
BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (ArgumentException e)
{
    await Console.Error.WriteLineAsync($"bench: {e.Message}\n\n{BenchOptions.Usage}");
    return 2;
}
if (options.Help)
{
    Console.WriteLine(BenchOptions.Usage);
    return 0;
}

var repoRoot = FindRepositoryRoot();
if (repoRoot is null)
{
    await Console.Error.WriteLineAsync($"bench: cannot find the repository (Connector.sln) above {AppContext.BaseDirectory}");
    return 2;
}

if (options.RenderFrom is { } renderFrom)
{
    var previous = Reporting.ReadJson(renderFrom);
    var target = options.DocsFile ?? Path.Combine(repoRoot, "docs", "benchmarks.md");
    var chartProblem = await Reporting.WriteMarkdownAsync(previous, target);
    Console.WriteLine($"bench: wrote {Path.GetFullPath(target)}{(chartProblem is null ? " and its chart" : $" (no chart: {chartProblem})")}");
    return chartProblem is null ? 0 : 1;
}

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};

BenchReport report;
try
{
    report = await new BenchRunner(options, repoRoot, cancel.Token).RunAsync();
}
catch (OperationCanceledException) when (cancel.IsCancellationRequested)
{
    await Console.Error.WriteLineAsync("bench: interrupted");
    return 130;
}

report.CommandLine = "./connector bench" + (args.Length > 0 ? " " + string.Join(' ', args) : "");
Console.WriteLine();
Console.WriteLine($"bench: finished in {report.TotalSeconds:F0} s");
if (options.JsonFile is { } json)
{
    Reporting.WriteJson(report, json);
    Console.WriteLine($"bench: wrote {Path.GetFullPath(json)}");
}
var docs = options.NoDocs ? null : options.DocsFile ?? (options.Complete && !options.Quick ? Path.Combine(repoRoot, "docs", "benchmarks.md") : null);
if (docs is not null)
{
    var problem = await Reporting.WriteMarkdownAsync(report, docs);
    Console.WriteLine($"bench: wrote {Path.GetFullPath(docs)}{(problem is null ? " and its chart" : $" (no chart: {problem})")}");
}
var failures = report.Workloads.SelectMany(w => w.Paths.Where(p => p.Error is not null).Select(p => $"{w.Id} {p.Path}: {p.Error}")).ToList();
foreach (var failure in failures)
{
    Console.WriteLine($"bench: FAILED {failure}");
}

return failures.Count == 0 ? 0 : 1;

static string? FindRepositoryRoot()
{
    for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
    {
        if (File.Exists(Path.Combine(directory.FullName, "Connector.sln")))
        {
            return directory.FullName;
        }
    }
    return null;
}
