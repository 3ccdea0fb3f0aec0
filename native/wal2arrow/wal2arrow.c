/*-------------------------------------------------------------------------
 * wal2arrow.c
 *		Logical decoding output plugin: the rows of every committed
 *		transaction as Apache Arrow IPC record batches per table and Kafka
 *		partition (cut into chunks), each table's schema message in its
 *		Relation message, with the same columns, types and metadata as
 *		WalBridge's pgoutput path.  The connector concatenates a schema
 *		message, the batches of many transactions and an end-of-stream
 *		marker into one stream without re-encoding them.
 *
 * Skeleton follows PostgreSQL's test_decoding and pgoutput: binary output,
 * options validated at startup, a protocol version checked against a
 * supported range, publications selecting tables like pgoutput does.
 *
 * The framing of the messages is documented in README.md.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_publication.h"
#include "catalog/pg_publication_rel.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "nodes/pg_list.h"
#include "replication/logical.h"
#include "replication/output_plugin.h"
#include "replication/reorderbuffer.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "wal2arrow.h"

PG_MODULE_MAGIC;

extern PGDLLEXPORT void _PG_output_plugin_init(OutputPluginCallbacks *cb);

#define W2A_PROTO_MIN 2			/* one version: the error message names W2A_PROTO_MAX */
#define W2A_PROTO_MAX 2
#define W2A_FORMAT_VERSION 2
#define W2A_DEFAULT_MAX_BYTES 1000000
#define W2A_MAX_MAX_BYTES (MaxAllocSize - 1024 * 1024)
#define W2A_MAX_PARTITIONS 10000

/* chunk kinds (a truncate is a row since framing version 2) */
#define W2A_CHUNK_CHANGES 0

/* microseconds from 1970-01-01 to 2000-01-01 (PostgreSQL's epoch) */
#define W2A_UNIX_EPOCH_OFFSET_US INT64CONST(946684800000000)

typedef struct RelEntry
{
	Oid			relid;			/* hash key */
	bool		valid;
	bool		pubinsert;
	bool		pubupdate;
	bool		pubdelete;
	bool		pubtruncate;
	RelSchema  *schema;			/* NULL until needed */
	bool		sent;			/* a Relation message was sent in this session */
	uint8		sent_fp[8];		/* ... for this schema fingerprint */
} RelEntry;

/* The rows of one table for one partition in the transaction: one set of column builders. */
typedef struct PartState
{
	WaCol	   *cols;			/* NULL until the partition gets a row */
	int		   *mark;			/* room for wacol_mark of every builder */
	int			rows;
	uint32		chunk;			/* index of the next chunk */
} PartState;

typedef struct TableState
{
	Oid			relid;			/* hash key */
	RelSchema  *schema;
	PartState  *parts;			/* one per partition */
	struct TableState *next;
} TableState;

/* One row to append: a change (values deformed) or a truncate. */
typedef struct WaRow
{
	char		op;				/* c, u, d or t */
	XLogRecPtr	lsn;
	Datum	   *values;			/* the new row; for a delete the old key/row */
	bool	   *nulls;
	Datum	   *before_values;	/* the old row of an update, or NULL */
	bool	   *before_nulls;
	const char *truncate_options;	/* op t: "cascade", "restart_identity", both or "" */
} WaRow;

typedef struct TxnState
{
	MemoryContext cxt;
	ReorderBufferTXN *txn;
	HTAB	   *tables;
	TableState *first;
	TableState *last;
	TableState *recent;
	bool		begin_sent;
	bool		guc_pushed;
	int			guc_nest;
} TxnState;

typedef struct W2AData
{
	MemoryContext context;		/* per change, reset after each callback */
	MemoryContext cachectx;		/* relation cache, schemas */
	MemoryContext pubctx;		/* loaded publications */
	uint32		proto_version;
	List	   *publication_names;
	List	   *publications;
	bool		publications_valid;
	bool		messages;
	int64		max_rows;
	int64		max_bytes;
	int			partitions;
	HTAB	   *relcache;
	TxnState   *txn;
} W2AData;

/* The active decoding session, for the invalidation callbacks. */
static W2AData *w2a_active = NULL;

static void w2a_startup(LogicalDecodingContext *ctx, OutputPluginOptions *opt, bool is_init);
static void w2a_shutdown(LogicalDecodingContext *ctx);
static void w2a_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn);
static void w2a_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr commit_lsn);
static void w2a_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, Relation relation,
					   ReorderBufferChange *change);
static void w2a_truncate(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, int nrelations,
						 Relation relations[], ReorderBufferChange *change);
static void w2a_message(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr message_lsn,
						bool transactional, const char *prefix, Size sz, const char *message);

PG_FUNCTION_INFO_V1(wal2arrow_murmur2);

void
_PG_output_plugin_init(OutputPluginCallbacks *cb)
{
	cb->startup_cb = w2a_startup;
	cb->begin_cb = w2a_begin;
	cb->change_cb = w2a_change;
	cb->truncate_cb = w2a_truncate;
	cb->message_cb = w2a_message;
	cb->commit_cb = w2a_commit;
	cb->shutdown_cb = w2a_shutdown;
}

/* ---------------------------------------------------------------- invalidation */

static void
invalidate_all(void)
{
	HASH_SEQ_STATUS status;
	RelEntry   *entry;

	if (w2a_active == NULL || w2a_active->relcache == NULL)
		return;
	hash_seq_init(&status, w2a_active->relcache);
	while ((entry = hash_seq_search(&status)) != NULL)
		entry->valid = false;
}

static void
relcache_cb(Datum arg, Oid relid)
{
	RelEntry   *entry;

	if (w2a_active == NULL || w2a_active->relcache == NULL)
		return;
	if (!OidIsValid(relid))
	{
		invalidate_all();
		return;
	}
	entry = hash_search(w2a_active->relcache, &relid, HASH_FIND, NULL);
	if (entry != NULL)
		entry->valid = false;
}

static void
publication_cb(Datum arg, int cacheid, uint32 hashvalue)
{
	if (w2a_active == NULL)
		return;
	if (cacheid == PUBLICATIONOID)
		w2a_active->publications_valid = false;
	invalidate_all();
}

static void
session_end_cb(void *arg)
{
	if (w2a_active == (W2AData *) arg)
		w2a_active = NULL;
}

/* ---------------------------------------------------------------- options */

static int64
parse_int64_option(DefElem *defel, int64 min, int64 max)
{
	char	   *s = strVal(defel->arg);
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for wal2arrow option \"%s\": \"%s\"", defel->defname, s),
				 errdetail("Expected an integer between " INT64_FORMAT " and " INT64_FORMAT ".", min, max)));
	return (int64) v;
}

static void
parse_options(List *options, W2AData *data)
{
	ListCell   *lc;
	bool		proto_given = false,
				pubs_given = false,
				messages_given = false,
				rows_given = false,
				bytes_given = false,
				partitions_given = false;

	data->max_rows = 0;
	data->max_bytes = W2A_DEFAULT_MAX_BYTES;
	data->messages = false;
	data->partitions = 1;

	foreach(lc, options)
	{
		DefElem    *defel = (DefElem *) lfirst(lc);
		bool	   *given;

		if (strcmp(defel->defname, "proto_version") == 0)
			given = &proto_given;
		else if (strcmp(defel->defname, "publication_names") == 0)
			given = &pubs_given;
		else if (strcmp(defel->defname, "messages") == 0)
			given = &messages_given;
		else if (strcmp(defel->defname, "max_rows") == 0)
			given = &rows_given;
		else if (strcmp(defel->defname, "max_bytes") == 0)
			given = &bytes_given;
		else if (strcmp(defel->defname, "partitions") == 0)
			given = &partitions_given;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized wal2arrow option \"%s\"", defel->defname),
					 errhint("Valid options are proto_version, publication_names, max_rows, max_bytes, partitions and messages.")));
		if (*given)
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("conflicting or redundant wal2arrow option \"%s\"", defel->defname)));
		*given = true;
		if (defel->arg == NULL || !IsA(defel->arg, String))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("wal2arrow option \"%s\" requires a value", defel->defname)));

		if (given == &proto_given)
			data->proto_version = (uint32) parse_int64_option(defel, 0, PG_UINT32_MAX);
		else if (given == &pubs_given)
		{
			if (!SplitIdentifierString(pstrdup(strVal(defel->arg)), ',', &data->publication_names))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_NAME),
						 errmsg("invalid publication_names syntax")));
		}
		else if (given == &messages_given)
		{
			if (!parse_bool(strVal(defel->arg), &data->messages))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for wal2arrow option \"messages\": \"%s\"", strVal(defel->arg))));
		}
		else if (given == &rows_given)
			data->max_rows = parse_int64_option(defel, 0, PG_INT32_MAX);
		else if (given == &partitions_given)
			data->partitions = (int) parse_int64_option(defel, 1, W2A_MAX_PARTITIONS);
		else
			data->max_bytes = parse_int64_option(defel, 0, W2A_MAX_MAX_BYTES);
	}

	if (!proto_given)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("wal2arrow option \"proto_version\" is missing"),
				 errhint("Pass proto_version '%d'.", W2A_PROTO_MAX)));
	if (data->proto_version < W2A_PROTO_MIN || data->proto_version > W2A_PROTO_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("client sent proto_version=%u but wal2arrow only supports protocol %d",
						data->proto_version, W2A_PROTO_MAX),
				 errdetail("This wal2arrow writes framing version %d (Arrow record batches per table and partition, schema messages in Relation messages); framing version 1 is no longer produced.",
						   W2A_FORMAT_VERSION)));
	if (!pubs_given || data->publication_names == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("publication_names parameter missing")));
}

static void
load_publications(W2AData *data)
{
	MemoryContext old;
	ListCell   *lc;

	MemoryContextReset(data->pubctx);
	data->publications = NIL;
	old = MemoryContextSwitchTo(data->pubctx);
	foreach(lc, data->publication_names)
	{
		/* errors out when the publication does not exist, like pgoutput in PostgreSQL 15 */
		data->publications = lappend(data->publications,
									 GetPublicationByName((char *) lfirst(lc), false));
	}
	MemoryContextSwitchTo(old);
	data->publications_valid = true;
}

static void
w2a_startup(LogicalDecodingContext *ctx, OutputPluginOptions *opt, bool is_init)
{
	static bool callbacks_registered = false;
	W2AData    *data = MemoryContextAllocZero(ctx->context, sizeof(W2AData));
	MemoryContextCallback *mcb;
	HASHCTL		hctl;

	data->context = AllocSetContextCreate(ctx->context, "wal2arrow change context",
										  ALLOCSET_DEFAULT_SIZES);
	data->cachectx = AllocSetContextCreate(ctx->context, "wal2arrow cache context",
										   ALLOCSET_DEFAULT_SIZES);
	data->pubctx = AllocSetContextCreate(data->cachectx, "wal2arrow publications",
										 ALLOCSET_SMALL_SIZES);
	ctx->output_plugin_private = data;
	opt->output_type = OUTPUT_PLUGIN_BINARY_OUTPUT;
	opt->receive_rewrites = false;

	if (is_init)
		return;					/* slot creation: no options */

	parse_options(ctx->output_plugin_options, data);

	hctl.keysize = sizeof(Oid);
	hctl.entrysize = sizeof(RelEntry);
	hctl.hcxt = data->cachectx;
	data->relcache = hash_create("wal2arrow relation cache", 128, &hctl,
								 HASH_ELEM | HASH_CONTEXT | HASH_BLOBS);

	w2a_active = data;
	mcb = MemoryContextAlloc(data->cachectx, sizeof(MemoryContextCallback));
	mcb->func = session_end_cb;
	mcb->arg = data;
	MemoryContextRegisterResetCallback(data->cachectx, mcb);

	if (!callbacks_registered)
	{
		CacheRegisterRelcacheCallback(relcache_cb, (Datum) 0);
		CacheRegisterSyscacheCallback(PUBLICATIONOID, publication_cb, (Datum) 0);
		CacheRegisterSyscacheCallback(PUBLICATIONRELMAP, publication_cb, (Datum) 0);
		CacheRegisterSyscacheCallback(PUBLICATIONNAMESPACEMAP, publication_cb, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID, publication_cb, (Datum) 0);
		callbacks_registered = true;
	}

	/* Through the SQL interface we are in a transaction: report a missing publication now. */
	if (IsTransactionState())
		load_publications(data);
}

static void
w2a_shutdown(LogicalDecodingContext *ctx)
{
	W2AData    *data = (W2AData *) ctx->output_plugin_private;

	if (data != NULL && w2a_active == data)
		w2a_active = NULL;
}

/* ---------------------------------------------------------------- publications */

static void
release_schema(RelSchema *s)
{
	if (s != NULL && --s->refcount == 0)
		MemoryContextDelete(s->cxt);
}

static void
check_unsupported_filters(Oid relid, Publication *pub)
{
	HeapTuple	tup = SearchSysCache2(PUBLICATIONRELMAP, ObjectIdGetDatum(relid),
									  ObjectIdGetDatum(pub->oid));
	bool		qualnull,
				attrsnull;

	if (!HeapTupleIsValid(tup))
		return;
	(void) SysCacheGetAttr(PUBLICATIONRELMAP, tup, Anum_pg_publication_rel_prqual, &qualnull);
	(void) SysCacheGetAttr(PUBLICATIONRELMAP, tup, Anum_pg_publication_rel_prattrs, &attrsnull);
	ReleaseSysCache(tup);
	if (!qualnull || !attrsnull)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("wal2arrow does not support publication row filters or column lists"),
				 errdetail("Publication \"%s\" has a %s for table \"%s\".", pub->name,
						   !qualnull ? "row filter" : "column list", get_rel_name(relid))));
}

/* pgoutput's get_rel_sync_entry, without publish_via_partition_root, row filters and column lists. */
static RelEntry *
get_rel_entry(W2AData *data, Relation relation)
{
	Oid			relid = RelationGetRelid(relation);
	RelEntry   *entry;
	bool		found;

	entry = hash_search(data->relcache, &relid, HASH_ENTER, &found);
	if (!found)
	{
		entry->valid = false;
		entry->schema = NULL;
		entry->sent = false;
	}
	if (!entry->valid)
	{
		Oid			schemaId = get_rel_namespace(relid);
		List	   *pubids = GetRelationPublications(relid);
		List	   *schemaPubids = GetSchemaPublications(schemaId);
		bool		am_partition = get_rel_relispartition(relid);
		char		relkind = get_rel_relkind(relid);
		ListCell   *lc;

		if (!data->publications_valid)
			load_publications(data);

		entry->pubinsert = entry->pubupdate = entry->pubdelete = entry->pubtruncate = false;
		release_schema(entry->schema);
		entry->schema = NULL;

		foreach(lc, data->publications)
		{
			Publication *pub = lfirst(lc);
			bool		publish = false;
			bool		via_ancestor = false;

			if (pub->alltables)
			{
				publish = true;
				if (pub->pubviaroot && am_partition)
					via_ancestor = true;
			}
			else
			{
				bool		ancestor_published = false;

				if (am_partition)
				{
					int			level;
					List	   *ancestors = get_partition_ancestors(relid);

					if (OidIsValid(GetTopMostAncestorInPublication(pub->oid, ancestors, &level)))
					{
						ancestor_published = true;
						if (pub->pubviaroot)
							via_ancestor = true;
					}
				}
				if (list_member_oid(pubids, pub->oid) || list_member_oid(schemaPubids, pub->oid) ||
					ancestor_published)
					publish = true;
			}

			if (publish && (relkind != RELKIND_PARTITIONED_TABLE || pub->pubviaroot))
			{
				if (via_ancestor)
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("wal2arrow does not support publish_via_partition_root"),
							 errdetail("Publication \"%s\" publishes partition \"%s\" through its root.",
									   pub->name, get_rel_name(relid))));
				if (relkind == RELKIND_PARTITIONED_TABLE)
					continue;	/* its partitions' changes arrive as their own */
				if (!pub->alltables && !list_member_oid(schemaPubids, pub->oid))
					check_unsupported_filters(relid, pub);
				entry->pubinsert |= pub->pubactions.pubinsert;
				entry->pubupdate |= pub->pubactions.pubupdate;
				entry->pubdelete |= pub->pubactions.pubdelete;
				entry->pubtruncate |= pub->pubactions.pubtruncate;
			}
		}
		list_free(pubids);
		list_free(schemaPubids);
		entry->valid = true;
	}
	return entry;
}

static RelSchema *
entry_schema(W2AData *data, RelEntry *entry, Relation relation)
{
	if (entry->schema == NULL)
	{
		entry->schema = wa_build_rel_schema(relation, data->cachectx);
		entry->schema->refcount = 1;
	}
	return entry->schema;
}

/* ---------------------------------------------------------------- framing */

static void
send_begin(LogicalDecodingContext *ctx, W2AData *data)
{
	TxnState   *ts = data->txn;

	if (ts == NULL || ts->begin_sent)
		return;
	OutputPluginPrepareWrite(ctx, false);
	pq_sendbyte(ctx->out, 'B');
	pq_sendbyte(ctx->out, W2A_FORMAT_VERSION);
	pq_sendint32(ctx->out, ts->txn->xid);
	pq_sendint64(ctx->out, ts->txn->final_lsn);
	pq_sendint64(ctx->out, ts->txn->xact_time.commit_time);
	OutputPluginWrite(ctx, false);
	ts->begin_sent = true;
}

static void
send_string16(StringInfo out, const char *s)
{
	int			len = strlen(s);

	pq_sendint16(out, (uint16) len);
	pq_sendbytes(out, s, len);
}

static void
send_relation_if_needed(LogicalDecodingContext *ctx, W2AData *data, RelSchema *s)
{
	RelEntry   *entry = hash_search(data->relcache, &s->relid, HASH_FIND, NULL);

	if (entry != NULL && entry->sent && memcmp(entry->sent_fp, s->fp, 8) == 0)
		return;
	OutputPluginPrepareWrite(ctx, false);
	pq_sendbyte(ctx->out, 'R');
	pq_sendint32(ctx->out, s->relid);
	pq_sendbytes(ctx->out, (char *) s->fp, 8);
	pq_sendbyte(ctx->out, s->replident);
	send_string16(ctx->out, s->nspname);
	send_string16(ctx->out, s->relname);
	pq_sendint16(ctx->out, (uint16) s->ncols);
	/* the encoded schema message that starts every stream of the relation's batches */
	pq_sendint32(ctx->out, (uint32) s->schema_len);
	pq_sendbytes(ctx->out, s->schema_msg, s->schema_len);
	OutputPluginWrite(ctx, false);
	if (entry != NULL)
	{
		entry->sent = true;
		memcpy(entry->sent_fp, s->fp, 8);
	}
}


/* ---------------------------------------------------------------- partitions */

/*
 * Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2, the hash of its
 * default partitioner): seed 0x9747b28c, 4-byte little-endian words, the tail
 * bytes, then the final mix. The same as the connector's PartitionKey.Murmur2.
 */
static int32
murmur2(const uint8 *data, int len)
{
	const uint32 m = 0x5bd1e995;
	const int	r = 24;
	uint32		h = 0x9747b28c ^ (uint32) len;
	int			words = len / 4;

	for (int i = 0; i < words; i++)
	{
		const uint8 *p = data + 4 * i;
		uint32		k = p[0] | (p[1] << 8) | (p[2] << 16) | ((uint32) p[3] << 24);

		k *= m;
		k ^= k >> r;
		k *= m;
		h *= m;
		h ^= k;
	}
	switch (len % 4)
	{
		case 3:
			h ^= (uint32) data[4 * words + 2] << 16;
			/* FALLTHROUGH */
		case 2:
			h ^= (uint32) data[4 * words + 1] << 8;
			/* FALLTHROUGH */
		case 1:
			h ^= data[4 * words];
			h *= m;
	}
	h ^= h >> 13;
	h *= m;
	h ^= h >> 15;
	return (int32) h;
}

/* SQL-callable murmur2, for the tests: wal2arrow_murmur2(bytea) RETURNS int4 */
Datum
wal2arrow_murmur2(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);

	PG_RETURN_INT32(murmur2((const uint8 *) VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b)));
}

/* A JSON string of PostgreSQL's text: '"' and '\' escaped, bytes below 0x20 as \u00xx (PartitionKey.AddText). */
static void
append_json_text(StringInfo key, const char *text, int len)
{
	static const char hex[] = "0123456789abcdef";
	int			start = 0;

	appendStringInfoChar(key, '"');
	for (int i = 0; i < len; i++)
	{
		uint8		c = (uint8) text[i];

		if (c != '"' && c != '\\' && c >= 0x20)
			continue;
		appendBinaryStringInfo(key, text + start, i - start);
		if (c == '"' || c == '\\')
		{
			appendStringInfoChar(key, '\\');
			appendStringInfoChar(key, (char) c);
		}
		else
		{
			appendStringInfoString(key, "\\u00");
			appendStringInfoChar(key, hex[c >> 4]);
			appendStringInfoChar(key, hex[c & 0xf]);
		}
		start = i + 1;
	}
	appendBinaryStringInfo(key, text + start, len - start);
	appendStringInfoChar(key, '"');
}

/*
 * The partition of a row among data->partitions (more than one): the JSON array
 * of the text of its key columns (pg.primary_key, in that order; SQL NULL and
 * an unchanged TOAST value PostgreSQL did not log as null), hashed with
 * murmur2, made positive, modulo the partition count. A table without a key
 * sends every row to partition 0.
 */
static int
row_partition(W2AData *data, RelSchema *s, TupleDesc desc, Datum *values, bool *nulls)
{
	StringInfoData key;
	int			enc = GetDatabaseEncoding();

	if (s->nkeys == 0)
		return 0;
	initStringInfo(&key);
	appendStringInfoChar(&key, '[');
	for (int k = 0; k < s->nkeys; k++)
	{
		int			a = s->attidx[s->keycols[k]];
		Form_pg_attribute att = TupleDescAttr(desc, a);

		if (k > 0)
			appendStringInfoChar(&key, ',');
		if (nulls[a] || (att->attlen == -1 && VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(values[a]))))
			appendStringInfoString(&key, "null");
		else
		{
			char	   *text = OutputFunctionCall(&s->keyout[k], values[a]);

			/* the text pgoutput sends to a UTF-8 client */
			if (enc != PG_UTF8 && enc != PG_SQL_ASCII)
				text = pg_server_to_any(text, strlen(text), PG_UTF8);
			append_json_text(&key, text, strlen(text));
		}
	}
	appendStringInfoChar(&key, ']');
	return (murmur2((const uint8 *) key.data, key.len) & 0x7fffffff) % data->partitions;
}

/* ---------------------------------------------------------------- chunks */

static PartState *
get_part(TxnState *txs, TableState *ts, int p)
{
	PartState  *ps = &ts->parts[p];

	if (ps->cols == NULL)
	{
		RelSchema  *s = ts->schema;
		MemoryContext old = MemoryContextSwitchTo(txs->cxt);
		int			marks = 0;

		ps->cols = palloc(sizeof(WaCol) * s->nfields);
		for (int i = 0; i < s->nfields; i++)
		{
			wacol_init(&ps->cols[i], &s->fields[i]);
			marks += wacol_mark_size(&ps->cols[i]);
		}
		ps->mark = palloc(sizeof(int) * marks);
		ps->rows = 0;
		MemoryContextSwitchTo(old);
	}
	return ps;
}

/* Writes the rows collected for a table and partition as one chunk message (one record batch). */
static void
emit_chunk(LogicalDecodingContext *ctx, W2AData *data, TableState *ts, int p, bool last)
{
	RelSchema  *s = ts->schema;
	PartState  *ps = &ts->parts[p];
	StringInfo	out;
	int			len_pos;
	int			start;

	send_begin(ctx, data);
	send_relation_if_needed(ctx, data, s);

	OutputPluginPrepareWrite(ctx, true);
	out = ctx->out;
	pq_sendbyte(out, 'A');
	pq_sendbyte(out, W2A_CHUNK_CHANGES);
	pq_sendint32(out, s->relid);
	pq_sendint32(out, (uint32) p);
	pq_sendint32(out, ps->chunk);
	pq_sendbyte(out, last ? 1 : 0);
	pq_sendint32(out, (uint32) ps->rows);
	pq_sendbytes(out, (char *) s->fp, 8);
	len_pos = out->len;
	pq_sendint32(out, 0);		/* record batch length, patched below */
	start = out->len;
	wa_write_batch(out, ps->cols, s->nfields, ps->rows);
	{
		uint32		n = pg_hton32((uint32) (out->len - start));

		memcpy(out->data + len_pos, &n, 4);
	}
	OutputPluginWrite(ctx, true);

	ps->chunk++;
	for (int i = 0; i < s->nfields; i++)
		wacol_reset(&ps->cols[i]);
	ps->rows = 0;
}

static TableState *
get_table_state(LogicalDecodingContext *ctx, W2AData *data, RelSchema *s)
{
	TxnState   *txs = data->txn;
	TableState *ts = txs->recent;
	bool		found;

	if (ts == NULL || ts->relid != s->relid)
	{
		ts = hash_search(txs->tables, &s->relid, HASH_ENTER, &found);
		if (!found)
		{
			ts->schema = s;
			s->refcount++;
			ts->parts = MemoryContextAllocZero(txs->cxt, sizeof(PartState) * data->partitions);
			ts->next = NULL;
			if (txs->last)
				txs->last->next = ts;
			else
				txs->first = ts;
			txs->last = ts;
		}
		txs->recent = ts;
	}
	if (ts->schema != s &&
		(ts->schema->schema_len != s->schema_len ||
		 memcmp(ts->schema->schema_msg, s->schema_msg, s->schema_len) != 0))
	{
		/*
		 * The table's Arrow schema changed inside the transaction: the rows
		 * collected with the old one go out first, each partition's as the last
		 * chunk of its segment (the next chunks follow a new Relation message).
		 */
		for (int p = 0; p < data->partitions; p++)
		{
			if (ts->parts[p].rows > 0)
				emit_chunk(ctx, data, ts, p, true);
			ts->parts[p].cols = NULL;	/* builders of the new schema when needed */
		}
		release_schema(ts->schema);
		ts->schema = s;
		s->refcount++;
	}
	return ts;
}

static uint64
stream_size(RelSchema *s, PartState *ps)
{
	uint64		body = 0;

	for (int i = 0; i < s->nfields; i++)
		body += wacol_body_bytes(&ps->cols[i]);
	return s->schema_len + s->batch_meta_len + body + 8;
}

static void
push_text_settings(TxnState *txs)
{
	if (txs->guc_pushed)
		return;
	txs->guc_nest = NewGUCNestLevel();
	txs->guc_pushed = true;
	/* the settings of WalBridge's replication session, so text output matches pgoutput's */
	(void) set_config_option("datestyle", "ISO", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("timezone", "UTC", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("intervalstyle", "postgres", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("extra_float_digits", "3", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("bytea_output", "hex", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
}

/* Per-row bookkeeping of _unchanged and _special entries: column indexes (>= ncols: _before member). */
typedef struct RowExtras
{
	int		   *unchanged;
	int			nunchanged;
	int		   *special;
	int		   *special_end;	/* end offset of each entry's text in special_text */
	int			nspecial;
	StringInfoData special_text;
} RowExtras;

/*
 * Deforms a tuple. fill: the old row under REPLICA IDENTITY FULL (NULL
 * otherwise), which supplies the values of unchanged TOAST columns of the new
 * row, as the connector's TransactionAssembler.AppendTuple does with
 * pgoutput's 'O' tuple: a new-row value PostgreSQL did not log
 * (VARATT_IS_EXTERNAL_ONDISK, pgoutput's 'u') is taken from the old row when
 * the old row's value is sent as a value, i.e. is neither null nor itself
 * external on disk (pgoutput's logicalrep_write_tuple writes 'u' for such an
 * old datum too, so the connector has nothing to fill with and the column
 * stays null + _unchanged). Under FULL the old tuple is logged flattened
 * (heapam's ExtractReplicaIdentity: toast_flatten_tuple), so its values are
 * inline (possibly compressed) and never need a TOAST fetch.
 */
static void
deform_row(RelSchema *s, TupleDesc desc, HeapTuple tuple, HeapTuple fill, Datum **values, bool **nulls)
{
	*values = palloc(sizeof(Datum) * Max(desc->natts, 1));
	*nulls = palloc(sizeof(bool) * Max(desc->natts, 1));
	heap_deform_tuple(tuple, desc, *values, *nulls);
	if (fill != NULL)
	{
		Datum	   *fillvalues = palloc(sizeof(Datum) * Max(desc->natts, 1));
		bool	   *fillnulls = palloc(sizeof(bool) * Max(desc->natts, 1));

		heap_deform_tuple(fill, desc, fillvalues, fillnulls);
		for (int i = 0; i < s->ncols; i++)
		{
			int			a = s->attidx[i];

			if (!(*nulls)[a] && TupleDescAttr(desc, a)->attlen == -1
				&& VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer((*values)[a]))
				&& !fillnulls[a] && !VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(fillvalues[a])))
			{
				/* unchanged TOAST value known from the full old row */
				(*values)[a] = fillvalues[a];
			}
		}
	}
}

/* Appends a deformed tuple's values to the column builders of the table's columns. */
static void
append_tuple_values(WaCol *cols, RelSchema *s, TupleDesc desc, Datum *values, bool *nulls,
					const char *qualname, RowExtras *x, int base)
{
	for (int i = 0; i < s->ncols; i++)
	{
		int			a = s->attidx[i];
		Form_pg_attribute att = TupleDescAttr(desc, a);

		if (nulls[a])
			wacol_null(&cols[i]);
		else if (att->attlen == -1 && VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(values[a])))
		{
			/* unchanged TOAST value PostgreSQL did not log: null, listed in _unchanged */
			wacol_null(&cols[i]);
			x->unchanged[x->nunchanged++] = base + i;
		}
		else if (!wa_append_value(&cols[i], s->types[i], values[a], qualname, s->names[i], &x->special_text))
		{
			/* a value Arrow cannot hold: null, PostgreSQL's text in _special */
			x->special[x->nspecial] = base + i;
			x->special_end[x->nspecial++] = x->special_text.len;
		}
	}
}

static void
append_column_name(WaCol *col, RelSchema *s, int c)
{
	if (c < s->ncols)
		wacol_var(col, s->names[c], strlen(s->names[c]));
	else
	{
		char	   *name = psprintf("_before.%s", s->names[c - s->ncols]);

		wacol_var(col, name, strlen(name));
	}
}

static void
append_le(WaCol *col, uint64 v, int bytes)
{
	char	   *p = wacol_fixed(col);

	for (int i = 0; i < bytes; i++)
		p[i] = (v >> (8 * i)) & 0xff;
}

/* Appends one row: _op, _lsn, the transaction's _xid, _commit_lsn, _commit_ts, the values, _before, _unchanged, _special. */
static void
append_row(RelSchema *s, WaCol *cols, TupleDesc desc, ReorderBufferTXN *txn, const WaRow *row)
{
	int			n = s->ncols;
	WaCol	   *before = &cols[n + WA_LEADING_FIELDS];
	WaCol	   *unchanged = before + 1;
	WaCol	   *special = before + 2;
	RowExtras	x;
	char	   *qualname;

	wacol_var(&cols[0], &row->op, 1);
	append_le(&cols[1], row->lsn, 8);
	append_le(&cols[2], txn->xid, 4);
	append_le(&cols[3], txn->final_lsn, 8);
	append_le(&cols[4], (uint64) (txn->xact_time.commit_time + W2A_UNIX_EPOCH_OFFSET_US), 8);

	if (row->op == 't')
	{
		/* a truncate: every table column, _before and _unchanged null; _special holds the options */
		WaCol	   *entries = &special->children[0];

		for (int i = 0; i < n; i++)
			wacol_null(&cols[WA_LEADING_FIELDS + i]);
		wacol_null(before);
		wacol_null(unchanged);
		wacol_var(&entries->children[0], "_truncate", strlen("_truncate"));
		wacol_var(&entries->children[1], row->truncate_options, strlen(row->truncate_options));
		wacol_struct_valid(entries);
		wacol_list_end(special);
		return;
	}

	qualname = psprintf("%s.%s", s->nspname, s->relname);
	x.unchanged = palloc(sizeof(int) * 2 * Max(n, 1));
	x.special = palloc(sizeof(int) * 2 * Max(n, 1));
	x.special_end = palloc(sizeof(int) * 2 * Max(n, 1));
	x.nunchanged = x.nspecial = 0;
	initStringInfo(&x.special_text);

	append_tuple_values(&cols[WA_LEADING_FIELDS], s, desc, row->values, row->nulls, qualname, &x, 0);
	if (row->before_values != NULL)
	{
		append_tuple_values(before->children, s, desc, row->before_values, row->before_nulls, qualname, &x, n);
		wacol_struct_valid(before);
	}
	else
		wacol_null(before);

	/* _unchanged */
	if (x.nunchanged == 0)
		wacol_null(unchanged);
	else
	{
		for (int i = 0; i < x.nunchanged; i++)
			append_column_name(&unchanged->children[0], s, x.unchanged[i]);
		wacol_list_end(unchanged);
	}

	/* _special: map entries (key, value) in column order, new row first */
	if (x.nspecial == 0)
		wacol_null(special);
	else
	{
		WaCol	   *entries = &special->children[0];
		int			start = 0;

		for (int i = 0; i < x.nspecial; i++)
		{
			append_column_name(&entries->children[0], s, x.special[i]);
			wacol_var(&entries->children[1], x.special_text.data + start, x.special_end[i] - start);
			wacol_struct_valid(entries);
			start = x.special_end[i];
		}
		wacol_list_end(special);
	}
}

/*
 * Adds a row to a table's partition: first writes the rows collected there as
 * a chunk (last = 0) when the chunk has max_rows rows or the row would make
 * schema message + batch + end-of-stream marker exceed max_bytes (exact: the
 * row is appended, measured and rolled back if needed).
 */
static void
add_row(LogicalDecodingContext *ctx, W2AData *data, TableState *ts, int p, TupleDesc desc, const WaRow *row)
{
	RelSchema  *s = ts->schema;
	PartState  *ps = get_part(data->txn, ts, p);
	ReorderBufferTXN *txn = data->txn->txn;

	if (data->max_rows > 0 && ps->rows >= data->max_rows)
		emit_chunk(ctx, data, ts, p, false);

	if (ps->rows > 0 && data->max_bytes > 0)
	{
		int		   *m = ps->mark;

		for (int i = 0; i < s->nfields; i++)
			m = wacol_mark(&ps->cols[i], m);
		append_row(s, ps->cols, desc, txn, row);
		if (stream_size(s, ps) > (uint64) data->max_bytes)
		{
			const int  *r = ps->mark;

			for (int i = 0; i < s->nfields; i++)
				r = wacol_rollback(&ps->cols[i], r);
			emit_chunk(ctx, data, ts, p, false);
			append_row(s, ps->cols, desc, txn, row);
		}
	}
	else
		append_row(s, ps->cols, desc, txn, row);
	ps->rows++;
}

/* ---------------------------------------------------------------- callbacks */

static void
w2a_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	W2AData    *data = (W2AData *) ctx->output_plugin_private;
	MemoryContext cxt = AllocSetContextCreate(ctx->context, "wal2arrow transaction",
											  ALLOCSET_DEFAULT_SIZES);
	TxnState   *txs = MemoryContextAllocZero(cxt, sizeof(TxnState));
	HASHCTL		hctl;

	txs->cxt = cxt;
	txs->txn = txn;
	hctl.keysize = sizeof(Oid);
	hctl.entrysize = sizeof(TableState);
	hctl.hcxt = cxt;
	txs->tables = hash_create("wal2arrow transaction tables", 16, &hctl,
							  HASH_ELEM | HASH_CONTEXT | HASH_BLOBS);
	data->txn = txs;
}

static void
w2a_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, Relation relation,
		   ReorderBufferChange *change)
{
	W2AData    *data = (W2AData *) ctx->output_plugin_private;
	TupleDesc	desc = RelationGetDescr(relation);
	RelEntry   *entry;
	RelSchema  *s;
	TableState *ts;
	MemoryContext old;
	HeapTuple	newtup,
				oldtup,
				main,
				before = NULL,
				fill = NULL;
	WaRow		row;
	int			p = 0;

	if (!is_publishable_relation(relation))
		return;
	entry = get_rel_entry(data, relation);
	newtup = change->data.tp.newtuple ? &change->data.tp.newtuple->tuple : NULL;
	oldtup = change->data.tp.oldtuple ? &change->data.tp.oldtuple->tuple : NULL;
	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			if (!entry->pubinsert || newtup == NULL)
				return;
			row.op = 'c';
			main = newtup;
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
			if (!entry->pubupdate || newtup == NULL)
				return;
			row.op = 'u';
			main = newtup;
			before = oldtup;
			/* pgoutput sends the old tuple as 'O' (the whole row) exactly then */
			if (relation->rd_rel->relreplident == REPLICA_IDENTITY_FULL)
				fill = oldtup;
			break;
		case REORDER_BUFFER_CHANGE_DELETE:
			if (!entry->pubdelete || oldtup == NULL)
				return;			/* pgoutput does not send a delete without the old key */
			row.op = 'd';
			main = oldtup;
			break;
		default:
			return;
	}

	old = MemoryContextSwitchTo(data->context);
	s = entry_schema(data, entry, relation);
	ts = get_table_state(ctx, data, s);
	if (s->needs_settings || (data->partitions > 1 && s->nkeys > 0))
		push_text_settings(data->txn);

	row.lsn = change->lsn;
	row.truncate_options = NULL;
	deform_row(s, desc, main, fill, &row.values, &row.nulls);
	row.before_values = NULL;
	row.before_nulls = NULL;
	if (before != NULL)
		deform_row(s, desc, before, NULL, &row.before_values, &row.before_nulls);
	/* an update goes to the partition of its new key, a delete to the one of its old key */
	if (data->partitions > 1)
		p = row_partition(data, s, desc, row.values, row.nulls);

	/*
	 * An update whose key moved to another partition: that partition's stream
	 * loses the old key, so it gets a delete of the old key (or row, under
	 * FULL) at the same LSN, as the connector's pgoutput path writes it
	 * (README.md, partitions). The old tuple is sent only when the key
	 * changed (or always, under FULL).
	 */
	if (row.op == 'u' && before != NULL && data->partitions > 1 && s->nkeys > 0)
	{
		int			from = row_partition(data, s, desc, row.before_values, row.before_nulls);

		if (from != p)
		{
			WaRow		gone;

			gone.op = 'd';
			gone.lsn = row.lsn;
			gone.values = row.before_values;
			gone.nulls = row.before_nulls;
			gone.before_values = NULL;
			gone.before_nulls = NULL;
			gone.truncate_options = NULL;
			add_row(ctx, data, ts, from, desc, &gone);
		}
	}
	add_row(ctx, data, ts, p, desc, &row);

	MemoryContextSwitchTo(old);
	MemoryContextReset(data->context);
}

static void
w2a_truncate(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, int nrelations,
			 Relation relations[], ReorderBufferChange *change)
{
	W2AData    *data = (W2AData *) ctx->output_plugin_private;
	MemoryContext old = MemoryContextSwitchTo(data->context);
	WaRow		row;

	memset(&row, 0, sizeof(row));
	row.op = 't';
	row.lsn = change->lsn;
	if (change->data.truncate.cascade && change->data.truncate.restart_seqs)
		row.truncate_options = "cascade,restart_identity";
	else if (change->data.truncate.cascade)
		row.truncate_options = "cascade";
	else if (change->data.truncate.restart_seqs)
		row.truncate_options = "restart_identity";
	else
		row.truncate_options = "";

	for (int i = 0; i < nrelations; i++)
	{
		RelEntry   *entry;
		TableState *ts;

		if (!is_publishable_relation(relations[i]))
			continue;
		entry = get_rel_entry(data, relations[i]);
		if (!entry->pubtruncate)
			continue;
		ts = get_table_state(ctx, data, entry_schema(data, entry, relations[i]));
		/* a truncate row in every partition, in WAL order with the table's other rows */
		for (int p = 0; p < data->partitions; p++)
			add_row(ctx, data, ts, p, RelationGetDescr(relations[i]), &row);
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(data->context);
}

static void
w2a_message(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr message_lsn,
			bool transactional, const char *prefix, Size sz, const char *message)
{
	W2AData    *data = (W2AData *) ctx->output_plugin_private;

	if (!data->messages)
		return;
	if (transactional)
		send_begin(ctx, data);
	OutputPluginPrepareWrite(ctx, true);
	pq_sendbyte(ctx->out, 'M');
	pq_sendbyte(ctx->out, transactional ? 1 : 0);
	pq_sendint64(ctx->out, message_lsn);
	send_string16(ctx->out, prefix);
	pq_sendint32(ctx->out, (uint32) sz);
	pq_sendbytes(ctx->out, message, sz);
	OutputPluginWrite(ctx, true);
}

static void
w2a_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr commit_lsn)
{
	W2AData    *data = (W2AData *) ctx->output_plugin_private;
	TxnState   *txs = data->txn;
	MemoryContext old = MemoryContextSwitchTo(data->context);

	if (txs == NULL)
		elog(ERROR, "wal2arrow: commit without begin");
	/* per table (first change first), per partition (ascending): the last chunk */
	for (TableState *ts = txs->first; ts != NULL; ts = ts->next)
	{
		for (int p = 0; p < data->partitions; p++)
		{
			if (ts->parts[p].rows > 0)
				emit_chunk(ctx, data, ts, p, true);
		}
	}

	OutputPluginUpdateProgress(ctx, !txs->begin_sent);
	if (txs->begin_sent)
	{
		OutputPluginPrepareWrite(ctx, true);
		pq_sendbyte(ctx->out, 'C');
		pq_sendbyte(ctx->out, 0);	/* flags */
		pq_sendint64(ctx->out, commit_lsn);
		pq_sendint64(ctx->out, txn->end_lsn);
		pq_sendint64(ctx->out, txn->xact_time.commit_time);
		OutputPluginWrite(ctx, true);
	}

	if (txs->guc_pushed)
		AtEOXact_GUC(true, txs->guc_nest);
	for (TableState *ts = txs->first; ts != NULL; ts = ts->next)
		release_schema(ts->schema);
	data->txn = NULL;
	MemoryContextSwitchTo(old);
	MemoryContextReset(data->context);
	MemoryContextDelete(txs->cxt);
}
