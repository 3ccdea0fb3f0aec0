/*-------------------------------------------------------------------------
 * arrow.h
 *		Minimal Apache Arrow IPC message writer for wal2arrow: the schema
 *		message and record batch messages of a stream (the connector adds the
 *		end-of-stream marker when it joins them into a stream).
 *
 * The plugin keeps its own encoder (the payloads are built inside PostgreSQL
 * and passed through by the connector): metadata version V5, every body buffer
 * 8-byte aligned and zero-padded, empty validity bitmaps for columns without
 * nulls, no vtable de-duplication.  The connector encodes with Apache.Arrow, so
 * the two encoders agree on the meaning of a stream (checked by
 * test-tools/cscheck), not on its bytes.  The schema fingerprint is the SHA-256
 * of the schema's canonical text (wa_schema_canonical), the same on both sides.
 *-------------------------------------------------------------------------
 */
#ifndef WAL2ARROW_ARROW_H
#define WAL2ARROW_ARROW_H

#include "postgres.h"
#include "lib/stringinfo.h"

/* Arrow type ids (Schema.fbs Type union) */
#define WA_T_INT		2
#define WA_T_FLOAT		3
#define WA_T_BINARY		4
#define WA_T_UTF8		5
#define WA_T_BOOL		6
#define WA_T_DECIMAL	7
#define WA_T_DATE		8
#define WA_T_TIME		9
#define WA_T_TIMESTAMP	10
#define WA_T_INTERVAL	11
#define WA_T_LIST		12
#define WA_T_STRUCT		13
#define WA_T_FSB		15
#define WA_T_MAP		17

/* growable byte buffer (allocations stay in the context of the first allocation) */
typedef struct WaBuf
{
	char	   *data;
	Size		len;
	Size		cap;
} WaBuf;

extern void wabuf_init(WaBuf *b, Size cap);
extern void wabuf_grow(WaBuf *b, Size need);

static inline char *
wabuf_append(WaBuf *b, Size n)
{
	char	   *p;

	if (b->len + n > b->cap)
		wabuf_grow(b, n);
	p = b->data + b->len;
	b->len += n;
	return p;
}

/* A field of the Arrow schema. */
typedef struct WaField
{
	const char *name;
	uint8		type_id;
	int32		p1;				/* Int: bit width; Float: precision; Decimal: precision;
								 * Date/Time/Timestamp/Interval: unit; FSB: width;
								 * Map: keysSorted */
	int32		p2;				/* Int: signed; Decimal: scale; Time: bit width */
	int32		p3;				/* Decimal: bit width */
	const char *tz;				/* Timestamp time zone or NULL */
	bool		nullable;
	int			nchildren;
	struct WaField *children;
	int			nmeta;
	const char **meta;			/* 2*nmeta: key, value, key, value... */
} WaField;

/* Column builders */
#define WA_COL_FIXED	0
#define WA_COL_BOOL		1
#define WA_COL_VAR		2
#define WA_COL_LIST		3
#define WA_COL_STRUCT	4

typedef struct WaCol
{
	const WaField *field;
	int			kind;
	int			width;			/* bytes per value, fixed-width columns */
	int			length;
	int			null_count;
	WaBuf		validity;
	WaBuf		data;			/* fixed values, bool bits, var bytes */
	WaBuf		offsets;		/* var and list: int32 offsets, starts with 0 */
	int			nchildren;
	struct WaCol *children;
} WaCol;

extern void wacol_init(WaCol *col, const WaField *field);
extern void wacol_reset(WaCol *col);
extern void wacol_null(WaCol *col);
extern char *wacol_fixed(WaCol *col);
extern void wacol_bool(WaCol *col, bool v);
extern void wacol_var(WaCol *col, const char *p, Size n);
extern void wacol_list_end(WaCol *col);
extern void wacol_struct_valid(WaCol *col);
extern int	wacol_mark_size(const WaCol *col);
extern int *wacol_mark(const WaCol *col, int *m);
extern const int *wacol_rollback(WaCol *col, const int *m);
extern void wacol_layout(const WaCol *col, int *nodes, int *buffers);
extern uint64 wacol_body_bytes(const WaCol *col);

/* Schema and record batch messages */
extern void wa_encode_schema_message(StringInfo out, const WaField *fields, int nfields,
									 const char **meta, int nmeta);
extern int	wa_batch_metadata_size(int nodes, int buffers);
extern void wa_write_batch(StringInfo out, WaCol *cols, int ncols, int rows);

/* Canonical text of a schema; its SHA-256 gives the schema fingerprint. */
extern void wa_schema_canonical(StringInfo out, const WaField *fields, int nfields,
								const char **meta, int nmeta);

#endif
