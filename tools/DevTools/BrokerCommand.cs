using System.Diagnostics;
using System.Runtime.InteropServices;

namespace WalBridge.DevTools;

/// <summary>
/// <c>connector broker</c>: runs the local Kafka-protocol broker in its own process (so a
/// <c>kill -9</c> of a connector leaves it running) and forwards SIGINT/SIGTERM to it.
/// </summary>
internal static partial class BrokerCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        var dll = typeof(WalBridge.Broker.LocalBroker).Assembly.Location;
        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false };
        start.ArgumentList.Add(dll);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start the broker process.");
        void Forward(PosixSignalContext context)
        {
            context.Cancel = true;
            // The child handles SIGTERM by shutting the cluster down cleanly.
            _ = Kill(process.Id, 15);
        }
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Forward);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Forward);
        await process.WaitForExitAsync();
        return process.ExitCode;
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
