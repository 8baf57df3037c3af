/*-------------------------------------------------------------------------
 *
 * transition.c
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
 * Cost per transition: the workflow graph comes from catalog.c's cache;
 * the column layout of each table is cached per relation OID (dropped on
 * its relcache invalidation); the writes are two saved SPI plans -- lock
 * the chain head, then one statement that inserts the event (and the
 * notifications and outbox rows) and moves the head.  They run as the
 * extension owner, since ordinary roles cannot write the log.
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
#include "shmem.h"

/* ---- per-relation column layout, cached by relation OID ---- */

typedef struct RelColumn
{
	AttrNumber	attnum;
	char		name[NAMEDATALEN];
	FmgrInfo	out;
	char		category;		/* pg_type.typcategory */
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
	ri->valid = true;
	return ri;
}

static char *
column_text(RelColumn *c, HeapTuple tup, TupleDesc desc, bool *isnull)
{
	Datum		d = heap_getattr(tup, c->attnum, desc, isnull);

	return *isnull ? NULL : OutputFunctionCall(&c->out, d);
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
 * order_flow._set_context(order_key, action, note, details, occurred_at):
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

		if (!OidIsValid(fn) || pg_proc_aclcheck(fn, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
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

PG_FUNCTION_INFO_V1(order_flow_take_context_result);

/*
 * order_flow._take_context_result(): did a trigger take the context (that
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

/* ---- the trigger ---- */

enum
{
	P_KEY, P_SEQ, P_ACTION, P_FROM, P_TO, P_ACTOR, P_DBUSER, P_OCCURRED, P_RECORDED,
	P_DETAILS, P_PREV, P_HASH, P_HELD, P_STAMP, P_ATTRS, P_CUSTOMER, P_TBL, P_WORKFLOW,
	P_NOTIFY, P_DEADLINES, P_PAYLOAD, P_STALE,
	P_COUNT
};

static const Oid param_types[P_COUNT] = {
	TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID,
	TIMESTAMPTZOID, JSONBOID, BYTEAOID, BYTEAOID, TEXTOID, TEXTOID, JSONBOID, TEXTOID,
	TEXTOID, TEXTOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, JSONBOID, TIMESTAMPTZOID
};

#define AUDIT_INSERT \
	"INSERT INTO order_flow.audit_log (order_key, seq, action, from_state, to_state, actor," \
	" db_user, occurred_at, recorded_at, details, prev_hash, hash)" \
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"

#define STAMP_SET(col, name) \
	" " col " = CASE WHEN $14 OPERATOR(pg_catalog.=) '" name "' THEN" \
	" COALESCE(" col ", $8) ELSE " col " END"

#define HEAD_UPDATE \
	"UPDATE order_flow.tracked_order SET last_seq = $2, last_hash = $12," \
	" last_occurred_at = $8, state = $5, entered_at = $8, held_from = $13," \
	" attributes = $15, customer_key = $16, tbl = $17, workflow = $18," \
	" reminder_level = 0, stale_after = $22," \
	STAMP_SET("contract_signed_at", "contract_signed") "," \
	STAMP_SET("warehouse_confirmed_at", "warehouse_confirmed") "," \
	STAMP_SET("finance_approved_at", "finance_approved") "," \
	STAMP_SET("shipped_at", "shipped") \
	" WHERE order_key OPERATOR(pg_catalog.=) $1"

static const char *const plan_sql[] = {
	/* 0: lock the chain head */
	"SELECT last_seq, last_hash, held_from, last_occurred_at, tbl, state"
	" FROM order_flow.tracked_order WHERE order_key OPERATOR(pg_catalog.=) $1"
	" FOR UPDATE",
	/* 1: move, no notifications */
	"WITH a AS (" AUDIT_INSERT ") " HEAD_UPDATE,
	/* 2: move and open notifications (one per department) with outbox rows */
	"WITH a AS (" AUDIT_INSERT "),"
	" n AS (INSERT INTO order_flow.notification (order_key, department, level, deadline, payload,"
	"   from_state, to_state, event_seq)"
	"   SELECT $1, x.d, 1, x.dl,"
	"     $21 OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('department', x.d, 'level', 1,"
	"       'deadline', x.dl),"
	"     $4, $5, $2 FROM ROWS FROM (pg_catalog.unnest($19), pg_catalog.unnest($20)) x(d, dl)"
	"   RETURNING id, department, payload),"
	" o AS (INSERT INTO order_flow.outbox (order_key, notification_id, payload)"
	"   SELECT $1, n.id, n.payload OPERATOR(pg_catalog.||)"
	"     pg_catalog.jsonb_build_object('notification_id', n.id) FROM n) "
	HEAD_UPDATE,
	/* 3: created: start tracking */
	"WITH a AS (" AUDIT_INSERT ")"
	" INSERT INTO order_flow.tracked_order (order_key, tbl, workflow, state, held_from, entered_at,"
	"   last_seq, last_hash, last_occurred_at, customer_key, attributes, created_at,"
	"   contract_signed_at, warehouse_confirmed_at, finance_approved_at, shipped_at, stale_after)"
	" SELECT $1, $17, $18, $5, $13, $8, $2, $12, $8, $16, $15, $8,"
	"   CASE WHEN $14 OPERATOR(pg_catalog.=) 'contract_signed' THEN $8 END,"
	"   CASE WHEN $14 OPERATOR(pg_catalog.=) 'warehouse_confirmed' THEN $8 END,"
	"   CASE WHEN $14 OPERATOR(pg_catalog.=) 'finance_approved' THEN $8 END,"
	"   CASE WHEN $14 OPERATOR(pg_catalog.=) 'shipped' THEN $8 END, $22",
	/* 4: deleted: end the chain, close open notifications, stop reminders */
	"WITH a AS (" AUDIT_INSERT "),"
	" n AS (UPDATE order_flow.notification SET status = 'closed', answered_at = $9,"
	"   answered_by = $6 WHERE order_key OPERATOR(pg_catalog.=) $1"
	"   AND status OPERATOR(pg_catalog.=) 'pending')"
	" UPDATE order_flow.tracked_order SET last_seq = $2, last_hash = $12,"
	" last_occurred_at = $8, state = NULL, held_from = NULL, entered_at = $8,"
	" reminder_level = 0, stale_after = NULL"
	" WHERE order_key OPERATOR(pg_catalog.=) $1"
};

#define PLAN_LOCK 0
#define PLAN_MOVE 1
#define PLAN_MOVE_NOTIFY 2
#define PLAN_CREATE 3
#define PLAN_DELETE 4
#define NPLANS 5

static SPIPlanPtr plans[NPLANS];

static SPIPlanPtr
get_plan(int which)
{
	if (plans[which] == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(plan_sql[which], P_COUNT, (Oid *) param_types);

		if (p == NULL)
			elog(ERROR, "could not prepare order_flow plan %d: %s", which,
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p))
			elog(ERROR, "could not keep order_flow plan %d", which);
		plans[which] = p;
	}
	return plans[which];
}

/*
 * refuse: raise a refusal with the given SQLSTATE and constraint name (the
 * name a client tells refusals apart by; the schema and table are those of
 * the managed table).  Kept in one place so every refusal of the
 * transition path is reported alike.
 */
#define refuse(rel, code, conname, ...) \
	ereport(ERROR, (errcode(code), errtableconstraint(rel, conname), __VA_ARGS__))

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

static SPIPlanPtr deadline_plan = NULL;

/*
 * department_deadline: start + span on the department's business calendar.
 * Always-open calendars (the default) need no query.
 */
static TimestampTz
department_deadline(const char *department, TimestampTz start, Interval *span)
{
	Datum		v[3];
	bool		isnull;
	Datum		d;

	if (of_department_always_open(department))
		return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
													   TimestampTzGetDatum(start),
													   IntervalPGetDatum(span)));
	if (deadline_plan == NULL)
	{
		Oid			t[3] = {TEXTOID, TIMESTAMPTZOID, INTERVALOID};

		deadline_plan = SPI_prepare("SELECT order_flow.department_deadline($1, $2, $3)", 3, t);
		if (deadline_plan == NULL || SPI_keepplan(deadline_plan))
			elog(ERROR, "could not prepare deadline plan");
	}
	v[0] = CStringGetTextDatum(department);
	v[1] = TimestampTzGetDatum(start);
	v[2] = IntervalPGetDatum(span);
	if (SPI_execute_plan(deadline_plan, v, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not compute deadline for department %s", department);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? DT_NOEND : DatumGetTimestampTz(d);
}

/* What the current firing is attempting, for the refusal record. */
static struct
{
	char		tbl[2 * NAMEDATALEN + 8];
	char		order_key[128];
	char		from_state[64];
	char		to_state[64];
} attempt;

static void
note_attempt(const char *tbl, const char *key, const char *from, const char *to)
{
	strlcpy(attempt.tbl, tbl ? tbl : "", sizeof(attempt.tbl));
	strlcpy(attempt.order_key, key ? key : "", sizeof(attempt.order_key));
	strlcpy(attempt.from_state, from ? from : "", sizeof(attempt.from_state));
	strlcpy(attempt.to_state, to ? to : "", sizeof(attempt.to_state));
}

static bool
is_refusal(int sqlerrcode)
{
	return sqlerrcode == ERRCODE_CHECK_VIOLATION ||
		sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE ||
		sqlerrcode == ERRCODE_INVALID_TEXT_REPRESENTATION ||
		sqlerrcode == ERRCODE_NOT_NULL_VIOLATION ||
		sqlerrcode == ERRCODE_FEATURE_NOT_SUPPORTED ||
		sqlerrcode == ERRCODE_INVALID_PARAMETER_VALUE ||
		sqlerrcode == ERRCODE_UNIQUE_VIOLATION ||
		sqlerrcode == ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
}

static Datum transition_row(FunctionCallInfo fcinfo);
static Datum delete_row(TriggerData *td);

PG_FUNCTION_INFO_V1(order_flow_transition_trigger);

/*
 * The trigger entry point: runs the transition; a refusal is copied to the
 * out-of-band queue (it will roll back with the transaction) and re-raised.
 */
Datum
order_flow_transition_trigger(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = CurrentMemoryContext;
	Datum		result = (Datum) 0;

	memset(&attempt, 0, sizeof(attempt));
	PG_TRY();
	{
		result = transition_row(fcinfo);
	}
	PG_CATCH();
	{
		if (of_shared != NULL)
		{
			ErrorData  *ed;
			OfRefusal	r;

			MemoryContextSwitchTo(cxt);
			ed = CopyErrorData();
			if (is_refusal(ed->sqlerrcode))
			{
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
			FreeErrorData(ed);
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
	return result;
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
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	oldtup = td->tg_trigtuple;
	RelInfo    *ri = get_relinfo(rel, td->tg_trigger);
	bool		isnull;
	char	   *key;
	char	   *chain_state = NULL;
	bytea	   *prev = NULL;
	bytea	   *hash;
	OfEvent		ev;
	uint8		h[OF_HASH_LEN];
	StringInfoData det;
	Jsonb	   *details;
	Datum		values[P_COUNT];
	char		nulls[P_COUNT];
	Oid			save_user;
	int			save_sec;
	int			ret;
	TimestampTz now = GetCurrentTimestamp();
	const char *note = of_reason_setting && of_reason_setting[0] ? of_reason_setting : NULL;

	key = column_text(&ri->key, oldtup, desc, &isnull);
	if (isnull)
		return PointerGetDatum(oldtup);
	note_attempt(ri->tbl, key, NULL, NULL);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(of_extension_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);

	memset(nulls, 'n', sizeof(nulls));
	values[P_KEY] = CStringGetTextDatum(key);
	nulls[P_KEY] = ' ';
	ret = SPI_execute_plan(get_plan(PLAN_LOCK), values, nulls, false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not lock order %s: %s", key, SPI_result_code_string(ret));
	if (SPI_processed == 1)
	{
		HeapTuple	t = SPI_tuptable->vals[0];
		TupleDesc	tdesc = SPI_tuptable->tupdesc;
		Datum		d;

		ev.seq = DatumGetInt64(SPI_getbinval(t, tdesc, 1, &isnull)) + 1;
		d = SPI_getbinval(t, tdesc, 2, &isnull);
		if (!isnull)
			prev = DatumGetByteaPCopy(d);
		d = SPI_getbinval(t, tdesc, 6, &isnull);
		chain_state = isnull ? NULL : TextDatumGetCString(d);
	}
	if (chain_state == NULL)
	{
		/* not tracked, or its deletion already recorded */
		SetUserIdAndSecContext(save_user, save_sec);
		SPI_finish();
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
	ev.from_state = chain_state;
	ev.to_state = NULL;
	ev.actor = of_current_actor();
	ev.db_user = of_db_user();
	ev.occurred_at = now;
	ev.recorded_at = now;
	ev.details = JsonbToCString(NULL, &details->root, VARSIZE(details));
	ev.prev_hash = prev ? (uint8 *) VARDATA_ANY(prev) : NULL;
	ev.prev_hash_len = prev ? VARSIZE_ANY_EXHDR(prev) : 0;
	of_event_hash(&ev, h);
	hash = palloc(VARHDRSZ + OF_HASH_LEN);
	SET_VARSIZE(hash, VARHDRSZ + OF_HASH_LEN);
	memcpy(VARDATA(hash), h, OF_HASH_LEN);

	values[P_SEQ] = Int64GetDatum(ev.seq);
	values[P_ACTION] = CStringGetTextDatum(ev.action);
	values[P_FROM] = CStringGetTextDatum(chain_state);
	values[P_ACTOR] = CStringGetTextDatum(ev.actor);
	values[P_DBUSER] = CStringGetTextDatum(ev.db_user);
	values[P_OCCURRED] = TimestampTzGetDatum(now);
	values[P_RECORDED] = TimestampTzGetDatum(now);
	values[P_DETAILS] = JsonbPGetDatum(details);
	values[P_HASH] = PointerGetDatum(hash);
	nulls[P_SEQ] = nulls[P_ACTION] = nulls[P_FROM] = nulls[P_ACTOR] = nulls[P_DBUSER] = ' ';
	nulls[P_OCCURRED] = nulls[P_RECORDED] = nulls[P_DETAILS] = nulls[P_HASH] = ' ';
	if (prev)
	{
		values[P_PREV] = PointerGetDatum(prev);
		nulls[P_PREV] = ' ';
	}
	ret = SPI_execute_plan(get_plan(PLAN_DELETE), values, nulls, false, 0);
	if (ret < 0 || SPI_processed != 1)
		elog(ERROR, "could not record deletion of order %s: %s", key, SPI_result_code_string(ret));

	SetUserIdAndSecContext(save_user, save_sec);
	SPI_finish();
	return PointerGetDatum(oldtup);
}

static Datum
transition_row(FunctionCallInfo fcinfo)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	HeapTuple	newtup;
	HeapTuple	oldtup = NULL;
	RelInfo    *ri;
	bool		is_insert;
	bool		isnull;
	char	   *key;
	char	   *from = NULL;
	char	   *to;
	OfState    *to_st;
	OfState    *from_st = NULL;
	OfEdge	   *edge = NULL;
	bool		resume = false;
	bool		admin;
	char	   *actor;
	char	   *db_user;
	bool		use_ctx;
	const char *action;
	const char *note;
	TimestampTz now;
	TimestampTz occurred;
	OfEvent		ev;
	uint8		h[OF_HASH_LEN];
	bytea	   *prev = NULL;
	bytea	   *hash;
	char	   *held_from_old = NULL;
	const char *held_from_new = NULL;
	char	   *customer = NULL;
	StringInfoData attrs;
	StringInfoData det;
	Jsonb	   *details;
	Jsonb	   *attrs_j;
	Datum		values[P_COUNT];
	char		nulls[P_COUNT];
	Oid			save_user;
	int			save_sec;
	int			which;
	int			ret;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!TRIGGER_FIRED_BEFORE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("order_flow._transition_trigger() must be a BEFORE INSERT OR UPDATE OR DELETE row trigger")));
	if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		return delete_row(td);
	if (!(TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("order_flow._transition_trigger() must be a BEFORE INSERT OR UPDATE OR DELETE row trigger")));

	rel = td->tg_relation;
	desc = RelationGetDescr(rel);
	is_insert = TRIGGER_FIRED_BY_INSERT(td->tg_event);
	newtup = is_insert ? td->tg_trigtuple : td->tg_newtuple;
	if (!is_insert)
		oldtup = td->tg_trigtuple;
	ri = get_relinfo(rel, td->tg_trigger);
	note_attempt(ri->tbl, NULL, NULL, NULL);

	key = column_text(&ri->key, newtup, desc, &isnull);
	if (isnull)
		refuse(rel, ERRCODE_NOT_NULL_VIOLATION, "order_flow_key_required",
			   errmsg("order key of %s must not be null", ri->tbl));
	if (strncmp(key, "order_flow:", 11) == 0)
		refuse(rel, ERRCODE_UNIQUE_VIOLATION, "order_flow_key_reserved",
			   errmsg("order key \"%s\" is reserved", key),
			   errdetail("Keys beginning with \"order_flow:\" name the extension's own audit chains."));
	to = column_text(&ri->status, newtup, desc, &isnull);
	if (isnull)
		refuse(rel, ERRCODE_NOT_NULL_VIOLATION, "order_flow_status_required",
			   errmsg("status of order %s must not be null", key),
			   errdetail("Column \"%s\" of %s is managed by order_flow.", ri->status.name, ri->tbl));

	note_attempt(ri->tbl, key, NULL, to);
	if (!is_insert)
	{
		char	   *oldkey = column_text(&ri->key, oldtup, desc, &isnull);

		if (isnull || strcmp(oldkey, key) != 0)
			refuse(rel, ERRCODE_FEATURE_NOT_SUPPORTED, "order_flow_key_immutable",
				   errmsg("order key of a managed order cannot change (%s to %s)",
						  isnull ? "NULL" : oldkey, key),
				   errdetail("The audit trail of an order is keyed by its order key."));
		from = column_text(&ri->status, oldtup, desc, &isnull);
		if (!isnull && strcmp(from, to) == 0)
			return PointerGetDatum(newtup);		/* not a transition */
		if (isnull)
			from = NULL;
	}
	note_attempt(ri->tbl, key, from, to);

	if (of_workflow(ri->workflow) == NULL)
		refuse(rel, ERRCODE_UNDEFINED_OBJECT, "order_flow_workflow",
			   errmsg("workflow \"%s\" of managed table %s does not exist", ri->workflow, ri->tbl));
	to_st = of_state(ri->workflow, to);
	if (to_st == NULL)
		refuse(rel, ERRCODE_INVALID_TEXT_REPRESENTATION, "order_flow_unknown_state",
			   errmsg("\"%s\" is not a state of workflow \"%s\"", to, ri->workflow),
			   errhint("The closest states are %s.", of_closest_states(to, ri->workflow)));

	use_ctx = ctx.set && !ctx.taken && strcmp(ctx.order_key, key) == 0;
	action = is_insert ? "created" : (use_ctx ? ctx.action : "transition");
	note = use_ctx && ctx.note ? ctx.note :
		(of_reason_setting && of_reason_setting[0] ? of_reason_setting : NULL);
	admin = of_is_admin();
	actor = of_current_actor();
	db_user = of_db_user();

	if (is_insert)
	{
		OfWorkflow *wf = of_workflow(ri->workflow);

		if (strcmp(wf->initial, to) != 0 && !admin)
			refuse(rel, ERRCODE_CHECK_VIOLATION, "order_flow_initial_state",
				   errmsg("new order %s must start in state \"%s\", not \"%s\"", key, wf->initial, to),
				   errhint("Only order_flow administrators may insert orders in later states."));
	}

	/* lock the chain head: serialises everything appended to this order */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(of_extension_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);

	memset(nulls, 'n', sizeof(nulls));
	values[P_KEY] = CStringGetTextDatum(key);
	nulls[P_KEY] = ' ';
	ret = SPI_execute_plan(get_plan(PLAN_LOCK), values, nulls, false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not lock order %s: %s", key, SPI_result_code_string(ret));
	if (SPI_processed == 1)
	{
		HeapTuple	t = SPI_tuptable->vals[0];
		TupleDesc	tdesc = SPI_tuptable->tupdesc;
		Datum		d;
		char	   *owner_tbl;
		char	   *chain_state;

		ev.seq = DatumGetInt64(SPI_getbinval(t, tdesc, 1, &isnull)) + 1;
		d = SPI_getbinval(t, tdesc, 2, &isnull);
		if (!isnull)
			prev = DatumGetByteaPCopy(d);
		d = SPI_getbinval(t, tdesc, 3, &isnull);
		held_from_old = isnull ? NULL : TextDatumGetCString(d);
		d = SPI_getbinval(t, tdesc, 4, &isnull);
		occurred = isnull ? DT_NOBEGIN : DatumGetTimestampTz(d);
		d = SPI_getbinval(t, tdesc, 5, &isnull);
		owner_tbl = isnull ? NULL : TextDatumGetCString(d);
		d = SPI_getbinval(t, tdesc, 6, &isnull);
		chain_state = isnull ? NULL : TextDatumGetCString(d);
		if (is_insert)
		{
			if (owner_tbl && strcmp(owner_tbl, ri->tbl) != 0)
				refuse(rel, ERRCODE_UNIQUE_VIOLATION, "order_flow_key_taken",
					   errmsg("order key %s is already used by an order of %s", key, owner_tbl),
					   errdetail("Order keys identify an order across the database."));
			if (chain_state == NULL)
				refuse(rel, ERRCODE_UNIQUE_VIOLATION, "order_flow_key_deleted",
					   errmsg("order %s of %s was deleted; its key cannot be used again", key, ri->tbl),
					   errdetail("Its audit chain has " INT64_FORMAT " events and ends with its deletion.",
								 ev.seq - 1),
					   errhint("Give the new order a new key."));

			/*
			 * The key is live: this INSERT will meet the table's unique key
			 * (an error, or an upsert's UPDATE, which this trigger then
			 * checks).  Nothing is recorded for it.
			 */
			SetUserIdAndSecContext(save_user, save_sec);
			SPI_finish();
			return PointerGetDatum(newtup);
		}
		if (chain_state != NULL && (from == NULL || strcmp(chain_state, from) != 0) &&
			strcmp(chain_state, to) == 0)
		{
			/* a drifted row set back to its chain's state: nothing happened */
			SetUserIdAndSecContext(save_user, save_sec);
			SPI_finish();
			return PointerGetDatum(newtup);
		}
		if (chain_state == NULL || from == NULL || strcmp(chain_state, from) != 0)
			refuse(rel, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "order_flow_chain_drift",
				   errmsg("order %s is \"%s\" in %s but \"%s\" in its audit chain",
						  key, from ? from : "NULL", ri->tbl, chain_state ? chain_state : "deleted"),
				   errdetail("The row was changed while the order_flow trigger was not running; "
							 "moves are checked against the audit chain."),
				   errhint("An order_flow administrator can record the drift with "
						   "order_flow.repair_drift('%s', '%s', 'reason'), or set the row back to \"%s\".",
						   ri->tbl, key, chain_state ? chain_state : "deleted"));
		which = PLAN_MOVE;
	}
	else
	{
		if (!is_insert)
			refuse(rel, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "order_flow_untracked",
				   errmsg("order %s of %s is not tracked by order_flow", key, ri->tbl),
				   errhint("Rows written while the trigger was disabled are not tracked; "
						   "call order_flow.unmanage() and order_flow.manage() to adopt them."));
		ev.seq = 1;
		occurred = DT_NOBEGIN;
		which = PLAN_CREATE;
	}

	/* validate the edge against the chain's state (equal to the row's) */
	if (!is_insert)
	{
		from_st = of_state(ri->workflow, from);
		if (from_st == NULL)
			refuse(rel, ERRCODE_CHECK_VIOLATION, "order_flow_transition",
				   errmsg("order %s is in state \"%s\", which workflow \"%s\" does not know",
						  key, from, ri->workflow));
		edge = of_edge(ri->workflow, from, to);
		if (edge == NULL)
		{
			/* leaving a holding state: only back where the order came from */
			if (!from_st->resumes_to_origin || held_from_old == NULL ||
				strcmp(held_from_old, to) != 0)
				refuse(rel, ERRCODE_CHECK_VIOLATION, "order_flow_transition",
					   errmsg("invalid transition of order %s from \"%s\" to \"%s\"", key, from, to),
					   errdetail("Allowed next states: %s.",
								 allowed_next_text(from_st, from_st->resumes_to_origin ? held_from_old : NULL)));
			resume = true;
			edge = of_edge(ri->workflow, to, from);		/* rights of the edge that held it */
		}
	}

	/* rights */
	if (!admin && edge && edge->nperformers > 0 &&
		!(use_ctx && strcmp(action, "import") == 0) &&
		!of_actor_in(actor, edge->performed_by, edge->nperformers))
		refuse(rel, ERRCODE_INSUFFICIENT_PRIVILEGE, "order_flow_not_authorised",
			   errmsg("actor \"%s\" may not move order %s from \"%s\" to \"%s\"", actor, key, from, to),
			   errdetail("This edge is taken by members of: %s.",
						 of_string_array_text(edge->performed_by, edge->nperformers)),
			   errhint("Add the actor to order_flow.member, or set order_flow.actor to the acting person."));
	if (note != NULL && note[0] == '\0')
		note = NULL;
	if (edge && !resume && edge->reason_required && note == NULL)
		refuse(rel, ERRCODE_CHECK_VIOLATION, "order_flow_reason_required",
			   errmsg("moving order %s from \"%s\" to \"%s\" requires a reason", key, from, to),
			   errhint("Pass a note to order_flow.transition(), or SET order_flow.reason before the UPDATE."));

	/* business time */
	now = GetCurrentTimestamp();
	if (use_ctx && ctx.has_occurred)
	{
		if (ctx.occurred_at > now)
			refuse(rel, ERRCODE_INVALID_PARAMETER_VALUE, "order_flow_business_time",
				   errmsg("occurred_at %s of order %s lies in the future",
						  timestamptz_to_str(ctx.occurred_at), key));
		if (occurred != DT_NOBEGIN && ctx.occurred_at < occurred)
			refuse(rel, ERRCODE_INVALID_PARAMETER_VALUE, "order_flow_business_time",
				   errmsg("occurred_at %s of order %s runs backwards", timestamptz_to_str(ctx.occurred_at), key),
				   errdetail("The order's last event occurred at %s; import each order's history in time order.",
							 timestamptz_to_str(occurred)));
		occurred = ctx.occurred_at;
	}
	else
		occurred = now;

	/* captured attributes and details */
	initStringInfo(&attrs);
	appendStringInfoChar(&attrs, '{');
	for (int i = 0; i < ri->nattrs; i++)
	{
		char	   *v = column_text(&ri->attrs[i], newtup, desc, &isnull);

		if (isnull)
			continue;
		if (attrs.len > 1)
			appendStringInfoChar(&attrs, ',');
		escape_json(&attrs, ri->attrs[i].name);
		appendStringInfoChar(&attrs, ':');
		json_value(&attrs, &ri->attrs[i], v);
	}
	appendStringInfoChar(&attrs, '}');
	if (ri->has_customer)
		customer = column_text(&ri->customer, newtup, desc, &isnull);

	initStringInfo(&det);
	appendStringInfoString(&det, "{\"attributes\":");
	appendStringInfoString(&det, attrs.data);
	if (customer)
	{
		appendStringInfoString(&det, ",\"customer\":");
		escape_json(&det, customer);
	}
	if (note)
	{
		appendStringInfoString(&det, ",\"note\":");
		escape_json(&det, note);
	}
	if (edge && edge->exception_type && !resume)
	{
		appendStringInfoString(&det, ",\"exception_type\":");
		escape_json(&det, edge->exception_type);
	}
	if (resume)
		appendStringInfoString(&det, ",\"resumed\":true");
	appendStringInfoChar(&det, '}');
	details = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(det.data)));
	/*
	 * The caller's details first: recorded facts (attributes, customer,
	 * note...) win.  An exception type comes from the rule only: a caller's
	 * own "exception_type" is dropped, so it cannot reach the metrics.
	 */
	if (use_ctx && ctx.details)
	{
		Datum		caller = DirectFunctionCall1(jsonb_in, CStringGetDatum(ctx.details));

		caller = DirectFunctionCall2(jsonb_delete, caller, CStringGetTextDatum("exception_type"));
		details = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, caller, JsonbPGetDatum(details)));
	}
	attrs_j = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(attrs.data)));

	/* the event and its hash */
	ev.order_key = key;
	ev.action = action;
	ev.from_state = from;
	ev.to_state = to;
	ev.actor = actor;
	ev.db_user = db_user;
	ev.occurred_at = occurred;
	ev.recorded_at = now;
	ev.details = JsonbToCString(NULL, &details->root, VARSIZE(details));
	ev.prev_hash = prev ? (uint8 *) VARDATA_ANY(prev) : NULL;
	ev.prev_hash_len = prev ? VARSIZE_ANY_EXHDR(prev) : 0;
	of_event_hash(&ev, h);
	hash = palloc(VARHDRSZ + OF_HASH_LEN);
	SET_VARSIZE(hash, VARHDRSZ + OF_HASH_LEN);
	memcpy(VARDATA(hash), h, OF_HASH_LEN);

	if (to_st->resumes_to_origin)
		held_from_new = from;
	else
		held_from_new = NULL;

	memset(nulls, ' ', sizeof(nulls));
	values[P_KEY] = CStringGetTextDatum(key);
	values[P_SEQ] = Int64GetDatum(ev.seq);
	values[P_ACTION] = CStringGetTextDatum(action);
	if (from)
		values[P_FROM] = CStringGetTextDatum(from);
	else
		nulls[P_FROM] = 'n';
	values[P_TO] = CStringGetTextDatum(to);
	values[P_ACTOR] = CStringGetTextDatum(actor);
	values[P_DBUSER] = CStringGetTextDatum(db_user);
	values[P_OCCURRED] = TimestampTzGetDatum(occurred);
	values[P_RECORDED] = TimestampTzGetDatum(now);
	values[P_DETAILS] = JsonbPGetDatum(details);
	if (prev)
		values[P_PREV] = PointerGetDatum(prev);
	else
		nulls[P_PREV] = 'n';
	values[P_HASH] = PointerGetDatum(hash);
	if (held_from_new)
		values[P_HELD] = CStringGetTextDatum(held_from_new);
	else
		nulls[P_HELD] = 'n';
	if (to_st->stamp != OF_STAMP_NONE)
		values[P_STAMP] = CStringGetTextDatum(of_stamp_name(to_st->stamp));
	else
		nulls[P_STAMP] = 'n';
	values[P_ATTRS] = JsonbPGetDatum(attrs_j);
	if (customer)
		values[P_CUSTOMER] = CStringGetTextDatum(customer);
	else
		nulls[P_CUSTOMER] = 'n';
	values[P_TBL] = CStringGetTextDatum(ri->tbl);
	values[P_WORKFLOW] = CStringGetTextDatum(ri->workflow);
	nulls[P_NOTIFY] = nulls[P_DEADLINES] = nulls[P_PAYLOAD] = 'n';
	{
		OfWorkflow *wf = of_workflow(ri->workflow);

		if (to_st->category != 't' && to_st->has_dwell && wf->has_reminder)
		{
			Datum		iv = DirectFunctionCall2(interval_mul, IntervalPGetDatum(&to_st->max_dwell),
												 Float8GetDatum(wf->first_factor));

			values[P_STALE] = DirectFunctionCall2(timestamptz_pl_interval,
												  TimestampTzGetDatum(occurred), iv);
		}
		else
			nulls[P_STALE] = 'n';
	}

	/* live transitions on an edge that notifies open the broadcast */
	if (which == PLAN_MOVE && edge && !resume && edge->nnotify > 0 && strcmp(action, "import") != 0)
	{
		Datum	   *elems = palloc(sizeof(Datum) * edge->nnotify);
		Datum	   *dls = palloc(sizeof(Datum) * edge->nnotify);
		TimestampTz earliest = DT_NOEND;
		StringInfoData pl;

		for (int i = 0; i < edge->nnotify; i++)
		{
			TimestampTz dl;

			elems[i] = CStringGetTextDatum(edge->notify[i]);
			dl = department_deadline(edge->notify[i], now, &edge->ack_within);
			dls[i] = TimestampTzGetDatum(dl);
			earliest = Min(earliest, dl);
		}
		values[P_NOTIFY] = PointerGetDatum(construct_array(elems, edge->nnotify, TEXTOID, -1, false, TYPALIGN_INT));
		values[P_DEADLINES] = PointerGetDatum(construct_array(dls, edge->nnotify, TIMESTAMPTZOID,
															  sizeof(TimestampTz), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		of_note_deadline(earliest);
		initStringInfo(&pl);
		appendStringInfoString(&pl, "{\"order_key\":");
		escape_json(&pl, key);
		appendStringInfoString(&pl, ",\"table\":");
		escape_json(&pl, ri->tbl);
		appendStringInfoString(&pl, ",\"from_state\":");
		escape_json(&pl, from);
		appendStringInfoString(&pl, ",\"to_state\":");
		escape_json(&pl, to);
		appendStringInfoString(&pl, ",\"customer\":");
		if (customer)
			escape_json(&pl, customer);
		else
			appendStringInfoString(&pl, "null");
		appendStringInfoString(&pl, ",\"attributes\":");
		appendStringInfoString(&pl, attrs.data);
		appendStringInfoString(&pl, ",\"actor\":");
		escape_json(&pl, actor);
		appendStringInfoChar(&pl, '}');
		values[P_PAYLOAD] = DirectFunctionCall1(jsonb_in, CStringGetDatum(pl.data));
		nulls[P_NOTIFY] = nulls[P_DEADLINES] = nulls[P_PAYLOAD] = ' ';
		which = PLAN_MOVE_NOTIFY;
	}

	ret = SPI_execute_plan(get_plan(which), values, nulls, false, 0);
	if (ret < 0 || SPI_processed != 1)
		elog(ERROR, "could not record transition of order %s: %s", key, SPI_result_code_string(ret));

	if (which == PLAN_MOVE_NOTIFY && of_notify_enabled)
	{
		StringInfoData msg;

		initStringInfo(&msg);
		appendStringInfoString(&msg, "{\"event\":\"transition\",\"order_key\":");
		escape_json(&msg, key);
		appendStringInfoString(&msg, ",\"to_state\":");
		escape_json(&msg, to);
		appendStringInfo(&msg, ",\"seq\":" INT64_FORMAT ",\"departments\":", ev.seq);
		escape_json(&msg, of_string_array_text(edge->notify, edge->nnotify));
		appendStringInfoChar(&msg, '}');
		Async_Notify("order_flow", msg.data);
	}

	SetUserIdAndSecContext(save_user, save_sec);
	SPI_finish();
	of_metrics_after_append(key, ev.seq);

	if (use_ctx)
		ctx.taken = true;
	return PointerGetDatum(newtup);
}
