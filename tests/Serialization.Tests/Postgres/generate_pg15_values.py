# Regenerates pg15_text_values.tsv from a running PostgreSQL (connection from PGHOST/PGPORT/PGUSER/PGDATABASE).
# Each row: format_type, type OID, typmod, output with extra_float_digits=3 (what the walsender sends),
# output with extra_float_digits=1 (what PgTextRenderer must print), and the binary send format in hex.
# Usage: PGHOST=/tmp/pg PGPORT=5432 PGUSER=postgres python3 generate_pg15_values.py
# It creates (and drops/recreates) tables c0 … cN in the target database: use a throwaway cluster.
# (sql type, literal SQL expression)
cases = [
 ("boolean", ["true","false"]),
 ("smallint", ["-32768","32767","0","-1"]),
 ("integer", ["-2147483648","2147483647","0","42"]),
 ("bigint", ["-9223372036854775808","9223372036854775807","0","-1"]),
 ("oid", ["0","4294967295","16384"]),
 ("real", ["1.5","'-0'","'NaN'","'Infinity'","'-Infinity'","3.4028235e+38","1e-45","0.1","123456","1234567","1e-05","0.0001","-1.17549435e-38","3.14159274"]),
 ("double precision", ["0.1","1.5e+300","-1.7976931348623157e+308","5e-324","123456789012345","1e+15","1234567890123456","0.0001","1e-05","'NaN'","'Infinity'","'-Infinity'","'-0'","2.718281828459045","-123.456","100","1e22"]),
 ("numeric(12,2)", ["0","-0.01","1234567890.12","-9999999999.99","0.5","-7"]),
 ("numeric(38,0)", ["99999999999999999999999999999999999999","-99999999999999999999999999999999999999","0","1","-1"]),
 ("numeric(38,10)", ["9999999999999999999999999999.9999999999","-0.0000000001","123.456"]),
 ("numeric(5,5)", ["0.12345","-0.99999"]),
 ("numeric(50,5)", ["123456789012345678901234567890123456789012345.12345","-0.00001"]),
 ("numeric(76,0)", ["9999999999999999999999999999999999999999999999999999999999999999999999999999","-9999999999999999999999999999999999999999999999999999999999999999999999999999"]),
 ("numeric(76,38)", ["-12345678901234567890123456789012345678.12345678901234567890123456789012345678"]),
 ("numeric", ["123.4560","'NaN'","'Infinity'","'-Infinity'","-0.000000000000000000001","1e100","0"]),
 ("text", ["'hello'","''","'héllo ✓ 日本'","'it''s \"quoted\" \\ back'"]),
 ("character varying(20)", ["'abc'","''"]),
 ("character varying", ["'unbounded'"]),
 ("character(5)", ["'ab'","'abcde'"]),
 ("name", ["'pg_class'"]),
 ("bytea", ["'\\x'","'\\x0a0b'","'\\xdeadbeef00ff'"]),
 ("date", ["'2024-01-02'","'1969-12-31'","'1970-01-01'","'0001-01-01'","'0044-03-15 BC'","'0001-12-31 BC'","'4713-01-01 BC'","'5874897-12-31'","'2000-02-29'","'1900-03-01'"]),
 ("timestamp without time zone", ["'2024-01-02 03:04:05'","'2024-01-02 03:04:05.123456'","'1969-12-31 23:59:59.999999'","'0044-03-15 12:00:00 BC'","'294276-12-31 23:59:59.999999'","'4713-01-01 00:00:00 BC'","'2024-01-02 03:04:05.1'","'1970-01-01 00:00:00'","'1900-01-01 00:00:00.000001'"]),
 ("timestamp(3) without time zone", ["'2024-01-02 03:04:05.123456'"]),
 ("timestamp with time zone", ["'2024-01-02 03:04:05.123456+00'","'1900-01-01 00:00:00+00'","'0044-03-15 12:00:00+00 BC'","'2024-06-30 23:59:59.5-07:30'","'1969-12-31 23:59:59.999999+00'","'294276-12-31 23:59:59.999999+00'"]),
 ("time without time zone", ["'00:00:00'","'23:59:59.999999'","'24:00:00'","'12:34:56.5'"]),
 ("interval", ["'1 year 2 mons 3 days 04:05:06.789'","'-1 days +02:03:00'","'00:00:00'","'1 day'","'-00:00:01'","'178000000 years'","'-1 years -2 mons'","'1 mon -1 days'","'100:00:00'","'-2 days -03:00:00'","'1 year -1 mons +1 day -00:00:00.000001'","'0.5 seconds'","'-178000000 years'","'2 years 1 mon'"]),
 ("uuid", ["'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'","'00000000-0000-0000-0000-000000000000'","'ffffffff-ffff-ffff-ffff-ffffffffffff'"]),
 ("json", ["'{\"a\": 1, \"b\": [true, null]}'","'[]'"]),
 ("jsonb", ["'{\"b\": [1, 2], \"a\": \"x\"}'","'3.5'"]),
 ("inet", ["'192.168.0.1/24'"]),
 ("point", ["'(1,2)'"]),
 ("int4range", ["'[1,5)'"]),
 ("time with time zone", ["'12:00:00+02'"]),
 ("money", ["12.34"]),
 ("bit(4)", ["B'1010'"]),
 ("xml", ["'<a>b</a>'"]),
 ("integer[]", ["ARRAY[1,2,NULL,-3]","'{}'","ARRAY[2147483647]"]),
 ("bigint[]", ["ARRAY[-9223372036854775808,NULL]"]),
 ("text[]", ["ARRAY['a b','c\"d',NULL,'NULL','','plain','x,y','back\\slash','{x}','é']","ARRAY[NULL]::text[]"]),
 ("character varying(5)[]", ["ARRAY['ab','']"]),
 ("numeric(10,2)[]", ["ARRAY[1.5,-2,NULL,0]"]),
 ("numeric[]", ["ARRAY[1.5,'NaN',NULL]::numeric[]"]),
 ("boolean[]", ["ARRAY[true,false,NULL]"]),
 ("double precision[]", ["ARRAY['NaN','Infinity',1.5e300,-0.0]::float8[]"]),
 ("real[]", ["ARRAY[0.1,3.4028235e+38]::real[]"]),
 ("date[]", ["ARRAY['2024-01-02','0044-03-15 BC']::date[]"]),
 ("timestamp with time zone[]", ["ARRAY['2024-01-02 03:04:05.5+00',NULL]::timestamptz[]"]),
 ("timestamp without time zone[]", ["ARRAY['1969-12-31 23:59:59.999999']::timestamp[]"]),
 ("time without time zone[]", ["ARRAY['12:00:00']::time[]"]),
 ("interval[]", ["ARRAY['1 day -00:00:01','1 year']::interval[]"]),
 ("uuid[]", ["ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11']::uuid[]"]),
 ("bytea[]", ["ARRAY['\\x00ff'::bytea, ''::bytea]"]),
 ("jsonb[]", ["ARRAY['{\"a\": [1, 2]}','\"s\"']::jsonb[]"]),
 ("oid[]", ["ARRAY[1,4294967295]::oid[]"]),
 ("smallint[]", ["ARRAY[-32768]::smallint[]"]),
]
import subprocess
import os
def psql(sql, efd=3):
    env=dict(os.environ, PGOPTIONS=f"-c timezone=UTC -c datestyle=ISO -c intervalstyle=postgres -c bytea_output=hex -c extra_float_digits={efd}")
    return subprocess.run(["psql","-X","-At","-F","\t","-v","ON_ERROR_STOP=1","-c",sql],capture_output=True,text=True,check=True,env=env).stdout
out=["# type\toid\ttypmod\ttext (extra_float_digits=3, as the walsender prints)\ttext (v::text with extra_float_digits=1, PgTextRenderer)\tbinary send format (hex)"]
for i,(t,vals) in enumerate(cases):
    tbl=f"c{i}"
    psql(f"drop table if exists {tbl}; create table {tbl}(n int, v {t});" + "".join(f"insert into {tbl} values ({j}, ({v})::{t});" for j,v in enumerate(vals)))
    meta=psql(f"select atttypid, atttypmod, format_type(atttypid, atttypmod) from pg_attribute where attrelid='{tbl}'::regclass and attname='v'").strip().split("\t")
    r3=[l.split("\t",1)[1] for l in psql(f"select n, v from {tbl} order by n", 3)[:-1].split("\n")]
    r1=[l.split("\t",1)[1] for l in psql(f"select n, v::text from {tbl} order by n", 1)[:-1].split("\n")]
    send=psql(f"select typsend from pg_type where oid={meta[0]}").strip()
    rb=[l.split("\t",1)[1] for l in psql(f"select n, encode({send}(v),'hex') from {tbl} order by n")[:-1].split("\n")]
    assert len(r3)==len(vals), (t, r3)
    for a,b,c in zip(r3,r1,rb):
        out.append("\t".join([meta[2],meta[0],meta[1],a,b,c]))
open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "pg15_text_values.tsv"),"w").write("\n".join(out)+"\n")
print(len(out))
