using Apache.Arrow.Ipc;

namespace WalBridge.Serialization.Payload;

/// <summary>
/// Arrow IPC body compression of the record batches the connector encodes (the <c>arrow.compression</c> setting). Each
/// record batch message says in its own metadata (<c>BodyCompression</c>) whether and how its buffers are compressed,
/// so compressed and uncompressed batches of one schema may share a stream; the schema message is never compressed.
/// </summary>
public enum ArrowCompression
{
    /// <summary>Uncompressed bodies: every Arrow reader decodes them without a codec.</summary>
    None,

    /// <summary>Each buffer an LZ4 frame (Arrow's <c>LZ4_FRAME</c>).</summary>
    Lz4Frame,

    /// <summary>Each buffer a Zstandard frame (Arrow's <c>ZSTD</c>), default level.</summary>
    Zstd,
}

/// <summary>The names of <see cref="ArrowCompression"/> values and what Apache.Arrow's writer needs for them.</summary>
public static class ArrowCompressions
{
    private static readonly Apache.Arrow.Compression.CompressionCodecFactory s_codecs = new();

    /// <summary>The codecs for reading compressed bodies (LZ4_FRAME and ZSTD), for an Apache.Arrow <c>ArrowContext</c>.</summary>
    public static ICompressionCodecFactory CodecFactory => s_codecs;

    /// <summary>The setting's spelling: <c>none</c>, <c>lz4_frame</c>, <c>zstd</c> (Arrow's codec names, lower case).</summary>
    public static string Name(this ArrowCompression compression) => compression switch
    {
        ArrowCompression.None => "none",
        ArrowCompression.Lz4Frame => "lz4_frame",
        ArrowCompression.Zstd => "zstd",
        _ => throw new ArgumentOutOfRangeException(nameof(compression), compression, "Unknown Arrow compression."),
    };

    /// <summary>The compression named <paramref name="name"/> as <see cref="Name"/> spells it, or null.</summary>
    public static ArrowCompression? Parse(string name) =>
        Enum.GetValues<ArrowCompression>().Cast<ArrowCompression?>().FirstOrDefault(c => c!.Value.Name() == name);

    /// <summary>Apache.Arrow's writer options for <paramref name="compression"/>: null (the writer's defaults) for none.</summary>
    internal static IpcOptions? WriterOptions(ArrowCompression compression) => compression switch
    {
        ArrowCompression.None => null,
        ArrowCompression.Lz4Frame => new IpcOptions { CompressionCodec = CompressionCodecType.Lz4Frame, CompressionCodecFactory = s_codecs },
        ArrowCompression.Zstd => new IpcOptions { CompressionCodec = CompressionCodecType.Zstd, CompressionCodecFactory = s_codecs },
        _ => throw new ArgumentOutOfRangeException(nameof(compression), compression, "Unknown Arrow compression."),
    };
}
