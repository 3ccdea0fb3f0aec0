/*-------------------------------------------------------------------------
 * types.c
 *		PostgreSQL -> Arrow type mapping and value conversion for wal2arrow.
 *
 * Mirrors WalBridge's src/Serialization/Postgres/PgTypeMapping.cs (type
 * choice, pg.type names, field metadata) and PgValueParser.cs (value
 * semantics, values for _special), working on Datums instead of pgoutput text.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "access/sysattr.h"
#include "catalog/namespace.h"
#include "catalog/pg_index.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/int.h"
#include "common/sha2.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
#include "nodes/bitmapset.h"

#include "wal2arrow.h"

#define VARHDRSZ_TYPMOD 4
#define UNIX_EPOCH_OFFSET_DAYS 10957
#define UNIX_EPOCH_OFFSET_US INT64CONST(946684800000000)

/* ---------------------------------------------------------------- type names */

static Oid
array_element_oid(Oid oid)
{
	switch (oid)
	{
		case 1000: return BOOLOID;
		case 1001: return BYTEAOID;
		case 1003: return NAMEOID;
		case 1005: return INT2OID;
		case 1007: return INT4OID;
		case 1009: return TEXTOID;
		case 1014: return BPCHAROID;
		case 1015: return VARCHAROID;
		case 1016: return INT8OID;
		case 1021: return FLOAT4OID;
		case 1022: return FLOAT8OID;
		case 1028: return OIDOID;
		case 1115: return TIMESTAMPOID;
		case 1182: return DATEOID;
		case 1183: return TIMEOID;
		case 1185: return TIMESTAMPTZOID;
		case 1187: return INTERVALOID;
		case 1231: return NUMERICOID;
		case 199: return JSONOID;
		case 2951: return UUIDOID;
		case 3807: return JSONBOID;
		default: return InvalidOid;
	}
}

static const char *
well_known_name(Oid oid)
{
	switch (oid)
	{
		case 22: return "int2vector";
		case 24: return "regproc";
		case 27: return "tid";
		case 28: return "xid";
		case 29: return "cid";
		case 30: return "oidvector";
		case 600: return "point";
		case 601: return "lseg";
		case 602: return "path";
		case 603: return "box";
		case 604: return "polygon";
		case 628: return "line";
		case 650: return "cidr";
		case 718: return "circle";
		case 774: return "macaddr8";
		case 829: return "macaddr";
		case 869: return "inet";
		case 2205: return "regclass";
		case 3220: return "pg_lsn";
		case 3614: return "tsvector";
		case 3615: return "tsquery";
		case 3904: return "int4range";
		case 3906: return "numrange";
		case 3908: return "tsrange";
		case 3910: return "tstzrange";
		case 3912: return "daterange";
		case 3926: return "int8range";
		case 4451: return "int4multirange";
		case 5038: return "pg_snapshot";
		default: return NULL;
	}
}

static const char *
interval_typmod(int32 typmod)
{
	int			fields,
				precision;
	const char *f;

	if (typmod < 0)
		return "";
	fields = (typmod >> 16) & 0x7FFF;
	precision = typmod & 0xFFFF;
#define IY (1 << 2)
#define IMO (1 << 1)
#define ID (1 << 3)
#define IH (1 << 10)
#define IMI (1 << 11)
#define IS (1 << 12)
	switch (fields)
	{
		case IY: f = " year"; break;
		case IMO: f = " month"; break;
		case ID: f = " day"; break;
		case IH: f = " hour"; break;
		case IMI: f = " minute"; break;
		case IS: f = " second"; break;
		case IY | IMO: f = " year to month"; break;
		case ID | IH: f = " day to hour"; break;
		case ID | IH | IMI: f = " day to minute"; break;
		case ID | IH | IMI | IS: f = " day to second"; break;
		case IH | IMI: f = " hour to minute"; break;
		case IH | IMI | IS: f = " hour to second"; break;
		case IMI | IS: f = " minute to second"; break;
		default: f = ""; break;
	}
	return precision != 0xFFFF ? psprintf("%s(%d)", f, precision) : f;
}

static char *
with_typmod(const char *base, int32 typmod, const char *suffix)
{
	return typmod >= 0 ? psprintf("%s(%d)%s", base, typmod, suffix) : psprintf("%s%s", base, suffix);
}

/* PgTypeMapping.FormatType: format_type-style names for the types it knows, "oid N" otherwise. */
static char *
cs_format_type(Oid oid, int32 typmod, const char *fallback)
{
	Oid			elem = array_element_oid(oid);
	const char *wk;

	if (OidIsValid(elem))
		return psprintf("%s[]", cs_format_type(elem, typmod, NULL));
	switch (oid)
	{
		case BOOLOID: return pstrdup("boolean");
		case BYTEAOID: return pstrdup("bytea");
		case CHAROID: return pstrdup("\"char\"");
		case NAMEOID: return pstrdup("name");
		case INT8OID: return pstrdup("bigint");
		case INT2OID: return pstrdup("smallint");
		case INT4OID: return pstrdup("integer");
		case TEXTOID: return pstrdup("text");
		case OIDOID: return pstrdup("oid");
		case JSONOID: return pstrdup("json");
		case XMLOID: return pstrdup("xml");
		case FLOAT4OID: return pstrdup("real");
		case FLOAT8OID: return pstrdup("double precision");
		case MONEYOID: return pstrdup("money");
		case BPCHAROID:
			return typmod >= VARHDRSZ_TYPMOD ? psprintf("character(%d)", typmod - VARHDRSZ_TYPMOD) : pstrdup("bpchar");
		case VARCHAROID:
			return typmod >= VARHDRSZ_TYPMOD ? psprintf("character varying(%d)", typmod - VARHDRSZ_TYPMOD) : pstrdup("character varying");
		case DATEOID: return pstrdup("date");
		case TIMEOID: return with_typmod("time", typmod, " without time zone");
		case TIMETZOID: return with_typmod("time", typmod, " with time zone");
		case TIMESTAMPOID: return with_typmod("timestamp", typmod, " without time zone");
		case TIMESTAMPTZOID: return with_typmod("timestamp", typmod, " with time zone");
		case INTERVALOID: return psprintf("interval%s", interval_typmod(typmod));
		case BITOID: return with_typmod("bit", typmod, "");
		case VARBITOID: return with_typmod("bit varying", typmod, "");
		case NUMERICOID:
			if (typmod >= VARHDRSZ_TYPMOD)
				return psprintf("numeric(%d,%d)", ((typmod - VARHDRSZ_TYPMOD) >> 16) & 0xFFFF,
								(((typmod - VARHDRSZ_TYPMOD) & 0x7FF) ^ 1024) - 1024);
			return pstrdup("numeric");
		case UUIDOID: return pstrdup("uuid");
		case JSONBOID: return pstrdup("jsonb");
		default:
			if (fallback != NULL)
				return pstrdup(fallback);
			wk = well_known_name(oid);
			return wk ? pstrdup(wk) : psprintf("oid %u", oid);
	}
}

/* ---------------------------------------------------------------- resolution */

static WaColType *
resolve_type(Oid oid, int32 typmod, const char *typename)
{
	WaColType  *t = palloc0(sizeof(WaColType));
	Oid			elem = array_element_oid(oid);
	bool		isvarlena;

	t->typoid = oid;
	t->metaoid = oid;
	t->typmod = typmod;
	t->pgname = cs_format_type(oid, typmod, typename);
	/* output function of the value's type: fallback text and PostgreSQL's text for _special */
	getTypeOutputInfo(oid, &t->outfunc, &isvarlena);
	if (OidIsValid(elem))
	{
		t->kind = WK_ARRAY;
		t->elem = resolve_type(elem, typmod, NULL);
		get_typlenbyvalalign(elem, &t->elemlen, &t->elembyval, &t->elemalign);
		return t;
	}
	switch (oid)
	{
		case BOOLOID: t->kind = WK_BOOL; break;
		case INT2OID: t->kind = WK_INT16; break;
		case INT4OID: t->kind = WK_INT32; break;
		case INT8OID: t->kind = WK_INT64; break;
		case OIDOID: t->kind = WK_OID; break;
		case FLOAT4OID: t->kind = WK_FLOAT32; break;
		case FLOAT8OID: t->kind = WK_FLOAT64; break;
		case NUMERICOID:
			t->kind = WK_NUMERIC_TEXT;
			if (typmod >= VARHDRSZ_TYPMOD)
			{
				int			p = ((typmod - VARHDRSZ_TYPMOD) >> 16) & 0xFFFF;
				int			s = (((typmod - VARHDRSZ_TYPMOD) & 0x7FF) ^ 1024) - 1024;

				if (p >= 1 && s >= 0 && s <= p && p <= 76)
				{
					t->kind = WK_DECIMAL;
					t->precision = p;
					t->scale = s;
					t->bitwidth = p <= 38 ? 128 : 256;
				}
			}
			break;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NAMEOID:
			t->kind = WK_TEXT;
			break;
		case BYTEAOID: t->kind = WK_BYTEA; break;
		case DATEOID: t->kind = WK_DATE; break;
		case TIMESTAMPOID: t->kind = WK_TIMESTAMP; break;
		case TIMESTAMPTZOID: t->kind = WK_TIMESTAMPTZ; break;
		case TIMEOID: t->kind = WK_TIME; break;
		case INTERVALOID: t->kind = WK_INTERVAL; break;
		case UUIDOID:
			t->kind = WK_UUID;
			t->extension = "arrow.uuid";
			break;
		case JSONOID:
			t->kind = WK_JSON;
			t->extension = "arrow.json";
			break;
		case JSONBOID:
			t->kind = WK_JSONB;
			t->extension = "arrow.json";
			break;
		default:
			t->kind = WK_FALLBACK;
			break;
	}
	return t;
}

static void
make_field(WaField *f, const char *name, WaColType *t)
{
	int			n = 0;

	memset(f, 0, sizeof(*f));
	f->name = pstrdup(name);
	f->nullable = true;
	switch (t->kind)
	{
		case WK_BOOL: f->type_id = WA_T_BOOL; break;
		case WK_INT16: f->type_id = WA_T_INT; f->p1 = 16; f->p2 = 1; break;
		case WK_INT32: f->type_id = WA_T_INT; f->p1 = 32; f->p2 = 1; break;
		case WK_INT64: f->type_id = WA_T_INT; f->p1 = 64; f->p2 = 1; break;
		case WK_OID: f->type_id = WA_T_INT; f->p1 = 32; f->p2 = 0; break;
		case WK_FLOAT32: f->type_id = WA_T_FLOAT; f->p1 = 1; break;
		case WK_FLOAT64: f->type_id = WA_T_FLOAT; f->p1 = 2; break;
		case WK_DECIMAL:
			f->type_id = WA_T_DECIMAL;
			f->p1 = t->precision;
			f->p2 = t->scale;
			f->p3 = t->bitwidth;
			break;
		case WK_BYTEA: f->type_id = WA_T_BINARY; break;
		case WK_DATE: f->type_id = WA_T_DATE; f->p1 = 0; break;
		case WK_TIMESTAMP: f->type_id = WA_T_TIMESTAMP; f->p1 = 2; break;
		case WK_TIMESTAMPTZ: f->type_id = WA_T_TIMESTAMP; f->p1 = 2; f->tz = "UTC"; break;
		case WK_TIME: f->type_id = WA_T_TIME; f->p1 = 2; f->p2 = 64; break;
		case WK_INTERVAL: f->type_id = WA_T_INTERVAL; f->p1 = 2; break;
		case WK_UUID: f->type_id = WA_T_FSB; f->p1 = 16; break;
		case WK_ARRAY:
			f->type_id = WA_T_LIST;
			f->nchildren = 1;
			f->children = palloc(sizeof(WaField));
			make_field(f->children, "item", t->elem);
			break;
		default:
			f->type_id = WA_T_UTF8;
			break;
	}
	f->nmeta = t->extension ? 4 : 2;
	f->meta = palloc(sizeof(char *) * 2 * f->nmeta);
	f->meta[n++] = "pg.type";
	f->meta[n++] = t->pgname;
	f->meta[n++] = "pg.typoid";
	f->meta[n++] = psprintf("%u", t->metaoid);
	if (t->extension)
	{
		f->meta[n++] = "ARROW:extension:name";
		f->meta[n++] = t->extension;
		f->meta[n++] = "ARROW:extension:metadata";
		f->meta[n++] = "";
	}
}

static void
count_layout(const WaField *f, int *nodes, int *buffers)
{
	(*nodes)++;
	switch (f->type_id)
	{
		case WA_T_UTF8:
		case WA_T_BINARY:
			*buffers += 3;
			break;
		case WA_T_STRUCT:
			*buffers += 1;
			break;
		default:
			*buffers += 2;
	}
	for (int i = 0; i < f->nchildren; i++)
		count_layout(&f->children[i], nodes, buffers);
}

/* Converts a catalog name from the database encoding to UTF-8 (as pgoutput does for a UTF-8 client). */
static char *
to_utf8(char *s)
{
	if (GetDatabaseEncoding() != PG_UTF8 && GetDatabaseEncoding() != PG_SQL_ASCII)
		return pg_server_to_any(s, strlen(s), PG_UTF8);
	return s;
}

/*
 * The connector's PgColumn.TypeName for a column type with an OID >=
 * FirstGenbkiObjectId, from pgoutput's Type message: "namespace.name" of the
 * type's (ultimate) base type.  NB: pgoutput sends an EMPTY namespace for
 * pg_catalog (logicalrep_write_namespace); the connector must read it as
 * "pg_catalog" (PgTypeMapping.DomainBaseOid expects "pg_catalog.int4").
 */
static char *
type_message_name(Oid typoid)
{
	Oid			base = getBaseType(typoid);
	HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(base));
	Form_pg_type typ;
	char	   *result;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", base);
	typ = (Form_pg_type) GETSTRUCT(tup);
	result = psprintf("%s.%s",
					  typ->typnamespace == PG_CATALOG_NAMESPACE ? "pg_catalog" : get_namespace_name(typ->typnamespace),
					  NameStr(typ->typname));
	ReleaseSysCache(tup);
	return to_utf8(result);
}

/* The built-in types PgTypeMapping.BuiltinOidByName knows (domains over them map like them). */
static bool
domain_base_known(Oid oid)
{
	static const Oid known[] = {
		16, 17, 18, 19, 20, 21, 23, 25, 26, 114, 142, 700, 701, 790, 1042, 1043, 1082, 1083, 1114,
		1184, 1186, 1266, 1560, 1562, 1700, 2950, 3802, 600, 601, 602, 603, 604, 628, 650, 718, 774,
		829, 869, 3220, 3614, 3615, 3904, 3906, 3908, 3910, 3912, 3926, 1000, 1001, 1003, 1005, 1007,
		1009, 1014, 1015, 1016, 1021, 1022, 1028, 1115, 1182, 1183, 1185, 1187, 1231, 199, 2951, 3807
	};

	for (int i = 0; i < lengthof(known); i++)
		if (known[i] == oid)
			return true;
	return false;
}

/*
 * PgTypeMapping.Resolve of the PgColumn the connector builds from pgoutput's
 * Relation (and Type) messages.  A domain whose base type is a built-in type
 * PgTypeMapping knows by name maps like that base type without a type
 * modifier (pgoutput sends neither the domain's nor the column's), keeping the
 * domain's OID as pg.typoid; other non-built-in types are utf8 text named by
 * the Type message.
 */
static WaColType *
resolve_column_type(Form_pg_attribute att)
{
	Oid			oid = att->atttypid;
	const char *typename = NULL;

	if (oid >= FirstGenbkiObjectId)
	{
		Oid			base = getBaseType(oid);

		if (base < FirstGenbkiObjectId && get_typ_typrelid(base) == InvalidOid &&
			domain_base_known(base))
		{
			WaColType  *t = resolve_type(base, -1, NULL);

			t->metaoid = oid;
			return t;
		}
		typename = type_message_name(oid);
	}
	return resolve_type(oid, att->atttypmod, typename);
}

/* Whether converting values of this type may call output functions that depend on the session settings. */
static bool
needs_text_settings(const WaColType *t)
{
	switch (t->kind)
	{
		case WK_FALLBACK:
		case WK_DATE:
		case WK_TIMESTAMP:
		case WK_TIMESTAMPTZ:
		case WK_INTERVAL:
		case WK_ARRAY:
			return true;
		default:
			return false;
	}
}

/*
 * The columns of the relation's primary key as a bitmap of attribute numbers
 * offset by FirstLowInvalidHeapAttributeNumber (like
 * RelationGetIdentityKeyBitmap), or NULL when it has none. Matches the
 * connector's PrimaryKeyCatalog query: the pg_index row with indisprimary,
 * its key columns only (the first indnkeyatts indkey entries; INCLUDE columns
 * are not part of the key), deferrable keys included -- which
 * is why this does not use RelationGetPrimaryKeyIndex: rd_pkindex skips
 * non-immediate (DEFERRABLE) and invalid indexes. Reads the index list through
 * the relcache and pg_index through the syscache, i.e. under the decoding's
 * historic snapshot (the key as of the change's WAL position), and takes no
 * lock, as RelationGetIdentityKeyBitmap does for pgoutput.
 */
static Bitmapset *
primary_key_attrs(Relation rel)
{
	List	   *indexes = RelationGetIndexList(rel);
	Bitmapset  *attrs = NULL;
	ListCell   *lc;

	foreach(lc, indexes)
	{
		Oid			indexoid = lfirst_oid(lc);
		HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
		Form_pg_index index;

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for index %u", indexoid);
		index = (Form_pg_index) GETSTRUCT(tup);
		if (index->indisprimary)
		{
			for (int i = 0; i < index->indnkeyatts; i++)
			{
				AttrNumber	attnum = index->indkey.values[i];

				if (attnum > 0)
					attrs = bms_add_member(attrs, attnum - FirstLowInvalidHeapAttributeNumber);
			}
		}
		ReleaseSysCache(tup);
	}
	list_free(indexes);
	return attrs;
}

/*
 * Builds the Arrow schema of a relation as ChangeBatchBuilder does for the
 * Relation message pgoutput would send, with the connector's key flags:
 * non-dropped, non-generated columns in attribute order; key flags from the
 * replica identity, except under REPLICA IDENTITY FULL (where pgoutput flags
 * every column) the primary key's columns when the table has one
 * (TransactionAssembler.OnRelation); pg.primary_key lists the flagged
 * columns in attribute order. They are also the partition key (README.md,
 * "Partitions"), except under REPLICA IDENTITY FULL without a primary key,
 * where the table has no key and every row goes to partition 0.
 */
RelSchema *
wa_build_rel_schema(Relation rel, MemoryContext parent)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "wal2arrow relation schema",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	RelSchema  *s = palloc0(sizeof(RelSchema));
	TupleDesc	desc = RelationGetDescr(rel);
	Bitmapset  *idattrs = NULL;
	bool		all_key;		/* every column flagged (FULL without a primary key) */
	StringInfoData key;
	StringInfoData msg;
	StringInfoData canonical;
	WaField    *tablefields;
	WaField    *before;
	WaField    *unchanged;
	WaField    *special;
	int			n = 0;
	int			nodes = 0,
				buffers = 0;
	pg_cryptohash_ctx *hash;
	uint8		digest[PG_SHA256_DIGEST_LENGTH];

	s->cxt = cxt;
	s->relid = RelationGetRelid(rel);
	s->nspname = to_utf8(get_namespace_name(RelationGetNamespace(rel)));
	s->relname = to_utf8(pstrdup(RelationGetRelationName(rel)));
	s->replident = rel->rd_rel->relreplident;
	if (s->replident == REPLICA_IDENTITY_FULL)
	{
		/* the real primary key if any, else the whole row is the identity */
		idattrs = primary_key_attrs(rel);
		all_key = idattrs == NULL;
	}
	else
	{
		idattrs = RelationGetIdentityKeyBitmap(rel);
		all_key = false;
	}

	s->attidx = palloc(sizeof(int) * Max(desc->natts, 1));
	s->names = palloc(sizeof(char *) * Max(desc->natts, 1));
	s->types = palloc(sizeof(WaColType *) * Max(desc->natts, 1));
	s->keycols = palloc(sizeof(int) * Max(desc->natts, 1));
	s->keyout = palloc(sizeof(FmgrInfo) * Max(desc->natts, 1));
	initStringInfo(&key);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->attgenerated)
			continue;
		s->attidx[n] = i;
		s->names[n] = pstrdup(NameStr(att->attname));
		s->names[n] = to_utf8(s->names[n]);
		s->types[n] = resolve_column_type(att);
		if (needs_text_settings(s->types[n]))
			s->needs_settings = true;
		if (all_key || bms_is_member(att->attnum - FirstLowInvalidHeapAttributeNumber, idattrs))
		{
			if (key.len > 0)
				appendStringInfoChar(&key, ',');
			appendStringInfoString(&key, s->names[n]);
			if (!all_key)
			{
				/* a partition key column: its text as pgoutput prints it (the column type's output function) */
				Oid			outfunc;
				bool		isvarlena;

				getTypeOutputInfo(att->atttypid, &outfunc, &isvarlena);
				fmgr_info_cxt(outfunc, &s->keyout[s->nkeys], cxt);
				s->keycols[s->nkeys++] = n;
			}
		}
		n++;
	}
	s->ncols = n;

	/* _op, _lsn, _xid, _commit_lsn, _commit_ts, columns..., _before, _unchanged, _special */
	s->nfields = n + WA_LEADING_FIELDS + WA_TRAILING_FIELDS;
	s->fields = palloc0(sizeof(WaField) * s->nfields);
	s->fields[0].name = "_op";
	s->fields[0].type_id = WA_T_UTF8;
	s->fields[1].name = "_lsn";
	s->fields[1].type_id = WA_T_INT;
	s->fields[1].p1 = 64;
	s->fields[1].p2 = 0;
	s->fields[2].name = "_xid";
	s->fields[2].type_id = WA_T_INT;
	s->fields[2].p1 = 32;
	s->fields[2].p2 = 0;
	s->fields[3].name = "_commit_lsn";
	s->fields[3].type_id = WA_T_INT;
	s->fields[3].p1 = 64;
	s->fields[3].p2 = 0;
	s->fields[4].name = "_commit_ts";
	s->fields[4].type_id = WA_T_TIMESTAMP;
	s->fields[4].p1 = 2;		/* microseconds */
	s->fields[4].tz = "UTC";
	tablefields = &s->fields[WA_LEADING_FIELDS];
	for (int i = 0; i < n; i++)
		make_field(&tablefields[i], s->names[i], s->types[i]);
	before = &s->fields[n + WA_LEADING_FIELDS];
	unchanged = before + 1;
	special = before + 2;
	before->name = "_before";
	before->type_id = WA_T_STRUCT;
	before->nullable = true;
	before->nchildren = n;
	before->children = tablefields;
	unchanged->name = "_unchanged";
	unchanged->type_id = WA_T_LIST;
	unchanged->nullable = true;
	unchanged->nchildren = 1;
	unchanged->children = palloc0(sizeof(WaField));
	unchanged->children[0].name = "item";
	unchanged->children[0].type_id = WA_T_UTF8;
	unchanged->children[0].nullable = false;
	/* _special: map<utf8, utf8> (entries struct not null, key not null, value nullable) */
	special->name = "_special";
	special->type_id = WA_T_MAP;
	special->p1 = 0;	/* keysSorted = false */
	special->nullable = true;
	special->nchildren = 1;
	special->children = palloc0(sizeof(WaField));
	{
		WaField    *entries = &special->children[0];

		entries->name = "entries";
		entries->type_id = WA_T_STRUCT;
		entries->nullable = false;
		entries->nchildren = 2;
		entries->children = palloc0(sizeof(WaField) * 2);
		entries->children[0].name = "key";
		entries->children[0].type_id = WA_T_UTF8;
		entries->children[0].nullable = false;
		entries->children[1].name = "value";
		entries->children[1].type_id = WA_T_UTF8;
		entries->children[1].nullable = true;
	}

	s->nmeta = 5;
	s->meta = palloc(sizeof(char *) * 10);
	s->meta[0] = "pg.schema";
	s->meta[1] = s->nspname;
	s->meta[2] = "pg.table";
	s->meta[3] = s->relname;
	s->meta[4] = "pg.relid";
	s->meta[5] = psprintf("%u", s->relid);
	s->meta[6] = "pg.replica_identity";
	s->meta[7] = psprintf("%c", s->replident);
	s->meta[8] = "pg.primary_key";
	s->meta[9] = key.data;

	initStringInfo(&msg);
	wa_encode_schema_message(&msg, s->fields, s->nfields, s->meta, s->nmeta);
	s->schema_msg = msg.data;
	s->schema_len = msg.len;

	/* the fingerprint: SHA-256 of the schema's canonical text (not of the encoded message) */
	initStringInfo(&canonical);
	wa_schema_canonical(&canonical, s->fields, s->nfields, s->meta, s->nmeta);
	hash = pg_cryptohash_create(PG_SHA256);
	if (hash == NULL || pg_cryptohash_init(hash) < 0 ||
		pg_cryptohash_update(hash, (uint8 *) canonical.data, canonical.len) < 0 ||
		pg_cryptohash_final(hash, digest, sizeof(digest)) < 0)
		elog(ERROR, "wal2arrow: could not compute SHA-256: %s", pg_cryptohash_error(hash));
	pg_cryptohash_free(hash);
	pfree(canonical.data);
	memcpy(s->fp, digest, 8);

	for (int i = 0; i < s->nfields; i++)
		count_layout(&s->fields[i], &nodes, &buffers);
	s->batch_meta_len = wa_batch_metadata_size(nodes, buffers);

	MemoryContextSwitchTo(old);
	return s;
}

/* ---------------------------------------------------------------- values */

static void
put_le(char *p, uint64 v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (v >> (8 * i)) & 0xff;
}

static char *
describe_value(const char *text)
{
	int			len = strlen(text);

	if (len > 64)
		return psprintf("'%.*s…' (%d bytes)", pg_mbcliplen(text, len, 64), text, len);
	return psprintf("'%s'", text);
}

static void pg_attribute_noreturn()
reject(const char *relname, const char *colname, WaColType *t, const char *problem, const char *value)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("wal2arrow: table %s, column \"%s\" (%s): %s; value: %s",
					relname, colname, t->pgname, problem, describe_value(value))));
}

/* Appends UTF-8 text; converts from the database encoding when it is not UTF-8. */
static void
append_text(WaCol *col, const char *p, int len, const char *relname, const char *colname, WaColType *t)
{
	int			enc = GetDatabaseEncoding();

	if (enc != PG_UTF8)
	{
		if (enc == PG_SQL_ASCII)
		{
			if (!pg_verify_mbstr(PG_UTF8, p, len, true))
				reject(relname, colname, t, "not valid UTF-8", pnstrdup(p, Min(len, 64)));
		}
		else
		{
			char	   *c = pg_server_to_any(p, len, PG_UTF8);

			if (c != p)
			{
				p = c;
				len = strlen(c);
			}
		}
	}
	wacol_var(col, p, len);
}

static void
append_varlena_text(WaCol *col, Datum d, const char *relname, const char *colname, WaColType *t)
{
	struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(d));

	append_text(col, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v), relname, colname, t);
}

/* numeric(p,s) -> little-endian two's complement decimal128/256, like DecimalAccumulator. */
static void
append_decimal(WaCol *col, WaColType *t, Datum d, const char *relname, const char *colname)
{
	Numeric		num PG_USED_FOR_ASSERTS_ONLY = DatumGetNumeric(d);
	char	   *text;
	const char *p;
	const char *intpart,
			   *frac = "";
	int			intlen = 0,
				fraclen = 0;
	bool		negative = false;
	uint64		limbs[4] = {0, 0, 0, 0};
	int			nlimbs = t->bitwidth / 64;
	int			significant = 0;
	char	   *out;

	Assert(!numeric_is_nan(num) && !numeric_is_inf(num));	/* special */
	text = DatumGetCString(DirectFunctionCall1(numeric_out, d));
	p = text;
	if (*p == '-' || *p == '+')
		negative = *p++ == '-';
	intpart = p;
	while (*p >= '0' && *p <= '9')
		p++;
	intlen = p - intpart;
	if (*p == '.')
	{
		frac = ++p;
		while (*p >= '0' && *p <= '9')
			p++;
		fraclen = p - frac;
	}
	if (*p != '\0' || (intlen == 0 && fraclen == 0))
		reject(relname, colname, t, "not a numeric value", text);

	for (int i = 0; i < intlen + t->scale; i++)
	{
		int			digit;
		unsigned __int128 carry;

		if (i < intlen)
			digit = intpart[i] - '0';
		else
			digit = (i - intlen) < fraclen ? frac[i - intlen] - '0' : 0;
		if (significant == 0 && digit == 0)
			continue;
		if (++significant > t->precision)
			reject(relname, colname, t,
				   psprintf("value exceeds numeric(%d,%d)", t->precision, t->scale), text);
		carry = digit;
		for (int k = 0; k < nlimbs; k++)
		{
			unsigned __int128 x = (unsigned __int128) limbs[k] * 10 + carry;

			limbs[k] = (uint64) x;
			carry = x >> 64;
		}
	}
	for (int i = t->scale; i < fraclen; i++)
		if (frac[i] != '0')
			reject(relname, colname, t,
				   psprintf("value has more than %d fraction digits", t->scale), text);
	if (negative && significant > 0)
	{
		/* two's complement */
		unsigned __int128 carry = 1;

		for (int k = 0; k < nlimbs; k++)
		{
			unsigned __int128 x = (unsigned __int128) (~limbs[k]) + carry;

			limbs[k] = (uint64) x;
			carry = x >> 64;
		}
	}
	out = wacol_fixed(col);
	for (int k = 0; k < nlimbs; k++)
		put_le(out + 8 * k, limbs[k], 8);
	pfree(text);
}

static void
append_array(WaCol *col, WaColType *t, Datum d, const char *relname, const char *colname)
{
	ArrayType  *arr = DatumGetArrayTypeP(d);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	WaCol	   *child = &col->children[0];

	Assert(ARR_NDIM(arr) <= 1 && (ARR_NDIM(arr) == 0 || ARR_LBOUND(arr)[0] == 1));	/* else special */
	if (ARR_NDIM(arr) == 1)
	{
		deconstruct_array(arr, t->elem->typoid, t->elemlen, t->elembyval, t->elemalign,
						  &elems, &nulls, &n);
		for (int i = 0; i < n; i++)
		{
			if (nulls[i])
				wacol_null(child);
			else
				(void) wa_append_value(child, t->elem, elems[i], relname, colname, NULL);
		}
	}
	wacol_list_end(col);
}

/*
 * Whether the value is one the column's Arrow type cannot hold (the
 * connector's PgValueParser "special" values): numeric NaN/±Infinity in a
 * decimal, ±infinity dates and timestamps, timestamps whose microseconds since
 * 1970 overflow int64, intervals whose time part overflows int64 nanoseconds,
 * multi-dimensional arrays, arrays with a lower bound other than 1, and arrays
 * with such an element.
 */
static bool
value_is_special(WaColType *t, Datum d)
{
	switch (t->kind)
	{
		case WK_DECIMAL:
			{
				Numeric		num = DatumGetNumeric(d);

				return numeric_is_nan(num) || numeric_is_inf(num);
			}
		case WK_DATE:
			return DATE_NOT_FINITE(DatumGetDateADT(d));
		case WK_TIMESTAMP:
		case WK_TIMESTAMPTZ:
			{
				int64		ts = DatumGetInt64(d);
				int64		unix_us;

				return TIMESTAMP_NOT_FINITE(ts) || pg_add_s64_overflow(ts, UNIX_EPOCH_OFFSET_US, &unix_us);
			}
		case WK_INTERVAL:
			{
				Interval   *iv = DatumGetIntervalP(d);

				return iv->time > PG_INT64_MAX / 1000 || iv->time < PG_INT64_MIN / 1000;
			}
		case WK_ARRAY:
			{
				ArrayType  *arr = DatumGetArrayTypeP(d);
				Datum	   *elems;
				bool	   *nulls;
				int			n;
				bool		special = false;

				if (ARR_NDIM(arr) > 1 || (ARR_NDIM(arr) == 1 && ARR_LBOUND(arr)[0] != 1))
					return true;
				if (ARR_NDIM(arr) == 0 || !(t->elem->kind == WK_DECIMAL || t->elem->kind == WK_DATE ||
											t->elem->kind == WK_TIMESTAMP || t->elem->kind == WK_TIMESTAMPTZ ||
											t->elem->kind == WK_INTERVAL))
					return false;
				deconstruct_array(arr, t->elem->typoid, t->elemlen, t->elembyval, t->elemalign,
								  &elems, &nulls, &n);
				for (int i = 0; i < n && !special; i++)
					special = !nulls[i] && value_is_special(t->elem, elems[i]);
				pfree(elems);
				pfree(nulls);
				return special;
			}
		default:
			return false;
	}
}

/* PostgreSQL's text of a value (the type's output function under the pushed session settings), in UTF-8. */
static void
append_value_text(StringInfo out, WaColType *t, Datum d)
{
	char	   *text = OidOutputFunctionCall(t->outfunc, d);
	int			len = strlen(text);
	int			enc = GetDatabaseEncoding();

	if (enc != PG_UTF8 && enc != PG_SQL_ASCII)
	{
		text = pg_server_to_any(text, len, PG_UTF8);
		len = strlen(text);
	}
	appendBinaryStringInfo(out, text, len);
}

/*
 * Appends a non-null value to the column and returns true; or, for a value the
 * column's Arrow type cannot hold (see value_is_special), appends null, appends
 * PostgreSQL's text of the value to *special and returns false (special may be
 * NULL only when the caller checked the value already: array elements).
 */
bool
wa_append_value(WaCol *col, WaColType *t, Datum d, const char *relname, const char *colname,
				StringInfo special)
{
	if (special != NULL && value_is_special(t, d))
	{
		append_value_text(special, t, d);
		wacol_null(col);
		return false;
	}
	switch (t->kind)
	{
		case WK_BOOL:
			wacol_bool(col, DatumGetBool(d));
			break;
		case WK_INT16:
			put_le(wacol_fixed(col), (uint16) DatumGetInt16(d), 2);
			break;
		case WK_INT32:
			put_le(wacol_fixed(col), (uint32) DatumGetInt32(d), 4);
			break;
		case WK_OID:
			put_le(wacol_fixed(col), DatumGetObjectId(d), 4);
			break;
		case WK_INT64:
			put_le(wacol_fixed(col), (uint64) DatumGetInt64(d), 8);
			break;
		case WK_FLOAT32:
			{
				float4		f = DatumGetFloat4(d);
				uint32		u;

				memcpy(&u, &f, 4);
				if (isnan(f))
					u = 0x7FC00000; /* PostgreSQL's NaN: what the connector parses "NaN" into */
				put_le(wacol_fixed(col), u, 4);
				break;
			}
		case WK_FLOAT64:
			{
				float8		f = DatumGetFloat8(d);
				uint64		u;

				memcpy(&u, &f, 8);
				if (isnan(f))
					u = UINT64CONST(0x7FF8000000000000);
				put_le(wacol_fixed(col), u, 8);
				break;
			}
		case WK_DECIMAL:
			append_decimal(col, t, d, relname, colname);
			break;
		case WK_NUMERIC_TEXT:
		case WK_JSONB:
		case WK_FALLBACK:
			{
				char	   *s = OidOutputFunctionCall(t->outfunc, d);

				append_text(col, s, strlen(s), relname, colname, t);
				pfree(s);
				break;
			}
		case WK_TEXT:
		case WK_JSON:
			if (t->typoid == NAMEOID)
			{
				const char *s = NameStr(*DatumGetName(d));

				append_text(col, s, strlen(s), relname, colname, t);
			}
			else
				append_varlena_text(col, d, relname, colname, t);
			break;
		case WK_BYTEA:
			{
				struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(d));

				wacol_var(col, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
				break;
			}
		case WK_DATE:
			{
				DateADT		days = DatumGetDateADT(d);

				put_le(wacol_fixed(col), (uint32) (int32) ((int64) days + UNIX_EPOCH_OFFSET_DAYS), 4);
				break;
			}
		case WK_TIMESTAMP:
		case WK_TIMESTAMPTZ:
			{
				int64		ts = DatumGetInt64(d);
				int64		unix_us;

				if (pg_add_s64_overflow(ts, UNIX_EPOCH_OFFSET_US, &unix_us))
					elog(ERROR, "wal2arrow: timestamp out of range");	/* special, checked above */
				put_le(wacol_fixed(col), (uint64) unix_us, 8);
				break;
			}
		case WK_TIME:
			put_le(wacol_fixed(col), (uint64) DatumGetTimeADT(d), 8);
			break;
		case WK_INTERVAL:
			{
				Interval   *iv = DatumGetIntervalP(d);
				char	   *out;

				out = wacol_fixed(col);
				put_le(out, (uint32) iv->month, 4);
				put_le(out + 4, (uint32) iv->day, 4);
				put_le(out + 8, (uint64) (iv->time * 1000), 8);
				break;
			}
		case WK_UUID:
			memcpy(wacol_fixed(col), DatumGetUUIDP(d)->data, UUID_LEN);
			break;
		case WK_ARRAY:
			append_array(col, t, d, relname, colname);
			break;
	}
	return true;
}
