using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace WalBridge.Bench;

/// <summary>
/// CPU time and peak memory of a Linux process from <c>/proc</c>: <c>utime + stime</c> of
/// <c>/proc/&lt;pid&gt;/stat</c> and <c>VmHWM</c> of <c>/proc/&lt;pid&gt;/status</c>. Keeps the last values it
/// could read, so sampling a process that has just exited still yields its figures from the last sample.
/// </summary>
internal sealed class ProcSampler(int pid)
{
    private const double ClockTicksPerSecond = 100.0; // sysconf(_SC_CLK_TCK) on Linux

    public int Pid { get; } = pid;
    public double CpuSeconds { get; private set; }
    public long PeakRssBytes { get; private set; }

    /// <summary>Reads the current figures; false when the process is gone.</summary>
    public bool Sample()
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{Pid}/stat");
            // Fields after the command name (which may hold spaces) start at field 3 (state).
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            CpuSeconds = Math.Max(CpuSeconds, ticks / ClockTicksPerSecond);
            foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    var kb = long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
                    PeakRssBytes = Math.Max(PeakRssBytes, kb * 1024);
                }
            }
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return false;
        }
    }
}

/// <summary>
/// A child process (connector, pg_recvlogical, the JS peer) with its output captured into a log
/// file and kept for searching; started with <see cref="Start"/>, stopped with SIGTERM or SIGKILL.
/// </summary>
internal sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly StreamWriter _log;
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<(string Text, TaskCompletionSource<DateTime> Seen)> _waiters = [];
    private bool _closed;

    private ChildProcess(Process process, string logPath)
    {
        _process = process;
        LogPath = logPath;
        _log = new StreamWriter(logPath) { AutoFlush = true };
        Sampler = new ProcSampler(process.Id);
    }

    public string LogPath { get; }
    public ProcSampler Sampler { get; }
    public Stopwatch Clock { get; } = Stopwatch.StartNew();
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;
    public Task Exited => _exited.Task;

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

    public static ChildProcess Start(string file, IEnumerable<string> arguments, string logPath, IReadOnlyDictionary<string, string>? environment = null, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        ChildProcess? child = null;
        process.OutputDataReceived += (_, e) => child?.Append(e.Data);
        process.ErrorDataReceived += (_, e) => child?.Append(e.Data);
        if (!process.Start())
        {
            throw new InvalidOperationException($"could not start {file}");
        }

        child = new ChildProcess(process, logPath);
        process.Exited += (_, _) => child._exited.TrySetResult();
        if (process.HasExited)
        {
            child._exited.TrySetResult();
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            if (_closed)
            {
                return;
            }

            _output.AppendLine(line);
            _log.WriteLine(line);
            foreach (var (text, seen) in _waiters)
            {
                if (line.Contains(text, StringComparison.Ordinal))
                {
                    seen.TrySetResult(DateTime.UtcNow);
                }
            }
        }
    }

    /// <summary>Completes with the time a line containing <paramref name="text"/> appeared (also one already printed).</summary>
    public Task<DateTime> WhenPrinted(string text)
    {
        lock (_output)
        {
            var seen = new TaskCompletionSource<DateTime>(TaskCreationOptions.RunContinuationsAsynchronously);
            if (_output.ToString().Contains(text, StringComparison.Ordinal))
            {
                seen.TrySetResult(DateTime.UtcNow);
            }
            else
            {
                _waiters.Add((text, seen));
            }

            return seen.Task;
        }
    }

    /// <summary>The last output line (for error messages).</summary>
    public string LastLines(int count)
    {
        var lines = Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return string.Join('\n', lines.TakeLast(count));
    }

    /// <summary>Sends SIGTERM (graceful stop).</summary>
    public void Terminate()
    {
        if (_process.HasExited)
        {
            return;
        }

        using var kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]) { UseShellExecute = false });
        kill?.WaitForExit();
    }

    /// <summary>SIGTERM, then SIGKILL after <paramref name="grace"/>; true when it exited by itself within the grace period.</summary>
    public async Task<bool> StopAsync(TimeSpan grace)
    {
        if (_process.HasExited)
        {
            return true;
        }

        Terminate();
        if (await Task.WhenAny(Exited, Task.Delay(grace)) == Exited)
        {
            return true;
        }

        Kill();
        return false;
    }

    public void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        await Task.WhenAny(Exited, Task.Delay(5000));
        _process.Dispose();
        lock (_output)
        {
            _closed = true;
            _log.Dispose();
        }
    }
}
