using System.Globalization;

namespace WalBridge.Bench;

/// <summary>The command line of <c>connector bench</c>.</summary>
internal sealed class BenchOptions
{
    public const string Usage = """
        usage: connector bench [--quick] [--scale <factor>] [--json <file>] [--workloads W1,W2,...] [--paths p1,p2,...]
                               [--compression] [--docs <file>] [--no-docs] [--connector-set key=value ...] [--keep-logs]

          --quick            scaled-down workloads (the whole run takes under 3 minutes)
          --scale <factor>   a further factor on every workload's size and duration (e.g. 0.05 for a smoke run)
          --json <file>      write every figure as JSON
          --workloads        a subset of W1 (1M inserts, 1,000-row transactions), W2 (100,000 single-row
                             transactions), W3 (updates and deletes, REPLICA IDENTITY FULL, 2 KB text + jsonb),
                             W4 (one 5M-row transaction), W5 (latency at 1,000 transactions/s for 30 s),
                             W5b (10,000 single-row transactions/s offered for 30 s: achieved rate, latency, lag),
                             W6 (initial snapshot of a 5M-row table, snapshot.max.threads 2 and 4, against binary
                             COPY to /dev/null with as many sessions; WalBridge paths only)
          --paths            a subset of peek, pg_recvlogical, peer, pgoutput, wal2arrow, walbridge-debezium-json,
                             walbridge-debezium-avro (the Debezium formats: W1 and W2 only, pgoutput plugin, the
                             format alone; debezium-avro with the test Schema Registry or SCHEMA_REGISTRY_URL's)
          --compression      compare compression instead: W1–W3 (or the --workloads among them) through each
                             WalBridge path with kafka.compression.type none, lz4, zstd and (pgoutput only)
                             arrow.compression lz4_frame, zstd; pg_recvlogical as the baseline (default paths:
                             pg_recvlogical, pgoutput, wal2arrow)
          --docs <file>      write the Markdown report and its chart there (default for a full run with
                             every workload: docs/benchmarks.md in the repository; a quick or partial run
                             writes none unless asked)
          --no-docs          write no Markdown report
          --connector-set    extra connector configuration for both WalBridge paths (repeatable)
          --keep-logs        keep the work directory (connector logs, configurations)
          --render <json>    measure nothing: write the Markdown report and chart again from a --json file
        """;

    public bool Quick { get; private init; }
    public double Scale { get; private init; } = 1.0;
    public bool Compression { get; private init; }
    public string? JsonFile { get; private init; }
    public IReadOnlyList<string> Workloads { get; private init; } = Workload.Ids;
    public IReadOnlyList<string> Paths { get; private init; } = PathNames.All;
    public string? DocsFile { get; private init; }
    public bool NoDocs { get; private init; }
    public bool KeepLogs { get; private init; }
    public bool Help { get; private init; }
    public string? RenderFrom { get; private init; }
    public IReadOnlyDictionary<string, string> ConnectorSettings { get; private init; } = new Dictionary<string, string>();

    /// <summary>Whether every workload and path runs (only such a run may replace docs/benchmarks.md by default).</summary>
    public bool Complete => Workloads.Count == Workload.Ids.Count && Paths.Count == PathNames.All.Count && !Compression && Scale == 1.0;

    /// <exception cref="ArgumentException">A usage error, with its explanation.</exception>
    public static BenchOptions Parse(IReadOnlyList<string> args)
    {
        var quick = false;
        var compression = false;
        var scale = 1.0;
        var noDocs = false;
        var keep = false;
        var help = false;
        string? json = null;
        string? docs = null;
        string? render = null;
        IReadOnlyList<string>? workloads = null;
        IReadOnlyList<string>? paths = null;
        var settings = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string? inline = null;
            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            if (arg.StartsWith("--", StringComparison.Ordinal) && eq > 0)
            {
                inline = arg[(eq + 1)..];
                arg = arg[..eq];
            }
            string Value()
            {
                if (inline is not null)
                {
                    return inline;
                }

                if (i + 1 >= args.Count)
                {
                    throw new ArgumentException($"Option '{arg}' needs a value.");
                }

                return args[++i];
            }
            switch (arg)
            {
                case "--quick":
                    quick = true;
                    break;
                case "--compression":
                    compression = true;
                    break;
                case "--scale":
                    var text = Value();
                    if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out scale) || scale <= 0 || scale > 10)
                    {
                        throw new ArgumentException($"--scale takes a factor above 0 and at most 10, found '{text}'.");
                    }

                    break;
                case "--no-docs":
                    noDocs = true;
                    break;
                case "--keep-logs":
                    keep = true;
                    break;
                case "-h" or "--help":
                    help = true;
                    break;
                case "--json":
                    json = Value();
                    break;
                case "--docs":
                    docs = Value();
                    break;
                case "--render":
                    render = Value();
                    break;
                case "--workloads":
                    workloads = List(Value(), Workload.Ids, "--workloads");
                    break;
                case "--paths":
                    paths = List(Value(), PathNames.All, "--paths");
                    break;
                case "--connector-set":
                    var setting = Value();
                    var at = setting.IndexOf('=', StringComparison.Ordinal);
                    if (at <= 0)
                    {
                        throw new ArgumentException($"--connector-set takes key=value, found '{setting}'.");
                    }

                    settings[setting[..at]] = setting[(at + 1)..];
                    break;
                default:
                    throw new ArgumentException($"Unknown argument '{args[i]}'.");
            }
        }
        if (compression)
        {
            workloads = workloads is null ? Workload.CompressionIds : workloads.Where(Workload.CompressionIds.Contains).ToList();
            if (workloads.Count == 0)
            {
                throw new ArgumentException($"--compression measures {string.Join(", ", Workload.CompressionIds)} only.");
            }

            paths ??= [PathNames.PgRecvLogical, PathNames.OursPgOutput, PathNames.OursWal2Arrow];
        }

        return new BenchOptions
        {
            Quick = quick,
            Scale = scale,
            Compression = compression,
            JsonFile = json,
            DocsFile = docs,
            NoDocs = noDocs,
            KeepLogs = keep,
            Help = help,
            RenderFrom = render,
            Workloads = workloads ?? Workload.Ids,
            Paths = paths ?? PathNames.All,
            ConnectorSettings = settings,
        };
    }

    /// <summary>The items of a comma-separated list, each matched to <paramref name="allowed"/> ignoring case.</summary>
    private static List<string> List(string text, IReadOnlyList<string> allowed, string option)
    {
        var items = new List<string>();
        foreach (var given in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            items.Add(allowed.FirstOrDefault(a => string.Equals(a, given, StringComparison.OrdinalIgnoreCase))
                ?? throw new ArgumentException($"{option}: unknown '{given}' (choose from {string.Join(", ", allowed)})."));
        }
        if (items.Count == 0)
        {
            throw new ArgumentException($"{option} needs at least one item.");
        }
        // Keep the canonical order whatever order was given.
        return allowed.Where(items.Contains).ToList();
    }

    public static string Format(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
}

/// <summary>The measured paths, in report order.</summary>
internal static class PathNames
{
    public const string Peek = "peek";
    public const string PgRecvLogical = "pg_recvlogical";
    public const string Peer = "peer";
    public const string OursPgOutput = "pgoutput";
    public const string OursWal2Arrow = "wal2arrow";
    /// <summary>The connector with <c>output.formats=debezium-json</c> alone (plugin pgoutput): one JSON record per row.</summary>
    public const string OursDebeziumJson = "walbridge-debezium-json";
    /// <summary>The connector with <c>output.formats=debezium-avro</c> alone (plugin pgoutput), schemas in the test Schema Registry.</summary>
    public const string OursDebeziumAvro = "walbridge-debezium-avro";

    public static readonly IReadOnlyList<string> All = [Peek, PgRecvLogical, Peer, OursPgOutput, OursWal2Arrow, OursDebeziumJson, OursDebeziumAvro];

    /// <summary>W6's baseline (not a --paths choice: it always runs with W6): the snapshot's COPY commands into /dev/null.</summary>
    public const string CopyBaseline = "copy";

    /// <summary>The workloads the Debezium paths run (issue 13: the peer's one-message-per-row shape on W1 and W2).</summary>
    public static readonly IReadOnlyList<string> DebeziumWorkloads = ["W1", "W2"];

    /// <summary>The connector's Arrow paths (the compression variants and the latency workloads apply to these).</summary>
    public static bool IsOurs(string path) => path is OursPgOutput or OursWal2Arrow;

    public static bool IsDebezium(string path) => path is OursDebeziumJson or OursDebeziumAvro;

    /// <summary>Every path that runs the connector.</summary>
    public static bool IsConnector(string path) => IsOurs(path) || IsDebezium(path);

    /// <summary>Whether <paramref name="path"/> is measured on <paramref name="workload"/>.</summary>
    public static bool Runs(string path, string workload) =>
        workload == SnapshotWorkload ? IsOurs(path) : !IsDebezium(path) || DebeziumWorkloads.Contains(workload);

    /// <summary>The initial snapshot workload: the WalBridge Arrow paths only (the others have no snapshot).</summary>
    public const string SnapshotWorkload = "W6";

    /// <summary>The logical decoding plugin of a path's slot.</summary>
    public static string Plugin(string path) => path == OursWal2Arrow ? "wal2arrow" : "pgoutput";

    /// <summary>A path's name where PostgreSQL allows only lower-case letters, digits and underscores (slot names).</summary>
    public static string Identifier(string path) => path.Replace('-', '_');

    /// <summary>The connector settings a path adds to the defaults.</summary>
    public static IReadOnlyDictionary<string, string> Settings(string path, string? schemaRegistryUrl) => path switch
    {
        OursDebeziumJson => new Dictionary<string, string> { ["output.formats"] = "debezium-json" },
        OursDebeziumAvro => new Dictionary<string, string>
        {
            ["output.formats"] = "debezium-avro",
            ["schema.registry.url"] = schemaRegistryUrl ?? throw new InvalidOperationException("debezium-avro needs the Schema Registry, which did not start"),
        },
        _ => new Dictionary<string, string>(),
    };

    /// <summary>How the report names a path.</summary>
    public static string Display(string path) => path switch
    {
        Peek => "in-backend decode (peek)",
        PgRecvLogical => "pg_recvlogical → /dev/null",
        Peer => "peer: pg-logical-replication → kafkajs",
        OursPgOutput => "WalBridge, pgoutput",
        OursWal2Arrow => "WalBridge, wal2arrow",
        OursDebeziumJson => "WalBridge, debezium-json",
        OursDebeziumAvro => "WalBridge, debezium-avro",
        CopyBaseline => "binary COPY → /dev/null",
        _ => path,
    };
}
