-- wal2arrow: chunking by max_rows and max_bytes (schema message + record batch + end-of-stream
-- marker within max_bytes), per partition
SET client_min_messages = warning;
CREATE TABLE ch (id int PRIMARY KEY, payload text);
CREATE PUBLICATION ch_pub FOR TABLE ch;
SELECT 'init' FROM pg_create_logical_replication_slot('ch', 'wal2arrow');
INSERT INTO ch SELECT g, repeat('x', 100) FROM generate_series(1, 5) g;
-- the stream a chunk makes: the schema message of its relation (R) + its record batch + 8 bytes
CREATE FUNCTION w2a_stream_sizes(msgs bytea[]) RETURNS SETOF int LANGUAGE sql IMMUTABLE AS $$
    SELECT length((SELECT w2a_schema(r) FROM unnest(msgs) r WHERE chr(get_byte(r, 0)) = 'R' LIMIT 1)) + length(a) - 31 + 8
    FROM unnest(msgs) WITH ORDINALITY AS u(a, n) WHERE chr(get_byte(a, 0)) = 'A' ORDER BY n $$;

-- max_rows: chunks of 2, 2 and 1 rows, only the last one flagged
SELECT w2a(data) FROM pg_logical_slot_peek_binary_changes('ch', NULL, NULL, 'proto_version', '2', 'publication_names', 'ch_pub', 'max_rows', '2');
-- exactly max_rows rows: one chunk
SELECT w2a(data) FROM pg_logical_slot_peek_binary_changes('ch', NULL, NULL, 'proto_version', '2', 'publication_names', 'ch_pub', 'max_rows', '5');
-- max_bytes: every stream within the limit (but never fewer than one row per chunk)
SELECT w2a(data) FROM pg_logical_slot_peek_binary_changes('ch', NULL, NULL, 'proto_version', '2', 'publication_names', 'ch_pub', 'max_bytes', '3400');
SELECT size <= 3400 AS within_limit FROM w2a_stream_sizes(ARRAY(
    SELECT data FROM pg_logical_slot_peek_binary_changes('ch', NULL, NULL, 'proto_version', '2', 'publication_names', 'ch_pub', 'max_bytes', '3400'))) AS size;
-- the limit is exact: the stream of all 5 rows fits max_bytes = its size, not one byte less
CREATE TABLE ch_size AS SELECT size FROM w2a_stream_sizes(ARRAY(
    SELECT data FROM pg_logical_slot_peek_binary_changes('ch', NULL, NULL, 'proto_version', '2', 'publication_names', 'ch_pub', 'max_bytes', '0'))) AS size;
SELECT w2a(data) FROM pg_logical_slot_peek_binary_changes('ch', NULL, NULL, 'proto_version', '2', 'publication_names', 'ch_pub',
    'max_bytes', (SELECT size::text FROM ch_size)) WHERE chr(get_byte(data, 0)) = 'A';
SELECT w2a(data) FROM pg_logical_slot_peek_binary_changes('ch', NULL, NULL, 'proto_version', '2', 'publication_names', 'ch_pub',
    'max_bytes', (SELECT (size - 1)::text FROM ch_size)) WHERE chr(get_byte(data, 0)) = 'A';
-- a limit below one row: one row per chunk
SELECT w2a(data) FROM pg_logical_slot_peek_binary_changes('ch', NULL, NULL, 'proto_version', '2', 'publication_names', 'ch_pub', 'max_bytes', '100');
-- partitions: chunk indexes and last flags per partition
SELECT w2a(data) FROM pg_logical_slot_peek_binary_changes('ch', NULL, NULL, 'proto_version', '2', 'publication_names', 'ch_pub', 'max_rows', '1', 'partitions', '2');
-- 0 = no limit
SELECT w2a(data) FROM pg_logical_slot_get_binary_changes('ch', NULL, NULL, 'proto_version', '2', 'publication_names', 'ch_pub', 'max_bytes', '0');

-- a larger transaction: 10000 rows in chunks of at most 64 kB, rows all accounted for; in 4
-- partitions too
INSERT INTO ch SELECT g, md5(g::text) FROM generate_series(100, 10099) g;
SELECT count(*) AS chunks, sum(w2a_be32(data, 15)) AS rows,
       count(*) FILTER (WHERE get_byte(data, 14) = 1) AS last_chunks,
       bool_and(w2a(data) LIKE '%valid=t') AS valid
FROM pg_logical_slot_peek_binary_changes('ch', NULL, NULL, 'proto_version', '2', 'publication_names', 'ch_pub', 'max_bytes', '65536')
WHERE chr(get_byte(data, 0)) = 'A';
SELECT bool_and(size <= 65536) AS within_limit FROM w2a_stream_sizes(ARRAY(
    SELECT data FROM pg_logical_slot_peek_binary_changes('ch', NULL, NULL, 'proto_version', '2', 'publication_names', 'ch_pub', 'max_bytes', '65536'))) AS size;
SELECT w2a_be32(data, 6) AS partition, count(*) AS chunks, sum(w2a_be32(data, 15)) AS rows,
       count(*) FILTER (WHERE get_byte(data, 14) = 1) AS last_chunks,
       min(w2a_be32(data, 10)) AS first_index, max(w2a_be32(data, 10)) + 1 = count(*) AS indexes_dense,
       bool_and(w2a(data) LIKE '%valid=t') AS valid
FROM pg_logical_slot_get_binary_changes('ch', NULL, NULL, 'proto_version', '2', 'publication_names', 'ch_pub', 'max_bytes', '65536', 'partitions', '4')
WHERE chr(get_byte(data, 0)) = 'A'
GROUP BY 1 ORDER BY 1;

SELECT 'stop' FROM pg_drop_replication_slot('ch');
