namespace WalBridge.Connector.Pipeline;

/// <summary>
/// An append-only temporary file under <c>&lt;state.dir&gt;/spill</c>, deleted when disposed (and
/// swept at start-up after a crash). Written by one thread, then read by one thread after the hand-over
/// through the pipeline's channel (which orders the two); not for concurrent use.
/// </summary>
internal sealed class SpillFile : IDisposable
{
    private readonly FileStream _stream;

    public SpillFile(string directory, string name)
    {
        Directory.CreateDirectory(directory);
        Path = System.IO.Path.Combine(directory, $"{name}-{Guid.NewGuid():N}.spill");
        _stream = new FileStream(Path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
    }

    public string Path { get; }

    /// <summary>Bytes written so far.</summary>
    public long Length => _stream.Length;

    /// <summary>Appends <paramref name="data"/> and returns the offset it starts at.</summary>
    public long Append(ReadOnlySpan<byte> data)
    {
        var offset = _stream.Seek(0, SeekOrigin.End);
        _stream.Write(data);
        return offset;
    }

    /// <summary>Reads <paramref name="destination"/>.Length bytes at <paramref name="offset"/>.</summary>
    /// <exception cref="IOException">The file is shorter than expected.</exception>
    public void Read(long offset, Span<byte> destination)
    {
        _stream.Flush();
        _stream.Seek(offset, SeekOrigin.Begin);
        _stream.ReadExactly(destination);
    }

    /// <summary>Deletes every spill file left by a previous process (crash or kill -9).</summary>
    public static void Sweep(string directory)
    {
        if (!Directory.Exists(directory))
            return;
        foreach (var file in Directory.EnumerateFiles(directory, "*.spill"))
        {
            try
            {
                File.Delete(file);
            }
            catch (IOException)
            {
            }
        }
    }

    public void Dispose() => _stream.Dispose();
}
