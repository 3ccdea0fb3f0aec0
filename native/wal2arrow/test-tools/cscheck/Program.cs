// wal2arrow cross-check against the C# reference (ChangeBatchBuilder).
// Input: two files of "LSN<TAB>HEX" lines from pg_logical_slot_get_binary_changes of two slots
// created at the same point: one pgoutput (proto_version 1, text format, session settings of
// WalBridge's replication connection), one wal2arrow (max_bytes 0). The pgoutput messages are fed
// to ChangeBatchBuilder like the connector's TransactionAssembler does (Type names, schema changes
// inside a transaction, truncates); every resulting Arrow stream must equal the plugin's chunk for
// the same transaction and table byte for byte, and the chunk header's fingerprint must equal
// ChangeBatchBuilder.SchemaFingerprint. A third file holds the tables' primary keys as the
// connector's PrimaryKeyCatalog reads them ("RELID<TAB>COLUMN<TAB>COLUMN..." in index order): under
// REPLICA IDENTITY FULL the key flags become the primary key's, as TransactionAssembler.OnRelation
// does. An update's unchanged TOAST values are filled from a whole old row ('O'), as
// TransactionAssembler.OnUpdate/AppendTuple do. Prints one line per compared chunk; exit 1 on a
// difference.
using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using WalBridge.Serialization.Postgres;

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
    int pos = 1;
    uint U32() { var v = BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(pos)); pos += 4; return v; }
    int I32() { var v = BinaryPrimitives.ReadInt32BigEndian(d.AsSpan(pos)); pos += 4; return v; }
    ushort U16() { var v = BinaryPrimitives.ReadUInt16BigEndian(d.AsSpan(pos)); pos += 2; return v; }
    string CStr() { int e = Array.IndexOf(d, (byte)0, pos); var s = Encoding.UTF8.GetString(d, pos, e - pos); pos = e + 1; return s; }
    // fill: the old tuple's columns (kind, offset, length) of an 'O' update, as
    // TransactionAssembler.AppendTuple's fullOldRow: an unchanged TOAST value ('u') of the new row
    // takes the old row's value when that one is a value ('t' or 'b')
    void Tuple(ChangeBatchBuilder b, List<(byte Kind, int Pos, int Len)>? fill = null)
    {
        int n = U16();
        for (int i = 0; i < n; i++)
        {
            byte k = d[pos++];
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
                    int len = I32();
                    b.AppendValue(d.AsSpan(pos, len), k == 't' ? TupleFormat.Text : TupleFormat.Binary);
                    pos += len;
                    break;
                default: throw new InvalidOperationException($"tuple kind {(char)k}");
            }
        }
    }
    void Touch(uint relid) { if (!pending.Contains(relid)) pending.Add(relid); }
    switch ((char)d[0])
    {
        case 'B':
            txn = [];
            pending.Clear();
            break;
        case 'C':
            foreach (var relid in pending)
            {
                if (relations[relid].RowCount > 0) Flush(relid, 0);
            }
            expected.Add(txn!);
            txn = null;
            break;
        case 'Y':
        {
            uint oid = U32();
            string nsp = CStr();
            string name = CStr();
            // as TransactionAssembler.OnType, reading pgoutput's empty namespace (pg_catalog) as "pg_catalog"
            types[oid] = $"{(nsp.Length == 0 ? "pg_catalog" : nsp)}.{name}";
            Console.WriteLine($"pgoutput Type message: oid {oid} namespace \"{nsp}\" name \"{name}\"");
            break;
        }
        case 'R':
        {
            uint relid = U32();
            string nsp = CStr(), rel = CStr();
            char ident = (char)d[pos++];
            int n = U16();
            var cols = new List<PgColumn>();
            for (int i = 0; i < n; i++)
            {
                byte flags = d[pos++];
                string name = CStr();
                uint typoid = U32();
                int typmod = I32();
                cols.Add(new PgColumn(name, typoid, typmod, (flags & 1) != 0, types.TryGetValue(typoid, out var tn) ? tn : null));
            }
            // as TransactionAssembler.OnRelation: under REPLICA IDENTITY FULL pgoutput flags every
            // column as key; use the real primary key when the table has one
            if (ident == 'f' && primaryKeys.TryGetValue(relid, out var key) && key.Count > 0)
                cols = cols.Select(c => c with { IsKey = key.Contains(c.Name) }).ToList();
            var relation = new PgRelation(relid, nsp, rel, ident, cols);
            if (relations.TryGetValue(relid, out var existing))
            {
                if (existing.Relation.Schema == relation.Schema && existing.Relation.Table == relation.Table
                    && existing.Relation.ReplicaIdentity == relation.ReplicaIdentity && existing.Relation.Columns.SequenceEqual(relation.Columns))
                    break;
                if (existing.RowCount > 0 && txn is not null) Flush(relid, 0);
            }
            relations[relid] = new ChangeBatchBuilder(relation);
            break;
        }
        case 'I':
        {
            uint relid = U32();
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
            uint relid = U32();
            var b = relations[relid];
            Touch(relid);
            byte kind = d[pos++];
            int oldStart = -1;
            var oldColumns = new List<(byte Kind, int Pos, int Len)>();
            if (kind is (byte)'K' or (byte)'O')
            {
                oldStart = pos;
                // walk the old tuple to reach the new one
                int n = U16();
                for (int i = 0; i < n; i++)
                {
                    byte k = d[pos++];
                    int len = 0;
                    if (k is (byte)'t' or (byte)'b') len = I32();
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
            uint relid = U32();
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
            int n = I32();
            pos++; // options
            for (int i = 0; i < n; i++)
            {
                uint relid = U32();
                Touch(relid);
                if (relations[relid].RowCount > 0) Flush(relid, 0);
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
for (int t = 0; t < Math.Min(expected.Count, actual.Count); t++)
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
        for (int i = 0; i < e.Count; i++)
        {
            compared++;
            var name = relations.TryGetValue(relid, out var rb) ? rb.Relation.Table : relid.ToString();
            bool same = e[i].Stream.AsSpan().SequenceEqual(a[i].Stream) && e[i].Fp == a[i].Fp && e[i].Kind == a[i].Kind && e[i].Rows == a[i].Rows;
            Console.WriteLine($"{(same ? "same" : "DIFF")} txn {t} {name} chunk {i} kind {a[i].Kind} rows {a[i].Rows} bytes {a[i].Stream.Length} fp {(e[i].Fp == a[i].Fp ? "same" : $"{e[i].Fp} vs {a[i].Fp}")}");
            if (!same)
            {
                failures++;
                int k = 0;
                while (k < Math.Min(e[i].Stream.Length, a[i].Stream.Length) && e[i].Stream[k] == a[i].Stream[k]) k++;
                Console.WriteLine($"  C# {e[i].Stream.Length} bytes, wal2arrow {a[i].Stream.Length} bytes, first difference at {k}");
                File.WriteAllBytes($"/tmp/wal2arrow-cscheck-{t}-{name}-{i}.cs.arrow", e[i].Stream);
                File.WriteAllBytes($"/tmp/wal2arrow-cscheck-{t}-{name}-{i}.w2a.arrow", a[i].Stream);
            }
        }
    }
}
Console.WriteLine(failures == 0 ? $"cscheck: {compared} chunks byte-identical to ChangeBatchBuilder" : $"cscheck: {failures} differences");
return failures == 0 ? 0 : 1;
