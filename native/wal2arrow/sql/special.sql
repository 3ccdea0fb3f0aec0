-- wal2arrow: values the column's Arrow type cannot hold (null in the value column, PostgreSQL's
-- exact text in _special under the column's name, _before.<column> for the old row), domains
SET client_min_messages = warning;
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN money2 AS numeric(10,2);
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE sp (
    id int PRIMARY KEY, n numeric(6,2), d date, ts timestamp, tstz timestamptz, iv interval,
    ia integer[], da date[], na numeric(6,2)[], f8 float8, f4 real,
    dom posint, dnum money2, mo mood);
ALTER TABLE sp REPLICA IDENTITY FULL;
CREATE PUBLICATION sp_pub FOR TABLE sp;
SELECT 'init' FROM pg_create_logical_replication_slot('sp', 'wal2arrow');
INSERT INTO sp VALUES (1, 'NaN', 'infinity', '-infinity', '294276-12-31 23:59:59.999999+00', '2562048:00:00',
    '{{1,2},{3,NULL}}', '{infinity,2024-01-01,NULL}', '{1.50,NaN}', 'NaN', 'NaN', 7, 12.5, 'happy');
INSERT INTO sp VALUES (2, 1.25, '-infinity', 'infinity', 'infinity', '-2562048:00:00',
    '[0:2]={1,2,3}', '{2024-01-01}', '{}', '-Infinity', '-0', 1, 'NaN', 'sad');
UPDATE sp SET id = 3 WHERE id = 1;
SELECT w2a(data) FROM pg_logical_slot_peek_binary_changes('sp', NULL, NULL, 'proto_version', '2', 'publication_names', 'sp_pub');
SELECT position('NaN'::bytea in data) > 0 AS numeric_nan,
       position('294276-12-31 23:59:59.999999+00'::bytea in data) > 0 AS timestamptz_text_utc,
       position('2562048:00:00'::bytea in data) > 0 AS interval_text,
       position('{{1,2},{3,NULL}}'::bytea in data) > 0 AS multidim,
       position('[0:2]={1,2,3}'::bytea in data) > 0 AS lower_bound,
       position('{infinity,2024-01-01,NULL}'::bytea in data) > 0 AS special_element,
       position('_before.ts'::bytea in data) > 0 AS before_key
FROM pg_logical_slot_get_binary_changes('sp', NULL, NULL, 'proto_version', '2', 'publication_names', 'sp_pub')
WHERE chr(get_byte(data, 0)) = 'A';
SELECT 'stop' FROM pg_drop_replication_slot('sp');
