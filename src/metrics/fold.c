/*-------------------------------------------------------------------------
 *
 * metrics/fold.c
 *	  The per-order rollup of the audit log (order_flow.order_fact and
 *	  order_flow.exception_fact) and how events are folded into it.
 *
 * The audit log is the single source of truth, but reading a million
 * orders' events for every report is far too slow, so each event a metric
 * depends on (metric_event) is folded into one row per order in
 * order_fact, and each exception event into exception_fact.
 *
 * Every fold is order-independent -- earliest time (LEAST), "ever" flags
 * (OR), counters and sums, and "the attributes of the event with the
 * highest sequence number" -- so the rollup is a pure function of the set
 * of events; order_flow.metrics_rebuild() recomputes it from scratch with
 * the same rules (its SQL calls the same JSON helpers as this file).
 *
 * When events are folded (from 1.2):
 *  - asynchronously, by default when a scheduler serves the database: the
 *    transition path only asks, at commit, for the scheduler to wake within
 *    OF_FOLD_DELAY_MS; the scheduler's order_flow.metrics_fold() recomputes,
 *    set-based in SQL (_metrics_fold_orders), the rows of every order with
 *    events recorded in a window of time that no running transaction can
 *    still write into;
 *  - synchronously, in the transaction that wrote the event, when no
 *    scheduler serves the database or order_flow.metrics_fold says 'sync':
 *    fold_order() here locks the order's watermark
 *    (order_flow.metrics_watermark: the highest sequence number folded) and
 *    folds the order's events above it, in sequence order, into the row.
 * Events of one order commit in sequence order (the chain head's lock
 * serialises them), so a watermark per order keeps both exact: no event is
 * folded twice, however often a window or a transaction asks, none is
 * skipped (a later event of the order folds the earlier ones too), and a
 * recomputation never replaces a row computed from more events.  Cached
 * sequences that commit out of order across orders, and aborted
 * transactions (their events are never visible), do not matter.
 *
 * Databases still at 1.0 or 1.1 keep their AFTER INSERT trigger
 * (order_flow._metrics_capture), which folds every event as it is written.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "metric_names.h"
#include "order_flow.h"
#include "compat.h"
#include "shmem.h"

/* ================================================================
 * JSON helpers shared by the trigger and metrics_rebuild()
 * ================================================================
 */

/* The value under key in an object container, or NULL. */
static JsonbValue *
jb_get(JsonbContainer *obj, const char *key)
{
	if (obj == NULL || !JsonContainerIsObject(obj))
		return NULL;
	return getKeyJsonValueFromContainer(obj, key, strlen(key), NULL);
}

/* The object container under key, or NULL. */
static JsonbContainer *
jb_object(JsonbContainer *obj, const char *key)
{
	JsonbValue *v = jb_get(obj, key);

	if (v == NULL || v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		return NULL;
	return v->val.binary.data;
}

/* A value as the ->> operator renders it (NULL for JSON null or absent). */
static char *
jb_text(JsonbValue *v)
{
	if (v == NULL)
		return NULL;
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		case jbvBinary:
			return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
		default:
			return NULL;
	}
}

/*
 * jb_number: a finite number from a JSON number or a numeric string; false
 * for anything else.  Never raises an error: a malformed attribute must not
 * make a transition fail.
 */
static bool
jb_number(JsonbValue *v, float8 *out)
{
	float8		d;

	if (v == NULL)
		return false;
	if (v->type == jbvNumeric)
		d = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
											   NumericGetDatum(v->val.numeric)));
	else if (v->type == jbvString && v->val.string.len > 0 && v->val.string.len < 64)
	{
		char		buf[64];
		char	   *end;

		memcpy(buf, v->val.string.val, v->val.string.len);
		buf[v->val.string.len] = '\0';
		errno = 0;
		d = strtod(buf, &end);
		while (*end == ' ')
			end++;
		if (end == buf || *end != '\0' || errno != 0)
			return false;
	}
	else
		return false;
	if (!isfinite(d))
		return false;
	*out = d;
	return true;
}

/* Does s begin YYYY-M(M)-D(D), followed by nothing, a space or a T? */
static bool
iso_date_prefix(const char *s)
{
	int			i = 0;

	for (; i < 4; i++)
		if (!isdigit((unsigned char) s[i]))
			return false;
	for (int part = 0; part < 2; part++)
	{
		int			digits = 0;

		if (s[i++] != '-')
			return false;
		while (isdigit((unsigned char) s[i]) && digits < 2)
			i++, digits++;
		if (digits == 0)
			return false;
	}
	return s[i] == '\0' || s[i] == ' ' || s[i] == 'T';
}

/*
 * jb_date: a date from a JSON string written as an ISO 8601 date,
 * YYYY-MM-DD (a time part after it is ignored); false for anything else.
 * Never raises an error.  Other forms are refused, not guessed: how
 * 03/04/2026 reads depends on the session's DateStyle, what "today" means
 * on its TimeZone, and the rollup must not depend on who folds it.
 */
static bool
jb_date(JsonbValue *v, DateADT *out)
{
	char		str[MAXDATELEN + 1];
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	int			tz;
	struct pg_tm tm;
	fsec_t		fsec;
	int			jd;

	if (v == NULL || v->type != jbvString || v->val.string.len == 0 ||
		v->val.string.len > MAXDATELEN)
		return false;
	memcpy(str, v->val.string.val, v->val.string.len);
	str[v->val.string.len] = '\0';
	if (!iso_date_prefix(str))
		return false;
	if (ParseDateTime(str, workbuf, sizeof(workbuf), field, ftype, MAXDATEFIELDS, &nf) != 0)
		return false;
	if (of_decode_datetime(field, ftype, nf, &dtype, &tm, &fsec, &tz) != 0 || dtype != DTK_DATE)
		return false;
	if (!IS_VALID_JULIAN(tm.tm_year, tm.tm_mon, tm.tm_mday))
		return false;
	jd = date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) - POSTGRES_EPOCH_JDATE;
	if (!IS_VALID_DATE(jd))
		return false;
	*out = (DateADT) jd;
	return true;
}

static JsonbValue *
jb_scalar_arg(FunctionCallInfo fcinfo, JsonbValue *buf)
{
	Jsonb	   *j;

	if (PG_ARGISNULL(0))
		return NULL;
	j = PG_GETARG_JSONB_P(0);
	if (!JB_ROOT_IS_SCALAR(j))
		return NULL;
	if (!JsonbExtractScalar(&j->root, buf))
		return NULL;
	return buf;
}

PG_FUNCTION_INFO_V1(order_flow_metric_number);

/*
 * _order_flow._metric_number(jsonb): a JSON number, or a string holding one,
 * as float8; NULL for anything else.  The same rule the trigger applies to
 * the amount attribute and to payment amounts.
 */
Datum
order_flow_metric_number(PG_FUNCTION_ARGS)
{
	JsonbValue	buf;
	float8		d;

	if (!jb_number(jb_scalar_arg(fcinfo, &buf), &d))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(d);
}

PG_FUNCTION_INFO_V1(order_flow_metric_date);

/*
 * _order_flow._metric_date(jsonb): a JSON string holding a date, as date;
 * NULL for anything else (never an error).  The same rule the trigger
 * applies to promised_ship_date, due_date and paid_date.
 */
Datum
order_flow_metric_date(PG_FUNCTION_ARGS)
{
	JsonbValue	buf;
	DateADT		d;

	if (!jb_date(jb_scalar_arg(fcinfo, &buf), &d))
		PG_RETURN_NULL();
	PG_RETURN_DATEADT(d);
}

/* ================================================================
 * The rollup trigger
 * ================================================================
 */

/* Parameters of the fold statements (each uses some), in order. */
enum
{
	F_KEY, F_EVENT_ID, F_SEQ, F_OCCURRED, F_REFRESH, F_CUSTOMER, F_REGION, F_CLASS,
	F_CATEGORY, F_AMOUNT, F_PROMISED, F_SIGNED, F_SHIPPED, F_LOGISTICS, F_DELIVERED,
	F_ACCEPTED, F_REWORK, F_EXCEPTION, F_ACTION, F_PAYMENTS, F_LATE, F_DUE_AMOUNT,
	F_ON_TIME_AMOUNT, F_SERVICE, F_COMPLAINTS,
	F_COUNT
};

static const Oid fold_types[F_COUNT] = {
	TEXTOID, INT8OID, INT8OID, TIMESTAMPTZOID, BOOLOID, TEXTOID, TEXTOID, TEXTOID,
	TEXTOID, FLOAT8OID, DATEOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	TIMESTAMPTZOID, BOOLOID, TEXTOID, TEXTOID, INT4OID, INT4OID, FLOAT8OID,
	FLOAT8OID, INT4OID, INT4OID
};

#define REFRESHES(col, param) \
	" " col " = CASE WHEN $5 AND $3 OPERATOR(pg_catalog.>=) f.attrs_seq" \
	" THEN " param " ELSE f." col " END"

/*
 * How an event folds into an existing row: attributes and customer come
 * from the state change with the highest sequence number; times are
 * earliest; flags are "ever"; the rest are sums.
 */
#define FOLD_SET \
	"  customer_key = CASE WHEN $5 AND $3 OPERATOR(pg_catalog.>=) f.attrs_seq AND $6 IS NOT NULL" \
	"    THEN $6 ELSE f.customer_key END," \
	"  attrs_seq = CASE WHEN $5 AND $3 OPERATOR(pg_catalog.>=) f.attrs_seq THEN $3" \
	"    ELSE f.attrs_seq END," \
	REFRESHES("region", "$7") "," \
	REFRESHES("customer_class", "$8") "," \
	REFRESHES("category", "$9") "," \
	REFRESHES("amount", "$10") "," \
	REFRESHES("promised_ship_date", "$11") "," \
	"  ordered_at = LEAST(f.ordered_at, $4)," \
	"  contract_signed_at = LEAST(f.contract_signed_at, $12)," \
	"  shipped_at = LEAST(f.shipped_at, $13)," \
	"  first_logistics_at = LEAST(f.first_logistics_at, $14)," \
	"  delivered_at = LEAST(f.delivered_at, $15)," \
	"  accepted_at = LEAST(f.accepted_at, $16)," \
	"  rework_return = f.rework_return OR $17," \
	"  exceptions = f.exceptions OPERATOR(pg_catalog.+) CASE WHEN $18 IS NULL THEN 0 ELSE 1 END," \
	"  payments = f.payments OPERATOR(pg_catalog.+) $20," \
	"  payments_late = f.payments_late OPERATOR(pg_catalog.+) $21," \
	"  payment_due_amount = f.payment_due_amount OPERATOR(pg_catalog.+) $22," \
	"  paid_on_time_amount = f.paid_on_time_amount OPERATOR(pg_catalog.+) $23," \
	"  service_requests = f.service_requests OPERATOR(pg_catalog.+) $24," \
	"  complaints = f.complaints OPERATOR(pg_catalog.+) $25"

/*
 * The statements of a fold, kept small so that starting each one is cheap
 * (this runs inside every transition that touches a metric):
 *   FOLD_UPDATE     the usual case: the order's row exists;
 *   FOLD_UPSERT     its first event (or an adopted order's first folded
 *                   one): insert, or fold into a row that appeared after all;
 *   FOLD_EXCEPTION  an exception event's row;
 *   FOLD_CUSTOMER   a business fact carries no customer: take the order's
 *                   from tracked_order while the row has none.  (A state
 *                   change without one comes from a table without a
 *                   customer column, whose tracked_order rows have none.)
 */
static const char *const fold_sql[] = {
	"UPDATE order_flow.order_fact f SET" FOLD_SET
	" WHERE f.order_key OPERATOR(pg_catalog.=) $1 RETURNING f.customer_key IS NULL, f.contract_signed_at",
	"INSERT INTO order_flow.order_fact AS f"
	"   (order_key, customer_key, attrs_seq, region, customer_class, category, amount,"
	"    promised_ship_date, ordered_at, contract_signed_at, shipped_at, first_logistics_at,"
	"    delivered_at, accepted_at, rework_return, exceptions, payments, payments_late,"
	"    payment_due_amount, paid_on_time_amount, service_requests, complaints)"
	" VALUES ($1, COALESCE($6, CASE WHEN NOT $5 THEN"
	"   (SELECT t.customer_key FROM order_flow.tracked_order t"
	"     WHERE t.order_key OPERATOR(pg_catalog.=) $1) END),"
	"   CASE WHEN $5 THEN $3 ELSE -1 END, $7, $8, $9, $10, $11, $4, $12, $13, $14, $15, $16,"
	"   $17, CASE WHEN $18 IS NULL THEN 0 ELSE 1 END, $20, $21, $22, $23, $24, $25)"
	" ON CONFLICT (order_key) DO UPDATE SET" FOLD_SET
	" RETURNING f.customer_key IS NULL, f.contract_signed_at",
	"INSERT INTO order_flow.exception_fact (order_key, event_id, exception_type, occurred_at, action)"
	" VALUES ($1, $2, $18, $4, $19)",
	"UPDATE order_flow.order_fact f SET customer_key ="
	"   (SELECT t.customer_key FROM order_flow.tracked_order t"
	"     WHERE t.order_key OPERATOR(pg_catalog.=) $1)"
	" WHERE f.order_key OPERATOR(pg_catalog.=) $1 AND f.customer_key IS NULL"
};

#define FOLD_UPDATE 0
#define FOLD_UPSERT 1
#define FOLD_EXCEPTION 2
#define FOLD_CUSTOMER 3
#define NFOLDS 4

static SPIPlanPtr fold_plans[NFOLDS];

static void
fold(int which, Datum *values, const char *nulls, const char *key, int64 event_id)
{
	int			ret;

	if (fold_plans[which] == NULL)
	{
		/* parameters never change the best plan: skip custom planning */
		SPIPlanPtr	p = SPI_prepare_cursor(fold_sql[which], F_COUNT, (Oid *) fold_types,
										   CURSOR_OPT_GENERIC_PLAN);

		if (p == NULL)
			elog(ERROR, "could not prepare order_flow metrics plan %d: %s", which,
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p))
			elog(ERROR, "could not keep order_flow metrics plan %d", which);
		fold_plans[which] = p;
	}
	ret = SPI_execute_plan(fold_plans[which], values, nulls, false, 0);
	if (ret < 0)
		elog(ERROR, "could not fold event " INT64_FORMAT " of order %s into the metrics: %s",
			 event_id, key, SPI_result_code_string(ret));
}

/*
 * The kpi() cache (order_flow.kpi_month, from version 1.1) holds one
 * aggregate state per complete UTC calendar month of contract signing.  An
 * event that changes what kpi() sees of an order signed in a month before
 * the transaction's own (now()) marks that month dirty in
 * order_flow.kpi_dirty; kpi() ignores a cached month with a mark newer
 * than the state, until order_flow.kpi_cache_refresh() rebuilds it.  The
 * refresh only builds months that ended before every running transaction
 * began, so a transaction that does not mark a month (its now() lies in
 * that month or earlier) cannot be missed; it locks kpi_dirty against
 * writers first, so marks being written are either committed before its
 * snapshot or numbered after its watermark.  (See kpi_cache_refresh.)
 */
static SPIPlanPtr dirty_plan = NULL;

/*
 * Months this transaction has already marked, so that a batch (an import,
 * an UPDATE of many old orders) writes one mark per month.  A mark made in
 * a subtransaction that rolls back is gone, so is its memo entry: entries
 * carry the subtransaction that made them, and subtransaction ids grow.
 */
#define MARK_MEMO	64
typedef struct MarkMemo
{
	TimestampTz month;
	SubTransactionId subid;
} MarkMemo;
static MarkMemo mark_memo[MARK_MEMO];
static TimestampTz xact_month_for = 0;	/* transaction start xact_month is of */
static TimestampTz xact_month = 0;
static int	mark_memo_n = 0;
static bool mark_callbacks = false;

static void
mark_memo_xact(XactEvent event, void *arg)
{
	mark_memo_n = 0;
}

static void
mark_memo_subxact(SubXactEvent event, SubTransactionId mySubid,
				  SubTransactionId parentSubid, void *arg)
{
	int			i,
				keep = 0;

	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	for (i = 0; i < mark_memo_n; i++)
		if (mark_memo[i].subid < mySubid)
			mark_memo[keep++] = mark_memo[i];
	mark_memo_n = keep;
}

/* The first instant of the UTC calendar month of t. */
static TimestampTz
utc_month_start(TimestampTz t)
{
	struct pg_tm tm;
	fsec_t		fsec;
	TimestampTz result;

	if (timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	if (tm2timestamp(&tm, 0, NULL, &result) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return result;
}

PG_FUNCTION_INFO_V1(order_flow_kpi_marks_spent);

/*
 * _order_flow._kpi_marks_spent(): kpi_cache_refresh() (or a truncated
 * rollup) has deleted this transaction's marks: forget them, so the next
 * change to one of those months is marked again.
 */
Datum
order_flow_kpi_marks_spent(PG_FUNCTION_ARGS)
{
	mark_memo_n = 0;
	PG_RETURN_VOID();
}

static void
kpi_mark_dirty(TimestampTz signed_at)
{
	TimestampTz month;
	Oid			nsp;
	Datum		v[1];
	int			ret;
	int			i;

	/*
	 * Nearly every fold lands here (signed orders): answer "this month or
	 * later" with one comparison against the transaction's month, worked
	 * out once per transaction.
	 */
	if (xact_month_for != GetCurrentTransactionStartTimestamp())
	{
		xact_month_for = GetCurrentTransactionStartTimestamp();
		xact_month = utc_month_start(xact_month_for);
	}
	if (TIMESTAMP_NOT_FINITE(signed_at) || signed_at >= xact_month)
		return;					/* never cached while this transaction runs */
	month = utc_month_start(signed_at);
	for (i = 0; i < mark_memo_n; i++)
		if (mark_memo[i].month == month)
			return;
	/* a 1.0 schema under a newer library has no cache to keep */
	nsp = get_namespace_oid("order_flow", true);
	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("kpi_dirty", nsp)))
		return;
	if (dirty_plan == NULL)
	{
		Oid			types[1] = {TIMESTAMPTZOID};
		SPIPlanPtr	p = SPI_prepare("INSERT INTO order_flow.kpi_dirty (month) VALUES ($1)", 1, types);

		if (p == NULL || SPI_keepplan(p))
			elog(ERROR, "could not prepare order_flow kpi cache mark: %s",
				 SPI_result_code_string(SPI_result));
		dirty_plan = p;
	}
	v[0] = TimestampTzGetDatum(month);
	ret = SPI_execute_plan(dirty_plan, v, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "could not mark the kpi cache of month %s dirty: %s",
			 timestamptz_to_str(month), SPI_result_code_string(ret));
	if (!mark_callbacks)
	{
		RegisterXactCallback(mark_memo_xact, NULL);
		RegisterSubXactCallback(mark_memo_subxact, NULL);
		mark_callbacks = true;
	}
	/* full: forget the oldest entry (that month is simply marked again) */
	if (mark_memo_n == MARK_MEMO)
	{
		memmove(mark_memo, mark_memo + 1, sizeof(MarkMemo) * (MARK_MEMO - 1));
		mark_memo_n--;
	}
	mark_memo[mark_memo_n].month = month;
	mark_memo[mark_memo_n].subid = GetCurrentSubTransactionId();
	mark_memo_n++;
}

/* the name lists of metric_names.h */
static const char *const metric_actions[] = {OF_METRIC_ACTIONS};
static const char *const metric_states[] = {OF_METRIC_STATES};
static const char *const rework_states[] = {OF_REWORK_STATES};
static const char *const rework_types[] = {OF_REWORK_TYPES};
static const char *const non_kpi_actions[] = {OF_NON_KPI_ACTIONS};

static bool
name_in(const char *name, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	return false;
}

static char *
tuple_text(HeapTuple tup, TupleDesc desc, const char *col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, SPI_fnumber(desc, col), &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

static void
set_text(Datum *values, char *nulls, int i, const char *s)
{
	if (s == NULL)
		return;
	values[i] = CStringGetTextDatum(s);
	nulls[i] = ' ';
}

static void
set_time(Datum *values, char *nulls, int i, TimestampTz t)
{
	values[i] = TimestampTzGetDatum(t);
	nulls[i] = ' ';
}

/* The date of a timestamp in UTC (as (ts AT TIME ZONE 'UTC')::date). */
static DateADT
utc_date(TimestampTz t)
{
	int64		days = t / USECS_PER_DAY;

	if (t < 0 && t % USECS_PER_DAY != 0)
		days--;
	return (DateADT) days;
}

/*
 * Does a metric depend on this event?  The order's first event, created,
 * business facts and carrier traces, and state changes into the states a
 * metric stamps or carrying an exception type.  (1.0 asked this in the
 * trigger's WHEN clause, which PostgreSQL parses and compiles again for
 * every statement that inserts into the log -- once per transition; asked
 * here it costs a few string compares.)
 */
static bool
metric_event(int64 seq, const char *action, bool state_change, const char *to,
			 JsonbContainer *root)
{
	if (seq == 1 || name_in(action, metric_actions, lengthof(metric_actions)))
		return true;
	if (!state_change)
		return false;
	if (name_in(to, metric_states, lengthof(metric_states)))
		return true;
	return jb_get(root, "exception_type") != NULL;
}

/*
 * fold_event: fold one event into the rollup.  metric_event() lets through
 * only what a metric needs: the order's first event, created, carrier
 * traces ('logistics'), business facts (payment, service_request,
 * complaint, exception), and state changes into contract_signed, shipped,
 * delivered, accepted, rework, returned or carrying an exception_type.
 * The caller has connected to SPI and switched to the extension owner.
 * Returns whether the event was one a metric needs.
 */
static bool
fold_event(const char *key, int64 event_id, int64 seq, const char *action, const char *from,
		   const char *to, TimestampTz occurred, Jsonb *details)
{
	JsonbContainer *root = NULL;
	JsonbContainer *attrs = NULL;
	bool		state_change;
	char	   *ex_type = NULL;
	bool		rework = false;
	Datum		values[F_COUNT];
	char		nulls[F_COUNT];
	bool		upserted;
	bool		no_customer = false;
	bool		has_signed = false;
	TimestampTz signed_at = 0;
	bool		isnull;
	Datum		d;

	if (details != NULL && JB_ROOT_IS_OBJECT(details))
		root = &details->root;
	if (action == NULL)
		action = "";
	state_change = to != NULL && (from == NULL || strcmp(from, to) != 0);
	if (!metric_event(seq, action, state_change, to, root))
		return false;

	memset(nulls, 'n', sizeof(nulls));
	values[F_KEY] = CStringGetTextDatum(key);
	nulls[F_KEY] = ' ';
	values[F_EVENT_ID] = Int64GetDatum(event_id);
	nulls[F_EVENT_ID] = ' ';
	values[F_SEQ] = Int64GetDatum(seq);
	nulls[F_SEQ] = ' ';
	set_time(values, nulls, F_OCCURRED, occurred);
	values[F_REFRESH] = BoolGetDatum(state_change);
	nulls[F_REFRESH] = ' ';
	set_text(values, nulls, F_ACTION, action);

	/* customer and captured attributes, from state changes only */
	if (state_change)
	{
		JsonbValue *v;
		float8		amount;
		DateADT		promised;
		char	   *cls;

		set_text(values, nulls, F_CUSTOMER, jb_text(jb_get(root, "customer")));
		attrs = jb_object(root, "attributes");
		set_text(values, nulls, F_REGION, jb_text(jb_get(attrs, "region")));
		cls = jb_text(jb_get(attrs, "customer_class"));
		if (cls == NULL)
			cls = jb_text(jb_get(attrs, "grade"));
		set_text(values, nulls, F_CLASS, cls);
		set_text(values, nulls, F_CATEGORY, jb_text(jb_get(attrs, "category")));
		if (jb_number(jb_get(attrs, "amount"), &amount))
		{
			values[F_AMOUNT] = Float8GetDatum(amount);
			nulls[F_AMOUNT] = ' ';
		}
		v = jb_get(attrs, "promised_ship_date");
		if (jb_date(v, &promised))
		{
			values[F_PROMISED] = DateADTGetDatum(promised);
			nulls[F_PROMISED] = ' ';
		}

		if (strcmp(to, OF_STATE_SIGNED) == 0)
			set_time(values, nulls, F_SIGNED, occurred);
		else if (strcmp(to, OF_STATE_SHIPPED) == 0)
		{
			set_time(values, nulls, F_SHIPPED, occurred);
			set_time(values, nulls, F_LOGISTICS, occurred);
		}
		else if (strcmp(to, OF_STATE_DELIVERED) == 0)
			set_time(values, nulls, F_DELIVERED, occurred);
		else if (strcmp(to, OF_STATE_ACCEPTED) == 0)
			set_time(values, nulls, F_ACCEPTED, occurred);
		else if (name_in(to, rework_states, lengthof(rework_states)))
			rework = true;
	}
	if (strcmp(action, OF_ACTION_LOGISTICS) == 0)
		set_time(values, nulls, F_LOGISTICS, occurred);

	/* exceptions: edges with an exception type, and exception records */
	if (state_change || strcmp(action, OF_ACTION_EXCEPTION) == 0)
	{
		ex_type = jb_text(jb_get(root, "exception_type"));
		if (ex_type != NULL && ex_type[0] == '\0')
			ex_type = NULL;
		if (ex_type != NULL)
		{
			set_text(values, nulls, F_EXCEPTION, ex_type);
			if (name_in(ex_type, rework_types, lengthof(rework_types)))
				rework = true;
		}
	}
	values[F_REWORK] = BoolGetDatum(rework);
	nulls[F_REWORK] = ' ';

	/* business facts */
	values[F_PAYMENTS] = values[F_LATE] = values[F_SERVICE] = values[F_COMPLAINTS] = Int32GetDatum(0);
	values[F_DUE_AMOUNT] = values[F_ON_TIME_AMOUNT] = Float8GetDatum(0.0);
	nulls[F_PAYMENTS] = nulls[F_LATE] = nulls[F_SERVICE] = nulls[F_COMPLAINTS] = ' ';
	nulls[F_DUE_AMOUNT] = nulls[F_ON_TIME_AMOUNT] = ' ';
	if (strcmp(action, OF_ACTION_PAYMENT) == 0)
	{
		float8		amount = 0.0;
		DateADT		due;
		DateADT		paid;

		values[F_PAYMENTS] = Int32GetDatum(1);
		(void) jb_number(jb_get(root, "amount"), &amount);
		if (!jb_date(jb_get(root, "paid_date"), &paid))
			paid = utc_date(occurred);
		if (jb_date(jb_get(root, "due_date"), &due))
		{
			values[F_DUE_AMOUNT] = Float8GetDatum(amount);
			if (paid <= due)
				values[F_ON_TIME_AMOUNT] = Float8GetDatum(amount);
			else
				values[F_LATE] = Int32GetDatum(1);
		}
	}
	else if (strcmp(action, OF_ACTION_SERVICE_REQUEST) == 0)
		values[F_SERVICE] = Int32GetDatum(1);
	else if (strcmp(action, OF_ACTION_COMPLAINT) == 0)
		values[F_COMPLAINTS] = Int32GetDatum(1);

	if (ex_type != NULL)
		fold(FOLD_EXCEPTION, values, nulls, key, event_id);
	fold(FOLD_UPDATE, values, nulls, key, event_id);
	upserted = SPI_processed == 0;
	if (upserted)
		fold(FOLD_UPSERT, values, nulls, key, event_id);
	if (SPI_processed == 1 && SPI_tuptable != NULL)
	{
		HeapTuple	row = SPI_tuptable->vals[0];

		no_customer = DatumGetBool(SPI_getbinval(row, SPI_tuptable->tupdesc, 1, &isnull)) && !isnull;
		d = SPI_getbinval(row, SPI_tuptable->tupdesc, 2, &has_signed);
		has_signed = !has_signed;
		if (has_signed)
			signed_at = DatumGetTimestampTz(d);
	}
	if (!upserted && !state_change && nulls[F_CUSTOMER] == 'n' && no_customer)
		fold(FOLD_CUSTOMER, values, nulls, key, event_id);
	/* payments, service requests, complaints and notes do not touch kpi() */
	if (has_signed && !name_in(action, non_kpi_actions, lengthof(non_kpi_actions)))
		kpi_mark_dirty(signed_at);
	return true;
}

PG_FUNCTION_INFO_V1(order_flow_metrics_capture);

/*
 * order_flow._metrics_capture(): the AFTER INSERT row trigger on audit_log
 * of versions 1.0 and 1.1, which folded every event in the transaction
 * that wrote it.  Kept for databases not yet updated; 1.2 folds through
 * of_metrics_after_append() instead and drops the trigger.
 */
Datum
order_flow_metrics_capture(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;
	char	   *key;
	int64		seq;
	int64		event_id;
	OfUserSave	save;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_BY_INSERT(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("order_flow._metrics_capture() must be an AFTER INSERT row trigger")));

	tup = td->tg_trigtuple;
	desc = RelationGetDescr(td->tg_relation);
	key = tuple_text(tup, desc, "order_key");
	if (key == NULL || strncmp(key, "order_flow:", 11) == 0)
		return PointerGetDatum(NULL);
	d = SPI_getbinval(tup, desc, SPI_fnumber(desc, "seq"), &isnull);
	seq = isnull ? 0 : DatumGetInt64(d);
	d = SPI_getbinval(tup, desc, SPI_fnumber(desc, "id"), &isnull);
	event_id = isnull ? 0 : DatumGetInt64(d);
	d = SPI_getbinval(tup, desc, SPI_fnumber(desc, "occurred_at"), &isnull);
	if (isnull)
		return PointerGetDatum(NULL);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	of_become_owner(&save);
	{
		bool		dnull;
		Datum		dd = SPI_getbinval(tup, desc, SPI_fnumber(desc, "details"), &dnull);

		(void) fold_event(key, event_id, seq, tuple_text(tup, desc, "action"),
						  tuple_text(tup, desc, "from_state"), tuple_text(tup, desc, "to_state"),
						  DatumGetTimestampTz(d), dnull ? NULL : DatumGetJsonbP(dd));
	}
	of_restore_user(&save);
	SPI_finish();
	return PointerGetDatum(NULL);
}

/* ================================================================
 * Folding by order, by window and on the transition path (1.2)
 * ================================================================
 */

static SPIPlanPtr gate_plan = NULL;
static SPIPlanPtr events_plan = NULL;
static SPIPlanPtr mark_plan = NULL;

/*
 * fold_order: fold the events of order key above its watermark, up to
 * sequence number upto, in order; returns how many were folded.  SPI is
 * connected and the extension owner is the current user.
 */
static int64
fold_order(const char *key, int64 upto)
{
	Oid			types[3] = {TEXTOID, INT8OID, INT8OID};
	Datum		v[3];
	bool		isnull;
	int64		folded_seq;
	int64		n = 0;
	SPITupleTable *events;
	uint64		nevents;

	v[0] = CStringGetTextDatum(key);
	v[1] = Int64GetDatum(upto);
	/*
	 * Lock the watermark (creating it at 0) and read it.  Not read-only: the
	 * events read next may have been written by the calling command.
	 */
	if (SPI_execute_plan(of_keep_plan(&gate_plan,
								   "INSERT INTO order_flow.metrics_watermark AS w (order_key, folded_seq)"
								   " VALUES ($1, 0) ON CONFLICT (order_key) DO UPDATE"
								   " SET folded_seq = w.folded_seq RETURNING w.folded_seq", 1, types),
						 v, NULL, false, 0) != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "could not lock the metrics watermark of order %s", key);
	folded_seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (folded_seq >= upto)
		return 0;

	v[1] = Int64GetDatum(folded_seq);
	v[2] = Int64GetDatum(upto);
	if (SPI_execute_plan(of_keep_plan(&events_plan,
								   "SELECT id, seq, action, from_state, to_state, occurred_at, details"
								   " FROM order_flow.audit_log WHERE order_key OPERATOR(pg_catalog.=) $1"
								   " AND seq OPERATOR(pg_catalog.>) $2 AND seq OPERATOR(pg_catalog.<=) $3"
								   " ORDER BY seq", 3, types),
						 v, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the events of order %s", key);
	events = SPI_tuptable;
	nevents = SPI_processed;
	for (uint64 i = 0; i < nevents; i++)
	{
		HeapTuple	t = events->vals[i];
		TupleDesc	td = events->tupdesc;
		bool		dnull;
		bool		onull;
		Datum		det = SPI_getbinval(t, td, 7, &dnull);
		Datum		occ = SPI_getbinval(t, td, 6, &onull);

		if (onull)
			continue;
		if (fold_event(key, DatumGetInt64(SPI_getbinval(t, td, 1, &isnull)),
					   DatumGetInt64(SPI_getbinval(t, td, 2, &isnull)),
					   tuple_text(t, td, "action"), tuple_text(t, td, "from_state"),
					   tuple_text(t, td, "to_state"), DatumGetTimestampTz(occ),
					   dnull ? NULL : DatumGetJsonbP(det)))
			n++;
	}
	SPI_freetuptable(events);
	if (SPI_execute_plan(of_keep_plan(&mark_plan,
								   "UPDATE order_flow.metrics_watermark SET folded_seq = $3"
								   " WHERE order_key OPERATOR(pg_catalog.=) $1", 3, types),
						 v, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not move the metrics watermark of order %s", key);
	return n;
}

/*
 * of_metrics_after_append: an event of order key with sequence number seq
 * was written by this transaction.  In a 1.2 database, fold it now (sync),
 * or ask the scheduler to fold it soon after commit (async).
 */
void
of_metrics_after_append(const char *key, int64 seq)
{
	OfUserSave	save;
	bool		sync;

	if (strncmp(key, "order_flow:", 11) == 0 || !of_catalog_async_fold())
		return;
	sync = of_metrics_fold_mode == OF_FOLD_SYNC ||
		(of_metrics_fold_mode == OF_FOLD_AUTO && !of_scheduler_serves());
	if (!sync)
	{
		of_fold_request(false);
		return;
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	of_become_owner(&save);
	(void) fold_order(key, seq);
	of_restore_user(&save);
	SPI_finish();
	/* the scheduler moves the fold's position past it (a no-op fold) */
	of_fold_request(false);
}

PG_FUNCTION_INFO_V1(order_flow_fold_catch_up_wanted);

/*
 * _order_flow._fold_catch_up_wanted(): statement trigger on the log and the
 * heads.  The extension's own paths write them without SQL statements; a
 * statement is a COPY by pg_restore or a DBA's own INSERT, whose events
 * the scheduler's window may not show (their recorded_at lies in the
 * past), so at commit the scheduler is asked to catch up.
 */
Datum
order_flow_fold_catch_up_wanted(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_order_flow._fold_catch_up_wanted() must be called as a trigger")));
	of_fold_request(true);
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(order_flow_kpi_mark);

/*
 * _order_flow._kpi_mark(signed_at): the set-based fold's way to the kpi()
 * cache marks, with the per-transaction memo of the per-event fold.
 */
Datum
order_flow_kpi_mark(PG_FUNCTION_ARGS)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	kpi_mark_dirty(PG_GETARG_TIMESTAMPTZ(0));
	SPI_finish();
	PG_RETURN_BOOL(true);
}
