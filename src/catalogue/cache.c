/*-------------------------------------------------------------------------
 *
 * catalogue/cache.c
 *	  Backend-local cache of the workflow catalogue: states, edges and
 *	  department membership, so the transition hot path runs no catalogue
 *	  query per row.
 *
 * The cache is built with three SPI queries on first use and lives in its
 * own memory context under CacheMemoryContext.  Invalidation: every
 * configuration table has a statement trigger (_order_flow._config_changed)
 * that registers a relcache invalidation of the sentinel relation
 * order_flow.workflow.  At commit, every backend receives it through the
 * relcache callback below and marks the cache stale; the next use rebuilds
 * it.  The changing backend sees its own change at the next command.  On
 * a Citus coordinator the trigger also wakes the scheduler, which copies
 * the committed change to the workers.
 *
 * Cache invariants (the callback may run inside any table_open, so also in
 * the middle of a rebuild):
 *  - the callback only marks: it clears cache_valid and counts the
 *    invalidation; nothing is freed or rebuilt inside it;
 *  - a rebuild reads into a fresh memory context and publishes it when
 *    complete; it is marked valid only if no invalidation arrived since it
 *    began (the count is unchanged), so a change committed while it was
 *    reading is picked up by the next use;
 *  - the context replaced by a rebuild lives until the end of the
 *    transaction, so an OfState or OfEdge pointer taken earlier in the
 *    transaction stays readable (it may describe the older rules).
 *
 * Keys are "workflow\x1fstate" and "workflow\x1ffrom\x1fto"; configuration
 * names are restricted to [a-z0-9_] so the separator cannot occur in them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "tcop/pquery.h"
#include "utils/guc.h"
#include "utils/rls.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "access/xact.h"

#include "order_flow.h"
#include "shmem.h"

typedef struct OfMember
{
	char		actor[NAMEDATALEN * 2];
	List	   *departments;	/* char * */
} OfMember;

static MemoryContext cache_cxt = NULL;
static bool cache_valid = false;
static uint64 inval_count = 0;	/* invalidations seen, see load_cache */
static bool async_fold_schema = false;	/* 1.2's metrics watermark is there */
static Oid	sentinel_relid = InvalidOid;
static HTAB *workflows = NULL;
static HTAB *states = NULL;
static HTAB *edges = NULL;
static HTAB *members = NULL;
static HTAB *departments = NULL;

typedef struct OfDepartment
{
	char		name[OF_NAME_MAX];
	bool		always_open;
} OfDepartment;

static const char *const stamp_names[] = {
	NULL, "contract_signed", "warehouse_confirmed", "finance_approved", "shipped"
};

const char *
of_stamp_name(OfStamp stamp)
{
	return stamp_names[stamp];
}

static void
invalidate_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == sentinel_relid)
	{
		/* only mark: the next use rebuilds (see the file header) */
		cache_valid = false;
		inval_count++;
		/* looked up again on next use: DROP/CREATE EXTENSION gives it a new OID */
		sentinel_relid = InvalidOid;
		of_status_cache_invalidate();
	}
}

void
of_catalog_init(void)
{
	CacheRegisterRelcacheCallback(invalidate_callback, (Datum) 0);
}

Oid
of_sentinel_relid(void)
{
	if (!OidIsValid(sentinel_relid))
	{
		Oid			nsp = get_namespace_oid(OF_SCHEMA, true);

		if (OidIsValid(nsp))
			sentinel_relid = get_relname_relid("workflow", nsp);
	}
	return sentinel_relid;
}

static bool
make_key(char *key, const char *a, const char *b, const char *c)
{
	if (strlen(a) >= OF_NAME_MAX || (b && strlen(b) >= OF_NAME_MAX) ||
		(c && strlen(c) >= OF_NAME_MAX))
		return false;
	memset(key, 0, OF_KEY_MAX);
	if (c)
		snprintf(key, OF_KEY_MAX, "%s\x1f%s\x1f%s", a, b, c);
	else if (b)
		snprintf(key, OF_KEY_MAX, "%s\x1f%s", a, b);
	else
		snprintf(key, OF_KEY_MAX, "%s", a);
	return true;
}

static HTAB *
new_hash(const char *name, Size keysize, Size entrysize)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = keysize;
	ctl.entrysize = entrysize;
	ctl.hcxt = cache_cxt;
	return hash_create(name, 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
}

static char *
col_text(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

static int
col_text_array(HeapTuple tup, TupleDesc desc, int col, char ***out)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			k = 0;

	*out = NULL;
	if (isnull)
		return 0;
	deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	if (n == 0)
		return 0;
	*out = palloc(sizeof(char *) * n);
	for (int i = 0; i < n; i++)
		if (!nulls[i])
			(*out)[k++] = TextDatumGetCString(elems[i]);
	return k;
}

/* "1.2" -> 1002; -1 when it is no version */
static int
version_number(const char *v)
{
	int			major,
				minor;

	if (v == NULL || sscanf(v, "%d.%d", &major, &minor) != 2)
		return -1;
	return major * 1000 + minor;
}

/*
 * check_sql_version: the library serves the SQL objects of its own version
 * and of every earlier one (a database not yet updated keeps working until
 * ALTER EXTENSION order_flow UPDATE); SQL objects newer than the library
 * were written for code it does not have.  Called with SPI connected.
 */
static void
check_sql_version(void)
{
	char	   *sql_version = NULL;

	if (SPI_execute("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'order_flow'",
					true, 1) == SPI_OK_SELECT && SPI_processed == 1)
		sql_version = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (version_number(sql_version) > version_number(OF_VERSION))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the order_flow library (%s) is older than the extension's SQL objects (%s)",
						OF_VERSION, sql_version),
				 errhint("Install the order_flow build of version %s and restart the server.", sql_version)));
}

/*
 * read_catalogue: fill the hashes (in cache_cxt) through SPI.  Called inside
 * a transaction; runs its own SPI connection so it can be called from
 * anywhere.
 */
static void
read_catalogue(void)
{
	MemoryContext old;
	int			ret;
	uint64		i;
	OfUserSave	save;
	bool		pushed = false;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* the catalogue is read as the extension owner: callers need no grants on it */
	of_become_owner(&save);
	/* with the latest snapshot: a REPEATABLE READ transaction must not cache old rules */
	if (!IsInParallelMode())
	{
		PushActiveSnapshot(GetLatestSnapshot());
		pushed = true;
	}
	check_sql_version();

	old = MemoryContextSwitchTo(cache_cxt);
	workflows = new_hash("order_flow workflows", OF_KEY_MAX, sizeof(OfWorkflow));
	states = new_hash("order_flow states", OF_KEY_MAX, sizeof(OfState));
	edges = new_hash("order_flow edges", OF_KEY_MAX, sizeof(OfEdge));
	members = new_hash("order_flow members", NAMEDATALEN * 2, sizeof(OfMember));
	departments = new_hash("order_flow departments", OF_NAME_MAX, sizeof(OfDepartment));
	MemoryContextSwitchTo(old);

	ret = SPI_execute("SELECT s.workflow, s.state, s.category, s.resumes_to_origin, s.stamps, s.max_dwell"
					  "  FROM order_flow.state s"
					  "  JOIN order_flow.status_label l ON l.label OPERATOR(pg_catalog.=) s.state"
					  " ORDER BY l.sort_position", true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read order_flow.state");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *wf = col_text(tup, desc, 1);
		char	   *st = col_text(tup, desc, 2);
		char	   *cat = col_text(tup, desc, 3);
		char	   *stamp = col_text(tup, desc, 5);
		bool		isnull;
		char		key[OF_KEY_MAX];
		OfState    *s;
		OfWorkflow *w;
		bool		found;

		if (!make_key(key, wf, st, NULL))
			continue;
		s = hash_search(states, key, HASH_ENTER, NULL);
		strlcpy(s->name, st, OF_NAME_MAX);
		s->category = cat[0];
		s->resumes_to_origin = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		s->stamp = OF_STAMP_NONE;
		for (int k = 1; stamp && k <= OF_STAMP_SHIPPED; k++)
			if (strcmp(stamp, stamp_names[k]) == 0)
				s->stamp = (OfStamp) k;
		s->next_states = NIL;
		{
			Datum		d = SPI_getbinval(tup, desc, 6, &isnull);

			s->has_dwell = !isnull;
			if (!isnull)
				s->max_dwell = *DatumGetIntervalP(d);
		}

		make_key(key, wf, NULL, NULL);
		w = hash_search(workflows, key, HASH_ENTER, &found);
		if (!found)
		{
			w->initial[0] = '\0';
			w->has_reminder = false;
		}
		if (s->category == 'i')
			strlcpy(w->initial, st, OF_NAME_MAX);
	}

	ret = SPI_execute("SELECT r.workflow, r.from_state, r.to_state, r.notify, r.ack_within,"
					  "       r.performed_by, r.reason_required, r.exception_type"
					  "  FROM order_flow.transition_rule r"
					  "  JOIN order_flow.status_label l ON l.label OPERATOR(pg_catalog.=) r.to_state"
					  " ORDER BY l.sort_position", true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read order_flow.transition_rule");
	old = MemoryContextSwitchTo(cache_cxt);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *wf = col_text(tup, desc, 1);
		char	   *from = col_text(tup, desc, 2);
		char	   *to = col_text(tup, desc, 3);
		char		key[OF_KEY_MAX];
		bool		isnull;
		OfEdge	   *e;
		OfState    *s;

		if (!make_key(key, wf, from, to))
			continue;
		e = hash_search(edges, key, HASH_ENTER, NULL);
		e->nnotify = col_text_array(tup, desc, 4, &e->notify);
		e->ack_within = *DatumGetIntervalP(SPI_getbinval(tup, desc, 5, &isnull));
		e->nperformers = col_text_array(tup, desc, 6, &e->performed_by);
		e->reason_required = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));
		e->exception_type = col_text(tup, desc, 8);

		make_key(key, wf, from, NULL);
		s = hash_search(states, key, HASH_FIND, NULL);
		if (s)
			s->next_states = lappend(s->next_states, pstrdup(to));
	}
	MemoryContextSwitchTo(old);

	ret = SPI_execute("SELECT workflow, factor::float8 FROM order_flow.reminder_policy"
					  " WHERE level OPERATOR(pg_catalog.=) 1", true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read order_flow.reminder_policy");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *wf = col_text(tup, desc, 1);
		char		key[OF_KEY_MAX];
		bool		isnull;
		OfWorkflow *w;

		if (!make_key(key, wf, NULL, NULL))
			continue;
		w = hash_search(workflows, key, HASH_FIND, NULL);
		if (w)
		{
			w->has_reminder = true;
			w->first_factor = DatumGetFloat8(SPI_getbinval(tup, desc, 2, &isnull));
		}
	}

	ret = SPI_execute("SELECT d.department, COALESCE(c.always_open, true)"
					  "  FROM order_flow.department d"
					  "  LEFT JOIN order_flow.calendar c ON c.calendar OPERATOR(pg_catalog.=) d.calendar",
					  true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read order_flow.department");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *name = col_text(tup, desc, 1);
		bool		isnull;
		OfDepartment *d;

		if (strlen(name) >= OF_NAME_MAX)
			continue;
		d = hash_search(departments, name, HASH_ENTER, NULL);
		d->always_open = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
	}

	ret = SPI_execute("SELECT pg_catalog.to_regclass('order_flow.metrics_watermark') IS NOT NULL", true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not look for order_flow.metrics_watermark");
	{
		bool		isnull;

		async_fold_schema = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}

	ret = SPI_execute("SELECT actor, department FROM order_flow.member", true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read order_flow.member");
	old = MemoryContextSwitchTo(cache_cxt);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *actor = col_text(tup, desc, 1);
		char	   *dept = col_text(tup, desc, 2);
		OfMember   *m;
		bool		found;

		if (strlen(actor) >= NAMEDATALEN * 2)
			continue;
		m = hash_search(members, actor, HASH_ENTER, &found);
		if (!found)
			m->departments = NIL;
		m->departments = lappend(m->departments, pstrdup(dept));
	}
	MemoryContextSwitchTo(old);

	if (pushed)
		PopActiveSnapshot();
	of_restore_user(&save);
	SPI_finish();
}

/*
 * load_cache: rebuild the cache (see the invariants in the file header).
 */
static void
load_cache(void)
{
	uint64		inval_at_start;
	MemoryContext build_cxt;
	MemoryContext prev_cxt = cache_cxt;
	HTAB	   *prev[5] = {workflows, states, edges, members, departments};

	/*
	 * Built under the transaction, so an error on the way frees it; moved
	 * under CacheMemoryContext once complete.  cache_cxt names it while
	 * building, since new_hash() allocates there.
	 */
	build_cxt = AllocSetContextCreate(TopTransactionContext, "order_flow catalogue",
									  ALLOCSET_DEFAULT_SIZES);
	cache_valid = false;
	(void) of_sentinel_relid();
	/* counted before the snapshot is taken: a later commit shows as an invalidation */
	inval_at_start = inval_count;
	cache_cxt = build_cxt;
	PG_TRY();
	{
		read_catalogue();
	}
	PG_CATCH();
	{
		cache_cxt = prev_cxt;
		workflows = prev[0];
		states = prev[1];
		edges = prev[2];
		members = prev[3];
		departments = prev[4];
		cache_valid = false;
		PG_RE_THROW();
	}
	PG_END_TRY();

	/* publish; the replaced cache lives until the end of the transaction */
	if (prev_cxt != NULL)
		MemoryContextSetParent(prev_cxt, TopTransactionContext);
	MemoryContextSetParent(build_cxt, CacheMemoryContext);
	cache_valid = (inval_count == inval_at_start);
}

static inline void
ensure_cache(void)
{
	if (!cache_valid)
		load_cache();
}

OfWorkflow *
of_workflow(const char *workflow)
{
	char		key[OF_KEY_MAX];

	ensure_cache();
	if (!make_key(key, workflow, NULL, NULL))
		return NULL;
	return hash_search(workflows, key, HASH_FIND, NULL);
}

OfState *
of_state(const char *workflow, const char *state)
{
	char		key[OF_KEY_MAX];

	ensure_cache();
	if (!make_key(key, workflow, state, NULL))
		return NULL;
	return hash_search(states, key, HASH_FIND, NULL);
}

OfEdge *
of_edge(const char *workflow, const char *from, const char *to)
{
	char		key[OF_KEY_MAX];

	ensure_cache();
	if (!make_key(key, workflow, from, to))
		return NULL;
	return hash_search(edges, key, HASH_FIND, NULL);
}

/*
 * of_catalog_async_fold: does this database fold metrics through the
 * watermark of version 1.2 (else its audit log has 1.1's fold trigger)?
 */
bool
of_catalog_async_fold(void)
{
	ensure_cache();
	return async_fold_schema;
}

/*
 * of_department_always_open: does the department's SLA clock run on the
 * wall clock (its calendar is always open, or it is unknown)?
 */
bool
of_department_always_open(const char *department)
{
	OfDepartment *d;

	ensure_cache();
	if (strlen(department) >= OF_NAME_MAX)
		return true;
	d = hash_search(departments, department, HASH_FIND, NULL);
	return d == NULL || d->always_open;
}

/*
 * of_actor_in: is actor a member of any of the n departments?
 */
bool
of_actor_in(const char *actor, char **departments, int n)
{
	OfMember   *m;
	ListCell   *lc;

	ensure_cache();
	if (strlen(actor) >= NAMEDATALEN * 2)
		return false;
	m = hash_search(members, actor, HASH_FIND, NULL);
	if (m == NULL)
		return false;
	foreach(lc, m->departments)
	{
		for (int i = 0; i < n; i++)
			if (strcmp((char *) lfirst(lc), departments[i]) == 0)
				return true;
	}
	return false;
}

/*
 * of_string_array_text: "a, b, c" for messages.
 */
char *
of_string_array_text(char **items, int n)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < n; i++)
		appendStringInfo(&buf, "%s%s", i ? ", " : "", items[i]);
	return buf.data;
}

PG_FUNCTION_INFO_V1(order_flow_config_changed);

/*
 * _order_flow._config_changed(): statement trigger on every configuration
 * table; tells every backend (at commit) to rebuild its cache.
 */
Datum
order_flow_config_changed(PG_FUNCTION_ARGS)
{
	Oid			sentinel;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_order_flow._config_changed() must be called as a trigger")));
	sentinel_relid = InvalidOid;	/* never trust a cached OID here */
	sentinel = of_sentinel_relid();
	if (OidIsValid(sentinel))
		CacheInvalidateRelcacheByRelid(sentinel);
	cache_valid = false;
	inval_count++;
	/* on a Citus coordinator: its scheduler copies the change to the workers (src/sql/citus.sql) */
	if (OidIsValid(get_namespace_oid(OF_CITUS_SCHEMA, true)))
		of_note_deadline(GetCurrentTimestamp());
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(order_flow_loading);

/*
 * _order_flow._loading(): is this a reload by pg_restore (or a pg_dump
 * script): a COPY with row_security off?
 *
 * pg_dump reloads extension configuration tables with COPY into tables that
 * CREATE EXTENSION has just filled with the shipped rows.  During such a
 * load the configuration triggers merge instead of conflicting, and neither
 * validate (a half-loaded catalogue is not yet whole) nor audit (the audit
 * log being reloaded already holds the original events).
 */
Datum
order_flow_loading(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(of_restoring());
}

/*
 * of_restoring: is this COPY a reload by pg_restore or a pg_dump script?
 *
 * Only a superuser's session restores: anyone else's COPY is an edit,
 * validated and audited (a superuser can bypass anything anyway).
 * pg_restore and the scripts of pg_dump turn row_security off before
 * loading data (search_path, which they empty too, is pinned inside our
 * functions and so cannot tell); an application's own COPY into the
 * configuration is a normal, validated and audited edit.
 */
bool
of_restoring(void)
{
	return ActivePortal != NULL && ActivePortal->commandTag == CMDTAG_COPY &&
		!row_security && superuser_arg(GetOuterUserId());
}

/*
 * of_dumping: is this COPY TO pg_dump reading data?  pg_dump (and each
 * worker of a parallel pg_dump) copies out in a read-only transaction with
 * a transaction snapshot and row_security off; an application's COPY or
 * query hardly ever runs in that combination.
 */
bool
of_dumping(void)
{
	return ActivePortal != NULL && ActivePortal->commandTag == CMDTAG_COPY &&
		!row_security && XactReadOnly && IsolationUsesXactSnapshot();
}
