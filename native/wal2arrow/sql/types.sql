-- wal2arrow: every mapped type, NULLs, unchanged TOAST values
SET client_min_messages = warning;
CREATE TABLE alltypes (
    id bigint PRIMARY KEY, b boolean, i2 smallint, i4 integer, i8 bigint, o oid,
    f4 real, f8 double precision, n numeric(12,3), nw numeric(50,5), nu numeric,
    t text, vc varchar(20), c char(5), nm name, by bytea,
    d date, ts timestamp, tstz timestamptz(3), tm time, iv interval,
    u uuid, j json, jb jsonb, ia integer[], ta text[], na numeric(6,2)[],
    inet_col inet, pt point, tsr tstzrange, e_col money
);
CREATE PUBLICATION types_pub FOR TABLE alltypes;
SELECT 'init' FROM pg_create_logical_replication_slot('ty', 'wal2arrow');
INSERT INTO alltypes VALUES (
    1, true, -2, 4, 8000000000, 4000000000,
    1.5, -0.0, 123456789.123, -12345678901234567890123456789012345678901234.56789, 'NaN',
    'text ü', 'varchar', 'ab', 'aname', '\xdeadbeef',
    '2024-02-29', '2024-02-29 12:34:56.789012', '1999-12-31 23:59:59.999+02', '24:00:00', '1 year 2 mons 3 days 04:05:06.000007',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": 1,  "b": [true]}', '{"b": 2, "a": 1}', '{1,NULL,3}', '{"x y",z}', '{1.50,-2.25}',
    '192.168.0.1/24', '(1.5,2)', '[2024-01-01 00:00:00+00,2024-01-02 00:00:00+00)', '12.34');
INSERT INTO alltypes (id) VALUES (2);
SELECT w2a(data) FROM pg_logical_slot_peek_binary_changes('ty', NULL, NULL, 'proto_version', '2', 'publication_names', 'types_pub');
-- text values in the stream: char(n) keeps its padding, jsonb normalized, fallback text via output functions
SELECT position('text ü'::text::bytea in data) > 0 AS utf8,
       position('ab   '::bytea in data) > 0 AS bpchar_padding,
       position('{"a": 1, "b": 2}'::bytea in data) > 0 AS jsonb_normalized,
       position('{"a": 1,  "b": [true]}'::bytea in data) > 0 AS json_verbatim,
       position('192.168.0.1/24'::bytea in data) > 0 AS inet_text,
       position('["2024-01-01 00:00:00+00","2024-01-02 00:00:00+00")'::bytea in data) > 0 AS range_text_utc,
       position('NaN'::bytea in data) > 0 AS unconstrained_numeric_nan,
       position('\xdeadbeef'::bytea in data) > 0 AS bytea_raw,
       position('\xa0eebc999c0b4ef8bb6d6bb9bd380a11'::bytea in data) > 0 AS uuid_raw
FROM pg_logical_slot_get_binary_changes('ty', NULL, NULL, 'proto_version', '2', 'publication_names', 'types_pub')
WHERE chr(get_byte(data, 0)) = 'A';

-- unchanged TOAST: the value is not sent; the column is null and listed in _unchanged
CREATE TABLE toasty (id int PRIMARY KEY, small text, payload text);
ALTER TABLE toasty ALTER COLUMN payload SET STORAGE EXTERNAL;
ALTER PUBLICATION types_pub ADD TABLE toasty;
INSERT INTO toasty SELECT 1, 'a', string_agg(md5(g::text), '') FROM generate_series(1, 200) g;
SELECT count(*) FROM pg_logical_slot_get_binary_changes('ty', NULL, NULL, 'proto_version', '2', 'publication_names', 'types_pub');
UPDATE toasty SET small = 'b' WHERE id = 1;
-- 'payload' appears once in the record batch: in _unchanged (the column names are in R's schema)
SELECT w2a(data),
       (length(encode(data, 'hex')) - length(replace(encode(data, 'hex'), encode('payload', 'hex'), ''))) / length(encode('payload', 'hex')) AS payload_names,
       position(md5('1')::bytea in data) = 0 AS value_not_sent
FROM pg_logical_slot_get_binary_changes('ty', NULL, NULL, 'proto_version', '2', 'publication_names', 'types_pub')
WHERE chr(get_byte(data, 0)) = 'A';

-- REPLICA IDENTITY FULL: the old row (logged with its TOAST values inline) supplies the unchanged
-- value, as the connector does: 'payload' not in the batch (not in _unchanged), the value twice (new row, _before)
ALTER TABLE toasty REPLICA IDENTITY FULL;
UPDATE toasty SET small = 'c' WHERE id = 1;
SELECT w2a(data),
       (length(encode(data, 'hex')) - length(replace(encode(data, 'hex'), encode('payload', 'hex'), ''))) / length(encode('payload', 'hex')) AS payload_names,
       (length(encode(data, 'hex')) - length(replace(encode(data, 'hex'), encode((SELECT payload FROM toasty)::bytea, 'hex'), ''))) / length(encode((SELECT payload FROM toasty)::bytea, 'hex')) AS value_copies
FROM pg_logical_slot_get_binary_changes('ty', NULL, NULL, 'proto_version', '2', 'publication_names', 'types_pub')
WHERE chr(get_byte(data, 0)) = 'A';

SELECT 'stop' FROM pg_drop_replication_slot('ty');
