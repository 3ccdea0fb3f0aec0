// Decodes wal2arrow output (framing version 2) with the independent apache-arrow JS reader.
// Input (stdin): one message per line, hex-encoded (psql: select encode(data,'hex') from
// pg_logical_slot_peek_binary_changes(...)). Output: a normalized text dump of every message: for
// a Relation message its schema (fields, types, metadata: its schema message decoded as a stream
// without batches), for each chunk its rows, decoded from the stream schema message + the chunk's
// record batch + end-of-stream marker. Checks on the way: the Relation's schema message length;
// the chunk's batch length, that it is one record batch message and no stream; the chunk header's
// row count equals the batch's; the header's fingerprint equals the Relation's and the first 8
// bytes of the SHA-256 of the schema's canonical text (docs/format.md, "Kafka headers"), computed
// here from the schema apache-arrow read: a third implementation beside the plugin's and the
// connector's; _xid, _commit_lsn and _commit_ts of every row equal the Begin message's xid, final
// LSN and commit time; chunk indexes count 0, 1, ... per (transaction, table, partition) and its
// last chunk (before the commit or the table's next Relation message) is flagged, no other.
// With PARTITIONS=N (N > 1): every row's partition is Kafka's murmur2 of the JSON array of its key
// columns' text (README.md, "Partitions"; computed here for integer and text keys, a fourth
// implementation), 0 for a table without a key, and a truncate row is in all N partitions. At the
// end, the pass-through property: for each table, partition and schema, ONE stream of the schema
// message, every batch of every transaction in order and the end-of-stream marker, read with
// apache-arrow, gives the same rows as the chunks one by one.
// Usage: node decode.mjs < messages.hex   (ARROW_JS_DIR must reach apache-arrow)
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(process.env.ARROW_JS_DIR ? process.env.ARROW_JS_DIR + '/' : import.meta.url);
const arrow = require('apache-arrow');

const lines = readFileSync(0, 'utf8').split('\n').filter((l) => l.trim() !== '');
const partitions = Number(process.env.PARTITIONS ?? '1');
const out = [];
let failures = 0;
const fail = (msg) => { out.push('FAIL: ' + msg); failures++; };
const EOS = Buffer.from('ffffffff00000000', 'hex');
const UNIX_EPOCH_OFFSET_US = 946684800000000n;

function str16(buf, pos) {
  const len = buf.readUInt16BE(pos);
  return [buf.toString('utf8', pos + 2, pos + 2 + len), pos + 2 + len];
}

function fmtDecimal(bytes, scale, negativeAllowed = true) {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
  const bits = BigInt(bytes.length * 8);
  if (negativeAllowed && (v >> (bits - 1n)) & 1n) v -= 1n << bits;
  const neg = v < 0n;
  let s = (neg ? -v : v).toString().padStart(scale + 1, '0');
  if (scale > 0) s = s.slice(0, s.length - scale) + '.' + s.slice(s.length - scale);
  return (neg ? '-' : '') + s;
}

function fmtValue(type, vec, i) {
  if (!vec.isValid(i)) return 'null';
  const t = type.typeId;
  if (arrow.DataType.isDecimal(type)) {
    const width = type.bitWidth / 8;
    const data = vec.data[0];
    const raw = new Uint8Array(data.values.buffer, data.values.byteOffset + (data.offset + i) * width, width);
    return fmtDecimal(raw, type.scale);
  }
  if (arrow.DataType.isTimestamp(type)) {
    const data = vec.data[0];
    const v = new BigInt64Array(data.values.buffer, data.values.byteOffset, data.length)[data.offset + i];
    return 'ts(' + v.toString() + 'us)';
  }
  if (arrow.DataType.isInterval(type)) {
    const data = vec.data[0];
    const dv = new DataView(data.values.buffer, data.values.byteOffset + (data.offset + i) * 16, 16);
    return `interval(${dv.getInt32(0, true)}m,${dv.getInt32(4, true)}d,${dv.getBigInt64(8, true)}ns)`;
  }
  if (arrow.DataType.isTime(type)) {
    const data = vec.data[0];
    return 'time(' + new BigInt64Array(data.values.buffer, data.values.byteOffset, data.length)[data.offset + i] + 'us)';
  }
  const v = vec.get(i);
  if (arrow.DataType.isFloat(type) && Number.isNaN(v)) {
    // the exact NaN bits (PostgreSQL's: 0x7ff8000000000000 / 0x7fc00000)
    const data = vec.data[0];
    const w = type.precision === arrow.Precision.SINGLE ? 4 : 8;
    const raw = Buffer.from(data.values.buffer, data.values.byteOffset + (data.offset + i) * w, w);
    return 'NaN(0x' + Buffer.from(raw).reverse().toString('hex') + ')';
  }
  if (arrow.DataType.isList(type)) {
    const child = type.children[0].type;
    const parts = [];
    for (let k = 0; k < v.length; k++) parts.push(fmtValue(child, v, k));
    return '[' + parts.join(',') + ']';
  }
  if (arrow.DataType.isMap(type)) {
    const parts = [];
    for (const [k, val] of v) parts.push(JSON.stringify(k) + ':' + JSON.stringify(val));
    return 'map{' + parts.join(',') + '}';
  }
  if (arrow.DataType.isStruct(type)) {
    return '{' + type.children.map((f, k) => f.name + '=' + fmtValue(f.type, vec.getChildAt(k), i)).join(',') + '}';
  }
  if (arrow.DataType.isDate(type)) return 'date(' + Math.round(new Date(v).getTime() / 86400000) + ')';
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return '0x' + Buffer.from(v).toString('hex');
  if (typeof v === 'string') return v.length > 64 ? JSON.stringify(v.slice(0, 32)) + `...(${v.length} chars)` : JSON.stringify(v);
  if (typeof v === 'number' && Object.is(v, -0)) return '-0';
  return String(v);
}

// ---- canonical schema text of the fingerprint (docs/format.md)
const units = ['s', 'ms', 'us', 'ns'];
const cstr = (s) => Buffer.byteLength(s, 'utf8') + ':' + s;
const cmeta = (m) => {
  const entries = m ? [...m.entries()] : [];
  return ' ' + entries.length + entries.map(([k, v]) => ' ' + cstr(k) + '=' + cstr(v)).join('');
};

function ctype(t) {
  switch (t.typeId) {
    case arrow.Type.Bool: return 'bool';
    case arrow.Type.Int: return (t.isSigned ? 'int' : 'uint') + t.bitWidth;
    case arrow.Type.Float: return ['float16', 'float32', 'float64'][t.precision];
    case arrow.Type.Utf8: return 'utf8';
    case arrow.Type.Binary: return 'binary';
    case arrow.Type.Decimal: return `decimal${t.bitWidth}(${t.precision},${t.scale})`;
    case arrow.Type.Date: return t.unit === arrow.DateUnit.DAY ? 'date32' : 'date64';
    case arrow.Type.Time: return `time${t.bitWidth}[${units[t.unit]}]`;
    case arrow.Type.Timestamp: return `timestamp[${units[t.unit]}${t.timezone != null ? ',' + cstr(t.timezone) : ''}]`;
    case arrow.Type.Interval: return ['interval[year_month]', 'interval[day_time]', 'interval[month_day_nano]'][t.unit];
    case arrow.Type.FixedSizeBinary: return `fixed_size_binary(${t.byteWidth})`;
    case arrow.Type.List: return 'list';
    case arrow.Type.Struct: return 'struct';
    case arrow.Type.Map: return `map(keys_sorted=${t.keysSorted ? 'true' : 'false'})`;
    default: throw new Error(`no canonical form for Arrow type ${t}`);
  }
}

function cfield(f) {
  const children = f.type.children ?? [];
  return `field ${cstr(f.name)} ${ctype(f.type)} ${f.nullable ? 'nullable' : 'not-null'} meta${cmeta(f.metadata)} children ${children.length}\n`
    + children.map(cfield).join('');
}

const canonical = (schema) =>
  `walbridge.schema.v1\nfields ${schema.fields.length}\n` + schema.fields.map(cfield).join('') + 'schema meta' + cmeta(schema.metadata) + '\n';

function fmtMeta(m) {
  if (!m || m.size === 0) return '';
  return ' {' + [...m.entries()].map(([k, v]) => `${k}=${v}`).join(', ') + '}';
}

function fmtField(f, indent) {
  let s = `${indent}${f.name}: ${f.type}${f.nullable ? '' : ' not null'}${fmtMeta(f.metadata)}`;
  for (const c of f.type.children ?? []) s += '\n' + fmtField(c, indent + '  ');
  return s;
}

// ---- Kafka's murmur2 and the partition key (README.md, "Partitions")
function murmur2(bytes) {
  const m = 0x5bd1e995;
  let h = (0x9747b28c ^ bytes.length) >>> 0;
  const words = bytes.length >> 2;
  for (let i = 0; i < words; i++) {
    let k = bytes.readUInt32LE(4 * i);
    k = Math.imul(k, m) >>> 0;
    k = (k ^ (k >>> 24)) >>> 0;
    k = Math.imul(k, m) >>> 0;
    h = Math.imul(h, m) >>> 0;
    h = (h ^ k) >>> 0;
  }
  const t = 4 * words;
  switch (bytes.length & 3) {
    case 3: h = (h ^ (bytes[t + 2] << 16)) >>> 0; // falls through
    case 2: h = (h ^ (bytes[t + 1] << 8)) >>> 0; // falls through
    case 1: h = (h ^ bytes[t]) >>> 0; h = Math.imul(h, m) >>> 0;
  }
  h = (h ^ (h >>> 13)) >>> 0;
  h = Math.imul(h, m) >>> 0;
  h = (h ^ (h >>> 15)) >>> 0;
  return h | 0;
}
for (const [key, expected] of [['21', -973932308], ['foobar', -790332482], ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829], ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971], ['abc', 479470107]]) {
  if (murmur2(Buffer.from(key)) !== expected) fail(`JS murmur2(${key}) = ${murmur2(Buffer.from(key))}, Kafka's ${expected}`);
}

function jsonText(text) {
  let s = '"';
  for (const b of Buffer.from(text, 'utf8')) {
    if (b === 0x22 || b === 0x5c) s += '\\' + String.fromCharCode(b);
    else if (b < 0x20) s += '\\u00' + b.toString(16).padStart(2, '0');
    else s += '%' + b.toString(16).padStart(2, '0');
  }
  return s + '"';
}
// the key's bytes: JSON array of the key columns' text ('%xx' above keeps non-ASCII bytes exact)
const keyBytes = (texts) => {
  const json = '[' + texts.map((t) => (t === null ? 'null' : jsonText(t))).join(',') + ']';
  return Buffer.from(json.replace(/%([0-9a-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))), 'latin1');
};

// PostgreSQL's text of an integer or text value as apache-arrow read it; undefined when not checked here
function pgText(type, vec, i) {
  if (!vec.isValid(i)) return null;
  if (arrow.DataType.isInt(type) || arrow.DataType.isUtf8(type)) return String(vec.get(i));
  return undefined;
}

const relations = new Map();  // relid -> { name, schemaMsg, fp, schema, keyCols, keyless }
const streams = new Map();     // relid/partition/fp -> { name, schemaMsg, batches: [], rows: [] }
let txn = null;                // { xid, finalLsn, unixTs, chunks: Map(relid/partition -> { next, last }), truncates: Map }
let keysChecked = 0, keysUnchecked = 0;

function rowText(schema, table, r) {
  return schema.fields.map((f, c) => {
    const v = fmtValue(f.type, table.getChildAt(c), r);
    return `${f.name}=${['_lsn', '_xid', '_commit_lsn', '_commit_ts'].includes(f.name) && v !== 'null' ? f.name.slice(1) : v}`;
  }).join(' ');
}

for (const hex of lines) {
  const buf = Buffer.from(hex.trim(), 'hex');
  const type = String.fromCharCode(buf[0]);
  switch (type) {
    case 'B':
      if (buf.length !== 22) fail(`Begin of ${buf.length} bytes`);
      txn = { xid: buf.readUInt32BE(2), finalLsn: buf.readBigUInt64BE(6), unixTs: buf.readBigInt64BE(14) + UNIX_EPOCH_OFFSET_US,
        chunks: new Map(), truncates: new Map() };
      out.push(`B version=${buf[1]} xid=${txn.xid > 0 ? 'x' : '0'}`);
      break;
    case 'C': {
      if (buf.length !== 26) fail(`Commit of ${buf.length} bytes`);
      if (buf.readBigUInt64BE(2) !== txn.finalLsn) fail('Commit LSN differs from Begin final LSN');
      for (const [k, c] of txn.chunks) if (!c.last) fail(`${k}: committed without a last chunk`);
      for (const [at, parts] of txn.truncates) {
        if (partitions > 1 && parts.size !== partitions) fail(`truncate of ${at} in ${parts.size} of ${partitions} partitions`);
      }
      if (txn.truncates.size > 0) out.push(`  truncate rows: ${txn.truncates.size} truncate(s), each in ${[...txn.truncates.values()].map((p) => p.size).join(',')} partition(s)`);
      out.push(`C flags=${buf[1]} commit<=end=${buf.readBigUInt64BE(2) <= buf.readBigUInt64BE(10)}`);
      txn = null;
      break;
    }
    case 'R': {
      const relid = buf.readUInt32BE(1);
      const fp = buf.subarray(5, 13).toString('hex');
      const [nsp, p1] = str16(buf, 14);
      const [rel, p2] = str16(buf, p1);
      const columns = buf.readUInt16BE(p2);
      const schemaLen = buf.readUInt32BE(p2 + 2);
      const schemaMsg = buf.subarray(p2 + 6);
      if (schemaMsg.length !== schemaLen) fail(`R ${rel}: schema message of ${schemaMsg.length} bytes, header ${schemaLen}`);
      const schema = arrow.tableFromIPC(Buffer.concat([schemaMsg, EOS])).schema;
      const digest = createHash('sha256').update(canonical(schema), 'utf8').digest('hex').slice(0, 16);
      if (digest !== fp) fail(`R ${rel}: fingerprint ${fp} != sha256 of the schema's canonical text ${digest}`);
      // a Relation message inside a transaction ends the table's segments: all closed by a last chunk
      if (txn) {
        for (const [k, c] of txn.chunks) {
          if (!k.startsWith(relid + '/')) continue;
          if (!c.last) fail(`R ${rel} while ${k} has no last chunk`);
          c.segmentEnded = true;
        }
      }
      const names = schema.fields.slice(5, 5 + columns).map((f) => f.name);
      const pk = schema.metadata.get('pg.primary_key');
      const keyNames = pk === '' ? [] : pk.split(',');
      // no key: pg.primary_key empty, or REPLICA IDENTITY FULL without a primary key (every column listed)
      const keyless = keyNames.length === 0 || (schema.metadata.get('pg.replica_identity') === 'f' && keyNames.length === names.length);
      const schemas = (relations.get(relid)?.schemas ?? 0) + (relations.get(relid)?.fp === fp ? 0 : 1);
      relations.set(relid, { name: `${nsp}.${rel}`, schemaMsg, fp, schema, schemas, keyless, keyCols: keyNames.map((k) => 5 + names.indexOf(k)) });
      out.push(`R ${nsp}.${rel} replident=${String.fromCharCode(buf[13])} columns=${columns} fp=${fp}`);
      out.push('  schema' + fmtMeta(schema.metadata));
      for (const f of schema.fields) out.push(fmtField(f, '    '));
      break;
    }
    case 'M': {
      const [prefix, p] = str16(buf, 10);
      const len = buf.readUInt32BE(p);
      out.push(`M transactional=${buf[1]} prefix=${prefix} content=${JSON.stringify(buf.toString('utf8', p + 4, p + 4 + len))}`);
      break;
    }
    case 'A': {
      const kind = buf[1], relid = buf.readUInt32BE(2), partition = buf.readUInt32BE(6), chunk = buf.readUInt32BE(10);
      const last = buf[14], rows = buf.readUInt32BE(15), fp = buf.subarray(19, 27).toString('hex'), batchLen = buf.readUInt32BE(27);
      const batch = buf.subarray(31);
      const rel = relations.get(relid);
      if (kind !== 0) fail(`chunk kind ${kind}`);
      if (!rel) { fail(`chunk of relation ${relid} before its Relation message`); break; }
      if (batch.length !== batchLen) fail(`batch length ${batch.length} != header ${batchLen}`);
      if (fp !== rel.fp) fail(`chunk fingerprint ${fp} != its Relation's ${rel.fp}`);
      if (partition >= partitions) fail(`partition ${partition} of ${partitions}`);
      const key = `${relid}/${partition}`;
      const seq = txn.chunks.get(key) ?? { next: 0, last: false, segmentEnded: false };
      if (chunk !== seq.next || (seq.last && !seq.segmentEnded)) {
        fail(`${rel.name} partition ${partition}: chunk ${chunk} after ${seq.next} chunks${seq.last ? ', the last flagged' : ''}`);
      }
      txn.chunks.set(key, { next: chunk + 1, last: last === 1, segmentEnded: false });
      let table;
      try {
        table = arrow.tableFromIPC(Buffer.concat([rel.schemaMsg, batch, EOS]));
      } catch (e) {
        fail(`schema + batch + EOS of ${rel.name} is no stream apache-arrow reads: ${e.message}`);
        break;
      }
      if (table.batches.length !== 1) fail(`expected one record batch, got ${table.batches.length}`);
      if (table.numRows !== rows) fail(`header rows ${rows} != batch rows ${table.numRows}`);
      out.push(`A partition=${partition} chunk=${chunk} last=${last} rows=${rows}`);
      const s = streams.get(`${key}/${fp}`) ?? { name: `${rel.name} schema #${rel.schemas} partition=${partition}`, schemaMsg: rel.schemaMsg, batches: [], rows: [] };
      streams.set(`${key}/${fp}`, s);
      s.batches.push(batch);
      for (let r = 0; r < table.numRows; r++) {
        const text = rowText(table.schema, table, r);
        s.rows.push(text);
        out.push('  row ' + text);
        const get = (c) => table.getChildAt(c).get(r);
        if (get(2) !== txn.xid) fail(`row ${r}: _xid ${get(2)} != Begin's ${txn.xid}`);
        if (get(3) !== txn.finalLsn) fail(`row ${r}: _commit_lsn ${get(3)} != Begin's final LSN ${txn.finalLsn}`);
        const ts = new BigInt64Array(table.getChildAt(4).data[0].values.buffer, table.getChildAt(4).data[0].values.byteOffset, table.numRows)[r];
        if (ts !== txn.unixTs) fail(`row ${r}: _commit_ts ${ts} != Begin's commit time ${txn.unixTs}`);
        const op = get(0);
        if (op === 't') {
          const at = `${rel.name} at ${get(1)}`;
          if (!txn.truncates.has(at)) txn.truncates.set(at, new Set());
          txn.truncates.get(at).add(partition);
          continue;
        }
        if (partitions > 1) {
          let expected;
          if (rel.keyless) expected = 0;
          else {
            const texts = rel.keyCols.map((c) => pgText(table.schema.fields[c].type, table.getChildAt(c), r));
            if (!texts.includes(undefined)) expected = (murmur2(keyBytes(texts)) & 0x7fffffff) % partitions;
          }
          if (expected === undefined) keysUnchecked++;
          else {
            keysChecked++;
            if (expected !== partition) fail(`${rel.name} row ${r} (${op}) in partition ${partition}, its key's is ${expected}`);
          }
        }
      }
      break;
    }
    default:
      fail('unknown message type ' + type);
  }
}
if (partitions > 1) out.push(`partition of ${keysChecked} rows checked (murmur2 of the key in JS), ${keysUnchecked} not (key types not rendered here)`);
// the pass-through property: one stream per table, partition and schema over all transactions
for (const s of streams.values()) {
  const table = arrow.tableFromIPC(Buffer.concat([s.schemaMsg, ...s.batches, EOS]));
  const rows = [];
  for (const batch of table.batches) for (let r = 0; r < batch.numRows; r++) rows.push(rowText(table.schema, batch, r));
  const same = rows.length === s.rows.length && rows.every((t, i) => t === s.rows[i]);
  if (!same) fail(`${s.name}: the concatenated stream's rows differ from the chunks'`);
  out.push(`stream ${s.name}: schema + ${s.batches.length} batches + EOS read as one stream: ${table.batches.length} batches, ${table.numRows} rows${same ? ', the same as the chunks' : ''}`);
}
console.log(out.join('\n'));
process.exit(failures ? 1 : 0);
