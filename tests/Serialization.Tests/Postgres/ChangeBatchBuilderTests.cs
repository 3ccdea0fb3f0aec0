using System.Buffers;
using System.Text;
using Apache.Arrow;
using Apache.Arrow.Types;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;
using WalBridge.Tests;

namespace WalBridge.Serialization.Tests.Postgres;

public class ChangeBatchBuilderTests
{
    private static readonly PgRelation Orders = new(
        24576,
        "sales",
        "orders",
        'd',
        [
            new PgColumn("id", PgOid.Int8, -1, true),
            new PgColumn("region", PgOid.Varchar, 24, true),
            new PgColumn("amount", PgOid.Numeric, ((12 << 16) | 2) + 4, false),
            new PgColumn("note", PgOid.Text, -1, false),
            new PgColumn("created", PgOid.TimestampTz, -1, false),
            new PgColumn("ref", PgOid.Uuid, -1, false),
            new PgColumn("doc", PgOid.Jsonb, -1, false),
        ]);

    private static void Text(ChangeBatchBuilder b, string? value)
    {
        if (value is null)
        {
            b.AppendNull();
        }
        else
        {
            b.AppendValue(Encoding.UTF8.GetBytes(value), TupleFormat.Text);
        }
    }

    private static void Row(ChangeBatchBuilder b, ChangeOp op, ulong lsn, string?[] values, string?[]? before = null, int unchangedAt = -1)
    {
        b.BeginRow(op, lsn);
        for (var i = 0; i < values.Length; i++)
        {
            if (i == unchangedAt)
            {
                b.AppendUnchangedToast();
            }
            else
            {
                Text(b, values[i]);
            }
        }

        if (before is not null)
        {
            b.BeginBefore();
            foreach (var v in before)
            {
                Text(b, v);
            }
        }

        b.EndRow();
    }

    [Fact]
    public void Schema_has_system_columns_metadata_and_extensions()
    {
        using var b = new ChangeBatchBuilder(Orders);
        var fields = b.Schema.FieldsList;
        var names = fields.Select(f => f.Name).ToArray();
        Assert.Equal(["_op", "_lsn", "_xid", "_commit_lsn", "_commit_ts", "id", "region", "amount", "note", "created", "ref", "doc", "_before", "_unchanged", "_special"], names);
        Assert.False(fields[0].IsNullable);
        Assert.IsType<StringType>(fields[0].DataType);
        Assert.False(fields[1].IsNullable);
        Assert.IsType<UInt64Type>(fields[1].DataType);
        Assert.IsType<UInt32Type>(b.Schema.Field("_xid").DataType);
        Assert.IsType<UInt64Type>(b.Schema.Field("_commit_lsn").DataType);
        var commitTs = Assert.IsType<TimestampType>(b.Schema.Field("_commit_ts").DataType);
        Assert.Equal((TimeUnit.Microsecond, "UTC"), (commitTs.Unit, commitTs.Timezone));
        Assert.All(fields.Take(ChangeBatchBuilder.LeadingColumns), f => Assert.False(f.IsNullable));
        Assert.Equal("sales", b.Schema.GetMetadata("pg.schema"));
        Assert.Equal("orders", b.Schema.GetMetadata("pg.table"));
        Assert.Equal("24576", b.Schema.GetMetadata("pg.relid"));
        Assert.Equal("d", b.Schema.GetMetadata("pg.replica_identity"));
        Assert.Equal("id,region", b.Schema.GetMetadata("pg.primary_key"));

        var amount = b.Schema.Field("amount");
        var decimalType = Assert.IsType<Decimal128Type>(amount.DataType);
        Assert.Equal((12, 2), (decimalType.Precision, decimalType.Scale));
        Assert.Equal("numeric(12,2)", amount.GetMetadata("pg.type"));
        Assert.Equal("1700", amount.GetMetadata("pg.typoid"));
        Assert.Equal("character varying(20)", b.Schema.Field("region").GetMetadata("pg.type"));
        var created = Assert.IsType<TimestampType>(b.Schema.Field("created").DataType);
        Assert.Equal((TimeUnit.Microsecond, "UTC"), (created.Unit, created.Timezone));
        var uuid = b.Schema.Field("ref");
        Assert.Equal(16, Assert.IsType<FixedSizeBinaryType>(uuid.DataType).ByteWidth);
        Assert.Equal(["pg.type", "pg.typoid", "ARROW:extension:name", "ARROW:extension:metadata"], uuid.Metadata.Keys);
        Assert.Equal("arrow.uuid", uuid.GetMetadata("ARROW:extension:name"));
        Assert.Equal("", uuid.GetMetadata("ARROW:extension:metadata"));
        Assert.Equal("arrow.json", b.Schema.Field("doc").GetMetadata("ARROW:extension:name"));
        var before = fields[^3];
        Assert.IsType<StructType>(before.DataType);
        Assert.True(before.IsNullable);
        Assert.Equal(["id", "region", "amount", "note", "created", "ref", "doc"], before.Children().Select(c => c.Name));
        var unchanged = fields[^2];
        Assert.IsType<ListType>(unchanged.DataType);
        Assert.IsType<StringType>(unchanged.Children()[0].DataType);
        Assert.False(unchanged.Children()[0].IsNullable);
        var special = fields[^1];
        Assert.False(Assert.IsType<MapType>(special.DataType).KeySorted);
        Assert.True(special.IsNullable);
        Assert.False(special.Children()[0].IsNullable);
        Assert.Equal(["key", "value"], special.Children()[0].Children().Select(c => c.Name));
        Assert.Equal([false, true], special.Children()[0].Children().Select(c => c.IsNullable));
        Assert.All(special.Children()[0].Children(), c => Assert.IsType<StringType>(c.DataType));
        Assert.Equal(["pg.schema", "pg.table", "pg.relid", "pg.replica_identity", "pg.primary_key"], b.Schema.Metadata.Keys);

        // The schema Apache.Arrow reads back from a stream equals the builder's, metadata order included, and arrow.uuid
        // is Apache.Arrow's Guid extension type through the payload reader's extension registry.
        var stream = PgConformanceTests.WriteAndRead(b);
        Assert.Equal(names, stream.Schema.FieldsList.Select(f => f.Name));
        Assert.Equal(b.Schema.Metadata, stream.Schema.Metadata);
        Assert.Equal(amount.Metadata, stream.Schema.GetFieldByName("amount").Metadata);
        Assert.Equal(SchemaFingerprint.CanonicalText(b.Schema), SchemaFingerprint.CanonicalText(stream.Schema));
        Assert.IsType<GuidType>(stream.Schema.Field("ref").DataType);
        Assert.Equal(uuid.Metadata, stream.Schema.Field("ref").Metadata);
        Assert.IsType<GuidType>(((StructType)stream.Schema.Field("_before").DataType).Fields[5].DataType);
        Assert.Equal(0, Assert.Single(stream.Batches).Length);
    }

    [Fact]
    public void Rows_of_several_transactions_carry_their_own_transaction_and_a_truncate_row_its_options()
    {
        using var b = new ChangeBatchBuilder(Orders);
        string?[] row = ["1", "eu", "12.50", "first", "2024-01-02 03:04:05.123456+00", null, null];
        b.SetTransaction(700, 0x1_0000_0100, 1_700_000_000_123_456);
        Row(b, ChangeOp.Insert, 0x1_0000_0050, row);
        b.SetTransaction(701, 0x1_0000_0200, 1_700_000_001_000_000);
        b.AppendTruncateRow(0x1_0000_0180, "cascade,restart_identity"u8);
        Row(b, ChangeOp.Insert, 0x1_0000_0190, row);

        var batch = Assert.Single(PgConformanceTests.WriteAndRead(b).Batches);
        Assert.Equal(["c", "t", "c"], Enumerable.Range(0, 3).Select(i => ((StringArray)batch.Col("_op")).GetString(i)));
        Assert.Equal([700u, 701u, 701u], ((UInt32Array)batch.Col("_xid")).Values.ToArray());
        Assert.Equal([0x1_0000_0100UL, 0x1_0000_0200UL, 0x1_0000_0200UL], ((UInt64Array)batch.Col("_commit_lsn")).Values.ToArray());
        Assert.Equal([1_700_000_000_123_456L, 1_700_000_001_000_000L, 1_700_000_001_000_000L], ((TimestampArray)batch.Col("_commit_ts")).Values.ToArray());
        Assert.Equal(0x1_0000_0180UL, ((UInt64Array)batch.Col("_lsn")).GetValue(1));
        foreach (var name in new[] { "id", "region", "amount", "note", "created", "ref", "doc", "_before", "_unchanged" })
        {
            Assert.True(batch.Col(name).IsNull(1), name);
        }

        var special = (MapArray)batch.Col("_special");
        Assert.True(special.IsNull(0));
        Assert.Equal(1, special.ValueOffsets[2] - special.ValueOffsets[1]);
        var entry = special.ValueOffsets[1];
        Assert.Equal("_truncate", ((StringArray)special.Keys).GetString(entry));
        Assert.Equal("cascade,restart_identity", ((StringArray)special.Values).GetString(entry));
    }

    [Fact]
    public void Insert_update_delete_with_before_nulls_and_unchanged_toast()
    {
        using var b = new ChangeBatchBuilder(Orders);
        string?[] row1 = ["1", "eu", "12.50", "first", "2024-01-02 03:04:05.123456+00", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "{\"a\": 1}"];
        Row(b, ChangeOp.Insert, 100, row1);
        string?[] row2 = ["1", "eu", "-0.01", null, "1969-12-31 23:59:59+00", null, null];
        Row(b, ChangeOp.Update, 200, row2, before: row1, unchangedAt: 3);
        Row(b, ChangeOp.Delete, 300, ["1", "eu", null, null, null, null, null]);
        Row(b, ChangeOp.Read, ulong.MaxValue, row1);
        Assert.Equal(4, b.RowCount);

        var batch = Assert.Single(PgConformanceTests.WriteAndRead(b).Batches);
        Assert.Equal(4, batch.Length);
        var op = (StringArray)batch.Col("_op");
        Assert.Equal(["c", "u", "d", "r"], Enumerable.Range(0, 4).Select(i => op.GetString(i)));
        var lsn = (UInt64Array)batch.Col("_lsn");
        Assert.Equal([100UL, 200UL, 300UL, ulong.MaxValue], lsn.Values.ToArray());
        Assert.Equal(0, op.NullCount);
        Assert.Equal(0, lsn.NullCount);

        Assert.Equal("12.50", batch.Render("amount", 0));
        Assert.Equal("-0.01", batch.Render("amount", 1));
        Assert.Null(batch.Render("amount", 2));
        Assert.Equal("2024-01-02 03:04:05.123456+00", batch.Render("created", 0));
        Assert.Equal("1969-12-31 23:59:59+00", batch.Render("created", 1));
        Assert.Equal("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", batch.Render("ref", 0));
        Assert.Equal(Guid.Parse("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), ((GuidArray)batch.Col("ref")).GetGuid(0));
        Assert.Equal("{\"a\": 1}", batch.Render("doc", 0));
        Assert.Equal(-1L, ((TimestampArray)batch.Col("created")).GetValue(1) / 1_000_000);

        // _before: only the update has an old row.
        var before = (StructArray)batch.Col("_before");
        var members = batch.Schema.Field("_before").Children();
        Assert.True(before.IsNull(0));
        Assert.False(before.IsNull(1));
        Assert.True(before.IsNull(2));
        Assert.True(before.IsNull(3));
        for (var c = 0; c < row1.Length; c++)
        {
            Assert.Equal(row1[c], PgTextRenderer.Render(before.Fields[c], members[c], 1));
        }

        // _unchanged: the update did not send "note"; note's value is null there but not SQL NULL.
        var unchanged = batch.Col("_unchanged");
        Assert.True(unchanged.IsNull(0));
        Assert.Equal(["note"], unchanged.Strings(1)!);
        Assert.True(unchanged.IsNull(2));
        Assert.True(batch.Col("note").IsNull(1));
    }

    [Fact]
    public void Unchanged_toast_in_the_old_row_is_prefixed()
    {
        var relation = new PgRelation(1, "public", "t", 'f', [new PgColumn("id", PgOid.Int4, -1, false), new PgColumn("big", PgOid.Text, -1, false)]);
        using var b = new ChangeBatchBuilder(relation);
        b.BeginRow(ChangeOp.Update, 5);
        b.AppendValue("1"u8, TupleFormat.Text);
        b.AppendUnchangedToast();
        b.BeginBefore();
        b.AppendValue("1"u8, TupleFormat.Text);
        b.AppendUnchangedToast();
        b.EndRow();
        var batch = PgConformanceTests.WriteAndRead(b).Batches[0];
        Assert.Equal(["big", "_before.big"], batch.Col("_unchanged").Strings(0)!);
        Assert.Equal("", batch.Schema.GetMetadata("pg.primary_key"));
        Assert.Equal("f", batch.Schema.GetMetadata("pg.replica_identity"));
    }

    [Fact]
    public void Bad_values_name_column_type_and_value_and_discard_the_row()
    {
        using var b = new ChangeBatchBuilder(Orders);
        Row(b, ChangeOp.Insert, 1, ["1", "eu", "1.00", "x", null, null, null]);
        b.BeginRow(ChangeOp.Insert, 2);
        Text(b, "2");
        Text(b, "eu");
        var e = Assert.Throws<PgValueFormatException>(() => Text(b, "12.3.4"));
        Assert.Equal("amount", e.Column);
        Assert.Equal("numeric(12,2)", e.PgType);
        Assert.Contains("not a numeric value", e.Message, StringComparison.Ordinal);
        Assert.Contains("'amount'", e.Message, StringComparison.Ordinal);
        Assert.Equal(1, b.RowCount);

        // The builder is usable again and the discarded row left no trace.
        Assert.Throws<InvalidOperationException>(() => b.AppendNull());
        Row(b, ChangeOp.Insert, 3, ["3", "us", "123456789.99", "y", null, null, null]);
        Assert.Throws<PgValueFormatException>(() => Row(b, ChangeOp.Insert, 4, ["4", "us", "1234567890123.00", "z", null, null, null]));
        Assert.Throws<PgValueFormatException>(() => Row(b, ChangeOp.Insert, 4, ["4", "us", "1.001", "z", null, null, null]));
        Assert.Throws<PgValueFormatException>(() => Row(b, ChangeOp.Insert, 4, ["4", "us", "1", "z", "tomorrow", null, null]));
        Assert.Throws<PgValueFormatException>(() => Row(b, ChangeOp.Insert, 4, ["x4", "us", "1", "z", null, null, null]));
        Assert.Throws<PgValueFormatException>(() => Row(b, ChangeOp.Insert, 4, ["4", "us", "1", "z", null, "not-a-uuid", null]));
        var batch = PgConformanceTests.WriteAndRead(b).Batches[0];
        Assert.Equal(2, batch.Length);
        Assert.Equal(["1", "3"], Enumerable.Range(0, 2).Select(i => batch.Render("id", i)));
        Assert.Equal(["1.00", "123456789.99"], Enumerable.Range(0, 2).Select(i => batch.Render("amount", i)));
        Assert.Equal(["x", "y"], Enumerable.Range(0, 2).Select(i => batch.Render("note", i)));
        Assert.Equal(new ulong[] { 1, 3 }, ((UInt64Array)batch.Col("_lsn")).Values.ToArray());
    }

    [Fact]
    public void A_table_without_columns_is_refused_naming_it()
    {
        // Its _before struct would have no members: Arrow allows that, Apache.Arrow (C#) cannot build it.
        var e = Assert.Throws<NotSupportedException>(() => new ChangeBatchBuilder(new PgRelation(1, "public", "empty", 'd', [])));
        Assert.Contains("public.empty", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Long_values_are_truncated_in_error_messages()
    {
        var relation = new PgRelation(1, "public", "t", 'd', [new PgColumn("n", PgOid.Int4, -1, false)]);
        using var b = new ChangeBatchBuilder(relation);
        b.BeginRow(ChangeOp.Insert, 1);
        var e = Assert.Throws<PgValueFormatException>(() => b.AppendValue(Encoding.UTF8.GetBytes(new string('9', 10_000)), TupleFormat.Text));
        Assert.True(e.Message.Length < 300, e.Message);
        Assert.Contains("(10000 bytes)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Wrong_column_counts_throw_and_discard_the_row()
    {
        using var b = new ChangeBatchBuilder(Orders);
        b.BeginRow(ChangeOp.Insert, 1);
        Text(b, "1");
        Assert.Throws<InvalidOperationException>(b.EndRow);
        Assert.Equal(0, b.RowCount);
        Assert.Throws<InvalidOperationException>(b.EndRow);

        b.BeginRow(ChangeOp.Insert, 1);
        Assert.Throws<InvalidOperationException>(b.BeginBefore);

        b.BeginRow(ChangeOp.Insert, 1);
        for (var i = 0; i < 7; i++)
        {
            b.AppendNull();
        }

        Assert.Throws<InvalidOperationException>(b.AppendNull);
        Assert.Equal(0, b.RowCount);
        b.BeginRow(ChangeOp.Insert, 1);
        Assert.Throws<InvalidOperationException>(() => b.BeginRow(ChangeOp.Insert, 2));
        Assert.Throws<InvalidOperationException>(() => b.WriteStream(new ArrayBufferWriter<byte>()));
        b.Clear();
        Assert.Equal(0, b.RowCount);
        Assert.Throws<ArgumentOutOfRangeException>(() => b.BeginRow((ChangeOp)'x', 1));
    }

    [Fact]
    public void Builder_is_reusable_and_output_is_the_same_for_the_same_rows()
    {
        using var b = new ChangeBatchBuilder(Orders);
        byte[] First()
        {
            for (var i = 0; i < 100; i++)
            {
                Row(b, ChangeOp.Insert, (ulong)i, [i.ToString(System.Globalization.CultureInfo.InvariantCulture), "eu", "1.25", new string('x', i), "2024-01-02 03:04:05+00", null, "{}"]);
            }

            var output = new ArrayBufferWriter<byte>();
            b.WriteStream(output);
            return output.WrittenSpan.ToArray();
        }

        var a = First();
        var c = First();
        Assert.Equal(a, c);
        Interop.ArrowMessageTests.AssertStreamLayout(a, b.SchemaMessage.Span);
        Assert.Equal(100, ArrowPayload.Read(a).Batches[0].Length);
    }

    [Fact]
    public void Fingerprint_is_stable_and_tracks_schema_changes()
    {
        using var a = new ChangeBatchBuilder(Orders);
        using var same = new ChangeBatchBuilder(Orders with { Columns = Orders.Columns.ToList() });
        Assert.Equal(16, a.SchemaFingerprint.Length);
        Assert.Equal(a.SchemaFingerprint, same.SchemaFingerprint);
        var widened = Orders.Columns.Select(c => c.Name == "amount" ? c with { TypeModifier = ((14 << 16) | 2) + 4 } : c).ToList();
        using var changedType = new ChangeBatchBuilder(Orders with { Columns = widened });
        Assert.NotEqual(a.SchemaFingerprint, changedType.SchemaFingerprint);
        using var added = new ChangeBatchBuilder(Orders with { Columns = [.. Orders.Columns, new PgColumn("extra", PgOid.Int4, -1, false)] });
        Assert.NotEqual(a.SchemaFingerprint, added.SchemaFingerprint);
        using var identity = new ChangeBatchBuilder(Orders with { ReplicaIdentity = 'f' });
        Assert.NotEqual(a.SchemaFingerprint, identity.SchemaFingerprint);
    }

    [Fact]
    public void Estimated_size_bounds_large_batches()
    {
        using var b = new ChangeBatchBuilder(Orders);
        var empty = b.EstimatedSize;
        Row(b, ChangeOp.Insert, 1, ["1", "eu", "1.00", new string('z', 5000), null, null, null]);
        Assert.True(b.EstimatedSize > empty + 5000);
        b.RemoveLastRow();
        Assert.Equal(empty, b.EstimatedSize); // the bound follows rows taken out again
        var random = new Random(7);
        for (var i = 0; i < 5000; i++)
        {
            Row(b, (ChangeOp)"cudr"[i % 4], (ulong)i, [i.ToString(System.Globalization.CultureInfo.InvariantCulture), "r" + (i % 7), "-12.34", new string('y', random.Next(200)), null, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", null], before: i % 3 == 0 ? [null, null, null, null, null, null, null] : null, unchangedAt: i % 5 == 0 ? 3 : -1);
        }

        var estimate = b.EstimatedSize;
        var output = new ArrayBufferWriter<byte>();
        var written = b.WriteStream(output);
        Assert.True(estimate >= written);
        Assert.True(estimate < written * 1.1, $"estimate {estimate} is far above {written}");
        Assert.Equal(empty, b.EstimatedSize); // written rows are cleared
        var batch = ArrowPayload.Read(output.WrittenMemory).Batches[0];
        Assert.Equal(5000, batch.Length);
        Assert.Equal(["note"], batch.Col("_unchanged").Strings(4995)!);
    }

    [Fact]
    public void Appending_rows_does_not_allocate_once_warm()
    {
        using var b = new ChangeBatchBuilder(Orders);
        byte[][] values = ["123"u8.ToArray(), "eu"u8.ToArray(), "-12.34"u8.ToArray(), "some note"u8.ToArray(), "2024-01-02 03:04:05.123456+00"u8.ToArray(), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"u8.ToArray(), "{\"k\": 1}"u8.ToArray()];
        void Append(int rows)
        {
            for (var r = 0; r < rows; r++)
            {
                b.BeginRow(ChangeOp.Update, (ulong)r);
                foreach (var v in values)
                {
                    b.AppendValue(v, TupleFormat.Text);
                }

                if (r % 2 == 0)
                {
                    // Old row with unchanged TOAST values; odd rows take the no-old-row, nothing-unchanged path.
                    b.BeginBefore();
                    b.AppendValue(values[0], TupleFormat.Text);
                    for (var i = 1; i < values.Length; i++)
                    {
                        b.AppendUnchangedToast();
                    }
                }

                b.EndRow();
            }
        }

        Append(2000);
        b.Clear();
        var before = GC.GetAllocatedBytesForCurrentThread();
        Append(2000);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated == 0, $"{allocated} bytes allocated for 2000 rows");
    }

    [Fact]
    public void Arrays_map_to_lists_and_unrepresentable_arrays_are_rejected()
    {
        var relation = new PgRelation(1, "public", "t", 'd', [new PgColumn("tags", PgOid.TextArray, -1, false), new PgColumn("amounts", PgOid.NumericArray, ((10 << 16) | 2) + 4, false)]);
        using var b = new ChangeBatchBuilder(relation);
        var tags = b.Schema.GetFieldByName("tags");
        Assert.IsType<ListType>(tags.DataType);
        Assert.Equal("text[]", tags.GetMetadata("pg.type"));
        Assert.Equal("1009", tags.GetMetadata("pg.typoid"));
        Assert.Equal("item", tags.Children()[0].Name);
        Assert.True(tags.Children()[0].IsNullable);
        Assert.IsType<StringType>(tags.Children()[0].DataType);
        Assert.Equal("text", tags.Children()[0].GetMetadata("pg.type"));
        var amounts = b.Schema.GetFieldByName("amounts");
        Assert.Equal("numeric(10,2)[]", amounts.GetMetadata("pg.type"));
        var element = Assert.IsType<Decimal128Type>(amounts.Children()[0].DataType);
        Assert.Equal((10, 2), (element.Precision, element.Scale));

        foreach (var bad in new[] { "{a,b", "{\"a}", "{a}x" })
        {
            b.BeginRow(ChangeOp.Insert, 1);
            var e = Assert.Throws<PgValueFormatException>(() => b.AppendValue(Encoding.UTF8.GetBytes(bad), TupleFormat.Text));
            Assert.Contains("'tags'", e.Message, StringComparison.Ordinal);
        }

        b.BeginRow(ChangeOp.Insert, 1);
        b.AppendValue("{x}"u8, TupleFormat.Text);
        var bad2 = Assert.Throws<PgValueFormatException>(() => b.AppendValue("{1.00,1.2.3}"u8, TupleFormat.Text));
        Assert.Contains("array element 2", bad2.Message, StringComparison.Ordinal);

        // A failed element leaves no partial list behind.
        b.BeginRow(ChangeOp.Insert, 2);
        b.AppendValue("{\"a b\",NULL}"u8, TupleFormat.Text);
        b.AppendValue("{1.5}"u8, TupleFormat.Text);
        b.EndRow();

        // Multi-dimensional arrays, explicit bounds and special elements: null + exact text in _special, no partial list.
        b.BeginRow(ChangeOp.Insert, 3);
        b.AppendValue("{{a,b},{c,d}}"u8, TupleFormat.Text);
        b.AppendValue("{1.00,NaN}"u8, TupleFormat.Text);
        b.EndRow();
        b.BeginRow(ChangeOp.Insert, 4);
        b.AppendValue("[0:1]={a,b}"u8, TupleFormat.Text);
        b.AppendValue("{2.00}"u8, TupleFormat.Text);
        b.EndRow();
        var batch = PgConformanceTests.WriteAndRead(b).Batches[0];
        Assert.Equal(3, batch.Length);
        Assert.Equal("{{a,b},{c,d}}", PgTextRenderer.RenderCell(batch, 5, 1));
        Assert.Equal("{1.00,NaN}", PgTextRenderer.RenderCell(batch, 6, 1));
        Assert.Equal("[0:1]={a,b}", PgTextRenderer.RenderCell(batch, 5, 2));
        Assert.Equal("{2.00}", PgTextRenderer.RenderCell(batch, 6, 2));
        Assert.True(batch.Col("tags").IsNull(1));
        var (start1, end1) = ((ListArray)batch.Col("amounts")).Range(1);
        Assert.Equal(start1, end1); // the special array's elements were discarded
        Assert.Equal("{\"a b\",NULL}", batch.Render("tags", 0));
        Assert.Equal("{1.50}", batch.Render("amounts", 0));
        Assert.Equal(2, ((ListArray)batch.Col("tags")).Values.Length);
    }

    /// <summary>
    /// Issue 15: in a replication stream a text value comes from PostgreSQL's own output function, so one the parser
    /// does not take is kept losslessly (null + its exact text in <c>_special</c>) instead of stopping the stream;
    /// the row stays complete and aligned, and the builder counts it. Binary input stays strict.
    /// </summary>
    [Fact]
    public void Under_KeepAsSpecialText_text_the_parser_does_not_take_is_kept_exactly_in_special()
    {
        var relation = new PgRelation(1, "public", "t", 'f',
        [
            new PgColumn("id", PgOid.Int4, -1, true),
            new PgColumn("amount", PgOid.Numeric, ((12 << 16) | 2) + 4, false),
            new PgColumn("tags", PgOid.Int4Array, -1, false),
        ]);
        using var b = new ChangeBatchBuilder(relation, UnparsedTextPolicy.KeepAsSpecialText);
        Assert.Equal(0, b.TextFallbacks);

        // A partly parsed array (elements 1 and 2 appended before element 3 fails) leaves no elements behind.
        b.BeginRow(ChangeOp.Update, 7);
        b.AppendValue("1"u8, TupleFormat.Text);
        b.AppendValue("12.3.4"u8, TupleFormat.Text);
        b.AppendValue("{1,2,x}"u8, TupleFormat.Text);
        b.BeginBefore();
        b.AppendValue("1"u8, TupleFormat.Text);
        b.AppendValue("1.00"u8, TupleFormat.Text);
        b.AppendValue("{not,ints}"u8, TupleFormat.Text);
        b.EndRow();
        Assert.Equal(3, b.TextFallbacks);
        Assert.Contains("'tags'", b.LastTextFallback, StringComparison.Ordinal);

        Row(b, ChangeOp.Insert, 8, ["2", "2.50", "{5}"]);
        Assert.Equal(3, b.TextFallbacks);
        // Binary input is never kept as text: its text form is what carries it (the connector switches to text).
        b.BeginRow(ChangeOp.Insert, 9);
        b.AppendValue("3"u8, TupleFormat.Text);
        Assert.Throws<PgValueFormatException>(() => b.AppendValue([1, 2, 3], TupleFormat.Binary));
        Assert.Equal(2, b.RowCount);

        var batch = PgConformanceTests.WriteAndRead(b).Batches[0];
        Assert.Equal(2, batch.Length);
        Assert.True(batch.Col("amount").IsNull(0));
        Assert.True(batch.Col("tags").IsNull(0));
        Assert.Equal("12.3.4", PgTextRenderer.RenderCell(batch, 6, 0));
        Assert.Equal("{1,2,x}", PgTextRenderer.RenderCell(batch, 7, 0));
        Assert.Equal("1.00", PgTextRenderer.RenderBeforeCell(batch, 1, 0));
        Assert.Equal("{not,ints}", PgTextRenderer.RenderBeforeCell(batch, 2, 0));
        Assert.Equal("2.50", PgTextRenderer.RenderCell(batch, 6, 1));
        Assert.Equal("{5}", PgTextRenderer.RenderCell(batch, 7, 1));
        Assert.Equal(1, ((ListArray)batch.Col("tags")).Values.Length); // only row 1's element
    }
}
