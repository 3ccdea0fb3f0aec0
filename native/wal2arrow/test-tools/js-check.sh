#!/usr/bin/env bash
# Independent check of wal2arrow's Arrow output with the apache-arrow JS reader (npm
# apache-arrow@21.2.0 as installed by scripts/setup.sh into tools/arrow-js):
# runs a workload with every mapped type, NULLs, an update with the old row, an unchanged TOAST
# value (DEFAULT identity: null + _unchanged; REPLICA IDENTITY FULL: filled from the old row), a
# delete, a truncate, values Arrow cannot hold (_special), text keys that need JSON escapes, a
# table without a key and a schema change inside a transaction; extracts the messages (3
# partitions) with psql; decodes every chunk with decode.mjs (schema message of its Relation +
# its record batch + end-of-stream marker, and all batches of a table, partition and schema as one
# stream; partitions recomputed with murmur2 in JS); compares the normalized dump with expected-js.out.
#   js-check.sh BINDIR DBNAME     (PGHOST/PGPORT/PGUSER from the environment)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bindir="$1"
db="$2"
js_dir="${WAL2ARROW_JS_DIR:-$(cd "$here/../../.." && pwd)/tools/arrow-js}"
log() { printf 'wal2arrow-test: %s\n' "$*"; }

if [[ ! -f $js_dir/node_modules/apache-arrow/package.json ]] \
    || ! grep -q '"version": "21.2.0"' "$js_dir/node_modules/apache-arrow/package.json"; then
    log "apache-arrow 21.2.0 is not installed in $js_dir: run scripts/setup.sh (or scripts/setup-js.sh)"
    exit 1
fi

psql=("$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d "$db")
"${psql[@]}" >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS js_types, js_toast, js_fulltoast, js_textkey, js_nopk;
CREATE TABLE js_types (
    id bigint PRIMARY KEY, b boolean, i2 smallint, i4 integer, i8 bigint, o oid,
    f4 real, f8 double precision, n numeric(12,3), nw numeric(50,5), nu numeric,
    t text, vc varchar(20), c char(5), nm name, by bytea,
    d date, ts timestamp, tstz timestamptz(3), tm time, iv interval,
    u uuid, j json, jb jsonb, ia integer[], ta text[], na numeric(6,2)[], tsa timestamptz[],
    inet_col inet, pt point, tsr tstzrange, m money);
ALTER TABLE js_types REPLICA IDENTITY FULL;
CREATE TABLE js_toast (id int PRIMARY KEY, small text, payload text);
ALTER TABLE js_toast ALTER COLUMN payload SET STORAGE EXTERNAL;
CREATE TABLE js_fulltoast (id int PRIMARY KEY, small text, payload text);
ALTER TABLE js_fulltoast ALTER COLUMN payload SET STORAGE EXTERNAL;
ALTER TABLE js_fulltoast REPLICA IDENTITY FULL;
-- text keys whose JSON needs escapes; REPLICA IDENTITY FULL without a primary key: partition 0
CREATE TABLE js_textkey (k text PRIMARY KEY, n int);
CREATE TABLE js_nopk (a int, b text);
ALTER TABLE js_nopk REPLICA IDENTITY FULL;
DROP PUBLICATION IF EXISTS js_pub;
CREATE PUBLICATION js_pub FOR TABLE js_types, js_toast, js_fulltoast, js_textkey, js_nopk;
SELECT 'init' FROM pg_create_logical_replication_slot('js', 'wal2arrow');
INSERT INTO js_toast SELECT 1, 'a', string_agg(md5(g::text), '') FROM generate_series(1, 200) g;
BEGIN;
INSERT INTO js_types VALUES (
    1, true, -2, 4, 8000000000, 4000000000,
    1.5, '-0', 123456789.123, -12345678901234567890123456789012345678901234.56789, 'NaN',
    'text ü', 'varchar', 'ab', 'aname', '\xdeadbeef',
    '2024-02-29', '2024-02-29 12:34:56.789012', '1999-12-31 23:59:59.999+02', '24:00:00', '1 year 2 mons 3 days 04:05:06.000007',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": 1,  "b": [true]}', '{"b": 2, "a": 1}', '{1,NULL,3}', '{"x y",z}', '{1.50,-2.25}',
    '{"2000-01-01 00:00:00+00",NULL}', '192.168.0.1/24', '(1.5,2)', '[2024-01-01 00:00:00+00,2024-01-02 00:00:00+00)', '12.34');
INSERT INTO js_types VALUES (2, false, 32767, -2147483648, -9223372036854775808, 0,
    'NaN', '-Infinity', -0.001, 0, '-1.5e-10', '', NULL, NULL, NULL, '\x',
    '0001-01-01 BC', '1970-01-01 00:00:00', '2262-04-11 23:47:16.854+00', '00:00:00.000001', '-1 mons -00:00:00.000001',
    NULL, 'null', '[]', '{}', '{}', NULL, '{}', NULL, NULL, 'empty', NULL);
INSERT INTO js_types (id) VALUES (3);
-- values Arrow cannot hold: null + PostgreSQL's text in _special
INSERT INTO js_types (id, n, d, ts, tstz, iv, ia, na, tsa, f4, f8) VALUES (4, 'NaN', 'infinity', '-infinity',
    '294276-12-31 23:59:59.999999+00', '2562048:00:00', '{{1,2},{3,NULL}}', '[0:1]={1.50,NaN}',
    '{infinity,NULL}', 'NaN', '-NaN');
COMMIT;
UPDATE js_types SET i4 = 5, t = 'changed' WHERE id = 1;
UPDATE js_types SET d = '-infinity' WHERE id = 4;
UPDATE js_toast SET small = 'b' WHERE id = 1;
-- REPLICA IDENTITY FULL: the unchanged 1 MB value is filled from the old row, not in _unchanged
INSERT INTO js_fulltoast SELECT 1, 'a', string_agg(md5(g::text), '') FROM generate_series(1, 32768) g;
UPDATE js_fulltoast SET small = 'b' WHERE id = 1;
DELETE FROM js_types WHERE id = 3;
TRUNCATE js_toast;
INSERT INTO js_textkey VALUES ('q"uote', 1), (E'back\\slash', 2), (E'tab\there', 3), (E'nl\nx\x01', 4), ('ünï', 5), ('€', 6),
    ('a', 7), ('b', 8), ('c', 9), ('d', 10);
UPDATE js_textkey SET k = k || '!' WHERE n <= 5;
DELETE FROM js_textkey WHERE n > 8;
INSERT INTO js_nopk SELECT g, 'v' || g FROM generate_series(1, 6) g;
UPDATE js_nopk SET b = b || '+' WHERE a > 3;
BEGIN;
INSERT INTO js_textkey VALUES ('e', 11), ('f', 12), ('g', 13);
ALTER TABLE js_textkey ADD COLUMN note text;
INSERT INTO js_textkey VALUES ('h', 14, 'after the schema change');
TRUNCATE js_textkey, js_nopk;
COMMIT;
SQL

out="$(mktemp)"
trap 'rm -f "$out" "$out.hex"' EXIT
"${psql[@]}" -At -c "SELECT encode(data, 'hex') FROM pg_logical_slot_get_binary_changes('js', NULL, NULL, 'proto_version', '2', 'publication_names', 'js_pub', 'partitions', '3')" >"$out.hex"
"${psql[@]}" -c "SELECT pg_drop_replication_slot('js')" >/dev/null
# kept for the Apache.Arrow C# reading pass of cscheck.sh (run-tests.sh sets the folder)
if [[ -n ${WAL2ARROW_STREAMS_DIR:-} ]]; then
    cp "$out.hex" "$WAL2ARROW_STREAMS_DIR/js-check.hex"
fi
status=0
ARROW_JS_DIR="$js_dir" PARTITIONS=3 node "$here/decode.mjs" <"$out.hex" \
    | sed -E 's/pg\.relid=[0-9]+/pg.relid=N/g; s/fp=[0-9a-f]{16}/fp=F/g' >"$out" || status=$?
if (( status != 0 )) || ! diff -u "$here/expected-js.out" "$out"; then
    log "apache-arrow JS decode differs from test-tools/expected-js.out (or failed)"
    cp "$out" "${WAL2ARROW_JS_ACTUAL:-/tmp/wal2arrow-js-actual.out}"
    exit 1
fi
log "apache-arrow 21.2.0 (JS) decoded every chunk and the concatenated streams; values and partitions as expected"
