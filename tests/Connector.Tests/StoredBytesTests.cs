using WalBridge.Connector.Transactions;
using WalBridge.Serialization.Payload;

namespace WalBridge.Connector.Tests;

/// <summary>
/// Record batch bytes kept for a Kafka transaction: in memory (large batches framed as their whole Arrow stream, so a
/// record of one batch is that array) or in the spill file; every way of reading them back gives the same bytes.
/// </summary>
public sealed class StoredBytesTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"walbridge-stored-{Guid.NewGuid():N}");

    private static byte[] Bytes(int length, byte seed)
    {
        var bytes = new byte[length];
        for (var i = 0; i < length; i++)
        {
            bytes[i] = (byte)(seed + (i * 7));
        }

        return bytes;
    }

    private static byte[] Stream(byte[] schema, byte[] batch) => [.. schema, .. batch, .. ArrowMessageWriter.EndOfStream];

    [Theory]
    [InlineData(PayloadCollector.FramedMinimum, true)]
    [InlineData(PayloadCollector.FramedMinimum - 1, false)]
    public void A_large_batch_is_its_own_record_array_and_reads_back_unchanged(int length, bool framed)
    {
        using var collector = new PayloadCollector(_directory, 1L << 30);
        var schema = Bytes(600, 3);
        var batch = Bytes(length, 11);
        var stored = collector.StoreBatch(batch, 1, schema);

        var stream = stored.AsStream(schema);
        Assert.Equal(Stream(schema, batch), stream);
        // Framed: the same array every time (no copy per record); otherwise a new one each time.
        Assert.Equal(framed, ReferenceEquals(stream, stored.AsStream(schema)));
        Assert.Equal(batch, stored.Get());
        var copy = new byte[length];
        stored.CopyTo(copy);
        Assert.Equal(batch, copy);

        // Another schema message (same length, other bytes) is never served the stored frame.
        var other = Bytes(600, 5);
        Assert.Equal(Stream(other, batch), stored.AsStream(other));
    }

    [Fact]
    public void A_spilled_batch_reads_back_as_its_stream()
    {
        using var collector = new PayloadCollector(_directory, 0);
        var schema = Bytes(300, 1);
        var batch = Bytes(PayloadCollector.FramedMinimum * 2, 9);
        var stored = collector.StoreBatch(batch, 2, schema);
        Assert.Equal(0, collector.MemoryBytes);
        Assert.Equal(Stream(schema, batch), stored.AsStream(schema));
        Assert.Equal(batch, stored.Get());
    }

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }
}
