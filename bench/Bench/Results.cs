namespace WalBridge.Bench;

/// <summary>Every figure of one path on one workload (JSON: snake_case; null = not measured or not applicable).</summary>
internal sealed class PathResult
{
    public required string Path { get; init; }
    public string Display => PathNames.Display(Path);
    /// <summary>Wall time from the consumer's start until the last change was delivered (committed and visible, for Kafka paths).</summary>
    public double? Seconds { get; set; }
    /// <summary>Part of <see cref="Seconds"/> before streaming began (process start, connections, Kafka InitTransactions).</summary>
    public double? StartupSeconds { get; set; }
    public long? Rows { get; set; }
    public double? RowsPerSecond { get; set; }
    /// <summary>Payload bytes: Kafka record values (ours read back with read_committed; the peer's JSON), or the pgoutput stream (peek, pg_recvlogical).</summary>
    public long? PayloadBytes { get; set; }
    public long? Records { get; set; }
    public double? PayloadMegabytesPerSecond { get; set; }
    /// <summary>CPU seconds (user + system) of the client process: the connector, pg_recvlogical, node; the backend for peek.</summary>
    public double? CpuSeconds { get; set; }
    public double? CpuSecondsPerMillionRows { get; set; }
    /// <summary>CPU seconds of the walsender serving this path's slot (the server-side decoding).</summary>
    public double? WalSenderCpuSeconds { get; set; }
    /// <summary>CPU seconds of the local broker process while this path ran (Kafka paths).</summary>
    public double? BrokerCpuSeconds { get; set; }
    public double? PeakRssMegabytes { get; set; }
    public double? LatencyP50Ms { get; set; }
    public double? LatencyP99Ms { get; set; }
    public double? LatencyMaxMs { get; set; }
    public long? LatencySamples { get; set; }
    /// <summary>rows/s divided by pg_recvlogical's (throughput workloads).</summary>
    [System.Text.Json.Serialization.JsonPropertyName("ratio_vs_pg_recvlogical")]
    public double? RatioVsPgRecvLogical { get; set; }
    /// <summary>Throughput: rows/s divided by the peer's. Latency (W5): the peer's p99 divided by this path's (above 1 = faster).</summary>
    public double? RatioVsPeer { get; set; }
    public string? Note { get; set; }
    public string? Error { get; set; }
}

internal sealed class WorkloadResult
{
    public required string Id { get; init; }
    public required string Title { get; init; }
    public required long Rows { get; init; }
    public required long Transactions { get; init; }
    public double? GenerateSeconds { get; set; }
    public long? WalBytes { get; set; }
    public List<PathResult> Paths { get; } = [];

    public PathResult? Find(string path) => Paths.Find(p => p.Path == path && p.Error is null);

    /// <summary>Fills the ratios of every path against pg_recvlogical and the peer.</summary>
    public void ComputeRatios(bool latency)
    {
        var recv = Find(PathNames.PgRecvLogical);
        var peer = Find(PathNames.Peer);
        foreach (var path in Paths.Where(p => p.Error is null))
        {
            if (latency)
            {
                if (peer?.LatencyP99Ms is > 0 && path.LatencyP99Ms is > 0)
                {
                    path.RatioVsPeer = peer.LatencyP99Ms / path.LatencyP99Ms;
                }

                continue;
            }
            if (recv?.RowsPerSecond is > 0 && path.RowsPerSecond is not null)
            {
                path.RatioVsPgRecvLogical = path.RowsPerSecond / recv.RowsPerSecond;
            }

            if (peer?.RowsPerSecond is > 0 && path.RowsPerSecond is not null)
            {
                path.RatioVsPeer = path.RowsPerSecond / peer.RowsPerSecond;
            }
        }
    }
}

internal sealed class MachineInfo
{
    public required int Processors { get; init; }
    public required string CpuModel { get; init; }
    public required double MemoryGigabytes { get; init; }
    public required string Kernel { get; init; }
    public required string PostgresVersion { get; init; }
    public required string DotnetVersion { get; init; }
    public required string NodeVersion { get; init; }

    public static string Describe(MachineInfo m) =>
        $"{m.Processors} CPUs ({m.CpuModel}), {m.MemoryGigabytes:F1} GiB, Linux {m.Kernel}, {m.PostgresVersion}, .NET {m.DotnetVersion}, Node {m.NodeVersion}";
}

internal sealed class BenchReport
{
    public required string Commit { get; init; }
    public required DateTime StartedUtc { get; init; }
    public double TotalSeconds { get; set; }
    public required bool Quick { get; init; }
    public string? CommandLine { get; set; }
    public required MachineInfo Machine { get; init; }
    public required IReadOnlyDictionary<string, string> ConnectorSettings { get; init; }
    public List<WorkloadResult> Workloads { get; } = [];
}
