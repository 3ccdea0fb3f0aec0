using System.Globalization;

namespace WalBridge.Bench;

/// <summary>
/// The commit-to-visible breakdown of a live workload: the connector's stage trace (<c>WALBRIDGE_STAGE_TRACE</c>, one
/// line per source-transaction group of each committed Kafka transaction, see src/Connector/Diagnostics/StageTrace.cs)
/// joined, by commit LSN, with what the latency consumer saw (each row's commit time and when it became visible).
/// </summary>
/// <remarks>
/// Stages of one transaction, summing to its commit-to-visible latency: PostgreSQL commit → handed over (walsender
/// decoding and sending, our reading, decoding and framing, until the group was handed to the queue: a group of several
/// transactions is handed over after its last one, which the earlier ones count here); queue wait (the Kafka loop busy
/// with the previous Kafka transaction); linger and begin (<c>transaction.linger.ms</c>, topic check,
/// <c>BeginTransaction</c>); produce (records assembled and handed to librdkafka); broker acks (<c>Flush</c>: the records
/// and the offsets record acknowledged); commit (<c>CommitTransaction</c>); Kafka commit → visible (the consumer's fetch
/// after the commit markers). All clocks are this machine's wall clock.
/// </remarks>
internal static class Stages
{
    public static readonly IReadOnlyList<string> Names =
    [
        "PG commit → handed over", "queue wait", "linger + begin", "produce", "broker acks (flush)", "Kafka commit", "Kafka commit → visible",
    ];

    private readonly record struct Group(ulong First, ulong Last, long HandedOver, long Dequeued, long Began, long Produced, long Flushed, long Committed);

    /// <summary>The breakdown over <paramref name="samples"/>, or null when the trace is missing or matches none.</summary>
    public static List<StageFigure>? Breakdown(string traceFile, IReadOnlyList<VisibleSample> samples)
    {
        if (!File.Exists(traceFile))
        {
            return null;
        }

        var groups = new List<Group>();
        foreach (var line in File.ReadLines(traceFile).Skip(1))
        {
            var f = line.Split(',');
            if (f.Length < 10)
            {
                continue;
            }

            long L(int i) => long.Parse(f[i], CultureInfo.InvariantCulture);
            groups.Add(new Group(ulong.Parse(f[0], CultureInfo.InvariantCulture), ulong.Parse(f[1], CultureInfo.InvariantCulture), L(4), L(5), L(6), L(7), L(8), L(9)));
        }

        groups.Sort((a, b) => a.First.CompareTo(b.First));
        var firsts = groups.Select(g => g.First).ToArray();
        var stages = Names.Select(_ => new List<double>()).ToArray();
        foreach (var sample in samples)
        {
            var i = Array.BinarySearch(firsts, sample.CommitLsn);
            i = i >= 0 ? i : ~i - 1;
            if (i < 0 || sample.CommitLsn > groups[i].Last)
            {
                continue;
            }

            var g = groups[i];
            var commit = Micros(sample.Committed);
            var visible = Micros(sample.Visible);
            var taken = Math.Max(g.Dequeued, g.HandedOver);
            long[] bounds = [commit, g.HandedOver, taken, g.Began, g.Produced, g.Flushed, g.Committed, visible];
            for (var s = 0; s < stages.Length; s++)
            {
                stages[s].Add((bounds[s + 1] - bounds[s]) / 1000.0);
            }
        }

        if (stages[0].Count == 0)
        {
            return null;
        }

        return [.. Names.Select((name, s) =>
        {
            var sorted = stages[s].Order().ToArray();
            return new StageFigure { Stage = name, P50Ms = Percentile(sorted, 0.50), P99Ms = Percentile(sorted, 0.99), MeanMs = sorted.Average() };
        })];
    }

    public static double Percentile(double[] sorted, double q) =>
        sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Length) - 1, 0, sorted.Length - 1)];

    private static long Micros(DateTime utc) => (utc.Ticks - DateTime.UnixEpoch.Ticks) / 10;
}
