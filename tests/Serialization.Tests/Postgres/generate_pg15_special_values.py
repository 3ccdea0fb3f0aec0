# Regenerates pg15_special_values.tsv (values Arrow cannot hold natively, carried in _special) from a running PostgreSQL (connection from PGHOST/PGPORT/PGUSER/PGDATABASE).
# Each row: format_type, type OID, typmod, output with extra_float_digits=3 (what the walsender sends),
# output with extra_float_digits=1 (what PgTextRenderer must print), and the binary send format in hex.
# Usage: PGHOST=/tmp/pg PGPORT=5432 PGUSER=postgres python3 generate_pg15_values.py
# It creates (and drops/recreates) tables c0 … cN in the target database: use a throwaway cluster.
# (sql type, literal SQL expression)
cases = [
 ("numeric(12,2)", ["'NaN'"]),  # PostgreSQL rejects ±Infinity in a constrained numeric
 ("numeric(50,5)", ["'NaN'"]),
 ("date", ["'infinity'","'-infinity'"]),
 ("timestamp without time zone", ["'infinity'","'-infinity'","'294276-12-31 23:59:59.999999'","'294247-01-10 04:00:54.775808'","'294247-01-10 04:00:54.775807'"]),
 ("timestamp with time zone", ["'infinity'","'-infinity'","'294276-12-31 23:59:59.999999+00'","'294247-01-10 04:00:54.775808+00'","'294247-01-10 04:00:54.775807+00'"]),
 ("interval", ["'2562047788:00:54.775807'","'-2562047788:00:54.775807'","'-2562047788:00:54.775807'::interval - '00:00:00.000001'","'2562048:00:00'","'-2562048:00:00'","'2562047:47:16.854775'","'1 year 2562048 hours'"]),
 ("integer[]", ["'{{1,2},{3,NULL}}'","'[0:2]={1,2,3}'","'[2:3][1:1]={{1},{2}}'","'{{{7}}}'","'[-5:-5]={42}'"]),
 ("text[]", ["'{{\"a b\",NULL},{c,\"NULL\"}}'","'[0:0]={\"x,y\"}'"]),
 ("boolean[]", ["'[0:1]={t,f}'"]),
 ("double precision[]", ["'{{1.5,NaN},{Infinity,-0}}'"]),
 ("bytea[]", ["ARRAY[['\\x00'::bytea,'\\x01'],['\\x'::bytea,NULL]]"]),
 ("uuid[]", ["'{{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11},{00000000-0000-0000-0000-000000000000}}'"]),
 ("jsonb[]", ["'[0:1]={\"{\\\"a\\\": 1}\",null}'"]),
 ("date[]", ["ARRAY['infinity','2024-01-01',NULL]::date[]","'{{-infinity}}'"]),
 ("timestamp with time zone[]", ["ARRAY['-infinity',NULL,'2024-01-02 03:04:05+00']::timestamptz[]"]),
 ("timestamp without time zone[]", ["ARRAY['294276-01-01 00:00:00']::timestamp[]"]),
 ("numeric(10,2)[]", ["ARRAY['NaN'::numeric,1.5,NULL]::numeric(10,2)[]"]),
 ("interval[]", ["ARRAY['3000000 hours'::interval,'1 day']"]),
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
open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "pg15_special_values.tsv"),"w").write("\n".join(out)+"\n")
print(len(out))
