using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Confluent.Kafka;

namespace WalBridge.Broker;

/// <summary>
/// Line-based TCP control channel for a <see cref="MockCluster"/> on 127.0.0.1 (ephemeral
/// port), so that tests in another process can steer the broker.
/// </summary>
/// <remarks>
/// <para>
/// Protocol: UTF-8, one command per line, one reply line per command: <c>ok</c> or
/// <c>error &lt;text&gt;</c>. Commands:
/// <c>ping</c>;
/// <c>topic-create &lt;name&gt; &lt;partitions&gt;</c>;
/// <c>broker-down &lt;id&gt;</c>; <c>broker-up &lt;id&gt;</c> (id -1: all brokers);
/// <c>push-errors &lt;apiKey&gt; &lt;errorCode&gt; [&lt;errorCode&gt; ...]</c> (cluster-wide);
/// <c>broker-push-errors &lt;brokerId&gt; &lt;apiKey&gt; &lt;errorCode&gt; &lt;rttMs&gt; [...]</c>;
/// <c>clear-errors &lt;apiKey&gt;</c>;
/// <c>shutdown</c> (replies <c>ok</c>, then completes <see cref="ShutdownRequested"/>).
/// API keys and error codes are the numeric Kafka/librdkafka codes (e.g. <c>push-errors 19 36</c>
/// makes every topic of the next CreateTopics request fail with TopicAlreadyExists).
/// </para>
/// <para>
/// Threading: connections are served concurrently; commands are executed one at a time.
/// Lifetime: listens from construction until <see cref="DisposeAsync"/>, which closes the
/// listener and all connections. The cluster is not owned.
/// </para>
/// </remarks>
public sealed class ControlServer : IAsyncDisposable
{
    private readonly MockCluster cluster;
    private readonly TcpListener listener;
    private readonly CancellationTokenSource stopping = new();
    private readonly Lock commandGate = new();
    private readonly TaskCompletionSource shutdownRequested =
        new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task acceptLoop;
    private int disposed;

    /// <summary>Starts listening on 127.0.0.1 with an ephemeral port.</summary>
    public ControlServer(MockCluster cluster)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        this.cluster = cluster;
        listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        Endpoint = (IPEndPoint)listener.LocalEndpoint;
        acceptLoop = AcceptLoopAsync();
    }

    /// <summary>The listening endpoint (127.0.0.1:port).</summary>
    public IPEndPoint Endpoint { get; }

    /// <summary>Completes when a client sent <c>shutdown</c>.</summary>
    public Task ShutdownRequested => shutdownRequested.Task;

    /// <summary>
    /// Executes one command line and returns the reply line (without newline). Never throws
    /// for bad input: errors become <c>error &lt;text&gt;</c>.
    /// </summary>
    public string Execute(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0)
        {
            return "error empty command";
        }

        try
        {
            lock (commandGate)
            {
                return Dispatch(parts[0], parts.AsSpan(1));
            }
        }
        catch (KafkaMockException ex)
        {
            return "error " + OneLine(ex.Message);
        }
        catch (FormatException ex)
        {
            return "error " + OneLine(ex.Message);
        }
        catch (ArgumentException ex)
        {
            return "error " + OneLine(ex.Message);
        }
        catch (ObjectDisposedException)
        {
            return "error broker is shutting down";
        }
    }

    /// <summary>Stops listening and closes open connections. Idempotent.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        await stopping.CancelAsync();
        listener.Stop();
        try
        {
            await acceptLoop;
        }
        catch (OperationCanceledException)
        {
        }

        stopping.Dispose();
    }

    private string Dispatch(string command, ReadOnlySpan<string> args)
    {
        switch (command)
        {
            case "ping":
                Arity(command, args, 0, 0);
                return "ok";
            case "topic-create":
                Arity(command, args, 2, 2);
                cluster.CreateTopic(args[0], Int(args[1], "partitions"));
                return "ok";
            case "broker-down":
                Arity(command, args, 1, 1);
                cluster.BrokerDown(Int(args[0], "broker id"));
                return "ok";
            case "broker-up":
                Arity(command, args, 1, 1);
                cluster.BrokerUp(Int(args[0], "broker id"));
                return "ok";
            case "push-errors":
                {
                    Arity(command, args, 2, int.MaxValue);
                    var apiKey = ApiKey(args[0]);
                    var errors = new ErrorCode[args.Length - 1];
                    for (var i = 1; i < args.Length; i++)
                    {
                        errors[i - 1] = (ErrorCode)Int(args[i], "error code");
                    }

                    cluster.PushRequestErrors(apiKey, errors);
                    return "ok";
                }

            case "broker-push-errors":
                {
                    Arity(command, args, 4, int.MaxValue);
                    if ((args.Length - 2) % 2 != 0)
                    {
                        throw new FormatException("broker-push-errors needs <errorCode> <rttMs> pairs");
                    }

                    var brokerId = Int(args[0], "broker id");
                    var apiKey = ApiKey(args[1]);
                    var pairs = new (ErrorCode, int)[(args.Length - 2) / 2];
                    for (var i = 0; i < pairs.Length; i++)
                    {
                        pairs[i] = ((ErrorCode)Int(args[2 + (2 * i)], "error code"), Int(args[3 + (2 * i)], "rtt"));
                    }

                    cluster.BrokerPushRequestErrors(brokerId, apiKey, pairs);
                    return "ok";
                }

            case "clear-errors":
                Arity(command, args, 1, 1);
                cluster.ClearRequestErrors(ApiKey(args[0]));
                return "ok";
            case "shutdown":
                Arity(command, args, 0, 0);
                shutdownRequested.TrySetResult();
                return "ok";
            default:
                return $"error unknown command '{OneLine(command)}'";
        }
    }

    private static void Arity(string command, ReadOnlySpan<string> args, int min, int max)
    {
        if (args.Length < min || args.Length > max)
        {
            throw new FormatException($"wrong number of arguments for {command}");
        }
    }

    private static int Int(string text, string what) =>
        int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new FormatException($"bad {what} '{OneLine(text)}'");

    private static KafkaApiKey ApiKey(string text)
    {
        var value = Int(text, "api key");
        return value is >= 0 and <= short.MaxValue
            ? (KafkaApiKey)value
            : throw new FormatException($"bad api key '{OneLine(text)}'");
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");

    private async Task AcceptLoopAsync()
    {
        var connections = new List<Task>();
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                Socket socket;
                try
                {
                    socket = await listener.AcceptSocketAsync(stopping.Token);
                }
                catch (SocketException) when (stopping.IsCancellationRequested)
                {
                    break;
                }
                catch (ObjectDisposedException)
                {
                    break;
                }

                connections.RemoveAll(t => t.IsCompleted);
                connections.Add(ServeAsync(socket));
            }
        }
        catch (OperationCanceledException)
        {
        }

        await Task.WhenAll(connections);
    }

    private async Task ServeAsync(Socket socket)
    {
        await using var stream = new NetworkStream(socket, ownsSocket: true);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        await using var writer = new StreamWriter(stream, new UTF8Encoding(false)) { AutoFlush = true, NewLine = "\n" };
        try
        {
            while (await reader.ReadLineAsync(stopping.Token) is { } line)
            {
                await writer.WriteLineAsync(Execute(line).AsMemory(), stopping.Token);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (IOException)
        {
            // The client went away mid-line; nothing to answer.
        }
    }
}
