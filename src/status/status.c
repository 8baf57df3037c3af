/*-------------------------------------------------------------------------
 *
 * status/status.c
 *	  The order_flow.status base type: a state name stored as its 4-byte
 *	  process position.
 *
 * The value of a status datum is its sort position in the dictionary
 * order_flow.status_label, so comparison, hashing and btree ordering need
 * no lookup at all.  Positions never change once created (a trigger on the
 * dictionary refuses it), which also means the backend-local name <->
 * position cache never goes stale: it is only extended, and it is reloaded
 * on a miss.  It is also reloaded after the extension's configuration
 * sentinel is invalidated (a DROP/CREATE EXTENSION in another session).
 *
 * Cache invariants: the relcache callback only marks the cache stale
 * (of_status_cache_invalidate); the hashes are replaced at the next lookup,
 * never inside a callback.  A reload builds new hashes in a fresh memory
 * context and publishes them only when complete, so an invalidation that
 * arrives while the dictionary is being read (table_open accepts them)
 * cannot free what the reload is filling.  A reload overtaken by an
 * invalidation stays marked stale, so the next lookup reads again.
 *
 * The dictionary is read with a plain heap scan under a fresh catalog
 * snapshot rather than SPI, so I/O works wherever type I/O is called
 * (COPY, parallel workers, error paths).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/hash.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "catalog/namespace.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/varlena.h"
#include "mb/pg_wchar.h"
#include "replication/logicalworker.h"

#include "order_flow.h"

typedef struct LabelByName
{
	char		name[OF_NAME_MAX];
	int32		position;
} LabelByName;

typedef struct LabelByPos
{
	int32		position;
	char		name[OF_NAME_MAX];
} LabelByPos;

static MemoryContext labels_cxt = NULL;
static HTAB *by_name = NULL;
static HTAB *by_pos = NULL;
static bool labels_stale = true;
static uint64 labels_inval_count = 0;

/*
 * of_status_cache_invalidate: called from a relcache callback.  Marks only;
 * the next lookup reloads.
 */
void
of_status_cache_invalidate(void)
{
	labels_stale = true;
	labels_inval_count++;
}

/*
 * load_labels: (re)read the whole dictionary.  It holds a few hundred rows.
 */
static void
load_labels(void)
{
	HASHCTL		ctl;
	Oid			nsp;
	Oid			relid;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	Snapshot	snap;
	MemoryContext cxt;
	HTAB	   *new_by_name;
	HTAB	   *new_by_pos;
	uint64		inval_at_start = labels_inval_count;

	nsp = get_namespace_oid(OF_SCHEMA, true);
	relid = OidIsValid(nsp) ? get_relname_relid("status_label", nsp) : InvalidOid;
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the order_flow status dictionary is missing"),
				 errhint("Run CREATE EXTENSION order_flow in this database.")));

	/* built under the transaction: an error on the way frees it */
	cxt = AllocSetContextCreate(TopTransactionContext, "order_flow status labels",
								ALLOCSET_SMALL_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = OF_NAME_MAX;
	ctl.entrysize = sizeof(LabelByName);
	ctl.hcxt = cxt;
	new_by_name = hash_create("order_flow status by name", 64, &ctl,
							  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int32);
	ctl.entrysize = sizeof(LabelByPos);
	ctl.hcxt = cxt;
	new_by_pos = hash_create("order_flow status by position", 64, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	InvalidateCatalogSnapshot();
	snap = RegisterSnapshot(GetCatalogSnapshot(relid));
	rel = table_open(relid, AccessShareLock);
	scan = table_beginscan(rel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Datum		values[3];
		bool		nulls[3];
		char	   *name;
		int32		pos;
		LabelByName *n;
		LabelByPos *p;

		heap_deform_tuple(tup, RelationGetDescr(rel), values, nulls);
		if (nulls[0] || nulls[1])
			continue;
		name = TextDatumGetCString(values[0]);
		pos = DatumGetInt32(values[1]);
		if (strlen(name) >= OF_NAME_MAX)
			continue;
		n = hash_search(new_by_name, name, HASH_ENTER, NULL);
		n->position = pos;
		p = hash_search(new_by_pos, &pos, HASH_ENTER, NULL);
		strlcpy(p->name, name, OF_NAME_MAX);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	UnregisterSnapshot(snap);

	/*
	 * Publish.  The previous hashes go with the transaction: a caller of
	 * this transaction may still hold a name it returned.
	 */
	if (labels_cxt != NULL)
		MemoryContextSetParent(labels_cxt, TopTransactionContext);
	MemoryContextSetParent(cxt, CacheMemoryContext);
	labels_cxt = cxt;
	by_name = new_by_name;
	by_pos = new_by_pos;
	labels_stale = (labels_inval_count != inval_at_start);
}

/* The dictionary as of the latest invalidation processed. */
static inline void
ensure_labels(void)
{
	if (labels_stale || by_name == NULL)
		load_labels();
}

static bool
lookup_name(const char *name, int32 *pos)
{
	LabelByName *n;

	if (strlen(name) >= OF_NAME_MAX)
		return false;
	ensure_labels();
	n = hash_search(by_name, name, HASH_FIND, NULL);
	if (n == NULL)
	{
		load_labels();			/* a label created since */
		n = hash_search(by_name, name, HASH_FIND, NULL);
	}
	if (n == NULL)
		return false;
	*pos = n->position;
	return true;
}

/*
 * of_closest_states: "a", "b" or "c" -- up to three known names nearest to
 * name by edit distance; only the states of workflow when it is given.
 */
char *
of_closest_states(const char *name, const char *workflow)
{
	HASH_SEQ_STATUS seq;
	LabelByName *n;
	List	   *names = NIL;
	ListCell   *lc;
	const char *best[3] = {NULL, NULL, NULL};
	int			bestd[3] = {INT_MAX, INT_MAX, INT_MAX};
	StringInfoData buf;
	int			len;

	/* levenshtein takes at most 255 bytes; state names are far shorter */
	len = pg_mbcliplen(name, strlen(name), 255);

	/*
	 * Copy the names first: of_state() below may rebuild the catalogue, and
	 * an invalidation taken in then must not touch what is being iterated.
	 */
	ensure_labels();
	hash_seq_init(&seq, by_name);
	while ((n = hash_seq_search(&seq)) != NULL)
		names = lappend(names, pstrdup(n->name));

	foreach(lc, names)
	{
		const char *cand = lfirst(lc);
		int			d;
		int			i;

		if (workflow && of_state(workflow, cand) == NULL)
			continue;
		d = varstr_levenshtein(name, len, cand, strlen(cand), 1, 1, 1, false);
		for (i = 0; i < 3; i++)
		{
			if (d < bestd[i] || (d == bestd[i] && best[i] && strcmp(cand, best[i]) < 0))
			{
				memmove(&best[i + 1], &best[i], sizeof(best[0]) * (2 - i));
				memmove(&bestd[i + 1], &bestd[i], sizeof(bestd[0]) * (2 - i));
				best[i] = cand;
				bestd[i] = d;
				break;
			}
		}
	}
	initStringInfo(&buf);
	for (int i = 0; i < 3 && best[i]; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, i == 2 || best[i + 1] == NULL ? " or " : ", ");
		appendStringInfo(&buf, "\"%s\"", best[i]);
	}
	return buf.data;
}

/*
 * restore_label: during a restore, enter name at position pos (as its
 * dumped value says) unless it is there already; returns its position.
 */
static int32
restore_label(const char *name, int32 pos)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2] = {CStringGetTextDatum(name), Int32GetDatum(pos)};
	bool		isnull;
	int32		result;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(psprintf("SELECT %s._restore_label($1, $2)", of_internal_schema()),
							  2, types, values, NULL,
							  false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not restore state name \"%s\"", name);
	result = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	load_labels();
	return result;
}

/*
 * replicated_label: a logical replication apply worker brings a state name
 * this database does not know (its catalogue differs from the
 * publisher's): rather than stop replication, enter it at the end of the
 * process order, and say so.
 */
static int32
replicated_label(const char *name)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(name)};
	int32		pos;

	if (strlen(name) >= OF_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input value for order_flow.status: \"%s\"", name)));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT order_flow.create_status($1)", 1, types, values, NULL, false, 1)
		!= SPI_OK_SELECT)
		elog(ERROR, "could not enter state name \"%s\"", name);
	SPI_finish();
	load_labels();
	if (!lookup_name(name, &pos))
		elog(ERROR, "state name \"%s\" is not in the dictionary after create_status()", name);
	ereport(WARNING,
			(errmsg("order_flow: state name \"%s\" arrived by logical replication and was added at the end of the process order",
					name),
			 errhint("Create it with order_flow.create_status() on this side too, at its place, or replicate order_flow.status_label.")));
	return pos;
}

/*
 * A status as text: its name, or -- as pg_dump writes it -- "name@position".
 * The name is what a value means: when it is known, its position here is
 * used, whatever the dump says.  Only a restore enters an unknown name, at
 * the dumped position, so that a parallel restore may load a managed table
 * before the dictionary.
 */
static int32
status_from_cstring(const char *input)
{
	const char *at = strchr(input, '@');
	const char *name = input;
	int32		pos;

	if (at != NULL)
	{
		char	   *end;
		long		dumped;

		name = pnstrdup(input, at - input);
		errno = 0;
		dumped = strtol(at + 1, &end, 10);
		if (at[1] == '\0' || *end != '\0' || errno != 0 || dumped < PG_INT32_MIN || dumped > PG_INT32_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input value for order_flow.status: \"%s\"", input),
					 errdetail("A position after \"@\" must be an integer.")));
		if (lookup_name(name, &pos))
			return pos;
		/*
		 * pg_upgrade restores the schema before it moves the tables' files
		 * over, the dictionary's among them: a default or a view's constant
		 * is the position the old cluster dumped.
		 */
		if (IsBinaryUpgrade)
			return (int32) dumped;
		if (of_restoring())
			return restore_label(name, (int32) dumped);
	}
	else if (lookup_name(name, &pos))
		return pos;
	if (IsLogicalWorker())
		return replicated_label(name);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input value for order_flow.status: \"%s\"", name),
			 errhint("The closest known states are %s.", of_closest_states(name, NULL))));
	pg_unreachable();
}

static const char *
status_to_cstring(int32 pos)
{
	LabelByPos *p;

	ensure_labels();
	p = hash_search(by_pos, &pos, HASH_FIND, NULL);
	if (p == NULL)
	{
		load_labels();
		p = hash_search(by_pos, &pos, HASH_FIND, NULL);
	}
	if (p == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("order_flow.status position %d is not in the dictionary", pos)));
	return p->name;
}

PG_FUNCTION_INFO_V1(status_in);
Datum
status_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(status_from_cstring(PG_GETARG_CSTRING(0)));
}

/*
 * The name -- and, to pg_dump, "name@position", so that any restore (a
 * parallel one loads tables in no fixed order) recreates each name at its
 * position even before the dictionary's own rows are loaded; and so that
 * pg_upgrade, which restores the schema into a new cluster whose dictionary
 * is still empty, keeps every default's and view's constant.
 */
PG_FUNCTION_INFO_V1(status_out);
Datum
status_out(PG_FUNCTION_ARGS)
{
	int32		pos = PG_GETARG_INT32(0);
	const char *name = status_to_cstring(pos);

	/* pg_upgrade runs the old server in binary-upgrade mode for its pg_dump too */
	if (of_dumping() || IsBinaryUpgrade)
		PG_RETURN_CSTRING(psprintf("%s@%d", name, pos));
	PG_RETURN_CSTRING(pstrdup(name));
}

/* Binary I/O carries the name, as enum_send does: positions are per database. */
PG_FUNCTION_INFO_V1(status_recv);
Datum
status_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			nbytes;
	char	   *name = pq_getmsgtext(buf, buf->len - buf->cursor, &nbytes);

	PG_RETURN_INT32(status_from_cstring(name));
}

PG_FUNCTION_INFO_V1(status_send);
Datum
status_send(PG_FUNCTION_ARGS)
{
	const char *name = status_to_cstring(PG_GETARG_INT32(0));
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendtext(&buf, name, strlen(name));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(status_to_text);
Datum
status_to_text(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(status_to_cstring(PG_GETARG_INT32(0))));
}

PG_FUNCTION_INFO_V1(status_from_text);
Datum
status_from_text(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_INT32(status_from_cstring(name));
}

PG_FUNCTION_INFO_V1(status_position);
Datum
status_position(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(PG_GETARG_INT32(0));
}

#define STATUS_CMP_FN(fname, op) \
PG_FUNCTION_INFO_V1(fname); \
Datum \
fname(PG_FUNCTION_ARGS) \
{ \
	PG_RETURN_BOOL(PG_GETARG_INT32(0) op PG_GETARG_INT32(1)); \
}

STATUS_CMP_FN(status_eq, ==)
STATUS_CMP_FN(status_ne, !=)
STATUS_CMP_FN(status_lt, <)
STATUS_CMP_FN(status_le, <=)
STATUS_CMP_FN(status_gt, >)
STATUS_CMP_FN(status_ge, >=)

PG_FUNCTION_INFO_V1(status_cmp);
Datum
status_cmp(PG_FUNCTION_ARGS)
{
	int32		a = PG_GETARG_INT32(0);
	int32		b = PG_GETARG_INT32(1);

	PG_RETURN_INT32(a < b ? -1 : (a > b ? 1 : 0));
}

PG_FUNCTION_INFO_V1(status_hash);
Datum
status_hash(PG_FUNCTION_ARGS)
{
	return hash_uint32((uint32) PG_GETARG_INT32(0));
}

PG_FUNCTION_INFO_V1(status_hash_extended);
Datum
status_hash_extended(PG_FUNCTION_ARGS)
{
	return hash_uint32_extended((uint32) PG_GETARG_INT32(0), PG_GETARG_INT64(1));
}

PG_FUNCTION_INFO_V1(status_larger);
Datum
status_larger(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(Max(PG_GETARG_INT32(0), PG_GETARG_INT32(1)));
}

PG_FUNCTION_INFO_V1(status_smaller);
Datum
status_smaller(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(Min(PG_GETARG_INT32(0), PG_GETARG_INT32(1)));
}
