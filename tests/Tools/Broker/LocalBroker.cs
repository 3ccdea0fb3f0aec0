using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Confluent.Kafka;

namespace WalBridge.Broker;

/// <summary>
/// A mock Kafka cluster (<see cref="MockCluster"/>) running in its own child process
/// (<c>dotnet WalBridge.Broker.dll</c>), steered through its control channel. It lives in a
/// separate process so that a process under test can be killed (even with SIGKILL) while the
/// broker and its data survive.
/// </summary>
/// <remarks>
/// <para>
/// Lifetime: <see cref="StartAsync"/> returns once the broker accepts connections;
/// <see cref="DisposeAsync"/> stops it (control <c>shutdown</c>, then closing its stdin, then
/// after 5 s killing the process tree). The child also exits by itself when this process dies,
/// because it exits at the end of its standard input, which only this process holds; and a
/// process-exit hook kills children that were never disposed.
/// </para>
/// <para>
/// Threading: all members are thread-safe; control commands may run concurrently (each uses
/// its own connection; the broker executes them one at a time).
/// </para>
/// <para>
/// Errors: <see cref="SendControlAsync"/> throws <see cref="InvalidOperationException"/> on an
/// <c>error</c> reply and <see cref="IOException"/>/<see cref="SocketException"/> when the broker
/// is unreachable.
/// </para>
/// </remarks>
public sealed class LocalBroker : IAsyncDisposable
{
    private const int StderrLinesKept = 200;
    private static readonly TimeSpan StartupTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan ControlTimeout = TimeSpan.FromSeconds(10);
    private static readonly ConcurrentDictionary<LocalBroker, byte> Running = new();

    private readonly Process process;
    private readonly ConcurrentQueue<string> stderrTail = new();
    private readonly Task stdoutPump;
    private readonly Task stderrPump;
    private readonly TaskCompletionSource<(string Bootstrap, IPEndPoint Control)> ready =
        new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int disposed;
    private bool stopped;

    static LocalBroker() =>
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            foreach (var broker in Running.Keys)
            {
                broker.KillQuietly();
            }
        };

    private LocalBroker(Process process)
    {
        this.process = process;
        stdoutPump = PumpStdoutAsync();
        stderrPump = PumpStderrAsync();
    }

    /// <summary>The brokers' <c>bootstrap.servers</c> list.</summary>
    public string BootstrapServers { get; private set; } = "";

    /// <summary>The control channel (127.0.0.1:port), see <see cref="ControlServer"/>.</summary>
    public IPEndPoint ControlEndpoint { get; private set; } = new(IPAddress.Loopback, 0);

    /// <summary>Process id of the broker process.</summary>
    public int ProcessId => process.Id;

    /// <summary>Whether the broker process has exited (always true after <see cref="DisposeAsync"/>).</summary>
    public bool HasExited => Volatile.Read(ref stopped) || process.HasExited;

    /// <summary>Number of brokers (ids 1..BrokerCount).</summary>
    public int BrokerCount { get; private init; }

    /// <summary>The last lines the broker wrote to stderr (librdkafka logs), for diagnostics.</summary>
    public string RecentStderr => string.Join('\n', stderrTail);

    /// <summary>
    /// Starts a broker process with <paramref name="brokers"/> brokers and waits until it is
    /// ready (at most 30 s).
    /// </summary>
    /// <exception cref="InvalidOperationException">
    /// The process exited or did not get ready in time; the message includes its stderr.
    /// </exception>
    public static async Task<LocalBroker> StartAsync(int brokers = 3, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(brokers, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(brokers, 32);

        var dll = typeof(LocalBroker).Assembly.Location;
        if (string.IsNullOrEmpty(dll) || !File.Exists(dll))
        {
            throw new InvalidOperationException(
                "Cannot locate WalBridge.Broker.dll (single-file publish is not supported).");
        }

        var psi = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add("--brokers");
        psi.ArgumentList.Add(brokers.ToString(CultureInfo.InvariantCulture));
        psi.ArgumentList.Add("--exit-on-stdin-eof");
        // The child finds librdkafka the way we do; pass our answer on when we have one.
        if (Environment.GetEnvironmentVariable(Librdkafka.PathEnvironmentVariable) is null)
        {
            try
            {
                psi.Environment[Librdkafka.PathEnvironmentVariable] = Librdkafka.Locate();
            }
            catch (InvalidOperationException)
            {
                // Let the child report it, with its own search path.
            }
        }

        var process = Process.Start(psi)
            ?? throw new InvalidOperationException($"Could not start '{psi.FileName} {dll}'.");
        var broker = new LocalBroker(process) { BrokerCount = brokers };
        Running.TryAdd(broker, 0);

        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(StartupTimeout);
            var exited = process.WaitForExitAsync(timeout.Token);
            await Task.WhenAny(broker.ready.Task, exited);
            if (broker.ready.Task.IsCompletedSuccessfully)
            {
                (broker.BootstrapServers, broker.ControlEndpoint) = await broker.ready.Task;
                return broker;
            }

            ct.ThrowIfCancellationRequested();
            // Not ready: exited, closed stdout (about to exit), or timed out. Give an exiting
            // process a moment so its exit code and last stderr lines make the message.
            using (var grace = new CancellationTokenSource(TimeSpan.FromSeconds(2)))
            {
                try
                {
                    await process.WaitForExitAsync(grace.Token);
                    await Task.WhenAny(Task.WhenAll(broker.stderrPump, broker.stdoutPump), Task.Delay(1000, CancellationToken.None));
                }
                catch (OperationCanceledException)
                {
                }
            }

            string what;
            if (process.HasExited)
            {
                what = $"exited with code {process.ExitCode} before it was ready";
            }
            else if (broker.ready.Task.IsFaulted)
            {
                what = "closed its stdout before it was ready";
            }
            else
            {
                what = $"was not ready within {StartupTimeout.TotalSeconds:0} s";
            }

            throw new InvalidOperationException(
                $"WalBridge.Broker (pid {process.Id}) {what}. stderr:\n{broker.RecentStderr}");
        }
        catch
        {
            await broker.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Sends one control command (see <see cref="ControlServer"/>) and returns the reply
    /// (<c>ok</c>).
    /// </summary>
    /// <exception cref="InvalidOperationException">The broker replied <c>error ...</c>.</exception>
    /// <exception cref="TimeoutException">No reply within 10 s.</exception>
    public async Task<string> SendControlAsync(string command, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(command);
        if (command.Contains('\n', StringComparison.Ordinal) || command.Contains('\r', StringComparison.Ordinal))
        {
            throw new ArgumentException("A control command is a single line.", nameof(command));
        }

        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(ControlTimeout);
        string? reply;
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(ControlEndpoint, timeout.Token);
            await using var stream = client.GetStream();
            await stream.WriteAsync(Encoding.UTF8.GetBytes(command + "\n"), timeout.Token);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            reply = await reader.ReadLineAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"No reply to control command '{command}' within {ControlTimeout.TotalSeconds:0} s.");
        }

        if (reply is null)
        {
            throw new IOException($"The broker closed the control connection without replying to '{command}'.");
        }

        if (reply.StartsWith("error", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"Control command '{command}' failed: {reply}");
        }

        return reply;
    }

    /// <summary>Disconnects broker <paramref name="brokerId"/> (-1: all); leadership does not move.</summary>
    public Task BrokerDownAsync(int brokerId, CancellationToken ct = default) =>
        SendControlAsync(FormattableString.Invariant($"broker-down {brokerId}"), ct);

    /// <summary>Lets broker <paramref name="brokerId"/> (-1: all) accept connections again.</summary>
    public Task BrokerUpAsync(int brokerId, CancellationToken ct = default) =>
        SendControlAsync(FormattableString.Invariant($"broker-up {brokerId}"), ct);

    /// <summary>
    /// Creates a topic with <paramref name="partitions"/> partitions through the control channel.
    /// Admin clients can create topics themselves with CreateTopics (see <see cref="MockCluster"/>).
    /// </summary>
    public Task CreateTopicAsync(string name, int partitions, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (name.Any(char.IsWhiteSpace))
        {
            throw new ArgumentException("Topic names cannot contain white space.", nameof(name));
        }

        return SendControlAsync(FormattableString.Invariant($"topic-create {name} {partitions}"), ct);
    }

    /// <summary>
    /// Makes the next requests of type <paramref name="apiKey"/> to any broker fail with
    /// <paramref name="errors"/>, in order.
    /// </summary>
    public Task PushRequestErrorsAsync(KafkaApiKey apiKey, params ErrorCode[] errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        ArgumentOutOfRangeException.ThrowIfZero(errors.Length);
        var codes = string.Join(' ', errors.Select(e => ((int)e).ToString(CultureInfo.InvariantCulture)));
        return SendControlAsync(FormattableString.Invariant($"push-errors {(short)apiKey} {codes}"));
    }

    /// <summary>
    /// Makes the next requests of type <paramref name="apiKey"/> to broker
    /// <paramref name="brokerId"/> answer with these errors after these delays.
    /// </summary>
    public Task BrokerPushRequestErrorsAsync(int brokerId, KafkaApiKey apiKey, params (ErrorCode Error, int RttMs)[] errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        ArgumentOutOfRangeException.ThrowIfZero(errors.Length);
        var pairs = string.Join(' ', errors.Select(e => FormattableString.Invariant($"{(int)e.Error} {e.RttMs}")));
        return SendControlAsync(FormattableString.Invariant($"broker-push-errors {brokerId} {(short)apiKey} {pairs}"));
    }

    /// <summary>Drops pending cluster-wide errors for <paramref name="apiKey"/>.</summary>
    public Task ClearRequestErrorsAsync(KafkaApiKey apiKey) =>
        SendControlAsync(FormattableString.Invariant($"clear-errors {(short)apiKey}"));

    /// <summary>
    /// Stops the broker process: <c>shutdown</c> command, closing its stdin, waiting up to 5 s,
    /// then killing the process tree. Idempotent; never throws for a broker that is already gone.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        try
        {
            if (!process.HasExited)
            {
                if (ready.Task.IsCompletedSuccessfully)
                {
                    try
                    {
                        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                        using var client = new TcpClient();
                        await client.ConnectAsync(ControlEndpoint, cts.Token);
                        await using var stream = client.GetStream();
                        await stream.WriteAsync("shutdown\n"u8.ToArray(), cts.Token);
                    }
                    catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException)
                    {
                        // Closing stdin below stops it as well.
                    }
                }

                try
                {
                    process.StandardInput.Close();
                }
                catch (IOException)
                {
                }

                using var cts2 = new CancellationTokenSource(StopTimeout);
                try
                {
                    await process.WaitForExitAsync(cts2.Token);
                }
                catch (OperationCanceledException)
                {
                    KillQuietly();
                    await process.WaitForExitAsync(CancellationToken.None);
                }
            }

            await Task.WhenAll(stdoutPump, stderrPump);
        }
        finally
        {
            // Also when something above threw: no broker may outlive its owner.
            if (!process.HasExited)
            {
                KillQuietly();
            }

            Running.TryRemove(this, out _);
            Volatile.Write(ref stopped, true);
            process.Dispose();
        }
    }

    private void KillQuietly()
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
        {
            // Already exited.
        }
    }

    private static string DotnetHost()
    {
        // Set by the SDK for test hosts and MSBuild; otherwise we may be running under the host.
        var fromSdk = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(fromSdk) && File.Exists(fromSdk))
        {
            return fromSdk;
        }

        var self = Environment.ProcessPath;
        if (self is not null && Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            return self;
        }

        return "dotnet";
    }

    private async Task PumpStdoutAsync()
    {
        string? bootstrap = null;
        IPEndPoint? control = null;
        try
        {
            while (await process.StandardOutput.ReadLineAsync() is { } line)
            {
                if (line.StartsWith("bootstrap.servers=", StringComparison.Ordinal))
                {
                    bootstrap = line["bootstrap.servers=".Length..];
                }
                else if (line.StartsWith("control=", StringComparison.Ordinal) &&
                         IPEndPoint.TryParse(line["control=".Length..], out var endpoint))
                {
                    control = endpoint;
                }

                if (bootstrap is not null && control is not null)
                {
                    ready.TrySetResult((bootstrap, control));
                }
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
        }

        ready.TrySetException(new InvalidOperationException("WalBridge.Broker closed stdout before it was ready."));
        // Observe: nobody may be waiting any more.
        _ = ready.Task.Exception;
    }

    private async Task PumpStderrAsync()
    {
        // Drained continuously: a full pipe would block the broker's logging threads.
        try
        {
            while (await process.StandardError.ReadLineAsync() is { } line)
            {
                stderrTail.Enqueue(line);
                while (stderrTail.Count > StderrLinesKept && stderrTail.TryDequeue(out _))
                {
                }
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
        }
    }
}
