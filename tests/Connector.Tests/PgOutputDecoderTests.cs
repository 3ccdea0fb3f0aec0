using System.Buffers.Binary;
using System.Text;
using WalBridge.Connector.Decoding.PgOutput;
using WalBridge.Connector.Errors;
using WalBridge.Connector.Transactions;
using WalBridge.Offsets;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Connector.Tests;

public class PgOutputDecoderTests
{
    private static readonly Lsn At = new(0x16_B374D848);

    private sealed class Recorder : IPgOutputHandler
    {
        public List<string> Events { get; } = [];

        public bool InTransaction => false;
        public void OnBegin(Lsn finalLsn, DateTimeOffset commitTimestamp, uint xid, Lsn lsn) => Events.Add($"B {finalLsn} {commitTimestamp:O} {xid}");
        public void OnCommit(in CommitFields commit, Lsn lsn) => Events.Add($"C {commit.CommitLsn} {commit.EndLsn}");
        public void OnRelation(PgRelation relation, Lsn lsn) =>
            Events.Add($"R {relation.RelationId} {relation.Schema}.{relation.Table} {relation.ReplicaIdentity} " +
                       string.Join(",", relation.Columns.Select(c => $"{c.Name}:{c.TypeOid}:{c.TypeModifier}:{(c.IsKey ? "k" : "")}")));
        public void OnInsert(uint relationId, TupleData newRow, Lsn lsn) => Events.Add($"I {relationId} {Show(newRow)}");
        public void OnUpdate(uint relationId, OldTuple oldKind, TupleData oldRow, TupleData newRow, Lsn lsn) =>
            Events.Add($"U {relationId} {(oldKind == OldTuple.None ? "-" : ((char)oldKind).ToString())} {(oldKind == OldTuple.None ? "" : Show(oldRow))} {Show(newRow)}");
        public void OnDelete(uint relationId, OldTuple oldKind, TupleData oldRow, Lsn lsn) => Events.Add($"D {relationId} {(char)oldKind} {Show(oldRow)}");
        public void OnTruncate(ReadOnlySpan<uint> relationIds, TruncateOptions options, Lsn lsn) =>
            Events.Add($"T {string.Join(",", relationIds.ToArray())} {options.HasFlag(TruncateOptions.Cascade)} {options.HasFlag(TruncateOptions.RestartIdentity)}");
        public void OnType(uint typeOid, string typeNamespace, string typeName, Lsn lsn) => Events.Add($"Y {typeOid} {typeNamespace}.{typeName}");
        public void OnMessage(bool transactional, Lsn messageLsn, string prefix, ReadOnlySpan<byte> content, Lsn lsn) =>
            Events.Add($"M {transactional} {messageLsn} {prefix} {Encoding.UTF8.GetString(content)}");

        private static string Show(TupleData tuple)
        {
            var parts = new List<string>();
            while (tuple.MoveNext(out var kind, out var value))
            {
                parts.Add(kind switch
                {
                    TupleValueKind.Null => "null",
                    TupleValueKind.UnchangedToast => "toast",
                    TupleValueKind.Text => "t:" + Encoding.UTF8.GetString(value),
                    _ => "b:" + Convert.ToHexString(value),
                });
            }

            return "[" + string.Join("|", parts) + "]";
        }
    }

    private sealed class Message
    {
        private readonly List<byte> _bytes = [];
        public Message Byte(char c) { _bytes.Add((byte)c); return this; }
        public Message Byte(byte b) { _bytes.Add(b); return this; }
        public Message Int16(short v) { Span<byte> s = stackalloc byte[2]; BinaryPrimitives.WriteInt16BigEndian(s, v); _bytes.AddRange(s.ToArray()); return this; }
        public Message Int32(int v) { Span<byte> s = stackalloc byte[4]; BinaryPrimitives.WriteInt32BigEndian(s, v); _bytes.AddRange(s.ToArray()); return this; }
        public Message Int64(long v) { Span<byte> s = stackalloc byte[8]; BinaryPrimitives.WriteInt64BigEndian(s, v); _bytes.AddRange(s.ToArray()); return this; }
        public Message String(string v) { _bytes.AddRange(Encoding.UTF8.GetBytes(v)); _bytes.Add(0); return this; }
        public Message Text(string v) { Byte('t'); var b = Encoding.UTF8.GetBytes(v); Int32(b.Length); _bytes.AddRange(b); return this; }
        public byte[] ToArray() => [.. _bytes];
    }

    private static List<string> Decode(byte[] message)
    {
        var recorder = new Recorder();
        PgOutputDecoder.Decode(message, At, recorder);
        return recorder.Events;
    }

    [Fact]
    public void Begin_and_commit()
    {
        var begin = new Message().Byte('B').Int64(0x16_B374D900).Int64(1_000_000).Int32(777).ToArray();
        Assert.Equal(["B 16/B374D900 2000-01-01T00:00:01.0000000+00:00 777"], Decode(begin));
        var commit = new Message().Byte('C').Byte(0).Int64(0x16_B374D900).Int64(0x16_B374D930).Int64(1_000_000).ToArray();
        Assert.Equal(["C 16/B374D900 16/B374D930"], Decode(commit));
    }

    [Fact]
    public void Relation_with_key_flags_and_typmods()
    {
        var relation = new Message().Byte('R').Int32(16384).String("public").String("orders").Byte('d').Int16(2)
            .Byte(1).String("id").Int32(20).Int32(-1)
            .Byte(0).String("amount").Int32(1700).Int32(((12 << 16) | 2) + 4).ToArray();
        Assert.Equal(["R 16384 public.orders d id:20:-1:k,amount:1700:786438:"], Decode(relation));
    }

    [Fact]
    public void Insert_update_delete_tuples()
    {
        var insert = new Message().Byte('I').Int32(5).Byte('N').Int16(3).Text("1").Byte('n').Byte('u').ToArray();
        Assert.Equal(["I 5 [t:1|null|toast]"], Decode(insert));

        var update = new Message().Byte('U').Int32(5).Byte('K').Int16(1).Text("1").Byte('N').Int16(1).Text("2").ToArray();
        Assert.Equal(["U 5 K [t:1] [t:2]"], Decode(update));

        var plainUpdate = new Message().Byte('U').Int32(5).Byte('N').Int16(1).Text("ü").ToArray();
        Assert.Equal(["U 5 -  [t:ü]"], Decode(plainUpdate));

        var delete = new Message().Byte('D').Int32(5).Byte('O').Int16(2).Text("1").Byte('b').Int32(2).Byte(0xAB).Byte(0x00).ToArray();
        Assert.Equal(["D 5 O [t:1|b:AB00]"], Decode(delete));
    }

    [Fact]
    public void Truncate_with_options()
    {
        var truncate = new Message().Byte('T').Int32(2).Byte(3).Int32(10).Int32(11).ToArray();
        Assert.Equal(["T 10,11 True True"], Decode(truncate));
    }

    [Fact]
    public void Logical_decoding_messages()
    {
        var message = new Message().Byte('M').Byte(1).Int64(0x10).String("app.audit").Int32(5).Byte('h').Byte('e').Byte('l').Byte('l').Byte('o').ToArray();
        Assert.Equal(["M True 0/10 app.audit hello"], Decode(message));
        var empty = new Message().Byte('M').Byte(0).Int64(0x20).String("walbridge.heartbeat.s").Int32(0).ToArray();
        Assert.Equal(["M False 0/20 walbridge.heartbeat.s "], Decode(empty));
        Assert.Throws<ReplicationProtocolException>(() => Decode(new Message().Byte('M').Byte(2).Int64(1).String("p").Int32(0).ToArray()));
        Assert.Throws<ReplicationProtocolException>(() => Decode(new Message().Byte('M').Byte(0).Int64(1).String("p").Int32(-1).ToArray()));
    }

    [Fact]
    public void Origin_and_type_messages_are_understood()
    {
        Assert.Empty(Decode(new Message().Byte('O').Int64(1).String("upstream").ToArray()));
        Assert.Equal(["Y 90000 public.mood"], Decode(new Message().Byte('Y').Int32(90000).String("public").String("mood").ToArray()));
    }

    [Theory]
    [InlineData('S')] // stream start: protocol v2, not requested
    [InlineData('A')] // stream abort: protocol v2, not requested
    [InlineData('Z')]
    public void Unknown_or_unrequested_message_types_are_errors(char type)
    {
        var e = Assert.Throws<ReplicationProtocolException>(() => Decode(new Message().Byte(type).Int32(1).ToArray()));
        Assert.Contains($"'{type}'", e.Message, StringComparison.Ordinal);
        Assert.Equal(At, e.Lsn);
    }

    [Fact]
    public void Every_truncation_of_valid_messages_is_a_protocol_error()
    {
        byte[][] messages =
        [
            new Message().Byte('B').Int64(1).Int64(2).Int32(3).ToArray(),
            new Message().Byte('C').Byte(0).Int64(1).Int64(2).Int64(3).ToArray(),
            new Message().Byte('R').Int32(1).String("s").String("t").Byte('d').Int16(1).Byte(1).String("id").Int32(23).Int32(-1).ToArray(),
            new Message().Byte('I').Int32(5).Byte('N').Int16(2).Text("abc").Byte('n').ToArray(),
            new Message().Byte('U').Int32(5).Byte('O').Int16(1).Text("a").Byte('N').Int16(1).Text("b").ToArray(),
            new Message().Byte('D').Int32(5).Byte('K').Int16(1).Text("a").ToArray(),
            new Message().Byte('T').Int32(1).Byte(0).Int32(9).ToArray(),
            new Message().Byte('M').Byte(1).Int64(7).String("p").Int32(2).Byte(1).Byte(2).ToArray(),
        ];
        foreach (var message in messages)
        {
            Decode(message); // the whole message is fine
            for (var length = 0; length < message.Length; length++)
            {
                Assert.Throws<ReplicationProtocolException>(() => Decode(message[..length]));
            }
            // Trailing garbage is an error too.
            Assert.Throws<ReplicationProtocolException>(() => Decode([.. message, 0x42]));
        }
    }

    [Fact]
    public void Bad_tuple_kind_and_negative_lengths_are_errors()
    {
        Assert.Throws<ReplicationProtocolException>(() => Decode(new Message().Byte('I').Int32(5).Byte('N').Int16(1).Byte('x').ToArray()));
        Assert.Throws<ReplicationProtocolException>(() => Decode(new Message().Byte('I').Int32(5).Byte('N').Int16(1).Byte('t').Int32(-5).ToArray()));
        Assert.Throws<ReplicationProtocolException>(() => Decode(new Message().Byte('I').Int32(5).Byte('X').Int16(0).ToArray()));
        Assert.Throws<ReplicationProtocolException>(() => Decode(new Message().Byte('C').Byte(1).Int64(1).Int64(2).Int64(3).ToArray()));
    }
}
