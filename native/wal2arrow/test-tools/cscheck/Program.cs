// wal2arrow cross-check against the C# reference (ChangeBatchBuilder), read with the official Apache.Arrow C# reader.
// Input: two files of "LSN<TAB>HEX" lines from pg_logical_slot_get_binary_changes of two slots
// created at the same point: one pgoutput (proto_version 1, text format, session settings of
// WalBridge's replication connection), one wal2arrow (framing version 2, max_bytes 0, PARTITIONS
// partitions). The pgoutput messages are fed to ChangeBatchBuilders like the connector does: one per
// table and partition, each row to the partition of its key (PartitionKey over the key columns'
// pgoutput text: an insert's and update's new row, a delete's old key/row; partition 0 for a table
// without a key), SetTransaction from Begin, a truncate row in every partition (AppendTruncateRow),
// Type names, schema changes inside a transaction (each partition's rows of the old schema first).
// The two encoders lay out their bytes differently (the plugin has its own IPC writer, the
// connector Apache.Arrow's), so every resulting stream and the plugin's chunk for the same
// transaction, table and partition -- its Relation message's schema message + its record batch +
// the end-of-stream marker -- are both read with Apache.Arrow's ArrowStreamReader (arrow.uuid
// through its extension registry) and must mean the same: the same schema (names, types,
// nullability, field and schema metadata in order: their canonical texts are equal), the same
// fingerprint (the chunk header's, ChangeBatchBuilder.SchemaFingerprint and the one recomputed from
// the schema Apache.Arrow read), one record batch each, the same row count (also the header's) and
// every value of every column equal, validity included, nested ones (_before, _unchanged, _special,
// lists) too; floats and decimals compare by their bytes. Comparing per partition checks the
// partition of every row. Then the pass-through property on both sides: per table, partition and
// schema, the schema message + the record batches of all transactions + EOS read as one stream, the
// two sides equal batch by batch. A third file holds the tables' primary keys as the connector's
// PrimaryKeyCatalog reads them ("RELID<TAB>COLUMN<TAB>COLUMN..." in index order): under REPLICA
// IDENTITY FULL the key flags become the primary key's, as TransactionAssembler.OnRelation does. An
// update's unchanged TOAST values are filled from a whole old row ('O'), as
// TransactionAssembler.OnUpdate/AppendTuple do. Prints one line per compared chunk; exit 1 on a
// difference.
//   wal2arrow-cscheck PGOUTPUT WAL2ARROW PRIMARY_KEYS [PARTITIONS]
//   wal2arrow-cscheck --read HEXFILE...   every chunk of wal2arrow messages (one hex message per line,
//       as js-check.sh extracts them) read with Apache.Arrow behind its Relation's schema message:
//       schema fingerprint recomputed and equal to the header's, one batch, the header's row count,
//       every value readable
using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Apache.Arrow;
using Apache.Arrow.Arrays;
using Apache.Arrow.Types;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;

if (args.Length > 0 && args[0] == "--read")
{
    return ReadChunks(args[1..]);
}

static ulong ParseLsn(string s)
{
    var parts = s.Split('/');
    return (Convert.ToUInt64(parts[0], 16) << 32) | Convert.ToUInt64(parts[1], 16);
}

static List<(ulong Lsn, byte[] Data)> Load(string path) =>
    File.ReadAllLines(path).Where(l => l.Length > 0)
        .Select(l => l.Split('\t'))
        .Select(p => (ParseLsn(p[0]), Convert.FromHexString(p[1])))
        .ToList();

var pg = Load(args[0]);
var w2a = Load(args[1]);
var primaryKeys = File.ReadAllLines(args[2]).Where(l => l.Length > 0)
    .Select(l => l.Split('\t'))
    .ToDictionary(p => uint.Parse(p[0]), p => (IReadOnlyList<string>)p[1..]);

var partitions = args.Length > 3 ? int.Parse(args[3]) : 1;

// ---- expected chunks from pgoutput + ChangeBatchBuilder: per transaction, (relid, partition) -> chunks
var expected = new List<List<Chunk>>();
var types = new Dictionary<uint, string>();
var relations = new Dictionary<uint, RelState>();
var partitionKey = new PartitionKey();
List<Chunk>? txn = null;
var pending = new List<(uint Relid, int Partition)>();   // touched in this transaction, first-touch order
(uint Xid, ulong CommitLsn, long CommitMicros) current = default;
var expectedStreams = new Dictionary<(uint, int, string), StreamParts>();   // the pass-through property, C# side

ChangeBatchBuilder Part(RelState r, int p)
{
    r.Parts[p] ??= new ChangeBatchBuilder(r.Relation);
    r.Parts[p]!.SetTransaction(current.Xid, current.CommitLsn, current.CommitMicros);
    if (!pending.Contains((r.Relation.RelationId, p)))
    {
        pending.Add((r.Relation.RelationId, p));
    }

    return r.Parts[p]!;
}

void Flush(uint relid, int p)
{
    var b = relations[relid].Parts[p]!;
    var rows = b.RowCount;
    var w = new ArrayBufferWriter<byte>();
    b.WriteStream(w);
    var stream = w.WrittenSpan.ToArray();
    txn!.Add(new Chunk(relid, p, b.SchemaFingerprint, rows, stream));
    var key = (relid, p, b.SchemaFingerprint);
    if (!expectedStreams.TryGetValue(key, out var parts))
    {
        expectedStreams[key] = parts = new StreamParts(b.SchemaMessage.ToArray());
    }

    // the stream's record batch: between the schema message and the end-of-stream marker
    parts.Batches.Add(stream[b.SchemaMessage.Length..^ArrowMessageWriter.EndOfStream.Length]);
}

var rowsPerPartition = new int[partitions];
foreach (var (lsn, d) in pg)
{
    var pos = 1;
    uint U32() { var v = BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(pos)); pos += 4; return v; }
    int I32() { var v = BinaryPrimitives.ReadInt32BigEndian(d.AsSpan(pos)); pos += 4; return v; }
    ulong U64() { var v = BinaryPrimitives.ReadUInt64BigEndian(d.AsSpan(pos)); pos += 8; return v; }
    ushort U16() { var v = BinaryPrimitives.ReadUInt16BigEndian(d.AsSpan(pos)); pos += 2; return v; }
    string CStr() { var e = System.Array.IndexOf(d, (byte)0, pos); var s = Encoding.UTF8.GetString(d, pos, e - pos); pos = e + 1; return s; }
    // a tuple's columns (kind, offset, length), pos after it
    List<(byte Kind, int Pos, int Len)> Columns()
    {
        int n = U16();
        var columns = new List<(byte Kind, int Pos, int Len)>(n);
        for (var i = 0; i < n; i++)
        {
            var k = d[pos++];
            var len = 0;
            if (k is (byte)'t' or (byte)'b')
            {
                len = I32();
            }

            columns.Add((k, pos, len));
            pos += len;
        }

        return columns;
    }
    // fill: the old tuple's columns of an 'O' update, as TransactionAssembler.AppendTuple's
    // fullOldRow: an unchanged TOAST value ('u') of the new row takes the old row's value when that
    // one is a value ('t' or 'b')
    List<(byte Kind, int Pos, int Len)> Filled(List<(byte Kind, int Pos, int Len)> columns, List<(byte Kind, int Pos, int Len)>? fill) =>
        fill is null || fill.Count != columns.Count
            ? columns
            : columns.Select((c, i) => c.Kind == (byte)'u' && fill[i].Kind is (byte)'t' or (byte)'b' ? fill[i] : c).ToList();
    void Append(ChangeBatchBuilder b, List<(byte Kind, int Pos, int Len)> columns)
    {
        foreach (var (k, p, len) in columns)
        {
            switch ((char)k)
            {
                case 'n': b.AppendNull(); break;
                case 'u': b.AppendUnchangedToast(); break;
                case 't':
                case 'b':
                    b.AppendValue(d.AsSpan(p, len), k == 't' ? TupleFormat.Text : TupleFormat.Binary);
                    break;
                default: throw new InvalidOperationException($"tuple kind {(char)k}");
            }
        }
    }
    // the row's partition (README.md, "Partitions"): PartitionKey over the key columns' pgoutput
    // text (null and unchanged TOAST as null); 0 without a key
    int PartitionOf(RelState r, List<(byte Kind, int Pos, int Len)> columns)
    {
        if (partitions == 1 || r.KeyColumns.Length == 0)
        {
            return 0;
        }

        partitionKey.Begin();
        foreach (var c in r.KeyColumns)
        {
            if (columns[c].Kind == (byte)'t')
            {
                partitionKey.AddText(d.AsSpan(columns[c].Pos, columns[c].Len));
            }
            else
            {
                partitionKey.AddNull();
            }
        }

        partitionKey.End();
        return partitionKey.Partition(partitions);
    }
    switch ((char)d[0])
    {
        case 'B':
        {
            var finalLsn = U64();
            var commitTime = (long)U64();
            var xid = U32();
            current = (xid, finalLsn, commitTime + 946684800000000L);
            txn = [];
            pending.Clear();
            break;
        }
        case 'C':
            foreach (var (relid, p) in pending)
            {
                if (relations[relid].Parts[p] is { RowCount: > 0 })
                {
                    Flush(relid, p);
                }
            }
            expected.Add(txn!);
            txn = null;
            break;
        case 'Y':
        {
            var oid = U32();
            var nsp = CStr();
            var name = CStr();
            // as TransactionAssembler.OnType, reading pgoutput's empty namespace (pg_catalog) as "pg_catalog"
            types[oid] = $"{(nsp.Length == 0 ? "pg_catalog" : nsp)}.{name}";
            Console.WriteLine($"pgoutput Type message: oid {oid} namespace \"{nsp}\" name \"{name}\"");
            break;
        }
        case 'R':
        {
            var relid = U32();
            string nsp = CStr(), rel = CStr();
            var ident = (char)d[pos++];
            int n = U16();
            var cols = new List<PgColumn>();
            for (var i = 0; i < n; i++)
            {
                var flags = d[pos++];
                var name = CStr();
                var typoid = U32();
                var typmod = I32();
                cols.Add(new PgColumn(name, typoid, typmod, (flags & 1) != 0, types.TryGetValue(typoid, out var tn) ? tn : null));
            }
            // as TransactionAssembler.OnRelation: under REPLICA IDENTITY FULL pgoutput flags every
            // column as key; use the real primary key when the table has one
            var keyless = false;
            if (ident == 'f')
            {
                if (primaryKeys.TryGetValue(relid, out var key) && key.Count > 0)
                {
                    cols = cols.Select(c => c with { IsKey = key.Contains(c.Name) }).ToList();
                }
                else
                {
                    keyless = true;   // the whole row is the identity: no partition key
                }
            }

            var relation = new PgRelation(relid, nsp, rel, ident, cols);
            if (relations.TryGetValue(relid, out var existing))
            {
                if (existing.Relation.Schema == relation.Schema && existing.Relation.Table == relation.Table
                    && existing.Relation.ReplicaIdentity == relation.ReplicaIdentity && existing.Relation.Columns.SequenceEqual(relation.Columns))
                {
                    break;
                }

                // a schema change: every partition's rows of the old schema go out first
                for (var p = 0; p < partitions; p++)
                {
                    if (existing.Parts[p] is { RowCount: > 0 } && txn is not null)
                    {
                        Flush(relid, p);
                    }
                }
            }
            var keyColumns = keyless ? [] : cols.Select((c, i) => (c, i)).Where(x => x.c.IsKey).Select(x => x.i).ToArray();
            relations[relid] = new RelState(relation, new ChangeBatchBuilder?[partitions], keyColumns);
            break;
        }
        case 'I':
        {
            var r = relations[U32()];
            pos++; // 'N'
            var columns = Columns();
            var p = PartitionOf(r, columns);
            var b = Part(r, p);
            rowsPerPartition[p]++;
            b.BeginRow(ChangeOp.Insert, lsn);
            Append(b, columns);
            b.EndRow();
            break;
        }
        case 'U':
        {
            var r = relations[U32()];
            var kind = d[pos++];
            List<(byte Kind, int Pos, int Len)>? old = null;
            if (kind is (byte)'K' or (byte)'O')
            {
                old = Columns();
                pos++; // 'N'
            }
            // as TransactionAssembler.OnUpdate: only the whole old row ('O', REPLICA IDENTITY FULL) fills
            var columns = Filled(Columns(), kind == (byte)'O' ? old : null);
            var p = PartitionOf(r, columns);   // the new key's partition
            if (old is not null && PartitionOf(r, old) is var from && from != p)
            {
                // the key moved to another partition: that one gets a delete of the old key first
                var gone = Part(r, from);
                rowsPerPartition[from]++;
                gone.BeginRow(ChangeOp.Delete, lsn);
                Append(gone, old);
                gone.EndRow();
            }
            var b = Part(r, p);
            rowsPerPartition[p]++;
            b.BeginRow(ChangeOp.Update, lsn);
            Append(b, columns);
            if (old is not null)
            {
                b.BeginBefore();
                Append(b, old);
            }
            b.EndRow();
            break;
        }
        case 'D':
        {
            var r = relations[U32()];
            pos++; // 'K' or 'O'
            var columns = Columns();
            var p = PartitionOf(r, columns);   // the old key's partition
            var b = Part(r, p);
            rowsPerPartition[p]++;
            b.BeginRow(ChangeOp.Delete, lsn);
            Append(b, columns);
            b.EndRow();
            break;
        }
        case 'T':
        {
            var n = I32();
            var options = d[pos++];
            var text = Encoding.UTF8.GetBytes(string.Join(",",
                new[] { (options & 1) != 0 ? "cascade" : null, (options & 2) != 0 ? "restart_identity" : null }.Where(o => o is not null)));
            for (var i = 0; i < n; i++)
            {
                var r = relations[U32()];
                // a truncate row in every partition
                for (var p = 0; p < partitions; p++)
                {
                    Part(r, p).AppendTruncateRow(lsn, text);
                }
            }
            break;
        }
        case 'O': case 'M':
            break;
        default:
            throw new InvalidOperationException($"pgoutput message {(char)d[0]}");
    }
}

// ---- the plugin's chunks, per transaction; each one read as its Relation's schema message + its record batch + EOS
var actual = new List<List<Chunk>>();
var actualStreams = new Dictionary<(uint, int, string), StreamParts>();
var schemaMessages = new Dictionary<uint, byte[]>();
List<Chunk>? cur = null;
foreach (var (_, d) in w2a)
{
    switch ((char)d[0])
    {
        case 'B': cur = []; break;
        case 'C': actual.Add(cur!); cur = null; break;
        case 'R':
            schemaMessages[BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(1))] = RelationSchemaMessage(d);
            break;
        case 'A':
        {
            var (relid, partition, fp, rows, batch) = ParseChunk(d);
            var schema = schemaMessages[relid];
            cur!.Add(new Chunk(relid, partition, fp, rows, [.. schema, .. batch, .. ArrowMessageWriter.EndOfStream]));
            if (!actualStreams.TryGetValue((relid, partition, fp), out var parts))
            {
                actualStreams[(relid, partition, fp)] = parts = new StreamParts(schema);
            }

            parts.Batches.Add(batch);
            break;
        }
    }
}

int failures = 0, compared = 0;
if (expected.Count != actual.Count)
{
    Console.WriteLine($"FAIL: pgoutput has {expected.Count} transactions with changes, wal2arrow {actual.Count}");
    failures++;
}
for (var t = 0; t < Math.Min(expected.Count, actual.Count); t++)
{
    foreach (var (relid, partition) in expected[t].Select(c => (c.Relid, c.Partition)).Concat(actual[t].Select(c => (c.Relid, c.Partition))).Distinct())
    {
        var e = expected[t].Where(c => c.Relid == relid && c.Partition == partition).ToList();
        var a = actual[t].Where(c => c.Relid == relid && c.Partition == partition).ToList();
        var name = relations.TryGetValue(relid, out var rs) ? rs.Relation.Table : relid.ToString();
        if (e.Count != a.Count)
        {
            Console.WriteLine($"FAIL: txn {t} rel {name} partition {partition}: {e.Count} C# chunks, {a.Count} wal2arrow chunks");
            failures++;
            continue;
        }
        for (var i = 0; i < e.Count; i++)
        {
            compared++;
            var problems = new List<string>();
            if (e[i].Rows != a[i].Rows)
            {
                problems.Add($"header rows {e[i].Rows} vs {a[i].Rows}");
            }

            if (e[i].Fp != a[i].Fp)
            {
                problems.Add($"fingerprint {e[i].Fp} vs {a[i].Fp}");
            }

            problems.AddRange(CompareStreams(e[i].Stream, a[i].Stream, e[i].Fp, a[i].Fp, a[i].Rows));
            var same = problems.Count == 0;
            Console.WriteLine($"{(same ? "same" : "DIFF")} txn {t} {name} partition {partition} chunk {i} rows {a[i].Rows} bytes {e[i].Stream.Length}/{a[i].Stream.Length} fp {a[i].Fp}");
            if (!same)
            {
                failures++;
                foreach (var problem in problems.Take(20))
                {
                    Console.WriteLine("  " + problem);
                }

                File.WriteAllBytes($"/tmp/wal2arrow-cscheck-{t}-{name}-{partition}-{i}.cs.arrow", e[i].Stream);
                File.WriteAllBytes($"/tmp/wal2arrow-cscheck-{t}-{name}-{partition}-{i}.w2a.arrow", a[i].Stream);
            }
        }
    }
}

// The pass-through property: per table, partition and schema, the schema message, the record batches of
// every transaction in order and the end-of-stream marker make one stream, on both sides.
var streamsCompared = 0;
foreach (var key in expectedStreams.Keys.Union(actualStreams.Keys))
{
    var (relid, partition, fp) = key;
    var name = relations.TryGetValue(relid, out var rs) ? rs.Relation.Table : relid.ToString();
    if (!expectedStreams.TryGetValue(key, out var e) || !actualStreams.TryGetValue(key, out var a))
    {
        Console.WriteLine($"FAIL: {name} partition {partition} schema {fp}: only on the {(expectedStreams.ContainsKey(key) ? "C#" : "wal2arrow")} side");
        failures++;
        continue;
    }

    streamsCompared++;
    var problems = CompareStreams(e.Concatenated(), a.Concatenated(), fp, fp, a.Batches.Count == 0 ? 0 : -1, e.Batches.Count);
    if (problems.Count > 0)
    {
        failures++;
        Console.WriteLine($"DIFF {name} partition {partition} schema {fp}: {a.Batches.Count} batches concatenated");
        foreach (var problem in problems.Take(20))
        {
            Console.WriteLine("  " + problem);
        }
    }
}

Console.WriteLine($"cscheck: rows per partition (of {partitions}, truncate rows not counted): {string.Join(", ", rowsPerPartition)}");
if (partitions > 1 && rowsPerPartition.Any(c => c == 0))
{
    Console.WriteLine("FAIL: a partition got no row");
    failures++;
}
Console.WriteLine(failures == 0
    ? $"cscheck: {compared} chunks ({partitions} partition(s)) read with Apache.Arrow {typeof(Apache.Arrow.Ipc.ArrowStreamReader).Assembly.GetName().Version}: same schema, fingerprint, rows, values and partitions as ChangeBatchBuilder's; {streamsCompared} concatenated streams (schema + batches of all transactions + EOS) the same"
    : $"cscheck: {failures} differences");
return failures == 0 ? 0 : 1;

// The schema message at the end of a wal2arrow Relation message (framing version 2).
static byte[] RelationSchemaMessage(byte[] d)
{
    var pos = 14;
    pos += 2 + BinaryPrimitives.ReadUInt16BigEndian(d.AsSpan(pos));   // schema name
    pos += 2 + BinaryPrimitives.ReadUInt16BigEndian(d.AsSpan(pos));   // table name
    pos += 2;                                                          // column count
    var length = (int)BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(pos));
    if (length != d.Length - pos - 4)
    {
        throw new InvalidOperationException($"Relation message: schema message length {length}, {d.Length - pos - 4} bytes follow");
    }

    return d[(pos + 4)..];
}

// A wal2arrow chunk message (framing version 2): header and its record batch.
static (uint Relid, int Partition, string Fp, int Rows, byte[] Batch) ParseChunk(byte[] d)
{
    if (d[1] != 0)
    {
        throw new InvalidOperationException($"chunk kind {d[1]}");
    }

    var length = (int)BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(27));
    if (length != d.Length - 31)
    {
        throw new InvalidOperationException($"chunk: record batch length {length}, {d.Length - 31} bytes follow");
    }

    return (BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(2)), (int)BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(6)),
        Convert.ToHexStringLower(d, 19, 8), (int)BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(15)), d[31..]);
}

// Both streams read with Apache.Arrow and compared by meaning, batch by batch; the list of differences (empty
// when equal). rows: the chunk header's row count (-1: not a single chunk); batches: how many each must hold.
static List<string> CompareStreams(byte[] csStream, byte[] w2aStream, string csFp, string w2aFp, int rows, int batches = 1)
{
    var problems = new List<string>();
    ArrowPayload cs, w2a;
    try
    {
        cs = ArrowPayload.Read(csStream);
    }
    catch (ArrowPayloadException ex)
    {
        return [$"Apache.Arrow cannot read the C# stream: {ex.Message}"];
    }
    try
    {
        w2a = ArrowPayload.Read(w2aStream);
    }
    catch (ArrowPayloadException ex)
    {
        return [$"Apache.Arrow cannot read the wal2arrow stream: {ex.Message}"];
    }

    var csText = SchemaFingerprint.CanonicalText(cs.Schema).Split('\n');
    var w2aText = SchemaFingerprint.CanonicalText(w2a.Schema).Split('\n');
    for (var k = 0; k < Math.Max(csText.Length, w2aText.Length); k++)
    {
        string? x = k < csText.Length ? csText[k] : null, y = k < w2aText.Length ? w2aText[k] : null;
        if (x != y)
        {
            problems.Add($"schema differs at canonical line {k + 1}: C# \"{x}\" vs wal2arrow \"{y}\"");
            break;
        }
    }
    if (SchemaFingerprint.Compute(w2a.Schema) != w2aFp)
    {
        problems.Add($"wal2arrow header fingerprint {w2aFp} but its schema (read by Apache.Arrow) gives {SchemaFingerprint.Compute(w2a.Schema)}");
    }

    if (SchemaFingerprint.Compute(cs.Schema) != csFp)
    {
        problems.Add($"ChangeBatchBuilder.SchemaFingerprint {csFp} but its schema (read by Apache.Arrow) gives {SchemaFingerprint.Compute(cs.Schema)}");
    }

    if (cs.Batches.Count != batches || w2a.Batches.Count != batches)
    {
        problems.Add($"record batches: C# {cs.Batches.Count}, wal2arrow {w2a.Batches.Count} ({batches} each expected)");
        return problems;
    }
    for (var i = 0; i < batches; i++)
    {
        problems.AddRange(CompareBatches(cs.Batches[i], w2a.Batches[i], w2a.Schema, rows).Select(p => batches == 1 ? p : $"batch {i}: {p}"));
    }

    return problems;
}

static List<string> CompareBatches(RecordBatch eb, RecordBatch ab, Schema schema, int rows)
{
    var problems = new List<string>();
    if (eb.Length != ab.Length || (rows >= 0 && ab.Length != rows))
    {
        problems.Add($"rows: C# {eb.Length}, wal2arrow {ab.Length}, header {rows}");
    }

    if (eb.ColumnCount != ab.ColumnCount)
    {
        problems.Add($"columns: C# {eb.ColumnCount}, wal2arrow {ab.ColumnCount}");
        return problems;
    }
    for (var c = 0; c < eb.ColumnCount; c++)
    {
        var field = schema.GetFieldByIndex(c).Name;
        var (x, y) = (eb.Column(c), ab.Column(c));
        if (x.GetType() != y.GetType())
        {
            problems.Add($"column {c} '{field}': Apache.Arrow array {x.GetType().Name} vs {y.GetType().Name}");
        }

        if (x.NullCount != y.NullCount)
        {
            problems.Add($"column {c} '{field}': null count {x.NullCount} vs {y.NullCount}");
        }

        for (var r = 0; r < Math.Min(eb.Length, ab.Length); r++)
        {
            string? cx = Cell(x, r), cy = Cell(y, r);
            if (cx != cy)
            {
                problems.Add($"column {c} '{field}' row {r}: C# {Short(cx)} vs wal2arrow {Short(cy)}");
            }
        }
    }
    return problems;
}

static string Short(string? cell) => cell is null ? "null" : cell.Length > 120 ? cell[..120] + $"…({cell.Length})" : cell;

// A value (nested ones included) as exact text: null, bytes in hex for fixed-width and binary values.
static string? Cell(IArrowArray array, int i)
{
    if (array is ExtensionArray extension)
    {
        return Cell(extension.Storage, i);
    }

    if (array.IsNull(i))
    {
        return null;
    }

    switch (array)
    {
        case BooleanArray b:
            return b.GetValue(i) == true ? "true" : "false";
        case BinaryArray b: // StringArray too: the UTF-8 bytes
            return "0x" + Convert.ToHexStringLower(b.GetBytes(i));
        case FixedSizeBinaryArray f: // decimals, uuid
            return "0x" + Convert.ToHexStringLower(f.GetBytes(i));
        case ListArray l: // MapArray too: a list of entries structs
        {
            var parts = new List<string>();
            for (var k = l.ValueOffsets[i]; k < l.ValueOffsets[i + 1]; k++)
                {
                    parts.Add(Cell(l.Values, k) ?? "null");
                }

                return "[" + string.Join(",", parts) + "]";
        }
        case StructArray s:
            return "{" + string.Join(",", s.Fields.Select(child => Cell(child, i) ?? "null")) + "}";
    }
    if (array.Data.DataType is FixedWidthType fixedWidth)
    {
        var width = fixedWidth.BitWidth / 8;
        return "0x" + Convert.ToHexStringLower(array.Data.Buffers[1].Span.Slice((array.Data.Offset + i) * width, width));
    }
    throw new NotSupportedException($"no comparison for Arrow type {array.Data.DataType.Name}");
}

// --read: every Arrow chunk of the given hex message files read with Apache.Arrow.
static int ReadChunks(string[] files)
{
    int chunks = 0, failures = 0;
    foreach (var file in files)
    {
        var schemas = new Dictionary<uint, byte[]>();   // per relid: the schema message of its latest Relation message
        foreach (var line in File.ReadAllLines(file).Where(l => l.Length > 0))
        {
            var hex = line.Contains('\t') ? line[(line.LastIndexOf('\t') + 1)..] : line;
            var d = Convert.FromHexString(hex.Trim());
            if (d[0] == (byte)'R')
            {
                schemas[BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(1))] = RelationSchemaMessage(d);
                continue;
            }

            if (d[0] != (byte)'A')
            {
                continue;
            }

            chunks++;
            try
            {
                var (relid, _, fp, rows, batchMessage) = ParseChunk(d);
                var payload = ArrowPayload.Read((byte[])[.. schemas[relid], .. batchMessage, .. ArrowMessageWriter.EndOfStream]);
                var problems = new List<string>();
                if (SchemaFingerprint.Compute(payload.Schema) != fp)
                {
                    problems.Add($"header fingerprint {fp}, schema gives {SchemaFingerprint.Compute(payload.Schema)}");
                }

                if (payload.Batches.Count != 1)
                {
                    problems.Add($"{payload.Batches.Count} record batches");
                }

                if (payload.RowCount != rows)
                {
                    problems.Add($"header rows {rows}, batch rows {payload.RowCount}");
                }

                foreach (var batch in payload.Batches)
                {
                    for (var c = 0; c < batch.ColumnCount; c++)
                    {
                        for (var r = 0; r < batch.Length; r++)
                        {
                            Cell(batch.Column(c), r);
                        }
                    }
                }
                if (problems.Count > 0)
                {
                    failures++;
                    Console.WriteLine($"FAIL: {Path.GetFileName(file)} chunk {chunks}: {string.Join("; ", problems)}");
                }
            }
            catch (Exception ex) when (ex is ArrowPayloadException or NotSupportedException or ArgumentException or InvalidCastException
                or InvalidOperationException or KeyNotFoundException)
            {
                failures++;
                Console.WriteLine($"FAIL: {Path.GetFileName(file)} chunk {chunks}: {ex.Message}");
            }
        }
    }
    Console.WriteLine(failures == 0
        ? $"cscheck --read: {chunks} wal2arrow chunks (their Relation's schema message + the record batch + EOS) read with Apache.Arrow; fingerprints, batches and row counts as their headers say"
        : $"cscheck --read: {failures} of {chunks} chunks failed");
    return failures == 0 && chunks > 0 ? 0 : 1;
}

// One chunk: its table, partition, schema fingerprint, header row count and the whole stream (schema message, record
// batch, end-of-stream marker).
internal sealed record Chunk(uint Relid, int Partition, string Fp, int Rows, byte[] Stream);

// A table on the pgoutput side: its relation, one ChangeBatchBuilder per partition (created on the first row), the
// indexes of its partition key columns (none: every row in partition 0).
internal sealed record RelState(PgRelation Relation, ChangeBatchBuilder?[] Parts, int[] KeyColumns);

// The record batches of a table, partition and schema across transactions, behind its schema message.
internal sealed class StreamParts(byte[] schemaMessage)
{
    public List<byte[]> Batches { get; } = [];

    public byte[] Concatenated() => [.. schemaMessage, .. Batches.SelectMany(b => b), .. ArrowMessageWriter.EndOfStream];
}
