using System.Buffers.Binary;
using System.Text;
using Confluent.Kafka;
using WalBridge.Connector.Configuration;
using WalBridge.Connector.Kafka;
using WalBridge.Connector.Queue;
using WalBridge.Connector.Snapshot;
using WalBridge.Connector.Transactions;
using WalBridge.Connector.Verification;
using WalBridge.Offsets;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Connector.Tests;

/// <summary>The snapshot's parts that need no server: COPY parsing, progress state, chunk plans, header rules, settings.</summary>
public sealed class SnapshotUnitTests
{
    private static readonly Lsn s_lsn = Lsn.Parse("0/16B3748");

    /// <summary>A binary COPY stream: signature, flags, no extension, the rows (null = SQL NULL), the trailer.</summary>
    private static byte[] BinaryCopy(params byte[]?[][] rows)
    {
        var stream = new MemoryStream();
        stream.Write([(byte)'P', (byte)'G', (byte)'C', (byte)'O', (byte)'P', (byte)'Y', (byte)'\n', 0xFF, (byte)'\r', (byte)'\n', 0]);
        stream.Write(new byte[8]);
        var scratch = new byte[4];
        foreach (var row in rows)
        {
            BinaryPrimitives.WriteInt16BigEndian(scratch, (short)row.Length);
            stream.Write(scratch, 0, 2);
            foreach (var value in row)
            {
                BinaryPrimitives.WriteInt32BigEndian(scratch, value?.Length ?? -1);
                stream.Write(scratch, 0, 4);
                if (value is not null)
                {
                    stream.Write(value);
                }
            }
        }

        BinaryPrimitives.WriteInt16BigEndian(scratch, -1);
        stream.Write(scratch, 0, 2);
        return stream.ToArray();
    }

    /// <summary>Hands out at most <paramref name="step"/> bytes per read, so rows and the header arrive in pieces.</summary>
    private sealed class TrickleStream(byte[] data, int step) : MemoryStream(data)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(step, buffer.Length)], cancellationToken);
    }

    private static async Task<List<byte[]>> ReadAllAsync(Stream stream, bool[] text)
    {
        using var reader = new CopyTupleReader(stream, text, "public.t", s_lsn);
        var tuples = new List<byte[]>();
        while (true)
        {
            while (reader.TryNext(out var tuple))
            {
                tuples.Add(tuple.ToArray());
            }

            if (reader.Ended || !await reader.FillAsync(CancellationToken.None))
            {
                while (reader.TryNext(out var tuple))
                {
                    tuples.Add(tuple.ToArray());
                }

                Assert.True(reader.Ended, "the trailer must end the stream");
                return tuples;
            }
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(1 << 20)]
    public async Task Binary_copy_rows_become_pgoutput_tuple_images_whatever_the_read_sizes(int step)
    {
        var one = new byte[] { 0, 0, 0, 42 };
        var label = Encoding.UTF8.GetBytes("héllo");
        var data = BinaryCopy([one, label, null], [one, [], Encoding.UTF8.GetBytes("x")]);
        var tuples = await ReadAllAsync(new TrickleStream(data, step), [false, true, false]);

        Assert.Equal(2, tuples.Count);
        // count 3; 'b' int32 4 + value; 't' int32 6 + "héllo"; 'n'.
        var first = new List<byte> { 0, 3, (byte)'b', 0, 0, 0, 4, 0, 0, 0, 42, (byte)'t', 0, 0, 0, 6 };
        first.AddRange(label);
        first.Add((byte)'n');
        Assert.Equal(first.ToArray(), tuples[0]);
        Assert.Equal(new byte[] { 0, 3, (byte)'b', 0, 0, 0, 4, 0, 0, 0, 42, (byte)'t', 0, 0, 0, 0, (byte)'b', 0, 0, 0, 1, (byte)'x' }, tuples[1]);
    }

    [Fact]
    public async Task A_row_larger_than_the_read_buffer_is_read_whole()
    {
        var big = new byte[3 << 20];
        big.AsSpan().Fill(7);
        var tuples = await ReadAllAsync(new MemoryStream(BinaryCopy([big])), [false]);
        Assert.Single(tuples);
        Assert.Equal(2 + 5 + big.Length, tuples[0].Length);
    }

    [Fact]
    public async Task Malformed_copy_data_names_the_table_and_the_snapshot_lsn()
    {
        var data = BinaryCopy([[1, 2, 3, 4]]);
        data[0] = (byte)'X';
        var error = await Assert.ThrowsAsync<Errors.ReplicationProtocolException>(() => ReadAllAsync(new MemoryStream(data), [false]));
        Assert.Contains("public.t", error.Message, StringComparison.Ordinal);
        Assert.Contains(s_lsn.ToString(), error.Message, StringComparison.Ordinal);

        var wrongWidth = await Assert.ThrowsAsync<Errors.ReplicationProtocolException>(() => ReadAllAsync(new MemoryStream(BinaryCopy([[1], [2]])), [false]));
        Assert.Contains("2 columns, 1 expected", wrongWidth.Message, StringComparison.Ordinal);

        var truncated = BinaryCopy([[1, 2, 3, 4]])[..^4];
        await Assert.ThrowsAsync<Xunit.Sdk.TrueException>(() => ReadAllAsync(new MemoryStream(truncated), [false]));
    }

    [Fact]
    public void Done_chunks_merge_into_ranges_and_count_rows()
    {
        var table = new SnapshotTableState("public.t", 10, 100, [], 0, 1000);
        table = table.WithDone(3, 10).WithDone(1, 20).WithDone(2, 30).WithDone(7, 1);
        Assert.Equal([[1, 3], [7, 7]], table.Done.Select(r => r.ToArray()).ToArray());
        Assert.Equal(4, table.DoneCount);
        Assert.Equal(61, table.Rows);
        Assert.True(table.IsDone(2));
        Assert.False(table.IsDone(0));
        Assert.False(table.IsDone(6));
    }

    [Fact]
    public async Task Progress_follows_commits_of_the_plan_chunks_and_the_end()
    {
        var progress = new SnapshotProgress();
        var plan = new SnapshotState(s_lsn, DateTimeOffset.UnixEpoch, false, true, [new SnapshotTableState("public.t", 2, 5, [], 0, 10)]);
        TransactionGroup Group(SnapshotPart part) => new() { Transactions = [], Tables = [], Messages = [], Position = s_lsn, Snapshot = part };

        Assert.Throws<InvalidOperationException>(() => progress.After([Group(new SnapshotPart { Lsn = s_lsn, Table = "public.t", Chunk = 0 })]));
        var begun = progress.After([Group(new SnapshotPart { Lsn = s_lsn, Begins = plan })]);
        Assert.Same(plan, begun);
        Assert.Null(progress.Committed);
        progress.OnCommitted(begun);

        var chunk = progress.After([Group(new SnapshotPart { Lsn = s_lsn, Table = "public.t", Chunk = 1, Rows = 4 })]);
        Assert.True(chunk!.Tables[0].IsDone(1));
        Assert.False(progress.Committed!.Tables[0].IsDone(1));
        var waiting = progress.WaitUntilAsync((state, _) => state?.Tables[0].IsDone(1) == true, CancellationToken.None);
        Assert.False(waiting.IsCompleted);
        progress.OnCommitted(chunk);
        await waiting.WaitAsync(TimeSpan.FromSeconds(5));

        Assert.Throws<InvalidOperationException>(() => progress.After([Group(new SnapshotPart { Lsn = s_lsn, Table = "public.other", Chunk = 0 })]));
        var end = progress.After([Group(new SnapshotPart { Lsn = s_lsn, Completes = true })]);
        Assert.True(end!.Complete);
        progress.OnCommitted(end);
        Assert.Null(progress.Committed);
        Assert.Same(end, progress.LastCompleted);
        await progress.WaitUntilAsync((_, completed) => completed == s_lsn, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
        // A completed snapshot recorded in Kafka is nothing pending.
        progress.Load(end);
        Assert.Null(progress.Committed);
    }

    [Fact]
    public void Offsets_records_carry_the_snapshot_state_through_json()
    {
        var state = new SnapshotState(s_lsn, DateTimeOffset.UnixEpoch, false, true, [new SnapshotTableState("public.t", 4, 25, [[0, 1]], 50, 100)]);
        var record = new OffsetRecord(s_lsn, s_lsn, 0, DateTimeOffset.UnixEpoch, 1, new SourceIdentity("1", 1, "s", "p"), DateTimeOffset.UnixEpoch) { Snapshot = state };
        var json = Encoding.UTF8.GetString(record.ToBytes());
        Assert.Contains("\"snapshot\":{\"lsn\":\"0/16B3748\"", json, StringComparison.Ordinal);
        var back = OffsetRecord.FromBytes(record.ToBytes()).Snapshot!;
        Assert.Equal(50, back.Tables[0].Rows);
        Assert.True(back.Tables[0].IsDone(1));
        var plain = record with { Snapshot = null };
        Assert.DoesNotContain("snapshot", Encoding.UTF8.GetString(plain.ToBytes()), StringComparison.Ordinal);
    }

    [Theory]
    // 800 heap bytes per row: about 13,750 rows (12 MiB of Arrow) per chunk instead of 100,000.
    [InlineData(819_200_000L, 73, 1_370)]
    // Rows of a megabyte: never fewer than 1,000 rows per chunk (the spill file takes the rest).
    [InlineData(1_000_000_000_000L, 1_000, 100)]
    // Size unknown: by snapshot.chunk.rows alone.
    [InlineData(0L, 10, 10_000)]
    public void Chunks_of_wide_rows_are_cut_to_fit_the_transaction_memory(long bytes, int chunks, long pagesPerChunk)
    {
        var table = new SnapshotTable(new PgRelation(1, "public", "t", 'd', [new PgColumn("id", 23, -1, true)]), ["id"], false, 100_000, 1_000_000, null, bytes);
        Assert.Equal((chunks, pagesPerChunk), SnapshotCatalog.Plan(table, 100_000, 16L << 20));
    }

    [Theory]
    [InlineData(1_000_000, 10_000, 100_000, 10, 1_000)]
    [InlineData(50_000, 500, 100_000, 1, 0)]
    [InlineData(250_000, 2_500, 100_000, 3, 834)]
    public void Tables_are_cut_into_chunks_of_about_the_configured_rows(long rows, long pages, long chunkRows, int chunks, long pagesPerChunk)
    {
        var table = new SnapshotTable(new PgRelation(1, "public", "t", 'd', [new PgColumn("id", 23, -1, true)]), ["id"], false, pages, rows, null);
        Assert.Equal((chunks, pagesPerChunk), SnapshotCatalog.Plan(table, chunkRows, 16L << 20));
        if (chunks > 1)
        {
            Assert.Contains($"ctid < '({pagesPerChunk},0)'::tid", table.CopyCommand(0, chunks, pagesPerChunk), StringComparison.Ordinal);
            Assert.DoesNotContain("ctid <", table.CopyCommand(chunks - 1, chunks, pagesPerChunk), StringComparison.Ordinal);
        }
    }

    private static Headers SnapshotHeaders(string lsn, int chunk, int piece = 0, bool last = true) => new()
    {
        { KafkaHeaders.Format, "2"u8.ToArray() },
        { KafkaHeaders.Kind, "changes"u8.ToArray() },
        { KafkaHeaders.FirstCommitLsn, Encoding.UTF8.GetBytes(lsn) },
        { KafkaHeaders.CommitLsn, Encoding.UTF8.GetBytes(lsn) },
        { KafkaHeaders.ChunkIndex, Encoding.UTF8.GetBytes(piece.ToString(System.Globalization.CultureInfo.InvariantCulture)) },
        { KafkaHeaders.LastChunk, last ? "true"u8.ToArray() : "false"u8.ToArray() },
        { KafkaHeaders.Snapshot, "read"u8.ToArray() },
        { KafkaHeaders.SnapshotChunk, Encoding.UTF8.GetBytes(chunk.ToString(System.Globalization.CultureInfo.InvariantCulture)) },
    };

    private static Headers Marker(string lsn, string kind) => new()
    {
        { KafkaHeaders.Format, "2"u8.ToArray() },
        { KafkaHeaders.Kind, "snapshot"u8.ToArray() },
        { KafkaHeaders.Snapshot, Encoding.UTF8.GetBytes(kind) },
        { KafkaHeaders.SnapshotLsn, Encoding.UTF8.GetBytes(lsn) },
    };

    [Fact]
    public void Snapshot_records_are_numbered_on_at_their_lsn_and_markers_come_once()
    {
        var sequence = new RecordSequence();
        var violations = new List<string>();
        sequence.Add(Marker("0/100", "start"), "m1", violations);
        sequence.Add(SnapshotHeaders("0/100", 3, 0), "r0", violations);
        sequence.Add(SnapshotHeaders("0/100", 0, 1), "r1", violations);
        sequence.Add(SnapshotHeaders("0/100", 0, 2), "r2", violations);
        sequence.Add(Marker("0/100", "end"), "m2", violations);
        Assert.Empty(violations);

        Assert.True(sequence.Add(SnapshotHeaders("0/100", 1, 1), "again", violations).Duplicate);
        Assert.True(sequence.Add(Marker("0/100", "end"), "again-marker", violations).Duplicate);
        Assert.Equal(2, violations.Count(v => v.StartsWith("duplicate record", StringComparison.Ordinal)));

        var gap = new RecordSequence();
        var gapViolations = new List<string>();
        gap.Add(SnapshotHeaders("0/100", 0, 0), "r0", gapViolations);
        gap.Add(SnapshotHeaders("0/100", 1, 2), "r2", gapViolations);
        Assert.Contains(gapViolations, v => v.Contains("but 1 comes next", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("initial", SnapshotMode.Initial)]
    [InlineData("no_data", SnapshotMode.NoData)]
    [InlineData("initial_only", SnapshotMode.InitialOnly)]
    [InlineData("when_needed", SnapshotMode.WhenNeeded)]
    public void Snapshot_modes_have_debeziums_names(string name, SnapshotMode mode)
    {
        Assert.Equal(mode, SnapshotModes.Parse(name));
        Assert.Equal(name, mode.Name());
        var config = ConnectorConfig.FromDictionary(Settings(("snapshot.mode", name)));
        Assert.Equal(mode, config.SnapshotMode);
    }

    [Fact]
    public void Snapshot_settings_default_and_are_checked()
    {
        var config = ConnectorConfig.FromDictionary(Settings());
        Assert.Equal(SnapshotMode.Initial, config.SnapshotMode);
        Assert.Equal(2, config.SnapshotMaxThreads);
        Assert.Equal(100_000, config.SnapshotChunkRows);
        var mode = Assert.Throws<ConfigurationException>(() => ConnectorConfig.FromDictionary(Settings(("snapshot.mode", "never"))));
        Assert.Contains("initial, no_data, initial_only or when_needed", mode.Message, StringComparison.Ordinal);
        Assert.Throws<ConfigurationException>(() => ConnectorConfig.FromDictionary(Settings(("snapshot.max.threads", "0"))));
        Assert.Throws<ConfigurationException>(() => ConnectorConfig.FromDictionary(Settings(("snapshot.chunk.rows", "5"))));
    }

    private static Dictionary<string, string> Settings(params (string Key, string Value)[] extra)
    {
        var values = new Dictionary<string, string>
        {
            ["name"] = "unit",
            ["database.user"] = "u",
            ["database.dbname"] = "d",
            ["kafka.bootstrap.servers"] = "127.0.0.1:9",
            ["topic.prefix"] = "unit",
        };
        foreach (var (key, value) in extra)
        {
            values[key] = value;
        }

        return values;
    }
}
