using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using WalBridge.Connector.Pipeline;

namespace WalBridge.Integration.Tests;

/// <summary>
/// The connector as a child process (<c>run --config</c>), as a service manager runs it: its output captured, its
/// operations endpoints reachable, stopped with SIGKILL or SIGTERM. Killed when disposed.
/// </summary>
internal sealed partial class ConnectorProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private ConnectorProcess(Process process, int port, string? token)
    {
        _process = process;
        Port = port;
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(30) };
        if (token is not null)
        {
            Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
    }

    public int Port { get; }
    public HttpClient Http { get; }
    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>A free loopback port for <c>operations.listen</c>.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Writes <paramref name="values"/> (with <c>operations.listen</c> on a free port) to a file and starts the connector on it.</summary>
    public static ConnectorProcess Start(IDictionary<string, string> values, IDictionary<string, string>? environment = null, string? token = null)
    {
        var port = FreePort();
        var settings = new Dictionary<string, string>(values) { ["operations.listen"] = $"127.0.0.1:{port}" };
        var file = Path.Combine(Path.GetTempPath(), $"walbridge-test-{Guid.NewGuid():N}.properties");
        File.WriteAllLines(file, settings.Select(kv => $"{kv.Key}={kv.Value}"));
        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(typeof(ConnectorRunner).Assembly.Location);
        start.ArgumentList.Add("run");
        start.ArgumentList.Add("--config");
        start.ArgumentList.Add(file);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the connector");
        var connector = new ConnectorProcess(process, port, token) { ConfigFile = file };
        process.OutputDataReceived += (_, e) => connector.Append(e.Data);
        process.ErrorDataReceived += (_, e) => connector.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return connector;
    }

    /// <summary>The properties file it runs with (operations.listen included).</summary>
    public string ConfigFile { get; private init; } = "";

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    public async Task WaitForOutputAsync(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!Output.Contains(text, StringComparison.Ordinal))
        {
            if (_process.HasExited || DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"The connector did not print '{text}' (exited: {_process.HasExited}):\n{Output}");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>The admin API's status document.</summary>
    public async Task<JsonElement> StatusAsync(string name)
    {
        using var response = await Http.GetAsync($"connectors/{name}/status");
        response.EnsureSuccessStatusCode();
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
    }

    /// <summary>Waits until the admin API reports <paramref name="state"/> (Kafka Connect's name: RUNNING, PAUSED, UNASSIGNED, …).</summary>
    public async Task WaitForStateAsync(string name, string state, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        var last = "(no answer)";
        while (DateTime.UtcNow < deadline && !_process.HasExited)
        {
            try
            {
                var status = await StatusAsync(name);
                last = status.GetProperty("connector").GetProperty("state").GetString()!;
                if (last == state)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(200);
        }
        throw new TimeoutException($"The connector did not reach {state} (last {last}, exited: {_process.HasExited}):\n{Output}");
    }

    /// <summary>One scrape of /metrics.</summary>
    public async Task<string> MetricsAsync() => await Http.GetStringAsync("metrics");

    /// <summary>The value of the first sample of <paramref name="metric"/> whose labels contain <paramref name="labels"/>, or null.</summary>
    public static double? Sample(string metrics, string metric, string labels = "")
    {
        foreach (var line in metrics.Split('\n'))
        {
            if (line.StartsWith('#') || !line.StartsWith(metric, StringComparison.Ordinal))
            {
                continue;
            }

            var rest = line[metric.Length..];
            if (rest.Length == 0 || (rest[0] != '{' && rest[0] != ' '))
            {
                continue;
            }

            if (labels.Length > 0 && !rest.Contains(labels, StringComparison.Ordinal))
            {
                continue;
            }

            var value = line[(line.LastIndexOf(' ') + 1)..];
            return value == "NaN" ? double.NaN : double.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
        }
        return null;
    }

    /// <summary>SIGKILL: no cleanup, like a crash.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _ = KillProcess(_process.Id, 9);
            _process.WaitForExit(10_000);
        }
    }

    /// <summary>SIGTERM, then waits for the exit; returns the exit code, or null when it did not exit in time.</summary>
    public async Task<int?> TerminateAsync(TimeSpan timeout)
    {
        if (!_process.HasExited)
        {
            _ = KillProcess(_process.Id, 15);
        }

        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancel.Token);
            return _process.ExitCode;
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>SIGSTOP or SIGCONT.</summary>
    public void Signal(int signal) => _ = KillProcess(_process.Id, signal);

    public ValueTask DisposeAsync()
    {
        Kill();
        _process.Dispose();
        Http.Dispose();
        File.Delete(ConfigFile);
        return ValueTask.CompletedTask;
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int KillProcess(int pid, int signal);
}
