using WalBridge.Connector.Verification;

namespace WalBridge.Connector.Cli;

/// <summary>
/// <c>connector verify</c>: audits a pipeline (every table topic of every enabled format and the offsets topic, read
/// with <c>read_committed</c>) against the source: with Debezium formats, one <c>verified:</c> line per format before
/// the summary. Exit 0 when everything matches, 1 otherwise.
/// </summary>
internal static class VerifyCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        var config = RunCommand.LoadConfig(args, out _);
        Console.WriteLine($"verify: connector {config.Name}, topics {config.TopicPrefix}.*, offsets {config.OffsetsTopic}, source {config.DatabaseHost}:{config.DatabasePort}/{config.DatabaseName}");
        var report = await PipelineVerifier.VerifyAsync(config, line => Console.WriteLine($"  {line}"), CancellationToken.None);
        var offset = report.LatestOffset is null ? "none" : report.LatestOffset.CommitLsn.ToString();
        if (report.Passed)
        {
            var formats = report.Tables.GroupBy(t => t.Format).ToList();
            if (formats.Count > 1 || formats.Any(f => f.Key != "arrow"))
            {
                foreach (var format in formats)
                {
                    Console.WriteLine($"verified: {format.Key}: {format.Count()} tables, {format.Sum(t => t.SourceRows):N0} rows equal to the source, rebuilt from {format.Sum(t => t.Changes):N0} changes");
                }
            }

            Console.WriteLine($"verified: {report.Tables.Count} tables, {report.Tables.Sum(t => t.SourceRows):N0} rows equal to the source, " +
                              $"{report.Tables.Sum(t => t.Changes):N0} changes, no duplicates, commit order kept; offsets record at {offset}");
            return 0;
        }
        Console.WriteLine($"FAILED: {report.Tables.Count(t => !t.Matches)} of {report.Tables.Count} tables differ, {report.OffsetProblems.Count} offsets problems (details above)");
        return 1;
    }
}
