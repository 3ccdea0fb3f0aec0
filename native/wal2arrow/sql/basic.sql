-- wal2arrow: framing (version 2) of begin/relation/chunk/commit, publication table selection,
-- the transaction columns, truncate rows, messages, schema changes inside a transaction.
SET client_min_messages = warning;

-- helpers decoding the framing (see README.md)
CREATE FUNCTION w2a_be32(b bytea, off int) RETURNS bigint LANGUAGE sql IMMUTABLE AS
$$ SELECT (get_byte(b, off)::bigint << 24) | (get_byte(b, off + 1) << 16) | (get_byte(b, off + 2) << 8) | get_byte(b, off + 3) $$;
CREATE FUNCTION w2a_le32(b bytea, off int) RETURNS bigint LANGUAGE sql IMMUTABLE AS
$$ SELECT (get_byte(b, off + 3)::bigint << 24) | (get_byte(b, off + 2) << 16) | (get_byte(b, off + 1) << 8) | get_byte(b, off) $$;
CREATE FUNCTION w2a_str16(b bytea, off int) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT convert_from(substring(b from off + 3 for (get_byte(b, off) << 8) | get_byte(b, off + 1)), 'UTF8') $$;
-- framing version 2: the offsets of the Relation message's tail, and its schema message
CREATE FUNCTION w2a_rel_tail(b bytea) RETURNS int LANGUAGE sql IMMUTABLE AS
$$ SELECT 16 + ((get_byte(b, 14) << 8) | get_byte(b, 15)) + 2
          + ((get_byte(b, 16 + ((get_byte(b, 14) << 8) | get_byte(b, 15))) << 8)
             | get_byte(b, 17 + ((get_byte(b, 14) << 8) | get_byte(b, 15)))) $$;
CREATE FUNCTION w2a_schema(b bytea) RETURNS bytea LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE chr(get_byte(b, 0)) WHEN 'R' THEN substring(b from w2a_rel_tail(b) + 7) END $$;
-- one line per message. R: valid = schema message length, Arrow continuation marker, metadata
-- length, 8-byte alignment. A: valid = record batch length, continuation marker, 8-byte alignment,
-- not a stream (no schema message: its flatbuffer's header type would be Schema = 1).
-- (the fingerprint is checked at the end: fp_doc)
CREATE FUNCTION w2a(b bytea) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    t text := chr(get_byte(b, 0));
    s bytea;
    tail int;
    nsp_len int;
    ok bool;
BEGIN
    IF t = 'B' THEN
        RETURN format('B version=%s len=%s', get_byte(b, 1), length(b));
    ELSIF t = 'C' THEN
        RETURN format('C len=%s commit<=end=%s', length(b), substring(b from 3 for 8) <= substring(b from 11 for 8));
    ELSIF t = 'R' THEN
        nsp_len := (get_byte(b, 14) << 8) | get_byte(b, 15);
        tail := w2a_rel_tail(b);
        s := w2a_schema(b);
        ok := w2a_be32(b, tail + 2) = length(s)
              AND substring(s from 1 for 4) = '\xffffffff'::bytea
              AND 8 + w2a_le32(s, 4) = length(s) AND length(s) % 8 = 0;
        RETURN format('R %s.%s identity=%s columns=%s schema=%s', w2a_str16(b, 14), w2a_str16(b, 16 + nsp_len),
                      chr(get_byte(b, 13)), (get_byte(b, tail) << 8) | get_byte(b, tail + 1), ok);
    ELSIF t = 'M' THEN
        RETURN format('M transactional=%s prefix=%s content=%s', get_byte(b, 1), w2a_str16(b, 10),
                      convert_from(substring(b from 17 + ((get_byte(b, 10) << 8) | get_byte(b, 11))), 'UTF8'));
    ELSIF t = 'A' THEN
        s := substring(b from 32);
        ok := get_byte(b, 1) = 0
              AND w2a_be32(b, 27) = length(s)
              AND substring(s from 1 for 4) = '\xffffffff'::bytea
              AND length(s) % 8 = 0 AND w2a_le32(s, 4) % 8 = 0
              AND position(convert_to('_op', 'UTF8') in s) = 0;
        RETURN format('A partition=%s chunk=%s last=%s rows=%s valid=%s',
                      w2a_be32(b, 6), w2a_be32(b, 10), get_byte(b, 14) = 1, w2a_be32(b, 15), ok);
    END IF;
    RETURN 'unknown message ' || t;
END $$;
-- fingerprint carried by R and A messages
CREATE FUNCTION w2a_fp(b bytea) RETURNS bytea LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE chr(get_byte(b, 0)) WHEN 'R' THEN substring(b from 6 for 8) WHEN 'A' THEN substring(b from 20 for 8) END $$;
-- a Relation message's schema metadata pg.primary_key: in the FlatBuffers schema message the value
-- string (uint32 length, bytes, NUL, zero padding to 4) lies just before the key string "pg.primary_key"
CREATE FUNCTION w2a_pk(b bytea) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    s bytea;
    p int;
    len int;
BEGIN
    IF chr(get_byte(b, 0)) <> 'R' THEN
        RETURN NULL;
    END IF;
    s := w2a_schema(b);
    p := position('\x0e000000'::bytea || convert_to('pg.primary_key', 'UTF8') in s) - 1;
    IF p < 0 THEN
        RETURN 'no pg.primary_key';
    END IF;
    FOR q IN REVERSE p - 8 .. 0 BY 4 LOOP
        len := w2a_le32(s, q);
        IF (len + 8) / 4 * 4 = p - q THEN
            RETURN convert_from(substring(s from q + 5 for len), 'UTF8');
        END IF;
    END LOOP;
    RETURN 'not found';
END $$;
-- the bytes of b in reverse order (little-endian values in the Arrow buffers)
CREATE FUNCTION w2a_reverse(b bytea) RETURNS bytea LANGUAGE sql IMMUTABLE AS
$$ SELECT string_agg(substring(b from i for 1), ''::bytea ORDER BY i DESC) FROM generate_series(1, length(b)) i $$;
-- the test helper the plugin exports: Kafka's murmur2 of the bytes
CREATE FUNCTION wal2arrow_murmur2(bytea) RETURNS int LANGUAGE c IMMUTABLE STRICT AS 'wal2arrow', 'wal2arrow_murmur2';

CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2));
CREATE TABLE other (id bigint PRIMARY KEY, note text);
CREATE TABLE unpublished (id int PRIMARY KEY);
CREATE PUBLICATION pub FOR TABLE items, other;
CREATE PUBLICATION pub_insert_only FOR TABLE items WITH (publish = 'insert');
CREATE PUBLICATION pub_all FOR ALL TABLES;

SELECT 'init' FROM pg_create_logical_replication_slot('s', 'wal2arrow');

-- one transaction, two tables: B, then R (with the schema message) + A (one record batch) per
-- table at commit, C; one partition (the default): partition 0
BEGIN;
INSERT INTO items VALUES (1, 'apple', 1.25), (2, 'pear', 2.50);
INSERT INTO other VALUES (10, 'x');
INSERT INTO items VALUES (3, 'plum', NULL);
COMMIT;
SELECT w2a(data) FROM pg_logical_slot_peek_binary_changes('s', NULL, NULL, 'proto_version', '2', 'publication_names', 'pub');
-- the values are in the stream
SELECT count(*) FILTER (WHERE position('apple'::bytea in data) > 0) AS apple,
       count(*) FILTER (WHERE position('plum'::bytea in data) > 0) AS plum
FROM pg_logical_slot_peek_binary_changes('s', NULL, NULL, 'proto_version', '2', 'publication_names', 'pub');
-- every row holds its transaction: _xid (B's xid), _commit_lsn (B's final LSN) and _commit_ts
-- (B's commit time, in microseconds since 1970) as little-endian uint32/uint64/int64 values, so
-- the three rows of items hold each of them three times in a row
WITH m AS (SELECT data, n FROM pg_logical_slot_peek_binary_changes('s', NULL, NULL, 'proto_version', '2', 'publication_names', 'pub')
           WITH ORDINALITY AS c(lsn, xid, data, n)),
     b AS (SELECT w2a_reverse(substring(data from 3 for 4)) AS xid, w2a_reverse(substring(data from 7 for 8)) AS final_lsn,
                  w2a_reverse(int8send(('x' || encode(substring(data from 15 for 8), 'hex'))::bit(64)::bigint + 946684800000000)) AS unix_ts
           FROM m WHERE chr(get_byte(data, 0)) = 'B')
SELECT w2a(m.data),
       position(b.xid || b.xid || b.xid in m.data) > 0 AS xid3,
       position(b.final_lsn || b.final_lsn || b.final_lsn in m.data) > 0 AS commit_lsn3,
       position(b.unix_ts || b.unix_ts || b.unix_ts in m.data) > 0 AS commit_ts3,
       position(b.xid in m.data) > 0 AS has_xid
FROM m, b WHERE chr(get_byte(m.data, 0)) = 'A' ORDER BY n;
-- a publication with publish = 'insert' and only items
SELECT w2a(data) FROM pg_logical_slot_get_binary_changes('s', NULL, NULL, 'proto_version', '2', 'publication_names', 'pub_insert_only');

-- updates and deletes; the relation message is sent once per session
UPDATE items SET price = 3.00 WHERE id = 1;
DELETE FROM items WHERE id = 2;
SELECT w2a(data) FROM pg_logical_slot_peek_binary_changes('s', NULL, NULL, 'proto_version', '2', 'publication_names', 'pub');
-- ... not published by pub_insert_only: nothing at all (empty transactions are skipped)
SELECT count(*) FROM pg_logical_slot_get_binary_changes('s', NULL, NULL, 'proto_version', '2', 'publication_names', 'pub_insert_only');

-- tables outside the publication produce nothing; FOR ALL TABLES sees them
INSERT INTO unpublished VALUES (1);
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('s', NULL, NULL, 'proto_version', '2', 'publication_names', 'pub');
SELECT w2a(data) FROM pg_logical_slot_get_binary_changes('s', NULL, NULL, 'proto_version', '2', 'publication_names', 'pub_all');

-- several publications at once
INSERT INTO other VALUES (11, 'y');
SELECT w2a(data) FROM pg_logical_slot_get_binary_changes('s', NULL, NULL, 'proto_version', '2', 'publication_names', 'pub_insert_only,pub');

-- truncate: a row (_op t, every table column null, _special {_truncate: options}) in WAL order
-- with the table's other rows; no framing message of its own
BEGIN;
INSERT INTO items VALUES (4, 'fig', 4.00);
TRUNCATE items, other RESTART IDENTITY;
COMMIT;
SELECT w2a(data), position('_truncate'::bytea in data) > 0 AS truncate_row,
       position('restart_identity'::bytea in data) > 0 AS restart_identity, position('cascade'::bytea in data) > 0 AS cascade
FROM pg_logical_slot_get_binary_changes('s', NULL, NULL, 'proto_version', '2', 'publication_names', 'pub');
-- rows after a truncate in the same transaction (the _op values: t, then c)
BEGIN;
TRUNCATE items CASCADE;
INSERT INTO items VALUES (5, 'kiwi', 5.00);
TRUNCATE other RESTART IDENTITY CASCADE;
TRUNCATE other;
COMMIT;
SELECT w2a(data), position('tc'::bytea in data) > 0 AS truncate_then_insert,
       position('cascade,restart_identity'::bytea in data) > 0 AS both_options
FROM pg_logical_slot_get_binary_changes('s', NULL, NULL, 'proto_version', '2', 'publication_names', 'pub');

-- logical decoding messages, when asked for
-- (a non-transactional message is decoded once later WAL is flushed: emit it first)
SELECT 'msg' FROM pg_logical_emit_message(false, 'walbridge', 'now');
SELECT 'msg' FROM pg_logical_emit_message(true, 'walbridge', 'hello');
SELECT w2a(data) FROM pg_logical_slot_peek_binary_changes('s', NULL, NULL, 'proto_version', '2', 'publication_names', 'pub', 'messages', 'true');
SELECT count(*) FROM pg_logical_slot_get_binary_changes('s', NULL, NULL, 'proto_version', '2', 'publication_names', 'pub');

-- a schema change inside a transaction: rows before it go out with the old schema
BEGIN;
INSERT INTO items VALUES (6, 'lime', 6.00);
ALTER TABLE items ADD COLUMN origin text;
INSERT INTO items VALUES (7, 'date', 7.00, 'oasis');
COMMIT;
SELECT w2a(data), w2a_fp(data) IS DISTINCT FROM lag(w2a_fp(data)) OVER (ORDER BY n) AND w2a_fp(data) IS NOT NULL AS new_fingerprint
FROM pg_logical_slot_get_binary_changes('s', NULL, NULL, 'proto_version', '2', 'publication_names', 'pub') WITH ORDINALITY AS c(lsn, xid, data, n)
ORDER BY n;

-- replica identity full: the old row is sent; pg.primary_key stays the primary key
ALTER TABLE other REPLICA IDENTITY FULL;
INSERT INTO other VALUES (12, 'old note');
UPDATE other SET note = 'new note' WHERE id = 12;
SELECT w2a(data), position('old note'::bytea in data) > 0 AS has_old_row, w2a_pk(data)
FROM pg_logical_slot_get_binary_changes('s', NULL, NULL, 'proto_version', '2', 'publication_names', 'pub');

-- pg.primary_key under REPLICA IDENTITY FULL (pgoutput flags every column as key): the table's
-- primary key, in column order, as the connector's TransactionAssembler sets it (any
-- pg_index.indisprimary index, DEFERRABLE too, its key columns only -- not INCLUDE columns -- like
-- its catalog query);
-- without a primary key every column. Other identities: the identity's columns.
CREATE TABLE pk_none (a int, b text);
CREATE TABLE pk_multi (a int, b text, c int, d int, PRIMARY KEY (c, a));
CREATE TABLE pk_deferred (a int, b int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE pk_include (a int, b int, c text, PRIMARY KEY (b) INCLUDE (a));
CREATE TABLE pk_default (a int, b int PRIMARY KEY);
CREATE TABLE pk_index (a int NOT NULL, b int PRIMARY KEY, c int);
CREATE UNIQUE INDEX pk_index_a ON pk_index (a);
ALTER TABLE pk_index REPLICA IDENTITY USING INDEX pk_index_a;
ALTER TABLE pk_none REPLICA IDENTITY FULL;
ALTER TABLE pk_multi REPLICA IDENTITY FULL;
ALTER TABLE pk_deferred REPLICA IDENTITY FULL;
ALTER TABLE pk_include REPLICA IDENTITY FULL;
CREATE PUBLICATION pk_pub FOR TABLE pk_none, pk_multi, pk_deferred, pk_include, pk_default, pk_index;
INSERT INTO pk_none VALUES (1, 'x');
INSERT INTO pk_multi VALUES (1, 'x', 2, 3);
INSERT INTO pk_deferred VALUES (1, 2);
INSERT INTO pk_include VALUES (1, 2, 'x');
INSERT INTO pk_default VALUES (1, 2);
INSERT INTO pk_index VALUES (1, 2, 3);
UPDATE pk_multi SET d = 4;
SELECT w2a(data), w2a_pk(data)
FROM pg_logical_slot_get_binary_changes('s', NULL, NULL, 'proto_version', '2', 'publication_names', 'pk_pub');
-- the primary key is read as of the change (historic catalog): added, then dropped, in this session
ALTER TABLE pk_none ADD CONSTRAINT pk_none_pkey PRIMARY KEY (b);
INSERT INTO pk_none VALUES (2, 'y');
ALTER TABLE pk_none DROP CONSTRAINT pk_none_pkey;
INSERT INTO pk_none VALUES (3, 'z');
SELECT w2a(data), w2a_pk(data), w2a_fp(data) IS DISTINCT FROM lag(w2a_fp(data)) OVER (ORDER BY n) AND w2a_fp(data) IS NOT NULL AS new_fingerprint
FROM pg_logical_slot_get_binary_changes('s', NULL, NULL, 'proto_version', '2', 'publication_names', 'pk_pub') WITH ORDINALITY AS c(lsn, xid, data, n)
ORDER BY n;

-- the schema fingerprint (R and A messages, the connector's walbridge.schema_fingerprint header) is
-- the first 8 bytes of the SHA-256 of the schema's canonical text (docs/format.md, "Kafka headers"),
-- spelled out here for a small table; the connector's SchemaFingerprintTests check the same text
CREATE TABLE fp_doc (id int PRIMARY KEY, tag text, u uuid);
CREATE PUBLICATION fp_pub FOR TABLE fp_doc;
INSERT INTO fp_doc VALUES (1, 'a', NULL);
SELECT w2a(data), w2a_fp(data) = substring(sha256(convert_to(
       E'walbridge.schema.v1\n'
    || E'fields 11\n'
    || E'field 3:_op utf8 not-null meta 0 children 0\n'
    || E'field 4:_lsn uint64 not-null meta 0 children 0\n'
    || E'field 4:_xid uint32 not-null meta 0 children 0\n'
    || E'field 11:_commit_lsn uint64 not-null meta 0 children 0\n'
    || E'field 10:_commit_ts timestamp[us,3:UTC] not-null meta 0 children 0\n'
    || E'field 2:id int32 nullable meta 2 7:pg.type=7:integer 9:pg.typoid=2:23 children 0\n'
    || E'field 3:tag utf8 nullable meta 2 7:pg.type=4:text 9:pg.typoid=2:25 children 0\n'
    || E'field 1:u fixed_size_binary(16) nullable meta 4 7:pg.type=4:uuid 9:pg.typoid=4:2950 20:ARROW:extension:name=10:arrow.uuid 24:ARROW:extension:metadata=0: children 0\n'
    || E'field 7:_before struct nullable meta 0 children 3\n'
    || E'field 2:id int32 nullable meta 2 7:pg.type=7:integer 9:pg.typoid=2:23 children 0\n'
    || E'field 3:tag utf8 nullable meta 2 7:pg.type=4:text 9:pg.typoid=2:25 children 0\n'
    || E'field 1:u fixed_size_binary(16) nullable meta 4 7:pg.type=4:uuid 9:pg.typoid=4:2950 20:ARROW:extension:name=10:arrow.uuid 24:ARROW:extension:metadata=0: children 0\n'
    || E'field 10:_unchanged list nullable meta 0 children 1\n'
    || E'field 4:item utf8 not-null meta 0 children 0\n'
    || E'field 8:_special map(keys_sorted=false) nullable meta 0 children 1\n'
    || E'field 7:entries struct not-null meta 0 children 2\n'
    || E'field 3:key utf8 not-null meta 0 children 0\n'
    || E'field 5:value utf8 nullable meta 0 children 0\n'
    || format(E'schema meta 5 9:pg.schema=6:public 8:pg.table=6:fp_doc 8:pg.relid=%s:%s 19:pg.replica_identity=1:d 14:pg.primary_key=2:id\n',
              length('fp_doc'::regclass::oid::text), 'fp_doc'::regclass::oid),
    'UTF8')) from 1 for 8) AS canonical_fingerprint
FROM pg_logical_slot_get_binary_changes('s', NULL, NULL, 'proto_version', '2', 'publication_names', 'fp_pub')
WHERE chr(get_byte(data, 0)) IN ('R', 'A');

SELECT 'stop' FROM pg_drop_replication_slot('s');
