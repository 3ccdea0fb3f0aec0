using System.Buffers;
using System.Text;
using Confluent.Kafka;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Decoding.PgOutput;
using WalBridge.Connector.Formats;
using WalBridge.Connector.Transactions;
using WalBridge.Offsets;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Connector.Tests.Formats;

/// <summary>Builds real transaction groups with the connector's own pgoutput stages and captures the formats' records.</summary>
internal static class FormatTestData
{
    public static ConnectorConfig Config(params (string Key, string Value)[] settings)
    {
        var values = new Dictionary<string, string>
        {
            ["name"] = "golden",
            ["database.user"] = "cdc",
            ["database.dbname"] = "postgres",
            ["topic.prefix"] = "PostgreSQL_server",
            ["kafka.bootstrap.servers"] = "127.0.0.1:9",
            ["output.formats"] = "debezium-json",
            ["skipped.operations"] = "none",
        };
        foreach (var (key, value) in settings)
        {
            values[key] = value;
        }
        return ConnectorConfig.FromDictionary(values);
    }

    public static PgRelation Customers(char identity = 'd') => new(16384, "public", "customers", identity,
    [
        new PgColumn("id", PgOid.Int4, -1, true),
        new PgColumn("first_name", PgOid.Varchar, 255 + 4, false),
        new PgColumn("last_name", PgOid.Varchar, 255 + 4, false),
        new PgColumn("email", PgOid.Varchar, 255 + 4, false),
    ]);

    /// <summary>One row: values as PostgreSQL text (null = SQL NULL, <see cref="Unchanged"/> = an unchanged TOAST value).</summary>
    public sealed record Row(ChangeOp Op, ulong Lsn, string?[] Values, string?[]? Before = null);

    public const string Unchanged = "\u0000unchanged";

    /// <summary>Something a test transaction holds: a table's rows, a truncate or a logical decoding message.</summary>
    public sealed record Change(PgRelation? Relation, Row[] Rows, ulong TruncateLsn = 0, string? Prefix = null, byte[]? Content = null, ulong MessageLsn = 0, bool Transactional = false);

    /// <summary>A source transaction to feed through the connector's own decoder stages; xid 0 holds only messages outside a transaction.</summary>
    public sealed record TestTransaction(uint Xid, ulong CommitLsn, long CommitMicros, Change[] Changes);

    public static Change Payload(PgRelation relation, params Row[] rows) => new(relation, rows);

    public static Change Truncate(PgRelation relation, ulong lsn) => new(relation, [], TruncateLsn: lsn);

    public static Change Message(string prefix, byte[] content, ulong lsn, bool transactional) =>
        new(null, [], Prefix: prefix, Content: content, MessageLsn: lsn, Transactional: transactional);

    public static TestTransaction Transaction(uint xid, ulong commitLsn, long commitMicros, params Change[] changes) => new(xid, commitLsn, commitMicros, changes);

    /// <summary>
    /// The group the connector's pgoutput stages (<see cref="PgOutputBatcher"/> and <see cref="TransactionFramer"/>, with
    /// <c>topic.partitions</c> from <paramref name="config"/>) make of <paramref name="transactions"/>: the rows go through
    /// pgoutput's wire encoding, so the group is what the Kafka loop gets. Snapshot reads (<c>r</c>), which pgoutput does
    /// not send, are written with a <see cref="ChangeBatchBuilder"/> as a stream of partition 0.
    /// </summary>
    public static TransactionGroup Group(ConnectorConfig config, params TestTransaction[] transactions)
    {
        using var framer = new TransactionFramer(config, Lsn.Zero, "pgoutput");
        using var batcher = new PgOutputBatcher(config, framer, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        var reads = new List<TableStream>();
        var relations = new HashSet<PgRelation>();
        foreach (var transaction in transactions)
        {
            var commitTime = DateTimeOffset.UnixEpoch.AddTicks(transaction.CommitMicros * 10);
            if (transaction.Xid != 0)
            {
                batcher.OnBegin(new Lsn(transaction.CommitLsn), commitTime, transaction.Xid, new Lsn(transaction.CommitLsn - 1));
            }

            foreach (var change in transaction.Changes)
            {
                if (change.Prefix is not null)
                {
                    batcher.OnMessage(change.Transactional, new Lsn(change.MessageLsn), change.Prefix, change.Content, new Lsn(change.MessageLsn));
                    continue;
                }

                var relation = change.Relation!;
                if (relations.Add(relation))
                {
                    batcher.OnRelation(relation, new Lsn(transaction.CommitLsn - 1));
                }

                if (change.TruncateLsn != 0)
                {
                    batcher.OnTruncate([relation.RelationId], TruncateOptions.None, new Lsn(change.TruncateLsn));
                    continue;
                }

                if (change.Rows.Any(r => r.Op == ChangeOp.Read))
                {
                    reads.Add(ReadStream(relation, transaction, change.Rows));
                    continue;
                }

                foreach (var row in change.Rows)
                {
                    PgOutputDecoder.Decode(Wire(relation, row), new Lsn(row.Lsn), batcher);
                }
            }

            if (transaction.Xid != 0)
            {
                batcher.OnCommit(new CommitFields(new Lsn(transaction.CommitLsn), new Lsn(transaction.CommitLsn + 8), commitTime), new Lsn(transaction.CommitLsn));
            }
        }

        batcher.FlushAll();
        var group = framer.TakeGroup();
        return reads.Count == 0
            ? group
            : new TransactionGroup
            {
                Transactions = group.Transactions,
                Tables = [.. group.Tables, .. reads],
                Messages = group.Messages,
                Position = group.Position,
                ByteCount = group.ByteCount,
            };
    }

    /// <summary>pgoutput's Insert, Update or Delete message of <paramref name="row"/> (text values; the old tuple as 'K' or 'O' by the replica identity).</summary>
    private static byte[] Wire(PgRelation relation, Row row)
    {
        var bytes = new List<byte>();
        var old = relation.ReplicaIdentity == 'f' ? (byte)'O' : (byte)'K';
        switch (row.Op)
        {
            case ChangeOp.Insert:
                bytes.Add((byte)'I');
                Int32(bytes, (int)relation.RelationId);
                bytes.Add((byte)'N');
                Tuple(bytes, row.Values);
                break;
            case ChangeOp.Update:
                bytes.Add((byte)'U');
                Int32(bytes, (int)relation.RelationId);
                if (row.Before is not null)
                {
                    bytes.Add(old);
                    Tuple(bytes, row.Before);
                }

                bytes.Add((byte)'N');
                Tuple(bytes, row.Values);
                break;
            case ChangeOp.Delete:
                bytes.Add((byte)'D');
                Int32(bytes, (int)relation.RelationId);
                bytes.Add(old);
                Tuple(bytes, row.Values);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(row), row.Op, "pgoutput sends inserts, updates and deletes");
        }

        return [.. bytes];
    }

    private static void Tuple(List<byte> bytes, string?[] values)
    {
        bytes.Add((byte)(values.Length >> 8));
        bytes.Add((byte)values.Length);
        foreach (var value in values)
        {
            if (value is null)
            {
                bytes.Add((byte)'n');
            }
            else if (value == Unchanged)
            {
                bytes.Add((byte)'u');
            }
            else
            {
                var text = Encoding.UTF8.GetBytes(value);
                bytes.Add((byte)'t');
                Int32(bytes, text.Length);
                bytes.AddRange(text);
            }
        }
    }

    private static void Int32(List<byte> bytes, int value)
    {
        bytes.Add((byte)(value >> 24));
        bytes.Add((byte)(value >> 16));
        bytes.Add((byte)(value >> 8));
        bytes.Add((byte)value);
    }

    /// <summary>A snapshot read's stream (partition 0): the rows of <paramref name="rows"/> as one record batch of <paramref name="transaction"/>.</summary>
    private static TableStream ReadStream(PgRelation relation, TestTransaction transaction, Row[] rows)
    {
        using var builder = new ChangeBatchBuilder(relation, UnparsedTextPolicy.KeepAsSpecialText);
        builder.SetTransaction(transaction.Xid, transaction.CommitLsn, transaction.CommitMicros);
        foreach (var row in rows)
        {
            builder.BeginRow(row.Op, row.Lsn);
            foreach (var value in row.Values)
            {
                Append(builder, value);
            }

            if (row.Before is not null)
            {
                builder.BeginBefore();
                foreach (var value in row.Before)
                {
                    Append(builder, value);
                }
            }

            builder.EndRow();
        }

        var buffer = new ArrayBufferWriter<byte>();
        builder.WriteRecordBatch(buffer);
        var stream = new TableStream
        {
            RelationId = relation.RelationId,
            Schema = relation.Schema,
            Table = relation.Table,
            Partition = 0,
            SchemaMessage = builder.SchemaMessage.ToArray(),
            SchemaFingerprint = builder.SchemaFingerprint,
        };
        stream.Batches.Add(new TableBatch
        {
            Bytes = new StoredBytes(buffer.WrittenSpan.ToArray(), null, 0, buffer.WrittenCount),
            Rows = rows.Length,
            Transactions = 1,
            FirstCommitLsn = new Lsn(transaction.CommitLsn),
            LastCommitLsn = new Lsn(transaction.CommitLsn),
            FirstChunk = 0,
            LastComplete = true,
        });
        return stream;
    }

    private static void Append(ChangeBatchBuilder builder, string? value)
    {
        if (value is null)
        {
            builder.AppendNull();
        }
        else if (value == Unchanged)
        {
            builder.AppendUnchangedToast();
        }
        else
        {
            builder.AppendValue(Encoding.UTF8.GetBytes(value), TupleFormat.Text);
        }
    }

    /// <summary>A clock stopped at <paramref name="micros"/> since the epoch.</summary>
    public sealed class FixedClock(long micros) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => DateTimeOffset.UnixEpoch.AddTicks(micros * 10);
    }

    public sealed record Captured(string Topic, int Partition, byte[]? Key, byte[]? Value, Headers? Headers)
    {
        public string KeyText => Key is null ? "null" : Encoding.UTF8.GetString(Key);
        public string ValueText => Value is null ? "null" : Encoding.UTF8.GetString(Value);

        public string? Header(string name) => Headers is not null && Headers.TryGetLastBytes(name, out var bytes) ? Encoding.UTF8.GetString(bytes) : null;
    }

    public sealed class CapturingSink : IRecordSink
    {
        public List<Captured> Records { get; } = [];

        public void Produce(string topic, int partition, byte[]? key, byte[]? value, Headers? headers) => Records.Add(new Captured(topic, partition, key, value, headers));
    }

    /// <summary>Produces <paramref name="transactions"/> (one group) through a fresh formats stage and returns the records.</summary>
    public static List<Captured> Produce(ConnectorConfig config, long nowMicros, params TestTransaction[] transactions)
    {
        using var formats = new OutputFormats(config, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, new FixedClock(nowMicros));
        var sink = new CapturingSink();
        using var group = Group(config, transactions);
        formats.Prepare([group], _ => { });
        formats.Produce([group], sink);
        return sink.Records;
    }

    /// <summary>Prepares (topics, schema registration) the group of <paramref name="transaction"/>.</summary>
    public static void PrepareGroup(OutputFormats formats, ConnectorConfig config, TestTransaction transaction)
    {
        using var group = Group(config, transaction);
        formats.Prepare([group], _ => { });
    }

    /// <summary>Produces the group of <paramref name="transaction"/> to <paramref name="sink"/>.</summary>
    public static void ProduceGroup(OutputFormats formats, ConnectorConfig config, TestTransaction transaction, IRecordSink sink)
    {
        using var group = Group(config, transaction);
        formats.Produce([group], sink);
    }
}
