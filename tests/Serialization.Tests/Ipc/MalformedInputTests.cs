using System.Buffers;
using System.Buffers.Binary;
using WalBridge.Serialization.Arrow;
using WalBridge.Serialization.Flatbuffers;
using WalBridge.Serialization.Ipc;

namespace WalBridge.Serialization.Tests.Ipc;

public class MalformedInputTests
{
    private static byte[] SmallStream()
    {
        // A few types with nulls, offsets and children: nested + primitive gold content, re-written by us.
        var nested = ArrowStreamReader.Read(File.ReadAllBytes(TestPaths.Gold("1.0.0-littleendian", "generated_nested.stream")));
        var output = new ArrayBufferWriter<byte>();
        ArrowStreamWriter.WriteStream(output, nested.Schema, nested.Batches.Take(1));
        return output.WrittenSpan.ToArray();
    }

    private static void TouchEverything(ArrowStream stream)
    {
        foreach (var batch in stream.Batches)
        {
            foreach (var column in batch.Columns)
            {
                for (int i = 0; i < column.Length; i++)
                {
                    _ = column.GetValue(i);
                }
            }
        }
    }

    [Fact]
    public void Every_truncation_throws_ArrowFormatException()
    {
        byte[] full = SmallStream();
        TouchEverything(ArrowStreamReader.Read(full));
        for (int length = 0; length < full.Length; length++)
        {
            var e = Record.Exception(() => ArrowStreamReader.Read(full.AsMemory(0, length)));
            Assert.True(e is ArrowFormatException, $"truncated to {length} of {full.Length}: {e?.GetType().Name ?? "no exception"}: {e?.Message}");
        }
    }

    [Fact]
    public void Every_truncation_of_a_gold_file_throws_ArrowFormatException()
    {
        byte[] full = File.ReadAllBytes(TestPaths.Gold("1.0.0-littleendian", "generated_null_trivial.stream"));
        for (int length = 0; length < full.Length; length++)
        {
            Assert.Throws<ArrowFormatException>(() => ArrowStreamReader.Read(full.AsMemory(0, length)));
        }
    }

    [Fact]
    public void Random_corruption_yields_ArrowFormatException_or_a_readable_stream()
    {
        byte[] full = SmallStream();
        var random = new Random(12345);
        for (int round = 0; round < 20000; round++)
        {
            byte[] copy = (byte[])full.Clone();
            int flips = 1 + random.Next(4);
            for (int f = 0; f < flips; f++)
            {
                int at = random.Next(copy.Length);
                copy[at] = random.Next(3) switch
                {
                    0 => (byte)(copy[at] ^ (1 << random.Next(8))),
                    1 => 0xFF,
                    _ => (byte)random.Next(256),
                };
            }

            try
            {
                TouchEverything(ArrowStreamReader.Read(copy));
            }
            catch (ArrowFormatException)
            {
            }
        }
    }

    [Fact]
    public void Trailing_bytes_after_eos_are_rejected()
    {
        byte[] full = SmallStream();
        byte[] longer = [.. full, 0, 0, 0, 0, 0, 0, 0, 0];
        var e = Assert.Throws<ArrowFormatException>(() => ArrowStreamReader.Read(longer));
        Assert.Contains("after the end-of-stream", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_eos_is_rejected()
    {
        byte[] full = SmallStream();
        var e = Assert.Throws<ArrowFormatException>(() => ArrowStreamReader.Read(full.AsMemory(0, full.Length - 8)));
        Assert.Contains("end-of-stream", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Huge_metadata_length_is_rejected()
    {
        byte[] full = SmallStream();
        BinaryPrimitives.WriteInt32LittleEndian(full.AsSpan(4), int.MaxValue);
        Assert.Contains("metadata bytes", Assert.Throws<ArrowFormatException>(() => ArrowStreamReader.Read(full)).Message, StringComparison.Ordinal);
        BinaryPrimitives.WriteInt32LittleEndian(full.AsSpan(4), -5);
        Assert.Throws<ArrowFormatException>(() => ArrowStreamReader.Read(full));
    }

    private static byte[] Frame(ReadOnlySpan<byte> flatbuffer, int bodyLength = 0)
    {
        int padded = (flatbuffer.Length + 7) & ~7;
        var bytes = new byte[8 + padded + bodyLength + 8];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, 0xFFFFFFFF);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), padded);
        flatbuffer.CopyTo(bytes.AsSpan(8));
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8 + padded + bodyLength), 0xFFFFFFFF);
        return bytes;
    }

    private static byte[] MessageWith(short version, byte headerType, long bodyLength)
    {
        var b = new FlatBufferBuilder();
        b.StartTable(0);
        int header = b.EndTable();
        b.StartTable(5);
        b.AddInt64(IpcMetadata.MessageBodyLength, bodyLength);
        b.AddOffset(IpcMetadata.MessageHeader, header);
        b.AddInt16(IpcMetadata.MessageVersion, version);
        b.AddByte(IpcMetadata.MessageHeaderType, headerType);
        return Frame(b.Finish(b.EndTable()));
    }

    [Fact]
    public void Unknown_metadata_version_is_rejected()
    {
        var e = Assert.Throws<ArrowFormatException>(() => ArrowStreamReader.Read(MessageWith(5, IpcMetadata.HeaderSchema, 0)));
        Assert.Contains("unknown metadata version 5", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArrowFormatException>(() => ArrowStreamReader.Read(MessageWith(1, IpcMetadata.HeaderSchema, 0)));
        Assert.StartsWith("unsupported", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Body_longer_than_input_is_rejected()
    {
        var e = Assert.Throws<ArrowFormatException>(() => ArrowStreamReader.Read(MessageWith(4, IpcMetadata.HeaderSchema, 1 << 30)));
        Assert.Contains("body", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Record_batch_before_schema_and_unknown_header_are_rejected()
    {
        Assert.Throws<ArrowFormatException>(() => ArrowStreamReader.Read(MessageWith(4, IpcMetadata.HeaderRecordBatch, 0)));
        Assert.Throws<ArrowFormatException>(() => ArrowStreamReader.Read(MessageWith(4, 9, 0)));
    }

    [Fact]
    public void Out_of_range_offsets_are_rejected()
    {
        // A utf8 column whose last offset points past the data buffer.
        var field = new ArrowField("s", ArrowType.Utf8, true);
        var schema = new ArrowSchema([field]);
        byte[] offsets = new byte[8];
        BinaryPrimitives.WriteInt32LittleEndian(offsets.AsSpan(4), 100);
        var array = ArrowArray.Create(field, 1, 0, default, [offsets, new byte[100]], []);
        var output = new ArrayBufferWriter<byte>();
        ArrowStreamWriter.WriteStream(output, schema, [new RecordBatch(schema, 1, [array])]);
        byte[] bytes = output.WrittenSpan.ToArray();
        TouchEverything(ArrowStreamReader.Read(bytes));

        // Now claim offset 1 is 1000 (data is 100 bytes): patch the body's offsets buffer.
        int index = bytes.AsSpan().LastIndexOf(new byte[] { 100, 0, 0, 0 });
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(index), 1000);
        var e = Assert.Throws<ArrowFormatException>(() => ArrowStreamReader.Read(bytes));
        Assert.Contains("offset 1 is 1000", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Legacy_framing_without_continuation_markers_is_read()
    {
        byte[] modern = SmallStream();
        var legacy = new List<byte>();
        int position = 0;
        while (true)
        {
            int length = BinaryPrimitives.ReadInt32LittleEndian(modern.AsSpan(position + 4));
            legacy.AddRange(modern.AsSpan(position + 4, 4).ToArray());
            position += 8;
            if (length == 0)
            {
                break;
            }

            var message = FbTable.Root(modern.AsMemory(position, length));
            int total = length + (int)message.GetInt64(IpcMetadata.MessageBodyLength, 0);
            legacy.AddRange(modern.AsSpan(position, total).ToArray());
            position += total;
        }

        var a = ArrowStreamReader.Read(modern);
        var b = ArrowStreamReader.Read(legacy.ToArray());
        Assert.Equal(a.Batches[0].Length, b.Batches[0].Length);
        for (int c = 0; c < a.Schema.Fields.Count; c++)
        {
            for (int r = 0; r < a.Batches[0].Length; r++)
            {
                Assert.Equal(a.Batches[0].Columns[c].GetValue(r), b.Batches[0].Columns[c].GetValue(r));
            }
        }
    }
}
