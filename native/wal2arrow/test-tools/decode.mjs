// Decodes wal2arrow output with the independent apache-arrow JS reader.
// Input (stdin): one message per line, hex-encoded (psql: select encode(data,'hex') from
// pg_logical_slot_peek_binary_changes(...)). Output: a normalized text dump of every message;
// for each Arrow chunk the schema (fields, types, metadata), and the rows. Checks on the way:
// the chunk header's row count equals the batch's, the stream length matches, and the header's
// fingerprint equals the first 8 bytes of the SHA-256 of the schema's canonical text
// (docs/format.md, "Kafka headers"), computed here from the schema apache-arrow read: a third
// implementation beside the plugin's and the connector's.
// Usage: node decode.mjs < messages.hex   (NODE_PATH must reach apache-arrow)
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(process.env.ARROW_JS_DIR ? process.env.ARROW_JS_DIR + '/' : import.meta.url);
const arrow = require('apache-arrow');

const lines = readFileSync(0, 'utf8').split('\n').filter((l) => l.trim() !== '');
const out = [];
let failures = 0;
const fail = (msg) => { out.push('FAIL: ' + msg); failures++; };

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

for (const hex of lines) {
  const buf = Buffer.from(hex.trim(), 'hex');
  const type = String.fromCharCode(buf[0]);
  switch (type) {
    case 'B':
      out.push(`B version=${buf[1]} xid=${buf.readUInt32BE(2) > 0 ? 'x' : '0'}`);
      break;
    case 'C':
      out.push(`C flags=${buf[1]} commit<=end=${buf.readBigUInt64BE(2) <= buf.readBigUInt64BE(10)}`);
      break;
    case 'R': {
      let pos = 14;
      const [nsp, p1] = str16(buf, pos);
      const [rel, p2] = str16(buf, p1);
      out.push(`R ${nsp}.${rel} replident=${String.fromCharCode(buf[13])} columns=${buf.readUInt16BE(p2)} fp=${buf.subarray(5, 13).toString('hex')}`);
      break;
    }
    case 'T': {
      const n = buf.readUInt32BE(2);
      out.push(`T options=${buf[1]} relations=${n}`);
      break;
    }
    case 'M': {
      const [prefix, p] = str16(buf, 10);
      const len = buf.readUInt32BE(p);
      out.push(`M transactional=${buf[1]} prefix=${prefix} content=${JSON.stringify(buf.toString('utf8', p + 4, p + 4 + len))}`);
      break;
    }
    case 'A': {
      const kind = buf[1], opts = buf[2], chunk = buf.readUInt32BE(7), last = buf[11], rows = buf.readUInt32BE(12);
      const fp = buf.subarray(16, 24).toString('hex');
      const streamLen = buf.readUInt32BE(24);
      const stream = buf.subarray(28);
      if (stream.length !== streamLen) fail(`stream length ${stream.length} != header ${streamLen}`);
      if (!stream.subarray(stream.length - 8).equals(Buffer.from('ffffffff00000000', 'hex'))) fail('missing end-of-stream marker');
      const table = arrow.tableFromIPC(stream);
      const digest = createHash('sha256').update(canonical(table.schema), 'utf8').digest('hex').slice(0, 16);
      if (digest !== fp) fail(`fingerprint ${fp} != sha256 of the schema's canonical text ${digest}`);
      const reader = table;
      if (table.batches.length !== 1) fail(`expected one record batch, got ${table.batches.length}`);
      if (table.numRows !== rows) fail(`header rows ${rows} != batch rows ${table.numRows}`);
      out.push(`A kind=${kind ? 'truncate' : 'changes'} options=${opts} chunk=${chunk} last=${last} rows=${rows}`);
      out.push('  schema' + fmtMeta(reader.schema.metadata));
      for (const f of reader.schema.fields) out.push(fmtField(f, '    '));
      for (let r = 0; r < table.numRows; r++) {
        const cells = reader.schema.fields.map((f, c) => `${f.name}=${f.name === '_lsn' ? 'lsn' : fmtValue(f.type, table.getChildAt(c), r)}`);
        out.push('  row ' + cells.join(' '));
      }
      break;
    }
    default:
      fail('unknown message type ' + type);
  }
}
console.log(out.join('\n'));
process.exit(failures ? 1 : 0);
