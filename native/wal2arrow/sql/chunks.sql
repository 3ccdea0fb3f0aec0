-- wal2arrow: chunking by max_rows and max_bytes
SET client_min_messages = warning;
CREATE TABLE ch (id int PRIMARY KEY, payload text);
CREATE PUBLICATION ch_pub FOR TABLE ch;
SELECT 'init' FROM pg_create_logical_replication_slot('ch', 'wal2arrow');
INSERT INTO ch SELECT g, repeat('x', 100) FROM generate_series(1, 5) g;

-- max_rows: chunks of 2, 2 and 1 rows, only the last one flagged
SELECT w2a(data) FROM pg_logical_slot_peek_binary_changes('ch', NULL, NULL, 'proto_version', '1', 'publication_names', 'ch_pub', 'max_rows', '2');
-- exactly max_rows rows: one chunk
SELECT w2a(data) FROM pg_logical_slot_peek_binary_changes('ch', NULL, NULL, 'proto_version', '1', 'publication_names', 'ch_pub', 'max_rows', '5');
-- max_bytes: every stream within the limit (but never fewer than one row per chunk)
SELECT w2a(data), length(data) - 28 <= 3000 AS within_limit
FROM pg_logical_slot_peek_binary_changes('ch', NULL, NULL, 'proto_version', '1', 'publication_names', 'ch_pub', 'max_bytes', '3000');
-- a limit below one row: one row per chunk
SELECT w2a(data) FROM pg_logical_slot_peek_binary_changes('ch', NULL, NULL, 'proto_version', '1', 'publication_names', 'ch_pub', 'max_bytes', '100');
-- 0 = no limit
SELECT w2a(data) FROM pg_logical_slot_get_binary_changes('ch', NULL, NULL, 'proto_version', '1', 'publication_names', 'ch_pub', 'max_bytes', '0');

-- a larger transaction: 10000 rows in chunks of at most 64 kB, rows all accounted for
INSERT INTO ch SELECT g, md5(g::text) FROM generate_series(100, 10099) g;
SELECT count(*) AS chunks, sum(w2a_be32(data, 12)) AS rows, bool_and(length(data) - 28 <= 65536) AS within_limit,
       count(*) FILTER (WHERE get_byte(data, 11) = 1) AS last_chunks,
       bool_and(w2a(data) LIKE '%valid=t') AS valid
FROM pg_logical_slot_get_binary_changes('ch', NULL, NULL, 'proto_version', '1', 'publication_names', 'ch_pub', 'max_bytes', '65536')
WHERE chr(get_byte(data, 0)) = 'A';

SELECT 'stop' FROM pg_drop_replication_slot('ch');
