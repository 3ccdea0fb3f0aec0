using WalBridge.Connector.Errors;

namespace WalBridge.Connector.Transactions;

/// <summary>
/// An append-only temporary file under <c>&lt;state.dir&gt;/spill</c>, deleted when disposed (and swept at start-up
/// after a crash). Written by one thread, then read by one thread after the hand-over through the pipeline's queue
/// (which orders the two); not for concurrent use.
/// </summary>
/// <remarks>
/// Errors: every I/O failure is a <see cref="LocalStorageException"/> naming the file: fatal (a disk that does not
/// give back what was written cannot be fixed by retrying), or transient when the disk is full.
/// </remarks>
internal sealed class SpillFile : IDisposable
{
    private readonly FileStream _stream;

    public SpillFile(string directory, string name)
    {
        Path = System.IO.Path.Combine(directory, $"{name}-{Guid.NewGuid():N}.spill");
        try
        {
            Directory.CreateDirectory(directory);
            _stream = new FileStream(Path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LocalStorageException(Path, "Cannot create a spill file", e);
        }
    }

    public string Path { get; }

    /// <summary>Bytes written so far.</summary>
    public long Length => _stream.Length;

    /// <summary>Appends <paramref name="data"/> and returns the offset it starts at.</summary>
    public long Append(ReadOnlySpan<byte> data)
    {
        try
        {
            var offset = _stream.Seek(0, SeekOrigin.End);
            _stream.Write(data);
            return offset;
        }
        catch (IOException e)
        {
            throw new LocalStorageException(Path, "Cannot write the spill file", e);
        }
    }

    /// <summary>Reads <paramref name="destination"/>.Length bytes at <paramref name="offset"/>.</summary>
    public void Read(long offset, Span<byte> destination)
    {
        try
        {
            _stream.Flush();
            _stream.Seek(offset, SeekOrigin.Begin);
            _stream.ReadExactly(destination);
        }
        catch (IOException e)
        {
            throw new LocalStorageException(Path, $"Cannot read {destination.Length} bytes at offset {offset} back from the spill file", e);
        }
    }

    /// <summary>The file holds something this process did not write there: fatal, naming the file.</summary>
    public LocalStorageException Damaged(long offset) =>
        new(Path, $"The spill file is damaged at offset {offset} (its {Length} bytes do not hold what was written)", null);

    /// <summary>Deletes every spill file left by a previous process (crash or kill -9).</summary>
    public static void Sweep(string directory)
    {
        if (!Directory.Exists(directory))
        {
            return;
        }

        foreach (var file in Directory.EnumerateFiles(directory, "*.spill"))
        {
            try
            {
                File.Delete(file);
            }
            catch (IOException)
            {
                // Still open by a dying predecessor; the next start removes it.
            }
        }
    }

    public void Dispose() => _stream.Dispose();
}
