using System.Buffers.Binary;
using System.Text;
using Apache.Arrow;
using Microsoft.Extensions.Logging.Abstractions;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Decoding.PgOutput;
using WalBridge.Connector.Snapshot;
using WalBridge.Connector.Transactions;
using WalBridge.Offsets;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Connector.Tests;

/// <summary>
/// The stream's side of incremental snapshots (DBLog) without a server: a window's rows through the real framer and
/// batcher, changed keys dropped, keys to read again, truncates, stale watermarks; the signal format; the chunk query.
/// </summary>
public sealed class IncrementalSnapshotUnitTests
{
    private const uint RelationId = 16400;
    private static readonly PgRelation s_relation = new(RelationId, "public", "t", 'd', [new PgColumn("id", 23, -1, true), new PgColumn("v", 25, -1, false)]);
    private static readonly DateTimeOffset s_time = DateTimeOffset.Parse("2026-12-01T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    private static Dictionary<string, string> Values() => new()
    {
        ["name"] = "unit",
        ["database.user"] = "cdc",
        ["database.dbname"] = "shop",
        ["topic.prefix"] = "shop",
        ["kafka.bootstrap.servers"] = "k1:9092",
        ["state.dir"] = Path.Combine(Path.GetTempPath(), $"walbridge-unit-{Guid.NewGuid():N}"),
    };

    private static ConnectorConfig Config() => ConnectorConfig.FromDictionary(Values());

    /// <summary>A pgoutput TupleData image: text values, <c>null</c> for SQL NULL, <c>"\u0000u"</c> for an unchanged TOAST value.</summary>
    private static byte[] Tuple(params string?[] values)
    {
        var stream = new MemoryStream();
        var scratch = new byte[4];
        BinaryPrimitives.WriteInt16BigEndian(scratch, (short)values.Length);
        stream.Write(scratch, 0, 2);
        foreach (var value in values)
        {
            if (value is null)
            {
                stream.WriteByte((byte)'n');
            }
            else if (value == "\u0000u")
            {
                stream.WriteByte((byte)'u');
            }
            else
            {
                var bytes = Encoding.UTF8.GetBytes(value);
                stream.WriteByte((byte)'t');
                BinaryPrimitives.WriteInt32BigEndian(scratch, bytes.Length);
                stream.Write(scratch);
                stream.Write(bytes);
            }
        }

        return stream.ToArray();
    }

    private static WindowRow Row(int id) => new(Tuple(id.ToString(System.Globalization.CultureInfo.InvariantCulture), "v" + id), [id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);

    private static IncrementalSnapshotState Started(params IReadOnlyList<string?>[] retry) =>
        new([new IncrementalTableState("public.t", "sig", Lsn.Parse("0/100"), null, 0, retry)], ["sig"]);

    /// <summary>Drives the framer and batcher as the pgoutput decoder does.</summary>
    private sealed class Stream(SnapshotWindows windows) : IDisposable
    {
        private readonly TransactionFramer _framer = new(Config(), Lsn.Zero, "pgoutput", windows);
        private PgOutputBatcher? _batcher;
        private ulong _next = 0x1000;
        private uint _xid = 100;

        private PgOutputBatcher Batcher => _batcher ??= new PgOutputBatcher(Config(), _framer, NullLogger.Instance);

        public Lsn Transaction(Action<PgOutputBatcher, Lsn> body)
        {
            var lsn = new Lsn(_next += 0x100);
            Batcher.OnBegin(lsn, s_time, _xid++, lsn);
            Batcher.OnRelation(s_relation, lsn);
            body(Batcher, lsn);
            Batcher.OnCommit(new CommitFields(lsn, new Lsn(lsn.Value + 8), s_time), lsn);
            return lsn;
        }

        public void Watermark(string content) =>
            Transaction((batcher, lsn) => batcher.OnMessage(true, lsn, windows.Prefix, Encoding.UTF8.GetBytes(content), lsn));

        public TransactionGroup Take()
        {
            Batcher.FlushAll();
            return _framer.TakeGroup();
        }

        public void Dispose()
        {
            _batcher?.Dispose();
            _framer.Dispose();
        }
    }

    /// <summary>Every row of the group's batches: (_op, id, _xid).</summary>
    private static List<(string Op, string? Id, uint Xid)> Rows(TransactionGroup group)
    {
        var rows = new List<(string, string?, uint)>();
        foreach (var table in group.Tables)
        {
            foreach (var batch in table.Batches)
            {
                var bytes = table.SchemaMessage.ToArray().Concat(batch.Bytes.Get()).Concat(ArrowMessageWriter.EndOfStream.ToArray()).ToArray();
                foreach (var record in ArrowPayload.Read(bytes).Batches)
                {
                    var op = (StringArray)record.Column(record.Schema.GetFieldIndex("_op"));
                    var xid = (UInt32Array)record.Column(record.Schema.GetFieldIndex("_xid"));
                    for (var row = 0; row < record.Length; row++)
                    {
                        rows.Add((op.GetString(row), PgTextRenderer.RenderCell(record, record.Schema.GetFieldIndex("id"), row), xid.GetValue(row) ?? 0));
                    }
                }
            }
        }

        return rows;
    }

    private static SnapshotWindow Window(WindowKind kind = WindowKind.Range) => new()
    {
        Id = Guid.NewGuid().ToString("N"),
        Kind = kind,
        Table = "public.t",
        Relation = s_relation,
        KeyColumns = ["id"],
    };

    [Fact]
    public void Rows_whose_keys_changed_inside_the_window_are_dropped_and_the_others_join_the_high_watermark_transaction()
    {
        var windows = new SnapshotWindows("slot", Started());
        using var stream = new Stream(windows);
        var window = Window();
        windows.Prepare(window);
        windows.Ready(window, [Row(1), Row(2), Row(3), Row(4), Row(5)], exhausted: false);
        stream.Watermark(SnapshotWindows.LowContent(window.Id));
        stream.Transaction((b, lsn) => b.OnUpdate(RelationId, OldTuple.None, default, TupleData.Parse(Tuple("3", "newer"), lsn, out _), lsn));
        // A key change: the old key (2, in the old-key tuple) is a changed key too.
        stream.Transaction((b, lsn) => b.OnUpdate(RelationId, OldTuple.Key, TupleData.Parse(Tuple("2", null), lsn, out _), TupleData.Parse(Tuple("20", "moved"), lsn, out _), lsn));
        var before = stream.Take();
        Assert.Equal(2, Rows(before).Count(r => r.Op == "u"));
        stream.Watermark(SnapshotWindows.HighContent(window.Id));
        var group = stream.Take();

        Assert.True(window.Emitted.Task.IsCompletedSuccessfully);
        var reads = Rows(group).Where(r => r.Op == "r").ToList();
        Assert.Equal(["1", "4", "5"], reads.Select(r => r.Id ?? "null").ToArray());
        // In the high watermark's transaction (the third after the low watermark's).
        Assert.All(reads, r => Assert.Equal(group.Transactions[^1].Xid, r.Xid));
        Assert.Empty(group.Messages);
        var table = Assert.Single(group.Incremental!.Tables);
        Assert.Equal(["5"], table.LastKey);
        Assert.Equal(3, table.Rows);
        Assert.False(table.Exhausted);
        Assert.Empty(group.StreamMarkers);
    }

    [Fact]
    public void The_last_window_writes_the_end_marker_and_the_table_leaves_the_queue()
    {
        var windows = new SnapshotWindows("slot", Started());
        using var stream = new Stream(windows);
        var window = Window();
        windows.Prepare(window);
        windows.Ready(window, [Row(7)], exhausted: true);
        stream.Watermark(SnapshotWindows.LowContent(window.Id));
        stream.Watermark(SnapshotWindows.HighContent(window.Id));
        var group = stream.Take();

        var marker = Assert.Single(group.StreamMarkers);
        Assert.Equal(SnapshotMarkerKind.End, marker.Kind);
        Assert.True(marker.Incremental);
        Assert.Equal(Lsn.Parse("0/100"), marker.SnapshotLsn);
        Assert.Equal(1, marker.Rows);
        Assert.Empty(group.Incremental!.Tables);
        Assert.Equal(["sig"], group.Incremental.Signals);
    }

    [Fact]
    public async Task A_begin_window_queues_the_request_and_writes_the_start_marker_at_its_commit_lsn()
    {
        var windows = new SnapshotWindows("slot", null);
        using var stream = new Stream(windows);
        var window = new SnapshotWindow
        {
            Id = "w1",
            Kind = WindowKind.Begin,
            Table = "public.t",
            Relation = s_relation,
            KeyColumns = ["id"],
            Requests = [new SnapshotRequest("signal-1", ["public.t", "public.u"])],
        };
        windows.Prepare(window);
        windows.Ready(window, [], exhausted: false);
        stream.Watermark(SnapshotWindows.LowContent("w1"));
        stream.Watermark(SnapshotWindows.HighContent("w1"));
        var group = stream.Take();

        var high = group.Transactions[^1].CommitLsn;
        Assert.Equal(high, await window.Emitted.Task);
        var marker = Assert.Single(group.StreamMarkers);
        Assert.Equal(SnapshotMarkerKind.Start, marker.Kind);
        Assert.Equal(high, marker.SnapshotLsn);
        Assert.Equal(["public.t", "public.u"], group.Incremental!.Tables.Select(t => t.Table).ToArray());
        Assert.Equal(high, group.Incremental.Tables[0].Lsn);
        Assert.False(group.Incremental.Tables[1].Started);
        Assert.Equal(["signal-1"], group.Incremental.Signals);
    }

    [Fact]
    public void An_update_leaving_a_toast_value_unsent_puts_its_key_on_the_list_to_read_again()
    {
        var windows = new SnapshotWindows("slot", Started());
        using var stream = new Stream(windows);
        stream.Transaction((b, lsn) => b.OnUpdate(RelationId, OldTuple.None, default, TupleData.Parse(Tuple("42", "\u0000u"), lsn, out _), lsn));
        stream.Take();
        var window = Window();
        windows.Prepare(window);
        windows.Ready(window, [Row(1)], exhausted: true);
        stream.Watermark(SnapshotWindows.LowContent(window.Id));
        stream.Watermark(SnapshotWindows.HighContent(window.Id));
        var group = stream.Take();

        // Exhausted, but a key is left to read again: no end marker yet.
        var table = Assert.Single(group.Incremental!.Tables);
        Assert.True(table.Exhausted);
        Assert.Equal([["42"]], table.Retry.Select(k => k.ToArray()).ToArray());
        Assert.Empty(group.StreamMarkers);

        // The retry window reads it again and the table completes.
        var retry = new SnapshotWindow { Id = "r1", Kind = WindowKind.Retry, Table = "public.t", Relation = s_relation, KeyColumns = ["id"], RetryKeys = table.Retry };
        windows.Prepare(retry);
        windows.Ready(retry, [Row(42)], exhausted: true);
        stream.Watermark(SnapshotWindows.LowContent("r1"));
        stream.Watermark(SnapshotWindows.HighContent("r1"));
        var done = stream.Take();
        Assert.Empty(done.Incremental!.Tables);
        Assert.Equal(SnapshotMarkerKind.End, Assert.Single(done.StreamMarkers).Kind);
        Assert.Equal(["42"], Rows(done).Where(r => r.Op == "r").Select(r => r.Id ?? "null").ToArray());
    }

    [Fact]
    public void A_truncate_inside_the_window_drops_the_whole_chunk()
    {
        var windows = new SnapshotWindows("slot", Started());
        using var stream = new Stream(windows);
        var window = Window();
        windows.Prepare(window);
        windows.Ready(window, [Row(1), Row(2)], exhausted: false);
        stream.Watermark(SnapshotWindows.LowContent(window.Id));
        stream.Transaction((b, lsn) => b.OnTruncate([RelationId], TruncateOptions.None, lsn));
        stream.Watermark(SnapshotWindows.HighContent(window.Id));
        var group = stream.Take();
        Assert.DoesNotContain(Rows(group), r => r.Op == "r");
        Assert.Equal(["2"], group.Incremental!.Tables[0].LastKey);
    }

    [Fact]
    public void Watermarks_of_no_open_window_and_of_other_connectors_are_ignored_and_never_delivered()
    {
        var windows = new SnapshotWindows("slot", Started());
        using var stream = new Stream(windows);
        stream.Watermark(SnapshotWindows.HighContent("written-before-a-restart"));
        stream.Transaction((b, lsn) => b.OnMessage(true, lsn, SnapshotWindows.PrefixBase + "other-slot", Encoding.UTF8.GetBytes("low x"), lsn));
        var group = stream.Take();
        Assert.Empty(group.Messages);
        Assert.DoesNotContain(Rows(group), r => r.Op == "r");
        Assert.Equal(Started().Tables, group.Incremental!.Tables);
    }

    [Theory]
    [InlineData("execute-snapshot", """{"data-collections": ["public.a", "s.b"], "type": "INCREMENTAL"}""", null)]
    [InlineData("execute-snapshot", """{"data-collections": ["public.a"]}""", null)]
    [InlineData("stop-snapshot", """{}""", "type 'stop-snapshot' is not supported")]
    [InlineData("execute-snapshot", """{"data-collections": ["public.a"], "type": "blocking"}""", "'blocking' is not supported")]
    [InlineData("execute-snapshot", """{"data-collections": ["public.a"], "additional-conditions": []}""", "'additional-conditions'")]
    [InlineData("execute-snapshot", """{"data-collections": []}""", "lists no table")]
    [InlineData("execute-snapshot", """not json""", "not valid JSON")]
    public void Signals_in_debeziums_shape_are_read_and_anything_else_is_an_error(string type, string data, string? problem)
    {
        var request = SignalTable.Parse("id-1", type, data, out var found);
        if (problem is null)
        {
            Assert.NotNull(request);
            Assert.Equal("id-1", request.Signal);
            Assert.Contains("public.a", request.Tables);
        }
        else
        {
            Assert.Null(request);
            Assert.Contains(problem, found, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void The_chunk_query_reads_in_key_order_after_the_last_key_with_the_key_text_appended_and_literals_escaped()
    {
        var relation = new PgRelation(1, "public", "t", 'd', [new PgColumn("region", 25, -1, true), new PgColumn("no", 20, -1, true), new PgColumn("doc", 3802, -1, false)]);
        var table = new SnapshotTable(relation, ["region", "no"], false, 10, 1000, "no > 0");
        var range = table.KeyedCopyCommand(["region", "no"], ["o'hare\\x", "7"], null, 500);
        Assert.Equal("COPY (SELECT \"region\", \"no\", \"doc\", \"region\"::text AS _walbridge_key_0, \"no\"::text AS _walbridge_key_1 FROM ONLY \"public\".\"t\" " +
            "WHERE (\"region\", \"no\") > (E'o''hare\\\\x', E'7') AND (no > 0) ORDER BY \"region\", \"no\" LIMIT 500) TO STDOUT (FORMAT binary)", range);
        var retry = table.KeyedCopyCommand(["region", "no"], ["eu", "9"], [["eu", "1"], ["us", "2"]], 500);
        Assert.Contains("WHERE (\"region\", \"no\") IN ((E'eu', E'1'), (E'us', E'2')) AND (\"region\", \"no\") <= (E'eu', E'9')", retry, StringComparison.Ordinal);
    }

    [Fact]
    public void The_incremental_progress_round_trips_through_the_offsets_record()
    {
        var state = new IncrementalSnapshotState(
            [new IncrementalTableState("public.t", "sig", Lsn.Parse("0/1A2B"), ["o\"k", null], 12, [["1", "2"]]) { Exhausted = true }], ["sig", "other"]);
        var record = new OffsetRecord(Lsn.Parse("0/100"), Lsn.Parse("0/108"), 7, s_time, 1, new SourceIdentity("1", 1, "s", "p"), s_time) { Incremental = state };
        var back = OffsetRecord.FromBytes(record.ToBytes()).Incremental!;
        var table = Assert.Single(back.Tables);
        Assert.Equal(["o\"k", null], table.LastKey);
        Assert.Equal(Lsn.Parse("0/1A2B"), table.Lsn);
        Assert.True(table.Exhausted);
        Assert.Equal(["1", "2"], table.Retry[0]);
        Assert.Equal(["sig", "other"], back.Signals);
        Assert.Equal(IncrementalSnapshotState.MaxSignals, Enumerable.Range(0, 1500).Aggregate(IncrementalSnapshotState.Empty, (s, i) => s.WithSignal($"s{i}")).Signals.Count);
    }

    [Fact]
    public void The_signal_settings_are_checked()
    {
        var values = Values();
        values["signal.data.collection"] = "just_a_table";
        var error = Assert.Throws<ConfigurationException>(() => ConnectorConfig.FromDictionary(values));
        Assert.Contains("signal.data.collection", error.Message, StringComparison.Ordinal);
        values["signal.data.collection"] = "public.signals";
        values["incremental.snapshot.chunk.size"] = "0";
        Assert.Contains("incremental.snapshot.chunk.size", Assert.Throws<ConfigurationException>(() => ConnectorConfig.FromDictionary(values)).Message, StringComparison.Ordinal);
        values.Remove("incremental.snapshot.chunk.size");
        var config = ConnectorConfig.FromDictionary(values);
        Assert.Equal("public.signals", config.SignalDataCollection);
        Assert.Equal(1024, config.IncrementalChunkSize);
    }
}
