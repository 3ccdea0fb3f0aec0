using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace WalBridge.SchemaRegistry;

/// <summary>
/// The test Schema Registry in its own child process (<c>dotnet WalBridge.SchemaRegistry.dll</c>), like the test broker:
/// it survives a process under test being killed, and it can itself be stopped and started again on the same port with
/// the same state file (the registry "down" and back). When <c>SCHEMA_REGISTRY_URL</c> is set, <see cref="StartOrExternalAsync"/>
/// uses that registry instead.
/// </summary>
/// <remarks>
/// Lifetime: <see cref="StartAsync"/> returns once the registry accepts requests; <see cref="DisposeAsync"/> closes its
/// standard input (it exits at its end) and kills it after 5 s. Threading: members are not thread-safe.
/// </remarks>
public sealed class LocalSchemaRegistry : IAsyncDisposable
{
    private Process? _process;
    private readonly string _stateFile;
    private readonly string? _basicAuth;

    private LocalSchemaRegistry(string stateFile, string? basicAuth, string? externalUrl)
    {
        _stateFile = stateFile;
        _basicAuth = basicAuth;
        Url = externalUrl ?? "";
        IsExternal = externalUrl is not null;
    }

    /// <summary>The registry's base URL, e.g. <c>http://127.0.0.1:38111</c>.</summary>
    public string Url { get; private set; }

    /// <summary>True when <c>SCHEMA_REGISTRY_URL</c> named a real registry (it cannot be stopped or restarted).</summary>
    public bool IsExternal { get; }

    public bool IsRunning => IsExternal || _process is { HasExited: false };

    /// <summary>Starts a registry process (optionally requiring HTTP basic authentication <c>user:password</c>).</summary>
    public static async Task<LocalSchemaRegistry> StartAsync(string? basicAuth = null, CancellationToken cancellationToken = default)
    {
        var registry = new LocalSchemaRegistry(Path.Combine(Path.GetTempPath(), $"walbridge-registry-{Guid.NewGuid():N}.json"), basicAuth, null);
        await registry.StartProcessAsync(0, cancellationToken);
        return registry;
    }

    /// <summary>The registry named by <c>SCHEMA_REGISTRY_URL</c>, or a started test registry.</summary>
    public static async Task<LocalSchemaRegistry> StartOrExternalAsync(CancellationToken cancellationToken = default) =>
        Environment.GetEnvironmentVariable("SCHEMA_REGISTRY_URL") is { Length: > 0 } url
            ? new LocalSchemaRegistry("", null, url.TrimEnd('/'))
            : await StartAsync(null, cancellationToken);

    /// <summary>Stops the registry process (requests fail with connection refused until <see cref="RestartAsync"/>).</summary>
    public async Task StopAsync()
    {
        if (_process is null)
        {
            return;
        }

        try
        {
            _process.StandardInput.Close();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
        }
        _process.Dispose();
        _process = null;
    }

    /// <summary>Starts the registry again on the same port with the same state (ids and versions kept).</summary>
    public Task RestartAsync(CancellationToken cancellationToken = default) =>
        StartProcessAsync(int.Parse(Url[(Url.LastIndexOf(':') + 1)..], CultureInfo.InvariantCulture), cancellationToken);

    private async Task StartProcessAsync(int port, CancellationToken cancellationToken)
    {
        var dll = typeof(LocalSchemaRegistry).Assembly.Location;
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
        };
        foreach (var argument in new[] { dll, "--port", port.ToString(CultureInfo.InvariantCulture), "--state", _stateFile, "--exit-on-stdin-eof" })
        {
            psi.ArgumentList.Add(argument);
        }
        if (_basicAuth is not null)
        {
            psi.ArgumentList.Add("--basic-auth");
            psi.ArgumentList.Add(_basicAuth);
        }
        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start WalBridge.SchemaRegistry");
        _process = process;
        var stderr = new StringBuilder();
        process.ErrorDataReceived += (_, e) =>
        {
            lock (stderr)
            {
                stderr.AppendLine(e.Data);
            }
        };
        process.BeginErrorReadLine();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.StartsWith("listening=", StringComparison.Ordinal))
            {
                Url = line["listening=".Length..].TrimEnd('/');
                return;
            }
        }
        string text;
        lock (stderr)
        {
            text = stderr.ToString();
        }
        throw new InvalidOperationException($"WalBridge.SchemaRegistry exited before it was ready. stderr:\n{text}");
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        try
        {
            File.Delete(_stateFile);
        }
        catch (IOException)
        {
        }
    }
}
