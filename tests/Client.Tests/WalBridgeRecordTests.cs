using Apache.Arrow;
using Apache.Arrow.Ipc;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;
using static WalBridge.Client.Tests.Records;

namespace WalBridge.Client.Tests;

/// <summary>Records written by the connector's encoder, read back through <see cref="WalBridgeDeserializer"/> and the change views.</summary>
public class WalBridgeRecordTests
{
    private const ulong CommitA = 0x1_0000_0100;
    private const ulong CommitB = 0x1_0000_0200;
    private const ulong CommitC = 0x1_0000_0300;
    private const long CommitMicros = 1_704_164_645_500_000;   // 2024-01-02 03:04:05.5 UTC
    private const string Ref = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";

    /// <summary>
    /// Three source transactions in two batches: two inserts (one with values Arrow cannot hold); an update leaving a
    /// TOAST value unsent and one changing the key (old key in <c>_before</c>); a delete of a key and a truncate.
    /// </summary>
    private static byte[] Mixed(ArrowCompression compression = ArrowCompression.None) => Stream(compression,
        b =>
        {
            b.SetTransaction(700, CommitA, CommitMicros);
            Row(b, ChangeOp.Insert, 0x1_0000_0010, "1", "one", "big", "2024-01-02 03:04:05.5+00", "12.50", Ref, "\\x00ff");
            Row(b, ChangeOp.Insert, 0x1_0000_0020, "2", null, "p2", "infinity", "NaN", null, null);
            b.SetTransaction(701, CommitB, CommitMicros + 1);
            Row(b, ChangeOp.Update, 0x1_0000_0110, "1", "uno", Unchanged, "2024-01-02 03:04:05.5+00", "12.50", Ref, "\\x");
            Row(b, ChangeOp.Update, 0x1_0000_0120, "10", "ten", Unchanged, null, null, null, null,
                BeginBefore, "1", "old", Unchanged, null, null, null, null);
        },
        b =>
        {
            b.SetTransaction(702, CommitC, CommitMicros + 2);
            Row(b, ChangeOp.Delete, 0x1_0000_0210, "2", null, null, null, null, null, null);
            b.AppendTruncateRow(0x1_0000_0220, "cascade"u8);
        });

    private static WalBridgeRecord ReadMixed(ArrowCompression compression = ArrowCompression.None) =>
        Deserialize(Mixed(compression), Headers(CommitA, CommitC, transactions: 3, rows: 6));

    [Fact]
    public void Every_change_of_a_record_has_its_operation_position_and_source_transaction()
    {
        using var record = ReadMixed();
        Assert.Equal(2, record.Batches.Count);
        Assert.Equal(6, record.Changes.Count);
        Assert.Equal("public.items", record.Table);
        Assert.Equal(["id"], record.PrimaryKey);
        Assert.Equal(["id", "note", "payload", "ts", "amount", "ref", "data"], record.ColumnNames);
        var changes = record.Changes.ToList();
        Assert.Equal(
            [ChangeOperation.Insert, ChangeOperation.Insert, ChangeOperation.Update, ChangeOperation.Update, ChangeOperation.Delete, ChangeOperation.Truncate],
            changes.Select(c => c.Operation));
        Assert.Equal([0x1_0000_0010UL, 0x1_0000_0020, 0x1_0000_0110, 0x1_0000_0120, 0x1_0000_0210, 0x1_0000_0220], changes.Select(c => c.Lsn.Value));
        Assert.Equal([700u, 700, 701, 701, 702, 702], changes.Select(c => c.Transaction.Xid));
        Assert.Equal([CommitA, CommitA, CommitB, CommitB, CommitC, CommitC], changes.Select(c => c.Transaction.CommitLsn.Value));
        Assert.Equal(new DateTimeOffset(2024, 1, 2, 3, 4, 5, 500, TimeSpan.Zero), changes[0].Transaction.CommitTime);
        Assert.Equal(CommitMicros + 2, changes[5].Transaction.CommitTimestampMicros);
        Assert.Equal([0, 1, 2, 3, 0, 1], changes.Select(c => c.Row));   // two batches
    }

    [Fact]
    public void Typed_getters_read_the_values_of_the_new_row()
    {
        using var record = ReadMixed();
        var insert = record.Changes.First().After;
        Assert.True(insert.IsPresent);
        Assert.Equal(1, insert.GetInt64("id"));
        Assert.Equal("one", insert.GetString("note"));
        Assert.True(insert.TryGetUtf8("note", out var utf8));
        Assert.Equal("one"u8.ToArray(), utf8.ToArray());
        Assert.Equal(CommitMicros, insert.GetTimestampMicros("ts"));
        Assert.Equal(new DateTimeOffset(2024, 1, 2, 3, 4, 5, 500, TimeSpan.Zero), insert.GetDateTimeOffset("ts"));
        Assert.Equal("12.50", insert.GetDecimalString("amount"));
        Assert.Equal(12.50m, insert.GetSqlDecimal("amount")!.Value.Value);
        Assert.Equal(Guid.Parse(Ref), insert.GetGuid("ref"));
        Assert.True(insert.TryGetBytes("data", out var bytes));
        Assert.Equal(new byte[] { 0x00, 0xff }, bytes.ToArray());
        Assert.Equal(ValueState.Value, insert.GetState("note"));
    }

    [Fact]
    public void SQL_NULL_is_null_and_only_that()
    {
        using var record = ReadMixed();
        var second = record.Changes.ElementAt(1).Columns;
        Assert.Equal(ValueState.Null, second.GetState("note"));
        Assert.True(second.IsNull("note"));
        Assert.Null(second.GetString("note"));
        Assert.Null(second.GetGuid("ref"));
        Assert.False(second.TryGetBytes("data", out _));
    }

    [Fact]
    public void An_unchanged_TOAST_value_is_reported_unchanged_not_null()
    {
        using var record = ReadMixed();
        var update = record.Changes.ElementAt(2);
        Assert.Equal(ChangeOperation.Update, update.Operation);
        Assert.Equal(ValueState.Unchanged, update.Columns.GetState("payload"));
        Assert.True(update.Columns.IsUnchanged("payload"));
        Assert.False(update.Columns.IsNull("payload"));
        var error = Assert.Throws<InvalidOperationException>(() => update.Columns.GetString("payload"));
        Assert.Contains("unchanged TOAST value", error.Message, StringComparison.Ordinal);
        Assert.Equal("uno", update.After.GetString("note"));
        Assert.False(update.Columns.IsUnchanged("note"));
    }

    [Fact]
    public void A_value_Arrow_cannot_hold_is_PostgreSQLs_text_from_special()
    {
        using var record = ReadMixed();
        var row = record.Changes.ElementAt(1).Columns;
        Assert.Equal(ValueState.Special, row.GetState("ts"));
        Assert.Equal("infinity", row.GetSpecialText("ts"));
        Assert.Equal(ValueState.Special, row.GetState("amount"));
        Assert.Equal("NaN", row.GetSpecialText("amount"));
        var error = Assert.Throws<InvalidOperationException>(() => row.GetTimestampMicros("ts"));
        Assert.Contains("GetSpecialText", error.Message, StringComparison.Ordinal);
        Assert.Null(row.GetSpecialText("note"));
        Assert.Null(record.Changes.First().Columns.GetSpecialText("ts"));
    }

    [Fact]
    public void An_update_that_changed_the_key_has_its_old_key_in_Before()
    {
        using var record = ReadMixed();
        var moved = record.Changes.ElementAt(3);
        Assert.Equal(10, moved.Columns.GetInt64("id"));
        Assert.True(moved.Before.IsPresent);
        Assert.Equal(1, moved.Before.GetInt64("id"));
        Assert.Equal(1, moved.OldRow.GetInt64("id"));
        Assert.Equal("old", moved.Before.GetString("note"));
        // Old-row members that were not sent are listed as _before.<column>, and only there.
        Assert.Equal(ValueState.Unchanged, moved.Before.GetState("payload"));
        Assert.Equal(ValueState.Null, moved.Before.GetState("ts"));

        var plain = record.Changes.ElementAt(2);
        Assert.False(plain.Before.IsPresent);
        Assert.False(plain.OldRow.IsPresent);
        var error = Assert.Throws<InvalidOperationException>(() => plain.Before.GetInt64("id"));
        Assert.Contains("IsPresent", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_delete_has_its_old_key_in_the_table_columns_and_no_new_row()
    {
        using var record = ReadMixed();
        var delete = record.Changes.ElementAt(4);
        Assert.Equal(ChangeOperation.Delete, delete.Operation);
        Assert.Equal(2, delete.OldRow.GetInt64("id"));
        Assert.Equal(2, delete.Columns.GetInt64("id"));
        Assert.False(delete.After.IsPresent);
        Assert.False(delete.Before.IsPresent);
        Assert.Null(delete.TruncateOptions);
    }

    [Fact]
    public void A_truncate_row_has_its_options_and_null_columns()
    {
        using var record = ReadMixed();
        var truncate = record.Changes.Last();
        Assert.Equal(ChangeOperation.Truncate, truncate.Operation);
        Assert.Equal("cascade", truncate.TruncateOptions);
        Assert.All(record.ColumnNames, name => Assert.Equal(ValueState.Null, truncate.Columns.GetState(name)));
        Assert.False(truncate.After.IsPresent);
        Assert.False(truncate.OldRow.IsPresent);
    }

    [Fact]
    public void The_headers_give_the_record_metadata()
    {
        using var record = Deserialize(Mixed(), Headers(CommitA, CommitC, transactions: 3, rows: 6, chunk: 2, chunkLast: false));
        var headers = record.Headers!;
        Assert.Equal(2, headers.Format);
        Assert.Equal("public.items", headers.Table);
        Assert.Equal(new Lsn(CommitA), headers.FirstCommitLsn);
        Assert.Equal(new Lsn(CommitC), headers.CommitLsn);
        Assert.Equal(3, headers.Transactions);
        Assert.Equal(6, headers.Rows);
        Assert.Equal(2, headers.Chunk);
        Assert.False(headers.ChunkLast);
        Assert.Equal("0123456789abcdef", headers.SchemaFingerprint);
        Assert.Equal((new Lsn(CommitA), 2), headers.Identity);
        Assert.True(headers.EndsTransaction(new Lsn(CommitB)));
        Assert.False(headers.EndsTransaction(new Lsn(CommitC)));   // chunk_last false: the last transaction goes on
    }

    [Theory]
    [InlineData("3")]
    [InlineData("1")]
    [InlineData("two")]
    public void An_unknown_format_version_is_an_error_never_skipped(string format)
    {
        var error = Assert.Throws<WalBridgeFormatException>(() => Deserialize(Mixed(), Headers(CommitA, CommitC, 3, 6, format: format)));
        Assert.Contains($"payload format '{format}'", error.Message, StringComparison.Ordinal);
        Assert.Contains("Upgrade WalBridge.Client", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_record_without_the_format_header_is_refused()
    {
        var headers = Headers(CommitA, CommitC, 3, 6);
        headers.Remove(WalBridgeFormat.FormatHeader);
        var error = Assert.Throws<WalBridgeFormatException>(() => Deserialize(Mixed(), headers));
        Assert.Contains("no walbridge.format header", error.Message, StringComparison.Ordinal);
        Assert.Throws<WalBridgeFormatException>(() => WalBridgeDeserializer.Instance.Deserialize(Mixed(), false,
            new Confluent.Kafka.SerializationContext(Confluent.Kafka.MessageComponentType.Value, "t", null)));
    }

    [Fact]
    public void A_messages_topic_record_or_a_null_value_is_refused()
    {
        var headers = Headers(CommitA, CommitC, 3, 6);
        headers.Remove(WalBridgeFormat.KindHeader);
        headers.Add(WalBridgeFormat.KindHeader, "message"u8.ToArray());
        Assert.Throws<WalBridgeFormatException>(() => Deserialize(Mixed(), headers));
        Assert.Throws<WalBridgeFormatException>(() => WalBridgeDeserializer.Instance.Deserialize([], true,
            new Confluent.Kafka.SerializationContext(Confluent.Kafka.MessageComponentType.Value, "t", Headers(CommitA, CommitC, 3, 6))));
    }

    [Fact]
    public void An_unknown_op_code_is_an_error()
    {
        // The mixed record with every _op replaced by 'x', written again with Apache.Arrow's own writer.
        using var reader = new ArrowStreamReader(Mixed());
        var output = new MemoryStream();
        using (var writer = new ArrowStreamWriter(output, reader.Schema, leaveOpen: true))
        {
            while (reader.ReadNextRecordBatch() is { } batch)
            {
                var ops = new StringArray.Builder();
                for (var i = 0; i < batch.Length; i++)
                {
                    ops.Append(i == 1 ? "x" : "c");
                }

                var columns = batch.Arrays.ToList();
                columns[0] = ops.Build();
                writer.WriteRecordBatch(new RecordBatch(reader.Schema, columns, batch.Length));
            }

            writer.WriteEnd();
        }

        var error = Assert.Throws<WalBridgeFormatException>(() => Deserialize(output.ToArray(), Headers(CommitA, CommitC, 3, 6)));
        Assert.Contains("_op 'x'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_value_that_is_not_an_Arrow_stream_or_disagrees_with_its_headers_is_refused()
    {
        Assert.Throws<WalBridgeFormatException>(() => Deserialize("{\"op\":\"c\"}"u8.ToArray(), Headers(CommitA, CommitC, 3, 6)));
        var error = Assert.Throws<WalBridgeFormatException>(() => Deserialize(Mixed(), Headers(CommitA, CommitC, 3, rows: 5)));
        Assert.Contains("walbridge.rows = 5", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(ArrowCompression.Zstd)]
    [InlineData(ArrowCompression.Lz4Frame)]
    public void Compressed_batches_read_the_same(ArrowCompression compression)
    {
        using var plain = ReadMixed();
        using var compressed = ReadMixed(compression);
        Assert.Equal(plain.Changes.Select(Describe), compressed.Changes.Select(Describe));
    }

    [Fact]
    public void Getters_of_the_wrong_type_or_an_unknown_column_say_so()
    {
        using var record = ReadMixed();
        var row = record.Changes.First().Columns;
        var cast = Assert.Throws<InvalidCastException>(() => row.GetInt32("id"));
        Assert.Contains("PostgreSQL bigint", cast.Message, StringComparison.Ordinal);
        var missing = Assert.Throws<ArgumentException>(() => row.GetInt64("nope"));
        Assert.Contains("id, note, payload", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_disposed_record_and_its_changes_are_unusable()
    {
        var record = ReadMixed();
        var change = record.Changes.First();
        record.Dispose();
        Assert.Throws<ObjectDisposedException>(() => record.Changes);
        Assert.Throws<ObjectDisposedException>(() => record.Batches);
        Assert.Throws<ObjectDisposedException>(() => change.Operation);
        Assert.Throws<ObjectDisposedException>(() => change.Columns.GetInt64("id"));
        record.Dispose();
    }

    [Fact]
    public unsafe void Read_is_zero_copy_and_iterating_allocates_nothing()
    {
        var value = Mixed();
        using var record = WalBridgeRecord.Read(value, Headers(CommitA, CommitC, 3, 6));
        var ids = ((Int64Array)record.Batches[0].Column("id")).Values;
        fixed (byte* start = value)
        fixed (long* id = ids)
        {
            Assert.True((byte*)id >= start && (byte*)id < start + value.Length, "the id values are not a view of the record value");
        }

        long sum = 0;
        var before = GC.GetAllocatedBytesForCurrentThread();
        foreach (var change in record.Changes)
        {
            sum += (long)change.Lsn.Value + change.Transaction.Xid + (int)change.Operation;
            if (change.Operation == ChangeOperation.Insert)
            {
                sum += change.Columns.GetInt64("id") ?? 0;
            }
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.NotEqual(0, sum);
    }

    private static string Describe(Change change) =>
        $"{change.Operation} {change.Lsn} {change.Transaction} {(change.Operation == ChangeOperation.Truncate ? "" : change.Columns.GetInt64("id"))} {change.Columns.GetState("payload")} {change.Columns.GetSpecialText("ts")}";
}
