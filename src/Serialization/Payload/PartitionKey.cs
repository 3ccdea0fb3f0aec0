using System.Buffers;
using System.Buffers.Binary;

namespace WalBridge.Serialization.Payload;

/// <summary>
/// The one definition of how a row is assigned to a partition of its topic (docs/format.md, "Partitions"): the row's
/// replica-identity key columns (<c>pg.primary_key</c>, in that order) encoded as a JSON array of PostgreSQL's text of
/// each value (<c>["42"]</c>, <c>["eu","1001"]</c>; SQL NULL as <c>null</c>), hashed with Kafka's murmur2 (the hash of
/// Kafka's default partitioner), made positive and taken modulo the partition count. A Kafka Streams or Flink job that
/// keys another topic by the same bytes with the default partitioner lands each key in the same partition number.
/// A table without a key goes to partition 0. The wal2arrow plugin implements the same (native/wal2arrow).
/// </summary>
/// <remarks>
/// JSON encoding of a text: a double quote, the UTF-8 bytes with <c>"</c> as <c>\"</c>, <c>\</c> as <c>\\</c> and every
/// byte below 0x20 as <c>\u00XX</c> (lower-case hex), nothing else escaped, a double quote; values separated by a comma,
/// no spaces. Not thread-safe: one instance per decoding thread (it reuses its buffer).
/// </remarks>
public sealed class PartitionKey
{
    private readonly ArrayBufferWriter<byte> _key = new(256);
    private bool _open;

    /// <summary>The encoded key so far (after <see cref="End"/>: the whole key).</summary>
    public ReadOnlySpan<byte> Bytes => _key.WrittenSpan;

    /// <summary>Starts a key.</summary>
    public void Begin()
    {
        _key.ResetWrittenCount();
        Write("["u8);
        _open = false;
    }

    /// <summary>The next key column's value as PostgreSQL's text (UTF-8).</summary>
    public void AddText(ReadOnlySpan<byte> text)
    {
        Separator();
        Write("\""u8);
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            var b = text[i];
            if (b is (byte)'"' or (byte)'\\' or < 0x20)
            {
                Write(text[start..i]);
                if (b is (byte)'"' or (byte)'\\')
                {
                    Write([(byte)'\\', b]);
                }
                else
                {
                    Write([(byte)'\\', (byte)'u', (byte)'0', (byte)'0', Hex(b >> 4), Hex(b & 0xF)]);
                }

                start = i + 1;
            }
        }

        Write(text[start..]);
        Write("\""u8);
    }

    /// <summary>The next key column is SQL NULL.</summary>
    public void AddNull()
    {
        Separator();
        Write("null"u8);
    }

    /// <summary>Ends the key; <see cref="Bytes"/> holds it.</summary>
    public void End() => Write("]"u8);

    /// <summary>The partition of the key in <see cref="Bytes"/> among <paramref name="partitions"/>.</summary>
    public int Partition(int partitions) => PartitionOf(Bytes, partitions);

    /// <summary>Kafka's default partitioner: <c>toPositive(murmur2(key)) % partitions</c>.</summary>
    public static int PartitionOf(ReadOnlySpan<byte> key, int partitions)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(partitions, 1);
        return partitions == 1 ? 0 : (Murmur2(key) & 0x7FFFFFFF) % partitions;
    }

    /// <summary>Kafka's murmur2 (<c>org.apache.kafka.common.utils.Utils.murmur2</c>): seed 0x9747b28c, little-endian words.</summary>
    public static int Murmur2(ReadOnlySpan<byte> data)
    {
        const uint seed = 0x9747B28C;
        const uint m = 0x5BD1E995;
        const int r = 24;
        var length = data.Length;
        var h = seed ^ (uint)length;
        var words = length / 4;
        for (var i = 0; i < words; i++)
        {
            var k = BinaryPrimitives.ReadUInt32LittleEndian(data[(i * 4)..]);
            k *= m;
            k ^= k >> r;
            k *= m;
            h *= m;
            h ^= k;
        }

        var tail = data[(words * 4)..];
        switch (length % 4)
        {
            case 3:
                h ^= (uint)tail[2] << 16;
                h ^= (uint)tail[1] << 8;
                h ^= tail[0];
                h *= m;
                break;
            case 2:
                h ^= (uint)tail[1] << 8;
                h ^= tail[0];
                h *= m;
                break;
            case 1:
                h ^= tail[0];
                h *= m;
                break;
        }

        h ^= h >> 13;
        h *= m;
        h ^= h >> 15;
        return unchecked((int)h);
    }

    private void Separator()
    {
        if (_open)
        {
            Write(","u8);
        }

        _open = true;
    }

    private void Write(ReadOnlySpan<byte> bytes) => _key.Write(bytes);

    private static byte Hex(int nibble) => (byte)(nibble < 10 ? '0' + nibble : 'a' + nibble - 10);
}
