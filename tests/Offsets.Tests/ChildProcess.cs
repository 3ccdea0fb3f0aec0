using System.Diagnostics;
using WalBridge.Offsets.Mirror;

namespace WalBridge.Offsets.Tests;

/// <summary>
/// The entry point of this assembly when it runs as a child process
/// (<c>dotnet WalBridge.Offsets.Tests.dll mirror-child &lt;dir&gt; &lt;step&gt;...</c>): it opens a mirror,
/// applies the steps, prints <c>ready</c> and keeps the mirror open, never disposing it, until it
/// is killed (or its standard input closes, so it cannot outlive a crashed test host).
/// </summary>
/// <remarks>Steps: <c>write:&lt;slot&gt;:&lt;commitLsn&gt;:&lt;xid&gt;</c> and <c>delete:&lt;slot&gt;</c>, keyed by <see cref="TestData.Key"/>.</remarks>
internal static class ChildProgram
{
    public static int Main(string[] args)
    {
        if (args.Length < 2 || args[0] != "mirror-child")
        {
            Console.Error.WriteLine("usage: mirror-child <dir> [write:<slot>:<lsn>:<xid> | delete:<slot>]...");
            return 2;
        }
        var mirror = RocksDbOffsetMirror.Open(args[1]);
        foreach (var step in args.Skip(2))
        {
            var parts = step.Split(':');
            switch (parts)
            {
                case ["write", var slot, var lsn, var xid]:
                    mirror.Write(TestData.Key(slot), TestData.Record(lsn, uint.Parse(xid, System.Globalization.CultureInfo.InvariantCulture)));
                    break;
                case ["delete", var slot]:
                    mirror.Delete(TestData.Key(slot));
                    break;
                default:
                    Console.Error.WriteLine($"unknown step '{step}'");
                    return 2;
            }
        }
        Console.Out.WriteLine("ready");
        Console.Out.Flush();
        Console.In.ReadToEnd();
        // Only reached when the parent went away without killing us: still no Dispose.
        GC.KeepAlive(mirror);
        Environment.Exit(3);
        return 3;
    }
}

/// <summary>A <see cref="ChildProgram"/> started with <c>dotnet</c>, killed with SIGKILL on <see cref="Kill"/> or dispose.</summary>
internal sealed class MirrorChild : IDisposable
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);
    private readonly Process _process;

    private MirrorChild(Process process) => _process = process;

    /// <summary>Starts the child and waits until it printed <c>ready</c> (all steps applied, the mirror still open).</summary>
    public static async Task<MirrorChild> StartAsync(string directory, params string[] steps)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(typeof(ChildProgram).Assembly.Location);
        start.ArgumentList.Add("mirror-child");
        start.ArgumentList.Add(directory);
        foreach (var step in steps)
        {
            start.ArgumentList.Add(step);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start dotnet");
        var child = new MirrorChild(process);
        try
        {
            var line = await process.StandardOutput.ReadLineAsync().WaitAsync(s_timeout);
            if (line != "ready")
            {
                child.Kill();
                var error = await process.StandardError.ReadToEndAsync();
                throw new InvalidOperationException($"the child process did not get ready (exit code {process.ExitCode}): {line} {error}");
            }
            return child;
        }
        catch
        {
            child.Dispose();
            throw;
        }
    }

    /// <summary>Kills the child with SIGKILL (no managed code runs: no Dispose, no finalizers) and waits for its end.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        if (!_process.WaitForExit(s_timeout))
        {
            throw new TimeoutException("the killed child process did not exit");
        }
    }

    public void Dispose()
    {
        try
        {
            Kill();
        }
        finally
        {
            _process.Dispose();
        }
    }
}
