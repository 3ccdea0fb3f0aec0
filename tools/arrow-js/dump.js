#!/usr/bin/env node
// Decodes Arrow IPC streams with apache-arrow (the independent reader) and prints one JSON document per file:
//   { "fields": [field…], "metadata": [[key, value]…], "rows": n, "columns": [[cell…]…] }
// field = { "name", "type" (apache-arrow's type string), "typeId" (Arrow's Type enum name), "nullable",
//           "metadata": [[key, value]…], "dictionary": null | { "id", "indexType" }, "children": [field…],
//           "params": the type's parameters as apache-arrow read them, e.g. { "bitWidth", "isSigned" } for Int,
//           { "precision", "scale", "bitWidth" } for Decimal, { "unit", "timezone" } for Timestamp (units by name:
//           "MICROSECOND", "DAY", "MONTH_DAY_NANO", …), { "byteWidth" } for FixedSizeBinary; {} for types without any }
// Cells are exact, JSON-safe renderings of the raw Arrow values (never rounded through JS numbers):
//   null → null; bool → true/false; int8…int32, uint8…uint32 → number; int64/uint64 → decimal string;
//   float → number, or "NaN", "Infinity", "-Infinity", "-0"; utf8 → string (exact: a leading U+FEFF kept, invalid UTF-8
//   an error); binary, fixed_size_binary → lowercase hex;
//   decimal → unscaled integer as decimal string; date32/date64, time, timestamp, duration → the stored integer as a
//   decimal string (days, or units of the type); interval year_month → months; day_time → [days, ms];
//   month_day_nano → [months, days, "nanoseconds"]; list/fixed_size_list → [cells]; struct → [member cells];
//   map → [[key cell, value cell]…]; dictionary → the cell of the dictionary value.
// Usage: node dump.js <stream file>…   (one JSON document per line)
'use strict';
const fs = require('fs');
const { RecordBatchReader, Type, makeVector, TimeUnit, DateUnit, IntervalUnit, Precision, compressionRegistry, CompressionType } = require('apache-arrow');
const lz4 = require('lz4js');
const fzstd = require('fzstd');

// Compressed record batch bodies (WalBridge's arrow.compression = lz4_frame | zstd): apache-arrow reads them only
// with a codec the application registers (it ships none). These are pure-JS decoders from npm; each gets one
// buffer's compressed bytes (the 8-byte length prefix already removed) and returns the uncompressed bytes. Two
// details apache-arrow leaves to the codec: an empty buffer (Apache.Arrow writes a prefix of 0 and no frame) arrives
// as zero bytes, and the result must be 8-byte aligned, because typed arrays are laid over it without a copy.
const aligned = (out) => (out.byteOffset % 8 === 0 ? out : new Uint8Array(out));
const codec = (decompress) => ({ decode: (bytes) => (bytes.length === 0 ? new Uint8Array(0) : aligned(decompress(bytes))) });
compressionRegistry.set(CompressionType.LZ4_FRAME, codec((bytes) => lz4.decompress(bytes)));
compressionRegistry.set(CompressionType.ZSTD, codec((bytes) => fzstd.decompress(bytes)));

const typeName = (t) => Type[t.typeId] ?? String(t.typeId);

function params(t) {
  switch (t.typeId) {
    case Type.Int: return { bitWidth: t.bitWidth, isSigned: t.isSigned };
    case Type.Float: return { precision: Precision[t.precision] };
    case Type.Decimal: return { precision: t.precision, scale: t.scale, bitWidth: t.bitWidth };
    case Type.Date: return { unit: DateUnit[t.unit] };
    case Type.Time: return { unit: TimeUnit[t.unit], bitWidth: t.bitWidth };
    case Type.Timestamp: return { unit: TimeUnit[t.unit], timezone: t.timezone ?? null };
    case Type.Duration: return { unit: TimeUnit[t.unit] };
    case Type.Interval: return { unit: IntervalUnit[t.unit] };
    case Type.FixedSizeBinary: return { byteWidth: t.byteWidth };
    case Type.FixedSizeList: return { listSize: t.listSize };
    case Type.Map: return { keysSorted: t.keysSorted };
    default: return {};
  }
}

function describe(field) {
  const t = field.type;
  const dict = t.typeId === Type.Dictionary ? t : null;
  const valueType = dict ? dict.dictionary : t;
  return {
    name: field.name,
    type: String(valueType),
    typeId: typeName(valueType),
    nullable: field.nullable,
    metadata: [...field.metadata],
    dictionary: dict ? { id: dict.id, indexType: String(dict.indices) } : null,
    children: (valueType.children ?? []).map(describe),
    params: params(valueType),
  };
}

const hex = (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');

function signedLittleEndian(bytes) {
  let v = 0n;
  for (let k = bytes.length - 1; k >= 0; k--) v = (v << 8n) | BigInt(bytes[k]);
  const bits = BigInt(bytes.length * 8);
  if (bytes.length && bytes[bytes.length - 1] & 0x80) v -= 1n << bits;
  return v;
}

function fixedWidth(t) {
  switch (t.typeId) {
    case Type.Decimal: return t.bitWidth / 8;
    case Type.Date: return t.unit === 0 ? 4 : 8;
    case Type.Time: return t.bitWidth / 8;
    case Type.Timestamp: case Type.Duration: return 8;
    case Type.Interval: return t.unit === 0 ? 4 : t.unit === 1 ? 8 : 16;
    default: return 0;
  }
}

// The chunk (Data) holding slot i of a vector and the slot's index inside that chunk.
function locate(vec, i) {
  for (const d of vec.data) {
    if (i < d.length) return [d, i];
    i -= d.length;
  }
  throw new Error('index out of range');
}

// apache-arrow's Data.slice (used for list elements, e.g. by vec.get(i) of a List) advances `offset` AND slices the
// values/offsets buffers, so buffers are indexed by the slot's index within the chunk, never by offset + index
// (apache-arrow's own getters do the same: values[index]).
function rawBytes(vec, i, width) {
  const [d, j] = locate(vec, i);
  const v = d.values;
  const all = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  const start = j * width;
  return all.subarray(start, start + width);
}

// apache-arrow's own getter decodes with a default TextDecoder, which drops a leading U+FEFF (BOM) and replaces
// invalid UTF-8 with U+FFFD. Decode the same bytes (the slot's range of the values buffer, as its getter finds them)
// exactly instead: BOM kept, invalid UTF-8 an error.
const exactUtf8 = new TextDecoder('utf-8', { ignoreBOM: true, fatal: true });
function utf8(vec, i) {
  const [d, j] = locate(vec, i);
  const start = Number(d.valueOffsets[j]), end = Number(d.valueOffsets[j + 1]);
  return exactUtf8.decode(d.values.subarray(start, end));
}

function cell(vec, i) {
  if (!vec.isValid(i)) return null;
  const t = vec.type;
  switch (t.typeId) {
    case Type.Null: return null;
    case Type.Bool: return vec.get(i);
    case Type.Int: {
      const x = vec.get(i);
      return typeof x === 'bigint' ? x.toString() : x;
    }
    case Type.Float: {
      const x = vec.get(i);
      if (Number.isNaN(x)) return 'NaN';
      if (x === Infinity) return 'Infinity';
      if (x === -Infinity) return '-Infinity';
      if (Object.is(x, -0)) return '-0';
      return x;
    }
    case Type.Utf8: case Type.LargeUtf8: return utf8(vec, i);
    case Type.Binary: case Type.LargeBinary: case Type.FixedSizeBinary: return hex(vec.get(i));
    case Type.Decimal: case Type.Date: case Type.Time: case Type.Timestamp: case Type.Duration: case Type.Interval: {
      const bytes = rawBytes(vec, i, fixedWidth(t));
      if (t.typeId === Type.Interval) {
        const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        if (t.unit === 0) return dv.getInt32(0, true);
        if (t.unit === 1) return [dv.getInt32(0, true), dv.getInt32(4, true)];
        return [dv.getInt32(0, true), dv.getInt32(4, true), dv.getBigInt64(8, true).toString()];
      }
      return signedLittleEndian(bytes).toString();
    }
    case Type.List: case Type.LargeList: case Type.FixedSizeList: {
      const v = vec.get(i);
      const out = [];
      for (let k = 0; k < v.length; k++) out.push(cell(v, k));
      return out;
    }
    case Type.Struct:
      return t.children.map((_, k) => cell(vec.getChildAt(k), i));
    case Type.Map: {
      const [d, j] = locate(vec, i);
      const entries = makeVector(d.children[0]);
      const start = d.valueOffsets[j], end = d.valueOffsets[j + 1];
      const keys = entries.getChildAt(0), values = entries.getChildAt(1);
      const out = [];
      for (let k = start; k < end; k++) out.push([cell(keys, k), cell(values, k)]);
      return out;
    }
    case Type.Dictionary: {
      const [d, j] = locate(vec, i);
      const index = d.values[j];
      return cell(d.dictionary, Number(index));
    }
    default:
      throw new Error(`dump.js: unsupported Arrow type ${String(t)}`);
  }
}

// Batches are read with RecordBatchReader and columns taken by index: apache-arrow's Table (tableFromIPC) keys its
// columns by name, so of two fields with the same name (Arrow allows it; WalBridge's system columns can collide with a
// table's) it would show one twice.
for (const file of process.argv.slice(2)) {
  const reader = RecordBatchReader.from(fs.readFileSync(file)).open();
  const schema = reader.schema;
  const batches = [...reader];
  const rows = batches.reduce((n, b) => n + b.numRows, 0);
  const columns = schema.fields.map((_, c) => {
    const out = [];
    for (const batch of batches) {
      const vec = batch.getChildAt(c);
      for (let i = 0; i < batch.numRows; i++) out.push(cell(vec, i));
    }
    return out;
  });
  process.stdout.write(JSON.stringify({
    fields: schema.fields.map(describe),
    metadata: [...schema.metadata],
    rows,
    columns,
  }) + '\n');
}
