#!/usr/bin/env bash
# Cross-check of wal2arrow against WalBridge's C# ChangeBatchBuilder (cscheck/), both read with the
# official Apache.Arrow C# reader: creates a pgoutput slot and a wal2arrow slot at the same point,
# runs a workload (every mapped type, values Arrow cannot hold, domains, an enum, NaN floats,
# unchanged TOAST, updates with the old row and the old key, deletes, truncates, a schema change
# inside a transaction, REPLICA IDENTITY FULL tables with and without a primary key, with an INCLUDE
# column, with an unchanged 1 MB TOAST value, a key of many types whose text depends on the session
# settings), reads both slots with psql (pgoutput in text format under WalBridge's replication
# session settings; wal2arrow with 1 and with 3 partitions), reads the tables' primary keys with the
# connector's PrimaryKeyCatalog query, and runs cscheck for each partition count, which feeds the
# pgoutput messages to ChangeBatchBuilders per table and partition (rows assigned with PartitionKey;
# key flags replaced and unchanged TOAST values filled from a REPLICA IDENTITY FULL old row as
# TransactionAssembler does) and compares every Arrow stream with the plugin's chunk for the same
# transaction, table and partition by meaning: schema (names, types, nullability, all metadata),
# fingerprint, row count and every value; and the batches of all transactions concatenated behind
# the schema message, per table, partition and schema. The encoders differ, so the bytes may. Then
# every chunk of the other wal2arrow checks saved in $WAL2ARROW_STREAMS_DIR (*.hex, one message per
# line) is read with Apache.Arrow too (cscheck --read).
#   cscheck.sh BINDIR DBNAME     (PGHOST/PGPORT/PGUSER from the environment; needs dotnet)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bindir="$1"
db="$2"
log() { printf 'wal2arrow-test: %s\n' "$*"; }
work="$(mktemp -d /tmp/wal2arrow-cscheck.XXXXXX)"
trap 'rm -rf "$work"' EXIT

dotnet build "$here/cscheck/cscheck.csproj" -c Release -o "$work/bin" -nologo -v q >"$work/build.log" 2>&1 \
    || { cat "$work/build.log"; log "cscheck build failed"; exit 1; }

psql=("$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d "$db")
"${psql[@]}" >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS cs_types, cs_toast, cs_key, cs_nopk, cs_multi, cs_deferred, cs_fulltoast, cs_keytypes;
DROP DOMAIN IF EXISTS cs_posint, cs_num, cs_dates, cs_text;
DROP TYPE IF EXISTS cs_mood;
CREATE DOMAIN cs_posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN cs_num AS numeric(10,2);
CREATE DOMAIN cs_dates AS date[];
CREATE DOMAIN cs_text AS varchar(10);
CREATE TYPE cs_mood AS ENUM ('sad', 'happy');
CREATE TABLE cs_types (
    id bigint PRIMARY KEY, b boolean, i2 smallint, i4 integer, i8 bigint, o oid,
    f4 real, f8 double precision, n numeric(12,3), nw numeric(50,5), nu numeric,
    t text, vc varchar(20), c char(5), nm name, by bytea,
    d date, ts timestamp, tstz timestamptz(3), tm time, iv interval, ivf interval day to second(2),
    u uuid, j json, jb jsonb, ia integer[], ta text[], na numeric(6,2)[], tsa timestamptz[], da date[],
    f8a float8[], ba bytea[], inet_col inet, pt point, tsr tstzrange, m money, ttz timetz, bits bit(3),
    dom cs_posint, dnum cs_num, ddates cs_dates, dtext cs_text, mood cs_mood, moods cs_mood[]);
ALTER TABLE cs_types REPLICA IDENTITY FULL;
CREATE TABLE cs_toast (id int PRIMARY KEY, small text, payload text);
ALTER TABLE cs_toast ALTER COLUMN payload SET STORAGE EXTERNAL;
CREATE TABLE cs_key (id int PRIMARY KEY, v text, d date);
-- REPLICA IDENTITY FULL: pgoutput flags every column as key; the connector uses the primary key
CREATE TABLE cs_nopk (a int, b text);
CREATE TABLE cs_multi (a int, b text, c int, d int, PRIMARY KEY (c, a) INCLUDE (b));
CREATE TABLE cs_deferred (a int, b int PRIMARY KEY DEFERRABLE);
ALTER TABLE cs_nopk REPLICA IDENTITY FULL;
ALTER TABLE cs_multi REPLICA IDENTITY FULL;
ALTER TABLE cs_deferred REPLICA IDENTITY FULL;
-- REPLICA IDENTITY FULL: an unchanged TOAST value is filled from the old row (logged inline)
CREATE TABLE cs_fulltoast (id int PRIMARY KEY, small text, payload text, other text);
ALTER TABLE cs_fulltoast ALTER COLUMN payload SET STORAGE EXTERNAL;
ALTER TABLE cs_fulltoast REPLICA IDENTITY FULL;
-- a partition key of types whose text depends on the session settings (DateStyle, TimeZone,
-- IntervalStyle, extra_float_digits, bytea_output) and text that needs JSON escapes
CREATE TABLE cs_keytypes (k text, t timestamptz, f float8, b bytea, d date, i interval, n numeric, v int,
    PRIMARY KEY (k, t, f, b, d, i, n));
DROP PUBLICATION IF EXISTS cs_pub;
CREATE PUBLICATION cs_pub FOR TABLE cs_types, cs_toast, cs_key, cs_nopk, cs_multi, cs_deferred, cs_fulltoast, cs_keytypes;
SELECT 'init' FROM pg_create_logical_replication_slot('cs_pgo', 'pgoutput');
SELECT 'init' FROM pg_create_logical_replication_slot('cs_w2a', 'wal2arrow');
INSERT INTO cs_toast SELECT 1, 'a', string_agg(md5(g::text), '') FROM generate_series(1, 200) g;
BEGIN;
INSERT INTO cs_types VALUES (
    1, true, -2, 4, 8000000000, 4000000000,
    1.5, '-0', 123456789.123, -12345678901234567890123456789012345678901234.56789, 'NaN',
    'text ü 😀', 'varchar', 'ab', 'aname', '\xdeadbeef00',
    '2024-02-29', '2024-02-29 12:34:56.789012', '1999-12-31 23:59:59.999+02', '24:00:00',
    '1 year 2 mons 3 days 04:05:06.000007', '-1 day +02:03:04.5',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": 1,  "b": [true]}', '{"b": 2, "a": 1}', '{1,NULL,3}',
    '{"x y",z,"q\"uo\\te",NULL,"NULL",""}', '{1.50,-2.25}', '{"2000-01-01 00:00:00+00",NULL}', '{2024-01-01,0044-03-15 BC}',
    '{1.5,NaN,-Infinity,-0}', '{"\\x00ff",NULL}', '192.168.0.1/24', '(1.5,2)',
    '[2024-01-01 00:00:00+00,2024-01-02 00:00:00+00)', '12.34', '12:00:00+05', '101',
    7, 12.5, '{2024-01-01}', 'dom text', 'happy', '{sad,happy}');
INSERT INTO cs_types VALUES (2, false, 32767, -2147483648, -9223372036854775808, 0,
    'NaN', '-Infinity', -0.001, 0, '-1.5e-10', '', NULL, NULL, NULL, '\x',
    '0001-01-01 BC', '1970-01-01 00:00:00', '2262-04-11 23:47:16.854+00', '00:00:00.000001', '-1 mons -00:00:00.000001', '0',
    NULL, 'null', '[]', '{}', '{}', NULL, '{}', '{}', '{}', '{}', NULL, NULL, 'empty', NULL, NULL, NULL,
    1, 'NaN', '{}', '', 'sad', '{}');
INSERT INTO cs_types (id) VALUES (3);
-- values Arrow cannot hold
INSERT INTO cs_types (id, n, d, ts, tstz, iv, ia, na, tsa, da, f4, f8, ddates, dnum) VALUES (4, 'NaN', 'infinity', '-infinity',
    '294276-12-31 23:59:59.999+00', '2562048:00:00', '{{1,2},{3,NULL}}', '[0:1]={1.50,NaN}',
    '{infinity,NULL}', '[2:2]={2024-01-01}', 'NaN', '-NaN', '{infinity}', -99999999.99);
INSERT INTO cs_types (id, ts, tstz, iv, f8) VALUES (5, '294276-12-31 23:59:59.999999', '-infinity', '-2562048:00:00',
    'Infinity'::float8 - 'Infinity'::float8);
-- BC leap days (1 BC, 5 BC, 3769 BC are leap years) and the ends of the date and timestamp ranges
INSERT INTO cs_types (id, d, ts, tstz, tsa, da, ddates) VALUES (6, '0005-02-29 BC', '0001-02-29 00:00:00 BC',
    '3769-02-29 06:40:38.790+00 BC', '{"3769-02-29 06:40:38.790399+00 BC","4714-11-24 00:00:00+00 BC","294247-01-10 04:00:54.775807+00"}',
    '{0005-02-29 BC,4714-11-24 BC,5874897-12-31}', '{0001-02-29 BC}');
INSERT INTO cs_types (id, d, ts, tstz) VALUES (7, '4714-11-24 BC', '4714-11-24 00:00:00 BC', '294247-01-10 04:00:54.775+00'),
    (8, '5874897-12-31', '294247-01-10 04:00:54.775807', '4714-11-24 00:00:00+00 BC');
COMMIT;
UPDATE cs_types SET i4 = 5, t = 'changed' WHERE id = 1;
UPDATE cs_types SET d = '-infinity', ts = '2024-01-01' WHERE id = 4;
UPDATE cs_toast SET small = 'b' WHERE id = 1;
-- a changed key under DEFAULT identity: the old key is sent, the TOAST value stays unchanged
UPDATE cs_toast SET id = 3, small = 'c' WHERE id = 1;
UPDATE cs_toast SET id = 1 WHERE id = 3;
DELETE FROM cs_types WHERE id = 3;
INSERT INTO cs_key VALUES (1, 'one', 'infinity'), (2, 'two', NULL);
UPDATE cs_key SET id = 10 WHERE id = 1;
DELETE FROM cs_key WHERE id = 2;
BEGIN;
INSERT INTO cs_key VALUES (3, 'three', '2024-01-01');
ALTER TABLE cs_key ADD COLUMN extra numeric(5,1);
INSERT INTO cs_key VALUES (4, 'four', NULL, 'NaN');
TRUNCATE cs_toast;
INSERT INTO cs_toast VALUES (2, 'after truncate', NULL);
COMMIT;
INSERT INTO cs_nopk VALUES (1, 'one');
UPDATE cs_nopk SET b = 'uno';
DELETE FROM cs_nopk;
INSERT INTO cs_multi VALUES (1, 'one', 2, 3);
UPDATE cs_multi SET d = 4, c = 5;
DELETE FROM cs_multi;
INSERT INTO cs_deferred VALUES (1, 2);
UPDATE cs_deferred SET a = 3;
-- 1 MB stored out of line (STORAGE EXTERNAL: no compression); updates of other columns
INSERT INTO cs_fulltoast SELECT 1, 'a', string_agg(md5(g::text), ''), NULL FROM generate_series(1, 32768) g;
UPDATE cs_fulltoast SET small = 'b' WHERE id = 1;
BEGIN;
UPDATE cs_fulltoast SET id = 2, other = 'x' WHERE id = 1;
UPDATE cs_fulltoast SET payload = 'short now' WHERE id = 2;
COMMIT;
DELETE FROM cs_fulltoast;
SET TimeZone = 'Asia/Kolkata'; SET DateStyle = 'SQL, DMY'; SET IntervalStyle = 'iso_8601'; SET extra_float_digits = 0; SET bytea_output = 'escape';
INSERT INTO cs_keytypes SELECT 'k' || g || E' "q"\\\t' || chr(1) || chr(27) || 'é', '2024-01-01 10:00:00+00'::timestamptz + g * interval '1 hour',
    0.1 * g, ('\x00ff' || lpad(to_hex(g), 2, '0'))::bytea, '2024-02-28'::date + g, g * interval '1 day 2 hours', g / 7.0, g
FROM generate_series(1, 24) g;
UPDATE cs_keytypes SET v = -v WHERE v % 3 = 0;
UPDATE cs_keytypes SET k = k || '!' WHERE v % 4 = 0;
DELETE FROM cs_keytypes WHERE v % 5 = 0;
BEGIN;
INSERT INTO cs_keytypes VALUES ('before truncate', 'infinity', 'NaN', '\x', 'infinity', '0', 'NaN', 0);
TRUNCATE cs_keytypes, cs_key;
INSERT INTO cs_keytypes VALUES ('after truncate', '-infinity', '-Infinity', '\x01', '-infinity', '-1 year', '-0.5', 1);
COMMIT;
SQL

# the primary keys as the connector's PrimaryKeyCatalog reads them, key columns only (one line per
# table: relid, then the column names in index order, tab-separated)
"${psql[@]}" -At -F $'\t' >"$work/primary-keys.txt" <<'SQL'
SELECT i.indrelid::oid, string_agg(a.attname, E'\t' ORDER BY array_position(i.indkey::int2[], a.attnum))
FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid
    AND a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1])
WHERE i.indisprimary GROUP BY i.indrelid;
SQL

# pgoutput in text format under WalBridge's replication session settings (docs/format.md)
"${psql[@]}" -At -F $'\t' >"$work/pgoutput.txt" <<'SQL'
SET DateStyle = ISO; SET TimeZone = UTC; SET IntervalStyle = postgres; SET extra_float_digits = 3; SET bytea_output = hex;
SELECT lsn, encode(data, 'hex') FROM pg_logical_slot_get_binary_changes('cs_pgo', NULL, NULL, 'proto_version', '1', 'publication_names', 'cs_pub');
SQL
"${psql[@]}" -At -F $'\t' -c "SELECT lsn, encode(data, 'hex') FROM pg_logical_slot_peek_binary_changes('cs_w2a', NULL, NULL, 'proto_version', '2', 'publication_names', 'cs_pub', 'max_bytes', '0')" >"$work/wal2arrow-1.txt"
"${psql[@]}" -At -F $'\t' -c "SELECT lsn, encode(data, 'hex') FROM pg_logical_slot_get_binary_changes('cs_w2a', NULL, NULL, 'proto_version', '2', 'publication_names', 'cs_pub', 'max_bytes', '0', 'partitions', '3')" >"$work/wal2arrow-3.txt"
"${psql[@]}" -c "SELECT pg_drop_replication_slot('cs_pgo'), pg_drop_replication_slot('cs_w2a')" >/dev/null

for partitions in 1 3; do
    if ! dotnet "$work/bin/wal2arrow-cscheck.dll" "$work/pgoutput.txt" "$work/wal2arrow-$partitions.txt" "$work/primary-keys.txt" "$partitions"; then
        log "wal2arrow output ($partitions partitions) differs from ChangeBatchBuilder's (streams kept in /tmp/wal2arrow-cscheck-*.arrow)"
        exit 1
    fi
done
log "C# ChangeBatchBuilder's streams and the plugin's mean the same (Apache.Arrow C# reader): schema, fingerprint, rows, values, partitions (1 and 3)"

shopt -s nullglob
saved=("${WAL2ARROW_STREAMS_DIR:-/nonexistent}"/*.hex)
if (( ${#saved[@]} > 0 )); then
    if ! dotnet "$work/bin/wal2arrow-cscheck.dll" --read "${saved[@]}"; then
        log "Apache.Arrow (C#) could not read every wal2arrow chunk of the other checks"
        exit 1
    fi
fi
