using System.Buffers;
using System.Buffers.Binary;
using WalBridge.Serialization.Flatbuffers;
using WalBridge.Serialization.Ipc;

namespace WalBridge.Serialization.Tests.Ipc;

public class GoldFileTests
{
    public static TheoryData<string> SupportedFiles => new()
    {
        "generated_primitive",
        "generated_primitive_zerolength",
        "generated_primitive_no_batches",
        "generated_primitive_large_offsets",
        "generated_null",
        "generated_null_trivial",
        "generated_datetime",
        "generated_decimal",
        "generated_decimal256",
        "generated_interval",
        "generated_nested",
        "generated_nested_large_offsets",
        "generated_recursive_nested",
        "generated_custom_metadata",
        "generated_duplicate_fieldnames",
        "generated_map",
        "generated_map_non_canonical",
    };

    /// <summary>Dictionary-encoded files: read (and compared with their JSON), but our writer does not write dictionaries.</summary>
    public static TheoryData<string> DictionaryFiles => new()
    {
        "generated_dictionary",
        "generated_dictionary_unsigned",
        "generated_nested_dictionary",
        "generated_extension",
    };

    public static TheoryData<string, string> UnsupportedFiles => new()
    {
        { "1.0.0-littleendian", "generated_union" },
        { "2.0.0-compression", "generated_lz4" },
        { "2.0.0-compression", "generated_zstd" },
    };

    private static byte[] Stream(string version, string name) => File.ReadAllBytes(TestPaths.Gold(version, name + ".stream"));

    [Theory]
    [MemberData(nameof(SupportedFiles))]
    public void Reader_reads_gold_stream_equal_to_json(string name)
    {
        using var json = IntegrationJson.Load(TestPaths.Gold("1.0.0-littleendian", name + ".json.gz"));
        var stream = ArrowStreamReader.Read(Stream("1.0.0-littleendian", name));
        IntegrationJson.AssertStreamEquals(json.RootElement, stream);
    }

    [Theory]
    [MemberData(nameof(DictionaryFiles))]
    public void Reader_reads_dictionary_encoded_gold_stream_equal_to_json(string name)
    {
        using var json = IntegrationJson.Load(TestPaths.Gold("1.0.0-littleendian", name + ".json.gz"));
        var stream = ArrowStreamReader.Read(Stream("1.0.0-littleendian", name));
        IntegrationJson.AssertStreamEquals(json.RootElement, stream);
        Assert.Contains(stream.Schema.Fields, f => f.Dictionary is not null);

        // The writer refuses dictionary-encoded schemas clearly instead of writing something else.
        var e = Assert.Throws<NotSupportedException>(() => ArrowStreamWriter.WriteStream(new ArrayBufferWriter<byte>(), stream.Schema, stream.Batches));
        Assert.Contains("dictionar", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(SupportedFiles))]
    public void Writer_round_trips_gold_content(string name)
    {
        using var json = IntegrationJson.Load(TestPaths.Gold("1.0.0-littleendian", name + ".json.gz"));
        var original = ArrowStreamReader.Read(Stream("1.0.0-littleendian", name));
        var output = new ArrayBufferWriter<byte>();
        long written = ArrowStreamWriter.WriteStream(output, original.Schema, original.Batches);
        Assert.Equal(output.WrittenCount, written);
        byte[] bytes = output.WrittenSpan.ToArray();
        AssertWellFormed(bytes);
        var reread = ArrowStreamReader.Read(bytes);
        IntegrationJson.AssertStreamEquals(json.RootElement, reread);

        // Writing what we read again yields identical bytes (the encoding is deterministic).
        var again = new ArrayBufferWriter<byte>();
        ArrowStreamWriter.WriteStream(again, reread.Schema, reread.Batches);
        Assert.True(bytes.AsSpan().SequenceEqual(again.WrittenSpan));
    }

    [Theory]
    [MemberData(nameof(UnsupportedFiles))]
    public void Reader_rejects_unsupported_features_clearly(string version, string name)
    {
        var e = Assert.Throws<ArrowFormatException>(() => ArrowStreamReader.Read(Stream(version, name)));
        Assert.StartsWith("unsupported", e.Message, StringComparison.Ordinal);
    }

    /// <summary>Checks framing: 8-byte aligned metadata and bodies, 8-byte aligned buffers inside bodies, EOS at the end.</summary>
    internal static void AssertWellFormed(byte[] bytes)
    {
        int position = 0;
        int messages = 0;
        while (true)
        {
            Assert.Equal(0, position % 8);
            Assert.Equal(0xFFFFFFFFu, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(position)));
            int length = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(position + 4));
            position += 8;
            if (length == 0)
            {
                Assert.Equal(bytes.Length, position);
                Assert.True(messages >= 1);
                return;
            }

            Assert.Equal(0, length % 8);
            var message = FbTable.Root(bytes.AsMemory(position, length));
            Assert.Equal(IpcMetadata.MetadataVersionV5, message.GetInt16(IpcMetadata.MessageVersion, 0));
            long body = message.GetInt64(IpcMetadata.MessageBodyLength, 0);
            Assert.Equal(0, body % 8);
            if (message.GetByte(IpcMetadata.MessageHeaderType, 0) == IpcMetadata.HeaderRecordBatch)
            {
                var buffers = message.GetTable(IpcMetadata.MessageHeader)!.Value.GetVector(IpcMetadata.BatchBuffers, 16);
                for (int i = 0; i < buffers.Length; i++)
                {
                    Assert.Equal(0, buffers.GetInt64(i, 0) % 8);
                    Assert.True(buffers.GetInt64(i, 0) + buffers.GetInt64(i, 8) <= body);
                }
            }
            else
            {
                Assert.Equal(0, messages);
                Assert.Equal(IpcMetadata.HeaderSchema, message.GetByte(IpcMetadata.MessageHeaderType, 0));
            }

            position += length + (int)body;
            messages++;
        }
    }
}
