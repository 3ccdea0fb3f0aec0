using RocksDbSharp;

namespace WalBridge.Offsets.Mirror;

/// <summary>
/// Turns a RocksDB error (RocksDbSharp's <see cref="RocksDbException"/>, whose message is RocksDB's
/// <c>Status::ToString()</c>, e.g. <c>IO error: While lock file: …/LOCK: Resource temporarily
/// unavailable</c>) into an <see cref="OffsetMirrorException"/> that says what happened, what to do,
/// and whether it may heal by itself (see <see cref="OffsetMirrorException"/> for the policy).
/// </summary>
/// <remarks>
/// RocksDB's C API reports errors only as text, so the classification matches the stable parts of
/// that text: the status code's name (<c>Corruption:</c>, <c>Resource busy:</c>, …) and the
/// <c>strerror</c> text of the failed system call (<c>Permission denied</c>, <c>No space left on
/// device</c>, …). Anything not recognised is treated as not transient.
/// </remarks>
internal static class RocksDbFailure
{
    /// <summary>What a RocksDB error means for the operator.</summary>
    internal enum Kind
    {
        /// <summary>Not recognised: not transient, reported with RocksDB's message.</summary>
        Other,
        /// <summary>Another instance holds the directory's lock.</summary>
        Locked,
        /// <summary>The process may not read or write the directory, or the file system is read-only.</summary>
        Permission,
        /// <summary>RocksDB found damaged files, or files its metadata refers to are missing.</summary>
        Corruption,
        /// <summary>The file system is full or over quota: transient.</summary>
        NoSpace,
        /// <summary>RocksDB reported itself busy, timed out or asked for a retry: transient.</summary>
        Busy,
    }

    private static readonly string[] s_permission = ["Permission denied", "Operation not permitted", "Read-only file system"];
    private static readonly string[] s_noSpace = ["No space left on device", "Disk quota exceeded"];
    private static readonly string[] s_busy = ["Resource busy:", "Operation timed out:", "Operation failed. Try again."];
    // Same process: "lock hold by current process"; another process: "While lock file: …/LOCK: Resource temporarily unavailable".
    private static readonly string[] s_locked = ["lock hold by current process", "While lock file"];

    /// <summary>Classifies RocksDB's error message.</summary>
    internal static Kind Classify(string message)
    {
        // Order matters: a lock file that cannot be opened for lack of permission is a permission
        // problem, not another instance; an I/O error that says "no space" is a full disk.
        if (ContainsAny(message, s_noSpace))
        {
            return Kind.NoSpace;
        }

        if (ContainsAny(message, s_permission))
        {
            return Kind.Permission;
        }
        // A file the database's own metadata refers to is missing: as damaged as a bad checksum.
        if (message.Contains("Corruption:", StringComparison.Ordinal) || message.Contains("No such file or directory", StringComparison.OrdinalIgnoreCase))
        {
            return Kind.Corruption;
        }

        if (ContainsAny(message, s_locked))
        {
            return Kind.Locked;
        }

        if (ContainsAny(message, s_busy))
        {
            return Kind.Busy;
        }

        return Kind.Other;
    }

    /// <summary>The exception for <paramref name="operation"/> ("Opening", "Writing to", …) of the mirror in <paramref name="location"/>.</summary>
    internal static OffsetMirrorException Describe(string operation, string location, RocksDbSharpException error) =>
        Describe(operation, location, error.Message, error);

    /// <inheritdoc cref="Describe(string, string, RocksDbSharpException)"/>
    internal static OffsetMirrorException Describe(string operation, string location, string rocksDbMessage, Exception? inner)
    {
        var kind = Classify(rocksDbMessage);
        var what = $"{operation} the offset mirror (RocksDB) in '{location}' failed";
        var message = kind switch
        {
            Kind.Locked =>
                $"{what}: the directory is locked by another connector instance (in this or another process) that uses the same state.dir. " +
                $"Stop that instance, or give this one a state.dir of its own. RocksDB: {rocksDbMessage}",
            Kind.Permission =>
                $"{what}: permission denied. Give the connector's user read and write access to '{location}' (and a writable file system), " +
                $"or set state.dir to a directory it owns. RocksDB: {rocksDbMessage}",
            Kind.Corruption =>
                $"{what}: the database is corrupted or incomplete. The mirror is only a local copy of the position committed in Kafka, which stays the source " +
                $"of truth: stop the connector, move '{location}' aside (keep it for diagnosis) and start again, or set state.dir to an empty " +
                $"directory; the mirror is rebuilt from the next commit. RocksDB: {rocksDbMessage}",
            Kind.NoSpace =>
                $"{what}: the file system holding it is full. Free space there, or move state.dir to another file system; the connector " +
                $"retries (the mirror is reopened before the next write). RocksDB: {rocksDbMessage}",
            Kind.Busy =>
                $"{what}: RocksDB is temporarily unable to serve the request; the connector retries. If this persists, check the " +
                $"file system that holds state.dir. RocksDB: {rocksDbMessage}",
            _ =>
                $"{what}: {rocksDbMessage}. Check the directory and its file system (see RocksDB's LOG file there), " +
                "or set state.dir to another directory.",
        };
        return new OffsetMirrorException(message, location, isTransient: kind is Kind.NoSpace or Kind.Busy, inner);
    }

    private static bool ContainsAny(string message, string[] needles)
    {
        foreach (var needle in needles)
        {
            if (message.Contains(needle, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }
        return false;
    }
}
