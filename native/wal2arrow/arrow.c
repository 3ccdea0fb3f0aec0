/*-------------------------------------------------------------------------
 * arrow.c
 *		Arrow IPC stream encoding for wal2arrow (see arrow.h).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "arrow.h"

#define ALIGN8(n) (((n) + 7) & ~((uint64) 7))

/* ---------------------------------------------------------------- buffers */

void
wabuf_init(WaBuf *b, Size cap)
{
	b->cap = Max(cap, 8);
	b->data = MemoryContextAllocHuge(CurrentMemoryContext, b->cap);
	b->len = 0;
}

void
wabuf_grow(WaBuf *b, Size need)
{
	Size		cap = Max(b->cap * 2, b->len + need + 64);

	b->data = repalloc_huge(b->data, cap);
	b->cap = cap;
}

/* ---------------------------------------------------------------- FlatBuffers
 * A minimal FlatBuffers builder: written back to front; offsets are measured
 * from the end of the buffer.
 */
typedef struct FB
{
	uint8	   *buf;
	int			cap;
	int			space;
	int			min_align;
	int			vtable[16];
	int			vtable_fields;
	int			object_start;
	int			vector_count;
} FB;

static void
fb_init(FB *b, int cap)
{
	b->cap = cap;
	b->buf = palloc(cap);
	b->space = cap;
	b->min_align = 1;
	b->vtable_fields = -1;
	b->vector_count = -1;
}

static inline int
fb_offset(FB *b)
{
	return b->cap - b->space;
}

static void
fb_grow(FB *b, int needed)
{
	int			used = b->cap - b->space;
	int			size = Max(b->cap * 2, used + needed + 16);
	uint8	   *n = palloc(size);

	memcpy(n + size - used, b->buf + b->space, used);
	pfree(b->buf);
	b->buf = n;
	b->space = size - used;
	b->cap = size;
}

static inline void
fb_ensure(FB *b, int bytes)
{
	if (b->space < bytes)
		fb_grow(b, bytes);
}

static void
fb_prep(FB *b, int size, int additional)
{
	int			pad;

	if (size > b->min_align)
		b->min_align = size;
	pad = (~(fb_offset(b) + additional) + 1) & (size - 1);
	fb_ensure(b, pad + size + additional);
	while (pad-- > 0)
		b->buf[--b->space] = 0;
}

static inline void
fb_put8(FB *b, uint8 v)
{
	fb_ensure(b, 1);
	b->buf[--b->space] = v;
}

static inline void
fb_put16(FB *b, int16 v)
{
	uint16		u = (uint16) v;

	fb_ensure(b, 2);
	b->space -= 2;
	b->buf[b->space] = u & 0xff;
	b->buf[b->space + 1] = u >> 8;
}

static inline void
fb_put32(FB *b, int32 v)
{
	uint32		u = (uint32) v;

	fb_ensure(b, 4);
	b->space -= 4;
	for (int i = 0; i < 4; i++)
		b->buf[b->space + i] = (u >> (8 * i)) & 0xff;
}

static inline void
fb_put64(FB *b, int64 v)
{
	uint64		u = (uint64) v;

	fb_ensure(b, 8);
	b->space -= 8;
	for (int i = 0; i < 8; i++)
		b->buf[b->space + i] = (u >> (8 * i)) & 0xff;
}

static void
fb_start_table(FB *b, int fields)
{
	Assert(b->vtable_fields < 0 && fields <= 16);
	memset(b->vtable, 0, sizeof(b->vtable));
	b->vtable_fields = fields;
	b->object_start = fb_offset(b);
}

static inline void
fb_slot(FB *b, int field)
{
	b->vtable[field] = fb_offset(b);
}

static void
fb_add8(FB *b, int field, uint8 v)
{
	fb_prep(b, 1, 0);
	fb_put8(b, v);
	fb_slot(b, field);
}

static void
fb_add16(FB *b, int field, int16 v)
{
	fb_prep(b, 2, 0);
	fb_put16(b, v);
	fb_slot(b, field);
}

static void
fb_add32(FB *b, int field, int32 v)
{
	fb_prep(b, 4, 0);
	fb_put32(b, v);
	fb_slot(b, field);
}

static void
fb_add64(FB *b, int field, int64 v)
{
	fb_prep(b, 8, 0);
	fb_put64(b, v);
	fb_slot(b, field);
}

static void
fb_offset_value(FB *b, int off)
{
	fb_prep(b, 4, 0);
	Assert(off <= fb_offset(b));
	fb_put32(b, fb_offset(b) - off + 4);
}

static void
fb_add_offset(FB *b, int field, int off)
{
	if (off == 0)
		return;
	fb_offset_value(b, off);
	fb_slot(b, field);
}

static int
fb_end_table(FB *b)
{
	int			object;
	int			fields = b->vtable_fields;
	int			vt;
	int32		rel;

	fb_prep(b, 4, 0);
	fb_put32(b, 0);
	object = fb_offset(b);
	while (fields > 0 && b->vtable[fields - 1] == 0)
		fields--;
	fb_ensure(b, 2 * (fields + 2));
	for (int i = fields - 1; i >= 0; i--)
		fb_put16(b, b->vtable[i] != 0 ? (int16) (object - b->vtable[i]) : 0);
	fb_put16(b, (int16) (object - b->object_start));
	fb_put16(b, (int16) ((fields + 2) * 2));
	vt = fb_offset(b);
	rel = vt - object;
	for (int i = 0; i < 4; i++)
		b->buf[b->cap - object + i] = ((uint32) rel >> (8 * i)) & 0xff;
	b->vtable_fields = -1;
	return object;
}

static int
fb_string(FB *b, const char *s)
{
	int			n = strlen(s);

	fb_prep(b, 4, n + 1);
	fb_put8(b, 0);
	fb_ensure(b, n);
	b->space -= n;
	memcpy(b->buf + b->space, s, n);
	fb_put32(b, n);
	return fb_offset(b);
}

static int
fb_offset_vector(FB *b, const int *offs, int n)
{
	fb_prep(b, 4, 4 * n);
	for (int i = n - 1; i >= 0; i--)
		fb_offset_value(b, offs[i]);
	fb_put32(b, n);
	return fb_offset(b);
}

static void
fb_start_pair_vector(FB *b, int count)
{
	fb_prep(b, 4, 16 * count);
	fb_prep(b, 8, 16 * count);
	b->vector_count = count;
}

static void
fb_push_pair(FB *b, int64 first, int64 second)
{
	fb_put64(b, second);
	fb_put64(b, first);
}

static int
fb_end_vector(FB *b)
{
	fb_put32(b, b->vector_count);
	b->vector_count = -1;
	return fb_offset(b);
}

/* returns pointer to the finished buffer; *len gets its length */
static uint8 *
fb_finish(FB *b, int root, int *len)
{
	fb_prep(b, Max(b->min_align, 8), 4);
	fb_offset_value(b, root);
	*len = fb_offset(b);
	return b->buf + b->space;
}

/* ---------------------------------------------------------------- IPC metadata */

static int
encode_metadata(FB *b, const char **meta, int nmeta)
{
	int		   *entries;
	int			r;

	if (nmeta == 0)
		return 0;
	entries = palloc(sizeof(int) * nmeta);
	for (int i = 0; i < nmeta; i++)
	{
		int			key = fb_string(b, meta[2 * i]);
		int			value = fb_string(b, meta[2 * i + 1]);

		fb_start_table(b, 2);
		fb_add_offset(b, 0, key);
		fb_add_offset(b, 1, value);
		entries[i] = fb_end_table(b);
	}
	r = fb_offset_vector(b, entries, nmeta);
	pfree(entries);
	return r;
}

static int
encode_type(FB *b, const WaField *f)
{
	switch (f->type_id)
	{
		case WA_T_INT:
			fb_start_table(b, 2);
			fb_add32(b, 0, f->p1);
			fb_add8(b, 1, f->p2 ? 1 : 0);
			return fb_end_table(b);
		case WA_T_FLOAT:
		case WA_T_DATE:
		case WA_T_INTERVAL:
			fb_start_table(b, 1);
			fb_add16(b, 0, (int16) f->p1);
			return fb_end_table(b);
		case WA_T_DECIMAL:
			fb_start_table(b, 3);
			fb_add32(b, 0, f->p1);
			fb_add32(b, 1, f->p2);
			fb_add32(b, 2, f->p3);
			return fb_end_table(b);
		case WA_T_TIME:
			fb_start_table(b, 2);
			fb_add16(b, 0, (int16) f->p1);
			fb_add32(b, 1, f->p2);
			return fb_end_table(b);
		case WA_T_TIMESTAMP:
			{
				int			tz = f->tz ? fb_string(b, f->tz) : 0;

				fb_start_table(b, 2);
				fb_add_offset(b, 1, tz);
				fb_add16(b, 0, (int16) f->p1);
				return fb_end_table(b);
			}
		case WA_T_FSB:
			fb_start_table(b, 1);
			fb_add32(b, 0, f->p1);
			return fb_end_table(b);
		case WA_T_MAP:
			fb_start_table(b, 1);
			fb_add8(b, 0, f->p1 ? 1 : 0);
			return fb_end_table(b);
		default:				/* bool, binary, utf8, list, struct */
			fb_start_table(b, 0);
			return fb_end_table(b);
	}
}

static int
encode_field(FB *b, const WaField *f)
{
	int			name = fb_string(b, f->name);
	int			type = encode_type(b, f);
	int		   *childs = palloc(sizeof(int) * Max(f->nchildren, 1));
	int			children;
	int			metadata;

	for (int i = 0; i < f->nchildren; i++)
		childs[i] = encode_field(b, &f->children[i]);
	children = fb_offset_vector(b, childs, f->nchildren);
	pfree(childs);
	metadata = encode_metadata(b, f->meta, f->nmeta);
	fb_start_table(b, 7);
	fb_add_offset(b, 0, name);
	fb_add_offset(b, 3, type);
	fb_add_offset(b, 5, children);
	fb_add_offset(b, 6, metadata);
	fb_add8(b, 1, f->nullable ? 1 : 0);
	fb_add8(b, 2, f->type_id);
	return fb_end_table(b);
}

static int
encode_message(FB *b, uint8 header_type, int header, int64 body_length)
{
	fb_start_table(b, 5);
	fb_add64(b, 3, body_length);
	fb_add_offset(b, 2, header);
	fb_add16(b, 0, 4);			/* MetadataVersion.V5 */
	fb_add8(b, 1, header_type);
	return fb_end_table(b);
}

static void
append_le32(StringInfo out, uint32 v)
{
	char		b[4];

	for (int i = 0; i < 4; i++)
		b[i] = (v >> (8 * i)) & 0xff;
	appendBinaryStringInfo(out, b, 4);
}

static void
append_zeros(StringInfo out, int n)
{
	static const char zeros[8] = {0};

	while (n > 0)
	{
		int			k = Min(n, 8);

		appendBinaryStringInfo(out, zeros, k);
		n -= k;
	}
}

static void
write_metadata(StringInfo out, const uint8 *fb, int len)
{
	int			padded = ALIGN8(len);

	append_le32(out, 0xFFFFFFFF);
	append_le32(out, (uint32) padded);
	appendBinaryStringInfo(out, (const char *) fb, len);
	append_zeros(out, padded - len);
}

void
wa_encode_schema_message(StringInfo out, const WaField *fields, int nfields,
						 const char **meta, int nmeta)
{
	FB			b;
	int		   *offs = palloc(sizeof(int) * Max(nfields, 1));
	int			fvec,
				md,
				schema,
				root,
				len;
	uint8	   *bytes;

	fb_init(&b, 1024);
	for (int i = 0; i < nfields; i++)
		offs[i] = encode_field(&b, &fields[i]);
	fvec = fb_offset_vector(&b, offs, nfields);
	md = encode_metadata(&b, meta, nmeta);
	fb_start_table(&b, 4);
	fb_add16(&b, 0, 0);			/* little endian */
	fb_add_offset(&b, 1, fvec);
	fb_add_offset(&b, 2, md);
	schema = fb_end_table(&b);
	root = encode_message(&b, 1, schema, 0);
	bytes = fb_finish(&b, root, &len);
	write_metadata(out, bytes, len);
	pfree(b.buf);
	pfree(offs);
}

/* ---------------------------------------------------------------- builders */

static inline void
bit_append(WaBuf *b, int index, bool v)
{
	if ((index & 7) == 0)
		*wabuf_append(b, 1) = 0;
	if (v)
		b->data[index >> 3] |= (char) (1 << (index & 7));
}

static inline void
put_le32(char *p, uint32 v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = (v >> 24) & 0xff;
}

static inline uint32
get_le32(const char *p)
{
	const uint8 *u = (const uint8 *) p;

	return u[0] | (u[1] << 8) | (u[2] << 16) | ((uint32) u[3] << 24);
}

void
wacol_init(WaCol *col, const WaField *f)
{
	memset(col, 0, sizeof(*col));
	col->field = f;
	switch (f->type_id)
	{
		case WA_T_BOOL:
			col->kind = WA_COL_BOOL;
			break;
		case WA_T_UTF8:
		case WA_T_BINARY:
			col->kind = WA_COL_VAR;
			break;
		case WA_T_LIST:
		case WA_T_MAP:			/* a list of entries structs */
			col->kind = WA_COL_LIST;
			break;
		case WA_T_STRUCT:
			col->kind = WA_COL_STRUCT;
			break;
		default:
			col->kind = WA_COL_FIXED;
			switch (f->type_id)
			{
				case WA_T_INT:
					col->width = f->p1 / 8;
					break;
				case WA_T_FLOAT:
					col->width = f->p1 == 1 ? 4 : f->p1 == 2 ? 8 : 2;
					break;
				case WA_T_DECIMAL:
					col->width = f->p3 / 8;
					break;
				case WA_T_DATE:
					col->width = f->p1 == 0 ? 4 : 8;
					break;
				case WA_T_TIME:
					col->width = f->p2 / 8;
					break;
				case WA_T_TIMESTAMP:
					col->width = 8;
					break;
				case WA_T_INTERVAL:
					col->width = f->p1 == 0 ? 4 : f->p1 == 1 ? 8 : 16;
					break;
				case WA_T_FSB:
					col->width = f->p1;
					break;
				default:
					elog(ERROR, "wal2arrow: unsupported Arrow type id %d", f->type_id);
			}
	}
	wabuf_init(&col->validity, 64);
	wabuf_init(&col->data, col->kind == WA_COL_FIXED ? 64 * col->width : 256);
	if (col->kind == WA_COL_VAR || col->kind == WA_COL_LIST)
	{
		wabuf_init(&col->offsets, 256);
		put_le32(wabuf_append(&col->offsets, 4), 0);
	}
	col->nchildren = f->nchildren;
	if (f->nchildren > 0)
	{
		col->children = palloc(sizeof(WaCol) * f->nchildren);
		for (int i = 0; i < f->nchildren; i++)
			wacol_init(&col->children[i], &f->children[i]);
	}
}

void
wacol_reset(WaCol *col)
{
	col->length = 0;
	col->null_count = 0;
	col->validity.len = 0;
	col->data.len = 0;
	if (col->kind == WA_COL_VAR || col->kind == WA_COL_LIST)
		col->offsets.len = 4;
	for (int i = 0; i < col->nchildren; i++)
		wacol_reset(&col->children[i]);
}

void
wacol_null(WaCol *col)
{
	bit_append(&col->validity, col->length, false);
	col->null_count++;
	switch (col->kind)
	{
		case WA_COL_FIXED:
			memset(wabuf_append(&col->data, col->width), 0, col->width);
			break;
		case WA_COL_BOOL:
			bit_append(&col->data, col->length, false);
			break;
		case WA_COL_VAR:
			put_le32(wabuf_append(&col->offsets, 4), (uint32) col->data.len);
			break;
		case WA_COL_LIST:
			put_le32(wabuf_append(&col->offsets, 4), (uint32) col->children[0].length);
			break;
		case WA_COL_STRUCT:
			for (int i = 0; i < col->nchildren; i++)
				wacol_null(&col->children[i]);
			break;
	}
	col->length++;
}

char *
wacol_fixed(WaCol *col)
{
	bit_append(&col->validity, col->length, true);
	col->length++;
	return wabuf_append(&col->data, col->width);
}

void
wacol_bool(WaCol *col, bool v)
{
	bit_append(&col->validity, col->length, true);
	bit_append(&col->data, col->length, v);
	col->length++;
}

void
wacol_var(WaCol *col, const char *p, Size n)
{
	if ((uint64) col->data.len + n > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("wal2arrow: column \"%s\" holds more than 2 GB in one chunk", col->field->name)));
	bit_append(&col->validity, col->length, true);
	if (n > 0)
		memcpy(wabuf_append(&col->data, n), p, n);
	put_le32(wabuf_append(&col->offsets, 4), (uint32) col->data.len);
	col->length++;
}

void
wacol_list_end(WaCol *col)
{
	bit_append(&col->validity, col->length, true);
	put_le32(wabuf_append(&col->offsets, 4), (uint32) col->children[0].length);
	col->length++;
}

void
wacol_struct_valid(WaCol *col)
{
	bit_append(&col->validity, col->length, true);
	col->length++;
}

/* ---- mark / rollback: 5 ints per builder (depth first) */

int
wacol_mark_size(const WaCol *col)
{
	int			n = 5;

	for (int i = 0; i < col->nchildren; i++)
		n += wacol_mark_size(&col->children[i]);
	return n;
}

int *
wacol_mark(const WaCol *col, int *m)
{
	m[0] = col->length;
	m[1] = col->null_count;
	m[2] = (int) col->validity.len;
	m[3] = (int) col->data.len;
	m[4] = (int) col->offsets.len;
	m += 5;
	for (int i = 0; i < col->nchildren; i++)
		m = wacol_mark(&col->children[i], m);
	return m;
}

const int *
wacol_rollback(WaCol *col, const int *m)
{
	col->length = m[0];
	col->null_count = m[1];
	col->validity.len = m[2];
	col->data.len = m[3];
	col->offsets.len = m[4];
	if (col->length & 7)
	{
		char		mask = (char) ((1 << (col->length & 7)) - 1);

		col->validity.data[col->length >> 3] &= mask;
		if (col->kind == WA_COL_BOOL)
			col->data.data[col->length >> 3] &= mask;
	}
	m += 5;
	for (int i = 0; i < col->nchildren; i++)
		m = wacol_rollback(&col->children[i], m);
	return m;
}

/* ---- record batch */

void
wacol_layout(const WaCol *col, int *nodes, int *buffers)
{
	(*nodes)++;
	switch (col->kind)
	{
		case WA_COL_VAR:
			*buffers += 3;
			break;
		case WA_COL_STRUCT:
			*buffers += 1;
			break;
		default:
			*buffers += 2;
	}
	for (int i = 0; i < col->nchildren; i++)
		wacol_layout(&col->children[i], nodes, buffers);
}

static inline uint64
validity_bytes(const WaCol *col)
{
	return col->null_count == 0 ? 0 : ((uint64) col->length + 7) / 8;
}

uint64
wacol_body_bytes(const WaCol *col)
{
	uint64		n = ALIGN8(validity_bytes(col));

	switch (col->kind)
	{
		case WA_COL_FIXED:
		case WA_COL_BOOL:
		case WA_COL_VAR:
			n += ALIGN8(col->data.len);
			if (col->kind == WA_COL_VAR)
				n += ALIGN8(col->offsets.len);
			break;
		case WA_COL_LIST:
			n += ALIGN8(col->offsets.len) + wacol_body_bytes(&col->children[0]);
			break;
		case WA_COL_STRUCT:
			for (int i = 0; i < col->nchildren; i++)
				n += wacol_body_bytes(&col->children[i]);
			break;
	}
	return n;
}

typedef struct BatchLayout
{
	int64	   *nodes;			/* pairs: length, null count */
	int			nnodes;
	const char **bufs;
	int64	   *buflens;
	int			nbufs;
} BatchLayout;

static void
collect(BatchLayout *l, const WaCol *col)
{
	l->nodes[2 * l->nnodes] = col->length;
	l->nodes[2 * l->nnodes + 1] = col->null_count;
	l->nnodes++;
	l->bufs[l->nbufs] = col->validity.data;
	l->buflens[l->nbufs++] = validity_bytes(col);
	switch (col->kind)
	{
		case WA_COL_BOOL:
		case WA_COL_FIXED:
			l->bufs[l->nbufs] = col->data.data;
			l->buflens[l->nbufs++] = col->data.len;
			break;
		case WA_COL_VAR:
			l->bufs[l->nbufs] = col->offsets.data;
			l->buflens[l->nbufs++] = col->offsets.len;
			l->bufs[l->nbufs] = col->data.data;
			l->buflens[l->nbufs++] = col->data.len;
			break;
		case WA_COL_LIST:
			l->bufs[l->nbufs] = col->offsets.data;
			l->buflens[l->nbufs++] = col->offsets.len;
			collect(l, &col->children[0]);
			break;
		case WA_COL_STRUCT:
			for (int i = 0; i < col->nchildren; i++)
				collect(l, &col->children[i]);
			break;
	}
}

static int
encode_batch_metadata(FB *b, BatchLayout *l, int rows, int64 *body_length)
{
	int64		body = 0;
	int64		offset;
	int			buffers,
				nodes,
				header;

	for (int i = 0; i < l->nbufs; i++)
		body += ALIGN8(l->buflens[i]);
	fb_start_pair_vector(b, l->nbufs);
	offset = body;
	for (int i = l->nbufs - 1; i >= 0; i--)
	{
		offset -= ALIGN8(l->buflens[i]);
		fb_push_pair(b, offset, l->buflens[i]);
	}
	buffers = fb_end_vector(b);
	fb_start_pair_vector(b, l->nnodes);
	for (int i = l->nnodes - 1; i >= 0; i--)
		fb_push_pair(b, l->nodes[2 * i], l->nodes[2 * i + 1]);
	nodes = fb_end_vector(b);
	fb_start_table(b, 4);
	fb_add64(b, 0, rows);
	fb_add_offset(b, 1, nodes);
	fb_add_offset(b, 2, buffers);
	header = fb_end_table(b);
	*body_length = body;
	return encode_message(b, 3, header, body);
}

/* Framed size of the record batch metadata for a layout; independent of the values. */
int
wa_batch_metadata_size(int nnodes, int nbufs)
{
	BatchLayout l;
	FB			b;
	int64		body;
	int			len;

	l.nodes = palloc0(sizeof(int64) * 2 * Max(nnodes, 1));
	l.nnodes = nnodes;
	l.bufs = palloc0(sizeof(char *) * Max(nbufs, 1));
	l.buflens = palloc0(sizeof(int64) * Max(nbufs, 1));
	l.nbufs = nbufs;
	fb_init(&b, 256 + 32 * (nnodes + nbufs));
	fb_finish(&b, encode_batch_metadata(&b, &l, 0, &body), &len);
	pfree(b.buf);
	pfree(l.nodes);
	pfree(l.bufs);
	pfree(l.buflens);
	return 8 + ALIGN8(len);
}

void
wa_write_batch(StringInfo out, WaCol *cols, int ncols, int rows)
{
	BatchLayout l;
	FB			b;
	int			nnodes = 0,
				nbufs = 0,
				len;
	int64		body;
	uint8	   *bytes;

	for (int i = 0; i < ncols; i++)
		wacol_layout(&cols[i], &nnodes, &nbufs);
	l.nodes = palloc(sizeof(int64) * 2 * Max(nnodes, 1));
	l.bufs = palloc(sizeof(char *) * Max(nbufs, 1));
	l.buflens = palloc(sizeof(int64) * Max(nbufs, 1));
	l.nnodes = l.nbufs = 0;
	for (int i = 0; i < ncols; i++)
		collect(&l, &cols[i]);
	fb_init(&b, 256 + 32 * (nnodes + nbufs));
	bytes = fb_finish(&b, encode_batch_metadata(&b, &l, rows, &body), &len);
	write_metadata(out, bytes, len);
	enlargeStringInfo(out, (int) body);
	for (int i = 0; i < l.nbufs; i++)
	{
		if (l.buflens[i] > 0)
			appendBinaryStringInfo(out, l.bufs[i], (int) l.buflens[i]);
		append_zeros(out, (int) (ALIGN8(l.buflens[i]) - l.buflens[i]));
	}
	pfree(b.buf);
	pfree(l.nodes);
	pfree(l.bufs);
	pfree(l.buflens);
}

/* ---------------------------------------------------------------- schema fingerprint
 * The canonical text of a schema (docs/format.md, "Kafka headers"; the same as
 * WalBridge.Serialization.Payload.SchemaFingerprint.CanonicalText): it depends
 * only on the schema, not on how the schema message is encoded, so the
 * connector (which encodes with Apache.Arrow) and this plugin agree on the
 * fingerprint computed over it.
 */
static void
canon_str(StringInfo out, const char *s)
{
	int			len = strlen(s);

	appendStringInfo(out, "%d:", len);
	appendBinaryStringInfo(out, s, len);
}

static const char *
canon_unit(int unit)
{
	switch (unit)
	{
		case 0:
			return "s";
		case 1:
			return "ms";
		case 2:
			return "us";
		default:
			return "ns";
	}
}

static void
canon_meta(StringInfo out, const char **meta, int nmeta)
{
	appendStringInfo(out, " %d", nmeta);
	for (int i = 0; i < nmeta; i++)
	{
		appendStringInfoChar(out, ' ');
		canon_str(out, meta[2 * i]);
		appendStringInfoChar(out, '=');
		canon_str(out, meta[2 * i + 1]);
	}
}

static void
canon_field(StringInfo out, const WaField *f)
{
	appendStringInfoString(out, "field ");
	canon_str(out, f->name);
	appendStringInfoChar(out, ' ');
	switch (f->type_id)
	{
		case WA_T_BOOL:
			appendStringInfoString(out, "bool");
			break;
		case WA_T_INT:
			appendStringInfo(out, "%s%d", f->p2 ? "int" : "uint", f->p1);
			break;
		case WA_T_FLOAT:
			appendStringInfoString(out, f->p1 == 0 ? "float16" : f->p1 == 1 ? "float32" : "float64");
			break;
		case WA_T_UTF8:
			appendStringInfoString(out, "utf8");
			break;
		case WA_T_BINARY:
			appendStringInfoString(out, "binary");
			break;
		case WA_T_DECIMAL:
			appendStringInfo(out, "decimal%d(%d,%d)", f->p3, f->p1, f->p2);
			break;
		case WA_T_DATE:
			appendStringInfoString(out, f->p1 == 0 ? "date32" : "date64");
			break;
		case WA_T_TIME:
			appendStringInfo(out, "time%d[%s]", f->p2, canon_unit(f->p1));
			break;
		case WA_T_TIMESTAMP:
			appendStringInfo(out, "timestamp[%s", canon_unit(f->p1));
			if (f->tz != NULL)
			{
				appendStringInfoChar(out, ',');
				canon_str(out, f->tz);
			}
			appendStringInfoChar(out, ']');
			break;
		case WA_T_INTERVAL:
			appendStringInfoString(out, f->p1 == 0 ? "interval[year_month]" :
								   f->p1 == 1 ? "interval[day_time]" : "interval[month_day_nano]");
			break;
		case WA_T_FSB:
			appendStringInfo(out, "fixed_size_binary(%d)", f->p1);
			break;
		case WA_T_LIST:
			appendStringInfoString(out, "list");
			break;
		case WA_T_STRUCT:
			appendStringInfoString(out, "struct");
			break;
		case WA_T_MAP:
			appendStringInfoString(out, f->p1 ? "map(keys_sorted=true)" : "map(keys_sorted=false)");
			break;
		default:
			elog(ERROR, "wal2arrow: Arrow type %d of field \"%s\" has no canonical form", f->type_id, f->name);
	}
	appendStringInfoString(out, f->nullable ? " nullable" : " not-null");
	appendStringInfoString(out, " meta");
	canon_meta(out, f->meta, f->nmeta);
	appendStringInfo(out, " children %d\n", f->nchildren);
	for (int i = 0; i < f->nchildren; i++)
		canon_field(out, &f->children[i]);
}

void
wa_schema_canonical(StringInfo out, const WaField *fields, int nfields,
					const char **meta, int nmeta)
{
	appendStringInfoString(out, "walbridge.schema.v1\n");
	appendStringInfo(out, "fields %d\n", nfields);
	for (int i = 0; i < nfields; i++)
		canon_field(out, &fields[i]);
	appendStringInfoString(out, "schema meta");
	canon_meta(out, meta, nmeta);
	appendStringInfoChar(out, '\n');
}
