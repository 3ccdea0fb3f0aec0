namespace WalBridge.Offsets.Mirror;

/// <summary>
/// An operation on the offset mirror failed. The message names the mirror's directory, the
/// <c>state.dir</c> setting and what to do; <see cref="IsTransient"/> says whether retrying can help.
/// </summary>
/// <remarks>
/// <para>
/// It is an <see cref="IOException"/>, so code that catches I/O failures keeps catching it; code
/// that decides between "retry" and "stop" (the connector's runner) must look at
/// <see cref="IsTransient"/> first, because most mirror failures do not heal by themselves.
/// </para>
/// <para>
/// Transient: the file system is full or over quota, or RocksDB reported itself busy, timed out
/// or asked for a retry. The condition can clear without anyone touching the mirror (space is
/// freed), and <see cref="RocksDbOffsetMirror"/> reopens its database before the next use, so a
/// retry really starts from a clean state.
/// </para>
/// <para>
/// Not transient: the directory is locked by another instance, cannot be created, read or written
/// (permissions, a read-only file system, a file in the way), or the database is corrupted, plus
/// anything RocksDB reports that is not known to be temporary. Retrying these would loop forever
/// while PostgreSQL retains WAL; someone has to act, and the message says what to do.
/// </para>
/// </remarks>
public class OffsetMirrorException : IOException
{
    /// <summary>Creates an exception that is not transient and names no location.</summary>
    public OffsetMirrorException()
        : this("The offset mirror failed.")
    {
    }

    /// <summary>Creates an exception that is not transient and names no location.</summary>
    public OffsetMirrorException(string message)
        : this(message, innerException: null)
    {
    }

    /// <summary>Creates an exception that is not transient and names no location.</summary>
    public OffsetMirrorException(string message, Exception? innerException)
        : this(message, location: string.Empty, isTransient: false, innerException)
    {
    }

    /// <summary>Creates an exception for the mirror in <paramref name="location"/>.</summary>
    public OffsetMirrorException(string message, string location, bool isTransient, Exception? innerException)
        : base(message, innerException)
    {
        Location = location;
        IsTransient = isTransient;
    }

    /// <summary>The mirror's directory (full path), or empty if the failure is not tied to one.</summary>
    public string Location { get; }

    /// <summary>Whether the failure may heal by itself, so retrying later can succeed.</summary>
    public bool IsTransient { get; }
}
