using WalBridge.Offsets;

namespace WalBridge.DevTools.Chaos;

/// <summary>A source workload the chaos run drives while it kills the connector (see <see cref="ChaosCommand"/>).</summary>
internal interface IChaosWorkload : IDisposable
{
    /// <summary>The workload's tables in schema <c>public</c> (each has a topic).</summary>
    IReadOnlyList<string> TableNames { get; }

    /// <summary>Transactions committed so far.</summary>
    long Transactions { get; }

    /// <summary>Lets the workload start (after the slot exists).</summary>
    void Enable();

    void Pause();

    void Resume();

    /// <summary>Runs until cancelled; survives PostgreSQL restarts by reconnecting.</summary>
    Task RunAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Commits one more transaction and returns a WAL position inside it, before its commit record:
    /// a connector confirmed past it has delivered every workload transaction.
    /// </summary>
    Task<Lsn> LastPositionAsync();
}
