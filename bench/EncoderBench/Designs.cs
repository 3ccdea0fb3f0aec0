using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Apache.Arrow;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;

/// <summary>
/// Issue 11's two record designs, measured on the same rows: bytes per row of the record (schema message, batches,
/// end-of-stream marker, as Kafka stores the value) and encode nanoseconds per row (appending the rows and writing the
/// batches; the schema message is encoded once per builder and copied, as the connector does).
/// (a) one record batch per source transaction inside one stream (a consumer iterates batches = transactions);
/// (b) one record batch holding every transaction's rows, each row carrying <c>_xid</c>, <c>_commit_lsn</c>,
/// <c>_commit_ts</c> (what is implemented); "(a) lean" is the size of (a)'s record without those three columns (the
/// transaction's identity would go into each batch's custom metadata, not counted: a lower bound of (a)'s size; its
/// encoding time is (a)'s); and (b) with Arrow body compression (<c>arrow.compression</c>).
/// </summary>
internal static class Designs
{
    private static readonly PgRelation Relation = new(16384, "public", "orders", 'd',
    [
        new PgColumn("id", PgOid.Int8, -1, true),
        new PgColumn("account", PgOid.Int4, -1, false),
        new PgColumn("amount", PgOid.Numeric, ((12 << 16) | 2) + 4, false),
        new PgColumn("note", PgOid.Text, -1, false),
        new PgColumn("label", PgOid.Text, -1, false),
        new PgColumn("created_at", PgOid.TimestampTz, -1, false),
        new PgColumn("active", PgOid.Bool, -1, false),
        new PgColumn("quantity", PgOid.Int4, -1, false),
    ]);

    /// <summary>W1/W2's row (bench/Bench/Workloads.cs) as pgoutput's text for id <paramref name="g"/>.</summary>
    private static byte[][] Row(long g)
    {
        // 32 hex digits like the workload's md5(), from SHA-256 (the analyzers refuse MD5 even for test data).
        string Md5(long v) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(v.ToString(CultureInfo.InvariantCulture))).AsSpan(0, 16));
        var created = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddSeconds(g);
        return
        [
            Encoding.UTF8.GetBytes(g.ToString(CultureInfo.InvariantCulture)),
            Encoding.UTF8.GetBytes((g % 100000).ToString(CultureInfo.InvariantCulture)),
            Encoding.UTF8.GetBytes((g % 1000000 / 100.0m).ToString("0.00", CultureInfo.InvariantCulture)),
            Encoding.UTF8.GetBytes(Md5(g) + Md5(g + 1)),
            Encoding.UTF8.GetBytes($"customer-{g % 5000}"),
            Encoding.UTF8.GetBytes(created.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + "+00"),
            g % 2 == 0 ? "t"u8.ToArray() : "f"u8.ToArray(),
            Encoding.UTF8.GetBytes((g % 1000).ToString(CultureInfo.InvariantCulture)),
        ];
    }

    private sealed record Shape(string Name, int TransactionRows, int TransactionsPerRecord, int Records);

    public static void Run(double scale)
    {
        int Scaled(int n) => Math.Max(1, (int)(n * scale));
        Shape[] shapes =
        [
            new("W2-like: 1-row txns, 500 per record (backlog)", 1, 500, Scaled(200)),
            new("W2-like: 1-row txns, 5 per record (live load)", 1, 5, Scaled(4000)),
            new("W1-like: 1,000-row txns, 6 per record", 1000, 6, Scaled(40)),
        ];
        var rows = Enumerable.Range(1, 5000).Select(g => Row(g)).ToArray();
        Console.WriteLine("designs: bytes per row of a record and encode ns per row (each shape: a warm-up, then the timed records)");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {"shape",-48} {"design",-48} {"bytes/row",10} {"encode ns/row",14} {"record bytes",13}"));
        foreach (var shape in shapes)
        {
            Measure(shape, "(a) one batch per transaction", rows, perTransaction: true, ArrowCompression.None, lean: true);
            Measure(shape, "(b) one batch, per-row transaction columns", rows, perTransaction: false, ArrowCompression.None, lean: false);
            Measure(shape, "(b) + arrow.compression=lz4_frame", rows, perTransaction: false, ArrowCompression.Lz4Frame, lean: false);
            Measure(shape, "(b) + arrow.compression=zstd", rows, perTransaction: false, ArrowCompression.Zstd, lean: false);
        }
    }

    private static void Measure(Shape shape, string design, byte[][][] rows, bool perTransaction, ArrowCompression compression, bool lean)
    {
        using var builder = new ChangeBatchBuilder(Relation, compression: compression);
        var output = new ArrayBufferWriter<byte>(1 << 20);
        var next = 0L;
        var xid = 1000u;

        void Record()
        {
            output.ResetWrittenCount();
            output.Write(builder.SchemaMessage.Span);
            for (var t = 0; t < shape.TransactionsPerRecord; t++)
            {
                xid++;
                builder.SetTransaction(xid, 0x1_0000_0000UL + (ulong)(xid * 64), 1_780_000_000_000_000 + xid);
                for (var r = 0; r < shape.TransactionRows; r++)
                {
                    var row = rows[next++ % rows.Length];
                    builder.BeginRow(ChangeOp.Insert, 0x1_0000_0000UL + (ulong)next);
                    foreach (var value in row)
                    {
                        builder.AppendValue(value, TupleFormat.Text);
                    }

                    builder.EndRow();
                }

                if (perTransaction)
                {
                    builder.WriteRecordBatch(output);
                }
            }

            if (!perTransaction)
            {
                builder.WriteRecordBatch(output);
            }

            output.Write(ArrowMessageWriter.EndOfStream);
        }

        for (var i = 0; i < Math.Max(5, shape.Records / 5); i++)
        {
            Record();
        }

        var watch = Stopwatch.StartNew();
        for (var i = 0; i < shape.Records; i++)
        {
            Record();
        }

        watch.Stop();
        var rowsPerRecord = (double)shape.TransactionRows * shape.TransactionsPerRecord;
        var bytes = output.WrittenCount;
        var nsPerRow = watch.Elapsed.TotalNanoseconds / (rowsPerRecord * shape.Records);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {shape.Name,-48} {design,-48} {bytes / rowsPerRecord,10:N0} {nsPerRow,14:N0} {bytes,13:N0}"));
        if (lean)
        {
            // The same record without the three columns: a size, not a measured encoding (its encoding would be (a)'s).
            var leanBytes = LeanSize(output.WrittenMemory);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {shape.Name,-48} {"(a) lean: no _xid/_commit_lsn/_commit_ts (size)",-48} {leanBytes / rowsPerRecord,10:N0} {"–",14} {leanBytes,13:N0}"));
        }
    }

    /// <summary>The size of the same record without the three transaction columns (the batches re-encoded without them).</summary>
    private static long LeanSize(ReadOnlyMemory<byte> record)
    {
        var payload = ArrowPayload.Read(record);
        var drop = new[] { ChangeBatchBuilder.XidColumn, ChangeBatchBuilder.CommitLsnColumn, ChangeBatchBuilder.CommitTimestampColumn };
        var keep = Enumerable.Range(0, payload.Schema.FieldsList.Count).Where(i => !drop.Contains(payload.Schema.FieldsList[i].Name)).ToArray();
        var schema = new Schema(keep.Select(i => payload.Schema.FieldsList[i]), payload.Schema.Metadata);
        using var writer = new ArrowMessageWriter(schema);
        var output = new ArrayBufferWriter<byte>(1 << 20);
        output.Write(writer.SchemaMessage.Span);
        foreach (var batch in payload.Batches)
        {
            writer.WriteRecordBatch(output, new RecordBatch(schema, keep.Select(batch.Column), batch.Length));
        }

        output.Write(ArrowMessageWriter.EndOfStream);
        return output.WrittenCount;
    }
}
