-- wal2arrow: rows spread over partitions ('partitions' option) by Kafka's murmur2 of the JSON array
-- of the row's key text (README.md, "Partitions"); truncate rows in every partition
SET client_min_messages = warning;

-- murmur2 matches Kafka's test vectors (clients/src/test/java/.../UtilsTest.java)
SELECT s, wal2arrow_murmur2(convert_to(s, 'UTF8')) AS murmur2, wal2arrow_murmur2(convert_to(s, 'UTF8')) = expected AS as_kafka
FROM (VALUES ('21', -973932308), ('foobar', -790332482), ('a-little-bit-long-string', -985981536),
             ('a-little-bit-longer-string', -1486304829), ('lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971),
             ('abc', 479470107), ('', 275646681)) AS v(s, expected);
-- the partition a key's JSON text goes to among n
CREATE FUNCTION w2a_partition_of(key text, n int) RETURNS int LANGUAGE sql IMMUTABLE AS
$$ SELECT (wal2arrow_murmur2(convert_to(key, 'UTF8')) & 2147483647) % n $$;
-- the partition of each chunk containing the bytes of a value
CREATE FUNCTION w2a_partitions_of(msgs bytea[], value text) RETURNS int[] LANGUAGE sql IMMUTABLE AS
$$ SELECT array_agg(DISTINCT w2a_be32(m, 6)::int ORDER BY w2a_be32(m, 6)::int) FROM unnest(msgs) m
   WHERE chr(get_byte(m, 0)) = 'A' AND position(convert_to(value, 'UTF8') in m) > 0 $$;

CREATE TABLE pt (k text PRIMARY KEY, v int);
CREATE PUBLICATION pt_pub FOR TABLE pt;
SELECT 'init' FROM pg_create_logical_replication_slot('pt', 'wal2arrow');
INSERT INTO pt SELECT 'key-' || lpad(g::text, 3, '0'), g FROM generate_series(1, 30) g;
UPDATE pt SET v = v + 100 WHERE v <= 15;
DELETE FROM pt WHERE v BETWEEN 20 AND 30;
CREATE TABLE pt_msgs AS SELECT array_agg(data ORDER BY n) AS msgs
FROM pg_logical_slot_get_binary_changes('pt', NULL, NULL, 'proto_version', '2', 'publication_names', 'pt_pub', 'partitions', '3')
     WITH ORDINALITY AS c(lsn, xid, data, n);
-- per transaction: B, R (first), one chunk per partition with rows (ascending), C
SELECT w2a(m) FROM pt_msgs, unnest(msgs) m;
-- rows over all 3 partitions; each key (inserted, updated, deleted) always in one partition, the one
-- of its JSON key ["key-NNN"]
SELECT count(*) AS keys, count(*) FILTER (WHERE cardinality(parts) = 1) AS in_one_partition,
       bool_and(parts = ARRAY[w2a_partition_of(format('["%s"]', k), 3)]) AS partition_as_murmur2,
       count(DISTINCT parts) AS partitions_used
FROM (SELECT k, w2a_partitions_of(msgs, k) AS parts
      FROM pt_msgs, (SELECT 'key-' || lpad(g::text, 3, '0') AS k FROM generate_series(1, 30) g) keys) x;
SELECT w2a_be32(m, 6) AS partition, count(*) AS chunks, sum(w2a_be32(m, 15)) AS rows
FROM pt_msgs, unnest(msgs) m WHERE chr(get_byte(m, 0)) = 'A' GROUP BY 1 ORDER BY 1;

-- an update that changes the key goes to the partition of the NEW key (the old key is in _before);
-- when that is another partition, the old key's partition gets a delete of the old key
SELECT w2a_partition_of('["key-005"]', 3) AS old_partition, w2a_partition_of('["key-105"]', 3) AS new_partition;
UPDATE pt SET k = 'key-105' WHERE k = 'key-005';
SELECT w2a(data), w2a_be32(data, 6) = w2a_partition_of('["key-105"]', 3) AS new_key_partition,
       w2a_be32(data, 6) = w2a_partition_of('["key-005"]', 3) AS old_key_partition,
       position('key-105'::bytea in data) > 0 AS has_new_key,
       position('key-005'::bytea in data) > 0 AS has_old_key
FROM pg_logical_slot_get_binary_changes('pt', NULL, NULL, 'proto_version', '2', 'publication_names', 'pt_pub', 'partitions', '3')
WHERE chr(get_byte(data, 0)) = 'A';

-- a truncate is a row in every partition, in WAL order with the other rows
BEGIN;
INSERT INTO pt VALUES ('key-201', 1);
TRUNCATE pt;
INSERT INTO pt VALUES ('key-202', 2);
COMMIT;
SELECT w2a(data), position('_truncate'::bytea in data) > 0 AS truncate_row,
       position('key-201'::bytea in data) > 0 AS has_201, position('key-202'::bytea in data) > 0 AS has_202
FROM pg_logical_slot_get_binary_changes('pt', NULL, NULL, 'proto_version', '2', 'publication_names', 'pt_pub', 'partitions', '3')
WHERE chr(get_byte(data, 0)) = 'A';
SELECT w2a_partition_of('["key-201"]', 3) AS p201, w2a_partition_of('["key-202"]', 3) AS p202;

-- the key text: quotes, backslashes and bytes below 0x20 escaped (\u00xx, lower case), nothing else
CREATE TABLE pt_esc (k text PRIMARY KEY);
ALTER PUBLICATION pt_pub ADD TABLE pt_esc;
CREATE TABLE pt_esc_keys (k text, json text);
INSERT INTO pt_esc_keys VALUES ('q"uote', '["q\"uote"]'), (E'back\\slash', '["back\\slash"]'), (E'tab\there', '["tab\u0009here"]'),
    (E'ctl\x1fend', '["ctl\u001fend"]'), ('ünïcødé', '["ünïcødé"]'), ('plain/del' || chr(127), '["plain/del' || chr(127) || '"]'),
    ('key-1', '["key-1"]'), ('key-2', '["key-2"]'), ('key-3', '["key-3"]'), ('key-4', '["key-4"]');
INSERT INTO pt_esc SELECT k FROM pt_esc_keys;
CREATE TABLE pt_esc_msgs AS SELECT array_agg(data ORDER BY n) AS msgs
FROM pg_logical_slot_get_binary_changes('pt', NULL, NULL, 'proto_version', '2', 'publication_names', 'pt_pub', 'partitions', '7')
     WITH ORDINALITY AS c(lsn, xid, data, n);
SELECT json, w2a_partitions_of(msgs, k) AS partitions, w2a_partitions_of(msgs, k) = ARRAY[w2a_partition_of(json, 7)] AS as_murmur2
FROM pt_esc_msgs, pt_esc_keys ORDER BY json;

-- several key columns: in pg.primary_key order (column order, not the index's); their text under
-- the session settings the plugin pushes (TimeZone UTC here, not the session's)
SET TimeZone = 'America/New_York';
CREATE TABLE pt_multi (a int, b timestamptz, c text, PRIMARY KEY (c, b, a));
ALTER PUBLICATION pt_pub ADD TABLE pt_multi;
INSERT INTO pt_multi SELECT g, '2024-01-01 10:00:00-05', format('c%s.', g) FROM generate_series(1, 12) g;
SELECT w2a(data), w2a_pk(data) FROM pg_logical_slot_peek_binary_changes('pt', NULL, NULL, 'proto_version', '2', 'publication_names', 'pt_pub', 'partitions', '4')
WHERE chr(get_byte(data, 0)) = 'R';
SELECT count(*) AS rows, bool_and(parts = ARRAY[w2a_partition_of(format('["%s","2024-01-01 15:00:00+00","c%s."]', g, g), 4)]) AS as_murmur2,
       count(DISTINCT parts) AS partitions_used
FROM (SELECT g, w2a_partitions_of(ARRAY(SELECT data FROM pg_logical_slot_peek_binary_changes('pt', NULL, NULL, 'proto_version', '2',
              'publication_names', 'pt_pub', 'partitions', '4')), format('c%s.', g)) AS parts
      FROM generate_series(1, 12) g) x;
SELECT count(*) FROM pg_logical_slot_get_binary_changes('pt', NULL, NULL, 'proto_version', '2', 'publication_names', 'pt_pub');
RESET TimeZone;

-- no key: REPLICA IDENTITY FULL without a primary key (pg.primary_key lists every column) and
-- NOTHING (pg.primary_key empty): every row in partition 0; a key under FULL: the primary key
CREATE TABLE pt_nopk (a int, b text);
ALTER TABLE pt_nopk REPLICA IDENTITY FULL;
CREATE TABLE pt_nothing (a int, b text);
ALTER TABLE pt_nothing REPLICA IDENTITY NOTHING;
CREATE TABLE pt_full (a int PRIMARY KEY, b text);
ALTER TABLE pt_full REPLICA IDENTITY FULL;
CREATE PUBLICATION pt_nokey_pub FOR TABLE pt_nopk, pt_nothing, pt_full WITH (publish = 'insert, update, delete');
INSERT INTO pt_nopk SELECT g, 'x' || g FROM generate_series(1, 20) g;
UPDATE pt_nopk SET b = b || 'y';
DELETE FROM pt_nopk WHERE a > 10;
INSERT INTO pt_nothing SELECT g, 'x' || g FROM generate_series(1, 20) g;
INSERT INTO pt_full SELECT g, 'x' || g FROM generate_series(1, 20) g;
UPDATE pt_full SET b = 'z' || a;
DELETE FROM pt_full WHERE a > 10;
WITH m AS (SELECT data, n FROM pg_logical_slot_get_binary_changes('pt', NULL, NULL, 'proto_version', '2', 'publication_names', 'pt_nokey_pub', 'partitions', '5')
           WITH ORDINALITY AS c(lsn, xid, data, n)),
     r AS (SELECT w2a_be32(data, 1) AS relid, w2a_str16(data, 16 + ((get_byte(data, 14) << 8) | get_byte(data, 15))) AS rel, w2a_pk(data) AS pk
           FROM m WHERE chr(get_byte(data, 0)) = 'R')
SELECT r.rel, r.pk, array_agg(DISTINCT w2a_be32(m.data, 6)) AS partitions, sum(w2a_be32(m.data, 15)) AS rows
FROM m JOIN r ON w2a_be32(m.data, 2) = r.relid WHERE chr(get_byte(m.data, 0)) = 'A' GROUP BY 1, 2 ORDER BY 1;

-- a schema change inside a transaction ends each partition's segment: the rows of the old schema
-- go out first, each partition's last chunk flagged, then R with the new schema and the new rows
BEGIN;
INSERT INTO pt SELECT 'key-' || g, g FROM generate_series(301, 320) g;
ALTER TABLE pt ADD COLUMN w text;
INSERT INTO pt VALUES ('key-400', 400, 'new');
UPDATE pt SET w = 'x' WHERE k = 'key-301';
COMMIT;
SELECT w2a(data), w2a_fp(data) IS DISTINCT FROM lag(w2a_fp(data)) OVER (ORDER BY n) AND w2a_fp(data) IS NOT NULL AS new_fingerprint
FROM pg_logical_slot_get_binary_changes('pt', NULL, NULL, 'proto_version', '2', 'publication_names', 'pt_pub', 'partitions', '3') WITH ORDINALITY AS c(lsn, xid, data, n)
ORDER BY n;
SELECT w2a_partition_of('["key-400"]', 3) AS p400, w2a_partition_of('["key-301"]', 3) AS p301;

SELECT 'stop' FROM pg_drop_replication_slot('pt');
