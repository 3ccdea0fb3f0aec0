using System.Globalization;

namespace WalBridge.DevTools;

/// <summary>One reading of a process's resources from /proc (Linux).</summary>
/// <param name="RssBytes">Resident memory (VmRSS).</param>
/// <param name="Threads">Threads.</param>
/// <param name="OpenFiles">Open file descriptors.</param>
public readonly record struct ProcessSample(long RssBytes, int Threads, int OpenFiles);

/// <summary>Reads <see cref="ProcessSample"/>s of a process by pid; a process that is gone reads as zeros.</summary>
public static class ProcessSampler
{
    public static ProcessSample Sample(int pid)
    {
        try
        {
            long rss = 0;
            var threads = 0;
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    rss = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
                }
                else if (line.StartsWith("Threads:", StringComparison.Ordinal))
                {
                    threads = int.Parse(line.Split('\t', ' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
                }
            }
            var files = Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd").Count();
            return new ProcessSample(rss, threads, files);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return default;
        }
    }
}
