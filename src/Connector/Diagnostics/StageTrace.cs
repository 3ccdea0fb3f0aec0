using System.Globalization;

namespace WalBridge.Connector.Diagnostics;

/// <summary>
/// Wall-clock times of each stage of the delivery path, for latency breakdowns (<c>connector bench</c>, W5 and W5b).
/// Switched on only by the environment variable <c>WALBRIDGE_STAGE_TRACE=&lt;file&gt;</c>; unset, every hook is a null
/// check or a flag test. When on, each committed Kafka transaction appends one CSV line per source-transaction group
/// it held (<see cref="Header"/>): the group's first and last commit LSN, its transactions and rows, then UTC
/// microseconds since 1970 of: <c>handed_over</c> (the replication reader handed the group to the queue, right after
/// the commit message of its last transaction was decoded), and of its Kafka transaction: <c>dequeued</c> (the Kafka
/// loop took its first group), <c>began</c> (after linger, topic creation and <c>BeginTransaction</c>),
/// <c>produced</c> (every record handed to librdkafka), <c>flushed</c> (every record acknowledged by the brokers) and
/// <c>committed</c> (<c>CommitTransaction</c> returned: visible to <c>read_committed</c> consumers from then on).
/// </summary>
/// <remarks>Diagnostics only, like <see cref="FaultInjection"/>: not a configuration key, never on by default.
/// One instance per Kafka loop (its thread only); the file is shared by all of a process's loops.</remarks>
internal sealed class StageTrace
{
    /// <summary>The environment variable naming the file to append to.</summary>
    public const string EnvironmentVariable = "WALBRIDGE_STAGE_TRACE";

    /// <summary>The CSV header, written when the file is created.</summary>
    public const string Header = "first_commit_lsn,last_commit_lsn,transactions,rows,handed_over_us,dequeued_us,began_us,produced_us,flushed_us,committed_us";

    private static readonly string? s_file = Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } file ? file : null;
    /// <summary>One writer per file for the process's lifetime (auto-flushed: a killed process loses no line).</summary>
    private static readonly Dictionary<string, StreamWriter> s_writers = new(StringComparer.Ordinal);

    private readonly string _file;
    private long _dequeued;
    private long _began;
    private long _produced;
    private long _flushed;

    private StageTrace(string file) => _file = file;

    /// <summary>Whether the trace is on (the environment variable is set).</summary>
    public static bool Enabled => s_file is not null;

    /// <summary>A trace for one Kafka loop, or null when the trace is off.</summary>
    public static StageTrace? Open() => Open(s_file);

    /// <summary>A trace appending to <paramref name="file"/>, or null for none.</summary>
    internal static StageTrace? Open(string? file) => file is null ? null : new StageTrace(file);

    /// <summary>Now, in microseconds since 1970-01-01 UTC.</summary>
    public static long Now() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10;

    public void Dequeued() => _dequeued = Now();

    public void Began() => _began = Now();

    public void Produced() => _produced = Now();

    public void Flushed() => _flushed = Now();

    /// <summary>
    /// The Kafka transaction committed: appends one line for each of its <paramref name="groups"/> (those with
    /// transactions): commit LSNs of its first and last transaction, their count, rows, and when it was handed over.
    /// </summary>
    public void Committed(IEnumerable<(ulong FirstCommitLsn, ulong LastCommitLsn, int Transactions, long Rows, long HandedOverMicros)> groups)
    {
        var committed = Now();
        lock (s_writers)
        {
            if (!s_writers.TryGetValue(_file, out var writer))
            {
                var fresh = !File.Exists(_file) || new FileInfo(_file).Length == 0;
                writer = new StreamWriter(new FileStream(_file, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
                s_writers[_file] = writer;
                if (fresh)
                {
                    writer.WriteLine(Header);
                }
            }

            foreach (var group in groups)
            {
                writer.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{group.FirstCommitLsn},{group.LastCommitLsn},{group.Transactions},{group.Rows},{group.HandedOverMicros},{_dequeued},{_began},{_produced},{_flushed},{committed}"));
            }
        }
    }
}
