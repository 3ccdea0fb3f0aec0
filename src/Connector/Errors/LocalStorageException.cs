namespace WalBridge.Connector.Errors;

/// <summary>
/// Local storage under <c>state.dir</c> (spill files, the offset mirror) failed: a file could not be written or
/// read back as written. Fatal, because retrying cannot repair a disk or file system that returns other bytes than
/// were written, except when the disk is full (<see cref="DiskFull"/>): that may heal once space is freed, so it is
/// retried. Nothing was acknowledged past the position committed in Kafka either way.
/// </summary>
public sealed class LocalStorageException : Exception
{
    /// <summary>Linux <c>ENOSPC</c>, which .NET reports as the <c>IOException.HResult</c> of a full disk.</summary>
    private const int NoSpaceLeftOnDevice = 28;

    public LocalStorageException(string path, string what, Exception? inner)
        : base($"{what} ({path}): {inner?.Message ?? "no details"}. " +
               (IsDiskFull(inner)
                   ? "The disk is full: free space under state.dir (or point 'state.dir' at a larger disk); retrying."
                   : "Check the disk and file system under state.dir (or point 'state.dir' elsewhere), then restart."), inner)
    {
        Path = path;
        DiskFull = IsDiskFull(inner);
    }

    public LocalStorageException() { }
    public LocalStorageException(string message) : base(message) { }
    public LocalStorageException(string message, Exception inner) : base(message, inner) { }

    /// <summary>The file or directory concerned.</summary>
    public string Path { get; } = "";

    /// <summary>Whether the cause was a full disk (transient), rather than damage or permissions (fatal).</summary>
    public bool DiskFull { get; }

    private static bool IsDiskFull(Exception? e) => e is IOException { HResult: NoSpaceLeftOnDevice };
}

/// <summary>
/// The replication connection ended in the middle of a message (the server or the network went away). Transient:
/// the pipeline restarts from the position committed in Kafka.
/// </summary>
public sealed class ReplicationConnectionLostException : IOException
{
    public ReplicationConnectionLostException(string message) : base(message) { }
    public ReplicationConnectionLostException(string message, Exception inner) : base(message, inner) { }
    public ReplicationConnectionLostException() { }
}
