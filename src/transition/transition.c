/*-------------------------------------------------------------------------
 *
 * transition/transition.c
 *	  The C transition trigger: validate, stamp, audit, open notifications,
 *	  NOTIFY -- one path for plain UPDATEs, transition() and imports.
 *
 * The trigger is BEFORE INSERT OR UPDATE OF <key>, <status> OR DELETE FOR
 * EACH ROW on a managed table.  Everything it needs arrives in its arguments (logical
 * table name, workflow, key, status and customer columns, attribute
 * columns), never looked up by the table's OID, so the same trigger works
 * on a distributed table's shards.  Every row it writes is keyed by order
 * key: the order's tracking row (chain head, state, stamps), the audit
 * event, notifications and outbox messages.
 *
 * Cost per transition: the workflow graph comes from catalogue/cache.c's cache;
 * the column layout of each table is cached per relation OID (dropped on
 * its relcache invalidation); the chain head is locked, the event appended
 * and the head moved by chain/chain.c without SPI, and a move on an edge
 * that notifies writes its notifications and outbox rows the same way;
 * only a department on a working-hours calendar asks SQL for its deadline
 * (and a deletion closes the order's notifications with a statement).  The
 * writes run as the extension owner, since ordinary roles cannot write the
 * log.  Metrics are not folded here (see metrics/fold.c).
 *
 * The chain is the truth: a move is checked against the state of the
 * order's chain head (order_flow.tracked_order.state), locked first, and a
 * row whose status differs from it (changed while the trigger was
 * disabled) is refused until order_flow.repair_drift() records the drift.
 * A deleted order keeps its chain, ended by a 'deleted' event, with a NULL
 * state in its head; its key cannot be inserted again.
 *
 * transition() and import_transition() pass their note, details and
 * business time through a backend-local context naming the one order it is
 * for; the trigger takes it for that order only, and it is cleared at the
 * end of the transaction whatever happens.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "order_flow.h"
#include "compat.h"
#include "chain.h"
#include "shmem.h"

/* ---- per-relation column layout, cached by relation OID ---- */

typedef struct RelColumn
{
	AttrNumber	attnum;
	char		name[NAMEDATALEN];
	FmgrInfo	out;
	char		category;		/* pg_type.typcategory */
	Oid			typid;
} RelColumn;

typedef struct RelInfo
{
	Oid			relid;			/* hash key */
	bool		valid;
	char		tbl[2 * NAMEDATALEN + 8];
	char		workflow[OF_NAME_MAX];
	RelColumn	key;
	RelColumn	status;
	bool		has_customer;
	RelColumn	customer;
	int			nattrs;
	RelColumn  *attrs;
	OfShard		shard;			/* a Citus shard: where its chains are written */
} RelInfo;

static HTAB *relinfos = NULL;

static void
relinfo_invalidate(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS seq;
	RelInfo    *ri;

	if (relinfos == NULL)
		return;
	hash_seq_init(&seq, relinfos);
	while ((ri = hash_seq_search(&seq)) != NULL)
		if (relid == InvalidOid || ri->relid == relid)
			ri->valid = false;
}

static void
fill_column(RelColumn *c, TupleDesc desc, const char *name, const char *tbl)
{
	Oid			typoutput;
	bool		isvarlena;
	Form_pg_attribute att;

	strlcpy(c->name, name, NAMEDATALEN);
	c->attnum = SPI_fnumber(desc, name);
	if (c->attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of managed table %s does not exist", name, tbl),
				 errhint("Call order_flow.unmanage() and order_flow.manage() again after changing the table.")));
	att = TupleDescAttr(desc, c->attnum - 1);
	c->typid = att->atttypid;
	getTypeOutputInfo(att->atttypid, &typoutput, &isvarlena);
	fmgr_info_cxt(typoutput, &c->out, TopMemoryContext);
	{
		char		typcat;
		bool		pref;

		get_type_category_preferred(att->atttypid, &typcat, &pref);
		c->category = typcat;
	}
}

static RelInfo *
get_relinfo(Relation rel, Trigger *trig)
{
	Oid			relid = RelationGetRelid(rel);
	RelInfo    *ri;
	bool		found;
	TupleDesc	desc = RelationGetDescr(rel);
	char	  **args = trig->tgargs;

	if (relinfos == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RelInfo);
		ctl.hcxt = TopMemoryContext;
		relinfos = hash_create("order_flow managed relations", 16, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		CacheRegisterRelcacheCallback(relinfo_invalidate, (Datum) 0);
	}
	ri = hash_search(relinfos, &relid, HASH_ENTER, &found);
	if (found && ri->valid)
		return ri;
	if (found && ri->attrs)
		pfree(ri->attrs);
	ri->valid = false;
	ri->attrs = NULL;

	if (trig->tgnargs < 5)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("order_flow transition trigger on \"%s\" has %d arguments, expected at least 5",
						RelationGetRelationName(rel), trig->tgnargs),
				 errhint("Attach tables with order_flow.manage().")));
	strlcpy(ri->tbl, args[0], sizeof(ri->tbl));
	strlcpy(ri->workflow, args[1], sizeof(ri->workflow));
	fill_column(&ri->key, desc, args[2], ri->tbl);
	fill_column(&ri->status, desc, args[3], ri->tbl);
	ri->has_customer = args[4][0] != '\0';
	if (ri->has_customer)
		fill_column(&ri->customer, desc, args[4], ri->tbl);
	ri->nattrs = trig->tgnargs - 5;
	ri->attrs = ri->nattrs > 0 ?
		MemoryContextAllocZero(TopMemoryContext, sizeof(RelColumn) * ri->nattrs) : NULL;
	for (int i = 0; i < ri->nattrs; i++)
		fill_column(&ri->attrs[i], desc, args[5 + i], ri->tbl);
	of_citus_shard(rel, ri->tbl, ri->key.attnum, &ri->shard);
	ri->valid = true;
	return ri;
}

static char *
column_text(RelColumn *c, HeapTuple tup, TupleDesc desc, bool *isnull)
{
	Datum		d = heap_getattr(tup, c->attnum, desc, isnull);

	return *isnull ? NULL : OutputFunctionCall(&c->out, d);
}

/*
 * attribute_text: a captured attribute's text.  Dates and times are
 * written in ISO 8601, as to_json() writes them, whatever the session's
 * DateStyle: the metrics read a promised date back from the log, in
 * whichever session folds it.
 */
static char *
attribute_text(RelColumn *c, HeapTuple tup, TupleDesc desc, bool *isnull)
{
	Datum		d;
	char		buf[MAXDATELEN + 1];

	if (c->typid != DATEOID && c->typid != TIMESTAMPOID && c->typid != TIMESTAMPTZOID)
		return column_text(c, tup, desc, isnull);
	d = heap_getattr(tup, c->attnum, desc, isnull);
	if (*isnull)
		return NULL;
	return pstrdup(JsonEncodeDateTime(buf, d, c->typid, NULL));
}

/* ---- the transition context of transition() / import_transition() ---- */

typedef struct MoveContext
{
	bool		set;
	bool		taken;
	char	   *order_key;
	char	   *action;
	char	   *note;
	char	   *details;		/* jsonb text */
	bool		has_occurred;
	TimestampTz occurred_at;
} MoveContext;

static MoveContext ctx;
static bool xact_callback_registered = false;

static void
clear_context(void)
{
	if (ctx.order_key)
		pfree(ctx.order_key);
	if (ctx.action)
		pfree(ctx.action);
	if (ctx.note)
		pfree(ctx.note);
	if (ctx.details)
		pfree(ctx.details);
	memset(&ctx, 0, sizeof(ctx));
}

static void
context_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		clear_context();
}

/* A transition() that failed inside a subtransaction leaves nothing behind. */
static void
context_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		clear_context();
}

static char *
top_strdup(const char *s)
{
	return s ? MemoryContextStrdup(TopMemoryContext, s) : NULL;
}

PG_FUNCTION_INFO_V1(order_flow_set_context);

/*
 * _order_flow._set_context(order_key, action, note, details, occurred_at):
 * what the next trigger firing for this order should record.  Imports need
 * the right to call import_transition().
 */
Datum
order_flow_set_context(PG_FUNCTION_ARGS)
{
	char	   *action = PG_ARGISNULL(1) ? "transition" : text_to_cstring(PG_GETARG_TEXT_PP(1));

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("order key must not be null")));
	if (strcmp(action, "transition") != 0 && strcmp(action, "import") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown transition action \"%s\"", action)));
	if (!PG_ARGISNULL(4) && strcmp(action, "import") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("only imports carry a business time"),
				 errdetail("Live transitions occur at the server clock.")));
	if (strcmp(action, "import") == 0)
	{
		/* the caller may run order_flow.import_transition (looked up, not parsed, per import) */
		Oid			argtypes[5] = {REGCLASSOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, JSONBOID};
		Oid			fn = LookupFuncName(list_make2(makeString(OF_SCHEMA), makeString("import_transition")),
										5, argtypes, true);

		if (!OidIsValid(fn) || of_proc_aclcheck(fn, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to import transitions"),
					 errhint("Grant EXECUTE on order_flow.import_transition to the importing role.")));
	}
	if (!xact_callback_registered)
	{
		RegisterXactCallback(context_xact_callback, NULL);
		RegisterSubXactCallback(context_subxact_callback, NULL);
		xact_callback_registered = true;
	}
	clear_context();
	ctx.set = true;
	ctx.order_key = top_strdup(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	ctx.action = top_strdup(action);
	ctx.note = PG_ARGISNULL(2) ? NULL : top_strdup(text_to_cstring(PG_GETARG_TEXT_PP(2)));
	if (!PG_ARGISNULL(3))
	{
		Jsonb	   *j = PG_GETARG_JSONB_P(3);

		if (!JB_ROOT_IS_OBJECT(j) || JB_ROOT_IS_SCALAR(j))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("details must be a JSON object")));
		if (VARSIZE(j) > 65536)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("details are too large (%d bytes, at most 65536)", (int) VARSIZE(j))));
		ctx.details = top_strdup(JsonbToCString(NULL, &j->root, VARSIZE(j)));
	}
	ctx.has_occurred = !PG_ARGISNULL(4);
	if (ctx.has_occurred)
	{
		ctx.occurred_at = PG_GETARG_TIMESTAMPTZ(4);
		if (TIMESTAMP_NOT_FINITE(ctx.occurred_at))
		{
			clear_context();
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("occurred_at must be a finite time, not %s",
							TIMESTAMP_IS_NOBEGIN(PG_GETARG_TIMESTAMPTZ(4)) ? "-infinity" : "infinity"),
					 err_generic_string(PG_DIAG_CONSTRAINT_NAME, "order_flow_business_time")));
		}
	}
	PG_RETURN_VOID();
}

/* jb_field: the text of key in JSON object j (an object as JSON text), or NULL */
static char *
jb_field(Jsonb *j, const char *key)
{
	JsonbValue	kv;
	JsonbValue *v;

	kv.type = jbvString;
	kv.val.string.val = (char *) key;
	kv.val.string.len = strlen(key);
	v = findJsonbValueFromContainer(&j->root, JB_FOBJECT, &kv);
	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type == jbvString)
		return pnstrdup(v->val.string.val, v->val.string.len);
	if (v->type == jbvBinary)
		return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
	return NULL;
}

/*
 * context_from_setting: on a Citus worker, what transition() or
 * import_transition() on the coordinator passed for order key (through
 * SET LOCAL order_flow.transition_context, which Citus forwards), taken as
 * _set_context() takes it -- with the same checks of the caller's rights
 * -- once per call (its "n").
 */
static char taken_context_n[64];

static void
context_from_setting(const char *key)
{
	Jsonb	   *j;
	char	   *k;
	char	   *n;
	char	   *occurred;
	char	   *details;
	char	   *note;
	LOCAL_FCINFO(fcinfo, 5);

	j = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(of_context_setting)));
	if (!JB_ROOT_IS_OBJECT(j) || JB_ROOT_IS_SCALAR(j))
		return;
	k = jb_field(j, "order_key");
	n = jb_field(j, "n");
	if (k == NULL || n == NULL || strcmp(k, key) != 0 || strcmp(n, taken_context_n) == 0)
		return;
	occurred = jb_field(j, "occurred_at");
	details = jb_field(j, "details");
	note = jb_field(j, "note");
	InitFunctionCallInfoData(*fcinfo, NULL, 5, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = CStringGetTextDatum(k);
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = CStringGetTextDatum(jb_field(j, "action") ?: "transition");
	fcinfo->args[1].isnull = false;
	fcinfo->args[2].isnull = note == NULL;
	fcinfo->args[2].value = note ? CStringGetTextDatum(note) : (Datum) 0;
	fcinfo->args[3].isnull = details == NULL;
	fcinfo->args[3].value = details ? DirectFunctionCall1(jsonb_in, CStringGetDatum(details)) : (Datum) 0;
	fcinfo->args[4].isnull = occurred == NULL;
	fcinfo->args[4].value = occurred ?
		DirectFunctionCall3(timestamptz_in, CStringGetDatum(occurred), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)) :
		(Datum) 0;
	(void) order_flow_set_context(fcinfo);
	strlcpy(taken_context_n, n, sizeof(taken_context_n));
}

PG_FUNCTION_INFO_V1(order_flow_take_context_result);

/*
 * _order_flow._take_context_result(): did a trigger take the context (that
 * is, did the transition happen)?  Clears the context.
 */
Datum
order_flow_take_context_result(PG_FUNCTION_ARGS)
{
	bool		taken = ctx.set && ctx.taken;

	clear_context();
	PG_RETURN_BOOL(taken);
}

/* ---- JSON helpers ---- */

static void
json_value(StringInfo buf, RelColumn *c, const char *val)
{
	if (c->category == TYPCATEGORY_NUMERIC && strspn(val, "0123456789.-+eE") == strlen(val) &&
		strcmp(val, "-") != 0 && val[0] != '\0' && strpbrk(val, "0123456789") != NULL)
		appendStringInfoString(buf, val);
	else if (c->category == TYPCATEGORY_BOOLEAN)
		appendStringInfoString(buf, val[0] == 't' ? "true" : "false");
	else
		escape_json(buf, val);
}

/* ---- refusals ---- */

/* What the current firing is attempting, for the refusal record. */
static struct
{
	char		tbl[2 * NAMEDATALEN + 8];
	char		order_key[128];
	char		from_state[64];
	char		to_state[64];
} attempt;

/* set by refuse(): the error being raised is a refusal of the transition */
static bool refusing = false;

static void
note_attempt(const char *tbl, const char *key, const char *from, const char *to)
{
	strlcpy(attempt.tbl, tbl ? tbl : "", sizeof(attempt.tbl));
	strlcpy(attempt.order_key, key ? key : "", sizeof(attempt.order_key));
	strlcpy(attempt.from_state, from ? from : "", sizeof(attempt.from_state));
	strlcpy(attempt.to_state, to ? to : "", sizeof(attempt.to_state));
}

/*
 * refuse: refuse the transition with the given SQLSTATE and constraint name
 * (the name a client tells refusals apart by; the schema and table are
 * those of the managed table).  The refusal is marked as such, so the
 * trigger's entry point copies it to the out-of-band queue; any other
 * error (a failing write, a lock timeout) is not a refusal.
 */
#define refuse(rel, code, conname, ...) \
	do { \
		refusing = true; \
		ereport(ERROR, (errcode(code), errtableconstraint(rel, conname), __VA_ARGS__)); \
	} while (0)

static void
push_refusal(ErrorData *ed)
{
	OfRefusal	r;

	memset(&r, 0, sizeof(r));
	r.dboid = MyDatabaseId;
	r.at = GetCurrentTimestamp();
	strlcpy(r.actor, of_actor_setting && of_actor_setting[0] ? of_actor_setting :
			GetUserNameFromId(GetSessionUserId(), true) ?: "", sizeof(r.actor));
	strlcpy(r.db_user, GetUserNameFromId(GetOuterUserId(), true) ?: "", sizeof(r.db_user));
	strlcpy(r.tbl, attempt.tbl, sizeof(r.tbl));
	strlcpy(r.order_key, attempt.order_key, sizeof(r.order_key));
	strlcpy(r.from_state, attempt.from_state, sizeof(r.from_state));
	strlcpy(r.to_state, attempt.to_state, sizeof(r.to_state));
	strlcpy(r.sqlstate, unpack_sql_state(ed->sqlerrcode), sizeof(r.sqlstate));
	strlcpy(r.reason, ed->message ? ed->message : "", sizeof(r.reason));
	of_refusal_push(&r);
}

static char *
allowed_next_text(OfState *from, const char *held_from)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	if (held_from)
		appendStringInfo(&buf, "%s (resume)", held_from);
	foreach(lc, from->next_states)
		appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", (char *) lfirst(lc));
	return buf.len ? buf.data : "none (terminal state)";
}

/* ---- SPI statements the path still needs (rarely) ---- */


static SPIPlanPtr deadline_plan = NULL;
static SPIPlanPtr close_plan = NULL;

/*
 * department_deadline: start + span on the department's business calendar.
 * Always-open calendars (the default) need no query.
 */
static TimestampTz
department_deadline(const char *department, TimestampTz start, Interval *span)
{
	Oid			t[3] = {TEXTOID, TIMESTAMPTZOID, INTERVALOID};
	Datum		v[3];
	bool		isnull;
	Datum		d;

	if (of_department_always_open(department))
		return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
													   TimestampTzGetDatum(start),
													   IntervalPGetDatum(span)));
	v[0] = CStringGetTextDatum(department);
	v[1] = TimestampTzGetDatum(start);
	v[2] = IntervalPGetDatum(span);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_plan(of_keep_plan(&deadline_plan, "SELECT order_flow.department_deadline($1, $2, $3)", 3, t),
						 v, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not compute deadline for department %s", department);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	SPI_finish();
	return isnull ? DT_NOEND : DatumGetTimestampTz(d);
}

/* ---- the request: what the firing asks for ---- */

typedef struct Request
{
	Relation	rel;
	RelInfo    *ri;
	bool		is_insert;
	HeapTuple	newtup;
	char	   *key;
	char	   *from;			/* the row's old status (NULL on insert) */
	char	   *to;
	OfState    *to_st;
	bool		use_ctx;		/* transition()/import_transition() speak for it */
	const char *action;
	const char *note;
	bool		admin;
	char	   *actor;
	char	   *db_user;
	/* checked against the head */
	OfState    *from_st;
	OfEdge	   *edge;			/* the edge taken (for a resume: the one that held it) */
	bool		resume;
	TimestampTz now;
	TimestampTz occurred;
	/* built */
	char	   *attrs;			/* captured attributes, JSON object text */
	char	   *customer;
} Request;

/*
 * read_request: the row, the key, the statuses and who acts.  False when
 * the firing is no transition at all (the status did not change).
 */
static bool
read_request(TriggerData *td, Request *rq)
{
	TupleDesc	desc;
	HeapTuple	oldtup = NULL;
	bool		isnull;
	Relation	rel = td->tg_relation;

	memset(rq, 0, sizeof(*rq));
	rq->rel = rel;
	desc = RelationGetDescr(rel);
	rq->is_insert = TRIGGER_FIRED_BY_INSERT(td->tg_event);
	rq->newtup = rq->is_insert ? td->tg_trigtuple : td->tg_newtuple;
	if (!rq->is_insert)
		oldtup = td->tg_trigtuple;
	rq->ri = get_relinfo(rel, td->tg_trigger);
	note_attempt(rq->ri->tbl, NULL, NULL, NULL);

	rq->key = column_text(&rq->ri->key, rq->newtup, desc, &isnull);
	if (isnull)
		refuse(rel, ERRCODE_NOT_NULL_VIOLATION, "order_flow_key_required",
			   errmsg("order key of %s must not be null", rq->ri->tbl));
	if (strncmp(rq->key, "order_flow:", 11) == 0)
		refuse(rel, ERRCODE_UNIQUE_VIOLATION, "order_flow_key_reserved",
			   errmsg("order key \"%s\" is reserved", rq->key),
			   errdetail("Keys beginning with \"order_flow:\" name the extension's own audit chains."));
	rq->to = column_text(&rq->ri->status, rq->newtup, desc, &isnull);
	if (isnull)
		refuse(rel, ERRCODE_NOT_NULL_VIOLATION, "order_flow_status_required",
			   errmsg("status of order %s must not be null", rq->key),
			   errdetail("Column \"%s\" of %s is managed by order_flow.", rq->ri->status.name, rq->ri->tbl));
	note_attempt(rq->ri->tbl, rq->key, NULL, rq->to);

	if (!rq->is_insert)
	{
		char	   *oldkey = column_text(&rq->ri->key, oldtup, desc, &isnull);

		if (isnull || strcmp(oldkey, rq->key) != 0)
			refuse(rel, ERRCODE_FEATURE_NOT_SUPPORTED, "order_flow_key_immutable",
				   errmsg("order key of a managed order cannot change (%s to %s)",
						  isnull ? "NULL" : oldkey, rq->key),
				   errdetail("The audit trail of an order is keyed by its order key."));
		rq->from = column_text(&rq->ri->status, oldtup, desc, &isnull);
		if (!isnull && strcmp(rq->from, rq->to) == 0)
			return false;		/* not a transition */
		if (isnull)
			rq->from = NULL;
	}
	note_attempt(rq->ri->tbl, rq->key, rq->from, rq->to);

	if (rq->ri->shard.is_shard && of_context_setting && of_context_setting[0] &&
		!(ctx.set && !ctx.taken && strcmp(ctx.order_key, rq->key) == 0))
		context_from_setting(rq->key);
	rq->use_ctx = ctx.set && !ctx.taken && strcmp(ctx.order_key, rq->key) == 0;
	rq->action = rq->is_insert ? "created" : (rq->use_ctx ? ctx.action : "transition");
	rq->note = rq->use_ctx && ctx.note ? ctx.note :
		(of_reason_setting && of_reason_setting[0] ? of_reason_setting : NULL);
	if (rq->note != NULL && rq->note[0] == '\0')
		rq->note = NULL;
	rq->admin = of_is_admin();
	rq->actor = of_current_actor();
	rq->db_user = of_db_user();
	return true;
}

/* check_catalogue: the workflow knows the target state (and, for a new order, it is the initial one). */
static void
check_catalogue(Request *rq)
{
	OfWorkflow *wf = of_workflow(rq->ri->workflow);

	if (wf == NULL)
		refuse(rq->rel, ERRCODE_UNDEFINED_OBJECT, "order_flow_workflow",
			   errmsg("workflow \"%s\" of managed table %s does not exist", rq->ri->workflow, rq->ri->tbl));
	rq->to_st = of_state(rq->ri->workflow, rq->to);
	if (rq->to_st == NULL)
		refuse(rq->rel, ERRCODE_INVALID_TEXT_REPRESENTATION, "order_flow_unknown_state",
			   errmsg("\"%s\" is not a state of workflow \"%s\"", rq->to, rq->ri->workflow),
			   errhint("The closest states are %s.", of_closest_states(rq->to, rq->ri->workflow)));
	if (rq->is_insert && strcmp(wf->initial, rq->to) != 0 && !rq->admin)
		refuse(rq->rel, ERRCODE_CHECK_VIOLATION, "order_flow_initial_state",
			   errmsg("new order %s must start in state \"%s\", not \"%s\"", rq->key, wf->initial, rq->to),
			   errhint("Only order_flow administrators may insert orders in later states."));
}

typedef enum HeadVerdict
{
	HEAD_GO,					/* append the event */
	HEAD_NOTHING				/* nothing to record (see check_head) */
} HeadVerdict;

/*
 * check_head: the locked head against the request.  A new order's key
 * must be new (or a live order's, whose INSERT the table's unique key
 * decides: nothing is recorded); a move must start where the chain ends
 * (a drifted row set back to the chain's state records nothing).
 */
static HeadVerdict
check_head(Request *rq, OfChainHead *head)
{
	Relation	rel = rq->rel;

	if (!head->found)
	{
		if (!rq->is_insert)
			refuse(rel, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "order_flow_untracked",
				   errmsg("order %s of %s is not tracked by order_flow", rq->key, rq->ri->tbl),
				   errhint("Rows written while the trigger was disabled are not tracked; "
						   "call order_flow.unmanage() and order_flow.manage() to adopt them."));
		return HEAD_GO;
	}
	if (rq->is_insert)
	{
		if (head->tbl && strcmp(head->tbl, rq->ri->tbl) != 0)
			refuse(rel, ERRCODE_UNIQUE_VIOLATION, "order_flow_key_taken",
				   errmsg("order key %s is already used by an order of %s", rq->key, head->tbl),
				   errdetail("Order keys identify an order across the database."));
		if (head->state == NULL)
			refuse(rel, ERRCODE_UNIQUE_VIOLATION, "order_flow_key_deleted",
				   errmsg("order %s of %s was deleted; its key cannot be used again", rq->key, rq->ri->tbl),
				   errdetail("Its audit chain has " INT64_FORMAT " events and ends with its deletion.",
							 head->last_seq),
				   errhint("Give the new order a new key."));
		return HEAD_NOTHING;
	}
	if (head->state != NULL && (rq->from == NULL || strcmp(head->state, rq->from) != 0) &&
		strcmp(head->state, rq->to) == 0)
		return HEAD_NOTHING;
	if (head->state == NULL || rq->from == NULL || strcmp(head->state, rq->from) != 0)
		refuse(rel, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "order_flow_chain_drift",
			   errmsg("order %s is \"%s\" in %s but \"%s\" in its audit chain",
					  rq->key, rq->from ? rq->from : "NULL", rq->ri->tbl,
					  head->state ? head->state : "deleted"),
			   errdetail("The row was changed while the order_flow trigger was not running; "
						 "moves are checked against the audit chain."),
			   errhint("An order_flow administrator can record the drift with "
					   "order_flow.repair_drift('%s', '%s', 'reason'), or set the row back to \"%s\".",
					   rq->ri->tbl, rq->key, head->state ? head->state : "deleted"));
	return HEAD_GO;
}

/*
 * check_move: the edge from the chain's state (equal to the row's), the
 * actor's right to take it, its reason, and the business time.
 */
static void
check_move(Request *rq, OfChainHead *head)
{
	Relation	rel = rq->rel;
	const char *key = rq->key;

	rq->now = GetCurrentTimestamp();
	if (!rq->is_insert)
	{
		rq->from_st = of_state(rq->ri->workflow, rq->from);
		if (rq->from_st == NULL)
			refuse(rel, ERRCODE_CHECK_VIOLATION, "order_flow_transition",
				   errmsg("order %s is in state \"%s\", which workflow \"%s\" does not know",
						  key, rq->from, rq->ri->workflow));
		rq->edge = of_edge(rq->ri->workflow, rq->from, rq->to);
		if (rq->edge == NULL)
		{
			/* leaving a holding state: only back where the order came from */
			if (!rq->from_st->resumes_to_origin || head->held_from == NULL ||
				strcmp(head->held_from, rq->to) != 0)
				refuse(rel, ERRCODE_CHECK_VIOLATION, "order_flow_transition",
					   errmsg("invalid transition of order %s from \"%s\" to \"%s\"", key, rq->from, rq->to),
					   errdetail("Allowed next states: %s.",
								 allowed_next_text(rq->from_st,
												   rq->from_st->resumes_to_origin ? head->held_from : NULL)));
			rq->resume = true;
			rq->edge = of_edge(rq->ri->workflow, rq->to, rq->from);
		}
	}

	if (!rq->admin && rq->edge && rq->edge->nperformers > 0 &&
		!(rq->use_ctx && strcmp(rq->action, "import") == 0) &&
		!of_actor_in(rq->actor, rq->edge->performed_by, rq->edge->nperformers))
		refuse(rel, ERRCODE_INSUFFICIENT_PRIVILEGE, "order_flow_not_authorised",
			   errmsg("actor \"%s\" may not move order %s from \"%s\" to \"%s\"", rq->actor, key, rq->from, rq->to),
			   errdetail("This edge is taken by members of: %s.",
						 of_string_array_text(rq->edge->performed_by, rq->edge->nperformers)),
			   errhint("Add the actor to order_flow.member, or set order_flow.actor to the acting person."));
	if (rq->edge && !rq->resume && rq->edge->reason_required && rq->note == NULL)
		refuse(rel, ERRCODE_CHECK_VIOLATION, "order_flow_reason_required",
			   errmsg("moving order %s from \"%s\" to \"%s\" requires a reason", key, rq->from, rq->to),
			   rq->ri->shard.is_shard ?
			   errhint("Pass a note to order_flow.transition(), or SET LOCAL order_flow.reason before the UPDATE, "
					   "with citus.propagate_set_commands = 'local' (a session's SET does not reach the workers).") :
			   errhint("Pass a note to order_flow.transition(), or SET order_flow.reason before the UPDATE."));

	if (rq->use_ctx && ctx.has_occurred)
	{
		if (ctx.occurred_at > rq->now)
			refuse(rel, ERRCODE_INVALID_PARAMETER_VALUE, "order_flow_business_time",
				   errmsg("occurred_at %s of order %s lies in the future",
						  timestamptz_to_str(ctx.occurred_at), key));
		if (head->found && head->last_occurred != DT_NOBEGIN && ctx.occurred_at < head->last_occurred)
			refuse(rel, ERRCODE_INVALID_PARAMETER_VALUE, "order_flow_business_time",
				   errmsg("occurred_at %s of order %s runs backwards", timestamptz_to_str(ctx.occurred_at), key),
				   errdetail("The order's last event occurred at %s; import each order's history in time order.",
							 timestamptz_to_str(head->last_occurred)));
		rq->occurred = ctx.occurred_at;
	}
	else
		rq->occurred = rq->now;
}

/*
 * build_event: the captured attributes and customer, the details, and the
 * event itself, hashed onto the chain.  The details and the attributes are
 * written as JSON text (escaped here) and parsed once each by jsonb_in; the
 * details are rendered back to canonical text once, for the hash.
 */
static Jsonb *
build_event(Request *rq, OfChainHead *head, OfEvent *ev, uint8 *hash, Jsonb **attrs_out)
{
	TupleDesc	desc = RelationGetDescr(rq->rel);
	StringInfoData attrs;
	StringInfoData det;
	Jsonb	   *details;
	bool		isnull;

	initStringInfo(&attrs);
	appendStringInfoChar(&attrs, '{');
	for (int i = 0; i < rq->ri->nattrs; i++)
	{
		char	   *v = attribute_text(&rq->ri->attrs[i], rq->newtup, desc, &isnull);

		if (isnull)
			continue;
		if (attrs.len > 1)
			appendStringInfoChar(&attrs, ',');
		escape_json(&attrs, rq->ri->attrs[i].name);
		appendStringInfoChar(&attrs, ':');
		json_value(&attrs, &rq->ri->attrs[i], v);
	}
	appendStringInfoChar(&attrs, '}');
	rq->attrs = attrs.data;
	if (rq->ri->has_customer)
		rq->customer = column_text(&rq->ri->customer, rq->newtup, desc, &isnull);

	initStringInfo(&det);
	appendStringInfoString(&det, "{\"attributes\":");
	appendStringInfoString(&det, attrs.data);
	if (rq->customer)
	{
		appendStringInfoString(&det, ",\"customer\":");
		escape_json(&det, rq->customer);
	}
	if (rq->note)
	{
		appendStringInfoString(&det, ",\"note\":");
		escape_json(&det, rq->note);
	}
	if (rq->edge && rq->edge->exception_type && !rq->resume)
	{
		appendStringInfoString(&det, ",\"exception_type\":");
		escape_json(&det, rq->edge->exception_type);
	}
	if (rq->resume)
		appendStringInfoString(&det, ",\"resumed\":true");
	appendStringInfoChar(&det, '}');
	details = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(det.data)));

	/*
	 * The caller's details first: recorded facts (attributes, customer,
	 * note...) win.  An exception type comes from the rule only: a caller's
	 * own "exception_type" is dropped, so it cannot reach the metrics.
	 */
	if (rq->use_ctx && ctx.details)
	{
		Datum		caller = DirectFunctionCall1(jsonb_in, CStringGetDatum(ctx.details));

		caller = DirectFunctionCall2(jsonb_delete, caller, CStringGetTextDatum("exception_type"));
		details = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, caller, JsonbPGetDatum(details)));
	}
	*attrs_out = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(attrs.data)));

	ev->order_key = rq->key;
	ev->action = rq->action;
	ev->from_state = rq->from;
	ev->to_state = rq->to;
	ev->actor = rq->actor;
	ev->db_user = rq->db_user;
	ev->occurred_at = rq->occurred;
	ev->recorded_at = rq->now;
	ev->details = JsonbToCString(NULL, &details->root, VARSIZE(details));
	of_chain_link(ev, head, hash);
	return details;
}

/* head_change: what the move changes in the head besides its end */
static void
head_change(Request *rq, Jsonb *attrs, OfHeadChange *chg)
{
	OfWorkflow *wf = of_workflow(rq->ri->workflow);

	memset(chg, 0, sizeof(*chg));
	chg->moves = true;
	chg->held_from = rq->to_st->resumes_to_origin ? rq->from : NULL;
	chg->attributes = attrs;
	chg->customer = rq->customer;
	chg->tbl = rq->ri->tbl;
	chg->workflow = rq->ri->workflow;
	chg->stamp_col = -1;
	switch (rq->to_st->stamp)
	{
		case OF_STAMP_CONTRACT_SIGNED:
			chg->stamp_col = HEAD_SIGNED;
			break;
		case OF_STAMP_WAREHOUSE_CONFIRMED:
			chg->stamp_col = HEAD_WAREHOUSE;
			break;
		case OF_STAMP_FINANCE_APPROVED:
			chg->stamp_col = HEAD_FINANCE;
			break;
		case OF_STAMP_SHIPPED:
			chg->stamp_col = HEAD_SHIPPED;
			break;
		case OF_STAMP_NONE:
			break;
	}
	if (rq->to_st->category != 't' && rq->to_st->has_dwell && wf->has_reminder)
	{
		Datum		iv = DirectFunctionCall2(interval_mul, IntervalPGetDatum(&rq->to_st->max_dwell),
											 Float8GetDatum(wf->first_factor));

		chg->has_stale_after = true;
		chg->stale_after = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
																   TimestampTzGetDatum(rq->occurred), iv));
	}
}

/* payload_jsonb: the text in buf, closed with '}', as jsonb (buf is left as it was) */
static Jsonb *
payload_jsonb(StringInfo buf)
{
	int			len = buf->len;
	Jsonb	   *j;

	appendStringInfoChar(buf, '}');
	j = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf->data)));
	buf->len = len;
	buf->data[len] = '\0';
	return j;
}

/*
 * broadcast: a live move on an edge that notifies opens one notification
 * per department (deadline in the department's calendar), each with its
 * outbox message, and (unless order_flow.notify is off) a NOTIFY at commit.
 * The rows are written through the move's chain writer (chain/chain.c),
 * not a statement.  The payloads are the move's description plus the
 * department, level and deadline (and, in the outbox, the notification's
 * id): written as JSON text once, each parsed once.
 */
static void
broadcast(OfChainWriter *w, Request *rq, const OfEvent *ev)
{
	OfEdge	   *edge = rq->edge;
	TimestampTz *dls = palloc(sizeof(TimestampTz) * edge->nnotify);
	TimestampTz earliest = DT_NOEND;
	StringInfoData pl;
	int			base_len;

	for (int i = 0; i < edge->nnotify; i++)
	{
		dls[i] = department_deadline(edge->notify[i], rq->now, &edge->ack_within);
		earliest = Min(earliest, dls[i]);
	}
	of_note_deadline(earliest);

	initStringInfo(&pl);
	appendStringInfoString(&pl, "{\"order_key\":");
	escape_json(&pl, rq->key);
	appendStringInfoString(&pl, ",\"table\":");
	escape_json(&pl, rq->ri->tbl);
	appendStringInfoString(&pl, ",\"from_state\":");
	escape_json(&pl, rq->from);
	appendStringInfoString(&pl, ",\"to_state\":");
	escape_json(&pl, rq->to);
	appendStringInfoString(&pl, ",\"customer\":");
	if (rq->customer)
		escape_json(&pl, rq->customer);
	else
		appendStringInfoString(&pl, "null");
	appendStringInfoString(&pl, ",\"attributes\":");
	appendStringInfoString(&pl, rq->attrs);
	appendStringInfoString(&pl, ",\"actor\":");
	escape_json(&pl, rq->actor);
	base_len = pl.len;

	for (int i = 0; i < edge->nnotify; i++)
	{
		char		ts[MAXDATELEN + 1];
		int64		id;

		pl.len = base_len;
		pl.data[base_len] = '\0';
		appendStringInfoString(&pl, ",\"department\":");
		escape_json(&pl, edge->notify[i]);
		/* the deadline as jsonb_build_object() writes a timestamptz */
		appendStringInfo(&pl, ",\"level\":1,\"deadline\":\"%s\"",
						 JsonEncodeDateTime(ts, TimestampTzGetDatum(dls[i]), TIMESTAMPTZOID, NULL));
		id = of_chain_notification(w, ev, edge->notify[i], dls[i], payload_jsonb(&pl));
		appendStringInfo(&pl, ",\"notification_id\":" INT64_FORMAT, id);
		of_chain_outbox(w, ev, id, payload_jsonb(&pl));
	}

	/*
	 * Not on a Citus shard: no listener is connected to a worker, and a
	 * transaction that wrote to two workers could not PREPARE with a
	 * NOTIFY; the outbox carries the news.
	 */
	if (of_notify_enabled && !rq->ri->shard.is_shard)
	{
		StringInfoData msg;

		initStringInfo(&msg);
		appendStringInfoString(&msg, "{\"event\":\"transition\",\"order_key\":");
		escape_json(&msg, rq->key);
		appendStringInfoString(&msg, ",\"to_state\":");
		escape_json(&msg, rq->to);
		appendStringInfo(&msg, ",\"seq\":" INT64_FORMAT ",\"departments\":[", ev->seq);
		for (int i = 0; i < edge->nnotify; i++)
		{
			if (i > 0)
				appendStringInfoChar(&msg, ',');
			escape_json(&msg, edge->notify[i]);
		}
		appendStringInfoString(&msg, "]}");
		Async_Notify("order_flow", msg.data);
	}
}

/* ---- the trigger ---- */

/*
 * begin_chain: the writer of the chains of ri's orders: the extension's
 * tables, or on a Citus shard the companion shards beside it, with the
 * row's distribution value.
 */
static void
begin_chain(OfChainWriter *w, RelInfo *ri, HeapTuple tup, TupleDesc desc)
{
	OfChainTargets t;
	bool		isnull;

	if (!ri->shard.is_shard)
	{
		of_chain_begin(w);
		return;
	}
	memcpy(t.rel, ri->shard.rel, sizeof(t.rel));
	memcpy(t.logical, ri->shard.logical, sizeof(t.logical));
	t.dist = heap_getattr(tup, ri->shard.dist_att, desc, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("the distribution column of %s must not be null", ri->tbl)));
	of_chain_begin_at(w, &t);
}

static Datum transition_row(TriggerData *td);
static Datum delete_row(TriggerData *td);

PG_FUNCTION_INFO_V1(order_flow_transition_trigger);

/*
 * The trigger entry point: runs the transition (or the deletion); a
 * refusal is copied to the out-of-band queue (it will roll back with the
 * transaction) and re-raised.
 */
Datum
order_flow_transition_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	MemoryContext cxt = CurrentMemoryContext;
	Datum		result = (Datum) 0;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!TRIGGER_FIRED_BEFORE(td->tg_event) || TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("order_flow._transition_trigger() must be a BEFORE INSERT OR UPDATE OR DELETE row trigger")));

	/*
	 * Enabled ALWAYS (or REPLICA) and firing for a replicated row: on a
	 * logical replication subscriber the publisher's events arrive with
	 * the rows when the extension's tables are replicated too; running
	 * here would write a second history under another actor and open the
	 * notifications again.  Refuse rather than fork the chain.
	 */
	if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("order_flow's trigger on %s does not run for replicated rows (session_replication_role = replica)",
						RelationGetRelationName(td->tg_relation)),
				 errhint("Do not ENABLE ALWAYS the trigger %s on a subscriber: publish order_flow.tracked_order, "
						 "audit_log, notification and outbox with the table instead (README: Logical replication).",
						 td->tg_trigger->tgname)));

	memset(&attempt, 0, sizeof(attempt));
	refusing = false;
	PG_TRY();
	{
		result = TRIGGER_FIRED_BY_DELETE(td->tg_event) ? delete_row(td) : transition_row(td);
	}
	PG_CATCH();
	{
		if (refusing && of_shared != NULL)
		{
			ErrorData  *ed;

			MemoryContextSwitchTo(cxt);
			ed = CopyErrorData();
			push_refusal(ed);
			FreeErrorData(ed);
		}
		refusing = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
	return result;
}

/*
 * transition_row: one status change (or a new order), in named steps:
 * read the request -> check it against the catalogue -> lock the chain head
 * -> check it against the head -> build the event -> append it and move
 * the head -> broadcast.  The chain's writes run as the extension owner.
 */
static Datum
transition_row(TriggerData *td)
{
	Request		rq;
	OfChainWriter w;
	OfChainHead head;
	OfEvent		ev;
	uint8		hash[OF_HASH_LEN];
	Jsonb	   *details;
	Jsonb	   *attrs;
	OfHeadChange chg;
	OfUserSave	save;

	if (!read_request(td, &rq))
		return PointerGetDatum(rq.newtup);
	check_catalogue(&rq);

	of_become_owner(&save);
	begin_chain(&w, rq.ri, rq.newtup, RelationGetDescr(rq.rel));
	(void) of_chain_lock_head(&w, rq.key, &head);
	if (check_head(&rq, &head) == HEAD_NOTHING)
	{
		of_chain_end(&w);
		of_restore_user(&save);
		return PointerGetDatum(rq.newtup);
	}
	check_move(&rq, &head);
	details = build_event(&rq, &head, &ev, hash, &attrs);
	head_change(&rq, attrs, &chg);

	(void) of_chain_append_event(&w, &ev, details, hash);
	if (head.found)
		of_chain_move_head(&w, &ev, hash, &chg);
	else
		of_chain_create_head(&w, &ev, hash, &chg);

	/* live moves on an edge that notifies open the broadcast */
	if (head.found && rq.edge && !rq.resume && rq.edge->nnotify > 0 && strcmp(rq.action, "import") != 0)
		broadcast(&w, &rq, &ev);
	of_chain_end(&w);
	of_restore_user(&save);

	/* a shard's events are not in the extension's log the metrics fold reads */
	if (!rq.ri->shard.is_shard)
		of_metrics_after_append(rq.key, ev.seq);
	if (rq.use_ctx)
		ctx.taken = true;
	return PointerGetDatum(rq.newtup);
}

/*
 * delete_row: a managed order is deleted.  Its chain is ended by a
 * 'deleted' event (from its last state, by the acting person), its open
 * notifications are closed and its reminders stop; the head keeps a NULL
 * state, which refuses the key's reuse.  A row the extension never tracked
 * goes without a trace, as it came.
 */
static Datum
delete_row(TriggerData *td)
{
	Relation	rel = td->tg_relation;
	HeapTuple	oldtup = td->tg_trigtuple;
	RelInfo    *ri = get_relinfo(rel, td->tg_trigger);
	bool		isnull;
	char	   *key;
	OfChainWriter w;
	OfChainHead head;
	OfEvent		ev;
	uint8		hash[OF_HASH_LEN];
	StringInfoData det;
	Jsonb	   *details;
	OfHeadChange chg;
	OfUserSave	save;
	const char *note = of_reason_setting && of_reason_setting[0] ? of_reason_setting : NULL;
	Oid			types[3] = {TEXTOID, TIMESTAMPTZOID, TEXTOID};
	Datum		v[3];

	key = column_text(&ri->key, oldtup, RelationGetDescr(rel), &isnull);
	if (isnull)
		return PointerGetDatum(oldtup);
	note_attempt(ri->tbl, key, NULL, NULL);

	of_become_owner(&save);
	begin_chain(&w, ri, oldtup, RelationGetDescr(rel));
	if (!of_chain_lock_head(&w, key, &head) || head.state == NULL)
	{
		/* not tracked, or its deletion already recorded */
		of_chain_end(&w);
		of_restore_user(&save);
		return PointerGetDatum(oldtup);
	}

	initStringInfo(&det);
	appendStringInfo(&det, "{\"table\":");
	escape_json(&det, ri->tbl);
	if (note)
	{
		appendStringInfoString(&det, ",\"note\":");
		escape_json(&det, note);
	}
	appendStringInfoChar(&det, '}');
	details = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(det.data)));

	ev.order_key = key;
	ev.action = "deleted";
	ev.from_state = head.state;
	ev.to_state = NULL;
	ev.actor = of_current_actor();
	ev.db_user = of_db_user();
	ev.occurred_at = ev.recorded_at = GetCurrentTimestamp();
	ev.details = JsonbToCString(NULL, &details->root, VARSIZE(details));
	of_chain_link(&ev, &head, hash);

	memset(&chg, 0, sizeof(chg));
	chg.moves = true;			/* to no state: held_from, stale_after cleared */
	chg.stamp_col = -1;
	(void) of_chain_append_event(&w, &ev, details, hash);
	of_chain_move_head(&w, &ev, hash, &chg);
	of_chain_end(&w);

	v[0] = CStringGetTextDatum(key);
	v[1] = TimestampTzGetDatum(ev.recorded_at);
	v[2] = CStringGetTextDatum(ev.actor);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (ri->shard.is_shard)
	{
		/* on a Citus shard: the notifications in the companion shard beside it (of this tenant) */
		Oid			types4[4] = {TEXTOID, TIMESTAMPTZOID, TEXTOID,
								 TupleDescAttr(RelationGetDescr(rel), ri->shard.dist_att - 1)->atttypid};
		Datum		v4[4] = {v[0], v[1], v[2], heap_getattr(oldtup, ri->shard.dist_att, RelationGetDescr(rel), &isnull)};
		char	   *sql = psprintf("UPDATE %s SET status = 'closed', answered_at = $2, answered_by = $3"
								   " WHERE order_key OPERATOR(pg_catalog.=) $1 AND " OF_DIST_COLUMN " OPERATOR(pg_catalog.=) $4"
								   " AND status OPERATOR(pg_catalog.=) 'pending'",
								   quote_qualified_identifier(get_namespace_name(get_rel_namespace(ri->shard.rel[2])),
															  get_rel_name(ri->shard.rel[2])));

		if (SPI_execute_with_args(sql, 4, types4, v4, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not close the notifications of order %s", key);
	}
	else if (SPI_execute_plan(of_keep_plan(&close_plan,
								   "UPDATE order_flow.notification SET status = 'closed', answered_at = $2,"
								   " answered_by = $3 WHERE order_key OPERATOR(pg_catalog.=) $1"
								   " AND status OPERATOR(pg_catalog.=) 'pending'", 3, types),
						 v, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not close the notifications of order %s", key);
	SPI_finish();
	of_restore_user(&save);
	return PointerGetDatum(oldtup);
}
