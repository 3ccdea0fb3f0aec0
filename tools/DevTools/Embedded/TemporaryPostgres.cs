using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace WalBridge.DevTools.Embedded;

/// <summary>
/// A throwaway PostgreSQL 15 cluster: a temporary data directory, a free loopback port,
/// <c>wal_level=logical</c>, trust authentication for the <c>postgres</c> user. For tests,
/// the demo and benchmarks.
/// </summary>
/// <remarks>
/// PostgreSQL refuses to run as root, so as root the server runs as the <c>postgres</c> user.
/// Nothing outlives its owner: <see cref="DisposeAsync"/> stops the server and deletes the
/// directory, and a detached watchdog does the same if the owning process dies without
/// disposing (a crashed or killed test run).
/// </remarks>
public sealed class TemporaryPostgres : IAsyncDisposable
{
    /// <summary>Where Debian puts the server binaries.</summary>
    public const string DefaultBinDirectory = "/usr/lib/postgresql/15/bin";

    private readonly string _bin;
    private Process? _watchdog;
    private bool _stopped;

    private TemporaryPostgres(string bin, string directory, int port)
    {
        _bin = bin;
        Directory = directory;
        Port = port;
    }

    /// <summary>The directory holding the data directory (<c>data/</c>), the socket and the log.</summary>
    public string Directory { get; }

    public string DataDirectory => Path.Combine(Directory, "data");
    public string LogFile => Path.Combine(Directory, "postgres.log");
    public int Port { get; }
    public string Host { get; } = "127.0.0.1";
    public string User { get; } = "postgres";

    /// <summary>A connection string for <paramref name="database"/>.</summary>
    public string ConnectionString(string database = "postgres") =>
        new NpgsqlConnectionStringBuilder { Host = Host, Port = Port, Username = User, Database = database, Pooling = false, Timeout = 15 }.ConnectionString;

    /// <summary>
    /// Creates and starts a cluster. <paramref name="extraSettings"/> are appended to postgresql.conf.
    /// </summary>
    /// <exception cref="InvalidOperationException">PostgreSQL 15 is not installed or failed to start; the message holds its log.</exception>
    public static Task<TemporaryPostgres> StartAsync(IReadOnlyDictionary<string, string>? extraSettings = null, CancellationToken cancellationToken = default) =>
        StartAsync(extraSettings, hbaFirst: null, cancellationToken);

    /// <summary>
    /// Creates and starts a cluster. <paramref name="extraSettings"/> are appended to postgresql.conf;
    /// <paramref name="hbaFirst"/> are put at the top of pg_hba.conf (the first matching line wins), e.g. to require
    /// TLS and SCRAM for a user.
    /// </summary>
    /// <exception cref="InvalidOperationException">PostgreSQL 15 is not installed or failed to start; the message holds its log.</exception>
    public static async Task<TemporaryPostgres> StartAsync(IReadOnlyDictionary<string, string>? extraSettings, IReadOnlyList<string>? hbaFirst, CancellationToken cancellationToken = default)
    {
        var bin = Environment.GetEnvironmentVariable("WALBRIDGE_PG_BIN") ?? DefaultBinDirectory;
        if (!File.Exists(Path.Combine(bin, "initdb")))
        {
            throw new InvalidOperationException($"PostgreSQL 15 server binaries not found in {bin}; run scripts/setup.sh (it installs Debian's postgresql-15).");
        }

        var directory = Path.Combine(Path.GetTempPath(), $"walbridge-pg-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);
        System.IO.Directory.CreateDirectory(directory);
        var asRoot = Environment.UserName == "root";
        if (asRoot)
        {
            await RunAsync("chown", ["postgres:postgres", directory], asPostgres: false, cancellationToken);
        }

        var port = FreePort();
        var server = new TemporaryPostgres(bin, directory, port);
        try
        {
            server.StartWatchdog();
            await RunAsync(Path.Combine(bin, "initdb"),
                ["-D", server.DataDirectory, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
                asRoot, cancellationToken);

            var settings = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["listen_addresses"] = "'127.0.0.1'",
                ["port"] = port.ToString(CultureInfo.InvariantCulture),
                ["unix_socket_directories"] = $"'{directory}'",
                ["wal_level"] = "logical",
                ["max_replication_slots"] = "20",
                ["max_wal_senders"] = "20",
                ["wal_sender_timeout"] = "60s",
                ["fsync"] = "off",
                ["full_page_writes"] = "off",
                ["synchronous_commit"] = "on",
                ["shared_buffers"] = "128MB",
                ["max_wal_size"] = "2GB",
                ["logging_collector"] = "off",
                ["log_min_messages"] = "warning",
            };
            // Our output plugin: found on dynamic_library_path, and allowed where the server has the
            // output_plugin_libraries allow-list (15.20+; an unknown setting would stop older ones).
            if (Wal2ArrowLibraryDirectory() is { } pluginDirectory)
            {
                settings["dynamic_library_path"] = $"'$libdir:{pluginDirectory}'";
                if (await server.HasSettingAsync("output_plugin_libraries", asRoot, cancellationToken))
                {
                    settings["output_plugin_libraries"] = "'pgoutput, test_decoding, wal2arrow'";
                }
            }
            foreach (var (key, value) in extraSettings ?? new Dictionary<string, string>())
            {
                settings[key] = value;
            }

            var conf = string.Join('\n', settings.Select(kv => $"{kv.Key} = {kv.Value}")) + '\n';
            await File.AppendAllTextAsync(Path.Combine(server.DataDirectory, "postgresql.conf"), conf, cancellationToken);
            var hba = Path.Combine(server.DataDirectory, "pg_hba.conf");
            var first = hbaFirst is { Count: > 0 } ? string.Join('\n', hbaFirst) + '\n' : "";
            await File.WriteAllTextAsync(hba, first + await File.ReadAllTextAsync(hba, cancellationToken) +
                "local replication all trust\nhost replication all 127.0.0.1/32 trust\n", cancellationToken);

            await RunAsync(Path.Combine(bin, "pg_ctl"), ["-D", server.DataDirectory, "-l", server.LogFile, "-w", "-t", "60", "start"], asRoot, cancellationToken);
            return server;
        }
        catch (Exception e)
        {
            var log = File.Exists(server.LogFile) ? await File.ReadAllTextAsync(server.LogFile, CancellationToken.None) : "";
            await server.DisposeAsync();
            throw new InvalidOperationException($"Could not start a temporary PostgreSQL in {directory}: {e.Message}\n{log}", e);
        }
    }

    /// <summary>
    /// The folder holding the wal2arrow plugin built by scripts/setup.sh (<c>.cache/wal2arrow</c> in the
    /// repository), or <c>WALBRIDGE_WAL2ARROW_DIR</c>; null when it is not built.
    /// </summary>
    public static string? Wal2ArrowLibraryDirectory()
    {
        if (Environment.GetEnvironmentVariable("WALBRIDGE_WAL2ARROW_DIR") is { Length: > 0 } configured)
        {
            return File.Exists(Path.Combine(configured, "wal2arrow.so")) ? configured : null;
        }

        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, ".cache", "wal2arrow");
            if (File.Exists(Path.Combine(candidate, "wal2arrow.so")))
            {
                return candidate;
            }
        }
        return null;
    }

    private async Task<bool> HasSettingAsync(string name, bool asRoot, CancellationToken cancellationToken)
    {
        try
        {
            await RunAsync(Path.Combine(_bin, "postgres"), ["-D", DataDirectory, "-C", name], asRoot, cancellationToken);
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>Runs SQL statements on <paramref name="database"/>.</summary>
    public async Task ExecuteAsync(string sql, string database = "postgres", CancellationToken cancellationToken = default)
    {
        await using var connection = new NpgsqlConnection(ConnectionString(database));
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 300 };
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Runs a query and returns its first column of the first row.</summary>
    public async Task<T> ScalarAsync<T>(string sql, string database = "postgres", CancellationToken cancellationToken = default)
    {
        await using var connection = new NpgsqlConnection(ConnectionString(database));
        await connection.OpenAsync(cancellationToken);
        // As for ExecuteAsync: workload statements of tests and benchmarks may run for minutes on a busy machine.
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 300 };
        return (T)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>
    /// Stops the server and starts it again on the same port and data. <paramref name="immediate"/>
    /// stops it like a crash (no checkpoint; recovery at start). A fast shutdown waits for logical
    /// walsenders until their clients confirm everything sent, which a connector that confirms only
    /// what Kafka committed may never do while idle.
    /// </summary>
    public async Task RestartAsync(bool immediate = true, CancellationToken cancellationToken = default)
    {
        var asRoot = Environment.UserName == "root";
        await RunAsync(Path.Combine(_bin, "pg_ctl"),
            ["-D", DataDirectory, "-l", LogFile, "-w", "-t", "60", "-m", immediate ? "immediate" : "fast", "restart"], asRoot, cancellationToken);
    }

    /// <summary>
    /// Stops (<c>SIGSTOP</c>) or continues (<c>SIGCONT</c>) the server and every one of its processes: to its clients
    /// it looks like a network partition that drops packets (connections stay open, nothing answers).
    /// </summary>
    public async Task FreezeAsync(bool frozen, CancellationToken cancellationToken = default)
    {
        var postmaster = (await File.ReadAllLinesAsync(Path.Combine(DataDirectory, "postmaster.pid"), cancellationToken))[0].Trim();
        var signal = frozen ? "-STOP" : "-CONT";
        // The postmaster first when stopping (it forks no new backends), last when continuing.
        if (frozen)
        {
            await RunAsync("kill", [signal, postmaster], asPostgres: false, cancellationToken);
        }

        var children = new ProcessStartInfo("pgrep", ["-P", postmaster]) { RedirectStandardOutput = true, UseShellExecute = false };
        using (var pgrep = Process.Start(children) ?? throw new InvalidOperationException("Could not start pgrep."))
        {
            var pids = (await pgrep.StandardOutput.ReadToEndAsync(cancellationToken)).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            await pgrep.WaitForExitAsync(cancellationToken);
            if (pids.Length > 0)
            {
                await RunAsync("kill", [signal, .. pids], asPostgres: false, cancellationToken);
            }
        }
        if (!frozen)
        {
            await RunAsync("kill", [signal, postmaster], asPostgres: false, cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_stopped)
        {
            return;
        }

        _stopped = true;
        try
        {
            // A frozen server (FreezeAsync) would not stop.
            await FreezeAsync(false, CancellationToken.None);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException)
        {
        }
        if (File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
        {
            try
            {
                await RunAsync(Path.Combine(_bin, "pg_ctl"), ["-D", DataDirectory, "-w", "-t", "30", "-m", "immediate", "stop"],
                    Environment.UserName == "root", CancellationToken.None);
            }
            catch (InvalidOperationException)
            {
                // Already stopped; the directory is removed below either way.
            }
        }
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
        if (_watchdog is { HasExited: false })
        {
            try
            {
                _watchdog.Kill();
            }
            catch (InvalidOperationException)
            {
            }
        }
        _watchdog?.Dispose();
    }

    /// <summary>
    /// A detached shell that stops the server and removes the directory when this process dies:
    /// tests and the demo must leave nothing behind even when killed.
    /// </summary>
    private void StartWatchdog()
    {
        var ctl = Path.Combine(_bin, "pg_ctl");
        var stop = Environment.UserName == "root"
            ? $"runuser -u postgres -- {ctl} -D '{DataDirectory}' -m immediate stop"
            : $"{ctl} -D '{DataDirectory}' -m immediate stop";
        var script = $"while kill -0 {Environment.ProcessId} 2>/dev/null; do sleep 1; done; " +
                     $"if [ -f '{DataDirectory}/postmaster.pid' ]; then {stop} >/dev/null 2>&1; fi; rm -rf '{Directory}'";
        var start = new ProcessStartInfo("setsid", ["bash", "-c", script])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        _watchdog = Process.Start(start);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task RunAsync(string file, IReadOnlyList<string> arguments, bool asPostgres, CancellationToken cancellationToken)
    {
        var start = asPostgres
            ? new ProcessStartInfo("runuser", ["-u", "postgres", "--", file, .. arguments])
            : new ProcessStartInfo(file, arguments);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        start.WorkingDirectory = "/tmp";
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {file}.");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{Path.GetFileName(file)} {string.Join(' ', arguments)} exited with {process.ExitCode}: {await stderr}{await stdout}");
        }
    }
}
