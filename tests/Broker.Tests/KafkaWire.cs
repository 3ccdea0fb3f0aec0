using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace WalBridge.Broker.Tests;

/// <summary>
/// A minimal Kafka protocol client for the non-flexible request versions that no client library
/// here sends (librdkafka always negotiates the highest version both sides support): request
/// header v1, response header v0, big-endian fields.
/// </summary>
/// <remarks>Lifetime: one TCP connection to one broker, closed by <see cref="Dispose"/>.</remarks>
internal sealed class KafkaWire : IDisposable
{
    private readonly TcpClient client;
    private readonly NetworkStream stream;
    private int correlationId;

    private KafkaWire(TcpClient client)
    {
        this.client = client;
        stream = client.GetStream();
    }

    /// <summary>Connects to the first broker of <paramref name="bootstrapServers"/>.</summary>
    public static async Task<KafkaWire> ConnectAsync(string bootstrapServers)
    {
        var first = bootstrapServers.Split(',')[0];
        var colon = first.LastIndexOf(':');
        var client = new TcpClient();
        try
        {
            await client.ConnectAsync(first[..colon], int.Parse(first[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture));
            return new KafkaWire(client);
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Sends one request and returns the response body (after the correlation id), or null when
    /// the broker closed the connection instead of answering.
    /// </summary>
    public async Task<Reader?> SendAsync(short apiKey, short apiVersion, byte[] body)
    {
        var id = ++correlationId;
        var clientId = "walbridge-wire"u8.ToArray();
        var header = new Writer().I16(apiKey).I16(apiVersion).I32(id).I16((short)clientId.Length).Bytes(clientId).ToArray();
        var frame = new Writer().I32(header.Length + body.Length).Bytes(header).Bytes(body).ToArray();
        await stream.WriteAsync(frame);

        using var timeout = new CancellationTokenSource(Kafka.Bound);
        var size = new byte[4];
        if (!await ReadExactlyOrEofAsync(size, timeout.Token))
        {
            return null;
        }

        var response = new byte[BinaryPrimitives.ReadInt32BigEndian(size)];
        if (!await ReadExactlyOrEofAsync(response, timeout.Token))
        {
            return null;
        }

        var reader = new Reader(response);
        Assert.Equal(id, reader.I32());
        return reader;
    }

    public void Dispose()
    {
        stream.Dispose();
        client.Dispose();
    }

    private async Task<bool> ReadExactlyOrEofAsync(byte[] buffer, CancellationToken ct)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            int n;
            try
            {
                n = await stream.ReadAsync(buffer.AsMemory(read), ct);
            }
            catch (IOException)
            {
                return false;
            }

            if (n == 0)
            {
                return false;
            }

            read += n;
        }

        return true;
    }

    /// <summary>Builds a big-endian request body.</summary>
    public sealed class Writer
    {
        private readonly ArrayBufferWriter<byte> buffer = new();

        public Writer I8(sbyte value)
        {
            buffer.Write([(byte)value]);
            return this;
        }

        public Writer I16(short value)
        {
            Span<byte> bytes = stackalloc byte[2];
            BinaryPrimitives.WriteInt16BigEndian(bytes, value);
            buffer.Write(bytes);
            return this;
        }

        public Writer I32(int value)
        {
            Span<byte> bytes = stackalloc byte[4];
            BinaryPrimitives.WriteInt32BigEndian(bytes, value);
            buffer.Write(bytes);
            return this;
        }

        /// <summary>A STRING (int16 length), or a null NULLABLE_STRING.</summary>
        public Writer Str(string? value)
        {
            if (value is null)
            {
                return I16(-1);
            }

            var bytes = Encoding.UTF8.GetBytes(value);
            return I16((short)bytes.Length).Bytes(bytes);
        }

        public Writer Bytes(ReadOnlySpan<byte> bytes)
        {
            buffer.Write(bytes);
            return this;
        }

        public byte[] ToArray() => buffer.WrittenSpan.ToArray();
    }

    /// <summary>Reads a big-endian response body.</summary>
    public sealed class Reader(byte[] data)
    {
        private int position;

        public int Remaining => data.Length - position;

        public short I16()
        {
            var value = BinaryPrimitives.ReadInt16BigEndian(data.AsSpan(position, 2));
            position += 2;
            return value;
        }

        public int I32()
        {
            var value = BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(position, 4));
            position += 4;
            return value;
        }

        /// <summary>A STRING or NULLABLE_STRING (null for length -1).</summary>
        public string? Str()
        {
            var length = I16();
            if (length < 0)
            {
                return null;
            }

            var value = Encoding.UTF8.GetString(data, position, length);
            position += length;
            return value;
        }
    }
}
