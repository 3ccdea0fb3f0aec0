namespace WalBridge.Bench;

/// <summary>Every figure of one path on one workload (JSON: snake_case; null = not measured or not applicable).</summary>
internal sealed class PathResult
{
    public required string Path { get; init; }
    /// <summary>Settings this run had beyond the path's defaults (the compression comparison), e.g. <c>kafka.compression.type=lz4</c>; null for the defaults.</summary>
    public string? Variant { get; init; }
    public string Display => PathNames.Display(Path);
    /// <summary>How tables name this run: the path, and its variant in brackets.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string Label => Variant is null ? PathNames.Display(Path) : $"{PathNames.Display(Path)} [{Variant}]";
    /// <summary>Wall time from the consumer's start until the last change was delivered (committed and visible, for Kafka paths).</summary>
    public double? Seconds { get; set; }
    /// <summary>Part of <see cref="Seconds"/> before streaming began (process start, connections, Kafka InitTransactions).</summary>
    public double? StartupSeconds { get; set; }
    public long? Rows { get; set; }
    public double? RowsPerSecond { get; set; }
    /// <summary>Payload bytes: Kafka record values (ours read back with read_committed; the peer's JSON), or the pgoutput stream (peek, pg_recvlogical).</summary>
    public long? PayloadBytes { get; set; }
    public long? Records { get; set; }
    /// <summary>
    /// Kafka bytes of the table topic as a consumer sees the records: value + key + header keys and values, summed over
    /// every record read back with read_committed (ours and the peer's). For pg_recvlogical and peek: the pgoutput stream.
    /// </summary>
    public long? KafkaBytes { get; set; }
    public double? KafkaBytesPerRow { get; set; }
    /// <summary>
    /// Bytes the read-back consumer fetched from the brokers for the topic (librdkafka's <c>rxbytes</c>): the stored record
    /// batches as they are kept, so Kafka's <c>compression.type</c> shows here, plus transaction markers and protocol framing.
    /// </summary>
    public long? FetchedBytes { get; set; }
    public double? FetchedBytesPerRow { get; set; }
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
    /// <summary>Live workloads: transactions per second offered (the achieved write rate is <see cref="RowsPerSecond"/>).</summary>
    public double? OfferedRate { get; set; }
    /// <summary>Live workloads: transactions written but not yet visible to the consumer when writing stopped.</summary>
    public long? LagAtEnd { get; set; }
    /// <summary>Live workloads: seconds from the end of writing until the last transaction was visible.</summary>
    public double? DrainSeconds { get; set; }
    /// <summary>Live workloads, WalBridge: where the commit-to-visible time goes (see docs/benchmarks.md).</summary>
    public List<StageFigure>? LatencyStages { get; set; }
    /// <summary>rows/s divided by pg_recvlogical's (throughput workloads).</summary>
    [System.Text.Json.Serialization.JsonPropertyName("ratio_vs_pg_recvlogical")]
    public double? RatioVsPgRecvLogical { get; set; }
    /// <summary>Throughput: rows/s divided by the peer's. Latency (W5): the peer's p99 divided by this path's (above 1 = faster).</summary>
    public double? RatioVsPeer { get; set; }
    /// <summary>W6: the sessions reading the snapshot (<c>snapshot.max.threads</c>; the baseline's COPY sessions).</summary>
    public int? SnapshotThreads { get; set; }
    /// <summary>W6: rows/s divided by the binary COPY baseline's with as many sessions, in the same run.</summary>
    [System.Text.Json.Serialization.JsonPropertyName("ratio_vs_copy")]
    public double? RatioVsCopy { get; set; }
    public string? Note { get; set; }
    public string? Error { get; set; }
}

/// <summary>One stage of the commit-to-visible latency, over every sampled transaction.</summary>
internal sealed class StageFigure
{
    public required string Stage { get; init; }
    public required double P50Ms { get; init; }
    public required double P99Ms { get; init; }
    public required double MeanMs { get; init; }
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

    /// <summary>The path's successful run with its default settings.</summary>
    public PathResult? Find(string path) => Paths.Find(p => p.Path == path && p.Variant is null && p.Error is null);

    /// <summary>Fills the ratios of every path against pg_recvlogical and the peer.</summary>
    public void ComputeRatios(bool latency)
    {
        foreach (var path in Paths.Where(p => p.Error is null && p.SnapshotThreads is not null))
        {
            var copy = Paths.Find(p => p.Path == PathNames.CopyBaseline && p.SnapshotThreads == path.SnapshotThreads && p.Error is null);
            if (copy?.RowsPerSecond is > 0 && path.RowsPerSecond is not null)
            {
                path.RatioVsCopy = path.RowsPerSecond / copy.RowsPerSecond;
            }
        }

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
    public double Scale { get; init; } = 1.0;
    public bool Compression { get; init; }
    public string? CommandLine { get; set; }
    public required MachineInfo Machine { get; init; }
    public required IReadOnlyDictionary<string, string> ConnectorSettings { get; init; }
    public List<WorkloadResult> Workloads { get; } = [];
}
