-- wal2arrow: invalid options and unsupported configurations end in a clean ERROR
SET client_min_messages = warning;
\set VERBOSITY terse
CREATE TABLE err_t (id int PRIMARY KEY, v numeric(6,2), d date, ts timestamp);
CREATE PUBLICATION err_pub FOR TABLE err_t;
SELECT 'init' FROM pg_create_logical_replication_slot('err', 'wal2arrow');
INSERT INTO err_t VALUES (1, 1.00, '2024-01-01', '2024-01-01 10:00');

SELECT count(*) FROM pg_logical_slot_peek_binary_changes('err', NULL, NULL, 'proto_version', '2', 'publication_names', 'err_pub', 'bogus', '1');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('err', NULL, NULL, 'proto_version', '0', 'publication_names', 'err_pub');
-- framing version 1 is no longer written
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('err', NULL, NULL, 'proto_version', '1', 'publication_names', 'err_pub');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('err', NULL, NULL, 'proto_version', '99', 'publication_names', 'err_pub');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('err', NULL, NULL, 'proto_version', 'one', 'publication_names', 'err_pub');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('err', NULL, NULL, 'publication_names', 'err_pub');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('err', NULL, NULL, 'proto_version', '2');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('err', NULL, NULL, 'proto_version', '2', 'publication_names', 'no_such_pub');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('err', NULL, NULL, 'proto_version', '2', 'publication_names', '"unterminated');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('err', NULL, NULL, 'proto_version', '2', 'proto_version', '2', 'publication_names', 'err_pub');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('err', NULL, NULL, 'proto_version', '2', 'publication_names', 'err_pub', 'max_rows', '-1');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('err', NULL, NULL, 'proto_version', '2', 'publication_names', 'err_pub', 'max_bytes', '10GB');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('err', NULL, NULL, 'proto_version', '2', 'publication_names', 'err_pub', 'messages', 'maybe');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('err', NULL, NULL, 'proto_version', '2', 'publication_names', 'err_pub', 'partitions', '0');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('err', NULL, NULL, 'proto_version', '2', 'publication_names', 'err_pub', 'partitions', '10001');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('err', NULL, NULL, 'proto_version', '2', 'publication_names', 'err_pub', 'partitions', 'three');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('err', NULL, NULL, 'proto_version', '2', 'publication_names', 'err_pub', 'partitions', '2', 'partitions', '2');
-- text output: the plugin's output is binary
SELECT count(*) FROM pg_logical_slot_peek_changes('err', NULL, NULL, 'proto_version', '2', 'publication_names', 'err_pub');
-- the slot still works
SELECT count(*) FROM pg_logical_slot_get_binary_changes('err', NULL, NULL, 'proto_version', '2', 'publication_names', 'err_pub');

-- values an Arrow column cannot hold are not errors: null + PostgreSQL's text in _special (special.sql)
INSERT INTO err_t VALUES (2, 'NaN', 'infinity', '-infinity');
SELECT w2a(data) FROM pg_logical_slot_get_binary_changes('err', NULL, NULL, 'proto_version', '2', 'publication_names', 'err_pub');

-- unsupported publication features
CREATE TABLE err_f (id int PRIMARY KEY, v int);
CREATE PUBLICATION err_rowfilter FOR TABLE err_f WHERE (v > 0);
CREATE PUBLICATION err_columns FOR TABLE err_f (id);
INSERT INTO err_f VALUES (1, 1);
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('err', NULL, NULL, 'proto_version', '2', 'publication_names', 'err_rowfilter');
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('err', NULL, NULL, 'proto_version', '2', 'publication_names', 'err_columns');
SELECT count(*) FROM pg_logical_slot_get_binary_changes('err', NULL, NULL, 'proto_version', '2', 'publication_names', 'err_pub');

SELECT 'stop' FROM pg_drop_replication_slot('err');
