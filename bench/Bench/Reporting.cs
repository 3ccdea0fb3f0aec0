using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace WalBridge.Bench;

/// <summary>The terminal table, the JSON file, docs/benchmarks.md and its gnuplot chart.</summary>
internal static class Reporting
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private static readonly JsonSerializerOptions ReadOptions = new(JsonOptions)
    {
        PreferredObjectCreationHandling = JsonObjectCreationHandling.Populate,
    };

    private static readonly string[] Headers =
        ["path", "time s", "rows/s", "MB/s", "Kafka B/row", "CPU s/M rows", "walsender CPU s", "peak RSS MB", "p50 ms", "p99 ms", "max ms", "× pg_recvlogical", "× peer"];

    private static readonly string[] LiveHeaders = ["live", "offered txn/s", "achieved txn/s", "p50 ms", "p99 ms", "lag at end", "drained after s", "Kafka B/row"];

    private static readonly string[] SnapshotHeaders = ["snapshot", "sessions", "time s", "rows/s", "× COPY", "CPU s", "peak RSS MB", "Kafka B/row", "begins after s"];

    private static readonly string[] CompressionHeaders = ["compression", "rows/s", "× pg_recvlogical", "Kafka B/row", "fetched B/row", "CPU s/M rows", "broker CPU s", "peak RSS MB"];

    private static string Num(double? value, string format) => value is { } v ? v.ToString(format, Invariant) : "–";

    private static string Ratio(double? value) => value is { } v ? v.ToString("F2", Invariant) + "×" : "–";

    private static string[] Cells(PathResult p) =>
    [
        p.Label,
        Num(p.Seconds, "F2"),
        Num(p.RowsPerSecond, "N0"),
        Num(p.PayloadMegabytesPerSecond, "F1"),
        Num(p.KafkaBytesPerRow, "N0"),
        Num(p.CpuSecondsPerMillionRows, "F2"),
        Num(p.WalSenderCpuSeconds, "F2"),
        Num(p.PeakRssMegabytes, "F0"),
        Num(p.LatencyP50Ms, "F1"),
        Num(p.LatencyP99Ms, "F1"),
        Num(p.LatencyMaxMs, "F1"),
        Ratio(p.RatioVsPgRecvLogical),
        Ratio(p.RatioVsPeer),
    ];

    /// <summary>One line per finished path, printed while the run goes on.</summary>
    public static string ProgressLine(PathResult p)
    {
        if (p.Error is not null)
        {
            return $"{p.Label}: FAILED: {p.Error}";
        }

        if (p.Seconds is null)
        {
            return $"{p.Label}: {p.Note}";
        }

        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{p.Label}: {p.Rows:N0} rows in {p.Seconds:F2} s = {p.RowsPerSecond:N0} rows/s");
        if (p.KafkaBytesPerRow is { } perRow)
        {
            text.Append(CultureInfo.InvariantCulture, $", {perRow:N0} Kafka B/row");
        }

        if (p.FetchedBytesPerRow is { } fetched)
        {
            text.Append(CultureInfo.InvariantCulture, $" ({fetched:N0} fetched)");
        }
        if (p.PayloadMegabytesPerSecond is { } mb)
        {
            text.Append(CultureInfo.InvariantCulture, $", {mb:F1} MB/s");
        }

        if (p.CpuSecondsPerMillionRows is { } cpu)
        {
            text.Append(CultureInfo.InvariantCulture, $", {cpu:F2} CPU s/M rows");
        }

        if (p.PeakRssMegabytes is { } rss)
        {
            text.Append(CultureInfo.InvariantCulture, $", peak RSS {rss:F0} MB");
        }

        if (p.StartupSeconds is { } startup)
        {
            text.Append(CultureInfo.InvariantCulture, $", streaming after {startup:F2} s");
        }

        if (p.LatencyP50Ms is { } p50)
        {
            text.Append(CultureInfo.InvariantCulture, $", latency p50 {p50:F1} / p99 {p.LatencyP99Ms:F1} / max {p.LatencyMaxMs:F1} ms");
        }

        if (p.OfferedRate is { } offered)
        {
            text.Append(CultureInfo.InvariantCulture, $", offered {offered:N0}/s, lag at end {p.LagAtEnd:N0}, drained {(p.DrainSeconds is { } d ? $"after {d:F2} s" : "not within 30 s")}");
        }

        return text.ToString();
    }

    /// <summary>The workload's table for the terminal.</summary>
    public static string TextTable(WorkloadResult w)
    {
        var rows = new List<string[]> { Headers };
        rows.AddRange(w.Paths.Select(p => p.Error is not null ? [p.Label, $"FAILED: {p.Error}"]
            : p.Seconds is null ? [p.Label, p.Note ?? "not measured"] : Cells(p)));
        var widths = Enumerable.Range(0, Headers.Length)
            .Select(i => rows.Where(r => r.Length == Headers.Length).Max(r => r[i].Length)).ToArray();
        var text = new StringBuilder();
        text.AppendLine(w.WalBytes is { } wal
            ? string.Create(CultureInfo.InvariantCulture, $"{w.Id}  {w.Title}  (WAL {wal / 1048576.0:F0} MB, written in {w.GenerateSeconds:F1} s)")
            : $"{w.Id}  {w.Title}");
        foreach (var row in rows)
        {
            text.Append("  ");
            if (row.Length != Headers.Length)
            {
                text.AppendLine(string.Join("  ", row));
                continue;
            }
            for (var i = 0; i < row.Length; i++)
            {
                text.Append(i == 0 ? row[i].PadRight(widths[i]) : "  " + row[i].PadLeft(widths[i]));
            }

            text.AppendLine();
        }

        foreach (var extra in new[] { LiveRows(w), CompressionRows(w), SnapshotRows(w) })
        {
            if (extra is not null)
            {
                text.AppendLine();
                text.Append(Aligned(extra));
            }
        }

        return text.ToString().TrimEnd();
    }

    /// <summary>Rows of cells as aligned text (first column left, others right), two spaces of indent.</summary>
    private static string Aligned(List<string[]> rows)
    {
        var widths = Enumerable.Range(0, rows[0].Length).Select(i => rows.Max(r => r[i].Length)).ToArray();
        var text = new StringBuilder();
        foreach (var row in rows)
        {
            text.Append("  ");
            for (var i = 0; i < row.Length; i++)
            {
                text.Append(i == 0 ? row[i].PadRight(widths[i]) : "  " + row[i].PadLeft(widths[i]));
            }

            text.AppendLine();
        }

        return text.ToString();
    }

    /// <summary>Live workloads (W5, W5b): offered and achieved rate, latency, lag when writing stopped, drain time.</summary>
    private static List<string[]>? LiveRows(WorkloadResult w)
    {
        var live = w.Paths.Where(p => p.Error is null && p.OfferedRate is not null).ToList();
        if (live.Count == 0)
        {
            return null;
        }

        var rows = new List<string[]> { LiveHeaders };
        rows.AddRange(live.Select(p => new[]
        {
            p.Label, Num(p.OfferedRate, "N0"), Num(p.RowsPerSecond, "N0"), Num(p.LatencyP50Ms, "F1"), Num(p.LatencyP99Ms, "F1"),
            Num(p.LagAtEnd, "N0"), Num(p.DrainSeconds, "F2"), Num(p.KafkaBytesPerRow, "N0"),
        }));
        return rows;
    }

    /// <summary>W6: each snapshot run and its COPY baseline, with the sessions, the ratio to the baseline, CPU and memory.</summary>
    private static List<string[]>? SnapshotRows(WorkloadResult w)
    {
        var runs = w.Paths.Where(p => p.Error is null && p.Seconds is not null && p.SnapshotThreads is not null).ToList();
        if (runs.Count == 0)
        {
            return null;
        }

        var rows = new List<string[]> { SnapshotHeaders };
        rows.AddRange(runs.Select(p => new[]
        {
            PathNames.Display(p.Path), Num(p.SnapshotThreads, "F0"), Num(p.Seconds, "F2"), Num(p.RowsPerSecond, "N0"),
            Ratio(p.RatioVsCopy), Num(p.CpuSeconds, "F2"), Num(p.PeakRssMegabytes, "F0"),
            Num(p.KafkaBytesPerRow, "N0"), Num(p.StartupSeconds, "F2"),
        }));
        return rows;
    }

    /// <summary>The compression comparison: one row per run with its settings.</summary>
    private static List<string[]>? CompressionRows(WorkloadResult w)
    {
        if (!w.Paths.Any(p => p.Variant is not null && p.SnapshotThreads is null))
        {
            return null;
        }

        var rows = new List<string[]> { CompressionHeaders };
        rows.AddRange(w.Paths.Where(p => p.Error is null && p.Seconds is not null).Select(p => new[]
        {
            p.Label, Num(p.RowsPerSecond, "N0"), Ratio(p.RatioVsPgRecvLogical), Num(p.KafkaBytesPerRow, "N0"), Num(p.FetchedBytesPerRow, "N0"),
            Num(p.CpuSecondsPerMillionRows, "F2"), Num(p.BrokerCpuSeconds, "F2"), Num(p.PeakRssMegabytes, "F0"),
        }));
        return rows;
    }

    private static List<string[]>? StageRows(WorkloadResult w)
    {
        var traced = w.Paths.Where(p => p.Error is null && p.LatencyStages is { Count: > 0 }).ToList();
        if (traced.Count == 0)
        {
            return null;
        }

        List<string[]> rows = [["stage (p50 / p99 / mean ms)", .. traced.Select(p => p.Label)]];
        foreach (var stage in traced[0].LatencyStages!.Select(s => s.Stage))
        {
            rows.Add([stage, .. traced.Select(p => p.LatencyStages!.Find(s => s.Stage == stage) is { } f
                ? string.Create(Invariant, $"{f.P50Ms:F2} / {f.P99Ms:F2} / {f.MeanMs:F2}") : "–")]);
        }

        rows.Add(["total (commit → visible)", .. traced.Select(p => string.Create(Invariant, $"{p.LatencyP50Ms:F2} / {p.LatencyP99Ms:F2} / –"))]);
        return rows;
    }

    /// <summary>The latency breakdown of a live workload's WalBridge paths for the terminal, or null without one.</summary>
    public static string? StageTable(WorkloadResult w) =>
        StageRows(w) is { } rows ? $"  {w.Id} commit → visible, per stage (WALBRIDGE_STAGE_TRACE)\n" + Aligned(rows).TrimEnd() : null;

    private static void MarkdownTable(StringBuilder md, List<string[]> rows)
    {
        md.AppendLine("| " + string.Join(" | ", rows[0]) + " |");
        md.AppendLine("|---|" + string.Concat(Enumerable.Repeat("--:|", rows[0].Length - 1)));
        foreach (var row in rows.Skip(1))
        {
            md.AppendLine("| " + string.Join(" | ", row.Select(c => c.Replace("|", "\\|", StringComparison.Ordinal))) + " |");
        }

        md.AppendLine();
    }

    /// <summary>Reads a report written by <see cref="WriteJson"/> (to render the Markdown again).</summary>
    public static BenchReport ReadJson(string file) =>
        JsonSerializer.Deserialize<BenchReport>(File.ReadAllText(file), ReadOptions) ?? throw new InvalidDataException($"{file} holds no report");

    public static void WriteJson(BenchReport report, string file)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(file));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }

        File.WriteAllText(file, JsonSerializer.Serialize(report, JsonOptions) + "\n");
    }

    /// <summary>
    /// Writes the chart of rows/s per throughput workload and path with gnuplot; returns null, or
    /// why no chart was made.
    /// </summary>
    public static async Task<string?> WriteChartAsync(BenchReport report, string png)
    {
        var throughput = report.Workloads.Where(w => !w.Id.StartsWith("W5", StringComparison.Ordinal) && w.Id != PathNames.SnapshotWorkload).ToList();
        if (throughput.Count == 0)
        {
            return "no throughput workload ran";
        }

        var paths = PathNames.All.Where(p => throughput.Any(w => w.Find(p)?.RowsPerSecond is not null)).ToList();
        var work = Path.Combine(Path.GetTempPath(), $"walbridge-bench-chart-{Environment.ProcessId}");
        Directory.CreateDirectory(work);
        try
        {
            var data = new StringBuilder();
            data.AppendLine("# workload " + string.Join(' ', paths));
            foreach (var w in throughput)
            {
                data.Append('"').Append(w.Id).Append('"');
                foreach (var p in paths)
                {
                    data.Append(' ').Append(w.Find(p)?.RowsPerSecond is { } r ? r.ToString("F0", Invariant) : "?");
                }

                data.AppendLine();
            }
            var dataFile = Path.Combine(work, "rows.dat");
            await File.WriteAllTextAsync(dataFile, data.ToString());
            var plots = paths.Select((p, i) =>
                $"'{dataFile}' using {i + 2}{(i == 0 ? ":xtic(1)" : "")} title \"{PathNames.Display(p).Replace("→", "->", StringComparison.Ordinal)}\"");
            var script = $"""
                set terminal pngcairo size 1100,600 font "DejaVu Sans,10" noenhanced
                set output '{png}'
                set datafile missing '?'
                set title "rows/s per workload and path ({(report.Quick ? "quick run, " : "")}commit {report.Commit}, {report.Machine.Processors} CPUs)"
                set style data histogram
                set style histogram clustered gap 1
                set style fill solid 0.85 border -1
                set boxwidth 0.9
                set key top right
                set grid ytics
                set ylabel "rows/s (drained backlog)"
                set format y "%.0s%c"
                set yrange [0:*]
                set xrange [-0.6:{throughput.Count - 0.4}]
                plot {string.Join(", \\\n     ", plots)}
                """;
            var scriptFile = Path.Combine(work, "chart.gp");
            await File.WriteAllTextAsync(scriptFile, script);
            var output = await BenchRunner.CommandOutputAsync("gnuplot", [scriptFile], includeErrors: true, requireSuccess: false);
            return File.Exists(png) && new FileInfo(png).Length > 0 ? null : $"gnuplot made no chart: {output ?? "gnuplot is not installed (Debian package gnuplot-nox)"}";
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private const string AnalysisStart = "<!-- analysis:start -->";
    private const string AnalysisEnd = "<!-- analysis:end -->";

    /// <summary>
    /// Writes docs/benchmarks.md (and the chart next to it, under benchmarks/). A hand-written section
    /// between the analysis markers of an existing file is kept.
    /// </summary>
    public static async Task<string?> WriteMarkdownAsync(BenchReport report, string file)
    {
        var full = Path.GetFullPath(file);
        var directory = Path.GetDirectoryName(full)!;
        var chartDirectory = Path.Combine(directory, "benchmarks");
        Directory.CreateDirectory(chartDirectory);
        var png = Path.Combine(chartDirectory, "rows-per-second.png");
        var chartProblem = await WriteChartAsync(report, png);

        var analysis = "";
        if (File.Exists(full))
        {
            var old = await File.ReadAllTextAsync(full);
            var start = old.IndexOf(AnalysisStart, StringComparison.Ordinal);
            var end = old.IndexOf(AnalysisEnd, StringComparison.Ordinal);
            if (start >= 0 && end > start)
            {
                analysis = old[(start + AnalysisStart.Length)..end].Trim();
            }
        }

        var m = report.Machine;
        var md = new StringBuilder();
        md.AppendLine("# Benchmarks");
        md.AppendLine();
        md.AppendLine("Throughput, latency, CPU and memory of both WalBridge paths, measured in one run against PostgreSQL's own");
        md.AppendLine("ceiling and a peer, so every figure comes with its baselines from the same machine at the same time. This file");
        md.AppendLine("is written by `./connector bench` (a full run with every workload); the analysis section is kept across runs.");
        md.AppendLine();
        md.AppendLine("```sh");
        md.AppendLine("./connector bench                       # full run (about 15 minutes); rewrites this file and its chart");
        md.AppendLine("./connector bench --quick --json /tmp/b.json   # scaled down, under 3 minutes; every figure as JSON");
        md.AppendLine("./connector bench --compression --json /tmp/c.json   # W1–W3 with Kafka and Arrow compression variants");
        md.AppendLine("./connector bench --workloads W6 --json /tmp/w6.json   # the initial snapshot against binary COPY");
        md.AppendLine("```");
        md.AppendLine();
        md.AppendLine("## Latest run");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"- commit `{report.Commit}`, {report.StartedUtc:yyyy-MM-dd HH:mm} UTC, {(report.Quick ? "quick" : "full")} run, {report.TotalSeconds / 60:F1} minutes");
        md.AppendLine(CultureInfo.InvariantCulture, $"- machine: {m.Processors} CPUs (`nproc`), {m.CpuModel}, {m.MemoryGigabytes:F1} GiB memory, Linux {m.Kernel}");
        md.AppendLine(CultureInfo.InvariantCulture, $"- {m.PostgresVersion}, .NET {m.DotnetVersion}, Node {m.NodeVersion}; broker: the local Kafka-protocol broker (librdkafka mock cluster, 3 brokers, own process)");
        if (report.ConnectorSettings.Count > 0)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"- connector settings beyond the defaults: {string.Join(", ", report.ConnectorSettings.Select(kv => $"`{kv.Key}={kv.Value}`"))}");
        }

        if (report.CommandLine is { } commandLine)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"- command: `{commandLine}`");
        }

        md.AppendLine();
        md.AppendLine(chartProblem is null ? "![rows/s per workload and path](benchmarks/rows-per-second.png)" : $"(no chart: {chartProblem})");
        md.AppendLine();
        md.AppendLine("| workload | path | time s | rows/s | MB/s | Kafka B/row | CPU s/M rows | walsender CPU s | peak RSS MB | p50 ms | p99 ms | max ms | × pg_recvlogical | × peer |");
        md.AppendLine("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        foreach (var w in report.Workloads)
        {
            foreach (var p in w.Paths)
            {
                if (p.Error is not null)
                {
                    md.AppendLine(CultureInfo.InvariantCulture, $"| {w.Id} | {p.Label} | failed: {p.Error.Replace("|", "\\|", StringComparison.Ordinal)} ||||||||||||");
                    continue;
                }
                if (p.Seconds is null)
                {
                    continue;
                }

                var cells = Cells(p);
                var ours = PathNames.IsConnector(p.Path);
                md.Append(CultureInfo.InvariantCulture, $"| {w.Id} | {(ours ? $"**{cells[0]}**" : cells[0])} |");
                foreach (var cell in cells.Skip(1))
                {
                    md.Append(' ').Append(cell).Append(" |");
                }

                md.AppendLine();
            }
        }
        md.AppendLine();
        foreach (var w in report.Workloads)
        {
            foreach (var (title, rows) in (List<(string, List<string[]>?)>)[("live load", LiveRows(w)), ("commit → visible per stage, WalBridge (p50 / p99 / mean ms)", StageRows(w)), ("compression", CompressionRows(w)), ("initial snapshot against binary COPY to /dev/null", SnapshotRows(w))])
            {
                if (rows is not null)
                {
                    md.AppendLine(CultureInfo.InvariantCulture, $"**{w.Id}, {title}**");
                    md.AppendLine();
                    MarkdownTable(md, rows);
                }
            }
        }

        md.AppendLine("Workloads:");
        md.AppendLine();
        foreach (var w in report.Workloads)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"- **{w.Id}**: {w.Title}{(w.WalBytes is { } wal ? $"; {wal / 1048576.0:F0} MB of WAL, written in {w.GenerateSeconds:F1} s" : "")}.");
        }

        md.AppendLine();
        md.AppendLine("## Method");
        md.AppendLine();
        md.AppendLine("""
            - **One throwaway PostgreSQL 15** for the whole run (`fsync=off`, `synchronous_commit=on`, `shared_buffers=512MB`,
              `logical_decoding_work_mem` default 64 MB) and, per workload, a new database and a new local broker.
            - **Drained backlog (W1–W4).** Every path gets its own slot, created before the workload, so all of them decode the
              same WAL; the workload runs; then each path runs alone, one after the other. The target is a WAL position inside
              the workload's last transaction, after its changes and before its commit record.
            - **in-backend decode**: `pg_logical_slot_peek_binary_changes(slot, NULL, NULL, 'proto_version', '1',
              'publication_names', 'bench_pub')` with `count(*)` and `sum(length(data))` (the pgoutput bytes). CPU is the backend's.
            - **pg_recvlogical**: `pg_recvlogical --start -E <target> --no-loop -o proto_version=1 -o publication_names=bench_pub
              -f /dev/null`, timed from process start to exit (it exits once it receives data past the target).
            - **peer**: `tools/peer-js/peer.js`: npm `pg-logical-replication` (pgoutput, protocol 1) feeding `kafkajs`, one JSON
              message per row (`{op, table, lsn, before, after}`), sends of up to 5,000 messages, 4 in flight, slot acknowledged
              after Kafka acknowledged the rows (`acks=all`). Timed from process start until the last transaction's messages
              are acknowledged.
            - **WalBridge** (`pgoutput`: protocol 2 with streaming; `wal2arrow`: the Arrow-emitting plugin): `connector run
              --config` as a child process with the default configuration, timed from process start until the slot's
              `confirmed_flush_lsn` reaches the target. The connector confirms a position only after the Kafka transaction holding
              it committed, so this is "committed in Kafka and visible to `read_committed`". The table topic is then read back with
              `read_committed`: the rows (`walbridge.rows` headers) must equal the workload's, and the value sizes give the payload.
              "streaming after" in the progress lines (JSON `startup_seconds`) is the part spent before streaming began
              (process start, checks, Kafka `InitTransactions`).
            - **WalBridge, debezium-json / debezium-avro** (W1 and W2 only): the same, with the pgoutput plugin and
              `output.formats=debezium-json` or `debezium-avro` alone (no Arrow topic; Debezium's topic names; every other
              setting at its default, so JSON carries its schema in every record, `schemas.enable=true`); debezium-avro
              registers its schemas in the test Schema Registry (`tests/Tools/SchemaRegistry`, its own process, started for the
              run as the demo starts it; `SCHEMA_REGISTRY_URL` for a real one). Rows read back = records (one per insert).
            - **CPU s/M rows**: user + system CPU of the client process (`/proc/<pid>/stat`) per million row changes;
              **walsender CPU s**: the server process decoding for that path; **peak RSS**: `VmHWM` of the client process.
              The JSON also has `broker_cpu_seconds` (the local broker process while a Kafka path ran) and `startup_seconds`.
            - **Ratios**: rows/s of a path divided by pg_recvlogical's and by the peer's on the same workload (above 1 = faster).
              For W5, `× peer` is the peer's p99 divided by this path's.
            - **Kafka B/row**: the table topic read back with `read_committed`, value + key + header keys and values of every
              record, divided by the rows (WalBridge and the peer alike); for pg_recvlogical and peek the pgoutput stream's bytes
              (what crosses the replication connection). The JSON also has `fetched_bytes_per_row`: what the read-back consumer
              received from the brokers (librdkafka's `rxbytes`), i.e. the record batches as stored (Kafka's `compression.type`
              shows there), plus transaction markers and protocol framing.
            - **W5 latency**: for each Kafka path in turn, the consumer streams live; 1,000 single-row transactions per second
              (`synchronous_commit=on`) for 30 s; a `read_committed` consumer (`fetch.wait.max.ms=2`, because the mock broker
              holds an empty fetch for the full wait) records, per row, receive time minus commit time (the row's `_commit_ts`
              for WalBridge, the row's `sent_us` = `clock_timestamp()` in the insert for the peer, whose JSON has no commit time).
              Time, rows/s and CPU there are for the 30 s of live load.
            - **Per-stage breakdown (W5, W5b, WalBridge)**: the connector runs with `WALBRIDGE_STAGE_TRACE=<file>`
              (src/Connector/Diagnostics/StageTrace.cs: per Kafka transaction, when its groups were handed over by the
              replication reader, taken by the Kafka loop, begun, produced, acknowledged, committed); each row the consumer saw
              is joined by its `_commit_lsn`. Stages: PG commit → handed over (walsender decoding and sending, our reading,
              decoding and framing), queue wait, linger + begin, produce, broker acks (flush), Kafka commit, Kafka commit →
              visible (the consumer's fetch). They add up to the row's latency; p50s of stages do not add up to the total's p50.
            - **W5b sustained load**: 10,000 single-row transactions per second offered for 30 s by 4 connections (each paced at
              2,500/s); achieved = transactions written ÷ seconds of writing (below the offer when PostgreSQL or the machine
              cannot take it), latency as W5, **lag at end** = transactions written but not yet visible when writing stopped,
              **drained after** = seconds until the last one was visible.
            - **Compression (`--compression`)**: W1–W3 through each WalBridge path with `kafka.compression.type` none, lz4, zstd
              and, for the pgoutput path, `arrow.compression` lz4_frame and zstd (the wal2arrow plugin's batches are passed
              through uncompressed, so only Kafka's compression applies to them); rows/s, Kafka B/row (uncompressed record
              bytes as consumers see them: Arrow body compression shows here), fetched B/row (Kafka compression shows here),
              connector CPU per million rows, broker CPU.
            - **W6 initial snapshot**: the table is loaded, `VACUUM (FREEZE, ANALYZE)`d and checkpointed before any slot exists.
              Per `snapshot.max.threads` value (2, the default, and 4): first the **baseline**, the COPY commands the snapshot
              runs (`COPY (SELECT <columns> FROM ONLY w6 WHERE ctid >= '(a,0)'::tid AND ctid < '(b,0)'::tid) TO STDOUT
              (FORMAT binary)`, the same chunk plan from src/Connector/Snapshot/SnapshotCatalog.cs) on as many sessions sharing
              one exported snapshot and one chunk queue, the bytes read with Npgsql and discarded; then each WalBridge path with
              a new slot and `snapshot.mode=initial`, timed from process start until the log line that the snapshot is complete
              (event 1504, written after the Kafka transaction with the end markers and the completed offsets record has
              committed). The topic is then read back with `read_committed` and must hold every row. `× COPY` (JSON
              `ratio_vs_copy`) = rows/s ÷ the baseline's with the same sessions; CPU s = the connector process over its whole
              run (the baseline: the reading process; its note has the backends' CPU); "begins after s" (JSON `startup_seconds`):
              process start until the log says the snapshot begins (event 1501: checks, Kafka, the slot and its exported snapshot).
            - The machines are noisy: compare ratios within one run, not absolute figures across runs.
            """);
        md.AppendLine();
        md.AppendLine("## Analysis");
        md.AppendLine();
        md.AppendLine(AnalysisStart);
        md.AppendLine(analysis.Length > 0 ? analysis : "(to be written after a full run: targets, where the time goes)");
        md.AppendLine(AnalysisEnd);
        var directoryOfFile = Path.GetDirectoryName(full);
        if (directoryOfFile is not null)
        {
            Directory.CreateDirectory(directoryOfFile);
        }

        await File.WriteAllTextAsync(full, md.ToString());
        return chartProblem;
    }
}
