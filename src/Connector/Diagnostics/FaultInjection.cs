using System.Globalization;
using System.Runtime.InteropServices;

namespace WalBridge.Connector.Diagnostics;

/// <summary>Places in the delivery path where a test can make the process die abruptly.</summary>
public enum FaultPoint
{
    /// <summary>A source transaction's Commit message arrived; it is not yet handed to the Kafka loop.</summary>
    AfterCommitMessage,
    /// <summary>k of the Kafka transaction's records are produced (and flushed to the broker); the rest are not.</summary>
    MidProduce,
    /// <summary>Every record of the Kafka transaction is produced; the commit is not yet sent.</summary>
    BeforeKafkaCommit,
    /// <summary>The Kafka transaction is committed; the local mirror is not yet written.</summary>
    AfterKafkaCommit,
    /// <summary>The mirror is written; PostgreSQL is not yet told.</summary>
    AfterMirrorWrite,
    /// <summary>Streaming (pgoutput protocol 2): a change of an in-progress transaction was spilled, inside a stream block (matrix C9).</summary>
    MidStream,
    /// <summary>Streaming: a stream block ended (Stream Stop); the transaction has not committed yet (matrix C10).</summary>
    AfterStreamStop,
    /// <summary>Streaming: a streamed transaction committed and its spool is being replayed into payloads for Kafka (matrix C11).</summary>
    SpoolReplay,
    /// <summary>An incremental snapshot's low watermark is written; its chunk is not read yet and its high watermark not written.</summary>
    InsideWatermarkWindow,
}

/// <summary>
/// Fault points compiled into the product for crash tests. Switched on only by the environment
/// variable <c>WALBRIDGE_FAULT=&lt;point&gt;[@&lt;hit&gt;][:&lt;k&gt;]</c>, e.g. <c>after-kafka-commit@3</c>
/// (the third time the point is reached) or <c>mid-produce@2:5</c> (in the second Kafka transaction,
/// after 5 records). When a fault fires, the process writes one line to stderr and kills itself
/// with SIGKILL: no cleanup runs, exactly like <c>kill -9</c>. With the suffix <c>/term</c>
/// (<c>after-kafka-commit@3/term</c>) it sends itself SIGTERM instead and goes on: the graceful stop
/// starts at exactly that point (matrix C16). Thread-safe; a no-op when unset.
/// </summary>
public static partial class FaultInjection
{
    /// <summary>The environment variable that arms a fault point.</summary>
    public const string EnvironmentVariable = "WALBRIDGE_FAULT";

    private static readonly (FaultPoint Point, int Hit, int Records, bool Terminate)? s_armed = Parse(Environment.GetEnvironmentVariable(EnvironmentVariable));
    private static int s_hits;
    private static int s_terminated;

    /// <summary>The names accepted in <see cref="EnvironmentVariable"/>.</summary>
    public static string NameOf(FaultPoint point) => point switch
    {
        FaultPoint.AfterCommitMessage => "after-commit-message",
        FaultPoint.MidProduce => "mid-produce",
        FaultPoint.BeforeKafkaCommit => "before-kafka-commit",
        FaultPoint.AfterKafkaCommit => "after-kafka-commit",
        FaultPoint.AfterMirrorWrite => "after-mirror-write",
        FaultPoint.MidStream => "mid-stream",
        FaultPoint.AfterStreamStop => "after-stream-stop",
        FaultPoint.SpoolReplay => "spool-replay",
        FaultPoint.InsideWatermarkWindow => "inside-watermark-window",
        _ => throw new ArgumentOutOfRangeException(nameof(point)),
    };

    /// <summary>Whether <paramref name="point"/> is reached only by pgoutput's streaming of in-progress transactions (never with wal2arrow).</summary>
    public static bool IsStreamingPoint(FaultPoint point) => point is FaultPoint.MidStream or FaultPoint.AfterStreamStop or FaultPoint.SpoolReplay;

    /// <summary>Whether <paramref name="point"/> is armed (lets callers skip work such as counting).</summary>
    public static bool IsArmed(FaultPoint point) => s_armed?.Point == point;

    /// <summary>Marks that <paramref name="point"/> was reached; dies if it is the armed hit.</summary>
    public static void Reach(FaultPoint point)
    {
        if (s_armed is not { } armed || armed.Point != point || point == FaultPoint.MidProduce)
        {
            return;
        }

        if (Interlocked.Increment(ref s_hits) == armed.Hit)
        {
            Fire(armed, point, armed.Hit);
        }
    }

    /// <summary>
    /// For <see cref="FaultPoint.MidProduce"/>: called after each record of a Kafka transaction with the
    /// count so far; <paramref name="flush"/> pushes the produced records to the broker before dying so
    /// that an open transaction with records really exists there.
    /// </summary>
    public static void ReachRecord(int recordsInTransaction, bool firstOfTransaction, Action flush)
    {
        ArgumentNullException.ThrowIfNull(flush);
        if (s_armed is not { Point: FaultPoint.MidProduce } armed)
        {
            return;
        }

        var hit = firstOfTransaction ? Interlocked.Increment(ref s_hits) : Volatile.Read(ref s_hits);
        if (hit == armed.Hit && recordsInTransaction == armed.Records)
        {
            flush();
            Fire(armed, FaultPoint.MidProduce, hit);
        }
    }

    internal static (FaultPoint, int, int, bool)? Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        var spec = text.Trim();
        var terminate = spec.EndsWith("/term", StringComparison.Ordinal);
        if (terminate)
        {
            spec = spec[..^"/term".Length];
        }

        var records = 1;
        var colon = spec.IndexOf(':', StringComparison.Ordinal);
        if (colon > 0)
        {
            records = int.Parse(spec[(colon + 1)..], CultureInfo.InvariantCulture);
            spec = spec[..colon];
        }
        var hit = 1;
        var at = spec.IndexOf('@', StringComparison.Ordinal);
        if (at > 0)
        {
            hit = int.Parse(spec[(at + 1)..], CultureInfo.InvariantCulture);
            spec = spec[..at];
        }
        foreach (var point in Enum.GetValues<FaultPoint>())
        {
            if (NameOf(point) == spec)
            {
                return (point, Math.Max(hit, 1), Math.Max(records, 1), terminate);
            }
        }
        throw new ArgumentException($"{EnvironmentVariable}='{text}': unknown fault point '{spec}'; known: {string.Join(", ", Enum.GetValues<FaultPoint>().Select(NameOf))}.");
    }

    private static void Fire((FaultPoint Point, int Hit, int Records, bool Terminate) armed, FaultPoint point, int hit)
    {
        if (!armed.Terminate)
        {
            Die(point, hit);
            return;
        }

        if (Interlocked.Exchange(ref s_terminated, 1) == 0)
        {
            Console.Error.WriteLine($"walbridge: fault point {NameOf(point)} reached (hit {hit}); sending the process SIGTERM");
            Console.Error.Flush();
            _ = Kill(Environment.ProcessId, 15);
        }
    }

    private static void Die(FaultPoint point, int hit)
    {
        Console.Error.WriteLine($"walbridge: fault point {NameOf(point)} reached (hit {hit}); killing the process (SIGKILL)");
        Console.Error.Flush();
        _ = Kill(Environment.ProcessId, 9);
        Environment.FailFast($"fault point {NameOf(point)}");
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}
