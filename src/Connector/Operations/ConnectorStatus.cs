using WalBridge.Connector.Errors;

namespace WalBridge.Connector.Operations;

/// <summary>What the connector is doing, as the admin API and the metrics report it.</summary>
public enum ConnectorState
{
    /// <summary>Starting up: leadership, source preparation, Kafka's InitTransactions.</summary>
    Starting,
    /// <summary>Another instance with the same name leads; this one waits to take over.</summary>
    Standby,
    /// <summary>Streaming changes into Kafka.</summary>
    Streaming,
    /// <summary>Paused by an operator (the leadership is kept).</summary>
    Paused,
    /// <summary>A transient failure: retrying after a backoff.</summary>
    Retrying,
    /// <summary>Stopped by a fatal error (the process exits).</summary>
    Failed,
    /// <summary>Stopped on request.</summary>
    Stopped,
}

/// <summary>The last failure the connector saw, as one line an operator can read.</summary>
/// <param name="Kind">Transient, abort-required or fatal (<see cref="FailureClassification"/>).</param>
/// <param name="Message">What failed and why (<see cref="FailureClassification.Describe"/>); never holds secrets.</param>
/// <param name="At">When it happened.</param>
public sealed record ConnectorError(FailureKind Kind, string Message, DateTimeOffset At);

/// <summary>
/// The connector's state and its operator controls (pause, resume, restart). Thread-safe: the runner writes it, the
/// admin API, the health checks and the metrics read it and send requests.
/// </summary>
public sealed class ConnectorStatus : IDisposable
{
    private readonly object _gate = new();
    private ConnectorState _state = ConnectorState.Starting;
    private DateTimeOffset _since = DateTimeOffset.UtcNow;
    private ConnectorError? _lastError;
    private string? _detail;
    private bool _pauseRequested;
    private CancellationTokenSource _attempt = new();
    private TaskCompletionSource _resumed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Identifies this process among instances with the same name: <c>host:pid</c>.</summary>
    public string WorkerId { get; } = $"{Environment.MachineName}:{Environment.ProcessId}";

    public ConnectorState State
    {
        get
        {
            lock (_gate)
            {
                return _state;
            }
        }
    }

    /// <summary>When <see cref="State"/> was entered.</summary>
    public DateTimeOffset Since
    {
        get
        {
            lock (_gate)
            {
                return _since;
            }
        }
    }

    /// <summary>More about the state (the leader a standby waits for, the retry a failure leads to), or null.</summary>
    public string? Detail
    {
        get
        {
            lock (_gate)
            {
                return _detail;
            }
        }
    }

    public ConnectorError? LastError
    {
        get
        {
            lock (_gate)
            {
                return _lastError;
            }
        }
    }

    /// <summary>Whether this instance holds the leadership (always true without high availability once started).</summary>
    public bool IsLeader { get; private set; }

    /// <summary>Whether an operator asked for a pause that has not been resumed.</summary>
    public bool PauseRequested
    {
        get
        {
            lock (_gate)
            {
                return _pauseRequested;
            }
        }
    }

    internal void Enter(ConnectorState state, string? detail = null)
    {
        lock (_gate)
        {
            if (_state != state)
            {
                _since = DateTimeOffset.UtcNow;
            }

            _state = state;
            _detail = detail;
        }
    }

    internal void SetLeader(bool leader) => IsLeader = leader;

    internal void RecordError(FailureKind kind, string message)
    {
        lock (_gate)
        {
            _lastError = new ConnectorError(kind, message, DateTimeOffset.UtcNow);
        }
    }

    /// <summary>The token of the current attempt: cancelled by <see cref="RequestPause"/> and <see cref="RequestRestart"/>.</summary>
    internal CancellationToken BeginAttempt()
    {
        lock (_gate)
        {
            if (_attempt.IsCancellationRequested)
            {
                _attempt.Dispose();
                _attempt = new CancellationTokenSource();
            }

            return _attempt.Token;
        }
    }

    /// <summary>Stops streaming gracefully (the open Kafka transaction is finished) and stays stopped until <see cref="Resume"/>.</summary>
    public void RequestPause()
    {
        lock (_gate)
        {
            _pauseRequested = true;
            _attempt.Cancel();
        }
    }

    /// <summary>Ends a pause; no effect otherwise.</summary>
    public void Resume()
    {
        lock (_gate)
        {
            _pauseRequested = false;
            _resumed.TrySetResult();
            _resumed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <summary>Stops the current attempt gracefully and starts a new one at once (from the position committed in Kafka).</summary>
    public void RequestRestart()
    {
        lock (_gate)
        {
            _attempt.Cancel();
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _attempt.Dispose();
        }
    }

    /// <summary>Waits while a pause is requested. Returns at once otherwise.</summary>
    internal async Task WaitWhilePausedAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            Task resumed;
            lock (_gate)
            {
                if (!_pauseRequested)
                {
                    return;
                }

                resumed = _resumed.Task;
            }
            await resumed.WaitAsync(cancellationToken);
        }
    }
}
