// wal2arrow cross-check against the C# reference (ChangeBatchBuilder), read with the official Apache.Arrow C# reader.
// Input: two files of "LSN<TAB>HEX" lines from pg_logical_slot_get_binary_changes of two slots
// created at the same point: one pgoutput (proto_version 1, text format, session settings of
// WalBridge's replication connection), one wal2arrow (max_bytes 0). The pgoutput messages are fed
// to ChangeBatchBuilder like the connector's TransactionAssembler does (Type names, schema changes
// inside a transaction, truncates). The two encoders lay out their bytes differently (the plugin has
// its own IPC writer, the connector Apache.Arrow's), so every resulting stream and the plugin's chunk
// for the same transaction and table are both read with Apache.Arrow's ArrowStreamReader (arrow.uuid
// through its extension registry) and must mean the same: the same schema (names, types,
// nullability, field and schema metadata in order: their canonical texts are equal), the same
// fingerprint (the chunk header's, ChangeBatchBuilder.SchemaFingerprint and the one recomputed from
// the schema Apache.Arrow read), one record batch each, the same row count (also the header's) and
// every value of every column equal, validity included, nested ones (_before, _unchanged, _special,
// lists) too; floats and decimals compare by their bytes. A third file holds the tables' primary keys
// as the connector's PrimaryKeyCatalog reads them ("RELID<TAB>COLUMN<TAB>COLUMN..." in index order):
// under REPLICA IDENTITY FULL the key flags become the primary key's, as
// TransactionAssembler.OnRelation does. An update's unchanged TOAST values are filled from a whole old
// row ('O'), as TransactionAssembler.OnUpdate/AppendTuple do. Prints one line per compared chunk;
// exit 1 on a difference.
//   wal2arrow-cscheck PGOUTPUT WAL2ARROW PRIMARY_KEYS
//   wal2arrow-cscheck --read HEXFILE...   every Arrow chunk of wal2arrow messages (one hex message per
//       line, as js-check.sh extracts them) read with Apache.Arrow: schema fingerprint recomputed and
//       equal to the header's, one batch, the header's row count, every value readable
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

// ---- expected chunks from pgoutput + ChangeBatchBuilder
var expected = new List<List<(uint Relid, byte Kind, string Fp, int Rows, byte[] Stream)>>();
var types = new Dictionary<uint, string>();
var relations = new Dictionary<uint, ChangeBatchBuilder>();
var pending = new List<uint>();   // relids with rows or a truncate in this transaction, first-touch order
List<(uint, byte, string, int, byte[])>? txn = null;

void Flush(uint relid, byte kind)
{
    var b = relations[relid];
    var rows = b.RowCount;
    var w = new ArrayBufferWriter<byte>();
    b.WriteStream(w);
    txn!.Add((relid, kind, b.SchemaFingerprint, kind == 1 ? 0 : rows, w.WrittenSpan.ToArray()));
}

foreach (var (lsn, d) in pg)
{
    var pos = 1;
    uint U32() { var v = BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(pos)); pos += 4; return v; }
    int I32() { var v = BinaryPrimitives.ReadInt32BigEndian(d.AsSpan(pos)); pos += 4; return v; }
    ushort U16() { var v = BinaryPrimitives.ReadUInt16BigEndian(d.AsSpan(pos)); pos += 2; return v; }
    string CStr() { var e = System.Array.IndexOf(d, (byte)0, pos); var s = Encoding.UTF8.GetString(d, pos, e - pos); pos = e + 1; return s; }
    // fill: the old tuple's columns (kind, offset, length) of an 'O' update, as
    // TransactionAssembler.AppendTuple's fullOldRow: an unchanged TOAST value ('u') of the new row
    // takes the old row's value when that one is a value ('t' or 'b')
    void Tuple(ChangeBatchBuilder b, List<(byte Kind, int Pos, int Len)>? fill = null)
    {
        int n = U16();
        for (var i = 0; i < n; i++)
        {
            var k = d[pos++];
            if (k == (byte)'u' && fill is not null && fill.Count == n && fill[i].Kind is (byte)'t' or (byte)'b')
            {
                b.AppendValue(d.AsSpan(fill[i].Pos, fill[i].Len), fill[i].Kind == 't' ? TupleFormat.Text : TupleFormat.Binary);
                continue;
            }
            switch ((char)k)
            {
                case 'n': b.AppendNull(); break;
                case 'u': b.AppendUnchangedToast(); break;
                case 't':
                case 'b':
                    var len = I32();
                    b.AppendValue(d.AsSpan(pos, len), k == 't' ? TupleFormat.Text : TupleFormat.Binary);
                    pos += len;
                    break;
                default: throw new InvalidOperationException($"tuple kind {(char)k}");
            }
        }
    }
    void Touch(uint relid) { if (!pending.Contains(relid)) { pending.Add(relid); } }
    switch ((char)d[0])
    {
        case 'B':
            txn = [];
            pending.Clear();
            break;
        case 'C':
            foreach (var relid in pending)
            {
                if (relations[relid].RowCount > 0)
                {
                    Flush(relid, 0);
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
            if (ident == 'f' && primaryKeys.TryGetValue(relid, out var key) && key.Count > 0)
                {
                    cols = cols.Select(c => c with { IsKey = key.Contains(c.Name) }).ToList();
                }

                var relation = new PgRelation(relid, nsp, rel, ident, cols);
            if (relations.TryGetValue(relid, out var existing))
            {
                if (existing.Relation.Schema == relation.Schema && existing.Relation.Table == relation.Table
                    && existing.Relation.ReplicaIdentity == relation.ReplicaIdentity && existing.Relation.Columns.SequenceEqual(relation.Columns))
                    {
                        break;
                    }

                    if (existing.RowCount > 0 && txn is not null)
                    {
                        Flush(relid, 0);
                    }
                }
            relations[relid] = new ChangeBatchBuilder(relation);
            break;
        }
        case 'I':
        {
            var relid = U32();
            pos++; // 'N'
            var b = relations[relid];
            Touch(relid);
            b.BeginRow(ChangeOp.Insert, lsn);
            Tuple(b);
            b.EndRow();
            break;
        }
        case 'U':
        {
            var relid = U32();
            var b = relations[relid];
            Touch(relid);
            var kind = d[pos++];
            var oldStart = -1;
            var oldColumns = new List<(byte Kind, int Pos, int Len)>();
            if (kind is (byte)'K' or (byte)'O')
            {
                oldStart = pos;
                // walk the old tuple to reach the new one
                int n = U16();
                for (var i = 0; i < n; i++)
                {
                    var k = d[pos++];
                    var len = 0;
                    if (k is (byte)'t' or (byte)'b')
                        {
                            len = I32();
                        }

                        oldColumns.Add((k, pos, len));
                    pos += len;
                }
                pos++; // 'N'
            }
            b.BeginRow(ChangeOp.Update, lsn);
            // as TransactionAssembler.OnUpdate: only the whole old row ('O', REPLICA IDENTITY FULL) fills
            Tuple(b, kind == (byte)'O' ? oldColumns : null);
            if (oldStart >= 0)
            {
                pos = oldStart;
                b.BeginBefore();
                Tuple(b);
            }
            b.EndRow();
            break;
        }
        case 'D':
        {
            var relid = U32();
            pos++; // 'K' or 'O'
            var b = relations[relid];
            Touch(relid);
            b.BeginRow(ChangeOp.Delete, lsn);
            Tuple(b);
            b.EndRow();
            break;
        }
        case 'T':
        {
            var n = I32();
            pos++; // options
            for (var i = 0; i < n; i++)
            {
                var relid = U32();
                Touch(relid);
                if (relations[relid].RowCount > 0)
                    {
                        Flush(relid, 0);
                    }

                    Flush(relid, 1);
            }
            break;
        }
        case 'O': case 'M':
            break;
        default:
            throw new InvalidOperationException($"pgoutput message {(char)d[0]}");
    }
}

// ---- the plugin's chunks, per transaction
var actual = new List<List<(uint Relid, byte Kind, string Fp, int Rows, byte[] Stream)>>();
List<(uint, byte, string, int, byte[])>? cur = null;
foreach (var (_, d) in w2a)
{
    switch ((char)d[0])
    {
        case 'B': cur = []; break;
        case 'C': actual.Add(cur!); cur = null; break;
        case 'A':
            cur!.Add((BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(3)), d[1], Convert.ToHexStringLower(d, 16, 8),
                (int)BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(12)), d[28..]));
            break;
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
    foreach (var relid in expected[t].Select(c => c.Relid).Concat(actual[t].Select(c => c.Relid)).Distinct())
    {
        var e = expected[t].Where(c => c.Relid == relid).ToList();
        var a = actual[t].Where(c => c.Relid == relid).ToList();
        if (e.Count != a.Count)
        {
            Console.WriteLine($"FAIL: txn {t} rel {relations[relid].Relation.Table}: {e.Count} C# chunks, {a.Count} wal2arrow chunks");
            failures++;
            continue;
        }
        for (var i = 0; i < e.Count; i++)
        {
            compared++;
            var name = relations.TryGetValue(relid, out var rb) ? rb.Relation.Table : relid.ToString();
            var problems = new List<string>();
            if (e[i].Kind != a[i].Kind)
            {
                problems.Add($"kind {e[i].Kind} vs {a[i].Kind}");
            }

            if (e[i].Rows != a[i].Rows)
            {
                problems.Add($"header rows {e[i].Rows} vs {a[i].Rows}");
            }

            if (e[i].Fp != a[i].Fp)
            {
                problems.Add($"fingerprint {e[i].Fp} vs {a[i].Fp}");
            }

            problems.AddRange(CompareStreams(e[i].Stream, a[i].Stream, e[i].Fp, a[i].Fp, a[i].Kind == 1 ? 0 : a[i].Rows));
            var same = problems.Count == 0;
            Console.WriteLine($"{(same ? "same" : "DIFF")} txn {t} {name} chunk {i} kind {a[i].Kind} rows {a[i].Rows} bytes {e[i].Stream.Length}/{a[i].Stream.Length} fp {a[i].Fp}");
            if (!same)
            {
                failures++;
                foreach (var problem in problems.Take(20))
                {
                    Console.WriteLine("  " + problem);
                }

                File.WriteAllBytes($"/tmp/wal2arrow-cscheck-{t}-{name}-{i}.cs.arrow", e[i].Stream);
                File.WriteAllBytes($"/tmp/wal2arrow-cscheck-{t}-{name}-{i}.w2a.arrow", a[i].Stream);
            }
        }
    }
}
Console.WriteLine(failures == 0
    ? $"cscheck: {compared} chunks read with Apache.Arrow {typeof(Apache.Arrow.Ipc.ArrowStreamReader).Assembly.GetName().Version}: same schema, fingerprint, rows and values as ChangeBatchBuilder's"
    : $"cscheck: {failures} differences");
return failures == 0 ? 0 : 1;

// Both streams read with Apache.Arrow and compared by meaning; the list of differences (empty when equal).
static List<string> CompareStreams(byte[] csStream, byte[] w2aStream, string csFp, string w2aFp, int rows)
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

    if (cs.Batches.Count != 1 || w2a.Batches.Count != 1)
    {
        problems.Add($"record batches: C# {cs.Batches.Count}, wal2arrow {w2a.Batches.Count} (one each expected)");
        return problems;
    }
    var (eb, ab) = (cs.Batches[0], w2a.Batches[0]);
    if (eb.Length != ab.Length || ab.Length != rows)
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
        var field = w2a.Schema.GetFieldByIndex(c).Name;
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
        foreach (var line in File.ReadAllLines(file).Where(l => l.Length > 0))
        {
            var hex = line.Contains('\t') ? line[(line.LastIndexOf('\t') + 1)..] : line;
            var d = Convert.FromHexString(hex.Trim());
            if (d[0] != (byte)'A')
            {
                continue;
            }

            chunks++;
            var kind = d[1];
            var rows = (int)BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(12));
            var fp = Convert.ToHexStringLower(d, 16, 8);
            try
            {
                var payload = ArrowPayload.Read(d.AsMemory(28));
                var problems = new List<string>();
                if (SchemaFingerprint.Compute(payload.Schema) != fp)
                {
                    problems.Add($"header fingerprint {fp}, schema gives {SchemaFingerprint.Compute(payload.Schema)}");
                }

                if (payload.Batches.Count != 1)
                {
                    problems.Add($"{payload.Batches.Count} record batches");
                }

                if (payload.RowCount != (kind == 1 ? 0 : rows))
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
            catch (Exception ex) when (ex is ArrowPayloadException or NotSupportedException or ArgumentException or InvalidCastException)
            {
                failures++;
                Console.WriteLine($"FAIL: {Path.GetFileName(file)} chunk {chunks}: {ex.Message}");
            }
        }
    }
    Console.WriteLine(failures == 0
        ? $"cscheck --read: {chunks} wal2arrow chunks read with Apache.Arrow; fingerprints, batches and row counts as their headers say"
        : $"cscheck --read: {failures} of {chunks} chunks failed");
    return failures == 0 && chunks > 0 ? 0 : 1;
}
