/*-------------------------------------------------------------------------
 *
 * metrics.c
 *	  Management metrics: the per-order rollup that the audit log keeps up
 *	  to date, and the C aggregates behind customer_health and kpi().
 *
 * The audit log is the single source of truth, but reading a million
 * orders' events for every report is far too slow.  An AFTER INSERT row
 * trigger on order_flow.audit_log (order_flow._metrics_capture), filtered
 * by a WHEN clause to the few events a metric depends on, folds each such
 * event into one row per order in order_flow.order_fact and each exception
 * event into order_flow.exception_fact.
 *
 * Every fold is order-independent -- earliest time (LEAST), "ever" flags
 * (OR), counters and sums, and "the attributes of the event with the
 * highest sequence number" -- so the rollup is a pure function of the set
 * of events.  Replaying the log in any order gives the same rows: a
 * pg_restore that reloads audit_log by COPY fires this trigger and rebuilds
 * the rollup, and order_flow.metrics_rebuild() recomputes it from scratch
 * with the same rules (its SQL calls the same JSON helpers as this file).
 * Both tables are keyed, and distributable, by order key.  The events of
 * one order are already serialised by the lock on its chain head, so the
 * trigger never waits for another order and never contends on a shared
 * counter row.
 *
 * Aggregates -- each with combine, serial and deserial functions and
 * declared PARALLEL SAFE; the internal states live in the aggregate memory
 * context, and a combine function copies what it takes from its second
 * argument, never keeping a pointer to it:
 *	 rhythm   order_frequency, order_volatility, order_value_trend and
 *			  monthly_orders share one state: per calendar month (session
 *			  time zone, like date_trunc('month', ...)) the number of orders
 *			  and their value, for the month of an as-of instant and the 12
 *			  months before it;
 *	 breadth  exact number of distinct non-null text values (bytewise);
 *	 median   continuous median, identical to percentile_cont(0.5).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "order_flow.h"

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

/*
 * jb_date: a date from a JSON string in any form date input accepts (a
 * time part is ignored); false for anything else.  Never raises an error.
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
	if (ParseDateTime(str, workbuf, sizeof(workbuf), field, ftype, MAXDATEFIELDS, &nf) != 0)
		return false;
	if (DecodeDateTime(field, ftype, nf, &dtype, &tm, &fsec, &tz) != 0 || dtype != DTK_DATE)
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
 * order_flow._metric_number(jsonb): a JSON number, or a string holding one,
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
 * order_flow._metric_date(jsonb): a JSON string holding a date, as date;
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

/* Parameters of the fold statement, in order. */
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
 * One statement per folded event: the exception row (if any), then an
 * upsert of the order's fact row.  Attributes and customer come from the
 * state change with the highest sequence number; times are earliest;
 * flags are "ever"; the rest are sums.
 */
static const char fold_sql[] =
"WITH x AS (INSERT INTO order_flow.exception_fact"
"   (order_key, event_id, exception_type, occurred_at, action)"
"   SELECT $1, $2, $18, $4, $19 WHERE $18 IS NOT NULL)"
" INSERT INTO order_flow.order_fact AS f"
"   (order_key, customer_key, attrs_seq, region, customer_class, category, amount,"
"    promised_ship_date, ordered_at, contract_signed_at, shipped_at, first_logistics_at,"
"    delivered_at, accepted_at, rework_return, exceptions, payments, payments_late,"
"    payment_due_amount, paid_on_time_amount, service_requests, complaints)"
" VALUES ($1, COALESCE($6, (SELECT t.customer_key FROM order_flow.tracked_order t"
"                           WHERE t.order_key OPERATOR(pg_catalog.=) $1)),"
"   CASE WHEN $5 THEN $3 ELSE -1 END, $7, $8, $9, $10, $11, $4, $12, $13, $14, $15, $16,"
"   $17, CASE WHEN $18 IS NULL THEN 0 ELSE 1 END, $20, $21, $22, $23, $24, $25)"
" ON CONFLICT (order_key) DO UPDATE SET"
"  customer_key = CASE WHEN $5 AND $3 OPERATOR(pg_catalog.>=) f.attrs_seq AND $6 IS NOT NULL"
"    THEN $6 WHEN f.customer_key IS NULL THEN excluded.customer_key ELSE f.customer_key END,"
"  attrs_seq = CASE WHEN $5 AND $3 OPERATOR(pg_catalog.>=) f.attrs_seq THEN $3"
"    ELSE f.attrs_seq END,"
REFRESHES("region", "$7") ","
REFRESHES("customer_class", "$8") ","
REFRESHES("category", "$9") ","
REFRESHES("amount", "$10") ","
REFRESHES("promised_ship_date", "$11") ","
"  ordered_at = LEAST(f.ordered_at, $4),"
"  contract_signed_at = LEAST(f.contract_signed_at, $12),"
"  shipped_at = LEAST(f.shipped_at, $13),"
"  first_logistics_at = LEAST(f.first_logistics_at, $14),"
"  delivered_at = LEAST(f.delivered_at, $15),"
"  accepted_at = LEAST(f.accepted_at, $16),"
"  rework_return = f.rework_return OR $17,"
"  exceptions = f.exceptions OPERATOR(pg_catalog.+) excluded.exceptions,"
"  payments = f.payments OPERATOR(pg_catalog.+) $20,"
"  payments_late = f.payments_late OPERATOR(pg_catalog.+) $21,"
"  payment_due_amount = f.payment_due_amount OPERATOR(pg_catalog.+) $22,"
"  paid_on_time_amount = f.paid_on_time_amount OPERATOR(pg_catalog.+) $23,"
"  service_requests = f.service_requests OPERATOR(pg_catalog.+) $24,"
"  complaints = f.complaints OPERATOR(pg_catalog.+) $25";

static SPIPlanPtr fold_plan = NULL;

/* Exception types that mean the delivery was not right the first time. */
static bool
is_rework_type(const char *t)
{
	return strcmp(t, "rework") == 0 || strcmp(t, "return") == 0 ||
		strcmp(t, "returned") == 0 || strcmp(t, "reshipment") == 0;
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

PG_FUNCTION_INFO_V1(order_flow_metrics_capture);

/*
 * order_flow._metrics_capture(): AFTER INSERT row trigger on audit_log.
 *
 * The trigger's WHEN clause lets through only what a metric needs: the
 * order's first event, created, carrier traces ('logistics'), business
 * facts (payment, service_request, complaint, exception), and state changes
 * into contract_signed, shipped, delivered, accepted, rework, returned or
 * carrying an exception_type.  Pseudo orders ('order_flow:...') are
 * skipped.  Writes run as the extension owner, like the transition path.
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
	char	   *action;
	char	   *from;
	char	   *to;
	int64		seq;
	int64		event_id;
	TimestampTz occurred;
	Jsonb	   *details = NULL;
	JsonbContainer *root = NULL;
	JsonbContainer *attrs = NULL;
	bool		state_change;
	char	   *ex_type = NULL;
	bool		rework = false;
	Datum		values[F_COUNT];
	char		nulls[F_COUNT];
	Oid			save_user;
	int			save_sec;
	int			ret;

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
	action = tuple_text(tup, desc, "action");
	from = tuple_text(tup, desc, "from_state");
	to = tuple_text(tup, desc, "to_state");
	d = SPI_getbinval(tup, desc, SPI_fnumber(desc, "seq"), &isnull);
	seq = isnull ? 0 : DatumGetInt64(d);
	d = SPI_getbinval(tup, desc, SPI_fnumber(desc, "id"), &isnull);
	event_id = isnull ? 0 : DatumGetInt64(d);
	d = SPI_getbinval(tup, desc, SPI_fnumber(desc, "occurred_at"), &isnull);
	if (isnull)
		return PointerGetDatum(NULL);
	occurred = DatumGetTimestampTz(d);
	d = SPI_getbinval(tup, desc, SPI_fnumber(desc, "details"), &isnull);
	if (!isnull)
	{
		details = DatumGetJsonbP(d);
		if (JB_ROOT_IS_OBJECT(details))
			root = &details->root;
	}
	if (action == NULL)
		action = "";
	state_change = to != NULL && (from == NULL || strcmp(from, to) != 0);

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

		if (strcmp(to, "contract_signed") == 0)
			set_time(values, nulls, F_SIGNED, occurred);
		else if (strcmp(to, "shipped") == 0)
		{
			set_time(values, nulls, F_SHIPPED, occurred);
			set_time(values, nulls, F_LOGISTICS, occurred);
		}
		else if (strcmp(to, "delivered") == 0)
			set_time(values, nulls, F_DELIVERED, occurred);
		else if (strcmp(to, "accepted") == 0)
			set_time(values, nulls, F_ACCEPTED, occurred);
		else if (strcmp(to, "rework") == 0 || strcmp(to, "returned") == 0)
			rework = true;
	}
	if (strcmp(action, "logistics") == 0)
		set_time(values, nulls, F_LOGISTICS, occurred);

	/* exceptions: edges with an exception type, and exception records */
	if (state_change || strcmp(action, "exception") == 0)
	{
		ex_type = jb_text(jb_get(root, "exception_type"));
		if (ex_type != NULL && ex_type[0] == '\0')
			ex_type = NULL;
		if (ex_type != NULL)
		{
			set_text(values, nulls, F_EXCEPTION, ex_type);
			if (is_rework_type(ex_type))
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
	if (strcmp(action, "payment") == 0)
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
	else if (strcmp(action, "service_request") == 0)
		values[F_SERVICE] = Int32GetDatum(1);
	else if (strcmp(action, "complaint") == 0)
		values[F_COMPLAINTS] = Int32GetDatum(1);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(of_extension_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
	if (fold_plan == NULL)
	{
		/* parameters never change the best plan: skip custom planning */
		SPIPlanPtr	p = SPI_prepare_cursor(fold_sql, F_COUNT, (Oid *) fold_types,
										   CURSOR_OPT_GENERIC_PLAN);

		if (p == NULL)
			elog(ERROR, "could not prepare order_flow metrics plan: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p))
			elog(ERROR, "could not keep order_flow metrics plan");
		fold_plan = p;
	}
	ret = SPI_execute_plan(fold_plan, values, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "could not fold event " INT64_FORMAT " of order %s into the metrics: %s",
			 event_id, key, SPI_result_code_string(ret));
	SetUserIdAndSecContext(save_user, save_sec);
	SPI_finish();
	return PointerGetDatum(NULL);
}

/* ================================================================
 * Order rhythm: orders and order value per calendar month
 * ================================================================
 */

#define RHYTHM_MONTHS 12

/*
 * edge[0] is the start of the month after as_of's; edge[k + 1] the start of
 * the month k months before as_of's.  A row at ts counts in bucket k when
 * edge[k + 1] <= ts < edge[k]: bucket 0 is as_of's (partial) month, buckets
 * 1..12 the complete months before it.
 */
typedef struct RhythmState
{
	TimestampTz as_of;
	TimestampTz edge[RHYTHM_MONTHS + 2];
	int64		count[RHYTHM_MONTHS + 1];
	float8		value[RHYTHM_MONTHS + 1];
} RhythmState;

/* Start of a month (year * 12 + month - 1) in the session time zone. */
static TimestampTz
month_start(int64 month)
{
	struct pg_tm tm;
	int			tz;
	TimestampTz result;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (int) (month >= 0 ? month / 12 : -((-month + 11) / 12));
	tm.tm_mon = (int) (month - (int64) tm.tm_year * 12) + 1;
	tm.tm_mday = 1;
	tz = DetermineTimeZoneOffset(&tm, session_timezone);
	if (tm2timestamp(&tm, 0, &tz, &result) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return result;
}

static void
rhythm_init(RhythmState *st, TimestampTz as_of)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;
	int64		anchor;

	if (TIMESTAMP_NOT_FINITE(as_of) ||
		timestamp2tm(as_of, &tz, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("as_of must be a finite timestamp")));
	anchor = (int64) tm.tm_year * 12 + tm.tm_mon - 1;
	st->as_of = as_of;
	for (int k = 0; k < RHYTHM_MONTHS + 2; k++)
		st->edge[k] = month_start(anchor + 1 - k);
}

PG_FUNCTION_INFO_V1(order_flow_rhythm_trans);

/*
 * rhythm transition (state, ordered_at timestamptz, value float8,
 * as_of timestamptz): count the row (and add its value) in its calendar
 * month if that is as_of's month or one of the 12 before.  as_of must be
 * the same for every row of a group (a view passes now()).
 */
Datum
order_flow_rhythm_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	RhythmState *st = PG_ARGISNULL(0) ? NULL : (RhythmState *) PG_GETARG_POINTER(0);
	TimestampTz as_of;
	TimestampTz ts;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "order_flow rhythm aggregate called in non-aggregate context");
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("as_of must not be null")));
	as_of = PG_GETARG_TIMESTAMPTZ(3);
	if (st == NULL)
	{
		st = (RhythmState *) MemoryContextAllocZero(aggcxt, sizeof(RhythmState));
		rhythm_init(st, as_of);
	}
	else if (st->as_of != as_of)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of must be the same for every row of a group")));

	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(st);
	ts = PG_GETARG_TIMESTAMPTZ(1);
	if (ts < st->edge[0] && ts >= st->edge[RHYTHM_MONTHS + 1])
	{
		int			k = 0;

		while (ts < st->edge[k + 1])
			k++;
		st->count[k]++;
		if (!PG_ARGISNULL(2))
			st->value[k] += PG_GETARG_FLOAT8(2);
	}
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(order_flow_rhythm_combine);

Datum
order_flow_rhythm_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	RhythmState *a = PG_ARGISNULL(0) ? NULL : (RhythmState *) PG_GETARG_POINTER(0);
	RhythmState *b = PG_ARGISNULL(1) ? NULL : (RhythmState *) PG_GETARG_POINTER(1);

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "order_flow rhythm aggregate called in non-aggregate context");
	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
	{
		a = (RhythmState *) MemoryContextAlloc(aggcxt, sizeof(RhythmState));
		memcpy(a, b, sizeof(RhythmState));
		PG_RETURN_POINTER(a);
	}
	if (a->as_of != b->as_of)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of must be the same for every row of a group")));
	for (int k = 0; k <= RHYTHM_MONTHS; k++)
	{
		a->count[k] += b->count[k];
		a->value[k] += b->value[k];
	}
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(order_flow_rhythm_serial);

Datum
order_flow_rhythm_serial(PG_FUNCTION_ARGS)
{
	RhythmState *st = (RhythmState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint64(&buf, st->as_of);
	for (int k = 0; k < RHYTHM_MONTHS + 2; k++)
		pq_sendint64(&buf, st->edge[k]);
	for (int k = 0; k <= RHYTHM_MONTHS; k++)
	{
		pq_sendint64(&buf, st->count[k]);
		pq_sendfloat8(&buf, st->value[k]);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(order_flow_rhythm_deserial);

Datum
order_flow_rhythm_deserial(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	RhythmState *st = (RhythmState *) palloc0(sizeof(RhythmState));
	StringInfoData buf;

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
	st->as_of = pq_getmsgint64(&buf);
	for (int k = 0; k < RHYTHM_MONTHS + 2; k++)
		st->edge[k] = pq_getmsgint64(&buf);
	for (int k = 0; k <= RHYTHM_MONTHS; k++)
	{
		st->count[k] = pq_getmsgint64(&buf);
		st->value[k] = pq_getmsgfloat8(&buf);
	}
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(order_flow_rhythm_frequency);

/*
 * order_frequency: orders per month over the 12 complete calendar months
 * before as_of's month.
 */
Datum
order_flow_rhythm_frequency(PG_FUNCTION_ARGS)
{
	RhythmState *st = PG_ARGISNULL(0) ? NULL : (RhythmState *) PG_GETARG_POINTER(0);
	int64		n = 0;

	if (st == NULL)
		PG_RETURN_NULL();
	for (int k = 1; k <= RHYTHM_MONTHS; k++)
		n += st->count[k];
	PG_RETURN_FLOAT8((float8) n / RHYTHM_MONTHS);
}

PG_FUNCTION_INFO_V1(order_flow_rhythm_volatility);

/*
 * order_volatility: coefficient of variation (population standard
 * deviation / mean) of the order counts of the 3 complete calendar months
 * before as_of's month; NULL when those months have no order.
 */
Datum
order_flow_rhythm_volatility(PG_FUNCTION_ARGS)
{
	RhythmState *st = PG_ARGISNULL(0) ? NULL : (RhythmState *) PG_GETARG_POINTER(0);
	float8		mean = 0.0;
	float8		ss = 0.0;

	if (st == NULL)
		PG_RETURN_NULL();
	for (int k = 1; k <= 3; k++)
		mean += (float8) st->count[k];
	mean /= 3.0;
	if (mean == 0.0)
		PG_RETURN_NULL();
	for (int k = 1; k <= 3; k++)
		ss += ((float8) st->count[k] - mean) * ((float8) st->count[k] - mean);
	PG_RETURN_FLOAT8(sqrt(ss / 3.0) / mean);
}

PG_FUNCTION_INFO_V1(order_flow_rhythm_trend);

/*
 * order_value_trend: least-squares slope of the monthly order value over
 * the 6 complete calendar months before as_of's month, divided by the mean
 * monthly value -- the relative change per month (0.05 = +5 % a month);
 * NULL when those months have no order value.
 */
Datum
order_flow_rhythm_trend(PG_FUNCTION_ARGS)
{
	RhythmState *st = PG_ARGISNULL(0) ? NULL : (RhythmState *) PG_GETARG_POINTER(0);
	float8		mean = 0.0;
	float8		sxy = 0.0;
	float8		sxx = 0.0;

	if (st == NULL)
		PG_RETURN_NULL();
	/* x = 0 for the oldest of the 6 months (6 months back) .. 5 for the last */
	for (int k = 1; k <= 6; k++)
		mean += st->value[k];
	mean /= 6.0;
	if (mean == 0.0)
		PG_RETURN_NULL();
	for (int k = 1; k <= 6; k++)
	{
		float8		dx = (float8) (6 - k) - 2.5;

		sxy += dx * (st->value[k] - mean);
		sxx += dx * dx;
	}
	PG_RETURN_FLOAT8(sxy / sxx / mean);
}

PG_FUNCTION_INFO_V1(order_flow_rhythm_months);

/*
 * monthly_orders: the order counts of the 3 complete calendar months
 * before as_of's month, oldest first (bigint[3]).
 */
Datum
order_flow_rhythm_months(PG_FUNCTION_ARGS)
{
	RhythmState *st = PG_ARGISNULL(0) ? NULL : (RhythmState *) PG_GETARG_POINTER(0);
	Datum		elems[3];

	if (st == NULL)
		PG_RETURN_NULL();
	for (int i = 0; i < 3; i++)
		elems[i] = Int64GetDatum(st->count[3 - i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, 3, INT8OID, sizeof(int64),
										  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* ================================================================
 * Breadth: exact count of distinct text values
 * ================================================================
 */

/* Open-addressing hash set of strings, allocated in one memory context. */
typedef struct BreadthState
{
	MemoryContext cxt;
	int32		nitems;
	int32		capacity;		/* a power of two */
	uint32	   *hashes;
	int32	   *lengths;
	char	  **items;			/* NULL marks an empty slot */
} BreadthState;

static BreadthState *
breadth_create(MemoryContext cxt, int32 capacity)
{
	BreadthState *st = (BreadthState *) MemoryContextAlloc(cxt, sizeof(BreadthState));

	st->cxt = cxt;
	st->nitems = 0;
	st->capacity = capacity;
	st->hashes = (uint32 *) MemoryContextAlloc(cxt, sizeof(uint32) * capacity);
	st->lengths = (int32 *) MemoryContextAlloc(cxt, sizeof(int32) * capacity);
	st->items = (char **) MemoryContextAllocZero(cxt, sizeof(char *) * capacity);
	return st;
}

static void breadth_add(BreadthState *st, const char *s, int32 len);

static void
breadth_grow(BreadthState *st)
{
	int32		old_cap = st->capacity;
	uint32	   *old_hashes = st->hashes;
	int32	   *old_lengths = st->lengths;
	char	  **old_items = st->items;

	if (old_cap >= (1 << 28))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many distinct values in order_flow.breadth()")));
	st->capacity = old_cap * 2;
	st->nitems = 0;
	st->hashes = (uint32 *) MemoryContextAlloc(st->cxt, sizeof(uint32) * st->capacity);
	st->lengths = (int32 *) MemoryContextAlloc(st->cxt, sizeof(int32) * st->capacity);
	st->items = (char **) MemoryContextAllocZero(st->cxt, sizeof(char *) * st->capacity);
	for (int32 i = 0; i < old_cap; i++)
	{
		if (old_items[i] == NULL)
			continue;
		/* re-insert by reference: the strings stay where they are */
		{
			uint32		mask = st->capacity - 1;
			uint32		slot = old_hashes[i] & mask;

			while (st->items[slot] != NULL)
				slot = (slot + 1) & mask;
			st->items[slot] = old_items[i];
			st->hashes[slot] = old_hashes[i];
			st->lengths[slot] = old_lengths[i];
			st->nitems++;
		}
	}
	pfree(old_hashes);
	pfree(old_lengths);
	pfree(old_items);
}

static void
breadth_add(BreadthState *st, const char *s, int32 len)
{
	uint32		h = hash_bytes((const unsigned char *) s, len);
	uint32		mask;
	uint32		slot;

	if ((st->nitems + 1) * 2 > st->capacity)
		breadth_grow(st);
	mask = st->capacity - 1;
	slot = h & mask;
	while (st->items[slot] != NULL)
	{
		if (st->hashes[slot] == h && st->lengths[slot] == len &&
			memcmp(st->items[slot], s, len) == 0)
			return;
		slot = (slot + 1) & mask;
	}
	st->items[slot] = (char *) MemoryContextAlloc(st->cxt, len > 0 ? len : 1);
	memcpy(st->items[slot], s, len);
	st->hashes[slot] = h;
	st->lengths[slot] = len;
	st->nitems++;
}

PG_FUNCTION_INFO_V1(order_flow_breadth_trans);

Datum
order_flow_breadth_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	BreadthState *st = PG_ARGISNULL(0) ? NULL : (BreadthState *) PG_GETARG_POINTER(0);

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "order_flow.breadth() called in non-aggregate context");
	if (st == NULL)
		st = breadth_create(aggcxt, 8);
	if (!PG_ARGISNULL(1))
	{
		text	   *t = PG_GETARG_TEXT_PP(1);

		breadth_add(st, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(order_flow_breadth_combine);

Datum
order_flow_breadth_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	BreadthState *a = PG_ARGISNULL(0) ? NULL : (BreadthState *) PG_GETARG_POINTER(0);
	BreadthState *b = PG_ARGISNULL(1) ? NULL : (BreadthState *) PG_GETARG_POINTER(1);

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "order_flow.breadth() called in non-aggregate context");
	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
		a = breadth_create(aggcxt, 8);
	for (int32 i = 0; i < b->capacity; i++)
		if (b->items[i] != NULL)
			breadth_add(a, b->items[i], b->lengths[i]);
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(order_flow_breadth_serial);

Datum
order_flow_breadth_serial(PG_FUNCTION_ARGS)
{
	BreadthState *st = (BreadthState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint32(&buf, st->nitems);
	for (int32 i = 0; i < st->capacity; i++)
	{
		if (st->items[i] == NULL)
			continue;
		pq_sendint32(&buf, st->lengths[i]);
		pq_sendbytes(&buf, st->items[i], st->lengths[i]);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(order_flow_breadth_deserial);

Datum
order_flow_breadth_deserial(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	BreadthState *st;
	int32		n;
	int32		cap = 8;

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
	n = pq_getmsgint(&buf, 4);
	while (cap < n * 2 + 2 && cap < (1 << 28))
		cap *= 2;
	st = breadth_create(CurrentMemoryContext, cap);
	for (int32 i = 0; i < n; i++)
	{
		int32		len = pq_getmsgint(&buf, 4);
		const char *s = pq_getmsgbytes(&buf, len);

		breadth_add(st, s, len);
	}
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(order_flow_breadth_final);

Datum
order_flow_breadth_final(PG_FUNCTION_ARGS)
{
	BreadthState *st = PG_ARGISNULL(0) ? NULL : (BreadthState *) PG_GETARG_POINTER(0);

	PG_RETURN_INT32(st == NULL ? 0 : st->nitems);
}

/* ================================================================
 * Median: continuous median, as percentile_cont(0.5)
 * ================================================================
 */

typedef struct MedianState
{
	int64		n;
	int64		capacity;
	float8	   *values;
} MedianState;

#define MEDIAN_MAX_VALUES	((int64) ((MaxAllocSize - VARHDRSZ - sizeof(int64)) / sizeof(float8)))

static MedianState *
median_create(MemoryContext cxt, int64 capacity)
{
	MedianState *st = (MedianState *) MemoryContextAlloc(cxt, sizeof(MedianState));

	st->n = 0;
	st->capacity = Max(capacity, 64);
	st->values = (float8 *) MemoryContextAllocHuge(cxt, sizeof(float8) * st->capacity);
	return st;
}

static void
median_reserve(MedianState *st, int64 more)
{
	int64		need = st->n + more;

	if (need > MEDIAN_MAX_VALUES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many values for order_flow.median() (at most " INT64_FORMAT ")",
						MEDIAN_MAX_VALUES)));
	if (need <= st->capacity)
		return;
	while (st->capacity < need)
		st->capacity *= 2;
	st->values = (float8 *) repalloc_huge(st->values, sizeof(float8) * st->capacity);
}

/* float8 order as btree sorts it: NaN after everything, equal to NaN. */
static inline int
float8_order(float8 a, float8 b)
{
	if (isnan(a))
		return isnan(b) ? 0 : 1;
	if (isnan(b))
		return -1;
	return (a > b) - (a < b);
}

/*
 * select_kth: rearrange v[0..n-1] so that v[k] holds the value that sorts
 * k-th, everything before it sorts no later and everything after it no
 * earlier (Hoare's selection, median-of-three pivots).
 */
static void
select_kth(float8 *v, int64 n, int64 k)
{
	int64		lo = 0;
	int64		hi = n - 1;

	while (hi > lo)
	{
		int64		mid = lo + (hi - lo) / 2;
		int64		i;
		int64		j;
		float8		pivot;
		float8		t;

#define SWAP(x, y) (t = v[x], v[x] = v[y], v[y] = t)
		if (float8_order(v[mid], v[lo]) < 0)
			SWAP(mid, lo);
		if (float8_order(v[hi], v[lo]) < 0)
			SWAP(hi, lo);
		if (float8_order(v[hi], v[mid]) < 0)
			SWAP(hi, mid);
		pivot = v[mid];
		i = lo;
		j = hi;
		while (i <= j)
		{
			while (float8_order(v[i], pivot) < 0)
				i++;
			while (float8_order(v[j], pivot) > 0)
				j--;
			if (i <= j)
			{
				SWAP(i, j);
				i++;
				j--;
			}
		}
#undef SWAP
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			return;				/* j < k < i: v[k] equals the pivot */
	}
}

PG_FUNCTION_INFO_V1(order_flow_median_trans);

Datum
order_flow_median_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	MedianState *st = PG_ARGISNULL(0) ? NULL : (MedianState *) PG_GETARG_POINTER(0);

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "order_flow.median() called in non-aggregate context");
	if (st == NULL)
		st = median_create(aggcxt, 64);
	if (!PG_ARGISNULL(1))
	{
		median_reserve(st, 1);
		st->values[st->n++] = PG_GETARG_FLOAT8(1);
	}
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(order_flow_median_combine);

Datum
order_flow_median_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	MedianState *a = PG_ARGISNULL(0) ? NULL : (MedianState *) PG_GETARG_POINTER(0);
	MedianState *b = PG_ARGISNULL(1) ? NULL : (MedianState *) PG_GETARG_POINTER(1);

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "order_flow.median() called in non-aggregate context");
	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
		a = median_create(aggcxt, b->n);
	median_reserve(a, b->n);
	memcpy(a->values + a->n, b->values, sizeof(float8) * b->n);
	a->n += b->n;
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(order_flow_median_serial);

/*
 * The values travel in the server's native float8 layout: the state only
 * ever moves between processes of one server (parallel workers), never to
 * disk or across machines.
 */
Datum
order_flow_median_serial(PG_FUNCTION_ARGS)
{
	MedianState *st = (MedianState *) PG_GETARG_POINTER(0);
	Size		len = sizeof(int64) + sizeof(float8) * st->n;
	bytea	   *b = (bytea *) palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), &st->n, sizeof(int64));
	memcpy(VARDATA(b) + sizeof(int64), st->values, sizeof(float8) * st->n);
	PG_RETURN_BYTEA_P(b);
}

PG_FUNCTION_INFO_V1(order_flow_median_deserial);

Datum
order_flow_median_deserial(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	Size		len = VARSIZE_ANY_EXHDR(b);
	int64		n;
	MedianState *st;

	if (len < sizeof(int64))
		elog(ERROR, "invalid order_flow.median() state");
	memcpy(&n, VARDATA_ANY(b), sizeof(int64));
	if (n < 0 || len != sizeof(int64) + sizeof(float8) * (Size) n)
		elog(ERROR, "invalid order_flow.median() state");
	st = median_create(CurrentMemoryContext, n);
	memcpy(st->values, VARDATA_ANY(b) + sizeof(int64), sizeof(float8) * n);
	st->n = n;
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(order_flow_median_final);

/*
 * The final function reorders the values in place but never changes them,
 * so calling it again (or after more rows) gives the right answer: the
 * state stays shareable.  Interpolation is exactly percentile_cont's:
 * lo + 0.5 * (hi - lo) for an even count.
 */
Datum
order_flow_median_final(PG_FUNCTION_ARGS)
{
	MedianState *st = PG_ARGISNULL(0) ? NULL : (MedianState *) PG_GETARG_POINTER(0);
	int64		k;
	float8		lo;
	float8		hi;

	if (st == NULL || st->n == 0)
		PG_RETURN_NULL();
	k = (st->n - 1) / 2;
	select_kth(st->values, st->n, k);
	lo = st->values[k];
	if (st->n % 2 == 1)
		PG_RETURN_FLOAT8(lo);
	hi = st->values[k + 1];
	for (int64 i = k + 2; i < st->n; i++)
		if (float8_order(st->values[i], hi) < 0)
			hi = st->values[i];
	PG_RETURN_FLOAT8(lo + (0.5 * (hi - lo)));
}
