/*-------------------------------------------------------------------------
 * wal2arrow.h
 *		Shared declarations of the wal2arrow output plugin.
 *-------------------------------------------------------------------------
 */
#ifndef WAL2ARROW_H
#define WAL2ARROW_H

#include "postgres.h"
#include "fmgr.h"
#include "utils/relcache.h"

#include "arrow.h"

/* How values of a column are converted (mirrors PgValueKind in PgTypeMapping.cs). */
typedef enum WaKind
{
	WK_BOOL,
	WK_INT16,
	WK_INT32,
	WK_INT64,
	WK_OID,
	WK_FLOAT32,
	WK_FLOAT64,
	WK_DECIMAL,
	WK_NUMERIC_TEXT,
	WK_TEXT,
	WK_BYTEA,
	WK_DATE,
	WK_TIMESTAMP,
	WK_TIMESTAMPTZ,
	WK_TIME,
	WK_INTERVAL,
	WK_UUID,
	WK_JSON,
	WK_JSONB,
	WK_FALLBACK,
	WK_ARRAY
} WaKind;

typedef struct WaColType
{
	WaKind		kind;
	Oid			typoid;			/* the type whose values these are (a domain's base type) */
	Oid			metaoid;		/* pg.typoid: the column's type (the domain) */
	int32		typmod;
	char	   *pgname;			/* pg.type metadata */
	const char *extension;		/* ARROW:extension:name or NULL */
	int			precision;		/* decimal */
	int			scale;
	int			bitwidth;
	Oid			outfunc;		/* output function for text conversions */
	struct WaColType *elem;		/* arrays */
	int16		elemlen;
	bool		elembyval;
	char		elemalign;
} WaColType;

/* Fields before the table's columns: _op, _lsn, _xid, _commit_lsn, _commit_ts */
#define WA_LEADING_FIELDS 5
/* Fields after them: _before, _unchanged, _special */
#define WA_TRAILING_FIELDS 3

/* The Arrow shape of one relation (as ChangeBatchBuilder builds it). */
typedef struct RelSchema
{
	MemoryContext cxt;
	int			refcount;
	Oid			relid;
	char	   *nspname;
	char	   *relname;
	char		replident;
	int			ncols;			/* published table columns */
	int		   *attidx;			/* tuple descriptor index of each column */
	char	  **names;
	WaColType **types;
	WaField    *fields;			/* nfields = ncols + 8 */
	int			nfields;
	const char **meta;
	int			nmeta;
	char	   *schema_msg;		/* framed schema message */
	int			schema_len;
	uint8		fp[8];			/* schema fingerprint */
	int			batch_meta_len; /* framed record batch metadata size */
	bool		needs_settings; /* may call output functions that depend on DateStyle etc. */
	/* partition key: the pg.primary_key columns, in that order (README.md, "Partitions") */
	int			nkeys;			/* 0: every row goes to partition 0 */
	int		   *keycols;		/* column index (0 .. ncols-1) of each key column */
	FmgrInfo   *keyout;			/* output function of each key column's type */
} RelSchema;

extern RelSchema *wa_build_rel_schema(Relation rel, MemoryContext parent);
extern bool wa_append_value(WaCol *col, WaColType *t, Datum d, const char *relname, const char *colname,
							StringInfo special);

#endif
